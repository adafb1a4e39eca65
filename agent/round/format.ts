// The human-readable table of one round: each (protocol, metric) with anycast beside every unicast
// endpoint, then the benefit rows with their confidence interval, then the headline.
import { RATE_METRICS, type BenefitRow, type FailureReason, type PathResult, type RoundResult } from '../core/model.ts';

function ms(v: number | undefined): string {
  if (v === undefined) return '-';
  const a = Math.abs(v);
  return v.toFixed(a < 10 ? 3 : a < 100 ? 2 : 1);
}

function pct(v: number): string {
  return `${Number.isInteger(v) ? v : v.toFixed(1)}%`;
}

function failures(f: Partial<Record<FailureReason, number>> | undefined): string {
  if (!f) return '';
  return Object.entries(f)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
}

/** Left-aligns text columns and right-aligns the ones flagged numeric. */
function table(header: string[], rows: string[][], numeric: boolean[], indent = '  '): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[]) =>
    indent +
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}

function udpExtras(p: PathResult): string {
  const parts: string[] = [];
  for (const k of ['late', 'duplicate', 'stray', 'invalid'] as const) if (p[k]) parts.push(`${k} ${p[k]}`);
  return parts.join(', ');
}

function pathSection(paths: PathResult[]): string[] {
  const out: string[] = [];
  const groups = new Map<string, PathResult[]>();
  for (const p of paths) {
    const key = `${p.protocol} ${p.metric}${p.size !== undefined ? ` ${p.size}` : ''}`;
    const g = groups.get(key);
    if (g) g.push(p);
    else groups.set(key, [p]);
  }
  for (const [key, group] of groups) {
    // goodput is a rate: its columns hold Mbit/s, not ms.
    out.push(`${key} (scope ${group[0]!.scope})${RATE_METRICS.includes(group[0]!.metric) ? ' in Mbit/s, not ms' : ''}`);
    const rows = group.map((p) => {
      const notes = [failures(p.failures), udpExtras(p)].filter((s) => s !== '').join('; ');
      return [
        p.endpoint,
        p.address,
        p.site ?? '-',
        ms(p.p50_ms),
        ms(p.p90_ms),
        ms(p.min_ms),
        ms(p.max_ms),
        ms(p.jitter_ms),
        pct(p.loss_pct),
        `${p.received}/${p.sent}`,
        String(p.flagged),
        notes,
      ];
    });
    out.push(
      ...table(
        [
          'endpoint',
          'address',
          'site',
          'p50 ms',
          'p90 ms',
          'min ms',
          'max ms',
          'jitter',
          'loss',
          'recv/sent',
          'flagged',
          'failures',
        ],
        rows,
        [false, false, false, true, true, true, true, true, true, true, true, false],
      ),
    );
    out.push('');
  }
  return out;
}

function ci(row: BenefitRow): string {
  return row.ci_low_ms === undefined || row.ci_high_ms === undefined
    ? 'n/a (< 6 pairs)'
    : `[${ms(row.ci_low_ms)}, ${ms(row.ci_high_ms)}]`;
}

function benefitSection(benefit: BenefitRow[]): string[] {
  if (benefit.length === 0)
    return ['Benefit: none computed (the anycast path or every baseline returned no unflagged sample).', ''];
  const rows = [
    ...benefit.filter((b) => b.scope === 'end_to_end'),
    ...benefit.filter((b) => b.scope !== 'end_to_end'),
  ].map((b) => [
    `${b.protocol} ${b.metric}${b.size !== undefined ? ` ${b.size}` : ''}`,
    b.scope,
    b.baseline,
    ms(b.anycast_p50_ms),
    ms(b.baseline_p50_ms),
    ms(b.saved_ms),
    ci(b),
    pct(b.saved_pct),
    pct(Math.round(b.win_rate * 1000) / 10),
    String(b.pairs),
  ]);
  return [
    'Benefit (baseline − anycast, Hodges–Lehmann on paired samples; positive = anycast faster)',
    ...table(
      [
        'metric',
        'scope',
        'baseline',
        'anycast p50',
        'baseline p50',
        'saved ms',
        '95% CI',
        'saved',
        'win rate',
        'pairs',
      ],
      rows,
      [false, false, false, true, true, true, false, true, true, true],
    ),
    '',
  ];
}

/** One line per end-to-end benefit: the numbers a reader should quote. Edge-scoped rows never lead. */
function headline(benefit: BenefitRow[]): string[] {
  const e2e = benefit.filter((b) => b.scope === 'end_to_end');
  if (e2e.length === 0) {
    return [
      'Headline: no end-to-end benefit this round (edge-scoped metrics such as a terminated TCP connect are not comparable).',
    ];
  }
  return [
    'Headline (end to end):',
    ...e2e.map((b) => {
      const detail = `95% CI ${ci(b)}, ${pct(b.saved_pct)}, anycast faster in ${pct(Math.round(b.win_rate * 1000) / 10)} of ${b.pairs} pairs`;
      // A CI that spans 0 does not tell faster from slower: say so, as the page and the demo do.
      if (b.ci_low_ms !== undefined && b.ci_high_ms !== undefined && b.ci_low_ms <= 0 && b.ci_high_ms >= 0) {
        return `  ${b.protocol} ${b.metric}: no clear difference between anycast and ${b.baseline} (saved ${b.saved_ms > 0 ? '+' : ''}${ms(b.saved_ms)} ms, ${detail})`;
      }
      const verb = b.saved_ms >= 0 ? 'faster' : 'slower';
      return `  ${b.protocol} ${b.metric}${b.size !== undefined ? ` ${b.size}` : ''}: anycast ${ms(Math.abs(b.saved_ms))} ms ${verb} than ${b.baseline} (${detail})`;
    }),
  ];
}

/** The round as text for a terminal. */
export function formatRound(round: RoundResult, header?: string): string {
  const lines: string[] = [];
  lines.push(
    header ??
      `anylat compare · service ${round.service} · agent ${round.agent.id} (${round.agent.region}) · ${round.started_at} · ${(round.duration_ms / 1000).toFixed(1)} s`,
  );
  lines.push('');
  lines.push(...pathSection(round.paths));
  lines.push(...benefitSection(round.benefit));
  lines.push(...headline(round.benefit));
  return `${lines.join('\n')}\n`;
}
