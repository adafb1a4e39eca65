// A metric whose every sample was flagged for timing has no pair, so no benefit row: `anylat
// report` and the page's benefit API say so ("all 10 samples flagged for timing") instead of
// showing nothing or "no rounds". The rounds are stored as the round engine writes such a one:
// paths with every received sample flagged and no statistics, and no benefit row for the metric.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { PathResult } from '../agent/core/model.ts';
import { openStore, timingNote } from '../agent/store/index.ts';
import { startWebServer, type WebServer } from '../agent/web/index.ts';
import type { BenefitResponse, OverviewResponse } from '../agent/web/queries.ts';
import { runAnylat } from './support/net.ts';
import { benefitRow, makeRound, udpPath } from './support/rounds.ts';

const MIN = 60_000;
let dir: string;
let storePath: string;
let server: WebServer;

/** An http path whose `received` samples of `metric` came back; `flagged` of them while the loop lagged. */
function httpPath(endpoint: string, metric: 'ttfb' | 'total', received: number, flagged: number): PathResult {
  const p = udpPath(endpoint, 20, { protocol: 'http', metric, sent: received, received, flagged });
  if (flagged === received) {
    for (const k of ['min_ms', 'p50_ms', 'p90_ms', 'p99_ms', 'max_ms', 'mean_ms', 'stddev_ms', 'jitter_ms'] as const)
      delete p[k];
  }
  return p;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'anylat-gaps-'));
  storePath = join(dir, 'anylat.db');
  const store = openStore(storePath, { retention: { maxAgeMs: 86_400_000, maxRows: 10_000 }, outbox: false });
  const now = Date.now();
  for (let i = 0; i < 2; i++) {
    // ap-1: ttfb paired fine, total lost every sample to the flags (5 per path per round).
    store.saveRound(
      makeRound({
        agent: 'ap-1',
        region: 'ap-south',
        service: 'web',
        startedAt: now - (20 - i) * MIN,
        paths: [
          httpPath('anycast', 'ttfb', 5, 0),
          httpPath('u1', 'ttfb', 5, 0),
          httpPath('anycast', 'total', 5, 5),
          httpPath('u1', 'total', 5, 5),
        ],
        benefit: [benefitRow(3, { protocol: 'http', metric: 'ttfb', baseline: 'u1' })],
      }),
    );
    // eu-1: total's anycast samples all flagged, its baseline's not: still no pair.
    store.saveRound(
      makeRound({
        agent: 'eu-1',
        region: 'eu-west',
        service: 'web',
        startedAt: now - (18 - i) * MIN,
        paths: [
          httpPath('anycast', 'ttfb', 5, 0),
          httpPath('u1', 'ttfb', 5, 0),
          httpPath('anycast', 'total', 5, 5),
          httpPath('u1', 'total', 5, 1),
        ],
        benefit: [benefitRow(2, { protocol: 'http', metric: 'ttfb', baseline: 'u1' })],
      }),
    );
  }
  // sa-1: ttfb as well as total lost every sample to the flags.
  store.saveRound(
    makeRound({
      agent: 'sa-1',
      region: 'sa-east',
      service: 'web',
      startedAt: now - 12 * MIN,
      paths: [
        httpPath('anycast', 'ttfb', 5, 5),
        httpPath('u1', 'ttfb', 5, 5),
        httpPath('anycast', 'total', 5, 5),
        httpPath('u1', 'total', 5, 5),
      ],
      benefit: [],
    }),
  );
  // us-1: one round that measured only total, every sample flagged.
  store.saveRound(
    makeRound({
      agent: 'us-1',
      region: 'us-east',
      service: 'web',
      startedAt: now - 10 * MIN,
      paths: [httpPath('anycast', 'total', 5, 5), httpPath('u1', 'total', 5, 5)],
      benefit: [],
    }),
  );
  store.close();
  server = await startWebServer({ storePath, listen: '127.0.0.1:0', log: () => {} });
});

