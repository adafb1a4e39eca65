// npm run bench:web [-- --quick]
//
// What one refresh of the dashboard costs, and what it costs the agent. A store like an agent's
// after a week (3 agents at one round a minute: 30,000 rounds, each with 7 protocol/metrics over
// the anycast and one unicast path, site changes as events, a heartbeat per agent), written with
// SQL (bench/lib/big-store.ts). For each window (the page offers up to 24h; 7d
// is asked for by hand, ?since=7d) this requests what the page does per refresh
// (agent/web/public/app.js: services, then benefit, then latency, loss, sites, events and health
// in parallel), refresh after refresh, over real HTTP with JSON parsed. The
// "browser" runs on a thread of its own, so the calling thread (the agent's: the one that started
// the dashboard, whose event loop times the probes) does only what the dashboard puts on it.
// Modes: `thread` (the dashboard on its own thread, as `anylat run` starts it) and `inline` (the
// old behaviour: queries, JSON and HTTP on the agent's thread). On the agent's thread a 1 ms timer
// measures how late it fires (p99, max, ticks late by more than 1 ms), and the agent's own
// LagMonitor says how much of the time it would have flagged samples.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { openStore, type Store } from '../agent/store/index.ts';
import { LagMonitor, type LagWindow } from '../agent/util/lag.ts';
import { startWebServer, type WebServer } from '../agent/web/index.ts';
import { WORKER_NICE } from '../agent/web/thread.ts';
import { fillStore } from './lib/big-store.ts';
import { benchArgs, describeMachine, fmt, machineNote, markdownTable, progress, writeResult } from './lib/output.ts';
import { median, quantile, round } from './lib/stats.ts';

const USAGE = `usage: npm run bench:web [-- --quick] [-- --out FILE]
  Builds a store in a temporary directory and serves it on 127.0.0.1 (a free port); needs no root.
  --quick   3,000 rounds and fewer refreshes, under a minute`;

const AGENTS = 3;
/** one round a minute per agent */
const GAP_MS = 60_000 / AGENTS;
const WINDOWS = ['1h', '6h', '24h', '7d'];
const MODES = ['thread', 'inline'] as const;
type Mode = (typeof MODES)[number];

interface Plan {
  rounds: number;
  /** refreshes per window and mode: at least `min`, at most `max`, more only while within `budgetMs` */
  min: number;
  max: number;
  budgetMs: number;
  idleMs: number;
}

const FULL: Plan = { rounds: 30_000, min: 5, max: 30, budgetMs: 12_000, idleMs: 5_000 };
const QUICK: Plan = { rounds: 3_000, min: 3, max: 10, budgetMs: 1_500, idleMs: 1_000 };

function saveHeartbeats(store: Store, now: number): void {
  for (let a = 0; a < AGENTS; a++) {
    store.saveHeartbeat({
      agent: { id: `agent-${a}`, region: `region-${a}` },
      at: new Date(now).toISOString(),
      version: 'bench',
      uptime_s: 7 * 86_400,
      loop_lag_p99_ms: 1.2,
      rounds_late: 0,
      outbox_rows: 0,
      dead_letters: 0,
    });
  }
}

/**
 * The browser: plain JavaScript on a worker thread of its own. One refresh is what app.js's
 * refresh() requests, in its order; answers the number of rounds the benefit headline covered.
 * A browser normally runs on another machine: on Linux this thread gives way to the agent's as the
 * dashboard's does (WORKER_NICE), so its JSON parsing is not counted as the dashboard's cost.
 */
const CLIENT = `const NICE = ${WORKER_NICE};
const { parentPort } = require('node:worker_threads');
if (process.platform === 'linux') {
  try {
    require('node:os').setPriority(0, NICE);
  } catch {}
}
async function getJson(base, path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v) q.set(k, v);
  const res = await fetch(base + path.slice(1) + (q.toString() ? '?' + q : ''));
  const body = await res.json();
  if (!res.ok) throw new Error(path + ': HTTP ' + res.status + ' ' + JSON.stringify(body));
  return body;
}
async function refresh(base, since) {
  const services = await getJson(base, '/api/services');
  const params = { service: services.default_service || '', since };
  const benefit = await getJson(base, '/api/benefit', params);
  const withMetric = { ...params, metric: benefit.metric || '' };
  await Promise.all([
    getJson(base, '/api/latency', withMetric),
    getJson(base, '/api/loss', params),
    getJson(base, '/api/sites', withMetric),
    getJson(base, '/api/events', params),
    getJson(base, '/api/health'),
  ]);
  return benefit.regions.reduce((n, r) => n + (r.headline ? r.headline.rounds : 0), 0);
}
parentPort.on('message', async ({ base, since, min, max, budgetMs }) => {
  try {
    const ms = [];
    let rounds = 0;
    const t0 = performance.now();
    while (ms.length < max && (ms.length < min || performance.now() - t0 < budgetMs)) {
      const a = performance.now();
      rounds = await refresh(base, since);
      ms.push(performance.now() - a);
    }
    parentPort.postMessage({ ok: true, ms, rounds });
  } catch (err) {
    parentPort.postMessage({ ok: false, message: String((err && err.stack) || err) });
  }
});
`;

