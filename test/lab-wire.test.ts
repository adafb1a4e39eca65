// The wire on its own: two namespaces joined by one wire process (several links between them,
// one per case), measured with ping's own time= and with UDP sequence numbers. Linux + root.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DelayLine } from '../agent/lab/delay-line.ts';
import { loadCpus } from '../bench/lib/load.ts';
import {
  addNamespace,
  deleteNamespace,
  directionParams,
  execIn,
  favourSession,
  ipBatch,
  niced,
  spawnIn,
  startWire,
  stopProcesses,
  type LabProcess,
  type WireLink,
  type WireStats,
} from '../agent/lab/index.ts';
import { needsRoot } from './support/root.ts';

const A = 'anylat-wt-a';
const B = 'anylat-wt-b';

// One /30 per link: 10.99.<i>.1 in A, .2 in B.
const LINKS: Array<{ id: string; ab: Partial<WireLink['ab']>; ba: Partial<WireLink['ba']> }> = [
  { id: 'd0', ab: { delayMs: 0 }, ba: { delayMs: 0 } },
  { id: 'd1', ab: { delayMs: 1 }, ba: { delayMs: 1 } },
  { id: 'd10', ab: { delayMs: 10 }, ba: { delayMs: 10 } },
  { id: 'd50', ab: { delayMs: 50 }, ba: { delayMs: 50 } },
  { id: 'loss', ab: { lossPct: 25 }, ba: {} },
  { id: 'jitter', ab: { delayMs: 2, jitterMs: 4 }, ba: { delayMs: 2 } },
  { id: 'reorder', ab: { delayMs: 2, jitterMs: 4, reorder: true }, ba: { delayMs: 2 } },
];
const addrA = (i: number) => `10.99.${i}.1`;
const addrB = (i: number) => `10.99.${i}.2`;
const index = (id: string) => LINKS.findIndex((l) => l.id === id);

let dir: string;
let wire: LabProcess | undefined;

async function pingTimes(
  i: number,
  count: number,
): Promise<{ times: number[]; transmitted: number; received: number }> {
  const r = await execIn(A, 'ping', ['-n', '-c', String(count), '-i', '0.01', '-W', '2', addrB(i)]);
  const times = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  const summary = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  assert.ok(summary, `ping printed no summary: ${r.stdout}${r.stderr}`);
  return { times, transmitted: Number(summary[1]), received: Number(summary[2]) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// Receives numbered UDP datagrams in B until all `count` arrived or 2 s pass without one; resolves
// with the numbers in arrival order. Sends `count` of them from A, `perTick` every millisecond.
// The receiver runs at the lab's niceness, as the lab's hosts do, with a big socket buffer: on a
// busy machine an ordinary receiver falls behind and drops datagrams the wire delivered, or its
// idle timer fires before it reads what waits in its socket, and the test would blame the wire.
async function udpSequence(i: number, count: number, perTick: number): Promise<number[]> {
  const receiver = `
    const s = require('node:dgram').createSocket({ type: 'udp4', recvBufferSize: 8 << 20 });
    const seqs = [];
    const expect = Number(process.argv[2]);
    let timer = setTimeout(done, 10000);
    function done() { process.stdout.write(JSON.stringify(seqs)); process.exit(0); }
    s.on('message', (m) => { seqs.push(m.readUInt32BE(0)); clearTimeout(timer); timer = seqs.length >= expect ? setImmediate(done) : setTimeout(done, 2000); });
    s.bind(7000, process.argv[1], () => process.stderr.write('ready\\n'));`;
  const [cmd, ...args] = niced([process.execPath, '-e', receiver, addrB(i), String(count)]);
  const child = spawnIn(B, cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  favourSession(child.pid!);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const finished = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => (d.toString().includes('ready') ? resolve() : undefined));
    child.on('exit', (code) => reject(new Error(`receiver exited early (${code})`)));
  });
  const sender = `
    const s = require('node:dgram').createSocket('udp4');
    const [to, count, perTick] = process.argv.slice(1).map((v, i) => (i === 0 ? v : Number(v)));
    let seq = 0;
    const tick = () => {
      for (let k = 0; k < perTick && seq < count; k++) { const b = Buffer.alloc(64); b.writeUInt32BE(seq++, 0); s.send(b, 7000, to); }
      if (seq < count) setTimeout(tick, 1); else setTimeout(() => s.close(), 50);
    };
    tick();`;
  const sent = await execIn(A, process.execPath, ['-e', sender, addrB(i), String(count), String(perTick)]);
  assert.equal(sent.code, 0, sent.stderr);
  await finished;
  return JSON.parse(out) as number[];
}

