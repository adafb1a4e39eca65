// The reflector's TCP echo part: answers each echo request frame (agent/core/echo-codec.ts) with
// a reply naming this site, on connections that stay open for as many requests as the sender
// likes. It faces the internet, so every connection is bounded: frames are checked byte by byte
// and garbage closes the connection, the reply is never longer than its request, connections are
// capped in total and per source address, and a connection that completes no request within
// `idleMs` is closed (trickling one byte at a time does not keep it open).
//
// Each connection's ACKs are delayed (TCP_QUICKACK off, Linux): a reply is written at once, so it
// carries the ACK of its request, and the sender's kernel takes one RTT sample from its request
// leaving to this reply arriving, which the tcp probe reads as the echo's rtt. Left to itself the
// kernel acknowledges the first requests of a connection with a bare ACK (quick-ACK mode), and the
// sender's sample would end at that ACK instead: the probe then falls back to its own clock.
//
// A request that asks for it (ECHO_FLAG_TURNAROUND) gets this side's turnaround, from the request's
// arrival in the kernel to the reply's write, which the sender subtracts like STAMP's T3 - T2. Node
// gives no kernel receive time for TCP, so the arrival is found the same way the sender finds its
// round trip: the request also acknowledges the previous reply (the probe delays its ACKs too), so
// the kernel's RTT sample for that reply (tcp-info.ts, echoRttFromTcpInfo) ends at the request's
// arrival: arrival = the previous reply's write + that sample. When the sample is not clean (first
// request of a connection, a bare ACK in between, pipelined requests) the field says "unknown".

import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { ECHO_FLAG_TURNAROUND, encodeEchoReply, parseEchoRequest, setEchoTurnaround } from '../core/echo-codec.ts';
import { delayAcks, echoRttFromTcpInfo, loadTcpInfo, readTcpInfo, type TcpInfo } from '../net/tcp-info.ts';
import { BindError } from '../util/errors.ts';
import type { ReflectorCommonOptions, ReflectorPart } from './types.ts';

export interface TcpEchoOptions extends ReflectorCommonOptions {
  port: number;
  /** open connections across every bound address; default 1024 */
  maxConnections?: number;
  /** open connections from one source address; default 16, 0 = no cap (a relay in front) */
  maxConnectionsPerSource?: number;
  /** close a connection that completes no request for this long; default 10 s */
  idleMs?: number;
}

interface Counters {
  accepted: number;
  active: number;
  echoes: number;
  malformed: number;
  rejected: number;
  idle_closed: number;
  errors: number;
}

