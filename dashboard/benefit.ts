// "Accelerator benefit": the overview. Is the anycast front door faster than going straight to
// the regional unicast endpoints, by how much, from where, and is it still true right now?
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as geomap from '@grafana/grafana-foundation-sdk/geomap';
import {
  DASHBOARD_TAG,
  UIDS,
  UNITS,
  baseDashboard,
  benefitThresholds,
  fixedColor,
  tagVariable,
  thresholdColor,
  zeroIsGood,
} from './common.ts';
import { from, target } from './influxql.ts';
import { column, geomapPanel, organize, stateTimeline, statPanel, tablePanel, timeSeries } from './panels.ts';

/** Panel ids, stable: alert rules link to them. */
export const BENEFIT_PANELS = {
  headline: 1,
  relative: 2,
  winRate: 3,
  comparisons: 4,
  map: 5,
  perRegion: 6,
  p50Band: 7,
  benefitOverTime: 8,
  loss: 9,
  sites: 10,
  events: 11,
  rowOverview: 100,
  rowTime: 101,
  rowSites: 102,
} as const;

/** The filters every benefit panel applies: headline (end-to-end) rows of the selected comparison. */
function benefitQuery() {
  return from('benefit').where((w) => [
    w.is('scope', 'end_to_end'),
    w.v('service', 'service'),
    w.v('protocol', 'protocol'),
    w.v('metric', 'metric'),
    w.v('agent_region', 'region'),
  ]);
}

const VARIABLES = [
  tagVariable({
    name: 'service',
    label: 'Service',
    description: 'The service whose anycast address is compared with its regional unicast endpoints.',
    measurement: 'benefit',
    tag: 'service',
  }),
  tagVariable({
    name: 'protocol',
    label: 'Protocol',
    description:
      'How the comparison was measured. Only protocols with an end-to-end metric are listed: UDP (STAMP round trip) is the fairest, since the accelerator passes UDP through to the origin.',
    measurement: 'benefit',
    tag: 'protocol',
    where: (w) => [w.is('scope', 'end_to_end'), w.v('service', 'service')],
    current: 'udp',
  }),
  tagVariable({
    name: 'metric',
    label: 'Metric',
    description:
      'What was timed. Only end-to-end metrics are listed: a TCP handshake the accelerator answers at its edge would overstate the benefit.',
    measurement: 'benefit',
    tag: 'metric',
    where: (w) => [w.is('scope', 'end_to_end'), w.v('service', 'service'), w.v('protocol', 'protocol')],
  }),
  tagVariable({
    name: 'region',
    label: 'Agent region',
    description: 'Where the agents run (their configured region), i.e. where your users are.',
    measurement: 'benefit',
    tag: 'agent_region',
    where: (w) => [w.v('service', 'service')],
    multi: true,
  }),
];

const headline = statPanel({
  id: BENEFIT_PANELS.headline,
  title: 'Time saved by anycast (median)',
  description:
    'Median over every round and agent in the time range of saved_ms = baseline p50 − anycast p50 for the selected protocol and metric. Positive (green): the anycast address is faster than the nearest regional unicast endpoint; negative (red): it is slower.',
  unit: UNITS.ms,
  w: 6,
  h: 4,
})
  .decimals(1)
  .thresholds(benefitThresholds())
  .colorScheme(thresholdColor())
  .withTarget(target(benefitQuery().select((f) => [f.fn('median', 'saved_ms').as('saved_ms')])));

const relative = statPanel({
  id: BENEFIT_PANELS.relative,
  title: 'Time saved, relative (median)',
  description: 'Median of saved_pct: the saving as a share of the baseline p50. 40% means anycast takes 60% of the unicast time.',
  unit: UNITS.percent,
  w: 6,
  h: 4,
})
  .decimals(1)
  .thresholds(benefitThresholds())
  .colorScheme(thresholdColor())
  .withTarget(target(benefitQuery().select((f) => [f.fn('median', 'saved_pct').as('saved_pct')])));

const winRate = statPanel({
  id: BENEFIT_PANELS.winRate,
  title: 'Win rate',
  description:
    'Mean of the per-round win rate: the share of paired samples (anycast and baseline taken back to back) in which anycast was faster. Above 50% anycast usually wins; a high saving with a win rate near 50% means a few large wins, not a consistent gain.',
  unit: UNITS.ratio,
  w: 6,
  h: 4,
})
  .decimals(0)
  .min(0)
  .max(1)
  .thresholds(
    new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps([
      { value: null, color: 'red' },
      { value: 0.5, color: 'green' },
    ]),
  )
  .colorScheme(thresholdColor())
  .withTarget(target(benefitQuery().select((f) => [f.mean('win_rate').as('win_rate')])));

