// Store + sink against a real VictoriaMetrics on loopback (it speaks InfluxDB's /api/v2/write):
// the schema arrives with its tags and values, an outage loses and duplicates nothing, and a
// line the server refuses becomes a dead letter while the rounds behind it arrive.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, afterEach, before, test } from 'node:test';
import type { AgentHeartbeat, RoundResult } from '../agent/core/model.ts';
import { roundToLines } from '../agent/core/line-protocol.ts';
import { Sink, type SinkOptions } from '../agent/sink/index.ts';
import { openStore, type OutboxEntry, type Store } from '../agent/store/index.ts';
import { makeRound, udpPath, benefitRow } from './support/rounds.ts';
import { Victoria, type ExportedSeries } from '../bench/lib/victoria.ts';

let dir: string;
let n = 0;
const cleanups: Array<() => Promise<void> | void> = [];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'anylat-sinkvm-'));
});
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function setup(
  agent: string,
  opts: Partial<SinkOptions> = {},
  vmFlags: string[] = [],
): Promise<{ vm: Victoria; store: Store; sink: Sink; logs: string[] }> {
  const vm = await Victoria.start({ flags: vmFlags });
  const store = openStore(join(dir, `vm${++n}.db`), { retention: { maxAgeMs: 86_400_000, maxRows: 10_000 } });
  const logs: string[] = [];
  const sink = new Sink({
    store,
    agent,
    // VictoriaMetrics ignores org and token; they are sent as they would be to InfluxDB 2.
    influx: { url: vm.url, token: 'not-checked-by-vm', org: 'anylat', bucket: 'anylat', timeoutMs: 3000 },
    backoff: { initialMs: 50, maxMs: 400 },
    idlePollMs: 50,
    log: (l) => logs.push(l),
    ...opts,
  });
  cleanups.push(async () => {
    await sink.stop();
    store.close();
    await vm.destroy();
  });
  return { vm, store, sink, logs };
}

async function until(what: string, fn: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(25);
  }
}

function find(series: ExportedSeries[], name: string, labels: Record<string, string>): ExportedSeries[] {
  return series.filter(
    (s) => s.metric.__name__ === name && Object.entries(labels).every(([k, v]) => s.metric[k] === v),
  );
}

function labelsOf(s: ExportedSeries): Record<string, string> {
  const { __name__: _n, ...rest } = s.metric;
  return rest;
}

