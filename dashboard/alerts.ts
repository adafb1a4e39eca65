// Grafana-managed alert rules, the contact point and the notification policy, in Grafana's file
// provisioning format (apiVersion 1: `groups`, `contactPoints`, `policies`). Generated from here
// so the queries share the dashboards' InfluxQL builder and the schema names.
import { stringify } from 'yaml';
import { BENEFIT_PANELS } from './benefit.ts';
import { LOSS_METRICS, PRIMARY_METRICS, UIDS } from './common.ts';
import { FLEET_PANELS } from './fleet.ts';
import { DATASOURCE, DATASOURCE_UID, from, type Conds } from './influxql.ts';
import { PATH_PANELS } from './path-detail.ts';

/** Loss on one path above this share of samples (percent) over the window fires the loss alert. */
export const LOSS_ALERT_PCT = 5;
/** An agent without a heartbeat for this long is silent. */
export const SILENT_AFTER_S = 300;
/**
 * How far back "agent silent" looks for agents: one silent for longer than this leaves the query
 * and resolves. A week, so a dead agent keeps firing through a weekend until it returns.
 */
export const SILENT_LOOKBACK_S = 7 * 24 * 3600;
/**
 * The folder the rules live in, by title. Grafana's alerting file provisioning names folders by
 * title only and creates a missing one with a random uid, and it may run before or after the
 * dashboards provider (grafana/grafana#125079): the dashboards provider therefore names the same
 * folder by the same title and no uid (provisioning/dashboards/anylat.yaml), so whichever runs
 * first creates "anylat" and the other finds it.
 */
export const ALERT_FOLDER = 'anylat';
/** The contact point every anylat alert goes to; its webhook URL comes from the environment. */
export const CONTACT_POINT = 'anylat-webhook';
/** Environment variable holding the contact point's webhook URL (read by Grafana at startup). */
export const WEBHOOK_ENV = 'ANYLAT_ALERT_WEBHOOK_URL';
/** Every rule carries this label; the notification policy routes on it. */
export const APP_LABEL = { app: 'anylat' } as const;

export const EXPR_UID = '__expr__';

/** What `npm run dashboards` can change in the generated rule files. */
export interface AlertOptions {
  /** "anycast slower" fires when the median saving is below minus this many ms (default 1) */
  anycastSlowerMs: number;
  /** where the runbooks are: runbook_url = `${docsUrl}/grafana.md#anchor` */
  docsUrl: string;
}

/**
 * Environment variable that picks the minimum effect of "anycast slower" (ms) when Grafana starts,
 * without editing the rule file. Grafana expands environment variables in a rule's `condition`
 * (values.StringValue, interpolated) but never in its queries and expressions (`model` is taken
 * raw), so the rule computes the decision for each threshold of ANYCAST_SLOWER_CHOICES_MS and the
 * condition names the one to use: `E${ANYLAT_ANYCAST_SLOWER_MS}`. Unset, it expands to "" and the
 * condition is `E`, the generator's default (1 ms).
 */
export const ANYCAST_SLOWER_ENV = 'ANYLAT_ANYCAST_SLOWER_MS';
/** The thresholds (ms) ANYLAT_ANYCAST_SLOWER_MS can pick; any other needs `--anycast-slower-ms`. */
export const ANYCAST_SLOWER_CHOICES_MS = [1, 2, 3, 5, 10] as const;

/**
 * refId of the decision for one threshold: `E` followed by the variable's value (`E2`). Whole
 * milliseconds only: a refId stays letters and digits, as Grafana's own are.
 */
export function slowerRefId(ms: number): string {
  return `E${ms}`;
}

/**
 * Where the runbooks are when `--docs-url` is not given. Grafana takes a provisioned rule's
 * annotations raw (no environment variables: pkg/services/provisioning/alerting/rules_types.go,
 * `alertRule.Annotations = rule.Annotations.Raw`, in every release up to 12.x), so the link is baked
 * in at generation. `.invalid` (RFC 2606) can never resolve: an unconfigured link says so instead
 * of pointing at someone else's copy.
 */
export const DEFAULT_DOCS_URL = 'https://docs.invalid/anylat/docs';