interface ClientReply {
  ok: boolean;
  ms: number[];
  rounds: number;
  message?: string;
}

function ask(
  client: Worker,
  request: { base: string; since: string; min: number; max: number; budgetMs: number },
): Promise<{ ms: number[]; rounds: number }> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    client.once('error', onError);
    client.once('message', (m: ClientReply) => {
      client.off('error', onError);
      if (m.ok) resolve(m);
      else reject(new Error(`a refresh failed: ${m.message}`));
    });
    client.postMessage(request);
  });
}

/** How the agent's thread kept time meanwhile. */
interface AgentLag {
  seconds: number;
  ticks: number;
  /** how late a 1 ms timer fired, as the agent's LagMonitor measures it (its heartbeat's loop lag) */
  lagP99Ms: number;
  lagMaxMs: number;
  /** ticks more than 1 ms late */
  lateTicks: number;
  /** share of the time inside stretches the agent's LagMonitor (its defaults) would flag samples in */
  flaggedPct: number;
  /** of those, stretches in which this thread itself was busy (the rest: it was not scheduled) */
  flaggedBusyPct: number;
  /** event-loop utilization of this thread (the two 1 ms timers alone take a little) */
  utilization: number;
}

/**
 * Runs `work` while watching this thread's event loop: a 1 ms timer as LagMonitor's (how late it
 * fires; stretches with more than 1 ms of this thread's own activity between two ticks), and the
 * agent's LagMonitor itself for what it would flag.
 */
async function watchLoop<T>(work: () => Promise<T>): Promise<{ result: T; lag: AgentLag }> {
  const lags: number[] = [];
  const busy: LagWindow[] = [];
  let last = performance.now();
  let lastActive = performance.eventLoopUtilization().active;
  const timer = setInterval(() => {
    const now = performance.now();
    const active = performance.eventLoopUtilization().active;
    lags.push(Math.max(0, now - last - 1));
    if (active - lastActive > 1) busy.push({ from: last, to: now });
    last = now;
    lastActive = active;
  }, 1);
  const monitor = new LagMonitor().start();
  const elu = performance.eventLoopUtilization();
  const t0 = performance.now();
  try {
    const result = await work();
    // One more tick, so a stall at the very end is seen.
    await new Promise((r) => setTimeout(r, 5));
    const t1 = performance.now();
    return {
      result,
      lag: {
        seconds: (t1 - t0) / 1000,
        ticks: lags.length,
        lagP99Ms: quantile(lags, 0.99),
        lagMaxMs: Math.max(...lags),
        lateTicks: lags.filter((x) => x > 1).length,
        flaggedPct: (100 * covered(monitor.windowsSince(t0), t0, t1)) / (t1 - t0),
        flaggedBusyPct: (100 * covered(busy, t0, t1)) / (t1 - t0),
        utilization: performance.eventLoopUtilization(elu).utilization,
      },
    };
  } finally {
    clearInterval(timer);
    monitor.stop();
  }
}

/** Length of the union of `windows` within [t0, t1]. */
function covered(windows: readonly LagWindow[], t0: number, t1: number): number {
  let total = 0;
  let end = t0;
  for (const w of [...windows].sort((a, b) => a.from - b.from)) {
    const from = Math.max(w.from, end);
    const to = Math.min(w.to, t1);
    if (to > from) total += to - from;
    end = Math.max(end, to);
  }
  return total;
}

interface Run {
  window: string;
  roundsInWindow: number;
  mode: Mode;
  refreshes: number;
  refreshMs: number[];
  refreshMedianMs: number;
  refreshP95Ms: number;
  agent: AgentLag;
}

/** What a run measured, with the machine it ran on: everything the report prints and keeps. */
interface Measured {
  plan: Plan;
  started: number;
  before: ReturnType<typeof machineNote>;
  runs: Run[];
  idle: AgentLag;
  fillS: number;
}

/** A week's store: the rounds written with SQL, then one heartbeat per agent; answers the seconds it took. */
function fillBenchStore(store: Store, path: string, plan: Plan): number {
  progress(
    `filling a store with ${plan.rounds} rounds (${AGENTS} agents, one round a minute each: ${fmt((plan.rounds * GAP_MS) / 86_400_000, 1)} days)`,
  );
  const t0 = performance.now();
  const now = Date.now();
  fillStore(path, { rounds: plan.rounds, agents: AGENTS, gapMs: GAP_MS, now });
  saveHeartbeats(store, now);
  return (performance.now() - t0) / 1000;
}

