// The line protocol the agent writes, as InfluxDB and Grafana read it: golden lines for a round,
// its events and a heartbeat (test/golden/line-protocol.txt; refresh with
// ANYLAT_UPDATE_GOLDEN=1 after a deliberate schema change, and review the diff), plus the rules
// that make it correct: escaping, int/float/string types, absent metrics absent, NaN dropped.
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import type { AgentHeartbeat, RoundResult } from '../agent/core/model.ts';
import {
  eventLine,
  FIELD_KEYS,
  heartbeatLine,
  isoToMs,
  isReservedLabel,
  RESERVED_TAGS,
  roundToLines,
} from '../agent/core/line-protocol.ts';

const GOLDEN = new URL('./golden/line-protocol.txt', import.meta.url);

const ROUND: RoundResult = {
  agent: { id: 'eu-1', region: 'eu-west-1', labels: { team: 'net ops', dc: 'dub,1' } },
  service: 'web shop',
  started_at: '2025-03-01T12:00:00.123Z',
  scheduled_at: '2025-03-01T12:00:00.000Z',
  duration_ms: 4210,
  paths: [
    {
      endpoint: 'anycast',
      kind: 'anycast',
      address: '198.18.0.10',
      protocol: 'udp',
      metric: 'rtt',
      scope: 'end_to_end',
      site: 'edge "eu"',
      sent: 20,
      received: 19,
      loss_pct: 5,
      min_ms: 10.1,
      p50_ms: 10.4,
      p90_ms: 10.9,
      p99_ms: 11.6,
      max_ms: 11.7,
      mean_ms: 10.5,
      stddev_ms: 0.3,
      jitter_ms: 0.2,
      flagged: 1,
      failures: { timeout: 1 },
      late: 0,
      duplicate: 0,
      stray: 0,
      invalid: 0,
    },
    {
      // Everything failed: no statistics, so none may be written (not 0), but loss always is.
      endpoint: 'us-east-1',
      kind: 'unicast',
      address: '198.18.1.10',
      protocol: 'tcp',
      metric: 'connect',
      scope: 'end_to_end',
      sent: 20,
      received: 0,
      loss_pct: 100,
      flagged: 0,
      failures: { refused: 20 },
    },
    {
      endpoint: 'anycast',
      kind: 'anycast',
      address: '198.18.0.10',
      protocol: 'icmp',
      metric: 'rtt',
      scope: 'edge',
      sent: 20,
      received: 20,
      loss_pct: 0,
      min_ms: 1e-7,
      p50_ms: Number.NaN,
      p90_ms: Number.POSITIVE_INFINITY,
      mean_ms: 2,
      flagged: 0,
    },
  ],
  benefit: [
    {
      protocol: 'udp',
      metric: 'rtt',
      scope: 'end_to_end',
      baseline: 'us-east-1',
      anycast_p50_ms: 10.4,
      baseline_p50_ms: 41,
      saved_ms: 30.6,
      saved_pct: 74.6,
      ci_low_ms: 30.2,
      ci_high_ms: 31,
      win_rate: 1,
      pairs: 20,
    },
    {
      protocol: 'tcp',
      metric: 'connect',
      scope: 'edge',
      baseline: 'us-east-1',
      anycast_p50_ms: 1.5,
      baseline_p50_ms: 40.25,
      saved_ms: 38.75,
      saved_pct: 96.3,
      win_rate: 0.95,
      pairs: 19,
    },
  ],
  events: [
    {
      type: 'site_change',
      service: 'web shop',
      message: 'anycast/udp: "edge-eu" -> edge\\us\nnow',
      from: 'edge-eu',
      to: 'edge\\us',
    },
    { type: 'path_down', service: 'web shop', message: 'us-east-1/tcp stopped answering' },
  ],
};

const HEARTBEAT: AgentHeartbeat = {
  agent: { id: 'eu-1', region: 'eu-west-1' },
  at: '2025-03-01T12:01:00.000Z',
  version: '0.1.0',
  uptime_s: 3600.5,
  lat: 53.35,
  lon: -6.26,
  loop_lag_p99_ms: 1.25,
  rounds_late: 2,
  rounds_skipped: 1,
  rounds_failed: 3,
  sink_batch: 2500,
  outbox_rows: 120,
  dead_letters: 1,
  dropped_rows: 0,
};

