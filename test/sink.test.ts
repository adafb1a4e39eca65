// The sink against a real HTTP server on loopback that answers the way InfluxDB does when things
// go wrong (429 with Retry-After, 503, 401, 400 for a bad line, no answer at all): lines leave the
// outbox only when acknowledged or refused on their own, in order, and the token never shows.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { inspect } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { after, afterEach, before, describe, test } from 'node:test';
import { Backoff, parseRetryAfter, redact, Sink, type InfluxTarget, type SinkOptions } from '../agent/sink/index.ts';
import { openStore, type Store } from '../agent/store/index.ts';
import { makeRound } from './support/rounds.ts';

const TOKEN = 'tok-3f9a1c77e2b84d0c9a5e-SECRET';

interface Received {
  url: string;
  headers: IncomingMessage['headers'];
  lines: string[];
  at: number;
}

type Answer = { status: number; body?: string; headers?: Record<string, string>; delayMs?: number } | 'hang';

/** An HTTP server that records each write and answers what the test says. */
class ScriptedInflux {
  readonly received: Received[] = [];
  answer: (lines: string[], n: number) => Answer = () => ({ status: 204 });
  private server: Server | undefined;
  private readonly hanging: ServerResponse[] = [];
  port = 0;

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        const lines = body.toString('utf8').split('\n');
        this.received.push({ url: req.url ?? '', headers: req.headers, lines, at: Date.now() });
        const a = this.answer(lines, this.received.length);
        if (a === 'hang') {
          this.hanging.push(res);
          return;
        }
        const answer = () => {
          if (res.destroyed) return;
          res.writeHead(a.status, { 'content-type': 'application/json', ...(a.headers ?? {}) });
          res.end(a.body ?? '');
        };
        if (a.delayMs === undefined) answer();
        else setTimeout(answer, a.delayMs);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server!.address() as { port: number }).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Lines the server accepted (answered 2xx), in the order it accepted them. */
  accepted(statusOf: (r: Received, i: number) => number): string[] {
    return this.received.flatMap((r, i) => (statusOf(r, i) < 300 ? r.lines : []));
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

let dir: string;
let n = 0;
const cleanups: Array<() => Promise<void> | void> = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'anylat-sink-'));
  process.on('unhandledRejection', onUnhandled);
});
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});
after(() => {
  process.off('unhandledRejection', onUnhandled);
  rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(unhandled, [], 'no promise was left unhandled');
});

async function setup(
  opts: Partial<SinkOptions> = {},
  influx: Partial<InfluxTarget> = {},
): Promise<{ server: ScriptedInflux; store: Store; sink: Sink; logs: string[] }> {
  const server = await new ScriptedInflux().start();
  const store = openStore(join(dir, `s${++n}.db`), { retention: { maxAgeMs: 86_400_000, maxRows: 10_000 } });
  const logs: string[] = [];
  const sink = new Sink({
    store,
    agent: 'eu-1',
    influx: { url: server.url, token: TOKEN, org: 'my org', bucket: 'anylat/autogen', timeoutMs: 2000, ...influx },
    backoff: { initialMs: 50, maxMs: 200 },
    idlePollMs: 50,
    log: (l) => logs.push(l),
    ...opts,
  });
  cleanups.push(async () => {
    await sink.stop();
    store.close();
    await server.close();
  });
  return { server, store, sink, logs };
}

async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

function queue(store: Store, rounds: number, t0 = Date.now() - 60_000): string[] {
  const lines: string[] = [];
  for (let i = 0; i < rounds; i++) {
    store.saveRound(makeRound({ startedAt: t0 + i * 1000, seq: i }));
  }
  for (const e of store.readOutbox(100_000, { agent: 'eu-1' })) lines.push(e.line);
  return lines;
}

