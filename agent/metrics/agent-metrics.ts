// The agent's health as Prometheus metric families: what `/metrics` serves. Names follow the
// Prometheus conventions: an `anylat_` prefix, `_total` on counters, base units in the name
// (seconds, not ms), no agent identity in labels beyond one `anylat_agent_info` series (the
// scrape's own target labels say which agent it is; the info series joins id and region on).
import type { MetricFamily } from './exposition.ts';

/** Everything `/metrics` reports, gathered by the agent at scrape time. */
export interface AgentHealth {
  agent: { id: string; region: string };
  version: string;
  /** epoch ms when the process started */
  startedAtMs: number;
  services: number;
  rounds: { started: number; late: number; skipped: number; abandoned: number; failed: number; stored: number };
  store: { outboxRows: number; outboxOldestAtMs?: number; deadLetters: number; droppedRows: number };
  /** absent without InfluxDB */
  sink?: {
    delivered: number;
    deadLettered: number;
    lastBatchLines: number;
    consecutiveFailures: number;
    errors: Record<string, number>;
  };
  loopLag: { p99Ms: number; maxMs: number };
  config: {
    version: string;
    /** `file` or `url` */
    source: string;
    /** epoch ms the running config was published (file mtime, the server's Last-Modified) */
    publishedAtMs?: number;
    lastReload?: { ok: boolean; atMs: number };
    reloads: { applied: number; unchanged: number; failed: number };
  };
}

const s = (ms: number) => ms / 1000;

const gauge = (name: string, help: string, value: number): MetricFamily => ({
  name,
  help,
  type: 'gauge',
  samples: [{ value }],
});
const counter = (name: string, help: string, value: number): MetricFamily => ({
  name,
  help,
  type: 'counter',
  samples: [{ value }],
});

/** The families, in a fixed order, from a snapshot taken at `nowMs`. */
export function agentFamilies(h: AgentHealth, nowMs = Date.now()): MetricFamily[] {
  return [...agentAndStoreFamilies(h, nowMs), ...(h.sink ? sinkFamilies(h.sink) : []), ...configFamilies(h.config)];
}

/** The agent, its rounds, its store and its event loop. */
function agentAndStoreFamilies(h: AgentHealth, nowMs: number): MetricFamily[] {
  return [
    {
      name: 'anylat_agent_info',
      help: 'The agent: always 1, labelled with its id, region and anylat version.',
      type: 'gauge',
      samples: [{ labels: { agent: h.agent.id, region: h.agent.region, version: h.version }, value: 1 }],
    },
    gauge('anylat_start_time_seconds', 'When the agent process started, seconds since the epoch.', s(h.startedAtMs)),
    gauge('anylat_services', 'Services the running config measures.', h.services),
    counter('anylat_rounds_started_total', 'Rounds started by the schedule.', h.rounds.started),
    counter(
      'anylat_rounds_late_total',
      'Rounds that started late (behind the previous round, or past the tolerance).',
      h.rounds.late,
    ),
    counter(
      'anylat_rounds_skipped_total',
      'Rounds never started: more were waiting than the backlog holds (a stalled agent, a stepped clock).',
      h.rounds.skipped,
    ),
    counter(
      'anylat_rounds_abandoned_total',
      'Rounds abandoned at their deadline; nothing of them is stored.',
      h.rounds.abandoned,
    ),
    counter('anylat_rounds_failed_total', 'Rounds that ended but could not be written to the store.', h.rounds.failed),
    counter('anylat_rounds_stored_total', 'Rounds written to the embedded store.', h.rounds.stored),
    gauge('anylat_outbox_rows', "InfluxDB lines waiting in the store's outbox.", h.store.outboxRows),
    gauge(
      'anylat_outbox_oldest_age_seconds',
      'Age of the oldest line waiting in the outbox; 0 when it is empty.',
      h.store.outboxOldestAtMs === undefined ? 0 : Math.max(0, s(nowMs - h.store.outboxOldestAtMs)),
    ),
    gauge(
      'anylat_dead_letters',
      'Lines InfluxDB refused as malformed, kept in the store (anylat outbox requeue puts them back).',
      h.store.deadLetters,
    ),
    counter(
      'anylat_store_dropped_rows_total',
      "Rows the store's retention dropped since the agent started.",
      h.store.droppedRows,
    ),
    gauge(
      'anylat_event_loop_lag_p99_seconds',
      "99th percentile of the event loop's delay over the last minute.",
      s(h.loopLag.p99Ms),
    ),
    gauge('anylat_event_loop_lag_max_seconds', 'Longest event-loop delay over the last minute.', s(h.loopLag.maxMs)),
  ];
}

/** The InfluxDB sink, when there is one. */
function sinkFamilies(sink: NonNullable<AgentHealth['sink']>): MetricFamily[] {
  return [
    counter('anylat_sink_delivered_lines_total', 'Lines InfluxDB acknowledged.', sink.delivered),
    counter(
      'anylat_sink_dead_lettered_lines_total',
      'Lines InfluxDB refused on their own, moved to the dead letters.',
      sink.deadLettered,
    ),
    gauge('anylat_sink_batch_lines', 'Lines in the last batch sent to InfluxDB.', sink.lastBatchLines),
    gauge(
      'anylat_sink_consecutive_failures',
      'Failed attempts since the last accepted write (0 when writes go through).',
      sink.consecutiveFailures,
    ),
    {
      name: 'anylat_sink_errors_total',
      help: 'Failed writes to InfluxDB by class: unreachable, timeout, auth, not_found, throttled, server, rejected (a line refused as malformed), store.',
      type: 'counter',
      samples: Object.entries(sink.errors).map(([cls, value]) => ({ labels: { class: cls }, value })),
    },
  ];
}

/** The running config and its reloads. */
function configFamilies(c: AgentHealth['config']): MetricFamily[] {
  const out: MetricFamily[] = [];
  out.push({
    name: 'anylat_config_info',
    help: 'The running config: always 1, labelled with its version (a hash of the config text) and where it came from (file or url).',
    type: 'gauge',
    samples: [{ labels: { version: c.version, source: c.source }, value: 1 }],
  });
  if (c.publishedAtMs !== undefined) {
    out.push(
      gauge(
        'anylat_config_published_time_seconds',
        "When the running config was published (the file's mtime, the server's Last-Modified), seconds since the epoch.",
        s(c.publishedAtMs),
      ),
    );
  }
  out.push({
    name: 'anylat_config_reloads_total',
    help: 'Config reloads (SIGHUP, a new version at the URL) by result: applied, unchanged, failed (the running config was kept).',
    type: 'counter',
    samples: (['applied', 'unchanged', 'failed'] as const).map((result) => ({
      labels: { result },
      value: c.reloads[result],
    })),
  });
  if (c.lastReload) {
    out.push(
      gauge(
        'anylat_config_last_reload_success',
        'Whether the last reload was applied or unchanged (1) or failed (0).',
        c.lastReload.ok ? 1 : 0,
      ),
      gauge(
        'anylat_config_last_reload_time_seconds',
        'When the last reload was attempted, seconds since the epoch.',
        s(c.lastReload.atMs),
      ),
    );
  }
  return out;
}
