// ICMP echo through the system `ping`, started from a worker thread (ping-runner.ts) so that
// spawning it never blocks the event loop. The value is the round trip ping prints (its
// summary's µs figure, else `time=`), which iputils takes from kernel receive timestamps; the child process's spawn and exit times never
// enter it.
//
// Lag flagging: a successful echo reports t0 = t1 = the instant its result reached us. The value was
// timed by another process and the kernel, so our event loop's lag cannot be in it.
import { accessSync, constants } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Attempt } from '../core/model.ts';
import { EnvironmentError } from '../util/errors.ts';
import { failedAttempt } from './outcome.ts';
import { runPing, type PingRun } from './ping-runner.ts';
import { SampleRuns } from './sample.ts';
import type { IcmpProbeOptions, ProbeFactory, Prober, ProbeTarget } from './types.ts';

/** Where ping lives on Linux (iputils-ping); checked when a prober is set up. */
export const DEFAULT_PING_PATH = '/bin/ping';

/** How long past `timeoutMs` a ping that ignores `-W` may run before it is killed. */
const KILL_GRACE_MS = 1000;

/** iputils' `rtt min/avg/max/mdev = 0.137/…`, BusyBox's `round-trip min/avg/max = …`: min, in µs resolution. */
const SUMMARY = /^(?:rtt|round-trip) min\/avg\/max(?:\/[a-z]+)? = ([0-9]+\.[0-9]+)\//m;

/** `-W` takes seconds; iputils accepts fractions, and rejects 0. */
function waitSeconds(timeoutMs: number): string {
  return String(Math.max(0.001, Math.round(timeoutMs) / 1000));
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]!.trim();
}

function checkBinary(path: string): void {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new EnvironmentError(
      'ANYLAT_NO_PING',
      `icmp probe: no executable ping at ${path}. Install it (Debian/Ubuntu: apt-get install iputils-ping), ` +
        `or leave icmp out of --protocol.`,
    );
  }
}

/** icmp options plus where ping lives (tests and unusual hosts; default `/bin/ping`). */
export interface IcmpProbeSetup extends IcmpProbeOptions {
  pingPath?: string;
}

/**
 * Sets up an ICMP echo prober for one target. Throws `EnvironmentError` (`ANYLAT_NO_PING`) when the
 * ping binary is missing.
 */
export const createIcmpProbe = ((target: ProbeTarget, options: IcmpProbeSetup): Prober => {
  const pingPath = options.pingPath ?? DEFAULT_PING_PATH;
  checkBinary(pingPath);
  const args = ['-n', '-c', '1', '-W', waitSeconds(options.timeoutMs), target.address];
  const runs = new SampleRuns('icmp');
  // ping ends itself after -W; the skeleton's deadline is only for one that does not.
  const sampleOptions = { timeoutMs: options.timeoutMs + KILL_GRACE_MS, timeoutDetail: () => 'ping did not exit' };

  const sample = (_seq: number, signal?: AbortSignal): Promise<Attempt> =>
    runs.run(sampleOptions, signal, (run) => {
      const ping = runPing(pingPath, args);
      let exited = false;
      run.defer(() => {
        if (!exited) ping.kill();
      });
      void ping.result.then((result) => {
        exited = true;
        const t1 = performance.now();
        run.settle(pingOutcome(result, run.t0, t1, options.timeoutMs));
      });
    });

  return {
    metrics: ['rtt'],
    sample,
    async close() {
      runs.close();
      return undefined;
    },
  };
}) satisfies ProbeFactory<'icmp'>;

/** What one ping's output says: its round trip, or why there is none. */
function pingOutcome(result: PingRun, t0: number, t1: number, timeoutMs: number): Attempt {
  const { stdout, stderr, spawnError } = result;
  // Anything on stderr, or no output at all, is a failure unless a reply line says otherwise:
  // ping warns on stderr too (e.g. about the source address) while the echo succeeds.
  const err = spawnError ?? (stderr !== '' ? stderr : stdout === '' ? 'ping printed nothing' : undefined);
  const replied = /\btime=([0-9.]+) ms/.exec(stdout);
  if (err !== undefined && !replied) {
    // `connect: Network is unreachable`, `connect: No route to host`: refused by our own stack.
    const reason = /unreachable|no route to host/i.test(err) ? 'unreachable' : 'error';
    return failedAttempt(t0, t1, reason, firstLine(err) || 'ping failed');
  }
  // iputils prints time= with 3 significant digits (whole ms from 100 ms up, 0.1 ms from 10 ms),
  // but its summary line with 3 decimals: with one echo sent, its min is that echo's time.
  const summary = replied ? SUMMARY.exec(stdout) : null;
  const rtt = summary ? Number(summary[1]) : replied ? Number(replied[1]) : undefined;
  // Timed by ping's process from kernel timestamps: no lag of ours is in it.
  if (rtt !== undefined && Number.isFinite(rtt)) return { ok: true, t0: t1, t1, values: { rtt }, lagWindows: {} };
  const icmpError = /^From .*?(Destination .*Unreachable|Time to live exceeded|Packet filtered)/im.exec(stdout);
  if (icmpError) return failedAttempt(t0, t1, 'unreachable', icmpError[1]);
  return failedAttempt(t0, t1, 'timeout', `no echo reply within ${timeoutMs} ms`);
}
