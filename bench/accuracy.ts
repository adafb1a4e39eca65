// npm run bench:accuracy [-- --quick]
//
// How close are anylat's figures to the kernel's? On the bench lab (bench/topology.yaml: origins
// 1, 10, 50 and 150 ms away one way, no jitter), anylat's round engine measures every origin with
// udp (STAMP rtt), tcp (connect timed by the kernel's tcpi_rtt and, in a second prober, by the
// monotonic clock; the echo rtt, likewise timed from the kernel's RTT sample and, in the second
// prober, by the monotonic clock), http (ttfb from the kernel's RTT sample and, in the second prober, the monotonic clock), icmp and dns (a CHAOS TXT query over UDP to the lab reflector's DNS answers), while `ping` (kernel timestamps, in
// another process) measures the same origins in the same run. For each sample,
// bias = anylat's value − the median ping round trip to that origin in that phase; the wire's
// ~0.1 ms per crossing is in both and cancels. ttfb also holds the server's time to answer, which
// ping has not: for it the reference is the wire as well, a packet capture of each http prober's
// connections in the agent's namespace (lib/capture.ts). Three phases: idle; the agent busy with many
// concurrent paths in the same process; another process loading every CPU.
import { join } from 'node:path';
import {
  ACCURACY_METRICS,
  HTTP_METRICS,
  SAMPLE_METRICS,
  type AccuracySetup,
  type PhaseCommand,
  type PhaseResult,
} from './lib/accuracy-protocol.ts';
import { AgentChild } from './lib/child.ts';
import { BENCH_PORTS, BENCH_TOPOLOGY, LOAD_PORTS, withBenchLab, type BenchLab, type BenchTarget } from './lib/lab.ts';
import { loadCpus } from './lib/load.ts';
import {
  BENCH_DIR,
  benchArgs,
  describeMachine,
  fmt,
  machineNote,
  markdownTable,
  progress,
  signed,
  writeResult,
} from './lib/output.ts';
import { assertTcpdump, WireTtfbReference } from './lib/capture.ts';
import { PingReference } from './lib/reference.ts';
import { median, quantile, round } from './lib/stats.ts';
import { loadTopology } from '../agent/lab/topology.ts';
import { sizeLabel } from '../agent/probe/transfer.ts';

/** The transfer phase's sizes: one that fits in the first flights, one that needs slow start, one that fills the link. */
const TRANSFER_SIZES = [16 * 1024, 256 * 1024, 2 * 1024 * 1024] as const;

const USAGE = `usage: npm run bench:accuracy [-- --quick] [-- --out FILE]
  Linux, root: brings up the bench lab (bench/topology.yaml), measures, takes it down.
  --quick   10 s per phase instead of 60 s (under a minute in all)`;

interface PhasePlan {
  phase: 'idle' | 'busy' | 'loaded';
  what: string;
  busyPaths: number;
  busyRatePerPath: number;
  loadCpus: boolean;
}

const PHASES: PhasePlan[] = [
  { phase: 'idle', what: 'the measured paths only', busyPaths: 0, busyRatePerPath: 0, loadCpus: false },
  {
    phase: 'busy',
    what: 'plus 1,000 udp/tcp paths at 1 sample/s each in the same agent process',
    busyPaths: 1000,
    busyRatePerPath: 1,
    loadCpus: false,
  },
  {
    phase: 'loaded',
    what: 'the measured paths while one busy-loop process per CPU runs',
    busyPaths: 0,
    busyRatePerPath: 0,
    loadCpus: true,
  },
];

export interface MetricSummary {
  metric: string;
  n: number;
  flaggedPct: number;
  /** share of the samples whose both ends were kernel timestamps (the probe left them no lag window) */
  kernelPct: number;
  /** over the samples the round keeps (not flagged) */
  medianMs: number;
  p95Ms: number;
  /** over every sample, flagged ones included: what flagging saves */
  allP95Ms: number;
  perTarget: Record<string, { n: number; medianMs: number; p95Ms: number }>;
}

