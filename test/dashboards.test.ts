// The generated dashboards: committed JSON equals what the code generates (golden), every
// dashboard and panel validates against Grafana's JSON schemas, and the project's own rules hold
// (datasource uid, $timeFilter, GROUP BY time for time series, units, unique ids, stable uids).
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { UIDS } from '../dashboard/common.ts';
import { ROOT, renderAll } from '../dashboard/generate.ts';
import { DATASOURCE_UID, from, ident, literal, showTagValues } from '../dashboard/influxql.ts';

const SCHEMA_DIR = fileURLToPath(new URL('./fixtures/grafana-jsonschema/', import.meta.url));

interface Target {
  refId?: string;
  datasource?: { type?: string; uid?: string };
  query?: string;
  rawQuery?: boolean;
  resultFormat?: string;
}
interface Panel {
  id?: number;
  type: string;
  title?: string;
  description?: string;
  repeat?: string;
  datasource?: { uid?: string };
  targets?: Target[];
  options?: unknown;
  fieldConfig?: { defaults?: { unit?: string; custom?: unknown }; overrides?: unknown[] };
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query?: string;
  multi?: boolean;
  includeAll?: boolean;
  datasource?: { uid?: string };
}
interface DashboardJson {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

const generated = renderAll();
const dashboardPaths = [...generated.keys()].filter(
  (p) => p.startsWith('provisioning/dashboards/') && p.endsWith('.json'),
);
const dashboards = dashboardPaths.map((p) => ({ path: p, json: JSON.parse(generated.get(p)!) as DashboardJson }));

function allPanels(d: DashboardJson): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Panel type → schema file for its options and fieldConfig.custom. */
const PANEL_SCHEMAS: Record<string, string> = {
  timeseries: 'timeseries',
  stat: 'stat',
  table: 'table',
  geomap: 'geomap',
  'state-timeline': 'statetimeline',
};

function loadSchema(name: string): Record<string, unknown> & { definitions: Record<string, unknown> } {
  return JSON.parse(readFileSync(join(SCHEMA_DIR, `${name}.jsonschema.json`), 'utf8')) as Record<string, unknown> & {
    definitions: Record<string, unknown>;
  };
}

function makeAjv(): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const dash = loadSchema('dashboard');
  // The schema README's two known false positives: ordinary overrides such as
  // `"options": "p95"` and `"value": 25` are legal but typed `object` upstream.
  (dash.definitions.MatcherConfig as { properties: Record<string, unknown> }).properties.options = {};
  (dash.definitions.DynamicConfigValue as { properties: Record<string, unknown> }).properties.value = {};
  // And a third: FieldConfig.links (a field's data links) is typed as the dashboard's own links
  // (DashboardLink), while Grafana reads a DataLink there: title, url, targetBlank.
  (dash.definitions.FieldConfig as { properties: Record<string, unknown> }).properties.links = {
    type: 'array',
    items: {
      type: 'object',
      required: ['title', 'url'],
      additionalProperties: false,
      properties: { title: { type: 'string' }, url: { type: 'string' }, targetBlank: { type: 'boolean' } },
    },
  };
  ajv.addSchema({ ...dash, $id: 'dashboard' });
  for (const file of new Set(Object.values(PANEL_SCHEMAS))) ajv.addSchema({ ...loadSchema(file), $id: file });
  return ajv;
}

