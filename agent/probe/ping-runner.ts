// Runs `ping` processes from a worker thread, so that starting them never blocks the agent's
// event loop. spawn() forks on the calling thread, and fork copies the agent's page tables: 1-14 ms
// on an idle 2-CPU VM, 25-100 ms when the machine is busy. A round of the demo spawns 60 pings in
// a second; on the main thread they held every other probe's I/O back for 2-3 s per round (a TCP
// echo answered in 5 ms was read after its 2 s timeout: measured with tcpdump in the lab). From a
// worker the main loop's worst stall over 40 spawns went from 450-850 ms to 60-100 ms.
//
// The worker is plain JavaScript (workers do not inherit the tsx loader) that reads the modules it
// needs with process.getBuiltinModule, so it runs as CommonJS or as ESM (node --input-type=module
// makes eval'd workers ESM). One per process, created on first use, holding the process open only
// while a ping runs.
import { Worker } from 'node:worker_threads';

/** What one ping run produced: its output, or why it could not start. */
export interface PingRun {
  stdout: string;
  stderr: string;
  /** exit code; null when killed by a signal or never started */
  code: number | null;
  /** spawn failed (no such binary, EACCES): the error's message */
  spawnError?: string;
}

const WORKER_SOURCE = `
const { parentPort } = process.getBuiltinModule('node:worker_threads');
const { spawn } = process.getBuiltinModule('node:child_process');
const children = new Map();
parentPort.on('message', (m) => {
  if (m.kill !== undefined) { children.get(m.kill)?.kill('SIGKILL'); return; }
  let stdout = '', stderr = '', spawnError, exited = false, code = null, ended = 0;
  const done = () => { if (exited && ended === 2) { children.delete(m.id); parentPort.postMessage({ id: m.id, stdout, stderr, code, spawnError }); } };
  let child;
  try {
    child = spawn(m.bin, m.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    parentPort.postMessage({ id: m.id, stdout, stderr, code: null, spawnError: err.message });
    return;
  }
  children.set(m.id, child);
  child.on('error', (err) => { spawnError = err.message; exited = true; ended = 2; done(); });
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.on('end', () => { ended++; done(); });
  child.stderr.on('end', () => { ended++; done(); });
  child.on('exit', (c) => { code = c; exited = true; done(); });
});
`;

let worker: Worker | undefined;
let nextId = 1;
const pending = new Map<number, (run: PingRun) => void>();

function runner(): Worker {
  if (worker) return worker;
  const w = new Worker(WORKER_SOURCE, { eval: true });
  w.unref();
  w.on('message', (m: PingRun & { id: number }) => {
    const resolve = pending.get(m.id);
    pending.delete(m.id);
    const { id: _id, ...run } = m;
    resolve?.(run);
  });
  // A worker that dies (it should not) fails what it was running; the next run starts a new one.
  const fail = (why: string) => {
    if (worker === w) worker = undefined;
    for (const [id, resolve] of pending) {
      pending.delete(id);
      resolve({ stdout: '', stderr: '', code: null, spawnError: `ping runner: ${why}` });
    }
  };
  w.on('error', (err) => fail(err.message));
  w.on('exit', (code) => fail(`exited (${code})`));
  worker = w;
  return w;
}

/** A ping run in flight: its result, and a way to kill it (SIGKILL). */
export interface RunningPing {
  result: Promise<PingRun>;
  kill(): void;
}

/** Starts `bin args` from the worker thread; the result arrives once it exited and its output ended. */
export function runPing(bin: string, args: readonly string[]): RunningPing {
  const id = nextId++;
  const w = runner();
  const result = new Promise<PingRun>((resolve) => pending.set(id, resolve));
  // While a ping runs, the worker keeps the process alive, as the child itself would.
  w.ref();
  void result.then(() => {
    if (pending.size === 0) w.unref();
  });
  w.postMessage({ id, bin, args });
  return { result, kill: () => w.postMessage({ kill: id }) };
}
