// HTTP(S) timing with undici and our own connector, one fresh connection per sample. The URL's host
// is the Host header and the SNI name; the TCP connection goes to the endpoint's address, so one URL
// serves the anycast address and every regional one. Each phase is stamped with performance.now()
// first thing in the callback that ends it:
//   dns      fresh lookup of the configured host name (only when the endpoint was a name)
//   connect  net.connect() -> 'connect'
//   tls      'connect' -> 'secureConnect' (https)
//   ttfb     request headers handed to the socket -> response headers parsed
//   total    sample start -> end of the first response's body, summed from the pieces above
//   warm     a second request on the same, now warm, connection: its write -> end of its body
//
// On Linux connect is the kernel's handshake RTT (tcpi_rtt, as the tcp probe's), and over plain
// http ttfb and warm are the kernel's RTT sample for their request (below) plus, for warm, the
// body's parsing. total is the sum of its pieces (setup, connect, tls, our own work up to the
// request's write, the response), so a stall while the sample only waited on the network is in
// none of them; it lists the lag windows of the pieces the monotonic clock timed, and the round
// flags it only when one of those could have been held up (docs/measurement.md).
//
// Over plain http on Linux, ttfb is instead the kernel's own RTT sample for the request, as the tcp
// probe times its echo (tcp-info.ts): TCP_INFO is read right before undici writes the request and
// again when the response headers are parsed, and when the counters show that the first segment
// to come back carried both response bytes and the request's ACK, with nothing retransmitted, the
// one sample the kernel took runs from the request leaving to the response's first segment
// arriving, both stamped in the kernel: the client's event loop and HTTP parser are not in it (the
// server's time to answer is, as ttfb means). An anylat reflector delays its ACKs so that its
// response carries the ACK (reflector/http.ts); a server that sends a bare ACK first (most, on a
// connection's first request: Linux acknowledges it at once) gets the monotonic value, and
// ttfbTiming() counts why. Over https the kernel cannot tell the request from the handshake's end:
// under TLS 1.3 the client's Finished is still unacknowledged when the request is written, and the
// server's session tickets, sent when that Finished arrives, acknowledge it (and maybe the request)
// ahead of the response, so the first sample is not the request's; https keeps the monotonic clock.
import { lookup } from 'node:dns';
import { subscribe } from 'node:diagnostics_channel';
import type { IncomingHttpHeaders } from 'node:http';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect } from 'node:tls';
import { Client, type Dispatcher, type buildConnector } from 'undici';
import type { Attempt, LagWindow, LagWindows, Metric } from '../core/model.ts';
import { AnylatError } from '../util/errors.ts';
import { VERSION } from '../version.ts';
import { awaitArrival, enableTcpArrival, loadTcpArrival } from '../net/tcp-arrival.ts';
import {
  loadTcpInfo,
  readTcpInfo,
  RESPONSE_FALLBACKS,
  responseRttFromTcpInfo,
  TCP_ESTABLISHED,
  type ResponseFallback,
  type TcpInfo,
} from '../net/tcp-info.ts';
import { errorDetail, failureReason, ProbeFailure, socketFailureReason } from './outcome.ts';
import { SampleRuns, type SampleRun } from './sample.ts';
import type { HttpProbeOptions, ProbeFactory, Prober, ProbeTarget } from './types.ts';

/** Default response header naming the site that answered. */
export const DEFAULT_SITE_HEADER = 'x-anylat-site';
/** Response bodies are read and thrown away; past this many bytes the sample fails (`protocol`). */
export const MAX_BODY_BYTES = 1024 * 1024;

const EARLY_PHASES = ['dns', 'connect', 'tls'] as const satisfies readonly Metric[];

