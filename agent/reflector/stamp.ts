// The STAMP Session-Reflector (RFC 8762, stateful, with RFC 8972 TLVs) on UDP.
//
// It faces the internet, so every request pays before it costs anything: size check, then the
// per-source token bucket, then decoding (and HMAC in authenticated mode). In authenticated mode
// TLVs must be covered by an HMAC TLV (RFC 8972 §4.8; a site TLV appended to a signed packet was
// answered), and each session keeps a replay window on sequence number and timestamp (a captured
// packet was answered every time it was sent again). A reply is built to
// the request's exact size and never sent if larger. One socket per local address, so a reply
// leaves from the address the request was sent to (anycast needs that).
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  MAX_PACKET_BYTES,
  MIN_KEY_BYTES,
  TLV_EXTRA_PADDING,
  TLV_FLAG_U,
  TLV_HMAC,
  TLV_SITE,
  UNAUTH_BASE_BYTES,
  WallClock,
  decodeSenderPacket,
  encodeReflectorPacket,
  restampReflectorPacket,
  siteValue,
  type Tlv,
} from '../core/stamp-codec.ts';
import { AnylatError, BindError } from '../util/errors.ts';
import { RxTimestamps } from '../net/rx-timestamp.ts';
import type { ReflectorCommonOptions, ReflectorPart } from './types.ts';

export interface StampReflectorOptions extends ReflectorCommonOptions {
  /** UDP port on every bound address (0: one free port, the same on every address) */
  port: number;
  /** HMAC-SHA-256 key: authenticated mode, unauthenticated packets are dropped */
  authKey?: Buffer;
  /** packets per second accepted from one source (IPv4 address or IPv6 /64); 0 disables the limit */
  ratePerSourcePps?: number;
  /** sessions tracked at once; the least recently active one is evicted past this */
  maxSessions?: number;
  /** a session idle this long is forgotten (its sequence number restarts at 0) */
  sessionIdleMs?: number;
  /** larger requests are dropped as oversize */
  maxPacketBytes?: number;
}

/** Defaults for the abuse limits; docs/measurement.md ("Reflector limits") documents them. */
export const STAMP_REFLECTOR_DEFAULTS = {
  ratePerSourcePps: 100,
  maxSessions: 4096,
  sessionIdleMs: 300_000,
  maxPacketBytes: MAX_PACKET_BYTES,
  /** rate-limit buckets tracked at once (spoofed sources cannot grow memory past this) */
  maxSources: 65_536,
} as const;

/**
 * Addresses of this host's interfaces, one per entry, for binding one socket each. IPv6 link-local
 * addresses (fe80::/10) are left out: they need a zone and never carry a service address.
 */
export function localAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family === 'IPv6' && /^fe[89ab]/i.test(a.address)) continue;
      if (!out.includes(a.address)) out.push(a.address);
    }
  }
  return out;
}

/** The rate-limit key of a source: the IPv4 address, or the IPv6 /64 one host can rotate within. */
export function sourceKey(address: string): string {
  const bare = address.split('%')[0]!;
  if (isIP(bare) !== 6) return bare;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return mapped[1]!;
  const [head = '', tail] = bare.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined
      ? headGroups
      : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

/** Token buckets per source, bounded in number; a bucket that has refilled is forgotten. */
export class SourceLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly ratePerMs: number,
    private readonly burst: number,
    private readonly maxEntries: number,
  ) {}

  take(key: string, now: number): boolean {
    return this.takeMany(key, now, 1);
  }

  /** Takes `n` tokens at once, or none when the bucket holds fewer (the reflector's byte budget). */
  takeMany(key: string, now: number, n: number): boolean {
    if (this.ratePerMs === 0) return true;
    let b = this.buckets.get(key);
    if (b) {
      b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.ratePerMs);
      b.at = now;
    } else {
      if (this.buckets.size >= this.maxEntries) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    }
    if (b.tokens < n) return false;
    b.tokens -= n;
    return true;
  }

  sweep(now: number): void {
    const refillMs = this.burst / this.ratePerMs;
    for (const [k, b] of this.buckets) if (now - b.at >= refillMs) this.buckets.delete(k);
  }

  get size(): number {
    return this.buckets.size;
  }
}

interface Session {
  seq: number;
  lastSeen: number;
  /** authenticated mode: the highest sender sequence number accepted, and its timestamp */
  maxSenderSeq?: number;
  maxTimestamp?: bigint;
  /** sender sequence numbers accepted within REPLAY_WINDOW below maxSenderSeq */
  seen?: Set<number>;
}