function allLines(): string[] {
  const bare: AgentHeartbeat = {
    ...HEARTBEAT,
    agent: { id: 'ap-1', region: 'ap-southeast-2' },
    version: '0.1.0',
    lat: undefined,
    lon: undefined,
    dropped_rows: undefined,
  };
  return [...roundToLines(ROUND), heartbeatLine(HEARTBEAT)!, heartbeatLine(bare)!];
}

/** Splits a line into measurement, tags, fields and timestamp, honouring escapes and quotes. */
function parse(line: string): {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, string>;
  ts: string;
} {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && i + 1 < line.length) {
      cur += c + line[i + 1];
      i++;
    } else if (c === '"') {
      quoted = !quoted;
      cur += c;
    } else if (c === ' ' && !quoted) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  assert.equal(parts.length, 3, `three space-separated sections in ${line}`);
  const split = (s: string, sep: string) => {
    const out: string[] = [];
    let acc = '';
    let q = false;
    for (let i = 0; i < s.length; i++) {
      const c = s[i]!;
      if (c === '\\' && i + 1 < s.length) {
        acc += c + s[i + 1];
        i++;
      } else if (c === '"') {
        q = !q;
        acc += c;
      } else if (c === sep && !q) {
        out.push(acc);
        acc = '';
      } else acc += c;
    }
    out.push(acc);
    return out;
  };
  const [head, fieldPart, ts] = parts as [string, string, string];
  const [measurement, ...tagKvs] = split(head, ',');
  const kv = (s: string) => {
    const [k, ...rest] = split(s, '=');
    return [k!, rest.join('=')] as const;
  };
  return {
    measurement: measurement!,
    tags: Object.fromEntries(tagKvs.map(kv)),
    fields: Object.fromEntries(split(fieldPart, ',').map(kv)),
    ts,
  };
}

test('a round, its events and heartbeats serialize to the golden lines', () => {
  const text = `${allLines().join('\n')}\n`;
  if (process.env.ANYLAT_UPDATE_GOLDEN === '1') writeFileSync(GOLDEN, text);
  assert.equal(text, readFileSync(GOLDEN, 'utf8'));
});

test('every point of a round carries the round start in ms', () => {
  const ms = isoToMs(ROUND.started_at);
  assert.equal(ms, 1740830400123);
  for (const l of roundToLines(ROUND)) assert.equal(parse(l).ts, String(ms));
  assert.equal(parse(heartbeatLine(HEARTBEAT)!).ts, String(Date.parse(HEARTBEAT.at)));
});

test('tags: the schema tags plus labels, sorted, escaped; no address, no error text', () => {
  const lines = roundToLines(ROUND).map(parse);
  const latency = lines.filter((l) => l.measurement === 'latency');
  assert.equal(latency.length, 3);
  assert.deepEqual(Object.keys(latency[0]!.tags), [
    'agent',
    'agent_region',
    'dc',
    'endpoint',
    'kind',
    'metric',
    'protocol',
    'scope',
    'service',
    'team',
  ]);
  // Spaces, commas and equals signs in tag values are backslash-escaped.
  assert.equal(latency[0]!.tags.service, 'web\\ shop');
  assert.equal(latency[0]!.tags.team, 'net\\ ops');
  assert.equal(latency[0]!.tags.dc, 'dub\\,1');
  for (const l of lines) {
    assert.ok(!Object.values(l.tags).some((v) => v.includes('198.18')), 'addresses never become tags');
    assert.ok(!('address' in l.fields), 'addresses are not written');
    assert.ok(!('failures' in l.fields) && !('refused' in l.fields), 'failure detail is not written');
  }
  const benefit = lines.filter((l) => l.measurement === 'benefit');
  assert.deepEqual(
    benefit.map((b) => [b.tags.protocol, b.tags.metric, b.tags.scope, b.tags.baseline]),
    [
      ['udp', 'rtt', 'end_to_end', 'us-east-1'],
      ['tcp', 'connect', 'edge', 'us-east-1'],
    ],
  );
  const events = lines.filter((l) => l.measurement === 'event');
  assert.deepEqual(
    events.map((e) => [e.tags.type, e.tags.service]),
    [
      ['site_change', 'web\\ shop'],
      ['path_down', 'web\\ shop'],
    ],
  );
});

