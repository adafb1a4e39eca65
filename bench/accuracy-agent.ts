// The agent side of bench/accuracy.ts, run inside the lab's agent namespace: anylat's own round
// engine (runRound, the probes, the lag monitor that flags samples) measuring the bench origins,
// every sample reported with its flag through RoundDeps.onSample. On command it also carries a
// background load of many concurrent paths in the same process ("the agent is busy").
import { performance } from 'node:perf_hooks';
import type { Endpoint, Metric } from '../agent/core/model.ts';
import { PROBES } from '../agent/probe/index.ts';
import { ECHO_FALLBACKS } from '../agent/net/tcp-info.ts';
import { tcpProber, type EchoTiming, type TcpProber } from '../agent/probe/tcp.ts';
import {
  runRound,
  type ObservedSample,
  type RoundDeps,
  type RoundProtocols,
  type RoundSpec,
} from '../agent/round/run-round.ts';
import { LagMonitor } from '../agent/util/lag.ts';
import { serveCommands } from './lib/child.ts';
import {
  HTTP_METRICS,
  SAMPLE_METRICS,
  type AccuracyMetric,
  type AccuracySetup,
  type PhaseCommand,
  type PhaseResult,
  type SampleRecord,
  type TransferRecord,
} from './lib/accuracy-protocol.ts';

const TIMEOUT_MS = 2000;
const lag = new LagMonitor().start();
let setup: AccuracySetup | undefined;

// The measured rounds' tcp probers, kept so the phase can say how their echoes were timed.
let measuredTcp: TcpProber[] = [];
const measuredProbes: RoundDeps['probes'] = {
  ...PROBES,
  tcp: (target, options) => {
    const p = tcpProber(target, options);
    measuredTcp.push(p);
    return p;
  },
};

function echoTimingOf(probers: TcpProber[]): EchoTiming {
  const out: EchoTiming = {
    kernel: 0,
    monotonic: 0,
    fallbacks: Object.fromEntries(ECHO_FALLBACKS.map((f) => [f, 0])) as EchoTiming['fallbacks'],
    turnaround: { subtracted: 0, unknown: 0, rejected: 0, unreported: 0 },
  };
  for (const p of probers) {
    const t = p.echoTiming();
    out.kernel += t.kernel;
    out.monotonic += t.monotonic;
    for (const f of ECHO_FALLBACKS) out.fallbacks[f] += t.fallbacks[f];
    for (const k of Object.keys(out.turnaround) as Array<keyof EchoTiming['turnaround']>)
      out.turnaround[k] += t.turnaround[k];
  }
  return out;
}

function endpoints(targets: AccuracySetup['targets']): Endpoint[] {
  return targets.map((t) => ({ name: t.name, kind: 'unicast', host: t.address }));
}

function spec(
  service: string,
  protocols: RoundProtocols,
  samples: number,
  spacingMs: number,
  signal?: AbortSignal,
): RoundSpec {
  const s: RoundSpec = {
    service,
    agent: { id: 'bench', region: 'bench' },
    endpoints: endpoints(setup!.targets),
    protocols,
    samples,
    spacingMs,
    timeoutMs: TIMEOUT_MS,
    terminatesTcp: false,
    lag,
  };
  if (signal) s.signal = signal;
  return s;
}

/** Runs rounds of `s` back to back until `until` (performance.now) leaves no room for another. */
async function loopRounds(
  make: () => RoundSpec,
  until: number,
  onSample: (s: ObservedSample) => void,
  signal?: AbortSignal,
  probes?: RoundDeps['probes'],
): Promise<void> {
  for (;;) {
    const s = make();
    // The last round may run over by its slowest sample's round trip.
    const length = s.samples * s.spacingMs;
    if (signal?.aborted || performance.now() + length > until) return;
    try {
      await runRound(s, probes ? { onSample, probes } : { onSample });
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    }
  }
}

