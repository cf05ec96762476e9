import { parse } from '@babel/parser';
import type { MigrationPhase } from '../types.js';
import { collectConstants, evaluate, isNode, resolveString, UNKNOWN, type Constants, type JsNode } from './js-values.js';
import { PGM_METHODS, pgmSql } from './node-pg-migrate.js';
import { QUERY_INTERFACE_METHODS, queryInterfaceSql } from './sequelize.js';
import type { SqlPiece } from './sql-text.js';

/*
 * Finds the SQL a JavaScript or TypeScript migration runs, on Babel's syntax tree: `x.query(sql)` (pg,
 * Sequelize, TypeORM), `knex.raw(sql)` and `knex.schema.raw(sql)`, `pgm.sql(sql)`, Sequelize
 * QueryInterface calls; which function (`up`, `down`) each sits in; and the file's own transaction marker.
 */

/** One call that sends SQL: its text as pieces of the file, and where it is. */
export interface SqlCall {
  pieces: SqlPiece[];
  /** Interpolations whose value is unknown (placeholders in `pieces`). */
  unresolved: number;
  phase: MigrationPhase;
  /** File offsets of the call. */
  start: number;
  end: number;
  via: string;
  /** Translated from a QueryInterface call (not SQL written by hand). */
  translated: boolean;
  /** Where it runs in the file's order: the call itself, or the call of the helper it sits in. */
  order: number;
}

/** What a JS/TS migration holds. */
export interface JsMigration {
  calls: SqlCall[];
  /** `transaction: false` (sync-lookup, Knex `config`), `transaction = false` (TypeORM), `pgm.noTransaction()`. */
  noTransactionMarker: string | null;
  /** The migration runner its calls look like (for the default transaction behaviour). */
  runner: 'sync-lookup' | 'typeorm' | 'knex' | 'node-pg-migrate' | 'sequelize' | 'pg' | null;
  /** Calls of sync-lookup's rebuild helpers (`rebuildRecordTypes`, `resyncRecordTypes`, purge with `thenRebuild`). */
  libraryRebuilds: MigrationPhase[];
  /** `//` and `/* *\/` comments with the file range of the code statement that follows each. */
  comments: { text: string; start: number; end: number; next: { start: number; end: number } | null }[];
}

/** Names of calls whose first argument is SQL. */
const SQL_METHODS = new Set(['query', 'raw', 'sql', 'unsafe', 'execute']);
const REBUILD_HELPERS = new Set(['rebuildRecordTypes', 'resyncRecordTypes', 'resyncPatientProgramRegistrations', 'rebuildForPrescriptionsChange']);

/**
 * Parses a migration's code and finds its SQL. Throws Babel's SyntaxError (with `loc`) on code that does
 * not parse.
 */
export function extractJs(code: string, fileName: string): JsMigration {
  const ast = parse(code, {
    sourceType: 'unambiguous', allowReturnOutsideFunction: true, allowAwaitOutsideFunction: true,
    plugins: [...(/\.(c|m)?tsx?$/.test(fileName) ? ['typescript' as const] : ['jsx' as const]), 'decorators-legacy'],
  }) as unknown as JsNode & { comments?: JsNode[] };
  const constants = collectConstants(ast);
  const out: JsMigration = { calls: [], noTransactionMarker: null, runner: null, libraryRebuilds: [], comments: [] };
  const statements: { start: number; end: number }[] = [];
  const deferred: Site[] = [];
  const sites = new Map<string, Site[]>();
  walk(ast, [], (node, stack) => {
    if (/Statement$|Declaration$/.test(node.type) && node.type !== 'BlockStatement') statements.push({ start: node.start ?? 0, end: node.end ?? 0 });
    if (node.type !== 'CallExpression') { markTransaction(node, out); return; }
    const callee = node.callee as JsNode;
    if (callee.type === 'Identifier') sites.set(callee.name as string, [...(sites.get(callee.name as string) ?? []), { node, stack: [...stack] }]);
    noteCall(node, stack, constants, out);
    if (helperOf(stack)) deferred.push({ node, stack: [...stack] });
    else visitCall(node, stack, constants, out);
  });
  for (const d of deferred) visitHelperCall(d, sites, constants, out);
  // Statements run in the order of their calls (a helper's, where it is called): the schema follows that order.
  out.calls.sort((a, b) => a.order - b.order);
  for (const c of ast.comments ?? []) {
    const end = c.end ?? 0;
    // The code statement after the comment: the first to start after it, the outermost of those that start there.
    const next = statements.filter((s) => s.start >= end).sort((a, b) => a.start - b.start || b.end - a.end)[0] ?? null;
    out.comments.push({ text: String(c.value), start: c.start ?? 0, end, next });
  }
  return out;
}