// undici announces on this channel just before it writes a request's headers to the socket we gave
// it; that moment starts `ttfb`. The channel is process-wide, so stamps go to whichever sample owns
// the socket (and sockets of other undici users are ignored).
const writeStamps = new WeakMap<object, (at: number) => void>();
let watchingWrites = false;
function watchRequestWrites(): void {
  if (watchingWrites) return;
  watchingWrites = true;
  subscribe('undici:client:sendHeaders', (message) => {
    const at = performance.now();
    const socket = (message as { socket?: object } | undefined)?.socket;
    if (socket) writeStamps.get(socket)?.(at);
  });
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

interface ParsedUrl {
  origin: string;
  path: string;
  port: number;
  https: boolean;
  /** host name without IPv6 brackets: what the certificate must match */
  host: string;
  /** SNI; absent for IP literals (RFC 6066 forbids them) */
  servername: string | undefined;
}

function parseUrl(raw: string): ParsedUrl {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AnylatError(
      'ANYLAT_HTTP_URL',
      `http probe: "${raw}" is not a URL; give one like https://api.example.com/health`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new AnylatError('ANYLAT_HTTP_URL', `http probe: "${raw}" must start with http:// or https://`);
  }
  const https = url.protocol === 'https:';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    origin: url.origin,
    path: `${url.pathname}${url.search}`,
    port: url.port ? Number(url.port) : https ? 443 : 80,
    https,
    host,
    servername: isIP(host) ? undefined : host,
  };
}

/** Resolves when the name resolves, stamped in the lookup's own callback. */
function timeLookup(hostname: string): Promise<{ ms: number; at: number }> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    lookup(hostname, (err) => {
      const at = performance.now();
      if (err) reject(new ProbeFailure('dns', `lookup ${hostname}: ${err.code ?? err.message}`));
      else resolve({ ms: at - start, at });
    });
  });
}

interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  /** response headers parsed */
  headersAt: number;
  /** last body byte read */
  endAt: number;
}

/** One request on `client`; the body is counted and dropped. Rejects with the error as undici gave it. */
function exchange(
  client: Client,
  options: Dispatcher.DispatchOptions,
  onHeaders: (at: number, status: number, headers: IncomingHttpHeaders) => ProbeFailure | undefined,
  onEnd?: () => void,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    let headersAt = 0;
    let bytes = 0;
    let done = false;
    const fail = (controller: Dispatcher.DispatchController, err: Error) => {
      if (done) return;
      done = true;
      reject(err);
      controller.abort(err);
    };
    client.dispatch(options, {
      // Present so undici drives this handler through its current (controller) interface.
      onRequestStart() {},
      onResponseStart(controller, statusCode, responseHeaders) {
        const at = performance.now();
        status = statusCode;
        headers = responseHeaders;
        headersAt = at;
        const stop = onHeaders(at, statusCode, responseHeaders);
        if (stop) fail(controller, stop);
      },
      onResponseData(controller, chunk) {
        bytes += chunk.length;
        if (bytes > MAX_BODY_BYTES)
          fail(controller, new ProbeFailure('protocol', `response body larger than ${MAX_BODY_BYTES} bytes`));
      },
      onResponseEnd() {
        const at = performance.now();
        if (done) return;
        done = true;
        onEnd?.();
        resolve({ status, headers, headersAt, endAt: at });
      },
      onResponseError(_controller, err) {
        if (done) return;
        done = true;
        reject(err);
      },
    });
  });
}

/** An http prober, which also says how its `ttfb` values were timed. */
export interface HttpProber extends Prober {
  /**
   * `kernel` when ttfb is timed from TCP_INFO (plain http, Linux, `ttfbClock` not `monotonic`); a
   * response the kernel has no clean sample for is still timed by the monotonic clock, and counted
   * in `ttfbTiming()`.
   */
  readonly ttfbClock: 'kernel' | 'monotonic';
  /** How this prober's ttfb values were timed so far: by the kernel, or by the monotonic clock and why. */
  ttfbTiming(): TtfbTiming;
}

/** Counts of timed ttfb values by clock; `fallbacks` says why TCP_INFO could not time the others. */
export interface TtfbTiming {
  /** the kernel's RTT sample for the request (TCP_INFO) */
  kernel: number;
  /** the request's write to the kernel's receive timestamp of the response (tcp-arrival.ts), where TCP_INFO had no clean sample */
  arrival: number;
  monotonic: number;
  fallbacks: Record<ResponseFallback, number>;
}

/**
 * Sets up an HTTP(S) prober for one target. Throws `AnylatError` (`ANYLAT_HTTP_URL`) for a URL
 * that is not http(s).
 */
export const createHttpProbe = ((target: ProbeTarget, options: HttpProbeOptions): HttpProber =>
  httpProber(target, options)) satisfies ProbeFactory<'http'>;

/** What every sample of one http prober shares: its settings, translated once. */
interface HttpSetup {
  target: ProbeTarget;
  options: HttpProbeOptions;
  url: ParsedUrl;
  siteHeader: string;
  warm: boolean;
  requestOptions: Dispatcher.DispatchOptions;
  /** connect (and, over plain http, ttfb) may be timed from TCP_INFO */
  kernelClock: boolean;
  kernelTtfb: boolean;
  /** the response's arrival may be stamped by the kernel (tcp-arrival.ts) */
  kernelArrival: boolean;
  timing: TtfbTiming;
}

