// The udp probe: a STAMP Session-Sender (RFC 8762) on one connected UDP socket per target.
//
// RTT = (t1 − t0) − (T3 − T2): t0/t1 are this host's monotonic clock around the exchange, T2/T3
// the reflector's receive and send timestamps, both read from the reflector's one clock, so the
// time the reflector held the packet leaves the figure without any clock synchronization. t0 is
// read right before the (synchronous) send; t1 is when the kernel received the reply (SIOCGSTAMPNS,
// see rx-timestamp.ts) where the host can say, else when the 'message' handler ran, so on Linux a
// busy or blocked event loop does not inflate the figure.
import { createSocket, type Socket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Attempt, FailureReason, PacketCounters } from '../core/model.ts';
import { failureReason } from './outcome.ts';
import { SampleRuns, type SampleRun } from './sample.ts';
import { AnylatError } from '../util/errors.ts';
import { RxTimestamps } from '../net/rx-timestamp.ts';
import type { ProbeFactory, Prober, ProbeTarget, UdpProbeOptions } from './types.ts';
import {
  AUTH_BASE_BYTES,
  DEFAULT_SITE_TLV_BYTES,
  MAX_SITE_TLV_BYTES,
  MIN_KEY_BYTES,
  TLV_FLAG_U,
  TLV_SITE,
  UNAUTH_BASE_BYTES,
  WallClock,
  decodeReflectorPacket,
  emptySiteTlv,
  encodeSenderPacket,
  hmacTlvPlaceholder,
  ntpDiffMs,
  readSiteValue,
  senderPacketBytes,
  type Tlv,
} from '../core/stamp-codec.ts';
import { hostPort } from '../util/host-port.ts';

/** Sequence numbers remembered for late/duplicate accounting; older answered ones are forgotten. */
const REMEMBERED_SEQS = 16_384;

type SeqState = 'pending' | 'answered' | 'timed_out' | 'late' | 'failed';

interface Outstanding {
  state: SeqState;
  /** T1 as sent: a reply must echo it, or it answers some other packet */
  timestamp: bigint;
  /** the sample it answers (its t0 is stamped right before the send) */
  run: SampleRun;
}

function optionsError(target: ProbeTarget, message: string): AnylatError {
  return new AnylatError('ANYLAT_UDP_OPTIONS', `udp probe for ${target.endpoint}: ${message}`);
}

function validate(target: ProbeTarget, o: UdpProbeOptions): void {
  if (isIP(target.address) === 0)
    throw optionsError(target, `"${target.address}" is not an IP address; resolve the name first`);
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65_535)
    throw optionsError(target, `port must be 1-65535, got ${o.port}`);
  if (!(o.timeoutMs > 0) || !Number.isFinite(o.timeoutMs))
    throw optionsError(target, `timeout must be a positive number of ms, got ${o.timeoutMs}`);
  const site = o.siteTlvBytes ?? DEFAULT_SITE_TLV_BYTES;
  if (!Number.isInteger(site) || site < 0 || site > MAX_SITE_TLV_BYTES) {
    throw optionsError(target, `siteTlvBytes must be an integer 0-${MAX_SITE_TLV_BYTES}, got ${site}`);
  }
  if (o.authKey !== undefined && o.authKey.length < MIN_KEY_BYTES) {
    throw optionsError(target, `the STAMP key has ${o.authKey.length} octets, at least ${MIN_KEY_BYTES} are needed`);
  }
}

/** A udp prober, which also says how the arrival of each reply is timed. */
export interface UdpProber extends Prober {
  /**
   * `kernel`: the kernel's receive timestamp of each reply (Linux), so event-loop lag cannot
   * inflate a sample; `monotonic`: performance.now() first thing in the 'message' handler.
   */
  readonly rxClock: 'kernel' | 'monotonic';
}

class StampSender implements UdpProber {
  readonly metrics = ['rtt'] as const;
  private rx: RxTimestamps | undefined;
  private readonly socket: Socket;
  private readonly key: Buffer | undefined;
  private readonly siteBytes: number;
  private readonly ssid = randomInt(1, 65_536);
  private readonly packetBytes: number;
  private readonly clock = new WallClock();
  private readonly seqs = new Map<number, Outstanding>();
  private readonly counters: PacketCounters = { late: 0, duplicate: 0, stray: 0, invalid: 0 };
  private nextSeq = 0;
  private readonly runs = new SampleRuns('udp');
  /** set when connect() itself failed (no route): every sample fails with it */
  private connectFailure: { reason: FailureReason; detail: string } | undefined;

