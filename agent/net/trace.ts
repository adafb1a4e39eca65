// A UDP traceroute in-process: datagrams with rising TTL (hop limit) to high ports of the target,
// the ICMP "time exceeded" / "port unreachable" they provoke read from the socket's error queue
// (IP_RECVERR / IPV6_RECVERR, recvmsg(MSG_ERRQUEUE)) through koffi, because Node exposes neither.
//
// Why not the system's traceroute/mtr: they are not installed on most agent hosts (nor here), a
// child process per trace needs parsing of a human format, and an unprivileged UDP socket with
// IP_RECVERR needs no raw socket, no setuid binary and no capability: any user may run it.
//
// Timing: the send time is CLOCK_REALTIME read right before sendto(); the arrival time of each
// ICMP error is the kernel's receive stamp (SO_TIMESTAMPNS, delivered with the error as
// SCM_TIMESTAMPNS), so the event loop's delay in polling the error queue never enters a hop's RTT.
// The error queue is polled every few ms with MSG_DONTWAIT from timers: nothing blocks the loop.
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { lookup, lookupService } from 'node:dns/promises';
import { AnylatError, errorMessage } from '../util/errors.ts';
import type { TraceHop } from '../core/model.ts';

export type { TraceHop };

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SOL_IP = 0;
const SOL_IPV6 = 41;
const IP_TTL = 2;
const IP_RECVERR = 11;
const IPV6_UNICAST_HOPS = 16;
const IPV6_RECVERR = 25;
const SO_TIMESTAMPNS = 35;
const MSG_DONTWAIT = 0x40;
const MSG_ERRQUEUE = 0x2000;
const CLOCK_REALTIME = 0;
const SO_EE_ORIGIN_ICMP = 2;
const SO_EE_ORIGIN_ICMP6 = 3;
const EAGAIN = 11;

const MAGIC = 0x616e7974; // "anyt"
const PAYLOAD = 16;

/** Defaults of one trace; `anylat trace` and the agent's `trace:` block override them. */
export const TRACE_DEFAULTS = {
  port: 33434,
  maxHops: 16,
  probeTimeoutMs: 1000,
  deadlineMs: 10_000,
  nameTimeoutMs: 500,
} as const;

export interface TraceOptions {
  /** first destination port; probe at TTL t goes to port + t − 1, as traceroute does */
  port?: number;
  maxHops?: number;
  /** how long to wait for one hop's answer after its probe left */
  probeTimeoutMs?: number;
  /** the whole trace, names included, ends by then */
  deadlineMs?: number;
  /** look up reverse names of hop addresses (getnameinfo, /etc/hosts then DNS); default true */
  names?: boolean;
  nameTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface TraceResult {
  target: string;
  address: string;
  port: number;
  started_at: string;
  duration_ms: number;
  reached: boolean;
  hops: TraceHop[];
}

/** Stable error of the tracer: the host cannot trace (not Linux, no koffi) or a bad target. */
export class TraceError extends AnylatError {
  constructor(code: 'ANYLAT_TRACE_UNAVAILABLE' | 'ANYLAT_TRACE_TARGET' | 'ANYLAT_TRACE_SOCKET', message: string) {
    super(code, message);
    this.name = 'TraceError';
  }
}

interface Libc {
  socket(domain: number, type: number, proto: number): number;
  setsockopt(fd: number, level: number, name: number, val: Buffer, len: number): number;
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, alen: number): number;
  recvmsg(fd: number, msg: Buffer, flags: number): number;
  close(fd: number): number;
  clockGettime(clock: number, ts: BigInt64Array): number;
  errno(): number;
  strerror(e: number): string;
  addressOf(buf: Buffer): bigint;
}

let cached: Libc | null | undefined;
let unavailableWhy = '';

