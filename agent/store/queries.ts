// Read-only queries for the embedded web dashboard. Each returns flat rows, oldest first unless
// said otherwise, with `t` in milliseconds since the epoch (the round's start), ready to be
// split into chart series by the caller.
import type Database from 'better-sqlite3';
import {
  PROTOCOL_METRICS,
  PROTOCOLS,
  type EndpointKind,
  type EventType,
  type Metric,
  type Protocol,
  type Scope,
  type TraceHop,
} from '../core/model.ts';
import { median } from '../util/median.ts';

export function mean(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** The benefit table's window and filters (`anylat report`, the page's summary). */
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

/** Time window and optional filters shared by the series queries. `since`/`until` are epoch ms. */
export interface SeriesQuery {
  since: number;
  until?: number;
  service?: string;
  agent?: string;
  protocol?: Protocol;
  metric?: Metric;
  scope?: Scope;
  /** a transfer size tag (`2MiB`): only rows of that size */
  size?: string;
}

export interface BenefitPoint {
  t: number;
  agent: string;
  agent_region: string;
  service: string;
  protocol: Protocol;
  metric: Metric;
  scope: Scope;
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

export interface LossPoint {
  t: number;
  agent: string;
  agent_region: string;
  service: string;
  endpoint: string;
  kind: EndpointKind;
  protocol: Protocol;
  /** the worst loss over the path's metrics in that round */
  loss_pct: number | null;
  sent: number;
  received: number;
}

export interface EventRow {
  t: number;
  agent: string;
  agent_region: string;
  service: string;
  type: EventType;
  message: string;
  from: string | null;
  to: string | null;
}

export interface AgentHealth {
  agent: string;
  agent_region: string;
  /** when the last heartbeat was taken (epoch ms) and how long ago */
  t: number;
  age_s: number;
  version?: string;
  uptime_s?: number;
  loop_lag_p99_ms?: number;
  rounds_late?: number;
  rounds_skipped?: number;
  rounds_failed?: number;
  outbox_rows?: number;
  dead_letters?: number;
  dropped_rows?: number;
  /** start of the agent's newest round in the store, if any */
  last_round_t: number | null;
}

export interface ServiceSummary {
  service: string;
  agent: string;
  agent_region: string;
  rounds: number;
  first_t: number;
  last_t: number;
}

/** WHERE clause over `rounds r` (and `alias` for protocol/metric/scope when given). */
export function roundFilter(
  query: Partial<SeriesQuery>,
  alias?: string,
): { where: string; params: Record<string, string | number> } {
  const parts: string[] = [];
  const params: Record<string, string | number> = {};
  if (query.since !== undefined) {
    parts.push('r.started_at >= @since');
    params.since = query.since;
  }
  if (query.until !== undefined) {
    parts.push('r.started_at < @until');
    params.until = query.until;
  }
  if (query.service !== undefined) {
    parts.push('r.service = @service');
    params.service = query.service;
  }
  if (query.agent !== undefined) {
    parts.push('r.agent = @agent');
    params.agent = query.agent;
  }
  if (alias !== undefined) {
    for (const k of ['protocol', 'metric', 'scope', 'size'] as const) {
      const v = query[k];
      if (v !== undefined) {
        parts.push(`${alias}.${k} = @${k}`);
        params[k] = v;
      }
    }
  }
  return { where: parts.length === 0 ? '' : `WHERE ${parts.join(' AND ')}`, params };
}

export function benefitSeries(db: Database.Database, query: SeriesQuery): BenefitPoint[] {
  const { where, params } = roundFilter(query, 'b');
  return db
    .prepare(
      `SELECT r.started_at AS t, r.agent, r.agent_region, r.service, b.protocol, b.metric, b.scope, b.baseline,
              b.anycast_p50_ms, b.baseline_p50_ms, b.saved_ms, b.saved_pct, b.ci_low_ms, b.ci_high_ms, b.win_rate, b.pairs
       FROM benefit b JOIN rounds r ON r.id = b.round_id ${where}
       ORDER BY r.started_at, r.id, b.ord`,
    )
    .all(params) as BenefitPoint[];
}

export function lossSeries(db: Database.Database, query: SeriesQuery): LossPoint[] {
  const { where, params } = roundFilter({ ...query, metric: undefined, scope: undefined }, 'p');
  return db
    .prepare(
      `SELECT r.started_at AS t, r.agent, r.agent_region, r.service, p.endpoint, p.kind, p.protocol,
              MAX(p.loss_pct) AS loss_pct, MAX(p.sent) AS sent, MIN(p.received) AS received
       FROM paths p JOIN rounds r ON r.id = p.round_id ${where}
       GROUP BY r.id, p.endpoint, p.protocol
       ORDER BY r.started_at, r.id, MIN(p.ord)`,
    )
    .all(params) as LossPoint[];
}

/** Newest first. */
export function events(db: Database.Database, query: SeriesQuery & { limit?: number }): EventRow[] {
  const { where, params } = roundFilter({
    since: query.since,
    until: query.until,
    service: query.service,
    agent: query.agent,
  });
  return db
    .prepare(
      `SELECT e.at AS t, e.agent, r.agent_region, e.service, e.type, e.message, e.from_value AS "from", e.to_value AS "to"
       FROM events e JOIN rounds r ON r.id = e.round_id ${where}
       ORDER BY e.at DESC, e.id DESC LIMIT @limit`,
    )
    .all({ ...params, limit: query.limit ?? 1000 }) as EventRow[];
}

/** One stored trace: the event's time, why, which path, and its hops. */
export interface TraceRow {
  t: number;
  agent: string;
  agent_region: string;
  service: string;
  trigger: string;
  reason: string;
  endpoint: string;
  kind: string;
  address: string;
  reached: boolean;
  duration_ms: number;
  hops: TraceHop[];
}

/** Newest first; [] on a file without the traces table (a read-only handle on an older store). */
export function traces(db: Database.Database, query: SeriesQuery & { limit?: number }): TraceRow[] {
  if (db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'traces'`).get() === undefined) return [];
  const { where, params } = roundFilter({
    since: query.since,
    until: query.until,
    service: query.service,
    agent: query.agent,
  });
  const rows = db
    .prepare(
      `SELECT x.at AS t, x.agent, r.agent_region, x.service, x.trigger, x.reason, x.endpoint, x.kind, x.address,
              x.reached, x.duration_ms, x.hops
       FROM traces x JOIN rounds r ON r.id = x.round_id ${where}
       ORDER BY x.at DESC, x.id DESC LIMIT @limit`,
    )
    .all({ ...params, limit: query.limit ?? 100 }) as Array<
    Omit<TraceRow, 'reached' | 'hops'> & { reached: number; hops: string }
  >;
  return rows.map((r) => ({ ...r, reached: r.reached === 1, hops: JSON.parse(r.hops) as TraceHop[] }));
}

/**
 * True when the file keeps round totals (`round_groups`, schema 2). A read-only handle on a file an
 * older agent still writes has not been migrated: the queries below then count the rounds instead.
 */
export function hasRoundGroups(db: Database.Database): boolean {
  return db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'round_groups'`).get() !== undefined;
}

export function agentHealth(db: Database.Database, now: number, groups = true): AgentHealth[] {
  const lastRound = groups
    ? '(SELECT MAX(last_t) FROM round_groups g WHERE g.agent = h.agent)'
    : '(SELECT MAX(started_at) FROM rounds r WHERE r.agent = h.agent)';
  const rows = db
    .prepare(
      `SELECT h.agent, h.agent_region, h.at, h.body, ${lastRound} AS last_round_t FROM heartbeats h ORDER BY h.agent`,
    )
    .all() as Array<{ agent: string; agent_region: string; at: number; body: string; last_round_t: number | null }>;
  return rows.map((r) => {
    const hb = JSON.parse(r.body) as Record<string, unknown>;
    const out: AgentHealth = {
      agent: r.agent,
      agent_region: r.agent_region,
      t: r.at,
      age_s: Math.max(0, (now - r.at) / 1000),
      last_round_t: r.last_round_t,
    };
    for (const k of [
      'uptime_s',
      'loop_lag_p99_ms',
      'rounds_late',
      'rounds_skipped',
      'rounds_failed',
      'outbox_rows',
      'dead_letters',
      'dropped_rows',
    ] as const) {
      if (typeof hb[k] === 'number') out[k] = hb[k];
    }
    if (typeof hb.version === 'string') out.version = hb.version;
    return out;
  });
}

export function services(db: Database.Database, groups = true): ServiceSummary[] {
  const sql = groups
    ? 'SELECT service, agent, agent_region, rounds, first_t, last_t FROM round_groups ORDER BY service, agent, agent_region'
    : `SELECT service, agent, agent_region, COUNT(*) AS rounds, MIN(started_at) AS first_t, MAX(started_at) AS last_t
       FROM rounds GROUP BY service, agent, agent_region ORDER BY service, agent, agent_region`;
  return db.prepare(sql).all() as ServiceSummary[];
}

// ---------------------------------------------------------------- the dashboard's aggregates
// A dashboard window can hold tens of thousands of rounds. Turning each row into a JS object costs
// several times SQLite's whole scan, so these aggregate in SQL, hand value lists over as JSON
// arrays (json_group_array writes every double exactly) or read rows as plain arrays.

const SUMMARY_NUMERIC = [
  'anycast_p50_ms',
  'baseline_p50_ms',
  'saved_ms',
  'saved_pct',
  'ci_low_ms',
  'ci_high_ms',
] as const;

/** Bytes of a size tag as the transfer probe writes it (`16KiB`, `2MiB`, `500B`): smaller sizes first. */
function labelBytes(label: string): number {
  const m = /^(\d+)(B|KiB|MiB)$/.exec(label);
  return m ? Number(m[1]) * (m[2] === 'MiB' ? 1024 * 1024 : m[2] === 'KiB' ? 1024 : 1) : 0;
}

/** Sort key of a report row; report.ts and the web's SQL twin (queries.ts) share it. */
export function reportOrder(r: ReportRow): [string, string, number, number, number, number] {
  return [
    r.service,
    r.agent,
    r.scope === 'end_to_end' ? 0 : 1,
    PROTOCOLS.indexOf(r.protocol),
    PROTOCOL_METRICS[r.protocol].indexOf(r.metric),
    r.size === undefined ? 0 : labelBytes(r.size),
  ];
}

function summaryOrder(r: ReportRow): [string, string, number, number, number, number] {
  return reportOrder(r);
}

const SUMMARY_KEY = 'r.agent, r.service, b.protocol, b.metric, b.scope, b.size';

/** One row of the benefit table before its figures: who, what, which size. */
type SummaryGroup = {
  agent: string;
  service: string;
  protocol: Protocol;
  metric: Metric;
  scope: Scope;
  size: string | null;
};

function summaryKeyOf(g: SummaryGroup): string {
  return `${g.agent}\u0000${g.service}\u0000${g.protocol}\u0000${g.metric}\u0000${g.scope}\u0000${g.size ?? ''}`;
}

/**
 * Per row of the benefit table: its baselines in the order they first appear, and the region of
 * the newest round (an agent that moved shows where it is now): small groups, one per baseline and
 * region.
 */
function baselinesAndRegions(
  db: Database.Database,
  from: string,
  params: unknown[] | Record<string, unknown>,
): Map<string, { baselines: Record<string, number>; region: string; last: [number, number] }> {
  const parts = db
    .prepare(
      `SELECT ${SUMMARY_KEY}, b.baseline, r.agent_region, COUNT(*) AS n, MIN(r.started_at) AS first_t, MIN(r.id) AS first_id,
              MAX(r.started_at) AS last_t, MAX(r.id) AS last_id
       ${from} GROUP BY ${SUMMARY_KEY}, b.baseline, r.agent_region
       ORDER BY MIN(r.started_at), MIN(r.id)`,
    )
    .all(params) as Array<
    SummaryGroup & { baseline: string; agent_region: string; n: number; last_t: number; last_id: number }
  >;
  const extra = new Map<string, { baselines: Record<string, number>; region: string; last: [number, number] }>();
  for (const p of parts) {
    const k = summaryKeyOf(p);
    let e = extra.get(k);
    if (!e) extra.set(k, (e = { baselines: {}, region: p.agent_region, last: [p.last_t, p.last_id] }));
    e.baselines[p.baseline] = (e.baselines[p.baseline] ?? 0) + p.n;
    if (p.last_t > e.last[0] || (p.last_t === e.last[0] && p.last_id > e.last[1])) {
      e.region = p.agent_region;
      e.last = [p.last_t, p.last_id];
    }
  }
  return extra;
}

/**
 * The benefit table `anylat report` prints (report.ts: same rows, same numbers, same order),
 * aggregated in SQL. Medians sort a typed array, so a median of exactly zero may come out as -0
 * where report.ts gives 0 (JSON writes both as 0).
 */
export function benefitSummary(
  db: Database.Database,
  query: ReportQuery & { protocol?: Protocol; metric?: Metric },
): ReportRow[] {
  // protocol and metric narrow it to one row per agent (the dashboard's overview needs one metric per service)
  const { where, params } = roundFilter(query, 'b');
  const from = `FROM benefit b JOIN rounds r ON r.id = b.round_id ${where}`;
  const key = SUMMARY_KEY;
  const groups = db
    .prepare(
      `SELECT ${key}, COUNT(*) AS rounds, SUM(b.pairs) AS pairs, MIN(r.started_at) AS first_t, MAX(r.started_at) AS last_t,
         ${SUMMARY_NUMERIC.map((c) => `json_group_array(b.${c}) FILTER (WHERE b.${c} IS NOT NULL) AS ${c}`).join(',\n         ')},
         -- the mean adds in round order, as report.ts does, so both give the same last digit
         json_group_array(b.win_rate ORDER BY r.started_at, r.id) FILTER (WHERE b.win_rate IS NOT NULL) AS win_rate
       ${from} GROUP BY ${key}`,
    )
    .all(params) as Array<
    SummaryGroup &
      Record<(typeof SUMMARY_NUMERIC)[number] | 'win_rate', string> & {
        rounds: number;
        pairs: number;
        first_t: number;
        last_t: number;
      }
  >;
  const extra = baselinesAndRegions(db, from, params);
  const out = groups.map((g): ReportRow => {
    const e = extra.get(summaryKeyOf(g))!;
    const row: ReportRow = {
      agent: g.agent,
      agent_region: e.region,
      service: g.service,
      protocol: g.protocol,
      metric: g.metric,
      scope: g.scope,
      ...(g.size !== null ? { size: g.size } : {}),
      rounds: g.rounds,
      first_round_at: new Date(g.first_t).toISOString(),
      last_round_at: new Date(g.last_t).toISOString(),
      pairs: g.pairs,
      baselines: e.baselines,
    };
    for (const c of SUMMARY_NUMERIC) {
      const m = median(JSON.parse(g[c]) as number[]);
      if (m !== undefined) row[c] = m;
    }
    const wins = JSON.parse(g.win_rate) as number[];
    if (wins.length > 0) row.win_rate = wins.reduce((a, b) => a + b, 0) / wins.length;
    return row;
  });
  return out.sort((a, b) => {
    const x = summaryOrder(a);
    const y = summaryOrder(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
    return 0;
  });
}

/** The newest benefit row of `query.agent` in the window (for the given protocol and metric). */
export function latestBenefit(db: Database.Database, query: SeriesQuery & { agent: string }): BenefitPoint | undefined {
  const { where, params } = roundFilter(query, 'b');
  return db
    .prepare(
      `SELECT r.started_at AS t, r.agent, r.agent_region, r.service, b.protocol, b.metric, b.scope, b.baseline,
              b.anycast_p50_ms, b.baseline_p50_ms, b.saved_ms, b.saved_pct, b.ci_low_ms, b.ci_high_ms, b.win_rate, b.pairs
       FROM rounds r JOIN benefit b ON b.round_id = r.id ${where}
       ORDER BY r.started_at DESC, r.id DESC, b.ord DESC LIMIT 1`,
    )
    .get(params) as BenefitPoint | undefined;
}

/** One agent's benefit per round as parallel arrays, oldest first. */
export interface BenefitColumns {
  t: number[];
  anycast_p50_ms: Array<number | null>;
  baseline_p50_ms: Array<number | null>;
  baseline: string[];
  saved_ms: Array<number | null>;
  ci_low_ms: Array<number | null>;
  ci_high_ms: Array<number | null>;
}

/** benefitSeries as columns per agent (give protocol and metric: one row per round). */
/** Benefit columns with no round in them. */
export function emptyBenefitColumns(): BenefitColumns {
  return { t: [], anycast_p50_ms: [], baseline_p50_ms: [], baseline: [], saved_ms: [], ci_low_ms: [], ci_high_ms: [] };
}

export function benefitColumns(db: Database.Database, query: SeriesQuery): Map<string, BenefitColumns> {
  const { where, params } = roundFilter(query, 'b');
  const rows = db
    .prepare(
      `SELECT r.agent, r.started_at, b.anycast_p50_ms, b.baseline_p50_ms, b.baseline, b.saved_ms, b.ci_low_ms, b.ci_high_ms
       FROM benefit b JOIN rounds r ON r.id = b.round_id ${where}
       ORDER BY r.started_at, r.id, b.ord`,
    )
    .raw(true)
    .iterate(params) as IterableIterator<
    [string, number, number | null, number | null, string, number | null, number | null, number | null]
  >;
  const out = new Map<string, BenefitColumns>();
  for (const [agent, t, anycast, base, baseline, saved, lo, hi] of rows) {
    let c = out.get(agent);
    if (!c) out.set(agent, (c = emptyBenefitColumns()));
    c.t.push(t);
    c.anycast_p50_ms.push(anycast);
    c.baseline_p50_ms.push(base);
    c.baseline.push(baseline);
    c.saved_ms.push(saved);
    c.ci_low_ms.push(lo);
    c.ci_high_ms.push(hi);
  }
  return out;
}

/** The median over a window of one path's per-round p50, per agent, endpoint and size. */
export interface PathMedian {
  agent: string;
  endpoint: string;
  kind: EndpointKind;
  size: string | null;
  /** median of the rounds' p50 (the metric's own unit: Mbit/s for goodput) */
  p50: number;
  rounds: number;
}

/** Medians of the per-round p50 of each path (give protocol and metric), e.g. transfer goodput per size. */
export function pathMedians(db: Database.Database, query: SeriesQuery): PathMedian[] {
  const { where, params } = roundFilter(query, 'p');
  const rows = db
    .prepare(
      `SELECT r.agent, p.endpoint, p.kind, p.size, json_group_array(p.p50_ms) AS v
       FROM paths p JOIN rounds r ON r.id = p.round_id ${where}${where ? ' AND' : ' WHERE'} p.p50_ms IS NOT NULL
       GROUP BY r.agent, p.endpoint, p.kind, p.size`,
    )
    .all(params) as Array<{ agent: string; endpoint: string; kind: EndpointKind; size: string | null; v: string }>;
  return rows.map((r) => {
    const values = JSON.parse(r.v) as number[];
    return {
      agent: r.agent,
      endpoint: r.endpoint,
      kind: r.kind,
      size: r.size,
      p50: median(values)!,
      rounds: values.length,
    };
  });
}

/** One path's loss per round as parallel arrays, oldest first (lossSeries as columns). */
export interface LossColumns {
  agent: string;
  endpoint: string;
  kind: EndpointKind;
  protocol: Protocol;
  t: number[];
  loss_pct: Array<number | null>;
  sent: number[];
  received: number[];
}

/** Loss per agent and path (endpoint, protocol), in the order paths first appear. */
export function lossColumns(db: Database.Database, query: SeriesQuery): LossColumns[] {
  const { where, params } = roundFilter({ ...query, metric: undefined, scope: undefined }, 'p');
  const rows = db
    .prepare(
      `SELECT r.agent, p.endpoint, p.kind, p.protocol, r.started_at, MAX(p.loss_pct), MAX(p.sent), MIN(p.received)
       FROM paths p JOIN rounds r ON r.id = p.round_id ${where}
       GROUP BY r.id, p.endpoint, p.protocol
       ORDER BY r.started_at, r.id, MIN(p.ord)`,
    )
    .raw(true)
    .iterate(params) as IterableIterator<
    [string, string, EndpointKind, Protocol, number, number | null, number, number]
  >;
  const out = new Map<string, LossColumns>();
  for (const [agent, endpoint, kind, protocol, t, loss, sent, received] of rows) {
    const k = `${agent}\u0000${endpoint}\u0000${protocol}`;
    let c = out.get(k);
    if (!c) out.set(k, (c = { agent, endpoint, kind, protocol, t: [], loss_pct: [], sent: [], received: [] }));
    c.t.push(t);
    c.loss_pct.push(loss);
    c.sent.push(sent);
    c.received.push(received);
  }
  return [...out.values()];
}

/** A run of an agent's consecutive rounds in which the same anycast site(s) answered. */
export interface SiteRun {
  agent: string;
  /** the sites of the round's anycast paths, sorted and joined with ", "; null when none reported one */
  site: string | null;
  from_t: number;
  to_t: number;
  rounds: number;
}

/**
 * Runs of rounds per agent in which the anycast paths of `protocol`/`metric` reported the same
 * site(s), oldest first per agent. Computed in SQL: only the runs leave it, not the rounds.
 */
export function siteRuns(
  db: Database.Database,
  query: SeriesQuery & { protocol: Protocol; metric: Metric },
): SiteRun[] {
  const { where, params } = roundFilter({
    since: query.since,
    until: query.until,
    service: query.service,
    agent: query.agent,
  });
  const anycast = `p.round_id = r.id AND p.kind = 'anycast' AND p.protocol = @protocol AND p.metric = @metric`;
  return db
    .prepare(
      `WITH per_round AS (
         SELECT r.agent, r.started_at AS t, r.id,
                -- one round can hold several anycast paths (Global Accelerator's two addresses)
                (SELECT group_concat(site, ', ' ORDER BY site)
                   FROM (SELECT DISTINCT p.site FROM paths p WHERE ${anycast} AND p.site IS NOT NULL)) AS site
         FROM rounds r ${where}${where ? ' AND' : ' WHERE'} EXISTS (SELECT 1 FROM paths p WHERE ${anycast})
       ),
       marked AS (
         SELECT agent, t, id, site,
                CASE WHEN ROW_NUMBER() OVER w = 1 OR site IS NOT LAG(site) OVER w THEN 1 ELSE 0 END AS starts
         FROM per_round WINDOW w AS (PARTITION BY agent ORDER BY t, id)
       ),
       numbered AS (
         SELECT agent, t, site, SUM(starts) OVER (PARTITION BY agent ORDER BY t, id ROWS UNBOUNDED PRECEDING) AS run FROM marked
       )
       SELECT agent, site, MIN(t) AS from_t, MAX(t) AS to_t, COUNT(*) AS rounds
       FROM numbered GROUP BY agent, run ORDER BY agent, run`,
    )
    .all({ ...params, protocol: query.protocol, metric: query.metric }) as SiteRun[];
}

/** Samples sent and answered on one path (endpoint, protocol, metric) of an agent's service, over a window. */
export interface LossTotal {
  service: string;
  agent: string;
  endpoint: string;
  kind: EndpointKind;
  protocol: Protocol;
  metric: Metric;
  sent: number;
  received: number;
}

/** Sent and received summed over the window's rounds, per service, agent and path (give `protocol` to read only its paths). */
export function lossTotals(db: Database.Database, query: SeriesQuery): LossTotal[] {
  const { where, params } = roundFilter(
    { since: query.since, until: query.until, service: query.service, agent: query.agent, protocol: query.protocol },
    'p',
  );
  return db
    .prepare(
      `SELECT r.service, r.agent, p.endpoint, p.kind, p.protocol, p.metric, SUM(p.sent) AS sent, SUM(p.received) AS received
       FROM paths p JOIN rounds r ON r.id = p.round_id ${where}
       GROUP BY r.service, r.agent, p.endpoint, p.kind, p.protocol, p.metric`,
    )
    .all(params) as LossTotal[];
}

/** Gaps between an agent's consecutive round starts: per service, and (`service` null) over all its services. */
export interface RoundGaps {
  agent: string;
  service: string | null;
  /** ms, oldest first; empty with one round */
  gaps: number[];
}

/** RoundGaps of every agent and service with a round in the window (read in index order, as plain rows). */
export function roundGaps(db: Database.Database, query: { since: number; until?: number }): RoundGaps[] {
  const { where, params } = roundFilter(query);
  const rows = db
    .prepare(`SELECT r.agent, r.service, r.started_at FROM rounds r ${where} ORDER BY r.started_at`)
    .raw(true)
    .iterate(params) as IterableIterator<[string, string, number]>;
  const last = new Map<string, { agent: string; service: string | null; t: number; gaps: number[] }>();
  const step = (agent: string, service: string | null, t: number): void => {
    const k = `${agent}\u0000${service ?? ''}`;
    const g = last.get(k);
    if (!g) last.set(k, { agent, service, t, gaps: [] });
    // over all services, two rounds started at the same instant are one start
    else if (service !== null || t !== g.t) {
      g.gaps.push(t - g.t);
      g.t = t;
    }
  };
  for (const [agent, service, t] of rows) {
    step(agent, service, t);
    step(agent, null, t);
  }
  return [...last.values()].map(({ agent, service, gaps }) => ({ agent, service, gaps }));
}

/** The (service, protocol, metric, scope) combinations benefit rows hold in a window: what each service measures there. */
export function benefitMetrics(
  db: Database.Database,
  query: { since: number; until?: number },
): Array<{ service: string; protocol: Protocol; metric: Metric; scope: Scope }> {
  const { where, params } = roundFilter(query);
  return db
    .prepare(
      `SELECT DISTINCT r.service, b.protocol, b.metric, b.scope FROM benefit b JOIN rounds r ON r.id = b.round_id ${where}`,
    )
    .all(params) as Array<{ service: string; protocol: Protocol; metric: Metric; scope: Scope }>;
}