function summarize(result: PhaseResult, refMedian: Record<string, number>): MetricSummary[] {
  return SAMPLE_METRICS.map((metric, idx) => {
    const rows = result.records.filter((r) => r[0] === idx);
    const bias = (r: (typeof rows)[number]) => r[2] - (refMedian[r[1]] ?? Number.NaN);
    const kept = rows.filter((r) => r[3] === 0);
    const perTarget: MetricSummary['perTarget'] = {};
    for (const name of Object.keys(refMedian)) {
      const mine = kept.filter((r) => r[1] === name).map(bias);
      perTarget[name] = { n: mine.length, medianMs: round(median(mine)), p95Ms: round(quantile(mine, 0.95)) };
    }
    return {
      metric,
      n: rows.length,
      flaggedPct: rows.length === 0 ? Number.NaN : round((100 * (rows.length - kept.length)) / rows.length, 1),
      kernelPct: rows.length === 0 ? Number.NaN : round((100 * rows.filter((r) => r[4] === 1).length) / rows.length, 1),
      medianMs: round(median(kept.map(bias))),
      p95Ms: round(quantile(kept.map(bias), 0.95)),
      allP95Ms: round(quantile(rows.map(bias), 0.95)),
      perTarget,
    };
  });
}

/** One phase as measured: the agent's result, and the ping and wire references over the same span. */
interface MeasuredPhase {
  plan: PhasePlan;
  result: PhaseResult;
  refMedian: Record<string, number>;
  refSpread: Record<string, number>;
  refN: Record<string, number>;
  wireMedian: Record<string, number>;
  wireTtfbs: Record<string, number[]>;
  wireMonoMedian: Record<string, number>;
  wireMonoTtfbs: Record<string, number[]>;
  wireToPing: number[];
}

/** Everything the lab run brings back for the report. */
interface Measured {
  phases: MeasuredPhase[];
  targets: BenchTarget[];
  transfer: PhaseResult;
  rateMbit: number | undefined;
}

/** What the report says of the run itself. */
interface RunNote {
  quick: boolean;
  durationMs: number;
  elapsedS: number;
  before: ReturnType<typeof machineNote>;
  after: ReturnType<typeof machineNote>;
  outFile: string;
}

/** The references that run beside the agent: ping, and one capture per http prober. */
interface References {
  ping: PingReference;
  wire: WireTtfbReference;
  wireMono: WireTtfbReference;
}

/** A phase's summary per metric. */
interface PhaseSummary {
  phase: PhasePlan['phase'];
  metrics: MetricSummary[];
}

async function main(): Promise<void> {
  const args = benchArgs('accuracy', USAGE);
  const durationMs = args.quick ? 10_000 : 60_000;
  const started = Date.now();
  const before = machineNote();
  assertTcpdump();
  const out = await withBenchLab((lab) => measureOnLab(lab, durationMs));
  const after = machineNote();
  report(out, {
    quick: args.quick,
    durationMs,
    elapsedS: Math.round((Date.now() - started) / 1000),
    before,
    after,
    outFile: args.out,
  });
}

async function measureOnLab(lab: BenchLab, durationMs: number): Promise<Measured> {
  const child = new AgentChild(lab.agentNetns, join(BENCH_DIR, 'accuracy-agent.ts'));
  const refs: References = {
    ping: new PingReference(
      lab.agentNetns,
      lab.targets.map((t) => t.address),
      150,
    ),
    // One capture per http prober: each one's connections go to their own port.
    wire: new WireTtfbReference(lab.agentNetns, BENCH_PORTS.http),
    wireMono: new WireTtfbReference(lab.agentNetns, lab.description.ports.http),
  };
  try {
    await refs.wire.start();
    await refs.wireMono.start();
    await setUpAgent(child, lab);
    refs.ping.start();
    const phases: MeasuredPhase[] = [];
    for (const plan of PHASES) phases.push(await measurePhase(child, lab.targets, refs, plan, durationMs));
    await refs.ping.stop();
    const transfer = await measureTransfer(child, durationMs);
    lab.assertIntact();
    return { phases, targets: lab.targets, transfer, rateMbit: benchRateMbit() };
  } finally {
    await refs.ping.stop();
    await refs.wire.stop();
    await refs.wireMono.stop();
    await child.close();
  }
}

/** Tells the agent what to measure, then warms it up (3 s, not counted). */
async function setUpAgent(child: AgentChild, lab: BenchLab): Promise<void> {
  const setup: AccuracySetup = {
    targets: lab.targets.map((t) => ({ name: t.name, address: t.address })),
    ports: BENCH_PORTS,
    monotonicHttpPort: lab.description.ports.http,
    dnsPort: lab.description.ports.dns,
    transfer: { sizes: [...TRANSFER_SIZES] },
    loadPorts: LOAD_PORTS,
    samples: 10,
    spacingMs: 250,
  };
  await child.request({ setup });
  progress('warming up the agent (3 s, not counted)');
  await child.request<PhaseResult>({
    phase: 'warmup',
    durationMs: 3000,
    busyPaths: 0,
    busyRatePerPath: 0,
  } satisfies PhaseCommand);
}

