// The store's side of the dashboard: the round totals migration 2 keeps (on a file written before
// it, while rounds are saved and retention drops them), and the SQL aggregates the dashboard reads
// instead of loading every row, checked against report.ts and against numbers built by hand.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { RoundResult } from '../agent/core/model.ts';
import { openStore, SCHEMA_VERSION, type ServiceSummary } from '../agent/store/index.ts';
import { MIGRATIONS } from '../agent/store/schema.ts';
import { startWebServer } from '../agent/web/index.ts';
import type { ServicesResponse } from '../agent/web/index.ts';
import { benefitReport } from './support/benefit-report.ts';
import { benefitRow, makeRound, udpPath } from './support/rounds.ts';
import { fillStore, REGIONS, ROUNDS } from './support/web-data.ts';

const RETENTION = { maxAgeMs: 30 * 86_400_000, maxRows: 1_000_000 };
const HOUR = 3_600_000;

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'anylat-web-store-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** What the totals must say: counted from the rounds themselves. */
function counted(path: string): ServiceSummary[] {
  const db = new Database(path, { readonly: true });
  try {
    return db
      .prepare(
        `SELECT service, agent, agent_region, COUNT(*) AS rounds, MIN(started_at) AS first_t, MAX(started_at) AS last_t
         FROM rounds GROUP BY service, agent, agent_region ORDER BY service, agent, agent_region`,
      )
      .all() as ServiceSummary[];
  } finally {
    db.close();
  }
}

function versions(path: string): number[] {
  const db = new Database(path, { readonly: true });
  try {
    return (
      db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as Array<{ version: number }>
    ).map((r) => r.version);
  } finally {
    db.close();
  }
}

/**
 * A store file as anylat wrote it before round totals existed: schema 1 exactly as shipped, with
 * the rows a current store saved for the same rounds, in the columns schema 1 has.
 */
function schemaOneFile(path: string, source: string): void {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec(MIGRATIONS.find((m) => m.version === 1)!.sql);
  db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
  db.prepare('INSERT INTO schema_migrations VALUES (1, ?, ?)').run(MIGRATIONS[0]!.name, new Date().toISOString());
  db.prepare('ATTACH DATABASE ? AS src').run(source);
  for (const table of ['rounds', 'paths', 'benefit', 'events', 'service_state', 'heartbeats']) {
    // Schema 1's columns only: later migrations added some (size, schema 4).
    const columns = (
      db.prepare(`SELECT name FROM pragma_table_info('${table}', 'main')`).all() as Array<{ name: string }>
    )
      .map((c) => c.name)
      .join(', ');
    db.exec(`INSERT INTO main.${table} (${columns}) SELECT ${columns} FROM src.${table}`);
  }
  db.exec('DETACH DATABASE src');
  db.close();
}

/** every migration, in order: what an upgraded file records */
const ALL_VERSIONS = Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1);

