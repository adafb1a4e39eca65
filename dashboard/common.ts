// Defaults every anylat dashboard shares: datasource, time settings, links between the
// dashboards, template variables from SHOW TAG VALUES, units and the benefit colour scale.
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { DATASOURCE, showTagValues, type Cond, type Conds } from './influxql.ts';
import type { Measurement, TagOf } from './schema.ts';

export { DATASOURCE };

/** Tag every generated dashboard carries; the dashboard links list dashboards by it. */
export const DASHBOARD_TAG = 'anylat';

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
}

/** A template variable filled from `SHOW TAG VALUES`. */
export function tagVariable<M extends Measurement>(v: TagVariable<M>): dashboard.QueryVariableBuilder {
  const query = showTagValues(v.measurement, v.tag, v.where);
  const builder = new dashboard.QueryVariableBuilder(v.name)
    .label(v.label)
    .description(v.description)
    .datasource(DATASOURCE)
    .query(query)
    .definition(query)
    .refresh(dashboard.VariableRefresh.OnDashboardLoad)
    .sort(dashboard.VariableSort.AlphabeticalAsc)
    .multi(v.multi ?? false)
    .includeAll(v.multi ?? false);
  if (v.multi) builder.current({ selected: true, text: ['All'], value: ['$__all'] });
  else if (v.current) builder.current({ selected: true, text: v.current, value: v.current });
  return builder;
}

/** The generated dashboards' JSON, as Grafana's file provider reads it. */
export function toJson(d: Dashboard): string {
  return `${JSON.stringify(d, null, 2)}\n`;
}
