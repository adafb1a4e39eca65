import { Backoff } from "./backoff.js";
import { InfluxWriter } from "./influx-writer.js";
/** Why a write failed, in words an operator alerts on; low-cardinality, for metrics labels. */
export const SINK_ERROR_CLASSES = ['unreachable', 'timeout', 'auth', 'not_found', 'throttled', 'server', 'rejected', 'store'];
/** The class of a failed write: by the HTTP status when InfluxDB answered, else by what failed. */
export function errorClass(outcome, fromStore = false) {
    if (fromStore)
        return 'store';
    if (outcome.kind === 'reject')
        return 'rejected';
    const status = outcome.status;
    if (status === undefined)
        return outcome.message.startsWith('no answer') ? 'timeout' : 'unreachable';
    if (status === 401 || status === 403)
        return 'auth';
    if (status === 404)
        return 'not_found';
    if (status === 429)
        return 'throttled';
    if (status === 408)
        return 'timeout';
    return 'server';
}
const FAILURE_LOG_EVERY_MS = 60_000;
export class Sink {
    store;
    agent;
    writer;
    maxBatchLines;
    minBatchLines;
    growAfter;
    setAsideAfterMs;
    refusalsToDeadLetter;
    refusalWindowMs;
    idlePollMs;
    backoff;
    log;
    onDelivered;
    state = 'stopped';
    loop;
    // One controller for both ways to end the loop (stop, drain deadline), so a request already in
    // flight when drain() is called is still cut off at the drain's bound.
    haltCtl = new AbortController();
    draining = false;
    wake;
    delivered = 0;
    deadLettered = 0;
    lastError;
    lastErrorAt;
    lastFailureLog = Number.NEGATIVE_INFINITY;
    lastDeliveryAt;
    nextAttemptAt;
    lastBatchLines = 0;
    errors = Object.fromEntries(SINK_ERROR_CLASSES.map((c) => [c, 0]));
    batchSize;
    successesAtSize = 0;
    /** when the batch at the head of the outbox first drew a 5xx, until a write succeeds */
    fiveHundredsSince;
    /** lines refused on their own and not (yet) proven the cause, by outbox id */
    refusals = new Map();
    constructor(options) {
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
    start() {
        if (this.loop !== undefined || this.draining)
            return;
        this.haltCtl = new AbortController();
        this.state = 'idle';
        this.loop = this.guarded();
    }
    /** New lines are in the outbox: send them now instead of at the next poll (not during backoff). */
    notify() {
        if (this.state === 'idle')
            this.wake?.();
    }
    /**
     * For shutdown: sends what InfluxDB takes within `withinMs` (an outage is retried, with
     * backoff, until then), aborts an unanswered request at the bound, then stops the sink. Lines
     * not acknowledged stay in the outbox for the next start. Never rejects.
     */
    async drain(withinMs) {
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
    async stop() {
        this.haltCtl.abort();
        this.wake?.();
        if (this.loop !== undefined)
            await this.loop;
        this.loop = undefined;
    }
    /** Lines per request now (the heartbeat's `sink_batch`); needs no store. */
    get batchLines() {
        return this.batchSize;
    }
    status() {
        const iso = (ms) => (ms === undefined ? undefined : new Date(ms).toISOString());
        const s = {
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
        for (const [k, v] of Object.entries(optional))
            if (v !== undefined)
                s[k] = v;
        return s;
    }
    get halted() {
        return this.haltCtl.signal.aborted;
    }
    sleep(ms) {
        return new Promise((resolve) => {
            const done = () => {
                clearTimeout(timer);
                if (this.wake === done)
                    this.wake = undefined;
                resolve();
            };
            const timer = setTimeout(done, ms);
            this.wake = done;
        });
    }
    // Nobody may await the loop (start() without drain/stop), so it must never reject.
    async guarded() {
        try {
            await this.run();
        }
        catch (err) {
            this.state = 'stopped';
            this.lastError = `sink stopped: ${this.writer.clean(err)}`;
            this.lastErrorAt = Date.now();
            this.log(`sink: stopped by an unexpected error: ${this.writer.clean(err)}`);
        }
    }
    // The loop never throws: a store error (say, a disk that filled up) is logged and retried with
    // backoff like an outage, so the sink cannot die silently while the agent keeps measuring.
    async run() {
        while (!this.halted) {
            let outcome;
            let storeFailed = false;
            try {
                const batch = this.store.readOutbox(this.batchSize, { agent: this.agent });
                if (batch.length === 0) {
                    if (this.draining)
                        break;
                    this.state = 'idle';
                    await this.sleep(this.idlePollMs);
                    continue;
                }
                this.state = 'sending';
                this.lastBatchLines = batch.length;
                outcome = await this.deliver(batch, this.haltCtl.signal);
            }
            catch (err) {
                storeFailed = true;
                outcome = { kind: 'retry', message: `store error while sending: ${this.writer.clean(err)}` };
            }
            if (outcome.kind === 'aborted')
                break;
            if (outcome.kind === 'retry') {
                this.errors[errorClass(outcome, storeFailed)]++;
                this.failed(outcome.message, this.backoff.next(outcome.retryAfterMs));
                await this.sleep(this.nextAttemptAt - Date.now());
            }
            else if (this.backoff.failures > 0) {
                this.log(`sink: InfluxDB at ${this.writer.target} accepts writes again after ${this.backoff.failures} failed attempts`);
                this.backoff.reset();
            }
        }
        this.state = 'stopped';
    }
    failed(message, delayMs) {
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
            }
            catch {
                // the store is what failed; the message says so already
            }
            this.log(`sink: ${message}; ${queued} lines kept in the outbox, retrying in ${(delayMs / 1000).toFixed(1)} s (attempt ${this.backoff.failures})`);
        }
    }
    /** Sends `entries` in one request; acknowledges them on 2xx. */
    async send(entries, signal) {
        const res = await this.writer.write(entries.map((e) => e.line), signal);
        if (res.kind === 'ok') {
            this.store.ack(entries.map((e) => e.id));
            for (const e of entries)
                this.refusals.delete(e.id);
            this.delivered += entries.length;
            this.lastDeliveryAt = Date.now();
            this.fiveHundredsSince = undefined;
            this.onDelivered?.(entries);
        }
        return res;
    }
    /** One batch from the head of the outbox: sent whole, or bisected when the server refuses it. */
    async deliver(batch, signal) {
        const res = await this.send(batch, signal);
        if (res.kind === 'ok') {
            this.grow();
            return res;
        }
        if (res.kind === 'retry' && res.timedOut === true) {
            this.shrink();
            return res;
        }
        if (res.kind === 'retry' && res.status !== undefined && res.status >= 500) {
            const now = Date.now();
            this.fiveHundredsSince ??= now;
            if (now - this.fiveHundredsSince < this.setAsideAfterMs)
                return res;
            this.log(`sink: InfluxDB has answered 5xx to the batch at the head of the outbox for ${Math.round((now - this.fiveHundredsSince) / 60_000)} min (${res.message}); ` +
                `bisecting it to set aside the lines it refuses on their own so the rest flows`);
            return this.isolate(batch, signal, { kind: 'retry', status: res.status, message: res.message });
        }
        if (res.kind !== 'reject')
            return res;
        this.log(`sink: InfluxDB refused a batch of ${batch.length} lines (${res.message}); bisecting to find the refused lines`);
        return this.isolate(batch, signal, res);
    }
    /**
     * Bisects a refused batch. Lines refused on their own are suspects; they become dead letters
     * once a request of other lines of the batch is accepted after their refusal (the server takes
     * the batch without them: they are the cause). When two suspects turn up with nothing accepted
     * in between, the rest of the batch goes in one request: refused too, the server is refusing
     * everything for now (a proxy, a restart) and nothing is dead-lettered; the sink backs off.
     */
    async isolate(batch, signal, first) {
        const fiveHundreds = first.kind === 'retry';
        const refused = (o) => o.kind === 'reject' || (fiveHundreds && o.kind === 'retry' && o.timedOut !== true && o.status !== undefined && o.status >= 500);
        let suspects = [];
        let accepted = 0;
        let last;
        const prove = () => {
            for (const s of suspects)
                this.deadLetterOne(s.entry, s.res, fiveHundreds ? 'set aside' : 'proven');
            suspects = [];
        };
        // Pending parts, the next one last (left half first: oldest lines first). A batch of one line
        // was refused on its own already.
        const half = batch.length >> 1;
        const pending = batch.length > 1 ? [batch.slice(half), batch.slice(0, half)] : [];
        if (batch.length === 1)
            suspects.push({ entry: batch[0], res: first });
        while (pending.length > 0) {
            let part = pending.pop();
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
            if (part.length === 1)
                suspects.push({ entry: part[0], res });
            else if (suspects.length >= 2)
                break;
            else
                pending.push(part.slice(part.length >> 1), part.slice(0, part.length >> 1));
        }
        const unproven = suspects.length;
        this.noteRefusals(suspects);
        if (accepted > 0)
            return { kind: 'ok', status: 204 };
        const why = last ?? first;
        const said = why ? why.message : 'refused';
        return {
            kind: 'retry',
            ...(why?.status === undefined ? {} : { status: why.status }),
            message: unproven > 1 || (unproven === 1 && batch.length > 1)
                ? `InfluxDB at ${this.writer.target} refused every line, also lines on their own (${said}); nothing is dead-lettered until it accepts the rest of a batch without them`
                : `InfluxDB at ${this.writer.target} refused ${unproven === 1 ? 'a line' : 'the batch'} on its own (${said}); it is kept until the server accepts other lines without it`,
        };
    }
    /** Counts solo refusals of unproven suspects; one refused alone often enough, over long enough, goes. */
    noteRefusals(suspects) {
        const now = Date.now();
        if (this.refusals.size > 100_000)
            this.refusals.clear();
        for (const { entry, res } of suspects) {
            const rec = this.refusals.get(entry.id) ?? { count: 0, firstAt: now };
            rec.count++;
            this.refusals.set(entry.id, rec);
            // 5xx lines are set aside only when proven: a long outage must not empty the outbox.
            if (res.kind === 'reject' && rec.count >= this.refusalsToDeadLetter && now - rec.firstAt >= this.refusalWindowMs) {
                this.deadLetterOne(entry, res, `refused on its own ${rec.count} times over ${Math.round((now - rec.firstAt) / 1000)} s`);
            }
        }
    }
    deadLetterOne(entry, res, how) {
        const setAside = res.kind === 'retry';
        const message = setAside ? `set aside after ${Math.round(this.setAsideAfterMs / 60_000)} min of 5xx: ${res.message}` : res.message;
        this.store.deadLetter([entry.id], message, res.status);
        this.refusals.delete(entry.id);
        this.deadLettered++;
        this.errors.rejected++;
        this.lastError = setAside
            ? `InfluxDB kept answering 5xx to a line (${res.message}); it is set aside in the dead letters`
            : `InfluxDB refused a line as malformed (${res.message}); it is in the dead letters`;
        this.lastErrorAt = Date.now();
        this.log(`sink: InfluxDB ${setAside ? 'kept answering 5xx to' : 'refused'} outbox line ${entry.id} (${res.message}; ${how}); ` +
            `moved it to the dead letters (anylat outbox requeue puts it back): ${entry.line.slice(0, 200)}`);
    }
    shrink() {
        this.successesAtSize = 0;
        if (this.batchSize <= this.minBatchLines)
            return;
        const before = this.batchSize;
        this.batchSize = Math.max(this.minBatchLines, Math.floor(this.batchSize / 2));
        this.log(`sink: InfluxDB at ${this.writer.target} did not answer a batch of ${before} lines in time; batch size now ${this.batchSize} lines ` +
            `(the timed-out batch may have been stored and is sent again with the same timestamps)`);
    }
    grow() {
        if (this.batchSize >= this.maxBatchLines)
            return;
        if (++this.successesAtSize < this.growAfter)
            return;
        this.successesAtSize = 0;
        this.batchSize = Math.min(this.maxBatchLines, this.batchSize * 2);
        this.log(`sink: InfluxDB at ${this.writer.target} answers in time again; batch size now ${this.batchSize} lines`);
    }
}