/** `createHttpProbe` with its concrete type. */
export function httpProber(target: ProbeTarget, options: HttpProbeOptions): HttpProber {
  const url = parseUrl(options.url);
  const warm = options.warm !== false;
  const metrics: Metric[] = [];
  if (target.hostname) metrics.push('dns');
  metrics.push('connect');
  if (url.https) metrics.push('tls');
  metrics.push('ttfb', 'total');
  if (warm) metrics.push('warm');
  watchRequestWrites();
  // Load koffi now, while setting up, so the first sample's event loop is not blocked by it.
  const kernelClock = (options.ttfbClock ?? 'kernel') === 'kernel' && loadTcpInfo();
  const kernelTtfb = !url.https && kernelClock;
  const setup: HttpSetup = {
    target,
    options,
    url,
    siteHeader: (options.siteHeader ?? DEFAULT_SITE_HEADER).toLowerCase(),
    warm,
    requestOptions: { method: 'GET', path: url.path, headers: { 'user-agent': `anylat/${VERSION}`, accept: '*/*' } },
    kernelClock,
    kernelTtfb,
    kernelArrival: kernelTtfb && loadTcpArrival(),
    timing: {
      kernel: 0,
      arrival: 0,
      monotonic: 0,
      fallbacks: Object.fromEntries(RESPONSE_FALLBACKS.map((f) => [f, 0])) as Record<ResponseFallback, number>,
    },
  };
  const runs = new SampleRuns('http');
  return {
    metrics,
    ttfbClock: kernelTtfb ? 'kernel' : 'monotonic',
    ttfbTiming: () => ({ ...setup.timing, fallbacks: { ...setup.timing.fallbacks } }),
    sample: (_seq, signal) => {
      const sample = new HttpSample(setup);
      const timeoutDetail = () => `no answer within ${options.timeoutMs} ms (waiting for ${sample.waitingFor})`;
      return runs.run({ timeoutMs: options.timeoutMs, timeoutDetail }, signal, (run) => sample.run(run));
    },
    async close() {
      runs.close();
      return undefined;
    },
  };
}

/** One request's write: its stamp, with TCP_INFO and the bytes written right before it. */
interface RequestWrite {
  at: number;
  info: TcpInfo | undefined;
  written: number;
}

/** How one response's first byte was timed. */
interface FirstByte {
  ms: number;
  kernel: boolean;
  arrival?: boolean;
  why?: ResponseFallback;
}

/** One sample: the lookup, a fresh connection through our connector, the request, the warm one. */
class HttpSample {
  /** what the sample waits for, for the timeout's detail */
  waitingFor: string;
  private readonly values: Partial<Record<Metric, number>> = {};
  // When lag could have inflated each metric: the callback that ended a single exchange, or
  // the stretch of several callbacks (TLS flights); `total` lists its pieces' (see total()).
  private readonly lagWindows: LagWindows = {};
  private site: string | undefined;
  private client: Client | undefined;
  private readonly sockets: Socket[] = [];
  private connections = 0;
  private connectStart = 0;
  private readyAt = 0;
  /** the TCP connection under http or https, when the kernel clock is on and TCP_INFO reads */
  private kernelSocket: Socket | undefined;
  /** each request's write (index 0: the first request, 1: the warm one) */
  private readonly writes: RequestWrite[] = [];
  /** each request's response's first bytes as the kernel stamped them (tcp-arrival.ts), when watched */
  private readonly arrivals: Array<number | undefined> = [];
  private arrivalSocket: Socket | undefined;
  private readonly stopWatching: Array<() => void> = [];
  private sample!: SampleRun;

  constructor(private readonly setup: HttpSetup) {
    this.waitingFor = setup.target.hostname ? 'dns lookup' : 'TCP connect';
  }

