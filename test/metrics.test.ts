// `/metrics` as Prometheus sees it: the text format checked by promtool (the Prometheus project's
// own linter), then a real Prometheus server scraping a real `anylat run` on loopback, and the
// numbers against what the agent did: rounds stored, an InfluxDB that refuses connections counted
// as "unreachable" errors with the outbox growing, a SIGHUP reload counted with the new version.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { configVersion } from '../agent/config/load.ts';
import { VERSION } from '../agent/version.ts';
import { agentFamilies, type AgentHealth } from '../agent/metrics/agent-metrics.ts';
import { renderExposition } from '../agent/metrics/exposition.ts';
import { freePort, refusedPort, startAnylat } from './support/net.ts';
import { udpReflectorForFile } from './support/udp-reflector.ts';

const PROMTOOL = '/usr/bin/promtool';
const PROMETHEUS = '/usr/bin/prometheus';

const files = udpReflectorForFile('m-site', 'anylat-metrics-');
const { scratch } = files;

/** promtool's verdict on a metrics text: its exit code and what it printed. */
function promtool(text: string): { code: number | null; output: string } {
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

/** The value of one sample (`name` or `name{labels}` exactly as exposed). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const HEALTH: AgentHealth = {
  agent: { id: 'eu-1', region: 'eu-west-1' },
  version: '0.1.0',
  startedAtMs: 1_700_000_000_000,
  services: 2,
  rounds: { started: 10, late: 1, skipped: 0, abandoned: 1, failed: 0, stored: 9 },
  store: { outboxRows: 120, outboxOldestAtMs: 1_700_000_090_000, deadLetters: 1, droppedRows: 0 },
  sink: {
    delivered: 500,
    deadLettered: 1,
    lastBatchLines: 60,
    consecutiveFailures: 2,
    errors: { unreachable: 2, timeout: 0, rejected: 1 },
  },
  loopLag: { p99Ms: 2.5, maxMs: 14 },
  config: {
    version: 'abc123def456',
    source: 'url',
    publishedAtMs: 1_700_000_000_000,
    lastReload: { ok: false, atMs: 1_700_000_050_000 },
    reloads: { applied: 1, unchanged: 0, failed: 1 },
  },
};

describe('metrics text', () => {
  it('passes promtool check metrics, in base units with _total counters', () => {
    const text = renderExposition(agentFamilies(HEALTH, 1_700_000_100_000));
    const r = promtool(text);
    assert.equal(r.code, 0, `${r.output}\n${text}`);
    assert.equal(r.output.trim(), '', `promtool has remarks:\n${r.output}`);
    assert.equal(sample(text, 'anylat_outbox_oldest_age_seconds'), 10);
    assert.equal(sample(text, 'anylat_event_loop_lag_p99_seconds'), 0.0025);
    assert.equal(sample(text, 'anylat_sink_errors_total{class="unreachable"}'), 2);
    assert.equal(sample(text, 'anylat_config_info{version="abc123def456",source="url"}'), 1);
    assert.equal(sample(text, 'anylat_config_last_reload_success'), 0);
    assert.equal(sample(text, 'anylat_config_reloads_total{result="failed"}'), 1);
    for (const line of text.split('\n').filter((l) => l.startsWith('# TYPE '))) {
      const [, , name, type] = line.split(' ');
      assert.ok(name!.startsWith('anylat_'), name);
      assert.equal(type === 'counter', name!.endsWith('_total'), line);
      assert.ok(!/_ms$|_milliseconds/.test(name!), `${name} is not in base units`);
    }
  });

  it('escapes label values that come from the config', () => {
    const text = renderExposition(agentFamilies({ ...HEALTH, agent: { id: 'a"b\\c', region: 'x\ny' } }));
    assert.match(text, /anylat_agent_info\{agent="a\\"b\\\\c",region="x\\ny",version="0.1.0"\} 1/);
    assert.equal(promtool(text).code, 0);
  });
});

describe('anylat run with metrics.listen', () => {
  let prometheus: ChildProcess | undefined;
  after(() => {
    prometheus?.kill('SIGTERM');
  });

  it('is scraped by a real Prometheus; counts stored rounds, InfluxDB errors by class, and a SIGHUP reload', async () => {
    const metricsPort = await freePort();
    const influxPort = await refusedPort();
    const file = join(scratch, 'agent.yaml');
    const config = (samples: number) => `agent:
  id: metrics-test
  region: lab
services:
  - name: loop
    anycast: 127.0.0.1
    unicast:
      lo-two: 127.0.0.2
    probes:
      udp: { port: ${files.udpPort} }
    samples: ${samples}
    spacing: 20ms
    timeout: 300ms
    schedule: "* * * * * *"
    deadline: 800ms
store:
  path: ${join(scratch, 'state', 'anylat.db')}
influx:
  url: http://127.0.0.1:${influxPort}
  token: not-a-real-token
  bucket: anylat
metrics:
  listen: 127.0.0.1:${metricsPort}
`;
    writeFileSync(file, config(3));
    const agent = await startAnylat(['run', '--config', file], { ready: /running 1 service/ });
    try {
      assert.match(
        agent.output(),
        new RegExp(`metrics: Prometheus metrics on http://127\\.0\\.0\\.1:${metricsPort}/metrics`),
      );
      const url = `http://127.0.0.1:${metricsPort}/metrics`;
      const scrape = async () => {
        const res = await fetch(url);
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
        return res.text();
      };
      // Wait for stored rounds and a failed delivery (the InfluxDB port refuses connections).
      let text = '';
      const deadline = Date.now() + 90_000;
      for (;;) {
        text = await scrape();
        if (
          (sample(text, 'anylat_rounds_stored_total') ?? 0) >= 2 &&
          (sample(text, 'anylat_sink_errors_total{class="unreachable"}') ?? 0) >= 1
        )
          break;
        if (Date.now() > deadline)
          assert.fail(`no stored rounds or sink errors after 90 s:\n${text}\n${agent.output()}`);
        await sleep(250);
      }
      const lint = promtool(text);
      assert.equal(lint.code, 0, `${lint.output}\n${text}`);
      const stored = agent
        .output()
        .split('\n')
        .filter((l) => / round loop: /.test(l)).length;
      assert.ok(sample(text, 'anylat_rounds_stored_total')! <= stored + 1);
      assert.ok(sample(text, 'anylat_outbox_rows')! > 0, 'nothing was delivered, so the outbox holds the lines');
      assert.ok(sample(text, 'anylat_outbox_oldest_age_seconds')! >= 0);
      assert.equal(sample(text, 'anylat_sink_errors_total{class="auth"}'), 0);
      const firstVersion = configVersion(config(3));
      assert.equal(sample(text, `anylat_config_info{version="${firstVersion}",source="file"}`), 1);

      // A real Prometheus scrapes it every second.
      const promPort = await freePort();
      const promDir = join(scratch, 'prometheus');
      writeFileSync(
        join(scratch, 'prometheus.yml'),
        `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: anylat\n    static_configs:\n      - targets: ['127.0.0.1:${metricsPort}']\n`,
      );
      prometheus = spawn(
        PROMETHEUS,
        [
          `--config.file=${join(scratch, 'prometheus.yml')}`,
          `--storage.tsdb.path=${promDir}`,
          `--web.listen-address=127.0.0.1:${promPort}`,
          '--log.level=warn',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let promLog = '';
      prometheus.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
      const query = async (q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> => {
        try {
          const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
          if (!res.ok) return [];
          const body = (await res.json()) as {
            data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
          };
          return body.data.result;
        } catch {
          return [];
        }
      };
      const until = async (q: string, ok: (r: Awaited<ReturnType<typeof query>>) => boolean, what: string) => {
        const end = Date.now() + 60_000;
        for (;;) {
          const r = await query(q);
          if (ok(r)) return r;
          if (Date.now() > end)
            assert.fail(`Prometheus: ${what} not seen in 60 s (query ${q}: ${JSON.stringify(r)})\n${promLog}`);
          await sleep(500);
        }
      };
      await until('up{job="anylat"}', (r) => r[0]?.value[1] === '1', 'up == 1');
      await until('anylat_rounds_stored_total', (r) => Number(r[0]?.value[1] ?? 0) >= 1, 'anylat_rounds_stored_total');
      await until(
        'anylat_sink_errors_total{class="unreachable"}',
        (r) => Number(r[0]?.value[1] ?? 0) >= 1,
        'sink errors by class',
      );

      // SIGHUP with a changed service: the reload is counted and the new version served.
      writeFileSync(file, config(4));
      agent.child.kill('SIGHUP');
      const secondVersion = configVersion(config(4));
      await until(`anylat_config_info{version="${secondVersion}"}`, (r) => r.length === 1, 'the new config version');
      const applied = await query('anylat_config_reloads_total{result="applied"}');
      assert.equal(applied[0]?.value[1], '1');
      const ok = await query('anylat_config_last_reload_success');
      assert.equal(ok[0]?.value[1], '1');
      assert.match(
        agent.output(),
        new RegExp(`config: version ${secondVersion} applied: changed loop \\(was ${firstVersion}\\)`),
      );
    } finally {
      prometheus?.kill('SIGTERM');
      const code = await agent.stop('SIGTERM');
      assert.equal(code, 0, agent.output());
    }
  });

  it("web.metrics: true serves /metrics next to the page, from the dashboard's thread", async () => {
    const webPort = await freePort();
    const file = join(scratch, 'web-metrics.yaml');
    writeFileSync(
      file,
      `agent:
  id: web-metrics-test
  region: lab
services:
  - name: loop
    anycast: 127.0.0.1
    unicast:
      lo-two: 127.0.0.2
    probes:
      udp: { port: ${files.udpPort} }
    samples: 2
    spacing: 20ms
    timeout: 300ms
    schedule: "* * * * * *"
    deadline: 800ms
store:
  path: ${join(scratch, 'web-state', 'anylat.db')}
web:
  listen: 127.0.0.1:${webPort}
  metrics: true
`,
    );
    const agent = await startAnylat(['run', '--config', file], { ready: /running 1 service/ });
    try {
      let text = '';
      const deadline = Date.now() + 90_000;
      for (;;) {
        const res = await fetch(`http://127.0.0.1:${webPort}/metrics`);
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
        text = await res.text();
        // What this checks is the route through the dashboard's thread, not the rounds: one started is enough.
        if ((sample(text, 'anylat_rounds_started_total') ?? 0) >= 1) break;
        if (Date.now() > deadline) assert.fail(`no round started in /metrics after 90 s:\n${text}\n${agent.output()}`);
        await sleep(250);
      }
      const lint = promtool(text);
      assert.equal(lint.code, 0, `${lint.output}\n${text}`);
      assert.equal(sample(text, `anylat_agent_info{agent="web-metrics-test",region="lab",version="${VERSION}"}`), 1);
      assert.equal((await fetch(`http://127.0.0.1:${webPort}/`)).status, 200, 'the page is still served');
    } finally {
      assert.equal(await agent.stop('SIGTERM'), 0, agent.output());
    }
  });
});
