// Grafana read the way a user reads it, on a fleet that looks like a real one (test/fixtures/grafana/
// fleet.ts): every panel and alert query of the provisioned files run on a real InfluxDB 1.6,
// interpolated the way Grafana does ($timeFilter, $__interval, ${__from}/${__to}, regex variables
// for one, several and All, repeated panels expanded), at 6 h and 7 d, and compared with the truth
// the scenario states or computes from the very rows it wrote.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { ANYCAST_SLOWER_ENV, alertRules } from '../dashboard/alerts.ts';
import { BENEFIT_PANELS, EVENT_ANNOTATIONS } from '../dashboard/benefit.ts';
import { FLEET_PANELS } from '../dashboard/fleet.ts';
import { ROOT } from '../dashboard/generate.ts';
import { PATH_PANELS } from '../dashboard/path-detail.ts';
import { DashboardRunner, column, rows, seriesWith, type DashboardModel } from './fixtures/grafana/dashboard-runner.ts';
import {
  evaluateRule,
  panelIntervalMs,
  type Evaluation,
  type RuleDefinition,
  type TimeRange,
} from './fixtures/grafana/grafana.ts';
import {
  DAY,
  GAP_2H,
  HOUR,
  HTTP_FAILS,
  LOSSY_ANYCAST,
  MINUTE,
  NEAR_ORIGIN,
  PATH_DOWN,
  RETIRED,
  ROUNDS_FAILED,
  SAMPLES,
  SILENT_30H,
  SITE_CHANGE,
  SERVICES,
  SLOWER,
  TRANSFER,
  TRUTH_UDP_SAVED,
  benefitRows,
  buildFleet,
  median,
  regionsWithData,
  type Fleet,
} from './fixtures/grafana/fleet.ts';
import { startInfluxDB, type InfluxServer } from './support/influxdb.ts';

function load(uid: string): DashboardModel {
  return JSON.parse(readFileSync(join(ROOT, `provisioning/dashboards/${uid}.json`), 'utf8')) as DashboardModel;
}

function close(actual: unknown, expected: number, what: string, tolerance = 1e-6): void {
  assert.equal(typeof actual, 'number', `${what}: ${String(actual)} is not a number`);
  assert.ok(
    Math.abs((actual as number) - expected) <= tolerance,
    `${what}: expected ${expected} (± ${tolerance}), got ${String(actual)}`,
  );
}

let influx: InfluxServer;
let fleet: Fleet;
const q = (s: string) => influx.query(s);
/** Grafana's range for "Last <span>" ending at the fleet's now, ~1000 px wide panels, 1m minimum interval. */
const rangeOf = (spanMs: number): TimeRange => ({
  fromMs: fleet.now - spanMs,
  toMs: fleet.now,
  intervalMs: panelIntervalMs(spanMs, 1000, MINUTE),
});
const RANGES = { '6h': 6 * HOUR, '7d': 7 * DAY } as const;

before(async () => {
  // 1-hour shards: InfluxDB 1.x answers SHOW TAG VALUES ... WHERE time per shard (tsi1 index).
  influx = await startInfluxDB('anylat', { shardDuration: '1h' });
  fleet = buildFleet();
  for (let i = 0; i < fleet.lines.length; i += 10_000) await influx.write(fleet.lines.slice(i, i + 10_000));
});

after(async () => {
  await influx?.stop();
});

/** The value of the one column a stat target returns. */
function statValue(
  run: { targets: Array<{ refId: string; series: Array<{ columns: string[]; values: unknown[][] }> }> },
  refId: string,
): unknown {
  const t = run.targets.find((x) => x.refId === refId)!;
  if (t.series.length === 0) return undefined;
  assert.equal(t.series.length, 1, `target ${refId} returns one series`);
  const s = t.series[0]!;
  return s.values[0]![s.columns.findIndex((c) => c !== 'time')];
}

function significantShare(rs: ReturnType<typeof benefitRows>): number {
  const withCi = rs.filter((r) => r.ci_low_ms !== undefined && r.ci_high_ms !== undefined);
  return (100 * withCi.filter((r) => r.ci_low_ms! > 0 || r.ci_high_ms! < 0).length) / withCi.length;
}

