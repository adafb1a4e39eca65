// Measures the wire's own overhead: ping (kernel timestamps) across links of 0, 1, 10 and 50 ms
// between two namespaces, against ping on loopback. Linux + root.
//   node --import tsx agent/lab/bench-wire.ts [--count 500] [--interval 0.01]
// Prints a Markdown table (the one in the README's lab section).
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { checkHost, startWire } from './lab.ts';
import { addNamespace, deleteNamespace, execIn, ipBatch } from './netns.ts';
import { stopProcesses } from './processes.ts';
import { directionParams, type WireLink } from './wire-spec.ts';

const { values } = parseArgs({ options: { count: { type: 'string', default: '500' }, interval: { type: 'string', default: '0.01' } } });
const count = Number(values.count);
checkHost();
const A = 'anylat-bench-a';
const B = 'anylat-bench-b';
const DELAYS = [0, 1, 10, 50];
const dir = mkdtempSync(join(tmpdir(), 'anylat-bench-wire-'));

function stats(times: number[]): { min: number; p50: number; mean: number; p99: number; max: number } {
  const s = [...times].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { min: s[0]!, p50: q(0.5), mean: s.reduce((x, y) => x + y, 0) / s.length, p99: q(0.99), max: s.at(-1)! };
}

async function ping(ns: string, address: string): Promise<number[]> {
  const r = await execIn(ns, 'ping', ['-n', '-c', String(count), '-i', values.interval!, address], { timeoutMs: 600_000 });
  return [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

const wireProc: { p?: Awaited<ReturnType<typeof startWire>> } = {};
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
  wireProc.p = await startWire(
    { title: 'anylat-wire-bench', links, readyFile: join(dir, 'ready'), statsFile: join(dir, 'stats.json') },
    { specFile: join(dir, 'spec.json'), log: join(dir, 'wire.log') },
  );
  for (const [ns, host] of [
    [A, 1],
    [B, 2],
  ] as const) {
    await ipBatch(ns, ['link set dev lo up', ...DELAYS.flatMap((_, i) => [`link set dev b${i} addrgenmode none`, `address add 10.98.${i}.${host}/30 dev b${i}`, `link set dev b${i} up`])]);
  }
  const rows: string[] = [];
  const fmt = (x: number) => x.toFixed(3);
  const lo = stats(await ping(A, '127.0.0.1'));
  rows.push(`| loopback (no wire) | 0 | ${fmt(lo.min)} | ${fmt(lo.p50)} | ${fmt(lo.mean)} | ${fmt(lo.p99)} | ${fmt(lo.max)} | - | - |`);
  for (const [i, d] of DELAYS.entries()) {
    const s = stats(await ping(A, `10.98.${i}.2`));
    rows.push(`| ${d} ms each way | ${2 * d} | ${fmt(s.min)} | ${fmt(s.p50)} | ${fmt(s.mean)} | ${fmt(s.p99)} | ${fmt(s.max)} | ${fmt(s.p50 - 2 * d)} | ${fmt(s.mean - 2 * d)} |`);
  }
  process.stdout.write(
    [
      `ping -c ${count} -i ${values.interval}, RTT in ms (ping's time=, which has 3 significant digits: whole ms from 100 ms up); load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs`,
      '',
      '| link | configured RTT | min | p50 | mean | p99 | max | p50 − configured | mean − configured |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...rows,
      '',
    ].join('\n'),
  );
} finally {
  if (wireProc.p) await stopProcesses([wireProc.p]);
  for (const ns of [A, B]) await deleteNamespace(ns);
  rmSync(dir, { recursive: true, force: true });
}
