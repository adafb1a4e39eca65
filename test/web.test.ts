// The embedded dashboard's server: a real store filled through saveRound/saveHeartbeat, a real
// server on a free loopback port, every JSON endpoint checked against the numbers that were saved.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../agent/store/index.ts';
import { startWebServer, type WebServer } from '../agent/web/index.ts';
import type {
  BenefitResponse,
  EventsResponse,
  HealthResponse,
  LatencyResponse,
  LossResponse,
  ServicesResponse,
  SitesResponse,
} from '../agent/web/index.ts';
import { HEARTBEAT_INTERVAL_MS } from '../agent/agent.ts';
import { HEARTBEAT_LATE_AFTER_S } from '../agent/web/queries.ts';
import { fillStore, LOSSY, regionRound, REGIONS, ROUNDS, type Filled } from './support/web-data.ts';

const RETENTION = { maxAgeMs: 30 * 86_400_000, maxRows: 1_000_000 };

/** Independent of the store's own median: sort, take the middle (mean of the two middles). */
function med(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function close(actual: number | null | undefined, expected: number, what: string): void {
  assert.ok(typeof actual === 'number', `${what}: expected a number, got ${actual}`);
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: expected ${expected}, got ${actual}`);
}

async function get<T>(
  server: WebServer,
  path: string,
): Promise<{ status: number; type: string | null; headers: Headers; body: T }> {
  const res = await fetch(new URL(path, server.url));
  const type = res.headers.get('content-type');
  const body = (type?.startsWith('application/json') ? await res.json() : await res.text()) as T;
  return { status: res.status, type, headers: res.headers, body };
}

interface ApiError {
  error: { code: string; param?: string; message: string };
}

describe('web dashboard server', () => {
  let dir: string;
  let store: Store;
  let filled: Filled;
  let server: WebServer;
  const logs: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'anylat-web-'));
    store = openStore(join(dir, 'anylat.db'), { retention: RETENTION, outbox: false });
    filled = fillStore(store);
    server = await startWebServer({ store, listen: '127.0.0.1:0', log: (l) => logs.push(l) });
  });

  after(async () => {
    await server?.close();
    store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('logs where it listens, on loopback', () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.ok(
      logs.some((l) => l.includes(server.url)),
      logs.join('\n'),
    );
  });

  it('lists services with their agents; the default is the service measured last', async () => {
    const { status, body } = await get<ServicesResponse>(server, '/api/services');
    assert.equal(status, 200);
    assert.equal(body.store_ready, true);
    assert.equal(body.default_service, 'web');
    assert.deepEqual(
      body.services.map((s) => [s.service, s.rounds, s.agents.map((a) => a.agent)]),
      [
        ['api', 3, ['old-1']],
        ['web', ROUNDS * REGIONS.length, ['ap-1', 'eu-1', 'us-1']],
      ],
    );
  });

  it('gives the end-to-end benefit per region: window medians, CI, win rate, site, latest round', async () => {
    const { status, body } = await get<BenefitResponse>(server, '/api/benefit');
    assert.equal(status, 200);
    assert.equal(body.service, 'web');
    assert.equal(body.since, '1h');
    assert.equal(body.metric, 'udp/rtt');
    assert.equal(body.scope, 'end_to_end');
    assert.deepEqual(
      body.metrics.map((m) => [m.key, m.scope, m.agents]),
      [
        ['udp/rtt', 'end_to_end', 3],
        ['tcp/connect', 'edge', 3],
      ],
    );
    assert.deepEqual(
      body.regions.map((r) => [r.agent_region, r.agent]),
      [
        ['ap-south', 'ap-1'],
        ['eu-west', 'eu-1'],
        ['us-east', 'us-1'],
      ],
    );
    for (const spec of REGIONS) {
      const region = body.regions.find((r) => r.agent === spec.agent)!;
      const rows = filled.rounds.get(spec.agent)!.map((r) => r.benefit.find((b) => b.protocol === 'udp')!);
      const h = region.headline!;
      assert.equal(h.protocol, 'udp');
      assert.equal(h.scope, 'end_to_end');
      assert.equal(h.rounds, ROUNDS);
      assert.equal(h.pairs, ROUNDS * 20);
      close(h.saved_ms, med(rows.map((b) => b.saved_ms)), `${spec.agent} saved_ms`);
      // The wobble cancels over the window: the median is what the region was built to save.
      close(h.saved_ms, spec.saved, `${spec.agent} saved_ms vs spec`);
      close(h.ci_low_ms, med(rows.map((b) => b.ci_low_ms!)), `${spec.agent} ci_low_ms`);
      close(h.ci_high_ms, med(rows.map((b) => b.ci_high_ms!)), `${spec.agent} ci_high_ms`);
      close(h.saved_pct, med(rows.map((b) => b.saved_pct)), `${spec.agent} saved_pct`);
      close(h.anycast_p50_ms, med(rows.map((b) => b.anycast_p50_ms)), `${spec.agent} anycast_p50_ms`);
      close(h.baseline_p50_ms, med(rows.map((b) => b.baseline_p50_ms)), `${spec.agent} baseline_p50_ms`);
      close(h.win_rate, rows.reduce((a, b) => a + b.win_rate, 0) / rows.length, `${spec.agent} win_rate`);
      assert.deepEqual(h.baselines, { [spec.baseline]: ROUNDS });
      assert.equal(region.site, spec.siteAfter ?? spec.site);
      const last = rows[rows.length - 1]!;
      assert.equal(region.latest?.t, filled.startOf(spec, ROUNDS - 1));
      close(region.latest?.saved_ms, last.saved_ms, `${spec.agent} latest saved`);
      assert.equal(region.last_round_t, filled.startOf(spec, ROUNDS - 1));
      assert.deepEqual(
        region.rows.map((r) => `${r.scope}:${r.protocol}/${r.metric}`),
        ['end_to_end:udp/rtt', 'edge:tcp/connect'],
      );
    }
    // The three kinds of region the demo shows: a clear gain, no difference, a loss.
    const ap = body.regions.find((r) => r.agent === 'ap-1')!.headline!;
    const us = body.regions.find((r) => r.agent === 'us-1')!.headline!;
    const eu = body.regions.find((r) => r.agent === 'eu-1')!.headline!;
    assert.ok(ap.ci_low_ms! > 0);
    assert.ok(us.ci_low_ms! < 0 && us.ci_high_ms! > 0);
    assert.ok(eu.ci_high_ms! < 0);
  });

  it('switches the headline to another metric, edge scope included when asked for', async () => {
    const { body } = await get<BenefitResponse>(server, '/api/benefit?metric=tcp/connect');
    assert.equal(body.metric, 'tcp/connect');
    assert.equal(body.scope, 'edge');
    for (const spec of REGIONS) {
      const h = body.regions.find((r) => r.agent === spec.agent)!.headline!;
      const rows = filled.rounds.get(spec.agent)!.map((r) => r.benefit.find((b) => b.protocol === 'tcp')!);
      assert.equal(h.scope, 'edge');
      close(h.saved_ms, med(rows.map((b) => b.saved_ms)), `${spec.agent} tcp saved`);
    }
    // A valid metric nobody measured: no headline, not an error.
    const none = await get<BenefitResponse>(server, '/api/benefit?metric=http/ttfb');
    assert.equal(none.status, 200);
    assert.equal(none.body.metric, 'http/ttfb');
    assert.ok(none.body.regions.every((r) => r.headline === null && r.latest === null));
  });

  it('keeps an agent that stopped: its row has no headline in a window without its rounds', async () => {
    const recent = await get<BenefitResponse>(server, '/api/benefit?service=api');
    assert.equal(recent.status, 200);
    assert.deepEqual(
      recent.body.regions.map((r) => [r.agent, r.headline]),
      [['old-1', null]],
    );
    const wide = await get<BenefitResponse>(server, '/api/benefit?service=api&since=6h');
    const h = wide.body.regions[0]!.headline!;
    assert.equal(h.rounds, 3);
    close(h.saved_ms, med(filled.rounds.get('old-1')!.map((r) => r.benefit[0]!.saved_ms)), 'old-1 saved');
  });

  it('gives anycast and baseline p50 per round per region', async () => {
    const { status, body } = await get<LatencyResponse>(server, '/api/latency?since=30m');
    assert.equal(status, 200);
    assert.equal(body.metric, 'udp/rtt');
    assert.equal(body.regions.length, 3);
    for (const spec of REGIONS) {
      const r = body.regions.find((x) => x.agent === spec.agent)!;
      const rounds = filled.rounds.get(spec.agent)!;
      assert.deepEqual(
        r.t,
        rounds.map((_, i) => filled.startOf(spec, i)),
      );
      assert.deepEqual(
        r.anycast_p50_ms,
        rounds.map((x) => x.benefit[0]!.anycast_p50_ms),
      );
      assert.deepEqual(
        r.baseline_p50_ms,
        rounds.map((x) => x.benefit[0]!.baseline_p50_ms),
      );
      assert.deepEqual(
        r.saved_ms,
        rounds.map((x) => x.benefit[0]!.saved_ms),
      );
      assert.deepEqual(
        r.baseline,
        rounds.map(() => spec.baseline),
      );
    }
    // The window cuts: 5 minutes hold only the newest rounds.
    const short = await get<LatencyResponse>(server, '/api/latency?since=5m');
    const us = short.body.regions.find((x) => x.agent === 'us-1')!;
    const spec = REGIONS.find((s) => s.agent === 'us-1')!;
    const expected = filled.rounds
      .get('us-1')!
      .map((_, i) => filled.startOf(spec, i))
      .filter((t) => t >= short.body.from_t);
    assert.ok(expected.length > 0 && expected.length < ROUNDS);
    assert.deepEqual(us.t, expected);
  });

  it('gives loss per path per round, anycast paths first', async () => {
    const { body } = await get<LossResponse>(server, '/api/loss');
    const us = body.regions.find((r) => r.agent === LOSSY.agent)!;
    assert.deepEqual(
      us.paths.map((p) => `${p.endpoint}/${p.protocol}`),
      ['anycast/udp', 'anycast/tcp', 'eu-west-1/udp', 'us-east-1/udp', 'us-east-1/tcp'],
    );
    const lossy = us.paths.find((p) => p.endpoint === LOSSY.endpoint && p.protocol === LOSSY.protocol)!;
    assert.deepEqual(
      lossy.loss_pct,
      Array.from({ length: ROUNDS }, (_, i) => (i % LOSSY.every === 0 ? LOSSY.lossPct : 0)),
    );
    assert.deepEqual(
      lossy.received,
      Array.from({ length: ROUNDS }, (_, i) => (i % LOSSY.every === 0 ? 19 : 20)),
    );
    for (const r of body.regions.filter((x) => x.agent !== LOSSY.agent)) {
      assert.ok(
        r.paths.every((p) => p.loss_pct.every((v) => v === 0)),
        `${r.agent} has no loss`,
      );
    }
  });

  it('gives the anycast site per agent as runs of rounds, and the site change event', async () => {
    const { body } = await get<SitesResponse>(server, '/api/sites');
    const eu = REGIONS.find((s) => s.agent === 'eu-1')!;
    const sites = body.regions.find((r) => r.agent === 'eu-1')!;
    assert.equal(sites.current, 'us-east-1');
    assert.deepEqual(sites.segments, [
      {
        site: 'eu-west-1',
        from_t: filled.startOf(eu, 0),
        to_t: filled.startOf(eu, eu.changeAt! - 1),
        rounds: eu.changeAt,
      },
      {
        site: 'us-east-1',
        from_t: filled.startOf(eu, eu.changeAt!),
        to_t: filled.startOf(eu, ROUNDS - 1),
        rounds: ROUNDS - eu.changeAt!,
      },
    ]);
    const ap = body.regions.find((r) => r.agent === 'ap-1')!;
    assert.deepEqual(
      ap.segments.map((s) => [s.site, s.rounds]),
      [['eu-west-1', ROUNDS]],
    );

    const events = await get<EventsResponse>(server, '/api/events');
    assert.equal(events.body.events.length, 1);
    const e = events.body.events[0]!;
    assert.deepEqual(
      { t: e.t, agent: e.agent, region: e.agent_region, type: e.type, from: e.from, to: e.to },
      {
        t: filled.startOf(eu, eu.changeAt!),
        agent: 'eu-1',
        region: 'eu-west',
        type: 'site_change',
        from: 'eu-west-1',
        to: 'us-east-1',
      },
    );
    const none = await get<EventsResponse>(server, '/api/events?since=3m');
    assert.deepEqual(none.body.events, []);
  });

  it('gives agent health: heartbeat fields, round interval, and who is late or silent', async () => {
    const { body } = await get<HealthResponse>(server, '/api/health');
    const by = new Map(body.agents.map((a) => [a.agent, a]));
    assert.deepEqual(
      body.agents.map((a) => [a.agent_region, a.agent]),
      [
        ['ap-south', 'ap-1'],
        ['eu-west', 'eu-1'],
        ['sa-east', 'old-1'],
        ['us-east', 'us-1'],
      ],
    );
    const us = by.get('us-1')!;
    assert.equal(us.status, 'ok');
    assert.deepEqual(us.issues, []);
    assert.equal(us.version, '0.1.0');
    assert.equal(us.round_interval_s, 60);
    assert.deepEqual(us.round_intervals, [{ service: 'web', interval_s: 60 }]);
    assert.ok(us.heartbeat_age_s! >= 10 && us.heartbeat_age_s! < 60);
    const eu = by.get('eu-1')!;
    assert.equal(eu.status, 'warning');
    assert.equal(eu.dead_letters, 2);
    assert.equal(eu.outbox_rows, 37);
    assert.equal(eu.loop_lag_p99_ms, 3.4);
    assert.ok(
      eu.issues.some((i) => i.includes('2 dead letter')),
      eu.issues.join('; '),
    );
    assert.equal(eu.rounds_failed, 3);
    assert.ok(eu.issues.includes('3 round(s) measured but not stored (store write failed)'), eu.issues.join('; '));
    assert.equal(us.rounds_failed, null);
    const ap = by.get('ap-1')!;
    assert.equal(ap.status, 'warning');
    assert.equal(ap.version, '0.0.9');
    assert.ok(ap.issues.includes('last heartbeat 20 min ago'), ap.issues.join('; '));
    const old = by.get('old-1')!;
    assert.equal(old.status, 'silent');
    assert.equal(old.heartbeat_t, null);
    assert.equal(
      old.last_round_t,
      filled.rounds
        .get('old-1')!
        .map((r) => Date.parse(r.started_at))
        .at(-1),
    );
  });

  it("calls a heartbeat late after three of the agent's heartbeat intervals", () => {
    assert.equal(HEARTBEAT_LATE_AFTER_S, (3 * HEARTBEAT_INTERVAL_MS) / 1000);
  });

  it('refuses bad parameters with 400 and a JSON error naming the parameter', async () => {
    const cases: Array<[string, string]> = [
      ['/api/benefit?since=abc', 'since'],
      ['/api/benefit?since=0s', 'since'],
      ['/api/benefit?since=500d', 'since'],
      ['/api/benefit?since=1h&since=2h', 'since'],
      ['/api/benefit?service=', 'service'],
      ['/api/benefit?service=nope', 'service'],
      ['/api/latency?metric=udp/ttfb', 'metric'],
      ['/api/sites?metric=carrier-pigeon/rtt', 'metric'],
      ['/api/events?limit=0', 'limit'],
      ['/api/events?limit=ten', 'limit'],
      ['/api/loss?metric=udp/rtt', 'metric'],
      ['/api/benefit?sinse=1h', 'sinse'],
      ['/api/health?since=1h', 'since'],
      ['/api/services?service=web', 'service'],
    ];
    for (const [path, param] of cases) {
      const { status, type, body } = await get<ApiError>(server, path);
      assert.equal(status, 400, path);
      assert.match(type ?? '', /^application\/json/, path);
      assert.equal(body.error.code, 'ANYLAT_WEB_PARAM', path);
      assert.equal(body.error.param, param, path);
      assert.ok(body.error.message.startsWith(`${param}: `), `${path}: ${body.error.message}`);
    }
    const unknown = await get<ApiError>(server, '/api/benefit?service=nope');
    assert.match(unknown.body.error.message, /known services: api, web/);
  });

  it('answers 404 for unknown paths, 405 for other methods, and lists endpoints at /api', async () => {
    const api = await get<{ endpoints: Array<{ path: string }> }>(server, '/api');
    assert.deepEqual(
      api.body.endpoints.map((e) => e.path),
      [
        '/api/services',
        '/api/overview',
        '/api/benefit',
        '/api/latency',
        '/api/loss',
        '/api/sites',
        '/api/events',
        '/api/health',
      ],
    );
    assert.equal((await get(server, '/api/nope')).status, 404);
    assert.equal((await get(server, '/nope.js')).status, 404);
    assert.equal((await get(server, '/public/app.js')).status, 404);
    assert.equal((await get(server, '/%2e%2e/package.json')).status, 404);
    const post = await fetch(new URL('/api/benefit', server.url), { method: 'POST', body: '{}' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    await post.body?.cancel();
  });

  it('serves the page, its script and style, and uPlot from its package, with the right types and security headers', async () => {
    const require = createRequire(import.meta.url);
    const files: Array<[string, RegExp, string?]> = [
      ['/', /^text\/html; charset=utf-8$/],
      ['/index.html', /^text\/html; charset=utf-8$/],
      ['/app.js', /^text\/javascript; charset=utf-8$/],
      ['/charts.js', /^text\/javascript; charset=utf-8$/],
      ['/format.js', /^text\/javascript; charset=utf-8$/],
      ['/sections.js', /^text\/javascript; charset=utf-8$/],
      ['/style.css', /^text\/css; charset=utf-8$/],
      ['/favicon.svg', /^image\/svg\+xml$/],
      [
        '/vendor/uPlot.iife.min.js',
        /^text\/javascript; charset=utf-8$/,
        require.resolve('uplot/dist/uPlot.iife.min.js'),
      ],
      ['/vendor/uPlot.min.css', /^text\/css; charset=utf-8$/, require.resolve('uplot/dist/uPlot.min.css')],
    ];
    for (const [path, type, file] of files) {
      const res = await get<string>(server, path);
      assert.equal(res.status, 200, path);
      assert.match(res.type ?? '', type, path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/, path);
      assert.match(csp, /script-src 'self'(;|$)/, path);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
      if (file) assert.equal(res.body, readFileSync(file, 'utf8'), path);
    }
    const html = (await get<string>(server, '/')).body;
    assert.match(html, /<script src="\/vendor\/uPlot\.iife\.min\.js" defer><\/script>/);
    // A module, run after uPlot's deferred script (both in document order once the page is parsed).
    assert.match(html, /<script type="module" src="\/app\.js"><\/script>/);
    // No inline script or style: the CSP would block them.
    assert.doesNotMatch(html, /<script>|<script(?![^>]*\ssrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i);
    const api = await fetch(new URL('/api/health', server.url));
    assert.equal(api.headers.get('cache-control'), 'no-store');
    assert.equal(api.headers.get('x-content-type-options'), 'nosniff');
    await api.body?.cancel();
  });

  it('answers HEAD without a body', async () => {
    const res = await fetch(new URL('/app.js', server.url), { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '');
    assert.ok(Number(res.headers.get('content-length')) > 1000);
  });

  it('refuses a request whose Host is not loopback (DNS rebinding)', async () => {
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: server.port, path: '/api/services', headers: { host } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
    assert.equal(await status('attacker.example:8080'), 421);
    assert.equal(await status('localhost:9999'), 200);
    assert.equal(await status(`127.0.0.1:${server.port}`), 200);
  });

  it('answers for a service whose first round arrived after the list of services was read', async () => {
    assert.equal((await get<ServicesResponse>(server, '/api/services')).body.services.length, 2);
    const spec = REGIONS[0]!;
    store.saveRound({ ...regionRound(spec, 0, Date.now() - 1000), service: 'dns' });
    const { status, body } = await get<BenefitResponse>(server, '/api/benefit?service=dns');
    assert.equal(status, 200);
    assert.deepEqual(
      body.regions.map((r) => [r.agent, r.headline?.rounds]),
      [[spec.agent, 1]],
    );
  });

  it('never shows where the store lives', async () => {
    for (const path of [
      '/api/services',
      '/api/benefit',
      '/api/latency',
      '/api/loss',
      '/api/sites',
      '/api/events',
      '/api/health',
      '/api',
    ]) {
      const res = await fetch(new URL(path, server.url));
      assert.ok(!(await res.text()).includes(dir), path);
    }
  });
});

describe('web dashboard listen address', () => {
  let dir: string;
  let store: Store;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'anylat-web-listen-'));
    store = openStore(join(dir, 'anylat.db'), { retention: RETENTION, outbox: false });
  });

  after(() => {
    store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses an address other hosts can reach unless allowed, and warns when allowed', async () => {
    for (const listen of ['0.0.0.0:0', '[::]:0', '192.0.2.1:8080', { host: '10.1.2.3', port: 8080 }]) {
      await assert.rejects(
        startWebServer({ store, listen, log: () => {} }),
        (err: Error & { code?: string; exitCode?: number }) => {
          assert.equal(err.code, 'ANYLAT_WEB_PUBLIC', String(err));
          assert.equal(err.exitCode, 2);
          assert.match(err.message, /reachable from other hosts/);
          return true;
        },
      );
    }
    const logs: string[] = [];
    const open = await startWebServer({ store, listen: '0.0.0.0:0', allowPublic: true, log: (l) => logs.push(l) });
    try {
      assert.ok(
        logs.some((l) => /^warning: .*reachable from other hosts/.test(l)),
        logs.join('\n'),
      );
      // Bound to every interface; asked here over loopback only.
      const res = await fetch(`http://127.0.0.1:${open.port}/api/services`, { headers: { host: 'dashboard.example' } });
      assert.equal(res.status, 200);
      await res.body?.cancel();
    } finally {
      await open.close();
    }
  });

  it('accepts localhost and [::1] as loopback, and the config form { host, port }', async () => {
    for (const listen of ['localhost:0', '[::1]:0', { host: '127.0.0.2', port: 0 }]) {
      const s = await startWebServer({ store, listen, log: () => {} });
      try {
        assert.match(s.url, /^http:\/\/(127\.0\.0\.[12]|\[::1\]):\d+\/$/);
        const res = await fetch(new URL('/api/services', s.url));
        assert.equal(res.status, 200, String(listen));
        await res.body?.cancel();
      } finally {
        await s.close();
      }
    }
  });

  it('says what to do when the address is taken or malformed', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      await assert.rejects(
        startWebServer({ store, listen: `127.0.0.1:${port}`, log: () => {} }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'ANYLAT_BIND');
          assert.match(
            err.message,
            new RegExp(
              `cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use \\(EADDRINUSE\\); set web\\.listen`,
            ),
          );
          return true;
        },
      );
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
    for (const listen of ['127.0.0.1:http', '::1:8080', '127.0.0.1:70000']) {
      await assert.rejects(startWebServer({ store, listen, log: () => {} }), { code: 'ANYLAT_WEB_LISTEN' }, listen);
    }
    await assert.rejects(startWebServer({ listen: '127.0.0.1:0', log: () => {} }), { code: 'ANYLAT_WEB_OPTIONS' });
  });
});

