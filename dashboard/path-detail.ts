// "Path detail": every metric one agent measured for one service, endpoint by endpoint, to see
// where time goes (DNS, TCP, TLS, server) and whether a number can be trusted (loss, jitter,
// samples flagged for event-loop lag, stray UDP packets).
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import {
  DASHBOARD_TAG,
  LOSS_METRICS,
  PRIMARY_METRICS,
  UIDS,
  UNITS,
  baseDashboard,
  tagVariable,
  zeroIsGood,
} from './common.ts';
import { from, target, type Cond, type Conds } from './influxql.ts';
import { column, organize, perIntervalSeries, tablePanel, timeSeries } from './panels.ts';

/** Panel ids, stable: alert rules link to them. */
export const PATH_PANELS = {
  edgeVsEndToEnd: 1,
  httpPhases: 2,
  httpRequest: 3,
  tls: 4,
  icmp: 5,
  jitter: 6,
  loss: 7,
  flagged: 8,
  udpAccounting: 9,
  latest: 10,
  distribution: 11,
  traces: 12,
  rowTiming: 100,
  rowQuality: 101,
  rowContext: 102,
} as const;

/** HTTP phases drawn as a stack: each is assumed to be its own slice of the request. */
export const HTTP_PHASES = ['dns', 'connect', 'tls', 'ttfb'] as const;

const VARIABLES = [
  tagVariable({
    name: 'service',
    label: 'Service',
    description: 'The service whose paths are shown.',
    measurement: 'latency',
    tag: 'service',
  }),
  tagVariable({
    name: 'region',
    label: 'Agent region',
    description:
      'Narrows the agent list to one or more regions; links from the overview set it, so they land on an agent of the region they came from.',
    measurement: 'latency',
    tag: 'agent_region',
    where: (w) => [w.v('service', 'service')],
    multi: true,
  }),
  tagVariable({
    name: 'agent',
    label: 'Agent',
    description: 'The agent (its configured id) whose measurements are shown.',
    measurement: 'latency',
    tag: 'agent',
    where: (w) => [w.v('service', 'service'), w.v('agent_region', 'region')],
  }),
  tagVariable({
    name: 'endpoint',
    label: 'Endpoint',
    description:
      '`anycast` is the accelerator address; the others are the regional unicast endpoints it is compared with.',
    measurement: 'latency',
    tag: 'endpoint',
    where: (w) => [w.v('service', 'service'), w.v('agent', 'agent')],
    multi: true,
  }),
];

/** The latency rows of the selected service, agent and endpoints. */
function paths() {
  return from('latency').where((w) => [w.v('service', 'service'), w.v('agent', 'agent'), w.v('endpoint', 'endpoint')]);
}

/** The mean per interval of one per-round statistic of the selected paths, narrowed by `where`. */
function meanOf(field: 'p50_ms' | 'jitter_ms', where: (w: Conds<'latency'>) => Cond[]) {
  return paths()
    .select((f) => [f.mean(field)])
    .where(where);
}

const edgeVsEndToEnd = timeSeries({
  id: PATH_PANELS.edgeVsEndToEnd,
  title: 'TCP connect (edge) next to TCP echo and UDP RTT (end to end), p50',
  description:
    'Median per round. Dashed lines are scope=edge: the accelerator terminates TCP, so the anycast TCP connect only measures you → nearest edge and looks better than it is. Solid lines are end to end: the TCP echo (one request/response on the open connection) and the UDP STAMP round trip both reach the origin and are the fair comparison.',
  unit: UNITS.ms,
  w: 24,
  h: 9,
})
  .overrideByRegexp('/\\(edge\\)$/', [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }])
  .withTarget(
    target(
      paths()
        .select((f) => [f.mean('p50_ms')])
        .where((w) => [
          w.any(
            w.all(w.is('protocol', 'tcp'), w.in('metric', ['connect', 'rtt'])),
            w.all(w.is('protocol', 'udp'), w.is('metric', 'rtt')),
          ),
        ])
        .groupByTime('$__interval')
        .groupBy('endpoint', 'protocol', 'metric', 'scope')
        .fill('none'),
    ).alias('$tag_endpoint $tag_protocol $tag_metric ($tag_scope)'),
  );

