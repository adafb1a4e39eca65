// The embedded store on real SQLite files: a round is one transaction, retention drops what it
// must and says so, and other processes read and write the same file while an agent writes.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { roundToLines } from '../agent/core/line-protocol.ts';
import { openStore, SCHEMA_VERSION, type Store } from '../agent/store/index.ts';
import { AnylatError } from '../agent/util/errors.ts';
import { ROOT, runAnylat } from './support/net.ts';
import { benefitRow, makeRound, udpPath } from './support/rounds.ts';

const DAY = 86_400_000;
let dir: string;
let n = 0;
const fresh = () => join(dir, `store-${++n}.db`);
const RETENTION = { maxAgeMs: 30 * DAY, maxRows: 100_000 };

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'anylat-store-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function tableCounts(path: string): Record<string, number> {
  const db = new Database(path, { readonly: true });
  try {
    const out: Record<string, number> = {};
    for (const t of ['rounds', 'paths', 'benefit', 'events', 'service_state', 'outbox', 'dead_letters']) {
      out[t] = (db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n;
    }
    return out;
  } finally {
    db.close();
  }
}

/** Runs TypeScript in a separate node process (the repo's tsx loader), like a second agent would. */
function nodeProcess(
  code: string,
  env: Record<string, string>,
): {
  done: Promise<{ code: number | null; out: string }>;
  onOutput: (re: RegExp) => Promise<void>;
  running: () => boolean;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.filter((x) => x.re.test(out))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  let exited = false;
  const done = new Promise<{ code: number | null; out: string }>((resolve) =>
    child.on('close', (code) => {
      exited = true;
      resolve({ code, out });
    }),
  );
  return {
    done,
    running: () => !exited,
    onOutput: (re) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(out)) return resolve();
        waiters.push({ re, resolve });
        void done.then(() => reject(new Error(`process ended before printing ${re}:\n${out}`)));
      }),
  };
}

// A second agent process: writes `ROUNDS` rounds for agent `AGENT` into `STORE`, `PAUSE_MS` apart.
const WRITER = `
import { openStore } from './agent/store/index.ts';
import { makeRound } from './test/support/rounds.ts';
const store = openStore(process.env.STORE, { retention: { maxAgeMs: 30 * 86400000, maxRows: 1e6 }, busyTimeoutMs: 10000 });
const rounds = Number(process.env.ROUNDS);
const base = Number(process.env.BASE);
for (let i = 0; i < rounds; i++) {
  store.saveRound(makeRound({ agent: process.env.AGENT, startedAt: base + i * 1000, seq: i }), { state: { i } });
  if (i === 0) console.log('first round saved');
  if (Number(process.env.PAUSE_MS) > 0) await new Promise((r) => setTimeout(r, Number(process.env.PAUSE_MS)));
}
store.close();
console.log('done ' + rounds);
`;

