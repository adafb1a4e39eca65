// The embedded dashboard's HTTP server: node:http, a fixed table of static files, JSON endpoints
// over the store, strict security headers. Loopback unless the caller explicitly allows more.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { openStore, type Store } from '../store/index.ts';
import { AnylatError } from '../util/errors.ts';
import { answerApi } from './api.ts';
import { hostPort, isLoopbackIp, parseListen, resolveListen, type ListenSpec } from './listen.ts';
import { WebParamError } from './params.ts';
import { DashboardQueries, EMPTY_STORE, type StoreReader } from './queries.ts';
import { loadStatic } from './static.ts';

export interface WebServerOptions {
  /** an open store (the agent's own handle); the server never closes it */
  store?: StoreReader;
  /** or a store file to open read-only; until an agent creates it the page shows no data */
  storePath?: string;
  /** `host:port`, `[v6]:port`, a port, or `{ host, port }`; default 127.0.0.1:8080; port 0 = any free port */
  listen?: ListenSpec;
  /**
   * Allow an address other hosts can reach. The page has no authentication; a config that sets
   * `web.listen` to such an address counts as explicit consent. A warning is logged either way.
   */
  allowPublic?: boolean;
  /** where the start line and warnings go; default stderr */
  log?: (line: string) => void;
}

export interface WebServer {
  /** `http://host:port/` as bound (the real port when 0 was asked) */
  url: string;
  host: string;
  port: number;
  /** stops listening, drops open connections, closes a store the server opened itself */
  close(): Promise<void>;
}

/** How long the list of services and agents is reused (see DashboardQueries). */
const SERVICES_TTL_MS = 10_000;

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** Opens `path` read-only when it exists; retries on later requests while no agent has created it. */
class LazyStore {
  private store: Store | undefined;

  constructor(private readonly path: string) {
    this.tryOpen();
  }

  private tryOpen(): void {
    try {
      this.store = openStore(this.path, { readonly: true });
    } catch (err) {
      const code = err instanceof AnylatError ? err.code : '';
      if (code !== 'ANYLAT_STORE_MISSING' && code !== 'ANYLAT_STORE_EMPTY') throw err;
    }
  }

  get(): { reader: StoreReader; ready: boolean } {
    if (this.store === undefined) this.tryOpen();
    return this.store === undefined ? { reader: EMPTY_STORE, ready: false } : { reader: this.store, ready: true };
  }

  close(): void {
    this.store?.close();
  }
}

function send(res: ServerResponse, status: number, type: string, body: Buffer | string, head: boolean, extra: Record<string, string> = {}): void {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': String(buf.length), ...extra });
  res.end(head ? undefined : buf);
}

function sendJson(res: ServerResponse, status: number, value: unknown, head: boolean): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value)}\n`, head, { 'Cache-Control': 'no-store' });
}

function jsonError(res: ServerResponse, status: number, code: string, message: string, head: boolean, param?: string): void {
  sendJson(res, status, { error: { code, ...(param === undefined ? {} : { param }), message } }, head);
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
 * Starts the dashboard. Refuses (ANYLAT_WEB_PUBLIC, exit code 2) an address other hosts can reach
 * unless `allowPublic` is set; fails with ANYLAT_WEB_LISTEN when the address cannot be bound.
 */
export async function startWebServer(options: WebServerOptions): Promise<WebServer> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if ((options.store === undefined) === (options.storePath === undefined)) {
    throw new AnylatError('ANYLAT_WEB_OPTIONS', 'startWebServer: give exactly one of store and storePath');
  }
  const addr = parseListen(options.listen);
  const { bind, loopback } = await resolveListen(addr);
  const shown = hostPort(addr.host, addr.port);
  if (!loopback) {
    if (options.allowPublic !== true) {
      throw new AnylatError(
        'ANYLAT_WEB_PUBLIC',
        `web dashboard: ${shown} is reachable from other hosts and the page has no authentication; listen on 127.0.0.1 (the default), or set web.listen to this address explicitly in the config to allow it`,
        { exitCode: 2 },
      );
    }
    log(`warning: web dashboard listens on ${shown}, reachable from other hosts without authentication; it shows measurements only, never config or tokens`);
  }

  const files = loadStatic();
  const lazy = options.storePath !== undefined ? new LazyStore(options.storePath) : undefined;
  let cached: { base: StoreReader; queries: DashboardQueries } | undefined;
  const source = (): { queries: DashboardQueries; ready: boolean } => {
    const { reader, ready } = lazy?.get() ?? { reader: options.store!, ready: true };
    if (cached?.base !== reader) cached = { base: reader, queries: new DashboardQueries(reader, SERVICES_TTL_MS) };
    return { queries: cached.queries, ready };
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      send(res, 405, 'application/json; charset=utf-8', '{"error":{"code":"ANYLAT_WEB_METHOD","message":"only GET and HEAD"}}\n', false, { Allow: 'GET, HEAD' });
      return;
    }
    if (loopback && !loopbackHostOk(req.headers.host, addr.host)) {
      jsonError(res, 421, 'ANYLAT_WEB_HOST', `this dashboard answers on loopback only; open http://${shown}/`, head);
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    } catch {
      jsonError(res, 400, 'ANYLAT_WEB_URL', 'malformed request URL', head);
      return;
    }
    if (url.pathname === '/api' || url.pathname.startsWith('/api/')) {
      try {
        const { queries, ready } = source();
        const body = answerApi(url.pathname, url.searchParams, { queries, ready, now: Date.now() });
        if (body === undefined) jsonError(res, 404, 'ANYLAT_WEB_NOT_FOUND', `no endpoint ${url.pathname}; GET /api lists them`, head);
        else sendJson(res, 200, body, head);
      } catch (err) {
        if (err instanceof WebParamError) {
          jsonError(res, 400, err.code, err.message, head, err.param);
        } else {
          log(`web dashboard: ${url.pathname} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
          const code = err instanceof AnylatError ? err.code : 'ANYLAT_WEB_INTERNAL';
          jsonError(res, 500, code, 'the dashboard could not read the store; see the agent log', head);
        }
      }
      return;
    }
    const file = files.get(url.pathname);
    if (!file) {
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n', head);
      return;
    }
    send(res, 200, file.type, file.body, head, { 'Cache-Control': 'no-cache' });
  };

  const server = createServer(handle);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(addr.port, bind, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    lazy?.close();
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'the address is in use' : code === 'EADDRNOTAVAIL' ? 'no interface has that address' : (err as Error).message;
    throw new AnylatError('ANYLAT_WEB_LISTEN', `web dashboard: cannot listen on ${shown}: ${why}; set web.listen to another address or port`, {
      exitCode: 2,
      cause: err,
    });
  }
  server.on('error', (err) => log(`web dashboard: ${err.message}`));
  const bound = server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : addr.port;
  const url = `http://${hostPort(isIP(addr.host) !== 0 ? addr.host : bind, port)}/`;
  log(`web dashboard on ${url}`);
  return {
    url,
    host: bind,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          lazy?.close();
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
