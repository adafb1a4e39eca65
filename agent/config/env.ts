// `${VAR}` and `${VAR:-default}` in config values. Substitution happens on parsed scalars, never on
// the raw text, so an environment variable can never inject YAML structure and every problem keeps
// the line of the value it came from.

/** The outcome of interpolating one string: the new text, or what is wrong with it. */
export type Interpolation = { ok: true; value: string; changed: boolean } | { ok: false; message: string };

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Replaces `${VAR}` (an error when VAR is unset) and `${VAR:-default}` (default when VAR is unset
 * or empty) in `text`; `$${` is a literal `${`. A `$` not followed by `{` is left alone.
 */
export function interpolate(text: string, env: NodeJS.ProcessEnv): Interpolation {
  if (!text.includes('${')) return { ok: true, value: text, changed: false };
  let out = '';
  let i = 0;
  while (i < text.length) {
    const start = text.indexOf('$', i);
    if (start < 0) {
      out += text.slice(i);
      break;
    }
    out += text.slice(i, start);
    if (text.startsWith('$${', start)) {
      out += '${';
      i = start + 3;
      continue;
    }
    if (text[start + 1] !== '{') {
      out += '$';
      i = start + 1;
      continue;
    }
    const end = text.indexOf('}', start + 2);
    if (end < 0) {
      return {
        ok: false,
        message: `unterminated "\${" in "${text}"; write \${NAME} or \${NAME:-default}, or $\${ for a literal "\${"`,
      };
    }
    const body = text.slice(start + 2, end);
    const sep = body.indexOf(':-');
    const name = sep < 0 ? body : body.slice(0, sep);
    if (!NAME.test(name)) {
      return {
        ok: false,
        message: `"\${${body}}" is not a variable reference; write \${NAME} or \${NAME:-default} (NAME: letters, digits, _)`,
      };
    }
    const value = env[name];
    if (sep >= 0) {
      out += value === undefined || value === '' ? body.slice(sep + 2) : value;
    } else if (value === undefined) {
      return {
        ok: false,
        message: `environment variable ${name} is not set; set it, or give a default with \${${name}:-value}`,
      };
    } else {
      out += value;
    }
    i = end + 1;
  }
  return { ok: true, value: out, changed: true };
}
