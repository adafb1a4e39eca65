// Metrics an agent measured without a single benefit row, and whether the lag flags are why:
// "all 10 samples flagged for timing" in `anylat report` and on the page instead of "no rounds".
import type Database from 'better-sqlite3';
import { PROTOCOL_METRICS, PROTOCOLS, type Metric, type Protocol } from '../core/model.ts';
import { roundFilter, type ReportQuery } from './queries.ts';

/**
 * A protocol and metric an agent measured in the window without a single benefit row: each round
 * lost every pair, and this says whether the lag flags (samples timed while the agent's event loop
 * was held up, kept out of the statistics) are why.
 */
export interface TimingGap {
  agent: string;
  service: string;
  protocol: Protocol;
  metric: Metric;
  /** rounds in the window that measured this metric */
  rounds: number;
  /** samples that came back, per side, and how many of them were flagged */
  anycast: { received: number; flagged: number };
  unicast: { received: number; flagged: number };
  /** for humans: "all 10 samples flagged for timing"; undefined when flags are not the reason */
  note?: string;
}

/** What a `TimingGap` says in words, or undefined when flags are not why there is no pair. */
export function timingNote(gap: Pick<TimingGap, 'anycast' | 'unicast'>): string | undefined {
  const { anycast: a, unicast: u } = gap;
  const received = a.received + u.received;
  const flagged = a.flagged + u.flagged;
  if (flagged === 0) return undefined;
  if (flagged === received) return `all ${received} samples flagged for timing`;
  if (a.received > 0 && a.flagged === a.received) return `all ${a.received} anycast samples flagged for timing`;
  if (u.received > 0 && u.flagged === u.received) return `all ${u.received} unicast samples flagged for timing`;
  return `${flagged} of ${received} samples flagged for timing, no pair left`;
}

/**
 * Every (agent, service, protocol, metric) with rounds in the window but no benefit row, with its
 * samples and flags per side. `protocol`/`metric` narrow it to one metric (the page asks that way).
 */
export function timingGaps(
  db: Database.Database,
  query: ReportQuery & { protocol?: Protocol; metric?: Metric },
): TimingGap[] {
  const { where, params } = roundFilter(query, 'p');
  const rows = db
    .prepare(
      `SELECT r.agent, r.service, p.protocol, p.metric, COUNT(DISTINCT r.id) AS rounds,
              SUM(CASE WHEN p.kind = 'anycast' THEN p.received ELSE 0 END) AS a_received,
              SUM(CASE WHEN p.kind = 'anycast' THEN p.flagged ELSE 0 END) AS a_flagged,
              SUM(CASE WHEN p.kind = 'unicast' THEN p.received ELSE 0 END) AS u_received,
              SUM(CASE WHEN p.kind = 'unicast' THEN p.flagged ELSE 0 END) AS u_flagged
       FROM paths p JOIN rounds r ON r.id = p.round_id ${where}
       GROUP BY r.agent, r.service, p.protocol, p.metric`,
    )
    .all(params) as Array<{
    agent: string;
    service: string;
    protocol: Protocol;
    metric: Metric;
    rounds: number;
    a_received: number;
    a_flagged: number;
    u_received: number;
    u_flagged: number;
  }>;
  const b = roundFilter(query, 'b');
  const withBenefit = new Set(
    (
      db
        .prepare(
          `SELECT DISTINCT r.agent, r.service, b.protocol, b.metric FROM benefit b JOIN rounds r ON r.id = b.round_id ${b.where}`,
        )
        .all(b.params) as Array<{ agent: string; service: string; protocol: string; metric: string }>
    ).map((k) => JSON.stringify([k.agent, k.service, k.protocol, k.metric])),
  );
  const out: TimingGap[] = [];
  for (const r of rows) {
    if (withBenefit.has(JSON.stringify([r.agent, r.service, r.protocol, r.metric]))) continue;
    const gap: TimingGap = {
      agent: r.agent,
      service: r.service,
      protocol: r.protocol,
      metric: r.metric,
      rounds: r.rounds,
      anycast: { received: r.a_received, flagged: r.a_flagged },
      unicast: { received: r.u_received, flagged: r.u_flagged },
    };
    const note = timingNote(gap);
    if (note !== undefined) gap.note = note;
    out.push(gap);
  }
  return out.sort(
    (a, b) =>
      a.service.localeCompare(b.service) ||
      a.agent.localeCompare(b.agent) ||
      PROTOCOLS.indexOf(a.protocol) - PROTOCOLS.indexOf(b.protocol) ||
      PROTOCOL_METRICS[a.protocol].indexOf(a.metric) - PROTOCOL_METRICS[b.protocol].indexOf(b.metric),
  );
}
