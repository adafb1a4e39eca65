// The reflector's DNS part: answers CHAOS TXT `hostname.bind` / `id.server` and the EDNS NSID
// option with its site, over UDP and TCP, on every bound address (one socket each, so an answer
// leaves from the address the query was sent to). Everything else is REFUSED; it never recurses.
//
// It faces the internet, so a query pays before it costs anything: size check, then the
// per-source token bucket (shared by UDP and TCP), then decoding. Over UDP an answer is never
// larger than its query (dns-codec.ts, answerQuery); over TCP connections are capped, idle ones
// closed, and a frame larger than any query is a reason to hang up.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { answerQuery, frameTcp, TcpFramer, type QueryVerdict } from '../core/dns-codec.ts';
import { AnylatError, BindError } from '../util/errors.ts';
import { SourceLimiter, sourceKey } from './stamp.ts';
import type { ReflectorCommonOptions, ReflectorPart } from './types.ts';

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
} as const;

export interface DnsReflectorOptions extends ReflectorCommonOptions {
  /** UDP and TCP port on every bound address (0: one free port, the same for both and every address) */
  port: number;
  ratePerSourceQps?: number;
  maxQueryBytes?: number;
  maxTcpConnections?: number;
  tcpIdleMs?: number;
}

type Counters = Record<
  | 'queries'
  | 'oversize'
  | 'rate_limited'
  | 'dropped'
  | 'send_errors'
  | 'tcp_connections'
  | 'tcp_rejected'
  | Exclude<QueryVerdict, 'dropped'>,
  number
>;

function where(address: string, port: number): string {
  return `${isIP(address) === 6 ? `[${address}]` : address}:${port}`;
}

/** Starts the DNS part on every address in `binds`, UDP and TCP on the same port. */
export async function startDnsReflector(options: DnsReflectorOptions): Promise<ReflectorPart> {
  // UDP and TCP share one port number. With port 0 the kernel picks a free UDP port, which another
  // program may hold on TCP: pick again rather than fail (a busy machine hit this in the tests).
  for (let attempt = 1; ; attempt++) {
    try {
      return await listenDns(options);
    } catch (err) {
      const inUse = err instanceof BindError && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
      if (options.port !== 0 || !inUse || attempt >= 10) throw err;
    }
  }
}

async function listenDns(options: DnsReflectorOptions): Promise<ReflectorPart> {
  const rate = options.ratePerSourceQps ?? DNS_REFLECTOR_DEFAULTS.ratePerSourceQps;
  if (!(rate >= 0) || !Number.isFinite(rate))
    throw new AnylatError('ANYLAT_REFLECTOR_OPTIONS', `DNS reflector: ratePerSourceQps must be >= 0, got ${rate}`);
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65_535) {
    throw new AnylatError('ANYLAT_REFLECTOR_OPTIONS', `DNS reflector: port must be 0-65535, got ${options.port}`);
  }
  const reflector = new DnsReflector(options, rate);
  try {
    await reflector.bindAll();
  } catch (err) {
    await reflector.closeAll();
    throw err;
  }
  const { counts, connections, limiter } = reflector;
  const sweeper = setInterval(() => limiter.sweep(performance.now()), 10_000);
  sweeper.unref();
  let closing: Promise<void> | undefined;
  return {
    kind: 'dns',
    listening: reflector.listening,
    stats: () => ({ ...counts, tcp_open: connections.size, sources_tracked: limiter.size }),
    close: () => {
      clearInterval(sweeper);
      closing ??= reflector.closeAll();
      return closing;
    },
  };
}

