// Read-only queries for the embedded web dashboard. Each returns flat rows, oldest first unless
// said otherwise, with `t` in milliseconds since the epoch (the round's start), ready to be
// split into chart series by the caller.
import type Database from 'better-sqlite3';
import type { EndpointKind, EventType, Metric, Protocol, Scope } from '../model.ts';

/** Time window and optional filters shared by the series queries. `since`/`until` are epoch ms. */
export interface SeriesQuery {
  since: number;
  until?: number;
  service?: string;
  agent?: string;
  protocol?: Protocol;
  metric?: Metric;
  scope?: Scope;
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

export interface LatencyPoint {
  t: number;
  agent: string;
  agent_region: string;
  service: string;
  endpoint: string;
  kind: EndpointKind;
  protocol: Protocol;
  metric: Metric;
  scope: Scope;
  site: string | null;
  p50_ms: number | null;
  p90_ms: number | null;
  p99_ms: number | null;
  loss_pct: number | null;
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
export function roundFilter(query: Partial<SeriesQuery>, alias?: string): { where: string; params: Record<string, string | number> } {
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
    for (const k of ['protocol', 'metric', 'scope'] as const) {
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

export function latencySeries(db: Database.Database, query: SeriesQuery): LatencyPoint[] {
  const { where, params } = roundFilter(query, 'p');
  return db
    .prepare(
      `SELECT r.started_at AS t, r.agent, r.agent_region, r.service, p.endpoint, p.kind, p.protocol, p.metric, p.scope, p.site,
              p.p50_ms, p.p90_ms, p.p99_ms, p.loss_pct
       FROM paths p JOIN rounds r ON r.id = p.round_id ${where}
       ORDER BY r.started_at, r.id, p.ord`,
    )
    .all(params) as LatencyPoint[];
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
  const { where, params } = roundFilter({ since: query.since, until: query.until, service: query.service, agent: query.agent });
  return db
    .prepare(
      `SELECT e.at AS t, e.agent, r.agent_region, e.service, e.type, e.message, e.from_value AS "from", e.to_value AS "to"
       FROM events e JOIN rounds r ON r.id = e.round_id ${where}
       ORDER BY e.at DESC, e.id DESC LIMIT @limit`,
    )
    .all({ ...params, limit: query.limit ?? 1000 }) as EventRow[];
}

export function agentHealth(db: Database.Database, now: number): AgentHealth[] {
  const rows = db
    .prepare(
      `SELECT h.agent, h.agent_region, h.at, h.body, (SELECT MAX(started_at) FROM rounds r WHERE r.agent = h.agent) AS last_round_t
       FROM heartbeats h ORDER BY h.agent`,
    )
    .all() as Array<{ agent: string; agent_region: string; at: number; body: string; last_round_t: number | null }>;
  return rows.map((r) => {
    const hb = JSON.parse(r.body) as Record<string, unknown>;
    const out: AgentHealth = { agent: r.agent, agent_region: r.agent_region, t: r.at, age_s: Math.max(0, (now - r.at) / 1000), last_round_t: r.last_round_t };
    for (const k of ['uptime_s', 'loop_lag_p99_ms', 'rounds_late', 'rounds_skipped', 'outbox_rows', 'dead_letters', 'dropped_rows'] as const) {
      if (typeof hb[k] === 'number') out[k] = hb[k];
    }
    if (typeof hb.version === 'string') out.version = hb.version;
    return out;
  });
}

export function services(db: Database.Database): ServiceSummary[] {
  return db
    .prepare(
      `SELECT service, agent, agent_region, COUNT(*) AS rounds, MIN(started_at) AS first_t, MAX(started_at) AS last_t
       FROM rounds GROUP BY service, agent, agent_region ORDER BY service, agent`,
    )
    .all() as ServiceSummary[];
}
