// The sink drains one agent's outbox to InfluxDB, oldest line first, in batches. Lines leave the
// outbox only after InfluxDB answered 2xx (acknowledged) or after that very line was proven to be
// what the server refuses (dead letter). Everything else (unreachable, timeouts, 5xx, 429, a
// refused token) keeps the lines and backs off. A refused batch is bisected; a line refused on its
// own is only a suspect until the server accepts the rest of its batch without it (then the line is
// the cause), because a proxy or an InfluxDB that refuses everything for a few seconds refuses
// every line on its own too. A line refused alone again and again over minutes goes as well. A
// timed-out write halves the batch (down to a floor) and successes grow it back, so a slow server
// gets smaller batches instead of the same one again. A batch that keeps drawing 5xx for
// `setAsideAfterMs` is bisected the same way, so one line the server chokes on cannot hold up the
// rest forever. Re-sending a line InfluxDB already has is harmless: same series, same timestamp,
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
  /** after timeouts the batch halves down to this many lines; default 100 (or batchLines if less) */
  minBatchLines?: number;
  /** successful writes in a row before a halved batch doubles again; default 5 */
  growAfter?: number;
  /** a batch that draws 5xx this long is bisected and the lines refused alone set aside; default 1 h */
  setAsideAfterMs?: number;
  /** a line refused alone on this many attempts, spread over at least `refusalWindowMs`, is a dead letter even unproven; default 3 */
  refusalsToDeadLetter?: number;
  /** default 2 min */
  refusalWindowMs?: number;
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
  /** lines per request now: smaller than configured after timeouts */
  batchLines: number;
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
export const SINK_ERROR_CLASSES = [
  'unreachable',
  'timeout',
  'auth',
  'not_found',
  'throttled',
  'server',
  'rejected',
  'store',
] as const;
export type SinkErrorClass = (typeof SINK_ERROR_CLASSES)[number];

