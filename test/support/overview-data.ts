// A store with several services in three regions, filled through the store's own saveRound, whose
// right answer the overview tests (and the page screenshot) know: each service × region states
// what anycast saves on the service's headline metric, its CI, its verdict and its loss.
//
//   web     udp rtt (+ tcp connect at the edge, http ttfb and http dns)   every 10 s
//   shop    HTTP only: dns, connect (edge), tls, ttfb, total              every 10 s
//           (dns says anycast is slower; ttfb, the headline, says faster; ap-south loses 20 % of
//           its anycast requests after TLS)
//   stream  tcp rtt (+ tcp connect at the edge)                            every 10 s
//           (eu-west: anycast significantly slower)
//   login   tls handshake only (two regions)                              every 60 s
//   api     udp rtt; us-east next to the origin: 0.5 ms slower, CI spans 0  every 60 s
//           (eu-west loses 1 of 20 samples to us-east-1)
import type { BenefitRow, Metric, PathResult, Protocol, RoundResult, Scope } from '../../agent/core/model.ts';
import type { Store } from '../../agent/store/index.ts';

export interface Cell {
  /** what anycast saves on the headline metric (ms, baseline − anycast) and the CI's half width */
  saved: number;
  half: number;
  /** anycast p50 on the headline metric */
  anycast: number;
  winRate: number;
  /** nearest unicast endpoint */
  baseline: 'us-east-1' | 'eu-west-1';
  /** samples of 20 lost per round: on the anycast path, on the other unicast endpoint */
  anycastLost?: number;
  otherLost?: number;
}

export interface ServiceSpec {
  service: string;
  intervalS: number;
  /** the metrics every round of it measures; the first is the headline */
  metrics: ReadonlyArray<readonly [Protocol, Metric, Scope]>;
  /** HTTP: the anycast path loses `anycastLost` requests after TLS (ttfb, total fail; dns, connect, tls do not) */
  afterTls?: boolean;
  regions: Partial<Record<AgentName, Cell>>;
}

export const AGENTS = { 'ap-1': 'ap-south', 'eu-1': 'eu-west', 'us-1': 'us-east' } as const;
export type AgentName = keyof typeof AGENTS;

export const SERVICES: readonly ServiceSpec[] = [
  {
    service: 'web',
    intervalS: 10,
    metrics: [
      ['udp', 'rtt', 'end_to_end'],
      ['tcp', 'connect', 'edge'],
      ['http', 'dns', 'end_to_end'],
      ['http', 'ttfb', 'end_to_end'],
    ],
    regions: {
      'ap-1': { saved: 30, half: 1.5, anycast: 70, winRate: 1, baseline: 'eu-west-1' },
      'eu-1': { saved: 4.2, half: 1.1, anycast: 12, winRate: 0.8, baseline: 'eu-west-1' },
      'us-1': { saved: 0.2, half: 0.9, anycast: 5.3, winRate: 0.55, baseline: 'us-east-1' },
    },
  },
  {
    service: 'shop',
    intervalS: 10,
    metrics: [
      ['http', 'ttfb', 'end_to_end'],
      ['http', 'dns', 'end_to_end'],
      ['http', 'connect', 'edge'],
      ['http', 'tls', 'end_to_end'],
      ['http', 'total', 'end_to_end'],
    ],
    afterTls: true,
    regions: {
      'ap-1': { saved: 41, half: 4, anycast: 160, winRate: 0.95, baseline: 'eu-west-1', anycastLost: 4 },
      'eu-1': { saved: 3.8, half: 1.2, anycast: 40, winRate: 0.75, baseline: 'eu-west-1' },
      'us-1': { saved: 6.5, half: 2, anycast: 30, winRate: 0.8, baseline: 'us-east-1' },
    },
  },
  {
    service: 'stream',
    intervalS: 10,
    metrics: [
      ['tcp', 'rtt', 'end_to_end'],
      ['tcp', 'connect', 'edge'],
    ],
    regions: {
      'ap-1': { saved: 25, half: 2, anycast: 75, winRate: 0.97, baseline: 'eu-west-1' },
      'eu-1': { saved: -4, half: 1.5, anycast: 18, winRate: 0.15, baseline: 'eu-west-1' },
      'us-1': { saved: 1.4, half: 0.8, anycast: 6, winRate: 0.7, baseline: 'us-east-1' },
    },
  },
  {
    service: 'login',
    intervalS: 60,
    metrics: [
      ['tls', 'handshake', 'end_to_end'],
      ['tcp', 'connect', 'edge'],
    ],
    regions: {
      'eu-1': { saved: 9, half: 2.5, anycast: 36, winRate: 0.85, baseline: 'us-east-1' },
      'us-1': { saved: 2.5, half: 1.5, anycast: 14, winRate: 0.7, baseline: 'us-east-1' },
    },
  },
  {
    service: 'api',
    intervalS: 60,
    metrics: [['udp', 'rtt', 'end_to_end']],
    regions: {
      'ap-1': { saved: 15, half: 2, anycast: 80, winRate: 0.9, baseline: 'eu-west-1' },
      'eu-1': { saved: 3, half: 1, anycast: 10, winRate: 0.8, baseline: 'eu-west-1', otherLost: 1 },
      'us-1': { saved: -0.5, half: 0.9, anycast: 4, winRate: 0.45, baseline: 'us-east-1' },
    },
  },
];

