// The sink drains one agent's outbox to InfluxDB, oldest line first, in batches. Lines leave the
// outbox only after InfluxDB answered 2xx (acknowledged) or after it refused that very line as
// malformed (dead letter). Everything else (unreachable, timeouts, 5xx, 429, a refused token)
// keeps the lines and backs off. A refused batch is bisected so that only the lines the server
// refuses on their own become dead letters and the rest of the batch, and everything behind it,
// keeps flowing. Re-sending a line InfluxDB already has is harmless: same series, same timestamp,
// same values, so the point overwrites itself.
import type { OutboxEntry, Store } from '../store/store.ts';
import { Backoff, type BackoffOptions } from './backoff.ts';
import { InfluxWriter, type InfluxTarget, type WriteOutcome } from './influx-writer.ts';

export interface SinkOptions {
  store: Store;
  /** the agent whose outbox lines this sink sends (several agents may share one store) */
  agent: string;
  influx: InfluxTarget;
  /** lines per request; default 5000 */
  batchLines?: number;
  backoff?: BackoffOptions;
  /** when idle, look for new lines this often; `notify()` wakes it sooner; default 1000 ms */
  idlePollMs?: number;
  log?: (line: string) => void;
  /** called after InfluxDB acknowledged entries, in outbox order */
  onDelivered?: (entries: readonly OutboxEntry[]) => void;
}

export type SinkState = 'stopped' | 'idle' | 'sending' | 'backoff';

/** What the heartbeat and the dashboard show about delivery. No secrets in here. */
export interface SinkStatus {
  state: SinkState;
  target: string;
  /** lines waiting in the outbox for this agent */
  outboxRows: number;
  /** dead letters kept for this agent */
  deadLetters: number;
  /** lines acknowledged / dead-lettered by this sink since it was created */
  delivered: number;
  deadLettered: number;
  consecutiveFailures: number;
  lastError?: string;
  lastErrorAt?: string;
  lastDeliveryAt?: string;
  nextAttemptAt?: string;
  /** lines in the last batch sent */
  lastBatchLines: number;
  /** failed attempts and refused lines since the sink was created, by class (see errorClass) */
  errors: Record<SinkErrorClass, number>;
}

/** Why a write failed, in words an operator alerts on; low-cardinality, for metrics labels. */
export const SINK_ERROR_CLASSES = ['unreachable', 'timeout', 'auth', 'not_found', 'throttled', 'server', 'rejected', 'store'] as const;
export type SinkErrorClass = (typeof SINK_ERROR_CLASSES)[number];

/** The class of a failed write: by the HTTP status when InfluxDB answered, else by what failed. */
export function errorClass(outcome: { kind: 'retry' | 'reject'; status?: number; message: string }, fromStore = false): SinkErrorClass {
  if (fromStore) return 'store';
  if (outcome.kind === 'reject') return 'rejected';
  const status = outcome.status;
  if (status === undefined) return outcome.message.startsWith('no answer') ? 'timeout' : 'unreachable';
  if (status === 401 || status === 403) return 'auth';
  if (status === 404) return 'not_found';
  if (status === 429) return 'throttled';
  if (status === 408) return 'timeout';
  return 'server';
}

export interface DrainResult {
  /** lines acknowledged during the drain */
  delivered: number;
  /** lines still in the outbox when it ended (kept for the next start) */
  remaining: number;
  /** `empty`: everything went; `deadline`: time ran out first */
  ended: 'empty' | 'deadline';
}

const FAILURE_LOG_EVERY_MS = 60_000;

export class Sink {
  private readonly store: Store;
  private readonly agent: string;
  private readonly writer: InfluxWriter;
  private readonly batchLines: number;
  private readonly idlePollMs: number;
  private readonly backoff: Backoff;
  private readonly log: (line: string) => void;
  private readonly onDelivered: ((entries: readonly OutboxEntry[]) => void) | undefined;

