// One round of one service: every (endpoint, protocol) sampled N times, interleaved in a fresh
// random order each cycle, spaced, bounded in flight, each sample under a deadline; then the
// statistics per path and the benefit per (protocol, metric). A round knows nothing of storage.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  PROTOCOL_METRICS,
  PROTOCOLS,
  scopeOf,
  type AgentIdentity,
  type Attempt,
  type Endpoint,
  type LagWindow,
  type Metric,
  type PacketCounters,
  type PathResult,
  type Protocol,
  type RoundResult,
} from '../core/model.ts';
import { keepStampsOn } from '../net/stamps-on.ts';
import { PROBES } from '../probe/index.ts';
import { DEFAULT_TRANSFER_SAMPLES, sizeLabel } from '../probe/transfer.ts';
import type { ProbeFactory, ProbeOptionsMap, Prober, ProbeTarget } from '../probe/types.ts';
import { failedAttempt } from '../probe/outcome.ts';
import { linkSignal } from '../util/abort.ts';
import { AnylatError, errorMessage } from '../util/errors.ts';
import { LagMonitor } from '../util/lag.ts';
import { computeBenefit, type PathSeries } from './benefit.ts';
import { mostFrequent, roundStats, summarize, type SampleOutcome } from './stats.ts';

/** Each protocol's probe options, without the timeout (the round sets it from `timeoutMs`). */
export type RoundProtocols = { [P in Protocol]?: Omit<ProbeOptionsMap[P], 'timeoutMs'> };

/** Everything one round needs, already validated and typed (config loading or CLI parsing did that). */
export interface RoundSpec {
  service: string;
  agent: AgentIdentity;
  /** `anycast` (plus `anycast-2`, … for extra anycast addresses) and the named unicast endpoints */
  endpoints: readonly Endpoint[];
  /** which protocols to probe, with their options */
  protocols: RoundProtocols;
  /** samples per (endpoint, protocol) */
  samples: number;
  /** interval between one path's consecutive samples (like `ping -i`) */
  spacingMs: number;
  /** per-sample deadline */
  timeoutMs: number;
  /** samples in flight at once across the round; default 32 */
  maxInFlight?: number;
  /** `nearest` (default) or the name of a unicast endpoint */
  baseline?: string;
  /** the anycast side terminates TCP at its edge (Global Accelerator's default); default true */
  terminatesTcp?: boolean;
  /** a running monitor shared with other rounds; otherwise the round runs its own */
  lag?: LagMonitor;
  /** when the schedule wanted this round (written as `scheduled_at`) */
  scheduledAt?: string | Date;
  /**
   * one uncounted sample per path before the first cycle (default true): it runs the code a probe
   * runs the first time (module loading, compiling undici's HTTP parser, JIT), which otherwise
   * stalls the event loop during the first cycles and gets their samples flagged
   */
  warmup?: boolean;
  /**
   * aborting stops the round: no further sample is launched, the probers are closed (samples in
   * flight end at once) and runRound rejects with `ANYLAT_ROUND_ABORTED`
   */
  signal?: AbortSignal;
}

/** What a round may be given instead of the real thing (tests observe probes through these). */
export interface RoundDeps {
  probes?: { readonly [P in Protocol]: ProbeFactory<P> };
  /** host name → one IP address; default `dns.lookup` (system resolver, /etc/hosts first) */
  resolve?: (host: string) => Promise<string>;
  /** uniform [0, 1) for the interleaving shuffle; default Math.random */
  random?: () => number;
  /**
   * sees every counted sample (not the warm-up) once the round has decided whether it is flagged,
   * before the statistics: benchmarks compare each value with a reference clock through it
   */
  onSample?: (sample: ObservedSample) => void;
}

/** One counted sample as the round saw it (see `RoundDeps.onSample`). */
export interface ObservedSample {
  endpoint: string;
  kind: Endpoint['kind'];
  address: string;
  protocol: Protocol;
  /** transfer: the object size in bytes */
  size?: number;
  /** the cycle it belongs to, 0 … samples − 1 */
  cycle: number;
  attempt: Attempt;
  /** some metric's value overlapped event-loop lag (see `flaggedMetrics`) */
  flagged: boolean;
  /** metrics whose value overlapped event-loop lag: kept out of the statistics */
  flaggedMetrics: Metric[];
}

export const DEFAULT_MAX_IN_FLIGHT = 32;

/** How long past its timeout a prober may take before the round stops waiting and calls it a timeout. */
export const OVERRUN_GRACE_MS = 100;

