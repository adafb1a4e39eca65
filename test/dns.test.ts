// The dns protocol on real sockets: the reflector's DNS part (CHAOS TXT and NSID with its site, over
// UDP and TCP; REFUSED for the rest; never a larger answer than the query over UDP; per-source rate
// limit), the dns probe against it, a site change seen as an event, and the CLI and config wiring.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { compareSpec } from '../agent/commands/compare.ts';
import { reflectorOptions } from '../agent/commands/reflector.ts';
import { parseConfig } from '../agent/config/load.ts';
import { ConfigError, UsageError } from '../agent/util/errors.ts';
import { encodeSiteQuery, PADDED_QUERY_BYTES, TcpFramer } from '../agent/core/dns-codec.ts';
import { createDnsProbe } from '../agent/probe/dns.ts';
import { startReflector, type RunningReflector } from '../agent/reflector/index.ts';
import { deriveEvents } from '../agent/round/events.ts';
import { runRound } from '../agent/round/run-round.ts';
import { roundToLines } from '../agent/core/line-protocol.ts';
import { LagMonitor } from '../agent/util/lag.ts';
import { freePort, freeUdpPort, refusedPort } from './support/net.ts';

const SITE = 'edge-fra';

async function dnsReflector(site: string, bind: string, port = 0, ratePerSourceQps = 0): Promise<RunningReflector> {
  return startReflector({
    site,
    binds: [bind],
    udp: false,
    tcp: false,
    http: false,
    dns: { port, ratePerSourceQps },
    log: () => {},
  });
}

function dnsPort(r: RunningReflector): number {
  return r.listening.find((l) => l.kind === 'dns')!.port;
}

/** Sends one datagram and collects what comes back within `waitMs`. */
async function udpExchange(port: number, message: Buffer, waitMs = 1000, host = '127.0.0.1'): Promise<Buffer[]> {
  const socket = createSocket('udp4');
  const got: Buffer[] = [];
  socket.on('message', (m) => got.push(m));
  await new Promise<void>((resolve) => socket.connect(port, host, () => resolve()));
  socket.send(message);
  await new Promise((resolve) => setTimeout(resolve, waitMs));
  socket.close();
  return got;
}

/** One query over a fresh TCP connection, as dig +tcp does. */
async function tcpExchange(port: number, message: Buffer): Promise<Buffer> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const framer = new TcpFramer();
  const len = Buffer.alloc(2);
  len.writeUInt16BE(message.length);
  socket.write(Buffer.concat([len, message]));
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      socket.on('data', (c: Buffer) => {
        const m = framer.push(c);
        if (m.length > 0) resolve(m[0]!);
      });
      socket.on('error', reject);
      setTimeout(() => reject(new Error('no TCP answer within 5 s')), 5000);
    });
  } finally {
    socket.destroy();
  }
}

/** What `dig CH TXT <name>` sends, with or without `+nsid` (dig's EDNS size is 1232). */
function digQuery(
  name: string,
  opts: { nsid?: boolean; cls?: 'CH' | 'IN'; type?: 'TXT' | 'A'; rd?: boolean } = {},
): Buffer {
  const packet: dnsPacket.Packet = {
    type: 'query',
    id: 4242,
    flags: opts.rd === false ? 0 : dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: opts.type ?? 'TXT', class: opts.cls ?? 'CH' }],
  };
  if (opts.nsid)
    packet.additionals = [
      {
        type: 'OPT',
        name: '.',
        udpPayloadSize: 1232,
        flags: 0,
        options: [{ code: 3, data: Buffer.alloc(0) }],
      } as unknown as dnsPacket.Answer,
    ];
  return dnsPacket.encode(packet);
}

function txtOf(p: dnsPacket.DecodedPacket): string[] {
  return (p.answers ?? [])
    .filter((a) => a.type === 'TXT')
    .map((a) => Buffer.concat((a as { data: Buffer[] }).data).toString());
}

function nsidOf(p: dnsPacket.DecodedPacket): string | undefined {
  const opt = (p.additionals ?? []).find((a) => a.type === 'OPT') as unknown as
    { options: Array<{ code: number; data: Buffer }> } | undefined;
  return opt?.options.find((o) => o.code === 3)?.data.toString();
}

