// The transfer probe: one download of a known size over a fresh HTTP(S) connection, the split-TCP
// benefit an accelerator gives larger objects (it ends TCP near the user, so slow start and loss
// recovery run on a short loop). From the reflector (`GET /bytes/N`, reflector/bytes.ts) or from a
// user's URL, `{size}` in it replaced by the size in bytes. One prober per (endpoint, size); the
// size is a tag. Metrics, each stamped first thing in the callback that ends it:
//   ttfb          the request handed to the connected socket -> the response's headers
//   download      the response's headers (its first bytes) -> the end of its body
//   goodput_mbps  body bits / download time, in Mbit/s (not a time: its *_ms fields hold Mbit/s)
// The connection's setup is not in any of them (the http probe times it). A short stall of this
// event loop in the middle of a download does not lengthen it (the bytes wait in the socket's
// receive buffer, which holds far more than a stall's worth, and are read at once after); one that
// delays the end's callback does: so `download` is flagged for lag at its end only, not for any lag
// during the whole (a second-long download on a busy agent would always be). The round runs transfer
// samples one at a time, after the other probes' samples, so a download never shares the link with
// a latency sample (round/run-round.ts).
import http from 'node:http';
import https from 'node:https';
import { isIP, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Attempt, FailureReason } from '../core/model.ts';
import { AnylatError } from '../util/errors.ts';
import { DEFAULT_SITE_HEADER } from './http.ts';
import { errorDetail, socketFailureReason } from './tcp.ts';
import type { ProbeFactory, Prober, ProbeTarget, TransferProbeOptions } from './types.ts';

/** The sizes a transfer probe downloads unless told: 16 KiB, 256 KiB and 2 MiB. */
export const DEFAULT_TRANSFER_SIZES: readonly number[] = [16 * 1024, 256 * 1024, 2 * 1024 * 1024];
/** The largest size a transfer probe downloads (the reflector's cap). */
export const MAX_TRANSFER_SIZE = 10 * 1024 * 1024;
/** Transfer samples per (endpoint, size) per round unless told: each is a whole download. */
export const DEFAULT_TRANSFER_SAMPLES = 3;
/** The reflector's HTTP port, where `/bytes/N` is served. */
export const DEFAULT_TRANSFER_PORT = 8080;

const UNITS: Record<string, number> = { '': 1, b: 1, kib: 1024, mib: 1024 * 1024, kb: 1000, mb: 1000 * 1000 };

/** `16KiB`, `2MiB`, `500kB`, `4096` -> bytes; undefined when it is not a size. */
export function parseSize(text: string | number): number | undefined {
  if (typeof text === 'number') return Number.isSafeInteger(text) && text >= 0 ? text : undefined;
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = UNITS[m[2]!.toLowerCase()];
  if (unit === undefined) return undefined;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The tag value of a size: `16KiB`, `2MiB`, or bytes when it is not a whole number of either. */
export function sizeLabel(bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)}MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024}KiB`;
  return `${bytes}B`;
}

function optionsError(target: ProbeTarget, message: string): AnylatError {
  return new AnylatError('ANYLAT_PROBE_OPTIONS', `transfer probe for ${target.endpoint}: ${message}`);
}

/** The URL of one size: the user's with `{size}` replaced, or the reflector's `/bytes/N` on the target. */
export function transferUrl(
  target: ProbeTarget,
  options: Pick<TransferProbeOptions, 'url' | 'port'>,
  size: number,
): URL {
  if (options.url !== undefined) return new URL(options.url.replaceAll('{size}', String(size)));
  const host = isIP(target.address) === 6 ? `[${target.address}]` : target.address;
  return new URL(`http://${host}:${options.port ?? DEFAULT_TRANSFER_PORT}/bytes/${size}`);
}

class TransferProber implements Prober {
  readonly metrics = ['ttfb', 'download', 'goodput_mbps'] as const;
  private readonly url: URL;
  private readonly siteHeader: string;
  private closed = false;
  private readonly live = new Set<http.ClientRequest>();

  constructor(
    private readonly target: ProbeTarget,
    private readonly options: TransferProbeOptions,
    private readonly size: number,
  ) {
    this.url = transferUrl(target, options, size);
    this.siteHeader = (options.siteHeader ?? DEFAULT_SITE_HEADER).toLowerCase();
  }