describe('delivery', () => {
  test('writes in order, in batches, precision ms, org and bucket encoded, token sent', async () => {
    const { server, store, sink } = await setup({ batchLines: 5 });
    const lines = queue(store, 3);
    sink.start();
    await until('outbox empty', () => store.outboxRows('eu-1') === 0);
    assert.deepEqual(
      server.received.map((r) => r.lines.length),
      [5, 5, 2],
    );
    assert.deepEqual(
      server.received.flatMap((r) => r.lines),
      lines,
    );
    for (const r of server.received) {
      assert.equal(r.url, '/api/v2/write?org=my%20org&bucket=anylat%2Fautogen&precision=ms');
      assert.equal(r.headers.authorization, `Token ${TOKEN}`);
      assert.match(String(r.headers['content-type']), /^text\/plain/);
    }
    assert.equal(sink.status().delivered, 12);
  });

  test('large batches are gzipped, small ones are not', async () => {
    const { server, store, sink } = await setup({ batchLines: 40 }, { gzipThresholdBytes: 4096 });
    const lines = queue(store, 12);
    sink.start();
    await until('outbox empty', () => store.outboxRows('eu-1') === 0);
    assert.deepEqual(
      server.received.map((r) => [r.lines.length, r.headers['content-encoding'] ?? 'identity']),
      [
        [40, 'gzip'],
        [8, 'identity'],
      ],
    );
    assert.deepEqual(
      server.received.flatMap((r) => r.lines),
      lines,
    );
  });

  test('new lines are picked up while running; notify() sends them without waiting for the poll', async () => {
    const { server, store, sink } = await setup({ idlePollMs: 60_000 });
    sink.start();
    await delay(50);
    store.saveRound(makeRound({ startedAt: Date.now() }));
    sink.notify();
    await until('delivered', () => store.outboxRows('eu-1') === 0);
    assert.equal(server.received.length, 1);
  });

  test('only its own agent: lines of another agent sharing the store stay for that agent', async () => {
    const { server, store, sink } = await setup();
    store.saveRound(makeRound({ agent: 'us-1', startedAt: Date.now() }));
    store.saveRound(makeRound({ agent: 'eu-1', startedAt: Date.now() }));
    sink.start();
    await until('eu-1 delivered', () => store.outboxRows('eu-1') === 0);
    assert.equal(store.outboxRows('us-1'), 4);
    assert.ok(server.received.flatMap((r) => r.lines).every((l) => l.includes('agent=eu-1')));
  });
});

