// The wire process: `node --import tsx agent/lab/wire-main.ts SPEC.json`. Creates one TUN device per
// link end inside its namespace, hands the fds to the scheduler thread (wire-worker.ts), writes the
// ready file, then keeps the stats file fresh until SIGTERM. Its TUN devices vanish with it.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { libc } from './libc.ts';
import type { WireSpec, WireStats } from './wire-spec.ts';
import { siblingEntry } from '../util/package.ts';

let writeFailed = false;

// A file the wire cannot write (its directory removed under it) is reported once; the links
// carry on, since tearing them down is `lab down`'s job.
function writeAtomic(file: string, text: string): void {
  try {
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
    writeFailed = false;
  } catch (err) {
    if (!writeFailed) process.stderr.write(`anylat-wire: cannot write ${file}: ${(err as Error).message}\n`);
    writeFailed = true;
  }
}

function die(message: string): never {
  process.stderr.write(`anylat-wire: ${message}\n`);
  process.exit(1);
}

const specFile = process.argv[2];
if (!specFile) die('usage: wire-main.ts SPEC.json');
let spec: WireSpec;
try {
  spec = JSON.parse(readFileSync(specFile, 'utf8')) as WireSpec;
} catch (err) {
  die(`cannot read wire spec ${specFile}: ${(err as Error).message}`);
}
process.title = spec.title;

const fds: Array<[number, number]> = [];
try {
  const c = libc();
  for (const link of spec.links) {
    fds.push([
      c.openTunIn(`/run/netns/${link.a.netns}`, link.a.ifname),
      c.openTunIn(`/run/netns/${link.b.netns}`, link.b.ifname),
    ]);
  }
} catch (err) {
  die((err as Error).message);
}

const control = new SharedArrayBuffer(4);
// Worker threads do not inherit the tsx loader, so the thread registers it before importing the
// TypeScript module.
const bootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then((m) => { m.register(); return import(${JSON.stringify(siblingEntry(import.meta.url, './wire-worker.ts').href)}); });`;
const worker = new Worker(bootstrap, {
  eval: true,
  workerData: {
    links: spec.links,
    fds,
    control,
    spinUs: spec.spinUs ?? 100,
    realtimePriority: spec.realtimePriority ?? 10,
  },
});
let stopping = false;

type WorkerMessage =
  | { type: 'ready'; realtime: boolean }
  | { type: 'log'; line: string }
  | { type: 'stats'; links: WireStats['links']; lateness: Float64Array };

worker.on('message', (msg: WorkerMessage) => {
  if (msg.type === 'log') {
    process.stderr.write(`anylat-wire: ${msg.line}\n`);
    return;
  }
  if (msg.type === 'ready') {
    writeAtomic(spec.readyFile, JSON.stringify({ pid: process.pid, realtime: msg.realtime }));
    return;
  }
  const sorted = [...msg.lateness].sort((x, y) => x - y);
  const q = (p: number) =>
    sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  const r = (x: number) => Math.round(x * 10) / 10;
  const stats: WireStats = {
    pid: process.pid,
    at: new Date().toISOString(),
    links: msg.links,
    lateness_us: { p50: r(q(0.5)), p99: r(q(0.99)), max: r(sorted.at(-1) ?? 0), samples: sorted.length },
  };
  writeAtomic(spec.statsFile, JSON.stringify(stats));
});
worker.on('error', (err) => die(`scheduler failed: ${err.stack ?? err.message}`));
worker.on('exit', (code) => {
  if (!stopping) die(`scheduler thread exited (${code})`);
  process.exit(0);
});

const shutdown = () => {
  if (stopping) return;
  stopping = true;
  Atomics.store(new Int32Array(control), 0, 1);
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.on('SIGHUP', shutdown);
