// The dns probe: the query time of one DNS question to an endpoint, and the site that answered,
// taken from the answer's NSID (EDNS option 3) or, for the CHAOS names, its TXT record (see
// dns-codec.ts). An anycast DNS service answering from another site is then a site change like any
// other protocol's (round/events.ts).
//
// Over UDP one connected socket carries every sample, matched to its answer by query id and
// question; the answer's arrival is the kernel's receive stamp (rx-timestamp.ts) where the host
// has it, so event-loop lag does not inflate it. Over TCP one connection is kept open (opened by
// the first, uncounted, sample, as `dig +keepopen` would) and each query is timed from its write
// to its answer's callback: the connection's setup is no part of a DNS query time.
//
// Any well-formed answer is a sample, whatever its rcode: a server that REFUSES the CHAOS names
// still answered, in its query time. A truncated UDP answer is a `protocol` failure naming the fix.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Attempt, FailureReason } from '../core/model.ts';
import { AnylatError } from '../util/errors.ts';
import {
  decodeSiteAnswer,
  encodeSiteQuery,
  frameTcp,
  isSiteName,
  QUERY_TYPES,
  TcpFramer,
  type SiteQuery,
} from '../core/dns-codec.ts';
import { RxTimestamps } from '../net/rx-timestamp.ts';
import { errorDetail, failureReason } from './outcome.ts';
import { SampleRuns, type SampleRun } from './sample.ts';
import { checkSocketTarget } from './tcp.ts';
import type { DnsProbeOptions, ProbeFactory, Prober, ProbeTarget } from './types.ts';
import { hostPort } from '../util/host-port.ts';

/** Defaults of a dns probe's options. */
export const DNS_PROBE_DEFAULTS = { qname: 'hostname.bind', qtype: 'A', transport: 'udp', nsid: true } as const;

interface Pending {
  query: SiteQuery;
  /** the sample waiting for this answer (its t0 is stamped right before the query is sent) */
  run: SampleRun;
}

function optionsError(target: ProbeTarget, message: string): AnylatError {
  return new AnylatError('ANYLAT_PROBE_OPTIONS', `dns probe for ${target.endpoint}: ${message}`);
}

/** A dns prober, which also says how the arrival of each answer is timed. */
export interface DnsProber extends Prober {
  readonly transport: 'udp' | 'tcp';
  /** `kernel`: the kernel's receive stamp of each UDP answer; `monotonic`: the answer's callback */
  readonly rxClock: 'kernel' | 'monotonic';
}

class DnsSender implements DnsProber {
  readonly metrics = ['query'] as const;
  readonly transport: 'udp' | 'tcp';
  private readonly pending = new Map<number, Pending>();
  private udp: UdpSocket | undefined;
  private rx: RxTimestamps | undefined;
  private tcp: net.Socket | undefined;
  private tcpOpening: Promise<net.Socket | { reason: FailureReason; detail: string }> | undefined;
  private framer = new TcpFramer();
  private readonly runs = new SampleRuns('dns');
  /** set when connect() of the UDP socket failed (no route): every sample fails with it */
  private connectFailure: { reason: FailureReason; detail: string } | undefined;

  constructor(
    private readonly target: ProbeTarget,
    private readonly options: DnsProbeOptions,
  ) {
    this.transport = options.transport ?? DNS_PROBE_DEFAULTS.transport;
  }

  get rxClock(): 'kernel' | 'monotonic' {
    return this.rx ? 'kernel' : 'monotonic';
  }

  private where(): string {
    return hostPort(this.target.address, this.options.port);
  }

