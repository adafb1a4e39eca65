// "Fleet": are the agents alive, current, on time, and is their data reaching InfluxDB?
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { DASHBOARD_TAG, UIDS, UNITS, baseDashboard, tagVariable, thresholdColor, zeroIsGood } from './common.ts';
import { from, target } from './influxql.ts';
import { column, organize, statPanel, tablePanel, timeSeries } from './panels.ts';
import type { AgentField } from './schema.ts';

/** Panel ids, stable: alert rules link to them. */
export const FLEET_PANELS = {
  agents: 1,
  lastHeartbeat: 2,
  heartbeats: 3,
  loopLag: 4,
  roundsLate: 5,
  outbox: 6,
  deadLetters: 7,
  dropped: 8,
  roundsFailed: 9,
  configVersions: 10,
  configPerAgent: 11,
  rowAgents: 100,
  rowPipeline: 101,
  rowConfig: 102,
} as const;

const VARIABLES = [
  tagVariable({
    name: 'region',
    label: 'Agent region',
    description: 'Where the agents run (their configured region).',
    measurement: 'agent',
    tag: 'agent_region',
    multi: true,
  }),
];

function heartbeats() {
  return from('agent').where((w) => [w.v('agent_region', 'region')]);
}

const agents = tablePanel({
  id: FLEET_PANELS.agents,
  title: 'Agents',
  description:
    'The latest heartbeat values of every agent that reported in the time range. Uptime resets when the agent restarts. Loop lag p99: how late the agent’s event loop ran (its timing noise floor). Rounds late: rounds that started after their scheduled time. Rounds skipped: rounds skipped after a stall. Rounds failed: rounds that never reached the store (abandoned at their deadline, or the store refused them). Outbox: rounds stored locally and not yet accepted by InfluxDB. Dead letters: lines InfluxDB rejected as malformed, kept on the agent and never retried. Dropped: rounds, outbox lines and dead letters the agent’s store deleted to respect its retention limits since it started.',
  unit: UNITS.count,
  w: 24,
  h: 8,
})
  .withTarget(
    target(
      heartbeats()
        .select((f) => [
          f.last('version').as('version'),
          f.last('uptime_s').as('uptime_s'),
          f.last('loop_lag_p99_ms').as('loop_lag_p99_ms'),
          f.last('rounds_late').as('rounds_late'),
          f.last('rounds_skipped').as('rounds_skipped'),
          f.last('rounds_failed').as('rounds_failed'),
          f.last('outbox_rows').as('outbox_rows'),
          f.last('dead_letters').as('dead_letters'),
          f.last('dropped_rows').as('dropped_rows'),
        ])
        .groupBy('agent', 'agent_region'),
    ).table(),
  )
  .withTransformation(organize({ exclude: ['Time'] }))
  .overrideByName('agent', column(UNITS.text, 'Agent'))
  .overrideByName('agent_region', column(UNITS.text, 'Region'))
  .overrideByName('version', column(UNITS.text, 'Version'))
  .overrideByName('uptime_s', column(UNITS.seconds, 'Uptime'))
  .overrideByName('loop_lag_p99_ms', column(UNITS.ms, 'Loop lag p99'))
  .overrideByName('rounds_late', column(UNITS.count, 'Rounds late'))
  .overrideByName('rounds_skipped', column(UNITS.count, 'Rounds skipped'))
  .overrideByName('rounds_failed', [
    ...column(UNITS.count, 'Rounds failed'),
    { id: 'custom.cellOptions', value: { type: 'color-text' } },
    { id: 'thresholds', value: zeroIsGood().build() },
    { id: 'color', value: { mode: 'thresholds' } },
  ])
  .overrideByName('outbox_rows', column(UNITS.count, 'Outbox rows'))
  .overrideByName('dead_letters', [
    ...column(UNITS.count, 'Dead letters'),
    { id: 'custom.cellOptions', value: { type: 'color-text' } },
    { id: 'thresholds', value: zeroIsGood().build() },
    { id: 'color', value: { mode: 'thresholds' } },
  ])
  .overrideByName('dropped_rows', column(UNITS.count, 'Dropped rows'));

