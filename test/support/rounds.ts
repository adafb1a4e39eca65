// Round results for store, sink and report tests: what the round engine produces, with values a
// test chooses (or derives from the round's number, so each round's points are recognisable).
import type { BenefitRow, PathResult, RoundResult } from '../../agent/core/model.ts';

export interface RoundSpec {
  agent?: string;
  region?: string;
  service?: string;
  /** epoch ms of the round start */
  startedAt: number;
  /** makes the values unique per round: anycast p50 = 10 + seq/1000 */
  seq?: number;
  benefit?: BenefitRow[];
  paths?: PathResult[];
  events?: RoundResult['events'];
  labels?: Record<string, string>;
}

export function udpPath(endpoint: string, p50: number, extra: Partial<PathResult> = {}): PathResult {
  return {
    endpoint,
    kind: endpoint === 'anycast' ? 'anycast' : 'unicast',
    address: endpoint === 'anycast' ? '198.18.0.10' : '198.18.1.10',
    protocol: 'udp',
    metric: 'rtt',
    scope: 'end_to_end',
    sent: 20,
    received: 20,
    loss_pct: 0,
    min_ms: p50 - 0.5,
    p50_ms: p50,
    p90_ms: p50 + 0.5,
    p99_ms: p50 + 1,
    max_ms: p50 + 1.2,
    mean_ms: p50 + 0.1,
    stddev_ms: 0.3,
    jitter_ms: 0.2,
    flagged: 0,
    ...extra,
  };
}

export function benefitRow(saved: number, extra: Partial<BenefitRow> = {}): BenefitRow {
  const anycast = 10;
  return {
    protocol: 'udp',
    metric: 'rtt',
    scope: 'end_to_end',
    baseline: 'us-east-1',
    anycast_p50_ms: anycast,
    baseline_p50_ms: anycast + saved,
    saved_ms: saved,
    saved_pct: (saved / (anycast + saved)) * 100,
    ci_low_ms: saved - 1,
    ci_high_ms: saved + 1,
    win_rate: 1,
    pairs: 20,
    ...extra,
  };
}

/** A round with three UDP paths (anycast, us-east-1, eu-west-1) and one benefit row. */
export function makeRound(spec: RoundSpec): RoundResult {
  const seq = spec.seq ?? 0;
  const anycast = 10 + seq / 1000;
  const round: RoundResult = {
    agent: {
      id: spec.agent ?? 'eu-1',
      region: spec.region ?? 'eu-west-1',
      ...(spec.labels ? { labels: spec.labels } : {}),
    },
    service: spec.service ?? 'web',
    started_at: new Date(spec.startedAt).toISOString(),
    scheduled_at: new Date(spec.startedAt - 3).toISOString(),
    duration_ms: 1500 + seq,
    paths: spec.paths ?? [
      udpPath('anycast', anycast, { site: 'edge-eu' }),
      udpPath('us-east-1', anycast + 30),
      udpPath('eu-west-1', anycast + 5, { received: 19, loss_pct: 5 }),
    ],
    benefit: spec.benefit ?? [
      benefitRow(5, { anycast_p50_ms: anycast, baseline_p50_ms: anycast + 5, baseline: 'eu-west-1' }),
    ],
  };
  if (spec.events) round.events = spec.events;
  return round;
}