export const DEFAULT_ALERT_OPTIONS: AlertOptions = { anycastSlowerMs: 1, docsUrl: DEFAULT_DOCS_URL };

type Severity = 'critical' | 'warning' | 'info';

/** One entry of a rule's `data` (Grafana's AlertQuery, file-provisioning spelling). */
export interface AlertQuery {
  refId: string;
  queryType: string;
  relativeTimeRange: { from: number; to: number };
  datasourceUid: string;
  model: Record<string, unknown>;
}

export interface AlertRule {
  uid: string;
  title: string;
  condition: string;
  data: AlertQuery[];
  dashboardUid: string;
  panelId: number;
  noDataState: 'OK' | 'NoData' | 'Alerting' | 'KeepLast';
  execErrState: 'OK' | 'Error' | 'Alerting' | 'KeepLast';
  for: string;
  keepFiringFor?: string;
  annotations: { summary: string; description: string; runbook_url?: string };
  labels: Record<string, string>;
  isPaused: boolean;
}

/** An InfluxQL query over the last `windowS` seconds (Grafana turns that into `$timeFilter`). */
function influx(refId: string, query: string, windowS: number): AlertQuery {
  return {
    refId,
    queryType: '',
    relativeTimeRange: { from: windowS, to: 0 },
    datasourceUid: DATASOURCE_UID,
    model: {
      refId,
      datasource: { ...DATASOURCE },
      query,
      rawQuery: true,
      resultFormat: 'time_series',
      intervalMs: 60000,
      maxDataPoints: 43200,
    },
  };
}

function expression(refId: string, model: Record<string, unknown>): AlertQuery {
  return {
    refId,
    queryType: '',
    relativeTimeRange: { from: 0, to: 0 },
    datasourceUid: EXPR_UID,
    model: { refId, datasource: { type: EXPR_UID, uid: EXPR_UID }, ...model },
  };
}

/** Reduce each series to one number; `dropNN` ignores null/NaN points instead of turning the result into NaN. */
function reduce(refId: string, of: string, reducer: 'last' | 'max' | 'min' | 'mean' | 'sum' | 'count'): AlertQuery {
  return expression(refId, { type: 'reduce', expression: of, reducer, settings: { mode: 'dropNN' } });
}

function threshold(refId: string, of: string, type: 'gt' | 'lt', value: number): AlertQuery {
  return expression(refId, {
    type: 'threshold',
    expression: of,
    conditions: [{ evaluator: { type, params: [value] } }],
  });
}

function math(refId: string, expr: string): AlertQuery {
  return expression(refId, { type: 'math', expression: expr });
}

/**
 * The usual three steps of a rule: an InfluxQL query over the last `windowS` seconds (A), each
 * series reduced to its last value (B), compared with a threshold (C, the condition).
 */
function alertWhen(query: string, windowS: number, op: 'gt' | 'lt', value: number): AlertQuery[] {
  return [influx('A', query, windowS), reduce('B', 'A', 'last'), threshold('C', 'B', op, value)];
}

/** How much a heartbeat counter (dead letters, failed rounds) rose within the window, per agent. */
function riseOf(field: 'dead_letters' | 'rounds_failed', alias: string): string {
  return from('agent')
    .select((f) => [f.expr`${f.max(field)} - ${f.first(field)}`.as(alias)])
    .groupBy('agent', 'agent_region')
    .build();
}

/**
 * A rule with anylat's defaults: condition C, no data is OK (a silent or new fleet pages no one), a
 * query error is an Error, never paused. Keys in the order Grafana exports them.
 */
function rule(
  r: Omit<AlertRule, 'condition' | 'noDataState' | 'execErrState' | 'isPaused'> & Partial<Pick<AlertRule, 'condition'>>,
): AlertRule {
  return {
    uid: r.uid,
    title: r.title,
    condition: r.condition ?? 'C',
    data: r.data,
    dashboardUid: r.dashboardUid,
    panelId: r.panelId,
    noDataState: 'OK',
    execErrState: 'Error',
    for: r.for,
    ...(r.keepFiringFor ? { keepFiringFor: r.keepFiringFor } : {}),
    annotations: r.annotations,
    labels: r.labels,
    isPaused: false,
  };
}