/** How long the store holds rounds of (ending about now): 60 rounds at 10 s, 10 at 60 s. */
export const SPAN_MS = 600_000;
/** the round-to-round wobble; with 60 or 10 rounds its median is 0, so window medians equal the spec */
const WOBBLE = [-0.6, 0, 0.6];
const SAMPLES = 20;

const round2 = (v: number) => Math.round(v * 100) / 100;

/** The verdict the page gives for a CI: what the spec says the right answer is. */
export function verdictOf(cell: Cell): string {
  if (cell.saved - cell.half > 0) return 'anycast faster';
  if (cell.saved + cell.half < 0) return 'anycast slower';
  return 'no clear difference';
}

/** Loss the overview must show for a cell, in % (anycast path; worst unicast endpoint). */
export function lossOf(cell: Cell): { anycast: number; unicast: number } {
  return { anycast: (100 * (cell.anycastLost ?? 0)) / SAMPLES, unicast: (100 * (cell.otherLost ?? 0)) / SAMPLES };
}

/** Whether `metric` of the anycast path loses the cell's samples (HTTP after TLS: the request, not its setup). */
function losesOnAnycast(spec: ServiceSpec, protocol: Protocol, metric: Metric): boolean {
  if (spec.afterTls) return protocol === 'http' && (metric === 'ttfb' || metric === 'total' || metric === 'warm');
  return protocol === spec.metrics[0]![0];
}

function path(
  endpoint: string,
  protocol: Protocol,
  metric: Metric,
  scope: Scope,
  p50: number,
  lost: number,
  site?: string,
): PathResult {
  return {
    endpoint,
    kind: endpoint === 'anycast' ? 'anycast' : 'unicast',
    address: endpoint === 'anycast' ? '198.18.0.10' : endpoint === 'us-east-1' ? '198.19.1.10' : '198.19.2.10',
    protocol,
    metric,
    scope,
    ...(site ? { site } : {}),
    sent: SAMPLES,
    received: SAMPLES - lost,
    loss_pct: (100 * lost) / SAMPLES,
    min_ms: round2(p50 - 0.4),
    p50_ms: round2(p50),
    p90_ms: round2(p50 + 0.5),
    p99_ms: round2(p50 + 0.9),
    max_ms: round2(p50 + 1),
    mean_ms: round2(p50 + 0.05),
    stddev_ms: 0.3,
    jitter_ms: 0.2,
    flagged: 0,
  };
}

