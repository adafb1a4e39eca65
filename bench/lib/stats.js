// Order statistics for the benchmarks' tables: the same type-7 quantile the round uses.
/** The q-quantile (0..1) of `xs` by linear interpolation between closest ranks; NaN when empty. */
export function quantile(xs, q) {
    if (xs.length === 0)
        return Number.NaN;
    const s = [...xs].sort((a, b) => a - b);
    const h = (s.length - 1) * q;
    const lo = Math.floor(h);
    const hi = Math.ceil(h);
    return s[lo] + (s[hi] - s[lo]) * (h - lo);
}
export function median(xs) {
    return quantile(xs, 0.5);
}
export function mean(xs) {
    return xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}
/** Rounds to `digits` decimals for JSON (NaN becomes null there anyway). */
export function round(x, digits = 3) {
    const f = 10 ** digits;
    return Math.round(x * f) / f;
}
