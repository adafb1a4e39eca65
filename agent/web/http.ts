// The dashboard's HTTP side: node:http, a fixed table of static files, the JSON endpoints, strict
// security headers, the Host check. It runs on whichever thread reads the store (the dashboard's
// worker thread, see thread.ts, or the caller's when inline), so a reply's bytes never pass
// through another thread.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { BindError, errorMessage } from '../util/errors.ts';
import { answerRequest, errorReply } from './answer.ts';
import { isLoopbackIp } from './listen.ts';
import type { QuerySource } from './source.ts';
import { loadStatic } from './static.ts';

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** Where to listen, decided (and consented to) by startWebServer. */
export interface Binding {
  /** the address to bind */
  bind: string;
  port: number;
  /** true when every address is loopback: then only loopback Host names are answered */
  loopback: boolean;
  /** the host as the user wrote it (also accepted as a Host name) */
  host: string;
  /** `host:port` as the user wrote it, for messages */
  shown: string;
  /** what a failed bind tells the user to change; default names web.listen (or --listen) */
  remedy?: string;
}

/** Prometheus' text exposition format, version 0.0.4. */
const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: Uint8Array | string,
  head: boolean,
  extra: Record<string, string> = {},
): void {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'Content-Type': type,
    'Content-Length': String(buf.byteLength),
    ...extra,
  });
  res.end(head ? undefined : buf);
}

function sendJson(res: ServerResponse, status: number, body: Uint8Array, head: boolean): void {
  send(res, status, 'application/json; charset=utf-8', body, head, { 'Cache-Control': 'no-store' });
}

/** Host names a loopback dashboard answers to; anything else is a DNS-rebinding attempt or a mistake. */
function loopbackHostOk(hostHeader: string | undefined, boundHost: string): boolean {
  if (hostHeader === undefined) return false;
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::\d+)?$/.exec(hostHeader.trim());
  if (!m) return false;
  const name = (m[1] ?? m[2]!).toLowerCase();
  return name === 'localhost' || name === boundHost.toLowerCase() || (isIP(name) !== 0 && isLoopbackIp(name));
}

/**
 * Serves the page and the API over `source` on `binding`; resolves with the listening server and
 * its port. Fails with ANYLAT_BIND (BindError, exit code 2) when the address cannot be bound, and at
 * once when a file of the page is missing.
 */
export async function serveDashboard(
  source: QuerySource,
  binding: Binding,
  log: (line: string) => void,
  metrics?: () => Promise<string>,
): Promise<{ server: Server; port: number }> {
  const server = createServer(requestHandler(source, binding, log, metrics));
  await listen(server, binding);
  server.on('error', (err) => log(`web dashboard: ${err.message}`));
  const bound = server.address();
  return { server, port: typeof bound === 'object' && bound !== null ? bound.port : binding.port };
}

/** Binds `server` to `binding`; a failure is a BindError that says what to change. */
async function listen(server: Server, binding: Binding): Promise<void> {
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(binding.port, binding.bind, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    throw new BindError(
      'web dashboard',
      binding.bind,
      binding.port,
      err,
      binding.remedy ?? 'set web.listen (or --listen) to another address or port',
    );
  }
}

/**
 * The server's request listener: method and Host checks, then /metrics, the API or a static file.
 * The page's files are read here, once: a missing one fails at start.
 */
function requestHandler(
  source: QuerySource,
  binding: Binding,
  log: (line: string) => void,
  metrics: (() => Promise<string>) | undefined,
): (req: IncomingMessage, res: ServerResponse) => void {
  const files = loadStatic();
  return (req, res) => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      send(
        res,
        405,
        'application/json; charset=utf-8',
        '{"error":{"code":"ANYLAT_WEB_METHOD","message":"only GET and HEAD"}}\n',
        false,
        { Allow: 'GET, HEAD' },
      );
      return;
    }
    if (binding.loopback && !loopbackHostOk(req.headers.host, binding.host)) {
      sendJson(
        res,
        421,
        errorReply(421, 'ANYLAT_WEB_HOST', `this dashboard answers on loopback only; open http://${binding.shown}/`)
          .body,
        head,
      );
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    } catch {
      sendJson(res, 400, errorReply(400, 'ANYLAT_WEB_URL', 'malformed request URL').body, head);
      return;
    }
    if (url.pathname === '/metrics' && metrics) {
      // `web.metrics: true`: the agent's Prometheus metrics next to the page (rendered by the agent).
      metrics().then(
        (text) => send(res, 200, PROMETHEUS_TEXT, text, head, { 'Cache-Control': 'no-store' }),
        (err: unknown) => {
          log(`web dashboard: /metrics: ${errorMessage(err)}`);
          send(res, 503, 'text/plain; charset=utf-8', 'metrics unavailable; see the agent log\n', head);
        },
      );
      return;
    }
    if (url.pathname === '/api' || url.pathname.startsWith('/api/')) {
      const reply = answerRequest(source, url.pathname, url.search, Date.now());
      if (reply.log !== undefined) log(reply.log);
      sendJson(res, reply.status, reply.body, head);
      return;
    }
    const file = files.get(url.pathname);
    if (!file) {
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n', head);
      return;
    }
    send(res, 200, file.type, file.body, head, { 'Cache-Control': 'no-cache' });
  };
}

/** Stops listening and drops open connections (a page's keep-alive ones included). */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
