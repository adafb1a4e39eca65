// `anylat lab` end to end, through the CLI a user types: up, reachability and measured RTTs against
// the topology's configured delays, UDP/TCP through an edge to the origins' reflectors (their
// site), fail/heal of origins and edges, status, down (twice, and after a crash), and the refusal
// without root. Linux + root; it replaces any lab already up (it starts with `lab down`).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { ANYLAT_BIN, NOBODY, ROOT, assertNobodyCanRead, runAnylat } from './support/net.ts';
import { labUp, loadTopology, parseTopology, type LabDescription, type LabStatus } from '../agent/lab/index.ts';
import { rateCommands } from '../agent/lab/lab.ts';
import { AnylatError, ConfigError } from '../agent/util/errors.ts';
import { needsRoot } from './support/root.ts';

const STATE = '/run/anylat-lab/state.json';

async function lab(...args: string[]): Promise<string> {
  const r = await runAnylat(['lab', ...args], { timeoutMs: 90_000 });
  assert.equal(r.code, 0, `anylat lab ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

function labNamespaces(): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith('anylat-')) : [];
}

function running(pid: number, startTime: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[0] !== 'Z' && rest[19] === startTime;
  } catch {
    return false;
  }
}

/** ping's own time= values from inside a namespace (kernel timestamps, not ours). */
async function ping(netns: string, address: string, count = 40): Promise<number[]> {
  const out = await new Promise<string>((resolve) => {
    const child = spawn(
      'ip',
      ['netns', 'exec', netns, 'ping', '-n', '-c', String(count), '-i', '0.01', '-W', '2', address],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.on('close', () => resolve(text));
  });
  return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * ping RTTs match a path's configured delays: none below the floor (ping prints whole ms from
 * 100 ms up, hence the 0.5 ms rounding allowance), the median within 1 ms of the configured mean.
 */
function assertRtt(times: number[], expected: { minMs: number; meanMs: number }, what: string): void {
  assert.ok(times.length >= 30, `${what}: only ${times.length} replies`);
  const min = Math.min(...times);
  const med = median(times);
  assert.ok(min >= expected.minMs - 0.5, `${what}: min ${min} ms is below the configured ${expected.minMs} ms`);
  assert.ok(
    Math.abs(med - expected.meanMs) <= 1,
    `${what}: median ${med} ms, configured mean ${expected.meanMs} ms (min ${min})`,
  );
}

interface PathRow {
  endpoint: string;
  protocol: string;
  metric: string;
  site?: string;
  received: number;
  flagged: number;
  min_ms?: number;
  p50_ms?: number;
}

/**
 * A path's statistic, or undefined when every sample that came back was flagged (the prober's
 * event loop stalled, e.g. on a loaded machine), which is then asserted instead.
 */
function unflagged(p: PathRow, key: 'min_ms' | 'p50_ms'): number | undefined {
  if (p[key] === undefined)
    assert.equal(
      p.flagged,
      p.received,
      `${p.endpoint} ${p.protocol} ${p.metric}: no ${key} although unflagged samples came back`,
    );
  return p[key];
}

/** One `anylat compare` round run inside an agent's namespace: the real probes, edge and reflectors. */
async function compareFrom(d: LabDescription, region: string): Promise<PathRow[]> {
  const agent = d.agents.find((a) => a.region === region)!;
  const r = await runAnylat(
    [
      'lab',
      'exec',
      agent.id,
      '--',
      process.execPath,
      ANYLAT_BIN,
      'compare',
      d.anycast,
      ...d.origins.map((o) => `${o.region}=${o.address}`),
      '--protocol',
      'udp,tcp',
      '--samples',
      '4',
      '--spacing',
      '20ms',
      '--timeout',
      '1s',
      '--json',
    ],
    { timeoutMs: 60_000 },
  );
  assert.equal(r.code, 0, `compare from ${region}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { paths: PathRow[] }).paths;
}

function row(paths: PathRow[], endpoint: string, protocol: string, metric: string): PathRow {
  const p = paths.find((x) => x.endpoint === endpoint && x.protocol === protocol && x.metric === metric);
  assert.ok(p, `no ${endpoint} ${protocol} ${metric} in ${JSON.stringify(paths)}`);
  return p;
}

function agentOf(d: LabDescription, region: string) {
  return d.agents.find((a) => a.region === region)!;
}

