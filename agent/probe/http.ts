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
import { Client, errors as undiciErrors, type Dispatcher, type buildConnector } from 'undici';
import type { Attempt, FailureReason, LagWindow, LagWindows, Metric } from '../core/model.ts';
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
import type { HttpProbeOptions, ProbeFactory, Prober, ProbeTarget } from './types.ts';

/** Default response header naming the site that answered. */
export const DEFAULT_SITE_HEADER = 'x-anylat-site';
/** Response bodies are read and thrown away; past this many bytes the sample fails (`protocol`). */
export const MAX_BODY_BYTES = 1024 * 1024;

const EARLY_PHASES: readonly Metric[] = ['dns', 'connect', 'tls'];

/** A target failure found by the probe itself, already classified. */
class ProbeFailure extends Error {
  readonly reason: FailureReason;
  constructor(reason: FailureReason, detail: string) {
    super(detail);
    this.reason = reason;
  }
}

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

const NETWORK_REASONS: Record<string, FailureReason> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  ECONNABORTED: 'reset',
  UND_ERR_SOCKET: 'reset',
  ETIMEDOUT: 'timeout',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EHOSTDOWN: 'unreachable',
  ENETDOWN: 'unreachable',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  UND_ERR_HEADERS_OVERFLOW: 'protocol',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'protocol',
  UND_ERR_RES_EXCEEDED_MAX_SIZE: 'protocol',
};

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
}