/** Downloads only, one at a time (the round runs them alone), until the phase ends. */
async function runTransferPhase(cmd: PhaseCommand): Promise<PhaseResult> {
  const su = setup!;
  const transfers: TransferRecord[] = [];
  const failures: Record<string, number> = {};
  const t0 = performance.now();
  const startedAt = Date.now();
  const cpu0 = process.cpuUsage();
  await loopRounds(
    () =>
      spec(
        'transfer',
        { transfer: { sizes: su.transfer.sizes, port: su.ports.http, samples: 1, sampleTimeoutMs: 15_000 } },
        1,
        0,
      ),
    t0 + cmd.durationMs,
    (s) => {
      const v = s.attempt.values.download;
      if (v === undefined) {
        failures['transfer download'] = (failures['transfer download'] ?? 0) + 1;
        return;
      }
      transfers.push([
        s.endpoint,
        s.size ?? 0,
        Math.round(v * 1000) / 1000,
        s.flaggedMetrics.includes('download') ? 1 : 0,
      ]);
    },
  );
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    phase: cmd.phase,
    startedAt,
    endedAt: Date.now(),
    records: [],
    httpFlags: Object.fromEntries(
      HTTP_METRICS.map((m) => [m, { n: 0, flagged: 0, kernel: 0 }]),
    ) as PhaseResult['httpFlags'],
    transfers,
    failures,
    echoTiming: echoTimingOf([]),
    busy: { paths: 0, samples: 0, failures: 0, failureReasons: {}, samplesPerSecond: 0 },
    cpuPct: Math.round(((cpu.user + cpu.system) / 1000 / elapsed) * 1000) / 10,
    eventLoopUtilization: 0,
    lagP99Ms: lag.takeP99(),
  };
}

/** The background paths of a busy phase and what they counted. */
interface BusyLoad {
  services: number;
  counts: { samples: number; failures: number; reasons: Record<string, number> };
  ctl: AbortController;
  loops: Array<Promise<void>>;
}

/** Background paths first, spread over one spacing so they do not start in one burst. */
async function startBusyLoad(cmd: PhaseCommand, su: AccuracySetup): Promise<BusyLoad> {
  const ctl = new AbortController();
  const counts: BusyLoad['counts'] = { samples: 0, failures: 0, reasons: {} };
  const services = Math.ceil(cmd.busyPaths / (2 * su.targets.length));
  const loops: Array<Promise<void>> = [];
  const busySpacing = cmd.busyRatePerPath > 0 ? 1000 / cmd.busyRatePerPath : 1000;
  for (let i = 0; i < services; i++) {
    loops.push(
      (async () => {
        await new Promise((r) => setTimeout(r, (i / services) * busySpacing));
        // Their own reflectors: the measured ones' event loops are not the load's.
        const protocols: RoundProtocols = {
          udp: { port: su.loadPorts.udp },
          tcp: { port: su.loadPorts.tcp, echo: true },
        };
        await loopRounds(
          () => spec(`busy-${i}`, protocols, 10, busySpacing, ctl.signal),
          Number.POSITIVE_INFINITY,
          (s) => {
            if (s.attempt.ok) counts.samples++;
            else {
              counts.failures++;
              const why = `${s.protocol} ${s.attempt.reason}`;
              counts.reasons[why] = (counts.reasons[why] ?? 0) + 1;
            }
          },
          ctl.signal,
        );
      })(),
    );
  }
  if (services > 0) await new Promise((r) => setTimeout(r, busySpacing * 2));
  return { services, counts, ctl, loops };
}

/** A phase's measured samples as they come: the records, the failures and the http flag counts. */
interface PhaseSamples {
  records: SampleRecord[];
  failures: Record<string, number>;
  httpFlags: PhaseResult['httpFlags'];
  record: (row: AccuracyMetric, s: ObservedSample, metric: Metric) => void;
  countHttp: (s: ObservedSample) => void;
}

function phaseSamples(): PhaseSamples {
  const records: SampleRecord[] = [];
  const failures: Record<string, number> = {};
  const record = (row: AccuracyMetric, s: ObservedSample, metric: Metric) => {
    const value = s.attempt.values[metric];
    if (value === undefined) {
      if (!s.attempt.ok) failures[row] = (failures[row] ?? 0) + 1;
      return;
    }
    const kernel = s.attempt.lagWindows !== undefined && s.attempt.lagWindows[metric] === undefined;
    records.push([
      SAMPLE_METRICS.indexOf(row),
      s.endpoint,
      Math.round(value * 1000) / 1000,
      s.flaggedMetrics.includes(metric) ? 1 : 0,
      kernel ? 1 : 0,
    ]);
  };
  const httpFlags = Object.fromEntries(
    HTTP_METRICS.map((m) => [m, { n: 0, flagged: 0, kernel: 0 }]),
  ) as PhaseResult['httpFlags'];
  const countHttp = (s: ObservedSample) => {
    for (const m of HTTP_METRICS) {
      if (s.attempt.values[m] === undefined) continue;
      const c = httpFlags[m];
      c.n++;
      if (s.flaggedMetrics.includes(m)) c.flagged++;
      if (s.attempt.lagWindows !== undefined && s.attempt.lagWindows[m] === undefined) c.kernel++;
    }
  };
  return { records, failures, httpFlags, record, countHttp };
}