  private state: SinkState = 'stopped';
  private loop: Promise<void> | undefined;
  // One controller for both ways to end the loop (stop, drain deadline), so a request already in
  // flight when drain() is called is still cut off at the drain's bound.
  private haltCtl = new AbortController();
  private draining = false;
  private wake: (() => void) | undefined;
  private delivered = 0;
  private deadLettered = 0;
  private lastError: string | undefined;
  private lastErrorAt: number | undefined;
  private lastFailureLog = Number.NEGATIVE_INFINITY;
  private lastDeliveryAt: number | undefined;
  private nextAttemptAt: number | undefined;
  private lastBatchLines = 0;
  private readonly errors = Object.fromEntries(SINK_ERROR_CLASSES.map((c) => [c, 0])) as Record<SinkErrorClass, number>;

  constructor(options: SinkOptions) {
    this.store = options.store;
    this.agent = options.agent;
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.writer = new InfluxWriter(options.influx, this.log);
    this.batchLines = Math.max(1, options.batchLines ?? 5000);
    this.idlePollMs = options.idlePollMs ?? 1000;
    this.backoff = new Backoff(options.backoff);
    this.onDelivered = options.onDelivered;
  }

  /** Starts draining in the background. Idempotent. */
  start(): void {
    if (this.loop !== undefined || this.draining) return;
    this.haltCtl = new AbortController();
    this.state = 'idle';
    this.loop = this.guarded();
  }

  /** New lines are in the outbox: send them now instead of at the next poll (not during backoff). */
  notify(): void {
    if (this.state === 'idle') this.wake?.();
  }

  /**
   * For shutdown: sends what InfluxDB takes within `withinMs` (an outage is retried, with
   * backoff, until then), aborts an unanswered request at the bound, then stops the sink. Lines
   * not acknowledged stay in the outbox for the next start. Never rejects.
   */
  async drain(withinMs: number): Promise<DrainResult> {
    const before = this.delivered;
    this.draining = true;
    if (this.loop === undefined) {
      this.haltCtl = new AbortController();
      this.loop = this.guarded();
    }
    const halt = this.haltCtl;
    const timer = setTimeout(() => {
      halt.abort();
      this.wake?.();
    }, Math.max(0, withinMs));
    // Waiting out a backoff makes no sense now: try at once.
    this.wake?.();
    await this.loop;
    clearTimeout(timer);
    this.loop = undefined;
    this.draining = false;
    const remaining = this.store.outboxRows(this.agent);
    return { delivered: this.delivered - before, remaining, ended: remaining === 0 ? 'empty' : 'deadline' };
  }

  /** Stops at once: aborts a request in flight (its lines stay in the outbox). Never rejects. */
  async stop(): Promise<void> {
    this.haltCtl.abort();
    this.wake?.();
    if (this.loop !== undefined) await this.loop;
    this.loop = undefined;
  }

  status(): SinkStatus {
    const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
    const s: SinkStatus = {
      state: this.state,
      target: this.writer.target,
      outboxRows: this.store.outboxRows(this.agent),
      deadLetters: this.store.deadLetters(this.agent),
      delivered: this.delivered,
      deadLettered: this.deadLettered,
      consecutiveFailures: this.backoff.failures,
      lastBatchLines: this.lastBatchLines,
      errors: { ...this.errors },
    };
    const optional = {
      lastError: this.lastError,
      lastErrorAt: iso(this.lastErrorAt),
      lastDeliveryAt: iso(this.lastDeliveryAt),
      nextAttemptAt: this.state === 'backoff' ? iso(this.nextAttemptAt) : undefined,
    };
    for (const [k, v] of Object.entries(optional)) if (v !== undefined) (s as unknown as Record<string, string>)[k] = v;
    return s;
  }

