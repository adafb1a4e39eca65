// The tcp probe: connect time to an IP literal and, when the far end is an anylat reflector, an
// echo on the open connection (the second of two: see echo()). On Linux both are the kernel's own
// RTT samples read from TCP_INFO (tcp-info.ts): connect is the handshake's, the echo is the sample
// the reply's ACK gave, recovered from tcpi_rtt before and after and checked to be the only one.
// Where the kernel cannot say (not Linux, or an echo whose ACK came apart from its reply), the
// monotonic clock times it, and the lag monitor may flag it. Either way, the reflector's own
// turnaround, when it reports one (echo-codec.ts, type 3 replies), is subtracted, as STAMP does.

import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Attempt, LagWindows, Metric } from '../core/model.ts';
import { AnylatError } from '../util/errors.ts';
import {
  ECHO_FLAG_TURNAROUND,
  ECHO_NONCE_SIZE,
  ECHO_REQUEST_SIZE,
  encodeEchoRequest,
  parseEchoReply,
} from '../core/echo-codec.ts';
import {
  delayAcks,
  ECHO_FALLBACKS,
  ECHO_RTT_ROUNDING_US,
  echoRttFromTcpInfo,
  loadTcpInfo,
  readTcpInfo,
  TCP_ESTABLISHED,
  type EchoFallback,
  type TcpInfo,
} from '../net/tcp-info.ts';
import { errorDetail, failureReason } from './outcome.ts';
import { SampleRuns, type SampleRun } from './sample.ts';
import type { ProbeFactory, ProbeTarget, Prober, TcpProbeOptions } from './types.ts';

// Every probe's errors are classified in outcome.ts; these stay importable from here.
export { errorDetail, socketFailureReason } from './outcome.ts';

/** Throws for options no config loader should have let through: a bug, not a target's failure. */
export function checkSocketTarget(
  protocol: string,
  target: ProbeTarget,
  options: { port: number; timeoutMs: number },
): void {
  const where = `${protocol} probe for ${target.endpoint}`;
  if (net.isIP(target.address) === 0) {
    throw new AnylatError(
      'ANYLAT_PROBE_OPTIONS',
      `${where}: address must be an IP literal (resolve names before probing), got "${target.address}"`,
    );
  }
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65_535) {
    throw new AnylatError('ANYLAT_PROBE_OPTIONS', `${where}: port must be an integer 1..65535, got ${options.port}`);
  }
  if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0) {
    throw new AnylatError(
      'ANYLAT_PROBE_OPTIONS',
      `${where}: timeoutMs must be a positive number, got ${options.timeoutMs}`,
    );
  }
}

/** A tcp prober, which also says which clock times `connect`. */
export interface TcpProber extends Prober {
  /**
   * `kernel` when TCP_INFO is readable here; a sample whose SYN was retransmitted, or whose
   * TCP_INFO read fails, is still timed by the monotonic clock.
   */
  readonly connectClock: 'kernel' | 'monotonic';
  /**
   * `kernel` when echoes are timed from TCP_INFO (Linux, `echo` on, `echoClock` not
   * `monotonic`); an echo the kernel has no clean sample for is still timed by the monotonic
   * clock, and counted in `echoTiming()`.
   */
  readonly echoClock: 'kernel' | 'monotonic';
  /** How this prober's echoes were timed so far: by the kernel, or by the monotonic clock and why. */
  echoTiming(): EchoTiming;
}

/**
 * Counts of timed echoes by clock; `fallbacks` says why the kernel could not time the others.
 * `turnaround`: echoes the reflector's turnaround was subtracted from, echoes it could not tell
 * its turnaround for, echoes whose reported turnaround exceeded the round trip by more than the
 * two kernel figures' rounding (not subtracted), and echoes answered by a reflector that does not
 * report it.
 */
export interface EchoTiming {
  kernel: number;
  monotonic: number;
  fallbacks: Record<EchoFallback, number>;
  turnaround: { subtracted: number; unknown: number; rejected: number; unreported: number };
}

// Each side's kernel figure is within ECHO_RTT_ROUNDING_US, and the reflector stamps its write a
// syscall's entry early: a turnaround up to this much longer than the round trip is still rounding.
const TURNAROUND_SLACK_US = 2 * ECHO_RTT_ROUNDING_US + 5;