/** The default prober of every protocol (kernel clocks where there are), until `until`. */
function measureDefault(su: AccuracySetup, until: number, into: PhaseSamples): Promise<void> {
  const { record, countHttp } = into;
  return loopRounds(
    () =>
      spec(
        'measured',
        {
          udp: { port: su.ports.udp },
          tcp: { port: su.ports.tcp, echo: true },
          http: { url: `http://bench.anylat.test:${su.ports.http}/` },
          icmp: {},
          dns: { port: su.dnsPort },
        },
        su.samples,
        su.spacingMs,
      ),
    until,
    (s) => {
      if (s.protocol === 'udp') record('udp rtt', s, 'rtt');
      else if (s.protocol === 'tcp') {
        record('tcp connect (kernel)', s, 'connect');
        record('tcp rtt (echo)', s, 'rtt');
      } else if (s.protocol === 'http') {
        record('http ttfb', s, 'ttfb');
        countHttp(s);
      } else if (s.protocol === 'icmp') record('icmp rtt', s, 'rtt');
      else if (s.protocol === 'dns') record('dns query', s, 'query');
    },
    undefined,
    measuredProbes,
  );
}

/** The second prober: tcp and http timed by the monotonic clock alone, until `until`. */
function measureMonotonic(su: AccuracySetup, until: number, into: PhaseSamples): Promise<void> {
  const { record } = into;
  return loopRounds(
    () =>
      spec(
        'measured-monotonic',
        {
          tcp: { port: su.ports.tcp, echo: true, connectClock: 'monotonic', echoClock: 'monotonic' },
          http: { url: `http://bench.anylat.test:${su.monotonicHttpPort}/`, warm: false, ttfbClock: 'monotonic' },
        },
        su.samples,
        su.spacingMs,
      ),
    until,
    (s) => {
      if (s.protocol === 'http') {
        record('http ttfb (monotonic)', s, 'ttfb');
        return;
      }
      record('tcp connect (monotonic)', s, 'connect');
      record('tcp rtt (echo, monotonic clock)', s, 'rtt');
    },
  );
}

async function runPhase(cmd: PhaseCommand): Promise<PhaseResult> {
  if (cmd.transfer) return runTransferPhase(cmd);
  const su = setup!;
  const busy = await startBusyLoad(cmd, su);

  lag.takeP99();
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  const startedAt = Date.now();
  const busyAtStart = busy.counts.samples;
  const until = t0 + cmd.durationMs;
  measuredTcp = [];
  const samples = phaseSamples();
  await Promise.all([measureDefault(su, until, samples), measureMonotonic(su, until, samples)]);
  const elapsed = performance.now() - t0;
  const endedAt = Date.now();
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  const lagP99Ms = lag.takeP99();
  const busySamples = busy.counts.samples - busyAtStart;
  busy.ctl.abort();
  await Promise.all(busy.loops);
  return {
    phase: cmd.phase,
    startedAt,
    endedAt,
    records: samples.records,
    failures: samples.failures,
    echoTiming: echoTimingOf(measuredTcp),
    httpFlags: samples.httpFlags,
    busy: {
      paths: busy.services * 2 * su.targets.length,
      samples: busySamples,
      failures: busy.counts.failures,
      failureReasons: busy.counts.reasons,
      samplesPerSecond: Math.round((busySamples / elapsed) * 1000),
    },
    cpuPct: Math.round(((cpu.user + cpu.system) / 1000 / elapsed) * 1000) / 10,
    eventLoopUtilization: Math.round(elu.utilization * 1000) / 1000,
    lagP99Ms: Math.round(lagP99Ms * 1000) / 1000,
  };
}

serveCommands(async (command) => {
  if ('setup' in command) {
    setup = command.setup as AccuracySetup;
    return { ok: true };
  }
  return runPhase(command as unknown as PhaseCommand);
});
