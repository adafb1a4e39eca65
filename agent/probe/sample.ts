// The one skeleton every probe's sample runs in. It owns the sample's deadline (one timer, from the
// probe's `timeoutMs`), links the round's signal to it (util/abort.ts `linkSignal`: the round's
// signal is long-lived, so never AbortSignal.any), turns either abort into the one outcome
// `timeout`, settles the sample exactly once, and then runs the cleanups the probe registered
// (destroying its sockets, dropping its listeners). A probe's own code only starts the exchange,
// stamps its phases and calls `settle` or `fail`; a throw in it becomes a failed sample (classified
// by outcome.ts, `error` when it is none of a target's failures), as the Prober contract wants (a target's failure is data, never a rejection).
//
// `SampleRuns` is the set of one prober's samples in flight: `close()` ends them (`error`, "probe
// closed"), and a sample asked for after it fails the same way without touching the network.
import { performance } from 'node:perf_hooks';
import type { Attempt, FailureReason } from '../core/model.ts';
import { linkSignal } from '../util/abort.ts';
import { errorDetail, failedAttempt, failureReason } from './outcome.ts';

type Failed = Extract<Attempt, { ok: false }>;

/** One sample in flight, as its probe's code sees it. */
export interface SampleRun {
  /** when the sample started (performance.now()); a probe may move it to its own start stamp */
  t0: number;
  /** aborts when the sample is over, for whatever reason: give it to anything that takes a signal */
  readonly signal: AbortSignal;
  readonly settled: boolean;
  /** runs `cleanup` once the sample has settled (at once when it already has) */
  defer(cleanup: () => void): void;
  /** how this probe's failures carry what the sample measured before failing (values, site, ...) */
  onFailure(shape: (failed: Failed) => Attempt): void;
  /** ends the sample with `attempt`; every later settle or fail is ignored */
  settle(attempt: Attempt): void;
  /** ends the sample as a failure at `t1` (default now) */
  fail(reason: FailureReason, detail?: string, t1?: number): void;
}

/** What the skeleton needs from a probe for one sample. */
export interface SampleOptions {
  timeoutMs: number;
  /** the timeout's `detail`, read when the deadline passes (it may name the phase it was in) */
  timeoutDetail?: () => string | undefined;
}

/**
 * Runs one sample: `body` starts it, and it ends at the first of `run.settle`/`run.fail`, the
 * deadline (`timeout`, decided one turn of the event loop late: after a stall, timers run before
 * I/O, and a reply that arrived in time but was not read yet would otherwise count as a timeout),
 * or `signal` aborting (`timeout` at once: the round gave up on it). Never rejects.
 */
export function runSample(
  options: SampleOptions,
  signal: AbortSignal | undefined,
  body: (run: SampleRun) => void | Promise<void>,
): Promise<Attempt> {
  return new Promise<Attempt>((resolve) => {
    const link = linkSignal(signal, options.timeoutMs);
    const cleanups: Array<() => void> = [];
    let shape = (failed: Failed): Attempt => failed;
    let settled = false;
    const run: SampleRun = {
      t0: performance.now(),
      signal: link.signal,
      get settled() {
        return settled;
      },
      defer(cleanup) {
        if (settled) cleanup();
        else cleanups.push(cleanup);
      },
      onFailure(fn) {
        shape = fn;
      },
      settle(attempt) {
        if (settled) return;
        settled = true;
        link.abort(new DOMException('sample settled', 'AbortError'));
        link.dispose();
        for (const cleanup of cleanups.splice(0)) {
          try {
            cleanup();
          } catch {
            // Releasing a socket is best effort: the sample is already decided.
          }
        }
        resolve(attempt);
      },
      fail(reason, detail, t1 = performance.now()) {
        if (settled) return;
        run.settle(shape(failedAttempt(run.t0, t1, reason, detail)));
      },
    };
    const onAbort = () => {
      if (settled) return;
      if (link.reason === 'timeout') {
        setImmediate(() => run.fail('timeout', options.timeoutDetail?.()));
      } else if (link.reason === 'parent') {
        run.fail('timeout', 'the round stopped waiting for this sample');
      }
    };
    link.signal.addEventListener('abort', onAbort, { once: true });
    if (link.signal.aborted) onAbort();
    try {
      const started = body(run);
      if (started) started.catch((err: unknown) => run.fail(failureReason(err, 'error'), errorDetail(err)));
    } catch (err) {
      run.fail(failureReason(err, 'error'), errorDetail(err));
    }
  });
}

/** One prober's samples in flight, so that `close()` can end them. */
export class SampleRuns {
  private readonly live = new Set<SampleRun>();
  private closed = false;

  /** @param name the protocol, for the "closed" detail */
  constructor(private readonly name: string) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** `runSample`, remembered until it settles; fails at once (`error`) once the prober is closed. */
  run(
    options: SampleOptions,
    signal: AbortSignal | undefined,
    body: (run: SampleRun) => void | Promise<void>,
  ): Promise<Attempt> {
    if (this.closed) {
      const now = performance.now();
      return Promise.resolve(failedAttempt(now, now, 'error', `${this.name} prober is closed`));
    }
    return runSample(options, signal, (run) => {
      this.live.add(run);
      run.defer(() => this.live.delete(run));
      return body(run);
    });
  }

  /** Ends every sample in flight (`error`, `detail`) and refuses new ones. */
  close(detail = 'probe closed'): void {
    this.closed = true;
    for (const run of [...this.live]) run.fail('error', detail);
  }
}
