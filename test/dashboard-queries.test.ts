// Every variable and panel query of the three dashboards, run the way Grafana runs it (template
// variables, $timeFilter, $__interval, repeated panels) against a real InfluxDB holding a scenario
// written by the agent's own serializer — and the numbers that come back.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BENEFIT_PANELS } from '../dashboard/benefit.ts';
import { FLEET_PANELS } from '../dashboard/fleet.ts';
import { ROOT } from '../dashboard/generate.ts';
import { PATH_PANELS } from '../dashboard/path-detail.ts';
import { DashboardRunner, column, rows, seriesWith, type DashboardModel } from './fixtures/grafana/dashboard-runner.ts';
import { panelIntervalMs, type TimeRange } from './fixtures/grafana/grafana.ts';
import {
  AGENTS,
  BASELINE,
  DEAD_LETTERS,
  FAR,
  FLAGGED,
  HTTP_PHASE_P50,
  HTTP_TRANSFER_MS,
  HTTP_WARM_SAVES_MS,
  LOSSY,
  MINUTE,
  OLD_DEAD_LETTERS,
  OLD_SITE_CHANGE,
  OUTBOX,
  ROUNDS,
  SAMPLES,
  SITE_CHANGE,
  TRACE,
  buildScenario,
  type Scenario,
} from './fixtures/grafana/scenario.ts';
import { startInfluxDB, type InfluxServer } from './support/influxdb.ts';

function load(uid: string): DashboardModel {
  return JSON.parse(readFileSync(join(ROOT, `provisioning/dashboards/${uid}.json`), 'utf8')) as DashboardModel;
}

function close(actual: unknown, expected: number, what: string): void {
  assert.equal(typeof actual, 'number', `${what}: ${String(actual)} is not a number`);
  assert.ok(Math.abs((actual as number) - expected) < 1e-6, `${what}: expected ${expected}, got ${String(actual)}`);
}

const agent = (id: string) => AGENTS.find((a) => a.identity.id === id)!;

let influx: InfluxServer;
let scenario: Scenario;
let range: TimeRange;
const q = (s: string) => influx.query(s);

before(async () => {
  influx = await startInfluxDB();
  scenario = buildScenario();
  for (let i = 0; i < scenario.lines.length; i += 5000) await influx.write(scenario.lines.slice(i, i + 5000));
  // "Last 1 hour" in a ~1000 px wide panel: 3.6 s raw interval, raised to the datasource's 1m minimum.
  range = { fromMs: scenario.now - 3600_000, toMs: scenario.now, intervalMs: panelIntervalMs(3600_000, 1000, MINUTE) };
});

after(async () => {
  await influx?.stop();
});

describe('every query of every dashboard runs and returns data', () => {
  const selections: Record<string, Record<string, string | string[]>> = {
    'anylat-benefit': { service: 'shop' },
    'anylat-path-detail': { service: 'shop', agent: 'ap-1' },
    'anylat-fleet': {},
  };
  for (const uid of Object.keys(selections)) {
    it(uid, async () => {
      const runner = await DashboardRunner.open(load(uid), range, q, selections[uid]);
      for (const v of runner.variables) {
        // `size` lists transfer sizes; this scenario has no transfer (test/grafana-fleet.test.ts has)
        if (v.name === 'size') assert.deepEqual(v.options, []);
        else assert.ok(v.options.length > 0, `variable ${v.name} has no options`);
      }
      let queries = 0;
      for (const p of runner.allPanels()) {
        for (const run of await runner.run(p.id)) {
          for (const t of run.targets) {
            queries++;
            // This one-hour scenario has nothing a week back, and us-1 went silent 20 minutes ago so
            // its region has no "last 15 min"; grafana-fleet.test.ts reads both figures.
            if (
              uid === 'anylat-benefit' &&
              p.id === BENEFIT_PANELS.headline &&
              (t.refId === 'C' || (t.refId === 'B' && run.repeatValue === 'us-west-2'))
            )
              continue;
            assert.ok(
              t.series.length > 0,
              `panel ${p.id} "${p.title}"${run.repeatValue ? ` (${run.repeatValue})` : ''} returned nothing for:\n${t.sent}`,
            );
          }
        }
      }
      assert.ok(queries >= runner.allPanels().length);
    });
  }
});

