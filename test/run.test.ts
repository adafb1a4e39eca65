// `anylat run` as a user runs it: a child process with a config file, a real reflector on
// loopback, a 1-second cron, the real store (and a real VictoriaMetrics for the InfluxDB path).
// Checks that rounds land in the store on schedule, that SIGTERM drains and exits 0 with every
// logged round stored, and that everything stored reaches InfluxDB exactly once.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startReflector, type RunningReflector } from '../agent/reflector/index.ts';
import { openStore } from '../agent/store/store.ts';
import { freePort, freeUdpPort, runAnylat, startAnylat } from './support/net.ts';
import { Victoria } from '../bench/lib/victoria.ts';

const scratch = mkdtempSync(join(tmpdir(), 'anylat-run-'));
let reflector: RunningReflector;
let udpPort: number;
let tcpPort: number;

before(async () => {
  // One port on both loopback addresses: the config gives a probe one port for all endpoints.
  udpPort = await freeUdpPort();
  tcpPort = await freePort();
  reflector = await startReflector({
    site: 'lab-site',
    binds: ['127.0.0.1', '127.0.0.2'],
    udp: { port: udpPort },
    tcp: { port: tcpPort },
    http: false,
    log: () => {},
  });
});

after(async () => {
  await reflector?.close();
  rmSync(scratch, { recursive: true, force: true });
});

function writeConfig(name: string, extra = '', service = ''): { file: string; store: string } {
  const dir = join(scratch, name);
  const store = join(dir, 'state', 'anylat.db');
  const file = join(scratch, `${name}.yaml`);
  writeFileSync(
    file,
    `agent:
  id: run-test-${name}
  region: lab
  lat: 10
  lon: 20
services:
  - name: loop
    anycast: 127.0.0.1
    unicast:
      lo-two: 127.0.0.2
    probes:
      udp: { port: ${udpPort} }
      tcp: { port: ${tcpPort}, echo: true }
    samples: 3
    spacing: 20ms
    timeout: 300ms
    schedule: "* * * * * *"
    deadline: 800ms
${service}store:
  path: ${store}
${extra}`,
  );
  return { file, store };
}

function roundLines(output: string): string[] {
  return output.split('\n').filter((l) => / round loop: /.test(l));
}