/** Sender sequence numbers this far behind the highest one accepted are refused as replays. */
const REPLAY_WINDOW = 64;

/**
 * Authenticated mode: is this (sequence number, timestamp) new for the session? A sequence number
 * seen before, or older than the window, is a replay, unless its timestamp is later than anything
 * the session accepted (the sender restarted its sequence on the same port): then the window
 * starts over. Records the packet when it is new.
 */
function freshInWindow(s: Session, seq: number, timestamp: bigint): boolean {
  if (s.maxSenderSeq === undefined || s.seen === undefined || s.maxTimestamp === undefined) {
    s.maxSenderSeq = seq;
    s.maxTimestamp = timestamp;
    s.seen = new Set([seq]);
    return true;
  }
  const max = s.maxSenderSeq;
  const inWindow = seq > max || (max - seq < REPLAY_WINDOW && !s.seen.has(seq));
  if (!inWindow) {
    if (timestamp <= s.maxTimestamp) return false;
    // A later timestamp with an old sequence number: the sender started over.
    s.maxSenderSeq = seq;
    s.maxTimestamp = timestamp;
    s.seen = new Set([seq]);
    return true;
  }
  s.seen.add(seq);
  if (seq > max) {
    s.maxSenderSeq = seq;
    for (const old of s.seen) if (seq - old >= REPLAY_WINDOW) s.seen.delete(old);
  }
  if (timestamp > s.maxTimestamp) s.maxTimestamp = timestamp;
  return true;
}

/** Per-session reflector sequence numbers, least recently active first (Map insertion order). */
class SessionTable {
  private readonly sessions = new Map<string, Session>();
  evicted = 0;
  expired = 0;

  constructor(
    private readonly max: number,
    private readonly idleMs: number,
  ) {}

  touch(key: string, now: number): Session {
    let s = this.sessions.get(key);
    if (s && now - s.lastSeen > this.idleMs) {
      this.sessions.delete(key);
      this.expired++;
      s = undefined;
    }
    if (s) {
      this.sessions.delete(key);
    } else {
      s = { seq: 0, lastSeen: now };
      while (this.sessions.size >= this.max) {
        this.sessions.delete(this.sessions.keys().next().value!);
        this.evicted++;
      }
    }
    s.lastSeen = now;
    this.sessions.set(key, s);
    return s;
  }

  sweep(now: number): void {
    for (const [k, s] of this.sessions) {
      if (now - s.lastSeen <= this.idleMs) break;
      this.sessions.delete(k);
      this.expired++;
    }
  }

  get size(): number {
    return this.sessions.size;
  }
}

function optionsError(message: string): AnylatError {
  return new AnylatError('ANYLAT_REFLECTOR_OPTIONS', `STAMP reflector: ${message}`);
}

function positiveInt(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) throw optionsError(`${name} must be an integer >= ${min}, got ${value}`);
  return value;
}

/** The reply's TLVs: same order and sizes as the request's, so the reply is exactly as large. */
function reflectTlvs(tlvs: readonly Tlv[], site: string, authenticated: boolean): Tlv[] {
  return tlvs.map((t): Tlv => {
    switch (t.type) {
      case TLV_SITE:
        return { flags: 0, type: t.type, value: siteValue(site, t.value.length) };
      case TLV_EXTRA_PADDING:
        return { flags: 0, type: t.type, value: t.value };
      case TLV_HMAC:
        // Authenticated: the codec recomputes it over the reply. Otherwise we cannot check it.
        return authenticated
          ? { flags: 0, type: t.type, value: t.value }
          : { flags: t.flags | TLV_FLAG_U, type: t.type, value: t.value };
      default:
        return { flags: t.flags | TLV_FLAG_U, type: t.type, value: t.value };
    }
  });
}

/** The options, checked, with their defaults filled in. */
interface StampSettings {
  key: Buffer | undefined;
  rate: number;
  maxSessions: number;
  idleMs: number;
  maxPacket: number;
}