describe('Accelerator benefit', () => {
  const dash = () => load('anylat-benefit');

  it('variables: services, end-to-end protocols and metrics only, regions per service', async () => {
    const shop = await DashboardRunner.open(dash(), range, q, { service: 'shop' });
    assert.deepEqual(shop.options('service'), ['api', 'shop']);
    // tcp has only an edge benefit row (the accelerator answers the handshake): not offered.
    // The primary (udp rtt) first, then the other protocols with an end-to-end benefit.
    assert.deepEqual(shop.options('protocol'), ['udp', 'http']);
    assert.deepEqual(shop.options('metric'), ['rtt']);
    assert.deepEqual(shop.options('region'), ['ap-south-1', 'eu-west-1', 'us-west-2']);
    const http = await DashboardRunner.open(dash(), range, q, { service: 'shop', protocol: 'http' });
    assert.deepEqual(http.options('metric'), ['ttfb']);
    const api = await DashboardRunner.open(dash(), range, q, { service: 'api' });
    assert.deepEqual(api.options('region'), ['eu-west-1']);
  });

  // The headline, the fleet figure and the matrix are read on the fleet scenario in
  // test/grafana-fleet.test.ts, which has the regions, the history and the faults they need.

  it('map: every agent with its heartbeat position joined to its mean saving', async () => {
    const r = await DashboardRunner.open(dash(), range, q, { service: 'shop', region: '$__all' });
    const [run] = await r.run(BENEFIT_PANELS.map);
    const positions = rows(run!.targets.find((t) => t.refId === 'A')!.series);
    const savings = rows(run!.targets.find((t) => t.refId === 'B')!.series);
    // Grafana's joinByField (inner) on `agent`
    const joined = positions.flatMap((p) => savings.filter((s) => s.agent === p.agent).map((s) => ({ ...p, ...s })));
    assert.equal(joined.length, AGENTS.length);
    for (const a of AGENTS) {
      const row = joined.find((j) => j.agent === a.identity.id)!;
      close(row.lat, a.lat, `${a.identity.id} lat`);
      close(row.lon, a.lon, `${a.identity.id} lon`);
      close(row.saved_ms, a.udpBaseline - a.udpAnycast, `${a.identity.id} saved_ms`);
    }
  });

  it('benefit per region: medians, CI, win rate and rounds', async () => {
    const r = await DashboardRunner.open(dash(), range, q, { service: 'shop', region: '$__all' });
    const table = rows(await r.series(BENEFIT_PANELS.perRegion, 'A'));
    assert.deepEqual(table.map((t) => t.agent_region).sort(), ['ap-south-1', 'eu-west-1', 'us-west-2']);
    const eu = table.find((t) => t.agent_region === 'eu-west-1')!;
    close(eu.saved_ms, 30, 'eu saved');
    close(eu.anycast_p50_ms, 11, 'eu anycast p50');
    close(eu.baseline_p50_ms, 41, 'eu baseline p50');
    close(eu.ci_low_ms, 29, 'eu CI low');
    close(eu.ci_high_ms, 31, 'eu CI high');
    close(eu.win_rate, 1, 'eu win rate');
    close(eu.rounds, 2 * ROUNDS, 'eu rounds');
    const ap = table.find((t) => t.agent_region === 'ap-south-1')!;
    close(ap.saved_ms, -2, 'ap saved');
    close(ap.win_rate, 0.2, 'ap win rate');
    close(table.find((t) => t.agent_region === 'us-west-2')!.rounds, 40, 'us rounds');
  });

  it('p50 over time: one panel per region, anycast and baseline with their min–max band', async () => {
    const r = await DashboardRunner.open(dash(), range, q, { service: 'shop', region: '$__all' });
    const runs = await r.run(BENEFIT_PANELS.p50Band);
    assert.deepEqual(
      runs.map((x) => x.repeatValue),
      ['ap-south-1', 'eu-west-1', 'us-west-2'],
    );
    const eu = runs.find((x) => x.repeatValue === 'eu-west-1')!.targets[0]!;
    assert.match(eu.sent, /"agent_region" =~ \/\^eu-west-1\$\//);
    const s = eu.series[0]!;
    assert.equal(s.values.length, ROUNDS);
    const expectEvery = (col: string, v: number) => column(s, col).forEach((x, i) => close(x, v, `${col}[${i}]`));
    expectEvery('anycast p50', 11);
    expectEvery('anycast min', 10);
    expectEvery('anycast max', 12);
    expectEvery('baseline p50', 41);
    expectEvery('baseline min', 40);
    expectEvery('baseline max', 42);
    const ap = runs.find((x) => x.repeatValue === 'ap-south-1')!.targets[0]!.series[0]!;
    // one agent: the band collapses onto its line instead of disappearing
    column(ap, 'anycast min').forEach((x) => close(x, 52, 'single-agent band'));
    const us = runs.find((x) => x.repeatValue === 'us-west-2')!.targets[0]!.series[0]!;
    assert.equal(us.values.length, 40, 'us-west-2 stops when its agent went silent');
  });

  it('time saved per region over time', async () => {
    const r = await DashboardRunner.open(dash(), range, q, { service: 'shop', region: '$__all' });
    const series = await r.series(BENEFIT_PANELS.benefitOverTime);
    for (const [region, saved, n] of [
      ['eu-west-1', 30, ROUNDS],
      ['ap-south-1', -2, ROUNDS],
      ['us-west-2', 15, 40],
    ] as const) {
      const s = seriesWith(series, { agent_region: region });
      assert.equal(s.values.length, n, region);
      column(s, 'saved_ms').forEach((v) => close(v, saved, region));
    }
  });

  it('loss: 20% on ap-south-1 → us-east-1 in the last rounds, 0 elsewhere', async () => {
    const r = await DashboardRunner.open(dash(), range, q, { service: 'shop', region: '$__all' });
    const series = await r.series(BENEFIT_PANELS.loss);
    assert.equal(series.length, 3 * 3, 'three regions × three endpoints');
    const lossy = column(seriesWith(series, { agent_region: 'ap-south-1', endpoint: LOSSY.endpoint }), 'loss_pct');
    const expected = (100 * LOSSY.lostPerRound) / SAMPLES;
    lossy.slice(-LOSSY.rounds).forEach((v) => close(v, expected, 'lossy bucket'));
    lossy.slice(0, -LOSSY.rounds).forEach((v) => close(v, 0, 'before the loss'));
    for (const s of series)
      if (s !== seriesWith(series, { agent_region: 'ap-south-1', endpoint: LOSSY.endpoint }))
        column(s, 'loss_pct').forEach((v) => close(v, 0, JSON.stringify(s.tags)));
  });

  it('anycast site per agent: the site change shows up where and when it happened', async () => {
    const r = await DashboardRunner.open(dash(), range, q, { service: 'shop', region: '$__all' });
    const series = await r.series(BENEFIT_PANELS.sites);
    assert.deepEqual(series.map((s) => s.tags?.agent).sort(), ['ap-1', 'eu-1', 'eu-2', 'us-1']);
    const eu1 = column(seriesWith(series, { agent: SITE_CHANGE.agent }), 'last');
    assert.deepEqual(eu1.slice(-SITE_CHANGE.atK), Array(SITE_CHANGE.atK).fill(SITE_CHANGE.to));
    assert.deepEqual(new Set(eu1.slice(0, -SITE_CHANGE.atK)), new Set([SITE_CHANGE.from]));
    const eu2 = column(seriesWith(series, { agent: OLD_SITE_CHANGE.agent }), 'last');
    assert.equal(eu2.filter((s) => s === OLD_SITE_CHANGE.to).length, OLD_SITE_CHANGE.atK);
  });

  it('recent events: this service only, newest first, with from/to', async () => {
    const r = await DashboardRunner.open(dash(), range, q, { service: 'shop', region: '$__all' });
    const events = rows(await r.series(BENEFIT_PANELS.events));
    assert.deepEqual(
      events.map((e) => [e.agent, e.type]),
      [
        [SITE_CHANGE.agent, 'site_change'],
        [LOSSY.agent, 'path_down'],
        [OLD_SITE_CHANGE.agent, 'site_change'],
      ],
    );
    assert.equal(events[0]!.from, SITE_CHANGE.from);
    assert.equal(events[0]!.to, SITE_CHANGE.to);
    assert.equal(events[0]!.time, scenario.newest - SITE_CHANGE.atK * MINUTE);
    assert.equal(events[0]!.agent_region, 'eu-west-1');
  });
});

describe('Path detail', () => {
  const dash = () => load('anylat-path-detail');

  it('path context: the latest trace of the selected agent, one row per hop, newest first; none for another agent', async () => {
    const r = await DashboardRunner.open(dash(), range, q, { service: 'shop', agent: TRACE.agent });
    const got = rows(await r.series(PATH_PANELS.traces));
    assert.deepEqual(
      got.map((x) => [x.endpoint, x.trigger, x.hop, x.address ?? null, x.rtt_ms ?? null, x.reached]),
      [
        ['anycast', 'site_change', 2, '198.18.0.10', 12.5, true],
        ['anycast', 'site_change', 1, null, null, false],
      ],
    );
    const other = await DashboardRunner.open(dash(), range, q, { service: 'shop', agent: 'eu-1' });
    assert.deepEqual(rows(await other.series(PATH_PANELS.traces)), []);
  });

  it('variables: agents of the service, its endpoints', async () => {
    const r = await DashboardRunner.open(dash(), range, q, { service: 'shop', agent: 'eu-1' });
    assert.deepEqual(r.options('agent'), ['ap-1', 'eu-1', 'eu-2', 'us-1']);
    assert.deepEqual(r.options('endpoint'), ['anycast', FAR, BASELINE]);
    const api = await DashboardRunner.open(dash(), range, q, { service: 'api', agent: 'eu-1' });
    assert.deepEqual(api.options('agent'), ['eu-1']);
  });

  it('edge vs end to end: the anycast TCP connect is labelled edge, echo/UDP are end to end', async () => {
    const r = await DashboardRunner.open(dash(), range, q, { service: 'shop', agent: 'eu-1', endpoint: '$__all' });
    const series = await r.series(PATH_PANELS.edgeVsEndToEnd);
    const eu1 = agent('eu-1');
    const last = (tags: Record<string, string>) => column(seriesWith(series, tags), 'mean').at(-1);
    close(
      last({ endpoint: 'anycast', protocol: 'tcp', metric: 'connect', scope: 'edge' }),
      5,
      'anycast tcp connect (edge)',
    );
    close(
      last({ endpoint: BASELINE, protocol: 'tcp', metric: 'connect', scope: 'end_to_end' }),
      eu1.udpBaseline,
      'unicast tcp connect',
    );
    close(
      last({ endpoint: 'anycast', protocol: 'udp', metric: 'rtt', scope: 'end_to_end' }),
      eu1.udpAnycast,
      'anycast udp',
    );
    close(last({ endpoint: FAR, protocol: 'udp', metric: 'rtt' }), eu1.udpBaseline + 50, 'far udp');
    assert.equal(series.length, 6);
  });

  it('HTTP phases: one stacked panel per endpoint with dns, connect, tls, ttfb', async () => {
    const r = await DashboardRunner.open(dash(), range, q, {
      service: 'shop',
      agent: 'eu-1',
      endpoint: ['anycast', BASELINE],
    });
    const runs = await r.run(PATH_PANELS.httpPhases);
    assert.deepEqual(
      runs.map((x) => x.repeatValue),
      ['anycast', BASELINE],
    );
    const anycast = runs[0]!.targets[0]!.series;
    assert.deepEqual(anycast.map((s) => s.tags?.metric).sort(), ['connect', 'dns', 'tls', 'ttfb']);
    for (const [metric, p50] of Object.entries(HTTP_PHASE_P50)) {
      const expected = metric === 'ttfb' ? agent('eu-1').ttfbAnycast : p50;
      column(seriesWith(anycast, { metric }), 'mean').forEach((v) => close(v, expected, metric));
    }
    close(
      column(seriesWith(runs[1]!.targets[0]!.series, { metric: 'ttfb' }), 'mean').at(-1),
      agent('eu-1').ttfbBaseline,
      'baseline ttfb',
    );
  });

  it('HTTP request, TLS, ICMP and jitter', async () => {
    const r = await DashboardRunner.open(dash(), range, q, { service: 'shop', agent: 'eu-1', endpoint: '$__all' });
    const eu1 = agent('eu-1');
    const http = await r.series(PATH_PANELS.httpRequest);
    close(
      column(seriesWith(http, { endpoint: 'anycast', metric: 'total' }), 'mean').at(-1),
      eu1.ttfbAnycast + HTTP_TRANSFER_MS,
      'total',
    );
    close(
      column(seriesWith(http, { endpoint: 'anycast', metric: 'warm' }), 'mean').at(-1),
      eu1.ttfbAnycast - HTTP_WARM_SAVES_MS,
      'warm',
    );
    const tls = await r.series(PATH_PANELS.tls);
    close(column(seriesWith(tls, { endpoint: 'anycast' }), 'mean').at(-1), 2 * eu1.udpAnycast, 'tls handshake');
    const icmp = await r.series(PATH_PANELS.icmp);
    close(column(seriesWith(icmp, { endpoint: 'anycast' }), 'mean').at(-1), 3, 'icmp');
    const jitter = await r.series(PATH_PANELS.jitter);
    assert.deepEqual(jitter.map((s) => s.tags?.protocol).sort(), ['icmp', 'icmp', 'icmp', 'udp', 'udp', 'udp']);
    close(column(jitter[0]!, 'mean').at(-1), 0.3, 'jitter');
  });

  it('quality: loss, flagged samples and UDP packet accounting', async () => {
    const eu1 = await DashboardRunner.open(dash(), range, q, { service: 'shop', agent: 'eu-1', endpoint: '$__all' });
    const flagged = await eu1.series(PATH_PANELS.flagged);
    column(seriesWith(flagged, { endpoint: 'anycast', protocol: 'udp' }), 'flagged_pct').forEach((v) =>
      close(v, (100 * FLAGGED.perRound) / SAMPLES, 'flagged %'),
    );
    column(seriesWith(flagged, { endpoint: BASELINE, protocol: 'udp' }), 'flagged_pct').forEach((v) =>
      close(v, 0, 'unflagged'),
    );

    const ap1 = await DashboardRunner.open(dash(), range, q, {
      service: 'shop',
      agent: LOSSY.agent,
      endpoint: '$__all',
    });
    const loss = await ap1.series(PATH_PANELS.loss);
    close(
      column(seriesWith(loss, { endpoint: LOSSY.endpoint, protocol: 'udp' }), 'loss_pct').at(-1),
      (100 * LOSSY.lostPerRound) / SAMPLES,
      'udp loss',
    );
    close(
      column(seriesWith(loss, { endpoint: LOSSY.endpoint, protocol: 'http' }), 'loss_pct').at(-1),
      0,
      'http no loss',
    );
    const accounting = await ap1.series(PATH_PANELS.udpAccounting);
    const s = seriesWith(accounting, { endpoint: LOSSY.endpoint });
    assert.equal(s.values.length, LOSSY.rounds);
    column(s, 'late').forEach((v) => close(v, 1, 'late'));
    column(s, 'invalid').forEach((v) => close(v, 0, 'invalid'));
  });

  it('latest round per path: last percentiles, loss and site', async () => {
    const r = await DashboardRunner.open(dash(), range, q, { service: 'shop', agent: 'eu-1', endpoint: '$__all' });
    const table = rows(await r.series(PATH_PANELS.latest));
    // 3 endpoints × (udp rtt, tcp connect, 6 http, icmp, tls)
    assert.equal(table.length, 3 * 10);
    const udp = table.find((t) => t.endpoint === 'anycast' && t.protocol === 'udp')!;
    close(udp.p50_ms, 12, 'p50');
    close(udp.p99_ms, 14, 'p99');
    assert.equal(udp.site, SITE_CHANGE.to);
    assert.equal(udp.scope, 'end_to_end');
  });
});

describe('Fleet', () => {
  const dash = () => load('anylat-fleet');

  it('agents table: latest heartbeat values per agent', async () => {
    const r = await DashboardRunner.open(dash(), range, q);
    assert.deepEqual(r.options('region'), ['ap-south-1', 'eu-west-1', 'us-west-2']);
    const table = rows(await r.series(FLEET_PANELS.agents));
    assert.deepEqual(table.map((t) => t.agent).sort(), ['ap-1', 'eu-1', 'eu-2', 'us-1']);
    const byId = (id: string) => table.find((t) => t.agent === id)!;
    assert.equal(byId('us-1').version, '0.0.9');
    close(byId('eu-1').uptime_s, ROUNDS * 60, 'eu-1 uptime');
    close(byId('us-1').uptime_s, (ROUNDS - 20) * 60, 'us-1 uptime at its last heartbeat');
    close(byId('eu-1').loop_lag_p99_ms, 2.5, 'loop lag');
    close(byId(OUTBOX.agent).outbox_rows, OUTBOX.sinceK * OUTBOX.perMinute, 'outbox');
    close(byId(DEAD_LETTERS.agent).dead_letters, DEAD_LETTERS.count, 'dead letters');
    close(byId(OLD_DEAD_LETTERS.agent).dead_letters, OLD_DEAD_LETTERS.count, 'old dead letters');
    close(byId('eu-2').dead_letters, 0, 'no dead letters');
  });

  it('last heartbeat: the silent agent stopped 20 minutes ago', async () => {
    const r = await DashboardRunner.open(dash(), range, q);
    const table = rows(await r.series(FLEET_PANELS.lastHeartbeat));
    const at = Object.fromEntries(table.map((t) => [t.agent, t.time]));
    assert.equal(at['us-1'], scenario.newest - 20 * MINUTE);
    assert.equal(at['eu-1'], scenario.newest);
  });

  it('heartbeats received: zero-filled, so silence shows as zeros', async () => {
    const r = await DashboardRunner.open(dash(), range, q, { region: ['us-west-2'] });
    const [us1] = await r.series(FLEET_PANELS.heartbeats);
    const counts = column(us1!, 'count');
    assert.deepEqual(counts.slice(-20), Array(20).fill(0));
    assert.deepEqual(counts.slice(-ROUNDS, -20), Array(ROUNDS - 20).fill(1));
  });

  it('per-agent pipeline panels: outbox growth and dead letters', async () => {
    const r = await DashboardRunner.open(dash(), range, q);
    const outbox = column(seriesWith(await r.series(FLEET_PANELS.outbox), { agent: OUTBOX.agent }), 'last');
    assert.deepEqual(
      outbox.slice(-3),
      [20, 10, 0].map((d) => OUTBOX.sinceK * OUTBOX.perMinute - d),
    );
    const dead = column(seriesWith(await r.series(FLEET_PANELS.deadLetters), { agent: DEAD_LETTERS.agent }), 'last');
    assert.equal(dead.at(-1), DEAD_LETTERS.count);
    close(column(seriesWith(await r.series(FLEET_PANELS.loopLag), { agent: 'eu-1' }), 'last').at(-1), 2.5, 'loop lag');
  });
});
