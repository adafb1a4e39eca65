// "Accelerator benefit": the overview. Is the anycast front door faster than going straight to
// the regional unicast endpoints, by how much, from where, and is it still true right now?
//
// Every headline figure is per agent region (a repeated stat per region), or a fleet figure that
// weights regions equally and says so: a median over every round of every agent would weigh each
// region by its number of agents, and one crowded region next to the origin would outvote the rest.
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as geomap from '@grafana/grafana-foundation-sdk/geomap';
import {
  DASHBOARD_TAG,
  LOSS_METRICS,
  PRIMARY_METRICS,
  PRIMARY_METRIC_CHOICES,
  PRIMARY_ORDER,
  UIDS,
  UNITS,
  baseDashboard,
  benefitThresholds,
  customVariable,
  dataLink,
  tagVariable,
  thresholdColor,
  zeroIsGood,
} from './common.ts';
import {
  DATASOURCE,
  Sel,
  from,
  ident,
  target,
  type Cond,
  type Conds,
  type Fns,
  type SelectBuilder,
} from './influxql.ts';
import { column, geomapPanel, organize, stateTimeline, statPanel, tablePanel, timeSeries } from './panels.ts';

/** Panel ids, stable: alert rules link to them. */
export const BENEFIT_PANELS = {
  headline: 1,
  fleet: 2,
  map: 5,
  perRegion: 6,
  p50Band: 7,
  benefitOverTime: 8,
  loss: 9,
  sites: 10,
  events: 11,
  matrix: 12,
  rowOverview: 100,
  rowTime: 101,
  rowSites: 102,
} as const;

/** The last 15 minutes of the dashboard's range (`${__to}` is its end in epoch ms). */
export const NOW_WINDOW = 'time >= ${__to}ms - 15m AND time <= ${__to}ms';
/** The dashboard's range, a week earlier. */
export const WEEK_EARLIER_WINDOW = 'time >= ${__from}ms - 7d AND time <= ${__to}ms - 7d';

/** The filters every benefit panel applies: headline (end-to-end) rows of the selected comparison. */
function benefitQuery(): SelectBuilder<'benefit'> {
  return from('benefit').where((w) => [
    w.is('scope', 'end_to_end'),
    w.v('service', 'service'),
    w.v('protocol', 'protocol'),
    w.v('metric', 'metric'),
    // '' (no size) for every protocol but transfer, so sizes never mix
    w.v('size', 'size'),
    w.v('agent_region', 'region'),
  ]);
}

/**
 * 1 for a round whose 95% CI of the saving excludes 0 (either way), 0 otherwise, null without a
 * CI. InfluxQL has no conditional: ceil(x / (|x| + ε)) is 1 for x > 0 and 0 for x ≤ 0.
 */
function significant(f: Fns<'benefit'>) {
  return f.expr`ceil(${f.col('ci_low_ms')} / (abs(${f.col('ci_low_ms')}) + 0.000001)) + ceil(0 - ${f.col('ci_high_ms')} / (abs(${f.col('ci_high_ms')}) + 0.000001))`.as(
    'significant',
  );
}

/** Share (%) of the selection's rounds whose CI excludes 0, per the inner query's filters. */
function significantShare(
  inner: SelectBuilder<'benefit'>,
  ...groupBy: Array<'agent_region'>
): SelectBuilder<'benefit'> {
  const outer = from('benefit')
    .select((f) => [f.expr`100 * ${f.mean(new Sel(ident('significant')))}`.as('significant_pct')])
    .fromSubquery(inner.select((f) => [significant(f)]));
  return groupBy.length > 0 ? outer.groupBy(...groupBy) : outer;
}

/** The selected service's end-to-end benefit rows, narrowed by `more`: what every variable lists from. */
const endToEndOf = (w: Conds<'benefit'>, ...more: Cond[]) => [
  w.is('scope', 'end_to_end'),
  w.v('service', 'service'),
  ...more,
];

/** `"protocol" = 'p' AND "metric" = 'm'` for one (protocol, metric) of PRIMARY_ORDER. */
const pair = (w: Conds<'benefit'>, [protocol, metric]: readonly [string, string]) =>
  w.all(w.is('protocol', protocol), w.is('metric', metric));