describe('reflector --dns', () => {
  let reflector: RunningReflector;
  let port: number;
  before(async () => {
    reflector = await dnsReflector(SITE, '127.0.0.1');
    port = dnsPort(reflector);
  });
  after(() => reflector.close());

  test('answers CHAOS TXT hostname.bind and id.server with its site over TCP, authoritative, without recursion', async () => {
    for (const name of ['hostname.bind', 'id.server', 'HOSTNAME.BIND']) {
      const a = dnsPacket.decode(await tcpExchange(port, digQuery(name)));
      assert.equal(a.id, 4242);
      assert.equal(a.type, 'response');
      assert.equal((a as { rcode?: string }).rcode, 'NOERROR', name);
      assert.deepEqual(txtOf(a), [SITE], name);
      assert.equal(a.flag_aa, true);
      assert.equal(a.flag_ra, false, 'no recursion offered');
    }
  });

  test('answers NSID (EDNS option 3) and the TXT over UDP when the answer fits in the query it answers', async () => {
    const query = encodeSiteQuery({ id: 99, qname: 'hostname.bind', qtype: 'TXT', nsid: true });
    assert.equal(query.length, PADDED_QUERY_BYTES);
    const [reply, extra] = await udpExchange(port, query);
    assert.ok(reply, 'an answer');
    assert.equal(extra, undefined, 'one answer only');
    assert.ok(reply.length <= query.length, `answer ${reply.length} bytes ≤ query ${query.length} bytes`);
    const a = dnsPacket.decode(reply);
    assert.equal(a.flag_tc, false);
    assert.equal(nsidOf(a), SITE);
    assert.deepEqual(txtOf(a), [SITE]);
  });

  test('REFUSED for every other question, with no answer records, over UDP and TCP', async () => {
    for (const [name, cls, type] of [
      ['example.com', 'IN', 'A'],
      ['hostname.bind', 'IN', 'TXT'],
      ['version.bind', 'CH', 'TXT'],
      ['hostname.bind', 'CH', 'A'],
    ] as const) {
      const viaTcp = dnsPacket.decode(await tcpExchange(port, digQuery(name, { cls, type })));
      assert.equal((viaTcp as { rcode?: string }).rcode, 'REFUSED', `${name} ${cls} ${type}`);
      assert.equal(viaTcp.answers?.length ?? 0, 0);
      assert.equal(viaTcp.flag_ra, false);
      const [viaUdp] = await udpExchange(port, digQuery(name, { cls, type }), 500);
      assert.ok(viaUdp);
      assert.equal((dnsPacket.decode(viaUdp) as { rcode?: string }).rcode, 'REFUSED');
    }
  });

  test('over UDP an answer is never larger than its query: a plain query (no EDNS) gets TC, and the TCP retry gets the site', async () => {
    const query = digQuery('hostname.bind', { nsid: true });
    const [reply] = await udpExchange(port, query);
    assert.ok(reply);
    assert.ok(reply.length <= query.length, `answer ${reply.length} bytes ≤ query ${query.length} bytes`);
    const a = dnsPacket.decode(reply);
    assert.equal(a.flag_tc, true, 'truncated');
    assert.equal(a.answers?.length ?? 0, 0);
    const plain = digQuery('id.server');
    const [r2] = await udpExchange(port, plain);
    assert.ok(r2 && r2.length <= plain.length && r2.length <= 512);
    assert.deepEqual(txtOf(dnsPacket.decode(await tcpExchange(port, plain))), [SITE]);
  });

  test('drops responses and runts, and answers odd queries with a 12-byte header only', async () => {
    const response = dnsPacket.encode({
      type: 'response',
      id: 1,
      flags: 0,
      questions: [{ name: 'hostname.bind', type: 'TXT', class: 'CH' }],
    });
    assert.deepEqual(await udpExchange(port, response, 300), [], 'a response is never answered');
    assert.deepEqual(await udpExchange(port, Buffer.alloc(5), 300), [], 'shorter than a header');
    // A header claiming 1000 questions with nothing behind it.
    const claim = Buffer.alloc(12);
    claim.writeUInt16BE(7, 0);
    claim.writeUInt16BE(1000, 4);
    const [formerr] = await udpExchange(port, claim, 500);
    assert.equal(formerr?.length, 12);
    assert.equal((dnsPacket.decode(formerr!) as { rcode?: string }).rcode, 'FORMERR');
    const before = reflector.stats().dns!;
    assert.ok(before.dropped! >= 2 && before.formerr! >= 1, JSON.stringify(before));
  });
});

test('reflector --dns: a source past its rate gets nothing more (UDP and TCP share the budget)', async () => {
  const r = await dnsReflector(SITE, '127.0.0.1', 0, 5);
  try {
    const port = dnsPort(r);
    const socket = createSocket('udp4');
    let answers = 0;
    socket.on('message', () => answers++);
    await new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', () => resolve()));
    const query = encodeSiteQuery({ id: 1, qname: 'hostname.bind', qtype: 'TXT', nsid: true });
    for (let i = 0; i < 100; i++) socket.send(query);
    await new Promise((resolve) => setTimeout(resolve, 800));
    socket.close();
    const stats = r.stats().dns!;
    // A burst of 5, plus what refilled while the 100 went out and were handled (5 per second).
    assert.ok(answers >= 5 && answers <= 15, `answered ${answers} of 100`);
    assert.equal(stats.rate_limited, 100 - answers);
  } finally {
    await r.close();
  }
});