function load(): Libc | null {
  if (cached !== undefined) return cached;
  cached = null;
  if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) {
    unavailableWhy = `trace needs Linux on a 64-bit host (this is ${process.platform}/${process.arch})`;
    return null;
  }
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const lib = koffi.load(null);
    const socket = lib.func('int socket(int domain, int type, int protocol)');
    const setsockopt = lib.func('int setsockopt(int fd, int level, int name, void *val, unsigned int len)');
    const sendto = lib.func(
      'long sendto(int fd, void *buf, unsigned long len, int flags, void *addr, unsigned int alen)',
    );
    const recvmsg = lib.func('long recvmsg(int fd, void *msg, int flags)');
    const close = lib.func('int close(int fd)');
    const clockGettime = lib.func('int clock_gettime(int clock, void *ts)');
    const strerror = lib.func('const char *strerror(int errnum)');
    cached = {
      socket: (d, t, p) => socket(d, t, p) as number,
      setsockopt: (fd, l, n, v, len) => setsockopt(fd, l, n, v, len) as number,
      sendto: (fd, b, len, f, a, alen) => Number(sendto(fd, b, len, f, a, alen)),
      recvmsg: (fd, m, f) => Number(recvmsg(fd, m, f)),
      close: (fd) => close(fd) as number,
      clockGettime: (c, ts) => clockGettime(c, ts) as number,
      errno: () => koffi.errno(),
      strerror: (e) => strerror(e) as string,
      addressOf: (buf) => BigInt(koffi.address(buf) as unknown as bigint),
    };
  } catch (err) {
    unavailableWhy = `trace cannot call libc through koffi: ${errorMessage(err)}`;
  }
  return cached;
}

function realtimeMs(libc: Libc, ts: BigInt64Array): number {
  libc.clockGettime(CLOCK_REALTIME, ts);
  return Number(ts[0]!) * 1000 + Number(ts[1]!) / 1e6;
}

function sockaddr(family: 4 | 6, address: string, port: number): Buffer {
  if (family === 4) {
    const sa = Buffer.alloc(16);
    sa.writeUInt16LE(AF_INET, 0);
    sa.writeUInt16BE(port, 2);
    address.split('.').forEach((o, i) => sa.writeUInt8(Number(o), 4 + i));
    return sa;
  }
  const sa = Buffer.alloc(28);
  sa.writeUInt16LE(AF_INET6, 0);
  sa.writeUInt16BE(port, 2);
  ipv6Bytes(address).copy(sa, 8);
  return sa;
}