describe('one round, one transaction', () => {
  test('a round is saved whole: paths, benefit, events, state and its outbox lines', () => {
    const path = fresh();
    const store = openStore(path, { retention: RETENTION });
    const round = makeRound({
      startedAt: Date.parse('2025-03-01T12:00:00.000Z'),
      seq: 7,
      labels: { team: 'net' },
      events: [
        {
          type: 'site_change',
          service: 'web',
          message: 'anycast/udp: edge-eu -> edge-us',
          from: 'edge-eu',
          to: 'edge-us',
        },
      ],
    });
    round.paths[2]!.failures = { timeout: 1 };
    const id = store.saveRound(round, { state: { sites: { 'anycast/udp': 'edge-us' }, down: [] } });
    assert.deepEqual(store.getRound(id), round);
    assert.deepEqual(
      store.readOutbox(100).map((e) => e.line),
      roundToLines(round),
    );
    assert.deepEqual(store.serviceState('web', 'eu-1'), { sites: { 'anycast/udp': 'edge-us' }, down: [] });
    assert.equal(
      store.serviceState('web', 'us-1'),
      undefined,
      'state is per agent: another agent sharing the file has its own',
    );
    assert.equal(store.serviceState('api', 'eu-1'), undefined);
    assert.deepEqual(tableCounts(path), {
      rounds: 1,
      paths: 3,
      benefit: 1,
      events: 1,
      service_state: 1,
      outbox: 5,
      dead_letters: 0,
    });
    store.close();
  });

  test('a write that fails half-way leaves nothing behind, not even its outbox lines or state', () => {
    const path = fresh();
    const store = openStore(path, { retention: RETENTION });
    store.saveRound(makeRound({ startedAt: Date.now() - 60_000, seq: 1 }), { state: { v: 1 } });
    const before = tableCounts(path);
    // The third path breaks a schema rule after the round row and two paths were inserted.
    const broken = makeRound({
      startedAt: Date.now(),
      seq: 2,
      events: [{ type: 'path_up', service: 'web', message: 'up' }],
    });
    broken.paths[2] = { ...broken.paths[2]!, kind: 'multicast' as 'unicast' };
    assert.throws(() => store.saveRound(broken, { state: { v: 2 } }), /CHECK constraint failed/);
    assert.deepEqual(tableCounts(path), before);
    assert.deepEqual(store.serviceState('web', 'eu-1'), { v: 1 }, 'the state of the last good round stays');
    // And the store keeps working afterwards.
    store.saveRound(makeRound({ startedAt: Date.now() + 1, seq: 3 }));
    assert.equal(tableCounts(path).rounds, 2);
    store.close();
  });

  test('NaN statistics are stored as absent, never as 0', () => {
    const store = openStore(fresh(), { retention: RETENTION });
    const round = makeRound({ startedAt: Date.now(), paths: [udpPath('anycast', 10, { p99_ms: Number.NaN })] });
    const saved = store.getRound(store.saveRound(round))!;
    assert.equal(saved.paths[0]!.p99_ms, undefined);
    assert.equal(saved.paths[0]!.p90_ms, 10.5);
    store.close();
  });
});

describe('outbox and dead letters', () => {
  test('read in order per agent, ack deletes, dead letters keep the line and the server message', () => {
    const store = openStore(fresh(), { retention: RETENTION });
    const t = Date.now();
    store.saveRound(makeRound({ agent: 'eu-1', startedAt: t, seq: 1 }));
    store.saveRound(makeRound({ agent: 'us-1', region: 'us-east-1', startedAt: t, seq: 2 }));
    store.saveRound(makeRound({ agent: 'eu-1', startedAt: t + 1000, seq: 3 }));
    const eu = store.readOutbox(100, { agent: 'eu-1' });
    assert.equal(eu.length, 8);
    assert.ok(eu.every((e) => e.agent === 'eu-1' && e.line.includes('agent=eu-1')));
    assert.deepEqual(
      eu.map((e) => e.id),
      [...eu.map((e) => e.id)].sort((a, b) => a - b),
    );
    assert.equal(store.outboxRows(), 12);
    assert.equal(store.outboxRows('us-1'), 4);

    assert.equal(store.ack(eu.slice(0, 3).map((e) => e.id)), 3);
    assert.equal(store.ack(eu.slice(0, 3).map((e) => e.id)), 0, 'acking twice is harmless');
    assert.equal(store.deadLetter([eu[3]!.id], 'unable to parse: bad timestamp', 400), 1);
    assert.equal(store.outboxRows('eu-1'), 4);
    assert.equal(store.deadLetters('eu-1'), 1);
    assert.equal(store.deadLetters('us-1'), 0);
    const [dl] = store.deadLetterList({ agent: 'eu-1' });
    assert.equal(dl!.line, eu[3]!.line);
    assert.equal(dl!.message, 'unable to parse: bad timestamp');
    assert.equal(dl!.status, 400);
    assert.equal(dl!.outbox_id, eu[3]!.id);
    assert.deepEqual(
      store.readOutbox(2, { agent: 'eu-1' }).map((e) => e.id),
      [eu[4]!.id, eu[5]!.id],
    );
    store.close();
  });

  test('heartbeats are durable outbox lines and the last one per agent is kept for health', () => {
    const store = openStore(fresh(), { retention: RETENTION });
    const hb = (at: number, outbox: number) => ({
      agent: { id: 'eu-1', region: 'eu-west-1' },
      at: new Date(at).toISOString(),
      version: '0.1.0',
      uptime_s: 60,
      loop_lag_p99_ms: 0.5,
      rounds_late: 0,
      outbox_rows: outbox,
      dead_letters: 0,
    });
    const t = Date.now();
    store.saveRound(makeRound({ startedAt: t - 5000 }));
    store.saveHeartbeat(hb(t - 60_000, 3));
    store.saveHeartbeat(hb(t, 7));
    const lines = store
      .readOutbox(100)
      .map((e) => e.line)
      .filter((l) => l.startsWith('agent,'));
    assert.equal(lines.length, 2);
    const [health] = store.agentHealth(t + 2000);
    assert.equal(health!.agent, 'eu-1');
    assert.equal(health!.t, t);
    assert.equal(health!.age_s, 2);
    assert.equal(health!.outbox_rows, 7);
    assert.equal(health!.last_round_t, t - 5000);
    store.close();
  });

  test('a store for an agent without InfluxDB writes no outbox lines', () => {
    const store = openStore(fresh(), { retention: RETENTION, outbox: false });
    store.saveRound(makeRound({ startedAt: Date.now() }));
    assert.equal(store.outboxRows(), 0);
    assert.equal(store.rounds().length, 1);
    store.close();
  });
});