const comparisons = statPanel({
  id: BENEFIT_PANELS.comparisons,
  title: 'Rounds compared',
  description:
    'How many round results (one per agent and round) the numbers above summarise. A handful of rounds gives a noisy median; check the time range if this is low.',
  unit: UNITS.count,
  w: 6,
  h: 4,
})
  .colorScheme(fixedColor('text'))
  .withTarget(target(benefitQuery().select((f) => [f.count('saved_ms').as('rounds')])));

const map = geomapPanel({
  id: BENEFIT_PANELS.map,
  title: 'Agents, coloured by end-to-end benefit',
  description:
    'Each dot is an agent at the latitude/longitude from its heartbeat (set lat/lon in the agent config, or it is not drawn). Colour: mean saved_ms over the time range for the selected protocol and metric — green where anycast is faster than the nearest regional endpoint, red where it is slower. Hover for the numbers.',
  unit: UNITS.ms,
  w: 12,
  h: 12,
})
  .decimals(1)
  .thresholds(benefitThresholds())
  .colorScheme(thresholdColor())
  .overrideByName('lat', column(UNITS.degrees, 'latitude'))
  .overrideByName('lon', column(UNITS.degrees, 'longitude'))
  .view(new geomap.MapViewConfigBuilder().id('zero').lat(20).lon(0).zoom(1))
  .controls(new geomap.ControlsOptionsBuilder().showZoom(true).mouseWheelZoom(false).showAttribution(true))
  .tooltip(new geomap.TooltipOptionsBuilder().mode(geomap.TooltipMode.Details))
  .basemap(new common.MapLayerOptionsBuilder().type('default').name('Basemap'))
  .layers([
    new common.MapLayerOptionsBuilder()
      .type('markers')
      .name('Agents')
      .tooltip(true)
      .location(new common.FrameGeometrySourceBuilder().mode(common.FrameGeometrySourceMode.Coords).latitude('lat').longitude('lon'))
      .config({
        showLegend: true,
        style: {
          color: { field: 'saved_ms', fixed: 'dark-green' },
          opacity: 0.8,
          size: { fixed: 10, min: 4, max: 15 },
          symbol: { fixed: 'img/icons/marker/circle.svg', mode: 'fixed' },
          text: { field: 'agent', fixed: '', mode: 'field' },
          textConfig: { fontSize: 11, offsetX: 12, offsetY: 0, textAlign: 'left', textBaseline: 'middle' },
        },
      }),
  ])
  .withTarget(
    target(
      from('agent')
        .select((f) => [f.last('lat').as('lat'), f.last('lon').as('lon')])
        .where((w) => [w.v('agent_region', 'region')])
        .groupBy('agent', 'agent_region'),
      'A',
    ).table(),
  )
  .withTarget(target(benefitQuery().select((f) => [f.mean('saved_ms').as('saved_ms')]).groupBy('agent'), 'B').table())
  // Location comes from the heartbeat, benefit from the rounds: join them on the agent id.
  .withTransformation({ id: 'joinByField', options: { byField: 'agent', mode: 'inner' } });

