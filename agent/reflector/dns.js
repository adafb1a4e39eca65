// The reflector's DNS part: answers CHAOS TXT `hostname.bind` / `id.server` and the EDNS NSID
// option with its site, over UDP and TCP, on every bound address (one socket each, so an answer
// leaves from the address the query was sent to). Everything else is REFUSED; it never recurses.
//
// It faces the internet, so a query pays before it costs anything: size check, then the
// per-source token bucket (shared by UDP and TCP), then decoding. Over UDP an answer is never
// larger than its query (dns-codec.ts, answerQuery); over TCP connections are capped, idle ones
// closed, and a frame larger than any query is a reason to hang up.
import { createSocket } from 'node:dgram';
import { createServer, isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { answerQuery, frameTcp, TcpFramer } from "../probe/dns-codec.js";
import { AnylatError } from "../util/errors.js";
import { SourceLimiter, sourceKey } from "./stamp.js";
/** The port `anylat reflector --dns` listens on unless told (53 needs root or CAP_NET_BIND_SERVICE). */
export const DEFAULT_DNS_PORT = 8053;
/** Defaults for the DNS part's limits; docs/measurement.md ("Anycast DNS") documents them. */
export const DNS_REFLECTOR_DEFAULTS = {
    /** queries per second accepted from one source (IPv4 address or IPv6 /64), UDP and TCP together */
    ratePerSourceQps: 100,
    /** a query larger than this is dropped (UDP) or ends its connection (TCP) */
    maxQueryBytes: 1232,
    /** open TCP connections per bound address */
    maxTcpConnections: 256,
    /** a TCP connection silent this long is closed (RFC 7766 suggests seconds) */
    tcpIdleMs: 10_000,
    /** rate-limit buckets tracked at once */
    maxSources: 65_536,
};
function where(address, port) {
    return `${isIP(address) === 6 ? `[${address}]` : address}:${port}`;
}
/** Starts the DNS part on every address in `binds`, UDP and TCP on the same port. */
export async function startDnsReflector(options) {
    const log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    const rate = options.ratePerSourceQps ?? DNS_REFLECTOR_DEFAULTS.ratePerSourceQps;
    if (!(rate >= 0) || !Number.isFinite(rate))
        throw new AnylatError('ANYLAT_REFLECTOR_OPTIONS', `DNS reflector: ratePerSourceQps must be >= 0, got ${rate}`, { exitCode: 2 });
    if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65_535) {
        throw new AnylatError('ANYLAT_REFLECTOR_OPTIONS', `DNS reflector: port must be 0-65535, got ${options.port}`, { exitCode: 2 });
    }
    const maxQuery = options.maxQueryBytes ?? DNS_REFLECTOR_DEFAULTS.maxQueryBytes;
    const maxConnections = options.maxTcpConnections ?? DNS_REFLECTOR_DEFAULTS.maxTcpConnections;
    const idleMs = options.tcpIdleMs ?? DNS_REFLECTOR_DEFAULTS.tcpIdleMs;
    const counts = {
        queries: 0,
        answered: 0,
        refused: 0,
        truncated: 0,
        formerr: 0,
        notimp: 0,
        oversize: 0,
        rate_limited: 0,
        dropped: 0,
        send_errors: 0,
        tcp_connections: 0,
        tcp_rejected: 0,
    };
    const limiter = new SourceLimiter(rate / 1000, Math.max(1, rate), DNS_REFLECTOR_DEFAULTS.maxSources);
    /** The answer to one query from `source`, or undefined when it is dropped (and counted). */
    const answer = (query, source, transport) => {
        counts.queries++;
        if (query.length > maxQuery) {
            counts.oversize++;
            return undefined;
        }
        if (!limiter.take(sourceKey(source), performance.now())) {
            counts.rate_limited++;
            return undefined;
        }
        const out = answerQuery(query, options.site, transport);
        if (!out) {
            counts.dropped++;
            return undefined;
        }
        counts[out.verdict === 'dropped' ? 'dropped' : out.verdict]++;
        return out.reply;
    };
    const udpSockets = [];
    const servers = [];
    const connections = new Set();
    const listening = [];
    const closeAll = async () => {
        for (const c of connections)
            c.destroy();
        await Promise.all([
            ...udpSockets.map((s) => new Promise((resolve) => {
                try {
                    s.close(() => resolve());
                }
                catch {
                    resolve();
                }
            })),
            ...servers.map((s) => new Promise((resolve) => s.close(() => resolve()))),
        ]);
    };
    const serveTcp = (socket, perServer) => {
        counts.tcp_connections++;
        perServer.open++;
        connections.add(socket);
        socket.setNoDelay(true);
        socket.setTimeout(idleMs, () => socket.destroy());
        const framer = new TcpFramer(maxQuery);
        const source = socket.remoteAddress ?? '';
        socket.on('data', (chunk) => {
            let messages;
            try {
                messages = framer.push(chunk);
            }
            catch {
                counts.oversize++;
                socket.destroy();
                return;
            }
            for (const m of messages) {
                const reply = answer(m, source, 'tcp');
                if (reply)
                    socket.write(frameTcp(reply));
            }
        });
        socket.on('error', () => socket.destroy());
        socket.on('close', () => {
            perServer.open--;
            connections.delete(socket);
        });
    };
    let port = options.port;
    try {
        for (const address of options.binds) {
            const v6 = isIP(address.split('%')[0]) === 6;
            const udp = createSocket(v6 ? { type: 'udp6', ipv6Only: true } : { type: 'udp4' });
            udpSockets.push(udp);
            await new Promise((resolve, reject) => {
                udp.once('error', reject);
                udp.bind({ port, address, exclusive: true }, () => {
                    udp.off('error', reject);
                    resolve();
                });
            }).catch((err) => {
                throw bindError('UDP', address, port, err);
            });
            if (port === 0)
                port = udp.address().port;
            const local = udp.address();
            udp.on('message', (msg, from) => {
                const reply = answer(msg, from.address, 'udp');
                if (reply) {
                    udp.send(reply, from.port, from.address, (err) => {
                        if (err)
                            counts.send_errors++;
                    });
                }
            });
            udp.on('error', (err) => log(`DNS reflector on UDP ${where(local.address, local.port)}: ${err.message}`));
            const perServer = { open: 0 };
            const server = createServer((socket) => {
                if (perServer.open >= maxConnections) {
                    counts.tcp_rejected++;
                    socket.destroy();
                    return;
                }
                serveTcp(socket, perServer);
            });
            servers.push(server);
            await new Promise((resolve, reject) => {
                server.once('error', reject);
                server.listen({ host: address, port, ipv6Only: v6, exclusive: true }, () => {
                    server.off('error', reject);
                    resolve();
                });
            }).catch((err) => {
                throw bindError('TCP', address, port, err);
            });
            server.on('error', (err) => log(`DNS reflector on TCP ${where(address, port)}: ${err.message}`));
            listening.push({ address: local.address, port: local.port });
        }
    }
    catch (err) {
        await closeAll();
        throw err;
    }
    const sweeper = setInterval(() => limiter.sweep(performance.now()), 10_000);
    sweeper.unref();
    let closing;
    return {
        kind: 'dns',
        listening,
        stats: () => ({ ...counts, tcp_open: connections.size, sources_tracked: limiter.size }),
        close: () => {
            clearInterval(sweeper);
            closing ??= closeAll();
            return closing;
        },
    };
}
function bindError(transport, address, port, err) {
    return new AnylatError('ANYLAT_REFLECTOR_BIND', `DNS reflector: cannot listen on ${transport} ${where(address, port)} (${err.code ?? err.message}); ` +
        (err.code === 'EACCES' ? 'port 53 needs root or CAP_NET_BIND_SERVICE; use the default --dns-port 8053 or grant the capability' : 'check the address is local and the port is free, or choose another --dns-port'), { exitCode: 2, cause: err });
}
