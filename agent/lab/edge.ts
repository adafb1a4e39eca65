// An accelerator edge: holds the anycast address, terminates TCP (accepts on the anycast address,
// opens its own connection to the serving origin, splices the two) and relays UDP (one upstream
// socket per client, replies sent from the anycast address the client asked). The serving origin
// is asked for per new flow, so a failover moves new TCP connections and the next UDP packet of
// every client; established TCP connections stay where they are, as on Global Accelerator.
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';

/** Where traffic goes now; undefined when no origin is up. */
export type OriginChooser = () => { name: string; address: string } | undefined;

export interface EdgeOptions {
  anycast: string;
  udpPorts: number[];
  tcpPorts: number[];
  origin: OriginChooser;
  /** UDP flows idle this long are forgotten (default 60 s) */
  udpIdleMs?: number;
  /** UDP flows tracked at once; the least recently used goes first (default 4096) */
  maxUdpFlows?: number;
  /** give up on an origin that does not accept a TCP connection within this (default 5 s) */
  connectTimeoutMs?: number;
  log?: (line: string) => void;
}

interface UdpFlow {
  upstream: UdpSocket;
  origin: string;
  address: string;
  lastSeen: number;
}

/** Counters for `lab status` and tests. */
export interface EdgeStats {
  udpIn: number;
  udpOut: number;
  udpDropped: number;
  tcpAccepted: number;
  tcpFailed: number;
  tcpOpen: number;
}

/** A running edge. */
export interface Edge {
  stats(): EdgeStats;
  close(): Promise<void>;
}

/** What the listeners of one edge share: its options, counters, UDP flows and open TCP sockets. */
interface EdgeContext {
  opts: EdgeOptions;
  log: (line: string) => void;
  maxFlows: number;
  connectTimeoutMs: number;
  stats: EdgeStats;
  flows: Map<string, UdpFlow>;
  sockets: Set<Socket>;
}

/** Starts an edge's listeners; resolves once every one is bound. */
export async function startEdge(opts: EdgeOptions): Promise<Edge> {
  const idleMs = opts.udpIdleMs ?? 60_000;
  const ctx: EdgeContext = {
    opts,
    log: opts.log ?? ((line: string) => process.stderr.write(`${line}\n`)),
    maxFlows: opts.maxUdpFlows ?? 4096,
    connectTimeoutMs: opts.connectTimeoutMs ?? 5000,
    stats: { udpIn: 0, udpOut: 0, udpDropped: 0, tcpAccepted: 0, tcpFailed: 0, tcpOpen: 0 },
    flows: new Map<string, UdpFlow>(),
    sockets: new Set<Socket>(),
  };
  const servers: Server[] = [];
  const fronts: UdpSocket[] = [];

  for (const port of opts.udpPorts) fronts.push(await bindUdpFront(ctx, port));
  const sweep = setInterval(
    () => {
      const cutoff = Date.now() - idleMs;
      for (const [key, f] of ctx.flows) if (f.lastSeen < cutoff) closeFlow(ctx, key);
    },
    Math.min(idleMs, 10_000),
  );
  sweep.unref();

  for (const port of opts.tcpPorts) servers.push(await listenTcp(ctx, port));

  return {
    stats: () => ({ ...ctx.stats }),
    close: async () => {
      clearInterval(sweep);
      for (const key of [...ctx.flows.keys()]) closeFlow(ctx, key);
      for (const s of ctx.sockets) s.destroy();
      await Promise.all([
        ...servers.map((s) => new Promise<void>((r) => s.close(() => r()))),
        ...fronts.map((f) => new Promise<void>((r) => f.close(() => r()))),
      ]);
    },
  };
}

function closeFlow({ flows }: EdgeContext, key: string): void {
  const f = flows.get(key);
  if (!f) return;
  flows.delete(key);
  f.upstream.close();
}

/** Binds the anycast address's UDP `port`; resolves once it is bound. */
async function bindUdpFront(ctx: EdgeContext, port: number): Promise<UdpSocket> {
  const { opts, log } = ctx;
  const front = createSocket('udp4');
  front.on('message', (msg: Buffer, rinfo: RemoteInfo) => relayUdp(ctx, front, port, msg, rinfo));
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.bind(port, opts.anycast, () => {
      front.off('error', reject);
      front.on('error', (err) => log(`udp ${opts.anycast}:${port}: ${err.message}`));
      resolve();
    });
  });
  return front;
}

