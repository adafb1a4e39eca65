// Retention: the store bounds its own size. Rounds (with their paths, benefit rows and events) go
// by age and by count; the outbox goes only by count, because an undelivered point is data the
// user has not seen anywhere else yet; dead letters go by age and count. Each delete is a short
// IMMEDIATE transaction that counts and deletes under the same lock, so two agents sharing a file
// never both trim the same excess.
import type Database from 'better-sqlite3';

/** How long and how much the store keeps. */
export interface RetentionOptions {
  /** rounds and dead letters older than this (by round start / failure time) are dropped */
  maxAgeMs: number;
  /** at most this many rounds (each with all its paths, benefit rows and events) */
  maxRows: number;
  /** at most this many undelivered InfluxDB lines in the outbox; default 1,000,000 */
  maxOutboxRows?: number;
  /** at most this many dead letters; default 10,000 */
  maxDeadLetters?: number;
}

export const DEFAULT_MAX_OUTBOX_ROWS = 1_000_000;
export const DEFAULT_MAX_DEAD_LETTERS = 10_000;

/** What one retention pass removed. */
export interface RetentionResult {
  roundsByAge: number;
  roundsByCount: number;
  /** undelivered lines dropped to respect maxOutboxRows: these never reach InfluxDB */
  outbox: number;
  deadLetters: number;
}

// Small chunks keep each write lock short: another agent's round commit waits at most one chunk.
const CHUNK = 500;

function repeat(db: Database.Database, step: () => number): number {
  let total = 0;
  for (;;) {
    const n = db.transaction(step).immediate();
    total += n;
    if (n < CHUNK) return total;
  }
}

export function applyRetention(db: Database.Database, r: RetentionOptions, now: number): RetentionResult {
  const cutoff = now - r.maxAgeMs;
  const maxOutbox = r.maxOutboxRows ?? DEFAULT_MAX_OUTBOX_ROWS;
  const maxDead = r.maxDeadLetters ?? DEFAULT_MAX_DEAD_LETTERS;

  const oldRounds = db.prepare('DELETE FROM rounds WHERE id IN (SELECT id FROM rounds WHERE started_at < ? LIMIT ?)');
  const countRounds = db.prepare('SELECT COUNT(*) AS n FROM rounds');
  const oldestRounds = db.prepare(
    'DELETE FROM rounds WHERE id IN (SELECT id FROM rounds ORDER BY started_at, id LIMIT ?)',
  );
  const countOutbox = db.prepare('SELECT COUNT(*) AS n FROM outbox');
  const oldestOutbox = db.prepare('DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)');
  const oldDead = db.prepare(
    'DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters WHERE failed_at < ? LIMIT ?)',
  );
  const countDead = db.prepare('SELECT COUNT(*) AS n FROM dead_letters');
  const oldestDead = db.prepare(
    'DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters ORDER BY id LIMIT ?)',
  );

  const overCap = (count: Database.Statement, cap: number, del: Database.Statement) => () => {
    const { n } = count.get() as { n: number };
    const excess = Math.min(n - cap, CHUNK);
    return excess > 0 ? del.run(excess).changes : 0;
  };

  return {
    roundsByAge: Number.isFinite(cutoff) ? repeat(db, () => oldRounds.run(cutoff, CHUNK).changes) : 0,
    roundsByCount: repeat(db, overCap(countRounds, r.maxRows, oldestRounds)),
    outbox: repeat(db, overCap(countOutbox, maxOutbox, oldestOutbox)),
    deadLetters:
      (Number.isFinite(cutoff) ? repeat(db, () => oldDead.run(cutoff, CHUNK).changes) : 0) +
      repeat(db, overCap(countDead, maxDead, oldestDead)),
  };
}

/** The log lines a pass deserves: one per kind of drop, naming the rule that forced it. */
export function describeRetention(res: RetentionResult, r: RetentionOptions): string[] {
  const lines: string[] = [];
  const days = (ms: number) => (ms % 86_400_000 === 0 ? `${ms / 86_400_000}d` : `${Math.round(ms / 3_600_000)}h`);
  if (res.roundsByAge > 0) {
    lines.push(
      `store: retention dropped ${res.roundsByAge} rounds older than ${days(r.maxAgeMs)} (with their paths, benefit rows and events)`,
    );
  }
  if (res.roundsByCount > 0) {
    lines.push(
      `store: retention dropped the ${res.roundsByCount} oldest rounds to keep at most ${r.maxRows} (with their paths, benefit rows and events)`,
    );
  }
  if (res.outbox > 0) {
    lines.push(
      `store: retention dropped ${res.outbox} undelivered InfluxDB lines, the oldest, to keep the outbox at most ` +
        `${r.maxOutboxRows ?? DEFAULT_MAX_OUTBOX_ROWS} lines; they will never reach InfluxDB (is InfluxDB reachable?)`,
    );
  }
  if (res.deadLetters > 0)
    lines.push(
      `store: retention dropped ${res.deadLetters} dead letters (older than ${days(r.maxAgeMs)} or over the cap)`,
    );
  return lines;
}
