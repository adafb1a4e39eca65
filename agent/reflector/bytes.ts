// The reflector's `GET /bytes/N` route: N bytes of body for the transfer probe to download (split-TCP
// benefit on objects of several sizes). What one source can cost is bounded twice: N is capped
// (MAX_TRANSFER_BYTES; a larger N is refused, never cut), and each source (an IPv4 address or an
// IPv6 /64) has a byte budget that refills at a fixed rate; a request the budget cannot pay for in
// full is refused with 429 before a byte of body goes out. The body is exactly N bytes, written
// with back-pressure from one shared random buffer (incompressible, so a compressing middlebox
// cannot shrink it).
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { SourceLimiter, sourceKey } from './stamp.ts';

/** The largest body `/bytes/N` serves: 10 MiB. */
export const MAX_TRANSFER_BYTES = 10 * 1024 * 1024;

/** Defaults of the per-source byte budget; docs/measurement.md ("Transfer") documents them. */
export const BYTES_ROUTE_DEFAULTS = {
  /** bytes per second one source may download, on average (0: no limit) */
  bytesPerSecond: 2 * 1024 * 1024,
  /** the budget's burst: what an idle source may take at once (a round of the default sizes, many times over) */
  burstBytes: 64 * 1024 * 1024,
  /** sources tracked at once */
  maxSources: 65_536,
} as const;

const PATH = /^\/bytes\/(\d{1,9})(?:\?.*)?$/;
const CHUNK = randomBytes(64 * 1024);

export interface BytesRouteOptions {
  /** bytes per second per source; 0 disables the budget */
  bytesPerSecond?: number;
  burstBytes?: number;
}

export interface BytesRoute {
  /** answers the request and returns true when its path is `/bytes/…`; false leaves it to the caller */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  stats(): { bytes_requests: number; bytes_sent: number; bytes_refused: number; bytes_rate_limited: number };
}

/** Creates the `/bytes/N` route with its per-source budget. */
export function bytesRoute(options: BytesRouteOptions = {}): BytesRoute {
  const rate = options.bytesPerSecond ?? BYTES_ROUTE_DEFAULTS.bytesPerSecond;
  const burst = Math.max(MAX_TRANSFER_BYTES, options.burstBytes ?? BYTES_ROUTE_DEFAULTS.burstBytes);
  const limiter = new SourceLimiter(rate / 1000, burst, BYTES_ROUTE_DEFAULTS.maxSources);
  const counts = { bytes_requests: 0, bytes_sent: 0, bytes_refused: 0, bytes_rate_limited: 0 };

  const refuse = (res: ServerResponse, status: number, message: string, extra: Record<string, string> = {}) => {
    const body = JSON.stringify({ error: message });
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...extra });
    res.end(body);
  };

  return {
    handle(req, res) {
      const url = req.url ?? '/';
      if (!url.startsWith('/bytes/')) return false;
      counts.bytes_requests++;
      const m = PATH.exec(url);
      const n = m ? Number(m[1]) : Number.NaN;
      if (!Number.isSafeInteger(n) || n > MAX_TRANSFER_BYTES) {
        counts.bytes_refused++;
        refuse(res, 400, `expected /bytes/N with N a whole number of bytes from 0 to ${MAX_TRANSFER_BYTES}`);
        return true;
      }
      const head = req.method === 'HEAD';
      // The budget is paid in bytes, all of them up front: a refused request costs one small answer.
      if (!head && n > 0 && !takeBytes(limiter, sourceKey(req.socket.remoteAddress ?? ''), n)) {
        counts.bytes_rate_limited++;
        refuse(res, 429, `this source has used its download budget (${rate} bytes/s); try again later`, {
          'retry-after': String(Math.max(1, Math.ceil(n / Math.max(rate, 1)))),
        });
        return true;
      }
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': n,
        'x-content-type-options': 'nosniff',
      });
      if (head) {
        res.end();
        return true;
      }
      let left = n;
      const pump = () => {
        while (left > 0) {
          const piece = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
          left -= piece.length;
          counts.bytes_sent += piece.length;
          if (!res.write(piece)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      // A client that goes away stops the pump: nothing more is written to a closed response.
      res.once('close', () => {
        left = 0;
      });
      pump();
      return true;
    },
    stats: () => ({ ...counts }),
  };
}

/** Takes `n` tokens at once, or none (SourceLimiter takes one at a time). */
function takeBytes(limiter: SourceLimiter, key: string, n: number): boolean {
  return limiter.takeMany(key, performance.now(), n);
}
