// Defaults every anylat dashboard shares: datasource, time settings, links between the
// dashboards, template variables from SHOW TAG VALUES, units and the benefit colour scale.
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import type { Builder } from '@grafana/grafana-foundation-sdk/cog';
import { DATASOURCE, showTagValues, type Cond, type Conds } from './influxql.ts';
import type { Measurement, TagOf } from './schema.ts';

export { DATASOURCE };

/** Tag every generated dashboard carries; the dashboard links list dashboards by it. */
export const DASHBOARD_TAG = 'anylat';

/**
 * The primary end-to-end metric of each protocol (udp rtt, tcp rtt, http ttfb, tls handshake): what
 * the protocol × region matrix, the latency distribution and the "anycast slower" alert read. Never
 * dns (resolver noise) or an HTTP phase. Transfer also has a `ttfb`: every reader of this list
 * filters or groups on `size` too, so objects of different sizes never mix.
 */
export const PRIMARY_METRICS = ['rtt', 'ttfb', 'handshake'] as const;

/**
 * What the Metric variable offers in its default ("primary") mode: PRIMARY_METRICS, plus transfer
 * `download` (transfer also has a ttfb, which sorts after it: the download is the default) and dns
 * `query` (the only metric of an anycast DNS service).
 */
export const PRIMARY_METRIC_CHOICES = [...PRIMARY_METRICS, 'download', 'query'] as const;

/**
 * The end-to-end primary of a service, in order of preference: the dashboards open on the first
 * (protocol, metric) the service measures — udp rtt, else tcp rtt, else http ttfb, else tls
 * handshake; never dns while any of these exists.
 */
export const PRIMARY_ORDER = [
  ['udp', 'rtt'],
  ['tcp', 'rtt'],
  ['http', 'ttfb'],
  ['tls', 'handshake'],
] as const;

/**
 * The metric of each protocol whose sent/received count every attempt once: the one that ends the
 * attempt (an HTTP request that fails after TLS fails ttfb, total and warm, but is one request;
 * a transfer that fails fails ttfb and download, and is one download).
 */
export const LOSS_METRICS = ['rtt', 'handshake', 'total', 'download'] as const;

/** Stable uids: alert rules and links point at them, so they never change. */
export const UIDS = {
  benefit: 'anylat-benefit',
  pathDetail: 'anylat-path-detail',
  fleet: 'anylat-fleet',
} as const;

/** Grafana unit ids used on the panels. */
export const UNITS = {
  ms: 'ms',
  seconds: 's',
  /** 0–100 */
  percent: 'percent',
  /** 0–1 shown as a percentage */
  ratio: 'percentunit',
  count: 'short',
  text: 'string',
  degrees: 'none',
  /** a timestamp shown as "3 minutes ago" */
  fromNow: 'dateTimeFromNow',
  time: 'dateTimeAsIso',
} as const;

/** Benefit colours: red where anycast is slower than the baseline, green where it saves time. */
export function benefitThresholds(): dashboard.ThresholdsConfigBuilder {
  return new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps([
    { value: null, color: 'red' },
    { value: 0, color: 'green' },
  ]);
}

/** Thresholds for counts that should be zero (dead letters, loss): green at 0, red above. */
export function zeroIsGood(warnAt = 1): dashboard.ThresholdsConfigBuilder {
  return new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps([
    { value: null, color: 'green' },
    { value: warnAt, color: 'red' },
  ]);
}

export function fixedColor(color: string): dashboard.FieldColorBuilder {
  return new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.Fixed).fixedColor(color);
}

export function thresholdColor(): dashboard.FieldColorBuilder {
  return new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.Thresholds);
}

/** A dashboard with the shared settings: browser time, 6 h window, 1 min refresh, shared crosshair, links. */
export function baseDashboard(title: string, uid: string, description: string): dashboard.DashboardBuilder {
  return new dashboard.DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags([DASHBOARD_TAG])
    .editable()
    .timezone('browser')
    .time({ from: 'now-6h', to: 'now' })
    .refresh('1m')
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .link(
      new dashboard.DashboardLinkBuilder('anylat dashboards')
        .type(dashboard.DashboardLinkType.Dashboards)
        .tags([DASHBOARD_TAG])
        .asDropdown(true)
        .includeVars(true)
        .keepTime(true),
    );
}

