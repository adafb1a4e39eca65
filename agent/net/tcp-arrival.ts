// When the kernel received the first bytes now waiting on a TCP socket: SO_TIMESTAMPNS on the
// socket and recvmsg(MSG_PEEK) of one byte, whose control message carries the receive time of the
// segment holding it. Linux only, through koffi, because Node exposes neither.
//
// Why: an HTTP response's arrival stamped in JavaScript is the arrival plus however long the event
// loop took to get to it, and TCP_INFO (tcp-info.ts) times the response only when its first
// segment carried the ACK of the request. A server or TCP-terminating edge that acknowledges the
// request first with a bare ACK (any server slower than its delayed-ACK timer, most servers on a
// connection's first request) leaves the kernel no RTT sample for it. The receive timestamp has no
// such condition. It must be read before libuv reads the bytes (libuv's read() drops control
// messages), so while a response is awaited the socket's libuv reading is stopped and one shared
// timer peeks at every awaited socket each millisecond; once bytes (or the end of the stream, or
// an error) are there, reading starts again and Node handles them as usual. The timer's own lag
// delays only when the response is handled, not its timestamp.
//
// The stamp is CLOCK_REALTIME; like rx-timestamp.ts it is turned into performance.now() time by
// reading CLOCK_REALTIME right away, so no offset between the clocks enters the figure. When the
// kernel merged segments that arrived back to back into one buffer, the stamp is the later one's.
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { keepStampsOn } from './stamps-on.ts';
import { socketFd } from './tcp-info.ts';

const SOL_SOCKET = 1;
const SO_TIMESTAMPNS = 35;
const SCM_TIMESTAMPNS = SO_TIMESTAMPNS;
const MSG_PEEK = 0x2;
const MSG_DONTWAIT = 0x40;
const CLOCK_REALTIME = 0;
const POLL_MS = 1;
/** A stamp older than this is not the data being waited for (or the clock stepped): not used. */
const MAX_AGE_MS = 60_000;

type Fn = (...args: unknown[]) => number | bigint;
let libc: { setsockopt: Fn; recvmsg: Fn; clockGettime: Fn; address: (b: Buffer) => bigint } | null | undefined;

/**
 * Loads koffi and libc's setsockopt, recvmsg and clock_gettime once. Returns true when TCP receive
 * timestamps can be read (Linux, 64-bit). Call it while setting up, not while timing.
 */
export function loadTcpArrival(): boolean {
  if (libc !== undefined) return libc !== null;
  libc = null;
  // struct msghdr, iovec and timespec are laid out for 64-bit hosts below.
  if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) return false;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const lib = koffi.load(null);
    libc = {
      setsockopt: lib.func('int setsockopt(int fd, int level, int optname, void *optval, uint32_t optlen)') as Fn,
      recvmsg: lib.func('long recvmsg(int fd, void *msg, int flags)') as Fn,
      clockGettime: lib.func('int clock_gettime(int clock, void *ts)') as Fn,
      address: (b: Buffer) => koffi.address(b) as bigint,
    };
    keepStampsOn();
  } catch {
    libc = null;
  }
  return libc !== null;
}

// The private part of Node this touches besides the fd: a stream handle's readStop/readStart and
// the `reading` flag net.Socket keeps in step with them.
interface StreamHandle {
  reading?: boolean;
  readStop?: () => number;
  readStart?: () => number;
}

interface Watch {
  fd: number;
  socket: Socket;
  done: (at: number | undefined) => void;
  closed: () => void;
}

const watches = new Set<Watch>();
let timer: NodeJS.Timeout | undefined;

// One byte, one control buffer, one msghdr for every peek: the call is synchronous.
const DATA = Buffer.alloc(1);
const CONTROL = Buffer.alloc(64);
const IOV = Buffer.alloc(16);
const MSG = Buffer.alloc(56);
const NOW = new BigInt64Array(2);

