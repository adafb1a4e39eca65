// The agent side of bench/scale.ts, run inside the lab's agent namespace, one process per step so
// its peak RSS is the step's: the real scheduler (agent/schedule) fires each service's rounds on
// its cron with its phase, runRound measures, the embedded store saves each round with its
// InfluxDB lines in the outbox, one lag monitor is shared, as in `anylat run`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { Endpoint, Metric } from '../agent/core/model.ts';
import { runRound, type ObservedSample, type RoundProtocols } from '../agent/round/run-round.ts';
import { Scheduler, type SchedulerCounters } from '../agent/schedule/scheduler.ts';
import { cronInterval, serviceTiming } from '../agent/schedule/timing.ts';
import { openStore, type Store } from '../agent/store/index.ts';
import { LagMonitor } from '../agent/util/lag.ts';
import { serveCommands } from './lib/child.ts';
import type { ScaleResult, ScaleSetup, ScaleStep, ValueSeries } from './lib/scale-protocol.ts';

const TIMEOUT_MS = 2000;
const AGENT = { id: 'bench-scale', region: 'bench' };

function cpuTimes(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** The services a step's paths make, and what each of them probes. */
interface Layout {
  services: number;
  perService: number;
  endpoints: Endpoint[];
  /** endpoint name → the origin's name the reference knows it by */
  nameOf: Map<string, string>;
  protocols: RoundProtocols;
}

function layout({ step, targets, ports }: ScaleSetup): Layout {
  const perService = step.kind === 'icmp' ? targets.length : 2 * targets.length;
  return {
    services: Math.max(1, Math.round(step.paths / perService)),
    perService,
    endpoints: targets.map((t, i) =>
      i === 0
        ? { name: 'anycast', kind: 'anycast', host: t.address }
        : { name: t.name, kind: 'unicast', host: t.address },
    ),
    nameOf: new Map(targets.map((t, i) => [i === 0 ? 'anycast' : t.name, t.name])),
    protocols: step.kind === 'icmp' ? { icmp: {} } : { udp: { port: ports.udp }, tcp: { port: ports.tcp, echo: true } },
  };
}

/** What the samples whose reply (or failure) came in during the window add up to. */
class WindowTally {
  windowStart = Number.POSITIVE_INFINITY;
  windowEnd = Number.POSITIVE_INFINITY;
  samples = 0;
  readonly failures: Record<string, number> = {};
  readonly values: ValueSeries = {};
  readonly echoes = { total: 0, kernel: 0 };

  constructor(
    private readonly nameOf: Map<string, string>,
    private readonly log: string[],
  ) {}

  readonly onSample = (s: ObservedSample): void => {
    if (!(s.attempt.t1 >= this.windowStart && s.attempt.t1 <= this.windowEnd)) return;
    this.samples++;
    if (!s.attempt.ok) {
      const why = `${s.protocol} ${s.attempt.reason}`;
      this.failures[why] = (this.failures[why] ?? 0) + 1;
      if (this.log.length < 50) this.log.push(`${s.endpoint} ${why}: ${s.attempt.detail ?? ''}`);
    }
    const target = this.nameOf.get(s.endpoint) ?? s.endpoint;
    if (s.protocol === 'tcp' && s.attempt.values.rtt !== undefined) {
      this.echoes.total++;
      if (s.attempt.lagWindows !== undefined && s.attempt.lagWindows.rtt === undefined) this.echoes.kernel++;
    }
    for (const [metric, v] of Object.entries(s.attempt.values) as Array<[Metric, number]>)
      this.keep(`${s.protocol} ${metric}`, target, v, s.flaggedMetrics.includes(metric));
  };

  private keep(metric: string, target: string, value: number, flagged: boolean): void {
    const byTarget = (this.values[metric] ??= {});
    (byTarget[target] ??= []).push(Math.round(value * 1000) / 1000, flagged ? 1 : 0);
  }
}

/** The parts one step runs on, as `anylat run` wires them. */
interface StepContext {
  step: ScaleStep;
  layout: Layout;
  store: Store;
  lag: LagMonitor;
  log: string[];
  tally: WindowTally;
  /** rounds saved so far */
  saved: { n: number };
}

/** One round per service on its cron, each measured by runRound and saved to the store. */
function startScheduler(ctx: StepContext): Scheduler {
  const { step, layout: l, store, lag, tally } = ctx;
  const timings = Array.from({ length: l.services }, (_, i) => serviceTiming(AGENT.id, `svc-${i}`, step.schedule));
  const scheduler = new Scheduler({
    timings,
    log: (line) => ctx.log.push(line),
    run: async (slot) => {
      const round = await runRound(
        {
          service: slot.service,
          agent: AGENT,
          endpoints: l.endpoints,
          protocols: l.protocols,
          samples: step.samples,
          spacingMs: step.spacingMs,
          timeoutMs: TIMEOUT_MS,
          terminatesTcp: true,
          lag,
          scheduledAt: slot.scheduledAt,
          signal: slot.signal,
        },
        { onSample: tally.onSample },
      );
      store.saveRound(round);
      ctx.saved.n++;
    },
  });
  scheduler.start();
  return scheduler;
}

/** What the machine, the process and the scheduler did during the window. */
interface WindowReading {
  wallStart: number;
  wallEnd: number;
  elapsed: number;
  cpu: NodeJS.CpuUsage;
  machine0: ReturnType<typeof cpuTimes>;
  machine1: ReturnType<typeof cpuTimes>;
  elu: EventLoopUtilization;
  lagP99Ms: number;
  before: SchedulerCounters;
  after: SchedulerCounters;
  savedInWindow: number;
}

/** Opens the tally's window for step.windowMs and reads every counter at both of its ends. */
async function measureWindow(ctx: StepContext, scheduler: Scheduler): Promise<WindowReading> {
  const { step, lag, tally } = ctx;
  const before = scheduler.stats();
  const savedBefore = ctx.saved.n;
  lag.takeP99();
  const cpu0 = process.cpuUsage();
  const machine0 = cpuTimes();
  const elu0 = performance.eventLoopUtilization();
  tally.windowStart = performance.now();
  tally.windowEnd = tally.windowStart + step.windowMs;
  const wallStart = Date.now();
  await new Promise((r) => setTimeout(r, step.windowMs));
  const elapsed = performance.now() - tally.windowStart;
  const wallEnd = Date.now();
  const cpu = process.cpuUsage(cpu0);
  const machine1 = cpuTimes();
  const elu = performance.eventLoopUtilization(elu0);
  const lagP99Ms = lag.takeP99();
  const after = scheduler.stats();
  return {
    wallStart,
    wallEnd,
    elapsed,
    cpu,
    machine0,
    machine1,
    elu,
    lagP99Ms,
    before,
    after,
    savedInWindow: ctx.saved.n - savedBefore,
  };
}

function scaleResult(ctx: StepContext, w: WindowReading): ScaleResult {
  const { layout: l, tally } = ctx;
  const { before, after, cpu, machine0, machine1 } = w;
  const mem = process.memoryUsage();
  return {
    services: l.services,
    paths: l.services * l.perService,
    windowStart: w.wallStart,
    windowEnd: w.wallEnd,
    samples: tally.samples,
    failures: tally.failures,
    rounds: {
      started: after.roundsStarted - before.roundsStarted,
      late: after.roundsLate - before.roundsLate,
      abandoned: after.roundsAbandoned - before.roundsAbandoned,
      skipped: after.roundsSkipped - before.roundsSkipped,
      saved: w.savedInWindow,
    },
    cpuPct: Math.round(((cpu.user + cpu.system) / 1000 / w.elapsed) * 1000) / 10,
    machineCpuPct:
      Math.round((1000 * (machine1.busy - machine0.busy)) / Math.max(1, machine1.total - machine0.total)) / 10,
    eventLoopUtilization: Math.round(w.elu.utilization * 1000) / 1000,
    lagP99Ms: Math.round(w.lagP99Ms * 1000) / 1000,
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    rssMb: Math.round(mem.rss / 1048576),
    heapUsedMb: Math.round(mem.heapUsed / 1048576),
    values: tally.values,
    echoes: tally.echoes,
    log: ctx.log.slice(0, 50),
  };
}

async function run(setup: ScaleSetup): Promise<ScaleResult> {
  const { step } = setup;
  const l = layout(setup);
  const store = openStore(join(setup.storeDir, 'scale.db'), {
    retention: { maxAgeMs: 3_600_000, maxRows: 1_000_000 },
    outbox: true,
    log: () => {},
  });
  const lag = new LagMonitor().start();
  const log: string[] = [];
  const ctx: StepContext = { step, layout: l, store, lag, log, tally: new WindowTally(l.nameOf, log), saved: { n: 0 } };
  const scheduler = startScheduler(ctx);
  // The window opens once every service has had one round start (the first cron slot plus one
  // interval): from then on each service's rounds are periodic, so a window of whole intervals
  // holds the same number of samples of each, whatever its phase.
  const interval = cronInterval(step.schedule);
  const firstSlot = Math.ceil(Date.now() / interval) * interval;
  await new Promise((r) => setTimeout(r, Math.max(0, firstSlot + interval + step.warmupMs - Date.now())));

  const reading = await measureWindow(ctx, scheduler);

  await scheduler.stop(5_000);
  lag.stop();
  store.close();
  return scaleResult(ctx, reading);
}

serveCommands(async (command) => run(command as unknown as ScaleSetup));
