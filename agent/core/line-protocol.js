export const MEASUREMENTS = { latency: 'latency', benefit: 'benefit', agent: 'agent', event: 'event' };
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
];
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
];
const LATENCY_INTS = ['sent', 'received', 'flagged', 'late', 'duplicate', 'stray', 'invalid'];
const BENEFIT_FLOATS = [
    'anycast_p50_ms',
    'baseline_p50_ms',
    'saved_ms',
    'saved_pct',
    'ci_low_ms',
    'ci_high_ms',
    'win_rate',
];
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
];
/**
 * Names a config label may not take: the schema's tags, its field keys, and `time` (InfluxDB drops
 * a tag named time). Labels starting with `_` are InfluxDB 2's own columns and are refused too.
 */
export const RESERVED_LABELS = [...new Set([...RESERVED_TAGS, ...FIELD_KEYS, 'time'])];
/** True when `key` cannot be a label (see RESERVED_LABELS). */
export function isReservedLabel(key) {
    return key.startsWith('_') || RESERVED_LABELS.includes(key);
}
function escapeKey(s) {
    return s.replace(/[,= \\]/g, (c) => `\\${c}`).replace(/\n/g, '\\n');
}
function escapeMeasurement(s) {
    return s.replace(/[, \\]/g, (c) => `\\${c}`);
}
function escapeString(s) {
    return s.replace(/["\\]/g, (c) => `\\${c}`).replace(/\n/g, '\\n');
}
function formatFloat(n) {
    // JavaScript's shortest round-trip form; exponent notation is valid line protocol.
    return String(n);
}
function line(measurement, tags, fields, ms) {
    const tagPart = Object.keys(tags)
        .filter((k) => tags[k] !== undefined && tags[k] !== '')
        .sort()
        .map((k) => `,${escapeKey(k)}=${escapeKey(tags[k])}`)
        .join('');
    const fieldParts = [];
    for (const [k, v] of Object.entries(fields)) {
        if (v === undefined)
            continue;
        if ('float' in v) {
            if (!Number.isFinite(v.float))
                continue;
            fieldParts.push(`${escapeKey(k)}=${formatFloat(v.float)}`);
        }
        else if ('int' in v) {
            if (!Number.isInteger(v.int))
                continue;
            fieldParts.push(`${escapeKey(k)}=${v.int}i`);
        }
        else {
            fieldParts.push(`${escapeKey(k)}="${escapeString(v.str)}"`);
        }
    }
    // A point needs at least one field; a path with nothing measured still writes sent/loss.
    if (fieldParts.length === 0)
        return undefined;
    return `${escapeMeasurement(measurement)}${tagPart} ${fieldParts.join(',')} ${Math.round(ms)}`;
}
function agentTags(agent) {
    return { ...(agent.labels ?? {}), agent: agent.id, agent_region: agent.region };
}
function float(n) {
    return n === undefined ? undefined : { float: n };
}
function int(n) {
    return n === undefined ? undefined : { int: n };
}
function str(s) {
    return s === undefined ? undefined : { str: s };
}
/** Milliseconds since the epoch of an ISO timestamp; throws on garbage (a bug, not data). */
export function isoToMs(iso) {
    const ms = Date.parse(iso);
    if (Number.isNaN(ms))
        throw new Error(`not an ISO timestamp: ${iso}`);
    return ms;
}
export function latencyLine(agent, service, path, ms) {
    const fields = {};
    for (const k of LATENCY_INTS)
        fields[k] = int(path[k]);
    for (const k of LATENCY_FLOATS)
        fields[k] = float(path[k]);
    fields.site = str(path.site);
    return line(MEASUREMENTS.latency, {
        ...agentTags(agent),
        service,
        endpoint: path.endpoint,
        kind: path.kind,
        protocol: path.protocol,
        metric: path.metric,
        scope: path.scope,
    }, fields, ms);
}
export function benefitLine(agent, service, row, ms) {
    const fields = {};
    for (const k of BENEFIT_FLOATS)
        fields[k] = float(row[k]);
    fields.pairs = int(row.pairs);
    return line(MEASUREMENTS.benefit, { ...agentTags(agent), service, protocol: row.protocol, metric: row.metric, scope: row.scope, baseline: row.baseline }, fields, ms);
}
export function eventLine(agent, event, ms) {
    return line(MEASUREMENTS.event, { ...agentTags(agent), service: event.service, type: event.type }, { message: str(event.message), from: str(event.from), to: str(event.to) }, ms);
}
export function heartbeatLine(hb) {
    return line(MEASUREMENTS.agent, agentTags(hb.agent), {
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
    }, isoToMs(hb.at));
}
/** Every point of one round, stamped with the round's start: latency, benefit, then events. */
export function roundToLines(round) {
    const ms = isoToMs(round.started_at);
    const out = [];
    for (const p of round.paths)
        out.push(latencyLine(round.agent, round.service, p, ms));
    for (const b of round.benefit)
        out.push(benefitLine(round.agent, round.service, b, ms));
    for (const e of round.events ?? [])
        out.push(eventLine(round.agent, e, ms));
    return out.filter((l) => l !== undefined);
}