type Visitor = (node: JsNode, stack: JsNode[]) => void;

/** A call and the nodes around it (outermost first). */
interface Site { node: JsNode; stack: JsNode[] }

const FUNCTIONS = new Set(['FunctionDeclaration', 'FunctionExpression', 'ArrowFunctionExpression', 'ObjectMethod', 'ClassMethod']);

/** The named helper function (not `up`/`down`, not inside them) a call sits in, with its parameters. */
function helperOf(stack: JsNode[]): { name: string; params: string[] } | null {
  if (phaseOf(stack) !== 'file') return null;
  for (let i = stack.length - 1; i >= 0; i--) {
    const n = stack[i]!;
    if (!FUNCTIONS.has(n.type)) continue;
    const name = nameOf(n, stack[i - 1]);
    if (!name) return null;
    return { name, params: (n.params as JsNode[]).map((p) => (p.type === 'Identifier' ? p.name as string : '')) };
  }
  return null;
}

/**
 * A call inside a helper function runs where the helper is called: once per call site (in its phase,
 * with its loop bindings), the helper's parameters bound to the site's arguments. A helper nobody in the
 * file calls is read as written.
 */
function visitHelperCall(d: Site, sites: Map<string, Site[]>, constants: Constants, out: JsMigration): void {
  const helper = helperOf(d.stack)!;
  const callers = (sites.get(helper.name) ?? []).filter((s) => helperOf(s.stack)?.name !== helper.name);
  if (callers.length === 0) { visitCall(d.node, d.stack, constants, out); return; }
  const { method, receiver } = calleeParts(d.node.callee as JsNode);
  if (method === null || receiver === '' || (d.node.arguments as JsNode[]).length === 0) return;
  // The helper's own constants (`const column = \`${target}_id\``) are read in its scope.
  const fn = [...d.stack].reverse().find((n) => FUNCTIONS.has(n.type));
  const locals = fn ? collectConstants(fn) : new Map<string, JsNode>();
  for (const site of callers) {
    const phase = phaseOf(site.stack);
    for (const outer of loopBindings(site.stack, constants)) {
      const bound = new Map([...outer, ...locals]);
      helper.params.forEach((param, i) => {
        const value = evaluate((site.node.arguments as JsNode[])[i], outer);
        if (value === UNKNOWN) bound.delete(param);
        else bound.set(param, { type: 'JsValueLiteral', value });
      });
      for (const inner of loopBindings(d.stack, bound)) sqlOfCall(d.node, method, receiver, phase, inner, out, site.node.start ?? 0);
    }
  }
}

function walk(node: unknown, stack: JsNode[], visit: Visitor): void {
  if (Array.isArray(node)) { for (const n of node) walk(n, stack, visit); return; }
  if (!isNode(node)) return;
  visit(node, stack);
  stack.push(node);
  for (const [k, v] of Object.entries(node)) {
    if (k === 'loc' || k === 'leadingComments' || k === 'trailingComments' || k === 'innerComments' || k === 'extra') continue;
    if (typeof v === 'object' && v !== null) walk(v, stack, visit);
  }
  stack.pop();
}