/** Round `i` of `spec` in the region of `agent`, started at `t`. */
export function cellRound(spec: ServiceSpec, agent: AgentName, cell: Cell, i: number, t: number): RoundResult {
  const w = WOBBLE[i % 3]!;
  const other = cell.baseline === 'eu-west-1' ? 'us-east-1' : 'eu-west-1';
  const site = cell.baseline;
  const paths: PathResult[] = [];
  const benefit: BenefitRow[] = [];
  spec.metrics.forEach(([protocol, metric, scope], k) => {
    // The headline metric carries the spec; the others differ so a wrong default shows: DNS says
    // anycast is 1.9 ms slower, an edge handshake overstates the saving.
    const saved =
      k === 0
        ? cell.saved + w
        : metric === 'dns'
          ? -1.9 + w
          : scope === 'edge'
            ? cell.saved + 20 + w
            : cell.saved + 1 + w;
    const anycast = (k === 0 ? cell.anycast : scope === 'edge' ? 2 : cell.anycast + 5 * k) + w / 2;
    const base = anycast + saved;
    const lostA = losesOnAnycast(spec, protocol, metric) ? (cell.anycastLost ?? 0) : 0;
    const lostO = protocol === spec.metrics[0]![0] ? (cell.otherLost ?? 0) : 0;
    paths.push(path('anycast', protocol, metric, scope, anycast, lostA, site));
    paths.push(path(cell.baseline, protocol, metric, scope, base, 0));
    paths.push(path(other, protocol, metric, scope, base + 40, lostO));
    const win = Math.min(1, Math.max(0, cell.winRate + [-0.05, 0, 0.05][i % 3]!));
    benefit.push({
      protocol,
      metric,
      scope,
      baseline: cell.baseline,
      anycast_p50_ms: round2(anycast),
      baseline_p50_ms: round2(base),
      saved_ms: round2(saved),
      saved_pct: round2((saved / base) * 100),
      ci_low_ms: round2(saved - cell.half),
      ci_high_ms: round2(saved + cell.half),
      win_rate: round2(win),
      pairs: SAMPLES,
    });
  });
  return {
    agent: { id: agent, region: AGENTS[agent] },
    service: spec.service,
    started_at: new Date(t).toISOString(),
    scheduled_at: new Date(t).toISOString(),
    duration_ms: 900,
    paths,
    benefit,
  };
}

export interface OverviewFill {
  now: number;
  /** every round saved, per `service/agent`, oldest first */
  rounds: Map<string, RoundResult[]>;
}

/**
 * Fills `store` with SPAN_MS of rounds of every service × region, the newest a few seconds before
 * `now`, and a fresh heartbeat per agent. Agents and services are offset so no two rounds start
 * at the same instant.
 */
export function fillOverviewStore(store: Store, now: number = Date.now()): OverviewFill {
  const rounds = new Map<string, RoundResult[]>();
  const all: RoundResult[] = [];
  const agents = Object.keys(AGENTS) as AgentName[];
  SERVICES.forEach((spec, s) => {
    const n = SPAN_MS / (spec.intervalS * 1000);
    agents.forEach((agent, a) => {
      const cell = spec.regions[agent];
      if (!cell) return;
      const list: RoundResult[] = [];
      for (let i = 0; i < n; i++) {
        const t = now - 5_000 - (n - 1 - i) * spec.intervalS * 1000 - s * 1_300 - a * 400;
        list.push(cellRound(spec, agent, cell, i, t));
      }
      rounds.set(`${spec.service}/${agent}`, list);
      all.push(...list);
    });
  });
  all.sort((x, y) => Date.parse(x.started_at) - Date.parse(y.started_at));
  for (const r of all) store.saveRound(r);
  for (const agent of agents) {
    store.saveHeartbeat({
      agent: { id: agent, region: AGENTS[agent] },
      at: new Date(now - 8_000).toISOString(),
      version: '0.1.0',
      uptime_s: 7200,
      loop_lag_p99_ms: 1.1,
      rounds_late: 0,
      outbox_rows: 0,
      dead_letters: 0,
    });
  }
  return { now, rounds };
}
