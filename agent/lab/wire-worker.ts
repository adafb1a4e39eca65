// The wire's scheduler, on its own thread so that nothing else can delay a packet: one loop that
// sleeps in ppoll(2) until either a TUN device has a packet or the earliest held packet is due
// (nanosecond timeout, 1 ns timer slack), reads every waiting packet, and writes every due one.
// Synchronous libc calls are the point here: no event loop, no timers with millisecond grain.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { DelayLine } from './delay-line.ts';
import { EAGAIN, EINTR, POLLIN, libc } from './libc.ts';
import type { WireLink } from './wire-spec.ts';

interface WorkerInput {
  links: WireLink[];
  /** [aFd, bFd] per link, opened by the main thread */
  fds: Array<[number, number]>;
  /** Int32Array over a SharedArrayBuffer: [0] = 1 asks the loop to stop */
  control: SharedArrayBuffer;
  /** busy-poll this long before a deadline instead of sleeping through it */
  spinUs: number;
  /** SCHED_FIFO priority for this thread; 0 leaves it an ordinary thread */
  realtimePriority: number;
}

const IDLE_POLL_MS = 100;
const READ_BURST = 256;
const STATS_EVERY_MS = 1000;
const MAX_PACKET = 65_536;

const { links, fds, control, spinUs, realtimePriority } = workerData as WorkerInput;
const spinMs = (spinUs ?? 0) / 1000;
const stop = new Int32Array(control);
const c = libc();
c.setTimerSlackNs(1);
// A link's delay should not depend on how busy the machine is: as a real-time thread the
// scheduler runs the moment it wakes instead of waiting its turn behind agents and servers
// (measured on a 2-CPU VM at load average 5: p99 wake-up lateness 1.8 ms -> 0.07 ms). It sleeps
// whenever nothing is due within `spinUs`, so light traffic costs little CPU.
let realtime = false;
if (realtimePriority > 0) {
  realtime = c.setRealtime(realtimePriority);
  if (!realtime)
    parentPort!.postMessage({
      type: 'log',
      line: `cannot run the scheduler as SCHED_FIFO (${c.strerror(c.errno())}); delays will wobble more under load`,
    });
}

// Port i reads fd i; what it reads goes through lines[i] and out of peer fd.
const portFd: number[] = [];
const peerFd: number[] = [];
const lines: DelayLine[] = [];
links.forEach((link, i) => {
  const [a, b] = fds[i]!;
  portFd.push(a, b);
  peerFd.push(b, a);
  lines.push(new DelayLine(link.ab), new DelayLine(link.ba));
});
const n = portFd.length;
const pollfds = Buffer.alloc(8 * n);
portFd.forEach((fd, i) => {
  pollfds.writeInt32LE(fd, 8 * i);
  pollfds.writeInt16LE(POLLIN, 8 * i + 4);
});
const timespec = Buffer.alloc(16);
const readBuf = Buffer.alloc(MAX_PACKET);
// The most recent packets' lateness (a ring), so status shows it even after traffic stops.
const LATENESS_RING = 4096;
const lateness: number[] = [];
let latenessNext = 0;
let nextStatsAt = performance.now() + STATS_EVERY_MS;

// Counters and the raw lateness ring go to the main thread, which does the sorting and the file
// writing: this thread only copies.
function postStats(): void {
  const counters: Record<string, unknown> = {};
  links.forEach((link, i) => {
    const ab = lines[2 * i]!;
    const ba = lines[2 * i + 1]!;
    counters[link.id] = { ab: { ...ab.stats, held: ab.size }, ba: { ...ba.stats, held: ba.size } };
  });
  parentPort!.postMessage({ type: 'stats', links: counters, lateness: Float64Array.from(lateness) });
}

parentPort!.postMessage({ type: 'ready', realtime });
for (;;) {
  if (Atomics.load(stop, 0) !== 0) break;
  let now = performance.now();
  let next = Infinity;
  for (let i = 0; i < n; i++) {
    const line = lines[i]!;
    let due = line.nextDue();
    while (due !== undefined && due <= now) {
      const p = line.takeDue(now)!;
      if (c.write(peerFd[i]!, p, p.length) < 0) line.stats.writeErrors++;
      else line.stats.forwarded++;
      lateness[latenessNext] = (performance.now() - due) * 1000;
      latenessNext = (latenessNext + 1) % LATENESS_RING;
      due = line.nextDue();
    }
    if (due !== undefined && due < next) next = due;
  }
  // Stats wait for a gap of 2 ms with nothing due, so copying them never delays a packet.
  if (now >= nextStatsAt && (next - now > 2 || now >= nextStatsAt + 5 * STATS_EVERY_MS)) {
    postStats();
    nextStatsAt = now + STATS_EVERY_MS;
  }
  // Waking from a sleep costs the kernel (and a VM's hypervisor) tens to hundreds of µs, so the
  // loop sleeps until `spinMs` before the deadline and polls without sleeping after that.
  const waitMs = Math.max(0, Math.min(next - now - spinMs, IDLE_POLL_MS));
  const ns = Math.round(waitMs * 1e6);
  timespec.writeBigInt64LE(BigInt(Math.floor(ns / 1e9)), 0);
  timespec.writeBigInt64LE(BigInt(ns % 1e9), 8);
  const ready = c.ppoll(pollfds, n, timespec, null);
  if (ready < 0) {
    if (c.errno() === EINTR) continue;
    throw new Error(`ppoll: ${c.strerror(c.errno())}`);
  }
  if (ready === 0) continue;
  now = performance.now();
  for (let i = 0; i < n; i++) {
    const revents = pollfds.readInt16LE(8 * i + 6);
    if (revents === 0) continue;
    if ((revents & POLLIN) === 0)
      throw new Error(`TUN device of link ${links[i >> 1]!.id} reported poll events 0x${revents.toString(16)}`);
    for (let k = 0; k < READ_BURST; k++) {
      const got = c.read(portFd[i]!, readBuf, MAX_PACKET);
      if (got < 0) {
        const e = c.errno();
        if (e === EAGAIN || e === EINTR) break;
        throw new Error(`read from link ${links[i >> 1]!.id}: ${c.strerror(e)}`);
      }
      lines[i]!.offer(Buffer.from(readBuf.subarray(0, got)), now);
    }
  }
}
postStats();