const lastHeartbeat = tablePanel({
  id: FLEET_PANELS.lastHeartbeat,
  title: 'Last heartbeat',
  description:
    'When each agent last reported, oldest first so a silent agent is on top. An agent normally reports every minute; "agent silent" alerts after 5 minutes without a heartbeat. An agent that stopped before the start of the time range is not listed: widen the range to find it.',
  unit: UNITS.fromNow,
  w: 8,
  h: 8,
})
  .withTarget(
    target(
      heartbeats()
        .select((f) => [f.last('uptime_s').as('uptime_s')])
        .groupBy('agent', 'agent_region'),
    ).table(),
  )
  .withTransformation(organize({ exclude: ['uptime_s'], order: ['agent', 'agent_region', 'Time'] }))
  .withTransformation({ id: 'sortBy', options: { sort: [{ field: 'Time', desc: false }] } })
  .overrideByName('agent', column(UNITS.text, 'Agent'))
  .overrideByName('agent_region', column(UNITS.text, 'Region'))
  .overrideByName('Time', column(UNITS.fromNow, 'Last heartbeat'));

const heartbeatCount = timeSeries({
  id: FLEET_PANELS.heartbeats,
  title: 'Heartbeats received',
  description:
    'Heartbeats per interval per agent (normally one a minute). A bar at zero means the agent was silent, or could not reach InfluxDB and is holding its data in its outbox.',
  unit: UNITS.count,
  w: 16,
  h: 8,
})
  .drawStyle(common.GraphDrawStyle.Bars)
  .fillOpacity(70)
  .min(0)
  .withTarget(
    target(
      heartbeats()
        .select((f) => [f.count('uptime_s')])
        .groupByTime('$__interval')
        .groupBy('agent')
        .fill(0),
    ).alias('$tag_agent'),
  );

function perAgent(id: number, title: string, field: AgentField, unit: string, description: string) {
  return timeSeries({ id, title, description, unit, w: 12, h: 8 }).withTarget(
    target(
      heartbeats()
        .select((f) => [f.last(field)])
        .groupByTime('$__interval')
        .groupBy('agent')
        .fill('none'),
    ).alias('$tag_agent'),
  );
}

const loopLag = perAgent(
  FLEET_PANELS.loopLag,
  'Event-loop lag p99',
  'loop_lag_p99_ms',
  UNITS.ms,
  'How late the agent’s event loop ran (99th percentile since the previous heartbeat). Every timestamp the agent takes can be off by up to this much; samples that overlap lag are flagged and left out of the statistics, but a persistently high value means the host is overloaded.',
);
const roundsLate = perAgent(
  FLEET_PANELS.roundsLate,
  'Rounds started late',
  'rounds_late',
  UNITS.count,
  'Rounds that started after their scheduled time, as the agent reports it in its heartbeat. Growing steadily: rounds take longer than their interval, or the host is overloaded.',
);
const outbox = perAgent(
  FLEET_PANELS.outbox,
  'Outbox rows',
  'outbox_rows',
  UNITS.count,
  'Rounds stored on the agent and not yet accepted by InfluxDB. It drains to ~0 after every write; a level that only grows means InfluxDB is unreachable, slow or refusing writes (token, bucket, DBRP mapping) — the "outbox growing" alert fires on that.',
)
  .thresholds(zeroIsGood(100))
  .colorScheme(new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.PaletteClassic));
const deadLetters = perAgent(
  FLEET_PANELS.deadLetters,
  'Dead letters',
  'dead_letters',
  UNITS.count,
  'Lines InfluxDB rejected as malformed (HTTP 400, 413, 422, …) held in the agent’s dead-letter table: they never reach InfluxDB and do not block the lines behind them. The count falls only when the store’s retention expires them, so what matters is a rise — the "new dead letters" alert fires on one (its runbook shows how to read them).',
);
const dropped = perAgent(
  FLEET_PANELS.dropped,
  'Rows dropped by retention',
  'dropped_rows',
  UNITS.count,
  'Rounds, outbox lines and dead letters the agent’s embedded store deleted to stay within its retention limits, counted since the agent started. Old rounds expiring is normal; a rise while the outbox is high means lines were dropped before InfluxDB got them (the agent logs it loudly).',
);

const roundsFailed = perAgent(
  FLEET_PANELS.roundsFailed,
  'Rounds failed',
  'rounds_failed',
  UNITS.count,
  'Rounds that never reached the agent’s store, counted since it started (abandoned at their deadline, or the store refused them): their measurements are lost, so a gap appears in every dashboard. Any rise pages ("rounds failing" alert).',
)
  .thresholds(zeroIsGood())
  .colorScheme(new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.PaletteClassic));

// ---- Config: which version each agent runs (docs/fleet.md) ----

