// npm run bench:soak [-- --minutes 30] [-- --services 20] [-- --quick]
//
// Does the agent's memory stay flat? The real agent (agent/agent.ts, as `anylat run` starts it)
// runs N services × udp, tcp echo and http every 5 s against a reflector on 127.0.0.1/127.0.0.2
// (its own process) and delivers to VictoriaMetrics on loopback (InfluxDB's /api/v2/write). Every
// minute it forces a GC in the agent's process and prints the heap used after it and the RSS. A
// leak shows as a heap-after-GC that climbs minute after minute; a flat one stays within a few MB.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Agent } from '../agent/agent.ts';
import { loadConfig } from '../agent/config/load.ts';
import { Victoria } from './lib/victoria.ts';
import { startAnylat } from './lib/anylat-process.ts';
import { freePort, freeUdpPort } from './lib/ports.ts';
import { describeMachine, fmt, machineNote, markdownTable, progress, RESULTS_DIR, writeResult } from './lib/output.ts';

const USAGE = `usage: npm run bench:soak [-- --minutes N] [-- --services N] [-- --quick] [-- --out FILE]
  Runs the agent for N minutes (default 30) with N services (default 20) × udp, tcp echo, http
  every 5 s against a reflector and VictoriaMetrics (/usr/bin/victoria-metrics) on loopback, and
  prints heap-after-GC and RSS every minute. Needs no root.
  --quick   3 minutes`;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Sample {
  minute: number;
  rounds: number;
  outboxRows: number;
  heapAfterGcMb: number;
  rssMb: number;
}

function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed / 1e6;
}

/** The reflector in its own process, so that its memory is not counted as the agent's. */
async function startReflectorChild(udp: number, tcp: number, http: number): Promise<() => Promise<unknown>> {
  const r = await startAnylat(
    [
      'reflector',
      '--bind',
      '127.0.0.1',
      '--bind',
      '127.0.0.2',
      '--site',
      'soak',
      '--udp-port',
      String(udp),
      '--tcp-port',
      String(tcp),
      '--http-port',
      String(http),
      '--rate-limit',
      '0',
    ],
    { ready: /listening http/, timeoutMs: 120_000 },
  );
  return () => r.stop();
}

interface SoakArgs {
  minutes: number;
  services: number;
  out: string;
}

/** The command line; undefined after --help printed the usage. */
function soakArgs(): SoakArgs | undefined {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string' },
      services: { type: 'string' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return undefined;
  }
  return {
    minutes: Number(values.minutes ?? (values.quick ? 3 : 30)),
    services: Number(values.services ?? 20),
    out: values.out ?? join(RESULTS_DIR, `soak${values.quick ? '-quick' : ''}.json`),
  };
}

/** The agent's anylat.yaml: `services` services against the reflector's ports, delivering to `influxUrl`. */
function soakConfig(
  services: number,
  ports: { udp: number; tcp: number; http: number },
  storePath: string,
  influxUrl: string,
): string {
  const { udp, tcp, http } = ports;
  return [
    'agent: { id: soak, region: bench }',
    'services:',
    ...Array.from({ length: services }, (_, i) =>
      [
        `  - name: svc${String(i + 1).padStart(2, '0')}`,
        '    anycast: 127.0.0.1',
        '    unicast: { lo-two: 127.0.0.2 }',
        `    probes: { udp: { port: ${udp} }, tcp: { port: ${tcp}, echo: true }, http: { url: "http://127.0.0.1:${http}/" } }`,
        '    samples: 5',
        '    spacing: 20ms',
        '    timeout: 1s',
        '    schedule: "*/5 * * * * *"',
        '    deadline: 4s',
      ].join('\n'),
    ),
    `store: { path: ${storePath} }`,
    // VictoriaMetrics ignores the token; the config requires one.
    `influx: { url: "${influxUrl}", bucket: anylat, token: soak }`,
    '',
  ].join('\n');
}

/** Minute `m`'s reading of the running agent, taken after a forced GC. */
function sampleMinute(running: Agent, m: number): Sample {
  const hb = running.heartbeat(false);
  const s: Sample = {
    minute: m,
    rounds: running.saved,
    outboxRows: hb.outbox_rows,
    heapAfterGcMb: heapAfterGc(),
    rssMb: process.memoryUsage().rss / 1e6,
  };
  progress(
    `minute ${m}: ${s.rounds} rounds, outbox ${s.outboxRows}, heap after GC ${fmt(s.heapAfterGcMb, 1)} MB, RSS ${fmt(s.rssMb, 1)} MB`,
  );
  return s;
}