describe('anylat run', () => {
  it('runs rounds on a 1-second cron into the store; SIGTERM stores the last round and exits 0', async () => {
    const { file, store } = writeConfig('basic');
    const agent = await startAnylat(['run', '--config', file], { ready: /running 1 service/ });
    const db = () => openStore(store, { readonly: true });
    const deadline = Date.now() + 20_000;
    for (;;) {
      const s = db();
      const n = s.rounds({ service: 'loop' }).length;
      s.close();
      if (n >= 3) break;
      if (Date.now() > deadline) assert.fail(`fewer than 3 rounds after 20 s:\n${agent.output()}`);
      await sleep(100);
    }
    const code = await agent.stop('SIGTERM');
    const out = agent.output();
    assert.equal(code, 0, out);
    assert.match(out, /SIGTERM: stopping/);
    assert.match(out, /stopped: \d+ rounds? finished, 0 abandoned/);
    assert.ok(!/abandoned \(/.test(out), out);

    const s = db();
    try {
      const rounds = s.rounds({ service: 'loop' });
      // Every round the agent logged is in the store, including one that ended during shutdown.
      assert.equal(rounds.length, roundLines(out).length, out);
      assert.ok(rounds.length >= 3);
      for (const r of rounds) {
        assert.equal(r.agent, 'run-test-basic');
        assert.equal(r.agent_region, 'lab');
        assert.ok(r.scheduled_at, 'scheduled_at recorded');
        assert.ok(Date.parse(r.started_at) >= Date.parse(r.scheduled_at!), `${r.started_at} before ${r.scheduled_at}`);
      }
      // Consecutive rounds are a second apart in schedule: none skipped, none doubled.
      const sched = rounds.map((r) => Date.parse(r.scheduled_at!));
      for (let i = 1; i < sched.length; i++) assert.equal(sched[i]! - sched[i - 1]!, 1_000);
      const full = s.getRound(rounds.at(-1)!.id)!;
      const udp = full.paths.filter((p) => p.protocol === 'udp');
      assert.deepEqual(udp.map((p) => p.endpoint).sort(), ['anycast', 'lo-two']);
      for (const p of udp) {
        assert.equal(p.sent, 3);
        assert.equal(p.received, 3, `udp to ${p.endpoint} lost samples`);
        assert.equal(p.site, 'lab-site');
      }
      assert.ok(
        full.paths.some((p) => p.protocol === 'tcp' && p.metric === 'rtt' && p.received > 0),
        'tcp echo measured',
      );
      // A round has a benefit row when it had comparable pairs (samples taken while the loop
      // lagged are kept out, so not necessarily every round of three samples).
      assert.ok(
        rounds.some((r) =>
          s.getRound(r.id)!.benefit.some((b) => b.protocol === 'udp' && b.metric === 'rtt' && b.baseline === 'lo-two'),
        ),
      );
      // The last heartbeat (written at shutdown) counts exactly the rounds the log called late.
      const [health] = s.agentHealth();
      assert.equal(health?.agent, 'run-test-basic');
      assert.equal(health?.rounds_late, roundLines(out).filter((l) => /late by/.test(l)).length);
      // No InfluxDB configured: nothing is queued for it.
      assert.equal(s.outboxRows(), 0);
    } finally {
      s.close();
    }
  });

  it('serves the dashboard on web.listen from its own store; SIGINT stops it the same way', async () => {
    const port = await freePort();
    const { file } = writeConfig('web', `web:\n  listen: 127.0.0.1:${port}\n`);
    const agent = await startAnylat(['run', '--config', file], { ready: /running 1 service/ });
    assert.match(agent.output(), new RegExp(`web: dashboard on http://127\\.0\\.0\\.1:${port}/`));
    const deadline = Date.now() + 15_000;
    let services: unknown;
    for (;;) {
      const res = await fetch(`http://127.0.0.1:${port}/api/services`);
      assert.equal(res.status, 200);
      services = await res.json();
      if (JSON.stringify(services).includes('"loop"')) break;
      if (Date.now() > deadline)
        assert.fail(`the dashboard never listed the service: ${JSON.stringify(services)}\n${agent.output()}`);
      await sleep(200);
    }
    assert.equal(await agent.stop('SIGINT'), 0, agent.output());
    assert.match(agent.output(), /SIGINT: stopping/);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/api/services`), 'the dashboard stops with the agent');
  });

  it('delivers every stored round to InfluxDB (VictoriaMetrics) exactly once', async () => {
    const vm = await Victoria.start();
    try {
      const { file, store } = writeConfig(
        'influx',
        `influx:
  url: ${vm.url}
  token: \${RUN_TEST_TOKEN}
  bucket: anylat
`,
      );
      const agent = await startAnylat(['run', '--config', file], {
        ready: /running 1 service/,
        env: { RUN_TEST_TOKEN: 'run-test-secret-token' },
      });
      await sleep(3_500);
      const code = await agent.stop('SIGTERM');
      const out = agent.output();
      assert.equal(code, 0, out);
      assert.match(out, /InfluxDB took \d+ lines, 0 stay in the outbox/);
      assert.ok(!out.includes('run-test-secret-token'), 'the token never appears in the log');

      const s = openStore(store, { readonly: true });
      const rounds = s.rounds({ service: 'loop' });
      assert.equal(s.outboxRows(), 0);
      // A round has a udp benefit row only when it had comparable pairs (samples taken while the
      // event loop lagged, as at start-up, are kept out).
      const withBenefit = rounds
        .filter((r) => s.getRound(r.id)!.benefit.some((b) => b.protocol === 'udp' && b.metric === 'rtt'))
        .map((r) => Date.parse(r.started_at))
        .sort((a, b) => a - b);
      s.close();
      assert.ok(withBenefit.length >= 1, out);
      assert.ok(rounds.length >= 2, out);
      const starts = rounds.map((r) => Date.parse(r.started_at)).sort((a, b) => a - b);
      // One point per round for the anycast udp path (`sent` is always written): same timestamps, no duplicates.
      const series = await vm.export(
        'latency_sent{agent="run-test-influx",endpoint="anycast",protocol="udp",metric="rtt"}',
      );
      assert.equal(series.length, 1, JSON.stringify(series));
      assert.deepEqual(series[0]!.timestamps, starts);
      assert.equal(series[0]!.metric.agent_region, 'lab');
      assert.equal(series[0]!.metric.service, 'loop');
      assert.equal(series[0]!.metric.scope, 'end_to_end');
      const benefit = await vm.export(`benefit_pairs{agent="run-test-influx",protocol="udp",metric="rtt"}`);
      assert.deepEqual(benefit[0]?.timestamps, withBenefit);
      // The heartbeat: at start and at shutdown.
      const hb = await vm.export('agent_uptime_s{agent="run-test-influx"}');
      assert.equal(hb.length, 1);
      assert.ok(hb[0]!.timestamps.length >= 2);
      const lat = await vm.export('agent_lat{agent="run-test-influx"}');
      assert.equal(lat[0]?.values.at(-1), 10);
    } finally {
      await vm.destroy();
    }
  });

  it('a second signal exits at once (143) while the first is still draining', async () => {
    const dead = await freePort();
    const { file, store } = writeConfig(
      'twice',
      `influx:
  url: http://127.0.0.1:${dead}
  token: t
  bucket: anylat
`,
    );
    const agent = await startAnylat(['run', '--config', file, '--drain', '60s'], { ready: /running 1 service/ });
    await sleep(1_500);
    agent.child.kill('SIGTERM');
    const deadline = Date.now() + 10_000;
    while (!/SIGTERM: stopping/.test(agent.output()) && Date.now() < deadline) await sleep(50);
    await sleep(300);
    assert.equal(agent.child.exitCode, null, 'still draining towards an InfluxDB that is down');
    const code = await agent.stop('SIGTERM');
    assert.equal(code, 143, agent.output());
    assert.match(agent.output(), /SIGTERM again: exiting now/);
    // What was stored stays stored: the lines InfluxDB never took are still in the outbox.
    const s = openStore(store, { readonly: true });
    assert.ok(s.outboxRows() > 0);
    s.close();
  });

  it('a bad config exits 2 with every problem and starts nothing', async () => {
    const file = join(scratch, 'bad.yaml');
    const store = join(scratch, 'bad', 'anylat.db');
    writeFileSync(
      file,
      `agent: { region: lab }\nservices:\n  - name: x\n    anycast: 127.0.0.1\n    unicast: { a: 127.0.0.2 }\n    probes: { udp: {} }\n    schedule: "* * * * * *"\n    deadline: 2s\nstore: { path: ${store} }\n`,
    );
    const r = await runAnylat(['run', '--config', file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad\.yaml:8:15: services\[0\]\.deadline: deadline 2s must be shorter than the interval/);
    assert.match(r.stderr, /1 problem in /);
    assert.equal(existsSync(store), false, 'no store created');
  });

  it('rejects bad usage with exit 2', async () => {
    assert.equal((await runAnylat(['run', 'extra'])).code, 2);
    assert.equal((await runAnylat(['run', '--grace', 'soon'])).code, 2);
    const help = await runAnylat(['run', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /usage: anylat run/);
  });
});
