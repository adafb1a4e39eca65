// The long-running agent: schedule → round → store (→ sink → InfluxDB), plus the `agent`
// heartbeat. The store is written first, in one transaction per round; the sink drains it on its
// own, so an InfluxDB outage never holds up a round and an agent restart never loses one.
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import type { AgentHeartbeat, AgentIdentity, AnylatEvent, Endpoint, PathTrace, RoundResult } from './core/model.ts';
import type { AnylatConfig, ServiceConfig } from './config/types.ts';
import { deriveEvents, type RoundState } from './round/events.ts';
import { TraceLimiter, traceRequests, type BenefitHistory, type TraceRequest } from './round/trace-trigger.ts';
import { keepStampsOn } from './net/stamps-on.ts';
import { trace } from './net/trace.ts';
import { runRound, type RoundSpec } from './round/run-round.ts';
import { agentFamilies, type AgentHealth } from './metrics/agent-metrics.ts';
import { renderExposition } from './metrics/exposition.ts';
import { LoopDelay, startMetricsServer, type MetricsServer } from './metrics/server.ts';
import { Scheduler, type ScheduledRound } from './schedule/scheduler.ts';
import { serviceTiming } from './schedule/timing.ts';
import { Sink } from './sink/sink.ts';
import { displayUrl } from './sink/redact.ts';
import { openStore, type Store } from './store/store.ts';
import { LagMonitor } from './util/lag.ts';
import { ConfigError, errorMessage } from './util/errors.ts';
import { VERSION } from './version.ts';

/** How often the `agent` heartbeat is written. */
export const HEARTBEAT_INTERVAL_MS = 60_000;

/** Shutdown bounds: rounds in flight get `roundGraceMs` to finish, the sink `drainMs` to deliver. */
export const SHUTDOWN_DEFAULTS = { roundGraceMs: 5_000, drainMs: 3_000 } as const;

/**
 * What a web dashboard gets when `web.listen` is set. The dashboard (agent/web/) is started through
 * `AgentOptions.web`; the agent itself serves nothing.
 */
export interface WebContext {
  config: AnylatConfig;
  store: Store;
  /** the sink's delivery status, when InfluxDB is configured */
  sinkStatus?: () => ReturnType<Sink['status']>;
  /** the agent's counters, as the heartbeat reports them */
  heartbeat: () => AgentHeartbeat;
  log: (line: string) => void;
  /** `/metrics` text, when `web.metrics` is set */
  metrics?: () => string;
}

export interface WebHandle {
  /** where it listens, for the log */
  url: string;
  close(): Promise<void>;
}

export interface AgentOptions {
  config: AnylatConfig;
  /** log line sink; default stderr with an ISO timestamp */
  log?: (line: string) => void;
  heartbeatIntervalMs?: number;
  /** starts the web dashboard when `config.web` is set */
  web?: (ctx: WebContext) => Promise<WebHandle>;
  /**
   * Keep InfluxDB lines in the store's outbox even without an `influx` section, for a sink in
   * another process to deliver (`anylat demo` does, from outside the lab's namespaces). Default:
   * only with an `influx` section.
   */
  outbox?: boolean;
}

/** What a reload did: `failed` keeps the running config; `problems` are `config check`'s lines. */
export interface ReloadResult {
  result: 'applied' | 'unchanged' | 'failed';
  version: string;
  added: string[];
  removed: string[];
  changed: string[];
  /** sections that changed but only take effect at the next start (store, influx, web, metrics, agent.id) */
  needsRestart: string[];
  problems: string[];
}

export interface StopResult {
  roundsFinished: number;
  roundsAbandoned: number;
  roundsNotStarted: number;
  /** lines InfluxDB acknowledged during the final drain, and lines left for the next start */
  delivered?: number;
  remaining?: number;
}

function defaultLog(line: string): void {
  process.stderr.write(`${new Date().toISOString()} ${line}\n`);
}

/** Endpoints of a service as the round names them: `anycast`, `anycast-2`, … then the unicast names. */
export function endpointsOf(service: ServiceConfig): Endpoint[] {
  return [
    ...service.anycast.map((host, i): Endpoint => ({
      name: i === 0 ? 'anycast' : `anycast-${i + 1}`,
      kind: 'anycast',
      host,
    })),
    ...service.unicast.map((u): Endpoint => ({ name: u.name, kind: 'unicast', host: u.host })),
  ];
}

