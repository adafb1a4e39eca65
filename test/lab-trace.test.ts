// `anylat trace` inside the lab (Linux, root; run under `flock /tmp/anylat-lab.lock`): from an
// agent's namespace the anycast address is answered by the edge namespace that holds it, the unicast
// address by the origin's namespace, each at the RTT its links are configured with; after
// `lab fail edge` the anycast trace's hop is the next edge (its longer access link), after `heal`
// it is back. The lab has no router between an agent and an edge or origin (one link each), so a
// route change shows in the hop's RTT (which namespace answered), not in a new address.
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
  const out = await lab('exec', agentId, '--', process.execPath, ANYLAT_BIN, 'trace', address, '--json', '-n', '--max-hops', '4');
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

  it('the anycast address and the unicast origins are reached over their links, at their configured RTTs', async () => {
    const a = d.agents.find((x) => x.region === 'us-east')!;
    const any = await traceFrom(a.id, d.anycast);
    assert.equal(any.reached, true);
    assert.deepEqual(any.hops.map((h) => h.address), [d.anycast]);
    assert.ok(any.hops[0]!.rtt_ms! >= a.anycast.edgeRtt!.minMs - 0.5, `anycast hop ${any.hops[0]!.rtt_ms} ms below the link's ${a.anycast.edgeRtt!.minMs} ms`);
    for (const u of a.unicast) {
      const t = await traceFrom(a.id, u.address);
      assert.equal(t.reached, true, `${u.origin}: ${JSON.stringify(t)}`);
      assert.deepEqual(t.hops.map((h) => h.address), [u.address]);
      assert.ok(t.hops[0]!.rtt_ms! >= u.rtt.minMs - 0.5, `${u.origin} hop ${t.hops[0]!.rtt_ms} ms below the link's ${u.rtt.minMs} ms`);
    }
  });

  it('fail edge: the anycast hop is the next edge (its longer link); heal: back to the nearest', async () => {
    const before = d.agents.find((x) => x.region === 'us-east')!;
    const first = await traceFrom(before.id, d.anycast);

    const failed = JSON.parse(await lab('fail', 'edge', before.anycast.edge!, '--json')) as LabDescription;
    const a = failed.agents.find((x) => x.region === 'us-east')!;
    assert.notEqual(a.anycast.edge, before.anycast.edge);
    const moved = await traceFrom(a.id, d.anycast);
    assert.equal(moved.reached, true);
    // The truth the topology states: the new edge's link is at least its configured floor, which
    // is more than 50 ms above the nearest edge's (us-east -> eu-west is 35 ms one way).
    assert.ok(a.anycast.edgeRtt!.minMs > before.anycast.edgeRtt!.minMs + 50);
    assert.ok(moved.hops[0]!.rtt_ms! >= a.anycast.edgeRtt!.minMs - 0.5, `after fail: ${moved.hops[0]!.rtt_ms} ms, the next edge's link is ${a.anycast.edgeRtt!.minMs} ms`);
    assert.ok(first.hops[0]!.rtt_ms! < a.anycast.edgeRtt!.minMs - 0.5, `before fail: ${first.hops[0]!.rtt_ms} ms`);

    const healed = JSON.parse(await lab('heal', '--json')) as LabDescription;
    const h = healed.agents.find((x) => x.region === 'us-east')!;
    assert.equal(h.anycast.edge, before.anycast.edge);
    const back = await traceFrom(h.id, d.anycast);
    assert.ok(back.hops[0]!.rtt_ms! < a.anycast.edgeRtt!.minMs - 0.5, `after heal: ${back.hops[0]!.rtt_ms} ms`);
  });
});
