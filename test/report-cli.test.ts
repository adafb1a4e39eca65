// `anylat report` as a user runs it: a store with known rounds, the table and the JSON it prints,
// filters, the window, --config, and exit 2 with a clear message for bad arguments.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openStore, type ReportRow } from '../agent/store/index.ts';
import { runAnylat } from './support/net.ts';
import { benefitRow, makeRound } from './support/rounds.ts';

let dir: string;
let storePath: string;
const MIN = 60_000;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'anylat-report-'));
  storePath = join(dir, 'anylat.db');
  const store = openStore(storePath, { retention: { maxAgeMs: 30 * 86_400_000, maxRows: 10_000 } });
  const now = Date.now();
  // eu-1 / web: five rounds in the last hour, one two hours ago.
  const saved = [10, 20, 30, 40, 50];
  const wins = [1, 1, 0.5, 1, 0.75];
  saved.forEach((s, i) =>
    store.saveRound(
      makeRound({
        agent: 'eu-1',
        region: 'eu-west-1',
        service: 'web',
        startedAt: now - (50 - i * 10) * MIN,
        benefit: [
          benefitRow(s, {
            win_rate: wins[i]!,
            baseline: i === 2 ? 'eu-west-1' : 'us-east-1',
            ci_low_ms: s - 2,
            ci_high_ms: s + 3,
          }),
          benefitRow(35, {
            protocol: 'tcp',
            metric: 'connect',
            scope: 'edge',
            anycast_p50_ms: 1,
            baseline_p50_ms: 36,
            saved_pct: (35 / 36) * 100,
            ci_low_ms: undefined,
            ci_high_ms: undefined,
          }),
        ],
      }),
    ),
  );
  store.saveRound(
    makeRound({
      agent: 'eu-1',
      region: 'eu-west-1',
      service: 'web',
      startedAt: now - 120 * MIN,
      benefit: [benefitRow(1000)],
    }),
  );
  // us-1 / web: two rounds; eu-1 / api: one.
  for (const [i, s] of [3, 5].entries()) {
    store.saveRound(
      makeRound({
        agent: 'us-1',
        region: 'us-east-1',
        service: 'web',
        startedAt: now - (30 - i) * MIN,
        benefit: [benefitRow(s, { baseline: 'us-west-2' })],
      }),
    );
  }
  store.saveRound(
    makeRound({
      agent: 'eu-1',
      region: 'eu-west-1',
      service: 'api',
      startedAt: now - 5 * MIN,
      benefit: [benefitRow(7)],
    }),
  );
  store.close();
});

after(() => rmSync(dir, { recursive: true, force: true }));

async function json(args: string[]): Promise<{ store: string; since: string; until: string; rows: ReportRow[] }> {
  const res = await runAnylat(['report', '--json', ...args]);
  assert.equal(res.code, 0, res.stderr);
  return JSON.parse(res.stdout) as { store: string; since: string; until: string; rows: ReportRow[] };
}

test("--json: one row per agent, service, protocol, metric and scope, with the window's medians", async () => {
  const out = await json(['--store', storePath, '--since', '1h']);
  assert.equal(out.store, storePath);
  assert.equal(Date.parse(out.until) - Date.parse(out.since), 3_600_000);
  assert.deepEqual(
    out.rows.map((r) => [r.service, r.agent, r.scope, `${r.protocol}/${r.metric}`, r.rounds]),
    [
      ['api', 'eu-1', 'end_to_end', 'udp/rtt', 1],
      ['web', 'eu-1', 'end_to_end', 'udp/rtt', 5],
      ['web', 'eu-1', 'edge', 'tcp/connect', 5],
      ['web', 'us-1', 'end_to_end', 'udp/rtt', 2],
    ],
  );
  const web = out.rows[1]!;
  assert.equal(web.agent_region, 'eu-west-1');
  assert.equal(web.saved_ms, 30, 'median of 10, 20, 30, 40, 50; the 2-hour-old 1000 is outside the window');
  assert.equal(web.anycast_p50_ms, 10);
  assert.equal(web.baseline_p50_ms, 40);
  assert.equal(web.saved_pct, 75, 'median of 50, 66.7, 75, 80, 83.3');
  assert.equal(web.ci_low_ms, 28);
  assert.equal(web.ci_high_ms, 33);
  assert.equal(web.win_rate, 0.85, 'mean of 1, 1, 0.5, 1, 0.75');
  assert.equal(web.pairs, 100);
  assert.deepEqual(web.baselines, { 'us-east-1': 4, 'eu-west-1': 1 });
  const edge = out.rows[2]!;
  assert.equal(edge.saved_ms, 35);
  assert.equal(edge.ci_low_ms, undefined, 'no round had a CI: none is invented');
  assert.equal(out.rows[3]!.saved_ms, 4, 'median of 3 and 5');
});