const perRegion = tablePanel({
  id: BENEFIT_PANELS.perRegion,
  title: 'Benefit per agent region',
  description:
    'One row per agent region for the selected comparison, averaged over every round in the time range. saved = baseline p50 − anycast p50 (positive: anycast faster). CI low/high: the mean of each round’s 95% confidence interval for the saving (Hodges–Lehmann, distribution-free) — a typical round’s uncertainty, not a CI of the average. Win rate: share of paired samples anycast won. Pairs: samples compared; rounds: round results averaged.',
  unit: UNITS.ms,
  w: 12,
  h: 12,
})
  .decimals(1)
  .withTarget(
    target(
      benefitQuery()
        .select((f) => [
          f.mean('anycast_p50_ms').as('anycast_p50_ms'),
          f.mean('baseline_p50_ms').as('baseline_p50_ms'),
          f.mean('saved_ms').as('saved_ms'),
          f.mean('saved_pct').as('saved_pct'),
          f.mean('ci_low_ms').as('ci_low_ms'),
          f.mean('ci_high_ms').as('ci_high_ms'),
          f.mean('win_rate').as('win_rate'),
          f.sum('pairs').as('pairs'),
          f.count('saved_ms').as('rounds'),
        ])
        .groupBy('agent_region'),
    ).table(),
  )
  .withTransformation(organize({ exclude: ['Time'] }))
  .overrideByName('agent_region', column(UNITS.text, 'Agent region'))
  .overrideByName('anycast_p50_ms', column(UNITS.ms, 'Anycast p50'))
  .overrideByName('baseline_p50_ms', column(UNITS.ms, 'Baseline p50'))
  .overrideByName('saved_ms', [
    ...column(UNITS.ms, 'Saved'),
    { id: 'custom.cellOptions', value: { type: 'color-text' } },
    { id: 'thresholds', value: benefitThresholds().build() },
    { id: 'color', value: { mode: 'thresholds' } },
  ])
  .overrideByName('saved_pct', column(UNITS.percent, 'Saved %'))
  .overrideByName('ci_low_ms', column(UNITS.ms, 'CI low'))
  .overrideByName('ci_high_ms', column(UNITS.ms, 'CI high'))
  .overrideByName('win_rate', [...column(UNITS.ratio, 'Win rate'), { id: 'decimals', value: 0 }])
  .overrideByName('pairs', [...column(UNITS.count, 'Pairs'), { id: 'decimals', value: 0 }])
  .overrideByName('rounds', [...column(UNITS.count, 'Rounds'), { id: 'decimals', value: 0 }]);

/**
 * Anycast in blue, the unicast baseline in orange, each with a shaded band from the lowest to the
 * highest per-round p50 in the interval. Not percentile(5)/(95): InfluxQL's nearest-rank
 * percentile returns null for p5 below 10 points per bucket, which a region with one or two agents
 * never reaches, so the band would vanish exactly where it is needed.
 */
function band(name: 'anycast' | 'baseline', color: string): Array<{ matcher: dashboard.MatcherConfig; properties: dashboard.DynamicConfigValue[] }> {
  const hidden = { id: 'custom.hideFrom', value: { legend: true, tooltip: false, viz: false } };
  return [
    { matcher: { id: 'byName', options: `${name} p50` }, properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: color } }, { id: 'custom.lineWidth', value: 2 }] },
    {
      matcher: { id: 'byName', options: `${name} max` },
      properties: [
        { id: 'color', value: { mode: 'fixed', fixedColor: color } },
        { id: 'custom.lineWidth', value: 0 },
        { id: 'custom.fillOpacity', value: 15 },
        { id: 'custom.fillBelowTo', value: `${name} min` },
        hidden,
      ],
    },
    { matcher: { id: 'byName', options: `${name} min` }, properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: color } }, { id: 'custom.lineWidth', value: 0 }, hidden] },
  ];
}

const p50Band = timeSeries({
  id: BENEFIT_PANELS.p50Band,
  title: 'Anycast vs baseline p50 — $region',
  description:
    'One panel per agent region. Lines: the mean p50 of anycast (blue) and of the baseline unicast endpoint (orange) across the region’s agents and rounds in each interval. Shaded bands: from the lowest to the highest of those per-round p50s, i.e. how much rounds and agents disagree. The gap between the lines is the benefit; overlapping bands mean the difference is within normal variation.',
  unit: UNITS.ms,
  w: 12,
  h: 9,
})
  .repeat('region')
  .repeatDirection('h')
  .maxPerRow(2)
  .overrides([...band('anycast', 'blue'), ...band('baseline', 'orange')])
  .withTarget(
    target(
      from('benefit')
        .select((f) => [
          f.mean('anycast_p50_ms').as('anycast p50'),
          f.min('anycast_p50_ms').as('anycast min'),
          f.max('anycast_p50_ms').as('anycast max'),
          f.mean('baseline_p50_ms').as('baseline p50'),
          f.min('baseline_p50_ms').as('baseline min'),
          f.max('baseline_p50_ms').as('baseline max'),
        ])
        .where((w) => [
          w.is('scope', 'end_to_end'),
          w.v('service', 'service'),
          w.v('protocol', 'protocol'),
          w.v('metric', 'metric'),
          w.v('agent_region', 'region'),
        ])
        .groupByTime('$__interval')
        .fill('none'),
    ).alias('$col'),
  );

const benefitOverTime = timeSeries({
  id: BENEFIT_PANELS.benefitOverTime,
  title: 'Time saved per region over time',
  description:
    'Mean saved_ms per agent region in each interval (baseline p50 − anycast p50). Above the dashed zero line anycast is faster; below it, slower — the "anycast slower than baseline" alert fires when a region stays below zero for 10 minutes.',
  unit: UNITS.ms,
  w: 12,
  h: 8,
})
  .thresholds(benefitThresholds())
  .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed))
  .withTarget(
    target(benefitQuery().select((f) => [f.mean('saved_ms')]).groupByTime('$__interval').groupBy('agent_region').fill('none')).alias('$tag_agent_region'),
  );