function explain(v: ValidateFunction): string {
  return (v.errors ?? []).map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`).join('\n');
}

describe('generated Grafana files', () => {
  it('are committed exactly as the code generates them (run `npm run dashboards` after a change)', () => {
    for (const [path, text] of generated) {
      const committed = readFileSync(join(ROOT, path), 'utf8');
      assert.equal(committed, text, `${path} differs from the generated version`);
    }
  });

  it('leave no stale generated files behind', () => {
    const onDisk = [
      ...readdirSync(join(ROOT, 'provisioning/dashboards'))
        .filter((f) => f.endsWith('.json'))
        .map((f) => `provisioning/dashboards/${f}`),
      ...readdirSync(join(ROOT, 'provisioning/alerting')).map((f) => `provisioning/alerting/${f}`),
    ].sort();
    assert.deepEqual(onDisk, [...generated.keys()].sort());
  });

  it('keep their stable uids, one file per uid', () => {
    assert.deepEqual(dashboards.map((d) => d.json.uid).sort(), Object.values(UIDS).sort());
    for (const d of dashboards) assert.equal(d.path, `provisioning/dashboards/${d.json.uid}.json`);
  });
});

describe('dashboards against Grafana JSON schemas', () => {
  const ajv = makeAjv();
  for (const { json } of dashboards) {
    it(`${json.uid}: the dashboard model validates`, () => {
      const v = ajv.getSchema('dashboard#/definitions/Dashboard');
      assert.ok(v);
      assert.ok(v(json), explain(v));
    });

    it(`${json.uid}: every panel's options and fieldConfig.custom validate against its panel schema`, () => {
      const checked: string[] = [];
      for (const p of allPanels(json)) {
        if (p.type === 'row') continue;
        const file = PANEL_SCHEMAS[p.type];
        assert.ok(file, `panel ${p.id} "${p.title}": no schema known for type ${p.type}`);
        const options = ajv.getSchema(`${file}#/definitions/Options`);
        assert.ok(options);
        assert.ok(options(p.options), `panel ${p.id} "${p.title}" options:\n${explain(options)}`);
        const custom = ajv.getSchema(`${file}#/definitions/FieldConfig`);
        if (custom) {
          assert.ok(
            custom(p.fieldConfig?.defaults?.custom ?? {}),
            `panel ${p.id} "${p.title}" fieldConfig.custom:\n${explain(custom)}`,
          );
        }
        checked.push(p.type);
      }
      assert.ok(checked.length > 0);
    });
  }

  it('the schema check is not vacuous: a panel with a wrong option type fails', () => {
    const bad = ajv.getSchema('timeseries#/definitions/Options');
    assert.ok(bad);
    assert.equal(bad({ legend: { showLegend: 'yes' }, tooltip: { mode: 'multi' } }), false);
  });
});

const TIME_SERIES_PANELS = new Set(['timeseries', 'state-timeline']);
const BUILT_INS = new Set(['timeFilter', '__interval', '__interval_ms', 'interval', '__from', '__to']);
/** A time condition other than $timeFilter: a window at the end of the range, or the range shifted back. */
const EXPLICIT_WINDOW = /time >= \$\{__(from|to)\}ms - \d+[mhd] AND time <= \$\{__to\}ms( - \d+[mhd])?/;