/** Longer than a lag monitor's tick interval (1 ms by default): see sampleAll. */
const LAG_SETTLE_MS = 10;

interface Path {
  endpoint: Endpoint;
  protocol: Protocol;
  /** transfer: the object size in bytes this path downloads */
  size?: number;
  address: string;
  prober?: Prober;
  /** the metrics its prober reports (absent when no prober could be made) */
  metrics?: readonly Metric[];
  /** which part of a sample event-loop lag can inflate (see lagSpan) */
  lagSpan?: 'none' | 'reply' | 'whole';
  /** set when the endpoint's name did not resolve: no sample was sent */
  dnsFailure?: string;
  attempts: Array<{ attempt: Attempt; flagged: Partial<Record<Metric, boolean>> } | undefined>;
  counters?: PacketCounters;
}

function specError(message: string): AnylatError {
  return new AnylatError('ANYLAT_ROUND_SPEC', `round: ${message}`);
}

function checkSpec(spec: RoundSpec): void {
  if (!Number.isInteger(spec.samples) || spec.samples < 1)
    throw specError(`samples must be a whole number ≥ 1, got ${spec.samples}`);
  if (!(spec.spacingMs >= 0)) throw specError(`spacing must be ≥ 0 ms, got ${spec.spacingMs}`);
  if (!(spec.timeoutMs > 0)) throw specError(`timeout must be > 0 ms, got ${spec.timeoutMs}`);
  const max = spec.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  if (!Number.isInteger(max) || max < 1) throw specError(`max in flight must be a whole number ≥ 1, got ${max}`);
  if (spec.endpoints.length === 0) throw specError('no endpoint to probe');
  const names = new Set<string>();
  for (const e of spec.endpoints) {
    if (names.has(e.name)) throw specError(`endpoint "${e.name}" is named twice`);
    names.add(e.name);
  }
  const baseline = spec.baseline ?? 'nearest';
  if (baseline !== 'nearest' && !spec.endpoints.some((e) => e.name === baseline && e.kind === 'unicast')) {
    throw specError(
      `baseline "${baseline}" is not a unicast endpoint (have: ${
        spec.endpoints
          .filter((e) => e.kind === 'unicast')
          .map((e) => e.name)
          .join(', ') || 'none'
      })`,
    );
  }
  if (!PROTOCOLS.some((p) => spec.protocols[p] !== undefined)) throw specError('no protocol to probe');
}

async function defaultResolve(host: string): Promise<string> {
  // One address, the resolver's first: probes never race address families (Happy Eyeballs off).
  const { address } = await lookup(host, { verbatim: true });
  return address;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Resolves each endpoint once, before the first sample, so DNS stays out of every metric but http `dns`. */
async function resolveEndpoints(
  endpoints: readonly Endpoint[],
  resolve: (host: string) => Promise<string>,
  timeoutMs: number,
): Promise<Map<string, { address: string } | { failure: string }>> {
  const out = new Map<string, { address: string } | { failure: string }>();
  await Promise.all(
    endpoints.map(async (e) => {
      if (isIP(e.host) !== 0) {
        out.set(e.name, { address: e.host });
        return;
      }
      try {
        out.set(e.name, { address: await withTimeout(resolve(e.host), timeoutMs, `resolving ${e.host}`) });
      } catch (err) {
        out.set(e.name, { failure: errorMessage(err) });
      }
    }),
  );
  return out;
}

/** FIFO counting semaphore: launches keep their order when they have to wait. */
class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];
  constructor(size: number) {
    this.free = size;
  }
  acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