describe('round totals (schema 2)', () => {
  it('upgrades a file written before them; read-only handles on the old file still count right', async () => {
    const source = join(dir, 'source.db');
    const writer = openStore(source, { retention: RETENTION, outbox: false });
    const now = Date.now();
    fillStore(writer, now);
    // An agent that moved region keeps one row per region, as before.
    writer.saveRound(makeRound({ agent: 'eu-1', region: 'eu-north', startedAt: now - 10_000 }));
    writer.close();

    const path = join(dir, 'old.db');
    schemaOneFile(path, source);
    const expected = counted(path);
    const byKey = (rows: ServiceSummary[]) => rows.map((r) => `${r.service}/${r.agent}/${r.agent_region}: ${r.rounds}`);
    assert.deepEqual(byKey(expected), [
      'api/old-1/sa-east: 3',
      'web/ap-1/ap-south: 12',
      'web/eu-1/eu-north: 1',
      'web/eu-1/eu-west: 12',
      'web/us-1/us-east: 12',
    ]);
    assert.deepEqual(versions(path), [1]);

    // `anylat report` or a dashboard next to an agent that still runs the old version: read-only,
    // so the file stays at schema 1, and the totals come from counting.
    const ro = openStore(path, { readonly: true });
    try {
      assert.deepEqual(ro.services(), expected);
      const old = ro.agentHealth(now).find((h) => h.agent === 'eu-1');
      assert.equal(old?.last_round_t, now - 10_000);
    } finally {
      ro.close();
    }
    const web = await startWebServer({ storePath: path, listen: '127.0.0.1:0', log: () => {} });
    try {
      const body = (await (await fetch(new URL('/api/services', web.url))).json()) as ServicesResponse;
      assert.deepEqual(
        body.services.map((s) => [s.service, s.rounds]),
        [
          ['api', 3],
          ['web', 3 * ROUNDS + 1],
        ],
      );
    } finally {
      await web.close();
    }
    assert.deepEqual(versions(path), [1], 'reading never migrates');

    // The agent's own handle migrates, keeping every round, and the totals match the count.
    const upgraded = openStore(path, { retention: RETENTION, outbox: false });
    try {
      assert.deepEqual(versions(path), ALL_VERSIONS);
      assert.deepEqual(upgraded.services(), expected);
      assert.equal(upgraded.rounds().length, 3 * ROUNDS + 3 + 1);
      upgraded.saveRound(makeRound({ agent: 'eu-1', region: 'eu-north', startedAt: now - 5_000 }));
      const after = counted(path);
      assert.equal(after.find((r) => r.agent_region === 'eu-north')?.rounds, 2);
      assert.deepEqual(upgraded.services(), after);
    } finally {
      upgraded.close();
    }
    const again = openStore(path, { retention: RETENTION, outbox: false });
    again.close();
    assert.deepEqual(versions(path), ALL_VERSIONS, 'a second open changes nothing');
  });

  it('stay right as rounds are saved and retention drops them, by count and by age', () => {
    const path = join(dir, 'retention.db');
    const now = Date.now();
    const store = openStore(path, { retention: RETENTION, outbox: false });
    // Interleaved agents, so dropping the oldest rounds takes some of each.
    for (let i = 0; i < 30; i++) {
      for (const agent of ['a-1', 'b-1'])
        store.saveRound(makeRound({ agent, region: agent.replace('-1', ''), startedAt: now - 10 * HOUR + i * 60_000 }));
    }
    store.saveRound(makeRound({ agent: 'c-1', region: 'c', service: 'dns', startedAt: now - 9 * HOUR }));
    assert.deepEqual(store.services(), counted(path));
    store.close();

    const byCount = openStore(path, { retention: { ...RETENTION, maxRows: 45 }, outbox: false, log: () => {} });
    try {
      // c-1's only round is newer than the 16 dropped: a-1 and b-1 lost their first 8 each.
      const totals = byCount.services();
      assert.deepEqual(totals, counted(path));
      assert.deepEqual(
        totals.map((r) => [r.agent, r.rounds, r.first_t]),
        [
          ['c-1', 1, now - 9 * HOUR],
          ['a-1', 22, now - 10 * HOUR + 8 * 60_000],
          ['b-1', 22, now - 10 * HOUR + 8 * 60_000],
        ],
      );
    } finally {
      byCount.close();
    }

    // Every round of service web is older than 9.5 h: the service and its agents disappear.
    const byAge = openStore(path, { retention: { ...RETENTION, maxAgeMs: 9.5 * HOUR }, outbox: false, log: () => {} });
    try {
      assert.deepEqual(byAge.services(), counted(path));
      assert.deepEqual(
        byAge.services().map((r) => [r.service, r.agent, r.rounds]),
        [['dns', 'c-1', 1]],
      );
      assert.equal(byAge.agentHealth(now).length, 0);
    } finally {
      byAge.close();
    }
  });
});

