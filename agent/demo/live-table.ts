// The demo's terminal view: the benefit per region read back from the shared store, with the same
// queries (and so the same numbers) as the web page, plus the newest events.
import type { Metric, Protocol } from '../core/model.ts';
import type { EventRow } from '../store/index.ts';
import { DEFAULT_EVENT_LIMIT } from '../web/params.ts';
import { DashboardQueries, type RegionBenefit, type StoreReader } from '../web/queries.ts';
import { msCell } from '../util/duration.ts';

/** What one refresh of the table shows. */
export interface DemoSnapshot {
  at: number;
  service: string;
  metric: string;
  /** window of the `median` column, e.g. `5m` */
  window: string;
  regions: Array<{
    region: string;
    agent: string;
    /** newest round of this agent, null before its first */
    latest: RegionBenefit['latest'];
    /** median of the rounds' saved ms over the window */
    median_saved_ms: number | null;
    /** the anycast site that answered in the newest round */
    site: string | null;
    rounds: number;
    last_round_t: number | null;
  }>;
  /** newest first */
  events: EventRow[];
}

export interface SnapshotOptions {
  service: string;
  /** the headline metric; default UDP STAMP round trip (end to end through the accelerator) */
  metric?: { protocol: Protocol; metric: Metric };
  /** window of the median column in ms and how to call it */
  windowMs?: number;
  window?: string;
  /** events since (epoch ms), e.g. the demo's start */
  eventsSince: number;
  /** every region that should have a row, also before its first round */
  regions: ReadonlyArray<{ region: string; agent: string }>;
  eventLimit?: number;
}

/** Reads one snapshot from the store (a read-only or the demo's own handle). */
export function demoSnapshot(store: StoreReader, opts: SnapshotOptions, now: number = Date.now()): DemoSnapshot {
  const metric = opts.metric ?? { protocol: 'udp', metric: 'rtt' };
  const windowMs = opts.windowMs ?? 5 * 60_000;
  const window = opts.window ?? '5m';
  const queries = new DashboardQueries(store);
  const services = store.services();
  const known = services.some((s) => s.service === opts.service);
  const benefit = known
    ? queries.benefit(
        { service: opts.service, sinceMs: windowMs, since: window, metric, limit: DEFAULT_EVENT_LIMIT },
        now,
      )
    : undefined;
  const byAgent = new Map((benefit?.regions ?? []).map((r) => [r.agent, r]));
  const regions = opts.regions.map(({ region, agent }) => {
    const r = byAgent.get(agent);
    return {
      region,
      agent,
      latest: r?.latest ?? null,
      median_saved_ms: r?.headline?.saved_ms ?? null,
      site: r?.site ?? null,
      rounds: services.filter((s) => s.agent === agent && s.service === opts.service).reduce((n, s) => n + s.rounds, 0),
      last_round_t: r?.last_round_t ?? null,
    };
  });
  const events = known
    ? store.events({ since: opts.eventsSince, service: opts.service, limit: opts.eventLimit ?? 6 })
    : [];
  return { at: now, service: opts.service, metric: `${metric.protocol}/${metric.metric}`, window, regions, events };
}

function fmtCi(lo: number | null, hi: number | null): string {
  if (lo === null || hi === null) return '-';
  const f = (v: number) => (v > 0 ? '+' : '') + v.toFixed(1);
  return `[${f(lo)}, ${f(hi)}]`;
}

function verdict(lo: number | null, hi: number | null): string {
  if (lo === null || hi === null) return '-';
  if (lo > 0) return 'anycast faster';
  if (hi < 0) return 'anycast slower';
  return 'no clear difference';
}

/** Event messages list every path; the screen shows their start (the page has them whole). */
const MESSAGE_WIDTH = 90;

function clip(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

function clock(t: number): string {
  return new Date(t).toISOString().slice(11, 19);
}

function pad(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

/**
 * The table as lines: per region the newest round (anycast and baseline p50, saved with its 95%
 * CI, win rate, verdict) and the median saved over the window; then the newest events.
 * `staleAfterMs`: a region whose newest round is older than this is marked.
 */
export function formatSnapshot(s: DemoSnapshot, staleAfterMs: number): string[] {
  const header = [
    'region',
    'site',
    'anycast',
    'baseline',
    'saved',
    '95% CI',
    'win',
    'verdict',
    `${s.window} median`,
    'rounds',
  ];
  const rows = s.regions.map((r) => {
    const l = r.latest;
    if (!l) return [r.region, '-', '-', '-', 'waiting for its first round', '', '', '', '', String(r.rounds)];
    const stale =
      r.last_round_t !== null && s.at - r.last_round_t > staleAfterMs
        ? ` (no round for ${Math.round((s.at - r.last_round_t) / 1000)} s)`
        : '';
    return [
      r.region,
      r.site ?? '-',
      msCell(l.anycast_p50_ms),
      `${msCell(l.baseline_p50_ms)} ${l.baseline}`,
      msCell(l.saved_ms, true),
      fmtCi(l.ci_low_ms, l.ci_high_ms),
      l.win_rate === null ? '-' : `${Math.round(l.win_rate * 100)}%`,
      verdict(l.ci_low_ms, l.ci_high_ms),
      msCell(r.median_saved_ms, true),
      `${r.rounds}${stale}`,
    ];
  });
  const lines = [
    `${clock(s.at)}  benefit of anycast over the nearest unicast origin, ${s.metric} p50 (end to end), newest round of each region:`,
    ...pad([header, ...rows]).map((l) => `  ${l}`),
  ];
  if (s.events.length > 0) {
    lines.push('events (newest first):');
    for (const e of s.events)
      lines.push(
        `  ${clock(e.t)}  ${e.agent_region.padEnd(10)} ${e.type.replace('_', ' ').padEnd(12)} ${clip(e.message, MESSAGE_WIDTH)}`,
      );
  }
  return lines;
}