test('every measurement and field of the schema arrives with its tags and values', async () => {
  const agent = 'vm-schema';
  const { vm, store, sink } = await setup(agent);
  const t = Date.now() - 5000;
  const round: RoundResult = makeRound({
    agent,
    region: 'eu-west-1',
    startedAt: t,
    labels: { team: 'net' },
    paths: [
      udpPath('anycast', 10.4, {
        site: 'edge-eu',
        sent: 20,
        received: 19,
        loss_pct: 5,
        flagged: 1,
        late: 1,
        duplicate: 0,
        stray: 2,
        invalid: 0,
      }),
      udpPath('us-east-1', 41),
    ],
    benefit: [
      benefitRow(30.6, {
        anycast_p50_ms: 10.4,
        baseline_p50_ms: 41,
        saved_pct: 74.6,
        ci_low_ms: 30.2,
        ci_high_ms: 31,
        win_rate: 0.95,
        pairs: 20,
      }),
    ],
    events: [
      {
        type: 'site_change',
        service: 'web',
        message: 'anycast/udp: edge-us -> edge-eu',
        from: 'edge-us',
        to: 'edge-eu',
      },
    ],
  });
  store.saveRound(round);
  const hb: AgentHeartbeat = {
    agent: { id: agent, region: 'eu-west-1', labels: { team: 'net' } },
    at: new Date(t + 1000).toISOString(),
    version: '0.1.0',
    uptime_s: 3600.5,
    lat: 53.35,
    lon: -6.26,
    loop_lag_p99_ms: 1.25,
    rounds_late: 2,
    rounds_skipped: 4,
    outbox_rows: 5,
    dead_letters: 1,
    dropped_rows: 3,
  };
  store.saveHeartbeat(hb);
  sink.start();
  await until('outbox empty', () => store.outboxRows(agent) === 0);
  const series = await vm.export(`{agent="${agent}"}`);

  const common = { agent, agent_region: 'eu-west-1', team: 'net', service: 'web' };
  const latencyTags = (endpoint: string, kind: string) => ({
    ...common,
    endpoint,
    kind,
    protocol: 'udp',
    metric: 'rtt',
    scope: 'end_to_end',
  });
  const expect: Array<[string, Record<string, string>, number, number]> = [];
  const anycast = round.paths[0]!;
  for (const f of [
    'sent',
    'received',
    'loss_pct',
    'min_ms',
    'p50_ms',
    'p90_ms',
    'p99_ms',
    'max_ms',
    'mean_ms',
    'stddev_ms',
    'jitter_ms',
    'flagged',
    'late',
    'duplicate',
    'stray',
    'invalid',
  ] as const) {
    expect.push([`latency_${f}`, latencyTags('anycast', 'anycast'), anycast[f]!, t]);
  }
  // VictoriaMetrics keeps a string field as a series of zeros: the name and tags, not the text.
  expect.push(['latency_site', latencyTags('anycast', 'anycast'), 0, t]);
  // The unicast path reported no site and no packet counters: only what it has.
  const unicast = round.paths[1]!;
  for (const f of [
    'sent',
    'received',
    'loss_pct',
    'min_ms',
    'p50_ms',
    'p90_ms',
    'p99_ms',
    'max_ms',
    'mean_ms',
    'stddev_ms',
    'jitter_ms',
    'flagged',
  ] as const) {
    expect.push([`latency_${f}`, latencyTags('us-east-1', 'unicast'), unicast[f]!, t]);
  }
  const b = round.benefit[0]!;
  const benefitTags = { ...common, protocol: 'udp', metric: 'rtt', scope: 'end_to_end', baseline: 'us-east-1' };
  for (const f of [
    'anycast_p50_ms',
    'baseline_p50_ms',
    'saved_ms',
    'saved_pct',
    'ci_low_ms',
    'ci_high_ms',
    'win_rate',
    'pairs',
  ] as const) {
    expect.push([`benefit_${f}`, benefitTags, b[f]!, t]);
  }
  const eventTags = { ...common, type: 'site_change' };
  for (const f of ['message', 'from', 'to']) expect.push([`event_${f}`, eventTags, 0, t]);
  const agentTags = { agent, agent_region: 'eu-west-1', team: 'net' };
  for (const f of [
    'uptime_s',
    'lat',
    'lon',
    'loop_lag_p99_ms',
    'rounds_late',
    'rounds_skipped',
    'outbox_rows',
    'dead_letters',
    'dropped_rows',
  ] as const) {
    expect.push([`agent_${f}`, agentTags, hb[f]!, t + 1000]);
  }
  expect.push(['agent_version', agentTags, 0, t + 1000]);

  for (const [name, tags, value, ts] of expect) {
    const found = find(series, name, tags);
    assert.equal(found.length, 1, `${name} ${JSON.stringify(tags)}: ${found.length} series`);
    assert.deepEqual(labelsOf(found[0]!), tags, `${name} carries exactly the schema's tags`);
    assert.deepEqual(found[0]!.timestamps, [ts], `${name} is stamped with the round start, once`);
    assert.equal(found[0]!.values[0], value, name);
  }
  // Nothing else arrived: a statistic or counter a path did not report is absent, not zero.
  const expected = new Set(expect.map(([name, tags]) => `${name} ${JSON.stringify(Object.entries(tags).sort())}`));
  const extra = series.filter(
    (s) => !expected.has(`${s.metric.__name__} ${JSON.stringify(Object.entries(labelsOf(s)).sort())}`),
  );
  assert.deepEqual(
    extra.map((s) => s.metric.__name__),
    [],
  );
  assert.equal(series.length, expect.length);
});

