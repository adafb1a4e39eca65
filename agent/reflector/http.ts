// The reflector's HTTP endpoint: answers GET/HEAD on any path with its site and the source address
// it saw, keeps connections alive so a prober's second ("warm") request rides the same one, and
// bounds what a client can hold: header size, header and whole-request deadlines, idle time, body
// size, connections in all and from one source address (one sender cannot take the slots of others:
// 1,024 half-open connections from one address used to reset every other client's request).
//
// Over plain http each connection's ACKs are delayed (TCP_QUICKACK off, Linux), as the TCP echo's
// are (tcp-echo.ts): a response written at once then carries the ACK of its request, and the
// prober's kernel takes one RTT sample from the request leaving to the response arriving, which
// the http probe reads as ttfb. Left to itself Linux acknowledges a connection's first request at
// once with a bare ACK, and the prober would fall back to its own clock. The listening socket is
// set too: Linux copies the mode into each connection it accepts, which covers a request that
// arrives before the 'connection' callback runs (half of them, over the lab's links, without it). Over https the probe does
// not time ttfb from the kernel (probe/http.ts says why), so its connections are left alone.
//
// Unlike the TCP echo, this endpoint reports no turnaround for the prober to subtract: the echo
// finds its request's arrival in the kernel from the RTT sample that request's ACK of the previous
// reply gave, but ttfb is a connection's first request, which acknowledges nothing of ours (the
// client's bare ACK of the SYN/ACK went before it), and Node gives no kernel receive time for TCP.
// A user-space stamp ('request' event to write) would miss the time the request waited for this
// event loop and the HTTP parser, most of this side's share, and could be bent by lag. So ttfb
// holds the reflector's time to answer, as ttfb means.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIPv6, type Socket } from 'node:net';
import { delayAcks, loadTcpInfo } from '../net/tcp-info.ts';
import { BindError } from '../util/errors.ts';
import { bytesRoute, type BytesRouteOptions } from './bytes.ts';
import type { ReflectorCommonOptions, ReflectorPart } from './types.ts';
import { hostPort } from '../util/host-port.ts';

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
  /** the `/bytes/N` route's per-source budget (bytes.ts); default BYTES_ROUTE_DEFAULTS */
  bytes?: BytesRouteOptions;
  /** open connections from one source address, per bound address (default 32) */
  maxConnectionsPerSource?: number;
  /** a request not fully received this long after it began is cut off (default 15 s) */
  requestTimeoutMs?: number;
  /** request bodies larger than this are refused (413) or cut off (default 64 KiB) */
  maxBodyBytes?: number;
}

const MAX_HEADER_BYTES = 8 * 1024;
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;
const MAX_BODY_BYTES = 64 * 1024;
const MAX_CONNECTIONS_PER_SOURCE = 32;
// Longer than a round's spacing between a sample's two requests, short enough to free idle sockets.
const KEEP_ALIVE_MS = 5_000;
const MAX_REQUESTS_PER_SOCKET = 1000;

interface Counters {
  connections: number;
  requests: number;
  not_allowed: number;
  client_errors: number;
  rejected_connections: number;
  /** connections refused because their source already held maxConnectionsPerSource */
  per_source_refused: number;
  /** requests cut off at the whole-request deadline */
  request_timeouts: number;
  /** request bodies over maxBodyBytes (413, or the connection cut) */
  bodies_too_large: number;
}

/** A v4 client on a dual-stack socket shows as `::ffff:a.b.c.d`; users expect `a.b.c.d`. */
function plainAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** What every request and connection of one reflector shares. */
interface HttpReflector {
  options: HttpReflectorOptions;
  counters: Counters;
  maxConnections: number;
  maxPerSource: number;
  requestTimeoutMs: number;
  maxBody: number;
  canDelayAcks: boolean;
  bytes: ReturnType<typeof bytesRoute>;
}

/**
 * Starts one HTTP (or HTTPS) server per bind address. Throws `BindError`
 * (`ANYLAT_BIND`) when an address cannot be listened on; servers already started are
 * closed first.
 */
export async function startHttpReflector(options: HttpReflectorOptions): Promise<ReflectorPart> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const r: HttpReflector = {
    options,
    counters: {
      connections: 0,
      requests: 0,
      not_allowed: 0,
      client_errors: 0,
      rejected_connections: 0,
      per_source_refused: 0,
      request_timeouts: 0,
      bodies_too_large: 0,
    },
    maxConnections: options.maxConnections ?? 1024,
    maxPerSource: options.maxConnectionsPerSource ?? MAX_CONNECTIONS_PER_SOURCE,
    requestTimeoutMs: options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
    maxBody: options.maxBodyBytes ?? MAX_BODY_BYTES,
    // koffi loads once, now, rather than in the first connection's callback.
    canDelayAcks: !options.tls && loadTcpInfo(),
    bytes: bytesRoute(options.bytes),
  };
  const scheme = options.tls ? 'https' : 'http';
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

  let port = options.port;
  for (const address of options.binds) {
    const server = makeServer(r);
    try {
      try {
        await listenOn(r, server, address, port);
      } catch (err) {
        // Port 0 was asked and the port picked on the first address is taken here: pick another.
        if (options.port !== 0 || port === 0 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
        await listenOn(r, server, address, 0);
      }
    } catch (err) {
      await closeAll();
      throw new BindError(
        `${scheme} reflector`,
        address,
        port,
        err,
        'pick another --http-port or --bind address, or stop what holds it',
      );
    }
    servers.push(server);
    const bound = server.address();
    const boundPort = typeof bound === 'object' && bound ? bound.port : port;
    server.on('error', (err) => log(`http reflector on ${hostPort(address, boundPort)}: ${err.message}`));
    if (port === 0) port = boundPort;
    listening.push({ address, port: boundPort });
  }

  return {
    kind: 'http',
    listening,
    stats: () => ({ ...r.counters, ...r.bytes.stats() }),
    close: closeAll,
  };
}

