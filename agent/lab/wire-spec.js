/** Defaults for a direction: no delay, no jitter, no loss, order kept. */
export function directionParams(p = {}) {
    return { delayMs: 0, jitterMs: 0, lossPct: 0, reorder: false, queueLimit: 10_000, ...p };
}
