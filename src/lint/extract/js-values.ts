import type { SqlPiece } from './sql-text.js';

/*
 * What a migration's JavaScript means without running it: string and template literals with the file
 * offsets of their characters, constants declared in the same file, and the object literals that
 * Sequelize's QueryInterface calls take. Anything else is `UNKNOWN`, never guessed.
 */

/** A node of Babel's tree, loosely typed: the walker only reads `type`, offsets and named children. */
export interface JsNode { type: string; start?: number | null; end?: number | null; [key: string]: unknown }

/** A value that cannot be known without running the code. */
export const UNKNOWN: unique symbol = Symbol('unknown');

/** A Sequelize data type (`DataTypes.STRING(255)`), function (`fn('now')`), literal or operator. */
export interface JsMarker { marker: 'type' | 'fn' | 'literal' | 'op' | 'col'; name: string; args: JsValue[] }

/** A statically known JavaScript value. */
export type JsValue = string | number | boolean | null | JsValue[] | { [key: string]: JsValue } | JsMarker | typeof UNKNOWN;

/** Whether a value is a node of Babel's tree. */
export function isNode(v: unknown): v is JsNode {
  return typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string';
}

/** `const NAME = …` declarations of the file, by name (a name declared twice is ambiguous: left out). */
export type Constants = Map<string, JsNode>;

/** Collects every `const` declaration with an initializer, in any scope. */
export function collectConstants(program: JsNode): Constants {
  const seen = new Map<string, JsNode | null>();
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) { n.forEach(walk); return; }
    if (!isNode(n)) return;
    // A function declaration is read like a constant: its returned string is the SQL at a call (see resolveString).
    if (n.type === 'FunctionDeclaration' && isNode(n.id)) {
      const name = n.id.name as string;
      seen.set(name, seen.has(name) ? null : n);
    }
    if (n.type === 'VariableDeclaration' && n.kind === 'const') {
      for (const d of n.declarations as JsNode[]) {
        const id = d.id as JsNode;
        if (id.type === 'Identifier' && isNode(d.init)) {
          const name = id.name as string;
          seen.set(name, seen.has(name) ? null : d.init);
        }
      }
    }
    for (const [k, v] of Object.entries(n)) if (k !== 'loc' && k !== 'leadingComments' && k !== 'trailingComments') walk(v);
  };
  walk(program);
  return new Map([...seen].filter((e): e is [string, JsNode] => e[1] !== null));
}

/** An interpolation the resolver could not know: a placeholder piece. */
export interface StringParts { pieces: SqlPiece[]; unresolved: number }

/**
 * The text of a string expression as pieces mapped to the file: literals, templates, `+` and constants.
 * Null when `node` is not a string expression at all (a variable of unknown value as the whole argument).
 */
export function resolveString(node: JsNode, constants: Constants, depth = 0): StringParts | null {
  if (depth > 8) return null;
  switch (node.type) {
    case 'StringLiteral': return { pieces: [{ text: node.value as string, src: (node.start ?? 0) + 1 }], unresolved: 0 };
    case 'NumericLiteral': return { pieces: [{ text: String(node.value), src: node.start ?? 0 }], unresolved: 0 };
    case 'TemplateLiteral': return resolveTemplate(node, constants, depth);
    // A loop variable bound to one element of a known list (see the extractor's loop bindings).
    case 'JsValueLiteral': return typeof node.value === 'string' ? { pieces: [{ text: node.value, src: null }], unresolved: 0 } : null;
    case 'TSAsExpression': case 'TSNonNullExpression': case 'ParenthesizedExpression':
      return isNode(node.expression) ? resolveString(node.expression, constants, depth + 1) : null;
    case 'BinaryExpression': {
      if (node.operator !== '+') return null;
      const l = resolveString(node.left as JsNode, constants, depth + 1) ?? placeholder(node.left as JsNode);
      const r = resolveString(node.right as JsNode, constants, depth + 1) ?? placeholder(node.right as JsNode);
      return { pieces: [...l.pieces, ...r.pieces], unresolved: l.unresolved + r.unresolved };
    }
    case 'Identifier': {
      const init = constants.get(node.name as string);
      return init ? resolveString(init, constants, depth + 1) : null;
    }
    case 'MemberExpression': {
      const v = evaluate(node, constants, depth + 1);
      return typeof v === 'string' ? { pieces: [{ text: v, src: null }], unresolved: 0 } : null;
    }
    case 'CallExpression': return resolveReturned(node, constants, depth);
    case 'ConditionalExpression': return resolveOptional(node, constants, depth);
    default: return null;
  }
}