describe('outages', () => {
  test('503 and refused connections keep every line; delivery resumes in order, exactly the queued lines', async () => {
    const { server, store, sink, logs } = await setup({ batchLines: 4 });
    const lines = queue(store, 3);
    server.answer = (_l, i) =>
      i <= 3 ? { status: 503, body: '{"code":"unavailable","message":"down for maintenance"}' } : { status: 204 };
    sink.start();
    await until('outbox empty', () => store.outboxRows('eu-1') === 0);
    const ok = server.accepted((_r, i) => (i < 3 ? 503 : 204));
    assert.deepEqual(ok, lines, 'after the outage every line went once, in order');
    assert.ok(
      logs.some((l) => /answered 503: down for maintenance; 12 lines kept in the outbox, retrying in/.test(l)),
      logs.join('\n'),
    );
    assert.ok(
      logs.some((l) => /accepts writes again after 3 failed attempts/.test(l)),
      logs.join('\n'),
    );
    assert.equal(sink.status().consecutiveFailures, 0);
  });

  test('429 with Retry-After: the next attempt waits at least that long', async () => {
    const { server, store, sink } = await setup({ backoff: { initialMs: 10, maxMs: 20 } });
    queue(store, 1);
    server.answer = (_l, i) =>
      i === 1
        ? { status: 429, body: '{"code":"too many requests","message":"slow down"}', headers: { 'retry-after': '1' } }
        : { status: 204 };
    sink.start();
    await until('outbox empty', () => store.outboxRows('eu-1') === 0);
    const gap = server.received[1]!.at - server.received[0]!.at;
    // Timers never fire early: the backoff alone (10-20 ms) would retry far sooner than this.
    assert.ok(gap >= 990, `retried after ${gap} ms despite Retry-After: 1`);
  });

  test('a refused token is retried, never dead-lettered; the token shows nowhere', async () => {
    const { server, store, sink, logs } = await setup();
    queue(store, 1);
    // A server that echoes what it got must not make us print the token either.
    server.answer = (_l, _i) => ({
      status: 401,
      body: JSON.stringify({ code: 'unauthorized', message: `bad token Token ${TOKEN}` }),
    });
    sink.start();
    await until('three attempts', () => server.received.length >= 3);
    const status = sink.status();
    assert.equal(status.deadLetters, 0);
    assert.equal(status.outboxRows, 4);
    assert.match(status.lastError!, /refused the token \(401\).*fix influx\.token, the lines stay in the outbox/);
    const everything = [JSON.stringify(status), inspect(sink, { depth: 5 }), inspect(status), ...logs].join('\n');
    assert.ok(!everything.includes(TOKEN), everything);
    assert.ok(everything.includes('<redacted>'));
  });

  test('a token straddling the 4,000-character cut of a server message is scrubbed whole, not cut in half', async () => {
    const { server, store, sink, logs } = await setup();
    queue(store, 1);
    const body = `${'x'.repeat(3975)} you sent ${TOKEN} and more`;
    assert.ok(body.indexOf(TOKEN) < 4000 && body.indexOf(TOKEN) + TOKEN.length > 4000, 'the token straddles the cut');
    server.answer = () => ({ status: 401, body: JSON.stringify({ code: 'unauthorized', message: body }) });
    sink.start();
    await until('an attempt logged', () =>
      logs.length > 0 && sink.status().lastError !== undefined ? true : undefined,
    );
    const everything = [...logs, sink.status().lastError!].join('\n');
    for (let n = 6; n <= TOKEN.length; n++)
      assert.ok(!everything.includes(TOKEN.slice(0, n)), `the first ${n} characters of the token leaked`);
  });

  test('no answer within the timeout: retried with the lines kept', async () => {
    const { server, store, sink } = await setup({}, { timeoutMs: 200 });
    queue(store, 1);
    server.answer = (_l, i) => (i === 1 ? 'hang' : { status: 204 });
    sink.start();
    await until('outbox empty', () => store.outboxRows('eu-1') === 0);
    assert.equal(server.received.length, 2);
    assert.deepEqual(server.received[1]!.lines, server.received[0]!.lines, 'the same lines again');
    assert.ok(server.received[1]!.at - server.received[0]!.at >= 200);
  });

  test('drain: sends what the server takes within the bound, aborts an unanswered request, keeps the rest', async () => {
    const { server, store, sink } = await setup({ batchLines: 4 }, { timeoutMs: 60_000 });
    queue(store, 3);
    server.answer = (_l, i) => (i === 1 ? { status: 204 } : 'hang');
    const res = await sink.drain(500);
    assert.deepEqual(res, { delivered: 4, remaining: 8, ended: 'deadline' });
    assert.equal(sink.status().state, 'stopped');
    assert.equal(store.outboxRows('eu-1'), 8, 'the unanswered batch is kept for the next start');
    server.answer = () => ({ status: 204 });
    const again = await sink.drain(10_000);
    assert.deepEqual(again, { delivered: 8, remaining: 0, ended: 'empty' });
  });

  // The timeout is not a speed check: without the cut-off this drain would wait out the 120 s request.
  test('drain cuts off a request that was already in flight when it was called', { timeout: 20_000 }, async () => {
    const { server, store, sink } = await setup({}, { timeoutMs: 120_000 });
    queue(store, 1);
    server.answer = () => 'hang';
    sink.start();
    await until('request in flight', () => server.received.length === 1);
    const res = await sink.drain(300);
    assert.deepEqual(res, { delivered: 0, remaining: 4, ended: 'deadline' });
    assert.equal(sink.status().state, 'stopped');
  });

  test('drain during an outage retries until the bound, then stops with everything kept', async () => {
    const { server, store, sink } = await setup();
    queue(store, 2);
    server.answer = () => ({ status: 503, body: 'overloaded' });
    sink.start();
    await until('first failure', () => server.received.length >= 1);
    const res = await sink.drain(400);
    assert.deepEqual(res, { delivered: 0, remaining: 8, ended: 'deadline' });
    assert.ok(server.received.length >= 2, 'drain tried again instead of waiting out the backoff');
  });
});

