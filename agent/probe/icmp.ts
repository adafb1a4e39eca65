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
import { runPing, type RunningPing } from './ping-runner.ts';
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
  const running = new Set<RunningPing>();

  const sample = (_seq: number): Promise<Attempt> =>
    new Promise<Attempt>((resolve) => {
      const t0 = performance.now();
      let settled = false;
      const ping = runPing(pingPath, args);
      running.add(ping);
      const finish = (attempt: Attempt) => {
        if (settled) return;
        settled = true;
        clearTimeout(guard);
        running.delete(ping);
        resolve(attempt);
      };

      const guard = setTimeout(() => {
        ping.kill();
        finish({ ok: false, t0, t1: performance.now(), values: {}, reason: 'timeout', detail: 'ping did not exit' });
      }, options.timeoutMs + KILL_GRACE_MS);

      void ping.result.then(({ stdout, stderr, spawnError }) => {
        const t1 = performance.now();
        // Anything on stderr, or no output at all, is a failure unless a reply line says otherwise:
        // ping warns on stderr too (e.g. about the source address) while the echo succeeds.
        const err = spawnError ?? (stderr !== '' ? stderr : stdout === '' ? 'ping printed nothing' : undefined);
        const replied = /\btime=([0-9.]+) ms/.exec(stdout);
        if (err !== undefined && !replied) {
          // `connect: Network is unreachable`, `connect: No route to host`: refused by our own stack.
          const reason = /unreachable|no route to host/i.test(err) ? 'unreachable' : 'error';
          finish({ ok: false, t0, t1, values: {}, reason, detail: firstLine(err) || 'ping failed' });
          return;
        }
        // iputils prints time= with 3 significant digits (whole ms from 100 ms up, 0.1 ms from 10 ms),
        // but its summary line with 3 decimals: with one echo sent, its min is that echo's time.
        const summary = replied ? SUMMARY.exec(stdout) : null;
        const rtt = summary ? Number(summary[1]) : replied ? Number(replied[1]) : undefined;
        if (rtt !== undefined && Number.isFinite(rtt)) {
          // Timed by ping's process from kernel timestamps: no lag of ours is in it.
          finish({ ok: true, t0: t1, t1, values: { rtt }, lagWindows: {} });
          return;
        }
        const icmpError = /^From .*?(Destination .*Unreachable|Time to live exceeded|Packet filtered)/im.exec(stdout);
        if (icmpError) {
          finish({ ok: false, t0, t1, values: {}, reason: 'unreachable', detail: icmpError[1] });
          return;
        }
        finish({
          ok: false,
          t0,
          t1,
          values: {},
          reason: 'timeout',
          detail: `no echo reply within ${options.timeoutMs} ms`,
        });
      });
    });

  return {
    metrics: ['rtt'],
    sample,
    async close() {
      for (const p of running) p.kill();
      running.clear();
      return undefined;
    },
  };
}) satisfies ProbeFactory<'icmp'>;
