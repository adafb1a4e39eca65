// npm run bench:wire [-- --quick]
//
// The lab wire's own overhead: ping (kernel timestamps) across links of 0, 1, 10 and 50 ms one
// way between two namespaces of their own (not the lab's), against ping on loopback, first on the
// machine as it is, then again while one busy-loop process per CPU runs (a browser rendering the
// demo's page, a test suite: the wire must stay on time and lossless). Linux, root.
// Prints the table of docs/lab.md. (Was agent/lab/bench-wire.ts.)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHost, startWire } from '../agent/lab/lab.ts';
import { addNamespace, deleteNamespace, execIn, ipBatch } from '../agent/lab/netns.ts';
import { stopProcesses } from '../agent/lab/processes.ts';
import { directionParams, type WireLink, type WireStats } from '../agent/lab/wire-spec.ts';
import { loadCpus } from './lib/load.ts';
import { benchArgs, describeMachine, fmt, machineNote, markdownTable, progress, writeResult } from './lib/output.ts';
import { mean, quantile, round } from './lib/stats.ts';

const USAGE = `usage: npm run bench:wire [-- --quick] [-- --out FILE]
  Linux, root: two namespaces (anylat-bench-a, anylat-bench-b) and a wire of their own.
  --quick   100 pings per link instead of 1000`;

const A = 'anylat-bench-a';
const B = 'anylat-bench-b';
const DELAYS = [0, 1, 10, 50];
/** `idle`: the machine as it is; then one busy-loop process per CPU at ordinary priority. */
const LOADS = ['idle', `CPU hog (${cpus().length} busy loops)`] as const;

interface Row {
  link: string;
  load: string;
  configuredRttMs: number;
  sent: number;
  lost: number;
  n: number;
  min: number;
  p50: number;
  mean: number;
  p99: number;
  max: number;
}

function summarize(link: string, load: string, configuredRttMs: number, p: Pinged): Row {
  const t = p.times;
  // min, mean and max from ping's summary (µs); p50 and p99 from time=, which has 3 significant
  // digits (0.1 ms from 10 ms, whole ms from 100 ms up).
  return {
    link,
    load,
    configuredRttMs,
    sent: p.sent,
    lost: p.sent - p.received,
    n: t.length,
    min: p.min ?? Math.min(...t),
    p50: quantile(t, 0.5),
    mean: p.avg ?? mean(t),
    p99: quantile(t, 0.99),
    max: p.max ?? Math.max(...t),
  };
}

interface Pinged {
  times: number[];
  sent: number;
  received: number;
  min?: number;
  avg?: number;
  max?: number;
}

async function ping(ns: string, address: string, count: number): Promise<Pinged> {
  // -W 2: a reply later than 2 s counts as lost (the wire holds none that long).
  const r = await execIn(ns, 'ping', ['-n', '-c', String(count), '-i', '0.01', '-W', '2', address], {
    timeoutMs: 600_000,
  });
  const times = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  const c = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  if (!c) throw new Error(`ping printed no summary: ${r.stdout}${r.stderr}`);
  const counts = { sent: Number(c[1]), received: Number(c[2]) };
  const s = /^rtt min\/avg\/max\/mdev = ([\d.]+)\/([\d.]+)\/([\d.]+)\//m.exec(r.stdout);
  return s ? { times, ...counts, min: Number(s[1]), avg: Number(s[2]), max: Number(s[3]) } : { times, ...counts };
}

/** The wire process while it runs: set once started, so teardown knows whether to stop it. */
type RunningWire = { p?: Awaited<ReturnType<typeof startWire>> };

/** What the report says of the run besides its rows. */
interface RunNote {
  quick: boolean;
  out: string;
  count: number;
  started: number;
  before: ReturnType<typeof machineNote>;
}

async function main(): Promise<void> {
  const args = benchArgs('wire', USAGE);
  const count = args.quick ? 100 : 1000;
  checkHost();
  const started = Date.now();
  const before = machineNote();
  const dir = mkdtempSync(join(tmpdir(), 'anylat-bench-wire-'));
  const wire: RunningWire = {};
  let rows: Row[];
  let stats: WireStats | undefined;
  try {
    await setUpWire(dir, wire);
    rows = await pingEveryLink(count);
    await new Promise((r) => setTimeout(r, 1500)); // the stats file is rewritten about once a second
    stats = JSON.parse(readFileSync(join(dir, 'stats.json'), 'utf8')) as WireStats;
  } finally {
    await tearDown(dir, wire);
  }
  report(rows, stats, { quick: args.quick, out: args.out, count, started, before });
}

