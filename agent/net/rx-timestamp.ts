// When the kernel received a UDP datagram: ioctl(fd, SIOCGSTAMPNS) on Linux, called through koffi
// because Node exposes no way to read it.
//
// Why: a reply's arrival stamped in JavaScript is the arrival plus however long the event loop took
// to get to it (a wake-up from idle on a VM, other callbacks ahead of it, a loop blocked by a
// fork), which inflates the round trip and is why busy agents flag samples. The kernel stamps each
// datagram as it comes off the device (the same stamp `ping` reads with SO_TIMESTAMP) and keeps
// the stamp of the last datagram a socket handed to user space (sk_stamp). libuv reads one datagram
// per recvmsg() and Node emits 'message' for it before reading the next, so inside the 'message'
// handler SIOCGSTAMPNS names exactly the datagram being handled.
//
// The stamp is CLOCK_REALTIME. It is turned into the monotonic clock's timeline by reading
// CLOCK_REALTIME right away: the datagram arrived (now_realtime − stamp) before performance.now(),
// so no offset between the two clocks enters the figure.
import { createRequire } from 'node:module';
import type { Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { errorMessage } from '../util/errors.ts';
import { keepStampsOn } from './stamps-on.ts';

const SIOCGSTAMPNS = 0x8907;
const CLOCK_REALTIME = 0;
/** A stamp older than this is not the datagram being handled (or the clock stepped): not used. */
const MAX_AGE_MS = 10_000;

type Ioctl = (fd: number, request: number, type: 'void *', arg: BigInt64Array) => number;
type ClockGettime = (clock: number, ts: BigInt64Array) => number;

// undefined: not tried yet; null: tried and unavailable (not Linux, koffi missing, no libc).
let libc: { ioctl: Ioctl; clockGettime: ClockGettime } | null | undefined;
let unavailableWhy: string | undefined;

/**
 * Loads koffi and libc's ioctl and clock_gettime once. Returns true when receive timestamps can be
 * read. Call it while setting up, not while timing: the first load blocks for a few milliseconds.
 */
export function loadRxTimestamps(): boolean {
  if (libc !== undefined) return libc !== null;
  libc = null;
  if (process.platform !== 'linux') {
    unavailableWhy = `kernel receive timestamps are read on Linux only (this is ${process.platform})`;
    return false;
  }
  if (process.arch !== 'x64' && process.arch !== 'arm64') {
    // struct timespec is two 64-bit words on these; 32-bit hosts would need the *_NEW ioctl.
    unavailableWhy = `kernel receive timestamps are read on 64-bit hosts only (this is ${process.arch})`;
    return false;
  }
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    // dlopen(NULL) finds libc's symbols in the running process whichever libc it is (glibc, musl).
    const lib = koffi.load(null);
    const ioctl = lib.func('int ioctl(int fd, unsigned long request, ...)');
    const clockGettime = lib.func('int clock_gettime(int clock, void *ts)');
    libc = {
      ioctl: (fd, request, type, arg) => ioctl(fd, request, type, arg) as number,
      clockGettime: (clock, ts) => clockGettime(clock, ts) as number,
    };
    keepStampsOn();
  } catch (err) {
    unavailableWhy = `cannot call ioctl through koffi: ${errorMessage(err)}`;
  }
  return libc !== null;
}

/** Why receive timestamps are unavailable, after `loadRxTimestamps` returned false. */
export function rxTimestampsUnavailableReason(): string | undefined {
  return unavailableWhy;
}

// The only private part of Node we touch: a dgram socket keeps its UDP handle, which exposes its fd,
// under a symbol described as 'state symbol'.
function udpFd(socket: Socket): number | undefined {
  for (const sym of Object.getOwnPropertySymbols(socket)) {
    if (sym.description !== 'state symbol') continue;
    const fd = (socket as unknown as Record<symbol, { handle?: { fd?: unknown } | null } | undefined>)[sym]?.handle?.fd;
    return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
  }
  return undefined;
}

/** Reads the kernel's receive time of the last datagram on one bound UDP socket. */
export class RxTimestamps {
  private readonly stamp = new BigInt64Array(2);
  private readonly now = new BigInt64Array(2);

  private constructor(private readonly fd: number) {}

  /**
   * Turns stamping on for a bound (or connected) socket; undefined when this host cannot (the
   * caller keeps its own clock). Never throws.
   */
  static enable(socket: Socket): RxTimestamps | undefined {
    if (!loadRxTimestamps() || !libc) return undefined;
    const fd = udpFd(socket);
    if (fd === undefined) return undefined;
    const rx = new RxTimestamps(fd);
    try {
      // The first SIOCGSTAMP* on a socket switches stamping on (sock_enable_timestamp) and fails
      // with ENOENT until a datagram has arrived: expected, not an error.
      libc.ioctl(fd, SIOCGSTAMPNS, 'void *', rx.stamp);
    } catch {
      return undefined;
    }
    return rx;
  }

  /**
   * The performance.now() reading at which the kernel received the datagram being handled, or
   * undefined when the kernel has no stamp for it. Call it synchronously inside the 'message'
   * handler, before anything else reads the socket.
   */
  receivedAt(): number | undefined {
    if (!libc) return undefined;
    let at: number;
    try {
      if (libc.ioctl(this.fd, SIOCGSTAMPNS, 'void *', this.stamp) !== 0) return undefined;
      libc.clockGettime(CLOCK_REALTIME, this.now);
      at = performance.now();
    } catch {
      return undefined;
    }
    const ageMs = Number(this.now[0]! - this.stamp[0]!) * 1000 + Number(this.now[1]! - this.stamp[1]!) / 1e6;
    if (!(ageMs >= 0 && ageMs <= MAX_AGE_MS)) return undefined;
    return at - ageMs;
  }
}