test('VictoriaMetrics stopped during a stream of rounds: after it returns every round is there exactly once, delivered in order', async () => {
  const agent = 'vm-outage';
  const delivered: OutboxEntry[] = [];
  const { vm, store, sink, logs } = await setup(agent, { batchLines: 10, onDelivered: (e) => delivered.push(...e) });
  sink.start();
  const t0 = Date.now() - 120_000;
  const rounds = 30;
  let queuedDuringOutage = 0;
  for (let i = 0; i < rounds; i++) {
    store.saveRound(makeRound({ agent, startedAt: t0 + i * 1000, seq: i }));
    sink.notify();
    if (i === 9) {
      await until('first rounds delivered', () => store.outboxRows(agent) === 0);
      await vm.stop();
    }
    if (i === 19) {
      await until('the sink noticed the outage', () => sink.status().consecutiveFailures >= 2);
      queuedDuringOutage = store.outboxRows(agent);
      await vm.restart();
    }
    await delay(40);
  }
  await until('outbox empty', () => store.outboxRows(agent) === 0);
  assert.ok(queuedDuringOutage >= 10 * 4, `rounds queued while VictoriaMetrics was down: ${queuedDuringOutage} lines`);
  assert.ok(
    logs.some((l) => /cannot reach InfluxDB at http:\/\/127\.0\.0\.1:\d+ .*lines kept in the outbox/.test(l)),
    logs.join('\n'),
  );

  const ids = delivered.map((e) => e.id);
  assert.deepEqual(
    ids,
    [...ids].sort((a, b) => a - b),
    'acknowledged in outbox order',
  );
  assert.equal(new Set(ids).size, ids.length, 'each line acknowledged once');
  assert.equal(ids.length, rounds * 4);

  const starts = Array.from({ length: rounds }, (_, i) => t0 + i * 1000);
  const series = await vm.export(`{agent="${agent}"}`);
  for (const [name, labels, valueOf] of [
    ['latency_p50_ms', { endpoint: 'anycast' }, (i: number) => 10 + i / 1000],
    ['latency_p50_ms', { endpoint: 'us-east-1' }, (i: number) => 40 + i / 1000],
    ['latency_loss_pct', { endpoint: 'eu-west-1' }, () => 5],
    ['benefit_saved_ms', { baseline: 'eu-west-1' }, () => 5],
  ] as const) {
    const [s] = find(series, name, labels);
    assert.ok(s, `${name} ${JSON.stringify(labels)} arrived`);
    assert.deepEqual(s.timestamps, starts, `${name}: every round exactly once`);
    assert.deepEqual(
      s.values,
      starts.map((_, i) => valueOf(i)),
      name,
    );
  }
});

test('a line the server refuses becomes a dead letter with its message; the rest of its batch and later rounds arrive', async () => {
  const agent = 'vm-reject';
  // VictoriaMetrics refuses a request (400) holding a line longer than -influx.maxLineSize once it
  // exceeds its 64 KiB read buffer; an event message of 100 kB is such a line.
  const { vm, store, sink, logs } = await setup(agent, { batchLines: 50 }, ['-influx.maxLineSize=32KB']);
  const t0 = Date.now() - 60_000;
  const save = (i: number, events?: RoundResult['events']) => {
    const r = makeRound({ agent, startedAt: t0 + i * 1000, seq: i, ...(events ? { events } : {}) });
    store.saveRound(r);
    return r;
  };
  sink.start();
  const before = [0, 1, 2].map((i) => save(i));
  await until('first rounds delivered', () => store.outboxRows(agent) === 0);

  // The refused line sits in one batch with good lines before and after it.
  const huge = 'x'.repeat(100_000);
  const poisoned = save(3, [{ type: 'path_down', service: 'web', message: `us-east-1/udp stopped answering ${huge}` }]);
  const behind = save(4);
  sink.notify();
  await until('outbox empty', () => store.outboxRows(agent) === 0);
  const later = [5, 6, 7].map((i) => save(i));
  sink.notify();
  await until('outbox empty again', () => store.outboxRows(agent) === 0);

  const dead = store.deadLetterList({ agent });
  assert.equal(dead.length, 1);
  assert.equal(
    dead[0]!.line,
    roundToLines(poisoned).find((l) => l.startsWith('event,')),
  );
  assert.equal(dead[0]!.status, 400);
  assert.match(dead[0]!.message, /^400: .*too long line/);
  assert.equal(sink.status().deadLetters, 1);
  assert.ok(
    logs.some((l) => /refused outbox line \d+ \(400: .*too long line.*moved it to the dead letters/.test(l)),
    logs.join('\n'),
  );

  const series = await vm.export(`{agent="${agent}"}`);
  const p50 = find(series, 'latency_p50_ms', { endpoint: 'anycast' })[0]!;
  const at = (r: RoundResult) => Date.parse(r.started_at);
  const count = (ts: number) => p50.timestamps.filter((x) => x === ts).length;
  for (const r of [...before, ...later]) assert.equal(count(at(r)), 1, `round ${r.started_at} exactly once`);
  // The refused batch was bisected. VictoriaMetrics keeps lines it parsed before refusing a
  // request and keeps no-dedup duplicates, so a good line of that batch may show up more than
  // once here; InfluxDB refuses such a batch whole, and a re-sent point overwrites itself there.
  for (const r of [poisoned, behind]) assert.ok(count(at(r)) >= 1, `round ${r.started_at} arrived`);
  assert.equal(find(series, 'event_message', { type: 'path_down' }).length, 0, 'the refused event did not arrive');
  assert.deepEqual(
    [...new Set(p50.timestamps)],
    Array.from({ length: 8 }, (_, i) => t0 + i * 1000),
  );
});
