// Command-line helpers shared by the commands that take options: node:util parseArgs errors turned
// into usage errors (exit 2), and the number parsers whose messages name the option.
import { UsageError } from '../util/errors.ts';

/** Runs a parseArgs call; its errors (unknown option, missing value) become UsageError naming the command. */
export function parseArgsOrUsage<T>(parse: () => T, command: string): T {
  try {
    return parse();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      const message = (err as Error).message;
      // parseArgs' own text for an unknown option runs on about positionals; the option is what matters.
      const unknown = /^Unknown option '([^']+)'/.exec(message);
      const what = unknown ? `unknown option ${unknown[1]}` : message.replace(/\.$/, '');
      throw new UsageError(`${command}: ${what} (see anylat ${command} --help)`);
    }
    throw err;
  }
}

/** A TCP/UDP port from an option's text; `allowZero` lets 0 mean "pick a free one". */
export function parsePort(text: string | undefined, option: string, fallback: number, allowZero = false): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  const min = allowZero ? 0 : 1;
  if (!/^\d+$/.test(text.trim()) || n < min || n > 65_535) {
    throw new UsageError(`${option}: expected a port number ${min}..65535, got "${text}"`);
  }
  return n;
}

/** A whole number ≥ `min` from an option's text. */
export function parseCount(text: string | undefined, option: string, fallback: number, min = 1): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text.trim()) || Number(text) < min)
    throw new UsageError(`${option}: expected a whole number ≥ ${min}, got "${text}"`);
  return Number(text);
}
