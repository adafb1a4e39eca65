// startWebServer: where the dashboard listens (loopback unless the caller explicitly allows more)
// and on which thread it runs. By default the whole dashboard (HTTP and store reads) runs on a
// worker thread with its own read-only connection to the store file; see thread.ts.
import type { Server } from 'node:http';
import { isIP } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { AnylatError } from '../util/errors.ts';
import { closeServer, serveDashboard, type Binding } from './http.ts';
import { hostPort } from '../util/host-port.ts';
import { parseListen, resolveListen, type ListenSpec } from './listen.ts';
import type { StoreReader } from './queries.ts';
import { fileSource, storeSource, type QuerySource } from './source.ts';
import { startDashboardThread } from './thread.ts';

export { SECURITY_HEADERS } from './http.ts';

export interface WebServerOptions {
  /**
   * an open store (the agent's own handle); the server never closes it. The dashboard reads its
   * file through a read-only connection of its own, on its own thread (see `inline`).
   */
  store?: StoreReader & { readonly path?: string };
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
  /**
   * Serve on the caller's thread instead of the dashboard's own: every query then holds up the
   * caller's event loop for as long as it runs (seconds for a long window). For tools and tests,
   * never for an agent. A `store` without a file (`:memory:`) is always served inline.
   */
  inline?: boolean;
  /** also serve `/metrics` (Prometheus text) with what this returns: `web.metrics: true` */
  metrics?: () => string;
  /**
   * what the ANYLAT_BIND message tells the user to change when the address cannot be bound;
   * default `set web.listen (or --listen) to another address or port` (the demo names --web)
   */
  bindRemedy?: string;
}

export interface WebServer {
  /** `http://host:port/` as bound (the real port when 0 was asked) */
  url: string;
  host: string;
  port: number;
  /** stops listening, drops open connections, closes the store connection the server opened */
  close(): Promise<void>;
}

/** A store file another connection can open: not `:memory:` or a temporary database. */
function fileOf(store: { readonly path?: string }): string | undefined {
  const path = store.path;
  return path === undefined || path === '' || path === ':memory:' || path.startsWith('file:')
    ? undefined
    : resolvePath(path);
}

/** The dashboard on the caller's thread. */
async function serveInline(
  source: QuerySource,
  binding: Binding,
  log: (line: string) => void,
  metrics?: () => string,
): Promise<{ port: number; close: () => Promise<void> }> {
  let server: Server;
  let port: number;
  try {
    ({ server, port } = await serveDashboard(source, binding, log, metrics ? async () => metrics() : undefined));
  } catch (err) {
    source.close();
    throw err;
  }
  return { port, close: () => closeServer(server).then(() => source.close()) };
}

/**
 * Starts the dashboard. Refuses (ANYLAT_WEB_PUBLIC, exit code 2) an address other hosts can reach
 * unless `allowPublic` is set; fails with ANYLAT_BIND when the address cannot be bound.
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
      );
    }
    log(
      `warning: web dashboard listens on ${shown}, reachable from other hosts without authentication; it shows measurements only, never config or tokens`,
    );
  }

  const binding: Binding = {
    bind,
    port: addr.port,
    loopback,
    host: addr.host,
    shown,
    ...(options.bindRemedy !== undefined ? { remedy: options.bindRemedy } : {}),
  };
  const file = options.storePath ?? fileOf(options.store!);
  const running =
    options.inline === true || file === undefined
      ? await serveInline(
          options.storePath !== undefined ? fileSource(options.storePath) : storeSource(options.store!),
          binding,
          log,
          options.metrics,
        )
      : await startDashboardThread({
          storePath: file,
          binding,
          log,
          ...(options.metrics ? { metrics: options.metrics } : {}),
        });
  const url = `http://${hostPort(isIP(addr.host) !== 0 ? addr.host : bind, running.port)}/`;
  log(`web dashboard on ${url}`);
  return { url, host: bind, port: running.port, close: () => running.close() };
}
