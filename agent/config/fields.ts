// Leaf validators: each reads one YAML value and either returns the typed value or says, in one
// phrase, what was expected and what it got. zod carries them through the document's structure;
// the wording is ours so every message reads `expected ..., got ...`.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { parseDuration } from '../util/duration.ts';
import { validateCron } from '../schedule/timing.ts';
import { errorMessage } from '../util/errors.ts';

/** A validator's verdict on a value it could read but not accept, with its own wording. */
export class Rejection {
  constructor(readonly message: string) {}
}

/** How a value looks in a message: strings quoted, collections named, long text cut. */
export function show(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

/**
 * A required leaf: `check` returns the typed value, a Rejection with its own message, or undefined
 * for "expected <expected>, got <value>". An absent or empty value is reported as required.
 */
export function leaf<T>(expected: string, check: (v: unknown) => T | Rejection | undefined) {
  return z.unknown().transform((v, ctx): T => {
    if (v === undefined || v === null) {
      ctx.addIssue({ code: 'custom', message: `required: expected ${expected}` });
      return z.NEVER;
    }
    const r = check(v);
    if (r === undefined || r instanceof Rejection) {
      ctx.addIssue({
        code: 'custom',
        message: r instanceof Rejection ? r.message : `expected ${expected}, got ${show(v)}`,
      });
      return z.NEVER;
    }
    return r;
  });
}

/** An optional leaf: absent or empty (`key:` with nothing after it) is undefined. */
export function optional<S extends z.ZodType>(schema: S) {
  return z.preprocess((v) => (v === null ? undefined : v), schema.optional());
}

const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const IPV4ISH = /^[0-9.]+$/;

/** A DNS host name (RFC 1123 labels; `_` tolerated for internal names), not a malformed IPv4. */
export function isHostName(s: string): boolean {
  const name = s.endsWith('.') ? s.slice(0, -1) : s;
  if (name.length === 0 || name.length > 253 || IPV4ISH.test(name)) return false;
  return name.split('.').every((label) => LABEL.test(label.replace(/_/g, 'a')));
}

/** An IP literal or a host name. */
export const address = leaf('an IP address or host name', (v) => {
  if (typeof v !== 'string') return undefined;
  if (isIP(v) !== 0 || isHostName(v)) return v;
  if (IPV4ISH.test(v))
    return new Rejection(`expected an IP address or host name, got ${show(v)} (not a valid IPv4 address)`);
  return undefined;
});

/** A host name only (TLS server name). */
export const hostName = leaf('a host name', (v) => (typeof v === 'string' && isHostName(v) ? v : undefined));

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** A name that becomes a tag value: letters, digits, `-`, `_`, `.`, at most 63 characters. */
export function name(what: string) {
  return leaf(`${what} (letters, digits, "-", "_", "."; at most 63 characters)`, (v) =>
    typeof v === 'string' && NAME.test(v) ? v : undefined,
  );
}

/** Tests `name`'s rule for map keys (unicast endpoint names), which zod sees as record keys. */
export function isName(s: string): boolean {
  return NAME.test(s);
}

/** A duration with a unit (`50ms`, `2s`, `1m`); a bare number is refused because its unit is a guess. */
export const duration = leaf('a duration like 50ms, 2s, 5m, 1h or 7d', (v) => {
  if (numeric(v) !== undefined)
    return new Rejection(`expected a duration with a unit like 50ms, 2s, 5m, 1h or 7d, got ${show(v)} (which unit?)`);
  if (typeof v !== 'string') return undefined;
  try {
    const ms = parseDuration(v, '');
    return ms > 0 ? ms : new Rejection(`expected a duration greater than zero, got ${show(v)}`);
  } catch {
    return undefined;
  }
});

/** A number, or text that is one (what `${VAR}` substitution produces). */
function numeric(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^\s*[-+]?\d+(\.\d+)?\s*$/.test(v)) return Number(v);
  return undefined;
}

/** A whole number in [min, max]. */
export function integer(min: number, max: number, what = 'a whole number') {
  return leaf(`${what} from ${min} to ${max}`, (v) => {
    const n = numeric(v);
    return n !== undefined && Number.isInteger(n) && n >= min && n <= max ? n : undefined;
  });
}

/** A number in [min, max]. */
export function number(min: number, max: number, what: string) {
  return leaf(`${what} from ${min} to ${max}`, (v) => {
    const n = numeric(v);
    return n !== undefined && Number.isFinite(n) && n >= min && n <= max ? n : undefined;
  });
}

export const port = integer(1, 65_535, 'a port number');

export const bool = leaf('true or false', (v) => {
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  return undefined;
});

/** A string from a fixed set; `anyCase`: in any case, read as the set writes it (DNS record types). */
export function oneOf<T extends string>(values: readonly T[], anyCase = false) {
  return leaf(`one of ${values.map((v) => `"${v}"`).join(', ')}`, (v) =>
    typeof v !== 'string'
      ? undefined
      : (values.find((x) => x === v || (anyCase && x.toLowerCase() === v.toLowerCase())) as T | undefined),
  );
}