const httpPhases = timeSeries({
  id: PATH_PANELS.httpPhases,
  title: 'HTTP phases (p50) — $endpoint',
  description:
    'One panel per endpoint: the median of each HTTP phase stacked bottom-up — DNS lookup, TCP connect, TLS handshake, time to first byte — so the top of the stack is roughly the time to the first response byte on a fresh connection. Compare panels to see which phase the accelerator shortens (usually connect and TLS, which it can answer closer to you).',
  unit: UNITS.ms,
  w: 12,
  h: 8,
})
  .repeat('endpoint')
  .repeatDirection('h')
  .maxPerRow(2)
  .stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal).group('phases'))
  .fillOpacity(40)
  .lineWidth(1)
  .withTarget(
    target(
      paths()
        .select((f) => [f.mean('p50_ms')])
        .where((w) => [w.is('protocol', 'http'), w.in('metric', HTTP_PHASES)])
        .groupByTime('$__interval')
        .groupBy('metric')
        .fill('none'),
    ).alias('$tag_metric'),
  );

const httpRequest = perIntervalSeries(
  {
    id: PATH_PANELS.httpRequest,
    title: 'HTTP ttfb, total and warm request (p50)',
    description:
      'ttfb: request sent → first response byte; total: the whole request on a fresh connection; warm: a second request on the already open connection — no handshakes, so it shows the pure request/response path through the accelerator to the origin.',
    unit: UNITS.ms,
  },
  meanOf('p50_ms', (w) => [w.is('protocol', 'http'), w.in('metric', ['ttfb', 'total', 'warm'])]),
  ['endpoint', 'metric'],
  '$tag_endpoint $tag_metric',
);

const tls = perIntervalSeries(
  {
    id: PATH_PANELS.tls,
    title: 'TLS handshake (p50)',
    description:
      'Time from TCP established to TLS handshake complete, no session reuse. TLS ends at the origin even through the accelerator, so this is an end-to-end comparison (about one round trip to the origin).',
    unit: UNITS.ms,
  },
  meanOf('p50_ms', (w) => [w.is('protocol', 'tls'), w.is('metric', 'handshake')]),
  ['endpoint'],
  '$tag_endpoint',
);

const icmp = perIntervalSeries(
  {
    id: PATH_PANELS.icmp,
    title: 'ICMP RTT (p50, edge only)',
    description:
      'Ping round trip (the kernel-timestamped time= that ping prints). Whoever holds the anycast address answers ICMP — the edge, never the origin — so this is never part of the benefit; it is shown to spot path changes.',
    unit: UNITS.ms,
  },
  meanOf('p50_ms', (w) => [w.is('protocol', 'icmp'), w.is('metric', 'rtt')]),
  ['endpoint'],
  '$tag_endpoint',
);

const jitter = perIntervalSeries(
  {
    id: PATH_PANELS.jitter,
    title: 'Jitter',
    description:
      'RFC 3550 interarrival jitter of the RTT series within each round (mean per interval). High jitter widens the confidence interval of the benefit and hurts real-time traffic more than a slightly higher median.',
    unit: UNITS.ms,
  },
  meanOf('jitter_ms', (w) => [w.is('metric', 'rtt')]),
  ['endpoint', 'protocol'],
  '$tag_endpoint $tag_protocol',
);

const loss = timeSeries({
  id: PATH_PANELS.loss,
  title: 'Loss per path',
  description: `100 × (1 − Σreceived / Σsent) per endpoint and protocol (and object size for transfer), each attempt counted once (read from ${LOSS_METRICS.join(', ')}: an HTTP request that fails after TLS is one failed request). Any failure counts: timeout, refused, reset, TLS or HTTP error.`,
  unit: UNITS.percent,
  w: 12,
  h: 8,
})
  .min(0)
  .thresholds(zeroIsGood(5))
  .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed))
  .withTarget(
    target(
      paths()
        .select((f) => [f.expr`100 * (1 - ${f.sum('received')} / ${f.sum('sent')})`.as('loss_pct')])
        .where((w) => [w.in('metric', LOSS_METRICS)])
        .groupByTime('$__interval')
        .groupBy('endpoint', 'protocol', 'size')
        .fill('none'),
    ).alias('$tag_endpoint $tag_protocol $tag_size'),
  );