describe('retention', () => {
  test('by age: old rounds go with everything hanging off them, undelivered lines stay; it logs and counts', () => {
    const logs: string[] = [];
    const path = fresh();
    const store = openStore(path, {
      retention: { maxAgeMs: 7 * DAY, maxRows: 1000 },
      log: (l) => logs.push(l),
      retentionIntervalMs: 3_600_000,
    });
    const now = Date.now();
    const old = [10, 9, 8].map((d, i) =>
      store.saveRound(
        makeRound({
          startedAt: now - d * DAY,
          seq: i,
          events: [{ type: 'path_down', service: 'web', message: 'down' }],
        }),
        { state: { i } },
      ),
    );
    const fresh1 = store.saveRound(makeRound({ startedAt: now - 6 * DAY, seq: 9 }));
    const outboxBefore = store.outboxRows();
    const res = store.applyRetention(now);
    assert.equal(res.roundsByAge, 3);
    for (const id of old) assert.equal(store.getRound(id), undefined, `round ${id} was dropped`);
    assert.ok(store.getRound(fresh1));
    assert.deepEqual(tableCounts(path), {
      rounds: 1,
      paths: 3,
      benefit: 1,
      events: 0,
      service_state: 1,
      outbox: outboxBefore,
      dead_letters: 0,
    });
    assert.equal(outboxBefore, 3 * 5 + 4, 'three old rounds of 5 lines (with an event), one of 4');
    assert.equal(store.dropped().rounds, 3);
    assert.equal(store.droppedRows, 3);
    assert.deepEqual(logs, [
      'store: retention dropped 3 rounds older than 7d (with their paths, benefit rows and events)',
    ]);
    assert.equal(store.applyRetention(now).roundsByAge, 0, 'a second pass finds nothing');
    assert.equal(logs.length, 1, 'and logs nothing');
    store.close();
  });

  test('by rows: only the newest maxRows rounds stay, and the log line says how many went and why', () => {
    const logs: string[] = [];
    const path = fresh();
    const store = openStore(path, {
      retention: { maxAgeMs: 30 * DAY, maxRows: 5 },
      log: (l) => logs.push(l),
      retentionIntervalMs: 3_600_000,
    });
    const t = Date.now() - 60_000;
    for (let i = 0; i < 8; i++) store.saveRound(makeRound({ startedAt: t + i * 1000, seq: i }));
    const res = store.applyRetention();
    assert.equal(res.roundsByCount, 3);
    const kept = store.rounds();
    assert.deepEqual(
      kept.map((r) => r.duration_ms),
      [1503, 1504, 1505, 1506, 1507],
    );
    assert.equal(tableCounts(path).paths, 15);
    assert.deepEqual(logs, [
      'store: retention dropped the 3 oldest rounds to keep at most 5 (with their paths, benefit rows and events)',
    ]);
    assert.equal(store.dropped().rounds, 3);
    store.close();
  });

  test('the outbox cap drops the oldest undelivered lines only when it must, counts them and says they are lost', () => {
    const logs: string[] = [];
    const store = openStore(fresh(), {
      retention: { maxAgeMs: 30 * DAY, maxRows: 1000, maxOutboxRows: 10 },
      log: (l) => logs.push(l),
      retentionIntervalMs: 0,
    });
    const t = Date.now();
    const lines: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = makeRound({ startedAt: t + i * 1000, seq: i });
      lines.push(...roundToLines(r));
      store.saveRound(r);
    }
    // 16 lines were queued; retention after each save keeps the newest 10.
    assert.equal(store.outboxRows(), 10);
    assert.deepEqual(
      store.readOutbox(100).map((e) => e.line),
      lines.slice(-10),
    );
    assert.equal(store.dropped().outbox, 6);
    assert.equal(store.droppedRows, 6);
    assert.equal(store.rounds().length, 4, 'rounds are not dropped with the lines');
    assert.ok(logs.length >= 1);
    for (const l of logs)
      assert.match(
        l,
        /^store: retention dropped \d+ undelivered InfluxDB lines, the oldest, to keep the outbox at most 10 lines; they will never reach InfluxDB/,
      );
    store.close();
  });

  test('dead letters go by age and by count', () => {
    const logs: string[] = [];
    const store = openStore(fresh(), {
      retention: { maxAgeMs: 7 * DAY, maxRows: 1000, maxDeadLetters: 2 },
      log: (l) => logs.push(l),
      retentionIntervalMs: 3_600_000,
    });
    store.saveRound(makeRound({ startedAt: Date.now() }));
    const ids = store.readOutbox(4).map((e) => e.id);
    store.deadLetter(ids, 'bad', 400);
    const res = store.applyRetention();
    assert.equal(res.deadLetters, 2);
    assert.equal(store.deadLetters(), 2);
    // Eight days later the remaining two are too old.
    assert.equal(store.applyRetention(Date.now() + 8 * DAY).deadLetters, 2);
    assert.equal(store.deadLetters(), 0);
    assert.equal(store.dropped().deadLetters, 4);
    assert.ok(logs.some((l) => /retention dropped 2 dead letters/.test(l)));
    store.close();
  });
});