  constructor(
    private readonly target: ProbeTarget,
    private readonly options: UdpProbeOptions,
  ) {
    this.key = options.authKey;
    this.siteBytes = options.siteTlvBytes ?? DEFAULT_SITE_TLV_BYTES;
    this.packetBytes = senderPacketBytes({ tlvs: this.siteTlvs() }, this.key);
    this.socket = createSocket(isIP(target.address) === 6 ? 'udp6' : 'udp4');
    this.socket.on('message', (msg) => this.onMessage(msg));
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.onError(err));
  }

  /** The site TLV, and in authenticated mode the HMAC TLV that covers it. */
  private siteTlvs(): Tlv[] {
    if (this.siteBytes === 0) return [];
    return this.key ? [emptySiteTlv(this.siteBytes), hmacTlvPlaceholder()] : [emptySiteTlv(this.siteBytes)];
  }

  /** Connects the socket so only the target's datagrams arrive and ICMP errors surface here. */
  async open(): Promise<void> {
    // No route to the target is a target failure (every sample says `unreachable`), not a throw.
    await new Promise<void>((resolve) => {
      const done = (err?: NodeJS.ErrnoException) => {
        this.socket.off('error', done);
        if (err)
          this.connectFailure = {
            reason: failureReason(err, 'error'),
            detail: `connect to ${this.where()}: ${err.code ?? err.message}`,
          };
        resolve();
      };
      this.socket.once('error', done);
      // Node passes a connect error to this callback (its type says it takes none).
      this.socket.connect(this.options.port, this.target.address, done as () => void);
    });
    if (!this.connectFailure) this.rx = RxTimestamps.enable(this.socket);
  }

  get rxClock(): 'kernel' | 'monotonic' {
    return this.rx ? 'kernel' : 'monotonic';
  }

  private where(): string {
    return hostPort(this.target.address, this.options.port);
  }

  sample(_seq: number, signal?: AbortSignal): Promise<Attempt> {
    if (this.connectFailure) {
      const now = performance.now();
      const f = this.connectFailure;
      return Promise.resolve({ ok: false, t0: now, t1: now, values: {}, reason: f.reason, detail: f.detail });
    }
    return this.runs.run({ timeoutMs: this.options.timeoutMs }, signal, (run) => {
      // The wire sequence number is the session's own counter (RFC 8762: from 0, +1 per packet), so
      // a caller reusing numbers can never make one reply answer two samples.
      const seq = this.nextSeq;
      this.nextSeq = (this.nextSeq + 1) >>> 0;
      this.clock.refresh();
      const timestamp = this.clock.ntp(performance.now());
      const packet = encodeSenderPacket({ seq, timestamp, ssid: this.ssid, tlvs: this.siteTlvs() }, this.key);
      const entry: Outstanding = { state: 'pending', timestamp, run };
      this.remember(seq, entry);
      // Ended by the deadline, the round or close(): a reply that comes after is late.
      run.defer(() => {
        if (entry.state === 'pending') entry.state = 'timed_out';
      });
      run.t0 = performance.now();
      try {
        this.socket.send(packet, (err) => {
          if (err) this.fail(entry, err as NodeJS.ErrnoException, 'send');
        });
      } catch (err) {
        this.fail(entry, err as NodeJS.ErrnoException, 'send');
      }
    });
  }

  private remember(seq: number, entry: Outstanding): void {
    this.seqs.delete(seq);
    this.seqs.set(seq, entry);
    if (this.seqs.size <= REMEMBERED_SEQS) return;
    for (const [s, e] of this.seqs) {
      if (this.seqs.size <= REMEMBERED_SEQS) break;
      if (e.state !== 'pending') this.seqs.delete(s);
    }
  }

  private settle(entry: Outstanding, state: SeqState, attempt: Attempt): void {
    if (entry.state !== 'pending') return;
    entry.state = state;
    entry.run.settle(attempt);
  }

  private fail(entry: Outstanding, err: NodeJS.ErrnoException, during: string): void {
    if (entry.state !== 'pending') return;
    entry.state = 'failed';
    entry.run.fail(failureReason(err, 'error'), `${during} ${this.where()}: ${err.code ?? err.message}`);
  }

  private onError(err: NodeJS.ErrnoException): void {
    // An ICMP error carries no sequence number; errors come back in the order packets left, so it
    // belongs to the oldest packet still waiting.
    for (const entry of this.seqs.values()) {
      if (entry.state === 'pending') {
        this.fail(entry, err, 'reply from');
        return;
      }
    }
  }

  private onMessage(msg: Buffer): void {
    const handledAt = performance.now();
    // Synchronously, before Node reads the next datagram: the stamp is this datagram's.
    const receivedAt = this.rx?.receivedAt();
    const decoded = decodeReflectorPacket(msg, this.key);
    if (!decoded.ok) {
      this.counters.invalid++;
      return;
    }
    const reply = decoded.packet;
    const base = this.key ? AUTH_BASE_BYTES : UNAUTH_BASE_BYTES;
    // A STAMP reflector answers with our size (TLVs echoed) or the bare base (TLVs unsupported);
    // an RFC 8972 reflector echoes our SSID, an RFC 8762-only one leaves it zero.
    const sized = reply.size === this.packetBytes || reply.size === base;
    const ours = reply.ssid === this.ssid || reply.ssid === 0;
    // We sent an HMAC TLV with the site TLV; an authenticated reply carrying TLVs must too.
    const tlvsTrusted = !this.key || reply.tlvs.length === 0 || reply.tlvHmacValid;
    if (!sized || !ours || !tlvsTrusted) {
      this.counters.invalid++;
      return;
    }
    const entry = this.seqs.get(reply.senderSeq);
    if (!entry) {
      this.counters.stray++;
      return;
    }
    if (reply.senderTimestamp !== entry.timestamp) {
      // Right sequence number, wrong packet: not a reply to anything we sent.
      this.counters.invalid++;
      return;
    }
    switch (entry.state) {
      case 'answered':
      case 'late':
        this.counters.duplicate++;
        return;
      case 'timed_out':
      case 'failed':
        entry.state = 'late';
        this.counters.late++;
        return;
      case 'pending':
        break;
    }
    // A stamp outside the exchange cannot be this reply's: keep the handler's clock then.
    const t0 = entry.run.t0;
    const kernelTimed = receivedAt !== undefined && receivedAt >= t0 && receivedAt <= handledAt;
    const t1 = kernelTimed ? receivedAt : handledAt;
    const elapsed = t1 - t0;
    const turnaround = ntpDiffMs(reply.timestamp, reply.receiveTimestamp);
    if (!(turnaround >= 0 && turnaround <= elapsed)) {
      this.settle(entry, 'answered', {
        ok: false,
        t0,
        t1,
        values: {},
        reason: 'protocol',
        detail: `reflector at ${this.where()} reports holding the packet ${turnaround.toFixed(3)} ms, outside the ${elapsed.toFixed(3)} ms round trip`,
      });
      return;
    }
    const siteTlv = reply.tlvs.find((t) => t.type === TLV_SITE && (t.flags & TLV_FLAG_U) === 0);
    const site = siteTlv ? readSiteValue(siteTlv.value) : undefined;
    // The send is stamped right before a synchronous write; the arrival, when the kernel stamped
    // it, is out of the event loop's reach too.
    const attempt: Attempt = {
      ok: true,
      t0,
      t1,
      values: { rtt: elapsed - turnaround },
      lagWindows: kernelTimed ? {} : { rtt: [t1, t1] },
    };
    if (site !== undefined) attempt.site = site;
    this.settle(entry, 'answered', attempt);
  }

  async close(): Promise<PacketCounters> {
    if (!this.runs.isClosed) {
      this.runs.close('udp prober closed before the reply');
      await new Promise<void>((resolve) => {
        try {
          this.socket.close(() => resolve());
        } catch {
          resolve();
        }
      });
    }
    return { ...this.counters };
  }
}

/** Sets up a STAMP Session-Sender for one target: one connected UDP socket, one session. */
export const createUdpProbe: ProbeFactory<'udp'> = async (target, options) => {
  validate(target, options);
  const sender = new StampSender(target, options);
  await sender.open();
  return sender;
};