/*
 * The end-to-end primary of the selected service, in two hidden steps, because a variable's
 * options come back sorted and Grafana selects the first: `fallback` is tcp (its echo rtt) or else
 * http (its ttfb), sorted descending so tcp wins; `primary` is udp (rtt) if the service measures it,
 * else the fallback, else tls (handshake) — the `tls${fallback}` regex matches tls only when the
 * fallback is empty. Both are empty for a service that measures none of them (a DNS-only one).
 */
const [UDP_RTT, TCP_RTT, HTTP_TTFB, TLS_HANDSHAKE] = PRIMARY_ORDER;

/** The Protocol list: the primary, then the others (a missing primary leaves no empty entry). */
export const PROTOCOL_LIST = '${primary},${others:csv}';

const VARIABLES = [
  tagVariable({
    name: 'service',
    label: 'Service',
    description: 'The service whose anycast address is compared with its regional unicast endpoints.',
    measurement: 'benefit',
    tag: 'service',
  }),
  tagVariable({
    name: 'fallback',
    label: 'Primary without udp',
    description: 'Helper: tcp if the service measures the TCP echo rtt, else http if it measures ttfb, else empty.',
    measurement: 'benefit',
    tag: 'protocol',
    where: (w) => endToEndOf(w, w.any(pair(w, TCP_RTT), pair(w, HTTP_TTFB))),
    hidden: true,
    sort: 'desc',
  }),
  tagVariable({
    name: 'primary',
    label: 'Primary protocol',
    description:
      'Helper: the end-to-end primary of the service — udp rtt, else tcp rtt, else http ttfb, else tls handshake (never dns).',
    measurement: 'benefit',
    tag: 'protocol',
    where: (w) =>
      endToEndOf(
        w,
        w.any(
          pair(w, UDP_RTT),
          w.vRawExact('protocol', 'fallback'),
          w.all(pair(w, TLS_HANDSHAKE), w.vRawExact('protocol', 'fallback', 'tls')),
        ),
      ),
    hidden: true,
    sort: 'desc',
  }),
  tagVariable({
    name: 'others',
    label: 'Other protocols',
    description: 'Helper: the other protocols the service has an end-to-end benefit for.',
    measurement: 'benefit',
    tag: 'protocol',
    where: (w) => endToEndOf(w, w.notVRawExact('protocol', 'primary')),
    hidden: true,
    multi: true,
  }),
  // A custom variable whose list is built from the two above: the primary first, so Grafana opens
  // on it, and every other protocol one click away. A query variable cannot do this: SHOW TAG VALUES
  // comes back sorted, and Grafana 11's InfluxDB backend reads only the first series of a
  // two-measurement answer. Custom variables interpolate their list since Grafana 11's dashboard
  // engine (Scenes), which docs/grafana.md requires.
  new dashboard.CustomVariableBuilder('protocol')
    .label('Protocol')
    .description(
      'How the comparison was measured; only protocols with an end-to-end benefit are listed. The page opens on what the service measures best: udp (the STAMP round trip, which the accelerator passes through to the origin), else tcp (the echo on an open connection), else http (time to first byte), else tls (the handshake) — never dns while any of these exists.',
    )
    .values(PROTOCOL_LIST),
  customVariable({
    name: 'metrics',
    label: 'Metrics offered',
    description:
      'primary: the end-to-end primary metric of each protocol (udp/tcp rtt, http ttfb, tls handshake, transfer download — its ttfb listed after it —, dns query), so the dashboard never opens on DNS or a TLS phase. every: all end-to-end metrics (http dns, tls, total, warm too).',
    options: { primary: PRIMARY_METRIC_CHOICES.join('|'), 'every end-to-end metric': '[a-z_]+' },
    current: 'primary',
  }),
  tagVariable({
    name: 'metric',
    label: 'Metric',
    description:
      'What was timed. Only end-to-end metrics are listed: a TCP handshake the accelerator answers at its edge would overstate the benefit.',
    measurement: 'benefit',
    tag: 'metric',
    where: (w) => endToEndOf(w, w.v('protocol', 'protocol'), w.vRaw('metric', 'metrics')),
  }),
  tagVariable({
    name: 'size',
    label: 'Transfer size',
    description:
      'transfer only: the object size downloaded. Every panel shows one size, so a 16 KiB and a 2 MiB download never mix. Empty for the other protocols, which have no size.',
    measurement: 'benefit',
    tag: 'size',
    where: (w) => endToEndOf(w, w.v('protocol', 'protocol'), w.v('metric', 'metric')),
  }),
  tagVariable({
    name: 'region',
    label: 'Agent region',
    description:
      'Where the agents run (their configured region), i.e. where your users are. Only regions with data in the time range are listed.',
    measurement: 'benefit',
    tag: 'agent_region',
    where: (w) => [w.v('service', 'service')],
    multi: true,
  }),
];