/**
 * `${flag ? 'col,' : ''}`: an optional fragment whose condition is only known when the migration runs.
 * The fragment is read as present (its SQL is what the statement can run), a branch that is unknown
 * beside an empty one as absent; two known branches read as the first. Null when neither is known.
 */
function resolveOptional(node: JsNode, constants: Constants, depth: number): StringParts | null {
  const known = (n: JsNode) => {
    const r = resolveString(n, constants, depth + 1);
    return r && r.unresolved === 0 ? { ...r, text: r.pieces.map((p) => p.text).join('') } : null;
  };
  const yes = known(node.consequent as JsNode);
  const no = known(node.alternate as JsNode);
  const chosen = yes && no ? (yes.text.trim() === '' ? no : yes) : yes?.text.trim() === '' ? yes : no?.text.trim() === '' ? no : null;
  return chosen && { pieces: chosen.pieces, unresolved: 0 };
}

const FUNCTION_NODES = new Set(['FunctionDeclaration', 'FunctionExpression', 'ArrowFunctionExpression']);

/**
 * `helper(a, b)` where `helper` is a function of the file that returns one string expression
 * (`return \`ALTER TABLE ${table} …\``, or an arrow's expression body): that string, its parameters
 * bound to the call's arguments as known here. Positions are dropped: the statement is located at the
 * call that sends it, not inside the helper that several calls share.
 */
function resolveReturned(node: JsNode, constants: Constants, depth: number): StringParts | null {
  const callee = node.callee as JsNode;
  const fn = callee.type === 'Identifier' ? constants.get(callee.name as string) : undefined;
  if (!fn || !FUNCTION_NODES.has(fn.type)) return null;
  const body = fn.body as JsNode;
  const statements = body.type === 'BlockStatement' ? body.body as JsNode[] : null;
  const returned = statements ? (statements.length === 1 && statements[0]!.type === 'ReturnStatement' ? statements[0]!.argument as JsNode | null : null) : body;
  if (!returned) return null;
  const bound = new Map(constants);
  (fn.params as JsNode[]).forEach((p, i) => {
    if (p.type !== 'Identifier') return;
    const value = evaluate((node.arguments as JsNode[])[i], constants, depth + 1);
    if (value === UNKNOWN) bound.delete(p.name as string);
    else bound.set(p.name as string, { type: 'JsValueLiteral', value });
  });
  const parts = resolveString(returned, bound, depth + 1);
  return parts && { pieces: parts.pieces.map((p) => ({ ...p, src: null })), unresolved: parts.unresolved };
}

function placeholder(node: JsNode): StringParts {
  return { pieces: [{ text: '\u0000', src: node.start ?? null }], unresolved: 1 };
}

function resolveTemplate(node: JsNode, constants: Constants, depth: number): StringParts {
  const quasis = node.quasis as JsNode[];
  const expressions = node.expressions as JsNode[];
  const pieces: SqlPiece[] = [];
  let unresolved = 0;
  quasis.forEach((q, i) => {
    const value = q.value as { cooked?: string | null; raw: string };
    pieces.push({ text: value.cooked ?? value.raw, src: q.start ?? null });
    const e = expressions[i];
    if (!e) return;
    const inner = resolveString(e, constants, depth + 1);
    if (inner) { pieces.push(...inner.pieces); unresolved += inner.unresolved; } else {
      // A marker the SQL stage turns into a placeholder that keeps the statement parseable.
      pieces.push({ text: '\u0000', src: null });
      unresolved++;
    }
  });
  return { pieces, unresolved };
}

const SEQUELIZE_NAMESPACES = new Set(['Sequelize', 'DataTypes', 'DataType', 'sequelize', 'Types']);

/** Evaluates an object literal, array, literal or Sequelize marker; UNKNOWN for anything else. */
export function evaluate(node: JsNode | null | undefined, constants: Constants, depth = 0): JsValue {
  if (!node || depth > 8) return UNKNOWN;
  switch (node.type) {
    case 'StringLiteral': case 'NumericLiteral': case 'BooleanLiteral': return node.value as string | number | boolean;
    case 'NullLiteral': return null;
    case 'JsValueLiteral': return node.value as JsValue;
    case 'TemplateLiteral': case 'BinaryExpression': {
      const s = resolveString(node, constants, depth + 1);
      return s && s.unresolved === 0 ? s.pieces.map((p) => p.text).join('') : UNKNOWN;
    }
    case 'Identifier': {
      if (node.name === 'undefined') return null;
      const init = constants.get(node.name as string);
      return init ? evaluate(init, constants, depth + 1) : UNKNOWN;
    }
    case 'TSAsExpression': case 'TSNonNullExpression': case 'ParenthesizedExpression': return evaluate(node.expression as JsNode, constants, depth + 1);
    case 'ArrayExpression': return evaluateArray(node, constants, depth);
    case 'ObjectExpression': return evaluateObject(node, constants, depth);
    case 'MemberExpression': return evaluateMember(node, constants, depth);
    case 'CallExpression': return evaluateCall(node, constants, depth);
    case 'UnaryExpression': {
      const v = evaluate(node.argument as JsNode, constants, depth + 1);
      return node.operator === '-' && typeof v === 'number' ? -v : UNKNOWN;
    }
    default: return UNKNOWN;
  }
}

