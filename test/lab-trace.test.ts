// `anylat trace` inside the lab (Linux, root; run under `flock /tmp/anylat-lab.lock`): from an
// agent's namespace a trace to the anycast address crosses the namespaces as routers: hop 1 is the
// edge (its end of the agent's access link), hop 2 the origin serving that edge (its end of the
// backbone link), the last hop the anycast address; each hop at no less than its links' configured
// floor. `lab fail origin` (the site moves) and `lab fail edge` change the hop ADDRESSES to the
// ones the lab description states, and `heal` brings the first ones back. The unicast origins are
// one internet link away: one hop.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { LabDescription } from '../agent/lab/index.ts';
import type { TraceResult } from '../agent/net/trace.ts';
import { ANYLAT_BIN, runAnylat } from './support/net.ts';

async function lab(...args: string[]): Promise<string> {
  const r = await runAnylat(['lab', ...args], { timeoutMs: 90_000 });
  assert.equal(r.code, 0, `anylat lab ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function traceFrom(agentId: string, address: string): Promise<TraceResult> {
  const out = await lab(
    'exec',
    agentId,
    '--',
    process.execPath,
    ANYLAT_BIN,
    'trace',
    address,
    '--json',
    '-n',
    '--max-hops',
    '6',
  );
  return JSON.parse(out) as TraceResult;
}

describe('anylat trace in the lab (Linux, root)', () => {
  let d: LabDescription;
  before(async () => {
    assert.equal(process.getuid?.(), 0, 'these tests need root (network namespaces, TUN devices)');
    await lab('down');
    d = JSON.parse(await lab('up', '--json')) as LabDescription;
  });
  after(async () => {
    await runAnylat(['lab', 'down'], { timeoutMs: 60_000 });
  });

  const addresses = (t: TraceResult) => t.hops.map((h) => h.address);

  it("the anycast trace crosses the edge and the serving origin, each hop at its links' floor; unicast is one hop", async () => {
    for (const a of d.agents) {
      const any = await traceFrom(a.id, d.anycast);
      assert.equal(any.reached, true, `${a.region}: ${JSON.stringify(any)}`);
      assert.ok(any.hops.length >= 3, `${a.region}: ${JSON.stringify(any.hops)}`);
      assert.deepEqual(
        addresses(any),
        a.anycast.trace,
        `${a.region}: hops through edge ${a.anycast.edge}, origin ${a.anycast.origin}`,
      );
      // hop 1: the edge over the access link; hop 2 and the last: also over the backbone link.
      assert.ok(any.hops[0]!.rtt_ms! >= a.anycast.edgeRtt!.minMs - 0.5, `${a.region} hop 1: ${any.hops[0]!.rtt_ms} ms`);
      for (const h of any.hops.slice(1))
        assert.ok(
          h.rtt_ms! >= a.anycast.originRtt!.minMs - 0.5,
          `${a.region} hop ${h.ttl}: ${h.rtt_ms} ms below ${a.anycast.originRtt!.minMs}`,
        );
    }
    const a = d.agents.find((x) => x.region === 'us-east')!;
    for (const u of a.unicast) {
      const t = await traceFrom(a.id, u.address);
      assert.equal(t.reached, true, `${u.origin}: ${JSON.stringify(t)}`);
      assert.deepEqual(addresses(t), [u.address]);
      assert.ok(
        t.hops[0]!.rtt_ms! >= u.rtt.minMs - 0.5,
        `${u.origin} hop ${t.hops[0]!.rtt_ms} ms below the link's ${u.rtt.minMs} ms`,
      );
    }
  });

  it('fail origin: the site moves and the hop addresses change; heal: the first ones come back', async () => {
    const before = d.agents.find((x) => x.region === 'ap-south')!;
    const first = await traceFrom(before.id, d.anycast);
    assert.deepEqual(addresses(first), before.anycast.trace);

    const failed = JSON.parse(await lab('fail', 'origin', before.anycast.origin!, '--json')) as LabDescription;
    const a = failed.agents.find((x) => x.region === before.region)!;
    assert.notEqual(a.anycast.origin, before.anycast.origin);
    assert.equal(a.anycast.edge, before.anycast.edge);
    const moved = await traceFrom(a.id, d.anycast);
    assert.equal(moved.reached, true, JSON.stringify(moved));
    assert.deepEqual(addresses(moved), a.anycast.trace);
    assert.notDeepEqual(addresses(moved), addresses(first), 'the site moved: the origin hop must change');
    assert.ok(moved.hops[1]!.rtt_ms! >= a.anycast.originRtt!.minMs - 0.5, `origin hop ${moved.hops[1]!.rtt_ms} ms`);

    await lab('heal', '--json');
    const back = await traceFrom(a.id, d.anycast);
    assert.deepEqual(addresses(back), addresses(first));
  });

  it('fail edge: the anycast trace enters at the next edge (other addresses, its longer link); heal: back', async () => {
    const before = d.agents.find((x) => x.region === 'us-east')!;
    const first = await traceFrom(before.id, d.anycast);

    const failed = JSON.parse(await lab('fail', 'edge', before.anycast.edge!, '--json')) as LabDescription;
    const a = failed.agents.find((x) => x.region === 'us-east')!;
    assert.notEqual(a.anycast.edge, before.anycast.edge);
    const moved = await traceFrom(a.id, d.anycast);
    assert.equal(moved.reached, true);
    assert.deepEqual(addresses(moved), a.anycast.trace);
    assert.notEqual(moved.hops[0]!.address, first.hops[0]!.address);
    // The truth the topology states: the new edge's link is at least its configured floor, which
    // is more than 50 ms above the nearest edge's (us-east -> eu-west is 35 ms one way).
    assert.ok(a.anycast.edgeRtt!.minMs > before.anycast.edgeRtt!.minMs + 50);
    assert.ok(
      moved.hops[0]!.rtt_ms! >= a.anycast.edgeRtt!.minMs - 0.5,
      `after fail: ${moved.hops[0]!.rtt_ms} ms, the next edge's link is ${a.anycast.edgeRtt!.minMs} ms`,
    );

    const healed = JSON.parse(await lab('heal', '--json')) as LabDescription;
    const h = healed.agents.find((x) => x.region === 'us-east')!;
    assert.equal(h.anycast.edge, before.anycast.edge);
    const back = await traceFrom(h.id, d.anycast);
    assert.deepEqual(addresses(back), addresses(first));
    assert.ok(back.hops[0]!.rtt_ms! < a.anycast.edgeRtt!.minMs - 0.5, `after heal: ${back.hops[0]!.rtt_ms} ms`);
  });
});