  async run(sample: SampleRun): Promise<void> {
    this.sample = sample;
    sample.onFailure((failed) => this.failure(failed));
    sample.defer(() => {
      for (const stop of this.stopWatching) stop();
      for (const s of this.sockets) s.destroy();
      this.client?.destroy().catch(() => {});
    });
    const hostname = this.setup.target.hostname;
    if (hostname) {
      const dns = await timeLookup(hostname);
      this.values.dns = dns.ms;
      this.lagWindows.dns = [dns.at, dns.at];
    }
    // The sample may have timed out during the lookup; then nothing more may be opened.
    if (sample.settled) return;
    const timeoutMs = this.setup.options.timeoutMs;
    const client = new Client(this.setup.url.origin, {
      connect: (_opts, callback) => this.connect(callback),
      pipelining: 1,
      // Backstops only: the sample's own deadline ends it first.
      headersTimeout: timeoutMs + 1000,
      bodyTimeout: timeoutMs + 1000,
    });
    this.client = client;
    const first = await this.firstRequest(client);
    if (!first) return;
    let t1 = first;
    if (this.setup.warm) {
      const warmEnd = await this.warmRequest(client);
      if (warmEnd === undefined) return;
      t1 = warmEnd;
    }
    const attempt: Attempt = {
      ok: true,
      t0: sample.t0,
      t1,
      values: { ...this.values },
      lagWindows: { ...this.lagWindows },
    };
    if (this.site !== undefined) attempt.site = this.site;
    sample.settle(attempt);
  }

  /**
   * A failed sample keeps what it measured, with its site; an error status keeps only the phases
   * before the response: a fast error page says nothing about how fast the service answers.
   */
  private failure(failed: Extract<Attempt, { ok: false }>): Attempt {
    const kept = failed.reason === 'http_status' ? EARLY_PHASES : (Object.keys(this.values) as Metric[]);
    const values: Partial<Record<Metric, number>> = {};
    for (const m of kept) if (this.values[m] !== undefined) values[m] = this.values[m];
    const attempt: Attempt = { ...failed, values, lagWindows: { ...this.lagWindows } };
    if (this.site !== undefined) attempt.site = this.site;
    return attempt;
  }

  private fail(err: unknown): void {
    this.sample.fail(failureReason(err, 'error'), errorDetail(err));
  }

  /** undici's connector: one TCP connection to the endpoint's address, TLS on it for https. */
  private connect(callback: buildConnector.Callback): void {
    const start = performance.now();
    this.connectStart = start;
    if (this.sample.settled) return callback(new ProbeFailure('error', 'sample already over'), null);
    this.connections++;
    // The warm request must ride the first connection; a second connect means the server closed
    // it, and timing a new handshake as `warm` would be a lie.
    if (this.connections > 1)
      return callback(new ProbeFailure('reset', 'server closed the connection; warm request not timed'), null);
    this.waitingFor = 'TCP connect';
    let handedOver = false;
    const refuse = (err: Error) => {
      if (handedOver) return;
      handedOver = true;
      callback(err, null);
    };
    const hand = (socket: Socket) => {
      handedOver = true;
      this.handOver(socket);
      callback(null, socket);
    };
    const { target, url } = this.setup;
    const tcp = netConnect({ host: target.address, port: url.port, autoSelectFamily: false, noDelay: true });
    this.sockets.push(tcp);
    // These listeners stay after hand-over; undici adds its own, and a late error must not go unhandled.
    tcp.on('error', refuse);
    tcp.once('connect', () => {
      const connectedAt = this.timeConnect(tcp, start);
      if (!url.https) return hand(tcp);
      this.waitingFor = 'TLS handshake';
      const tls = tlsConnect({
        socket: tcp,
        host: url.host,
        servername: url.servername,
        ca: this.setup.options.ca,
        rejectUnauthorized: this.setup.options.insecure !== true,
        ALPNProtocols: ['http/1.1'],
      });
      this.sockets.push(tls);
      // A socket-level outcome stays itself; anything else on this socket came from TLS.
      tls.on('error', (err: Error) => {
        const reason = socketFailureReason(err);
        refuse(reason && reason !== 'dns' ? err : new ProbeFailure('tls', errorDetail(err)));
      });
      tls.once('secureConnect', () => {
        const secureAt = performance.now();
        this.values.tls = secureAt - connectedAt;
        this.lagWindows.tls = [connectedAt, secureAt];
        hand(tls);
      });
    });
  }