/** `[a, b]`, and `[...LIST, c]` with LIST a known array (a copy of a constant list, as `reverse()` needs). */
function evaluateArray(node: JsNode, constants: Constants, depth: number): JsValue {
  const out: JsValue[] = [];
  for (const e of node.elements as (JsNode | null)[]) {
    if (e?.type !== 'SpreadElement') { out.push(evaluate(e, constants, depth + 1)); continue; }
    const inner = evaluate(e.argument as JsNode, constants, depth + 1);
    if (!Array.isArray(inner)) return UNKNOWN;
    out.push(...inner);
  }
  return out;
}

function evaluateObject(node: JsNode, constants: Constants, depth: number): JsValue {
  const out: { [key: string]: JsValue } = {};
  for (const p of node.properties as JsNode[]) {
    if (p.type !== 'ObjectProperty') continue;
    const key = p.key as JsNode;
    const name = p.computed ? evaluate(key, constants, depth + 1) : key.type === 'Identifier' ? key.name as string : (key.value as string);
    const keyName = typeof name === 'string' ? name : isMarker(name) && name.marker === 'op' ? `$${name.name}` : null;
    if (keyName !== null) out[keyName] = evaluate(p.value as JsNode, constants, depth + 1);
  }
  return out;
}

/** `Sequelize.STRING`, `DataTypes.INTEGER`, `Op.in`, `Sequelize.NOW`, `CONST.key`. */
function evaluateMember(node: JsNode, constants: Constants, depth: number): JsValue {
  const object = node.object as JsNode;
  const property = node.property as JsNode;
  const prop = !node.computed && property.type === 'Identifier' ? property.name as string : null;
  if (prop === null) return UNKNOWN;
  const base = object.type === 'Identifier' ? object.name as string
    : object.type === 'MemberExpression' && (object.property as JsNode).type === 'Identifier' ? (object.property as JsNode).name as string : null;
  if (base === 'Op') return { marker: 'op', name: prop, args: [] };
  if (base !== null && SEQUELIZE_NAMESPACES.has(base) && /^[A-Z0-9_]+$/.test(prop)) return { marker: 'type', name: prop, args: [] };
  const target = evaluate(object, constants, depth + 1);
  if (target && typeof target === 'object' && !Array.isArray(target) && !isMarker(target)) return (target as Record<string, JsValue>)[prop] ?? UNKNOWN;
  return UNKNOWN;
}

/** `DataTypes.STRING(255)`, `Sequelize.fn('now')`, `Sequelize.literal('…')`, `Sequelize.col('x')`. */
function evaluateCall(node: JsNode, constants: Constants, depth: number): JsValue {
  const callee = node.callee as JsNode;
  const args = (node.arguments as JsNode[]).map((a) => evaluate(a, constants, depth + 1));
  if (callee.type === 'MemberExpression' && !callee.computed) {
    const name = (callee.property as JsNode).name as string;
    const base = evaluate(callee.object as JsNode, constants, depth + 1);
    if (isMarker(base) && base.marker === 'type') return { marker: 'type', name: base.name, args: [...base.args, ...args] };
    // `LIST.concat(OTHER, …)` of constant lists, as a loop over several lists is written.
    if (name === 'concat' && Array.isArray(base) && args.every((a) => a !== UNKNOWN)) return base.concat(...args);
    if (name === 'fn' || name === 'literal' || name === 'col') return { marker: name, name: typeof args[0] === 'string' ? args[0] : '', args: args.slice(1) };
    // node-pg-migrate's `pgm.func('now()')`: SQL written as is.
    if (name === 'func' && typeof args[0] === 'string') return { marker: 'literal', name: args[0], args: [] };
    const callee2 = evaluate(callee, constants, depth + 1);
    if (isMarker(callee2) && callee2.marker === 'type') return { marker: 'type', name: callee2.name, args };
  }
  return UNKNOWN;
}

/** Whether a value is a Sequelize marker (a data type, `fn`, `literal`, `col`, an operator). */
export function isMarker(v: JsValue): v is JsMarker {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { marker?: unknown }).marker === 'string';
}