describe(
  'anylat lab (Linux, root)',
  needsRoot('network namespaces and TUN devices for the lab, and uid 65534 for the non-root check'),
  () => {
    let d: LabDescription;

    before(async () => {
      assert.equal(process.getuid?.(), 0, 'these tests need root (network namespaces, TUN devices)');
      await lab('down');
      d = JSON.parse(await lab('up', '--json')) as LabDescription;
    });

    after(async () => {
      await runAnylat(['lab', 'down'], { timeoutMs: 60_000 });
    });

    it('up creates one namespace per agent, edge and origin, all anylat-', () => {
      const expected = [...d.agents, ...d.edges, ...d.origins].map((n) => n.netns).sort();
      assert.deepEqual(labNamespaces().sort(), expected);
      assert.deepEqual(
        d.agents.map((a) => a.region),
        ['us-east', 'eu-west', 'ap-south'],
      );
      assert.deepEqual(
        d.origins.map((o) => o.region),
        ['us-east', 'eu-west'],
      );
    });

    it('every agent reaches the anycast address (answered by its edge) and every origin, at the configured delays', async () => {
      const checks = d.agents.flatMap((a) => [
        ping(a.netns, d.anycast).then((t) =>
          assertRtt(t, a.anycast.edgeRtt!, `${a.id} -> anycast (edge ${a.anycast.edge})`),
        ),
        ...a.unicast.map((u) =>
          ping(a.netns, u.address).then((t) => assertRtt(t, u.rtt, `${a.id} -> origin ${u.origin} ${u.address}`)),
        ),
      ]);
      await Promise.all(checks);
    });

    it('UDP (STAMP) and TCP echo through the edge reach the nearest origin, which names its site', async () => {
      for (const region of ['ap-south', 'us-east']) {
        const a = agentOf(d, region);
        const paths = await compareFrom(d, region);
        for (const [protocol, metric] of [
          ['udp', 'rtt'],
          ['tcp', 'rtt'],
        ] as const) {
          const p = row(paths, 'anycast', protocol, metric);
          assert.equal(p.received, 4, `${region} anycast ${protocol}: ${JSON.stringify(p)}`);
          assert.equal(p.site, a.anycast.origin, `${region} anycast ${protocol} site`);
          for (const u of a.unicast) assert.equal(row(paths, u.origin, protocol, metric).site, u.origin);
        }
        // The UDP round trip crosses access + backbone links both ways: never less than that.
        const udpMin = unflagged(row(paths, 'anycast', 'udp', 'rtt'), 'min_ms');
        if (udpMin !== undefined)
          assert.ok(
            udpMin >= a.anycast.originRtt!.minMs - 0.05,
            `${region} udp via edge ${udpMin} ms < configured ${a.anycast.originRtt!.minMs} ms`,
          );
        // The edge terminates TCP: the handshake is answered over the access link alone.
        const connect = unflagged(row(paths, 'anycast', 'tcp', 'connect'), 'p50_ms');
        if (connect !== undefined)
          assert.ok(connect < a.anycast.edgeRtt!.meanMs + 2, `${region} tcp connect to the edge took ${connect} ms`);
      }
    });

    it('fail origin eu-west: the edges relay to us-east, so the site seen via anycast changes; heal restores it', async () => {
      assert.equal(agentOf(d, 'ap-south').anycast.origin, 'eu-west');
      const failed = JSON.parse(await lab('fail', 'origin', 'eu-west', '--json')) as LabDescription;
      assert.deepEqual(failed.failures.origins, ['eu-west']);
      assert.equal(agentOf(failed, 'ap-south').anycast.origin, 'us-east');
      const paths = await compareFrom(failed, 'ap-south');
      const udp = row(paths, 'anycast', 'udp', 'rtt');
      assert.equal(udp.site, 'us-east');
      const udpMin = unflagged(udp, 'min_ms');
      if (udpMin !== undefined)
        assert.ok(
          udpMin >= agentOf(failed, 'ap-south').anycast.originRtt!.minMs - 0.05,
          `udp via edge to us-east: ${udpMin} ms`,
        );
      assert.equal(row(paths, 'anycast', 'tcp', 'rtt').site, 'us-east');
      // The failed origin's unicast address stops answering altogether.
      assert.equal(row(paths, 'eu-west', 'udp', 'rtt').received, 0);

      const healed = JSON.parse(await lab('heal', 'origin', 'eu-west', '--json')) as LabDescription;
      assert.deepEqual(healed.failures.origins, []);
      const again = await compareFrom(healed, 'ap-south');
      assert.equal(row(again, 'anycast', 'udp', 'rtt').site, 'eu-west');
      assert.equal(row(again, 'eu-west', 'udp', 'rtt').received, 4);
    });

    it('fail edge ap-south: its agent is routed to the next-nearest edge (longer RTT); heal moves it back', async () => {
      const failed = JSON.parse(await lab('fail', 'edge', 'ap-south', '--json')) as LabDescription;
      const a = agentOf(failed, 'ap-south');
      assert.equal(a.anycast.edge, 'eu-west');
      assertRtt(await ping(a.netns, d.anycast), a.anycast.edgeRtt!, 'ap-south -> anycast after its edge failed');
      assert.ok(a.anycast.edgeRtt!.minMs > agentOf(d, 'ap-south').anycast.edgeRtt!.minMs + 50);

      const healed = JSON.parse(await lab('heal', '--json')) as LabDescription;
      const h = agentOf(healed, 'ap-south');
      assert.equal(h.anycast.edge, 'ap-south');
      assertRtt(await ping(h.netns, d.anycast), h.anycast.edgeRtt!, 'ap-south -> anycast after heal');
    });

    it('status reports the lab up: every process alive, every link up with its delay', async () => {
      const s = JSON.parse(await lab('status', '--json')) as LabStatus;
      assert.equal(s.up, true);
      assert.equal(s.processes.length, 1 + d.edges.length + d.origins.length);
      assert.ok(s.processes.every((p) => p.alive));
      assert.equal(s.links.length, d.links.length);
      assert.ok(s.links.every((l) => l.up));
      const text = await lab('status');
      assert.match(text, /lab up/);
      assert.match(text, /agent\/ap-south~origin\/us-east\s+internet\s+120\.25/);
    });

    it('down removes every namespace and process; a second down is fine', async () => {
      const state = JSON.parse(readFileSync(STATE, 'utf8')) as {
        processes: Array<{ pid: number; startTime: string; name: string }>;
      };
      assert.match(await lab('down'), /removed 8 namespaces/);
      assert.deepEqual(labNamespaces(), []);
      for (const p of state.processes)
        assert.equal(running(p.pid, p.startTime), false, `${p.name} (pid ${p.pid}) still runs`);
      assert.equal(existsSync(STATE), false);
      assert.match(await lab('down'), /nothing to remove/);
    });

    it('down cleans up after a crash (wire and edges killed with SIGKILL, state left behind)', async () => {
      const up = JSON.parse(await lab('up', '--json')) as LabDescription;
      for (const p of up.processes.filter((x) => x.role === 'wire' || x.role === 'edge'))
        process.kill(p.pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
      const s = JSON.parse(await lab('status', '--json')) as LabStatus;
      assert.equal(s.up, false, 'status notices the dead processes');
      assert.ok(s.processes.some((p) => !p.alive));
      await lab('down');
      assert.deepEqual(labNamespaces(), []);
      for (const p of up.processes)
        assert.equal(running(p.pid, p.startTime), false, `${p.name} (pid ${p.pid}) still runs`);
    });

    it('a part that cannot start: up names it with the end of its log, and leaves nothing behind', async () => {
      const t = loadTopology();
      t.ports.http = t.ports.tcp; // the reflector cannot bind HTTP where its TCP echo listens
      await assert.rejects(labUp({ topology: t }), (err: unknown) => {
        assert.ok(err instanceof AnylatError);
        assert.equal(err.code, 'ANYLAT_LAB_START');
        assert.match(err.message, /^origin\/(us-east|eu-west) exited before listening/);
        assert.match(err.message, /EADDRINUSE/);
        return true;
      });
      assert.deepEqual(labNamespaces(), []);
      assert.equal(existsSync(STATE), false);
    });

    it('without root: exit 2 and a message that says so', async () => {
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        assertNobodyCanRead();
        const child = spawn(process.execPath, [ANYLAT_BIN, 'lab', 'up'], {
          cwd: ROOT,
          uid: NOBODY,
          gid: NOBODY,
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (x: Buffer) => (stderr += x.toString()));
        child.on('close', (code) => resolve({ code, stderr }));
      });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /needs root/);
    });
  },
);

