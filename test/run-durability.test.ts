// `anylat run` killed with SIGKILL, again and again, at different moments: while it delivers to
// InfluxDB (a real VictoriaMetrics on loopback), while InfluxDB is down and the outbox holds a
// backlog, and while it sends that backlog right after a restart. Each time it is restarted with
// the same config and store. At the end every round in the store has reached VictoriaMetrics,
// nothing acknowledged was sent twice, nothing unacknowledged was dropped, every round the agent
// logged is in the store, and the store was intact after every kill.
//
// Exactly once, honestly: the sink deletes outbox lines only after a 2xx. A batch VictoriaMetrics
// stored but whose acknowledgement the agent never recorded (killed between the 2xx and the ack,
// or mid-request after the server parsed the body) is sent again by the next start. InfluxDB
// overwrites it (same series, same timestamp, same values); VictoriaMetrics with deduplication
// off keeps a second sample. We keep deduplication OFF rather than mirroring InfluxDB with
// -dedup.minScrapeInterval=1ms, because dedup would hide exactly the bug this test is for: an
// acknowledged line sent again (ack not durable, outbox replayed from the start). Instead, after
// each kill we read what the dead agent left in its outbox (the unacknowledged lines) and allow
// a line a second copy only if it was unacknowledged at a kill; every other line must be there
// exactly once. Distinct timestamps per series must equal the rounds in the store, and the test
// reports how many lines were re-sent.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { startReflector, type RunningReflector } from '../agent/reflector/index.ts';
import { roundToLines } from '../agent/core/line-protocol.ts';
import { openStore } from '../agent/store/store.ts';
import { freePort, freeUdpPort, startAnylat } from './support/net.ts';
import { Victoria } from '../bench/lib/victoria.ts';

const AGENT = 'durability-test';
const TOKEN = 'durability-secret-token';

let scratch: string;
let reflector: RunningReflector | undefined;
let vm: Victoria | undefined;
const children: ChildProcess[] = [];

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'anylat-durability-'));
  // One port on both loopback addresses: 127.0.0.1 plays the anycast address, 127.0.0.2 a region.
  const udpPort = await freeUdpPort();
  const tcpPort = await freePort();
  reflector = await startReflector({
    site: 'lab-site',
    binds: ['127.0.0.1', '127.0.0.2'],
    udp: { port: udpPort },
    tcp: { port: tcpPort },
    http: false,
    log: () => {},
  });
  vm = await Victoria.start();
  writeFileSync(
    join(scratch, 'anylat.yaml'),
    `agent:
  id: ${AGENT}
  region: lab
services:
  - name: loop
    anycast: 127.0.0.1
    unicast:
      lo-two: 127.0.0.2
    probes:
      udp: { port: ${udpPort} }
      tcp: { port: ${tcpPort}, echo: true }
    samples: 3
    spacing: 20ms
    timeout: 300ms
    schedule: "* * * * * *"
    deadline: 800ms
store:
  path: ${join(scratch, 'state', 'anylat.db')}
influx:
  url: ${vm.url}
  token: \${DURABILITY_TOKEN}
  bucket: anylat
`,
  );
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await reflector?.close();
  await vm?.destroy();
  rmSync(scratch, { recursive: true, force: true });
});

const configFile = () => join(scratch, 'anylat.yaml');
const storePath = () => join(scratch, 'state', 'anylat.db');

/** Rounds the agent logged as saved (an abandoned round logs "round loop: abandoned …"). */
function roundsLogged(output: string): number {
  return output.split('\n').filter((l) => / round loop: \d/.test(l)).length;
}