function labels(severity: Severity, signal: string): Record<string, string> {
  return { ...APP_LABEL, severity, signal };
}

/** The heading of each rule's runbook in docs/grafana.md, as GitHub anchors it. */
export const RUNBOOK_ANCHORS: Record<string, string> = {
  'anylat-anycast-slower': 'alert-anycast-slower-than-its-baseline',
  'anylat-path-loss': 'alert-loss-on-a-path',
  'anylat-anycast-down': 'alert-anycast-address-down',
  'anylat-agent-silent': 'alert-agent-silent',
  'anylat-site-changed': 'alert-anycast-site-changed',
  'anylat-dead-letters': 'alert-new-dead-letters-on-an-agent',
  'anylat-outbox-growing': 'alert-agent-outbox-growing',
  'anylat-rounds-failed': 'alert-rounds-failing-on-an-agent',
};

const slowerThan = (ms: number) => `$C < -${ms} && $D < 0`;

function anycastSlower(o: AlertOptions): AlertRule {
  // transfer is excluded: its ttfb/download saving depends on the object size and the link's
  // capacity (split TCP), not on the path's latency, and pooling sizes would mix them.
  const primary = (w: Conds<'benefit'>) => [
    w.is('scope', 'end_to_end'),
    w.in('metric', PRIMARY_METRICS),
    w.not('protocol', 'transfer'),
  ];
  const end = from('benefit').where(primary);
  return rule({
    uid: 'anylat-anycast-slower',
    title: 'Anycast slower than its baseline',
    condition: `E\${${ANYCAST_SLOWER_ENV}}`,
    data: [
      // Per (region, service, protocol, primary metric) over the last 10 minutes: the median of the
      // rounds' savings, and the highest CI high bound of any of those rounds.
      influx(
        'A',
        end
          .select((f) => [f.fn('median', 'saved_ms').as('saved_ms')])
          .groupBy('agent_region', 'service', 'protocol', 'metric')
          .build(),
        600,
      ),
      influx(
        'B',
        from('benefit')
          .where(primary)
          .select((f) => [f.max('ci_high_ms').as('ci_high_ms')])
          .groupBy('agent_region', 'service', 'protocol', 'metric')
          .build(),
        600,
      ),
      reduce('C', 'A', 'last'),
      reduce('D', 'B', 'last'),
      // Slower by more than the minimum effect, and significantly so in every round of the window:
      // once for the default threshold (E), once per threshold the environment can pick.
      math('E', slowerThan(o.anycastSlowerMs)),
      ...ANYCAST_SLOWER_CHOICES_MS.map((ms) => math(slowerRefId(ms), slowerThan(ms))),
    ],
    dashboardUid: UIDS.benefit,
    panelId: BENEFIT_PANELS.benefitOverTime,
    for: '10m',
    annotations: {
      summary: `Anycast is slower than the regional unicast baseline for {{ $labels.service }} from {{ $labels.agent_region }} on {{ $labels.protocol }} {{ $labels.metric }}: median {{ printf "%.1f" $values.C.Value }} ms saved over 10 minutes (below the minimum effect: −${o.anycastSlowerMs} ms, or −$${ANYCAST_SLOWER_ENV} ms when set), every round's 95% CI below 0.`,
      description: `What: for 10 minutes (and 10 more of pending), the median end-to-end saving (baseline p50 − anycast p50) of the agents in {{ $labels.agent_region }} on {{ $labels.protocol }} {{ $labels.metric }} was below the minimum effect (−${o.anycastSlowerMs} ms, or −$${ANYCAST_SLOWER_ENV} ms when Grafana's environment sets it) and the confidence interval of every round was entirely below 0 — users there reach {{ $labels.service }} faster without the accelerator, and it is not noise. Regions next to the origin that pay a fraction of a millisecond for the accelerator do not fire (minimum effect: set ${ANYCAST_SLOWER_ENV} to one of ${ANYCAST_SLOWER_CHOICES_MS.join(', ')} in Grafana's environment, or regenerate with \`npm run dashboards -- --anycast-slower-ms N\`).
Check:
1. "Accelerator benefit" dashboard, region {{ $labels.agent_region }}: the "last 15 min" and "a week earlier" figures, and did the anycast site change at the same time ("Anycast site per agent and anycast address", the purple markers)? A new, farther edge site is the usual cause.
2. "Path detail" for an agent in the region: is the anycast path slower on every protocol (routing) or only one (e.g. TLS at the origin)?
3. Compare with the baseline endpoint named in the benefit table: a unicast endpoint that got much faster (new region, new peering) also turns the benefit negative.
Act: open a case with the accelerator provider with the agent region, the site and the times; consider the endpoint group's traffic dial or a regional DNS answer for this region.`,
    },
    labels: labels('warning', 'benefit'),
  });
}