/**
 * The echo's rtt in ms from the monotonic span, the kernel's sample (when read) and the
 * reflector's turnaround when `asked` (undefined: a reflector that does not report it; null: it
 * could not tell), counting in `timing` how it was arrived at.
 */
function echoRtt(
  spanMs: number,
  kernel: ReturnType<typeof echoRttFromTcpInfo> | undefined,
  asked: boolean,
  turnaroundUs: number | null | undefined,
  timing: EchoTiming,
): { ms: number; kernel: boolean } {
  let ms = spanMs;
  if (kernel?.ok) {
    ms = kernel.us / 1000;
    timing.kernel++;
  } else {
    timing.monotonic++;
    if (kernel) timing.fallbacks[kernel.why]++;
  }
  if (!asked) return { ms, kernel: kernel?.ok === true };
  if (turnaroundUs === undefined) timing.turnaround.unreported++;
  else if (turnaroundUs === null) timing.turnaround.unknown++;
  else if (turnaroundUs > ms * 1000 + TURNAROUND_SLACK_US) timing.turnaround.rejected++;
  else {
    // Both figures are rounded to 7 us: on a path of a few microseconds (loopback) the difference
    // can come out at or below zero, and no round trip is shorter than 1 us.
    ms = Math.max(0.001, ms - turnaroundUs / 1000);
    timing.turnaround.subtracted++;
  }
  return { ms, kernel: kernel?.ok === true };
}

/** Sets up a tcp prober for one target. */
export const createTcpProbe: ProbeFactory<'tcp'> = (target, options) => tcpProber(target, options);

/** What every sample of one tcp prober shares: its settings, translated once. */
interface TcpSetup {
  target: ProbeTarget;
  options: TcpProbeOptions;
  /** connect is timed from TCP_INFO */
  kernel: boolean;
  /** the echo is timed from TCP_INFO */
  kernelEcho: boolean;
  echoFlags: number;
  timing: EchoTiming;
}

/** `createTcpProbe` with its concrete type. */
export function tcpProber(target: ProbeTarget, options: TcpProbeOptions): TcpProber {
  checkSocketTarget('tcp', target, options);
  // Load koffi now, while setting up, so the first sample's event loop is not blocked by it.
  const kernel = (options.connectClock ?? 'kernel') === 'kernel' && loadTcpInfo();
  const bestEcho = options.echo && (options.echoClock ?? 'kernel') === 'kernel';
  const kernelEcho = bestEcho && loadTcpInfo();
  const timing: EchoTiming = {
    kernel: 0,
    monotonic: 0,
    fallbacks: Object.fromEntries(ECHO_FALLBACKS.map((f) => [f, 0])) as Record<EchoFallback, number>,
    turnaround: { subtracted: 0, unknown: 0, rejected: 0, unreported: 0 },
  };
  const echoFlags = bestEcho ? ECHO_FLAG_TURNAROUND : 0;
  const setup: TcpSetup = { target, options, kernel, kernelEcho, echoFlags, timing };
  const runs = new SampleRuns('tcp');
  return {
    metrics: options.echo ? ['connect', 'rtt'] : ['connect'],
    connectClock: kernel ? 'kernel' : 'monotonic',
    echoClock: kernelEcho ? 'kernel' : 'monotonic',
    echoTiming: () => ({ ...timing, fallbacks: { ...timing.fallbacks }, turnaround: { ...timing.turnaround } }),
    sample: (_seq, signal) => sampleTcp(setup, runs, signal),
    close: async () => {
      runs.close();
      return undefined;
    },
  };
}

