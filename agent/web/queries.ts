// What the dashboard's JSON endpoints answer, computed from the store's public read API. Nothing
// here writes; everything takes `now` so a response describes one instant. The heavy lifting
// (medians over a window, site runs) is done in SQL by the store; this shapes it for the page.
import { PROTOCOL_METRICS, PROTOCOLS, type Metric, type Protocol, type Scope } from '../core/model.ts';
import type { AgentHealth, EventRow, LossTotal, ReportRow, ServiceSummary, Store } from '../store/index.ts';
import { median } from '../util/median.ts';
import {
  emptyBenefitColumns,
  type BenefitColumns,
  type LossColumns,
  type SiteRun,
  type TraceRow,
} from '../store/queries.ts';
import { WebParamError, type Params } from './params.ts';

/** The part of the store the dashboard reads. */
export type StoreReader = Pick<
  Store,
  | 'services'
  | 'benefitSummary'
  | 'benefitMetrics'
  | 'latestBenefit'
  | 'benefitColumns'
  | 'lossColumns'
  | 'lossTotals'
  | 'pathMedians'
  | 'roundGaps'
  | 'siteRuns'
  | 'events'
  | 'agentHealth'
  | 'timingGaps'
> &
  Partial<Pick<Store, 'traces'>>;

/** Stands in for a store file no agent has created yet: every query is empty. */
export const EMPTY_STORE: StoreReader = {
  services: () => [],
  benefitSummary: () => [],
  benefitMetrics: () => [],
  timingGaps: () => [],
  latestBenefit: () => undefined,
  benefitColumns: () => new Map(),
  lossColumns: () => [],
  lossTotals: () => [],
  pathMedians: () => [],
  roundGaps: () => [],
  siteRuns: () => [],
  events: () => [],
  agentHealth: () => [],
};

/** The window every windowed response states, so a reader knows what the numbers cover. */
export interface Window {
  service: string | null;
  since: string;
  from_t: number;
  to_t: number;
}

export interface ServicesResponse {
  /** false until an agent has created the store */
  store_ready: boolean;
  /** what the endpoints use when no `service` is given: the one measured most recently */
  default_service: string | null;
  services: Array<{
    service: string;
    rounds: number;
    last_t: number;
    agents: Array<{ agent: string; agent_region: string; rounds: number; first_t: number; last_t: number }>;
  }>;
}

export interface MetricOption {
  /** `protocol/metric`, the value of the `metric` parameter */
  key: string;
  protocol: Protocol;
  metric: Metric;
  /** end_to_end when any agent measured it end to end */
  scope: Scope;
  agents: number;
}

export interface RegionHeadline {
  protocol: Protocol;
  metric: Metric;
  scope: Scope;
  rounds: number;
  pairs: number;
  anycast_p50_ms: number | null;
  baseline_p50_ms: number | null;
  saved_ms: number | null;
  saved_pct: number | null;
  ci_low_ms: number | null;
  ci_high_ms: number | null;
  win_rate: number | null;
  /** baseline endpoint -> rounds that compared against it, most used first */
  baselines: Record<string, number>;
}

export interface LatestRound {
  t: number;
  baseline: string;
  anycast_p50_ms: number | null;
  baseline_p50_ms: number | null;
  saved_ms: number | null;
  ci_low_ms: number | null;
  ci_high_ms: number | null;
  win_rate: number | null;
}

/** Goodput of a transfer size over the window: medians of the rounds' p50, in Mbit/s (a rate, not ms). */
export interface RegionGoodput {
  anycast_mbps: number | null;
  baseline_mbps: number | null;
  /** the unicast endpoint of baseline_mbps: the size's most frequent baseline */
  baseline: string | null;
}

export interface RegionBenefit {
  agent: string;
  agent_region: string;
  /**
   * the transfer object size this row covers (`16KiB`, `2MiB`): a transfer metric gets one row per
   * agent and size, never sizes mixed; null for every other protocol
   */
  size: string | null;
  /** transfer only: the goodput of this size, anycast and baseline (Mbit/s); null otherwise */
  goodput: RegionGoodput | null;
  /** the selected metric over the window (medians of the rounds' values); null without rounds */
  headline: RegionHeadline | null;
  /**
   * without a headline, why, when the agent did measure the metric: its samples were flagged for
   * timing ("all 10 samples flagged for timing"); null otherwise
   */
  note: string | null;
  /** the selected metric in the agent's newest round of the window */
  latest: LatestRound | null;
  /** who answered the anycast address in the newest round (the selected protocol) */
  site: string | null;
  last_round_t: number | null;
  /** every protocol and metric, end to end first (see `anylat report`) */
  rows: ReportRow[];
}