interface Soaked {
  samples: Sample[];
  /** the sink's log lines, stamped */
  logs: string[];
  t0: number;
}

/** Starts the reflector, VictoriaMetrics and the agent, reads the agent once a minute, then stops them all. */
async function soak(a: SoakArgs): Promise<Soaked> {
  const { minutes, services } = a;
  const scratch = mkdtempSync(join(tmpdir(), 'anylat-soak-'));
  const [udp, tcp, http] = [await freeUdpPort(), await freePort(), await freePort()];
  const stopReflector = await startReflectorChild(udp, tcp, http);
  let vm: Victoria | undefined;
  let agent: Agent | undefined;
  const logs: string[] = [];
  const samples: Sample[] = [];
  const t0 = Date.now();
  try {
    vm = await Victoria.start();
    writeFileSync(
      join(scratch, 'anylat.yaml'),
      soakConfig(services, { udp, tcp, http }, join(scratch, 'soak.db'), vm.url),
    );
    const config = loadConfig(join(scratch, 'anylat.yaml'));
    agent = new Agent({
      config,
      log: (line) => {
        if (line.startsWith('sink: ') && logs.length < 200) logs.push(`${new Date().toISOString()} ${line}`);
      },
    });
    await agent.start();
    const running = agent;
    progress(
      `soak: ${services} services × udp, tcp echo, http every 5 s for ${minutes} min; VictoriaMetrics ${vm.url}`,
    );
    for (let m = 1; m <= minutes; m++) {
      await new Promise((r) => setTimeout(r, t0 + m * 60_000 - Date.now()));
      samples.push(sampleMinute(running, m));
    }
  } finally {
    await agent?.stop({ roundGraceMs: 5000, drainMs: 5000 }).catch(() => undefined);
    await stopReflector();
    await vm?.destroy();
    rmSync(scratch, { recursive: true, force: true });
  }
  return { samples, logs, t0 };
}

function reportLines(
  services: number,
  { samples, logs, t0 }: Soaked,
  before: ReturnType<typeof machineNote>,
): string[] {
  const first = samples[0];
  const last = samples.at(-1);
  const lines: string[] = [];
  lines.push(
    `agent soak: ${services} services × (anycast + 1 unicast) × udp, tcp echo, http, every 5 s (${(services / 5).toFixed(1)} rounds/s), VictoriaMetrics on loopback`,
    '',
  );
  lines.push(
    markdownTable(
      ['minute', 'rounds', 'outbox rows', 'heap after GC MB', 'RSS MB'],
      samples.map((s) => [s.minute, s.rounds, s.outboxRows, fmt(s.heapAfterGcMb, 1), fmt(s.rssMb, 1)]),
    ),
    '',
  );
  if (first && last && last !== first) {
    const rounds = last.rounds - first.rounds;
    const grew = last.heapAfterGcMb - first.heapAfterGcMb;
    lines.push(
      `heap after GC ${fmt(first.heapAfterGcMb, 1)} → ${fmt(last.heapAfterGcMb, 1)} MB from minute ${first.minute} to ${last.minute} (${rounds} rounds: ${fmt((grew * 1e6) / Math.max(1, rounds) / 1000, 2)} kB a round)`,
      '',
    );
  }
  if (logs.length > 0) lines.push('sink log:', ...logs.slice(0, 20).map((l) => `  ${l}`), '');
  lines.push(`machine: ${describeMachine(before)}; ran ${Math.round((Date.now() - t0) / 1000)} s`);
  return lines;
}

async function main(): Promise<void> {
  const a = soakArgs();
  if (!a) return;
  const before = machineNote();
  const soaked = await soak(a);
  process.stdout.write(`${reportLines(a.services, soaked, before).join('\n')}\n`);
  writeResult(a.out, {
    benchmark: 'soak',
    minutes: a.minutes,
    services: a.services,
    machine: { before, after: machineNote() },
    samples: soaked.samples,
    sinkLog: soaked.logs,
  });
}

await main();