async function until(
  what: string,
  fn: () => boolean | Promise<boolean>,
  detail: () => string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}:\n${detail()}`);
    await sleep(100);
  }
}

interface Life {
  n: number;
  spawnedAt: number;
  endedAt: number;
  how: 'SIGKILL' | 'SIGTERM';
  output: string;
  /** outbox lines the agent left unacknowledged when it died (read after it died) */
  unacked: string[];
}

interface Running {
  n: number;
  spawnedAt: number;
  child: ChildProcess;
  output: () => string;
  closed: Promise<unknown>;
}

const lives: Life[] = [];

async function launch(): Promise<Running> {
  const n = lives.length + 1;
  const spawnedAt = Date.now();
  const a = await startAnylat(['run', '--config', configFile()], {
    ready: /running 1 service/,
    timeoutMs: 30_000,
    env: { DURABILITY_TOKEN: TOKEN },
  });
  children.push(a.child);
  // 'close' (not 'exit'): every line the agent wrote to its pipes has been read.
  return { n, spawnedAt, child: a.child, output: a.output, closed: once(a.child, 'close') };
}

/** What the store holds right now, read from outside (the agent may be running or dead). */
function look(): { outbox: string[]; deadLetters: number; rounds: number } {
  const s = openStore(storePath(), { readonly: true });
  try {
    return {
      outbox: s.readOutbox(1_000_000, { agent: AGENT }).map((e) => e.line),
      deadLetters: s.deadLetters(),
      rounds: s.rounds().length,
    };
  } finally {
    s.close();
  }
}

/** The store after a death: SQLite's own integrity check, then what the outbox kept. */
function inspectAfterDeath(what: string): string[] {
  // Read-only: recovering the WAL here would do the restarted agent's job for it.
  const db = new Database(storePath(), { readonly: true, fileMustExist: true });
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok', `integrity_check after ${what}`);
  } finally {
    db.close();
  }
  const seen = look();
  assert.equal(seen.deadLetters, 0, `no dead letters after ${what}`);
  return seen.outbox;
}

async function kill(a: Running, when: string): Promise<Life> {
  a.child.kill('SIGKILL');
  await a.closed;
  assert.equal(a.child.signalCode, 'SIGKILL', a.output());
  const life: Life = {
    n: a.n,
    spawnedAt: a.spawnedAt,
    endedAt: Date.now(),
    how: 'SIGKILL',
    output: a.output(),
    unacked: [],
  };
  life.unacked = inspectAfterDeath(`kill ${a.n} (${when})`);
  lives.push(life);
  return life;
}

/** SIGKILL the moment the agent logs its next saved round: that round's lines are on their way to InfluxDB. */
async function killAtNextRound(a: Running, when: string): Promise<Life> {
  const seen = roundsLogged(a.output());
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no round logged within 15 s:\n${a.output()}`)), 15_000);
    const onData = () => {
      // startAnylat's own listener ran first, so output() already holds this chunk.
      if (roundsLogged(a.output()) <= seen) return;
      a.child.stderr!.off('data', onData);
      clearTimeout(timer);
      resolve();
    };
    a.child.stderr!.on('data', onData);
  });
  return kill(a, when);
}

async function waitRounds(a: Running, atLeast: number): Promise<void> {
  await until(`${atLeast} rounds logged by agent life ${a.n}`, () => roundsLogged(a.output()) >= atLeast, a.output);
}

// ---- line protocol back to what VictoriaMetrics stores: one series `<measurement>_<field>` per field

interface Point {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, number | string>;
  ts: number;
}

function parseLine(line: string): Point {
  let i = 0;
  const read = (stops: string): string => {
    let out = '';
    while (i < line.length && !stops.includes(line[i]!)) {
      if (line[i] === '\\' && i + 1 < line.length) i++;
      out += line[i++];
    }
    return out;
  };
  const measurement = read(', ');
  const tags: Record<string, string> = {};
  while (line[i] === ',') {
    i++;
    const k = read('=');
    i++;
    tags[k] = read(', ');
  }
  i++;
  const fields: Record<string, number | string> = {};
  for (;;) {
    const k = read('=');
    i++;
    if (line[i] === '"') {
      i++;
      fields[k] = read('"');
      i++;
    } else {
      const raw = read(', ');
      fields[k] = Number(raw.endsWith('i') ? raw.slice(0, -1) : raw);
    }
    if (line[i] !== ',') break;
    i++;
  }
  const ts = Number(line.slice(i + 1));
  assert.ok(Number.isInteger(ts), `timestamp of ${line}`);
  return { measurement, tags, fields, ts };
}

function seriesKey(name: string, labels: Record<string, string>): string {
  return `${name}{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',')}}`;
}

interface Expectation {
  /** copies the store produced (lines with this series and timestamp) */
  min: number;
  /** plus one for every kill that left such a line unacknowledged */
  max: number;
  /** numeric values any copy may have (a string field arrives as 0 in VictoriaMetrics) */
  values: Set<number>;
}