/** IPv4-mapped IPv6 sources count as the IPv4 address they are. */
function sourceKey(address: string | undefined): string {
  if (!address) return '?';
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** What every connection of one echo listener shares. */
interface EchoState {
  site: string;
  counters: Counters;
  perSource: Map<string, number>;
  sockets: Set<net.Socket>;
  canDelayAcks: boolean;
  maxConnections: number;
  maxPerSource: number;
  idleMs: number;
}

/** The last reply written for a request that asked for turnaround: when, its length, TCP_INFO before it. */
type LastReply = { at: number; bytes: number; info: TcpInfo | undefined } | undefined;

/** Starts one TCP echo listener per address in `binds`. Rejects when any of them cannot listen. */
export async function startTcpEcho(options: TcpEchoOptions): Promise<ReflectorPart> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const state: EchoState = {
    site: options.site,
    counters: { accepted: 0, active: 0, echoes: 0, malformed: 0, rejected: 0, idle_closed: 0, errors: 0 },
    perSource: new Map(),
    sockets: new Set(),
    // koffi loads once, now, rather than in the first connection's callback.
    canDelayAcks: loadTcpInfo(),
    maxConnections: options.maxConnections ?? 1024,
    maxPerSource: options.maxConnectionsPerSource ?? 16,
    idleMs: options.idleMs ?? 10_000,
  };
  const servers: net.Server[] = [];
  const listening: Array<{ address: string; port: number }> = [];
  try {
    for (const address of options.binds) {
      const server = net.createServer({ noDelay: true }, (socket) => onConnection(state, socket));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        // ipv6Only lets `::` and `0.0.0.0` both be bound on one port.
        server.listen({ host: address, port: options.port, ipv6Only: net.isIPv6(address) }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      server.on('error', (err) => log(`tcp echo on ${address}: ${err.message}`));
      servers.push(server);
      const bound = server.address();
      listening.push({ address, port: typeof bound === 'object' && bound ? bound.port : options.port });
    }
  } catch (err) {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    throw new BindError(
      'tcp echo',
      options.binds[servers.length] ?? '?',
      options.port,
      err,
      'pick another --tcp-port or --bind address, or stop what holds it',
    );
  }

  return {
    kind: 'tcp',
    listening,
    stats: () => ({ ...state.counters }),
    close: async () => {
      const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      for (const socket of state.sockets) socket.destroy();
      await closed;
    },
  };
}

/** Takes a connection in (or turns it away with RST), closes it when idle, and answers its echoes. */
function onConnection(state: EchoState, socket: net.Socket): void {
  const { counters, perSource } = state;
  socket.on('error', () => counters.errors++);
  const source = sourceKey(socket.remoteAddress);
  const fromSource = perSource.get(source) ?? 0;
  // Closing with RST tells a sender at once that it was turned away, and keeps no TIME_WAIT here.
  if (counters.active >= state.maxConnections || (state.maxPerSource > 0 && fromSource >= state.maxPerSource)) {
    counters.rejected++;
    socket.resetAndDestroy();
    return;
  }
  counters.accepted++;
  counters.active++;
  perSource.set(source, fromSource + 1);
  state.sockets.add(socket);
  socket.setNoDelay(true);
  if (state.canDelayAcks) delayAcks(socket);
  const onIdle = () => {
    counters.idle_closed++;
    socket.destroy();
  };
  let idle = setTimeout(onIdle, state.idleMs);
  socket.once('close', () => {
    counters.active--;
    state.sockets.delete(socket);
    const left = (perSource.get(source) ?? 1) - 1;
    if (left <= 0) perSource.delete(source);
    else perSource.set(source, left);
    clearTimeout(idle);
  });
  serveEchoes(state, socket, () => {
    clearTimeout(idle);
    idle = setTimeout(onIdle, state.idleMs);
  });
}

/** Answers every whole request on the connection; a malformed one ends it with RST. */
function serveEchoes(state: EchoState, socket: net.Socket, stillActive: () => void): void {
  let pending: Buffer = Buffer.alloc(0);
  let last: LastReply;
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    // Only the first request of a read can have arrived alone on the previous reply's ACK.
    let first = true;
    for (;;) {
      const request = parseEchoRequest(pending);
      if (request.kind === 'need') return;
      if (request.kind === 'invalid') {
        state.counters.malformed++;
        pending = Buffer.alloc(0);
        socket.resetAndDestroy();
        return;
      }
      pending = pending.subarray(request.length);
      state.counters.echoes++;
      stillActive();
      let flushed: boolean;
      ({ flushed, last } = answer(state, socket, request, first ? last : undefined));
      first = false;
      // After the write, so it costs the reply nothing: the kernel leaves ping-pong mode when a
      // reply was later than its delayed-ACK timer, and the next request would get a bare ACK.
      if (state.canDelayAcks) delayAcks(socket);
      // A sender that does not read its replies stops being read: TCP pushes back on it.
      if (!flushed && !socket.isPaused()) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    }
  });
}

/**
 * Writes the reply to one request, with its turnaround when asked and the kernel can tell it:
 * `previous` (the reply before, when this request was the first of its read) anchors the request's
 * arrival on the previous reply's ACK.
 */
function answer(
  state: EchoState,
  socket: net.Socket,
  request: { nonce: Buffer; length: number; flags: number },
  previous: LastReply,
): { flushed: boolean; last: LastReply } {
  const wantsTurnaround = (request.flags & ECHO_FLAG_TURNAROUND) !== 0;
  const reply = encodeEchoReply(request.nonce, state.site, request.length, wantsTurnaround);
  if (!wantsTurnaround || !state.canDelayAcks) return { flushed: socket.write(reply), last: undefined };
  let arrival: number | undefined;
  if (previous) {
    const now = performance.now();
    const k = echoRttFromTcpInfo(previous.info, readTcpInfo(socket), previous.bytes, (now - previous.at) * 1000);
    if (k.ok) arrival = previous.at + k.us / 1000;
  }
  const info = readTcpInfo(socket);
  const at = performance.now();
  if (arrival !== undefined) setEchoTurnaround(reply, (at - arrival) * 1000);
  const flushed = socket.write(reply);
  // Queued behind earlier bytes, the reply leaves later than `at`: no anchor then.
  return { flushed, last: socket.writableLength === 0 ? { at, bytes: reply.length, info } : undefined };
}
