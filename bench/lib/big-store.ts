// A store the size of weeks of rounds, filled in seconds: the web dashboard's test and benchmark
// (test/web-worker.test.ts, bench/web.ts) need tens of thousands of rounds.
import Database from 'better-sqlite3';

/** the protocol/metric pairs a round of an agent probing every protocol compares, with their scope */
export const FILL_METRICS: Array<[string, string, string]> = [
  ['udp', 'rtt', 'end_to_end'],
  ['tcp', 'connect', 'edge'],
  ['tcp', 'rtt', 'end_to_end'],
  ['tls', 'handshake', 'end_to_end'],
  ['http', 'ttfb', 'end_to_end'],
  ['http', 'total', 'end_to_end'],
  ['http', 'warm', 'end_to_end'],
];

export interface FillOptions {
  rounds: number;
  agents: number;
  gapMs: number;
  /** epoch ms of the last round */
  now: number;
}

/**
 * `rounds` rounds of `agents` agents (agent-0, region-0, ...; service "web"), `gapMs` apart and the
 * last one at `now`, written with SQL into the file the store created: one transaction, seconds,
 * where saveRound would fsync each. Each round has a benefit row per FILL_METRICS entry, the anycast
 * path (its site moves every 50 rounds, with a site_change event, and every 7th round loses a
 * sample) and the unicast baseline; values vary from round to round so every median has work.
 */
export function fillStore(path: string, { rounds, agents, gapMs, now }: FillOptions): void {
  const db = new Database(path);
  const start = now - (rounds - 1) * gapMs;
  const metrics = FILL_METRICS.map(
    ([p, m, s], i) => `SELECT ${i} AS ord, '${p}' AS protocol, '${m}' AS metric, '${s}' AS scope`,
  ).join(' UNION ALL ');
  db.transaction(() => {
    db.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < @rounds - 1)
       INSERT INTO rounds (agent, agent_region, service, started_at, scheduled_at, duration_ms, saved_at)
       SELECT 'agent-' || (i % ${agents}), 'region-' || (i % ${agents}), 'web', @start + i * ${gapMs}, @start + i * ${gapMs}, 1200, @now FROM n`,
    ).run({ rounds, start, now });
    db.exec(
      `INSERT INTO benefit (round_id, ord, protocol, metric, scope, baseline, anycast_p50_ms, baseline_p50_ms, saved_ms, saved_pct,
                            ci_low_ms, ci_high_ms, win_rate, pairs)
       SELECT r.id, m.ord, m.protocol, m.metric, m.scope, 'us-east-1',
              10 + (r.id * 7919 % 997) / 100.0, 40 + (r.id * 104729 % 991) / 100.0, 30 + (r.id * 7907 % 983) / 100.0 - 10,
              (r.id * 31 % 100) * 1.0, 18 + (r.id % 89) / 10.0, 22 + (r.id % 97) / 10.0, (r.id % 101) / 100.0, 20
       FROM rounds r CROSS JOIN (${metrics}) m`,
    );
    // The anycast path (its site moves every 50 rounds) and the unicast baseline, per metric.
    db.exec(
      `INSERT INTO paths (round_id, ord, endpoint, kind, address, protocol, metric, scope, site, sent, received, loss_pct, p50_ms, flagged)
       SELECT r.id, 2 * m.ord, 'anycast', 'anycast', '198.18.0.10', m.protocol, m.metric, m.scope,
              CASE WHEN (r.id / 50) % 2 = 0 THEN 'edge-a' ELSE 'edge-b' END, 20, 20 - (r.id % 7 = 0), (r.id % 7 = 0) * 5.0,
              10 + (r.id * 7919 % 997) / 100.0, 0
       FROM rounds r CROSS JOIN (${metrics}) m`,
    );
    db.exec(
      `INSERT INTO paths (round_id, ord, endpoint, kind, address, protocol, metric, scope, site, sent, received, loss_pct, p50_ms, flagged)
       SELECT r.id, 2 * m.ord + 1, 'us-east-1', 'unicast', '10.0.0.1', m.protocol, m.metric, m.scope, 'us-east-1', 20, 20, 0,
              40 + (r.id * 104729 % 991) / 100.0, 0
       FROM rounds r CROSS JOIN (${metrics}) m`,
    );
    db.exec(
      `INSERT INTO events (round_id, agent, service, type, message, from_value, to_value, at)
       SELECT r.id, r.agent, r.service, 'site_change', 'anycast site changed',
              CASE WHEN (r.id / 50) % 2 = 0 THEN 'edge-b' ELSE 'edge-a' END, CASE WHEN (r.id / 50) % 2 = 0 THEN 'edge-a' ELSE 'edge-b' END, r.started_at
       FROM rounds r WHERE r.id % 50 = 0`,
    );
  })();
  db.close();
}
