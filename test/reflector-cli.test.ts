// `anylat reflector` as a user runs it: listening lines, a compare against it (plain, STAMP
// authenticated, HTTPS), clean shutdown on SIGTERM/SIGINT, and bad arguments.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reflectorOptions } from '../agent/commands/reflector.ts';
import type { RoundResult } from '../agent/core/model.ts';
import { AnylatError } from '../agent/util/errors.ts';
import { runAnylat, startAnylat } from './support/net.ts';
import { makeSelfSignedCert, type TestCert } from './support/tls-cert.ts';

let dir: string;
let keyFile: string;
let cert: TestCert;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'anylat-reflector-'));
  keyFile = join(dir, 'stamp.key');
  await writeFile(keyFile, '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n');
  cert = await makeSelfSignedCert({ names: ['svc.test'], ips: ['127.0.0.1'] });
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
  await cert.cleanup();
});

const LISTEN = /^listening (udp|tcp|http) +(\S+):(\d+) (.+) site=(\S+)$/gm;

function listening(out: string): Array<{ kind: string; address: string; port: number; scheme: string; site: string }> {
  return [...out.matchAll(LISTEN)].map((m) => ({
    kind: m[1]!,
    address: m[2]!,
    port: Number(m[3]),
    scheme: m[4]!,
    site: m[5]!,
  }));
}

const CALM = ['--lag-threshold', '250ms'];

test('prints one line per listening socket, answers a compare, stops cleanly on SIGTERM', async () => {
  const r = await startAnylat(
    [
      'reflector',
      '--bind',
      '127.0.0.1',
      '--bind',
      '127.0.0.2',
      '--udp-port',
      '0',
      '--tcp-port',
      '0',
      '--http-port',
      '0',
      '--site',
      'fra-1',
    ],
    {
      ready: /listening http +127\.0\.0\.2:\d+/,
    },
  );
  try {
    const lines = listening(r.output());
    assert.deepEqual(
      lines.map((l) => `${l.kind} ${l.address} ${l.scheme} ${l.site}`),
      [
        'udp 127.0.0.1 stamp fra-1',
        'udp 127.0.0.2 stamp fra-1',
        'tcp 127.0.0.1 echo fra-1',
        'tcp 127.0.0.2 echo fra-1',
        'http 127.0.0.1 http fra-1',
        'http 127.0.0.2 http fra-1',
      ],
    );
    const port = (kind: string) => lines.find((l) => l.kind === kind && l.address === '127.0.0.1')!.port;
    // Port 0 gives STAMP one port on every address; the TCP parts may differ per address.
    assert.equal(lines.find((l) => l.kind === 'udp' && l.address === '127.0.0.2')!.port, port('udp'));
    const res = await runAnylat([
      'compare',
      '127.0.0.1',
      'eu=127.0.0.1',
      '--udp-port',
      String(port('udp')),
      '--tcp-port',
      String(port('tcp')),
      '--http-url',
      `http://127.0.0.1:${port('http')}/`,
      '--samples',
      '5',
      '--spacing',
      '10ms',
      '--json',
      ...CALM,
    ]);
    assert.equal(res.code, 0, res.stderr);
    const round = JSON.parse(res.stdout) as RoundResult;
    for (const p of round.paths) {
      assert.equal(p.loss_pct, 0, `${p.endpoint} ${p.protocol} ${p.metric}: ${JSON.stringify(p.failures)}`);
      assert.equal(p.site, 'fra-1', `${p.protocol} ${p.metric} carries the site`);
    }
  } finally {
    const code = await r.stop('SIGTERM');
    assert.equal(code, 0);
    assert.match(r.output(), /^stopped on SIGTERM; udp: received=\d+ reflected=\d+/m);
    assert.match(
      r.output(),
      /udp: received=12 reflected=12 /,
      'one warm-up and five samples from each of two endpoints',
    );
  }
});

test('SIGINT stops it too, with exit 0', async () => {
  const r = await startAnylat(['reflector', '--bind', '127.0.0.1', '--udp-port', '0', '--no-tcp', '--no-http'], {
    ready: /listening udp/,
  });
  assert.equal(listening(r.output()).length, 1);
  assert.equal(await r.stop('SIGINT'), 0);
  assert.match(r.output(), /stopped on SIGINT; udp: /);
});

test('STAMP authenticated mode: a sender with the key is answered, one without is not', async () => {
  const r = await startAnylat(
    ['reflector', '--bind', '127.0.0.1', '--udp-port', '0', '--no-tcp', '--no-http', '--auth-key-file', keyFile],
    { ready: /listening udp/ },
  );
  try {
    const [udp] = listening(r.output());
    assert.equal(udp!.scheme, 'stamp (authenticated)');
    const base = [
      'compare',
      '127.0.0.1',
      'eu=127.0.0.1',
      '--protocol',
      'udp',
      '--udp-port',
      String(udp!.port),
      '--samples',
      '4',
      '--spacing',
      '10ms',
      '--timeout',
      '300ms',
      '--json',
      ...CALM,
    ];
    const withKey = JSON.parse((await runAnylat([...base, '--auth-key-file', keyFile])).stdout) as RoundResult;
    for (const p of withKey.paths) assert.equal(p.received, 4, JSON.stringify(p.failures));
    const without = JSON.parse((await runAnylat(base)).stdout) as RoundResult;
    for (const p of without.paths) {
      assert.equal(p.loss_pct, 100);
      assert.deepEqual(p.failures, { timeout: 4 });
    }
  } finally {
    assert.equal(await r.stop(), 0);
  }
  assert.match(
    r.output(),
    /auth_failed=10 /,
    'the unauthenticated packets (warm-up included) were refused and counted',
  );
});

