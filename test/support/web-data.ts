// A store filled through the store's own saveRound/saveHeartbeat with rounds whose numbers the web
// tests know: three regions of service `web` (anycast saves ~30 ms in ap-south, ~0 in us-east, and
// costs ~6 ms in eu-west after its site moved), plus an old agent of service `api`.
import type { AgentHeartbeat, BenefitRow, PathResult, RoundResult } from '../../agent/core/model.ts';
import type { Store } from '../../agent/store/index.ts';

export interface RegionSpec {
  agent: string;
  region: string;
  /** typical anycast p50 (ms) and how much anycast saves (ms, baseline − anycast) */
  anycast: number;
  saved: number;
  baseline: string;
  /** typical win rate (each round wobbles by ±0.05 within [0, 1]) */
  winRate: number;
  /** site answering the anycast address; `siteAfter` from round `changeAt` on */
  site: string;
  siteAfter?: string;
  changeAt?: number;
  /** ms after the round grid: agents are not in step */
  offsetMs: number;
}

export const REGIONS: readonly RegionSpec[] = [
  {
    agent: 'ap-1',
    region: 'ap-south',
    anycast: 70,
    saved: 30,
    baseline: 'eu-west-1',
    winRate: 1,
    site: 'eu-west-1',
    offsetMs: 0,
  },
  {
    agent: 'eu-1',
    region: 'eu-west',
    anycast: 14,
    saved: -6,
    baseline: 'eu-west-1',
    winRate: 0.1,
    site: 'eu-west-1',
    siteAfter: 'us-east-1',
    changeAt: 6,
    offsetMs: 7_000,
  },
  {
    agent: 'us-1',
    region: 'us-east',
    anycast: 5.3,
    saved: 0.2,
    baseline: 'us-east-1',
    winRate: 0.55,
    site: 'us-east-1',
    offsetMs: 13_000,
  },
];

export const ROUNDS = 12;
export const ROUND_GAP_MS = 60_000;
/** the round-to-round wobble; its median over 12 rounds is 0, so window medians equal the spec */
const WOBBLE = [-0.6, 0, 0.6];
const WIN_WOBBLE = [-0.05, 0, 0.05];
export const CI_HALF_WIDTH = 1.5;
/** us-1 loses 1 of 20 UDP samples to eu-west-1 in every fourth round */
export const LOSSY = { agent: 'us-1', endpoint: 'eu-west-1', protocol: 'udp', every: 4, lossPct: 5 } as const;

const round2 = (v: number) => Math.round(v * 100) / 100;

function path(
  endpoint: string,
  protocol: 'udp' | 'tcp',
  metric: 'rtt' | 'connect',
  p50: number,
  extra: Partial<PathResult> = {},
): PathResult {
  return {
    endpoint,
    kind: endpoint === 'anycast' ? 'anycast' : 'unicast',
    address: endpoint === 'anycast' ? '198.18.0.10' : endpoint === 'us-east-1' ? '198.19.1.10' : '198.19.2.10',
    protocol,
    metric,
    scope: protocol === 'tcp' && metric === 'connect' ? 'edge' : 'end_to_end',
    sent: 20,
    received: 20,
    loss_pct: 0,
    min_ms: round2(p50 - 0.4),
    p50_ms: round2(p50),
    p90_ms: round2(p50 + 0.5),
    p99_ms: round2(p50 + 0.9),
    max_ms: round2(p50 + 1),
    mean_ms: round2(p50 + 0.05),
    stddev_ms: 0.3,
    jitter_ms: 0.2,
    flagged: 0,
    ...extra,
  };
}

function benefit(
  protocol: BenefitRow['protocol'],
  metric: BenefitRow['metric'],
  scope: BenefitRow['scope'],
  anycast: number,
  saved: number,
  baseline: string,
  winRate: number,
): BenefitRow {
  const base = anycast + saved;
  return {
    protocol,
    metric,
    scope,
    baseline,
    anycast_p50_ms: round2(anycast),
    baseline_p50_ms: round2(base),
    saved_ms: round2(saved),
    saved_pct: round2((saved / base) * 100),
    ci_low_ms: round2(saved - CI_HALF_WIDTH),
    ci_high_ms: round2(saved + CI_HALF_WIDTH),
    win_rate: round2(winRate),
    pairs: 20,
  };
}