describe('store trouble', () => {
  test('a store error does not kill the sink or leave a rejected promise: it is logged and retried', async () => {
    const { store, sink, logs } = await setup();
    sink.start();
    await delay(60);
    store.close();
    await until('the error is logged', () =>
      logs.some((l) =>
        /^sink: store error while sending: The database connection is not open; the lines kept in the outbox, retrying in/.test(
          l,
        ),
      ),
    );
    // Still alive and backing off like an outage (status() itself needs the store, so peek).
    assert.equal((sink as unknown as { state: string }).state, 'backoff');
    await sink.stop();
    assert.equal((sink as unknown as { state: string }).state, 'stopped');
  });
});

describe('malformed lines', () => {
  test('a refused batch is bisected: only the refused lines become dead letters, with the message; the rest flows', async () => {
    const { server, store, sink, logs } = await setup({ batchLines: 100 });
    const t = Date.now() - 10_000;
    for (let i = 0; i < 5; i++) store.saveRound(makeRound({ startedAt: t + i * 1000, seq: i }));
    // Two poisoned lines in the middle of the outbox, as a buggy writer might leave them.
    const ids = store.readOutbox(100, { agent: 'eu-1' }).map((e) => e.id);
    const bad = [ids[5]!, ids[13]!];
    const db = (store as unknown as { db: import('better-sqlite3').Database }).db;
    for (const id of bad) db.prepare(`UPDATE outbox SET line = 'latency,agent=eu-1 BROKEN' || id WHERE id = ?`).run(id);
    const expectedGood = store
      .readOutbox(100, { agent: 'eu-1' })
      .filter((e) => !bad.includes(e.id))
      .map((e) => e.line);
    server.answer = (lines) => {
      const broken = lines.find((l) => l.includes('BROKEN'));
      return broken
        ? {
            status: 400,
            body: JSON.stringify({ code: 'invalid', message: `unable to parse '${broken}': missing fields` }),
          }
        : { status: 204 };
    };
    sink.start();
    await until('outbox empty', () => store.outboxRows('eu-1') === 0);
    const accepted = server.received.filter((r) => !r.lines.some((l) => l.includes('BROKEN'))).flatMap((r) => r.lines);
    assert.deepEqual(accepted, expectedGood, 'every good line accepted exactly once, in order');
    const dead = store.deadLetterList({ agent: 'eu-1' }).reverse();
    assert.deepEqual(
      dead.map((d) => [d.outbox_id, d.status, d.line]),
      bad.map((id) => [id, 400, `latency,agent=eu-1 BROKEN${id}`]),
    );
    assert.equal(dead[0]!.message, `400: unable to parse 'latency,agent=eu-1 BROKEN${bad[0]}': missing fields`);
    assert.equal(sink.status().deadLetters, 2);
    assert.equal(sink.status().deadLettered, 2);
    assert.ok(
      logs.some((l) => /refused a batch of 20 lines .*bisecting/.test(l)),
      logs.join('\n'),
    );
    assert.ok(
      server.received.length <= 2 * 2 * Math.ceil(Math.log2(20)) + 1,
      `${server.received.length} requests for 2 bad lines in 20`,
    );
  });

  test('413 (too large) is split until it fits; a single line still too large is a dead letter', async () => {
    const { server, store, sink } = await setup({ batchLines: 100 });
    const lines = queue(store, 4);
    server.answer = (l) => (l.length > 3 ? { status: 413, body: 'request too large' } : { status: 204 });
    sink.start();
    await until('outbox empty', () => store.outboxRows('eu-1') === 0);
    assert.deepEqual(
      server.accepted((r) => (r.lines.length > 3 ? 413 : 204)),
      lines,
    );
    assert.equal(store.deadLetters(), 0);
  });
});