describe('dns probe', () => {
  let reflector: RunningReflector;
  let port: number;
  before(async () => {
    reflector = await dnsReflector(SITE, '127.0.0.1');
    port = dnsPort(reflector);
  });
  after(() => reflector.close());

  for (const transport of ['udp', 'tcp'] as const) {
    for (const [qname, nsid] of [
      ['hostname.bind', true],
      ['id.server', false],
    ] as const) {
      test(`times a query over ${transport} and takes the site from ${nsid ? 'NSID' : 'the CHAOS TXT'} (${qname})`, async () => {
        if (transport === 'udp' && !nsid) {
          // A plain query over UDP gets a truncated answer from the reflector: the probe says how to fix it.
          const p = await createDnsProbe(
            { endpoint: 'anycast', address: '127.0.0.1' },
            { port, timeoutMs: 2000, transport, qname, nsid },
          );
          const a = await p.sample(0);
          await p.close();
          assert.equal(a.ok, false);
          assert.equal(!a.ok && a.reason, 'protocol');
          assert.match(!a.ok ? (a.detail ?? '') : '', /truncated.*transport: tcp/);
          return;
        }
        const p = await createDnsProbe(
          { endpoint: 'anycast', address: '127.0.0.1' },
          { port, timeoutMs: 2000, transport, qname, nsid },
        );
        const attempts = [];
        for (let i = 0; i < 5; i++) attempts.push(await p.sample(i));
        await p.close();
        for (const a of attempts) {
          assert.equal(a.ok, true, JSON.stringify(a));
          assert.equal(a.site, SITE);
          assert.ok(a.values.query! > 0 && a.values.query! < 2000, `query ${a.values.query} ms`);
        }
      });
    }
  }

  test('a refused port, a silent one and a closed TCP port are failures, not exceptions', async () => {
    const refused = await refusedPort();
    const udp = await createDnsProbe({ endpoint: 'x', address: '127.0.0.1' }, { port: refused, timeoutMs: 1000 });
    const a = await udp.sample(0);
    await udp.close();
    assert.equal(!a.ok && a.reason, 'refused');
    const tcp = await createDnsProbe(
      { endpoint: 'x', address: '127.0.0.1' },
      { port: refused, timeoutMs: 1000, transport: 'tcp' },
    );
    const b = await tcp.sample(0);
    await tcp.close();
    assert.equal(!b.ok && b.reason, 'refused');
    const silent = createSocket('udp4');
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', () => resolve()));
    const s = await createDnsProbe(
      { endpoint: 'x', address: '127.0.0.1' },
      { port: silent.address().port, timeoutMs: 300 },
    );
    const c = await s.sample(0);
    await s.close();
    silent.close();
    assert.equal(!c.ok && c.reason, 'timeout');
  });
});

test('a round over dns: anycast and unicast rows with their sites, written as protocol=dns metric=query; a site change is an event', async () => {
  const port = await freeUdpPort('127.0.0.2');
  let anycast = await dnsReflector('edge-a', '127.0.0.2', port);
  const origin = await dnsReflector('us-east-1', '127.0.0.3', port);
  const lag = new LagMonitor({ thresholdMs: 60_000 }).start();
  const spec = {
    service: 'dns',
    agent: { id: 't', region: 'eu-west-1' },
    endpoints: [
      { name: 'anycast', kind: 'anycast' as const, host: '127.0.0.2' },
      { name: 'us-east-1', kind: 'unicast' as const, host: '127.0.0.3' },
    ],
    protocols: { dns: { port } },
    samples: 5,
    spacingMs: 10,
    timeoutMs: 2000,
    lag,
  };
  try {
    const first = await runRound(spec);
    const rows = first.paths.filter((p) => p.protocol === 'dns');
    assert.deepEqual(
      rows.map((p) => [p.endpoint, p.metric, p.site, p.received]),
      [
        ['anycast', 'query', 'edge-a', 5],
        ['us-east-1', 'query', 'us-east-1', 5],
      ],
    );
    assert.equal(first.benefit[0]?.protocol, 'dns');
    assert.equal(first.benefit[0]?.scope, 'end_to_end');
    const lines = roundToLines(first);
    const anycastLine = lines.find((l) => l.startsWith('latency,') && l.includes(',endpoint=anycast,'));
    assert.ok(
      anycastLine?.includes(',metric=query,protocol=dns,scope=end_to_end,') && anycastLine.includes('site="edge-a"'),
      lines.join('\n'),
    );
    const s1 = deriveEvents(undefined, first);

    // The anycast address is now answered by another site.
    await anycast.close();
    anycast = await dnsReflector('edge-b', '127.0.0.2', port);
    const second = await runRound(spec);
    const { events } = deriveEvents(s1.state, second);
    assert.deepEqual(
      events.map((e) => [e.type, e.from, e.to, e.message]),
      [['site_change', 'edge-a', 'edge-b', 'anycast dns: edge-a -> edge-b']],
    );
  } finally {
    lag.stop();
    await anycast.close();
    await origin.close();
  }
});