/** One round of a service (`anylat run` each time it is due, `anylat compare` once). */
export function roundSpecOf(service: ServiceConfig, agent: AgentIdentity): RoundSpec {
  const spec: RoundSpec = {
    service: service.name,
    agent,
    endpoints: endpointsOf(service),
    protocols: service.probes,
    samples: service.samples,
    spacingMs: service.spacingMs,
    timeoutMs: service.timeoutMs,
    baseline: service.baseline,
    terminatesTcp: service.terminatesTcp,
  };
  if (service.maxInFlight !== undefined) spec.maxInFlight = service.maxInFlight;
  return spec;
}

function identityOf(c: AnylatConfig): AgentIdentity {
  const a = c.agent;
  return { id: a.id, region: a.region, ...(Object.keys(a.labels).length > 0 ? { labels: a.labels } : {}) };
}

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)}s` : `${Math.round(ms)}ms`;
}

/** One log line per round: what a person tailing the log wants to see. */
export function roundLogLine(round: RoundResult, late: boolean): string {
  const lead = round.benefit.find((b) => b.scope === 'end_to_end');
  const benefit = lead
    ? `${lead.protocol} ${lead.metric} ${lead.saved_ms >= 0 ? 'saved' : 'lost'} ${Math.abs(lead.saved_ms).toFixed(1)} ms (${lead.saved_pct.toFixed(1)}%) vs ${lead.baseline}`
    : 'no end-to-end benefit (no pair of comparable samples)';
  const lossy = round.paths.filter((p) => p.loss_pct > 0);
  const loss =
    lossy.length === 0
      ? 'no loss'
      : `loss on ${[...new Set(lossy.map((p) => `${p.endpoint}/${p.protocol}`))].join(', ')}`;
  const lateBy =
    late && round.scheduled_at
      ? `; late by ${fmtMs(Date.parse(round.started_at) - Date.parse(round.scheduled_at))}`
      : '';
  const events = (round.events ?? []).map((e) => `; ${e.type}: ${e.message}`).join('');
  return `round ${round.service}: ${fmtMs(round.duration_ms)}, ${benefit}; ${loss}${lateBy}${events}`;
}

export class Agent {
  private current: AnylatConfig;
  private readonly log: (line: string) => void;
  private identity: AgentIdentity;
  private services: Map<string, ServiceConfig>;
  private readonly heartbeatIntervalMs: number;
  private readonly webStarter: AgentOptions['web'];
  private readonly keepOutbox: boolean;
  private readonly startedAt = performance.now();
  private store: Store | undefined;
  private sink: Sink | undefined;
  private scheduler: Scheduler | undefined;
  private lag: LagMonitor | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private web: WebHandle | undefined;
  private roundsSaved = 0;
  private roundsFailed = 0;
  private metricsServer: MetricsServer | undefined;
  private loopDelay: LoopDelay | undefined;
  private readonly reloads = { applied: 0, unchanged: 0, failed: 0 };
  private lastReload: { ok: boolean; atMs: number } | undefined;
  private readonly startedAtMs = Date.now();
  /** path context (`trace:`): benefit history per service, rate limit per path, traces running */
  private readonly benefitHistory = new Map<string, BenefitHistory>();
  private traceLimiter: TraceLimiter | undefined;
  private readonly tracing = new Set<Promise<void>>();
  private readonly traceAbort = new AbortController();

  constructor(options: AgentOptions) {
    this.current = options.config;
    this.log = options.log ?? defaultLog;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS;
    this.webStarter = options.web;
    this.keepOutbox = options.outbox === true;
    this.identity = identityOf(this.current);
    this.services = new Map(this.current.services.map((s) => [s.name, s]));
  }

  /** The running config (a reload replaces it). */
  get config(): AnylatConfig {
    return this.current;
  }

  /** Opens the store, starts the sink, the web dashboard (when set) and the schedule. */
  async start(): Promise<void> {
    // Well before the first round's first datagram (stamps-on.ts says why).
    keepStampsOn();
    const c = this.config;
    this.store = openStore(c.store.path, {
      retention: { maxAgeMs: c.store.retention.ageMs, maxRows: c.store.retention.rows },
      // Without InfluxDB nobody would ever drain the outbox: do not fill it.
      outbox: c.influx !== undefined || this.keepOutbox,
      log: this.log,
    });
    if (c.influx) {
      this.sink = new Sink({
        store: this.store,
        agent: c.agent.id,
        influx: { url: c.influx.url, token: c.influx.token, org: c.influx.org, bucket: c.influx.bucket },
        setAsideAfterMs: c.influx.setAsideAfterMs,
        log: this.log,
      });
      this.sink.start();
    }
    this.lag = new LagMonitor().start();
    if (c.metrics || c.web?.metrics) this.loopDelay = new LoopDelay();
    if (c.web) {
      if (this.webStarter) {
        const ctx: WebContext = { config: c, store: this.store, heartbeat: () => this.heartbeat(false), log: this.log };
        if (c.web.metrics) ctx.metrics = () => this.metricsText();
        if (this.sink) {
          const sink = this.sink;
          ctx.sinkStatus = () => sink.status();
        }
        this.web = await this.webStarter(ctx);
        this.log(`web: dashboard on ${this.web.url}`);
      } else {
        this.log(
          `web: web.listen is set (${c.web.host}:${c.web.port}) but nothing was given to serve it; no dashboard`,
        );
      }
    }
    if (c.metrics) {
      this.metricsServer = await startMetricsServer({ ...c.metrics, render: () => this.metricsText(), log: this.log });
      this.log(`metrics: Prometheus metrics on ${this.metricsServer.url}`);
    }
    const timings = c.services.map((s) => serviceTiming(c.agent.id, s.name, s.schedule, s.deadlineMs));
    this.scheduler = new Scheduler({ timings, run: (r) => this.runOne(r), log: this.log });
    this.scheduler.start();
    this.writeHeartbeat();
    this.heartbeatTimer = setInterval(() => this.writeHeartbeat(), this.heartbeatIntervalMs);
    this.log(
      `anylat ${VERSION}: agent ${c.agent.id} (${c.agent.region}) running ${c.services.length} service${c.services.length === 1 ? '' : 's'} ` +
        `(${timings.map((t) => `${t.service} "${t.schedule}" +${t.phaseMs}ms`).join(', ')}); store ${c.store.path}; ` +
        `${c.influx ? `InfluxDB ${displayUrl(c.influx.url)} bucket ${c.influx.bucket}` : 'no InfluxDB'}`,
    );
  }

  private spec(service: ServiceConfig, scheduledAt: Date): RoundSpec {
    const spec = roundSpecOf(service, this.identity);
    spec.scheduledAt = scheduledAt;
    if (this.lag) spec.lag = this.lag;
    return spec;
  }

  /**
   * One scheduled round. At its deadline or at shutdown (the signal) the round is abandoned: the
   * agent stops waiting, keeps nothing of it, and logs what became of it when it ends. A round
   * cannot save half its paths: the store gets whole rounds or none.
   */
  private async runOne(slot: ScheduledRound): Promise<void> {
    const service = this.services.get(slot.service);
    const store = this.store;
    if (!service || !store) return;
    // The slot's signal aborts at the deadline or at shutdown: the round then closes its probers
    // at once instead of running on beside the service's next round.
    const pending = runRound({ ...this.spec(service, slot.scheduledAt), signal: slot.signal });
    const abandoned = new Promise<'abandoned'>((resolve) => {
      if (slot.signal.aborted) resolve('abandoned');
      slot.signal.addEventListener('abort', () => resolve('abandoned'), { once: true });
    });
    const outcome = await Promise.race([pending, abandoned]);
    if (outcome === 'abandoned') {
      const why =
        slot.signal.reason === 'shutdown'
          ? 'the agent is shutting down'
          : `it passed its ${service.deadlineMs} ms deadline`;
      this.log(`round ${slot.service}: abandoned (${why}); nothing of it is stored`);
      pending.then(
        (r) => this.log(`round ${slot.service}: the abandoned round ended after ${fmtMs(r.duration_ms)}; discarded`),
        (err: unknown) => this.log(`round ${slot.service}: the abandoned round failed: ${errorMessage(err)}`),
      );
      return;
    }
    const round = outcome;
    const previous = store.serviceState(service.name, this.identity.id) as RoundState | undefined;
    const { events, state } = deriveEvents(previous, round);
    if (events.length > 0) round.events = events;
    let roundId: number;
    try {
      roundId = store.saveRound(round, { state });
    } catch (err) {
      // The round was measured but is lost: count it, so the heartbeat and the dashboards show it.
      this.roundsFailed++;
      this.log(
        `round ${slot.service}: measured but not stored (${errorMessage(err)}); counted in rounds_failed (${this.roundsFailed} so far)`,
      );
      return;
    }
    this.roundsSaved++;
    this.sink?.notify();
    this.log(roundLogLine(round, slot.late));
    this.traceAfter(round, roundId, events);
  }

  /**
   * Path context: when the round calls for it (trace-trigger.ts) and the path's rate limit allows,
   * traces the paths one after another in the background; the round is never held up. Each trace
   * is saved with the round (and queued for InfluxDB) when it ends.
   */
  private traceAfter(round: RoundResult, roundId: number, events: AnylatEvent[]): void {
    const cfg = this.current.trace;
    if (!cfg?.enabled) return;
    const { requests, history } = traceRequests(round, events, this.benefitHistory.get(round.service), cfg.shiftMs);
    this.benefitHistory.set(round.service, history);
    if (!this.traceLimiter) this.traceLimiter = new TraceLimiter(cfg.minIntervalMs);
    else this.traceLimiter.setInterval(cfg.minIntervalMs);
    const limiter = this.traceLimiter;
    const todo = requests.filter((r) => limiter.take(`${round.service}/${r.endpoint}`));
    if (todo.length === 0 || this.traceAbort.signal.aborted) return;
    const run = async (): Promise<void> => {
      for (const r of todo) {
        if (this.traceAbort.signal.aborted) return;
        await this.traceOne(round, roundId, r, cfg.maxHops, cfg.port, cfg.names);
      }
    };
    const p = run().finally(() => this.tracing.delete(p));
    this.tracing.add(p);
  }

  private async traceOne(
    round: RoundResult,
    roundId: number,
    r: TraceRequest,
    maxHops: number,
    port: number,
    names: boolean,
  ): Promise<void> {
    const tracedAt = new Date();
    try {
      const res = await trace(r.address, { maxHops, port, names, signal: this.traceAbort.signal });
      const t: PathTrace = {
        agent: round.agent,
        service: round.service,
        trigger: r.trigger,
        reason: r.reason,
        endpoint: r.endpoint,
        kind: r.kind,
        address: r.address,
        at: round.started_at,
        traced_at: tracedAt.toISOString(),
        duration_ms: res.duration_ms,
        reached: res.reached,
        hops: res.hops,
      };
      const saved = this.store?.saveTrace(roundId, t) ?? false;
      if (saved) this.sink?.notify();
      const hops = res.hops.map((h) => h.address ?? '*').join(' > ');
      this.log(
        `trace ${round.service} ${r.endpoint} (${r.trigger}): ${hops}${res.reached ? '' : ' (not reached)'}${saved ? '' : '; not stored (the round is gone)'}`,
      );
    } catch (err) {
      this.log(`trace ${round.service} ${r.endpoint} (${r.trigger}): failed: ${errorMessage(err)}`);
    }
  }

  /** Traces still running (tests wait for them). */
  async tracesSettled(): Promise<void> {
    while (this.tracing.size > 0) await Promise.allSettled([...this.tracing]);
  }

  /**
   * Applies a new config without losing a round: `load` reads and validates it (a ConfigError
   * keeps the running config and is reported line by line). Rounds in flight finish with the
   * settings they started with; services whose settings did not change keep their cron, phase,
   * waiting rounds and state (the store's per-service state is keyed by name); removed ones stop
   * after their current round; added ones start at their next slot plus their phase. The store,
   * the outbox, the sink and the web and metrics servers are never reopened: a change to them is
   * logged as needing a restart and the running values are kept.
   */
  reload(load: () => AnylatConfig): ReloadResult {
    const atMs = Date.now();
    let next: AnylatConfig;
    try {
      next = load();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return this.reloadFailed(err, atMs);
    }
    const old = this.current;
    const { applied, needsRestart } = keepFixedParts(old, next);

    const oldServices = this.services;
    const added = next.services.filter((s) => !oldServices.has(s.name)).map((s) => s.name);
    const removed = [...oldServices.keys()].filter((name) => !next.services.some((s) => s.name === name));
    const changed = next.services
      .filter((s) => oldServices.has(s.name) && !isDeepStrictEqual(oldServices.get(s.name), s))
      .map((s) => s.name);
    const identityChanged = !isDeepStrictEqual(old.agent, applied.agent);

    this.current = applied;
    this.identity = identityOf(applied);
    this.services = new Map(applied.services.map((s) => [s.name, s]));
    const timings = applied.services.map((s) => serviceTiming(applied.agent.id, s.name, s.schedule, s.deadlineMs));
    const schedule = this.scheduler?.update(timings);

    const nothing = added.length === 0 && removed.length === 0 && changed.length === 0 && !identityChanged;
    const result: ReloadResult = {
      result: nothing ? 'unchanged' : 'applied',
      version: applied.origin.version,
      added,
      removed,
      changed,
      needsRestart,
      problems: [],
    };
    this.reloads[result.result]++;
    this.lastReload = { ok: true, atMs };
    const list = (what: string, names: string[]) => (names.length > 0 ? [`${what} ${names.join(', ')}`] : []);
    const parts = [
      ...list('added', added),
      ...list('removed (after their current round)', removed),
      ...list('changed', changed),
      ...list('new schedule for', schedule?.retimed ?? []),
      ...(identityChanged ? ['agent region/labels/position changed'] : []),
    ];
    this.log(
      `config: version ${applied.origin.version} ${nothing ? 'has no change to apply' : `applied: ${parts.join('; ')}`}` +
        (old.origin.version !== applied.origin.version ? ` (was ${old.origin.version})` : ''),
    );
    if (needsRestart.length > 0)
      this.log(
        `config: ${needsRestart.join(', ')} changed; that takes effect at the next start (the running ones are kept)`,
      );
    // The fleet dashboard sees the new version (or the failure) now, not at the next minute's heartbeat.
    this.writeHeartbeat();
    return result;
  }

  /** A reload whose config did not load: the running one is kept, the problems are logged. */
  private reloadFailed(err: ConfigError, atMs: number): ReloadResult {
    this.reloads.failed++;
    this.lastReload = { ok: false, atMs };
    this.log(
      `config: reload failed, keeping version ${this.current.origin.version}: ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}`,
    );
    for (const p of err.problems) this.log(`config: ${p}`);
    this.writeHeartbeat();
    return {
      result: 'failed',
      version: this.current.origin.version,
      added: [],
      removed: [],
      changed: [],
      needsRestart: [],
      problems: [...err.problems],
    };
  }

  /** The agent's health for `/metrics`, as it is now. */
  health(): AgentHealth {
    const a = this.current.agent;
    const counters = this.scheduler?.stats();
    const store = this.store;
    const oldest = store?.outboxOldestAt(a.id);
    const h: AgentHealth = {
      agent: { id: a.id, region: a.region },
      version: VERSION,
      startedAtMs: this.startedAtMs,
      services: this.services.size,
      rounds: {
        started: counters?.roundsStarted ?? 0,
        late: counters?.roundsLate ?? 0,
        skipped: counters?.roundsSkipped ?? 0,
        abandoned: counters?.roundsAbandoned ?? 0,
        failed: this.roundsFailed,
        stored: this.roundsSaved,
      },
      store: {
        outboxRows: store?.outboxRows(a.id) ?? 0,
        deadLetters: store?.deadLetters(a.id) ?? 0,
        droppedRows: store?.droppedRows ?? 0,
      },
      loopLag: this.loopDelay?.value() ?? { p99Ms: 0, maxMs: 0 },
      config: {
        version: this.current.origin.version,
        source: this.current.origin.kind,
        reloads: { ...this.reloads },
      },
    };
    if (oldest !== undefined) h.store.outboxOldestAtMs = oldest;
    if (this.current.origin.publishedAtMs !== undefined) h.config.publishedAtMs = this.current.origin.publishedAtMs;
    if (this.lastReload) h.config.lastReload = { ...this.lastReload };
    if (this.sink) {
      const st = this.sink.status();
      h.sink = {
        delivered: st.delivered,
        deadLettered: st.deadLettered,
        lastBatchLines: st.lastBatchLines,
        consecutiveFailures: st.consecutiveFailures,
        errors: st.errors,
      };
    }
    return h;
  }

  /** `/metrics` in the Prometheus text format. */
  metricsText(): string {
    return renderExposition(agentFamilies(this.health()));
  }

  /** The heartbeat as it would be written now; `takeLag` consumes the loop-lag samples. */
  heartbeat(takeLag = true): AgentHeartbeat {
    const a = this.current.agent;
    const counters = this.scheduler?.stats();
    const hb: AgentHeartbeat = {
      agent: this.identity,
      at: new Date().toISOString(),
      version: VERSION,
      uptime_s: Math.round((performance.now() - this.startedAt) / 1000),
      loop_lag_p99_ms: takeLag && this.lag ? Math.round(this.lag.takeP99() * 1000) / 1000 : 0,
      rounds_late: counters?.roundsLate ?? 0,
      rounds_skipped: (counters?.roundsSkipped ?? 0) + (counters?.roundsAbandoned ?? 0),
      rounds_failed: this.roundsFailed,
      outbox_rows: this.store?.outboxRows(a.id) ?? 0,
      dead_letters: this.store?.deadLetters(a.id) ?? 0,
      dropped_rows: this.store?.droppedRows ?? 0,
      config_version: this.current.origin.version,
    };
    if (this.current.origin.publishedAtMs !== undefined)
      hb.config_published_s = Math.round(this.current.origin.publishedAtMs / 1000);
    if (this.lastReload) hb.config_reload_ok = this.lastReload.ok ? 1 : 0;
    if (this.sink) hb.sink_batch = this.sink.batchLines;
    if (a.lat !== undefined) hb.lat = a.lat;
    if (a.lon !== undefined) hb.lon = a.lon;
    return hb;
  }

  private writeHeartbeat(): void {
    try {
      this.store?.saveHeartbeat(this.heartbeat());
      this.sink?.notify();
    } catch (err) {
      this.log(`heartbeat: not stored: ${errorMessage(err)}`);
    }
  }

  /** Services whose round is running right now. */
  running(): string[] {
    return this.scheduler?.running() ?? [];
  }

  /** Rounds measured but not stored since start (the heartbeat's `rounds_failed`). */
  get failed(): number {
    return this.roundsFailed;
  }

  /** Rounds saved since start (for tests and the web dashboard). */
  get saved(): number {
    return this.roundsSaved;
  }

  /**
   * Graceful stop: no new rounds; rounds in flight get `roundGraceMs`, then are abandoned; a last
   * heartbeat; the sink delivers what InfluxDB takes within `drainMs`; the store closes. What
   * InfluxDB did not acknowledge stays in the outbox for the next start.
   */
  async stop(bounds: { roundGraceMs?: number; drainMs?: number } = {}): Promise<StopResult> {
    const graceMs = bounds.roundGraceMs ?? SHUTDOWN_DEFAULTS.roundGraceMs;
    const drainMs = bounds.drainMs ?? SHUTDOWN_DEFAULTS.drainMs;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    const rounds = this.scheduler
      ? await this.scheduler.stop(graceMs)
      : { finished: 0, aborted: 0, dropped: 0, stillRunning: 0 };
    // Traces in flight stop at their next probe window; what they found so far is saved.
    this.traceAbort.abort();
    await this.tracesSettled();
    const result: StopResult = {
      roundsFinished: rounds.finished,
      roundsAbandoned: rounds.aborted,
      roundsNotStarted: rounds.dropped,
    };
    this.writeHeartbeat();
    if (this.sink) {
      const drained = await this.sink.drain(drainMs);
      result.delivered = drained.delivered;
      result.remaining = drained.remaining;
    }
    if (this.metricsServer) await this.metricsServer.close();
    this.loopDelay?.stop();
    if (this.web) await this.web.close().catch((err: unknown) => this.log(`web: close failed: ${errorMessage(err)}`));
    this.lag?.stop();
    this.store?.close();
    this.store = undefined;
    return result;
  }
}

/**
 * The config a reload applies: `next`, with the parts that are never reopened while running (agent
 * id, store, influx, web, metrics) kept as they were, and the names of those that changed.
 */
function keepFixedParts(old: AnylatConfig, next: AnylatConfig): { applied: AnylatConfig; needsRestart: string[] } {
  const needsRestart: string[] = [];
  const fixed = {
    'agent.id': [old.agent.id, next.agent.id],
    store: [old.store, next.store],
    influx: [
      old.influx && { ...old.influx, token: old.influx.token.reveal() },
      next.influx && { ...next.influx, token: next.influx.token.reveal() },
    ],
    web: [old.web, next.web],
    metrics: [old.metrics, next.metrics],
  } as const;
  for (const [name, [a, b]] of Object.entries(fixed)) if (!isDeepStrictEqual(a, b)) needsRestart.push(name);
  const applied: AnylatConfig = { ...next, agent: { ...next.agent, id: old.agent.id }, store: old.store };
  if (old.influx) applied.influx = old.influx;
  else delete applied.influx;
  if (old.web) applied.web = old.web;
  else delete applied.web;
  if (old.metrics) applied.metrics = old.metrics;
  else delete applied.metrics;
  return { applied, needsRestart };
}
