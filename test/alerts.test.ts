// The provisioned alerting files: only keys Grafana's file provisioning reads, conditions and
// expressions that point at real refIds, the right datasources, expression models that validate
// against Grafana's schema — and every rule evaluated on a real InfluxDB holding the scenario,
// firing exactly where the scenario says it must (see test/fixtures/grafana/grafana.ts for what
// of Grafana's evaluation is emulated).
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import {
  ALERT_RULES,
  ANYCAST_SLOWER_CHOICES_MS,
  ANYCAST_SLOWER_ENV,
  APP_LABEL,
  CONTACT_POINT,
  DEFAULT_DOCS_URL,
  LOSS_ALERT_PCT,
  WEBHOOK_ENV,
} from '../dashboard/alerts.ts';
import { ROOT } from '../dashboard/generate.ts';
import { DATASOURCE_UID } from '../dashboard/influxql.ts';
import {
  evaluateRule,
  noDataOutcome,
  provisionRule,
  type Evaluation,
  type RuleDefinition,
} from './fixtures/grafana/grafana.ts';
import {
  DEAD_LETTERS,
  LOSSY,
  OLD_DEAD_LETTERS,
  OUTBOX,
  SAMPLES,
  SITE_CHANGE,
  buildScenario,
  type Scenario,
} from './fixtures/grafana/scenario.ts';
import { startInfluxDB, type InfluxServer } from './support/influxdb.ts';

const DIR = join(ROOT, 'provisioning/alerting');

// The YAML keys Grafana's file provisioning reads (pkg/services/provisioning/alerting: types.go,
// rules_types.go, contact_point_types.go, notification_policy_types.go → ngalert Route).
const KEYS = {
  file: [
    'apiVersion',
    'groups',
    'deleteRules',
    'contactPoints',
    'deleteContactPoints',
    'policies',
    'resetPolicies',
    'muteTimes',
    'deleteMuteTimes',
    'templates',
    'deleteTemplates',
  ],
  group: ['orgId', 'name', 'folder', 'interval', 'rules'],
  rule: [
    'uid',
    'title',
    'condition',
    'data',
    'dasboardUid',
    'dashboardUid',
    'panelId',
    'noDataState',
    'execErrState',
    'for',
    'keepFiringFor',
    'missing_series_evals_to_resolve',
    'annotations',
    'labels',
    'isPaused',
    'notification_settings',
    'record',
  ],
  query: ['refId', 'queryType', 'relativeTimeRange', 'datasourceUid', 'model'],
  relativeTimeRange: ['from', 'to'],
  contactPoint: ['orgId', 'name', 'receivers'],
  receiver: ['uid', 'type', 'settings', 'disableResolveMessage'],
  route: [
    'orgId',
    'receiver',
    'group_by',
    'continue',
    'object_matchers',
    'matchers',
    'match',
    'match_re',
    'mute_time_intervals',
    'active_time_intervals',
    'group_wait',
    'group_interval',
    'repeat_interval',
    'routes',
  ],
};

type Obj = Record<string, unknown>;

function onlyKeys(o: unknown, allowed: readonly string[], where: string): asserts o is Obj {
  assert.ok(o && typeof o === 'object' && !Array.isArray(o), `${where} is not a mapping`);
  for (const k of Object.keys(o))
    assert.ok(allowed.includes(k), `${where}: "${k}" is not a key Grafana's file provisioning reads`);
}

const files = readdirSync(DIR)
  .filter((f) => /\.ya?ml$/.test(f))
  .map((f) => ({ name: f, doc: parse(readFileSync(join(DIR, f), 'utf8')) as Obj }));
const groups = files.flatMap((f) => (f.doc.groups as Obj[] | undefined) ?? []);
const rules = groups.flatMap((g) => g.rules as Obj[]) as unknown as Array<
  RuleDefinition & Obj & { uid: string; labels: Record<string, string>; annotations: Record<string, string> }
>;
const contactPoints = files.flatMap((f) => (f.doc.contactPoints as Obj[] | undefined) ?? []);
const policies = files.flatMap((f) => (f.doc.policies as Obj[] | undefined) ?? []);

