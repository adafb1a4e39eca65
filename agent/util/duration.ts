import { UsageError } from './errors.ts';

const UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses `50ms`, `2s`, `1.5m`, `1h`, `7d` (a bare number is milliseconds) into milliseconds.
 * `what` names the option or config path in the error.
 */
export function parseDuration(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) {
    throw new UsageError(`${what}: expected a duration like 50ms, 2s, 5m, 1h or 7d, got "${text}"`);
  }
  return Number(m[1]) * UNITS[m[2] ?? 'ms']!;
}

/** Formats milliseconds the way parseDuration reads them, choosing the largest exact unit. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNITS[unit]!;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A latency in a table cell: "2.35 ms" under 10 ms, "23.5 ms" above, "-" for none; `signed` puts "+" on a gain. */
export function msCell(v: number | null | undefined, signed = false): string {
  if (v === null || v === undefined) return '-';
  const text = `${v.toFixed(Math.abs(v) < 10 ? 2 : 1)} ms`;
  return signed && v > 0 ? `+${text}` : text;
}