/** One DNS reflector's sockets, counters and limits. */
class DnsReflector {
  readonly counts: Counters = {
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
  readonly limiter: SourceLimiter;
  readonly connections = new Set<Socket>();
  readonly listening: Array<{ address: string; port: number }> = [];
  private readonly udpSockets: UdpSocket[] = [];
  private readonly servers: Server[] = [];
  private readonly log: (line: string) => void;
  private readonly maxQuery: number;
  private readonly maxConnections: number;
  private readonly idleMs: number;

  constructor(
    private readonly options: DnsReflectorOptions,
    rate: number,
  ) {
    this.log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    this.maxQuery = options.maxQueryBytes ?? DNS_REFLECTOR_DEFAULTS.maxQueryBytes;
    this.maxConnections = options.maxTcpConnections ?? DNS_REFLECTOR_DEFAULTS.maxTcpConnections;
    this.idleMs = options.tcpIdleMs ?? DNS_REFLECTOR_DEFAULTS.tcpIdleMs;
    this.limiter = new SourceLimiter(rate / 1000, Math.max(1, rate), DNS_REFLECTOR_DEFAULTS.maxSources);
  }

  /** The answer to one query from `source`, or undefined when it is dropped (and counted). */
  private answer(query: Buffer, source: string, transport: 'udp' | 'tcp'): Buffer | undefined {
    const counts = this.counts;
    counts.queries++;
    if (query.length > this.maxQuery) {
      counts.oversize++;
      return undefined;
    }
    if (!this.limiter.take(sourceKey(source), performance.now())) {
      counts.rate_limited++;
      return undefined;
    }
    const out = answerQuery(query, this.options.site, transport);
    if (!out) {
      counts.dropped++;
      return undefined;
    }
    counts[out.verdict === 'dropped' ? 'dropped' : out.verdict]++;
    return out.reply;
  }

  async closeAll(): Promise<void> {
    for (const c of this.connections) c.destroy();
    await Promise.all([
      ...this.udpSockets.map(
        (s) =>
          new Promise<void>((resolve) => {
            try {
              s.close(() => resolve());
            } catch {
              resolve();
            }
          }),
      ),
      ...this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
    ]);
  }

  private serveTcp(socket: Socket, perServer: { open: number }): void {
    this.counts.tcp_connections++;
    perServer.open++;
    this.connections.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(this.idleMs, () => socket.destroy());
    const framer = new TcpFramer(this.maxQuery);
    const source = socket.remoteAddress ?? '';
    socket.on('data', (chunk: Buffer) => {
      let messages: Buffer[];
      try {
        messages = framer.push(chunk);
      } catch {
        this.counts.oversize++;
        socket.destroy();
        return;
      }
      for (const m of messages) {
        const reply = this.answer(m, source, 'tcp');
        if (reply) socket.write(frameTcp(reply));
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      perServer.open--;
      this.connections.delete(socket);
    });
  }

  /** UDP and TCP on every bind address, on one port (with port 0, the first UDP socket's). */
  async bindAll(): Promise<void> {
    let port = this.options.port;
    for (let i = 0, attempt = 0; i < this.options.binds.length;) {
      const address = this.options.binds[i]!;
      const v6 = isIP(address.split('%')[0]!) === 6;
      const udp = await this.bindUdp(address, port, v6);
      if (port === 0) port = udp.address().port;
      const local = udp.address();
      const tcpError = await this.listenTcp(address, port, v6);
      if (tcpError) {
        // Port 0: the port UDP picked is taken on TCP here; pick another pair (a few times).
        if (this.options.port === 0 && i === 0 && tcpError.code === 'EADDRINUSE' && attempt < 20) {
          attempt++;
          this.udpSockets.pop();
          this.servers.pop();
          udp.close();
          port = 0;
          continue;
        }
        throw bindError('TCP', address, port, tcpError);
      }
      this.listening.push({ address: local.address, port: local.port });
      i++;
    }
  }

  private async bindUdp(address: string, port: number, v6: boolean): Promise<UdpSocket> {
    const udp = createSocket(v6 ? { type: 'udp6', ipv6Only: true } : { type: 'udp4' });
    this.udpSockets.push(udp);
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ port, address, exclusive: true }, () => {
        udp.off('error', reject);
        resolve();
      });
    }).catch((err: NodeJS.ErrnoException) => {
      throw bindError('UDP', address, port, err);
    });
    const local = udp.address();
    udp.on('message', (msg, from) => {
      const reply = this.answer(msg, from.address, 'udp');
      if (reply) {
        udp.send(reply, from.port, from.address, (err) => {
          if (err) this.counts.send_errors++;
        });
      }
    });
    udp.on('error', (err) => this.log(`DNS reflector on UDP ${where(local.address, local.port)}: ${err.message}`));
    return udp;
  }

  /** A TCP server on the address; its listen error, or undefined when it listens. */
  private async listenTcp(address: string, port: number, v6: boolean): Promise<NodeJS.ErrnoException | undefined> {
    const perServer = { open: 0 };
    const server = createServer((socket) => {
      if (perServer.open >= this.maxConnections) {
        this.counts.tcp_rejected++;
        socket.destroy();
        return;
      }
      this.serveTcp(socket, perServer);
    });
    this.servers.push(server);
    const tcpError = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      server.once('error', resolve);
      server.listen({ host: address, port, ipv6Only: v6, exclusive: true }, () => {
        server.off('error', resolve);
        resolve(undefined);
      });
    });
    if (!tcpError)
      server.on('error', (err) => this.log(`DNS reflector on TCP ${where(address, port)}: ${err.message}`));
    return tcpError;
  }
}

function bindError(transport: string, address: string, port: number, err: NodeJS.ErrnoException): BindError {
  return new BindError(
    `DNS reflector (${transport})`,
    address,
    port,
    err,
    'choose another --dns-port (the default, 8053, needs no privilege) or --bind address',
  );
}
