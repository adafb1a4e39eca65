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
import type { Attempt } from '../core/model.ts';
import { AnylatError } from '../util/errors.ts';
import { DEFAULT_SITE_HEADER } from './http.ts';
import { errorDetail, failureReason } from './outcome.ts';
import { SampleRuns, type SampleRun } from './sample.ts';
import type { ProbeFactory, Prober, ProbeTarget, TransferProbeOptions } from './types.ts';
import { hostPort } from '../util/host-port.ts';

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
  return new URL(`http://${hostPort(target.address, options.port ?? DEFAULT_TRANSFER_PORT)}/bytes/${size}`);
}

/** What one download has seen so far. */
interface Download {
  bytes: number;
  /** the response's headers arrived */
  tFirst?: number;
  site?: string;
}

class TransferProber implements Prober {
  readonly metrics = ['ttfb', 'download', 'goodput_mbps'] as const;
  private readonly url: URL;
  private readonly siteHeader: string;
  private readonly runs = new SampleRuns('transfer');

  constructor(
    private readonly target: ProbeTarget,
    private readonly options: TransferProbeOptions,
    private readonly size: number,
  ) {
    this.url = transferUrl(target, options, size);
    this.siteHeader = (options.siteHeader ?? DEFAULT_SITE_HEADER).toLowerCase();
  }

  sample(_seq: number, signal?: AbortSignal): Promise<Attempt> {
    const https_ = this.url.protocol === 'https:';
    const port = this.url.port === '' ? (https_ ? 443 : 80) : Number(this.url.port);
    const where = `${this.url.protocol}//${this.target.address}:${port}${this.url.pathname}`;
    const d: Download = { bytes: 0 };
    const timeoutMs = this.options.timeoutMs;
    const timeoutDetail = () => `${where}: not downloaded within ${timeoutMs} ms (${d.bytes} of ${this.size} bytes)`;
    return this.runs.run({ timeoutMs, timeoutDetail }, signal, (run) => {
      run.onFailure((failed) => ({
        ...failed,
        values: d.tFirst !== undefined ? { ttfb: d.tFirst - run.t0 } : {},
        ...(d.site !== undefined ? { site: d.site } : {}),
      }));
      const req = this.request(port);
      run.defer(() => req.destroy());
      req.on('socket', (socket: Socket) => {
        socket.setNoDelay(true);
        // The request goes out as soon as the connection is ready: that moment starts ttfb.
        socket.once(https_ ? 'secureConnect' : 'connect', () => {
          run.t0 = performance.now();
        });
      });
      req.on('response', (res) => this.receive(run, res, d, where));
      req.on('error', (err) => run.fail(failureReason(err, 'error'), `${where}: ${errorDetail(err)}`));
      req.end();
    });
  }

  /** The GET of this prober's object, to the target's address with the URL's host as Host and SNI. */
  private request(port: number): http.ClientRequest {
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
    if (this.url.protocol !== 'https:') return http.request(common);
    const hostname = this.url.hostname.replace(/^\[(.*)\]$/, '$1');
    return https.request({
      ...common,
      servername: isIP(hostname) ? undefined : hostname,
      rejectUnauthorized: this.options.insecure !== true,
      ...(this.options.ca ? { ca: this.options.ca } : {}),
    });
  }

  /** Reads the response: its headers end ttfb, its body's end ends the download. */
  private receive(run: SampleRun, res: http.IncomingMessage, d: Download, where: string): void {
    const tFirst = performance.now();
    d.tFirst = tFirst;
    const raw = res.headers[this.siteHeader];
    d.site = Array.isArray(raw) ? raw[0] : raw;
    if (res.statusCode !== 200) {
      res.resume();
      const spent =
        res.statusCode === 429
          ? " (the reflector's per-source byte budget is spent: lower samples or sizes, or raise its --bytes-rate-limit)"
          : '';
      return run.fail('http_status', `${where}: HTTP ${res.statusCode}${spent}`);
    }
    res.on('data', (chunk: Buffer) => {
      d.bytes += chunk.length;
      if (d.bytes > MAX_TRANSFER_SIZE)
        run.fail('protocol', `${where}: more than ${MAX_TRANSFER_SIZE} bytes; transfer sizes are capped`);
    });
    res.on('end', () => {
      const tLast = performance.now();
      if (this.options.url === undefined && d.bytes !== this.size)
        return run.fail('protocol', `${where}: ${d.bytes} bytes instead of ${this.size}`);
      const t0 = run.t0;
      const download = tLast - tFirst;
      const values: Attempt['values'] = { ttfb: tFirst - t0, download };
      if (download > 0) values.goodput_mbps = (d.bytes * 8) / (download * 1000);
      const lagWindows = { ttfb: [t0, tFirst], download: [tLast, tLast], goodput_mbps: [tLast, tLast] } as const;
      const a: Attempt = { ok: true, t0, t1: tLast, values, lagWindows };
      if (d.site !== undefined) a.site = d.site;
      run.settle(a);
    });
    res.on('error', (err) => run.fail(failureReason(err, 'reset'), `${where}: ${errorDetail(err)}`));
  }

  async close(): Promise<undefined> {
    this.runs.close();
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