test('types: counts are integers (i), measurements floats, names and messages strings', () => {
  const [anycast] = roundToLines(ROUND).map(parse);
  assert.equal(anycast!.fields.sent, '20i');
  assert.equal(anycast!.fields.received, '19i');
  assert.equal(anycast!.fields.flagged, '1i');
  assert.equal(anycast!.fields.late, '0i');
  assert.equal(anycast!.fields.loss_pct, '5', 'a whole-number float stays a float (no i)');
  assert.equal(anycast!.fields.p50_ms, '10.4');
  assert.equal(anycast!.fields.site, '"edge \\"eu\\""', 'string fields are quoted, inner quotes escaped');
  const benefit = roundToLines(ROUND)
    .map(parse)
    .find((l) => l.measurement === 'benefit')!;
  assert.equal(benefit.fields.pairs, '20i');
  assert.equal(benefit.fields.win_rate, '1');
  const hb = parse(heartbeatLine(HEARTBEAT)!);
  assert.equal(hb.measurement, 'agent');
  assert.deepEqual(hb.tags, { agent: 'eu-1', agent_region: 'eu-west-1' });
  assert.equal(hb.fields.version, '"0.1.0"');
  for (const k of [
    'rounds_late',
    'rounds_skipped',
    'rounds_failed',
    'sink_batch',
    'outbox_rows',
    'dead_letters',
    'dropped_rows',
  ])
    assert.match(hb.fields[k]!, /^\d+i$/, k);
  for (const k of ['uptime_s', 'lat', 'lon', 'loop_lag_p99_ms']) assert.match(hb.fields[k]!, /^-?[\d.]+$/, k);
});

test('absent metrics stay absent (never 0); loss is always written', () => {
  const [, failed, icmp] = roundToLines(ROUND).map(parse);
  assert.deepEqual(Object.keys(failed!.fields).sort(), ['flagged', 'loss_pct', 'received', 'sent']);
  assert.equal(failed!.fields.loss_pct, '100');
  assert.equal(icmp!.fields.loss_pct, '0');
  const noCi = roundToLines(ROUND)
    .map(parse)
    .filter((l) => l.measurement === 'benefit')[1]!;
  assert.ok(!('ci_low_ms' in noCi.fields) && !('ci_high_ms' in noCi.fields));
  const down = roundToLines(ROUND)
    .map(parse)
    .filter((l) => l.measurement === 'event')[1]!;
  assert.deepEqual(Object.keys(down.fields), ['message'], 'an event without from/to writes neither');
  const bare = parse(heartbeatLine({ ...HEARTBEAT, lat: undefined, lon: undefined, dropped_rows: undefined })!);
  assert.ok(!('lat' in bare.fields) && !('lon' in bare.fields) && !('dropped_rows' in bare.fields));
});

test('NaN and infinities are dropped, tiny floats keep their value', () => {
  const icmp = parse(roundToLines(ROUND)[2]!);
  assert.ok(!('p50_ms' in icmp.fields), 'NaN is not a value');
  assert.ok(!('p90_ms' in icmp.fields), 'Infinity is not a value');
  assert.equal(Number(icmp.fields.min_ms), 1e-7);
  assert.equal(icmp.fields.mean_ms, '2');
  assert.equal(heartbeatLine({ ...HEARTBEAT, uptime_s: Number.NaN })!.includes('uptime_s'), false);
});

test('string fields escape quotes, backslashes and newlines so a line stays one line', () => {
  const line = eventLine(ROUND.agent, ROUND.events![0]!, 0)!;
  assert.equal(line.split('\n').length, 1);
  const fields = parse(line).fields;
  assert.equal(fields.message, '"anycast/udp: \\"edge-eu\\" -> edge\\\\us\\nnow"');
  assert.equal(fields.to, '"edge\\\\us"');
});

test('empty tag values are left out instead of writing an invalid line', () => {
  const line = roundToLines({
    ...ROUND,
    agent: { id: 'eu-1', region: 'eu-west-1', labels: { team: '' } },
    benefit: [],
    events: [],
  })[0]!;
  assert.ok(!line.includes('team='), line);
});

test('labels may not reuse a tag, a field key or time: every key the lines carry is reserved', () => {
  const written = new Set<string>();
  for (const l of allLines().map(parse)) {
    for (const k of Object.keys(l.tags)) if (!['team', 'dc'].includes(k)) written.add(k);
    for (const k of Object.keys(l.fields)) written.add(k);
  }
  for (const k of written) assert.ok(isReservedLabel(k), `${k} is written by the agent, so it must be reserved`);
  for (const k of RESERVED_TAGS) assert.ok(isReservedLabel(k), k);
  assert.ok(FIELD_KEYS.includes('site') && isReservedLabel('site'), 'a label named site would clash with latency.site');
  assert.ok(isReservedLabel('time') && isReservedLabel('_field'));
  assert.ok(!isReservedLabel('team') && !isReservedLabel('env'));
});