function sleepUntil(at: number, signal: AbortSignal | undefined): Promise<void> {
  const wait = at - performance.now();
  if (wait < 0.5 || signal?.aborted) return Promise.resolve();
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

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/**
 * One sample under the round's own deadline. The round owns cancellation: the sample's signal
 * (linked to the round's, util/abort.ts) aborts when the round stops or `OVERRUN_GRACE_MS` past
 * the probe's timeout; a prober that keeps the contract (probe/sample.ts) has ended its sample by
 * then, and this ends one that does not, as a `timeout`. A rejection (a probe bug) becomes an
 * `error` sample.
 */
async function timedSample(
  prober: Prober,
  seq: number,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<Attempt> {
  const launched = performance.now();
  const link = linkSignal(signal, timeoutMs + OVERRUN_GRACE_MS);
  const overrun = new Promise<Attempt>((resolve) => {
    const onAbort = () => {
      const detail =
        link.reason === 'timeout' ? `the probe did not finish within ${timeoutMs} ms` : 'the round was stopped';
      resolve(failedAttempt(launched, performance.now(), 'timeout', detail));
    };
    link.signal.addEventListener('abort', onAbort, { once: true });
  });
  const probed = Promise.resolve()
    .then(() => prober.sample(seq, link.signal))
    .catch((err: unknown): Attempt => failedAttempt(launched, performance.now(), 'error', errorMessage(err)));
  try {
    return await Promise.race([probed, overrun]);
  } finally {
    link.dispose();
  }
}

async function createProbers(paths: Path[], spec: RoundSpec, probes: NonNullable<RoundDeps['probes']>): Promise<void> {
  try {
    for (const path of paths) {
      if (path.dnsFailure !== undefined) continue;
      const target: ProbeTarget = { endpoint: path.endpoint.name, address: path.address };
      if (isIP(path.endpoint.host) === 0) target.hostname = path.endpoint.host;
      const factory = probes[path.protocol] as ProbeFactory<Protocol>;
      const options = {
        ...spec.protocols[path.protocol],
        timeoutMs: sampleTimeout(spec, path),
        ...(path.size !== undefined ? { size: path.size } : {}),
      } as ProbeOptionsMap[Protocol];
      path.prober = await factory(target, options);
      path.metrics = path.prober.metrics;
      path.lagSpan = lagSpan(path.protocol, path.prober);
    }
  } catch (err) {
    await closeProbers(paths);
    throw err;
  }
}

async function closeProbers(paths: Path[]): Promise<void> {
  await Promise.all(
    paths.map(async (path) => {
      if (!path.prober) return;
      const prober = path.prober;
      path.prober = undefined;
      try {
        const counters = await prober.close();
        if (counters) path.counters = counters;
      } catch {
        // Closing is best effort: the samples are already in.
      }
    }),
  );
}

/**
 * Runs one round. Target failures are data (loss, failure reasons); it throws only for a bad spec
 * or a probe that cannot be set up on this host (e.g. no `ping` binary).
 */
export async function runRound(spec: RoundSpec, deps: RoundDeps = {}): Promise<RoundResult> {
  checkSpec(spec);
  // Before any probe opens: see stamps-on.ts (the agent and the reflector do it at start already).
  keepStampsOn();
  const probes = deps.probes ?? PROBES;
  const random = deps.random ?? Math.random;
  const maxInFlight = spec.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  const terminatesTcp = spec.terminatesTcp ?? true;
  const startedAt = new Date();
  const t0 = performance.now();

  const ownLag = spec.lag === undefined ? new LagMonitor({ thresholdMs: 1 }).start() : undefined;
  const lag = spec.lag ?? ownLag!;
  try {
    const resolved = await resolveEndpoints(spec.endpoints, deps.resolve ?? defaultResolve, spec.timeoutMs);
    const protocols = PROTOCOLS.filter((p) => spec.protocols[p] !== undefined);
    const paths: Path[] = [];
    for (const protocol of protocols) {
      for (const endpoint of spec.endpoints) {
        const r = resolved.get(endpoint.name)!;
        // A transfer path per size, with its own sample count: each sample is a whole download.
        const transfer = protocol === 'transfer' ? spec.protocols.transfer : undefined;
        for (const size of transfer ? transfer.sizes : [undefined]) {
          const path: Path = {
            endpoint,
            protocol,
            address: 'address' in r ? r.address : endpoint.host,
            attempts: new Array(transfer ? (transfer.samples ?? DEFAULT_TRANSFER_SAMPLES) : spec.samples).fill(
              undefined,
            ),
          };
          if (size !== undefined) path.size = size;
          if ('failure' in r) path.dnsFailure = r.failure;
          paths.push(path);
        }
      }
    }

    await createProbers(paths, spec, probes);
    // The round's signal ends the samples in flight at once (timedSample); the launch loop sees it too.
    try {
      await sampleAll(paths, spec, maxInFlight, random, lag);
      if (deps.onSample) observe(paths, deps.onSample);
    } finally {
      await closeProbers(paths);
    }
    if (spec.signal?.aborted)
      throw new AnylatError('ANYLAT_ROUND_ABORTED', `round ${spec.service}: aborted before it finished`);

    const rows = buildRows(paths, spec, terminatesTcp);
    const benefit = computeBenefit(rows.series, { baseline: spec.baseline ?? 'nearest', terminatesTcp });
    const result: RoundResult = {
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
      return {
        agent: result.agent,
        service: result.service,
        started_at: result.started_at,
        scheduled_at: at.toISOString(),
        duration_ms: result.duration_ms,
        paths: result.paths,
        benefit,
      };
    }
    return result;
  } finally {
    ownLag?.stop();
  }
}

/**
 * Cycle c launches sample c of every live path in a fresh random order, spread evenly over one
 * spacing, so each path's samples are `spacingMs` apart and anycast and unicast samples of a cycle
 * are close in time. A launch waits for a free slot when `maxInFlight` samples are out.
 */
async function sampleAll(
  paths: Path[],
  spec: RoundSpec,
  maxInFlight: number,
  random: () => number,
  lag: LagMonitor,
): Promise<void> {
  const all = paths.filter((p) => p.prober !== undefined);
  if (all.length === 0 || spec.signal?.aborted) return;
  // Downloads run alone, after the latency samples (see sampleTransfers).
  const live = all.filter((p) => p.protocol !== 'transfer');
  const slots = new Slots(maxInFlight);
  if (spec.warmup !== false) {
    // Sequence number N: past every counted cycle (0 … N−1), so a prober keyed on it never mixes them.
    await Promise.all(
      live.map(async (path) => {
        await slots.acquire();
        try {
          if (path.prober) await timedSample(path.prober, spec.samples, spec.timeoutMs, spec.signal);
        } finally {
          slots.release();
        }
      }),
    );
  }
  const running: Array<Promise<void>> = [];
  const start = performance.now();
  const step = spec.spacingMs / live.length;
  launching: for (let cycle = 0; cycle < spec.samples; cycle++) {
    const order = shuffled(live, random);
    for (let i = 0; i < order.length; i++) {
      const path = order[i]!;
      await sleepUntil(start + cycle * spec.spacingMs + i * step, spec.signal);
      await slots.acquire();
      const prober = path.prober;
      if (spec.signal?.aborted || !prober) {
        slots.release();
        break launching;
      }
      running.push(
        timedSample(prober, cycle, spec.timeoutMs, spec.signal).then((attempt) => {
          slots.release();
          path.attempts[cycle] = { attempt, flagged: {} };
        }),
      );
    }
  }
  await Promise.all(running);
  await sampleTransfers(
    all.filter((p) => p.protocol === 'transfer'),
    spec,
    random,
  );
  // A reply handled right after a blocked stretch can run before the monitor's timer sees the
  // block; let the monitor tick once more before asking it which samples overlapped lag.
  await new Promise((resolve) => setTimeout(resolve, LAG_SETTLE_MS));
  for (const path of all) {
    const span = path.lagSpan ?? 'whole';
    for (const entry of path.attempts) {
      if (entry) entry.flagged = lagFlags(entry.attempt, span, lag);
    }
  }
}

/** A sample's timeout: a transfer path's own when set, else the round's. */
function sampleTimeout(spec: RoundSpec, path: Path): number {
  return path.protocol === 'transfer' ? (spec.protocols.transfer?.sampleTimeoutMs ?? spec.timeoutMs) : spec.timeoutMs;
}

/**
 * Transfer samples, one at a time, after every other sample of the round has come back: a download
 * fills the link for its duration, and would delay the latency samples it overlapped (and be slowed
 * by them). Cycle c downloads sample c of every (endpoint, size) in a fresh random order, so the
 * anycast and unicast downloads of one size in a cycle are close in time and pair for the benefit.
 */
async function sampleTransfers(paths: Path[], spec: RoundSpec, random: () => number): Promise<void> {
  const cycles = Math.max(0, ...paths.map((p) => p.attempts.length));
  for (let cycle = 0; cycle < cycles; cycle++) {
    for (const path of shuffled(paths, random)) {
      const prober = path.prober;
      if (spec.signal?.aborted || !prober) return;
      if (cycle >= path.attempts.length) continue;
      const attempt = await timedSample(prober, cycle, sampleTimeout(spec, path), spec.signal);
      path.attempts[cycle] = { attempt, flagged: {} };
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
export function lagFlags(
  attempt: Attempt,
  span: 'none' | 'reply' | 'whole',
  lag: LagMonitor,
): Partial<Record<Metric, boolean>> {
  const out: Partial<Record<Metric, boolean>> = {};
  const { t0, t1, lagWindows } = attempt;
  const fallback =
    span === 'none' ? false : span === 'reply' ? lag.delayedAt(t1, REPLY_LAG_SLACK_MS) : lag.overlaps(t0, t1);
  for (const metric of Object.keys(attempt.values) as Metric[]) {
    if (!lagWindows) {
      out[metric] = fallback;
      continue;
    }
    const w = lagWindows[metric];
    out[metric] = w !== undefined && (isOneWindow(w) ? exposed(w, lag) : w.some((piece) => exposed(piece, lag)));
  }
  return out;
}

function isOneWindow(w: LagWindow | readonly LagWindow[]): w is LagWindow {
  return typeof w[0] === 'number';
}

// One callback: only what ran before it can have delayed it. Several: any stall among them.
function exposed(w: LagWindow, lag: LagMonitor): boolean {
  return w[0] === w[1] ? lag.delayedAt(w[1], REPLY_LAG_SLACK_MS) : lag.overlaps(w[0] - REPLY_LAG_SLACK_MS, w[1]);
}

function observe(paths: Path[], onSample: (sample: ObservedSample) => void): void {
  for (const path of paths) {
    path.attempts.forEach((entry, cycle) => {
      if (!entry) return;
      const flaggedMetrics = (Object.keys(entry.flagged) as Metric[]).filter((m) => entry.flagged[m] === true);
      onSample({
        endpoint: path.endpoint.name,
        kind: path.endpoint.kind,
        address: path.address,
        protocol: path.protocol,
        ...(path.size !== undefined ? { size: path.size } : {}),
        cycle,
        attempt: entry.attempt,
        flagged: flaggedMetrics.length > 0,
        flaggedMetrics,
      });
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
function lagSpan(protocol: Protocol, prober: Prober): 'none' | 'reply' | 'whole' {
  switch (protocol) {
    case 'icmp':
      return 'none';
    case 'udp':
      return 'reply';
    case 'tcp': {
      const clock = (prober as { connectClock?: unknown }).connectClock;
      return clock === 'kernel' ? 'reply' : 'whole';
    }
    default:
      return 'whole';
  }
}

function outcome(entry: Path['attempts'][number], metric: Metric): SampleOutcome {
  if (!entry) return { reason: 'error', flagged: false };
  const { attempt } = entry;
  const value = attempt.values[metric];
  if (value !== undefined) return { value, flagged: entry.flagged[metric] === true };
  return { reason: attempt.ok ? 'error' : attempt.reason, flagged: false };
}

function buildRows(
  paths: Path[],
  spec: RoundSpec,
  terminatesTcp: boolean,
): { paths: PathResult[]; series: PathSeries[] } {
  const out: PathResult[] = [];
  const series: PathSeries[] = [];
  for (const protocol of PROTOCOLS) {
    const here = paths.filter((p) => p.protocol === protocol);
    if (here.length === 0) continue;
    // An endpoint that never got a prober (its name did not resolve) reports the metrics the
    // others of this protocol report, so its loss shows beside them.
    const known = new Set<Metric>();
    for (const p of here) for (const m of p.metrics ?? []) known.add(m);
    const metrics =
      known.size > 0 ? PROTOCOL_METRICS[protocol].filter((m) => known.has(m)) : PROTOCOL_METRICS[protocol];
    for (const metric of metrics) {
      for (const path of here) {
        if (path.metrics !== undefined && !path.metrics.includes(metric)) continue;
        const outcomes: SampleOutcome[] =
          path.dnsFailure !== undefined
            ? Array.from({ length: path.attempts.length }, () => ({ reason: 'dns' as const, flagged: false }))
            : path.attempts.map((entry) => outcome(entry, metric));
        const size = path.size !== undefined ? sizeLabel(path.size) : undefined;
        const stats = summarize(outcomes);
        const site = mostFrequent(path.attempts.map((e) => e?.attempt.site));
        const row: PathResult = {
          endpoint: path.endpoint.name,
          kind: path.endpoint.kind,
          address: path.address,
          protocol,
          metric,
          scope: scopeOf(protocol, metric, terminatesTcp),
          ...(size !== undefined ? { size } : {}),
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
          ...(size !== undefined ? { size } : {}),
          ...(stats.p50_ms !== undefined ? { p50: stats.p50_ms } : {}),
          byCycle: outcomes.map((o) => (o.value !== undefined && !o.flagged ? o.value : undefined)),
        });
      }
    }
  }
  return { paths: out, series };
}