  sample(_seq: number): Promise<Attempt> {
    const start = performance.now();
    if (this.closed)
      return Promise.resolve({
        ok: false,
        t0: start,
        t1: start,
        values: {},
        reason: 'error',
        detail: 'transfer prober is closed',
      });
    const https_ = this.url.protocol === 'https:';
    const port = this.url.port === '' ? (https_ ? 443 : 80) : Number(this.url.port);
    const hostname = this.url.hostname.replace(/^\[(.*)\]$/, '$1');
    const where = `${this.url.protocol}//${this.target.address}:${port}${this.url.pathname}`;
    return new Promise<Attempt>((resolve) => {
      let t0 = start;
      let tFirst: number | undefined;
      let bytes = 0;
      let site: string | undefined;
      let settled = false;
      const finish = (a: Attempt) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.live.delete(req);
        req.destroy();
        resolve(a);
      };
      const fail = (reason: FailureReason, detail: string) => {
        const now = performance.now();
        const values: Attempt['values'] = tFirst !== undefined ? { ttfb: tFirst - t0 } : {};
        finish({ ok: false, t0, t1: now, values, reason, detail, ...(site !== undefined ? { site } : {}) });
      };
      const common = {
        host: this.target.address,
        port,
        path: `${this.url.pathname}${this.url.search}`,
        method: 'GET',
        agent: false as const,
        // keep-alive: the server must not close first, so the end of the body is the body's, not
        // a FIN racing it through a relay; the prober closes the connection once the body is in.
        headers: {
          host: this.url.host,
          'user-agent': 'anylat-transfer',
          accept: '*/*',
          'accept-encoding': 'identity',
          connection: 'keep-alive',
        },
      };
      const req = https_
        ? https.request({
            ...common,
            servername: isIP(hostname) ? undefined : hostname,
            rejectUnauthorized: this.options.insecure !== true,
            ...(this.options.ca ? { ca: this.options.ca } : {}),
          })
        : http.request(common);
      this.live.add(req);
      const timer = setTimeout(
        () =>
          fail(
            'timeout',
            `${where}: not downloaded within ${this.options.timeoutMs} ms (${bytes} of ${this.size} bytes)`,
          ),
        this.options.timeoutMs,
      );
      req.on('socket', (socket: Socket) => {
        socket.setNoDelay(true);
        // The request goes out as soon as the connection is ready: that moment starts ttfb.
        socket.once(https_ ? 'secureConnect' : 'connect', () => {
          t0 = performance.now();
        });
      });
      req.on('response', (res) => {
        tFirst = performance.now();
        const raw = res.headers[this.siteHeader];
        site = Array.isArray(raw) ? raw[0] : raw;
        if (res.statusCode !== 200) {
          res.resume();
          fail(
            'http_status',
            `${where}: HTTP ${res.statusCode}${res.statusCode === 429 ? " (the reflector's per-source byte budget is spent: lower samples or sizes, or raise its --bytes-rate-limit)" : ''}`,
          );
          return;
        }
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > MAX_TRANSFER_SIZE)
            fail('protocol', `${where}: more than ${MAX_TRANSFER_SIZE} bytes; transfer sizes are capped`);
        });
        res.on('end', () => {
          const tLast = performance.now();
          if (this.options.url === undefined && bytes !== this.size) {
            fail('protocol', `${where}: ${bytes} bytes instead of ${this.size}`);
            return;
          }
          const download = tLast - tFirst!;
          const values: Attempt['values'] = { ttfb: tFirst! - t0, download };
          if (download > 0) values.goodput_mbps = (bytes * 8) / (download * 1000);
          const a: Attempt = {
            ok: true,
            t0,
            t1: tLast,
            values,
            lagWindows: { ttfb: [t0, tFirst!], download: [tLast, tLast], goodput_mbps: [tLast, tLast] },
          };
          if (site !== undefined) a.site = site;
          finish(a);
        });
        res.on('error', (err) => fail(socketFailureReason(err) ?? 'reset', `${where}: ${errorDetail(err)}`));
      });
      req.on('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        const tls = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO/.test(code);
        fail(tls ? 'tls' : (socketFailureReason(err) ?? 'error'), `${where}: ${errorDetail(err)}`);
      });
      req.end();
    });
  }

  async close(): Promise<undefined> {
    this.closed = true;
    for (const r of this.live) r.destroy();
    this.live.clear();
    return undefined;
  }
}

/** Sets up a transfer prober for one target and one size (`options.size`, set by the round). */
export const createTransferProbe: ProbeFactory<'transfer'> = (target, options) => {
  if (isIP(target.address) === 0) throw optionsError(target, `address must be an IP literal, got "${target.address}"`);
  const size = options.size;
  if (size === undefined || !Number.isSafeInteger(size) || size < 1 || size > MAX_TRANSFER_SIZE) {
    throw optionsError(target, `size must be 1 to ${MAX_TRANSFER_SIZE} bytes, got ${size}`);
  }
  if (!(options.timeoutMs > 0))
    throw optionsError(target, `timeoutMs must be a positive number, got ${options.timeoutMs}`);
  let url: URL;
  try {
    url = transferUrl(target, options, size);
  } catch {
    throw optionsError(target, `not a URL: "${options.url}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw optionsError(target, `only http:// and https:// URLs, got "${url.protocol}"`);
  return new TransferProber(target, options, size);
};