/** Receive time (performance.now() scale) of the first byte waiting on `fd`; 'eof', 'empty', or undefined (error, no stamp). */
function peek(fd: number): number | 'eof' | 'empty' | undefined {
  const c = libc!;
  IOV.writeBigUInt64LE(c.address(DATA), 0);
  IOV.writeBigUInt64LE(1n, 8);
  MSG.fill(0);
  CONTROL.fill(0);
  MSG.writeBigUInt64LE(c.address(IOV), 16);
  MSG.writeBigUInt64LE(1n, 24);
  MSG.writeBigUInt64LE(c.address(CONTROL), 32);
  MSG.writeBigUInt64LE(BigInt(CONTROL.length), 40);
  const n = Number(c.recvmsg(fd, MSG, MSG_PEEK | MSG_DONTWAIT));
  if (n === 0) return 'eof';
  if (n < 0) {
    // EAGAIN/EWOULDBLOCK: nothing yet. Anything else is for Node to find when it reads.
    return koffiErrno() === EAGAIN ? 'empty' : undefined;
  }
  c.clockGettime(CLOCK_REALTIME, NOW);
  const at = performance.now();
  const controlLen = Number(MSG.readBigUInt64LE(40));
  // struct cmsghdr { size_t len; int level; int type; } then struct timespec.
  if (controlLen < 32 || CONTROL.readInt32LE(8) !== SOL_SOCKET || CONTROL.readInt32LE(12) !== SCM_TIMESTAMPNS)
    return undefined;
  const sec = CONTROL.readBigInt64LE(16);
  const nsec = CONTROL.readBigInt64LE(24);
  const ageMs = Number(NOW[0]! - sec) * 1000 + Number(NOW[1]! - nsec) / 1e6;
  if (!(ageMs >= 0 && ageMs <= MAX_AGE_MS)) return undefined;
  return at - ageMs;
}

const EAGAIN = 11;
let errnoFn: (() => number) | undefined;
function koffiErrno(): number {
  if (!errnoFn) {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    errnoFn = () => koffi.errno();
  }
  return errnoFn();
}

function resumeReading(socket: Socket): void {
  const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle;
  if (!handle || handle.reading) return;
  handle.reading = true;
  handle.readStart?.();
}

function tick(): void {
  for (const w of watches) {
    const got = peek(w.fd);
    if (got === 'empty') continue;
    watches.delete(w);
    w.socket.off('close', w.closed);
    resumeReading(w.socket);
    w.done(typeof got === 'number' ? got : undefined);
  }
  if (watches.size === 0 && timer) {
    clearInterval(timer);
    timer = undefined;
  }
}

/** Turns receive timestamps on for a connected TCP socket; false where it cannot. Never throws. */
export function enableTcpArrival(socket: Socket): boolean {
  if (!loadTcpArrival() || !libc) return false;
  const fd = socketFd(socket);
  if (fd === undefined) return false;
  try {
    return libc.setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, new Int32Array([1]), 4) === 0;
  } catch {
    return false;
  }
}

/**
 * Stops Node reading `socket` until bytes (or its end) arrive, then calls `done` with the kernel's
 * receive time of the first of them on the performance.now() scale (undefined without a stamp) and
 * lets Node read on. Call it right before writing the request whose answer it times, on a socket
 * `enableTcpArrival` accepted. Returns a function that cancels the watch and resumes reading, or
 * undefined when the socket cannot be watched (the caller keeps its own clock).
 */
export function awaitArrival(socket: Socket, done: (at: number | undefined) => void): (() => void) | undefined {
  if (!libc) return undefined;
  const fd = socketFd(socket);
  const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle;
  if (fd === undefined || !handle?.readStop || !handle.readStart) return undefined;
  if (handle.reading) handle.readStop();
  handle.reading = false;
  // A closed socket's fd number may be reused at once: never peek at it again.
  const w: Watch = { fd, socket, done, closed: () => watches.delete(w) };
  watches.add(w);
  socket.once('close', w.closed);
  if (!timer) {
    timer = setInterval(tick, POLL_MS);
    // The sample's own timeout keeps the process alive while it waits.
    timer.unref();
  }
  return () => {
    socket.off('close', w.closed);
    if (!watches.delete(w)) return;
    resumeReading(socket);
  };
}