const anycastDown = rule({
  uid: 'anylat-anycast-down',
  title: 'Anycast address down',
  condition: 'C',
  data: [
    // What the agent's path_down event means, on the anycast side: nothing at all came back on a
    // path for 5 minutes (every attempt failed).
    ...alertWhen(
      from('latency')
        .select((f) => [f.expr`100 * (1 - ${f.sum('received')} / ${f.sum('sent')})`.as('loss_pct')])
        .where((w) => [w.is('kind', 'anycast'), w.in('metric', LOSS_METRICS)])
        .groupBy('agent', 'agent_region', 'service', 'endpoint', 'protocol')
        .build(),
      300,
      'gt',
      99.9,
    ),
  ],
  dashboardUid: UIDS.benefit,
  panelId: BENEFIT_PANELS.loss,
  for: '0s',
  annotations: {
    summary:
      'Anycast address {{ $labels.endpoint }} of {{ $labels.service }} does not answer {{ $labels.protocol }} from {{ $labels.agent }} ({{ $labels.agent_region }}): 100% loss for 5 minutes.',
    description: `What: every {{ $labels.protocol }} attempt from this agent to the anycast address {{ $labels.endpoint }} failed for the last 5 minutes (the agent also reported a path_down event). Users routed like this agent cannot reach {{ $labels.service }} through the accelerator.
Check:
1. "Accelerator benefit" → "Recent events" and the red markers: one agent, or every agent on this address? Every agent points at the accelerator (listener, endpoint group health checks); one agent at its network.
2. "Path detail" for {{ $labels.agent }}: do the unicast endpoints still answer? If they do, the accelerator is the problem.
Act: fail traffic over (DNS to the regional endpoints) if users are affected, and raise it with the accelerator provider. The alert resolves when answers come back (path_up).`,
  },
  labels: labels('critical', 'availability'),
});

const pathLoss = rule({
  uid: 'anylat-path-loss',
  title: 'Loss on a path',
  condition: 'C',
  data: [
    ...alertWhen(
      // One metric per protocol, the one that ends an attempt, so each failed attempt counts once.
      from('latency')
        .select((f) => [f.expr`100 * (1 - ${f.sum('received')} / ${f.sum('sent')})`.as('loss_pct')])
        .where((w) => [w.in('metric', LOSS_METRICS)])
        .groupBy('agent', 'agent_region', 'service', 'endpoint', 'protocol')
        .build(),
      600,
      'gt',
      LOSS_ALERT_PCT,
    ),
  ],
  dashboardUid: UIDS.pathDetail,
  panelId: PATH_PANELS.loss,
  for: '5m',
  annotations: {
    summary: `{{ printf "%.1f" $values.B.Value }}% of {{ $labels.protocol }} samples from {{ $labels.agent }} ({{ $labels.agent_region }}) to {{ $labels.service }} / {{ $labels.endpoint }} got no answer over 10 minutes (threshold ${LOSS_ALERT_PCT}%).`,
    description: `What: pooled over the last 10 minutes, 100 × (1 − received/sent) on this path is above ${LOSS_ALERT_PCT}% and stayed there for 5 more minutes. Timeouts, refusals, resets and TLS/HTTP errors all count.
Check:
1. "Path detail" (service {{ $labels.service }}, agent {{ $labels.agent }}): is it one endpoint ({{ $labels.endpoint }}) or all? One protocol or all? All endpoints failing points at the agent's own network.
2. anycast only: the accelerator's health checks, listener ports and the site in "Anycast site per agent and anycast address"; unicast only: that region's load balancer / security groups.
3. udp only: is the reflector running and reachable on its port (STAMP 862 by default)? "UDP packet accounting" shows late and invalid replies that hint at rate limits or middleboxes.
Act: fix the failing side; the agent keeps measuring and the alert resolves when loss falls below the threshold.`,
  },
  labels: labels('warning', 'loss'),
});