describe('lab topology file (no root needed)', () => {
  it('the default topology resolves to 8 namespaces and 21 links with delays from its formula', () => {
    const t = loadTopology();
    assert.equal(t.agents.length + t.edges.length + t.origins.length, 8);
    assert.equal(t.links.length, 3 * 3 + 3 * 2 + 3 * 2);
    const link = (id: string) => t.links.find((l) => l.id === id)!;
    // internet: 95 ms × 1.25 + 1.5; access in-region: 0 × 1 + 1; backbone: 55 × 1 + 0.5
    assert.equal(link('agent/ap-south~origin/us-east').delayMs, 120.25);
    assert.equal(link('agent/ap-south~edge/ap-south').delayMs, 1);
    assert.equal(link('edge/ap-south~origin/eu-west').delayMs, 55.5);
    assert.equal(link('agent/ap-south~origin/us-east').jitterMs, 2);
    // every address is private or benchmarking, every /30 distinct
    const addrs = t.links.flatMap((l) => [l.a.address, l.b.address]);
    assert.equal(new Set(addrs).size, addrs.length);
    assert.ok(addrs.every((a) => a.startsWith('10.77.')));
  });

  it('overrides set one link exactly; distances are symmetric', () => {
    const t = parseTopology(
      [
        'agents: [x, y]',
        'edges: [x]',
        'origins: { y: 10.78.0.9 }',
        'distance_ms: { y: { x: 40 } }',
        'overrides:',
        '  - { between: [origin/y, agent/x], delay_ms: 7, loss_pct: 1 }',
      ].join('\n'),
    );
    const l = t.links.find((k) => k.id === 'agent/x~origin/y')!;
    assert.deepEqual([l.delayMs, l.jitterMs, l.lossPct], [7, 2, 1]);
    assert.equal(t.links.find((k) => k.id === 'edge/x~origin/y')!.delayMs, 40.5);
  });

  it('a bad file: every problem at once, each with its file, line and path', () => {
    const text = [
      'anycast: 8.8.8.8',
      'agents: [us-east, EU]',
      'edges: [us-east]',
      'origins: { us-east: 10.78.0.1, eu-west: 10.78.0.1 }',
      'classes:',
      '  access: { jitter_ms: -1 }',
      'colour: blue',
    ].join('\n');
    assert.throws(
      () => parseTopology(text, 'bad.yaml'),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.exitCode, 2);
        assert.deepEqual(err.problems, [
          'bad.yaml:7: colour: unknown key (known: anycast, ports, link_prefix, agents, edges, origins, distance_ms, classes, overrides)',
          'bad.yaml:1: anycast: expected an IPv4 address in 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 198.18.0.0/15, got "8.8.8.8"',
          'bad.yaml:2: agents[1]: expected a region name (lower-case letters, digits, "-"; at most 12 characters, starting with a letter), got "EU"',
          'bad.yaml:4: origins.eu-west: address 10.78.0.1 is already used; every origin needs its own, other than the anycast address',
          'bad.yaml:6: classes.access.jitter_ms: expected ms ≥ 0, got -1',
        ]);
        return true;
      },
    );
  });

  it('rate_mbit caps a class or one link; each end of a capped link gets a tbf qdisc, the dns port its own number', () => {
    const t = parseTopology(
      [
        'agents: [x]',
        'edges: [x]',
        'origins: { y: 10.78.0.9 }',
        'distance_ms: { y: { x: 40 } }',
        'classes:',
        '  internet: { rate_mbit: 50 }',
        'overrides:',
        '  - { between: [agent/x, edge/x], rate_mbit: 200 }',
        '  - { between: [origin/y, agent/x], rate_mbit: 0 }',
      ].join('\n'),
    );
    assert.deepEqual(
      t.links.map((l) => [l.id, l.rateMbit]),
      [
        ['agent/x~edge/x', 200],
        ['edge/x~origin/y', undefined],
        ['agent/x~origin/y', undefined],
      ],
    );
    assert.equal(t.ports.dns, 8053);
    const agent = t.agents[0]!;
    assert.deepEqual(rateCommands(t, agent), ['qdisc replace dev e-x root tbf rate 200mbit burst 25000 latency 50ms']);
    assert.deepEqual(rateCommands(t, t.edges[0]!), [
      'qdisc replace dev a-x root tbf rate 200mbit burst 25000 latency 50ms',
    ]);
    assert.deepEqual(rateCommands(t, t.origins[0]!), []);
    const shipped = loadTopology();
    assert.deepEqual([...new Set(shipped.links.map((l) => `${l.class} ${l.rateMbit}`))].sort(), [
      'access 100',
      'backbone 1000',
      'internet 100',
    ]);
    assert.throws(
      () =>
        parseTopology(
          'agents: [x]\nedges: [x]\norigins: { y: 10.78.0.9 }\ndistance_ms: { y: { x: 1 } }\nports: { dns: 862 }\n',
          't.yaml',
        ),
      {
        message:
          't.yaml:5: ports.dns: the dns port must differ from the udp port (both 862): DNS listens on UDP and TCP\nt.yaml:5: ports.dns: the dns port must differ from the tcp port (both 862): DNS listens on UDP and TCP',
      },
    );
  });

  it('a missing distance names the pair and the key to add', () => {
    assert.throws(
      () => parseTopology('agents: [us-east, eu-west]\nedges: [us-east]\norigins: {us-east: 10.78.0.1}\n', 't.yaml'),
      {
        message: 't.yaml:1: distance_ms: no one-way delay between eu-west and us-east: add distance_ms.eu-west.us-east',
      },
    );
  });

  it('lab show checks a file without root; a bad one exits 2 with the message', async () => {
    const ok = await runAnylat(['lab', 'show']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(
      ok.stdout,
      /ap-south\s+ap-south -> eu-west\s+2 \/ 2\.2\s+113 \/ 113\.3\s+240\.5 \/ 242\.5\s+140\.5 \/ 142\.5/,
    );
    const bad = await runAnylat(['lab', 'show', '--topology', '/nonexistent/topology.yaml']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /\/nonexistent\/topology\.yaml: cannot read the topology file \(ENOENT\)/);
  });
});