const headline = statPanel({
  id: BENEFIT_PANELS.headline,
  title: '$region: time saved by anycast (median)',
  description:
    'One panel per agent region. saved = nearest unicast p50 − anycast p50 per round (Hodges–Lehmann, positive: anycast faster), for the selected protocol and metric. "range": the median over the region’s rounds in the time range; "last 15 min": the same over the last 15 minutes of the range (is it still true?); "a week earlier": the same range shifted back 7 days; "rounds significant": the share of those rounds whose 95% confidence interval excludes 0 — below ~50% the saving is within the noise.',
  unit: UNITS.ms,
  w: 6,
  h: 5,
})
  .repeat('region')
  .repeatDirection('h')
  .maxPerRow(4)
  .decimals(1)
  .thresholds(benefitThresholds())
  .colorScheme(thresholdColor())
  .textMode(common.BigValueTextMode.ValueAndName)
  .withTarget(
    target(
      benefitQuery().select((f) => [f.fn('median', 'saved_ms').as('range')]),
      'A',
    ),
  )
  .withTarget(
    target(
      benefitQuery()
        .select((f) => [f.fn('median', 'saved_ms').as('last 15 min')])
        .timeWindow(NOW_WINDOW),
      'B',
    ),
  )
  .withTarget(
    target(
      benefitQuery()
        .select((f) => [f.fn('median', 'saved_ms').as('a week earlier')])
        .timeWindow(WEEK_EARLIER_WINDOW),
      'C',
    ),
  )
  .withTarget(target(significantShare(benefitQuery()), 'D'))
  .overrideByName('significant_pct', [
    { id: 'unit', value: UNITS.percent },
    { id: 'displayName', value: 'rounds significant' },
    { id: 'decimals', value: 0 },
    { id: 'color', value: { mode: 'fixed', fixedColor: 'text' } },
  ]);

const fleet = statPanel({
  id: BENEFIT_PANELS.fleet,
  title: 'All selected regions, each weighted equally',
  description:
    'The mean of the per-region medians above: every region counts once, however many agents it has. Not a median over all rounds, which would weigh a region by its agent count. "regions faster": how many of the selected regions have a positive median saving.',
  unit: UNITS.ms,
  w: 24,
  h: 4,
})
  .decimals(1)
  .thresholds(benefitThresholds())
  .colorScheme(thresholdColor())
  .textMode(common.BigValueTextMode.ValueAndName)
  .withTarget(
    target(
      from('benefit')
        .select((f) => [f.mean(f.col('saved_ms')).as('regions weighted equally')])
        .fromSubquery(
          benefitQuery()
            .select((f) => [f.fn('median', 'saved_ms').as('saved_ms')])
            .groupBy('agent_region'),
        ),
      'A',
    ),
  )
  .withTarget(
    target(
      from('benefit')
        .select((f) => [f.expr`${f.mean(f.col('saved_ms'))}`.as('last 15 min, regions weighted equally')])
        .fromSubquery(
          benefitQuery()
            .select((f) => [f.fn('median', 'saved_ms').as('saved_ms')])
            .timeWindow(NOW_WINDOW)
            .groupBy('agent_region'),
        )
        .timeWindow(NOW_WINDOW),
      'B',
    ),
  );

const toPathDetail = (vars: Record<string, string>) =>
  dataLink('Path detail', UIDS.pathDetail, { service: '${service}', ...vars });