test('compare --protocol dns: flags fill the probe options; bad values exit 2 naming the flag', async () => {
  const parsed = await compareSpec([
    '127.0.0.2',
    'us=127.0.0.3',
    '--protocol',
    'dns,udp',
    '--dns-port',
    '5353',
    '--dns-transport',
    'tcp',
    '--dns-qname',
    'id.server',
    '--no-nsid',
  ]);
  assert.notEqual(parsed, 'help');
  if (parsed === 'help') return;
  assert.deepEqual(parsed.spec.protocols.dns, { port: 5353, transport: 'tcp', qname: 'id.server', nsid: false });
  const plain = await compareSpec(['127.0.0.2', 'us=127.0.0.3', '--protocol', 'dns']);
  assert.deepEqual(plain !== 'help' && plain.spec.protocols, { dns: { port: 8053 } });
  for (const [args, message] of [
    // the config's own messages for probes.dns (test/compare-options.test.ts walks every flag)
    [['--dns-port', '70000'], '--dns-port: expected a port number from 1 to 65535, got 70000'],
    [['--dns-transport', 'quic'], '--dns-transport: expected one of "udp", "tcp", got "quic"'],
    [['--dns-qname', 'not a name'], '--dns-qname: expected a host name, got "not a name"'],
    [['--dns-qtype', 'MX'], '--dns-qtype: expected one of "A", "AAAA", "TXT", "SOA", "NS", got "MX"'],
  ] as const) {
    await assert.rejects(
      compareSpec(['127.0.0.2', 'us=127.0.0.3', '--protocol', 'dns', ...args]),
      (err: unknown) => err instanceof UsageError && err.message === message && err.exitCode === 2,
    );
  }
});

test('reflector --dns / --dns-port: the DNS part on 8053 by default, on the port asked otherwise', async () => {
  const d = await reflectorOptions(['--dns']);
  assert.deepEqual(d !== 'help' && d.dns, { port: 8053 });
  const p = await reflectorOptions(['--dns-port', '53']);
  assert.deepEqual(p !== 'help' && p.dns, { port: 53 });
  const none = await reflectorOptions([]);
  assert.equal(none !== 'help' && none.dns, false);
  await assert.rejects(reflectorOptions(['--dns-port', 'x']), /--dns-port: expected a port number 0..65535, got "x"/);
  // The DNS part alone is enough to run.
  const only = await reflectorOptions(['--dns', '--no-udp', '--no-tcp', '--no-http']);
  assert.ok(only !== 'help' && only.dns);
  // A taken port is named with what to do.
  const port = await freePort();
  const holder = net.createServer().listen(port, '127.0.0.1');
  await new Promise((resolve) => holder.once('listening', resolve));
  try {
    await assert.rejects(
      dnsReflector('x', '127.0.0.1', port),
      /DNS reflector \(TCP\): cannot listen on 127\.0\.0\.1:\d+: the address is in use \(EADDRINUSE\); choose another --dns-port/,
    );
  } finally {
    holder.close();
  }
});

test('config: probes.dns takes port, transport, qname, qtype, nsid; the port defaults to 53', () => {
  const text = (dns: string) =>
    `agent: { id: a, region: r }\nservices:\n  - name: d\n    anycast: 192.0.2.53\n    unicast: { us: 203.0.113.53 }\n    probes:\n      dns:${dns}\n`;
  assert.deepEqual(parseConfig(text(''), 't.yaml', { baseDir: '/tmp' }).services[0]!.probes, { dns: { port: 53 } });
  assert.deepEqual(
    parseConfig(text(' { port: 8053, transport: tcp, qname: example.com, qtype: AAAA, nsid: false }'), 't.yaml', {
      baseDir: '/tmp',
    }).services[0]!.probes,
    {
      dns: { port: 8053, transport: 'tcp', qname: 'example.com', qtype: 'AAAA', nsid: false },
    },
  );
  assert.throws(
    () => parseConfig(text(' { qtype: MX }'), 't.yaml', { baseDir: '/tmp' }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.problems[0] ===
        't.yaml:7:21: services[0].probes.dns.qtype: expected one of "A", "AAAA", "TXT", "SOA", "NS", got "MX"',
  );
});