function classify(err: unknown): { reason: FailureReason; detail: string } {
  if (err instanceof ProbeFailure) return { reason: err.reason, detail: err.message };
  if (err instanceof undiciErrors.HTTPParserError) return { reason: 'protocol', detail: describe(err) };
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
  const reason = NETWORK_REASONS[code] ?? (code.startsWith('HPE_') ? 'protocol' : 'error');
  return { reason, detail: describe(err) };
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

/** `createHttpProbe` with its concrete type. */
export function httpProber(target: ProbeTarget, options: HttpProbeOptions): HttpProber {
  const url = parseUrl(options.url);
  const siteHeader = (options.siteHeader ?? DEFAULT_SITE_HEADER).toLowerCase();
  const warm = options.warm !== false;
  const timeoutMs = options.timeoutMs;
  const requestOptions: Dispatcher.DispatchOptions = {
    method: 'GET',
    path: url.path,
    headers: { 'user-agent': `anylat/${VERSION}`, accept: '*/*' },
  };
  const metrics: Metric[] = [];
  if (target.hostname) metrics.push('dns');
  metrics.push('connect');
  if (url.https) metrics.push('tls');
  metrics.push('ttfb', 'total');
  if (warm) metrics.push('warm');
  const inflight = new Set<() => void>();
  watchRequestWrites();
  // Load koffi now, while setting up, so the first sample's event loop is not blocked by it.
  const kernelClock = (options.ttfbClock ?? 'kernel') === 'kernel' && loadTcpInfo();
  const kernelTtfb = !url.https && kernelClock;
  const kernelArrival = kernelTtfb && loadTcpArrival();
  const timing: TtfbTiming = {
    kernel: 0,
    arrival: 0,
    monotonic: 0,
    fallbacks: Object.fromEntries(RESPONSE_FALLBACKS.map((f) => [f, 0])) as Record<ResponseFallback, number>,
  };

  const sample = (_seq: number): Promise<Attempt> =>
    new Promise<Attempt>((resolve) => {
      const t0 = performance.now();
      const values: Partial<Record<Metric, number>> = {};
      // When lag could have inflated each metric: the callback that ended a single exchange, or
      // the stretch of several callbacks (TLS flights); `total` lists its pieces' (see totalOf).
      const lagWindows: LagWindows = {};
      let site: string | undefined;
      let waitingFor = target.hostname ? 'dns lookup' : 'TCP connect';
      let client: Client | undefined;
      const sockets: Socket[] = [];
      let connections = 0;
      let connectStart = 0;
      let readyAt = 0;
      // The TCP connection under http or https, when the kernel clock is on and TCP_INFO reads.
      let kernelSocket: Socket | undefined;
      // Each request's write stamp with TCP_INFO and bytes written right before it (index 0: the
      // first request, 1: the warm one).
      const writes: Array<{ at: number; info: TcpInfo | undefined; written: number }> = [];
      // Each request's response's first bytes as the kernel stamped them (tcp-arrival.ts), when watched.
      const arrivals: Array<number | undefined> = [];
      let arrivalSocket: Socket | undefined;
      const stopWatching: Array<() => void> = [];
      let settled = false;

      const cleanup = () => {
        for (const stop of stopWatching) stop();
        for (const s of sockets) s.destroy();
        client?.destroy().catch(() => {});
      };
      const finish = (attempt: Attempt) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        inflight.delete(cleanup);
        cleanup();
        resolve(attempt);
      };
      const fail = (at: number, err: unknown) => {
        const { reason, detail } = classify(err);
        // An error status keeps only the phases before the response: a fast error page says
        // nothing about how fast the service answers.
        const kept = reason === 'http_status' ? EARLY_PHASES : (Object.keys(values) as Metric[]);
        const keep: Partial<Record<Metric, number>> = {};
        for (const m of kept) if (values[m] !== undefined) keep[m] = values[m];
        const attempt: Attempt = { ok: false, t0, t1: at, values: keep, lagWindows: { ...lagWindows }, reason, detail };
        if (site !== undefined) attempt.site = site;
        finish(attempt);
      };
      const timer = setTimeout(() => {
        fail(
          performance.now(),
          new ProbeFailure('timeout', `no answer within ${timeoutMs} ms (waiting for ${waitingFor})`),
        );
      }, timeoutMs);
      inflight.add(cleanup);

      const connector = (_opts: buildConnector.Options, callback: buildConnector.Callback) => {
        const start = performance.now();
        connectStart = start;
        if (settled) {
          callback(new ProbeFailure('error', 'sample already over'), null);
          return;
        }
        connections++;
        // The warm request must ride the first connection; a second connect means the server closed
        // it, and timing a new handshake as `warm` would be a lie.
        if (connections > 1) {
          callback(new ProbeFailure('reset', 'server closed the connection; warm request not timed'), null);
          return;
        }
        waitingFor = 'TCP connect';
        let handedOver = false;
        const refuse = (err: Error) => {
          if (handedOver) return;
          handedOver = true;
          callback(err, null);
        };
        const hand = (socket: Socket) => {
          handedOver = true;
          readyAt = performance.now();
          writeStamps.set(socket, (at) => {
            // undici writes each request synchronously after this announcement (a GET has no body).
            if (writes.length >= 2) return;
            const index = writes.length;
            writes.push({
              at,
              info: kernelSocket && readTcpInfo(kernelSocket),
              written: kernelSocket?.bytesWritten ?? 0,
            });
            if (arrivalSocket) {
              const stop = awaitArrival(arrivalSocket, (stamp) => {
                arrivals[index] = stamp;
              });
              if (stop) stopWatching.push(stop);
            }
          });
          waitingFor = 'response headers';
          callback(null, socket);
        };
        const tcp = netConnect({ host: target.address, port: url.port, autoSelectFamily: false, noDelay: true });
        sockets.push(tcp);
        // These listeners stay after hand-over; undici adds its own, and a late error must not go unhandled.
        tcp.on('error', refuse);
        tcp.once('connect', () => {
          const connectedAt = performance.now();
          values.connect = connectedAt - start;
          lagWindows.connect = [connectedAt, connectedAt];
          if (kernelClock) {
            // The handshake's RTT sample, as the tcp probe's connect (tcp-info.ts): SYN out to
            // SYN/ACK in, both stamped by the kernel, unless the SYN was retransmitted.
            const info = readTcpInfo(tcp);
            if (info) kernelSocket = tcp;
            if (kernelArrival && enableTcpArrival(tcp)) arrivalSocket = tcp;
            if (info && info.state === TCP_ESTABLISHED && info.rttUs > 0 && info.totalRetrans === 0) {
              values.connect = info.rttUs / 1000;
              delete lagWindows.connect;
            }
          }
          if (!url.https) {
            hand(tcp);
            return;
          }
          waitingFor = 'TLS handshake';
          const tls = tlsConnect({
            socket: tcp,
            host: url.host,
            servername: url.servername,
            ca: options.ca,
            rejectUnauthorized: options.insecure !== true,
            ALPNProtocols: ['http/1.1'],
          });
          sockets.push(tls);
          tls.on('error', (err: NodeJS.ErrnoException) => {
            const reason = err.code ? NETWORK_REASONS[err.code] : undefined;
            refuse(reason && reason !== 'dns' ? err : new ProbeFailure('tls', describe(err)));
          });
          tls.once('secureConnect', () => {
            const secureAt = performance.now();
            values.tls = secureAt - connectedAt;
            lagWindows.tls = [connectedAt, secureAt];
            hand(tls);
          });
        });
      };

      // One request's response: from its write to its headers (`ttfb`) and to its body's end. Over
      // plain http the kernel may time the first part (see the header comment); the body's end is
      // the monotonic time after the headers, and it waited on the network only when a data
      // segment came in after the headers were parsed: then its callback is exposed to lag too.
      const timeResponse = (index: 0 | 1) => {
        let headersAt = 0;
        let headersInfo: TcpInfo | undefined;
        let firstByte: { ms: number; kernel: boolean; arrival?: boolean; why?: ResponseFallback } | undefined;
        let bodyWaited = true;
        return {
          onHeaders(at: number): { ms: number; kernel: boolean; arrival?: boolean; why?: ResponseFallback } {
            headersAt = at;
            const write = writes[index];
            const monotonic = at - (write?.at ?? readyAt);
            headersInfo = kernelSocket && readTcpInfo(kernelSocket);
            let kernel: ReturnType<typeof responseRttFromTcpInfo> = { ok: false, why: 'unavailable' };
            // Over https the first request's sample may be the handshake's end (see the header
            // comment), and TLS records hide what was written: the monotonic clock times it.
            if (!url.https && kernelSocket && write)
              kernel = responseRttFromTcpInfo(
                write.info,
                headersInfo,
                kernelSocket.bytesWritten - write.written,
                monotonic * 1000,
              );
            // No clean RTT sample (a bare ACK came first, ...): the response's receive timestamp, from
            // the request's write, stamped right before undici's synchronous write (never after the
            // headers' callback, which runs after it).
            const arrived = arrivals[index];
            const fromArrival = arrived === undefined || write === undefined ? undefined : arrived - write.at;
            if (kernel.ok) firstByte = { ms: kernel.us / 1000, kernel: true };
            else if (fromArrival !== undefined && fromArrival > 0 && fromArrival <= monotonic)
              firstByte = { ms: fromArrival, kernel: true, arrival: true, why: kernel.why };
            else firstByte = { ms: monotonic, kernel: false, why: kernel.why };
            return firstByte;
          },
          onEnd(): void {
            const endInfo = kernelSocket && readTcpInfo(kernelSocket);
            bodyWaited =
              headersInfo?.dataSegsIn === undefined ||
              endInfo?.dataSegsIn === undefined ||
              endInfo.dataSegsIn !== headersInfo.dataSegsIn;
          },
          /** request written -> body's end, and when lag could have reached it */
          result(endAt: number): { ms: number; exposure: LagWindow[] } {
            const exposure: LagWindow[] = [];
            if (!firstByte!.kernel) exposure.push([headersAt, headersAt]);
            if (bodyWaited) exposure.push([endAt, endAt]);
            return { ms: firstByte!.ms + (endAt - headersAt), exposure };
          },
        };
      };

      const run = async (): Promise<void> => {
        if (target.hostname) {
          const dns = await timeLookup(target.hostname);
          values.dns = dns.ms;
          lagWindows.dns = [dns.at, dns.at];
        }
        // The sample may have timed out during the lookup; then nothing more may be opened.
        if (settled) return;
        client = new Client(url.origin, {
          connect: connector,
          pipelining: 1,
          // Backstops only: the sample's own timer ends it first.
          headersTimeout: timeoutMs + 1000,
          bodyTimeout: timeoutMs + 1000,
        });
        const firstResponse = timeResponse(0);
        const first = await exchange(
          client,
          requestOptions,
          (at, status, headers) => {
            site = headerValue(headers, siteHeader);
            if (status >= 400) return new ProbeFailure('http_status', `HTTP ${status}`);
            const ttfb = firstResponse.onHeaders(at);
            values.ttfb = ttfb.ms;
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
              lagWindows.ttfb = writes[0] === undefined ? [readyAt, at] : [at, at];
              timing.monotonic++;
              if (kernelClock && !url.https) timing.fallbacks[ttfb.why ?? 'unavailable']++;
            }
            waitingFor = 'response body';
            return undefined;
          },
          () => firstResponse.onEnd(),
        ).catch((err: unknown) => {
          fail(performance.now(), err);
          return undefined;
        });
        if (!first) return;
        // total is the sum of its pieces: the lookup and setup up to the connect, the connect, the
        // TLS handshake, our own work from hand-over to the request's write, and the response. Each
        // piece the kernel timed is in without the event loop's delay; the others bring their lag
        // windows, and a stall while the sample only waited on the network reaches none of them.
        const response = firstResponse.result(first.endAt);
        const requestAt = writes[0]?.at ?? readyAt;
        values.total = connectStart - t0 + values.connect! + (values.tls ?? 0) + (requestAt - readyAt) + response.ms;
        const totalWindows: LagWindow[] = [];
        for (const m of ['dns', 'connect', 'tls'] as const) {
          const w = lagWindows[m];
          if (w !== undefined) totalWindows.push(w as LagWindow);
        }
        if (writes[0] === undefined) totalWindows.push([readyAt, first.headersAt]);
        totalWindows.push(...response.exposure);
        if (totalWindows.length > 0) lagWindows.total = totalWindows;
        let t1 = first.endAt;
        if (warm) {
          waitingFor = 'warm request';
          const start = performance.now();
          const warmResponse = timeResponse(1);
          try {
            const second = await exchange(
              client,
              requestOptions,
              (at, status) => {
                if (status >= 400) return new ProbeFailure('http_status', `HTTP ${status} on the warm request`);
                warmResponse.onHeaders(at);
                return undefined;
              },
              () => warmResponse.onEnd(),
            );
            if (writes[1] === undefined) {
              // No write announced (another undici): from the dispatch, over every callback since.
              values.warm = second.endAt - start;
              lagWindows.warm = [start, second.endAt];
            } else {
              // As ttfb, from the request's write, plus the body.
              const timed = warmResponse.result(second.endAt);
              values.warm = timed.ms;
              if (timed.exposure.length > 0) lagWindows.warm = timed.exposure;
            }
            t1 = second.endAt;
          } catch (err) {
            if (connections > 1) {
              // Not keep-alive: the sample stands without `warm`.
              t1 = performance.now();
            } else {
              fail(performance.now(), err);
              return;
            }
          }
        }
        const attempt: Attempt = { ok: true, t0, t1, values: { ...values }, lagWindows: { ...lagWindows } };
        if (site !== undefined) attempt.site = site;
        finish(attempt);
      };
      run().catch((err: unknown) => fail(performance.now(), err));
    });

  return {
    metrics,
    ttfbClock: kernelTtfb ? 'kernel' : 'monotonic',
    ttfbTiming: () => ({ ...timing, fallbacks: { ...timing.fallbacks } }),
    sample,
    async close() {
      for (const cleanup of inflight) cleanup();
      inflight.clear();
      return undefined;
    },
  };
}