const flagged = timeSeries({
  id: PATH_PANELS.flagged,
  title: 'Samples flagged for event-loop lag',
  description:
    'Share of answered samples taken while the agent’s own event loop was late (> 1 ms): their timing includes the agent’s delay, so they are kept out of the statistics. A few percent is normal under load; a lot means the agent host is too busy and its percentiles are thin.',
  unit: UNITS.percent,
  w: 12,
  h: 8,
})
  .min(0)
  .withTarget(
    target(
      paths()
        .select((f) => [f.expr`100 * ${f.sum('flagged')} / ${f.sum('received')}`.as('flagged_pct')])
        .groupByTime('$__interval')
        .groupBy('endpoint', 'protocol', 'size')
        .fill('none'),
    ).alias('$tag_endpoint $tag_protocol $tag_size'),
  );

const udpAccounting = timeSeries({
  id: PATH_PANELS.udpAccounting,
  title: 'UDP packet accounting',
  description:
    'STAMP replies that were not simply "answered in time", summed per interval: late (arrived after the sample timed out — counted as loss), duplicate, stray (a valid reply for a sequence number this session never sent) and invalid (not a valid STAMP reply, e.g. a bad HMAC). All should be 0; invalid or stray packets hint at a middlebox or someone else’s traffic.',
  unit: UNITS.count,
  w: 12,
  h: 8,
})
  .drawStyle(common.GraphDrawStyle.Bars)
  .fillOpacity(60)
  .withTarget(
    target(
      paths()
        .select((f) => [
          f.sum('late').as('late'),
          f.sum('duplicate').as('duplicate'),
          f.sum('stray').as('stray'),
          f.sum('invalid').as('invalid'),
        ])
        .where((w) => [w.is('protocol', 'udp')])
        .groupByTime('$__interval')
        .groupBy('endpoint')
        .fill('none'),
    ).alias('$tag_endpoint $col'),
  );

const latest = tablePanel({
  id: PATH_PANELS.latest,
  title: 'Latest round per path',
  description:
    'The last value in the time range of every path (endpoint × protocol × metric, and object size for transfer): percentiles, loss, jitter and the site that answered. scope=edge rows are not comparable between anycast and unicast.',
  unit: UNITS.ms,
  w: 24,
  h: 10,
})
  .decimals(2)
  .withTarget(
    target(
      paths()
        .select((f) => [
          f.last('p50_ms').as('p50_ms'),
          f.last('p90_ms').as('p90_ms'),
          f.last('p99_ms').as('p99_ms'),
          f.last('jitter_ms').as('jitter_ms'),
          f.last('loss_pct').as('loss_pct'),
          f.last('site').as('site'),
        ])
        .groupBy('endpoint', 'protocol', 'metric', 'scope', 'size'),
    ).table(),
  )
  .withTransformation(organize({ exclude: ['Time'] }))
  .overrideByName('endpoint', column(UNITS.text, 'Endpoint'))
  .overrideByName('protocol', column(UNITS.text, 'Protocol'))
  .overrideByName('metric', column(UNITS.text, 'Metric'))
  .overrideByName('scope', column(UNITS.text, 'Scope'))
  .overrideByName('size', column(UNITS.text, 'Size'))
  .overrideByName('p50_ms', column(UNITS.ms, 'p50'))
  .overrideByName('p90_ms', column(UNITS.ms, 'p90'))
  .overrideByName('p99_ms', column(UNITS.ms, 'p99'))
  .overrideByName('jitter_ms', column(UNITS.ms, 'Jitter'))
  .overrideByName('loss_pct', column(UNITS.percent, 'Loss'))
  .overrideByName('site', column(UNITS.text, 'Site'));