describe('helpers', () => {
  test('Retry-After: delta-seconds and HTTP-dates, garbage ignored', () => {
    const now = Date.parse('2025-03-01T12:00:00Z');
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter(['3'], now), 3000);
    assert.equal(parseRetryAfter('Sat, 01 Mar 2025 12:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Sat, 01 Mar 2025 11:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter(undefined, now), undefined);
  });

  test('backoff doubles with jitter in [d/2, d] up to the cap; Retry-After wins, within bounds', () => {
    const low = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map(() => low.next()),
      [50, 100, 200, 400, 500, 500],
    );
    const high = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 });
    assert.deepEqual(
      [1, 2, 3, 4, 5].map(() => high.next()),
      [100, 200, 400, 800, 1000],
    );
    high.reset();
    assert.equal(high.failures, 0);
    const ra = new Backoff({ initialMs: 100, maxMs: 1000, maxRetryAfterMs: 60_000, random: () => 0 });
    assert.equal(ra.next(5000), 5000);
    assert.equal(ra.next(10), 100, 'never faster than the first backoff step');
    assert.equal(ra.next(3_600_000), 60_000, 'an absurd Retry-After is capped');
  });

  test('redact removes the token, authorization values and URL credentials', () => {
    assert.equal(redact(`got ${TOKEN} back`, TOKEN), 'got <redacted> back');
    assert.equal(redact('Authorization: Token abc.def-123'), 'Authorization: Token <redacted>');
    assert.equal(
      redact('GET http://admin:hunter2@influx:8086/write?db=x&p=hunter2'),
      'GET http://<redacted>@influx:8086/write?db=x&p=<redacted>',
    );
  });

  test('the sink never prints the token, also when the URL carries credentials', async () => {
    const logs: string[] = [];
    const store = openStore(join(dir, 'redact.db'), { retention: { maxAgeMs: 86_400_000, maxRows: 10 } });
    cleanups.push(() => store.close());
    queue(store, 1);
    const sink = new Sink({
      store,
      agent: 'eu-1',
      influx: { url: 'http://user:hunter2@127.0.0.1:1', token: TOKEN, org: 'o', bucket: 'b' },
      backoff: { initialMs: 20, maxMs: 40 },
      log: (l) => logs.push(l),
    });
    const res = await sink.drain(300);
    assert.equal(res.remaining, 4);
    const everything = [...logs, JSON.stringify(sink.status()), inspect(sink, { depth: 6 })].join('\n');
    assert.ok(!everything.includes(TOKEN) && !everything.includes('hunter2'), everything);
    assert.match(
      sink.status().lastError!,
      /cannot reach InfluxDB at http:\/\/127\.0\.0\.1:1 \(org o, bucket b\): .*ECONNREFUSED/,
    );
  });
});

describe("refusals that are not the line's fault", () => {
  test(
    'a proxy answering 400 to everything for 4 s dead-letters nothing; every line arrives once the blip ends',
    { timeout: 60_000 },
    async () => {
      const { server, store, sink, logs } = await setup({ batchLines: 16 });
      const lines = queue(store, 10);
      let blipStart: number | undefined;
      server.answer = () => {
        blipStart ??= Date.now();
        return Date.now() - blipStart < 4000
          ? { status: 400, body: '{"code":"invalid","message":"bad request (proxy misconfigured)"}' }
          : { status: 204 };
      };
      const blipped = (r: Received) => r.at - blipStart! < 4000;
      sink.start();
      await until('outbox empty', () => store.outboxRows('eu-1') === 0, 40_000);
      assert.equal(store.deadLetters('eu-1'), 0, logs.join('\n'));
      assert.deepEqual(
        server.received
          .filter((r) => !blipped(r))
          .flatMap((r) => r.lines)
          .sort(),
        [...lines].sort(),
        'every line accepted exactly once after the blip',
      );
      assert.ok(server.received.filter(blipped).length >= 3, 'the blip was seen by several attempts');
      assert.ok(
        logs.some((l) => /refused every line, also lines on their own .*nothing is dead-lettered/.test(l)),
        logs.join('\n'),
      );
    },
  );

  test('a line refused on its own several times over the window is a dead letter even with nothing else to compare', async () => {
    const { server, store, sink, logs } = await setup({ refusalsToDeadLetter: 3, refusalWindowMs: 400 });
    store.saveHeartbeat({
      agent: { id: 'eu-1', region: 'eu' },
      at: new Date().toISOString(),
      version: 't',
      uptime_s: 1,
      loop_lag_p99_ms: 0,
      rounds_late: 0,
      outbox_rows: 0,
      dead_letters: 0,
    });
    server.answer = () => ({ status: 422, body: '{"message":"field type conflict"}' });
    sink.start();
    await until('dead letter', () => store.deadLetters('eu-1') === 1);
    assert.ok(server.received.length >= 3, `${server.received.length} attempts`);
    assert.ok(server.received.at(-1)!.at - server.received[0]!.at >= 400);
    assert.ok(
      logs.some((l) => /refused on its own \d+ times over/.test(l)),
      logs.join('\n'),
    );
  });
});