const map = geomapPanel({
  id: BENEFIT_PANELS.map,
  title: 'Agents, coloured by end-to-end benefit',
  description:
    'Each dot is an agent at the latitude/longitude from its heartbeat (set lat/lon in the agent config, or it is not drawn). Colour: the median saved_ms over the time range for the selected protocol and metric — green where anycast is faster than the nearest regional endpoint, red where it is slower. Click a dot for its Path detail.',
  unit: UNITS.ms,
  w: 12,
  h: 12,
})
  .decimals(1)
  .thresholds(benefitThresholds())
  .colorScheme(thresholdColor())
  .dataLinks([toPathDetail({ agent: '${__data.fields.agent}', region: '${__data.fields.agent_region}' })])
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
      .location(
        new common.FrameGeometrySourceBuilder()
          .mode(common.FrameGeometrySourceMode.Coords)
          .latitude('lat')
          .longitude('lon'),
      )
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
  .withTarget(
    target(
      benefitQuery()
        .select((f) => [f.fn('median', 'saved_ms').as('saved_ms')])
        .groupBy('agent'),
      'B',
    ).table(),
  )
  // Location comes from the heartbeat, benefit from the rounds: join them on the agent id.
  .withTransformation({ id: 'joinByField', options: { byField: 'agent', mode: 'inner' } });

const perRegion = tablePanel({
  id: BENEFIT_PANELS.perRegion,
  title: 'Benefit per agent region',
  description:
    'One row per agent region for the selected comparison over the time range. Saved: the median of the rounds’ savings (baseline p50 − anycast p50; positive: anycast faster). CI low/high: the mean of each round’s 95% confidence interval (Hodges–Lehmann, distribution-free) — a typical round’s uncertainty. Significant: the share of rounds whose CI excludes 0. Win rate: share of paired samples anycast won. Rounds: round results in the range. Click a region for its Path detail.',
  unit: UNITS.ms,
  w: 12,
  h: 12,
})
  .decimals(1)
  .withTarget(
    target(
      benefitQuery()
        .select((f) => [
          f.fn('median', 'anycast_p50_ms').as('anycast_p50_ms'),
          f.fn('median', 'baseline_p50_ms').as('baseline_p50_ms'),
          f.fn('median', 'saved_ms').as('saved_ms'),
          f.fn('median', 'saved_pct').as('saved_pct'),
          f.mean('ci_low_ms').as('ci_low_ms'),
          f.mean('ci_high_ms').as('ci_high_ms'),
          f.mean('win_rate').as('win_rate'),
          f.count('saved_ms').as('rounds'),
        ])
        .groupBy('agent_region'),
      'A',
    ).table(),
  )
  .withTarget(target(significantShare(benefitQuery(), 'agent_region'), 'B').table())
  .withTransformation({ id: 'joinByField', options: { byField: 'agent_region', mode: 'outer' } })
  .withTransformation(organize({ exclude: ['Time', 'Time 1', 'Time 2'] }))
  .overrideByName('agent_region', [
    ...column(UNITS.text, 'Agent region'),
    { id: 'links', value: [toPathDetail({ region: '${__data.fields.agent_region}' }).build()] },
  ])
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
  .overrideByName('significant_pct', [...column(UNITS.percent, 'Significant'), { id: 'decimals', value: 0 }])
  .overrideByName('win_rate', [...column(UNITS.ratio, 'Win rate'), { id: 'decimals', value: 0 }])
  .overrideByName('rounds', [...column(UNITS.count, 'Rounds'), { id: 'decimals', value: 0 }]);

const matrix = tablePanel({
  id: BENEFIT_PANELS.matrix,
  title: 'Protocol × region: median time saved',
  description:
    'Every agent region (rows) against every protocol the service measures (columns), each on its primary end-to-end metric (udp/tcp rtt, http ttfb, tls handshake; transfer ttfb of the selected size only): the median saving over the time range. Agreement across protocols means a routing benefit; a saving on udp but not on http ttfb points at the server or TLS, not the path.',
  unit: UNITS.ms,
  w: 24,
  h: 8,
})
  .decimals(1)
  .withTarget(
    target(
      from('benefit')
        .select((f) => [f.fn('median', 'saved_ms').as('saved_ms')])
        .where((w) => [
          w.is('scope', 'end_to_end'),
          w.v('service', 'service'),
          w.in('metric', PRIMARY_METRICS),
          // transfer (its ttfb) of the selected size only; the other protocols have no size
          w.any(w.v('size', 'size'), w.is('size', '')),
          w.v('agent_region', 'region'),
        ])
        .groupBy('agent_region', 'protocol'),
    ).table(),
  )
  .withTransformation({
    id: 'groupingToMatrix',
    options: { rowField: 'agent_region', columnField: 'protocol', valueField: 'saved_ms', emptyValue: 'null' },
  })
  .overrideByRegexp('/.*/', [
    { id: 'custom.cellOptions', value: { type: 'color-text' } },
    { id: 'thresholds', value: benefitThresholds().build() },
    { id: 'color', value: { mode: 'thresholds' } },
  ]);