describe('web dashboard over a store file', () => {
  let dir: string;
  let server: WebServer | undefined;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'anylat-web-file-'));
  });

  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('waits for a store no agent has created yet, then shows it read-only', async () => {
    const path = join(dir, 'later.db');
    server = await startWebServer({ storePath: path, listen: '127.0.0.1:0', log: () => {} });
    const before = await get<ServicesResponse>(server, '/api/services');
    assert.equal(before.status, 200);
    assert.deepEqual(before.body, { store_ready: false, default_service: null, services: [] });
    const empty = await get<BenefitResponse>(server, '/api/benefit');
    assert.equal(empty.body.service, null);
    assert.deepEqual(empty.body.regions, []);
    const health = await get<HealthResponse>(server, '/api/health');
    assert.deepEqual(health.body.agents, []);

    const writer = openStore(path, { retention: RETENTION, outbox: false });
    try {
      fillStore(writer);
      const now = await get<ServicesResponse>(server, '/api/services');
      assert.equal(now.body.store_ready, true);
      assert.equal(now.body.default_service, 'web');
      const benefit = await get<BenefitResponse>(server, '/api/benefit');
      assert.deepEqual(
        benefit.body.regions.map((r) => r.headline?.saved_ms),
        REGIONS.map((s) => s.saved),
      );
    } finally {
      writer.close();
    }
  });
});