/** Two fresh namespaces joined by one wire link per delay, addressed 10.98.<link>.1 and .2. */
async function setUpWire(dir: string, wire: RunningWire): Promise<void> {
  for (const ns of [A, B]) {
    await deleteNamespace(ns);
    await addNamespace(ns);
  }
  const links: WireLink[] = DELAYS.map((d, i) => ({
    id: `d${d}`,
    a: { netns: A, ifname: `b${i}` },
    b: { netns: B, ifname: `b${i}` },
    ab: directionParams({ delayMs: d }),
    ba: directionParams({ delayMs: d }),
  }));
  wire.p = await startWire(
    { title: 'anylat-wire-bench', links, readyFile: join(dir, 'ready'), statsFile: join(dir, 'stats.json') },
    { specFile: join(dir, 'spec.json'), log: join(dir, 'wire.log') },
  );
  for (const [ns, host] of [
    [A, 1],
    [B, 2],
  ] as const) {
    await ipBatch(ns, [
      'link set dev lo up',
      ...DELAYS.flatMap((_, i) => [
        `link set dev b${i} addrgenmode none`,
        `address add 10.98.${i}.${host}/30 dev b${i}`,
        `link set dev b${i} up`,
      ]),
    ]);
  }
}

/** Loopback, then every link, under each load in turn. */
async function pingEveryLink(count: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const load of LOADS) {
    const hog = load === 'idle' ? undefined : loadCpus();
    try {
      progress(`${load}: loopback: ${count} pings`);
      rows.push(summarize('loopback (no wire)', load, 0, await ping(A, '127.0.0.1', count)));
      for (const [i, d] of DELAYS.entries()) {
        progress(`${load}: ${d} ms each way: ${count} pings`);
        rows.push(summarize(`${d} ms each way`, load, 2 * d, await ping(A, `10.98.${i}.2`, count)));
      }
    } finally {
      await hog?.stop();
    }
  }
  return rows;
}

async function tearDown(dir: string, wire: RunningWire): Promise<void> {
  if (wire.p) await stopProcesses([wire.p]);
  for (const ns of [A, B]) await deleteNamespace(ns);
  rmSync(dir, { recursive: true, force: true });
}

function report(rows: Row[], stats: WireStats | undefined, run: RunNote): void {
  const after = machineNote();
  const table = rowsTable(rows);
  const wireLine = wireCountersLine(stats);
  process.stdout.write(
    `ping -c ${run.count} -i 0.01 -W 2, RTT in ms (min, mean, max: ping's summary, µs; p50, p99: its time=, 3 significant digits)\n\n${table}\n\n${wireLine}\nmachine: ${describeMachine(run.before)}; at the end: load ${after.loadavg.join(' / ')}; ran ${Math.round((Date.now() - run.started) / 1000)} s\n`,
  );
  writeResult(run.out, {
    benchmark: 'wire',
    quick: run.quick,
    count: run.count,
    machine: { before: run.before, after },
    wire: stats,
    rows: rows.map((r) => ({
      ...r,
      min: round(r.min),
      p50: round(r.p50),
      mean: round(r.mean),
      p99: round(r.p99),
      max: round(r.max),
    })),
  });
}

function rowsTable(rows: Row[]): string {
  return markdownTable(
    [
      'link',
      'machine',
      'configured RTT',
      'lost',
      'min',
      'p50',
      'mean',
      'p99',
      'max',
      'p50 − configured',
      'mean − configured',
    ],
    rows.map((r) => {
      const wire = r.link !== 'loopback (no wire)';
      return [
        r.link,
        r.load,
        r.configuredRttMs,
        `${r.lost} of ${r.sent}`,
        fmt(r.min, 3),
        fmt(r.p50, 3),
        fmt(r.mean, 3),
        fmt(r.p99, 3),
        fmt(r.max, 3),
        wire ? fmt(r.p50 - r.configuredRttMs, 3) : '-',
        wire ? fmt(r.mean - r.configuredRttMs, 3) : '-',
      ];
    }),
  );
}

/** The wire's own counters over both passes: every packet it read, it forwarded. */
function wireCountersLine(stats: WireStats | undefined): string {
  const counted = Object.values(stats?.links ?? {}).flatMap((l) => [l.ab, l.ba]);
  const sum = (k: 'received' | 'forwarded' | 'lost' | 'overflow' | 'writeErrors') =>
    counted.reduce((a, c) => a + c[k], 0);
  return `wire: ${sum('received')} packets read, ${sum('forwarded')} forwarded, ${sum('overflow')} dropped for a full queue, ${sum('writeErrors')} write errors; lateness p50 ${stats?.lateness_us.p50 ?? '-'} µs, p99 ${stats?.lateness_us.p99 ?? '-'} µs, max ${stats?.lateness_us.max ?? '-'} µs (last ${stats?.lateness_us.samples ?? 0} packets)`;
}

await main();
