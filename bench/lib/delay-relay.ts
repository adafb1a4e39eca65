// A UDP + TCP relay on its own loopback address that holds every datagram and every byte chunk for
// a fixed time in each direction: a "far" path with a known extra round trip of 2 × delay, without
// netem. UDP replies leave from the relay's own socket, so a connected client accepts them.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * Releases items in arrival order, each `delayMs` after it arrived (a timer's resolution later at
 * worst: what was actually held is recorded, so a test can compare with what the relay really
 * added). Plain timers, no busy polling: a spinning relay would steal the CPU from the process
 * being measured and make its own event loop lag.
 */
class DelayLine<T> {
  private readonly queue: Array<{ due: number; at: number; item: T }> = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly delayMs: number,
    private readonly release: (item: T) => void,
    /** receives how long each released item was actually held, ms */
    private readonly held: number[],
  ) {}

  push(item: T): void {
    if (this.closed) return;
    const at = performance.now();
    this.queue.push({ due: at + this.delayMs, at, item });
    if (!this.timer) this.pump();
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
    if (this.timer) clearTimeout(this.timer);
  }

  private pump(): void {
    this.timer = undefined;
    if (this.closed) return;
    const now = performance.now();
    while (this.queue.length > 0 && this.queue[0]!.due <= now) {
      const { at, item } = this.queue.shift()!;
      this.held.push(now - at);
      this.release(item);
    }
    if (this.queue.length > 0) this.timer = setTimeout(() => this.pump(), this.queue[0]!.due - now);
  }
}

export interface DelayRelayOptions {
  /** loopback address the relay listens on, e.g. 127.0.0.2 */
  listen: string;
  /** where it forwards to, e.g. 127.0.0.1 */
  target: string;
  /** hold in each direction, ms */
  delayMs: number;
  /** UDP port: listened on `listen`, forwarded to the same port on `target` */
  udpPort?: number;
  /** TCP port: listened on `listen`, forwarded to the same port on `target` */
  tcpPort?: number;
}

export interface DelayRelay {
  /** datagrams and TCP chunks relayed, both directions */
  counts: { udp: number; tcp: number };
  /** how long each datagram / chunk was actually held, per protocol and direction (ms) */
  held: { udp: { up: number[]; down: number[] }; tcp: { up: number[]; down: number[] } };
  close(): Promise<void>;
}

/** What the UDP and TCP halves share: the options, and the counters they report into. */
interface RelayContext {
  options: DelayRelayOptions;
  counts: DelayRelay['counts'];
  held: DelayRelay['held'];
}

/** Starts the relay; close it in `after`. */
export async function startDelayRelay(options: DelayRelayOptions): Promise<DelayRelay> {
  const counts = { udp: 0, tcp: 0 };
  const held: DelayRelay['held'] = { udp: { up: [], down: [] }, tcp: { up: [], down: [] } };
  const ctx: RelayContext = { options, counts, held };
  const closers: Array<() => Promise<void>> = [];
  if (options.udpPort !== undefined) closers.push(await startUdpRelay(ctx, options.udpPort));
  if (options.tcpPort !== undefined) closers.push(await startTcpRelay(ctx, options.tcpPort));
  return {
    counts,
    held,
    close: async () => {
      await Promise.all(closers.map((c) => c()));
    },
  };
}

/** Listens on `port` and relays each client's datagrams; returns what closes it. */
async function startUdpRelay(ctx: RelayContext, port: number): Promise<() => Promise<void>> {
  const { options, counts, held } = ctx;
  const front = createSocket('udp4');
  // One upstream socket per client, so replies find their way back to the right client.
  const upstreams = new Map<string, { socket: Socket; line: DelayLine<Buffer> }>();
  const back = new DelayLine<{ msg: Buffer; to: RemoteInfo }>(
    options.delayMs,
    ({ msg, to }) => {
      counts.udp++;
      front.send(msg, to.port, to.address);
    },
    held.udp.down,
  );
  front.on('message', (msg, from) => {
    const key = `${from.address}:${from.port}`;
    let up = upstreams.get(key);
    if (!up) {
      up = udpUpstream(ctx, port, (reply) => back.push({ msg: reply, to: from }));
      upstreams.set(key, up);
    }
    up.line.push(msg);
  });
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.bind(port, options.listen, () => resolve());
  });
  return async () => {
    back.close();
    for (const { socket, line } of upstreams.values()) {
      line.close();
      socket.close();
    }
    await new Promise<void>((resolve) => front.close(() => resolve()));
  };
}

/** One client's socket towards the target, with the line that holds what the client sends. */
function udpUpstream(
  ctx: RelayContext,
  port: number,
  onReply: (reply: Buffer) => void,
): { socket: Socket; line: DelayLine<Buffer> } {
  const socket = createSocket('udp4');
  socket.on('message', onReply);
  socket.on('error', () => {});
  const line = new DelayLine<Buffer>(
    ctx.options.delayMs,
    (m) => {
      ctx.counts.udp++;
      socket.send(m, port, ctx.options.target);
    },
    ctx.held.udp.up,
  );
  return { socket, line };
}

/** Listens on `port` and relays each connection's bytes; returns what closes it. */
async function startTcpRelay(ctx: RelayContext, port: number): Promise<() => Promise<void>> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (client) => relayConnection(ctx, port, client, sockets));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ctx.options.listen, () => resolve());
  });
  return async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}

/** Connects `client` to the target and holds the bytes both ways; either side ending ends both. */
function relayConnection(ctx: RelayContext, port: number, client: net.Socket, sockets: Set<net.Socket>): void {
  const { options, counts, held } = ctx;
  const upstream = net.connect({ host: options.target, port, noDelay: true });
  sockets.add(client);
  sockets.add(upstream);
  const toUp = new DelayLine<Buffer>(
    options.delayMs,
    (chunk) => {
      counts.tcp++;
      if (!upstream.destroyed) upstream.write(chunk);
    },
    held.tcp.up,
  );
  const toClient = new DelayLine<Buffer>(
    options.delayMs,
    (chunk) => {
      counts.tcp++;
      if (!client.destroyed) client.write(chunk);
    },
    held.tcp.down,
  );
  client.on('data', (c) => toUp.push(c));
  upstream.on('data', (c) => toClient.push(c));
  const end = () => {
    toUp.close();
    toClient.close();
    client.destroy();
    upstream.destroy();
    sockets.delete(client);
    sockets.delete(upstream);
  };
  for (const s of [client, upstream]) {
    s.on('error', end);
    s.on('close', end);
  }
}
