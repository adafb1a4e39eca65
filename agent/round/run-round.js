// One round of one service: every (endpoint, protocol) sampled N times, interleaved in a fresh
// random order each cycle, spaced, bounded in flight, each sample under a deadline; then the
// statistics per path and the benefit per (protocol, metric). A round knows nothing of storage.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { PROTOCOL_METRICS, PROTOCOLS, scopeOf, } from "../core/model.js";
import { PROBES } from "../probe/index.js";
import { AnylatError } from "../util/errors.js";
import { LagMonitor } from "../util/lag.js";
import { computeBenefit } from "./benefit.js";
import { mostFrequent, roundStats, summarize } from "./stats.js";
export const DEFAULT_MAX_IN_FLIGHT = 32;
/** How long past its timeout a prober may take before the round stops waiting and calls it a timeout. */
export const OVERRUN_GRACE_MS = 100;
/** Longer than a lag monitor's tick interval (1 ms by default): see sampleAll. */
const LAG_SETTLE_MS = 10;
function specError(message) {
    return new AnylatError('ANYLAT_ROUND_SPEC', `round: ${message}`, { exitCode: 2 });
}
function checkSpec(spec) {
    if (!Number.isInteger(spec.samples) || spec.samples < 1)
        throw specError(`samples must be a whole number ≥ 1, got ${spec.samples}`);
    if (!(spec.spacingMs >= 0))
        throw specError(`spacing must be ≥ 0 ms, got ${spec.spacingMs}`);
    if (!(spec.timeoutMs > 0))
        throw specError(`timeout must be > 0 ms, got ${spec.timeoutMs}`);
    const max = spec.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    if (!Number.isInteger(max) || max < 1)
        throw specError(`max in flight must be a whole number ≥ 1, got ${max}`);
    if (spec.endpoints.length === 0)
        throw specError('no endpoint to probe');
    const names = new Set();
    for (const e of spec.endpoints) {
        if (names.has(e.name))
            throw specError(`endpoint "${e.name}" is named twice`);
        names.add(e.name);
    }
    const baseline = spec.baseline ?? 'nearest';
    if (baseline !== 'nearest' && !spec.endpoints.some((e) => e.name === baseline && e.kind === 'unicast')) {
        throw specError(`baseline "${baseline}" is not a unicast endpoint (have: ${spec.endpoints.filter((e) => e.kind === 'unicast').map((e) => e.name).join(', ') || 'none'})`);
    }
    if (!PROTOCOLS.some((p) => spec.protocols[p] !== undefined))
        throw specError('no protocol to probe');
}
async function defaultResolve(host) {
    // One address, the resolver's first: probes never race address families (Happy Eyeballs off).
    const { address } = await lookup(host, { verbatim: true });
    return address;
}
function withTimeout(promise, ms, what) {
    let timer;
    const deadline = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    });
    return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