/** `up` or `down`: the innermost enclosing function, method or property so named. */
function phaseOf(stack: JsNode[]): MigrationPhase {
  for (let i = stack.length - 1; i >= 0; i--) {
    const n = stack[i]!;
    const name = nameOf(n, stack[i - 1]);
    if (name === 'up' || name === 'down') return name;
  }
  return 'file';
}

function nameOf(n: JsNode, parent: JsNode | undefined): string | null {
  const key = (k: unknown) => (isNode(k) ? (k.type === 'Identifier' ? k.name as string : typeof k.value === 'string' ? k.value : null) : null);
  if (n.type === 'FunctionDeclaration') return key(n.id);
  if (n.type === 'ObjectMethod' || n.type === 'ClassMethod') return key(n.key);
  if ((n.type === 'ArrowFunctionExpression' || n.type === 'FunctionExpression') && parent) {
    if (parent.type === 'ObjectProperty' || parent.type === 'ClassProperty') return key(parent.key);
    if (parent.type === 'VariableDeclarator') return key(parent.id);
    if (parent.type === 'AssignmentExpression' && isNode(parent.left) && parent.left.type === 'MemberExpression') return key(parent.left.property);
  }
  return null;
}

function calleeParts(callee: JsNode): { method: string | null; receiver: string } {
  if (callee.type === 'Identifier') return { method: callee.name as string, receiver: '' };
  if (callee.type !== 'MemberExpression' || callee.computed) return { method: null, receiver: '' };
  const method = (callee.property as JsNode).name as string;
  const text = (n: unknown): string => (!isNode(n) ? '?' : n.type === 'Identifier' ? n.name as string : n.type === 'ThisExpression' ? 'this'
    : n.type === 'MemberExpression' ? `${text(n.object)}.${text(n.property)}` : n.type === 'CallExpression' ? `${text(n.callee)}()` : '?');
  return { method, receiver: text(callee.object) };
}

/** What a call says besides SQL: the runner it belongs to, a library rebuild, `pgm.noTransaction()`. */
function noteCall(node: JsNode, stack: JsNode[], constants: Constants, out: JsMigration): void {
  const { method, receiver } = calleeParts(node.callee as JsNode);
  if (method === null) return;
  const args = node.arguments as JsNode[];
  noteRunner(receiver, method, out);
  if (REBUILD_HELPERS.has(method) || (method === 'purgeRecordTypes' && isThenRebuild(args[1], constants))) out.libraryRebuilds.push(phaseOf(stack));
  if (method === 'noTransaction' && /pgm$/.test(receiver)) out.noTransactionMarker = 'pgm.noTransaction()';
}

/** The SQL of a call, once per binding of the constant lists it loops over. */
function visitCall(node: JsNode, stack: JsNode[], constants: Constants, out: JsMigration): void {
  const { method, receiver } = calleeParts(node.callee as JsNode);
  const args = node.arguments as JsNode[];
  const phase = phaseOf(stack);
  if (method === null || receiver === '' || args.length === 0) return;
  // Inside `for (const t of CONSTANT_LIST)`, the call runs once per element: once per binding here.
  for (const bound of loopBindings(stack, constants)) sqlOfCall(node, method, receiver, phase, bound, out);
}