/** The class of a failed write: by the HTTP status when InfluxDB answered, else by what failed. */
export function errorClass(
  outcome: { kind: 'retry' | 'reject'; status?: number; message: string },
  fromStore = false,
): SinkErrorClass {
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

/** A request's answer that refuses its lines: 4xx malformed, or 5xx once a batch is set aside. */
type Refusal = { kind: 'reject'; status: number; message: string } | { kind: 'retry'; status: number; message: string };

interface RefusalRecord {
  count: number;
  firstAt: number;
}

export class Sink {
  private readonly store: Store;
  private readonly agent: string;
  private readonly writer: InfluxWriter;
  private readonly maxBatchLines: number;
  private readonly minBatchLines: number;
  private readonly growAfter: number;
  private readonly setAsideAfterMs: number;
  private readonly refusalsToDeadLetter: number;
  private readonly refusalWindowMs: number;
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
  private batchSize: number;
  private successesAtSize = 0;
  /** when the batch at the head of the outbox first drew a 5xx, until a write succeeds */
  private fiveHundredsSince: number | undefined;
  /** lines refused on their own and not (yet) proven the cause, by outbox id */
  private readonly refusals = new Map<number, RefusalRecord>();

  constructor(options: SinkOptions) {
    this.store = options.store;
    this.agent = options.agent;
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.writer = new InfluxWriter(options.influx, this.log);
    this.maxBatchLines = Math.max(1, options.batchLines ?? 5000);
    this.minBatchLines = Math.min(this.maxBatchLines, Math.max(1, options.minBatchLines ?? 100));
    this.batchSize = this.maxBatchLines;
    this.growAfter = Math.max(1, options.growAfter ?? 5);
    this.setAsideAfterMs = options.setAsideAfterMs ?? 3_600_000;
    this.refusalsToDeadLetter = Math.max(1, options.refusalsToDeadLetter ?? 3);
    this.refusalWindowMs = options.refusalWindowMs ?? 120_000;
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
    const timer = setTimeout(
      () => {
        halt.abort();
        this.wake?.();
      },
      Math.max(0, withinMs),
    );
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

  /** Lines per request now (the heartbeat's `sink_batch`); needs no store. */
  get batchLines(): number {
    return this.batchSize;
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
      batchLines: this.batchSize,
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
        const batch = this.store.readOutbox(this.batchSize, { agent: this.agent });
        if (batch.length === 0) {
          if (this.draining) break;
          this.state = 'idle';
          await this.sleep(this.idlePollMs);
          continue;
        }
        this.state = 'sending';
        this.lastBatchLines = batch.length;
        outcome = await this.deliver(batch, this.haltCtl.signal);
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
        this.log(
          `sink: InfluxDB at ${this.writer.target} accepts writes again after ${this.backoff.failures} failed attempts`,
        );
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
      this.log(
        `sink: ${message}; ${queued} lines kept in the outbox, retrying in ${(delayMs / 1000).toFixed(1)} s (attempt ${this.backoff.failures})`,
      );
    }
  }

  /** Sends `entries` in one request; acknowledges them on 2xx. */
  private async send(entries: readonly OutboxEntry[], signal: AbortSignal): Promise<WriteOutcome> {
    const res = await this.writer.write(
      entries.map((e) => e.line),
      signal,
    );
    if (res.kind === 'ok') {
      this.store.ack(entries.map((e) => e.id));
      for (const e of entries) this.refusals.delete(e.id);
      this.delivered += entries.length;
      this.lastDeliveryAt = Date.now();
      this.fiveHundredsSince = undefined;
      this.onDelivered?.(entries);
    }
    return res;
  }

  /** One batch from the head of the outbox: sent whole, or bisected when the server refuses it. */
  private async deliver(batch: OutboxEntry[], signal: AbortSignal): Promise<WriteOutcome> {
    const res = await this.send(batch, signal);
    if (res.kind === 'ok') {
      this.grow();
      return res;
    }
    if (res.kind === 'retry' && res.timedOut === true) {
      this.shrink(batch.length);
      return res;
    }
    if (res.kind === 'retry' && res.status !== undefined && res.status >= 500) {
      const now = Date.now();
      this.fiveHundredsSince ??= now;
      if (now - this.fiveHundredsSince < this.setAsideAfterMs) return res;
      this.log(
        `sink: InfluxDB has answered 5xx to the batch at the head of the outbox for ${Math.round((now - this.fiveHundredsSince) / 60_000)} min (${res.message}); ` +
          `bisecting it to set aside the lines it refuses on their own so the rest flows`,
      );
      return this.isolate(batch, signal, { kind: 'retry', status: res.status, message: res.message });
    }
    if (res.kind !== 'reject') return res;
    this.log(
      `sink: InfluxDB refused a batch of ${batch.length} lines (${res.message}); bisecting to find the refused lines`,
    );
    return this.isolate(batch, signal, res);
  }

  /**
   * Bisects a refused batch. Lines refused on their own are suspects; they become dead letters
   * once a request of other lines of the batch is accepted after their refusal (the server takes
   * the batch without them: they are the cause). When two suspects turn up with nothing accepted
   * in between, the rest of the batch goes in one request: refused too, the server is refusing
   * everything for now (a proxy, a restart) and nothing is dead-lettered; the sink backs off.
   */
  private async isolate(batch: OutboxEntry[], signal: AbortSignal, first: Refusal): Promise<WriteOutcome> {
    const fiveHundreds = first.kind === 'retry';
    const refused = (o: WriteOutcome): o is Refusal =>
      o.kind === 'reject' ||
      (fiveHundreds && o.kind === 'retry' && o.timedOut !== true && o.status !== undefined && o.status >= 500);
    let suspects: Array<{ entry: OutboxEntry; res: Refusal }> = [];
    let accepted = 0;
    let last: Refusal | undefined;
    const prove = () => {
      for (const s of suspects) this.deadLetterOne(s.entry, s.res, fiveHundreds ? 'set aside' : 'proven');
      suspects = [];
    };
    // Pending parts, the next one last (left half first: oldest lines first). A batch of one line
    // was refused on its own already.
    const half = batch.length >> 1;
    const pending: OutboxEntry[][] = batch.length > 1 ? [batch.slice(half), batch.slice(0, half)] : [];
    if (batch.length === 1) suspects.push({ entry: batch[0]!, res: first });
    while (pending.length > 0) {
      let part = pending.pop()!;
      if (suspects.length >= 2) {
        part = [part, ...pending.reverse()].flat();
        pending.length = 0;
      }
      const res = await this.send(part, signal);
      if (res.kind === 'ok') {
        accepted += part.length;
        prove();
        continue;
      }
      if (!refused(res)) {
        this.noteRefusals(suspects);
        return res;
      }
      last = res;
      if (part.length === 1) suspects.push({ entry: part[0]!, res });
      else if (suspects.length >= 2) break;
      else pending.push(part.slice(part.length >> 1), part.slice(0, part.length >> 1));
    }
    const unproven = suspects.length;
    this.noteRefusals(suspects);
    if (accepted > 0) return { kind: 'ok', status: 204 };
    const why = last ?? first;
    const said = why ? why.message : 'refused';
    return {
      kind: 'retry',
      ...(why?.status === undefined ? {} : { status: why.status }),
      message:
        unproven > 1 || (unproven === 1 && batch.length > 1)
          ? `InfluxDB at ${this.writer.target} refused every line, also lines on their own (${said}); nothing is dead-lettered until it accepts the rest of a batch without them`
          : `InfluxDB at ${this.writer.target} refused ${unproven === 1 ? 'a line' : 'the batch'} on its own (${said}); it is kept until the server accepts other lines without it`,
    };
  }

  /** Counts solo refusals of unproven suspects; one refused alone often enough, over long enough, goes. */
  private noteRefusals(suspects: ReadonlyArray<{ entry: OutboxEntry; res: Refusal }>): void {
    const now = Date.now();
    if (this.refusals.size > 100_000) this.refusals.clear();
    for (const { entry, res } of suspects) {
      const rec = this.refusals.get(entry.id) ?? { count: 0, firstAt: now };
      rec.count++;
      this.refusals.set(entry.id, rec);
      // 5xx lines are set aside only when proven: a long outage must not empty the outbox.
      if (
        res.kind === 'reject' &&
        rec.count >= this.refusalsToDeadLetter &&
        now - rec.firstAt >= this.refusalWindowMs
      ) {
        this.deadLetterOne(
          entry,
          res,
          `refused on its own ${rec.count} times over ${Math.round((now - rec.firstAt) / 1000)} s`,
        );
      }
    }
  }

  private deadLetterOne(entry: OutboxEntry, res: Refusal, how: string): void {
    const setAside = res.kind === 'retry';
    const message = setAside
      ? `set aside after ${Math.round(this.setAsideAfterMs / 60_000)} min of 5xx: ${res.message}`
      : res.message;
    this.store.deadLetter([entry.id], message, res.status);
    this.refusals.delete(entry.id);
    this.deadLettered++;
    this.errors.rejected++;
    this.lastError = setAside
      ? `InfluxDB kept answering 5xx to a line (${res.message}); it is set aside in the dead letters`
      : `InfluxDB refused a line as malformed (${res.message}); it is in the dead letters`;
    this.lastErrorAt = Date.now();
    this.log(
      `sink: InfluxDB ${setAside ? 'kept answering 5xx to' : 'refused'} outbox line ${entry.id} (${res.message}; ${how}); ` +
        `moved it to the dead letters (anylat outbox requeue puts it back): ${entry.line.slice(0, 200)}`,
    );
  }

  /** After a timed-out batch of `sent` lines: half of what was sent (a short batch says little about the full size), not below the floor. */
  private shrink(sent: number): void {
    this.successesAtSize = 0;
    const next = Math.max(this.minBatchLines, Math.floor(Math.min(this.batchSize, sent) / 2));
    if (next >= this.batchSize) return;
    this.batchSize = next;
    this.log(
      `sink: InfluxDB at ${this.writer.target} did not answer a batch of ${sent} lines in time; batch size now ${this.batchSize} lines ` +
        `(the timed-out batch may have been stored and is sent again with the same timestamps)`,
    );
  }

  private grow(): void {
    if (this.batchSize >= this.maxBatchLines) return;
    if (++this.successesAtSize < this.growAfter) return;
    this.successesAtSize = 0;
    this.batchSize = Math.min(this.maxBatchLines, this.batchSize * 2);
    this.log(`sink: InfluxDB at ${this.writer.target} answers in time again; batch size now ${this.batchSize} lines`);
  }
}