async function measurePhase(
  child: AgentChild,
  targets: BenchTarget[],
  refs: References,
  plan: PhasePlan,
  durationMs: number,
): Promise<MeasuredPhase> {
  progress(`phase ${plan.phase}: ${plan.what} (${durationMs / 1000} s)`);
  const load = plan.loadCpus ? loadCpus() : undefined;
  try {
    const result = await child.request<PhaseResult>({
      phase: plan.phase,
      durationMs,
      busyPaths: plan.busyPaths,
      busyRatePerPath: plan.busyRatePerPath,
    } satisfies PhaseCommand);
    return referencesOver(targets, refs, plan, result);
  } finally {
    await load?.stop();
  }
}

/** The ping and wire references per origin over the span of the phase's result. */
function referencesOver(targets: BenchTarget[], refs: References, plan: PhasePlan, result: PhaseResult): MeasuredPhase {
  const m: MeasuredPhase = {
    plan,
    result,
    refMedian: {},
    refSpread: {},
    refN: {},
    wireMedian: {},
    wireTtfbs: {},
    wireMonoMedian: {},
    wireMonoTtfbs: {},
    wireToPing: [],
  };
  for (const t of targets) {
    const rtts = refs.ping.between(t.address, result.startedAt, result.endedAt);
    m.refMedian[t.name] = median(rtts);
    m.refSpread[t.name] = quantile(rtts, 0.95) - median(rtts);
    m.refN[t.name] = rtts.length;
    const ttfbs = refs.wire.between(t.address, result.startedAt, result.endedAt);
    m.wireMedian[t.name] = median(ttfbs);
    m.wireTtfbs[t.name] = ttfbs;
    const mono = refs.wireMono.between(t.address, result.startedAt, result.endedAt);
    m.wireMonoMedian[t.name] = median(mono);
    m.wireMonoTtfbs[t.name] = mono;
    for (const v of ttfbs) m.wireToPing.push(v - m.refMedian[t.name]!);
  }
  return m;
}

function measureTransfer(child: AgentChild, durationMs: number): Promise<PhaseResult> {
  progress(
    `phase transfer: downloads of ${TRANSFER_SIZES.map(sizeLabel).join(', ')} from every origin, one at a time, nothing else running (${durationMs / 1000} s)`,
  );
  return child.request<PhaseResult>({
    phase: 'transfer',
    durationMs,
    busyPaths: 0,
    busyRatePerPath: 0,
    transfer: true,
  } satisfies PhaseCommand);
}