/** One sample: a fresh connection, timed, then (with `echo`) the timed echo on it. */
function sampleTcp(setup: TcpSetup, runs: SampleRuns, signal: AbortSignal | undefined): Promise<Attempt> {
  const { target, options } = setup;
  let phase: 'connect' | 'echo' = 'connect';
  const timeoutDetail = () =>
    `${phase === 'connect' ? 'no connection' : 'no echo reply'} within ${options.timeoutMs} ms`;
  return runs.run({ timeoutMs: options.timeoutMs, timeoutDetail }, signal, (run) => {
    const values: Partial<Record<Metric, number>> = {};
    // A kernel-timed connect has no window: lag cannot touch it.
    const lagWindows: LagWindows = {};
    run.onFailure((failed) => ({
      ...failed,
      values,
      lagWindows,
      ...(failed.detail !== undefined && phase === 'echo' ? { detail: `echo: ${failed.detail}` } : {}),
    }));
    run.t0 = performance.now();
    const socket = net.connect(
      { host: target.address, port: options.port, autoSelectFamily: false, noDelay: true },
      () => {
        const t1 = timeConnect(setup, socket, run.t0, values, lagWindows);
        if (!options.echo) return run.settle({ ok: true, t0: run.t0, t1, values, lagWindows });
        phase = 'echo';
        // The timed request then carries the ACK of the first reply, which is how the reflector
        // finds the request's arrival in its kernel (reflector/tcp-echo.ts).
        if (setup.kernelEcho) delayAcks(socket);
        timeEcho(setup, socket, run, values, lagWindows);
      },
    );
    run.defer(() => socket.destroy());
    // Errors after the sample settled (a late RST on a socket being destroyed) are nobody's.
    socket.on('error', (err) => run.fail(failureReason(err, 'error'), errorDetail(err)));
  });
}

/** Stamps `connect` in its callback: the kernel's handshake RTT when it has a clean one. Returns the stamp. */
function timeConnect(
  setup: TcpSetup,
  socket: net.Socket,
  t0: number,
  values: Partial<Record<Metric, number>>,
  lagWindows: LagWindows,
): number {
  const t1 = performance.now();
  values.connect = t1 - t0;
  lagWindows.connect = [t1, t1];
  if (setup.kernel) {
    const info = readTcpInfo(socket);
    if (info && info.state === TCP_ESTABLISHED && info.rttUs > 0 && info.totalRetrans === 0) {
      values.connect = info.rttUs / 1000;
      delete lagWindows.connect;
    }
  }
  return t1;
}

// Two echoes on the connection: the first, untimed, carries the site and absorbs whatever a
// TCP-terminating edge (Global Accelerator, the lab's edges) does on a connection's first
// bytes, i.e. open its own connection to the origin; the second, on the established path
// end to end, is the one timed. Timing the first would add the edge's connect to the origin.
function timeEcho(
  setup: TcpSetup,
  socket: net.Socket,
  run: SampleRun,
  values: Partial<Record<Metric, number>>,
  lagWindows: LagWindows,
): void {
  const { kernelEcho, echoFlags } = setup;
  let round = 0;
  let nonce: Buffer = Buffer.alloc(0);
  let request: Buffer = Buffer.alloc(0);
  let received: Buffer = Buffer.alloc(0);
  let tSent = 0;
  let before: TcpInfo | undefined;
  let site: string | undefined;
  const send = (timed: boolean) => {
    nonce = randomBytes(ECHO_NONCE_SIZE);
    request = encodeEchoRequest(nonce, ECHO_REQUEST_SIZE, echoFlags);
    received = Buffer.alloc(0);
    // Read before the write: the request's transmit timestamp is taken inside it.
    if (timed && kernelEcho) before = readTcpInfo(socket);
    tSent = performance.now();
    socket.write(request);
  };
  socket.on('data', (chunk: Buffer) => {
    const t2 = performance.now();
    if (run.settled) return;
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
    const reply = parseEchoReply(received, request.length);
    if (reply.kind === 'need') return;
    if (reply.kind === 'invalid') return run.fail('protocol', `not an anylat echo reply (${reply.why})`, t2);
    if (!reply.nonce.equals(nonce)) return run.fail('protocol', 'the reply carries another nonce', t2);
    if (received.length > reply.length) return run.fail('protocol', 'bytes after the reply', t2);
    if (reply.site !== '') site = reply.site;
    if (round++ === 0) return send(true);
    const kernelSample = kernelEcho
      ? echoRttFromTcpInfo(before, readTcpInfo(socket), request.length, (t2 - tSent) * 1000)
      : undefined;
    const rtt = echoRtt(t2 - tSent, kernelSample, echoFlags !== 0, reply.turnaround, setup.timing);
    values.rtt = rtt.ms;
    // The kernel's sample has kernel timestamps at both ends: event-loop lag cannot reach it.
    if (!rtt.kernel) lagWindows.rtt = [t2, t2];
    const t0 = run.t0;
    run.settle(
      site === undefined
        ? { ok: true, t0, t1: t2, values, lagWindows }
        : { ok: true, t0, t1: t2, values, lagWindows, site },
    );
  });
  socket.on('end', () => run.fail('reset', 'closed by the far end before replying'));
  send(false);
}