test('SIGKILL mid-run, restart: every round reaches InfluxDB, acknowledged lines once, nothing lost', async (t) => {
  const v = vm!;

  // Life 1, InfluxDB up: killed just as a round's lines are being delivered.
  let a = await launch();
  await waitRounds(a, 2);
  await until('life 1 delivering (outbox emptied)', () => look().outbox.length === 0, a.output);
  const l1 = await killAtNextRound(a, 'delivering');
  assert.ok(roundsLogged(l1.output) >= 3, l1.output);

  // Life 2: InfluxDB goes down; a backlog builds; killed with it queued.
  a = await launch();
  await waitRounds(a, 1);
  await v.stop();
  const atStop = roundsLogged(a.output());
  await waitRounds(a, atStop + 3);
  await until('the sink to notice the outage', () => /cannot reach InfluxDB/.test(a.output()), a.output);
  const l2 = await killAtNextRound(a, 'InfluxDB down, backlog queued');
  const backlogRounds = (u: string[]) =>
    new Set(u.filter((l) => l.startsWith('latency,')).map((l) => parseLine(l).ts)).size;
  assert.ok(
    backlogRounds(l2.unacked) >= 3,
    `backlog at kill 2 holds ${backlogRounds(l2.unacked)} rounds:\n${l2.output}`,
  );

  // Life 3: starts with InfluxDB still down; killed again. The backlog survives the restart whole.
  a = await launch();
  await waitRounds(a, 2);
  const l3 = await killAtNextRound(a, 'InfluxDB still down');
  const u3 = new Set(l3.unacked);
  assert.deepEqual(
    l2.unacked.filter((l) => !u3.has(l)),
    [],
    'nothing queued at kill 2 was dropped by the next life while InfluxDB was down',
  );
  assert.ok(backlogRounds(l3.unacked) > backlogRounds(l2.unacked), 'the backlog grew in life 3');

  // Life 4: InfluxDB is back; the sink sends the backlog as soon as the agent starts. Killed at
  // once: mid-request, or between VictoriaMetrics' 2xx and the ack, or just after.
  await v.restart();
  a = await launch();
  const l4 = await kill(a, 'sending the backlog at start');

  // Life 5: runs, delivers what is left, and stops cleanly.
  a = await launch();
  const life5 = a;
  await waitRounds(life5, 3);
  await until('the outbox to drain in life 5', () => look().outbox.length === 0, life5.output);
  const spawned5 = life5.spawnedAt;
  life5.child.kill('SIGTERM');
  await life5.closed;
  assert.equal(life5.child.exitCode, 0, life5.output());
  const out5 = life5.output();
  assert.match(out5, /InfluxDB took \d+ lines, 0 stay in the outbox/);
  lives.push({
    n: 5,
    spawnedAt: spawned5,
    endedAt: Date.now(),
    how: 'SIGTERM',
    output: out5,
    unacked: inspectAfterDeath('SIGTERM'),
  });
  for (const l of lives) assert.ok(!l.output.includes(TOKEN), 'the token never appears in the log');

  // ---- the store: every logged round is there; nothing is left to send; nothing dead-lettered
  const s = openStore(storePath(), { readonly: true });
  let rounds: Array<{ id: number; started: number; lines: string[] }>;
  try {
    assert.equal(s.outboxRows(), 0, 'outbox empty at the end');
    assert.equal(s.deadLetters(), 0, 'no dead letters');
    rounds = s
      .rounds({ agent: AGENT })
      .map((r) => ({ id: r.id, started: Date.parse(r.started_at), lines: roundToLines(s.getRound(r.id)!) }));
  } finally {
    s.close();
  }
  for (const r of rounds) {
    assert.ok(
      lives.some((l) => r.started >= l.spawnedAt && r.started <= l.endedAt),
      `round ${new Date(r.started).toISOString()} started while an agent ran`,
    );
  }
  for (const l of lives) {
    const stored = rounds.filter((r) => r.started >= l.spawnedAt && r.started <= l.endedAt).length;
    const logged = roundsLogged(l.output);
    // A killed agent may have committed one round whose log line it never wrote; every round it
    // logged as saved must be in the store.
    assert.ok(stored >= logged, `life ${l.n}: ${logged} rounds logged, ${stored} stored:\n${l.output}`);
    assert.ok(
      stored <= logged + (l.how === 'SIGKILL' ? 1 : 0),
      `life ${l.n}: ${logged} rounds logged, ${stored} stored:\n${l.output}`,
    );
  }

  // Whatever a dead agent left in its outbox is a line of a stored round or a heartbeat: the
  // outbox holds the same bytes roundToLines makes from the stored round.
  const roundLines = new Set(rounds.flatMap((r) => r.lines));
  for (const l of lives) {
    for (const line of l.unacked)
      assert.ok(
        roundLines.has(line) || line.startsWith('agent,'),
        `life ${l.n} left an outbox line no stored round makes: ${line}`,
      );
  }

  // ---- VictoriaMetrics: each field of each line, at its timestamp, as many times as allowed
  const unackedAtKills = (line: string) => lives.filter((l) => l.unacked.includes(line)).length;
  const expected = new Map<string, Expectation>();
  const heartbeatLines = new Set(lives.flatMap((l) => l.unacked.filter((line) => line.startsWith('agent,'))));
  for (const line of [...rounds.flatMap((r) => r.lines), ...heartbeatLines]) {
    const p = parseLine(line);
    const resendable = unackedAtKills(line);
    for (const [field, value] of Object.entries(p.fields)) {
      const key = `${seriesKey(`${p.measurement}_${field}`, p.tags)}@${p.ts}`;
      const e = expected.get(key) ?? { min: 0, max: 0, values: new Set<number>() };
      e.min += 1;
      e.max += 1 + resendable;
      e.values.add(typeof value === 'number' ? value : 0);
      expected.set(key, e);
    }
  }
  const held = new Map<string, number[]>();
  for (const series of await v.export(`{agent="${AGENT}"}`)) {
    const { __name__: name, ...labels } = series.metric;
    series.timestamps.forEach((ts, i) => {
      const key = `${seriesKey(name, labels)}@${ts}`;
      held.set(key, [...(held.get(key) ?? []), series.values[i]!]);
    });
  }
  let resent = 0;
  const problems: string[] = [];
  for (const [key, e] of expected) {
    const values = held.get(key) ?? [];
    if (values.length < e.min) problems.push(`${key}: missing (${values.length} of ${e.min})`);
    else if (values.length > e.max)
      problems.push(`${key}: ${values.length} samples, at most ${e.max} allowed (re-sent after its acknowledgement)`);
    for (const x of values)
      if (!e.values.has(x)) problems.push(`${key}: value ${x}, expected ${[...e.values].join(' or ')}`);
    resent += Math.max(0, values.length - e.min);
  }
  for (const key of held.keys()) {
    // Heartbeats delivered before a kill are in no outbox snapshot: counted below instead.
    if (!expected.has(key) && !key.startsWith('agent_'))
      problems.push(`${key}: in VictoriaMetrics but in no stored round`);
  }
  assert.equal(
    problems.length,
    0,
    `every line of every stored round in VictoriaMetrics, acknowledged lines exactly once; ${problems.length} problems:\n${problems.slice(0, 30).join('\n')}`,
  );

  // One point per stored round, at the round's timestamp: distinct timestamps = rounds.
  const sent = await v.export(`latency_sent{agent="${AGENT}",endpoint="anycast",protocol="udp",metric="rtt"}`);
  assert.equal(sent.length, 1);
  assert.deepEqual(
    [...new Set(sent[0]!.timestamps)],
    rounds.map((r) => r.started).sort((x, y) => x - y),
  );
  // A heartbeat at every start and one at the clean stop, none lost (lives last well under the
  // one-minute heartbeat interval).
  const uptime = await v.export(`agent_uptime_s{agent="${AGENT}"}`);
  assert.ok(new Set(uptime[0]?.timestamps ?? []).size >= lives.length + 1, `heartbeats: ${JSON.stringify(uptime)}`);

  // Which unacknowledged lines VictoriaMetrics had nonetheless (their batch was stored, the ack
  // never made it): the next life sent them again.
  const copies = (line: string) => {
    const p = parseLine(line);
    const field = Object.keys(p.fields)[0]!;
    return held.get(`${seriesKey(`${p.measurement}_${field}`, p.tags)}@${p.ts}`)?.length ?? 0;
  };
  t.diagnostic(
    `${rounds.length} rounds over ${lives.length} lives; at each kill: ` +
      [l1, l2, l3, l4]
        .map(
          (l) =>
            `${l.unacked.length} lines unacknowledged, ${l.unacked.filter((x) => copies(x) > 1).length} of them re-sent`,
        )
        .join('; ') +
      `; ${resent} samples held twice in all`,
  );
});