/** Resolves each endpoint once, before the first sample, so DNS stays out of every metric but http `dns`. */
async function resolveEndpoints(endpoints, resolve, timeoutMs) {
    const out = new Map();
    await Promise.all(endpoints.map(async (e) => {
        if (isIP(e.host) !== 0) {
            out.set(e.name, { address: e.host });
            return;
        }
        try {
            out.set(e.name, { address: await withTimeout(resolve(e.host), timeoutMs, `resolving ${e.host}`) });
        }
        catch (err) {
            out.set(e.name, { failure: err instanceof Error ? err.message : String(err) });
        }
    }));
    return out;
}
/** FIFO counting semaphore: launches keep their order when they have to wait. */
class Slots {
    free;
    waiting = [];
    constructor(size) {
        this.free = size;
    }
    acquire() {
        if (this.free > 0) {
            this.free--;
            return Promise.resolve();
        }
        return new Promise((resolve) => this.waiting.push(resolve));
    }
    release() {
        const next = this.waiting.shift();
        if (next)
            next();
        else
            this.free++;
    }
}
function sleepUntil(at, signal) {
    const wait = at - performance.now();
    if (wait < 0.5 || signal?.aborted)
        return Promise.resolve();
    return new Promise((resolve) => {
        const done = () => {
            clearTimeout(timer);
            signal?.removeEventListener('abort', done);
            resolve();
        };
        const timer = setTimeout(done, wait);
        signal?.addEventListener('abort', done, { once: true });
    });
}
function shuffled(items, random) {
    const a = items.slice();
    for (let i = a.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
}
function describe(err) {
    return err instanceof Error ? err.message : String(err);
}
/** One sample under the round's own deadline; a rejection (a probe bug) becomes an `error` sample. */
async function timedSample(prober, seq, timeoutMs) {
    const launched = performance.now();
    let timer;
    const overrun = new Promise((resolve) => {
        timer = setTimeout(() => resolve({ ok: false, t0: launched, t1: performance.now(), values: {}, reason: 'timeout', detail: `the probe did not finish within ${timeoutMs} ms` }), timeoutMs + OVERRUN_GRACE_MS);
    });
    const probed = Promise.resolve()
        .then(() => prober.sample(seq))
        .catch((err) => ({ ok: false, t0: launched, t1: performance.now(), values: {}, reason: 'error', detail: describe(err) }));
    try {
        return await Promise.race([probed, overrun]);
    }
    finally {
        clearTimeout(timer);
    }
}
async function createProbers(paths, spec, probes) {
    try {
        for (const path of paths) {
            if (path.dnsFailure !== undefined)
                continue;
            const target = { endpoint: path.endpoint.name, address: path.address };
            if (isIP(path.endpoint.host) === 0)
                target.hostname = path.endpoint.host;
            const factory = probes[path.protocol];
            const options = { ...spec.protocols[path.protocol], timeoutMs: spec.timeoutMs };
            path.prober = await factory(target, options);
            path.metrics = path.prober.metrics;
            path.lagSpan = lagSpan(path.protocol, path.prober);
        }
    }
    catch (err) {
        await closeProbers(paths);
        throw err;
    }
}
async function closeProbers(paths) {
    await Promise.all(paths.map(async (path) => {
        if (!path.prober)
            return;
        const prober = path.prober;
        path.prober = undefined;
        try {
            const counters = await prober.close();
            if (counters)
                path.counters = counters;
        }
        catch {
            // Closing is best effort: the samples are already in.
        }
    }));
}
/**
 * Runs one round. Target failures are data (loss, failure reasons); it throws only for a bad spec
 * or a probe that cannot be set up on this host (e.g. no `ping` binary).
 */
export async function runRound(spec, deps = {}) {
    checkSpec(spec);
    const probes = deps.probes ?? PROBES;
    const random = deps.random ?? Math.random;
    const maxInFlight = spec.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    const terminatesTcp = spec.terminatesTcp ?? true;
    const startedAt = new Date();
    const t0 = performance.now();
    const ownLag = spec.lag === undefined ? new LagMonitor({ thresholdMs: 1 }).start() : undefined;
    const lag = spec.lag ?? ownLag;
    try {
        const resolved = await resolveEndpoints(spec.endpoints, deps.resolve ?? defaultResolve, spec.timeoutMs);
        const protocols = PROTOCOLS.filter((p) => spec.protocols[p] !== undefined);
        const paths = [];
        for (const protocol of protocols) {
            for (const endpoint of spec.endpoints) {
                const r = resolved.get(endpoint.name);
                const path = {
                    endpoint,
                    protocol,
                    address: 'address' in r ? r.address : endpoint.host,
                    attempts: new Array(spec.samples).fill(undefined),
                };
                if ('failure' in r)
                    path.dnsFailure = r.failure;
                paths.push(path);
            }
        }
        await createProbers(paths, spec, probes);
        // Closing the probers ends the samples in flight at once; the launch loop sees the signal.
        const onAbort = () => void closeProbers(paths);
        spec.signal?.addEventListener('abort', onAbort, { once: true });
        try {
            await sampleAll(paths, spec, maxInFlight, random, lag);
            if (deps.onSample)
                observe(paths, deps.onSample);
        }
        finally {
            spec.signal?.removeEventListener('abort', onAbort);
            await closeProbers(paths);
        }
        if (spec.signal?.aborted)
            throw new AnylatError('ANYLAT_ROUND_ABORTED', `round ${spec.service}: aborted before it finished`);
        const rows = buildRows(paths, spec, terminatesTcp);
        const benefit = computeBenefit(rows.series, { baseline: spec.baseline ?? 'nearest', terminatesTcp });
        const result = {
            agent: spec.agent,
            service: spec.service,
            started_at: startedAt.toISOString(),
            duration_ms: Math.round(performance.now() - t0),
            paths: rows.paths,
            benefit,
        };
        if (spec.scheduledAt !== undefined) {
            const at = typeof spec.scheduledAt === 'string' ? new Date(spec.scheduledAt) : spec.scheduledAt;
            // Keep the field order of the documented JSON: scheduled_at right after started_at.
            return { agent: result.agent, service: result.service, started_at: result.started_at, scheduled_at: at.toISOString(), duration_ms: result.duration_ms, paths: result.paths, benefit };
        }
        return result;
    }
    finally {
        ownLag?.stop();
    }
}
/**
 * Cycle c launches sample c of every live path in a fresh random order, spread evenly over one
 * spacing, so each path's samples are `spacingMs` apart and anycast and unicast samples of a cycle
 * are close in time. A launch waits for a free slot when `maxInFlight` samples are out.
 */
async function sampleAll(paths, spec, maxInFlight, random, lag) {
    const live = paths.filter((p) => p.prober !== undefined);
    if (live.length === 0 || spec.signal?.aborted)
        return;
    const slots = new Slots(maxInFlight);
    if (spec.warmup !== false) {
        // Sequence number N: past every counted cycle (0 … N−1), so a prober keyed on it never mixes them.
        await Promise.all(live.map(async (path) => {
            await slots.acquire();
            try {
                if (path.prober)
                    await timedSample(path.prober, spec.samples, spec.timeoutMs);
            }
            finally {
                slots.release();
            }
        }));
    }
    const running = [];
    const start = performance.now();
    const step = spec.spacingMs / live.length;
    launching: for (let cycle = 0; cycle < spec.samples; cycle++) {
        const order = shuffled(live, random);
        for (let i = 0; i < order.length; i++) {
            const path = order[i];
            await sleepUntil(start + cycle * spec.spacingMs + i * step, spec.signal);
            await slots.acquire();
            const prober = path.prober;
            if (spec.signal?.aborted || !prober) {
                slots.release();
                break launching;
            }
            running.push(timedSample(prober, cycle, spec.timeoutMs).then((attempt) => {
                slots.release();
                path.attempts[cycle] = { attempt, flagged: {} };
            }));
        }
    }
    await Promise.all(running);
    // A reply handled right after a blocked stretch can run before the monitor's timer sees the
    // block; let the monitor tick once more before asking it which samples overlapped lag.
    await new Promise((resolve) => setTimeout(resolve, LAG_SETTLE_MS));
    for (const path of live) {
        const span = path.lagSpan ?? 'whole';
        for (const entry of path.attempts) {
            if (entry)
                entry.flagged = lagFlags(entry.attempt, span, lag);
        }
    }
}
/**
 * Which of an attempt's values event-loop lag may have inflated. A probe that says when each
 * metric was exposed (`lagWindows`) is taken at its word: a metric is flagged when lag overlapped
 * its window (or ended just before it: see REPLY_LAG_SLACK_MS); one without a window (timed by
 * the kernel or another process) never is. Otherwise every value of the attempt shares its
 * protocol's rule (lagSpan).
 */
export function lagFlags(attempt, span, lag) {
    const out = {};
    const { t0, t1, lagWindows } = attempt;
    const fallback = span === 'none' ? false : span === 'reply' ? lag.delayedAt(t1, REPLY_LAG_SLACK_MS) : lag.overlaps(t0, t1);
    for (const metric of Object.keys(attempt.values)) {
        if (!lagWindows) {
            out[metric] = fallback;
            continue;
        }
        const w = lagWindows[metric];
        out[metric] = w !== undefined && (isOneWindow(w) ? exposed(w, lag) : w.some((piece) => exposed(piece, lag)));
    }
    return out;
}
function isOneWindow(w) {
    return typeof w[0] === 'number';
}
// One callback: only what ran before it can have delayed it. Several: any stall among them.
function exposed(w, lag) {
    return w[0] === w[1] ? lag.delayedAt(w[1], REPLY_LAG_SLACK_MS) : lag.overlaps(w[0] - REPLY_LAG_SLACK_MS, w[1]);
}
function observe(paths, onSample) {
    for (const path of paths) {
        path.attempts.forEach((entry, cycle) => {
            if (!entry)
                return;
            const flaggedMetrics = Object.keys(entry.flagged).filter((m) => entry.flagged[m] === true);
            onSample({ endpoint: path.endpoint.name, kind: path.endpoint.kind, address: path.address, protocol: path.protocol, cycle, attempt: entry.attempt, flagged: flaggedMetrics.length > 0, flaggedMetrics });
        });
    }
}
/** A lag window that ended this shortly before a reply's timestamp may still have delayed it. */
export const REPLY_LAG_SLACK_MS = 2;
/**
 * For attempts without `lagWindows` (anylat's probes all set them; this covers any other prober):
 * which part of a sample a lagging event loop can inflate. ICMP: none (ping prints a time its own
 * process took from kernel timestamps). A single exchange (a STAMP packet; a TCP connect timed by
 * the kernel's handshake RTT, then the timed echo) is timed from a send stamped right before a
 * synchronous write to the callback that handles the reply: only a stall when the reply arrives
 * delays its stamp, a stall while waiting costs nothing. A multi-phase sample (TLS, HTTP, a connect
 * timed by the monotonic clock) stamps intermediate callbacks, so a stall anywhere between its
 * start and end can inflate one of its metrics.
 */
function lagSpan(protocol, prober) {
    switch (protocol) {
        case 'icmp':
            return 'none';
        case 'udp':
            return 'reply';
        case 'tcp': {
            const clock = prober.connectClock;
            return clock === 'kernel' ? 'reply' : 'whole';
        }
        default:
            return 'whole';
    }
}
function outcome(entry, metric) {
    if (!entry)
        return { reason: 'error', flagged: false };
    const { attempt } = entry;
    const value = attempt.values[metric];
    if (value !== undefined)
        return { value, flagged: entry.flagged[metric] === true };
    return { reason: attempt.ok ? 'error' : attempt.reason, flagged: false };
}
function buildRows(paths, spec, terminatesTcp) {
    const out = [];
    const series = [];
    for (const protocol of PROTOCOLS) {
        const here = paths.filter((p) => p.protocol === protocol);
        if (here.length === 0)
            continue;
        // An endpoint that never got a prober (its name did not resolve) reports the metrics the
        // others of this protocol report, so its loss shows beside them.
        const known = new Set();
        for (const p of here)
            for (const m of p.metrics ?? [])
                known.add(m);
        const metrics = known.size > 0 ? PROTOCOL_METRICS[protocol].filter((m) => known.has(m)) : PROTOCOL_METRICS[protocol];
        for (const metric of metrics) {
            for (const path of here) {
                if (path.metrics !== undefined && !path.metrics.includes(metric))
                    continue;
                const outcomes = path.dnsFailure !== undefined
                    ? Array.from({ length: spec.samples }, () => ({ reason: 'dns', flagged: false }))
                    : path.attempts.map((entry) => outcome(entry, metric));
                const stats = summarize(outcomes);
                const site = mostFrequent(path.attempts.map((e) => e?.attempt.site));
                const row = {
                    endpoint: path.endpoint.name,
                    kind: path.endpoint.kind,
                    address: path.address,
                    protocol,
                    metric,
                    scope: scopeOf(protocol, metric, terminatesTcp),
                    ...(site !== undefined ? { site } : {}),
                    ...roundStats(stats),
                    ...(path.counters ?? {}),
                };
                out.push(row);
                series.push({
                    endpoint: path.endpoint.name,
                    kind: path.endpoint.kind,
                    protocol,
                    metric,
                    ...(stats.p50_ms !== undefined ? { p50: stats.p50_ms } : {}),
                    byCycle: outcomes.map((o) => (o.value !== undefined && !o.flagged ? o.value : undefined)),
                });
            }
        }
    }
    return { paths: out, series };
}
