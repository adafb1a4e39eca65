// The vocabulary of anylat, declared once. Probes, rounds, the store, the sink, the dashboards and
// the alert rules all import these names instead of spelling them again (DESIGN.md, "Concepts").

/** Protocols a probe can speak. The probe registry is keyed by this union. */
export const PROTOCOLS = ['udp', 'tcp', 'tls', 'http', 'icmp', 'dns', 'transfer'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** What a probe times. */
export const METRICS = [
  'rtt',
  'connect',
  'handshake',
  'dns',
  'ttfb',
  'total',
  'warm',
  'tls',
  'query',
  'download',
  'goodput_mbps',
] as const;
export type Metric = (typeof METRICS)[number];

/** Metrics each protocol can report, in display order. */
export const PROTOCOL_METRICS: { readonly [P in Protocol]: readonly Metric[] } = {
  udp: ['rtt'],
  tcp: ['connect', 'rtt'],
  tls: ['handshake'],
  http: ['dns', 'connect', 'tls', 'ttfb', 'total', 'warm'],
  icmp: ['rtt'],
  dns: ['query'],
  transfer: ['ttfb', 'download', 'goodput_mbps'],
};

/** Metrics that are not a time (their `*_ms` fields hold another unit) and have no benefit row. */
export const RATE_METRICS: readonly Metric[] = ['goodput_mbps'];

/**
 * `edge`: the anycast side of this metric ends at the accelerator's edge (a TCP handshake when the
 * accelerator terminates TCP), so comparing it with a unicast path overstates the benefit.
 * `end_to_end`: both sides travel to the origin; only these make the headline benefit.
 */
export type Scope = 'edge' | 'end_to_end';

/** Metrics the accelerator answers itself when it terminates TCP. */
export const EDGE_TERMINATED: ReadonlyArray<readonly [Protocol, Metric]> = [
  ['tcp', 'connect'],
  ['http', 'connect'],
];

/** ICMP is answered by whoever holds the address: the edge, never the origin. */
export function scopeOf(protocol: Protocol, metric: Metric, terminatesTcp: boolean): Scope {
  if (protocol === 'icmp') return 'edge';
  if (terminatesTcp && EDGE_TERMINATED.some(([p, m]) => p === protocol && m === metric)) return 'edge';
  return 'end_to_end';
}

export type EndpointKind = 'anycast' | 'unicast';

/** One address a service is reached at. The anycast endpoint is always named `anycast`. */
export interface Endpoint {
  name: string;
  kind: EndpointKind;
  /** IP literal or host name as configured; probes receive it resolved (see `address`). */
  host: string;
}

/** Why a sample failed. Low-cardinality: these become counts, never tags. */
export const FAILURE_REASONS = [
  'timeout',
  'refused',
  'unreachable',
  'reset',
  'dns',
  'tls',
  'http_status',
  'protocol',
  'error',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/**
 * One timed attempt. `t0`/`t1` are `performance.now()` readings taken when the attempt started and
 * when its last callback fired: the round uses them to flag samples that overlapped event-loop lag.
 * A failed attempt may still carry the metrics it completed before failing (HTTP connect before
 * a timed-out response).
 *
 * `lagWindows`, when a probe sets it, says per metric when event-loop lag could have inflated that
 * metric's value: `[from, to]` in `performance.now()` time (a single exchange stamped in its reply's
 * callback: `[at, at]`; several callbacks in a row: the stretch they span). A metric without an
 * entry was timed by the kernel or another process and is never flagged. Without `lagWindows` the
 * round falls back to `t0`/`t1`.
 */
export type LagWindows = Partial<Record<Metric, LagWindow | readonly LagWindow[]>>;

/**
 * When one metric was exposed to event-loop lag: `[at, at]` for one callback, `[from, to]` for a
 * stretch of several. A metric summed from several timed pieces (http `total`) lists one per piece
 * the monotonic clock timed; it is flagged when any of them is.
 */
export type LagWindow = readonly [number, number];

export type Attempt =
  | {
      ok: true;
      t0: number;
      t1: number;
      values: Partial<Record<Metric, number>>;
      site?: string;
      lagWindows?: LagWindows;
    }
  | {
      ok: false;
      t0: number;
      t1: number;
      values: Partial<Record<Metric, number>>;
      reason: FailureReason;
      detail?: string;
      site?: string;
      lagWindows?: LagWindows;
    };

/** Per-session packet accounting a UDP (STAMP) path reports besides loss. */
export interface PacketCounters {
  /** replies that arrived after their sample had timed out */
  late: number;
  /** a second reply for a sequence number already answered */
  duplicate: number;
  /** valid STAMP replies for a sequence number this session never sent */
  stray: number;
  /** datagrams that were not a valid STAMP reply (wrong size, bad HMAC, ...) */
  invalid: number;
}

/** Statistics for one (endpoint, protocol, metric) over a round. Field names are InfluxDB's. */
export interface PathResult {
  endpoint: string;
  kind: EndpointKind;
  address: string;
  protocol: Protocol;
  metric: Metric;
  scope: Scope;
  /** transfer only: the object size downloaded (`16KiB`, `2MiB`), a tag */
  size?: string;
  site?: string;
  sent: number;
  received: number;
  loss_pct: number;
  min_ms?: number;
  p50_ms?: number;
  p90_ms?: number;
  p99_ms?: number;
  max_ms?: number;
  mean_ms?: number;
  stddev_ms?: number;
  jitter_ms?: number;
  /** samples taken while the event loop lagged; counted in `received`, kept out of the stats */
  flagged: number;
  /** failure reasons and their counts, for humans (not written to InfluxDB) */
  failures?: Partial<Record<FailureReason, number>>;
  late?: number;
  duplicate?: number;
  stray?: number;
  invalid?: number;
}

/** baseline − anycast for one (protocol, metric); positive means anycast is faster. */
export interface BenefitRow {
  protocol: Protocol;
  metric: Metric;
  scope: Scope;
  /** transfer only: the object size, as on its paths */
  size?: string;
  baseline: string;
  anycast_p50_ms: number;
  baseline_p50_ms: number;
  saved_ms: number;
  saved_pct: number;
  ci_low_ms?: number;
  ci_high_ms?: number;
  win_rate: number;
  pairs: number;
}

export interface AgentIdentity {
  id: string;
  region: string;
  labels?: Record<string, string>;
}

/** What made the agent trace a path: an event of the round, or its benefit leaving its recent median. */
export const TRACE_TRIGGERS = ['site_change', 'path_down', 'benefit_shift'] as const;
export type TraceTrigger = (typeof TRACE_TRIGGERS)[number];

/** One TTL of a trace: who answered (no address when nobody did before the probe timeout). */
export interface TraceHop {
  ttl: number;
  address?: string;
  rtt_ms?: number;
  name?: string;
  /** the target itself answered (port unreachable, or a reply) */
  reached?: boolean;
  /** an ICMP error other than time exceeded / port unreachable: `!N`, `!H`, `!P`, `!A`, `!<code>` */
  note?: string;
}

/** A trace the agent took because something changed: stored with the round's events, written as `trace`. */
export interface PathTrace {
  agent: AgentIdentity;
  service: string;
  trigger: TraceTrigger;
  /** why, in words (the event's message, or the shift) */
  reason: string;
  endpoint: string;
  kind: EndpointKind;
  address: string;
  /** the start of the round that triggered it (the event's time) */
  at: string;
  traced_at: string;
  duration_ms: number;
  reached: boolean;
  hops: TraceHop[];
}

export const EVENT_TYPES = ['site_change', 'path_down', 'path_up'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface AnylatEvent {
  type: EventType;
  service: string;
  message: string;
  from?: string;
  to?: string;
}

/** Everything one round measured. `compare --json` prints exactly this. */
export interface RoundResult {
  agent: AgentIdentity;
  service: string;
  /** ISO 8601, millisecond precision: the timestamp of every point the round writes */
  started_at: string;
  /** when the schedule wanted the round to start; absent for ad-hoc rounds */
  scheduled_at?: string;
  duration_ms: number;
  paths: PathResult[];
  benefit: BenefitRow[];
  events?: AnylatEvent[];
}

/** The `agent` heartbeat measurement. */
export interface AgentHeartbeat {
  agent: AgentIdentity;
  at: string;
  version: string;
  uptime_s: number;
  lat?: number;
  lon?: number;
  loop_lag_p99_ms: number;
  rounds_late: number;
  /** rounds that never reached the store: skipped after a stall or abandoned at their deadline */
  rounds_skipped?: number;
  /** rounds measured but lost because the store could not be written (disk full, I/O error) */
  rounds_failed?: number;
  /** lines per InfluxDB request now: smaller than configured after timeouts (absent without InfluxDB) */
  sink_batch?: number;
  outbox_rows: number;
  dead_letters: number;
  /** rows the store's retention dropped since the agent started */
  dropped_rows?: number;
  /** the running config's version (a hash of its text; equal across agents given the same text) */
  config_version?: string;
  /** when that config was published (file mtime, the server's Last-Modified), epoch seconds */
  config_published_s?: number;
  /** 1 when the last reload was applied (or had nothing to change), 0 when it failed; absent before one */
  config_reload_ok?: number;
}
