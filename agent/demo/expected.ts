// What the topology says the demo should measure: per agent, the anycast round trip through its edge
// to the serving origin, the nearest unicast origin that answers, and the benefit between them —
// now, or after a failure. The terminal's hints and the end-to-end tests use the same numbers.
import { describeLab, labDir, requireLab, type LabDescription, type LabOptions } from '../lab/index.ts';
import type { Failures } from '../lab/index.ts';

export interface ExpectedBenefit {
  region: string;
  /** the edge and origin anycast reaches (null when none is up) */
  edge: string | null;
  site: string | null;
  /** round trip through the edge to the origin (UDP/TCP echo), mean and floor */
  anycastMeanMs: number | null;
  anycastMinMs: number | null;
  /** the unicast origin with the lowest mean round trip that is not failed */
  baseline: string | null;
  baselineMeanMs: number | null;
  baselineMinMs: number | null;
  /** baseline − anycast (means): positive when anycast is faster */
  savedMs: number | null;
}

/** Expected benefit per agent of a lab description (its failures included). */
export function expectedBenefits(d: LabDescription): ExpectedBenefit[] {
  return d.agents.map((a) => {
    const up = a.unicast.filter((u) => !u.failed).sort((x, y) => x.rtt.meanMs - y.rtt.meanMs);
    const best = up[0];
    const anycast = a.anycast.originRtt;
    return {
      region: a.region,
      edge: a.anycast.edge,
      site: a.anycast.origin,
      anycastMeanMs: anycast?.meanMs ?? null,
      anycastMinMs: anycast?.minMs ?? null,
      baseline: best?.origin ?? null,
      baselineMeanMs: best?.rtt.meanMs ?? null,
      baselineMinMs: best?.rtt.minMs ?? null,
      savedMs: anycast && best ? round3(best.rtt.meanMs - anycast.meanMs) : null,
    };
  });
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** The running lab's description as it would be with `failures` instead of its own (changes nothing). */
export function describeWith(failures: Failures, opts: LabOptions = {}): LabDescription {
  const state = requireLab(opts);
  return describeLab({ ...state, failures }, labDir(opts.dir));
}

function fmt(v: number | null): string {
  return v === null ? '-' : `${Number(v.toFixed(1))} ms`;
}

/** One line per agent whose anycast site, baseline or benefit a failure would change. */
function changes(before: ExpectedBenefit[], after: ExpectedBenefit[]): string[] {
  const out: string[] = [];
  for (const b of before) {
    const a = after.find((x) => x.region === b.region)!;
    if (a.edge === b.edge && a.site === b.site && a.baseline === b.baseline) continue;
    const parts: string[] = [];
    if (a.edge !== b.edge) parts.push(`edge ${b.edge ?? 'none'} → ${a.edge ?? 'none'}`);
    if (a.site !== b.site) parts.push(`site ${b.site ?? 'none'} → ${a.site ?? 'none'}`);
    parts.push(`anycast ${fmt(b.anycastMeanMs)} → ${fmt(a.anycastMeanMs)}`);
    if (a.baseline !== b.baseline) parts.push(`baseline ${b.baseline} → ${a.baseline ?? 'none'}`);
    parts.push(`saved ${fmt(b.savedMs)} → ${fmt(a.savedMs)}`);
    out.push(`${b.region}: ${parts.join(', ')}`);
  }
  return out;
}

/**
 * Failures worth trying in this lab (`anylat` arguments) and what the topology says they change: the origin serving the
 * agent that gains most, and the edge whose loss hurts some agent most.
 */
export function failureHints(opts: LabOptions = {}): Array<{ args: string; effects: string[] }> {
  const state = requireLab(opts);
  const now = expectedBenefits(describeLab(state, labDir(opts.dir)));
  const hints: Array<{ args: string; effects: string[] }> = [];
  const gainer = [...now].filter((e) => e.savedMs !== null).sort((x, y) => y.savedMs! - x.savedMs!)[0];
  if (gainer?.site && state.topology.origins.length > 1) {
    const after = expectedBenefits(
      describeLab({ ...state, failures: { edges: [], origins: [gainer.site] } }, labDir(opts.dir)),
    );
    hints.push({ args: `lab fail origin ${gainer.site}`, effects: changes(now, after) });
  }
  let worst: { edge: string; effects: string[]; saved: number } | undefined;
  for (const e of state.topology.edges) {
    const after = expectedBenefits(
      describeLab({ ...state, failures: { edges: [e.region], origins: [] } }, labDir(opts.dir)),
    );
    const saved = Math.min(...after.map((x) => x.savedMs ?? Infinity));
    if (worst === undefined || saved < worst.saved) worst = { edge: e.region, effects: changes(now, after), saved };
  }
  if (worst && state.topology.edges.length > 1)
    hints.push({ args: `lab fail edge ${worst.edge}`, effects: worst.effects });
  return hints;
}