const distribution = timeSeries({
  id: PATH_PANELS.distribution,
  title: 'Latency distribution — $endpoint',
  description: `One panel per endpoint, each protocol on its primary end-to-end metric (${PRIMARY_METRICS.join(', ')}; transfer ttfb once per object size): the per-round p50 (line) inside a band from the round's fastest sample (min) to its p90, with p99 as a dashed line. The agent writes min, p50, p90, p99 and max per round, not p10, so the band's lower edge is the minimum. A widening band or a p99 pulling away from p50 is queueing or loss recovery on the path, which the median alone hides.`,
  unit: UNITS.ms,
  w: 12,
  h: 8,
})
  .repeat('endpoint')
  .repeatDirection('h')
  .maxPerRow(2)
  .overrideByRegexp('/ p90$/', [
    { id: 'custom.lineWidth', value: 0 },
    { id: 'custom.fillOpacity', value: 20 },
  ])
  .overrideByRegexp('/ min$/', [{ id: 'custom.lineWidth', value: 0 }])
  .overrideByRegexp('/ p99$/', [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [6, 6] } }])
  .withTarget(
    target(
      paths()
        .select((f) => [
          f.mean('min_ms').as('min'),
          f.mean('p50_ms').as('p50'),
          f.mean('p90_ms').as('p90'),
          f.mean('p99_ms').as('p99'),
        ])
        .where((w) => [w.is('scope', 'end_to_end'), w.in('metric', PRIMARY_METRICS)])
        .groupByTime('$__interval')
        // one band per transfer size: a 16 KiB and a 2 MiB download never share a line
        .groupBy('protocol', 'size')
        .fill('none'),
    ).alias('$tag_protocol $tag_size $col'),
  );

const traces = tablePanel({
  id: PATH_PANELS.traces,
  title: 'Path context: latest traces',
  description:
    'The hops the agent traced (UDP with rising TTL) to the anycast address and to the baseline when a site changed, a path went down or the benefit shifted (the trigger), newest first, one row per hop: the address that answered (empty when nobody did), its RTT and reverse name; reached marks the target itself. A hop is stamped with the time of the event that caused the trace plus (hop − 1) ms. Compare two traces of one endpoint to see where the route changed.',
  unit: UNITS.text,
  w: 24,
  h: 10,
})
  .withTarget(
    target(
      from('trace')
        .select((f) => [
          f.col('endpoint'),
          f.col('kind'),
          f.col('trigger'),
          f.col('hop'),
          f.col('address'),
          f.col('rtt_ms'),
          f.col('name'),
          f.col('reached'),
        ])
        .where((w) => [w.v('service', 'service'), w.v('agent', 'agent')])
        .newestFirst()
        .limit(200),
    ).table(),
  )
  .overrideByName('Time', column(UNITS.time, 'Event time'))
  .overrideByName('endpoint', column(UNITS.text, 'Endpoint'))
  .overrideByName('kind', column(UNITS.text, 'Kind'))
  .overrideByName('trigger', column(UNITS.text, 'Trigger'))
  .overrideByName('hop', column(UNITS.count, 'Hop'))
  .overrideByName('address', column(UNITS.text, 'Address'))
  .overrideByName('rtt_ms', column(UNITS.ms, 'RTT'))
  .overrideByName('name', column(UNITS.text, 'Name'))
  .overrideByName('reached', column(UNITS.text, 'Target'));

/** The "Path detail" dashboard. */
export function pathDetailDashboard(): dashboard.DashboardBuilder {
  return baseDashboard(
    'anylat / Path detail',
    UIDS.pathDetail,
    'Every metric one agent measured for one service, per endpoint: where the time goes and whether the numbers can be trusted.',
  )
    .tags([DASHBOARD_TAG, 'detail'])
    .variables(VARIABLES)
    .withRow(new dashboard.RowBuilder('Timing').id(PATH_PANELS.rowTiming))
    .withPanel(edgeVsEndToEnd)
    .withPanel(distribution)
    .withPanel(httpPhases)
    .withPanel(httpRequest)
    .withPanel(tls)
    .withPanel(icmp)
    .withPanel(jitter)
    .withRow(new dashboard.RowBuilder('Quality').id(PATH_PANELS.rowQuality))
    .withPanel(loss)
    .withPanel(flagged)
    .withPanel(udpAccounting)
    .withPanel(latest)
    .withRow(new dashboard.RowBuilder('Path context').id(PATH_PANELS.rowContext))
    .withPanel(traces);
}
