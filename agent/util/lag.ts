import { performance } from 'node:perf_hooks';

/** A stretch of time during which the event loop was behind by more than the threshold. */
export interface LagWindow {
  from: number;
  to: number;
}

/**
 * Watches the event loop with a short timer and remembers when it ran late. A sample whose
 * [t0, t1] overlaps a late stretch may have been timed by a loop that was busy elsewhere, so the
 * round flags it and keeps it out of the statistics. Timers fire in the loop's first phase, so a
 * blocked loop shows up here even when the I/O callback that timed the sample ran before us.
 */
export class LagMonitor {
  readonly thresholdMs: number;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private expected = 0;
  private windows: LagWindow[] = [];
  private lags: number[] = [];
  private readonly keepMs: number;

  constructor(options: { thresholdMs?: number; intervalMs?: number; keepMs?: number } = {}) {
    this.thresholdMs = options.thresholdMs ?? 1;
    this.intervalMs = options.intervalMs ?? 1;
    this.keepMs = options.keepMs ?? 600_000;
  }

  start(): this {
    if (this.timer) return this;
    this.expected = performance.now() + this.intervalMs;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const now = performance.now();
    const late = now - this.expected;
    this.lags.push(Math.max(0, late));
    if (this.lags.length > 12_000) this.lags.splice(0, this.lags.length - 12_000);
    if (late > this.thresholdMs) {
      // The loop could not run anything from (expected - threshold) until now.
      this.windows.push({ from: this.expected, to: now });
      const horizon = now - this.keepMs;
      while (this.windows.length > 0 && this.windows[0]!.to < horizon) this.windows.shift();
    }
    this.expected = now + this.intervalMs;
  }

  /** True when [t0, t1] overlaps a stretch where the loop was late. */
  overlaps(t0: number, t1: number): boolean {
    // A callback delayed by a block is stamped right after the block ends; whether the timer or the
    // callback ran first after it, the block's window starts before t1 and ends after t0.
    for (let i = this.windows.length - 1; i >= 0; i--) {
      const w = this.windows[i]!;
      if (w.to < t0) break;
      if (w.from <= t1 && w.to >= t0) return true;
    }
    return false;
  }

  /** 99th percentile of how late the timer fired, over the recent ticks, then resets them. */
  takeP99(): number {
    if (this.lags.length === 0) return 0;
    const sorted = this.lags.slice().sort((a, b) => a - b);
    this.lags = [];
    return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
  }
}
