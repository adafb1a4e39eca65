// The reflector's HTTP endpoint: answers GET/HEAD on any path with its site and the source address
// it saw, keeps connections alive so a prober's second ("warm") request rides the same one, and
// bounds what a client can hold: header size, header and request deadlines, idle time, connections.
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
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIPv6 } from 'node:net';
import { delayAcks, loadTcpInfo } from "../net/tcp-info.js";
import { EnvironmentError } from "../util/errors.js";
import { bytesRoute } from "./bytes.js";
/** The response header naming the site; the http probe reads it by default. */
export const SITE_HEADER = 'x-anylat-site';
const MAX_HEADER_BYTES = 8 * 1024;
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;
// Longer than a round's spacing between a sample's two requests, short enough to free idle sockets.
const KEEP_ALIVE_MS = 5_000;
const MAX_REQUESTS_PER_SOCKET = 1000;
/** A v4 client on a dual-stack socket shows as `::ffff:a.b.c.d`; users expect `a.b.c.d`. */
function plainAddress(address) {
    if (!address)
        return '';
    return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
function urlHost(address, port) {
    return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}
/**
 * Starts one HTTP (or HTTPS) server per bind address. Throws `EnvironmentError`
 * (`ANYLAT_REFLECTOR_BIND`) when an address cannot be listened on; servers already started are
 * closed first.
 */
export async function startHttpReflector(options) {
    const log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    const maxConnections = options.maxConnections ?? 1024;
    const counters = { connections: 0, requests: 0, not_allowed: 0, client_errors: 0, rejected_connections: 0 };
    const scheme = options.tls ? 'https' : 'http';
    // koffi loads once, now, rather than in the first connection's callback.
    const canDelayAcks = !options.tls && loadTcpInfo();
    const bytes = bytesRoute(options.bytes);
    const handle = (req, res) => {
        respond(req, res);
        // After the response is written, so it costs it nothing: the kernel leaves ping-pong mode when
        // a response was later than its delayed-ACK timer, and the next request would get a bare ACK.
        if (canDelayAcks)
            delayAcks(req.socket);
    };
    const respond = (req, res) => {
        counters.requests++;
        // A GET with a body is legal but useless here; drain it so the connection stays usable.
        req.resume();
        res.setHeader(SITE_HEADER, options.site);
        res.setHeader('cache-control', 'no-store');
        if ((req.method === 'GET' || req.method === 'HEAD') && bytes.handle(req, res))
            return;
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
    const onClientError = (err, socket) => {
        counters.client_errors++;
        // Answer a malformed request once if the socket can still take it, then drop the connection.
        if (socket.writable && err.code !== 'ECONNRESET') {
            const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
            socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
        }
        socket.destroy();
    };
    const make = () => {
        const serverOptions = { maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS };
        const server = options.tls
            ? createHttpsServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key }, handle)
            : createHttpServer(serverOptions, handle);
        server.keepAliveTimeout = KEEP_ALIVE_MS;
        server.maxRequestsPerSocket = MAX_REQUESTS_PER_SOCKET;
        server.maxConnections = maxConnections;
        server.on('connection', (socket) => {
            counters.connections++;
            if (canDelayAcks)
                delayAcks(socket);
        });
        server.on('drop', () => counters.rejected_connections++);
        server.on('clientError', onClientError);
        // A TLS client that gives up mid-handshake surfaces here; it is the client's problem, not ours.
        server.on('tlsClientError', () => counters.client_errors++);
        return server;
    };
    const servers = [];
    const listening = [];
    const closeAll = async () => {
        await Promise.all(servers.map((s) => new Promise((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
        })));
    };
    const listenOn = (server, address, port) => new Promise((resolve, reject) => {
        server.once('error', reject);
        // ipv6Only so `::` and `0.0.0.0` can both be bound, each with its own socket.
        server.listen({ host: address, port, ipv6Only: isIPv6(address) }, () => {
            server.off('error', reject);
            // On the listening socket too: a connection inherits it from the moment the kernel creates
            // it, so a request that arrives before 'connection' has run is not acknowledged at once.
            if (canDelayAcks)
                delayAcks(server);
            resolve();
        });
    });
    let port = options.port;
    for (const address of options.binds) {
        const server = make();
        try {
            try {
                await listenOn(server, address, port);
            }
            catch (err) {
                // Port 0 was asked and the port picked on the first address is taken here: pick another.
                if (options.port !== 0 || port === 0 || err.code !== 'EADDRINUSE')
                    throw err;
                await listenOn(server, address, 0);
            }
        }
        catch (err) {
            await closeAll();
            const e = err;
            throw new EnvironmentError('ANYLAT_REFLECTOR_BIND', `http reflector: cannot listen on ${scheme}://${urlHost(address, port)}: ${e.code ?? e.message}. ` +
                `Choose another --http-port or --bind address, or stop what holds it.`);
        }
        servers.push(server);
        const bound = server.address();
        const boundPort = typeof bound === 'object' && bound ? bound.port : port;
        server.on('error', (err) => log(`http reflector on ${urlHost(address, boundPort)}: ${err.message}`));
        if (port === 0)
            port = boundPort;
        listening.push({ address, port: boundPort });
    }
    return {
        kind: 'http',
        listening,
        stats: () => ({ ...counters, ...bytes.stats() }),
        close: closeAll,
    };
}