  /** Stamps `connect` in its callback: the kernel's handshake RTT when it has a clean one. */
  private timeConnect(tcp: Socket, start: number): number {
    const connectedAt = performance.now();
    this.values.connect = connectedAt - start;
    this.lagWindows.connect = [connectedAt, connectedAt];
    if (this.setup.kernelClock) {
      // The handshake's RTT sample, as the tcp probe's connect (tcp-info.ts): SYN out to
      // SYN/ACK in, both stamped by the kernel, unless the SYN was retransmitted.
      const info = readTcpInfo(tcp);
      if (info) this.kernelSocket = tcp;
      if (this.setup.kernelArrival && enableTcpArrival(tcp)) this.arrivalSocket = tcp;
      if (info && info.state === TCP_ESTABLISHED && info.rttUs > 0 && info.totalRetrans === 0) {
        this.values.connect = info.rttUs / 1000;
        delete this.lagWindows.connect;
      }
    }
    return connectedAt;
  }

  /** The connection is ready: from now on each request's write is stamped (see watchRequestWrites). */
  private handOver(socket: Socket): void {
    this.readyAt = performance.now();
    writeStamps.set(socket, (at) => {
      // undici writes each request synchronously after this announcement (a GET has no body).
      if (this.writes.length >= 2) return;
      const index = this.writes.length;
      const kernelSocket = this.kernelSocket;
      this.writes.push({
        at,
        info: kernelSocket && readTcpInfo(kernelSocket),
        written: kernelSocket?.bytesWritten ?? 0,
      });
      if (this.arrivalSocket) {
        const stop = awaitArrival(this.arrivalSocket, (stamp) => {
          this.arrivals[index] = stamp;
        });
        if (stop) this.stopWatching.push(stop);
      }
    });
    this.waitingFor = 'response headers';
  }

  /** The first request: ttfb, then total. Resolves with the body's end, or undefined when it failed. */
  private async firstRequest(client: Client): Promise<number | undefined> {
    const response = new ResponseTimer(this, 0);
    const first = await exchange(
      client,
      this.setup.requestOptions,
      (at, status, headers) => {
        this.site = headerValue(headers, this.setup.siteHeader);
        if (status >= 400) return new ProbeFailure('http_status', `HTTP ${status}`);
        this.recordTtfb(response.onHeaders(at), at);
        this.waitingFor = 'response body';
        return undefined;
      },
      () => response.onEnd(),
    ).catch((err: unknown) => {
      this.fail(err);
      return undefined;
    });
    if (!first) return undefined;
    this.total(response.result(first.endAt), first.headersAt);
    return first.endAt;
  }

  private recordTtfb(ttfb: FirstByte, at: number): void {
    const { timing } = this.setup;
    this.values.ttfb = ttfb.ms;
    if (ttfb.kernel) {
      // Kernel timestamps (or a write stamped right before its syscall): event-loop lag cannot reach it.
      if (ttfb.arrival) {
        timing.arrival++;
        timing.fallbacks[ttfb.why ?? 'unavailable']++;
      } else {
        timing.kernel++;
      }
    } else {
      // Stamped right before the headers are written: only a stall when they come back counts.
      this.lagWindows.ttfb = this.writes[0] === undefined ? [this.readyAt, at] : [at, at];
      timing.monotonic++;
      if (this.setup.kernelTtfb) timing.fallbacks[ttfb.why ?? 'unavailable']++;
    }
  }

  // total is the sum of its pieces: the lookup and setup up to the connect, the connect, the
  // TLS handshake, our own work from hand-over to the request's write, and the response. Each
  // piece the kernel timed is in without the event loop's delay; the others bring their lag
  // windows, and a stall while the sample only waited on the network reaches none of them.
  private total(response: { ms: number; exposure: LagWindow[] }, headersAt: number): void {
    const { values, lagWindows } = this;
    const requestAt = this.writes[0]?.at ?? this.readyAt;
    values.total =
      this.connectStart -
      this.sample.t0 +
      values.connect! +
      (values.tls ?? 0) +
      (requestAt - this.readyAt) +
      response.ms;
    const totalWindows: LagWindow[] = [];
    for (const m of EARLY_PHASES) {
      const w = lagWindows[m];
      if (w !== undefined) totalWindows.push(w as LagWindow);
    }
    if (this.writes[0] === undefined) totalWindows.push([this.readyAt, headersAt]);
    totalWindows.push(...response.exposure);
    if (totalWindows.length > 0) lagWindows.total = totalWindows;
  }