function ipv6Bytes(address: string): Buffer {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const parse = (s: string | undefined): number[] => {
    if (!s) return [];
    const out: number[] = [];
    for (const part of s.split(':')) {
      if (part.includes('.')) {
        const o = part.split('.').map(Number);
        out.push((o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!);
      } else out.push(parseInt(part, 16));
    }
    return out;
  };
  const h = parse(head);
  const t = parse(tail);
  const words = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const b = Buffer.alloc(16);
  words.forEach((w, i) => b.writeUInt16BE(w, i * 2));
  return b;
}

function addressFrom(sa: Buffer, offset: number): string | undefined {
  const family = sa.readUInt16LE(offset);
  if (family === AF_INET) return [0, 1, 2, 3].map((i) => sa.readUInt8(offset + 4 + i)).join('.');
  if (family === AF_INET6) {
    const words: string[] = [];
    for (let i = 0; i < 8; i++) words.push(sa.readUInt16BE(offset + 8 + i * 2).toString(16));
    // Compress the longest run of zero words, as inet_ntop does.
    let best = -1;
    let bestLen = 0;
    for (let i = 0; i < 8;) {
      if (words[i] !== '0') {
        i++;
        continue;
      }
      let j = i;
      while (j < 8 && words[j] === '0') j++;
      if (j - i > bestLen && j - i > 1) [best, bestLen] = [i, j - i];
      i = j;
    }
    if (best < 0) return words.join(':');
    return `${words.slice(0, best).join(':')}::${words.slice(best + bestLen).join(':')}`;
  }
  return undefined;
}

function icmpNote(family: 4 | 6, type: number, code: number): { reached?: boolean; hop?: boolean; note?: string } {
  if (family === 4) {
    if (type === 11) return { hop: true };
    if (type === 3 && code === 3) return { reached: true };
    if (type === 3)
      return { note: ({ 0: '!N', 1: '!H', 2: '!P', 13: '!A' } as Record<number, string>)[code] ?? `!${code}` };
  } else {
    if (type === 3) return { hop: true };
    if (type === 1 && code === 4) return { reached: true };
    if (type === 1) return { note: ({ 0: '!N', 1: '!A', 3: '!H' } as Record<number, string>)[code] ?? `!${code}` };
  }
  return { note: `!type${type}` };
}

async function reverseName(address: string, timeoutMs: number): Promise<string | undefined> {
  let wake: (v: undefined) => void = () => {};
  const timeout = new Promise<undefined>((resolve) => (wake = resolve));
  const timer = setTimeout(() => wake(undefined), timeoutMs);
  try {
    const found = await Promise.race([
      lookupService(address, 0)
        .then((r) => r.hostname)
        .catch(() => undefined),
      timeout,
    ]);
    return found !== undefined && found !== address ? found : undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** Why tracing is unavailable on this host, or undefined when it is. */
export function traceUnavailableReason(): string | undefined {
  return load() ? undefined : unavailableWhy;
}

/**
 * Traces the route to `target` (an address, or a name looked up once). A target that does not
 * answer is data (hops without address, `reached: false`); throws {@link TraceError} only when this
 * host cannot trace or the target cannot be resolved.
 */
export async function trace(target: string, options: TraceOptions = {}): Promise<TraceResult> {
  const port = options.port ?? TRACE_DEFAULTS.port;
  const maxHops = options.maxHops ?? TRACE_DEFAULTS.maxHops;
  const probeTimeoutMs = options.probeTimeoutMs ?? TRACE_DEFAULTS.probeTimeoutMs;
  const deadlineMs = options.deadlineMs ?? TRACE_DEFAULTS.deadlineMs;
  if (!Number.isInteger(maxHops) || maxHops < 1 || maxHops > 64)
    throw new TraceError('ANYLAT_TRACE_TARGET', `max hops must be 1..64, got ${maxHops}`);
  if (!Number.isInteger(port) || port < 1 || port + maxHops - 1 > 65535)
    throw new TraceError('ANYLAT_TRACE_TARGET', `port must be 1..${65536 - maxHops}, got ${port}`);
  const libc = load();
  if (!libc) throw new TraceError('ANYLAT_TRACE_UNAVAILABLE', unavailableWhy);

  const address = await resolveTarget(target);
  const family = isIP(address) === 6 ? 6 : 4;
  const startedAt = new Date();
  const t0 = performance.now();

  const fd = libc.socket(family === 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new TraceError('ANYLAT_TRACE_SOCKET', `trace: socket(): ${libc.strerror(libc.errno())}`);
  const run: Run = {
    libc,
    fd,
    family,
    address,
    port,
    maxHops,
    hops: Array.from({ length: maxHops }, (_, i) => ({ ttl: i + 1 })),
    sentAt: new Array<number>(maxHops).fill(NaN),
    answered: new Set<number>(),
    ts: new BigInt64Array(2),
  };
  try {
    const hopsOpt = configureSocket(run);
    const stop = (): boolean => options.signal?.aborted === true || performance.now() - t0 >= deadlineMs;
    await probeInWindows(run, hopsOpt, receiver(run), stop, probeTimeoutMs);
  } finally {
    libc.close(fd);
  }
  const { hops, sentAt } = run;
  const stopAt = hops.find((h) => h.reached || h.note !== undefined)?.ttl;
  const lastSent = sentAt.reduce((m, s, i) => (Number.isFinite(s) ? i + 1 : m), 0);
  const kept = hops.slice(0, stopAt ?? lastSent);
  if (options.names !== false) {
    const budget = Math.max(
      0,
      Math.min(options.nameTimeoutMs ?? TRACE_DEFAULTS.nameTimeoutMs, deadlineMs - (performance.now() - t0)),
    );
    await nameHops(kept, budget);
  }
  return {
    target,
    address,
    port,
    started_at: startedAt.toISOString(),
    duration_ms: Math.round((performance.now() - t0) * 1000) / 1000,
    reached: kept.some((h) => h.reached === true),
    hops: kept,
  };
}

/** One trace's socket and what it has learnt so far, shared by its steps. */
interface Run {
  libc: Libc;
  fd: number;
  family: 4 | 6;
  address: string;
  port: number;
  maxHops: number;
  /** one per TTL, filled in as answers arrive */
  hops: TraceHop[];
  /** CLOCK_REALTIME ms each TTL's probe left at; NaN while unsent */
  sentAt: number[];
  /** the TTLs whose answer has been read */
  answered: Set<number>;
  /** clock_gettime's buffer */
  ts: BigInt64Array;
}

/** The address to trace: `target` itself (brackets dropped), or the name looked up once. */
async function resolveTarget(target: string): Promise<string> {
  const address = target.replace(/^\[(.*)\]$/, '$1');
  if (isIP(address) !== 0) return address;
  try {
    return (await lookup(address)).address;
  } catch (err) {
    throw new TraceError('ANYLAT_TRACE_TARGET', `trace: cannot resolve "${target}": ${errorMessage(err)}`);
  }
}

/** Turns on the error queue and kernel receive stamps; returns the option that sets the TTL. */
function configureSocket({ libc, fd, family }: Run): number {
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  const [level, recverr, hopsOpt] =
    family === 4 ? [SOL_IP, IP_RECVERR, IP_TTL] : [SOL_IPV6, IPV6_RECVERR, IPV6_UNICAST_HOPS];
  if (libc.setsockopt(fd, level, recverr, one, 4) !== 0)
    throw new TraceError('ANYLAT_TRACE_SOCKET', `trace: setsockopt(RECVERR): ${libc.strerror(libc.errno())}`);
  libc.setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, one, 4);
  return hopsOpt;
}

/**
 * Probes go out in windows of a few TTLs, each window waiting for its answers (or the probe
 * timeout): a short path ends after its first window, and an ICMP rate limit along a long one is
 * not hit by dozens of probes at once.
 */
async function probeInWindows(
  run: Run,
  hopsOpt: number,
  drain: () => void,
  stop: () => boolean,
  probeTimeoutMs: number,
): Promise<void> {
  const { hops, answered, maxHops } = run;
  const firstStop = (): number | undefined => hops.find((h) => h.reached || h.note !== undefined)?.ttl;
  const payload = Buffer.alloc(PAYLOAD);
  payload.writeUInt32BE(MAGIC, 0);
  const ttlBuf = Buffer.alloc(4);
  const WINDOW = 4;
  for (let first = 1; first <= maxHops && !stop(); first += WINDOW) {
    const last = Math.min(maxHops, first + WINDOW - 1);
    for (let ttl = first; ttl <= last; ttl++) sendProbe(run, ttl, hopsOpt, payload, ttlBuf);
    const windowStart = performance.now();
    for (;;) {
      drain();
      const stopAt = firstStop();
      const waiting = [];
      for (let t = first; t <= last; t++) if (!answered.has(t) && (stopAt === undefined || t < stopAt)) waiting.push(t);
      if (waiting.length === 0 || stop() || performance.now() - windowStart >= probeTimeoutMs) break;
      await new Promise((r) => setTimeout(r, 3));
    }
    if (firstStop() !== undefined) break;
  }
}

/** Sends the probe for `ttl`, stamping when it left. */
function sendProbe(run: Run, ttl: number, hopsOpt: number, payload: Buffer, ttlBuf: Buffer): void {
  const { libc, fd, family } = run;
  ttlBuf.writeInt32LE(ttl);
  libc.setsockopt(fd, family === 4 ? SOL_IP : SOL_IPV6, hopsOpt, ttlBuf, 4);
  payload.writeUInt32BE(ttl, 4);
  const sa = sockaddr(family, run.address, run.port + ttl - 1);
  run.sentAt[ttl - 1] = realtimeMs(libc, run.ts);
  if (libc.sendto(fd, payload, payload.length, 0, sa, sa.length) < 0) {
    // An ICMP error already queued makes sendto report it once (ECONNREFUSED, EHOSTUNREACH):
    // not a failure of this probe. Send it again once; if that fails too, the hop stays unanswered.
    libc.sendto(fd, payload, payload.length, 0, sa, sa.length);
  }
}

/** What one message's control data says: when it arrived, who sent the ICMP error, and what it means. */
interface Arrival {
  arrivedAt: number;
  offender: string | undefined;
  kind: ReturnType<typeof icmpNote>;
}

/**
 * A function that reads every queued answer (the error queue, then the normal queue) without
 * blocking and records it in `run.hops`.
 */
function receiver(run: Run): () => void {
  const { libc, fd, port, maxHops, hops, sentAt, answered, ts } = run;
  // Buffers for recvmsg: struct msghdr (56 bytes on LP64) pointing at a name, one iovec and a
  // control buffer.
  const name = Buffer.alloc(28);
  const data = Buffer.alloc(256);
  const control = Buffer.alloc(512);
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(libc.addressOf(data), 0);
  iov.writeBigUInt64LE(BigInt(data.length), 8);
  const msg = Buffer.alloc(56);
  const armMsg = (): void => {
    msg.fill(0);
    msg.writeBigUInt64LE(libc.addressOf(name), 0);
    msg.writeUInt32LE(name.length, 8);
    msg.writeBigUInt64LE(libc.addressOf(iov), 16);
    msg.writeBigUInt64LE(1n, 24);
    msg.writeBigUInt64LE(libc.addressOf(control), 32);
    msg.writeBigUInt64LE(BigInt(control.length), 40);
  };
  const ttlOfPayload = (n: number, fromName: boolean): number | undefined => {
    if (n >= 8 && data.readUInt32BE(0) === MAGIC) return data.readUInt32BE(4);
    // A reply from the target (its port was open): which probe it answers is in its source port.
    if (fromName) {
      const p = name.readUInt16BE(2);
      if (p >= port && p < port + maxHops) return p - port + 1;
    }
    return undefined;
  };

  return (): void => {
    for (const flags of [MSG_ERRQUEUE | MSG_DONTWAIT, MSG_DONTWAIT]) {
      for (;;) {
        armMsg();
        const n = libc.recvmsg(fd, msg, flags);
        if (n < 0) {
          const e = libc.errno();
          if (e === EAGAIN) break;
          // An error other than "nothing queued" on the normal queue is the pending ICMP error the
          // error queue also holds: read on.
          if (flags === MSG_DONTWAIT) continue;
          break;
        }
        const readAt = realtimeMs(libc, ts);
        const ttl = ttlOfPayload(n, flags === MSG_DONTWAIT);
        if (ttl === undefined || ttl < 1 || ttl > maxHops || answered.has(ttl)) continue;
        const { arrivedAt, kind, ...from } = readControl(run.family, control, Number(msg.readBigUInt64LE(40)), readAt);
        const offender = flags === MSG_DONTWAIT ? addressFrom(name, 0) : from.offender;
        if (!kind.hop && !kind.reached && kind.note === undefined) continue;
        const hop = hops[ttl - 1]!;
        answered.add(ttl);
        if (offender !== undefined) hop.address = offender;
        if (Number.isFinite(sentAt[ttl - 1]!)) hop.rtt_ms = Math.round((arrivedAt - sentAt[ttl - 1]!) * 1000) / 1000;
        if (kind.reached) hop.reached = true;
        if (kind.note !== undefined) hop.note = kind.note;
      }
    }
  };
}

/**
 * Reads the control messages of one recvmsg: the kernel's receive stamp (else `readAt`) and the
 * ICMP error with its offender. A message without an error is the target's own reply: reached.
 */
function readControl(family: 4 | 6, control: Buffer, controllen: number, readAt: number): Arrival {
  let arrivedAt = readAt;
  let offender: string | undefined;
  let kind: ReturnType<typeof icmpNote> = { reached: true };
  for (let off = 0; off + 16 <= controllen;) {
    const len = Number(control.readBigUInt64LE(off));
    if (len < 16) break;
    const cl = control.readInt32LE(off + 8);
    const ct = control.readInt32LE(off + 12);
    if (cl === SOL_SOCKET && ct === SO_TIMESTAMPNS && len >= 32) {
      const at = Number(control.readBigInt64LE(off + 16)) * 1000 + Number(control.readBigInt64LE(off + 24)) / 1e6;
      if (at > 0 && at <= readAt) arrivedAt = at;
    } else if ((cl === SOL_IP && ct === IP_RECVERR) || (cl === SOL_IPV6 && ct === IPV6_RECVERR)) {
      const origin = control.readUInt8(off + 16 + 4);
      if (origin !== SO_EE_ORIGIN_ICMP && origin !== SO_EE_ORIGIN_ICMP6) {
        kind = {};
        break;
      }
      kind = icmpNote(family, control.readUInt8(off + 16 + 5), control.readUInt8(off + 16 + 6));
      offender = addressFrom(control, off + 16 + 16);
    }
    off += (len + 7) & ~7;
  }
  return { arrivedAt, offender, kind };
}

/** Looks up each hop address's name once, all at the same time, within `budget` ms. */
async function nameHops(kept: TraceHop[], budget: number): Promise<void> {
  const byAddress = new Map<string, Promise<string | undefined>>();
  for (const h of kept)
    if (h.address !== undefined && !byAddress.has(h.address)) byAddress.set(h.address, reverseName(h.address, budget));
  for (const h of kept) {
    if (h.address === undefined) continue;
    const n = await byAddress.get(h.address)!;
    if (n !== undefined) h.name = n;
  }
}
