// InfluxDB line protocol for everything the agent writes (DESIGN.md, "InfluxDB schema"). This is
// the only serializer: the outbox stores its output, the sink sends it, and the dashboard tests
// load InfluxDB with it. Timestamps are milliseconds (write with precision=ms).
import type {
  AgentHeartbeat,
  AgentIdentity,
  AnylatEvent,
  BenefitRow,
  PathResult,
  PathTrace,
  RoundResult,
} from './model.ts';

export const MEASUREMENTS = {
  latency: 'latency',
  benefit: 'benefit',
  agent: 'agent',
  event: 'event',
  trace: 'trace',
} as const;

/** Tag keys the schema owns; config labels may not reuse them. */
export const RESERVED_TAGS = [
  'agent',
  'agent_region',
  'service',
  'endpoint',
  'kind',
  'protocol',
  'metric',
  'scope',
  'baseline',
  'type',
  'size',
  'trigger',
] as const;

type FieldValue = { float: number } | { int: number } | { str: string } | { bool: boolean };

const LATENCY_FLOATS = [
  'loss_pct',
  'min_ms',
  'p50_ms',
  'p90_ms',
  'p99_ms',
  'max_ms',
  'mean_ms',
  'stddev_ms',
  'jitter_ms',
] as const satisfies ReadonlyArray<keyof PathResult>;
const LATENCY_INTS = [
  'sent',
  'received',
  'flagged',
  'late',
  'duplicate',
  'stray',
  'invalid',
] as const satisfies ReadonlyArray<keyof PathResult>;
const BENEFIT_FLOATS = [
  'anycast_p50_ms',
  'baseline_p50_ms',
  'saved_ms',
  'saved_pct',
  'ci_low_ms',
  'ci_high_ms',
  'win_rate',
] as const satisfies ReadonlyArray<keyof BenefitRow>;

/**
 * Every field key the schema writes. A label (tag) with one of these names would give a point a
 * tag and a field with the same key, which InfluxQL can only tell apart with `::tag`/`::field`
 * and Flux's pivot mixes up.
 */
export const FIELD_KEYS = [
  ...LATENCY_INTS,
  ...LATENCY_FLOATS,
  'site',
  ...BENEFIT_FLOATS,
  'pairs',
  'version',
  'uptime_s',
  'lat',
  'lon',
  'loop_lag_p99_ms',
  'rounds_late',
  'rounds_skipped',
  'rounds_failed',
  'sink_batch',
  'outbox_rows',
  'dead_letters',
  'dropped_rows',
  'config_version',
  'config_published_s',
  'config_reload_ok',
  'message',
  'from',
  'to',
] as const;

/**
 * Names a config label may not take: the schema's tags, its field keys, and `time` (InfluxDB drops
 * a tag named time). Labels starting with `_` are InfluxDB 2's own columns and are refused too.
 */
export const RESERVED_LABELS: readonly string[] = [...new Set<string>([...RESERVED_TAGS, ...FIELD_KEYS, 'time'])];

/** True when `key` cannot be a label (see RESERVED_LABELS). */
export function isReservedLabel(key: string): boolean {
  return key.startsWith('_') || RESERVED_LABELS.includes(key);
}

function escapeKey(s: string): string {
  return s.replace(/[,= \\]/g, (c) => `\\${c}`).replace(/\n/g, '\\n');
}

function escapeMeasurement(s: string): string {
  return s.replace(/[, \\]/g, (c) => `\\${c}`);
}