  /** The warm request on the same connection. Resolves with its body's end, or undefined when the sample failed. */
  private async warmRequest(client: Client): Promise<number | undefined> {
    this.waitingFor = 'warm request';
    const start = performance.now();
    const response = new ResponseTimer(this, 1);
    try {
      const second = await exchange(
        client,
        this.setup.requestOptions,
        (at, status) => {
          if (status >= 400) return new ProbeFailure('http_status', `HTTP ${status} on the warm request`);
          response.onHeaders(at);
          return undefined;
        },
        () => response.onEnd(),
      );
      if (this.writes[1] === undefined) {
        // No write announced (another undici): from the dispatch, over every callback since.
        this.values.warm = second.endAt - start;
        this.lagWindows.warm = [start, second.endAt];
      } else {
        // As ttfb, from the request's write, plus the body.
        const timed = response.result(second.endAt);
        this.values.warm = timed.ms;
        if (timed.exposure.length > 0) this.lagWindows.warm = timed.exposure;
      }
      return second.endAt;
    } catch (err) {
      // Not keep-alive: the sample stands without `warm`.
      if (this.connections > 1) return performance.now();
      this.fail(err);
      return undefined;
    }
  }

  /** What ResponseTimer reads of this sample. */
  get clocks(): {
    https: boolean;
    kernelSocket: Socket | undefined;
    write(index: number): RequestWrite | undefined;
    arrival(index: number): number | undefined;
    readyAt: number;
  } {
    return {
      https: this.setup.url.https,
      kernelSocket: this.kernelSocket,
      write: (index) => this.writes[index],
      arrival: (index) => this.arrivals[index],
      readyAt: this.readyAt,
    };
  }
}

/**
 * One request's response: from its write to its headers (`ttfb`) and to its body's end. Over
 * plain http the kernel may time the first part (see the header comment); the body's end is the
 * monotonic time after the headers, and it waited on the network only when a data segment came in
 * after the headers were parsed: then its callback is exposed to lag too.
 */
class ResponseTimer {
  private headersAt = 0;
  private headersInfo: TcpInfo | undefined;
  private firstByte: FirstByte | undefined;
  private bodyWaited = true;

  constructor(
    private readonly sample: HttpSample,
    private readonly index: 0 | 1,
  ) {}

  onHeaders(at: number): FirstByte {
    const { https, kernelSocket, readyAt } = this.sample.clocks;
    this.headersAt = at;
    const write = this.sample.clocks.write(this.index);
    const monotonic = at - (write?.at ?? readyAt);
    this.headersInfo = kernelSocket && readTcpInfo(kernelSocket);
    let kernel: ReturnType<typeof responseRttFromTcpInfo> = { ok: false, why: 'unavailable' };
    // Over https the first request's sample may be the handshake's end (see the header
    // comment), and TLS records hide what was written: the monotonic clock times it.
    if (!https && kernelSocket && write)
      kernel = responseRttFromTcpInfo(
        write.info,
        this.headersInfo,
        kernelSocket.bytesWritten - write.written,
        monotonic * 1000,
      );
    // No clean RTT sample (a bare ACK came first, ...): the response's receive timestamp, from
    // the request's write, stamped right before undici's synchronous write (never after the
    // headers' callback, which runs after it).
    const arrived = this.sample.clocks.arrival(this.index);
    const fromArrival = arrived === undefined || write === undefined ? undefined : arrived - write.at;
    if (kernel.ok) this.firstByte = { ms: kernel.us / 1000, kernel: true };
    else if (fromArrival !== undefined && fromArrival > 0 && fromArrival <= monotonic)
      this.firstByte = { ms: fromArrival, kernel: true, arrival: true, why: kernel.why };
    else this.firstByte = { ms: monotonic, kernel: false, why: kernel.why };
    return this.firstByte;
  }

  onEnd(): void {
    const kernelSocket = this.sample.clocks.kernelSocket;
    const endInfo = kernelSocket && readTcpInfo(kernelSocket);
    this.bodyWaited =
      this.headersInfo?.dataSegsIn === undefined ||
      endInfo?.dataSegsIn === undefined ||
      endInfo.dataSegsIn !== this.headersInfo.dataSegsIn;
  }

  /** request written -> body's end, and when lag could have reached it */
  result(endAt: number): { ms: number; exposure: LagWindow[] } {
    const exposure: LagWindow[] = [];
    if (!this.firstByte!.kernel) exposure.push([this.headersAt, this.headersAt]);
    if (this.bodyWaited) exposure.push([endAt, endAt]);
    return { ms: this.firstByte!.ms + (endAt - this.headersAt), exposure };
  }
}