const agentSilent = rule({
  uid: 'anylat-agent-silent',
  title: 'Agent silent',
  condition: 'C',
  data: [
    // Heartbeats per 30 s bucket over a week, zero-filled so an agent that stopped still has a
    // series, summed over the last 11 buckets (5–5.5 minutes). A dead agent keeps firing until it
    // returns, or for a week.
    ...alertWhen(
      from('agent')
        .select((f) => [f.expr`${f.fn('moving_average', f.count('uptime_s'), 11)} * 11`.as('heartbeats')])
        .groupByTime('30s')
        .groupBy('agent', 'agent_region')
        .fill(0)
        .build(),
      SILENT_LOOKBACK_S,
      'lt',
      0.5,
    ),
  ],
  dashboardUid: UIDS.fleet,
  panelId: FLEET_PANELS.heartbeats,
  for: '0s',
  annotations: {
    summary: 'Agent {{ $labels.agent }} ({{ $labels.agent_region }}) has sent no heartbeat for 5 minutes.',
    description: `What: no \`agent\` heartbeat from {{ $labels.agent }} reached InfluxDB in the last 5 to 5.5 minutes, although it reported in the last 7 days. Either the agent is down, or it runs but cannot write to InfluxDB (its data then waits in its outbox and arrives later, in order).
Check:
1. On the agent host: is the service running (\`systemctl status anylat\` / \`docker ps\`), and what do its last log lines say (InfluxDB errors name the status code)?
2. Can the host reach InfluxDB (URL, token, DBRP mapping on 2.x)? Other agents reporting fine points at this host's network or credentials.
3. "Fleet" dashboard: did its outbox grow or its loop lag spike before it went silent?
Act: restart or fix the agent; nothing acknowledged is lost, and queued rounds drain when it reconnects. If the agent was retired on purpose, silence the alert for it: it resolves by itself a week after the last heartbeat.`,
  },
  labels: labels('critical', 'silence'),
});

const siteChanged = rule({
  uid: 'anylat-site-changed',
  title: 'Anycast site changed',
  condition: 'C',
  data: [
    ...alertWhen(
      from('event')
        .select((f) => [f.count('message').as('changes')])
        .where((w) => [w.is('type', 'site_change')])
        .groupBy('agent', 'agent_region', 'service')
        .build(),
      900,
      'gt',
      0,
    ),
  ],
  dashboardUid: UIDS.benefit,
  panelId: BENEFIT_PANELS.sites,
  for: '0s',
  annotations: {
    summary:
      'The anycast site answering {{ $labels.agent }} ({{ $labels.agent_region }}) for {{ $labels.service }} changed {{ printf "%.0f" $values.B.Value }} time(s) in the last 15 minutes.',
    description: `What: the agent reported a site_change event — a different accelerator edge location now answers its anycast probes. This is information, not necessarily a problem: routing changes move users to another edge.
Check:
1. "Accelerator benefit" → "Recent events" for the from → to sites, and "Anycast site per agent and anycast address" for how often it flips (flapping between two sites makes latency unstable).
2. "Time saved per region over time" around the change: did the benefit drop?
Act: if the new site is farther and the benefit fell, raise it with the accelerator provider (include agent region, old/new site, time). The alert resolves 15 minutes after the last change.`,
  },
  labels: labels('info', 'site'),
});