const loss = timeSeries({
  id: BENEFIT_PANELS.loss,
  title: 'Loss per region and endpoint',
  description:
    'Share of samples that got no answer, pooled over the agents of a region: 100 × (1 − Σreceived / Σsent) per endpoint (anycast or a regional unicast endpoint) for the selected protocol. Timeouts, refused connections and errors all count as lost. The loss alert fires above 5% on any single path.',
  unit: UNITS.percent,
  w: 12,
  h: 8,
})
  .min(0)
  .thresholds(zeroIsGood(5))
  .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed))
  .withTarget(
    target(
      from('latency')
        .select((f) => [f.expr`100 * (1 - ${f.sum('received')} / ${f.sum('sent')})`.as('loss_pct')])
        .where((w) => [w.v('service', 'service'), w.v('protocol', 'protocol'), w.v('agent_region', 'region')])
        .groupByTime('$__interval')
        .groupBy('agent_region', 'endpoint')
        .fill('none'),
    ).alias('$tag_agent_region → $tag_endpoint'),
  );

const sites = stateTimeline({
  id: BENEFIT_PANELS.sites,
  title: 'Anycast site per agent',
  description:
    'Which accelerator site (edge location) answered each agent’s anycast probes, as reported by the reflector or the configured HTTP header. A new segment with another site name is a routing change: users near that agent now enter the accelerator elsewhere, which usually moves the benefit too. Empty: the far end does not report a site.',
  unit: UNITS.text,
  w: 24,
  h: 8,
})
  .colorScheme(new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.PaletteClassicByName))
  .withTarget(
    target(
      from('latency')
        .select((f) => [f.last('site')])
        .where((w) => [w.is('kind', 'anycast'), w.v('service', 'service'), w.v('protocol', 'protocol'), w.v('agent_region', 'region')])
        .groupByTime('$__interval')
        .groupBy('agent')
        .fill('none'),
    ).alias('$tag_agent'),
  );

const events = tablePanel({
  id: BENEFIT_PANELS.events,
  title: 'Recent events',
  description:
    'The newest 100 events the agents reported for this service: site_change (the anycast site that answers changed, from → to), path_down and path_up (a path stopped or resumed answering). Newest first.',
  unit: UNITS.text,
  w: 24,
  h: 8,
})
  .withTarget(
    target(
      from('event')
        .select((f) => [f.col('agent'), f.col('agent_region'), f.col('type'), f.col('message'), f.col('from'), f.col('to')])
        .where((w) => [w.v('service', 'service'), w.v('agent_region', 'region')])
        .newestFirst()
        .limit(100),
    ).table(),
  )
  .overrideByName('Time', column(UNITS.time))
  .overrideByName('agent', column(UNITS.text, 'Agent'))
  .overrideByName('agent_region', column(UNITS.text, 'Region'))
  .overrideByName('type', column(UNITS.text, 'Type'))
  .overrideByName('message', column(UNITS.text, 'Message'))
  .overrideByName('from', column(UNITS.text, 'From'))
  .overrideByName('to', column(UNITS.text, 'To'));

/** The "Accelerator benefit" dashboard. */
export function benefitDashboard(): dashboard.DashboardBuilder {
  return baseDashboard(
    'anylat / Accelerator benefit',
    UIDS.benefit,
    'How much faster the anycast address (AWS Global Accelerator) is than the regional unicast endpoints, per agent region, end to end only.',
  )
    .tags([DASHBOARD_TAG, 'overview'])
    .variables(VARIABLES)
    .withRow(new dashboard.RowBuilder('Is anycast faster?').id(BENEFIT_PANELS.rowOverview))
    .withPanel(headline)
    .withPanel(relative)
    .withPanel(winRate)
    .withPanel(comparisons)
    .withPanel(map)
    .withPanel(perRegion)
    .withRow(new dashboard.RowBuilder('Over time').id(BENEFIT_PANELS.rowTime))
    .withPanel(p50Band)
    .withPanel(benefitOverTime)
    .withPanel(loss)
    .withRow(new dashboard.RowBuilder('Anycast sites and events').id(BENEFIT_PANELS.rowSites))
    .withPanel(sites)
    .withPanel(events);
}