test('the window and the filters', async () => {
  const wide = await json(['--store', storePath, '--since', '3h', '--service', 'web', '--agent', 'eu-1']);
  assert.deepEqual(
    wide.rows.map((r) => [r.protocol, r.rounds, r.saved_ms]),
    [
      ['udp', 6, 35],
      ['tcp', 5, 35],
    ],
  );
  const us = await json(['--store', storePath, '--service', 'web', '--agent', 'us-1']);
  assert.deepEqual(
    us.rows.map((r) => [r.agent, r.agent_region, r.baselines]),
    [['us-1', 'us-east-1', { 'us-west-2': 2 }]],
  );
  const none = await runAnylat(['report', '--store', storePath, '--service', 'nope']);
  assert.equal(none.code, 0);
  assert.equal(none.stdout, `no rounds with benefit rows in ${storePath} in the last 1h (service nope)\n`);
});

test('the table shows the same numbers a user can read', async () => {
  const res = await runAnylat(['report', '--store', storePath, '--since', '1h']);
  assert.equal(res.code, 0, res.stderr);
  const lines = res.stdout.trimEnd().split('\n');
  assert.equal(
    lines[0],
    `benefit over the last 1h in ${storePath}: median of round medians, positive = anycast faster`,
  );
  const cells = (line: string) => line.trim().split(/\s{2,}/);
  assert.deepEqual(cells(lines[2]!), [
    'SERVICE',
    'AGENT',
    'SCOPE',
    'PROBE',
    'ROUNDS',
    'ANYCAST P50',
    'BASELINE P50',
    'BASELINE',
    'SAVED',
    'CI (PER ROUND)',
    'SAVED %',
    'WIN RATE',
  ]);
  assert.deepEqual(cells(lines[4]!), [
    'web',
    'eu-1 (eu-west-1)',
    'end_to_end',
    'udp/rtt',
    '5',
    '10.0 ms',
    '40.0 ms',
    'us-east-1×4 eu-west-1×1',
    '30.0 ms',
    '[28.0, 33.0] ms',
    '75.0%',
    '85%',
  ]);
  assert.deepEqual(cells(lines[5]!), [
    'web',
    'eu-1 (eu-west-1)',
    'edge',
    'tcp/connect',
    '5',
    '1.00 ms',
    '36.0 ms',
    'us-east-1',
    '35.0 ms',
    '-',
    '97.2%',
    '100%',
  ]);
  assert.deepEqual(cells(lines[6]!), [
    'web',
    'us-1 (us-east-1)',
    'end_to_end',
    'udp/rtt',
    '2',
    '10.0 ms',
    '14.0 ms',
    'us-west-2',
    '4.00 ms',
    '[3.0, 5.0] ms',
    '28.2%',
    '100%',
  ]);
  assert.equal(lines.length, 7);
});

test('--config reads store.path from the config file', async () => {
  const cfg = join(dir, 'anylat.yaml');
  writeFileSync(
    cfg,
    [
      'agent:',
      '  region: eu-west-1',
      'services:',
      '  - name: api',
      '    anycast: 192.0.2.10',
      '    unicast:',
      '      us-east-1: 203.0.113.10',
      '    probes:',
      '      udp:',
      'store:',
      '  path: anylat.db',
      '',
    ].join('\n'),
  );
  const viaConfig = await json(['--config', cfg, '--since', '1h']);
  const direct = await json(['--store', storePath, '--since', '1h']);
  assert.deepEqual(viaConfig.rows, direct.rows);
  assert.equal(viaConfig.store, storePath, 'a relative store.path is resolved next to the config file');
});

test('bad arguments exit 2 and say what is wrong', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--bogus'], /report: unknown option --bogus/],
    [['--store', storePath, '--since', 'soon'], /--since: expected a duration like 50ms, 2s, 5m, 1h or 7d, got "soon"/],
    [['--store', storePath, '--since', '0s'], /--since: expected a window longer than 0/],
    [['--store', join(dir, 'missing.db')], /no store at .*missing\.db: check --store/],
    [['--store', storePath, '--config', 'x.yaml'], /give --store or --config, not both/],
    [['--store', storePath, 'extra'], /report: .*extra/],
    [['--config', join(dir, 'none.yaml')], /none\.yaml: cannot read the config file/],
  ];
  for (const [args, message] of cases) {
    const res = await runAnylat(['report', ...args]);
    assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
    assert.match(res.stderr, message, args.join(' '));
    assert.equal(res.stdout, '');
  }
});

test('--help prints the usage and exits 0', async () => {
  const res = await runAnylat(['report', '--help']);
  assert.equal(res.code, 0);
  assert.match(res.stdout, /^usage: anylat report \[--store PATH \| --config FILE\]/);
});
