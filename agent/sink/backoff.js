// Exponential backoff with jitter for InfluxDB outages, and Retry-After as RFC 9110 defines it
// (delta-seconds or an HTTP-date). The client library reads a numeric Retry-After as
// milliseconds, which would retry a server asking for a minute after 60 ms, so we parse it here.
export class Backoff {
    initialMs;
    maxMs;
    maxRetryAfterMs;
    random;
    /** failures since the last success */
    failures = 0;
    constructor(options = {}) {
        this.initialMs = Math.max(1, options.initialMs ?? 1000);
        this.maxMs = Math.max(this.initialMs, options.maxMs ?? 60_000);
        this.maxRetryAfterMs = options.maxRetryAfterMs ?? 15 * 60_000;
        this.random = options.random ?? Math.random;
    }
    /**
     * The delay before the next attempt after one more failure. Without Retry-After: a random
     * value in [d/2, d] with d doubling from initialMs up to maxMs, so agents that lost InfluxDB
     * together do not come back together. With Retry-After: that long (at least initialMs, at most
     * maxRetryAfterMs), plus up to 10% so they still spread.
     */
    next(retryAfterMs) {
        this.failures++;
        if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs)) {
            const wait = Math.min(this.maxRetryAfterMs, Math.max(this.initialMs, retryAfterMs));
            return Math.round(wait * (1 + 0.1 * this.random()));
        }
        const d = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.failures - 1, 40));
        return Math.round(d / 2 + (this.random() * d) / 2);
    }
    reset() {
        this.failures = 0;
    }
}
/** Milliseconds a Retry-After header asks for, or undefined when absent or unreadable. */
export function parseRetryAfter(value, now = Date.now()) {
    const v = Array.isArray(value) ? value[0] : value;
    if (v === undefined)
        return undefined;
    const text = v.trim();
    if (/^\d+$/.test(text))
        return Number(text) * 1000;
    const at = Date.parse(text);
    if (Number.isNaN(at))
        return undefined;
    return Math.max(0, at - now);
}
