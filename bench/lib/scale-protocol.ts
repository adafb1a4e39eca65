// What bench/scale.ts and its agent side (bench/scale-agent.ts) say to each other.

/** One step: this many paths in one agent process, scheduled like `anylat run` schedules them. */
export interface ScaleStep {
  /** `udp+tcp`: every service probes udp and tcp (connect + echo); `icmp`: icmp only */
  kind: 'udp+tcp' | 'icmp';
  paths: number;
  /** 6-field cron with seconds, e.g. every 10 s */
  schedule: string;
  samples: number;
  spacingMs: number;
  /**
   * the window opens this long after every service has had its first round start (the first cron
   * slot plus one interval), so first rounds (prober creation, JIT) are behind it
   */
  warmupMs: number;
  windowMs: number;
}

export interface ScaleSetup {
  targets: Array<{ name: string; address: string }>;
  ports: { udp: number; tcp: number; http: number };
  storeDir: string;
  step: ScaleStep;
}

/** Values kept per (metric, origin): [value ms, flagged 0/1] pairs, flattened. */
export type ValueSeries = Record<string, Record<string, number[]>>;

export interface ScaleResult {
  services: number;
  paths: number;
  windowStart: number;
  windowEnd: number;
  /** counted samples whose reply (or failure) came in during the window */
  samples: number;
  failures: Record<string, number>;
  rounds: { started: number; late: number; abandoned: number; skipped: number; saved: number };
  cpuPct: number;
  /** every CPU of the machine: the lab's wire and reflectors share them with the agent */
  machineCpuPct: number;
  eventLoopUtilization: number;
  lagP99Ms: number;
  peakRssMb: number;
  rssMb: number;
  heapUsedMb: number;
  values: ValueSeries;
  /** tcp echoes in the window, and how many of them the kernel timed (no lag window left) */
  echoes: { total: number; kernel: number };
  log: string[];
}
