// The config file as parsed YAML that still knows where every value came from: syntax errors,
// duplicate keys and `${ENV}` problems become positioned problems here, and any later problem
// (a schema violation at `services[1].unicast.eu-west-1`) is mapped back to a line and column.
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import { interpolate } from './env.ts';

/** A step in a path through the document: a map key or a sequence index. */
export type PathSegment = string | number;

/** One thing wrong with the config, before it is formatted as `file:line:col: path: message`. */
export interface Problem {
  line: number;
  col: number;
  path: readonly PathSegment[];
  message: string;
}

/** What a problem points at: the value at the path, or the key naming it (unknown keys). */
export type Anchor = 'value' | 'key';

/** A parsed config file: plain data plus a way back from a path to a position. */
export interface ConfigSource {
  /** the document as plain JavaScript, environment variables substituted */
  readonly data: unknown;
  /**
   * Position of the value (or key) at `path`; the nearest existing ancestor when it is absent. The
   * returned path drops a trailing `[0]` where a single value stands for a one-element list.
   */
  locate(path: readonly PathSegment[], anchor?: Anchor): { line: number; col: number; path: PathSegment[] };
}

const SIMPLE_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `services[1].unicast.eu-west-1`; keys that are not simple names are quoted in brackets. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (SIMPLE_KEY.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

function keyText(key: unknown): string | undefined {
  if (
    isScalar(key) &&
    (typeof key.value === 'string' || typeof key.value === 'number' || typeof key.value === 'boolean')
  ) {
    return String(key.value);
  }
  return undefined;
}

type Pos = (offset: number) => { line: number; col: number };

/** Parses `text` (the contents of `file`), substituting `${ENV}` in values from `env`. */
export function readSource(
  text: string,
  env: NodeJS.ProcessEnv,
): { source: ConfigSource; problems: Problem[]; syntaxError: boolean; unusable: Set<string> } {
  const lineCounter = new LineCounter();
  // Duplicate keys are found below so the message can name the path and the first occurrence.
  const doc: Document = parseDocument(text, {
    lineCounter,
    uniqueKeys: false,
    prettyErrors: false,
    keepSourceTokens: true,
  });
  const problems: Problem[] = [];
  const pos: Pos = (offset) => {
    const p = lineCounter.linePos(offset);
    return { line: Math.max(1, p.line), col: Math.max(1, p.col) };
  };

  // Only the first syntax error: the ones after it are usually the parser losing its footing.
  const syntax = doc.errors[0];
  if (syntax) problems.push(syntaxProblem(syntax, text, pos));

  // Values whose substitution failed: their schema problems would only repeat the first one.
  const unusable = new Set<string>();
  if (doc.errors.length === 0) checkAndSubstitute(doc.contents, [], { env, pos, problems, unusable });

  const data: unknown = doc.errors.length === 0 ? doc.toJS({ maxAliasCount: 100 }) : undefined;
  const locate = locator(doc, pos);

  return { source: { data, locate }, problems, syntaxError: doc.errors.length > 0, unusable };
}

/** The problem for the document's first syntax error, placed where the user has to edit. */
function syntaxProblem(syntax: Document['errors'][number], text: string, pos: Pos): Problem {
  let at = pos(syntax.pos[0]);
  // A line indented deeper than its key's siblings continues the value on the line above as a
  // multi-line key; the parser reports it where that value starts, one line too early. Point at
  // the over-indented line itself.
  let indentHint = '';
  if (syntax.code === 'BLOCK_AS_IMPLICIT_KEY') {
    const lines = text.split(/\r?\n/);
    for (let n = at.line; n < lines.length; n++) {
      const next = lines[n]!;
      if (next.trim() === '' || next.trimStart().startsWith('#')) continue;
      at = { line: n + 1, col: next.length - next.trimStart().length + 1 };
      indentHint =
        '; this line is indented deeper than the key above it: align it with that key, or indent it under a key that ends with ":"';
      break;
    }
  }
  const lineText = text.split(/\r?\n/)[at.line - 1] ?? '';
  // `{ a: ${X} }` is the classic: in flow style `{` and `}` are YAML's own.
  const hint = /[[{].*\$\{/.test(lineText) ? '; quote values that use ${...} inside [ ] or { }, e.g. "${VAR}"' : '';
  return {
    ...at,
    path: [],
    message: `YAML syntax: ${syntax.message.split('\n')[0] ?? syntax.message}${indentHint || hint}`,
  };
}

interface WalkState {
  env: NodeJS.ProcessEnv;
  pos: Pos;
  problems: Problem[];
  unusable: Set<string>;
}

/**
 * Reports complex and duplicate keys and substitutes `${ENV}` in every string value, in place;
 * a failed substitution is a problem and marks its path unusable.
 */
function checkAndSubstitute(node: unknown, path: PathSegment[], st: WalkState): void {
  const { env, pos, problems, unusable } = st;
  if (isMap(node)) {
    const seen = new Map<string, number>();
    for (const pair of node.items) {
      const key = keyText(pair.key);
      const keyNode = pair.key as Node | null;
      const at = pos(keyNode?.range?.[0] ?? node.range?.[0] ?? 0);
      if (key === undefined) {
        problems.push({ ...at, path, message: 'expected a plain key (a name), got a complex key' });
        continue;
      }
      const first = seen.get(key);
      if (first !== undefined) {
        problems.push({
          ...at,
          path: [...path, key],
          message: `duplicate key "${key}" (first at line ${first}); each key may appear once`,
        });
        continue;
      }
      seen.set(key, at.line);
      checkAndSubstitute(pair.value, [...path, key], st);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => checkAndSubstitute(item, [...path, i], st));
  } else if (isScalar(node) && typeof node.value === 'string') {
    const r = interpolate(node.value, env);
    if (!r.ok) {
      problems.push({ ...pos(node.range?.[0] ?? 0), path, message: r.message });
      unusable.add(formatPath(path));
    } else if (r.changed) {
      // Substituted values stay text (a token of digits is still a token); number and boolean
      // fields read numeric text. An empty substitution is an absent value, as `key:` is.
      node.value = r.value === '' ? null : r.value;
    }
  }
}

/** `ConfigSource.locate` over `doc`. */
function locator(doc: Document, pos: Pos): ConfigSource['locate'] {
  return (path, anchor = 'value') => {
    let node: unknown = doc.contents;
    let keyNode: Node | undefined;
    const shown: PathSegment[] = [];
    const offsetOf = (n: unknown): number | undefined =>
      n && typeof n === 'object' && 'range' in n ? (n as Node).range?.[0] : undefined;
    const at = (offset: number | undefined) => ({ ...pos(offset ?? 0), path: [...path] });
    for (const seg of path) {
      if (seg === 0 && isScalar(node)) {
        // `anycast: 192.0.2.1` is read as a one-element list: the scalar is item 0.
        return { ...pos(offsetOf(node) ?? 0), path: shown };
      }
      let next: unknown;
      let nextKey: Node | undefined;
      if (isMap(node)) {
        const pair = node.items.find((p) => keyText(p.key) === String(seg));
        if (pair) {
          next = pair.value;
          nextKey = pair.key as Node;
        }
      } else if (isSeq(node) && typeof seg === 'number') {
        next = node.items[seg];
      }
      if (next === undefined && nextKey === undefined) {
        // Absent: point at the key that names the nearest ancestor, else at the ancestor itself.
        return at(offsetOf(keyNode) ?? offsetOf(node));
      }
      shown.push(seg);
      node = next;
      keyNode = nextKey;
    }
    // A whole mapping or list is named by its key (`influx:`), not by its first entry.
    if ((anchor === 'key' || isMap(node) || isSeq(node)) && keyNode) return at(offsetOf(keyNode));
    // An empty value (`region:`) has no text of its own: its key is where the user looks.
    const empty = isScalar(node) && node.value === null && (node.source ?? '') === '';
    if ((empty || node === null || node === undefined) && keyNode) return at(offsetOf(keyNode));
    return at(offsetOf(node) ?? offsetOf(keyNode));
  };
}
