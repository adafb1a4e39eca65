// `anylat report`: the benefit table from the embedded store, read-only, safe while agents write.
import { parseArgs } from 'node:util';
import { configPath, loadConfig } from '../config/load.ts';
import { openStore, type ReportRow, type TimingGap } from '../store/index.ts';
import { formatDuration, msCell, parseDuration } from '../util/duration.ts';
import { UsageError } from '../util/errors.ts';
import { parseArgsOrUsage } from './args.ts';

const HELP = `usage: anylat report [--store PATH | --config FILE] [--since 1h] [--service NAME] [--agent ID] [--json]

The benefit per agent, service, protocol and metric over the rounds in the embedded store
that started within --since (default 1h): the median of the rounds' medians, the median of
their confidence bounds, the mean of their win rates. end_to_end rows are the headline; edge
rows compare against a path the accelerator answers itself and overstate the benefit.

  --store PATH     the store file (default: store.path of the config)
  --config FILE    config to read store.path from (default $ANYLAT_CONFIG or ./anylat.yaml)
  --since DUR      window ending now: 15m, 1h, 7d (default 1h)
  --service NAME   only this service
  --agent ID       only this agent (a store may hold several)
  --json           print {store, since, until, rows, timing_gaps} as JSON instead of a table

A metric measured in the window without a single pair (so no row) is listed under the table
with the reason when it is the lag flags: "all 10 samples flagged for timing".`;

function pct(v: number | undefined): string {
  return v === undefined ? '-' : `${v.toFixed(1)}%`;
}

function baselines(b: Record<string, number>): string {
  const names = Object.keys(b);
  if (names.length === 1) return names[0]!;
  return names
    .sort((x, y) => b[y]! - b[x]! || x.localeCompare(y))
    .map((n) => `${n}×${b[n]}`)
    .join(' ');
}

function table(rows: ReportRow[]): string {
  const header = [
    'SERVICE',
    'AGENT',
    'SCOPE',
    'PROBE',
    'ROUNDS',
    'ANYCAST P50',
    'BASELINE P50',
    'BASELINE',
    'SAVED',
    'CI (PER ROUND)',
    'SAVED %',
    'WIN RATE',
  ];
  const body = rows.map((r) => [
    r.service,
    `${r.agent} (${r.agent_region})`,
    r.scope,
    `${r.protocol}/${r.metric}${r.size !== undefined ? ` ${r.size}` : ''}`,
    String(r.rounds),
    msCell(r.anycast_p50_ms),
    msCell(r.baseline_p50_ms),
    baselines(r.baselines),
    msCell(r.saved_ms),
    r.ci_low_ms === undefined || r.ci_high_ms === undefined
      ? '-'
      : `[${r.ci_low_ms.toFixed(1)}, ${r.ci_high_ms.toFixed(1)}] ms`,
    pct(r.saved_pct),
    r.win_rate === undefined ? '-' : `${Math.round(r.win_rate * 100)}%`,
  ]);
  const numeric = new Set([4, 5, 6, 8, 10, 11]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [fmt(header), ...body.map(fmt)].join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgsOrUsage(
    () =>
      parseArgs({
        args: argv,
        options: {
          store: { type: 'string' },
          config: { type: 'string' },
          since: { type: 'string', default: '1h' },
          service: { type: 'string' },
          agent: { type: 'string' },
          json: { type: 'boolean', default: false },
          help: { type: 'boolean', short: 'h', default: false },
        },
        strict: true,
        allowPositionals: false,
      }),
    'report',
  );
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (values.store !== undefined && values.config !== undefined) {
    throw new UsageError('report: give --store or --config, not both');
  }
  const sinceMs = parseDuration(values.since, '--since');
  if (sinceMs <= 0) throw new UsageError(`--since: expected a window longer than 0, got "${values.since}"`);
  for (const k of ['store', 'service', 'agent'] as const) {
    if (values[k] !== undefined && values[k]!.trim() === '')
      throw new UsageError(`--${k}: expected a value, got an empty string`);
  }
  const storePath = values.store ?? loadConfig(configPath(values.config)).store.path;

  const until = Date.now();
  const since = until - sinceMs;
  const { rows, gaps } = readReport(storePath, {
    since,
    ...(values.service === undefined ? {} : { service: values.service }),
    ...(values.agent === undefined ? {} : { agent: values.agent }),
  });

  if (values.json) {
    const out = {
      store: storePath,
      since: new Date(since).toISOString(),
      until: new Date(until).toISOString(),
      rows,
      timing_gaps: gaps,
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return 0;
  }
  const filter = [values.service && `service ${values.service}`, values.agent && `agent ${values.agent}`]
    .filter(Boolean)
    .join(', ');
  printReport(storePath, `the last ${formatDuration(sinceMs)}`, filter, rows, gaps);
  return 0;
}

/** The benefit rows and the metrics without a row, read-only from the store. */
function readReport(
  storePath: string,
  query: { since: number; service?: string; agent?: string },
): { rows: ReportRow[]; gaps: TimingGap[] } {
  const store = openStore(storePath, { readonly: true });
  try {
    return {
      rows: store.benefitSummary(query),
      gaps: store.timingGaps(query).filter((g) => g.note !== undefined),
    };
  } finally {
    store.close();
  }
}

/** The report as text: the table, or why there is none, and the metrics left without a row. */
function printReport(storePath: string, window: string, filter: string, rows: ReportRow[], gaps: TimingGap[]): void {
  // Each metric that lost every pair to the lag flags, on one line: what would otherwise read as no data.
  const gapLines = gaps
    .map(
      (g) =>
        `  ${g.agent}  ${g.service}  ${g.protocol}/${g.metric}: ${g.note} (${g.rounds} round${g.rounds === 1 ? '' : 's'})`,
    )
    .join('\n');
  if (rows.length === 0) {
    if (gaps.length > 0) {
      process.stdout.write(
        `no benefit rows in ${storePath} in ${window}${filter ? ` (${filter})` : ''}: no pair of samples was left\n${gapLines}\n`,
      );
      return;
    }
    process.stdout.write(`no rounds with benefit rows in ${storePath} in ${window}${filter ? ` (${filter})` : ''}\n`);
    return;
  }
  process.stdout.write(
    `benefit over ${window}${filter ? ` (${filter})` : ''} in ${storePath}: median of round medians, positive = anycast faster\n\n`,
  );
  process.stdout.write(`${table(rows)}\n`);
  if (gaps.length > 0) process.stdout.write(`\nwithout a row (no pair of samples was left):\n${gapLines}\n`);
}