/**
 * Anycast in blue, the unicast baseline in orange, each with a shaded band from the lowest to the
 * highest per-round p50 in the interval. Not percentile(5)/(95): InfluxQL's nearest-rank
 * percentile returns null for p5 below 10 points per bucket, which a region with one or two agents
 * never reaches, so the band would vanish exactly where it is needed.
 */
function band(
  name: 'anycast' | 'baseline',
  color: string,
): Array<{ matcher: dashboard.MatcherConfig; properties: dashboard.DynamicConfigValue[] }> {
  const hidden = { id: 'custom.hideFrom', value: { legend: true, tooltip: false, viz: false } };
  return [
    {
      matcher: { id: 'byName', options: `${name} p50` },
      properties: [
        { id: 'color', value: { mode: 'fixed', fixedColor: color } },
        { id: 'custom.lineWidth', value: 2 },
      ],
    },
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
    {
      matcher: { id: 'byName', options: `${name} min` },
      properties: [
        { id: 'color', value: { mode: 'fixed', fixedColor: color } },
        { id: 'custom.lineWidth', value: 0 },
        hidden,
      ],
    },
  ];
}

const p50Band = timeSeries({
  id: BENEFIT_PANELS.p50Band,
  title: 'Anycast vs baseline p50 — $region',
  description:
    'One panel per agent region. Lines: the mean p50 of anycast (blue) and of the baseline unicast endpoint (orange) across the region’s agents and rounds in each interval. Shaded bands: from the lowest to the highest of those per-round p50s, i.e. how much rounds and agents disagree. The gap between the lines is the benefit; overlapping bands mean the difference is within normal variation. Markers: site changes and paths going down.',
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
      benefitQuery()
        .select((f) => [
          f.mean('anycast_p50_ms').as('anycast p50'),
          f.min('anycast_p50_ms').as('anycast min'),
          f.max('anycast_p50_ms').as('anycast max'),
          f.mean('baseline_p50_ms').as('baseline p50'),
          f.min('baseline_p50_ms').as('baseline min'),
          f.max('baseline_p50_ms').as('baseline max'),
        ])
        .groupByTime('$__interval')
        .fill('none'),
    ).alias('$col'),
  );

const benefitOverTime = timeSeries({
  id: BENEFIT_PANELS.benefitOverTime,
  title: 'Time saved per region over time',
  description:
    'The median saved_ms per agent region in each interval (baseline p50 − anycast p50). Above the dashed zero line anycast is faster; below it, slower. The "anycast slower" alert fires only when a region’s median is below −1 ms (configurable) and every round’s CI is below 0 for 10 minutes. Click a line for the region’s Path detail.',
  unit: UNITS.ms,
  w: 12,
  h: 8,
})
  .thresholds(benefitThresholds())
  .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed))
  .dataLinks([toPathDetail({ region: '${__field.labels.agent_region}' })])
  .withTarget(
    target(
      benefitQuery()
        .select((f) => [f.fn('median', 'saved_ms').as('saved_ms')])
        .groupByTime('$__interval')
        .groupBy('agent_region')
        .fill('none'),
    ).alias('$tag_agent_region'),
  );

const loss = timeSeries({
  id: BENEFIT_PANELS.loss,
  title: 'Loss per region and endpoint',
  description: `Share of attempts that got no answer, pooled over the agents of a region: 100 × (1 − Σreceived / Σsent) per endpoint for the selected protocol. Each attempt counts once: read from the metric that ends the attempt (${LOSS_METRICS.join(', ')} — an HTTP request that fails after TLS is one failure, not one per phase). Timeouts, refused connections and errors all count. The loss alert fires above 5% on any single path.`,
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
        .where((w) => [
          w.v('service', 'service'),
          w.v('protocol', 'protocol'),
          w.in('metric', LOSS_METRICS),
          w.v('size', 'size'),
          w.v('agent_region', 'region'),
        ])
        .groupByTime('$__interval')
        .groupBy('agent_region', 'endpoint')
        .fill('none'),
    ).alias('$tag_agent_region → $tag_endpoint'),
  );