function report(out: Measured, run: RunNote): void {
  const { phases, targets } = out;
  const summaries: PhaseSummary[] = phases.map((p) => ({
    phase: p.plan.phase,
    metrics: summarize(p.result, p.refMedian),
  }));
  const wireRows = phases.map((p) => wireRow(p, targets));
  const transferRows = transferTable(out.transfer, targets, out.rateMbit);
  const lines: string[] = [
    ...biasSection(phases, targets, summaries, run),
    ...agentSection(phases),
    ...pingSection(phases, targets),
    ...echoSection(phases, summaries),
    ...httpKernelSection(summaries),
    ...wireSection(wireRows),
    ...httpFlagsSection(phases),
    ...transferSection(transferRows, out.rateMbit),
    ...failuresSection(phases, out.transfer),
    `machine: ${describeMachine(run.before)}; at the end: load ${run.after.loadavg.join(' / ')}; ran ${run.elapsedS} s`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  writeResult(run.outFile, {
    benchmark: 'accuracy',
    quick: run.quick,
    durationPerPhaseS: run.durationMs / 1000,
    elapsedS: run.elapsedS,
    machine: { before: run.before, after: run.after },
    targets,
    transfer: { rateMbit: out.rateMbit, rows: transferRows, failures: out.transfer.failures },
    phases: phases.map((p, i) => phaseResultJson(p, targets, wireRows[i]!, summaries[i]!)),
  });
}

function phaseResultJson(p: MeasuredPhase, targets: BenchTarget[], wire: WireRow, summary: PhaseSummary) {
  return {
    phase: p.plan.phase,
    what: p.plan.what,
    agent: {
      cpuPct: p.result.cpuPct,
      eventLoopUtilization: p.result.eventLoopUtilization,
      lagP99Ms: p.result.lagP99Ms,
      busy: p.result.busy,
    },
    reference: Object.fromEntries(
      targets.map((t) => [
        t.name,
        { n: p.refN[t.name], medianMs: round(p.refMedian[t.name]!), p95MinusMedianMs: round(p.refSpread[t.name]!) },
      ]),
    ),
    failures: p.result.failures,
    echoTiming: p.result.echoTiming,
    httpFlags: p.result.httpFlags,
    wire: {
      ttfbMedianMs: Object.fromEntries(targets.map((t) => [t.name, round(p.wireMedian[t.name]!)])),
      ...wire,
    },
    metrics: summary.metrics,
  };
}

function metricOf(s: PhaseSummary, metric: string): MetricSummary {
  return s.metrics.find((x) => x.metric === metric)!;
}

/** The main table: anylat − ping per metric and phase. */
function biasSection(
  phases: MeasuredPhase[],
  targets: BenchTarget[],
  summaries: PhaseSummary[],
  run: RunNote,
): string[] {
  const headers = [
    'metric',
    ...phases.flatMap((p) => [`${p.plan.phase} median`, `${p.plan.phase} p95`, `${p.plan.phase} flagged`]),
  ];
  const rows = ACCURACY_METRICS.map((metric) => [
    metric,
    ...summaries.flatMap((s) => {
      const m = metricOf(s, metric);
      return [signed(m.medianMs, 3), signed(m.p95Ms, 3), `${fmt(m.flaggedPct, 1)}%`];
    }),
  ]);
  return [
    `anylat − ping, ms (bias of each sample against the median ping round trip to the same origin in the same phase; origins at ${targets.map((t) => t.configuredRttMs).join(', ')} ms RTT; ${run.durationMs / 1000} s per phase)`,
    '',
    markdownTable(headers, rows),
    '',
  ];
}

/** What ran in each phase, and how the agent's process fared. */
function agentSection(phases: MeasuredPhase[]): string[] {
  return [
    markdownTable(
      [
        'phase',
        'what runs',
        'measured samples',
        'background samples/s',
        'agent CPU',
        'event-loop utilization',
        'loop lag p99 ms',
      ],
      phases.map((p) => [
        p.plan.phase,
        p.plan.what,
        p.result.records.length,
        p.result.busy.samplesPerSecond,
        `${fmt(p.result.cpuPct, 1)}%`,
        fmt(p.result.eventLoopUtilization, 2),
        fmt(p.result.lagP99Ms, 2),
      ]),
    ),
    '',
  ];
}

/** The reference itself: ping's median and spread per origin and phase. */
function pingSection(phases: MeasuredPhase[], targets: BenchTarget[]): string[] {
  return [
    markdownTable(
      [
        'origin',
        'configured RTT ms',
        ...phases.flatMap((p) => [`ping ${p.plan.phase} median`, `ping ${p.plan.phase} p95 − median`]),
      ],
      targets.map((t) => [
        t.name,
        fmt(t.configuredRttMs, 1),
        ...phases.flatMap((p) => [fmt(p.refMedian[t.name], 3), fmt(p.refSpread[t.name], 3)]),
      ]),
    ),
    '',
  ];
}

function echoSection(phases: MeasuredPhase[], summaries: PhaseSummary[]): string[] {
  return [
    "tcp echo rtt by clock: the default (the kernel's RTT sample for the echo from TCP_INFO, the monotonic clock where the kernel has no clean one, minus the reflector's reported turnaround) and, in a second prober, the monotonic clock alone; anylat − ping, ms",
    '',
    markdownTable(
      [
        'phase',
        'timed by the kernel',
        'turnaround subtracted',
        'default median',
        'default p95',
        'default flagged',
        'monotonic median',
        'monotonic p95',
        'monotonic all p95',
        'monotonic flagged',
      ],
      summaries.map((s, i) => {
        const k = metricOf(s, 'tcp rtt (echo)');
        const m = metricOf(s, 'tcp rtt (echo, monotonic clock)');
        const t = phases[i]!.result.echoTiming;
        const echoes = t.kernel + t.monotonic;
        const subtracted = echoes === 0 ? Number.NaN : (100 * t.turnaround.subtracted) / echoes;
        return [
          s.phase,
          `${fmt(k.kernelPct, 1)}%`,
          `${fmt(subtracted, 1)}%`,
          signed(k.medianMs, 3),
          signed(k.p95Ms, 3),
          `${fmt(k.flaggedPct, 1)}%`,
          signed(m.medianMs, 3),
          signed(m.p95Ms, 3),
          signed(m.allP95Ms, 3),
          `${fmt(m.flaggedPct, 1)}%`,
        ];
      }),
    ),
    '',
  ];
}

function httpKernelSection(summaries: PhaseSummary[]): string[] {
  return [
    `http ttfb timed by the kernel (the rest by the monotonic clock): ${summaries.map((s) => `${s.phase} ${fmt(metricOf(s, 'http ttfb').kernelPct, 1)}%`).join(', ')}`,
    '',
  ];
}

/** One prober's ttfb against the wire's, as the wire table shows it. */
interface AgainstWire {
  n: number;
  medianMs: number;
  p95Ms: number;
  flaggedPct: number;
}

interface WireRow {
  phase: PhasePlan['phase'];
  server: number;
  kernel: AgainstWire;
  monotonic: AgainstWire;
}

// Each prober against the capture of its own connections (its own port).
function wireRow(p: MeasuredPhase, targets: BenchTarget[]): WireRow {
  return {
    phase: p.plan.phase,
    server: round(median(p.wireToPing)),
    kernel: againstWire(p, targets, 'http ttfb', p.wireMedian, p.wireTtfbs),
    monotonic: againstWire(p, targets, 'http ttfb (monotonic)', p.wireMonoMedian, p.wireMonoTtfbs),
  };
}

// Every value against the wire's median ttfb to its origin in that phase: anylat's samples and the
// wire's own, so their medians and p95s compare like with like.
function againstWire(
  p: MeasuredPhase,
  targets: BenchTarget[],
  metric: string,
  wireMedian: Record<string, number>,
  wireTtfbs: Record<string, number[]>,
): AgainstWire {
  const idx = SAMPLE_METRICS.indexOf(metric as (typeof SAMPLE_METRICS)[number]);
  const byName = new Map(targets.map((t) => [t.name, wireMedian[t.name] ?? Number.NaN]));
  const all = p.result.records.filter((r) => r[0] === idx);
  const mine = all.filter((r) => r[3] === 0).map((r) => r[2] - (byName.get(r[1]) ?? Number.NaN));
  const wires = targets.flatMap((t) => (wireTtfbs[t.name] ?? []).map((v) => v - wireMedian[t.name]!));
  return {
    n: wires.length,
    medianMs: round(median(mine) - median(wires)),
    p95Ms: round(quantile(mine, 0.95) - quantile(wires, 0.95)),
    // a busy phase may flag every monotonic sample: then the median and p95 are empty, and this says why
    flaggedPct: all.length === 0 ? Number.NaN : (100 * (all.length - mine.length)) / all.length,
  };
}

function wireSection(wireRows: WireRow[]): string[] {
  return [
    "http ttfb against the wire: each connection's ttfb as the agent's interfaces saw it (tcpdump, kernel timestamps: the request's first data segment out to the response's first in) is the truth ttfb should equal; the server's own time to answer is in both, and varies. median: anylat's median − the wire's, per origin, pooled; p95: the same for p95 (each side against the wire's median per origin). wire ttfb − ping: the server's own time to answer, which ttfb includes and ping does not; ms",
    '',
    markdownTable(
      [
        'phase',
        'wire ttfb samples',
        'wire ttfb − ping median',
        'ttfb (kernel) median',
        'ttfb (kernel) p95',
        'ttfb (monotonic) median',
        'ttfb (monotonic) p95',
        'ttfb (monotonic) flagged',
      ],
      wireRows.map((w) => [
        w.phase,
        w.kernel.n + w.monotonic.n,
        signed(w.server, 3),
        signed(w.kernel.medianMs, 3),
        signed(w.kernel.p95Ms, 3),
        signed(w.monotonic.medianMs, 3),
        signed(w.monotonic.p95Ms, 3),
        `${fmt(w.monotonic.flaggedPct, 1)}%`,
      ]),
    ),
    '',
  ];
}

function httpFlagsSection(phases: MeasuredPhase[]): string[] {
  return [
    "http: share of each metric's samples flagged for event-loop lag (kept out of the figures) and share timed by the kernel alone (no lag window), default prober (kernel clock, warm request on), per phase",
    '',
    markdownTable(
      [
        'http metric',
        ...phases.flatMap((p) => [`${p.plan.phase} flagged`, `${p.plan.phase} kernel-timed`, `${p.plan.phase} n`]),
      ],
      HTTP_METRICS.map((m) => [
        m,
        ...phases.flatMap((p) => {
          const c = p.result.httpFlags[m];
          return [
            `${fmt(c.n === 0 ? Number.NaN : (100 * c.flagged) / c.n, 1)}%`,
            `${fmt(c.n === 0 ? Number.NaN : (100 * c.kernel) / c.n, 1)}%`,
            c.n,
          ];
        }),
      ]),
    ),
    '',
  ];
}

function transferSection(transferRows: ReturnType<typeof transferTable>, rateMbit: number | undefined): string[] {
  return [
    `transfer download against the link (phase transfer: downloads only, one at a time): measured median of the download (first byte to last) per origin and size, and the physical limit of the lab link (${rateMbit ?? '?'} Mbit/s, the configured RTT): TCP slow start from 10 segments of 1448 bytes, doubling each round trip, until a flight fills the link, then the link's rate; ms`,
    '',
    markdownTable(
      [
        'origin',
        'RTT ms',
        'size',
        'downloads (flagged)',
        'limit ms',
        'measured median',
        'measured − limit',
        'measured p95',
        'goodput median Mbit/s',
      ],
      transferRows.map((r) => [
        r.origin,
        fmt(r.rttMs, 0),
        sizeLabel(r.size),
        `${r.n} (${r.flagged})`,
        fmt(r.limitMs, 1),
        fmt(r.medianMs, 1),
        signed(r.medianMs - r.limitMs, 1),
        fmt(r.p95Ms, 1),
        fmt(r.goodputMbps, 1),
      ]),
    ),
    '',
  ];
}

/** The samples that failed, per phase and metric; nothing when none did. */
function failuresSection(phases: MeasuredPhase[], transfer: PhaseResult): string[] {
  const failures = phases.flatMap((p) =>
    Object.entries(p.result.failures).map(([m, n]) => `${p.plan.phase} ${m}: ${n}`),
  );
  const transferFailures = Object.entries(transfer.failures).map(([m, n]) => `${m}: ${n}`);
  if (transferFailures.length > 0) failures.push(...transferFailures.map((f) => `transfer ${f}`));
  return failures.length > 0 ? [`failed samples (not in the figures): ${failures.join(', ')}`, ''] : [];
}

/** The bench lab's internet links' bandwidth, Mbit/s (bench/topology.yaml). */
function benchRateMbit(): number | undefined {
  return loadTopology(BENCH_TOPOLOGY).links.find((l) => l.class === 'internet')?.rateMbit;
}

/**
 * The shortest a download of `bytes` can take, first byte to last, over a path of `rttMs` and
 * `mbit`: flights of a congestion window that starts at 10 segments and doubles each round trip
 * (slow start), each flight's first byte one round trip after the previous one's, or right after
 * its last byte once a flight takes longer than a round trip to send (the link is full).
 */
export function downloadLimitMs(bytes: number, rttMs: number, mbit: number): number {
  const bytesPerMs = (mbit * 1e6) / 8 / 1000;
  let cwnd = 10 * 1448;
  let left = bytes;
  let t = 0;
  for (;;) {
    const flight = Math.min(cwnd, left);
    const sendMs = flight / bytesPerMs;
    left -= flight;
    if (left <= 0) return t + sendMs;
    t += Math.max(rttMs, sendMs);
    cwnd *= 2;
  }
}

function transferTable(result: PhaseResult, targets: BenchTarget[], rateMbit: number | undefined) {
  const rows = [];
  for (const t of targets) {
    for (const size of TRANSFER_SIZES) {
      // Flagged downloads count too: the agent reading a fast download's last bytes is the lag the
      // monitor sees at its end (its own work), and the figure is the download's either way.
      const all = (result.transfers ?? []).filter((r) => r[0] === t.name && r[1] === size);
      const mine = all.map((r) => r[2]);
      const medianMs = median(mine);
      rows.push({
        origin: t.name,
        rttMs: t.configuredRttMs,
        size,
        n: mine.length,
        flagged: all.filter((r) => r[3] === 1).length,
        limitMs: rateMbit === undefined ? Number.NaN : round(downloadLimitMs(size, t.configuredRttMs, rateMbit), 1),
        medianMs: round(medianMs, 1),
        p95Ms: round(quantile(mine, 0.95), 1),
        goodputMbps: round((size * 8) / (medianMs * 1000), 1),
      });
    }
  }
  return rows;
}

await main();