const deadLetters = rule({
  uid: 'anylat-dead-letters',
  title: 'New dead letters on an agent',
  condition: 'C',
  data: [
    // dead_letters is the size of the agent's dead-letter table, which keeps rejected lines for the
    // store's retention age (30 days by default): alert on lines added in the window, not on a
    // count that stays above zero for a month after one incident.
    ...alertWhen(riseOf('dead_letters', 'new_dead_letters'), 900, 'gt', 0),
  ],
  dashboardUid: UIDS.fleet,
  panelId: FLEET_PANELS.deadLetters,
  for: '0s',
  annotations: {
    summary:
      'InfluxDB rejected {{ printf "%.0f" $values.B.Value }} line(s) from agent {{ $labels.agent }} ({{ $labels.agent_region }}) as malformed in the last 15 minutes; they are in its dead-letter table, not in InfluxDB.',
    description: `What: InfluxDB answered a write from this agent with 400, 413, 422 or another 4xx that means "this data is wrong" (not 401/403/404/429, which stay queued in the outbox). The agent narrowed the batch down to the refused lines and moved only those to its dead-letter table; everything else was delivered. Those rounds are missing from the dashboards.
Check:
1. On the agent host: sqlite3 <store.path> "SELECT failed_at, status, message, line FROM dead_letters ORDER BY id DESC LIMIT 20" — the server's message says why (a field type conflict means something else wrote the same measurement and field with another type; 413 a line too large).
2. Did the agent version change just before (Fleet → Agents → Version)? A schema change between versions is the usual cause.
Act: fix the cause (drop the conflicting data or rename the other writer's field). The alert resolves 15 minutes after the last new dead letter; the lines stay on the agent until the store's retention removes them.`,
  },
  labels: labels('warning', 'pipeline'),
});

const outboxGrowing = rule({
  uid: 'anylat-outbox-growing',
  title: 'Agent outbox growing',
  condition: 'E',
  data: [
    // Never drained to zero in the window, and larger at its end than at its start.
    influx(
      'A',
      from('agent')
        .select((f) => [f.min('outbox_rows').as('outbox_min')])
        .groupBy('agent', 'agent_region')
        .build(),
      900,
    ),
    influx(
      'B',
      from('agent')
        .select((f) => [f.expr`${f.last('outbox_rows')} - ${f.first('outbox_rows')}`.as('outbox_growth')])
        .groupBy('agent', 'agent_region')
        .build(),
      900,
    ),
    reduce('C', 'A', 'last'),
    reduce('D', 'B', 'last'),
    math('E', '$C > 0 && $D > 0'),
  ],
  dashboardUid: UIDS.fleet,
  panelId: FLEET_PANELS.outbox,
  for: '5m',
  annotations: {
    summary:
      'The outbox of agent {{ $labels.agent }} ({{ $labels.agent_region }}) has not drained for 15 minutes and grew by {{ printf "%.0f" $values.D.Value }} rows.',
    description: `What: over the last 15 minutes (and 5 more) the agent's outbox — rounds stored locally and not yet accepted by InfluxDB — never went back to 0 and is larger now than at the start. Writes are failing or too slow; heartbeats may still arrive late, in order.
Check:
1. The agent's log for InfluxDB write errors: unreachable, timeouts, 5xx and 429 (rate limits) mean InfluxDB cannot keep up; 401/403 a token without write permission; 404 a wrong org or bucket (on 1.8: db/rp) — those lines wait in the outbox until fixed.
2. InfluxDB health and disk; on InfluxDB Cloud, your plan's write limits.
3. "Fleet" → "Rows dropped by retention": once the store hits its limits, the oldest rounds are dropped before they reach InfluxDB.
Act: restore InfluxDB writes; the outbox drains oldest-first and the alert resolves.`,
  },
  labels: labels('warning', 'pipeline'),
});

const roundsFailing = rule({
  uid: 'anylat-rounds-failed',
  title: 'Rounds failing on an agent',
  condition: 'C',
  data: [
    // rounds_failed counts since the agent started: alert on a rise within the window.
    ...alertWhen(riseOf('rounds_failed', 'new_rounds_failed'), 900, 'gt', 0),
  ],
  dashboardUid: UIDS.fleet,
  panelId: FLEET_PANELS.roundsFailed,
  for: '0s',
  annotations: {
    summary:
      '{{ printf "%.0f" $values.B.Value }} round(s) of agent {{ $labels.agent }} ({{ $labels.agent_region }}) never reached its store in the last 15 minutes.',
    description: `What: the agent's rounds_failed counter rose: rounds were abandoned at their deadline or the embedded store refused them, so their measurements are lost (gaps in every dashboard for this agent).
Check:
1. The agent's log around the time: "deadline" means rounds take longer than their interval (too many samples, long timeouts, a slow target); store errors name the SQLite problem (disk full, read-only file system, locked database).
2. "Fleet" → "Event-loop lag p99" and "Rounds started late": an overloaded host fails rounds too.
Act: fix the cause (shorter timeouts or fewer samples, free disk space); the alert resolves 15 minutes after the last failure.`,
  },
  labels: labels('warning', 'pipeline'),
});