  async open(): Promise<void> {
    if (this.transport !== 'udp') return;
    const socket = createSocket(net.isIPv6(this.target.address) ? 'udp6' : 'udp4');
    this.udp = socket;
    socket.on('message', (msg) => {
      const handledAt = performance.now();
      // Synchronously, before Node reads the next datagram: the stamp is this datagram's.
      this.onAnswer(msg, handledAt, this.rx?.receivedAt());
    });
    // An ICMP error carries no query id; it answers the oldest query still waiting.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const first = this.pending.values().next().value;
      first?.run.fail(failureReason(err, 'unreachable'), `answer from ${this.where()}: ${errorDetail(err)}`);
    });
    await new Promise<void>((resolve) => {
      const done = (err?: NodeJS.ErrnoException) => {
        socket.off('error', done);
        if (err)
          this.connectFailure = {
            reason: failureReason(err, 'unreachable'),
            detail: `connect to ${this.where()}: ${errorDetail(err)}`,
          };
        resolve();
      };
      socket.once('error', done);
      socket.connect(this.options.port, this.target.address, done as () => void);
    });
    if (!this.connectFailure) this.rx = RxTimestamps.enable(socket);
  }

  private onAnswer(msg: Buffer, handledAt: number, receivedAt: number | undefined): void {
    if (msg.length < 2) return;
    const p = this.pending.get(msg.readUInt16BE(0));
    if (!p) return;
    const answer = decodeSiteAnswer(msg, p.query);
    // Not an answer to this query (spoofed id, another question): keep waiting for the real one.
    if (!answer.ok) return;
    const t0 = p.run.t0;
    const kernelTimed = receivedAt !== undefined && receivedAt >= t0 && receivedAt <= handledAt;
    const t1 = kernelTimed ? receivedAt : handledAt;
    if (answer.truncated && this.transport === 'udp') {
      p.run.settle({
        ok: false,
        t0,
        t1,
        values: {},
        reason: 'protocol',
        detail: `${this.where()} truncated its answer (TC); set transport: tcp (--dns-transport tcp)${this.options.nsid === false ? ' or turn nsid back on (anylat pads EDNS queries so the answer fits)' : ''}`,
      });
      return;
    }
    const attempt: Attempt = {
      ok: true,
      t0,
      t1,
      values: { query: t1 - t0 },
      lagWindows: kernelTimed ? {} : { query: [t1, t1] },
    };
    if (answer.site !== undefined) attempt.site = answer.site;
    p.run.settle(attempt);
  }

  /** The open TCP connection, opening it when there is none; a failure to connect is a sample's failure. */
  private connectTcp(): Promise<net.Socket | { reason: FailureReason; detail: string }> {
    if (this.tcp && !this.tcp.destroyed) return Promise.resolve(this.tcp);
    this.tcpOpening ??= new Promise<net.Socket | { reason: FailureReason; detail: string }>((resolve) => {
      const socket = net.connect({ host: this.target.address, port: this.options.port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        resolve({
          reason: 'timeout',
          detail: `connect to ${this.where()}: no answer within ${this.options.timeoutMs} ms`,
        });
      }, this.options.timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        this.framer = new TcpFramer();
        this.tcp = socket;
        resolve(socket);
      });
      socket.on('data', (chunk: Buffer) => {
        const at = performance.now();
        let messages: Buffer[];
        try {
          messages = this.framer.push(chunk);
        } catch {
          socket.destroy();
          return;
        }
        for (const m of messages) this.onAnswer(m, at, undefined);
      });
      socket.on('error', (err) => {
        clearTimeout(timer);
        resolve({ reason: failureReason(err, 'error'), detail: `${this.where()}: ${errorDetail(err)}` });
      });
      socket.on('close', () => {
        clearTimeout(timer);
        if (this.tcp === socket) this.tcp = undefined;
        // Queries waiting on a connection that closed will get no answer on it.
        for (const p of [...this.pending.values()])
          p.run.fail('reset', `${this.where()} closed the connection before answering`);
      });
    }).finally(() => {
      this.tcpOpening = undefined;
    });
    return this.tcpOpening;
  }

  private newId(): number {
    for (;;) {
      const id = randomInt(0, 65_536);
      if (!this.pending.has(id)) return id;
    }
  }

  sample(_seq: number, signal?: AbortSignal): Promise<Attempt> {
    if (this.connectFailure) {
      const now = performance.now();
      return Promise.resolve({ ok: false, t0: now, t1: now, values: {}, ...this.connectFailure });
    }
    let phase: 'connect' | 'query' = 'connect';
    const timeoutDetail = () =>
      phase === 'connect'
        ? `connect to ${this.where()}: no answer within ${this.options.timeoutMs} ms`
        : `no answer from ${this.where()} within ${this.options.timeoutMs} ms`;
    return this.runs.run({ timeoutMs: this.options.timeoutMs, timeoutDetail }, signal, async (run) => {
      let tcp: net.Socket | undefined;
      if (this.transport === 'tcp') {
        const c = await this.connectTcp();
        if (!(c instanceof net.Socket)) return run.fail(c.reason, c.detail);
        tcp = c;
      }
      if (run.settled) return;
      phase = 'query';
      this.send(run, tcp);
    });
  }

  /** Sends one query for `run`, on `tcp` or else the UDP socket, and waits for its answer. */
  private send(run: SampleRun, tcp: net.Socket | undefined): void {
    const qname = this.options.qname ?? DNS_PROBE_DEFAULTS.qname;
    const query: SiteQuery = {
      id: this.newId(),
      qname,
      qtype: this.options.qtype ?? (isSiteName(qname) ? 'TXT' : DNS_PROBE_DEFAULTS.qtype),
      nsid: this.options.nsid ?? DNS_PROBE_DEFAULTS.nsid,
    };
    const message = encodeSiteQuery(query);
    const wire = tcp ? frameTcp(message) : message;
    const p: Pending = { query, run };
    this.pending.set(query.id, p);
    run.defer(() => {
      if (this.pending.get(query.id) === p) this.pending.delete(query.id);
    });
    const sendFailed = (err: unknown) =>
      run.fail(failureReason(err, 'error'), `send to ${this.where()}: ${errorDetail(err)}`);
    run.t0 = performance.now();
    try {
      if (tcp) tcp.write(wire);
      else
        this.udp!.send(wire, (err) => {
          if (err) sendFailed(err);
        });
    } catch (err) {
      sendFailed(err);
    }
  }

  async close(): Promise<undefined> {
    if (this.runs.isClosed) return undefined;
    this.runs.close('dns prober closed before the answer');
    this.tcp?.destroy();
    const udp = this.udp;
    if (udp) {
      await new Promise<void>((resolve) => {
        try {
          udp.close(() => resolve());
        } catch {
          resolve();
        }
      });
    }
    return undefined;
  }
}

/** Sets up a dns prober for one target: a connected UDP socket, or a TCP connection opened at the first sample. */
export const createDnsProbe: ProbeFactory<'dns'> = async (target, options) => {
  checkSocketTarget('dns', target, options);
  const transport = options.transport ?? DNS_PROBE_DEFAULTS.transport;
  if (transport !== 'udp' && transport !== 'tcp')
    throw optionsError(target, `transport must be udp or tcp, got ${String(transport)}`);
  if (options.qtype !== undefined && !(QUERY_TYPES as readonly string[]).includes(options.qtype))
    throw optionsError(target, `qtype must be one of ${QUERY_TYPES.join(', ')}, got ${options.qtype}`);
  const qname = options.qname ?? DNS_PROBE_DEFAULTS.qname;
  if (qname.length === 0 || qname.length > 253) throw optionsError(target, `qname must be a DNS name, got "${qname}"`);
  const sender = new DnsSender(target, options);
  await sender.open();
  return sender;
};
