// One table of error codes (agent/util/errors.ts ERROR_CODES): the exit code comes from the code,
// bad probe options exit 2 whatever the protocol, "cannot listen" is one error said one way by
// every part that listens, and docs/agent.md lists exactly the table.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PROBES } from '../agent/probe/index.ts';
import { startHttpReflector } from '../agent/reflector/http.ts';
import { startStampReflector } from '../agent/reflector/stamp.ts';
import { startTcpEcho } from '../agent/reflector/tcp-echo.ts';
import { openStore } from '../agent/store/index.ts';
import { AnylatError, BindError, ERROR_CODES, EnvironmentError } from '../agent/util/errors.ts';
import { startWebServer } from '../agent/web/index.ts';
import { ROOT } from './support/net.ts';

const target = { endpoint: 'anycast', address: '127.0.0.1' };

describe('error codes', () => {
  it('bad probe options are exit 2 for every protocol', async () => {
    const bad = {
      udp: () => PROBES.udp(target, { port: 70_000, timeoutMs: 100 }),
      tcp: () => PROBES.tcp(target, { port: 70_000, timeoutMs: 100, echo: false }),
      tls: () => PROBES.tls(target, { port: 443, timeoutMs: 100, serverName: '10.0.0.1' }),
      http: () => PROBES.http(target, { url: 'ftp://example.com/', timeoutMs: 100 }),
      dns: () => PROBES.dns(target, { port: 53, timeoutMs: 100, transport: 'quic' as 'udp' }),
      // icmp has no options of its own to get wrong: what it can lack is ping
      icmp: () =>
        PROBES.icmp(target, { timeoutMs: 100, pingPath: '/nonexistent/ping' } as Parameters<typeof PROBES.icmp>[1]),
      transfer: () => PROBES.transfer(target, { sizes: [1], size: 0, timeoutMs: 100 }),
    } satisfies { [P in keyof typeof PROBES]: () => unknown };
    for (const [protocol, make] of Object.entries(bad)) {
      await assert.rejects(
        async () => make(),
        (e: unknown) => e instanceof AnylatError && e.exitCode === 2 && e.exitCode === ERROR_CODES[e.code].exit,
        `${protocol}: exit 2`,
      );
    }
  });

  it("the exit code is the code's, from the one table", () => {
    for (const [code, { exit }] of Object.entries(ERROR_CODES)) {
      assert.equal(new AnylatError(code as keyof typeof ERROR_CODES, 'x').exitCode, exit, code);
    }
  });

  it('docs/agent.md lists every code with its exit code, and no other', () => {
    const text = readFileSync(join(ROOT, 'docs', 'agent.md'), 'utf8');
    const section = text.slice(text.indexOf('## Exit codes and error codes'));
    const rows = [...section.matchAll(/^\| `(ANYLAT_[A-Z_]+)` \| (\d) \|/gm)].map(
      (m) => [m[1]!, Number(m[2])] as const,
    );
    assert.deepEqual(
      rows.sort(([a], [b]) => a.localeCompare(b)),
      Object.entries(ERROR_CODES)
        .map(([c, v]) => [c, v.exit] as const)
        .sort(([a], [b]) => a.localeCompare(b)),
    );
  });
});

describe('"cannot listen" is one error, said one way', () => {
  let tcp: Server;
  let port: number;
  const udp = createSocket('udp4');
  let udpPort: number;
  before(async () => {
    tcp = createServer();
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    port = (tcp.address() as { port: number }).port;
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    udpPort = udp.address().port;
  });
  after(async () => {
    await new Promise((resolve) => tcp.close(resolve));
    await new Promise<void>((resolve) => udp.close(() => resolve()));
  });

  const isBind = (what: string, p: () => number, option: RegExp) => (e: unknown) => {
    assert.ok(e instanceof BindError && e instanceof EnvironmentError, String(e));
    assert.equal(e.code, 'ANYLAT_BIND');
    assert.equal(e.exitCode, 2);
    assert.match(
      e.message,
      new RegExp(`^${what}: cannot listen on 127\\.0\\.0\\.1:${p()}: the address is in use \\(EADDRINUSE\\); `),
    );
    assert.match(e.message, option);
    return true;
  };

  it('by the STAMP reflector, the TCP echo and the HTTP reflector', async () => {
    const log = () => {};
    await assert.rejects(
      startStampReflector({ site: 's', binds: ['127.0.0.1'], port: udpPort, log }),
      isBind('STAMP reflector', () => udpPort, /--udp-port/),
    );
    await assert.rejects(
      startTcpEcho({ site: 's', binds: ['127.0.0.1'], port, log }),
      isBind('tcp echo', () => port, /--tcp-port/),
    );
    await assert.rejects(
      startHttpReflector({ site: 's', binds: ['127.0.0.1'], port, log }),
      isBind('http reflector', () => port, /--http-port/),
    );
  });

  it('by the web dashboard (on its own thread: same code and words)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'anylat-errors-'));
    const store = openStore(join(dir, 'anylat.db'));
    try {
      await assert.rejects(startWebServer({ store, listen: `127.0.0.1:${port}`, log: () => {} }), (e: unknown) => {
        assert.ok(e instanceof AnylatError);
        assert.equal(e.code, 'ANYLAT_BIND');
        assert.equal(e.exitCode, 2);
        assert.match(
          e.message,
          new RegExp(
            `^web dashboard: cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use \\(EADDRINUSE\\); set web\\.listen`,
          ),
        );
        return true;
      });
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
