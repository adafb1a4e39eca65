// The agent side of bench/scale.ts, run inside the lab's agent namespace, one process per step so
// its peak RSS is the step's: the real scheduler (agent/schedule) fires each service's rounds on
// its cron with its phase, runRound measures, the embedded store saves each round with its
// InfluxDB lines in the outbox, one lag monitor is shared, as in `anylat run`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Endpoint, Metric } from '../agent/core/model.ts';
import { runRound, type ObservedSample, type RoundProtocols } from '../agent/round/run-round.ts';
import { Scheduler } from '../agent/schedule/scheduler.ts';
import { cronInterval, serviceTiming } from '../agent/schedule/timing.ts';
import { openStore } from '../agent/store/index.ts';
import { LagMonitor } from '../agent/util/lag.ts';
import { serveCommands } from './lib/child.ts';
import type { ScaleResult, ScaleSetup, ValueSeries } from './lib/scale-protocol.ts';

const TIMEOUT_MS = 2000;
const AGENT = { id: 'bench-scale', region: 'bench' };

function cpuTimes(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

async function run(setup: ScaleSetup): Promise<ScaleResult> {
  const { step, targets, ports } = setup;
  const perService = step.kind === 'icmp' ? targets.length : 2 * targets.length;
  const services = Math.max(1, Math.round(step.paths / perService));
  const endpoints: Endpoint[] = targets.map((t, i) =>
    i === 0
      ? { name: 'anycast', kind: 'anycast', host: t.address }
      : { name: t.name, kind: 'unicast', host: t.address },
  );
  const nameOf = new Map(targets.map((t, i) => [i === 0 ? 'anycast' : t.name, t.name]));
  const protocols: RoundProtocols =
    step.kind === 'icmp' ? { icmp: {} } : { udp: { port: ports.udp }, tcp: { port: ports.tcp, echo: true } };
  const store = openStore(join(setup.storeDir, 'scale.db'), {
    retention: { maxAgeMs: 3_600_000, maxRows: 1_000_000 },
    outbox: true,
    log: () => {},
  });
  const lag = new LagMonitor().start();
  const log: string[] = [];
  const failures: Record<string, number> = {};
  const values: ValueSeries = {};
  let samples = 0;
  const echoes = { total: 0, kernel: 0 };
  let saved = 0;
  let windowStart = Number.POSITIVE_INFINITY;
  let windowEnd = Number.POSITIVE_INFINITY;
  const inWindow = (t: number) => t >= windowStart && t <= windowEnd;

  const keep = (metric: string, target: string, value: number, flagged: boolean) => {
    const byTarget = (values[metric] ??= {});
    (byTarget[target] ??= []).push(Math.round(value * 1000) / 1000, flagged ? 1 : 0);
  };
  const onSample = (s: ObservedSample) => {
    if (!inWindow(s.attempt.t1)) return;
    samples++;
    if (!s.attempt.ok) {
      const why = `${s.protocol} ${s.attempt.reason}`;
      failures[why] = (failures[why] ?? 0) + 1;
      if (log.length < 50) log.push(`${s.endpoint} ${why}: ${s.attempt.detail ?? ''}`);
    }
    const target = nameOf.get(s.endpoint) ?? s.endpoint;
    if (s.protocol === 'tcp' && s.attempt.values.rtt !== undefined) {
      echoes.total++;
      if (s.attempt.lagWindows !== undefined && s.attempt.lagWindows.rtt === undefined) echoes.kernel++;
    }
    for (const [metric, v] of Object.entries(s.attempt.values) as Array<[Metric, number]>)
      keep(`${s.protocol} ${metric}`, target, v, s.flaggedMetrics.includes(metric));
  };

  const timings = Array.from({ length: services }, (_, i) => serviceTiming(AGENT.id, `svc-${i}`, step.schedule));
  const scheduler = new Scheduler({
    timings,
    log: (line) => log.push(line),
    run: async (slot) => {
      const round = await runRound(
        {
          service: slot.service,
          agent: AGENT,
          endpoints,
          protocols,
          samples: step.samples,
          spacingMs: step.spacingMs,
          timeoutMs: TIMEOUT_MS,
          terminatesTcp: true,
          lag,
          scheduledAt: slot.scheduledAt,
          signal: slot.signal,
        },
        { onSample },
      );
      store.saveRound(round);
      saved++;
    },
  });
  scheduler.start();
  // The window opens once every service has had one round start (the first cron slot plus one
  // interval): from then on each service's rounds are periodic, so a window of whole intervals
  // holds the same number of samples of each, whatever its phase.
  const interval = cronInterval(step.schedule);
  const firstSlot = Math.ceil(Date.now() / interval) * interval;
  await new Promise((r) => setTimeout(r, Math.max(0, firstSlot + interval + step.warmupMs - Date.now())));

  const before = scheduler.stats();
  const savedBefore = saved;
  lag.takeP99();
  const cpu0 = process.cpuUsage();
  const machine0 = cpuTimes();
  const elu0 = performance.eventLoopUtilization();
  windowStart = performance.now();
  windowEnd = windowStart + step.windowMs;
  const wallStart = Date.now();
  await new Promise((r) => setTimeout(r, step.windowMs));
  const elapsed = performance.now() - windowStart;
  const wallEnd = Date.now();
  const cpu = process.cpuUsage(cpu0);
  const machine1 = cpuTimes();
  const elu = performance.eventLoopUtilization(elu0);
  const lagP99Ms = lag.takeP99();
  const after = scheduler.stats();
  const savedInWindow = saved - savedBefore;

  await scheduler.stop(5_000);
  lag.stop();
  store.close();
  const mem = process.memoryUsage();
  return {
    services,
    paths: services * perService,
    windowStart: wallStart,
    windowEnd: wallEnd,
    samples,
    failures,
    rounds: {
      started: after.roundsStarted - before.roundsStarted,
      late: after.roundsLate - before.roundsLate,
      abandoned: after.roundsAbandoned - before.roundsAbandoned,
      skipped: after.roundsSkipped - before.roundsSkipped,
      saved: savedInWindow,
    },
    cpuPct: Math.round(((cpu.user + cpu.system) / 1000 / elapsed) * 1000) / 10,
    machineCpuPct:
      Math.round((1000 * (machine1.busy - machine0.busy)) / Math.max(1, machine1.total - machine0.total)) / 10,
    eventLoopUtilization: Math.round(elu.utilization * 1000) / 1000,
    lagP99Ms: Math.round(lagP99Ms * 1000) / 1000,
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    rssMb: Math.round(mem.rss / 1048576),
    heapUsedMb: Math.round(mem.heapUsed / 1048576),
    values,
    echoes,
    log: log.slice(0, 50),
  };
}

serveCommands(async (command) => run(command as unknown as ScaleSetup));