describe('opening', () => {
  test('read-only handles cannot write; a missing store is a clear exit-2 error', () => {
    const path = fresh();
    openStore(path, { retention: RETENTION }).close();
    const ro = openStore(path, { readonly: true });
    assert.throws(
      () => ro.saveRound(makeRound({ startedAt: Date.now() })),
      (e: unknown) => e instanceof AnylatError && e.code === 'ANYLAT_STORE_READONLY',
    );
    ro.close();
    assert.throws(
      () => openStore(join(dir, 'missing.db'), { readonly: true }),
      (e: unknown) =>
        e instanceof AnylatError &&
        e.code === 'ANYLAT_STORE_MISSING' &&
        e.exitCode === 2 &&
        e.message.includes('missing.db'),
    );
  });

  test('a store from a newer anylat is refused, not damaged', () => {
    const path = fresh();
    openStore(path, { retention: RETENTION }).close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
      SCHEMA_VERSION + 1,
      'future',
      'x',
    );
    db.close();
    for (const readonly of [false, true]) {
      assert.throws(
        () => openStore(path, { retention: RETENTION, readonly }),
        (e: unknown) =>
          e instanceof AnylatError &&
          e.code === 'ANYLAT_STORE_SCHEMA' &&
          /newer than this anylat understands/.test(e.message),
      );
    }
  });

  test('a file that is not a store is reported with its path', () => {
    const path = join(dir, 'not-a-db.db');
    rmSync(path, { force: true });
    writeFileSync(path, 'this is not sqlite, just text that is long enough to have a header page........');
    assert.throws(
      () => openStore(path, { retention: RETENTION }),
      (e: unknown) =>
        e instanceof AnylatError && e.code === 'ANYLAT_STORE_OPEN' && e.message.includes(path) && e.exitCode === 2,
    );
  });
});