after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('timingNote: all flagged, one side all flagged, some flagged, none', () => {
  assert.equal(
    timingNote({ anycast: { received: 5, flagged: 5 }, unicast: { received: 5, flagged: 5 } }),
    'all 10 samples flagged for timing',
  );
  assert.equal(
    timingNote({ anycast: { received: 10, flagged: 10 }, unicast: { received: 10, flagged: 2 } }),
    'all 10 anycast samples flagged for timing',
  );
  assert.equal(
    timingNote({ anycast: { received: 10, flagged: 3 }, unicast: { received: 10, flagged: 10 } }),
    'all 10 unicast samples flagged for timing',
  );
  assert.equal(
    timingNote({ anycast: { received: 10, flagged: 3 }, unicast: { received: 10, flagged: 4 } }),
    '7 of 20 samples flagged for timing, no pair left',
  );
  assert.equal(timingNote({ anycast: { received: 10, flagged: 0 }, unicast: { received: 0, flagged: 0 } }), undefined);
});

test('report: the metric without a row is listed with why, under the table and in the JSON', async () => {
  const text = await runAnylat(['report', '--store', storePath, '--since', '1h']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /http\/ttfb/);
  assert.ok(
    text.stdout.endsWith(
      '\nwithout a row (no pair of samples was left):\n' +
        '  ap-1  web  http/total: all 20 samples flagged for timing (2 rounds)\n' +
        '  eu-1  web  http/total: all 10 anycast samples flagged for timing (2 rounds)\n' +
        '  sa-1  web  http/ttfb: all 10 samples flagged for timing (1 round)\n' +
        '  sa-1  web  http/total: all 10 samples flagged for timing (1 round)\n' +
        '  us-1  web  http/total: all 10 samples flagged for timing (1 round)\n',
    ),
    text.stdout,
  );
  const json = await runAnylat(['report', '--store', storePath, '--since', '1h', '--json']);
  const out = JSON.parse(json.stdout) as {
    timing_gaps: Array<{ agent: string; metric: string; note: string; anycast: { received: number; flagged: number } }>;
  };
  assert.deepEqual(
    out.timing_gaps.map((g) => [g.agent, g.metric, g.note, g.anycast.flagged]),
    [
      ['ap-1', 'total', 'all 20 samples flagged for timing', 10],
      ['eu-1', 'total', 'all 10 anycast samples flagged for timing', 10],
      ['sa-1', 'ttfb', 'all 10 samples flagged for timing', 5],
      ['sa-1', 'total', 'all 10 samples flagged for timing', 5],
      ['us-1', 'total', 'all 10 samples flagged for timing', 5],
    ],
  );
  // A window that holds only such a metric: no table, and no "no rounds" either.
  const only = await runAnylat(['report', '--store', storePath, '--since', '1h', '--agent', 'us-1']);
  assert.equal(only.code, 0, only.stderr);
  assert.equal(
    only.stdout,
    `no benefit rows in ${storePath} in the last 1h (agent us-1): no pair of samples was left\n  us-1  web  http/total: all 10 samples flagged for timing (1 round)\n`,
  );
});

test('page API: a region without a headline says its samples were flagged, one that has one says nothing', async () => {
  const res = await fetch(new URL('/api/benefit?metric=http/total', server.url));
  assert.equal(res.status, 200);
  const body = (await res.json()) as BenefitResponse;
  assert.deepEqual(
    body.regions.map((r) => [r.agent, r.headline, r.note]),
    [
      ['ap-1', null, 'all 20 samples flagged for timing'],
      ['eu-1', null, 'all 10 anycast samples flagged for timing'],
      ['sa-1', null, 'all 10 samples flagged for timing'],
      ['us-1', null, 'all 10 samples flagged for timing'],
    ],
  );
  const ttfb = (await (await fetch(new URL('/api/benefit?metric=http/ttfb', server.url))).json()) as BenefitResponse;
  assert.deepEqual(
    ttfb.regions.map((r) => [r.agent, r.headline !== null, r.note]),
    [
      ['ap-1', true, null],
      ['eu-1', true, null],
      ['sa-1', false, 'all 10 samples flagged for timing'],
      // measured no ttfb at all: nothing to explain
      ['us-1', false, null],
    ],
  );
  // The overview shows the service on its headline metric (http ttfb here) and says the same.
  const overview = (await (await fetch(new URL('/api/overview', server.url))).json()) as OverviewResponse;
  const web = overview.services.find((s) => s.service === 'web')!;
  assert.equal(web.metric, 'http/ttfb');
  assert.deepEqual(
    web.regions.map((r) => [r.agent, r.note]),
    [
      ['ap-1', null],
      ['eu-1', null],
      ['sa-1', 'all 10 samples flagged for timing'],
      ['us-1', null],
    ],
  );
});