function handleRequest(r: HttpReflector, req: IncomingMessage, res: ServerResponse): void {
  if (!guard(r, req, res)) return;
  respond(r, req, res);
  // After the response is written, so it costs it nothing: the kernel leaves ping-pong mode when
  // a response was later than its delayed-ACK timer, and the next request would get a bare ACK.
  if (r.canDelayAcks) delayAcks(req.socket);
}

// The whole request, body included, must arrive within requestTimeoutMs, and its body stay under
// maxBody: Node's own requestTimeout is only checked every 30 s, and a GET body was read without
// end (28 GB in 20 s). Returns false when the request was refused.
function guard(r: HttpReflector, req: IncomingMessage, res: ServerResponse): boolean {
  const { counters, maxBody } = r;
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBody) {
    counters.requests++;
    counters.bodies_too_large++;
    const body = JSON.stringify({ error: `request body of ${declared} bytes is larger than ${maxBody}` });
    res.writeHead(413, {
      connection: 'close',
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body, () => req.socket.destroy());
    return false;
  }
  if (req.complete) return true;
  const deadline = setTimeout(() => {
    counters.request_timeouts++;
    req.socket.destroy();
  }, r.requestTimeoutMs);
  let bytes = 0;
  req.on('data', (chunk: Buffer) => {
    if (bytes > maxBody) return;
    bytes += chunk.length;
    if (bytes > maxBody) {
      counters.bodies_too_large++;
      clearTimeout(deadline);
      req.socket.destroy();
    }
  });
  req.once('end', () => clearTimeout(deadline));
  req.once('close', () => clearTimeout(deadline));
  return true;
}

function respond(r: HttpReflector, req: IncomingMessage, res: ServerResponse): void {
  const { counters, options } = r;
  counters.requests++;
  // A GET with a body is legal but useless here; drain it so the connection stays usable.
  req.resume();
  res.setHeader(SITE_HEADER, options.site);
  res.setHeader('cache-control', 'no-store');
  if ((req.method === 'GET' || req.method === 'HEAD') && r.bytes.handle(req, res)) return;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    counters.not_allowed++;
    const body = JSON.stringify({ error: `method ${req.method} not allowed; use GET or HEAD` });
    res.writeHead(405, {
      allow: 'GET, HEAD',
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
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
}

function onClientError(counters: Counters, err: NodeJS.ErrnoException, socket: Socket): void {
  counters.client_errors++;
  // Answer a malformed request once if the socket can still take it, then drop the connection.
  if (socket.writable && err.code !== 'ECONNRESET') {
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  }
  socket.destroy();
}

/** One server with every bound the reflector keeps: sizes, timeouts, connections per source. */
function makeServer(r: HttpReflector): Server {
  const { counters, options } = r;
  const serverOptions = {
    maxHeaderSize: MAX_HEADER_BYTES,
    requestTimeout: r.requestTimeoutMs,
    headersTimeout: Math.min(HEADERS_TIMEOUT_MS, r.requestTimeoutMs),
    // Node checks the two timeouts above this often (default 30 s: a half-open connection then
    // held its slot up to 40 s).
    connectionsCheckingInterval: 1000,
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => handleRequest(r, req, res);
  const server: Server = options.tls
    ? createHttpsServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key }, handle)
    : createHttpServer(serverOptions, handle);
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  server.maxRequestsPerSocket = MAX_REQUESTS_PER_SOCKET;
  server.maxConnections = r.maxConnections;
  const perSource = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const source = plainAddress(socket.remoteAddress);
    const held = perSource.get(source) ?? 0;
    if (held >= r.maxPerSource) {
      counters.per_source_refused++;
      socket.destroy();
      return;
    }
    perSource.set(source, held + 1);
    socket.once('close', () => {
      const left = (perSource.get(source) ?? 1) - 1;
      if (left <= 0) perSource.delete(source);
      else perSource.set(source, left);
    });
    counters.connections++;
    if (r.canDelayAcks) delayAcks(socket);
  });
  server.on('drop', () => counters.rejected_connections++);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => onClientError(counters, err, socket));
  // A TLS client that gives up mid-handshake surfaces here; it is the client's problem, not ours.
  server.on('tlsClientError', () => counters.client_errors++);
  return server;
}

function listenOn(r: HttpReflector, server: Server, address: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // ipv6Only so `::` and `0.0.0.0` can both be bound, each with its own socket.
    server.listen({ host: address, port, ipv6Only: isIPv6(address) }, () => {
      server.off('error', reject);
      // On the listening socket too: a connection inherits it from the moment the kernel creates
      // it, so a request that arrives before 'connection' has run is not acknowledged at once.
      if (r.canDelayAcks) delayAcks(server as unknown as Socket);
      resolve();
    });
  });
}