  private get halted(): boolean {
    return this.haltCtl.signal.aborted;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  // Nobody may await the loop (start() without drain/stop), so it must never reject.
  private async guarded(): Promise<void> {
    try {
      await this.run();
    } catch (err) {
      this.state = 'stopped';
      this.lastError = `sink stopped: ${this.writer.clean(err)}`;
      this.lastErrorAt = Date.now();
      this.log(`sink: stopped by an unexpected error: ${this.writer.clean(err)}`);
    }
  }

  // The loop never throws: a store error (say, a disk that filled up) is logged and retried with
  // backoff like an outage, so the sink cannot die silently while the agent keeps measuring.
  private async run(): Promise<void> {
    while (!this.halted) {
      let outcome: WriteOutcome | undefined;
      let storeFailed = false;
      try {
        const batch = this.store.readOutbox(this.batchLines, { agent: this.agent });
        if (batch.length === 0) {
          if (this.draining) break;
          this.state = 'idle';
          await this.sleep(this.idlePollMs);
          continue;
        }
        this.state = 'sending';
        this.lastBatchLines = batch.length;
        outcome = await this.deliver(batch, this.haltCtl.signal, true);
      } catch (err) {
        storeFailed = true;
        outcome = { kind: 'retry', message: `store error while sending: ${this.writer.clean(err)}` };
      }
      if (outcome.kind === 'aborted') break;
      if (outcome.kind === 'retry') {
        this.errors[errorClass(outcome, storeFailed)]++;
        this.failed(outcome.message, this.backoff.next(outcome.retryAfterMs));
        await this.sleep(this.nextAttemptAt! - Date.now());
      } else if (this.backoff.failures > 0) {
        this.log(`sink: InfluxDB at ${this.writer.target} accepts writes again after ${this.backoff.failures} failed attempts`);
        this.backoff.reset();
      }
    }
    this.state = 'stopped';
  }

  private failed(message: string, delayMs: number): void {
    const now = Date.now();
    this.state = 'backoff';
    this.lastError = message;
    this.lastErrorAt = now;
    this.nextAttemptAt = now + delayMs;
    if (this.backoff.failures === 1 || now - this.lastFailureLog >= FAILURE_LOG_EVERY_MS) {
      this.lastFailureLog = now;
      let queued = 'the';
      try {
        queued = String(this.store.outboxRows(this.agent));
      } catch {
        // the store is what failed; the message says so already
      }
      this.log(`sink: ${message}; ${queued} lines kept in the outbox, retrying in ${(delayMs / 1000).toFixed(1)} s (attempt ${this.backoff.failures})`);
    }
  }

  /** Sends `entries`; on a malformed-data refusal, bisects until single lines are refused. */
  private async deliver(entries: OutboxEntry[], signal: AbortSignal, top: boolean): Promise<WriteOutcome> {
    const res = await this.writer.write(
      entries.map((e) => e.line),
      signal,
    );
    if (res.kind === 'ok') {
      this.store.ack(entries.map((e) => e.id));
      this.delivered += entries.length;
      this.lastDeliveryAt = Date.now();
      this.onDelivered?.(entries);
      return res;
    }
    if (res.kind !== 'reject') return res;
    if (entries.length === 1) {
      const entry = entries[0]!;
      this.store.deadLetter([entry.id], res.message, res.status);
      this.deadLettered++;
      this.errors.rejected++;
      this.lastError = `InfluxDB refused a line as malformed (${res.message}); it is in the dead letters`;
      this.lastErrorAt = Date.now();
      this.log(`sink: InfluxDB refused outbox line ${entry.id} (${res.message}); moved it to the dead letters: ${entry.line.slice(0, 200)}`);
      return { kind: 'ok', status: res.status };
    }
    if (top) this.log(`sink: InfluxDB refused a batch of ${entries.length} lines (${res.message}); bisecting to find the refused lines`);
    const mid = entries.length >> 1;
    const left = await this.deliver(entries.slice(0, mid), signal, false);
    if (left.kind !== 'ok') return left;
    return this.deliver(entries.slice(mid), signal, false);
  }
}