/** Round `i` (0 = oldest) of `spec`, started at `t`. */
export function regionRound(spec: RegionSpec, i: number, t: number): RoundResult {
  const w = WOBBLE[i % 3]!;
  const anycast = spec.anycast + w / 2;
  const saved = spec.saved + w;
  const baseline = anycast + saved;
  const other = spec.baseline === 'eu-west-1' ? 'us-east-1' : 'eu-west-1';
  const site = spec.changeAt !== undefined && i >= spec.changeAt ? spec.siteAfter! : spec.site;
  const lossy = spec.agent === LOSSY.agent && i % LOSSY.every === 0;
  const round: RoundResult = {
    agent: { id: spec.agent, region: spec.region },
    service: 'web',
    started_at: new Date(t).toISOString(),
    scheduled_at: new Date(t).toISOString(),
    duration_ms: 1200,
    paths: [
      path('anycast', 'udp', 'rtt', anycast, { site }),
      path(spec.baseline, 'udp', 'rtt', baseline),
      path(
        other,
        'udp',
        'rtt',
        baseline + 40,
        lossy && other === LOSSY.endpoint ? { received: 19, loss_pct: LOSSY.lossPct } : {},
      ),
      path('anycast', 'tcp', 'connect', 2, { site }),
      path(spec.baseline, 'tcp', 'connect', baseline),
    ],
    benefit: [
      benefit(
        'udp',
        'rtt',
        'end_to_end',
        anycast,
        saved,
        spec.baseline,
        Math.min(1, Math.max(0, spec.winRate + WIN_WOBBLE[i % 3]!)),
      ),
      benefit('tcp', 'connect', 'edge', 2, baseline - 2, spec.baseline, 1),
    ],
  };
  if (spec.changeAt === i) {
    round.events = [
      {
        type: 'site_change',
        service: 'web',
        message: `anycast udp: site ${spec.site} -> ${spec.siteAfter}`,
        from: spec.site,
        to: spec.siteAfter!,
      },
    ];
  }
  return round;
}

export interface Filled {
  now: number;
  /** every round saved, per agent, oldest first */
  rounds: Map<string, RoundResult[]>;
  /** start of round `i` of `spec` */
  startOf: (spec: RegionSpec, i: number) => number;
}

function heartbeat(agent: string, region: string, at: number, extra: Partial<AgentHeartbeat> = {}): AgentHeartbeat {
  return {
    agent: { id: agent, region },
    at: new Date(at).toISOString(),
    version: '0.1.0',
    uptime_s: 3600,
    loop_lag_p99_ms: 1.2,
    rounds_late: 0,
    outbox_rows: 0,
    dead_letters: 0,
    ...extra,
  };
}

/**
 * Fills `store`: 12 rounds a minute apart per region of service `web`, the newest about half a
 * minute before `now`; heartbeats (ap-1 twenty minutes old, eu-1 with dead letters); and agent
 * old-1 whose only rounds (service `api`) are three hours old, without a heartbeat.
 */
export function fillStore(store: Store, now: number = Date.now()): Filled {
  const grid = now - 30_000 - (ROUNDS - 1) * ROUND_GAP_MS;
  const startOf = (spec: RegionSpec, i: number) => grid + i * ROUND_GAP_MS + spec.offsetMs - 20_000;
  const rounds = new Map<string, RoundResult[]>();
  for (let i = 0; i < ROUNDS; i++) {
    for (const spec of REGIONS) {
      const r = regionRound(spec, i, startOf(spec, i));
      store.saveRound(r);
      const list = rounds.get(spec.agent) ?? [];
      list.push(r);
      rounds.set(spec.agent, list);
    }
  }
  const old: RegionSpec = {
    agent: 'old-1',
    region: 'sa-east',
    anycast: 50,
    saved: 10,
    baseline: 'us-east-1',
    winRate: 0.8,
    site: 'us-east-1',
    offsetMs: 0,
  };
  const oldRounds: RoundResult[] = [];
  for (let i = 0; i < 3; i++) {
    const r = { ...regionRound(old, i, now - 3 * 3_600_000 + i * ROUND_GAP_MS), service: 'api' };
    store.saveRound(r);
    oldRounds.push(r);
  }
  rounds.set('old-1', oldRounds);
  store.saveHeartbeat(heartbeat('us-1', 'us-east', now - 10_000));
  store.saveHeartbeat(
    heartbeat('eu-1', 'eu-west', now - 5_000, {
      dead_letters: 2,
      outbox_rows: 37,
      loop_lag_p99_ms: 3.4,
      rounds_failed: 3,
    }),
  );
  store.saveHeartbeat(heartbeat('ap-1', 'ap-south', now - 20 * 60_000, { version: '0.0.9' }));
  return { now, rounds, startOf };
}