describe('Accelerator benefit on a real fleet', () => {
  const dash = () => load('anylat-benefit');
  const open = (span: number, selections: Record<string, string | string[]>) =>
    DashboardRunner.open(dash(), rangeOf(span), q, selections);

  it('defaults to the end-to-end primary of what the service measures: udp rtt, else tcp rtt, else http ttfb, else tls handshake — never dns', async () => {
    const value = (r: DashboardRunner, name: string) => r.variables.find((v) => v.name === name)!.value;
    // shop runs the reflector: udp rtt, first in the list ahead of the alphabetical rest.
    const shop = await open(RANGES['6h'], { service: 'shop' });
    assert.deepEqual(shop.options('protocol'), ['udp', 'tcp', 'tls', 'transfer']);
    assert.equal(value(shop, 'protocol'), 'udp');
    assert.equal(value(shop, 'metric'), 'rtt');
    // api has the TCP echo and no UDP reflector: tcp rtt, although http sorts first.
    const api = await open(RANGES['6h'], { service: SERVICES.tcpEcho });
    assert.deepEqual(api.options('protocol'), ['tcp', 'http', 'tls']);
    assert.equal(value(api, 'protocol'), 'tcp');
    assert.deepEqual(api.options('metric'), ['rtt'], 'the echo, not the connect the accelerator answers');
    assert.equal(value(api, 'metric'), 'rtt');
    // The HTTP-only service (host-name endpoints: its http rows include dns) opens on http ttfb.
    const web = await open(RANGES['6h'], { service: 'web' });
    assert.deepEqual(web.options('protocol'), ['http']);
    assert.deepEqual(web.options('metric'), ['ttfb']);
    assert.equal(value(web, 'metric'), 'ttfb');
    // resolver measures anycast DNS and a TLS handshake: tls, although dns sorts first.
    const resolver = await open(RANGES['6h'], { service: SERVICES.tlsDns });
    assert.deepEqual(resolver.options('protocol'), ['tls', 'dns']);
    assert.equal(value(resolver, 'protocol'), 'tls');
    assert.equal(value(resolver, 'metric'), 'handshake');
    // Every end-to-end metric stays one choice away (dns, the tls phase, total, warm).
    const every = await open(RANGES['6h'], { service: 'web', metrics: 'every end-to-end metric' });
    assert.deepEqual(every.options('metric'), ['dns', 'tls', 'total', 'ttfb', 'warm']);
    assert.equal(
      value(every, 'metric'),
      'dns',
      'with every metric offered, Grafana would take the first: why primary is the default',
    );
    // No size outside transfer: the size filter then matches rows without a size.
    assert.deepEqual(shop.options('size'), []);
    assert.equal(value(shop, 'size'), '');
  });

  it('transfer: one size at a time, each size its own truth, in the headline, the table, over time and in the matrix', async () => {
    const from = fleet.now - RANGES['6h'];
    const t = await open(RANGES['6h'], { service: 'shop', protocol: 'transfer', region: '$__all' });
    // ttfb is http's primary, so transfer offers it too; the download sorts first and is the default.
    assert.deepEqual(t.options('metric'), ['download', 'ttfb']);
    assert.equal(t.variables.find((v) => v.name === 'metric')!.value, 'download');
    assert.deepEqual(t.options('size'), Object.keys(TRANSFER.sizes).sort());
    const regions = regionsWithData(fleet, from, fleet.now);
    const perSize = new Map<string, number>();
    for (const [size, factor] of Object.entries(TRANSFER.sizes)) {
      const r = await open(RANGES['6h'], { service: 'shop', protocol: 'transfer', size, region: '$__all' });
      const runs = await r.run(BENEFIT_PANELS.headline);
      assert.deepEqual(
        runs.map((x) => x.repeatValue),
        regions,
      );
      const table = rows(await r.series(BENEFIT_PANELS.perRegion, 'A'));
      const over = await r.series(BENEFIT_PANELS.benefitOverTime);
      for (const run of runs) {
        const region = run.repeatValue!;
        const rs = benefitRows(fleet, {
          service: 'shop',
          protocol: 'transfer',
          metric: 'download',
          size,
          fromMs: from,
          toMs: fleet.now,
          region,
        });
        close(statValue(run, 'A'), median(rs.map((x) => x.saved_ms)), `${size} ${region} range median`);
        close(statValue(run, 'A'), factor * TRUTH_UDP_SAVED[region]!, `${size} ${region} vs truth`, 0.5 * factor);
        close(
          table.find((x) => x.agent_region === region)!.saved_ms,
          statValue(run, 'A') as number,
          `${size} ${region} table`,
        );
        close(
          table.find((x) => x.agent_region === region)!.rounds,
          rs.length,
          `${size} ${region}: one size's rounds only`,
        );
        assert.ok(seriesWith(over, { agent_region: region }).values.length > 0);
        if (region === 'eu-west-1') perSize.set(size, statValue(run, 'A') as number);
      }
      // The matrix shows transfer's ttfb of this size only (one cell per region), beside the other protocols.
      const cells = rows(await r.series(BENEFIT_PANELS.matrix));
      for (const region of regions) {
        const cell = cells.filter((c) => c.agent_region === region && c.protocol === 'transfer');
        assert.equal(cell.length, 1, `${region} × transfer`);
        close(
          cell[0]!.saved_ms,
          median(
            benefitRows(fleet, {
              service: 'shop',
              protocol: 'transfer',
              metric: 'ttfb',
              size,
              fromMs: from,
              toMs: fleet.now,
              region,
            }).map((x) => x.saved_ms),
          ),
          `${region} × transfer ${size}`,
        );
        assert.ok(cells.some((c) => c.agent_region === region && c.protocol === 'udp'));
      }
    }
    // The sizes differ by their factor: mixing them would give neither.
    const [small, large] = Object.keys(TRANSFER.sizes).map((k) => perSize.get(k)!);
    assert.ok(large! > 3 * small!, `2MiB saves ${large} ms, 16KiB ${small} ms`);
    // With udp selected the matrix has no transfer column at all (no size selected).
    const udp = await open(RANGES['6h'], { service: 'shop', region: '$__all' });
    assert.ok(!rows(await udp.series(BENEFIT_PANELS.matrix)).some((c) => c.protocol === 'transfer'));
  });

  it('region variable lists what the range holds: the retired region leaves All, the 30-hour-silent one leaves the 6-hour view', async () => {
    const six = await open(RANGES['6h'], { service: 'shop' });
    assert.deepEqual(six.options('region'), regionsWithData(fleet, fleet.now - RANGES['6h'], fleet.now));
    assert.ok(!six.options('region').includes(RETIRED.region) && !six.options('region').includes(SILENT_30H.region));
    const day = await open(DAY, { service: 'shop' });
    assert.ok(
      !day.options('region').includes(RETIRED.region),
      `${RETIRED.region} retired 3 days ago is not offered on a 1-day view`,
    );
    const week = await open(RANGES['7d'], { service: 'shop' });
    assert.ok(week.options('region').includes(RETIRED.region) && week.options('region').includes(SILENT_30H.region));
  });

  for (const span of ['6h', '7d'] as const) {
    it(`${span}, All: one headline per region equal to that region's truth, right now, a week earlier, and the share of significant rounds`, async () => {
      const r = await open(RANGES[span], { service: 'shop', region: '$__all' });
      const runs = await r.run(BENEFIT_PANELS.headline);
      const from = fleet.now - RANGES[span];
      const regions = regionsWithData(fleet, from, fleet.now);
      assert.deepEqual(
        runs.map((x) => x.repeatValue),
        regions,
        'one panel per region with data in the range',
      );
      for (const run of runs) {
        const region = run.repeatValue!;
        const rowsIn = (a: number, b: number) =>
          benefitRows(fleet, { service: 'shop', protocol: 'udp', metric: 'rtt', fromMs: a, toMs: b, region });
        const range = rowsIn(from, fleet.now);
        // What the panel computes, exactly, from the rows the agents wrote ...
        close(statValue(run, 'A'), median(range.map((x) => x.saved_ms)), `${region} range median`);
        close(statValue(run, 'D'), significantShare(range), `${region} significant share`);
        // ... and that is the region's truth, not a pooled or agent-weighted figure.
        close(statValue(run, 'A'), TRUTH_UDP_SAVED[region]!, `${region} range median vs truth`, 0.5);
        const now = rowsIn(fleet.now - 15 * MINUTE, fleet.now);
        if (now.length === 0) {
          // silent or retired: "last 15 min" is empty instead of repeating an old figure
          assert.ok([SILENT_30H.region, RETIRED.region].includes(region), `${region} has no recent rounds`);
          assert.equal(statValue(run, 'B'), undefined);
        } else {
          close(statValue(run, 'B'), median(now.map((x) => x.saved_ms)), `${region} last 15 min`);
          const truthNow =
            region === SLOWER.region ? TRUTH_UDP_SAVED[region]! - SLOWER.extraMs : TRUTH_UDP_SAVED[region]!;
          close(statValue(run, 'B'), truthNow, `${region} last 15 min vs truth`, 0.5);
        }
        const week = rowsIn(from - 7 * DAY, fleet.now - 7 * DAY);
        if (week.length === 0) assert.equal(statValue(run, 'C'), undefined);
        else close(statValue(run, 'C'), median(week.map((x) => x.saved_ms)), `${region} a week earlier`);
      }
      // Regions that save time do so significantly; the one next to the origin mostly does not.
      const share = (region: string) =>
        statValue(
          runs.find((x) => x.repeatValue === region)!,
          'D',
        ) as number;
      assert.equal(share('eu-west-1'), 100);
      assert.ok(share(NEAR_ORIGIN) < 50, `${NEAR_ORIGIN}: ${share(NEAR_ORIGIN)}% of rounds significant`);
    });

    it(`${span}: the fleet figure weighs every region once, whatever its number of agents`, async () => {
      const r = await open(RANGES[span], { service: 'shop', region: '$__all' });
      const from = fleet.now - RANGES[span];
      const perRegion = regionsWithData(fleet, from, fleet.now).map((region) =>
        median(
          benefitRows(fleet, {
            service: 'shop',
            protocol: 'udp',
            metric: 'rtt',
            fromMs: from,
            toMs: fleet.now,
            region,
          }).map((x) => x.saved_ms),
        ),
      );
      const equal = perRegion.reduce((a, b) => a + b, 0) / perRegion.length;
      const [run] = await r.run(BENEFIT_PANELS.fleet);
      close(statValue(run!, 'A'), equal, 'regions weighted equally');
      const pooled = median(
        benefitRows(fleet, { service: 'shop', protocol: 'udp', metric: 'rtt', fromMs: from, toMs: fleet.now }).map(
          (x) => x.saved_ms,
        ),
      );
      assert.ok(
        Math.abs(equal - pooled) > 0.5,
        `the pooled median (${pooled}) would differ from the equal-weight mean (${equal})`,
      );
    });
  }

  it('one region, and several regions: each headline is its own region, the per-region table agrees', async () => {
    const one = await open(RANGES['6h'], { service: 'shop', region: [NEAR_ORIGIN] });
    const [near] = await one.run(BENEFIT_PANELS.headline);
    assert.equal(near!.repeatValue, NEAR_ORIGIN);
    const nearTruth = statValue(near!, 'A') as number;
    assert.ok(nearTruth < -0.3 && nearTruth > -0.8, `next to the origin: ${nearTruth} ms`);
    const two = await open(RANGES['6h'], { service: 'shop', region: ['eu-west-1', 'ap-south-1'] });
    const runs = await two.run(BENEFIT_PANELS.headline);
    assert.deepEqual(
      runs.map((x) => x.repeatValue),
      ['eu-west-1', 'ap-south-1'],
    );
    const table = rows(await two.series(BENEFIT_PANELS.perRegion, 'A'));
    const sig = rows(await two.series(BENEFIT_PANELS.perRegion, 'B'));
    assert.deepEqual(table.map((t) => t.agent_region).sort(), ['ap-south-1', 'eu-west-1']);
    for (const run of runs) {
      const row = table.find((t) => t.agent_region === run.repeatValue)!;
      close(row.saved_ms, statValue(run, 'A') as number, `${run.repeatValue} table = headline`);
      close(
        sig.find((t) => t.agent_region === run.repeatValue)!.significant_pct,
        statValue(run, 'D') as number,
        `${run.repeatValue} significant`,
      );
    }
  });

  it('the HTTP-only service: headline on ttfb per region', async () => {
    const r = await open(RANGES['6h'], { service: 'web', region: ['eu-west-1'] });
    const [run] = await r.run(BENEFIT_PANELS.headline);
    const rs = benefitRows(fleet, {
      service: 'web',
      protocol: 'http',
      metric: 'ttfb',
      fromMs: fleet.now - RANGES['6h'],
      toMs: fleet.now,
      region: 'eu-west-1',
    });
    close(statValue(run!, 'A'), median(rs.map((x) => x.saved_ms)), 'web ttfb');
    close(statValue(run!, 'A'), TRUTH_UDP_SAVED['eu-west-1']!, 'web ttfb vs truth', 0.5);
  });

  it('protocol × region matrix: the primary metric of every protocol, per region', async () => {
    const r = await open(RANGES['6h'], { service: 'shop', region: '$__all' });
    const cells = rows(await r.series(BENEFIT_PANELS.matrix));
    const from = fleet.now - RANGES['6h'];
    for (const region of regionsWithData(fleet, from, fleet.now)) {
      for (const [protocol, metric] of [
        ['udp', 'rtt'],
        ['tcp', 'rtt'],
        ['tls', 'handshake'],
      ] as const) {
        const cell = cells.find((c) => c.agent_region === region && c.protocol === protocol);
        assert.ok(cell, `${region} × ${protocol}`);
        close(
          cell.saved_ms,
          median(
            benefitRows(fleet, { service: 'shop', protocol, metric, fromMs: from, toMs: fleet.now, region }).map(
              (x) => x.saved_ms,
            ),
          ),
          `${region} × ${protocol}`,
        );
      }
    }
    assert.ok(!cells.some((c) => c.protocol === 'icmp'), 'icmp is edge only');
    const matrix = load('anylat-benefit').panels.find((p) => p.id === BENEFIT_PANELS.matrix)!;
    assert.deepEqual(matrix.transformations?.[0]?.options, {
      rowField: 'agent_region',
      columnField: 'protocol',
      valueField: 'saved_ms',
      emptyValue: 'null',
    });
  });

  it('loss counts each failed request once: 20% of HTTP requests failing after TLS reads 20%, not 10%', async () => {
    const web = await open(RANGES['6h'], { service: 'web', region: '$__all' });
    const series = await web.series(BENEFIT_PANELS.loss);
    const failing = column(
      seriesWith(series, { agent_region: 'us-west-2', endpoint: HTTP_FAILS.endpoint }),
      'loss_pct',
    );
    failing.forEach((v, i) => close(v, (100 * HTTP_FAILS.failedPerRound) / SAMPLES, `bucket ${i}`));
    const anycast = column(seriesWith(series, { agent_region: 'us-west-2', endpoint: 'anycast' }), 'loss_pct');
    anycast.forEach((v) => close(v, 0, 'anycast web'));
    const shop = await open(RANGES['6h'], { service: 'shop', region: ['ap-south-1'] });
    const lossy = column(
      seriesWith(await shop.series(BENEFIT_PANELS.loss), {
        agent_region: 'ap-south-1',
        endpoint: LOSSY_ANYCAST.endpoint,
      }),
      'loss_pct',
    );
    lossy.forEach((v) => close(v, (100 * LOSSY_ANYCAST.lostPerRound) / SAMPLES, 'ap-south-1 anycast udp'));
  });

  it('site panel: one line per agent and anycast address', async () => {
    const r = await open(RANGES['6h'], { service: 'shop', region: ['eu-west-1'] });
    const series = await r.series(BENEFIT_PANELS.sites);
    assert.deepEqual(series.map((s) => `${s.tags?.agent} ${s.tags?.endpoint}`).sort(), [
      'eu-1 anycast',
      'eu-1 anycast-2',
      'eu-2 anycast',
      'eu-2 anycast-2',
    ]);
    const a1 = column(seriesWith(series, { agent: SITE_CHANGE.agent, endpoint: 'anycast' }), 'last');
    assert.equal(a1.at(-1), SITE_CHANGE.to);
    assert.ok(a1.includes(SITE_CHANGE.from));
    const a2 = column(seriesWith(series, { agent: SITE_CHANGE.agent, endpoint: 'anycast-2' }), 'last');
    assert.deepEqual(new Set(a2), new Set(['edge-dub-b']), 'anycast-2 keeps its own site');
  });

  it('annotations: the site change and the anycast path going down, where and when they happened', async () => {
    const d = dash();
    const r = await DashboardRunner.open(d, rangeOf(RANGES['6h']), q, { service: 'shop', region: '$__all' });
    const byName = (name: string) => d.annotations!.list.find((a) => a.name === name)!.target!.query!;
    const sites = rows((await r.runQuery(byName(EVENT_ANNOTATIONS[0].name))).series);
    assert.deepEqual(
      sites.map((s) => [s.agent, s.time]),
      [[SITE_CHANGE.agent, fleet.newest - (SITE_CHANGE.atK - 1) * MINUTE]],
    );
    assert.match(String(sites[0]!.text), /edge-dub -> edge-lhr/);
    const downs = rows((await r.runQuery(byName(EVENT_ANNOTATIONS[1].name))).series);
    assert.deepEqual(
      downs.map((s) => [s.agent, s.time]),
      [[PATH_DOWN.agent, fleet.newest - (PATH_DOWN.minutes - 1) * MINUTE]],
    );
  });

  it('data links carry agent and region to Path detail, which then lists only that region’s agents', async () => {
    const d = dash();
    const map = d.panels.find((p) => p.id === BENEFIT_PANELS.map)!;
    const url = map.fieldConfig!.defaults!.links![0]!.url;
    assert.match(url, /^\/d\/anylat-path-detail\?/);
    assert.match(url, /var-agent=\$\{__data\.fields\.agent\}/);
    assert.match(url, /var-region=\$\{__data\.fields\.agent_region\}/);
    const over = d.panels.find((p) => p.id === BENEFIT_PANELS.benefitOverTime)!;
    assert.match(over.fieldConfig!.defaults!.links![0]!.url, /var-region=\$\{__field\.labels\.agent_region\}/);
    const path = await DashboardRunner.open(load('anylat-path-detail'), rangeOf(RANGES['6h']), q, {
      service: 'shop',
      region: ['ap-south-1'],
    });
    assert.deepEqual(path.options('agent'), ['ap-1']);
    const eu = await DashboardRunner.open(load('anylat-path-detail'), rangeOf(RANGES['6h']), q, {
      service: 'shop',
      region: ['eu-west-1'],
      agent: 'eu-2',
    });
    assert.deepEqual(eu.options('agent'), ['eu-1', 'eu-2']);
  });
});

