// The tracer on real sockets over loopback: the ICMP port-unreachable the kernel sends back for a
// closed port, a reply from an open one, silence from a port that swallows datagrams, IPv6, and the
// CLI's usage errors. Multi-hop routes need namespaces: test/lab-trace.test.ts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { trace } from '../agent/net/trace.ts';
import { freeUdpPort, runAnylat } from './support/net.ts';

function bind(port: number, onMessage: (sock: Socket, msg: Buffer, rinfo: { address: string; port: number }) => void): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    sock.on('message', (msg, rinfo) => onMessage(sock, msg, rinfo));
    sock.once('error', reject);
    sock.bind(port, '127.0.0.1', () => resolve(sock));
  });
}

describe('trace over loopback', () => {
  it('anylat trace 127.0.0.1 --json: one hop, the target itself, with its /etc/hosts name', async () => {
    const r = await runAnylat(['trace', '127.0.0.1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { reached: boolean; hops: Array<{ ttl: number; address?: string; rtt_ms?: number; name?: string; reached?: boolean }> };
    assert.equal(out.reached, true);
    assert.equal(out.hops.length, 1);
    const [hop] = out.hops;
    assert.equal(hop!.ttl, 1);
    assert.equal(hop!.address, '127.0.0.1');
    assert.equal(hop!.reached, true);
    assert.equal(hop!.name, 'localhost');
    assert.ok(typeof hop!.rtt_ms === 'number' && hop!.rtt_ms >= 0, `rtt ${hop!.rtt_ms}`);
  });

  it('the table names the hop and the target', async () => {
    const r = await runAnylat(['trace', '127.0.0.1', '-n']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^trace to 127\.0\.0\.1, udp port 33434: reached in 1 hop/);
    assert.match(r.stdout, /\n {2}1 {2}127\.0\.0\.1 {2}\d+\.\d{3} ms {2}\(target\)/);
  });

  it('::1 over IPv6', async () => {
    const r = await trace('::1', { names: false, maxHops: 3 });
    assert.equal(r.reached, true);
    assert.deepEqual(r.hops.map((h) => h.address), ['::1']);
  });

  describe('an open port', () => {
    let echo: Socket;
    let silent: Socket;
    let echoPort: number;
    let silentPort: number;
    const seen: number[] = [];
    before(async () => {
      echoPort = await freeUdpPort();
      echo = await bind(echoPort, (sock, msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
      silentPort = await freeUdpPort();
      silent = await bind(silentPort, (_sock, msg) => seen.push(msg.length));
    });
    after(() => {
      echo.close();
      silent.close();
    });

    it('a reply from the target ends the trace at its hop', async () => {
      const r = await trace('127.0.0.1', { port: echoPort, maxHops: 1, names: false });
      assert.equal(r.reached, true);
      assert.equal(r.hops[0]!.address, '127.0.0.1');
      assert.equal(r.hops[0]!.reached, true);
    });

    it('a target that swallows the probe: hops without address, not reached, within the deadline', async () => {
      const r = await trace('127.0.0.1', { port: silentPort, maxHops: 1, probeTimeoutMs: 300, deadlineMs: 5000, names: false });
      assert.equal(r.reached, false);
      assert.deepEqual(r.hops, [{ ttl: 1 }]);
      assert.ok(seen.length >= 1, 'the listener got the probe');
      assert.ok(r.duration_ms < 5000, `took ${r.duration_ms} ms`);
    });
  });

  it('usage errors exit 2 and say what is wrong', async () => {
    const none = await runAnylat(['trace']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /trace: expected one target/);
    const hops = await runAnylat(['trace', '127.0.0.1', '--max-hops', '65']);
    assert.equal(hops.code, 2);
    assert.match(hops.stderr, /--max-hops: expected at most 64, got 65/);
    const port = await runAnylat(['trace', '127.0.0.1', '--port', '65535', '--max-hops', '2']);
    assert.equal(port.code, 2);
    assert.match(port.stderr, /runs past port 65535/);
  });
});