test('HTTPS with --tls-cert/--tls-key: tls handshake and https timed through the URL host', async () => {
  const r = await startAnylat(
    [
      'reflector',
      '--bind',
      '127.0.0.1',
      '--no-udp',
      '--no-tcp',
      '--http-port',
      '0',
      '--tls-cert',
      cert.certPath,
      '--tls-key',
      cert.keyPath,
      '--site',
      'edge-x',
    ],
    {
      ready: /listening http/,
    },
  );
  try {
    const [https] = listening(r.output());
    assert.equal(https!.scheme, 'https');
    const res = await runAnylat([
      'compare',
      '127.0.0.1',
      'eu=127.0.0.1',
      '--protocol',
      'tls,http',
      '--tls-port',
      String(https!.port),
      '--sni',
      'svc.test',
      '--http-url',
      `https://svc.test:${https!.port}/health`,
      '--ca-file',
      cert.certPath,
      '--samples',
      '4',
      '--spacing',
      '10ms',
      '--json',
      ...CALM,
    ]);
    assert.equal(res.code, 0, res.stderr);
    const round = JSON.parse(res.stdout) as RoundResult;
    assert.deepEqual(
      [...new Set(round.paths.map((p) => `${p.protocol} ${p.metric}`))],
      ['tls handshake', 'http connect', 'http tls', 'http ttfb', 'http total', 'http warm'],
    );
    for (const p of round.paths)
      assert.equal(p.received, 4, `${p.endpoint} ${p.protocol} ${p.metric}: ${JSON.stringify(p.failures)}`);
    assert.equal(round.paths.find((p) => p.protocol === 'http')!.site, 'edge-x');
  } finally {
    assert.equal(await r.stop(), 0);
  }
});

test('a port already taken is exit 2 naming the address and the option', async () => {
  const blocker: Server = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
  const taken = (blocker.address() as { port: number }).port;
  try {
    const res = await runAnylat([
      'reflector',
      '--bind',
      '127.0.0.1',
      '--udp-port',
      '0',
      '--tcp-port',
      String(taken),
      '--http-port',
      '0',
    ]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken}.*--tcp-port`));
    assert.doesNotMatch(res.stdout, /listening tcp/);
  } finally {
    blocker.close();
  }
});

test('bad arguments say what to fix, naming the option', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--bind', 'eth0'], /--bind eth0: expected an IP address of this host/],
    [['--udp-port', '70000'], /--udp-port: expected a port number 0\.\.65535, got "70000"/],
    [['--http-port', 'web'], /--http-port: expected a port number/],
    [['--tls-cert', 'c.pem'], /--tls-cert and --tls-key go together/],
    [
      ['--tls-cert', '/nonexistent/c.pem', '--tls-key', '/nonexistent/k.pem'],
      /--tls-cert \/nonexistent\/c\.pem: cannot read it \(ENOENT\)/,
    ],
    [['--no-udp', '--no-tcp', '--no-http'], /leave nothing to run/],
    [['--auth-key-file', '/nonexistent/key'], /\/nonexistent\/key: cannot read the STAMP key file/],
    [['--rate-limit', 'fast'], /--rate-limit: expected packets per second ≥ 0, got "fast"/],
    [['--tcp-per-source', '2.5'], /--tcp-per-source: expected a whole number of connections ≥ 0, got "2.5"/],
    [['--site', ''], /--site: expected a printable name/],
    [['eu'], /unexpected argument "eu"/],
    [['--bogus'], /reflector: unknown option --bogus/],
  ];
  for (const [args, message] of cases) {
    await assert.rejects(
      () => reflectorOptions(args),
      (err: unknown) => {
        assert.ok(err instanceof AnylatError, `${args.join(' ')}: ${String(err)}`);
        assert.equal(err.exitCode, 2, args.join(' '));
        assert.match(err.message, message, args.join(' '));
        return true;
      },
    );
  }
});

test('on the command line a bad argument is exit 2, the message on stderr, nothing on stdout', async () => {
  const res = await runAnylat(['reflector', '--bind', 'eth0']);
  assert.equal(res.code, 2);
  assert.equal(res.stdout, '');
  assert.equal(
    res.stderr,
    'anylat: --bind eth0: expected an IP address of this host (e.g. 0.0.0.0, 192.0.2.10 or ::1)\n',
  );
  const help = await runAnylat(['reflector', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--auth-key-file F/);
});