describe('Path detail and Fleet on the real fleet', () => {
  it('latency distribution: p50 inside the min–p90 band, p99 above, per endpoint', async () => {
    const r = await DashboardRunner.open(load('anylat-path-detail'), rangeOf(RANGES['6h']), q, {
      service: 'shop',
      region: ['ap-south-1'],
      agent: 'ap-1',
      endpoint: ['anycast', 'us-east-1'],
    });
    const runs = await r.run(PATH_PANELS.distribution);
    assert.deepEqual(
      runs.map((x) => x.repeatValue),
      ['anycast', 'us-east-1'],
    );
    const udp = seriesWith(runs[0]!.targets[0]!.series, { protocol: 'udp' });
    const [p50, min, p90, p99] = ['p50', 'min', 'p90', 'p99'].map((c) => column(udp, c) as number[]);
    p50!.forEach((v, i) => assert.ok(min![i]! <= v && v <= p90![i]! && p90![i]! <= p99![i]!, `bucket ${i}`));
    close(p50!.at(-1), 100 + SLOWER.extraMs, 'ap-1 anycast udp p50 now', 1);
    assert.deepEqual(
      runs[0]!.targets[0]!.series.map((s) => `${s.tags?.protocol} ${s.tags?.size}`.trim()).sort(),
      [
        'tcp',
        'tls',
        ...Object.keys(TRANSFER.sizes)
          .map((size) => `transfer ${size}`)
          .sort(),
        'udp',
      ],
      'primary end-to-end metrics only, one band per transfer size',
    );
  });

  it('latest round per path: one row per transfer size, each with its own download time', async () => {
    const r = await DashboardRunner.open(load('anylat-path-detail'), rangeOf(RANGES['6h']), q, {
      service: 'shop',
      region: ['eu-west-1'],
      agent: 'eu-1',
      endpoint: ['eu-central-1'],
    });
    const latest = rows(await r.series(PATH_PANELS.latest)).filter(
      (x) => x.protocol === 'transfer' && x.metric === 'download',
    );
    assert.deepEqual(latest.map((x) => x.size).sort(), Object.keys(TRANSFER.sizes).sort());
    for (const row of latest) {
      // eu-1 → eu-central-1: 35 ms udp rtt
      close(
        row.p50_ms,
        TRANSFER.sizes[String(row.size)]! * 35 + TRANSFER.downloadExtra,
        `download ${String(row.size)}`,
        1,
      );
    }
  });

  it('loss per path counts each HTTP request once', async () => {
    const r = await DashboardRunner.open(load('anylat-path-detail'), rangeOf(RANGES['6h']), q, {
      service: 'web',
      region: ['us-west-2'],
      agent: HTTP_FAILS.agent,
      endpoint: '$__all',
    });
    const loss = await r.series(PATH_PANELS.loss);
    column(seriesWith(loss, { endpoint: HTTP_FAILS.endpoint, protocol: 'http' }), 'loss_pct').forEach((v) =>
      close(v, 20, 'http loss'),
    );
  });

  it('Fleet: rounds_failed per agent, in the table and over time', async () => {
    const r = await DashboardRunner.open(load('anylat-fleet'), rangeOf(RANGES['6h']), q, { region: '$__all' });
    const table = rows(await r.series(FLEET_PANELS.agents));
    close(
      table.find((t) => t.agent === ROUNDS_FAILED.agent)!.rounds_failed,
      ROUNDS_FAILED.sinceK,
      'use-1 rounds failed',
    );
    close(table.find((t) => t.agent === 'eu-1')!.rounds_failed, 0, 'eu-1 rounds failed');
    const s = column(seriesWith(await r.series(FLEET_PANELS.roundsFailed), { agent: ROUNDS_FAILED.agent }), 'last');
    assert.equal(s.at(-1), ROUNDS_FAILED.sinceK);
  });
});