function escapeString(s: string): string {
  return s.replace(/["\\]/g, (c) => `\\${c}`).replace(/\n/g, '\\n');
}

function formatFloat(n: number): string {
  // JavaScript's shortest round-trip form; exponent notation is valid line protocol.
  return String(n);
}

function line(
  measurement: string,
  tags: Record<string, string | undefined>,
  fields: Record<string, FieldValue | undefined>,
  ms: number,
): string | undefined {
  const tagPart = Object.keys(tags)
    .filter((k) => tags[k] !== undefined && tags[k] !== '')
    .sort()
    .map((k) => `,${escapeKey(k)}=${escapeKey(tags[k]!)}`)
    .join('');
  const fieldParts: string[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    if ('float' in v) {
      if (!Number.isFinite(v.float)) continue;
      fieldParts.push(`${escapeKey(k)}=${formatFloat(v.float)}`);
    } else if ('int' in v) {
      if (!Number.isInteger(v.int)) continue;
      fieldParts.push(`${escapeKey(k)}=${v.int}i`);
    } else if ('bool' in v) {
      fieldParts.push(`${escapeKey(k)}=${v.bool ? 'true' : 'false'}`);
    } else {
      fieldParts.push(`${escapeKey(k)}="${escapeString(v.str)}"`);
    }
  }
  // A point needs at least one field; a path with nothing measured still writes sent/loss.
  if (fieldParts.length === 0) return undefined;
  return `${escapeMeasurement(measurement)}${tagPart} ${fieldParts.join(',')} ${Math.round(ms)}`;
}

function agentTags(agent: AgentIdentity): Record<string, string | undefined> {
  return { ...(agent.labels ?? {}), agent: agent.id, agent_region: agent.region };
}

function float(n: number | undefined): FieldValue | undefined {
  return n === undefined ? undefined : { float: n };
}

function int(n: number | undefined): FieldValue | undefined {
  return n === undefined ? undefined : { int: n };
}

function str(s: string | undefined): FieldValue | undefined {
  return s === undefined ? undefined : { str: s };
}

/** Milliseconds since the epoch of an ISO timestamp; throws on garbage (a bug, not data). */
export function isoToMs(iso: string): number {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`not an ISO timestamp: ${iso}`);
  return ms;
}

export function latencyLine(agent: AgentIdentity, service: string, path: PathResult, ms: number): string | undefined {
  const fields: Record<string, FieldValue | undefined> = {};
  for (const k of LATENCY_INTS) fields[k] = int(path[k]);
  for (const k of LATENCY_FLOATS) fields[k] = float(path[k]);
  fields.site = str(path.site);
  return line(
    MEASUREMENTS.latency,
    {
      ...agentTags(agent),
      service,
      endpoint: path.endpoint,
      kind: path.kind,
      protocol: path.protocol,
      metric: path.metric,
      scope: path.scope,
      size: path.size,
    },
    fields,
    ms,
  );
}

export function benefitLine(agent: AgentIdentity, service: string, row: BenefitRow, ms: number): string | undefined {
  const fields: Record<string, FieldValue | undefined> = {};
  for (const k of BENEFIT_FLOATS) fields[k] = float(row[k]);
  fields.pairs = int(row.pairs);
  return line(
    MEASUREMENTS.benefit,
    {
      ...agentTags(agent),
      service,
      protocol: row.protocol,
      metric: row.metric,
      scope: row.scope,
      baseline: row.baseline,
      size: row.size,
    },
    fields,
    ms,
  );
}

export function eventLine(agent: AgentIdentity, event: AnylatEvent, ms: number): string | undefined {
  return line(
    MEASUREMENTS.event,
    { ...agentTags(agent), service: event.service, type: event.type },
    { message: str(event.message), from: str(event.from), to: str(event.to) },
    ms,
  );
}

export function heartbeatLine(hb: AgentHeartbeat): string | undefined {
  return line(
    MEASUREMENTS.agent,
    agentTags(hb.agent),
    {
      version: str(hb.version),
      uptime_s: float(hb.uptime_s),
      lat: float(hb.lat),
      lon: float(hb.lon),
      loop_lag_p99_ms: float(hb.loop_lag_p99_ms),
      rounds_late: int(hb.rounds_late),
      rounds_skipped: int(hb.rounds_skipped),
      rounds_failed: int(hb.rounds_failed),
      sink_batch: int(hb.sink_batch),
      outbox_rows: int(hb.outbox_rows),
      dead_letters: int(hb.dead_letters),
      dropped_rows: int(hb.dropped_rows),
      config_version: str(hb.config_version),
      config_published_s: int(hb.config_published_s),
      config_reload_ok: int(hb.config_reload_ok),
    },
    isoToMs(hb.at),
  );
}

/**
 * The points of one trace, one per hop. They share their tags, so each hop is stamped with the
 * triggering round's start plus (hop − 1) ms: distinct points, and a re-sent batch overwrites
 * itself. `address`, `rtt_ms` and `name` are absent for a hop nobody answered; `reached` is always
 * written (true on the hop where the target answered).
 */
export function traceLines(t: PathTrace): string[] {
  const ms = isoToMs(t.at);
  const tags = { ...agentTags(t.agent), service: t.service, endpoint: t.endpoint, kind: t.kind, trigger: t.trigger };
  const out: Array<string | undefined> = t.hops.map((h) =>
    line(
      MEASUREMENTS.trace,
      tags,
      {
        hop: int(h.ttl),
        address: str(h.address),
        rtt_ms: float(h.rtt_ms),
        name: str(h.name),
        reached: { bool: h.reached === true },
      },
      ms + h.ttl - 1,
    ),
  );
  return out.filter((l): l is string => l !== undefined);
}

/** Every point of one round, stamped with the round's start: latency, benefit, then events. */
export function roundToLines(round: RoundResult): string[] {
  const ms = isoToMs(round.started_at);
  const out: Array<string | undefined> = [];
  for (const p of round.paths) out.push(latencyLine(round.agent, round.service, p, ms));
  for (const b of round.benefit) out.push(benefitLine(round.agent, round.service, b, ms));
  for (const e of round.events ?? []) out.push(eventLine(round.agent, e, ms));
  return out.filter((l): l is string => l !== undefined);
}
