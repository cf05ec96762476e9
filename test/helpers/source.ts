import { dirname, relative, resolve, sep } from 'node:path';
import { SyntaxKind, type Node, type SourceFile } from 'typescript/unstable/ast';
import { API, type Project } from 'typescript/unstable/sync';

/*
 * The TypeScript compiler's own view of src/ (TypeScript 7 parses and checks in its Go server; this is its
 * API client), so the structure tests read the same syntax tree and module graph the build does, not regexes.
 */

export const ROOT = resolve(import.meta.dirname, '../..');
export const SRC = resolve(ROOT, 'src');

/** Opens the build project (src only) and passes it to `fn`; the compiler server stops afterwards. */
export function withProject<T>(fn: (project: Project) => T): T {
  const api = new API({ cwd: ROOT });
  try {
    const snapshot = api.updateSnapshot({ openProjects: [resolve(ROOT, 'tsconfig.build.json')] });
    const project = snapshot.getProjects()[0];
    if (!project) throw new Error('tsconfig.build.json did not open');
    return fn(project);
  } finally {
    api.close();
  }
}

/** The project's own files under src/, as parsed source files. */
export function srcFiles(project: Project): SourceFile[] {
  return project.program.getSourceFileNames()
    .filter((f) => f.startsWith(SRC + sep))
    .map((f) => project.program.getSourceFile(f)!)
    .filter(Boolean);
}

/** Relative module specifiers of a file (imports, re-exports, `import()` and `import('…')` types), resolved to paths. */
export function relativeImports(file: SourceFile): string[] {
  return file.imports
    .map((n) => (n as unknown as { text: string }).text)
    .filter((s) => s.startsWith('.'))
    .map((s) => resolve(dirname(file.fileName), s));
}

/** The top-level folder of src/ a path belongs to, or `(root)` for a file directly in src/. */
export function srcFolder(path: string): string {
  const parts = relative(SRC, path).split(sep);
  return parts.length > 1 ? parts[0]! : '(root)';
}

/** A function-like node with its name and length in lines (first token to closing brace, comments excluded). */
export interface FunctionSpan { file: string; name: string; line: number; lines: number }

const FUNCTION_KINDS = new Set([
  SyntaxKind.FunctionDeclaration, SyntaxKind.FunctionExpression, SyntaxKind.ArrowFunction,
  SyntaxKind.MethodDeclaration, SyntaxKind.Constructor, SyntaxKind.GetAccessor, SyntaxKind.SetAccessor,
]);

/** Every function, method and arrow function in a file, nested ones included. */
export function functionSpans(file: SourceFile): FunctionSpan[] {
  const out: FunctionSpan[] = [];
  const visit = (node: Node): void => {
    if (FUNCTION_KINDS.has(node.kind)) {
      const first = file.getLineAndCharacterOfPosition(node.getStart(file)).line;
      const last = file.getLineAndCharacterOfPosition(node.end).line;
      out.push({ file: relative(ROOT, file.fileName), name: functionName(node), line: first + 1, lines: last - first + 1 });
    }
    node.forEachChild(visit);
  };
  file.forEachChild(visit);
  return out;
}

function functionName(node: Node): string {
  const named = (n: Node | undefined): string | undefined => {
    const name = (n as { name?: { text?: string } } | undefined)?.name;
    return typeof name?.text === 'string' ? name.text : undefined;
  };
  const own = named(node);
  if (own) {
    const owner = node.kind === SyntaxKind.FunctionDeclaration ? undefined : named(node.parent);
    return owner ? `${owner}.${own}` : own;
  }
  // An arrow or function expression takes the name of the variable or property it is assigned to.
  return named(node.parent) ?? '(anonymous)';
}

/** Every name a module exports (values and types), sorted, as the TypeScript checker resolves them. */
export function exportedNames(project: Project, file: string): string[] {
  const source = project.program.getSourceFile(resolve(ROOT, file));
  const module = source && project.checker.getSymbolAtLocation(source);
  if (!module) throw new Error(`${file} is not a module of the build`);
  return project.checker.getExportsOfModule(module).map((s) => s.name).sort();
}