describe('project lint of the dashboards', () => {
  for (const { json } of dashboards) {
    const panels = allPanels(json);
    const variables = new Map(json.templating.list.map((v) => [v.name, v]));

    it(`${json.uid}: panel ids are unique`, () => {
      const ids = panels.map((p) => p.id);
      assert.ok(
        ids.every((id) => typeof id === 'number'),
        'every panel has an id',
      );
      assert.equal(new Set(ids).size, ids.length, `duplicate ids in ${JSON.stringify(ids)}`);
    });

    it(`${json.uid}: every panel has a unit, a title and a description`, () => {
      for (const p of panels) {
        if (p.type === 'row') continue;
        assert.ok(p.fieldConfig?.defaults?.unit, `panel ${p.id} "${p.title}" has no unit`);
        assert.ok(p.title && p.title.length > 3, `panel ${p.id} has no title`);
        assert.ok(
          p.description && p.description.length > 60,
          `panel ${p.id} "${p.title}" needs a description a newcomer understands`,
        );
      }
    });

    it(`${json.uid}: every target is raw InfluxQL on ${DATASOURCE_UID} with $timeFilter, GROUP BY time( for time series`, () => {
      let targets = 0;
      for (const p of panels) {
        if (p.type === 'row') continue;
        assert.equal(p.datasource?.uid, DATASOURCE_UID, `panel ${p.id} datasource`);
        assert.ok(p.targets && p.targets.length > 0, `panel ${p.id} "${p.title}" has no query`);
        for (const t of p.targets) {
          targets++;
          assert.equal(t.datasource?.uid, DATASOURCE_UID, `panel ${p.id} target ${t.refId}`);
          assert.equal(t.rawQuery, true);
          const query = t.query ?? '';
          assert.ok(
            query.includes('$timeFilter') || EXPLICIT_WINDOW.test(query),
            `panel ${p.id} "${p.title}": no $timeFilter in ${query}`,
          );
          if (TIME_SERIES_PANELS.has(p.type)) {
            assert.match(
              query,
              /GROUP BY time\(\$__interval\)/,
              `panel ${p.id} "${p.title}" is a time series without GROUP BY time($__interval)`,
            );
            assert.equal(t.resultFormat, 'time_series');
          } else {
            assert.doesNotMatch(query, /GROUP BY time\(/, `panel ${p.id} "${p.title}" reduces to one value per series`);
          }
        }
      }
      assert.ok(targets > 0);
    });

    it(`${json.uid}: every panel fits the 24-column grid and none overlaps another`, () => {
      const boxes = panels.map((p) => ({
        id: p.id,
        ...((p as { gridPos?: { x: number; y: number; w: number; h: number } }).gridPos ?? { x: 0, y: 0, w: 0, h: 0 }),
      }));
      for (const b of boxes)
        assert.ok(b.x >= 0 && b.w > 0 && b.x + b.w <= 24, `panel ${b.id}: x ${b.x} + w ${b.w} is wider than the grid`);
      for (const [i, a] of boxes.entries()) {
        for (const b of boxes.slice(i + 1)) {
          const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
          assert.ok(!overlap, `panels ${a.id} and ${b.id} overlap`);
        }
      }
    });

    it(`${json.uid}: every $variable a query uses exists, and repeats use multi-value variables`, () => {
      const queries = [
        ...panels.flatMap((p) => (p.targets ?? []).map((t) => t.query ?? '')),
        ...json.templating.list.filter((v) => v.type === 'query').map((v) => v.query ?? ''),
      ];
      for (const q of queries) {
        for (const [, name] of q.matchAll(/\$\{?(\w+)/g)) {
          assert.ok(BUILT_INS.has(name!) || variables.has(name!), `unknown variable $${name} in ${q}`);
        }
      }
      for (const p of panels) {
        if (p.repeat)
          assert.ok(
            variables.get(p.repeat)?.multi,
            `panel ${p.id} repeats over ${p.repeat}, which must be multi-value`,
          );
      }
      for (const title of panels.map((p) => p.title ?? '')) {
        for (const [, name] of title.matchAll(/\$(\w+)/g))
          assert.ok(variables.has(name!), `title uses unknown $${name}`);
      }
    });

    it(`${json.uid}: variables come from SHOW TAG VALUES on ${DATASOURCE_UID} over the time range (or a fixed list), defined before use`, () => {
      json.templating.list.forEach((v, i) => {
        if (v.type === 'custom') return;
        assert.equal(v.type, 'query');
        assert.equal(v.datasource?.uid, DATASOURCE_UID);
        assert.match(v.query ?? '', /^SHOW TAG VALUES FROM "\w+"(, "\w+")* WITH KEY = "\w+" WHERE .*\$timeFilter$/);
        assert.equal((v as { refresh?: number }).refresh, 2, `variable ${v.name} re-runs when the time range changes`);
        for (const [, name] of (v.query ?? '').matchAll(/\$\{?(\w+)/g)) {
          if (BUILT_INS.has(name!)) continue;
          const at = json.templating.list.findIndex((x) => x.name === name);
          assert.ok(at >= 0 && at < i, `variable ${v.name} uses $${name}, which must come before it`);
        }
      });
    });
  }
});

describe('the InfluxQL builder', () => {
  it('quotes identifiers and literals, escapes fixed regexes, always adds $timeFilter', () => {
    assert.equal(ident('to'), '"to"');
    assert.equal(ident('a"b\\c'), '"a\\"b\\\\c"');
    assert.equal(literal("it's"), "'it\\'s'");
    const q = from('latency')
      .select((f) => [f.mean('p50_ms').as('p50 ms'), f.expr`100 * ${f.sum('flagged')} / ${f.sum('received')}`])
      .where((w) => [
        w.in('endpoint', ['eu.west/1', 'a|b']),
        w.any(w.is('kind', 'anycast'), w.v('protocol', 'protocol')),
      ])
      .groupByTime('$__interval')
      .groupBy('endpoint')
      .fill('none')
      .build();
    assert.equal(
      q,
      'SELECT mean("p50_ms") AS "p50 ms", 100 * sum("flagged") / sum("received") FROM "latency" WHERE "endpoint" =~ /^(eu\\.west\\/1|a\\|b)$/ AND ("kind" = \'anycast\' OR "protocol" =~ /^$protocol$/) AND $timeFilter GROUP BY time($__interval), "endpoint" fill(none)',
    );
    assert.equal(showTagValues('event', 'type'), 'SHOW TAG VALUES FROM "event" WITH KEY = "type" WHERE $timeFilter');
    assert.throws(() => from('agent').build(), /selects nothing/);
    assert.throws(
      () =>
        from('agent')
          .select((f) => [f.last('version')])
          .fill(0)
          .build(),
      /fill\(\) needs groupByTime/,
    );
  });
});

describe('hand-written provisioning files', () => {
  it('the datasource is InfluxQL with the fixed uid, POST, and a Token header from the environment', () => {
    const ds = parse(readFileSync(join(ROOT, 'provisioning/datasources/influxdb.yaml'), 'utf8')) as {
      apiVersion: number;
      datasources: Array<
        Record<string, unknown> & { jsonData: Record<string, unknown>; secureJsonData: Record<string, unknown> }
      >;
    };
    assert.equal(ds.apiVersion, 1);
    assert.equal(ds.datasources.length, 1);
    const d = ds.datasources[0]!;
    assert.equal(d.uid, DATASOURCE_UID);
    assert.equal(d.type, 'influxdb');
    assert.equal(d.access, 'proxy');
    assert.match(String(d.url), /^\$\{\w+\}$/);
    assert.match(String(d.jsonData.dbName), /^\$\{\w+\}$/);
    assert.equal(d.jsonData.version, 'InfluxQL');
    assert.equal(d.jsonData.httpMode, 'POST');
    assert.equal(d.jsonData.httpHeaderName1, 'Authorization');
    assert.match(String(d.secureJsonData.httpHeaderValue1), /^Token \$\{\w+\}$/);
    for (const k of Object.keys(d)) {
      assert.ok(
        [
          'name',
          'type',
          'uid',
          'access',
          'url',
          'database',
          'isDefault',
          'editable',
          'orgId',
          'version',
          'jsonData',
          'secureJsonData',
        ].includes(k),
        `unknown datasource key ${k}`,
      );
    }
  });

  it('the dashboard provider reads the generated JSON into the anylat folder', () => {
    const prov = parse(readFileSync(join(ROOT, 'provisioning/dashboards/anylat.yaml'), 'utf8')) as {
      apiVersion: number;
      providers: Array<{ name: string; type: string; folder: string; options: { path: string } }>;
    };
    assert.equal(prov.apiVersion, 1);
    const p = prov.providers[0]!;
    assert.equal(p.type, 'file');
    assert.equal(p.folder, 'anylat');
    assert.equal(p.options.path, '/etc/grafana/provisioning/dashboards');
  });
});