export interface BenefitResponse extends Window {
  /** the selected `protocol/metric`; null when the window holds no benefit rows */
  metric: string | null;
  scope: Scope | null;
  metrics: MetricOption[];
  regions: RegionBenefit[];
}

export interface LatencyResponse extends Window {
  metric: string | null;
  /**
   * per region (and, for a transfer metric, per size: one entry per agent and size, never mixed),
   * one entry per round, oldest first; arrays are parallel
   */
  regions: Array<{ agent: string; agent_region: string; size: string | null } & BenefitColumns>;
}

export interface LossResponse extends Window {
  regions: Array<{
    agent: string;
    agent_region: string;
    /** per path, one entry per round, oldest first; arrays are parallel */
    paths: Array<Omit<LossColumns, 'agent'>>;
  }>;
}

export interface SiteSegment {
  /** the anycast site(s) that answered, comma-separated; null when none reported one */
  site: string | null;
  from_t: number;
  to_t: number;
  rounds: number;
}

export interface SitesResponse extends Window {
  metric: string | null;
  regions: Array<{ agent: string; agent_region: string; current: string | null; segments: SiteSegment[] }>;
}

/** A trace as the events list shows it: which path, why, and its hops. */
export type EventTrace = Pick<TraceRow, 'endpoint' | 'kind' | 'trigger' | 'address' | 'reached' | 'hops'>;

export interface EventsResponse extends Window {
  /** each event with the traces its round took (path context), when tracing is on */
  events: Array<EventRow & { traces?: EventTrace[] }>;
  /** traces taken because the benefit shifted (no event of their own), newest first */
  shifts: Array<{ t: number; agent: string; agent_region: string; reason: string; traces: EventTrace[] }>;
}

/** One service in one region, as the overview shows it: the service's headline metric over the window. */
export interface OverviewRegion {
  agent: string;
  agent_region: string;
  /** the transfer size of this row when the headline is a transfer metric (one row per size); else null */
  size: string | null;
  /** the service's headline metric in this region over the window; null without rounds in it */
  headline: RegionHeadline | null;
  /** without a headline, why, when its samples were flagged for timing (as RegionBenefit's) */
  note: string | null;
  /**
   * Loss over the window on the headline metric's protocol: samples not answered over samples sent,
   * per path the worst of its metrics (a request that failed counts once), the worst anycast path
   * and the worst unicast endpoint. null without samples.
   */
  anycast_loss_pct: number | null;
  unicast_loss_pct: number | null;
  /** the unicast endpoint with that loss, when above 0 */
  unicast_loss_endpoint: string | null;
  /** start of this agent's newest round of the service (any window) */
  last_round_t: number | null;
  /** median gap between this agent's rounds of the service over the last hour, in seconds */
  interval_s: number | null;
}

export interface OverviewService {
  service: string;
  /** the headline `protocol/metric`, chosen as /api/benefit chooses it without `metric` */
  metric: string | null;
  scope: Scope | null;
  regions: OverviewRegion[];
}

/** `GET /api/overview`: every service × region on one screen. */
export interface OverviewResponse {
  since: string;
  from_t: number;
  to_t: number;
  services: OverviewService[];
}

export type HealthStatus = 'ok' | 'warning' | 'silent';

export interface HealthRow {
  agent: string;
  agent_region: string;
  status: HealthStatus;
  /** why the status is not ok, for humans */
  issues: string[];
  heartbeat_t: number | null;
  heartbeat_age_s: number | null;
  last_round_t: number | null;
  last_round_age_s: number | null;
  /**
   * median gap between the agent's rounds over the last hour, all services together: what tells
   * whether it is still running (with 20 services it is far shorter than any one service's interval)
   */
  round_interval_s: number | null;
  /** per service, the median gap between its rounds over the last hour (null with fewer than 2), by service name */
  round_intervals: Array<{ service: string; interval_s: number | null }>;
  /** a round older than this (3 round intervals, at least 60 s) is late; silent when the heartbeat is late too */
  silent_after_s: number;
  version: string | null;
  uptime_s: number | null;
  loop_lag_p99_ms: number | null;
  rounds_late: number | null;
  rounds_skipped: number | null;
  rounds_failed: number | null;
  outbox_rows: number | null;
  dead_letters: number | null;
  dropped_rows: number | null;
}

export interface HealthResponse {
  now: number;
  agents: HealthRow[];
}

/** The service measured most recently (ties: first by name): what a page opened without a choice shows. */
function defaultService(rows: ReadonlyArray<{ service: string; last_t: number }>): string | null {
  let best: { service: string; last_t: number } | undefined;
  for (const r of rows) {
    if (!best || r.last_t > best.last_t || (r.last_t === best.last_t && r.service < best.service)) best = r;
  }
  return best?.service ?? null;
}