describe('several processes on one file', () => {
  test('anylat report reads in another process while an agent process writes', async () => {
    const path = fresh();
    const writer = nodeProcess(WRITER, {
      STORE: path,
      AGENT: 'eu-1',
      ROUNDS: '150',
      BASE: String(Date.now() - 300_000),
      PAUSE_MS: '15',
    });
    await writer.onOutput(/first round saved/);
    const seen: number[] = [];
    let whileWriting = 0;
    while (writer.running()) {
      const res = await runAnylat(['report', '--store', path, '--since', '1d', '--json']);
      assert.equal(res.code, 0, res.stderr);
      const rows = (JSON.parse(res.stdout) as { rows: Array<{ rounds: number }> }).rows;
      seen.push(rows[0]?.rounds ?? 0);
      if (writer.running()) whileWriting++;
    }
    const w = await writer.done;
    assert.equal(w.code, 0, w.out);
    assert.match(w.out, /done 150/);
    assert.ok(whileWriting >= 2, `only ${whileWriting} reads overlapped the writer`);
    assert.deepEqual(
      seen,
      [...seen].sort((a, b) => a - b),
      'each read sees a consistent, growing store',
    );
    const final = await runAnylat(['report', '--store', path, '--since', '1d', '--json']);
    assert.equal((JSON.parse(final.stdout) as { rows: Array<{ rounds: number }> }).rows[0]!.rounds, 150);
  });

  test('two agent processes write one new file at once: nothing lost, nothing interleaved within a round', async () => {
    const path = fresh();
    const base = Date.now() - 600_000;
    const a = nodeProcess(WRITER, { STORE: path, AGENT: 'eu-1', ROUNDS: '200', BASE: String(base), PAUSE_MS: '0' });
    const b = nodeProcess(WRITER, { STORE: path, AGENT: 'us-1', ROUNDS: '200', BASE: String(base), PAUSE_MS: '0' });
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(ra.code, 0, ra.out);
    assert.equal(rb.code, 0, rb.out);
    const store: Store = openStore(path, { readonly: true });
    try {
      // The two processes really did write at the same time: their rounds interleave in the file.
      const order = store.rounds().map((r) => r.agent);
      const switches = order.filter((a, i) => i > 0 && a !== order[i - 1]).length;
      assert.ok(switches >= 4, `writers barely overlapped (${switches} switches): ${order.join(' ').slice(0, 300)}`);
      for (const agent of ['eu-1', 'us-1']) {
        const rounds = store.rounds({ agent });
        assert.equal(rounds.length, 200, agent);
        for (const r of rounds) assert.equal(store.getRound(r.id)!.paths.length, 3);
        assert.deepEqual(store.serviceState('web', agent), { i: 199 });
        // Each agent's lines are in the outbox in the order its rounds were saved.
        const lines = store.readOutbox(10_000, { agent });
        assert.equal(lines.length, 200 * 4);
        const stamps = lines.map((l) => Number(l.line.slice(l.line.lastIndexOf(' ') + 1)));
        assert.deepEqual(
          stamps,
          [...stamps].sort((x, y) => x - y),
        );
        assert.equal(new Set(stamps).size, 200);
      }
    } finally {
      store.close();
    }
  });
});

describe('report numbers', () => {
  test('median of round medians, median CI bounds, mean win rate, baselines used', () => {
    const store = openStore(fresh(), { retention: RETENTION });
    const t = Date.now() - 50_000;
    const saved = [30, 10, 20, 50];
    saved.forEach((s, i) =>
      store.saveRound(
        makeRound({
          startedAt: t + i * 1000,
          benefit: [
            benefitRow(s, {
              win_rate: [1, 0.5, 0.75, 1][i]!,
              baseline: i === 3 ? 'eu-west-1' : 'us-east-1',
              ci_low_ms: s - i,
              ci_high_ms: s + 2,
            }),
          ],
        }),
      ),
    );
    const [row] = store.benefitSummary({ since: t - 1 });
    assert.equal(row!.rounds, 4);
    assert.equal(row!.saved_ms, 25, 'even count: mean of the two middle values (20, 30)');
    assert.equal(row!.anycast_p50_ms, 10);
    assert.equal(row!.baseline_p50_ms, 35, 'baselines 40, 20, 30, 60: (30 + 40) / 2');
    assert.equal(row!.ci_low_ms, 24, 'lows 30, 9, 18, 47: (18 + 30) / 2');
    assert.equal(row!.ci_high_ms, 27, 'highs 32, 12, 22, 52: (22 + 32) / 2');
    assert.equal(row!.win_rate, 0.8125, 'mean of 1, 0.5, 0.75, 1');
    assert.equal(row!.pairs, 80);
    assert.deepEqual(row!.baselines, { 'us-east-1': 3, 'eu-west-1': 1 });
    assert.equal(store.benefitSummary({ since: t + 1500 })[0]!.rounds, 2, 'the window bounds the rounds');
    store.close();
  });
});