/** Passes one client datagram to the serving origin, over the client's flow to it. */
function relayUdp(ctx: EdgeContext, front: UdpSocket, port: number, msg: Buffer, rinfo: RemoteInfo): void {
  const { opts, stats, flows } = ctx;
  stats.udpIn++;
  const origin = opts.origin();
  if (!origin) {
    stats.udpDropped++;
    return;
  }
  // Per edge port as well: the kernel soon reuses a client's source port for a new socket,
  // and a DNS query from a port a STAMP probe just used is a flow of its own (sharing the
  // STAMP flow, its answers were dropped: the flow only passes replies from its own port).
  const key = `${port} ${rinfo.address}:${rinfo.port}`;
  let flow = flows.get(key);
  if (flow && flow.origin !== origin.name) {
    closeFlow(ctx, key);
    flow = undefined;
  }
  if (!flow) {
    if (flows.size >= ctx.maxFlows) closeFlow(ctx, flows.keys().next().value as string);
    flow = openUdpFlow(ctx, front, port, key, origin, rinfo);
  }
  // Map order is least-recently-used first: re-insert on every packet.
  flows.delete(key);
  flows.set(key, flow);
  flow.lastSeen = Date.now();
  flow.upstream.send(msg, port, flow.address);
}

function openUdpFlow(
  ctx: EdgeContext,
  front: UdpSocket,
  port: number,
  key: string,
  origin: { name: string; address: string },
  rinfo: RemoteInfo,
): UdpFlow {
  const upstream = createSocket('udp4');
  const created: UdpFlow = { upstream, origin: origin.name, address: origin.address, lastSeen: 0 };
  upstream.on('message', (reply: Buffer, from: RemoteInfo) => {
    // Only the origin's own replies go back, from the anycast address the client used.
    if (from.address !== created.address || from.port !== port) return;
    ctx.stats.udpOut++;
    front.send(reply, rinfo.port, rinfo.address);
  });
  upstream.on('error', (err) => {
    ctx.log(`udp flow ${key} -> ${origin.name}: ${err.message}`);
    closeFlow(ctx, key);
  });
  return created;
}

/** Listens on the anycast address's TCP `port`; resolves once it listens. */
async function listenTcp(ctx: EdgeContext, port: number): Promise<Server> {
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => spliceTcp(ctx, port, client));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ctx.opts.anycast, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** Connects an accepted client to the serving origin and splices the two connections. */
function spliceTcp(ctx: EdgeContext, port: number, client: Socket): void {
  const { stats, sockets, connectTimeoutMs, log } = ctx;
  stats.tcpAccepted++;
  stats.tcpOpen++;
  sockets.add(client);
  const origin = ctx.opts.origin();
  if (!origin) {
    stats.tcpFailed++;
    stats.tcpOpen--;
    sockets.delete(client);
    client.resetAndDestroy();
    return;
  }
  const upstream = connect({ host: origin.address, port, allowHalfOpen: true, noDelay: true });
  sockets.add(upstream);
  let connected = false;
  const timer = setTimeout(() => {
    if (!connected)
      upstream.destroy(
        new Error(`no answer from ${origin.name} (${origin.address}:${port}) within ${connectTimeoutMs} ms`),
      );
  }, connectTimeoutMs);
  upstream.once('connect', () => {
    connected = true;
    clearTimeout(timer);
  });
  let done = false;
  const finish = (err?: Error) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    stats.tcpOpen--;
    sockets.delete(client);
    sockets.delete(upstream);
    if (err && !connected) {
      // The origin never answered: the client sees a reset, as from an edge with no endpoint.
      stats.tcpFailed++;
      log(`tcp ${client.remoteAddress}:${client.remotePort} -> ${origin.name}: ${err.message}`);
      client.resetAndDestroy();
      upstream.destroy();
      return;
    }
    client.destroy();
    upstream.destroy();
  };
  client.on('error', finish);
  upstream.on('error', finish);
  // Each FIN is passed on by pipe (allowHalfOpen); a side closes once both directions ended.
  client.on('close', () => finish());
  upstream.on('close', () => finish());
  client.pipe(upstream);
  upstream.pipe(client);
}
