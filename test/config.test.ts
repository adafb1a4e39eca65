// Config loading: one bad fixture per rule with the exact message a user sees, the defaults a
// minimal file gets, `${ENV}` substitution, the token kept out of every output, and
// `anylat config check` on the fixtures and on anylat.example.yaml.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { inspect } from 'node:util';
import { interpolate } from '../agent/config/env.ts';
import { loadConfig, parseConfig } from '../agent/config/load.ts';
import { ConfigError } from '../agent/util/errors.ts';
import { ROOT, runAnylat } from './support/net.ts';

const FIXTURES = join(ROOT, 'test/fixtures/config');
const ENV = { ANYLAT_TEST_TOKEN: 'test-token', ANYLAT_EMPTY: '' };

function problemsOf(file: string, env: NodeJS.ProcessEnv = ENV): string[] {
  try {
    parseConfig(readFileSync(join(FIXTURES, file), 'utf8'), file, { env, baseDir: FIXTURES, hostname: 'test-host' });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `${file}: expected a ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'ANYLAT_CONFIG');
    assert.equal(err.exitCode, 2);
    return err.problems.map((p) => p.replaceAll(FIXTURES, '<fixtures>'));
  }
  assert.fail(`${file}: loaded without a problem`);
}

describe('bad config fixtures: one per rule, exact messages', () => {
  const bad = readdirSync(FIXTURES).filter((f) => f.endsWith('.expected'));
  it('has a fixture for every rule (and every fixture has its message)', () => {
    assert.ok(bad.length >= 60, `only ${bad.length} fixtures`);
    for (const f of readdirSync(FIXTURES).filter((f) => f.endsWith('.yaml') && !f.startsWith('good-'))) {
      assert.ok(bad.includes(f.replace(/\.yaml$/, '.expected')), `${f} has no .expected file`);
    }
  });
  for (const expectedFile of bad) {
    const yaml = expectedFile.replace(/\.expected$/, '.yaml');
    it(yaml, () => {
      const expected = readFileSync(join(FIXTURES, expectedFile), 'utf8').trimEnd().split('\n');
      assert.deepEqual(problemsOf(yaml), expected);
    });
  }
  it('every message is one line: file:line:col: path: problem', () => {
    for (const f of bad) {
      for (const line of problemsOf(f.replace(/\.expected$/, '.yaml'))) {
        assert.match(line, /^[\w.-]+\.yaml:\d+:\d+: \S/, line);
        assert.ok(!line.includes('\n'));
      }
    }
  });
  it('reports every problem of a file at once, in file order', () => {
    const lines = problemsOf('many-problems.yaml');
    assert.equal(lines.length, 12);
    const positions = lines.map((l) => l.split(':').slice(1, 3).map(Number) as [number, number]);
    const sorted = positions.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    assert.deepEqual(positions, sorted);
  });
});

describe('good configs', () => {
  it('a minimal config gets every default', () => {
    const c = parseConfig(readFileSync(join(FIXTURES, 'good-minimal.yaml'), 'utf8'), 'good-minimal.yaml', {
      env: {},
      baseDir: FIXTURES,
      hostname: 'box-17',
    });
    assert.deepEqual(c.agent, { id: 'box-17', region: 'eu-west-1', labels: {} });
    assert.equal(c.services.length, 1);
    assert.deepEqual(c.services[0], {
      name: 'api',
      anycast: ['192.0.2.10'],
      unicast: [{ name: 'us-east-1', host: '203.0.113.10' }],
      baseline: 'nearest',
      terminatesTcp: true,
      probes: { udp: { port: 862 } },
      samples: 20,
      spacingMs: 50,
      timeoutMs: 2000,
      schedule: '* * * * *',
      intervalMs: 60_000,
      deadlineMs: 54_000,
    });
    assert.deepEqual(c.store, {
      path: join(FIXTURES, 'anylat.db'),
      retention: { ageMs: 30 * 86_400_000, rows: 1_000_000 },
    });
    assert.equal(c.influx, undefined);
    assert.equal(c.web, undefined);
  });

  it("the store defaults to systemd's STATE_DIRECTORY when it is set", () => {
    const c = parseConfig(readFileSync(join(FIXTURES, 'good-minimal.yaml'), 'utf8'), 'x.yaml', {
      env: { STATE_DIRECTORY: '/var/lib/anylat' },
      baseDir: FIXTURES,
    });
    assert.equal(c.store.path, '/var/lib/anylat/anylat.db');
  });

  it('a full config: env substitution, defaults inherited, files read, paths resolved', () => {
    const env = { AGENT_REGION: 'eu-west-1', AGENT_LAT: '53.35', UDP_PORT: '8620' };
    const c = parseConfig(readFileSync(join(FIXTURES, 'good-full.yaml'), 'utf8'), 'good-full.yaml', {
      env,
      baseDir: FIXTURES,
    });
    assert.deepEqual(c.agent, {
      id: 'lab-agent',
      region: 'eu-west-1',
      lat: 53.35,
      lon: -6.26,
      labels: { team: 'sre', tier: '1', note: 'costs ${PER_HOUR}' },
    });
    const [api, web] = c.services;
    assert.ok(api && web);
    // Inherited from defaults: probes (with the port from the environment, as a number), timing.
    assert.equal(api.probes.udp?.port, 8620);
    assert.equal(
      api.probes.udp?.authKey?.toString('hex'),
      '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff',
    );
    assert.deepEqual(api.probes.icmp, {});
    assert.deepEqual(
      [api.samples, api.spacingMs, api.timeoutMs, api.schedule, api.intervalMs, api.deadlineMs],
      [10, 20, 500, '*/15 * * * * *', 15_000, 13_500],
    );
    assert.equal(api.terminatesTcp, false, '${TERMINATES:-false} is the boolean false');
    assert.equal(api.baseline, 'eu-west-1');
    assert.deepEqual(api.anycast, ['192.0.2.10', '198.51.100.10']);
    assert.deepEqual(api.unicast, [
      { name: 'us-east-1', host: '203.0.113.10' },
      { name: 'eu-west-1', host: 'api-eu.example.com' },
    ]);
    // web's own probes replace the defaults' probes.
    assert.deepEqual(Object.keys(web.probes), ['tcp', 'tls', 'http']);
    assert.deepEqual(web.probes.tcp, { port: 443, echo: true, connectClock: 'monotonic', echoClock: 'monotonic' });
    assert.equal(web.probes.tls?.port, 443);
    assert.equal(web.probes.tls?.serverName, 'web.example.com');
    assert.match(String(web.probes.tls?.ca), /BEGIN CERTIFICATE/);
    assert.deepEqual(web.probes.http, {
      url: 'https://web.example.com/health',
      siteHeader: 'x-site',
      warm: false,
      ttfbClock: 'monotonic',
    });
    assert.deepEqual([web.samples, web.deadlineMs, web.maxInFlight], [5, 5000, 4]);
    assert.deepEqual(web.unicast, [{ name: 'ap-southeast-2', host: '2001:db8::10' }]);
    assert.deepEqual(c.store, {
      path: join(FIXTURES, 'data/anylat.db'),
      retention: { ageMs: 7 * 86_400_000, rows: 50_000 },
    });
    assert.equal(c.influx?.url, 'http://127.0.0.1:8086');
    assert.equal(c.influx?.token.reveal(), 'file-token');
    assert.deepEqual([c.influx?.org, c.influx?.bucket], ['acme', 'anylat']);
    assert.deepEqual(c.web, { host: '::1', port: 9090 });
  });

  it('the token never shows: not in JSON, not in inspect, not in messages', () => {
    const secret = 'sup3r-s3cret-t0ken';
    const text = `agent: { region: eu-west-1 }
services:
  - name: api
    anycast: 192.0.2.10
    unicast: { us-east-1: 203.0.113.10 }
    probes: { udp: {} }
influx: { url: "http://127.0.0.1:8086", token: "\${TOKEN}", bucket: b }
`;
    const c = parseConfig(text, 't.yaml', { env: { TOKEN: secret }, baseDir: FIXTURES });
    assert.equal(c.influx?.token.reveal(), secret);
    assert.ok(!JSON.stringify(c).includes(secret));
    assert.ok(!inspect(c, { depth: 10 }).includes(secret));
    assert.ok(!String(c.influx?.token).includes(secret));
    // A bad influx section around the token: the message names the problem, never the value.
    const bad = text.replace('bucket: b', 'bucket: b, org: 42, token_file: x');
    const err = (() => {
      try {
        parseConfig(bad, 't.yaml', { env: { TOKEN: secret }, baseDir: FIXTURES });
      } catch (e) {
        return e as ConfigError;
      }
      return undefined;
    })();
    assert.ok(err instanceof ConfigError);
    assert.ok(err.problems.length > 0);
    assert.ok(!err.message.includes(secret), err.message);
  });

  it('a token from the environment that is all digits stays text', () => {
    const text = `agent: { region: r }
services: [{ name: s, anycast: 192.0.2.1, unicast: { u: 192.0.2.2 }, probes: { icmp: } }]
influx:
  url: http://127.0.0.1:8086
  token: \${T}
  bucket: b
`;
    const c = parseConfig(text, 't.yaml', { env: { T: '0012345' }, baseDir: FIXTURES });
    assert.equal(c.influx?.token.reveal(), '0012345');
  });
});

describe('${ENV} interpolation', () => {
  const env = { A: 'alpha', EMPTY: '' };
  it('substitutes, defaults, escapes', () => {
    assert.deepEqual(interpolate('x-${A}-y', env), { ok: true, value: 'x-alpha-y', changed: true });
    assert.deepEqual(interpolate('${MISSING:-fallback}', env), { ok: true, value: 'fallback', changed: true });
    assert.deepEqual(interpolate('${EMPTY:-fallback}', env), { ok: true, value: 'fallback', changed: true });
    assert.deepEqual(interpolate('${EMPTY}', env), { ok: true, value: '', changed: true });
    assert.deepEqual(interpolate('${A}${A}', env), { ok: true, value: 'alphaalpha', changed: true });
    assert.deepEqual(interpolate('$${A} costs $5', env), { ok: true, value: '${A} costs $5', changed: true });
    assert.deepEqual(interpolate('plain $text', env), { ok: true, value: 'plain $text', changed: false });
    assert.deepEqual(interpolate('${A:-}', {}), { ok: true, value: '', changed: true });
  });
  it('says what is wrong', () => {
    assert.deepEqual(interpolate('${NOPE}', env), {
      ok: false,
      message: 'environment variable NOPE is not set; set it, or give a default with ${NOPE:-value}',
    });
    assert.equal(interpolate('${1X}', env).ok, false);
    assert.equal(interpolate('${A', env).ok, false);
  });
});

describe('anylat config check', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'anylat-config-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('accepts anylat.example.yaml and summarizes it', async () => {
    const r = await runAnylat(['config', 'check', '--config', 'anylat.example.yaml'], {
      env: { INFLUX_TOKEN: 'example-token' },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^anylat\.example\.yaml: OK$/m);
    assert.match(
      r.stdout,
      /api: anycast 192\.0\.2\.10, 198\.51\.100\.10 vs us-east-1=203\.0\.113\.10, eu-west-1=203\.0\.113\.20/,
    );
    assert.match(r.stdout, /udp,tcp,tls,http,icmp; 20 samples 100ms apart/);
    assert.ok(!r.stdout.includes('example-token'));
  });

  it('without INFLUX_TOKEN the example names the variable and its line, exit 2', async () => {
    const r = await runAnylat(['config', 'check', '--config', 'anylat.example.yaml'], {
      env: { INFLUX_TOKEN: undefined },
    });
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /^anylat\.example\.yaml:\d+:10: influx\.token: environment variable INFLUX_TOKEN is not set/m,
    );
  });

  it('prints every problem and a count, exit 2', async () => {
    const file = join('test/fixtures/config', 'many-problems.yaml');
    const r = await runAnylat(['config', 'check', '--config', file], { env: { ANYLAT_TEST_TOKEN: 't' } });
    assert.equal(r.code, 2);
    const expected = readFileSync(join(FIXTURES, 'many-problems.expected'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => `${join('test/fixtures/config', l)}`);
    assert.equal(r.stderr, `${expected.join('\n')}\nanylat: 12 problems in ${file}\n`);
    assert.equal(r.stdout, '');
  });

  it('finds the file through ANYLAT_CONFIG, else ./anylat.yaml', async () => {
    const file = join(scratch, 'agent.yaml');
    writeFileSync(file, readFileSync(join(FIXTURES, 'good-minimal.yaml')));
    const viaEnv = await runAnylat(['config', 'check'], { env: { ANYLAT_CONFIG: file } });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.match(viaEnv.stdout, new RegExp(`^${file}: OK$`, 'm'));
    const none = await runAnylat(['config', 'check'], { cwd: scratch, env: { ANYLAT_CONFIG: '' } });
    assert.equal(none.code, 2);
    assert.match(
      none.stderr,
      /^anylat\.yaml: cannot read the config file: no such file; pass --config FILE or set ANYLAT_CONFIG$/m,
    );
  });

  it('rejects bad usage with exit 2', async () => {
    assert.equal((await runAnylat(['config', 'chek'])).code, 2);
    assert.equal((await runAnylat(['config'])).code, 2);
    assert.equal((await runAnylat(['config', 'check', '--confg', 'x'])).code, 2);
    const help = await runAnylat(['config', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /usage: anylat config check/);
  });

  it('loadConfig reports an unreadable file as a ConfigError', () => {
    assert.throws(
      () => loadConfig(join(scratch, 'nope.yaml')),
      (e: unknown) => e instanceof ConfigError && /no such file/.test(e.message),
    );
  });
});