function stampSettings(options: StampReflectorOptions): StampSettings {
  const key = options.authKey;
  if (key !== undefined && key.length < MIN_KEY_BYTES)
    throw optionsError(`the key has ${key.length} octets, at least ${MIN_KEY_BYTES} are needed`);
  if (options.binds.length === 0) throw optionsError('no address to bind; pass at least one --bind address');
  for (const b of options.binds)
    if (isIP(b.split('%')[0]!) === 0) throw optionsError(`bind address "${b}" is not an IP address`);
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65_535)
    throw optionsError(`port must be 0-65535, got ${options.port}`);
  const rate = options.ratePerSourcePps ?? STAMP_REFLECTOR_DEFAULTS.ratePerSourcePps;
  if (!(rate >= 0) || !Number.isFinite(rate)) throw optionsError(`ratePerSourcePps must be >= 0, got ${rate}`);
  return {
    key,
    rate,
    maxSessions: positiveInt('maxSessions', options.maxSessions ?? STAMP_REFLECTOR_DEFAULTS.maxSessions, 1),
    idleMs: positiveInt('sessionIdleMs', options.sessionIdleMs ?? STAMP_REFLECTOR_DEFAULTS.sessionIdleMs, 1),
    maxPacket: positiveInt(
      'maxPacketBytes',
      options.maxPacketBytes ?? STAMP_REFLECTOR_DEFAULTS.maxPacketBytes,
      UNAUTH_BASE_BYTES,
    ),
  };
}

function newCounts() {
  return {
    received: 0,
    reflected: 0,
    malformed: 0,
    oversize: 0,
    rate_limited: 0,
    auth_failed: 0,
    /** authenticated mode: TLVs without a verifying HMAC TLV over them (also in auth_failed) */
    tlv_unprotected: 0,
    /** authenticated mode: packets refused by the session's replay window */
    replayed: 0,
    send_errors: 0,
    internal_errors: 0,
  };
}
type StampCounts = ReturnType<typeof newCounts>;

/** What one reflector's packets share: its settings, counters, limiter, sessions and clock. */
interface StampState {
  settings: StampSettings;
  site: string;
  counts: StampCounts;
  limiter: SourceLimiter;
  sessions: SessionTable;
  clock: WallClock;
}

type Local = { address: string; port: number };

/** A request that passed the size, rate, decoding and authentication checks; undefined (counted) otherwise. */
function admit(state: StampState, msg: Buffer, from: RemoteInfo, t2: number) {
  const { counts, settings } = state;
  const key = settings.key;
  counts.received++;
  if (msg.length > settings.maxPacket) {
    counts.oversize++;
    return undefined;
  }
  if (!state.limiter.take(sourceKey(from.address), t2)) {
    counts.rate_limited++;
    return undefined;
  }
  const decoded = decodeSenderPacket(msg, key, settings.maxPacket);
  if (!decoded.ok) {
    switch (decoded.reason) {
      case 'too_short':
        // In authenticated mode an unauthenticated-sized packet is refused for its mode.
        if (key && msg.length >= UNAUTH_BASE_BYTES) counts.auth_failed++;
        else counts.malformed++;
        return undefined;
      case 'too_long':
        counts.oversize++;
        return undefined;
      case 'bad_hmac':
      case 'bad_tlv_hmac':
        counts.auth_failed++;
        return undefined;
      case 'bad_tlv':
        counts.malformed++;
        return undefined;
    }
  }
  const req = decoded.packet;
  if (key && req.tlvs.length > 0 && !req.tlvHmacValid) {
    // The packet HMAC covers the base packet only; TLVs need the HMAC TLV (RFC 8972 §4.8).
    counts.auth_failed++;
    counts.tlv_unprotected++;
    return undefined;
  }
  return req;
}

/** Answers one datagram: counted and dropped, or reflected from the address it was sent to. */
function reflect(
  state: StampState,
  socket: Socket,
  local: Local,
  msg: Buffer,
  from: RemoteInfo,
  receivedAt: number | undefined,
): void {
  const t2 = performance.now();
  const req = admit(state, msg, from, t2);
  if (!req) return;
  const { counts, clock } = state;
  const key = state.settings.key;
  const session = state.sessions.touch(`${from.address}|${from.port}|${local.address}|${local.port}|${req.ssid}`, t2);
  if (key && !freshInWindow(session, req.seq, req.timestamp)) {
    counts.replayed++;
    return;
  }
  const reply = encodeReflectorPacket(
    {
      seq: session.seq,
      timestamp: 0n,
      ssid: req.ssid,
      // T2 is when the kernel received the packet (Linux), so the time this process took to get
      // to it counts as the reflector's, and the sender subtracts it with T3 − T2.
      receiveTimestamp: clock.ntp(receivedAt !== undefined && receivedAt <= t2 ? receivedAt : t2),
      senderSeq: req.seq,
      senderTimestamp: req.timestamp,
      senderErrorEstimate: req.errorEstimate,
      // Node cannot read a received datagram's TTL / Hop Limit; 0 says "unknown".
      senderTtl: 0,
      tlvs: reflectTlvs(req.tlvs, state.site, key !== undefined),
      padding: req.padding,
    },
    key,
  );
  if (reply.length > msg.length) {
    // Unreachable by construction; if it ever happens, drop rather than amplify.
    counts.internal_errors++;
    return;
  }
  session.seq = (session.seq + 1) >>> 0;
  restampReflectorPacket(reply, clock.ntp(performance.now()), key);
  socket.send(reply, from.port, from.address, (err) => {
    if (err) counts.send_errors++;
  });
  counts.reflected++;
}

