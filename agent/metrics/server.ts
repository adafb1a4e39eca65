// `/metrics` on its own small HTTP server (`metrics.listen`). It answers on the agent's thread:
// rendering a few dozen lines and two indexed SQLite lookups costs far less than a probe's
// callback, unlike the dashboard's window queries, which have a thread of their own.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { BindError, errorMessage } from '../util/errors.ts';
import { EXPOSITION_CONTENT_TYPE } from './exposition.ts';
import { hostPort } from '../util/host-port.ts';

/** Serves the text `render()` returns on GET /metrics; everything else is 404. */
export interface MetricsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Answers one request for /metrics; shared by the metrics server and anything else that routes to it. */
export function handleMetrics(
  req: IncomingMessage,
  res: ServerResponse,
  render: () => string,
  log: (line: string) => void,
): void {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/metrics') {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: anylat serves /metrics here\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
    return;
  }
  let body: string;
  try {
    body = render();
  } catch (err) {
    log(`metrics: cannot render: ${errorMessage(err)}`);
    res
      .writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
      .end('cannot render metrics; see the agent log\n');
    return;
  }
  res.writeHead(200, { 'content-type': EXPOSITION_CONTENT_TYPE, 'cache-control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
}

export async function startMetricsServer(options: {
  host: string;
  port: number;
  render: () => string;
  log: (line: string) => void;
}): Promise<MetricsServer> {
  const server = createServer((req, res) => handleMetrics(req, res, options.render, options.log));
  server.keepAliveTimeout = 65_000; // longer than Prometheus' default scrape interval: one connection per scraper
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new BindError('metrics', options.host, options.port, err, 'change metrics.listen')),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : options.port;
  return {
    url: `http://${hostPort(options.host, port)}/metrics`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The event loop's delay as Prometheus wants it: a quantile over a recent window that every
 * scraper sees alike (a scrape does not reset it). Windows of `windowMs`; the last full one is
 * reported until the current one has its own.
 */
export class LoopDelay {
  private readonly histogram: IntervalHistogram;
  private readonly timer: NodeJS.Timeout;
  private last = { p99Ms: 0, maxMs: 0 };

  constructor(windowMs = 60_000) {
    this.histogram = monitorEventLoopDelay({ resolution: 10 });
    this.histogram.enable();
    this.timer = setInterval(() => {
      this.last = this.read();
      this.histogram.reset();
    }, windowMs);
    this.timer.unref();
  }

  private read(): { p99Ms: number; maxMs: number } {
    if (this.histogram.count === 0) return { p99Ms: 0, maxMs: 0 };
    // The histogram counts from its 10 ms sampling timer: subtract that so an idle loop reads ~0.
    const ms = (ns: number) => Math.max(0, ns / 1e6 - 10);
    return { p99Ms: ms(this.histogram.percentile(99)), maxMs: ms(this.histogram.max) };
  }

  /** p99 and max over the current window, or the last full one while the current one is young. */
  value(): { p99Ms: number; maxMs: number } {
    return this.histogram.count >= 100 ? this.read() : this.last;
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }
}
