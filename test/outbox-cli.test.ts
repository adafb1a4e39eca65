// `anylat outbox status|requeue` as a user runs them, on a real store: dead letters go back into
// the outbox at their old place, by age or all of them, and a sink then delivers them.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sink } from '../agent/sink/sink.ts';
import { openStore } from '../agent/store/store.ts';
import { makeRound } from './support/rounds.ts';
import { runAnylat } from './support/net.ts';

const scratch = mkdtempSync(join(tmpdir(), 'anylat-outbox-'));
const storePath = join(scratch, 'anylat.db');
let lines: string[] = [];
let oldIds: number[] = [];

before(() => {
  const store = openStore(storePath, { retention: { maxAgeMs: 86_400_000, maxRows: 10_000 } });
  const t = Date.now() - 60_000;
  for (let i = 0; i < 3; i++) store.saveRound(makeRound({ startedAt: t + i * 1000, seq: i }));
  const entries = store.readOutbox(100, { agent: 'eu-1' });
  lines = entries.map((e) => e.line);
  // Two lines refused during a proxy's blip a while ago, two just now.
  oldIds = [entries[1]!.id, entries[2]!.id];
  store.deadLetter(oldIds, '400: bad request (proxy)', 400);
  const db = (store as unknown as { db: import('better-sqlite3').Database }).db;
  db.prepare('UPDATE dead_letters SET failed_at = ?').run(Date.now() - 3 * 3_600_000);
  store.deadLetter([entries[5]!.id, entries[9]!.id], '422: field type conflict', 422);
  store.close();
});

after(() => rmSync(scratch, { recursive: true, force: true }));

describe('anylat outbox', () => {
  it('status lists waiting lines and dead letters with their reasons, as text and JSON', async () => {
    const text = await runAnylat(['outbox', 'status', '--store', storePath]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(
      text.stdout,
      /^agent eu-1: 8 lines waiting for InfluxDB \(oldest queued .* ago\); 4 dead letters \(last .* ago\)$/m,
    );
    assert.match(text.stdout, /^ +2 × 400 400: bad request \(proxy\)$/m);
    assert.match(text.stdout, /^ +2 × 422 422: field type conflict$/m);
    const json = await runAnylat(['outbox', 'status', '--store', storePath, '--json']);
    const parsed = JSON.parse(json.stdout) as {
      agents: Array<{ agent: string; outbox_rows: number; dead_letters: number; reasons: unknown[] }>;
    };
    assert.deepEqual(
      parsed.agents.map((a) => [a.agent, a.outbox_rows, a.dead_letters, a.reasons.length]),
      [['eu-1', 8, 4, 2]],
    );
  });

  it('requeue needs --since or --all; a missing store exits 2', async () => {
    const none = await runAnylat(['outbox', 'requeue', '--store', storePath]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /say which dead letters: --since DUR .* or --all/);
    const missing = await runAnylat(['outbox', 'requeue', '--all', '--store', join(scratch, 'nope.db')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no store at/);
    const bad = await runAnylat(['outbox', 'frobnicate', '--store', storePath]);
    assert.equal(bad.code, 2);
  });

  it('requeue --since 1h moves only the recent ones; --all the rest; they go at their old place and a sink delivers all', async () => {
    const recent = await runAnylat(['outbox', 'requeue', '--since', '1h', '--store', storePath]);
    assert.equal(recent.code, 0, recent.stderr);
    assert.match(recent.stdout, /^moved 2 dead letters that failed within 1h back into the outbox/);
    let store = openStore(storePath, { readonly: true });
    assert.equal(store.outboxRows('eu-1'), 10);
    assert.equal(store.deadLetters('eu-1'), 2);
    store.close();
    const rest = await runAnylat(['outbox', 'requeue', '--all', '--store', storePath]);
    assert.match(rest.stdout, /^moved 2 dead letters back/);
    store = openStore(storePath, { readonly: true });
    assert.deepEqual(
      store.readOutbox(100, { agent: 'eu-1' }).map((e) => e.line),
      lines,
      'every line back, in the original order',
    );
    assert.ok(
      oldIds.every((id) => store.readOutbox(100).some((e) => e.id === id)),
      'under their old ids',
    );
    store.close();

    const received: string[] = [];
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(...body.split('\n'));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const w = openStore(storePath, { retention: { maxAgeMs: 86_400_000, maxRows: 10_000 } });
      const sink = new Sink({
        store: w,
        agent: 'eu-1',
        influx: {
          url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
          org: 'o',
          bucket: 'b',
          token: 't',
        },
        log: () => {},
      });
      const res = await sink.drain(10_000);
      w.close();
      assert.deepEqual(res, { delivered: 12, remaining: 0, ended: 'empty' });
      assert.deepEqual(received, lines);
    } finally {
      server.close();
    }
  });
});
