// When a round calls for path context, and which paths to trace: the anycast address(es) and the
// round's baseline (plus any path that went down), on a site change, a path going down, or the
// end_to_end benefit moving more than `shiftMs` away from its median over the recent rounds. Only
// addresses the round measured (i.e. the config's) are ever traced. The rate limit is per path.
import type { AnylatEvent, EndpointKind, RoundResult, TraceTrigger } from '../core/model.ts';
import { median } from '../util/median.ts';

/** One path to trace and why. */
export interface TraceRequest {
  trigger: TraceTrigger;
  reason: string;
  endpoint: string;
  kind: EndpointKind;
  address: string;
}

/** Recent end_to_end `saved_ms` per `protocol/metric`, oldest first; JSON-able, kept by the caller. */
export type BenefitHistory = Record<string, number[]>;

/** How many past rounds the benefit's median is taken over, and how many it needs first. */
export const BENEFIT_HISTORY = { keep: 10, min: 3 } as const;

/**
 * The trigger of a round (site_change before path_down before benefit_shift: one trace per path
 * per round), the paths to trace, and the benefit history to keep for the next round.
 */
export function traceRequests(
  round: RoundResult,
  events: AnylatEvent[],
  history: BenefitHistory | undefined,
  shiftMs: number,
): { requests: TraceRequest[]; history: BenefitHistory } {
  const next: BenefitHistory = {};
  let shift: { reason: string; by: number } | undefined;
  for (const b of round.benefit) {
    if (b.scope !== 'end_to_end' || b.saved_ms === undefined || !Number.isFinite(b.saved_ms)) continue;
    const key = `${b.protocol}/${b.metric}`;
    const past = history?.[key] ?? [];
    if (past.length >= BENEFIT_HISTORY.min) {
      const m = median(past)!;
      const by = b.saved_ms - m;
      if (Math.abs(by) > shiftMs && (shift === undefined || Math.abs(by) > Math.abs(shift.by))) {
        shift = {
          by,
          reason: `${key} benefit ${b.saved_ms.toFixed(1)} ms vs recent median ${m.toFixed(1)} ms (${by > 0 ? '+' : ''}${by.toFixed(1)} ms)`,
        };
      }
    }
    next[key] = [...past, b.saved_ms].slice(-BENEFIT_HISTORY.keep);
  }
  // Keys this round did not measure keep their history.
  for (const [k, v] of Object.entries(history ?? {})) if (!(k in next)) next[k] = v;

  const site = events.find((e) => e.type === 'site_change');
  const down = events.find((e) => e.type === 'path_down');
  const why: { trigger: TraceTrigger; reason: string } | undefined = site
    ? { trigger: 'site_change', reason: site.message }
    : down
      ? { trigger: 'path_down', reason: down.message }
      : shift
        ? { trigger: 'benefit_shift', reason: shift.reason }
        : undefined;
  if (!why) return { requests: [], history: next };

  const addresses = new Map<string, { kind: EndpointKind; address: string }>();
  for (const p of round.paths)
    if (!addresses.has(p.endpoint)) addresses.set(p.endpoint, { kind: p.kind, address: p.address });
  const wanted = new Set<string>();
  for (const [endpoint, a] of addresses) if (a.kind === 'anycast') wanted.add(endpoint);
  for (const b of round.benefit) if (b.scope === 'end_to_end') wanted.add(b.baseline);
  if (why.trigger === 'path_down') {
    for (const p of round.paths)
      if (p.sent > 0 && p.received === 0 && down!.message.includes(`${p.endpoint} ${p.protocol} down`))
        wanted.add(p.endpoint);
  }
  const requests: TraceRequest[] = [];
  for (const endpoint of wanted) {
    const a = addresses.get(endpoint);
    if (a) requests.push({ ...why, endpoint, kind: a.kind, address: a.address });
  }
  return { requests, history: next };
}

/** At most one trace per key within `minIntervalMs` (a clock is passed in for tests). */
export class TraceLimiter {
  private readonly last = new Map<string, number>();
  constructor(
    private minIntervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** True (and the key's clock restarts) when the key may be traced now. */
  take(key: string): boolean {
    const t = this.now();
    const before = this.last.get(key);
    if (before !== undefined && t - before < this.minIntervalMs) return false;
    this.last.set(key, t);
    return true;
  }

  setInterval(ms: number): void {
    this.minIntervalMs = ms;
  }
}
