// The config file as parsed YAML that still knows where every value came from: syntax errors,
// duplicate keys and `${ENV}` problems become positioned problems here, and any later problem
// (a schema violation at `services[1].unicast.eu-west-1`) is mapped back to a line and column.
import { LineCounter, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import { interpolate } from "./env.js";
const SIMPLE_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;
/** `services[1].unicast.eu-west-1`; keys that are not simple names are quoted in brackets. */
export function formatPath(path) {
    let out = '';
    for (const seg of path) {
        if (typeof seg === 'number')
            out += `[${seg}]`;
        else if (SIMPLE_KEY.test(seg))
            out += out === '' ? seg : `.${seg}`;
        else
            out += `[${JSON.stringify(seg)}]`;
    }
    return out;
}
function keyText(key) {
    if (isScalar(key) && (typeof key.value === 'string' || typeof key.value === 'number' || typeof key.value === 'boolean')) {
        return String(key.value);
    }
    return undefined;
}
/** Parses `text` (the contents of `file`), substituting `${ENV}` in values from `env`. */
export function readSource(text, env) {
    const lineCounter = new LineCounter();
    // Duplicate keys are found below so the message can name the path and the first occurrence.
    const doc = parseDocument(text, { lineCounter, uniqueKeys: false, prettyErrors: false, keepSourceTokens: true });
    const problems = [];
    const pos = (offset) => {
        const p = lineCounter.linePos(offset);
        return { line: Math.max(1, p.line), col: Math.max(1, p.col) };
    };
    // Only the first syntax error: the ones after it are usually the parser losing its footing.
    const syntax = doc.errors[0];
    if (syntax) {
        const at = pos(syntax.pos[0]);
        const lineText = text.split(/\r?\n/)[at.line - 1] ?? '';
        // `{ a: ${X} }` is the classic: in flow style `{` and `}` are YAML's own.
        const hint = /[[{].*\$\{/.test(lineText) ? '; quote values that use ${...} inside [ ] or { }, e.g. "${VAR}"' : '';
        problems.push({ ...at, path: [], message: `YAML syntax: ${syntax.message.split('\n')[0] ?? syntax.message}${hint}` });
    }
    // Values whose substitution failed: their schema problems would only repeat the first one.
    const unusable = new Set();
    const walk = (node, path) => {
        if (isMap(node)) {
            const seen = new Map();
            for (const pair of node.items) {
                const key = keyText(pair.key);
                const keyNode = pair.key;
                const at = pos(keyNode?.range?.[0] ?? node.range?.[0] ?? 0);
                if (key === undefined) {
                    problems.push({ ...at, path, message: 'expected a plain key (a name), got a complex key' });
                    continue;
                }
                const first = seen.get(key);
                if (first !== undefined) {
                    problems.push({ ...at, path: [...path, key], message: `duplicate key "${key}" (first at line ${first}); each key may appear once` });
                    continue;
                }
                seen.set(key, at.line);
                walk(pair.value, [...path, key]);
            }
        }
        else if (isSeq(node)) {
            node.items.forEach((item, i) => walk(item, [...path, i]));
        }
        else if (isScalar(node) && typeof node.value === 'string') {
            const r = interpolate(node.value, env);
            if (!r.ok) {
                problems.push({ ...pos(node.range?.[0] ?? 0), path, message: r.message });
                unusable.add(formatPath(path));
            }
            else if (r.changed) {
                // Substituted values stay text (a token of digits is still a token); number and boolean
                // fields read numeric text. An empty substitution is an absent value, as `key:` is.
                node.value = r.value === '' ? null : r.value;
            }
        }
    };
    if (doc.errors.length === 0)
        walk(doc.contents, []);
    const data = doc.errors.length === 0 ? doc.toJS({ maxAliasCount: 100 }) : undefined;
    const locate = (path, anchor = 'value') => {
        let node = doc.contents;
        let keyNode;
        const shown = [];
        const offsetOf = (n) => (n && typeof n === 'object' && 'range' in n ? n.range?.[0] : undefined);
        const at = (offset) => ({ ...pos(offset ?? 0), path: [...path] });
        for (const seg of path) {
            if (seg === 0 && isScalar(node)) {
                // `anycast: 192.0.2.1` is read as a one-element list: the scalar is item 0.
                return { ...pos(offsetOf(node) ?? 0), path: shown };
            }
            let next;
            let nextKey;
            if (isMap(node)) {
                const pair = node.items.find((p) => keyText(p.key) === String(seg));
                if (pair) {
                    next = pair.value;
                    nextKey = pair.key;
                }
            }
            else if (isSeq(node) && typeof seg === 'number') {
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
        if ((anchor === 'key' || isMap(node) || isSeq(node)) && keyNode)
            return at(offsetOf(keyNode));
        // An empty value (`region:`) has no text of its own: its key is where the user looks.
        const empty = isScalar(node) && node.value === null && (node.source ?? '') === '';
        if ((empty || node === null || node === undefined) && keyNode)
            return at(offsetOf(keyNode));
        return at(offsetOf(node) ?? offsetOf(keyNode));
    };
    return { source: { data, locate }, problems, syntaxError: doc.errors.length > 0, unusable };
}