/** One window in one mode: a warm-up refresh, then refresh after refresh while the agent's thread is watched. */
async function measureRun(client: Worker, base: string, since: string, mode: Mode, plan: Plan): Promise<Run> {
  // Warm-up: the dashboard's connection and page cache, the client's connections.
  await ask(client, { base, since, min: 1, max: 1, budgetMs: 0 });
  const { result, lag } = await watchLoop(() =>
    ask(client, { base, since, min: plan.min, max: plan.max, budgetMs: plan.budgetMs }),
  );
  const run: Run = {
    window: since,
    roundsInWindow: result.rounds,
    mode,
    refreshes: result.ms.length,
    refreshMs: result.ms.map((x) => round(x, 1)),
    refreshMedianMs: median(result.ms),
    refreshP95Ms: quantile(result.ms, 0.95),
    agent: lag,
  };
  progress(
    `${since} ${mode}: ${run.refreshes} refreshes, median ${fmt(run.refreshMedianMs, 0)} ms; agent lag p99 ${fmt(lag.lagP99Ms, 2)} ms, max ${fmt(lag.lagMaxMs, 1)} ms, flagged ${fmt(lag.flaggedPct, 1)}%`,
  );
  return run;
}

/** Fills the store, serves it both ways, watches the idle agent thread, then every window in every mode. */
async function measure(plan: Plan): Promise<Measured> {
  const started = Date.now();
  const before = machineNote();
  const dir = mkdtempSync(join(tmpdir(), 'anylat-bench-web-'));
  let store: Store | undefined;
  const servers: Partial<Record<Mode, WebServer>> = {};
  let client: Worker | undefined;
  const runs: Run[] = [];
  try {
    const path = join(dir, 'anylat.db');
    store = openStore(path, {
      retention: { maxAgeMs: 30 * 86_400_000, maxRows: 10_000_000 },
      outbox: false,
      log: () => {},
    });
    const fillS = fillBenchStore(store, path, plan);
    // As `anylat run` starts it (the agent's own handle), and as it ran before (inline).
    servers.thread = await startWebServer({ store, listen: '127.0.0.1:0', log: () => {} });
    servers.inline = await startWebServer({ store, listen: '127.0.0.1:0', log: () => {}, inline: true });
    client = new Worker(CLIENT, { eval: true });

    progress(`idle: the agent's thread with no request, ${plan.idleMs / 1000} s`);
    const idle = (await watchLoop(() => new Promise((r) => setTimeout(r, plan.idleMs)))).lag;

    for (const since of WINDOWS) {
      for (const mode of MODES) runs.push(await measureRun(client, servers[mode]!.url, since, mode, plan));
    }
    return { plan, started, before, runs, idle, fillS };
  } finally {
    await client?.terminate();
    await servers.thread?.close();
    await servers.inline?.close();
    store?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function refreshTable(runs: readonly Run[]): string {
  return markdownTable(
    [
      'window',
      'rounds in window',
      'mode',
      'refreshes',
      'refresh median ms',
      'refresh p95 ms',
      'agent-thread lag p99 ms',
      'lag max ms',
      'ticks late > 1 ms',
      'agent time flagged %',
    ],
    runs.map((r) => [
      r.window,
      r.roundsInWindow,
      r.mode,
      r.refreshes,
      fmt(r.refreshMedianMs, 0),
      fmt(r.refreshP95Ms, 0),
      fmt(r.agent.lagP99Ms, 2),
      fmt(r.agent.lagMaxMs, 1),
      `${r.agent.lateTicks} of ${r.agent.ticks}`,
      fmt(r.agent.flaggedPct, 1),
    ]),
  );
}

function reportLines(m: Measured, after: ReturnType<typeof machineNote>): string[] {
  const { plan, runs, idle } = m;
  const threaded = runs.filter((r) => r.mode === 'thread');
  return [
    `One whole page refresh (services, benefit, then latency, loss, sites, events and health in parallel; HTTP and JSON included), back to back, over a store of ${plan.rounds} rounds (${AGENTS} agents at one round a minute); the agent's thread is the one that started the dashboard`,
    '',
    refreshTable(runs),
    '',
    `Thread mode: the agent's thread was busy itself (more than 1 ms of its own work between two ticks) for ${threaded.map((r) => `${fmt(r.agent.flaggedBusyPct, 1)}% (${r.window})`).join(', ')} of the time; the rest of its flagged time it waited for a CPU while the dashboard's and the browser's threads ran.`,
    '',
    `Idle (no request, ${fmt(idle.seconds, 1)} s): agent-thread lag p99 ${fmt(idle.lagP99Ms, 2)} ms, max ${fmt(idle.lagMaxMs, 1)} ms, ${idle.lateTicks} of ${idle.ticks} ticks late > 1 ms, ${fmt(idle.flaggedPct, 1)}% of the time flagged.`,
    '',
    `machine: ${describeMachine(m.before)}; at the end: load ${after.loadavg.join(' / ')}; store filled in ${fmt(m.fillS, 1)} s; ran ${Math.round((Date.now() - m.started) / 1000)} s`,
  ];
}

async function main(): Promise<void> {
  const args = benchArgs('web', USAGE);
  const plan = args.quick ? QUICK : FULL;
  const m = await measure(plan);
  const after = machineNote();
  process.stdout.write(`${reportLines(m, after).join('\n')}\n`);
  writeResult(args.out, {
    benchmark: 'web',
    quick: args.quick,
    elapsedS: Math.round((Date.now() - m.started) / 1000),
    machine: { before: m.before, after },
    agents: AGENTS,
    rounds: plan.rounds,
    plan,
    idle: m.idle,
    runs: m.runs,
  });
}

await main();