describe('alerts on the real fleet', () => {
  const provisioned = (
    parse(readFileSync(join(ROOT, 'provisioning/alerting/anylat-rules.yaml'), 'utf8')) as {
      groups: Array<{ rules: Array<RuleDefinition & { uid: string; labels: Record<string, string> }> }>;
    }
  ).groups[0]!.rules;
  const rule = (uid: string) => provisioned.find((r) => r.uid === uid)!;
  const firing = (e: Evaluation) =>
    e.instances
      .filter((i) => i.state === 'Alerting')
      .map((i) => Object.values(i.labels).join(' '))
      .sort();

  it('anycast slower fires for the significantly slower region on every primary metric, for the whole pending period, and never next to the origin', async () => {
    // Never transfer (its saving depends on the object size), never dns.
    const slowSeries = [
      'ap-south-1 api http ttfb',
      'ap-south-1 api tcp rtt',
      'ap-south-1 api tls handshake',
      'ap-south-1 shop tcp rtt',
      'ap-south-1 shop tls handshake',
      'ap-south-1 shop udp rtt',
      'ap-south-1 web http ttfb',
    ];
    // Evaluated every minute, the rule must hold for its `for` (10m): check the whole stretch.
    for (const minutesAgo of [0, 5, 10]) {
      const e = await evaluateRule(rule('anylat-anycast-slower'), fleet.now - minutesAgo * MINUTE, q);
      const labelled = e.instances
        .filter((i) => i.state === 'Alerting')
        .map((i) => `${i.labels.agent_region} ${i.labels.service} ${i.labels.protocol} ${i.labels.metric}`)
        .sort();
      assert.deepEqual(labelled, slowSeries, `${minutesAgo} minutes ago`);
      const near = e.numbers.C!.find(
        (n) => n.labels.agent_region === NEAR_ORIGIN && n.labels.service === 'shop' && n.labels.protocol === 'udp',
      )!;
      assert.ok(
        near.value! < -0.3 && near.value! > -0.8,
        `next to the origin the median is ${near.value} ms, and it stays quiet`,
      );
    }
    // Before the slowdown began nothing fires.
    const before = await evaluateRule(rule('anylat-anycast-slower'), fleet.now - (SLOWER.minutes + 15) * MINUTE, q);
    assert.deepEqual(firing(before), []);
  });

  it('anycast slower: the CI check alone keeps the near-origin region quiet, and the threshold is an option of the generator', async () => {
    const lenient = alertRules({ anycastSlowerMs: 0.1 }).find((r) => r.uid === 'anylat-anycast-slower')!;
    const e = await evaluateRule(lenient, fleet.now, q);
    assert.ok(
      !e.instances.some((i) => i.state === 'Alerting' && i.labels.agent_region === NEAR_ORIGIN),
      'a CI spanning 0 never pages',
    );
    const strict = alertRules({ anycastSlowerMs: 8 }).find((r) => r.uid === 'anylat-anycast-slower')!;
    const s = await evaluateRule(strict, fleet.now, q);
    assert.deepEqual(
      s.instances
        .filter((i) => i.state === 'Alerting')
        .map((i) => `${i.labels.protocol} ${i.labels.metric}`)
        .sort(),
      ['tls handshake', 'tls handshake'],
      'only the tls handshakes of shop and api (two round trips: −12 ms) are slower than −8 ms',
    );
  });

  it('anycast slower: Grafana’s environment picks the threshold without editing the rule file; unset, it is 1 ms', async () => {
    const r = rule('anylat-anycast-slower');
    const slower = (e: Evaluation) =>
      e.instances
        .filter((i) => i.state === 'Alerting')
        .map((i) => `${i.labels.service} ${i.labels.protocol} ${i.labels.metric}`)
        .sort();
    const unset = await evaluateRule(r, fleet.now, q);
    assert.equal(slower(unset).length, 7, 'the default (1 ms): every primary metric of ap-south-1 (−6 and −12 ms)');
    assert.deepEqual(slower(await evaluateRule(r, fleet.now, q, { [ANYCAST_SLOWER_ENV]: '1' })), slower(unset));
    assert.deepEqual(slower(await evaluateRule(r, fleet.now, q, { [ANYCAST_SLOWER_ENV]: '10' })), [
      'api tls handshake',
      'shop tls handshake',
    ]);
    // A value the rule does not compute names no expression: Grafana cannot evaluate the condition.
    await assert.rejects(evaluateRule(r, fleet.now, q, { [ANYCAST_SLOWER_ENV]: '7' }), /condition E7/);
  });

  it('agent silent keeps firing for the agent silent 30 hours (and the retired one) until they return; the one back from a 2-hour gap resolves', async () => {
    const e = await evaluateRule(rule('anylat-agent-silent'), fleet.now, q);
    assert.deepEqual(firing(e), [`${RETIRED.agent} ${RETIRED.region}`, `${SILENT_30H.agent} ${SILENT_30H.region}`]);
    const during = await evaluateRule(rule('anylat-agent-silent'), fleet.newest - (GAP_2H.from + 30) * MINUTE, q);
    assert.ok(firing(during).includes(`${GAP_2H.agent} eu-west-1`), 'eu-2 fired during its gap');
  });

  it('loss: the lossy anycast path at 10%, the HTTP path at 20% (each request once), the down path at 100%', async () => {
    const e = await evaluateRule(rule('anylat-path-loss'), fleet.now, q);
    const value = (labels: Record<string, string>) =>
      e.numbers.B!.find((n) => Object.entries(labels).every(([k, v]) => n.labels[k] === v))!.value;
    close(
      value({ agent: LOSSY_ANYCAST.agent, service: 'shop', endpoint: 'anycast', protocol: 'udp' }),
      10,
      'anycast udp loss',
    );
    close(
      value({ agent: HTTP_FAILS.agent, service: 'web', endpoint: HTTP_FAILS.endpoint, protocol: 'http' }),
      20,
      'http loss',
    );
    close(
      value({ agent: PATH_DOWN.agent, service: 'shop', endpoint: PATH_DOWN.endpoint, protocol: 'udp' }),
      100,
      'down path',
    );
    assert.equal(
      e.instances.filter((i) => i.state === 'Alerting').length,
      1 + 1 + 5,
      'lossy anycast udp, failing http, and the down anycast-2 on udp, tcp, tls, icmp and transfer (sizes pooled)',
    );
  });

  it('an anycast address down is critical', async () => {
    const r = rule('anylat-anycast-down');
    assert.equal(r.labels.severity, 'critical');
    const e = await evaluateRule(r, fleet.now, q);
    const down = e.instances
      .filter((i) => i.state === 'Alerting')
      .map((i) => `${i.labels.agent} ${i.labels.service} ${i.labels.endpoint} ${i.labels.protocol}`);
    assert.deepEqual(
      down.sort(),
      ['icmp', 'tcp', 'tls', 'transfer', 'udp'].map((p) => `${PATH_DOWN.agent} shop ${PATH_DOWN.endpoint} ${p}`),
    );
  });

  it('rounds failing: the agent whose rounds_failed rose', async () => {
    const e = await evaluateRule(rule('anylat-rounds-failed'), fleet.now, q);
    assert.deepEqual(firing(e), [`${ROUNDS_FAILED.agent} us-east-1`]);
    assert.equal(e.numbers.B!.find((n) => n.labels.agent === ROUNDS_FAILED.agent)!.value, ROUNDS_FAILED.sinceK);
  });
});
