// What bench/accuracy.ts and its agent side (bench/accuracy-agent.ts) say to each other.
import type { EchoTiming } from '../../agent/probe/tcp.ts';

/** What the driver measures: one row of the accuracy table each. */
export const ACCURACY_METRICS = [
  'udp rtt',
  'tcp connect (kernel)',
  'tcp connect (monotonic)',
  'tcp rtt (echo)',
  'http ttfb',
  'http ttfb (monotonic)',
  'icmp rtt',
  'dns query',
] as const;
/**
 * Measured besides, for the echo-clock table: the same echo timed by the monotonic clock (a second
 * prober), next to the default kernel clock's `tcp rtt (echo)`.
 */
export const EXTRA_METRICS = ['tcp rtt (echo, monotonic clock)', 'transfer download'] as const;
/** The http prober's metrics whose flagged share the driver reports (the URL is an IP: no dns). */
export const HTTP_METRICS = ['connect', 'ttfb', 'total', 'warm'] as const;
/** What a SampleRecord's first element indexes. */
export const SAMPLE_METRICS = [...ACCURACY_METRICS, ...EXTRA_METRICS] as const;
export type AccuracyMetric = (typeof SAMPLE_METRICS)[number];

export interface AccuracySetup {
  targets: Array<{ name: string; address: string }>;
  ports: { udp: number; tcp: number; http: number };
  /**
   * the HTTP port the monotonic-clock http prober measures: the lab's own reflector (idle, the
   * same code), so that each prober's connections can be told apart on the wire
   */
  monotonicHttpPort: number;
  /** the DNS port of the lab's own reflectors (`--dns-port`): the dns probe's query over UDP */
  dnsPort: number;
  /** the reflectors that answer the background load (other processes than the measured ones) */
  loadPorts: { udp: number; tcp: number; http: number };
  /** the transfer phase: one download of each size from every origin per round (the bench reflector's /bytes/N) */
  transfer: { sizes: number[] };
  /** samples per round and spacing of the measured rounds */
  samples: number;
  spacingMs: number;
}

export interface PhaseCommand {
  phase: string;
  durationMs: number;
  /** background paths (udp and tcp+echo to the same origins) running in this process meanwhile */
  busyPaths: number;
  /** samples per second per background path */
  busyRatePerPath: number;
  /** measure transfer downloads only (nothing else runs meanwhile, so they have the links to themselves) */
  transfer?: boolean;
}

/**
 * [metric index in SAMPLE_METRICS, target name, value ms, flagged 0/1, timed by the kernel 0/1]:
 * the last says the probe left the metric no lag window, i.e. both its ends were kernel stamps
 */
export type SampleRecord = [number, string, number, 0 | 1, 0 | 1];

/** One transfer download: [target name, size in bytes, download ms, flagged 0/1]. */
export type TransferRecord = [string, number, number, 0 | 1];

export interface PhaseResult {
  /** the transfer phase's downloads */
  transfers?: TransferRecord[];
  phase: string;
  startedAt: number;
  endedAt: number;
  records: SampleRecord[];
  /** samples that failed (timeout, refused …), per metric: none are expected on the bench lab */
  failures: Record<string, number>;
  busy: {
    paths: number;
    samples: number;
    failures: number;
    failureReasons: Record<string, number>;
    samplesPerSecond: number;
  };
  /** how the measured (default, kernel clock) tcp prober timed its echoes: summed echoTiming() */
  echoTiming: EchoTiming;
  /**
   * every metric of the measured (default clock, warm on) http prober: samples with a value, how
   * many the round flagged for event-loop lag, how many the kernel timed (no lag window at all)
   */
  httpFlags: Record<(typeof HTTP_METRICS)[number], { n: number; flagged: number; kernel: number }>;
  cpuPct: number;
  eventLoopUtilization: number;
  lagP99Ms: number;
}
