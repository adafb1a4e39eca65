// Panel builders with the defaults anylat uses everywhere, so each dashboard module only says
// what is particular to a panel: its query, unit and explanation.
import * as common from '@grafana/grafana-foundation-sdk/common';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as geomap from '@grafana/grafana-foundation-sdk/geomap';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { DATASOURCE, target, type SelectBuilder } from './influxql.ts';
import type { Measurement, TagOf } from './schema.ts';

interface PanelBase {
  id: number;
  title: string;
  /** what the panel shows and how to read it, for someone new to anylat */
  description: string;
  unit: string;
  w: number;
  h: number;
}

/** A time series with a bottom legend that lists mean/last/max, lines that show their points. */
export function timeSeries(p: PanelBase): timeseries.PanelBuilder {
  return new timeseries.PanelBuilder()
    .datasource({ ...DATASOURCE })
    .id(p.id)
    .title(p.title)
    .description(p.description)
    .unit(p.unit)
    .span(p.w)
    .height(p.h)
    .lineWidth(1)
    .fillOpacity(0)
    .showPoints(common.VisibilityMode.Auto)
    .spanNulls(false)
    .legend(
      new common.VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(common.LegendDisplayMode.Table)
        .placement(common.LegendPlacement.Bottom)
        .calcs(['mean', 'lastNotNull', 'max']),
    )
    .tooltip(
      new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending),
    );
}

/**
 * A time series of one InfluxQL query per `$__interval` bucket (no fill: a gap stays a gap), one
 * line per combination of the `groupBy` tags, named by `alias`; 12 × 8 unless told otherwise.
 */
export function perIntervalSeries<M extends Measurement>(
  p: Omit<PanelBase, 'w' | 'h'> & Partial<Pick<PanelBase, 'w' | 'h'>>,
  query: SelectBuilder<M>,
  groupBy: Array<TagOf<M>>,
  alias: string,
): timeseries.PanelBuilder {
  return timeSeries({ w: 12, h: 8, ...p }).withTarget(
    target(
      query
        .groupByTime('$__interval')
        .groupBy(...groupBy)
        .fill('none'),
    ).alias(alias),
  );
}

/** A single number reduced from one value per query. */
export function statPanel(p: PanelBase): stat.PanelBuilder {
  return new stat.PanelBuilder()
    .datasource({ ...DATASOURCE })
    .id(p.id)
    .title(p.title)
    .description(p.description)
    .unit(p.unit)
    .span(p.w)
    .height(p.h)
    .graphMode(common.BigValueGraphMode.None)
    .colorMode(common.BigValueColorMode.Value)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false));
}

export function tablePanel(p: PanelBase): table.PanelBuilder {
  return new table.PanelBuilder()
    .datasource({ ...DATASOURCE })
    .id(p.id)
    .title(p.title)
    .description(p.description)
    .unit(p.unit)
    .span(p.w)
    .height(p.h);
}

export function stateTimeline(p: PanelBase): statetimeline.PanelBuilder {
  return new statetimeline.PanelBuilder()
    .datasource({ ...DATASOURCE })
    .id(p.id)
    .title(p.title)
    .description(p.description)
    .unit(p.unit)
    .span(p.w)
    .height(p.h)
    .showValue(common.VisibilityMode.Auto)
    .mergeValues(true)
    .legend(
      new common.VizLegendOptionsBuilder()
        .showLegend(false)
        .displayMode(common.LegendDisplayMode.List)
        .placement(common.LegendPlacement.Bottom),
    );
}

export function geomapPanel(p: PanelBase): geomap.PanelBuilder {
  return new geomap.PanelBuilder()
    .datasource({ ...DATASOURCE })
    .id(p.id)
    .title(p.title)
    .description(p.description)
    .unit(p.unit)
    .span(p.w)
    .height(p.h);
}

/**
 * Grafana's `organize` transformation: hide and order the columns of a table. Columns are renamed
 * with `displayName` overrides instead, so overrides can keep matching the query's column names.
 */
export function organize(options: { exclude?: string[]; order?: string[] }): dashboard.DataTransformerConfig {
  return {
    id: 'organize',
    options: {
      excludeByName: Object.fromEntries((options.exclude ?? []).map((k) => [k, true])),
      renameByName: {},
      indexByName: Object.fromEntries((options.order ?? []).map((k, i) => [k, i])),
    },
  };
}

/** Per-column unit and display name for tables. */
export function column(unit: string, displayName?: string): dashboard.DynamicConfigValue[] {
  return [{ id: 'unit', value: unit }, ...(displayName ? [{ id: 'displayName', value: displayName }] : [])];
}