/** One UDP socket bound to `address` (exclusively), or a BindError. */
async function bindStampSocket(address: string, port: number, sockets: Socket[]): Promise<Socket> {
  // ipv6Only: `::` must not also take IPv4 traffic that a 0.0.0.0 socket (or none) should get.
  const v6 = isIP(address.split('%')[0]!) === 6;
  const socket = createSocket(v6 ? { type: 'udp6', ipv6Only: true } : { type: 'udp4' });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port, address, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  }).catch((err: NodeJS.ErrnoException) => {
    throw new BindError(
      'STAMP reflector',
      address,
      port,
      err,
      'pick another --udp-port or --bind address, or stop what holds it',
    );
  });
  return socket;
}

/** Binds every address on one port (the first one's when 0) and reflects what arrives; closes all on failure. */
async function listenStamp(
  state: StampState,
  binds: readonly string[],
  firstPort: number,
  log: (line: string) => void,
): Promise<{ sockets: Socket[]; listening: Local[] }> {
  const sockets: Socket[] = [];
  const listening: Local[] = [];
  let port = firstPort;
  try {
    for (const address of binds) {
      const socket = await bindStampSocket(address, port, sockets);
      const bound = socket.address();
      // Port 0: the first socket picks a port, every other address listens on the same one.
      if (port === 0) port = bound.port;
      const local = { address: bound.address, port: bound.port };
      listening.push(local);
      const rx = RxTimestamps.enable(socket);
      socket.on('message', (msg, from) => {
        // Synchronously, before Node reads the next datagram: the stamp is this datagram's.
        const receivedAt = rx?.receivedAt();
        try {
          reflect(state, socket, local, msg, from, receivedAt);
        } catch (err) {
          state.counts.internal_errors++;
          log(`STAMP reflector: dropped a packet after an internal error: ${(err as Error).message}`);
        }
      });
      socket.on('error', (err) => log(`STAMP reflector on ${local.address}:${local.port}: ${err.message}`));
    }
  } catch (err) {
    for (const s of sockets) {
      try {
        s.close();
      } catch {
        // already closed by its failed bind
      }
    }
    throw err;
  }
  return { sockets, listening };
}

/** Starts the STAMP reflector on every address in `binds`. */
export async function startStampReflector(options: StampReflectorOptions): Promise<ReflectorPart> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const settings = stampSettings(options);
  const { rate, idleMs } = settings;
  const state: StampState = {
    settings,
    site: options.site,
    counts: newCounts(),
    // One second of traffic as burst: a round's samples pass, a flood is cut after a second's worth.
    limiter: new SourceLimiter(rate / 1000, Math.max(1, rate), STAMP_REFLECTOR_DEFAULTS.maxSources),
    sessions: new SessionTable(settings.maxSessions, idleMs),
    clock: new WallClock(),
  };
  const { counts, limiter, sessions, clock } = state;
  const { sockets, listening } = await listenStamp(state, options.binds, options.port, log);

  const sweeper = setInterval(
    () => {
      const now = performance.now();
      sessions.sweep(now);
      limiter.sweep(now);
      clock.refresh();
    },
    Math.min(10_000, idleMs),
  );
  sweeper.unref();

  let closed = false;
  return {
    kind: 'udp',
    listening,
    stats: () => ({
      ...counts,
      sessions: sessions.size,
      sessions_evicted: sessions.evicted,
      sessions_expired: sessions.expired,
      sources_tracked: limiter.size,
    }),
    close: async () => {
      if (closed) return;
      closed = true;
      clearInterval(sweeper);
      await Promise.all(
        sockets.map(
          (s) =>
            new Promise<void>((resolve) => {
              try {
                s.close(() => resolve());
              } catch {
                resolve();
              }
            }),
        ),
      );
    },
  };
}