describe('a slow server', () => {
  test(
    'timeouts halve the batch to the floor instead of sending the same batch again; successes grow it back',
    { timeout: 90_000 },
    async () => {
      // 100 ms per line: 40 lines take 4 s, 20 lines 2 s; the client gives up after 3 s (margins of 1 s
      // either way on a busy machine).
      const { server, store, sink, logs } = await setup(
        { batchLines: 80, minBatchLines: 20, growAfter: 2, backoff: { initialMs: 20, maxMs: 50 } },
        { timeoutMs: 3000 },
      );
      const lines = queue(store, 20);
      server.answer = (l) => ({ status: 204, delayMs: l.length * 100 });
      sink.start();
      await until('outbox empty', () => store.outboxRows('eu-1') === 0, 80_000);
      const sizes = server.received.map((r) => r.lines.length);
      assert.deepEqual(sizes.slice(0, 5), [80, 40, 20, 20, 40], `request sizes ${sizes.join(', ')}`);
      const timesSent = new Map<string, number>();
      for (const l of server.received.flatMap((r) => r.lines)) timesSent.set(l, (timesSent.get(l) ?? 0) + 1);
      assert.ok(Math.max(...timesSent.values()) <= 4, 'no line sent more than once per size step');
      assert.equal(timesSent.size, lines.length);
      assert.ok(
        logs.some((l) => /did not answer a batch of 80 lines in time; batch size now 40 lines/.test(l)),
        logs.join('\n'),
      );
      assert.ok(
        logs.some((l) => /answers in time again; batch size now 40 lines/.test(l)),
        logs.join('\n'),
      );
    },
  );
});

describe('a line that draws 5xx', () => {
  test(
    'after setAsideAfterMs the batch is bisected: the line is set aside, the rest flows, and the log says so',
    { timeout: 30_000 },
    async () => {
      const { server, store, sink, logs } = await setup({ batchLines: 100, setAsideAfterMs: 800 });
      const lines = queue(store, 3);
      const poison = lines[5]!;
      server.answer = (l) =>
        l.includes(poison)
          ? { status: 500, body: '{"message":"internal error: panic in the parser"}' }
          : { status: 204 };
      sink.start();
      await until('outbox empty', () => store.outboxRows('eu-1') === 0, 20_000);
      const dead = store.deadLetterList({ agent: 'eu-1' });
      assert.deepEqual(
        dead.map((d) => [d.line, d.status]),
        [[poison, 500]],
      );
      assert.match(
        dead[0]!.message,
        /^set aside after 0 min of 5xx: InfluxDB .* answered 500: internal error: panic in the parser/,
      );
      assert.deepEqual(
        server.accepted((r) => (r.lines.includes(poison) ? 500 : 204)).sort(),
        lines.filter((l) => l !== poison).sort(),
      );
      const first = server.received[0]!.at;
      const firstOk = server.received.find((r) => !r.lines.includes(poison))!.at;
      assert.ok(firstOk - first >= 800, 'held up until the set-aside time');
      assert.ok(
        logs.some((l) => /answered 5xx to the batch at the head of the outbox .* bisecting it to set aside/.test(l)),
        logs.join('\n'),
      );
    },
  );

  test(
    'a server answering 5xx to everything past the set-aside time sets nothing aside',
    { timeout: 30_000 },
    async () => {
      const { server, store, sink } = await setup({ batchLines: 100, setAsideAfterMs: 200 });
      queue(store, 2);
      server.answer = () => ({ status: 503, body: 'down' });
      sink.start();
      await until('bisecting attempts', () => server.received.length >= 20);
      assert.equal(store.deadLetters('eu-1'), 0);
      assert.equal(store.outboxRows('eu-1'), 8);
    },
  );
});