describe('alerting provisioning files', () => {
  it('use only keys Grafana reads, apiVersion 1', () => {
    assert.ok(files.length >= 3);
    for (const f of files) {
      onlyKeys(f.doc, KEYS.file, f.name);
      assert.equal(f.doc.apiVersion, 1, f.name);
    }
    for (const g of groups) {
      onlyKeys(g, KEYS.group, `group ${String(g.name)}`);
      assert.match(String(g.interval), /^\d+[smh]$/);
      for (const r of g.rules as Obj[]) {
        onlyKeys(r, KEYS.rule, `rule ${String(r.uid)}`);
        for (const d of r.data as Obj[]) {
          onlyKeys(d, KEYS.query, `rule ${String(r.uid)} data ${String(d.refId)}`);
          onlyKeys(
            d.relativeTimeRange,
            KEYS.relativeTimeRange,
            `rule ${String(r.uid)} data ${String(d.refId)} relativeTimeRange`,
          );
        }
      }
    }
    for (const cp of contactPoints) {
      onlyKeys(cp, KEYS.contactPoint, `contact point ${String(cp.name)}`);
      for (const r of cp.receivers as Obj[]) onlyKeys(r, KEYS.receiver, `receiver ${String(r.uid)}`);
    }
    const walk = (route: Obj, where: string): void => {
      onlyKeys(route, KEYS.route, where);
      for (const [i, child] of ((route.routes as Obj[] | undefined) ?? []).entries())
        walk(child, `${where}.routes[${i}]`);
    };
    for (const [i, p] of policies.entries()) walk(p, `policies[${i}]`);
  });

  it('rules are well formed: unique uids, conditions and expressions name real refIds, datasources are InfluxDB or expressions', () => {
    assert.equal(rules.length, ALERT_RULES.length);
    assert.equal(new Set(rules.map((r) => r.uid)).size, rules.length);
    for (const r of rules) {
      assert.match(r.uid, /^[a-zA-Z0-9_-]{1,40}$/, `uid ${r.uid}`);
      const refIds = r.data.map((d) => d.refId);
      assert.equal(new Set(refIds).size, refIds.length, `${r.uid}: duplicate refIds`);
      // The condition as Grafana stores it: interpolated from its environment (unset, and each value
      // the "anycast slower" threshold variable may take).
      for (const env of [{}, ...ANYCAST_SLOWER_CHOICES_MS.map((ms) => ({ [ANYCAST_SLOWER_ENV]: String(ms) }))]) {
        const condition = provisionRule(r, env).condition;
        assert.ok(refIds.includes(condition), `${r.uid}: condition ${condition} is not one of ${refIds.join(',')}`);
      }
      for (const [i, d] of r.data.entries()) {
        assert.ok(
          [DATASOURCE_UID, '__expr__'].includes(d.datasourceUid),
          `${r.uid}/${d.refId}: datasourceUid ${d.datasourceUid}`,
        );
        assert.equal(d.model.refId, d.refId);
        if (d.datasourceUid === DATASOURCE_UID) {
          assert.ok(d.relativeTimeRange.from > d.relativeTimeRange.to, `${r.uid}/${d.refId}: empty time range`);
          assert.equal((d.model.datasource as Obj).uid, DATASOURCE_UID);
          assert.equal(d.model.rawQuery, true);
          assert.match(String(d.model.query), /\$timeFilter/);
          assert.doesNotMatch(String(d.model.query), /\$__interval/, 'alert queries use fixed buckets');
        } else {
          const used =
            d.model.type === 'math'
              ? [...String(d.model.expression).matchAll(/\$(\w+)/g)].map((m) => m[1]!)
              : [String(d.model.expression)];
          for (const ref of used)
            assert.ok(
              refIds.slice(0, i).includes(ref),
              `${r.uid}/${d.refId} reads ${ref}, which is not defined before it`,
            );
        }
      }
      assert.ok(['OK', 'NoData', 'Alerting', 'KeepLast'].includes(r.noDataState));
      assert.ok(['OK', 'Error', 'Alerting', 'KeepLast'].includes(r.execErrState));
      assert.match(String(r.for), /^\d+[smh]$/);
    }
  });

  it('dashboards and alert rules name the same folder the same way, by title, whatever order Grafana provisions them in', () => {
    // Alerting provisioning names folders by title and creates a missing one with a random uid; a
    // dashboards provider naming the folder by uid would then make a second one (grafana#125079).
    const provider = parse(readFileSync(join(ROOT, 'provisioning/dashboards/anylat.yaml'), 'utf8')) as {
      providers: Array<Record<string, unknown>>;
    };
    assert.equal(provider.providers.length, 1);
    const p = provider.providers[0]!;
    assert.equal(p.folderUid, undefined, 'the dashboards provider must not name the folder by uid');
    assert.ok(groups.length > 0);
    for (const g of groups) {
      assert.equal(g.folder, p.folder, `rule group ${String(g.name)} and the dashboards provider name one folder`);
      assert.equal((g as { folderUid?: unknown }).folderUid, undefined);
    }
  });

  it('every rule links its runbook: a heading of docs/grafana.md', () => {
    const slug = (h: string) =>
      h
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N} _-]/gu, '')
        .replace(/ /g, '-');
    const anchors = new Set(
      readFileSync(join(ROOT, 'docs/grafana.md'), 'utf8')
        .split('\n')
        .filter((l) => /^#{1,6} /.test(l))
        .map((l) => slug(l.replace(/^#+ /, ''))),
    );
    for (const r of rules) {
      const url = String(r.annotations.runbook_url ?? '');
      // Baked in: Grafana takes provisioned annotations raw, so `${VAR}` would show literally.
      assert.ok(url.startsWith(`${DEFAULT_DOCS_URL}/grafana.md#`), `${r.uid}: runbook_url ${url}`);
      const m = url.match(/\/grafana\.md#([\w-]+)$/);
      assert.ok(m, `${r.uid}: runbook_url ${url}`);
      assert.ok(anchors.has(m[1]!), `${r.uid}: docs/grafana.md has no heading for #${m[1]}`);
    }
  });

  it('no annotation relies on an environment variable (Grafana up to 12.x takes them raw)', () => {
    for (const r of rules)
      for (const [k, v] of Object.entries(r.annotations))
        assert.doesNotMatch(v, /\$\{\w+\}|\$__env\{/, `${r.uid}: annotation ${k} would show the variable literally`);
  });

  it('every rule explains itself and carries routing labels', () => {
    for (const r of rules) {
      assert.ok(r.annotations.summary && r.annotations.summary.length > 30, `${r.uid}: summary`);
      assert.ok(
        r.annotations.description && /Check:/.test(r.annotations.description) && /Act:/.test(r.annotations.description),
        `${r.uid}: runbook-style description`,
      );
      assert.equal(r.labels.app, APP_LABEL.app);
      assert.ok(['critical', 'warning', 'info'].includes(r.labels.severity!), `${r.uid}: severity`);
      assert.ok(r.labels.signal, `${r.uid}: signal label`);
      assert.ok(r.dashboardUid && typeof r.panelId === 'number', `${r.uid}: links to a dashboard panel`);
      const panels = (
        JSON.parse(readFileSync(join(ROOT, `provisioning/dashboards/${String(r.dashboardUid)}.json`), 'utf8')) as {
          panels: Array<{ id: number }>;
        }
      ).panels;
      assert.ok(
        panels.some((p) => p.id === r.panelId),
        `${r.uid}: panel ${String(r.panelId)} exists in ${String(r.dashboardUid)}`,
      );
      for (const [, ref] of JSON.stringify(r.annotations).matchAll(/\$values\.(\w+)/g)) {
        assert.ok(
          r.data.some((d) => d.refId === ref && d.datasourceUid === '__expr__'),
          `${r.uid}: annotation uses $values.${ref}`,
        );
      }
    }
  });

  it('every data entry validates against Grafana’s alert query schema, every expression model against the expression schema', () => {
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
    const schema = JSON.parse(
      readFileSync(new URL('./fixtures/grafana-jsonschema/expr.jsonschema.json', import.meta.url), 'utf8'),
    ) as Obj;
    ajv.addSchema({ ...schema, $id: 'expr' });
    const alerting = JSON.parse(
      readFileSync(new URL('./fixtures/grafana-jsonschema/alerting.jsonschema.json', import.meta.url), 'utf8'),
    ) as Obj;
    ajv.addSchema({ ...alerting, $id: 'alerting' });
    const query = ajv.getSchema('alerting#/definitions/Query');
    assert.ok(query);
    for (const r of rules)
      for (const d of r.data) assert.ok(query(d), `${r.uid}/${d.refId}: ${JSON.stringify(query.errors)}`);
    assert.equal(query({ refId: 'A', datasourceUID: 'x' }), false, 'a misspelt key is caught');
    const byType: Record<string, string> = { reduce: 'TypeReduce', threshold: 'TypeThreshold', math: 'TypeMath' };
    let checked = 0;
    for (const r of rules) {
      for (const d of r.data) {
        if (d.datasourceUid !== '__expr__') continue;
        const v = ajv.getSchema(`expr#/definitions/${byType[String(d.model.type)]}`);
        assert.ok(v, `${r.uid}/${d.refId}: no schema for expression type ${String(d.model.type)}`);
        assert.ok(v(d.model), `${r.uid}/${d.refId}: ${JSON.stringify(v.errors)}`);
        checked++;
      }
    }
    assert.ok(checked >= rules.length * 2);
  });

  it('the contact point reads its URL from the environment, and the policy routes anylat alerts to it', () => {
    assert.equal(contactPoints.length, 1);
    const cp = contactPoints[0]!;
    assert.equal(cp.name, CONTACT_POINT);
    const receiver = (cp.receivers as Obj[])[0]!;
    assert.equal((receiver.settings as Obj).url, `\${${WEBHOOK_ENV}}`);
    assert.equal(policies.length, 1);
    const receivers = new Set<string>();
    const walk = (route: Obj): void => {
      receivers.add(String(route.receiver));
      for (const c of (route.routes as Obj[] | undefined) ?? []) walk(c);
    };
    walk(policies[0]!);
    assert.deepEqual([...receivers], [CONTACT_POINT]);
    const matchers = ((policies[0]!.routes as Obj[])[1]!.object_matchers as string[][]).map((m) => m.join(''));
    assert.deepEqual(matchers, [`app=${APP_LABEL.app}`]);
  });
});

describe('alert rules on a real InfluxDB', () => {
  let influx: InfluxServer;
  let scenario: Scenario;
  const q = (s: string) => influx.query(s);

  before(async () => {
    influx = await startInfluxDB();
  });
  after(async () => {
    await influx?.stop();
  });

  it('with no data at all, every rule is NoData and maps to its noDataState', async () => {
    for (const r of rules) {
      const e = await evaluateRule(r, Date.now(), q);
      assert.equal(e.noData, true, `${r.title} on an empty database`);
      assert.equal(noDataOutcome(r), 'Normal', `${r.title}: no data must not page anyone`);
    }
  });

  describe('with the scenario', () => {
    const results = new Map<string, Evaluation>();
    before(async () => {
      scenario = buildScenario();
      for (let i = 0; i < scenario.lines.length; i += 5000) await influx.write(scenario.lines.slice(i, i + 5000));
      // Evaluate at the scenario's own "now": every rule query has explicit time bounds, so the
      // result cannot depend on a minute boundary passing while the test runs.
      for (const r of rules) results.set(r.uid, await evaluateRule(r, scenario.now, q));
    });

    const firing = (uid: string) =>
      results
        .get(uid)!
        .instances.filter((i) => i.state === 'Alerting')
        .map((i) => i.labels);
    const states = (uid: string) =>
      results
        .get(uid)!
        .instances.map((i) => `${JSON.stringify(i.labels)}=${i.state}`)
        .sort();

    it('anycast slower than its baseline: ap-south-1/shop on each primary metric it loses on', () => {
      // ap-1 loses 2 ms on udp/rtt and 5 ms on http/ttfb with every CI below 0; eu-west-1 for both
      // services is evaluated and normal; us-west-2 went silent and has no series in the window.
      assert.deepEqual(states('anylat-anycast-slower'), [
        '{"agent_region":"ap-south-1","metric":"rtt","protocol":"udp","service":"shop"}=Alerting',
        '{"agent_region":"ap-south-1","metric":"ttfb","protocol":"http","service":"shop"}=Alerting',
        '{"agent_region":"eu-west-1","metric":"rtt","protocol":"udp","service":"api"}=Normal',
        '{"agent_region":"eu-west-1","metric":"rtt","protocol":"udp","service":"shop"}=Normal',
        '{"agent_region":"eu-west-1","metric":"ttfb","protocol":"http","service":"shop"}=Normal',
      ]);
      const median = results
        .get('anylat-anycast-slower')!
        .numbers.C!.find((n) => n.labels.agent_region === 'ap-south-1' && n.labels.protocol === 'udp')!;
      assert.equal(median.value, -2);
    });

    it(`loss above ${LOSS_ALERT_PCT}%: the one lossy path only`, () => {
      assert.deepEqual(firing('anylat-path-loss'), [
        { agent: LOSSY.agent, agent_region: 'ap-south-1', service: 'shop', endpoint: LOSSY.endpoint, protocol: 'udp' },
      ]);
      const loss = results
        .get('anylat-path-loss')!
        .numbers.B!.find(
          (n) => n.labels.endpoint === LOSSY.endpoint && n.labels.agent === LOSSY.agent && n.labels.protocol === 'udp',
        )!;
      assert.ok(Math.abs(loss.value! - (100 * LOSSY.lostPerRound) / SAMPLES) < 1e-9);
      // every other path was evaluated: 3 live agents × 3 endpoints × 4 protocols (udp rtt, http total,
      // tls handshake, icmp rtt; tcp has only a connect here, no echo), plus eu-1's api paths
      assert.equal(results.get('anylat-path-loss')!.instances.length, 3 * 3 * 4 + 2);
    });

    it('agent silent: the agent that stopped 20 minutes ago only', () => {
      assert.deepEqual(firing('anylat-agent-silent'), [{ agent: 'us-1', agent_region: 'us-west-2' }]);
      assert.equal(results.get('anylat-agent-silent')!.instances.length, 4);
    });

    it('anycast site changed: the agent whose site changed 4 minutes ago, not the one 40 minutes ago', () => {
      assert.deepEqual(firing('anylat-site-changed'), [
        { agent: SITE_CHANGE.agent, agent_region: 'eu-west-1', service: 'shop' },
      ]);
    });

    it('new dead letters: the agent that just got them, not the one holding old ones', () => {
      assert.deepEqual(firing('anylat-dead-letters'), [{ agent: DEAD_LETTERS.agent, agent_region: 'ap-south-1' }]);
      const added = results.get('anylat-dead-letters')!.numbers.B!;
      assert.equal(added.find((n) => n.labels.agent === DEAD_LETTERS.agent)!.value, DEAD_LETTERS.count);
      assert.equal(
        added.find((n) => n.labels.agent === OLD_DEAD_LETTERS.agent)!.value,
        0,
        `${OLD_DEAD_LETTERS.agent} holds ${OLD_DEAD_LETTERS.count} old dead letters`,
      );
      assert.equal(added.length, 3, 'the silent agent has no heartbeat in the window');
    });

    it('outbox growing: the agent whose outbox never drained and grew', () => {
      assert.deepEqual(firing('anylat-outbox-growing'), [{ agent: OUTBOX.agent, agent_region: 'eu-west-1' }]);
      const growth = results.get('anylat-outbox-growing')!.numbers.D!.find((n) => n.labels.agent === OUTBOX.agent)!;
      // the oldest heartbeat inside [now − 15 min, now] is k minutes before the newest one
      const k = Math.floor((15 * 60_000 - (scenario.now - scenario.newest)) / 60_000);
      assert.equal(growth.value, k * OUTBOX.perMinute, 'grew 10 rows a minute over the 15-minute window');
    });

    it('the queries sent are the provisioned ones with only $timeFilter filled in', () => {
      for (const r of rules) {
        const e = results.get((r as unknown as { uid: string }).uid)!;
        for (const d of r.data.filter((x) => x.datasourceUid === DATASOURCE_UID)) {
          const sent = e.sent[d.refId]!;
          const timeFilter = `time >= ${scenario.now - d.relativeTimeRange.from * 1000}ms and time <= ${scenario.now}ms`;
          assert.equal(sent, String(d.model.query).replace('$timeFilter', timeFilter));
        }
      }
    });
  });
});