/**
 * A heartbeat older than this is late: the agent writes one every 60 s (HEARTBEAT_INTERVAL_MS in
 * agent/agent.ts, which a test keeps in step), so three missed ones.
 */
export const HEARTBEAT_LATE_AFTER_S = 180;

/** 45 s, 20 min, 3.0 h: how long ago, for the health notes a person reads. */
function human(s: number): string {
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

const metricKey = (protocol: string, metric: string): string => `${protocol}/${metric}`;

/**
 * The headline metric when none is asked for, in order of preference: the end-to-end primary of what
 * the service measures. Never `http/dns` (it times the resolver, not the path); a service measuring
 * none of these gets its first end-to-end metric other than that.
 */
export const PRIMARY_METRICS: ReadonlyArray<readonly [Protocol, Metric]> = [
  ['udp', 'rtt'],
  ['tcp', 'rtt'],
  ['http', 'ttfb'],
  ['tls', 'handshake'],
  // a service that only downloads: the download time, the split-TCP gain (per size)
  ['transfer', 'download'],
];

/** The metric a view shows by default among `options` (see PRIMARY_METRICS). */
export function defaultMetric<T extends { protocol: Protocol; metric: Metric; scope: Scope }>(
  options: readonly T[],
): T | null {
  const e2e = options.filter((o) => o.scope === 'end_to_end');
  for (const [protocol, metric] of PRIMARY_METRICS) {
    const found = e2e.find((o) => o.protocol === protocol && o.metric === metric);
    if (found) return found;
  }
  return e2e.find((o) => !(o.protocol === 'http' && o.metric === 'dns')) ?? e2e[0] ?? null;
}

/** Bytes of a transfer size tag (`16KiB`, `2MiB`, `500B`), to list sizes smallest first. */
function sizeBytes(size: string | null | undefined): number {
  const m = /^(\d+)(B|KiB|MiB)$/.exec(size ?? '');
  return m ? Number(m[1]) * (m[2] === 'MiB' ? 1024 * 1024 : m[2] === 'KiB' ? 1024 : 1) : 0;
}

/** What `benefit` works out once for every agent's rows. */
interface BenefitContext {
  span: { since: number; until: number; service: string };
  rows: ReportRow[];
  selected: { key: string; protocol: Protocol; metric: Metric; scope: Scope } | null;
  sites: Map<string, SiteSegment[]>;
  notes: Map<string, string>;
  sizes: Array<string | null>;
  goodputs: ReturnType<Store['pathMedians']>;
}

/** Median goodput of the anycast path and of the headline's baseline, for one agent and size. */
function goodputOf(
  goodputs: BenefitContext['goodputs'],
  agent: string,
  size: string | null,
  chosen: ReportRow | undefined,
): RegionGoodput {
  const here = goodputs.filter((g) => g.agent === agent && g.size === size);
  const baseline = chosen ? (Object.keys(headlineOf(chosen).baselines)[0] ?? null) : null;
  return {
    anycast_mbps: here.find((g) => g.kind === 'anycast')?.p50 ?? null,
    baseline_mbps: here.find((g) => g.kind === 'unicast' && g.endpoint === baseline)?.p50 ?? null,
    baseline,
  };
}

/** The distinct sizes among `rows` (smallest first); `[null]` when the rows carry none. */
function sizesOf(rows: ReadonlyArray<{ size?: string | null }>): Array<string | null> {
  const sizes = [...new Set(rows.map((r) => r.size ?? null))].filter((x): x is string => x !== null);
  return sizes.length === 0 ? [null] : sizes.sort((a, b) => sizeBytes(a) - sizeBytes(b));
}

function byRegion<T extends { agent: string; agent_region: string }>(a: T, b: T): number {
  return a.agent_region.localeCompare(b.agent_region) || a.agent.localeCompare(b.agent);
}

function canonicalOrder(a: { protocol: Protocol; metric: Metric }, b: { protocol: Protocol; metric: Metric }): number {
  return (
    PROTOCOLS.indexOf(a.protocol) - PROTOCOLS.indexOf(b.protocol) ||
    PROTOCOL_METRICS[a.protocol].indexOf(a.metric) - PROTOCOL_METRICS[b.protocol].indexOf(b.metric)
  );
}

/** Read-only answers for the dashboard over one store (or EMPTY_STORE). */
export class DashboardQueries {
  private servicesCache: { at: number; rows: ServiceSummary[] } | undefined;

  /**
   * `servicesTtlMs`: how long the list of services and agents is reused. The store keeps it as
   * totals (cheap at any size) except on a file an older agent still writes, where listing counts
   * every round; a new agent or service shows up that much later. An unknown `service` always
   * re-reads the list.
   */
  constructor(
    private readonly store: StoreReader,
    private readonly servicesTtlMs = 0,
  ) {}

  private serviceRows(fresh = false): ServiceSummary[] {
    const t = performance.now();
    if (fresh || this.servicesCache === undefined || t - this.servicesCache.at >= this.servicesTtlMs) {
      const rows = this.store.services();
      // An empty store is cheap to ask again, and its first round should show at once.
      this.servicesCache = rows.length === 0 ? undefined : { at: t, rows };
      return rows;
    }
    return this.servicesCache.rows;
  }

  services(ready: boolean): ServicesResponse {
    const rows = this.serviceRows();
    const map = new Map<string, ServicesResponse['services'][number]>();
    for (const r of rows) {
      let s = map.get(r.service);
      if (!s) {
        s = { service: r.service, rounds: 0, last_t: r.last_t, agents: [] };
        map.set(r.service, s);
      }
      s.rounds += r.rounds;
      s.last_t = Math.max(s.last_t, r.last_t);
      s.agents.push({
        agent: r.agent,
        agent_region: r.agent_region,
        rounds: r.rounds,
        first_t: r.first_t,
        last_t: r.last_t,
      });
    }
    const services = [...map.values()].sort((a, b) => a.service.localeCompare(b.service));
    for (const s of services) s.agents.sort(byRegion);
    return { store_ready: ready, default_service: defaultService(rows), services };
  }

  /** The service a request is about: the one asked for (which must exist) or the default. */
  private window(params: Params, now: number): Window & { agents: Array<{ agent: string; agent_region: string }> } {
    let rows = this.serviceRows();
    if (params.service !== undefined && !rows.some((r) => r.service === params.service)) rows = this.serviceRows(true);
    const names = [...new Set(rows.map((r) => r.service))].sort();
    let service: string | null;
    if (params.service !== undefined) {
      if (!names.includes(params.service)) {
        const known = names.length === 0 ? 'the store holds no rounds yet' : `known services: ${names.join(', ')}`;
        throw new WebParamError('service', `no rounds of service "${params.service}" in the store; ${known}`);
      }
      service = params.service;
    } else {
      service = defaultService(rows);
    }
    // Latest region of each agent that ever ran the service: one that stopped still gets a row.
    const agents = new Map<string, { agent: string; agent_region: string; last_t: number }>();
    for (const r of rows) {
      if (r.service !== service) continue;
      const prev = agents.get(r.agent);
      if (!prev || r.last_t > prev.last_t)
        agents.set(r.agent, { agent: r.agent, agent_region: r.agent_region, last_t: r.last_t });
    }
    return {
      service,
      since: params.since,
      from_t: now - params.sinceMs,
      to_t: now,
      agents: [...agents.values()].map(({ agent, agent_region }) => ({ agent, agent_region })).sort(byRegion),
    };
  }

  private windowOnly(w: Window & { agents: unknown }): Window {
    return { service: w.service, since: w.since, from_t: w.from_t, to_t: w.to_t };
  }

  /** Metrics present in the window, and the one to show: the asked one, else the first end-to-end. */
  private selectMetric(rows: ReportRow[], params: Params): { options: MetricOption[]; selected: MetricOption | null } {
    const map = new Map<string, MetricOption & { agentSet: Set<string> }>();
    for (const r of rows) {
      const key = metricKey(r.protocol, r.metric);
      let o = map.get(key);
      if (!o) {
        o = { key, protocol: r.protocol, metric: r.metric, scope: r.scope, agents: 0, agentSet: new Set() };
        map.set(key, o);
      }
      if (r.scope === 'end_to_end') o.scope = 'end_to_end';
      o.agentSet.add(r.agent);
    }
    const options = [...map.values()]
      .map(({ agentSet, ...o }) => ({ ...o, agents: agentSet.size }))
      .sort((a, b) => (a.scope === b.scope ? 0 : a.scope === 'end_to_end' ? -1 : 1) || canonicalOrder(a, b));
    if (params.metric) {
      const key = metricKey(params.metric.protocol, params.metric.metric);
      // A metric without rows in this window is still a valid choice: its rows are simply empty.
      const found = options.find((o) => o.key === key);
      return { options, selected: found ?? { key, ...params.metric, scope: 'end_to_end', agents: 0 } };
    }
    return { options, selected: defaultMetric(options) };
  }

  private selectedMetric(w: Window, params: Params): { key: string; protocol: Protocol; metric: Metric } | null {
    if (w.service === null) return null;
    // Named: no need to summarise the window (the costliest query) just to find the default.
    if (params.metric) return { key: metricKey(params.metric.protocol, params.metric.metric), ...params.metric };
    return this.selectMetric(
      this.store.benefitSummary({ since: w.from_t, until: w.to_t + 1, service: w.service }),
      params,
    ).selected;
  }

  benefit(params: Params, now: number): BenefitResponse {
    const w = this.window(params, now);
    const empty: BenefitResponse = { ...this.windowOnly(w), metric: null, scope: null, metrics: [], regions: [] };
    if (w.service === null) return empty;
    const rows = this.store.benefitSummary({ since: w.from_t, until: now + 1, service: w.service });
    const { options, selected } = this.selectMetric(rows, params);
    const span = { since: w.from_t, until: now + 1, service: w.service };
    const ctx: BenefitContext = {
      span,
      rows,
      selected,
      sites: selected ? this.siteRuns(w, selected) : new Map<string, SiteSegment[]>(),
      notes: this.timingNotes(rows, w.agents, span, selected),
      // A transfer metric has one row per size: every size is its own object, never mixed.
      sizes: selected
        ? sizesOf(rows.filter((r) => r.protocol === selected.protocol && r.metric === selected.metric))
        : [null],
      goodputs:
        selected?.protocol === 'transfer'
          ? this.store.pathMedians({ ...span, protocol: 'transfer', metric: 'goodput_mbps' })
          : [],
    };
    const regions = w.agents.flatMap(({ agent, agent_region }) => this.regionBenefits(ctx, agent, agent_region));
    return { ...empty, metric: selected?.key ?? null, scope: selected?.scope ?? null, metrics: options, regions };
  }

  /** One agent's rows of the benefit response: one per transfer size, else one. */
  private regionBenefits(ctx: BenefitContext, agent: string, agentRegion: string): RegionBenefit[] {
    const { selected } = ctx;
    const mine = ctx.rows.filter((r) => r.agent === agent);
    const segs = ctx.sites.get(agent) ?? [];
    const lastRound = mine.reduce<number | null>((t, r) => Math.max(t ?? 0, Date.parse(r.last_round_at)), null);
    return ctx.sizes.map((size): RegionBenefit => {
      // Prefer the end-to-end row when an agent changed terminatesTcp inside the window.
      const chosen = selected
        ? mine
            .filter(
              (r) => r.protocol === selected.protocol && r.metric === selected.metric && (r.size ?? null) === size,
            )
            .sort((a, b) => (a.scope === b.scope ? 0 : a.scope === 'end_to_end' ? -1 : 1))[0]
        : undefined;
      return {
        agent,
        agent_region: mine[mine.length - 1]?.agent_region ?? agentRegion,
        size,
        goodput: selected?.protocol === 'transfer' ? goodputOf(ctx.goodputs, agent, size, chosen) : null,
        headline: chosen ? headlineOf(chosen) : null,
        note: chosen ? null : (ctx.notes.get(agent) ?? null),
        latest: selected ? this.latestBenefit(ctx.span, agent, selected, size) : null,
        site: segs[segs.length - 1]?.site ?? null,
        last_round_t: lastRound,
        rows: mine,
      };
    });
  }

  /** The agent's latest round's benefit for the metric (and size), as the page shows it. */
  private latestBenefit(
    span: { since: number; until: number; service: string },
    agent: string,
    selected: { protocol: Protocol; metric: Metric },
    size: string | null,
  ): RegionBenefit['latest'] {
    const last = this.store.latestBenefit({
      ...span,
      agent,
      protocol: selected.protocol,
      metric: selected.metric,
      ...(size !== null ? { size } : {}),
    });
    if (!last) return null;
    return {
      t: last.t,
      baseline: last.baseline,
      anycast_p50_ms: last.anycast_p50_ms,
      baseline_p50_ms: last.baseline_p50_ms,
      saved_ms: last.saved_ms,
      ci_low_ms: last.ci_low_ms,
      ci_high_ms: last.ci_high_ms,
      win_rate: last.win_rate,
    };
  }

  latency(params: Params, now: number): LatencyResponse {
    const w = this.window(params, now);
    const selected = this.selectedMetric(w, params);
    const out: LatencyResponse = { ...this.windowOnly(w), metric: selected?.key ?? null, regions: [] };
    if (w.service === null || selected === null) return out;
    const query = {
      since: w.from_t,
      until: now + 1,
      service: w.service,
      protocol: selected.protocol,
      metric: selected.metric,
    };
    // A transfer metric: one series per size (each size's rows alone), never two sizes in one line.
    const sizes = selected.protocol === 'transfer' ? sizesOf(this.store.benefitSummary(query)) : [null];
    const bySize = new Map(
      sizes.map((size) => [size, this.store.benefitColumns(size === null ? query : { ...query, size })] as const),
    );
    out.regions = w.agents.flatMap(({ agent, agent_region }) =>
      sizes.map((size) => {
        return { agent, agent_region, size, ...(bySize.get(size)!.get(agent) ?? emptyBenefitColumns()) };
      }),
    );
    return out;
  }

  loss(params: Params, now: number): LossResponse {
    const w = this.window(params, now);
    const out: LossResponse = { ...this.windowOnly(w), regions: [] };
    if (w.service === null) return out;
    const columns = this.store.lossColumns({ since: w.from_t, until: now + 1, service: w.service });
    out.regions = w.agents.map(({ agent, agent_region }) => {
      const list = columns
        .filter((c) => c.agent === agent)
        .map(({ agent: _agent, ...path }) => path)
        .sort(
          (a, b) =>
            (a.kind === b.kind ? 0 : a.kind === 'anycast' ? -1 : 1) ||
            a.endpoint.localeCompare(b.endpoint) ||
            PROTOCOLS.indexOf(a.protocol) - PROTOCOLS.indexOf(b.protocol),
        );
      return { agent, agent_region, paths: list };
    });
    return out;
  }

  /** Runs of rounds in which the same anycast site answered the selected protocol, per agent. */
  private siteRuns(w: Window, selected: { protocol: Protocol; metric: Metric }): Map<string, SiteSegment[]> {
    const out = new Map<string, SiteSegment[]>();
    if (w.service === null) return out;
    const runs: SiteRun[] = this.store.siteRuns({
      since: w.from_t,
      until: w.to_t + 1,
      service: w.service,
      protocol: selected.protocol,
      metric: selected.metric,
    });
    for (const { agent, ...segment } of runs) {
      let segs = out.get(agent);
      if (!segs) out.set(agent, (segs = []));
      segs.push(segment);
    }
    return out;
  }

  sites(params: Params, now: number): SitesResponse {
    const w = this.window(params, now);
    const selected = this.selectedMetric(w, params);
    const out: SitesResponse = { ...this.windowOnly(w), metric: selected?.key ?? null, regions: [] };
    if (selected === null) return out;
    const runs = this.siteRuns(w, selected);
    out.regions = w.agents.map(({ agent, agent_region }) => {
      const segments = runs.get(agent) ?? [];
      return { agent, agent_region, current: segments[segments.length - 1]?.site ?? null, segments };
    });
    return out;
  }

  events(params: Params, now: number): EventsResponse {
    const w = this.window(params, now);
    const events: EventsResponse['events'] =
      w.service === null
        ? []
        : this.store.events({ since: w.from_t, until: now + 1, service: w.service, limit: params.limit });
    const traces =
      w.service === null || !this.store.traces
        ? []
        : this.store.traces({ since: w.from_t, until: now + 1, service: w.service, limit: 200 });
    const shifts: EventsResponse['shifts'] = [];
    for (const x of traces) {
      const t: EventTrace = {
        endpoint: x.endpoint,
        kind: x.kind,
        trigger: x.trigger,
        address: x.address,
        reached: x.reached,
        hops: x.hops,
      };
      const e =
        x.trigger === 'benefit_shift'
          ? undefined
          : events.find((ev) => ev.t === x.t && ev.agent === x.agent && ev.type === x.trigger);
      if (e) (e.traces ??= []).unshift(t);
      else if (x.trigger === 'benefit_shift') {
        const s = shifts.find((v) => v.t === x.t && v.agent === x.agent);
        if (s) s.traces.unshift(t);
        else shifts.push({ t: x.t, agent: x.agent, agent_region: x.agent_region, reason: x.reason, traces: [t] });
      }
    }
    return { ...this.windowOnly(w), events, shifts };
  }

  /**
   * Median gaps between rounds over the last hour, in seconds (null with fewer than 2): per agent
   * over all its services (`all`), and per agent and service.
   */
  private roundIntervals(now: number): {
    all: Map<string, number | null>;
    byService: Map<string, Map<string, number | null>>;
  } {
    const all = new Map<string, number | null>();
    const byService = new Map<string, Map<string, number | null>>();
    for (const g of this.store.roundGaps({ since: now - 3_600_000 })) {
      const m = median(g.gaps);
      const s = m === undefined ? null : m / 1000;
      if (g.service === null) {
        all.set(g.agent, s);
        continue;
      }
      let mine = byService.get(g.agent);
      if (!mine) byService.set(g.agent, (mine = new Map()));
      mine.set(g.service, s);
    }
    return { all, byService };
  }

  /**
   * Every service × region over the window: the headline metric each service's own view opens on,
   * its saved ms, CI and verdict inputs, and its loss. One summary query for all services.
   */
  overview(params: Params, now: number): OverviewResponse {
    const from = now - params.sinceMs;
    const measured = this.store.benefitMetrics({ since: from, until: now + 1 });
    const intervals = this.roundIntervals(now).byService;
    // Every agent that ever ran each service, in its latest region: one that stopped still gets a row.
    const agents = new Map<string, Map<string, { agent_region: string; last_t: number }>>();
    for (const r of this.serviceRows()) {
      let m = agents.get(r.service);
      if (!m) agents.set(r.service, (m = new Map()));
      const prev = m.get(r.agent);
      if (!prev || r.last_t > prev.last_t) m.set(r.agent, { agent_region: r.agent_region, last_t: r.last_t });
    }
    const services = [...agents.keys()].sort().map((service): OverviewService => {
      // The headline metric the service's own view opens on (selectMetric's default), then only its rows.
      const options = new Map<string, { key: string; protocol: Protocol; metric: Metric; scope: Scope }>();
      for (const m of measured) {
        if (m.service !== service) continue;
        const key = metricKey(m.protocol, m.metric);
        const prev = options.get(key);
        if (!prev || m.scope === 'end_to_end')
          options.set(key, { key, protocol: m.protocol, metric: m.metric, scope: m.scope });
      }
      const selected = defaultMetric([...options.values()]);
      const mine = selected
        ? this.store.benefitSummary({
            since: from,
            until: now + 1,
            service,
            protocol: selected.protocol,
            metric: selected.metric,
          })
        : [];
      const losses = selected
        ? this.store.lossTotals({ since: from, until: now + 1, service, protocol: selected.protocol })
        : [];
      const notes = this.timingNotes(
        mine,
        [...agents.get(service)!.keys()].map((agent) => ({ agent })),
        { since: from, until: now + 1, service },
        selected,
      );
      // A transfer headline: one row per size, as the service's own view shows it.
      const sizes = sizesOf(mine);
      const regions = [...agents.get(service)!]
        .map(([agent, a]) => ({ agent, agent_region: a.agent_region, last_t: a.last_t }))
        .sort(byRegion)
        .flatMap((r) => sizes.map((size) => ({ ...r, size })))
        .map(({ agent, agent_region, last_t, size }): OverviewRegion => {
          const chosen = selected
            ? mine
                .filter((r) => r.agent === agent && (r.size ?? null) === size)
                .sort((a, b) => (a.scope === b.scope ? 0 : a.scope === 'end_to_end' ? -1 : 1))[0]
            : undefined;
          const note = chosen ? null : (notes.get(agent) ?? null);
          const loss = selected ? lossOf(losses.filter((l) => l.agent === agent)) : undefined;
          return {
            agent,
            agent_region: chosen?.agent_region ?? agent_region,
            size,
            headline: chosen ? headlineOf(chosen) : null,
            note,
            anycast_loss_pct: loss?.anycast ?? null,
            unicast_loss_pct: loss?.unicast ?? null,
            unicast_loss_endpoint: loss?.unicastEndpoint ?? null,
            last_round_t: last_t,
            interval_s: intervals.get(agent)?.get(service) ?? null,
          };
        });
      return { service, metric: selected?.key ?? null, scope: selected?.scope ?? null, regions };
    });
    return { since: params.since, from_t: from, to_t: now, services };
  }

  /**
   * Agents that measured the selected metric in the window without one pair (so no summary row):
   * why, when the lag flags are the reason ("all 10 samples flagged for timing").
   */
  private timingNotes(
    rows: readonly ReportRow[],
    agents: ReadonlyArray<{ agent: string }>,
    window: { since: number; until: number; service: string },
    selected: { protocol: Protocol; metric: Metric } | null,
  ): Map<string, string> {
    const notes = new Map<string, string>();
    if (!selected) return notes;
    const measured = new Set(
      rows.filter((r) => r.protocol === selected.protocol && r.metric === selected.metric).map((r) => r.agent),
    );
    if (agents.every((a) => measured.has(a.agent))) return notes;
    for (const g of this.store.timingGaps({ ...window, protocol: selected.protocol, metric: selected.metric })) {
      if (g.note !== undefined) notes.set(g.agent, g.note);
    }
    return notes;
  }

  health(now: number): HealthResponse {
    const beats = new Map<string, AgentHealth>(this.store.agentHealth(now).map((h) => [h.agent, h]));
    // Agents that wrote rounds but never a heartbeat are listed too: silence is what to show.
    const known = new Map<string, { agent_region: string; last_t: number }>();
    for (const s of this.serviceRows()) {
      const prev = known.get(s.agent);
      if (!prev || s.last_t > prev.last_t) known.set(s.agent, { agent_region: s.agent_region, last_t: s.last_t });
    }
    const ids = [...new Set([...beats.keys(), ...known.keys()])];
    const intervals = this.roundIntervals(now);
    const agents = ids.map((agent): HealthRow => {
      const hb = beats.get(agent);
      const k = known.get(agent);
      const lastRound = hb?.last_round_t ?? k?.last_t ?? null;
      const interval = intervals.all.get(agent) ?? null;
      const silentAfter = Math.max(60, 3 * (interval ?? 60));
      const heartbeatLateAfter = Math.max(HEARTBEAT_LATE_AFTER_S, silentAfter);
      const hbAge = hb ? hb.age_s : null;
      const roundAge = lastRound === null ? null : Math.max(0, (now - lastRound) / 1000);
      const issues: string[] = [];
      let status: HealthStatus = 'ok';
      const hbQuiet = hbAge === null || hbAge > heartbeatLateAfter;
      const roundQuiet = roundAge === null || roundAge > silentAfter;
      if (hbQuiet && roundQuiet) {
        status = 'silent';
        issues.push(`no heartbeat or round for more than ${human(silentAfter)}`);
      } else {
        if (hbAge === null) issues.push('no heartbeat recorded');
        else if (hbQuiet) issues.push(`last heartbeat ${human(hbAge)} ago`);
        if (roundAge === null) issues.push('no round recorded');
        else if (roundQuiet) issues.push(`last round ${human(roundAge)} ago`);
      }
      if (hb?.dead_letters) issues.push(`${hb.dead_letters} dead letter(s): lines InfluxDB rejected`);
      if (hb?.dropped_rows) issues.push(`${hb.dropped_rows} row(s) dropped by retention`);
      if (hb?.rounds_late) issues.push(`${hb.rounds_late} round(s) started late`);
      if (hb?.rounds_skipped) issues.push(`${hb.rounds_skipped} round(s) skipped or abandoned`);
      if (hb?.rounds_failed) issues.push(`${hb.rounds_failed} round(s) measured but not stored (store write failed)`);
      if (status === 'ok' && issues.length > 0) status = 'warning';
      return {
        agent,
        agent_region: hb?.agent_region ?? k?.agent_region ?? '',
        status,
        issues,
        heartbeat_t: hb?.t ?? null,
        heartbeat_age_s: hbAge,
        last_round_t: lastRound,
        last_round_age_s: roundAge,
        round_interval_s: interval,
        round_intervals: [...(intervals.byService.get(agent) ?? [])]
          .map(([service, interval_s]) => ({ service, interval_s }))
          .sort((a, b) => a.service.localeCompare(b.service)),
        silent_after_s: silentAfter,
        version: hb?.version ?? null,
        uptime_s: hb?.uptime_s ?? null,
        loop_lag_p99_ms: hb?.loop_lag_p99_ms ?? null,
        rounds_late: hb?.rounds_late ?? null,
        rounds_skipped: hb?.rounds_skipped ?? null,
        rounds_failed: hb?.rounds_failed ?? null,
        outbox_rows: hb?.outbox_rows ?? null,
        dead_letters: hb?.dead_letters ?? null,
        dropped_rows: hb?.dropped_rows ?? null,
      };
    });
    return { now, agents: agents.sort(byRegion) };
  }
}

function headlineOf(r: ReportRow): RegionHeadline {
  const baselines = Object.fromEntries(
    Object.entries(r.baselines).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])),
  );
  return {
    protocol: r.protocol,
    metric: r.metric,
    scope: r.scope,
    rounds: r.rounds,
    pairs: r.pairs,
    anycast_p50_ms: r.anycast_p50_ms ?? null,
    baseline_p50_ms: r.baseline_p50_ms ?? null,
    saved_ms: r.saved_ms ?? null,
    saved_pct: r.saved_pct ?? null,
    ci_low_ms: r.ci_low_ms ?? null,
    ci_high_ms: r.ci_high_ms ?? null,
    win_rate: r.win_rate ?? null,
    baselines,
  };
}

/** Loss in % of samples sent: per path the worst of its metrics, then the worst anycast path and unicast endpoint. */
function lossOf(totals: readonly LossTotal[]): {
  anycast: number | null;
  unicast: number | null;
  unicastEndpoint: string | null;
} {
  const worst = new Map<string, { kind: LossTotal['kind']; pct: number }>();
  for (const t of totals) {
    if (t.sent <= 0) continue;
    const pct = (100 * (t.sent - t.received)) / t.sent;
    const prev = worst.get(t.endpoint);
    if (!prev || pct > prev.pct) worst.set(t.endpoint, { kind: t.kind, pct });
  }
  let anycast: number | null = null;
  let unicast: number | null = null;
  let unicastEndpoint: string | null = null;
  for (const [endpoint, { kind, pct }] of [...worst].sort((a, b) => a[0].localeCompare(b[0]))) {
    if (kind === 'anycast') anycast = Math.max(anycast ?? 0, pct);
    else if (unicast === null || pct > unicast) {
      unicast = pct;
      unicastEndpoint = endpoint;
    }
  }
  return { anycast, unicast, unicastEndpoint: unicast ? unicastEndpoint : null };
}
