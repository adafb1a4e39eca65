// The reflector's HTTP endpoint: answers GET/HEAD on any path with its site and the source address
// it saw, keeps connections alive so a prober's second ("warm") request rides the same one, and
// bounds what a client can hold: header size, header and request deadlines, idle time, connections.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIPv6, type Socket } from 'node:net';
import { EnvironmentError } from '../util/errors.ts';
import type { ReflectorCommonOptions, ReflectorPart } from './types.ts';

/** The response header naming the site; the http probe reads it by default. */
export const SITE_HEADER = 'x-anylat-site';

/** Options for {@link startHttpReflector}. */
export interface HttpReflectorOptions extends ReflectorCommonOptions {
  /** TCP port; 0 picks one (the same for every bind address when free there) */
  port: number;
  /** serve HTTPS with this PEM certificate and key */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** open connections per bound address (default 1024) */
  maxConnections?: number;
}

const MAX_HEADER_BYTES = 8 * 1024;
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;
// Longer than a round's spacing between a sample's two requests, short enough to free idle sockets.
const KEEP_ALIVE_MS = 5_000;
const MAX_REQUESTS_PER_SOCKET = 1000;

interface Counters {
  connections: number;
  requests: number;
  not_allowed: number;
  client_errors: number;
  rejected_connections: number;
}

/** A v4 client on a dual-stack socket shows as `::ffff:a.b.c.d`; users expect `a.b.c.d`. */
function plainAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

function urlHost(address: string, port: number): string {
  return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * Starts one HTTP (or HTTPS) server per bind address. Throws `EnvironmentError`
 * (`ANYLAT_REFLECTOR_BIND`) when an address cannot be listened on; servers already started are
 * closed first.
 */
export async function startHttpReflector(options: HttpReflectorOptions): Promise<ReflectorPart> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const maxConnections = options.maxConnections ?? 1024;
  const counters: Counters = { connections: 0, requests: 0, not_allowed: 0, client_errors: 0, rejected_connections: 0 };
  const scheme = options.tls ? 'https' : 'http';

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    counters.requests++;
    // A GET with a body is legal but useless here; drain it so the connection stays usable.
    req.resume();
    res.setHeader(SITE_HEADER, options.site);
    res.setHeader('cache-control', 'no-store');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      counters.not_allowed++;
      const body = JSON.stringify({ error: `method ${req.method} not allowed; use GET or HEAD` });
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    const body = JSON.stringify({
      site: options.site,
      source: plainAddress(req.socket.remoteAddress),
      source_port: req.socket.remotePort ?? 0,
      path: req.url ?? '/',
    });
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-content-type-options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const onClientError = (err: NodeJS.ErrnoException, socket: Socket) => {
    counters.client_errors++;
    // Answer a malformed request once if the socket can still take it, then drop the connection.
    if (socket.writable && err.code !== 'ECONNRESET') {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    }
    socket.destroy();
  };

  const make = (): Server => {
    const serverOptions = { maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS };
    const server: Server = options.tls
      ? createHttpsServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key }, handle)
      : createHttpServer(serverOptions, handle);
    server.keepAliveTimeout = KEEP_ALIVE_MS;
    server.maxRequestsPerSocket = MAX_REQUESTS_PER_SOCKET;
    server.maxConnections = maxConnections;
    server.on('connection', () => counters.connections++);
    server.on('drop', () => counters.rejected_connections++);
    server.on('clientError', onClientError);
    // A TLS client that gives up mid-handshake surfaces here; it is the client's problem, not ours.
    server.on('tlsClientError', () => counters.client_errors++);
    return server;
  };

  const servers: Server[] = [];
  const listening: Array<{ address: string; port: number }> = [];
  const closeAll = async () => {
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
  };

  const listenOn = (server: Server, address: string, port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // ipv6Only so `::` and `0.0.0.0` can both be bound, each with its own socket.
      server.listen({ host: address, port, ipv6Only: isIPv6(address) }, () => {
        server.off('error', reject);
        resolve();
      });
    });

  let port = options.port;
  for (const address of options.binds) {
    const server = make();
    try {
      try {
        await listenOn(server, address, port);
      } catch (err) {
        // Port 0 was asked and the port picked on the first address is taken here: pick another.
        if (options.port !== 0 || port === 0 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
        await listenOn(server, address, 0);
      }
    } catch (err) {
      await closeAll();
      const e = err as NodeJS.ErrnoException;
      throw new EnvironmentError(
        'ANYLAT_REFLECTOR_BIND',
        `http reflector: cannot listen on ${scheme}://${urlHost(address, port)}: ${e.code ?? e.message}. ` +
          `Choose another --http-port or --bind address, or stop what holds it.`,
      );
    }
    servers.push(server);
    const bound = server.address();
    const boundPort = typeof bound === 'object' && bound ? bound.port : port;
    server.on('error', (err) => log(`http reflector on ${urlHost(address, boundPort)}: ${err.message}`));
    if (port === 0) port = boundPort;
    listening.push({ address, port: boundPort });
  }

  return {
    kind: 'http',
    listening,
    stats: () => ({ ...counters }),
    close: closeAll,
  };
}
