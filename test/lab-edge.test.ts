// The lab's edge relays UDP on several ports of the anycast address (STAMP on one, DNS on
// another). A client's source port is reused by the kernel for a new socket soon after the old
// one closed: a DNS query from a port that a STAMP probe used seconds before is still a flow of
// its own, answered from the DNS port. (In the demo, one round of a region's anycast DNS queries
// all timed out: 10 of 10, once in a 5-minute run.) On loopback, no root.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { startEdge, type Edge } from '../agent/lab/edge.ts';
import { freeUdpPort } from './support/net.ts';

const EDGE = '127.0.0.2';
const ORIGIN = '127.0.0.3';
const CLIENT = '127.0.0.1';

/** Binds `socket` to `address:port`. */
function bind(socket: Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

/** Sends `text` from a socket bound to CLIENT:`from` to EDGE:`to`; the reply, or undefined after 2 s. */
async function ask(from: number, to: number, text: string): Promise<{ text: string; port: number } | undefined> {
  const s = createSocket('udp4');
  try {
    await bind(s, from, CLIENT);
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 2_000);
      s.once('message', (msg, rinfo) => {
        clearTimeout(timer);
        resolve({ text: msg.toString(), port: rinfo.port });
      });
      s.send(text, to, EDGE);
    });
  } finally {
    s.close();
  }
}

describe('lab edge: UDP flows per port', () => {
  let edge: Edge;
  const origins: Socket[] = [];
  let ports: number[] = [];

  before(async () => {
    ports = [await freeUdpPort(EDGE), await freeUdpPort(EDGE)];
    // The origin answers on each port with the port it was asked on.
    for (const port of ports) {
      const o = createSocket('udp4');
      o.on('message', (msg, rinfo) => o.send(`${port}:${msg.toString()}`, rinfo.port, rinfo.address));
      await bind(o, port, ORIGIN);
      origins.push(o);
    }
    edge = await startEdge({
      anycast: EDGE,
      udpPorts: ports,
      tcpPorts: [],
      origin: () => ({ name: 'o', address: ORIGIN }),
      log: () => {},
    });
  });

  after(async () => {
    await edge?.close();
    for (const o of origins) o.close();
  });

  it('a client port reused for another of the edge ports is answered from that port, by its origin port', async () => {
    const client = await freeUdpPort(CLIENT);
    const [stamp, dns] = ports as [number, number];
    assert.deepEqual(await ask(client, stamp, 'first'), { text: `${stamp}:first`, port: stamp });
    // The same source port (the kernel reuses ports), now to the other port of the edge.
    assert.deepEqual(await ask(client, dns, 'second'), { text: `${dns}:second`, port: dns });
    // And back: both flows are the edge's, each on its own port.
    assert.deepEqual(await ask(client, stamp, 'third'), { text: `${stamp}:third`, port: stamp });
    assert.deepEqual(await ask(client, dns, 'fourth'), { text: `${dns}:fourth`, port: dns });
    assert.equal(edge.stats().udpOut, 4);
  });
});