/** All rules, in the order they appear in the YAML. */
export function alertRules(options: Partial<AlertOptions> = {}): AlertRule[] {
  const o = { ...DEFAULT_ALERT_OPTIONS, ...options };
  return [
    anycastSlower(o),
    pathLoss,
    anycastDown,
    agentSilent,
    siteChanged,
    deadLetters,
    outboxGrowing,
    roundsFailing,
  ].map((r) => ({
    ...r,
    annotations: { ...r.annotations, runbook_url: `${o.docsUrl}/grafana.md#${RUNBOOK_ANCHORS[r.uid]!}` },
  }));
}

/** The rules with the default options. */
export const ALERT_RULES: readonly AlertRule[] = alertRules();

function yamlFile(header: string, body: Record<string, unknown>): string {
  return `${header
    .trim()
    .split('\n')
    .map((l) => `# ${l}`.trimEnd())
    .join('\n')}\n${stringify({ apiVersion: 1, ...body }, { lineWidth: 0 })}`;
}

const GENERATED = 'Generated by `npm run dashboards` from dashboard/alerts.ts: edit that file, not this one.';

/** The alerting provisioning files, keyed by path relative to the repository root. */
export function alertingFiles(options: Partial<AlertOptions> = {}): Map<string, string> {
  const files = new Map<string, string>();
  files.set(
    'provisioning/alerting/anylat-rules.yaml',
    yamlFile(`anylat alert rules (Grafana-managed, InfluxQL on datasource ${DATASOURCE_UID}).\n${GENERATED}`, {
      groups: [{ orgId: 1, name: 'anylat', folder: ALERT_FOLDER, interval: '1m', rules: alertRules(options) }],
    }),
  );
  files.set(
    'provisioning/alerting/anylat-contact-points.yaml',
    yamlFile(
      `Where anylat alerts go: a webhook whose URL Grafana reads from the environment variable ${WEBHOOK_ENV} at startup.\nReplace the receiver (Slack, e-mail, PagerDuty, ...) to suit; keep the name ${CONTACT_POINT}.\n${GENERATED}`,
      {
        contactPoints: [
          {
            orgId: 1,
            name: CONTACT_POINT,
            receivers: [
              {
                uid: 'anylat-webhook',
                type: 'webhook',
                settings: { url: `\${${WEBHOOK_ENV}}`, httpMethod: 'POST' },
                disableResolveMessage: false,
              },
            ],
          },
        ],
      },
    ),
  );
  files.set(
    'provisioning/alerting/anylat-policies.yaml',
    yamlFile(
      `Notification policy tree. CAUTION: provisioning a policy REPLACES the organisation's whole tree.\nIf your Grafana already routes alerts, delete this file and add one route with the matcher\napp=anylat -> ${CONTACT_POINT} to your own tree instead.\n${GENERATED}`,
      {
        policies: [
          {
            orgId: 1,
            receiver: CONTACT_POINT,
            group_by: ['grafana_folder', 'alertname'],
            routes: [
              {
                receiver: CONTACT_POINT,
                object_matchers: [
                  ['app', '=', APP_LABEL.app],
                  ['severity', '=', 'info'],
                ],
                group_by: ['alertname', 'service'],
                group_wait: '1m',
                group_interval: '15m',
                repeat_interval: '24h',
              },
              {
                receiver: CONTACT_POINT,
                object_matchers: [['app', '=', APP_LABEL.app]],
                group_by: ['alertname', 'agent_region', 'service'],
                group_wait: '30s',
                group_interval: '5m',
                repeat_interval: '4h',
              },
            ],
          },
        ],
      },
    ),
  );
  return files;
}