export interface TagVariable<M extends Measurement> {
  name: string;
  label: string;
  description: string;
  measurement: M;
  tag: TagOf<M>;
  where?: (w: Conds<M>) => Cond[];
  /** several values and an "All" entry; single-value variables pick one */
  multi?: boolean;
  /** preselected value (Grafana falls back to the first value when it does not exist) */
  current?: string;
  /** a helper variable other queries read, not shown on the page */
  hidden?: boolean;
  /** option order (default asc): Grafana selects the first when nothing else is selected */
  sort?: 'asc' | 'desc' | 'none';
}

const SORTS = {
  asc: dashboard.VariableSort.AlphabeticalAsc,
  desc: dashboard.VariableSort.AlphabeticalDesc,
  none: dashboard.VariableSort.Disabled,
} as const;

/** A template variable filled from an InfluxQL query (SHOW TAG VALUES) that carries $timeFilter. */
export function queryVariable(
  v: Omit<TagVariable<Measurement>, 'measurement' | 'tag' | 'where'> & { query: string },
): dashboard.QueryVariableBuilder {
  const builder = new dashboard.QueryVariableBuilder(v.name)
    .label(v.label)
    .description(v.description)
    .datasource(DATASOURCE)
    .query(v.query)
    .definition(v.query)
    // Every variable query carries $timeFilter: re-run it when the range changes.
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(SORTS[v.sort ?? 'asc'])
    .multi(v.multi ?? false)
    .includeAll(v.multi ?? false);
  if (v.hidden) builder.hide(dashboard.VariableHide.HideVariable);
  if (v.multi) builder.current({ selected: true, text: ['All'], value: ['$__all'] });
  else if (v.current) builder.current({ selected: true, text: v.current, value: v.current });
  return builder;
}

/** A template variable filled from `SHOW TAG VALUES`. */
export function tagVariable<M extends Measurement>(v: TagVariable<M>): dashboard.QueryVariableBuilder {
  const { measurement, tag, where, ...rest } = v;
  return queryVariable({ ...rest, query: showTagValues(measurement, tag, where) });
}

/** Width of Grafana's grid. */
export const GRID_WIDTH = 24;

/**
 * Lays panels out left to right, top to bottom, starting a new line when a panel would not fit in
 * the 24-column grid (the SDK's own placement lets a wide panel overflow at x 12 + w 24). A row
 * header, and a repeated panel (Grafana spreads its copies over the line), each take a line of
 * their own.
 */
export function reflow(d: Dashboard): Dashboard {
  let x = 0;
  let y = 0;
  let lineH = 0;
  const newLine = () => {
    y += lineH;
    x = 0;
    lineH = 0;
  };
  for (const p of d.panels ?? []) {
    const pos = p.gridPos ?? { h: 8, w: 12, x: 0, y: 0 };
    const repeats = 'repeat' in p && Boolean(p.repeat);
    if (p.type === 'row' || repeats || x + pos.w > GRID_WIDTH) newLine();
    p.gridPos = { ...pos, x, y };
    x += pos.w;
    lineH = Math.max(lineH, pos.h);
    if (p.type === 'row' || repeats) newLine();
  }
  return d;
}

/** The generated dashboards' JSON, as Grafana's file provider reads it. */
export function toJson(d: Dashboard): string {
  return `${JSON.stringify(reflow(d), null, 2)}\n`;
}

/**
 * A data link (fieldConfig.defaults.links) to another anylat dashboard. `vars` are Grafana
 * expressions such as `${__data.fields.agent}`; the time range travels with the link.
 */
export function dataLink(title: string, uid: string, vars: Record<string, string>): Builder<dashboard.DashboardLink> {
  const query = [...Object.entries(vars).map(([k, v]) => `var-${k}=${v}`), '${__url_time_range}'].join('&');
  const link = { title, url: `/d/${uid}?${query}`, targetBlank: false };
  return { build: () => link as unknown as dashboard.DashboardLink };
}

/** A custom (fixed-list) variable: `options` maps the text a user sees to the value queries get. */
export function customVariable(v: {
  name: string;
  label: string;
  description: string;
  options: Record<string, string>;
  current: string;
}): dashboard.CustomVariableBuilder {
  const entries = Object.entries(v.options);
  const current = entries.find(([text]) => text === v.current);
  if (!current) throw new Error(`custom variable ${v.name}: current ${v.current} is not an option`);
  return new dashboard.CustomVariableBuilder(v.name)
    .label(v.label)
    .description(v.description)
    .values(entries.map(([text, value]) => `${text} : ${value}`).join(','))
    .options(entries.map(([text, value]) => ({ text, value, selected: text === v.current })))
    .current({ selected: true, text: current[0], value: current[1] });
}
