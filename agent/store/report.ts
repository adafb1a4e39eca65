// The benefit table over a time window: per agent, service, protocol, metric and scope, the
// median of the rounds' medians and the mean of their win rates. These are the numbers a Grafana
// panel shows with InfluxQL `median("saved_ms")` / `mean("win_rate")` over the same window,
// because each round writes exactly one `benefit` point per (protocol, metric).
import type Database from 'better-sqlite3';
import { PROTOCOL_METRICS, PROTOCOLS, type Metric, type Protocol, type Scope } from '../core/model.ts';
import { reportOrder, roundFilter, type ReportQuery, type ReportRow } from './queries.ts';

/** Median as InfluxQL computes it: the middle value, or the mean of the two middle values. */
export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function mean(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  return values.reduce((a, b) => a + b, 0) / values.length;
}

interface Row {
  started_at: number;
  agent: string;
  agent_region: string;
  service: string;
  protocol: Protocol;
  metric: Metric;
  scope: Scope;
  size: string | null;
  baseline: string;
  anycast_p50_ms: number | null;
  baseline_p50_ms: number | null;
  saved_ms: number | null;
  saved_pct: number | null;
  ci_low_ms: number | null;
  ci_high_ms: number | null;
  win_rate: number | null;
  pairs: number;
}

const NUMERIC = ['anycast_p50_ms', 'baseline_p50_ms', 'saved_ms', 'saved_pct', 'ci_low_ms', 'ci_high_ms'] as const;

function order(r: ReportRow): [string, string, number, number, number, number] {
  return reportOrder(r);
}

function compare(a: ReportRow, b: ReportRow): number {
  const x = order(a);
  const y = order(b);
  for (let i = 0; i < x.length; i++) {
    if (x[i]! < y[i]!) return -1;
    if (x[i]! > y[i]!) return 1;
  }
  return 0;
}

export function benefitReport(db: Database.Database, query: ReportQuery): ReportRow[] {
  const { where, params } = roundFilter(query);
  const rows = db
    .prepare(
      `SELECT r.started_at, r.agent, r.agent_region, r.service, b.protocol, b.metric, b.scope, b.size, b.baseline,
              b.anycast_p50_ms, b.baseline_p50_ms, b.saved_ms, b.saved_pct, b.ci_low_ms, b.ci_high_ms, b.win_rate, b.pairs
       FROM benefit b JOIN rounds r ON r.id = b.round_id ${where}
       ORDER BY r.started_at, r.id, b.ord`,
    )
    .all(params) as Row[];

  const groups = new Map<string, Row[]>();
  for (const row of rows) {
    const key = JSON.stringify([row.agent, row.service, row.protocol, row.metric, row.scope, row.size]);
    const list = groups.get(key);
    if (list) list.push(row);
    else groups.set(key, [row]);
  }

  const out: ReportRow[] = [];
  for (const list of groups.values()) {
    const first = list[0]!;
    const last = list[list.length - 1]!;
    const baselines: Record<string, number> = {};
    for (const r of list) baselines[r.baseline] = (baselines[r.baseline] ?? 0) + 1;
    const report: ReportRow = {
      // The newest round names the region: an agent that moved shows where it is now.
      agent: first.agent,
      agent_region: last.agent_region,
      service: first.service,
      protocol: first.protocol,
      metric: first.metric,
      scope: first.scope,
      ...(first.size !== null ? { size: first.size } : {}),
      rounds: list.length,
      first_round_at: new Date(first.started_at).toISOString(),
      last_round_at: new Date(last.started_at).toISOString(),
      pairs: list.reduce((a, r) => a + r.pairs, 0),
      baselines,
    };
    for (const k of NUMERIC) {
      const m = median(list.map((r) => r[k]).filter((v): v is number => v !== null));
      if (m !== undefined) report[k] = m;
    }
    const w = mean(list.map((r) => r.win_rate).filter((v): v is number => v !== null));
    if (w !== undefined) report.win_rate = w;
    out.push(report);
  }
  return out.sort(compare);
}

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
export function timingGaps(db: Database.Database, query: ReportQuery & { protocol?: Protocol; metric?: Metric }): TimingGap[] {
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
    (db.prepare(`SELECT DISTINCT r.agent, r.service, b.protocol, b.metric FROM benefit b JOIN rounds r ON r.id = b.round_id ${b.where}`).all(b.params) as Array<{ agent: string; service: string; protocol: string; metric: string }>).map(
      (k) => JSON.stringify([k.agent, k.service, k.protocol, k.metric]),
    ),
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
  return out.sort((a, b) => a.service.localeCompare(b.service) || a.agent.localeCompare(b.agent) || PROTOCOLS.indexOf(a.protocol) - PROTOCOLS.indexOf(b.protocol) || PROTOCOL_METRICS[a.protocol].indexOf(a.metric) - PROTOCOL_METRICS[b.protocol].indexOf(b.metric));
}
