import { performance } from 'node:perf_hooks';
/**
 * Watches the event loop with a short timer and remembers when it was held up. A sample whose
 * callback ran during or right after such a stretch may carry that delay, so the round flags it
 * and keeps it out of the statistics.
 *
 * Two signs count. The loop was busy: more than `thresholdMs` of work (event-loop utilization's
 * `active` time) between two ticks means a callback that became ready in between waited for it.
 * Or the timer fired far later than asked while the loop was idle: the process was not scheduled,
 * which holds up I/O callbacks the same way. Timer lateness alone is not enough, because libuv
 * keeps time in whole milliseconds and a 1 ms timer routinely fires up to ~1 ms late while I/O
 * callbacks run on time; `slackMs` absorbs that.
 */
export class LagMonitor {
    thresholdMs;
    intervalMs;
    slackMs;
    keepMs;
    timer;
    expected = 0;
    lastTick = 0;
    lastActive = 0;
    windows = [];
    lags = [];
    constructor(options = {}) {
        this.thresholdMs = options.thresholdMs ?? 1;
        this.intervalMs = options.intervalMs ?? 1;
        this.slackMs = options.slackMs ?? 2;
        this.keepMs = options.keepMs ?? 600_000;
    }
    start() {
        if (this.timer)
            return this;
        this.lastTick = performance.now();
        this.expected = this.lastTick + this.intervalMs;
        this.lastActive = performance.eventLoopUtilization().active;
        this.timer = setInterval(() => this.tick(), this.intervalMs);
        this.timer.unref();
        return this;
    }
    stop() {
        if (this.timer)
            clearInterval(this.timer);
        this.timer = undefined;
    }
    tick() {
        const now = performance.now();
        const active = performance.eventLoopUtilization().active;
        const busy = active - this.lastActive;
        const late = now - this.expected;
        this.lags.push(Math.max(0, late));
        if (this.lags.length > 60_000)
            this.lags.splice(0, this.lags.length - 60_000);
        if (busy > this.thresholdMs || late > this.thresholdMs + this.slackMs) {
            this.windows.push({ from: this.lastTick, to: now });
            const horizon = now - this.keepMs;
            while (this.windows.length > 0 && this.windows[0].to < horizon)
                this.windows.shift();
        }
        this.lastTick = now;
        this.lastActive = active;
        this.expected = now + this.intervalMs;
    }
    /** True when [t0, t1] overlaps a stretch where the loop was held up. */
    overlaps(t0, t1) {
        // A callback delayed by a stall is stamped right after the stall ends; whether the timer or
        // the callback ran first after it, the stall's window starts before t1 and ends after t0.
        for (let i = this.windows.length - 1; i >= 0; i--) {
            const w = this.windows[i];
            if (w.to < t0)
                break;
            if (w.from <= t1 && w.to >= t0)
                return true;
        }
        return false;
    }
    /**
     * True when a stall could have held up a callback that ran at `at` by more than `thresholdMs`:
     * a stretch that ended at most `slackMs` before it, or one it ran inside, more than
     * `thresholdMs` after that stretch began. A stretch is recorded from the tick before it to the
     * tick after it, so work that came after `at` inside it, often the very callback that stamped
     * `at` (an HTTP response being parsed), cannot have delayed that stamp.
     */
    delayedAt(at, slackMs) {
        for (let i = this.windows.length - 1; i >= 0; i--) {
            const w = this.windows[i];
            if (w.to < at - slackMs)
                break;
            if (w.from > at)
                continue;
            if (w.to <= at || at - w.from > this.thresholdMs)
                return true;
        }
        return false;
    }
    /** Windows recorded so far that end after `since` (for tests and diagnostics). */
    windowsSince(since) {
        return this.windows.filter((w) => w.to >= since);
    }
    /** 99th percentile of how late the timer fired over the ticks since the last call, then resets. */
    takeP99() {
        if (this.lags.length === 0)
            return 0;
        const sorted = this.lags.slice().sort((a, b) => a - b);
        this.lags = [];
        return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))];
    }
}
