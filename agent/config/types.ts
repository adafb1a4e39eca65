// The typed config every part after loading works on: defaults filled, durations in ms, files read,
// relative paths made absolute. Field names are TypeScript's; the YAML's are snake_case.
import type { RoundProtocols } from '../round/run-round.ts';
import type { Secret } from '../core/secret.ts';

export interface AgentSection {
  /** `agent.id`, the host name when not set */
  id: string;
  region: string;
  lat?: number;
  lon?: number;
  /** extra tags on every point; never one of RESERVED_TAGS */
  labels: Record<string, string>;
}

export interface UnicastEndpoint {
  name: string;
  /** IP literal or host name as configured */
  host: string;
}

export interface ServiceConfig {
  name: string;
  /** one or more anycast addresses or names (Global Accelerator: its two static IPs) */
  anycast: string[];
  unicast: UnicastEndpoint[];
  /** `nearest` or one of the unicast names */
  baseline: string;
  terminatesTcp: boolean;
  /** protocols to probe with their options (the round adds the timeout) */
  probes: RoundProtocols;
  samples: number;
  spacingMs: number;
  timeoutMs: number;
  maxInFlight?: number;
  /** cron expression (5 fields, or 6 with seconds first) */
  schedule: string;
  /** shortest gap between two fires of `schedule` */
  intervalMs: number;
  /** a round still running this long after it started is abandoned; always < intervalMs */
  deadlineMs: number;
}

export interface StoreSection {
  /** absolute path of the SQLite file */
  path: string;
  retention: { ageMs: number; rows: number };
}

export interface InfluxSection {
  url: string;
  token: Secret;
  /** empty for InfluxDB 1.x and VictoriaMetrics, which ignore it */
  org: string;
  bucket: string;
  /** a batch drawing 5xx this long is bisected and the lines the server refuses alone set aside */
  setAsideAfterMs: number;
}

export interface WebSection {
  host: string;
  port: number;
  /** `web.metrics: true`: `/metrics` (Prometheus) next to the page */
  metrics?: boolean;
}

/** `metrics.listen`: where `/metrics` (Prometheus) is served. */
export interface MetricsSection {
  host: string;
  port: number;
}

/** Which text a config came from: what the fleet compares to see who runs an older one. */
export interface ConfigOrigin {
  /** `file` or `url` */
  kind: 'file' | 'url';
  /** the first 12 hex digits of the SHA-256 of the text: equal for every agent given the same text */
  version: string;
  /** when the text was published: the file's mtime, the server's Last-Modified (epoch ms) */
  publishedAtMs?: number;
}

/** A loaded, validated config. */
/** `trace:`: trace the anycast address and the baseline when a site changes, a path goes down or the benefit shifts. */
export interface TraceSection {
  enabled: boolean;
  /** a benefit (end_to_end saved_ms) this far from its recent median triggers a trace */
  shiftMs: number;
  /** at most one trace per (service, endpoint) within this */
  minIntervalMs: number;
  maxHops: number;
  /** first UDP destination port of the probes */
  port: number;
  /** reverse names of hop addresses (getnameinfo: /etc/hosts, then DNS) */
  names: boolean;
}

/** What `trace:` means when it says nothing (a `trace:` block alone turns tracing on). */
export const TRACE_CONFIG_DEFAULTS = { shiftMs: 20, minIntervalMs: 10 * 60_000, maxHops: 16, port: 33434 } as const;

export interface AnylatConfig {
  /** the file it came from, as given */
  file: string;
  agent: AgentSection;
  services: ServiceConfig[];
  store: StoreSection;
  influx?: InfluxSection;
  web?: WebSection;
  metrics?: MetricsSection;
  /** `trace:`: path context when something changes (absent: no traces) */
  trace?: TraceSection;
  /** set by the loader: which text this is */
  origin: ConfigOrigin;
  /** the indexes of the `agents:` entries that applied to this agent, when the config has any */
  agentParts?: number[];
}
