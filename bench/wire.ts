// npm run bench:wire [-- --quick]
//
// The lab wire's own overhead: ping (kernel timestamps) across links of 0, 1, 10 and 50 ms one
// way between two namespaces of their own (not the lab's), against ping on loopback. Linux, root.
// Prints the table of docs/lab.md. (Was agent/lab/bench-wire.ts.)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHost, startWire } from '../agent/lab/lab.ts';
import { addNamespace, deleteNamespace, execIn, ipBatch } from '../agent/lab/netns.ts';
import { stopProcesses } from '../agent/lab/processes.ts';
import { directionParams, type WireLink } from '../agent/lab/wire-spec.ts';
import { benchArgs, describeMachine, fmt, machineNote, markdownTable, progress, writeResult } from './lib/output.ts';
import { mean, quantile, round } from './lib/stats.ts';

const USAGE = `usage: npm run bench:wire [-- --quick] [-- --out FILE]
  Linux, root: two namespaces (anylat-bench-a, anylat-bench-b) and a wire of their own.
  --quick   100 pings per link instead of 1000`;

const A = 'anylat-bench-a';
const B = 'anylat-bench-b';
const DELAYS = [0, 1, 10, 50];

interface Row {
  link: string;
  configuredRttMs: number;
  n: number;
  min: number;
  p50: number;
  mean: number;
  p99: number;
  max: number;
}

function summarize(link: string, configuredRttMs: number, p: Pinged): Row {
  const t = p.times;
  // min, mean and max from ping's summary (µs); p50 and p99 from time=, which has 3 significant
  // digits (0.1 ms from 10 ms, whole ms from 100 ms up).
  return { link, configuredRttMs, n: t.length, min: p.min ?? Math.min(...t), p50: quantile(t, 0.5), mean: p.avg ?? mean(t), p99: quantile(t, 0.99), max: p.max ?? Math.max(...t) };
}

interface Pinged {
  times: number[];
  min?: number;
  avg?: number;
  max?: number;
}

async function ping(ns: string, address: string, count: number): Promise<Pinged> {
  const r = await execIn(ns, 'ping', ['-n', '-c', String(count), '-i', '0.01', address], { timeoutMs: 600_000 });
  const times = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  const s = /^rtt min\/avg\/max\/mdev = ([\d.]+)\/([\d.]+)\/([\d.]+)\//m.exec(r.stdout);
  return s ? { times, min: Number(s[1]), avg: Number(s[2]), max: Number(s[3]) } : { times };
}

async function main(): Promise<void> {
  const args = benchArgs('wire', USAGE);
  const count = args.quick ? 100 : 1000;
  checkHost();
  const started = Date.now();
  const before = machineNote();
  const dir = mkdtempSync(join(tmpdir(), 'anylat-bench-wire-'));
  const wire: { p?: Awaited<ReturnType<typeof startWire>> } = {};
  const rows: Row[] = [];
  try {
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
    wire.p = await startWire({ title: 'anylat-wire-bench', links, readyFile: join(dir, 'ready'), statsFile: join(dir, 'stats.json') }, { specFile: join(dir, 'spec.json'), log: join(dir, 'wire.log') });
    for (const [ns, host] of [
      [A, 1],
      [B, 2],
    ] as const) {
      await ipBatch(ns, ['link set dev lo up', ...DELAYS.flatMap((_, i) => [`link set dev b${i} addrgenmode none`, `address add 10.98.${i}.${host}/30 dev b${i}`, `link set dev b${i} up`])]);
    }
    progress(`loopback: ${count} pings`);
    rows.push(summarize('loopback (no wire)', 0, await ping(A, '127.0.0.1', count)));
    for (const [i, d] of DELAYS.entries()) {
      progress(`${d} ms each way: ${count} pings`);
      rows.push(summarize(`${d} ms each way`, 2 * d, await ping(A, `10.98.${i}.2`, count)));
    }
  } finally {
    if (wire.p) await stopProcesses([wire.p]);
    for (const ns of [A, B]) await deleteNamespace(ns);
    rmSync(dir, { recursive: true, force: true });
  }
  const after = machineNote();
  const table = markdownTable(
    ['link', 'configured RTT', 'min', 'p50', 'mean', 'p99', 'max', 'p50 − configured', 'mean − configured'],
    rows.map((r, i) => [r.link, r.configuredRttMs, fmt(r.min, 3), fmt(r.p50, 3), fmt(r.mean, 3), fmt(r.p99, 3), fmt(r.max, 3), i === 0 ? '-' : fmt(r.p50 - r.configuredRttMs, 3), i === 0 ? '-' : fmt(r.mean - r.configuredRttMs, 3)]),
  );
  process.stdout.write(`ping -c ${count} -i 0.01, RTT in ms (min, mean, max: ping's summary, µs; p50, p99: its time=, 3 significant digits)\n\n${table}\n\nmachine: ${describeMachine(before)}; at the end: load ${after.loadavg.join(' / ')}; ran ${Math.round((Date.now() - started) / 1000)} s\n`);
  writeResult(args.out, { benchmark: 'wire', quick: args.quick, count, machine: { before, after }, rows: rows.map((r) => ({ ...r, min: round(r.min), p50: round(r.p50), mean: round(r.mean), p99: round(r.p99), max: round(r.max) })) });
}

await main();
