// The benefit table computed the slow, obvious way, in JavaScript over every benefit row, as the
// tests' reference for the store's one read path (benefitSummary, SQL), which `anylat report` and
// the web page both use: per agent, service, protocol, metric and scope, the median of the rounds'
// medians and the mean of their win rates, the numbers a Grafana panel shows with InfluxQL
// `median("saved_ms")` / `mean("win_rate")` over the same window.
import type Database from 'better-sqlite3';
import { median } from '../../agent/util/median.ts';
import {
  mean,
  reportOrder,
  roundFilter,
  type BenefitPoint,
  type ReportQuery,
  type ReportRow,
} from '../../agent/store/queries.ts';

/** A benefit row as the store keeps it, with its round's start. */
type Row = Omit<BenefitPoint, 't'> & { started_at: number; size: string | null };

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