/** Each agent's last heartbeat of its config (version, publication time, last reload). */
function configPerAgentQuery() {
  return heartbeats()
    .select((f) => [
      f.last('config_version').as('config_version'),
      f.expr`${f.last('config_published_s')} * 1000`.as('published'),
      f.last('config_reload_ok').as('reload_ok'),
    ])
    .groupBy('agent', 'agent_region');
}

const configVersions = statPanel({
  id: FLEET_PANELS.configVersions,
  title: 'Config versions in the fleet',
  description:
    'How many different config versions the agents run, each agent counted by its last heartbeat. 1: every agent runs the same config. More: some agents have not picked up the newest one yet (a poll still to come, a version their copy did not validate, an agent that reads its own file); the table beside lists them oldest first.',
  unit: UNITS.count,
  w: 6,
  h: 8,
})
  .withTarget(
    target(
      from('agent')
        .fromSubquery(
          heartbeats()
            .select((f) => [f.last('config_version').as('config_version')])
            .groupBy('agent'),
        )
        .select((f) => [f.count(f.fn('distinct', 'config_version')).as('versions')]),
    ),
  )
  .thresholds(zeroIsGood(2))
  .colorScheme(thresholdColor());

const configPerAgent = tablePanel({
  id: FLEET_PANELS.configPerAgent,
  title: 'Config per agent',
  description:
    'The config each agent runs: its version (a hash of the config text, the same on every agent given the same text), when that version was published (the config server’s Last-Modified, or the file’s modification time), and whether its last reload was applied or failed (a failed one keeps the previous version running: the agent log lists every problem). Oldest first; a red "Published" is older than the newest config any agent of the selection runs.',
  unit: UNITS.text,
  w: 18,
  h: 8,
})
  .withTarget(target(configPerAgentQuery()).table())
  .withTarget(
    target(
      heartbeats().select((f) => [f.expr`${f.max('config_published_s')} * 1000`.as('newest')]),
      'B',
    ).table(),
  )
  // The newest publication time becomes the "Published" column's threshold: older is red.
  .withTransformation({
    id: 'configFromData',
    options: { configRefId: 'B', mappings: [{ fieldName: 'newest', handlerKey: 'threshold1' }] },
  })
  .withTransformation(
    organize({ exclude: ['Time'], order: ['agent', 'agent_region', 'config_version', 'published', 'reload_ok'] }),
  )
  .withTransformation({ id: 'sortBy', options: { sort: [{ field: 'published', desc: false }] } })
  .overrideByName('agent', column(UNITS.text, 'Agent'))
  .overrideByName('agent_region', column(UNITS.text, 'Region'))
  .overrideByName('config_version', column(UNITS.text, 'Config version'))
  .overrideByName('published', [
    ...column(UNITS.fromNow, 'Published'),
    { id: 'custom.cellOptions', value: { type: 'color-text' } },
    {
      id: 'thresholds',
      value: {
        mode: 'absolute',
        steps: [
          { value: null, color: 'red' },
          { value: 0, color: 'green' },
        ],
      },
    },
    { id: 'color', value: { mode: 'thresholds' } },
  ])
  .overrideByName('reload_ok', [
    ...column(UNITS.text, 'Last reload'),
    { id: 'custom.cellOptions', value: { type: 'color-text' } },
    {
      id: 'mappings',
      value: [
        {
          type: 'value',
          options: {
            '1': { text: 'applied', color: 'green', index: 0 },
            '0': { text: 'failed', color: 'red', index: 1 },
          },
        },
      ],
    },
    { id: 'noValue', value: 'none since start' },
  ]);

/** The "Fleet" dashboard. */
export function fleetDashboard(): dashboard.DashboardBuilder {
  return baseDashboard(
    'anylat / Fleet',
    UIDS.fleet,
    'Health of the agents: alive, on time, and getting their data into InfluxDB.',
  )
    .tags([DASHBOARD_TAG, 'fleet'])
    .variables(VARIABLES)
    .withRow(new dashboard.RowBuilder('Agents').id(FLEET_PANELS.rowAgents))
    .withPanel(agents)
    .withPanel(lastHeartbeat)
    .withPanel(heartbeatCount)
    .withPanel(loopLag)
    .withPanel(roundsLate)
    .withPanel(roundsFailed)
    .withRow(new dashboard.RowBuilder('Data pipeline').id(FLEET_PANELS.rowPipeline))
    .withPanel(outbox)
    .withPanel(deadLetters)
    .withPanel(dropped)
    .withRow(new dashboard.RowBuilder('Config').id(FLEET_PANELS.rowConfig))
    .withPanel(configVersions)
    .withPanel(configPerAgent);
}
