// The benefit table over a time window: per agent, service, protocol, metric and scope, the
// median of the rounds' medians and the mean of their win rates. These are the numbers a Grafana
// panel shows with InfluxQL `median("saved_ms")` / `mean("win_rate")` over the same window,
// because each round writes exactly one `benefit` point per (protocol, metric).
import type Database from 'better-sqlite3';
import { PROTOCOL_METRICS, PROTOCOLS, type Metric, type Protocol, type Scope } from '../model.ts';
import { reportOrder, roundFilter } from './queries.ts';

export interface ReportQuery {
  /** epoch ms; rounds that started at or after it */
  since: number;
  /** epoch ms; rounds that started before it (default: no bound) */
  until?: number;
  service?: string;
  agent?: string;
}

/** One line of the benefit table. */
export interface ReportRow {
  agent: string;
  agent_region: string;
  service: string;
  protocol: Protocol;
  metric: Metric;
  scope: Scope;
  /** transfer only: the object size */
  size?: string;
  /** rounds with a benefit row for this key in the window */
  rounds: number;
  first_round_at: string;
  last_round_at: string;
  /** medians over rounds of each round's value (absent when no round had one) */
  anycast_p50_ms?: number;
  baseline_p50_ms?: number;
  saved_ms?: number;
  saved_pct?: number;
  /** medians over rounds of each round's CI bounds: a typical round's interval, not a CI of the window */
  ci_low_ms?: number;
  ci_high_ms?: number;
  /** mean over rounds of each round's win rate (share of pairs where anycast was faster) */
  win_rate?: number;
  /** pairs over all rounds */
  pairs: number;
  /** baseline endpoint name -> rounds that compared against it */
  baselines: Record<string, number>;
}

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