describe('the dashboard aggregates in SQL', () => {
  it('gives the benefit table the slow reference gives (test/support/benefit-report.ts), over any window', () => {
    const path = join(dir, 'summary.db');
    const store = openStore(path, { retention: RETENTION, outbox: false });
    const now = Date.now();
    // Odd and even round counts, missing values, a baseline change, an agent that moved, two
    // metrics of which one is edge-scoped, two services.
    for (let i = 0; i < 41; i++) {
      const t = now - 41 * 60_000 + i * 60_000;
      const saved = ((i * 37) % 23) - 6 + i / 7;
      const benefit = [
        benefitRow(saved, {
          baseline: i % 5 === 0 ? 'eu-west-1' : 'us-east-1',
          win_rate: ((i * 13) % 10) / 10,
          ...(i % 6 === 0 ? { ci_low_ms: undefined, ci_high_ms: undefined } : {}),
        }),
        benefitRow(40 - i / 3, { protocol: 'tcp', metric: 'connect', scope: 'edge', anycast_p50_ms: 2 }),
      ];
      store.saveRound(
        makeRound({ agent: 'eu-1', region: i < 30 ? 'eu-west' : 'eu-north', startedAt: t, seq: i, benefit }),
      );
      if (i % 2 === 0)
        store.saveRound(
          makeRound({ agent: 'us-1', region: 'us-east', startedAt: t + 7_000, seq: i, benefit: benefit.slice(0, 1) }),
        );
      if (i % 10 === 0)
        store.saveRound(makeRound({ agent: 'us-1', region: 'us-east', service: 'api', startedAt: t + 9_000, seq: i }));
    }
    const json = (x: unknown) => JSON.parse(JSON.stringify(x)) as unknown;
    const windows = [
      { since: now - HOUR },
      { since: now - 10 * 60_000 },
      { since: now - 7 * 60_000, until: now - 3 * 60_000 },
      { since: now - HOUR, service: 'web' },
      { since: now - HOUR, service: 'api', agent: 'us-1' },
      { since: now + 1 },
    ];
    const reference = new Database(path, { readonly: true });
    for (const w of windows) {
      const expected = benefitReport(reference, w);
      assert.deepEqual(json(store.benefitSummary(w)), json(expected), JSON.stringify(w));
    }
    reference.close();
    const all = store.benefitSummary({ since: now - HOUR, service: 'web' });
    assert.deepEqual(
      all.map((r) => [r.agent, r.agent_region, `${r.protocol}/${r.metric}`, r.rounds, r.baselines]),
      [
        ['eu-1', 'eu-north', 'udp/rtt', 41, { 'eu-west-1': 9, 'us-east-1': 32 }],
        ['eu-1', 'eu-north', 'tcp/connect', 41, { 'us-east-1': 41 }],
        ['us-1', 'us-east', 'udp/rtt', 21, { 'eu-west-1': 5, 'us-east-1': 16 }],
      ],
    );
    store.close();
  });

  it('gives the runs of anycast sites, joining the sites of a round with two anycast paths', () => {
    const path = join(dir, 'sites.db');
    const store = openStore(path, { retention: RETENTION, outbox: false });
    const now = Date.now();
    const t = (i: number) => now - 20 * 60_000 + i * 60_000;
    const anycast = (site: string | undefined, endpoint = 'anycast') =>
      udpPath(endpoint, 10, { kind: 'anycast', ...(site === undefined ? {} : { site }) });
    const sites: Array<Array<string | undefined>> = [
      ['edge-a'],
      ['edge-a'],
      ['edge-b', 'edge-a'], // both addresses of the accelerator answered, from two sites
      ['edge-a', 'edge-b'],
      [undefined],
      [undefined, undefined],
      ['edge-b'],
    ];
    sites.forEach((list, i) => {
      const paths = [...list.map((s, k) => anycast(s, k === 0 ? 'anycast' : 'anycast-2')), udpPath('us-east-1', 40)];
      store.saveRound(makeRound({ startedAt: t(i), paths }));
    });
    // A round without an anycast path of this protocol is not part of any run.
    const tcpOnly: RoundResult = makeRound({
      startedAt: t(7),
      paths: [{ ...udpPath('anycast', 2, { site: 'edge-c' }), protocol: 'tcp', metric: 'connect', scope: 'edge' }],
    });
    store.saveRound(tcpOnly);
    store.saveRound(makeRound({ startedAt: t(8), paths: [anycast('edge-b')] }));
    assert.deepEqual(store.siteRuns({ since: now - HOUR, service: 'web', protocol: 'udp', metric: 'rtt' }), [
      { agent: 'eu-1', site: 'edge-a', from_t: t(0), to_t: t(1), rounds: 2 },
      { agent: 'eu-1', site: 'edge-a, edge-b', from_t: t(2), to_t: t(3), rounds: 2 },
      { agent: 'eu-1', site: null, from_t: t(4), to_t: t(5), rounds: 2 },
      { agent: 'eu-1', site: 'edge-b', from_t: t(6), to_t: t(8), rounds: 2 },
    ]);
    assert.deepEqual(store.siteRuns({ since: now - HOUR, service: 'web', protocol: 'tcp', metric: 'connect' }), [
      { agent: 'eu-1', site: 'edge-c', from_t: t(7), to_t: t(7), rounds: 1 },
    ]);
    store.close();
  });

  it('gives the latency and loss series as columns equal to the row series', () => {
    const path = join(dir, 'columns.db');
    const store = openStore(path, { retention: RETENTION, outbox: false });
    const { now } = fillStore(store);
    const q = { since: now - HOUR, until: now + 1, service: 'web' };
    const rows = store.benefitSeries({ ...q, protocol: 'udp', metric: 'rtt' });
    const columns = store.benefitColumns({ ...q, protocol: 'udp', metric: 'rtt' });
    assert.deepEqual([...columns.keys()].sort(), REGIONS.map((r) => r.agent).sort());
    for (const [agent, c] of columns) {
      const mine = rows.filter((p) => p.agent === agent);
      assert.equal(mine.length, ROUNDS);
      for (const k of [
        't',
        'anycast_p50_ms',
        'baseline_p50_ms',
        'baseline',
        'saved_ms',
        'ci_low_ms',
        'ci_high_ms',
      ] as const) {
        assert.deepEqual(
          c[k],
          mine.map((p) => p[k]),
          `${agent} ${k}`,
        );
      }
      assert.deepEqual(store.latestBenefit({ ...q, agent, protocol: 'udp', metric: 'rtt' }), mine.at(-1));
    }
    const loss = store.lossSeries(q);
    const lossColumns = store.lossColumns(q);
    assert.equal(lossColumns.length, REGIONS.length * 5);
    for (const c of lossColumns) {
      const mine = loss.filter((p) => p.agent === c.agent && p.endpoint === c.endpoint && p.protocol === c.protocol);
      assert.ok(mine.every((p) => p.kind === c.kind));
      for (const k of ['t', 'loss_pct', 'sent', 'received'] as const)
        assert.deepEqual(
          c[k],
          mine.map((p) => p[k]),
          `${c.agent} ${c.endpoint} ${k}`,
        );
    }
    store.close();
  });
});