const sites = stateTimeline({
  id: BENEFIT_PANELS.sites,
  title: 'Anycast site per agent and anycast address',
  description:
    'Which accelerator site (edge location) answered each agent on each anycast address (anycast, anycast-2, …), as reported by the reflector or the configured HTTP header. A new segment with another site name is a routing change: users near that agent now enter the accelerator elsewhere, which usually moves the benefit too. Empty: the far end does not report a site, or the address did not answer.',
  unit: UNITS.text,
  w: 24,
  h: 8,
})
  .colorScheme(new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.PaletteClassicByName))
  .withTarget(
    target(
      from('latency')
        .select((f) => [f.last('site')])
        .where((w) => [
          w.is('kind', 'anycast'),
          w.v('service', 'service'),
          w.v('protocol', 'protocol'),
          w.v('size', 'size'),
          w.v('agent_region', 'region'),
        ])
        .groupByTime('$__interval')
        .groupBy('agent', 'endpoint')
        .fill('none'),
    ).alias('$tag_agent $tag_endpoint'),
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
        .select((f) => [
          f.col('agent'),
          f.col('agent_region'),
          f.col('type'),
          f.col('message'),
          f.col('from'),
          f.col('to'),
        ])
        .where((w) => [w.v('service', 'service'), w.v('agent_region', 'region')])
        .newestFirst()
        .limit(100),
    ).table(),
  )
  .overrideByName('Time', column(UNITS.time))
  .overrideByName('agent', [
    ...column(UNITS.text, 'Agent'),
    {
      id: 'links',
      value: [toPathDetail({ agent: '${__data.fields.agent}', region: '${__data.fields.agent_region}' }).build()],
    },
  ])
  .overrideByName('agent_region', column(UNITS.text, 'Region'))
  .overrideByName('type', column(UNITS.text, 'Type'))
  .overrideByName('message', column(UNITS.text, 'Message'))
  .overrideByName('from', column(UNITS.text, 'From'))
  .overrideByName('to', column(UNITS.text, 'To'));

/** The annotation queries every time series of the dashboard shows: site changes and paths going down. */
export const EVENT_ANNOTATIONS = [
  { name: 'Site changes', type: 'site_change', color: 'purple' },
  { name: 'Paths down', type: 'path_down', color: 'red' },
] as const;

function eventAnnotation(name: string, type: string, color: string): dashboard.AnnotationQueryBuilder {
  return new dashboard.AnnotationQueryBuilder()
    .name(name)
    .datasource({ ...DATASOURCE })
    .enable(true)
    .iconColor(color)
    .target(
      target(
        from('event')
          .select((f) => [f.col('message').as('text'), f.col('agent'), f.col('agent_region')])
          .where((w) => [w.is('type', type), w.v('service', 'service'), w.v('agent_region', 'region')]),
        'Anno',
      ).table(),
    );
}

/** The "Accelerator benefit" dashboard. */
export function benefitDashboard(): dashboard.DashboardBuilder {
  return baseDashboard(
    'anylat / Accelerator benefit',
    UIDS.benefit,
    'How much faster the anycast address (AWS Global Accelerator) is than the regional unicast endpoints, per agent region, end to end only.',
  )
    .tags([DASHBOARD_TAG, 'overview'])
    .variables(VARIABLES)
    .annotations(EVENT_ANNOTATIONS.map((a) => eventAnnotation(a.name, a.type, a.color)))
    .withRow(new dashboard.RowBuilder('Is anycast faster? Per region').id(BENEFIT_PANELS.rowOverview))
    .withPanel(fleet)
    .withPanel(headline)
    .withPanel(perRegion)
    .withPanel(map)
    .withPanel(matrix)
    .withRow(new dashboard.RowBuilder('Over time').id(BENEFIT_PANELS.rowTime))
    .withPanel(p50Band)
    .withPanel(benefitOverTime)
    .withPanel(loss)
    .withRow(new dashboard.RowBuilder('Anycast sites and events').id(BENEFIT_PANELS.rowSites))
    .withPanel(sites)
    .withPanel(events);
}
