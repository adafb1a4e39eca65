// The shape of the code, read with the TypeScript compiler's parser (nothing is run): source
// files, long functions, the import graph (static imports and exports of relative paths, types
// included, and import() of a literal), its cycles. bench/house.ts prints it; test/imports.test.ts
// holds the import graph to the layer rules of docs/architecture.md.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** the trees that hold the project's own code (tests and fixtures are counted apart) */
export const SOURCE_TREES = ['agent', 'bench', 'bin', 'dashboard'];
export const LONG_FUNCTION = 80;

function walk(dir: string, out: string[]): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && e.name !== 'results' && e.name !== 'fixtures') walk(path, out);
    } else if (/\.(ts|js)$/.test(e.name) && !e.name.endsWith('.d.ts')) {
      // a .js beside a .ts of the same name is a compiled copy, not a source
      if (e.name.endsWith('.js') && readdirSync(dir).includes(e.name.replace(/\.js$/, '.ts'))) continue;
      out.push(path);
    }
  }
  return out;
}

/** Every source file below the given trees, relative to the root, sorted. */
export function sourceFiles(trees: readonly string[] = SOURCE_TREES, root = ROOT): string[] {
  const files: string[] = [];
  for (const t of trees) {
    try {
      walk(join(root, t), files);
    } catch {
      // a tree that does not exist holds no files
    }
  }
  return files.map((f) => relative(root, f)).sort();
}

function parse(file: string, root: string): ts.SourceFile {
  const text = readFileSync(join(root, file), 'utf8');
  return ts.createSourceFile(
    file,
    text,
    ts.ScriptTarget.Latest,
    true,
    file.endsWith('.js') ? ts.ScriptKind.JS : ts.ScriptKind.TS,
  );
}

export interface LongFunction {
  file: string;
  name: string;
  line: number;
  lines: number;
}

function functionName(node: ts.Node, sf: ts.SourceFile): string {
  const named = node as ts.Node & { name?: ts.Node };
  if (named.name) return named.name.getText(sf);
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent))
    return parent.name.getText(sf);
  if (ts.isCallExpression(parent)) return `(callback of ${parent.expression.getText(sf).slice(0, 40)})`;
  return '(anonymous)';
}

/** Functions, methods and arrow functions whose body spans more than `limit` lines. */
export function longFunctions(files: readonly string[], limit = LONG_FUNCTION, root = ROOT): LongFunction[] {
  const found: LongFunction[] = [];
  for (const file of files) {
    const sf = parse(file, root);
    const visit = (node: ts.Node): void => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body) {
        const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
        const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
        const lines = end - start + 1;
        if (lines > limit) found.push({ file, name: functionName(node, sf), line: start + 1, lines });
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return found.sort((a, b) => b.lines - a.lines);
}

/** The relative imports (static `import`/`export ... from`, and `import()` of a literal) of each file. */
export function importGraph(files: readonly string[], root = ROOT): Map<string, string[]> {
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const sf = parse(file, root);
    const targets = new Set<string>();
    const add = (spec: string): void => {
      if (!spec.startsWith('.')) return;
      const base = join(dirname(file), spec);
      const candidates = [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')];
      const hit = candidates.find((c) => known.has(c));
      if (hit) targets.add(hit);
    };
    const visit = (node: ts.Node): void => {
      if (
        (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
        node.moduleSpecifier &&
        ts.isStringLiteral(node.moduleSpecifier)
      ) {
        add(node.moduleSpecifier.text);
      } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
        const arg = node.arguments[0];
        if (arg && ts.isStringLiteral(arg)) add(arg.text);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
    graph.set(file, [...targets].sort());
  }
  return graph;
}

/** The strongly connected components with more than one file (or a file importing itself): each is a cycle. */
export function importCycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const cycles: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) strong(v);
  return cycles.sort((a, b) => b.length - a.length || a[0]!.localeCompare(b[0]!));
}

/** The part a file belongs to: its folder below a top-level tree (agent/config), or the file itself (agent/cli.ts). */
export function partOf(file: string): string {
  return file.split('/').length > 2 ? dirname(file) : file;
}

/** The cycles between parts: agent/config imports agent/sink and agent/sink imports agent/config. */
export function folderCycles(graph: Map<string, string[]>): string[][] {
  const folders = new Map<string, Set<string>>();
  for (const [from, tos] of graph) {
    const a = partOf(from);
    for (const to of tos) {
      const b = partOf(to);
      if (a === b) continue;
      if (!folders.has(a)) folders.set(a, new Set());
      folders.get(a)!.add(b);
    }
  }
  const g = new Map<string, string[]>();
  for (const [k, v] of folders) g.set(k, [...v]);
  for (const v of [...folders.values()].flatMap((s) => [...s])) if (!g.has(v)) g.set(v, []);
  return importCycles(g);
}

export function lineCount(file: string, root = ROOT): number {
  const text = readFileSync(join(root, file), 'utf8');
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}