/** The SQL one call sends (a `.query()`-like call, or a QueryInterface call translated), with `constants` as bound. */
function sqlOfCall(node: JsNode, method: string, receiver: string, phase: MigrationPhase, constants: Constants, out: JsMigration, order = node.start ?? 0): void {
  const args = node.arguments as JsNode[];
  const span = { start: node.start ?? 0, end: node.end ?? 0, order };
  if (SQL_METHODS.has(method)) {
    const text = resolveString(args[0]!, constants);
    if (text) out.calls.push({ ...text, phase, ...span, via: `${receiver}.${method}()`, translated: false });
    return;
  }
  if (/(^|\.)pgm$/.test(receiver)) {
    const sql = PGM_METHODS.has(method) ? pgmSql(method, args.map((a) => evaluate(a, constants))) : null;
    for (const s of sql ?? []) out.calls.push({ pieces: [{ text: s, src: null }], unresolved: 0, phase, ...span, via: `pgm.${method}()`, translated: true });
    return;
  }
  if (QUERY_INTERFACE_METHODS.has(method) && !args.some((a) => a.type.includes('Function'))) {
    const sql = queryInterfaceSql(method, args.map((a) => evaluate(a, constants)));
    for (const s of sql ?? []) out.calls.push({ pieces: [{ text: s, src: null }], unresolved: 0, phase, ...span, via: `${receiver}.${method}()`, translated: true });
  }
}

/** At most this many bindings of enclosing loops are expanded (a loop over every table of a schema is ~100). */
const MAX_LOOP_BINDINGS = 200;

/**
 * The constants as each iteration of the enclosing `for (const x of LIST)` loops binds them, when LIST is
 * known (a constant array, or an array literal); the constants alone when there is no such loop.
 */
function loopBindings(stack: JsNode[], constants: Constants): Constants[] {
  let out: Constants[] = [constants];
  for (const n of stack) {
    if (n.type !== 'ForOfStatement' || !isNode(n.left) || n.left.type !== 'VariableDeclaration') continue;
    const id = ((n.left.declarations as JsNode[])[0]?.id ?? null) as JsNode | null;
    const list = evaluate(n.right as JsNode, constants);
    if (!id || id.type !== 'Identifier' || !Array.isArray(list) || list.length === 0) continue;
    const next: Constants[] = [];
    for (const c of out) for (const v of list) next.push(new Map(c).set(id.name as string, { type: 'JsValueLiteral', value: v }));
    if (next.length > MAX_LOOP_BINDINGS) break;
    out = next;
  }
  return out;
}

function isThenRebuild(node: JsNode | undefined, constants: Constants): boolean {
  const v = evaluate(node, constants);
  return typeof v === 'object' && v !== null && !Array.isArray(v) && (v as Record<string, unknown>).thenRebuild === true;
}

function noteRunner(receiver: string, method: string, out: JsMigration): void {
  if (out.runner !== null) return;
  if (/queryRunner$/.test(receiver)) out.runner = 'typeorm';
  else if (/^pgm$/.test(receiver)) out.runner = 'node-pg-migrate';
  else if (/knex|trx/.test(receiver) && method === 'raw') out.runner = 'knex';
  else if (/^ctx\b/.test(receiver)) out.runner = 'sync-lookup';
  else if (/sequelize|queryInterface/i.test(receiver) || QUERY_INTERFACE_METHODS.has(method)) out.runner = 'sequelize';
}

/** `transaction: false` in an object (sync-lookup's default export, Knex's `config`) or a class (TypeORM). */
function markTransaction(node: JsNode, out: JsMigration): void {
  // `config.transaction = false` / `this.transaction = false`.
  if (node.type === 'AssignmentExpression' && isNode(node.left) && node.left.type === 'MemberExpression') {
    const prop = node.left.property as JsNode;
    const right = node.right as JsNode;
    if (prop.type === 'Identifier' && prop.name === 'transaction' && right.type === 'BooleanLiteral' && right.value === false) {
      out.noTransactionMarker = 'transaction = false';
    }
    return;
  }
  if (node.type !== 'ObjectProperty' && node.type !== 'ClassProperty') return;
  const key = node.key as JsNode;
  const value = node.value as JsNode | null;
  if (key.type === 'Identifier' && key.name === 'transaction' && value?.type === 'BooleanLiteral' && value.value === false) {
    out.noTransactionMarker = node.type === 'ClassProperty' ? 'transaction = false' : 'transaction: false';
  }
}
