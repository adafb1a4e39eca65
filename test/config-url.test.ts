// A config served over HTTP(S), as a fleet runs it: a real server on loopback with ETag and
// Last-Modified, a bearer token, `anylat run` polling it. A version that does not validate is
// logged with `config check`'s lines (the URL in place of the file name) and the running one kept;
// a valid one is applied; the last good one is cached and used when the server is down. HTTPS is
// checked against the system's CA store (SSL_CERT_FILE names it here).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runAnylat, startAnylat } from './support/net.ts';
import { udpReflectorForFile } from './support/udp-reflector.ts';
import { makeSelfSignedCert, type TestCert } from './support/tls-cert.ts';

const files = udpReflectorForFile('u-site', 'anylat-cfgurl-');
const { scratch } = files;
const TOKEN = 'fleet-token-5ec4e7';

function service(name: string): string {
  return `  - name: ${name}
    anycast: 127.0.0.1
    unicast:
      lo-two: 127.0.0.2
    probes:
      udp: { port: ${files.udpPort} }
    samples: 2
    spacing: 20ms
    timeout: 300ms
    schedule: "*/2 * * * * *"
`;
}

function fleetConfig(services: string): string {
  return `agent:\n  id: url-agent\n  region: lab\nservices:\n${services}store:\n  path: ${join(scratch, 'anylat.db')}\n`;
}

/** A config server: serves `text` with an ETag and Last-Modified, answers 304 when they match, wants the bearer token. */
class ConfigServer {
  text = '';
  modified = new Date('2026-01-02T03:04:05Z');
  readonly seen: IncomingHttpHeaders[] = [];
  notModified = 0;
  server: Server | undefined;
  port = 0;

  set(text: string): void {
    this.text = text;
    this.modified = new Date(this.modified.getTime() + 60_000);
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.seen.push(req.headers);
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        res.writeHead(401).end('who are you?');
        return;
      }
      const etag = `"${createHash('sha256').update(this.text).digest('hex').slice(0, 16)}"`;
      if (req.headers['if-none-match'] === etag) {
        this.notModified++;
        res.writeHead(304).end();
        return;
      }
      res
        .writeHead(200, { 'content-type': 'application/yaml', etag, 'last-modified': this.modified.toUTCString() })
        .end(this.text);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/fleet/anylat.yaml`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server?.close(() => resolve());
      this.server?.closeAllConnections();
    });
  }
}

async function waitFor(what: string, test: () => boolean, output: () => string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) assert.fail(`${what} not seen within ${ms / 1000} s:\n${output()}`);
    await sleep(100);
  }
}

describe('config from a URL', () => {
  it('polls with a token and validators, keeps the running config over a bad version, applies a good one, starts from the cache when the server is down', async () => {
    const server = new ConfigServer();
    server.set(fleetConfig(service('one')));
    await server.start();
    const cache = join(scratch, 'state', 'anylat.config-cache.json');
    const args = ['run', '--config', server.url, '--config-poll', '500ms', '--config-cache', cache];
    const env = { ANYLAT_CONFIG_TOKEN: TOKEN };
    const agent = await startAnylat(args, { env, ready: /running 1 service/ });
    let stopped = false;
    try {
      assert.equal(server.seen[0]?.authorization, `Bearer ${TOKEN}`);
      await waitFor('a poll answered 304', () => server.notModified >= 1, agent.output);
      assert.ok(
        server.seen.slice(1).every((h) => h['if-none-match'] !== undefined && h['if-modified-since'] !== undefined),
        'polls ask only for something newer',
      );
      assert.equal(statSync(cache).mode & 0o777, 0o600);

      // A version that does not validate: logged line by line as config check prints it, not applied.
      server.set(fleetConfig(service('one').replace('samples: 2', 'samples: 0')));
      const check = await runAnylat(['config', 'check', '--config', server.url], { env });
      assert.equal(check.code, 2);
      const problems = check.stderr.split('\n').filter((l) => l.startsWith(server.url));
      assert.deepEqual(problems, [
        `${server.url}:11:14: services[0].samples: expected a number of samples from 1 to 10000, got 0`,
      ]);
      await waitFor('the bad version reported', () => agent.output().includes(`config: ${problems[0]}`), agent.output);
      assert.match(agent.output(), /config: reload failed, keeping version [0-9a-f]{12}: 1 problem/);

      // A good version: applied without a restart.
      server.set(fleetConfig(service('one') + service('two')));
      await waitFor(
        'the new version applied',
        () => /config: version [0-9a-f]{12} applied: added two/.test(agent.output()),
        agent.output,
      );
      await waitFor('a round of the added service', () => / round two: /.test(agent.output()), agent.output);
    } finally {
      const code = await agent.stop('SIGTERM');
      stopped = code === 0;
    }
    assert.ok(stopped, agent.output());
    assert.ok(!agent.output().includes(TOKEN), 'the token is in the log');

    // The server is down: the agent starts with the last good version (two services), and says so.
    // (Its port is closed now: connections to it are refused.)
    await server.stop();
    const downUrl = server.url;
    const again = await startAnylat(['run', '--config', downUrl, '--config-cache', cache], {
      env,
      ready: /running 2 services/,
    });
    try {
      assert.match(
        again.output(),
        /config: cannot fetch the config from http:\/\/127\.0\.0\.1:\d+\/fleet\/anylat\.yaml: connect ECONNREFUSED/,
      );
      assert.match(
        again.output(),
        /config: starting with the last good config of http:\/\/127\.0\.0\.1:\d+\/fleet\/anylat\.yaml, version [0-9a-f]{12}/,
      );
    } finally {
      assert.equal(await again.stop('SIGTERM'), 0, again.output());
    }

    // Neither server nor cache: exit 2, saying both.
    const none = await runAnylat(['run', '--config', downUrl, '--config-cache', join(scratch, 'nothing.json')], {
      env,
    });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /cannot fetch the config from .*ECONNREFUSED/);
    assert.match(none.stderr, /no cached copy to start with/);
  });

  describe('over HTTPS', () => {
    let cert: TestCert;
    let server: Server;
    let url: string;
    before(async () => {
      cert = await makeSelfSignedCert({ ips: ['127.0.0.1'] });
      server = createHttpsServer({ key: cert.key, cert: cert.cert }, (_req, res) =>
        res.writeHead(200).end(fleetConfig(service('one'))),
      );
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `https://127.0.0.1:${(server.address() as { port: number }).port}/anylat.yaml`;
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await cert.cleanup();
    });

    it('trusts the CAs of the system store (SSL_CERT_FILE), and nothing else', async () => {
      const trusted = await runAnylat(['config', 'check', '--config', url], { env: { SSL_CERT_FILE: cert.certPath } });
      assert.equal(trusted.code, 0, trusted.stderr);
      assert.match(trusted.stdout, /^https:\/\/127\.0\.0\.1:\d+\/anylat\.yaml: OK$/m);
      const untrusted = await runAnylat(['config', 'check', '--config', url], { env: { SSL_CERT_FILE: undefined } });
      assert.equal(untrusted.code, 2);
      assert.match(
        untrusted.stderr,
        /cannot fetch the config from https:\/\/127\.0\.0\.1:\d+\/anylat\.yaml: .*(self[- ]signed|SELF_SIGNED)/i,
      );
    });
  });
});