async function wireStats(after: number): Promise<WireStats> {
  // The stats file is rewritten about once a second; wait for one written after `after`.
  for (let k = 0; k < 60; k++) {
    try {
      const s = JSON.parse(readFileSync(join(dir, 'wire-stats.json'), 'utf8')) as WireStats;
      if (Date.parse(s.at) > after) return s;
    } catch {
      // not written yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('wire stats never refreshed');
}

describe('lab wire (Linux, root)', needsRoot('network namespaces and TUN devices'), () => {
  before(async () => {
    assert.equal(process.getuid?.(), 0, 'these tests need root (network namespaces, TUN devices)');
    dir = mkdtempSync(join(tmpdir(), 'anylat-wire-test-'));
    for (const ns of [A, B]) {
      await deleteNamespace(ns);
      await addNamespace(ns);
    }
    const links: WireLink[] = LINKS.map((l, i) => ({
      id: l.id,
      a: { netns: A, ifname: `t${i}` },
      b: { netns: B, ifname: `t${i}` },
      ab: directionParams(l.ab),
      ba: directionParams(l.ba),
    }));
    wire = await startWire(
      { title: 'anylat-wire-test', links, readyFile: join(dir, 'wire.ready'), statsFile: join(dir, 'wire-stats.json') },
      { specFile: join(dir, 'wire-spec.json'), log: join(dir, 'wire.log') },
    );
    for (const [ns, addr] of [
      [A, addrA],
      [B, addrB],
    ] as const) {
      await ipBatch(ns, [
        'link set dev lo up',
        ...LINKS.flatMap((_, i) => [
          `link set dev t${i} addrgenmode none`,
          `address add ${addr(i)}/30 dev t${i}`,
          `link set dev t${i} up`,
        ]),
      ]);
    }
  });

  after(async () => {
    if (wire) await stopProcesses([wire]);
    for (const ns of [A, B]) await deleteNamespace(ns);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const delay of [0, 1, 10, 50]) {
    it(`a ${delay} ms link: every ping RTT is at least 2 × delay, and the median within 1 ms of it`, async () => {
      const { times, received } = await pingTimes(index(`d${delay}`), 40);
      assert.equal(received, 40, 'no loss was configured');
      const floor = 2 * delay;
      assert.ok(Math.min(...times) >= floor, `a packet arrived early: min ${Math.min(...times)} ms < ${floor} ms`);
      assert.ok(
        median(times) <= floor + 1,
        `median ${median(times)} ms, expected ${floor}..${floor + 1} ms (${times.join(' ')})`,
      );
    });
  }

  it('25% loss one way drops about a quarter of the packets, and the counters account for each one', async () => {
    const seqs = await udpSequence(index('loss'), 2000, 20);
    const since = Date.now();
    const share = 1 - seqs.length / 2000;
    // Binomial(2000, 0.25): sd ≈ 0.0097, so ±0.05 is five sd.
    assert.ok(
      Math.abs(share - 0.25) < 0.05,
      `lost ${(share * 100).toFixed(1)}% (${2000 - seqs.length} of 2000), expected about 25%`,
    );
    const stats = (await wireStats(since)).links.loss!;
    assert.equal(stats.ab.lost, 2000 - seqs.length, 'every missing datagram is one the wire counted as lost');
    assert.equal(stats.ab.forwarded, seqs.length);
    assert.equal(stats.ba.lost, 0);
  });

  it('a healthy link loses nothing while every CPU is busy with another process (a browser, a test suite)', async () => {
    const hog = loadCpus();
    try {
      // 20 datagrams a millisecond tick over the 1 ms link; the wire's scheduler is a real-time
      // thread, so the hog cannot hold a packet back long enough to overflow anything.
      const since = Date.now();
      const seqs = await udpSequence(index('d1'), 3000, 20);
      const stats = (await wireStats(since)).links.d1!.ab;
      assert.equal(
        stats.overflow + stats.writeErrors + stats.lost,
        0,
        `the wire dropped packets: ${JSON.stringify(stats)}`,
      );
      assert.equal(
        seqs.length,
        3000,
        `${3000 - seqs.length} of 3000 datagrams lost under load (wire: ${JSON.stringify(stats)})`,
      );
    } finally {
      await hog.stop();
    }
  });

  it('jitter without reordering: every packet arrives, in the order sent', async () => {
    const seqs = await udpSequence(index('jitter'), 600, 2);
    assert.equal(seqs.length, 600);
    const inversions = seqs.filter((s, k) => k > 0 && s < seqs[k - 1]!).length;
    assert.equal(inversions, 0, 'packets were reordered');
  });

  it('jitter with reorder allowed does reorder (so the order check above can fail)', async () => {
    const seqs = await udpSequence(index('reorder'), 600, 2);
    assert.equal(seqs.length, 600);
    const inversions = seqs.filter((s, k) => k > 0 && s < seqs[k - 1]!).length;
    assert.ok(inversions > 10, `only ${inversions} inversions with 4 ms jitter on 0.5 ms spacing`);
  });

  it('jitter adds delay only: ping over 2 ms + [0, 4] ms one way stays within [4, 8] ms, mean near 6', async () => {
    const { times } = await pingTimes(index('jitter'), 100);
    assert.ok(Math.min(...times) >= 4, `min ${Math.min(...times)} ms < 4 ms`);
    const mean = times.reduce((s, t) => s + t, 0) / times.length;
    // uniform [0, 4] one way: mean +2 ms; sd of the mean of 100 ≈ 0.12 ms
    assert.ok(Math.abs(mean - 6) < 1, `mean ${mean.toFixed(2)} ms, expected about 6 ms`);
  });
});

describe('delay line (the wire scheduling rules, no devices)', () => {
  const pkt = (n: number) => Buffer.from([n]);
  // A deterministic stand-in for Math.random: cycles through the given values.
  const cycle = (values: number[]) => {
    let i = 0;
    return () => values[i++ % values.length]!;
  };

  it('holds each packet for the delay plus its jitter, and never lets one overtake another', () => {
    const line = new DelayLine(directionParams({ delayMs: 10, jitterMs: 4 }), cycle([0.9, 0.0]));
    line.offer(pkt(1), 0); // due 10 + 3.6
    line.offer(pkt(2), 1); // 11 + 0 would overtake: held until 13.6
    assert.equal(line.takeDue(13.5), undefined);
    assert.deepEqual(line.takeDue(13.6), pkt(1));
    assert.deepEqual(line.takeDue(13.6), pkt(2));
    assert.equal(line.size, 0);
  });

  it('with reorder allowed, packets leave by due time', () => {
    const line = new DelayLine(directionParams({ delayMs: 10, jitterMs: 4, reorder: true }), cycle([0.9, 0.0]));
    line.offer(pkt(1), 0); // due 13.6
    line.offer(pkt(2), 1); // due 11
    assert.equal(line.nextDue(), 11);
    assert.deepEqual(line.takeDue(12), pkt(2));
    assert.equal(line.takeDue(12), undefined);
    assert.deepEqual(line.takeDue(14), pkt(1));
  });

  it('drops the configured share and counts it; a full queue drops and counts too', () => {
    const lossy = new DelayLine(directionParams({ lossPct: 25 }), cycle([0.1, 0.3, 0.5, 0.7]));
    const verdicts = [1, 2, 3, 4].map((n) => lossy.offer(pkt(n), 0));
    assert.deepEqual(verdicts, ['lost', 'queued', 'queued', 'queued']);
    assert.equal(lossy.stats.lost, 1);
    const small = new DelayLine(directionParams({ delayMs: 5, queueLimit: 2 }));
    assert.deepEqual(
      [1, 2, 3].map((n) => small.offer(pkt(n), 0)),
      ['queued', 'queued', 'overflow'],
    );
    assert.equal(small.stats.overflow, 1);
  });
});