const CRON_FIELDS = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day-of-week', min: 0, max: 7 },
] as const;

/**
 * A step that leaves its field's range (`*\/70` minutes) matches only the first value: node-cron
 * accepts it and the service runs hourly, not every 70 minutes as written.
 */
function cronStepProblem(expression: string): string | undefined {
  const parts = expression.trim().split(/\s+/);
  const fields = parts.length === 6 ? CRON_FIELDS : CRON_FIELDS.slice(1);
  for (const [i, part] of parts.entries()) {
    const field = fields[i];
    if (!field) break;
    for (const item of part.split(',')) {
      const m = /^(\*|\d+(?:-\d+)?)\/(\d+)$/.exec(item);
      if (!m) continue;
      const step = Number(m[2]);
      const span = field.max - field.min;
      if (step > span) {
        const first = m[1] === '*' ? field.min : Number(m[1]!.split('-')[0]);
        return `"${item}" in the ${field.name} field steps past its range (${field.min}-${field.max}): it matches only ${field.name} ${first}, not every ${step} ${field.name}s; use a step of at most ${span}`;
      }
    }
  }
  return undefined;
}

/** A cron expression node-cron accepts: 5 fields, or 6 with seconds first. */
export const cron = leaf('a cron expression (5 fields, or 6 with seconds first)', (v) => {
  if (typeof v !== 'string') return undefined;
  const problem = validateCron(v) ?? cronStepProblem(v);
  return problem === undefined
    ? v.trim()
    : new Rejection(`expected a cron expression (5 fields, or 6 with seconds first), got ${show(v)}: ${problem}`);
});

/** An http:// or https:// URL. */
export const httpUrl = leaf('an http:// or https:// URL', (v) => {
  if (typeof v !== 'string') return undefined;
  try {
    const u = new URL(v);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' ? v.trim() : undefined;
  } catch {
    return undefined;
  }
});

/** A non-empty string. */
export function text(what: string) {
  return leaf(what, (v) => (typeof v === 'string' && v.trim() !== '' ? v : undefined));
}

/** A secret: never echoed back in a message. */
export const secretText = z.unknown().transform((v, ctx): string => {
  if (typeof v !== 'string' || v.trim() === '') {
    ctx.addIssue({
      code: 'custom',
      message: `expected a non-empty token${typeof v === 'string' ? '' : ` (a string, got ${v === null || v === undefined ? 'nothing' : typeof v === 'object' ? 'a mapping or list' : `a ${typeof v}`})`}`,
    });
    return z.NEVER;
  }
  return v;
});

const HEADER = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** An HTTP header name. */
export const headerName = leaf('an HTTP header name', (v) =>
  typeof v === 'string' && HEADER.test(v) ? v.toLowerCase() : undefined,
);

/** A file read when the config is loaded, its path relative to the config file's directory. */
export function fileContents<T>(baseDir: string, what: string, parse: (contents: Buffer, path: string) => T) {
  return leaf(`the path of ${what}`, (v) => {
    if (typeof v !== 'string' || v.trim() === '') return undefined;
    const path = isAbsolute(v) ? v : resolve(baseDir, v);
    let contents: Buffer;
    try {
      contents = readFileSync(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      const why =
        code === 'ENOENT'
          ? 'no such file'
          : code === 'EACCES'
            ? 'permission denied'
            : code === 'EISDIR'
              ? 'a directory'
              : code;
      return new Rejection(`cannot read ${what} "${path}": ${why}`);
    }
    try {
      return parse(contents, path);
    } catch (err) {
      return new Rejection(errorMessage(err));
    }
  });
}

/** A path kept as a path (the store), made absolute against the config file's directory. */
export function filePath(baseDir: string) {
  return leaf('a file path', (v) =>
    typeof v === 'string' && v.trim() !== '' ? (isAbsolute(v) ? v : resolve(baseDir, v)) : undefined,
  );
}

/** `host:port`, `[v6]:port`, or a bare port (loopback). */
export const listen = leaf(
  'host:port (e.g. 127.0.0.1:8080) or a port',
  (v): { host: string; port: number } | undefined => {
    const asPort = (s: string) => (/^\d+$/.test(s) && Number(s) >= 1 && Number(s) <= 65_535 ? Number(s) : undefined);
    if (typeof v === 'number')
      return Number.isInteger(v) && v >= 1 && v <= 65_535 ? { host: '127.0.0.1', port: v } : undefined;
    if (typeof v !== 'string') return undefined;
    const m =
      /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(v.trim()) ??
      (asPort(v.trim()) !== undefined ? ['', undefined, '', v.trim()] : null);
    if (!m) return undefined;
    const host = m[1] ?? (m[2] === '' || m[2] === undefined ? '127.0.0.1' : m[2]);
    const p = asPort(m[3]!);
    if (p === undefined) return undefined;
    if (m[1] !== undefined && isIP(host) !== 6) return undefined;
    if (isIP(host) === 0 && !isHostName(host)) return undefined;
    return { host, port: p };
  },
);
