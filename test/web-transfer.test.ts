// The page's transfer views in Chromium, over a store whose transfer rows have two sizes with known
// values: every table and chart covers one size (never two mixed), the download benefit is in ms
// per size, and goodput is shown in Mbit/s. Before this, the page picked one size's row for a
// region and drew both sizes' rounds as one zig-zag line.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pageOnStore } from './support/page-on-store.ts';
import type { BenefitRow, PathResult, RoundResult } from '../agent/core/model.ts';
import type { BenefitResponse, LatencyResponse, OverviewResponse } from '../agent/web/queries.ts';
import { benefitTable, chartInk, inkProblems, openPage, saveScreenshot } from './support/browser.ts';
import { regionRound, REGIONS } from './support/web-data.ts';

const ROUNDS = 6;
const GAP_MS = 60_000;

interface SizeSpec {
  /** anycast download ms, and what anycast saves against the baseline */
  download: number;
  saved: number;
  /** goodput p50, Mbit/s */
  anycastMbps: number;
  baselineMbps: number;
}

/** The truth: per agent, per size. The split-TCP gain grows with the size in ap-south. */
const TRANSFER: Record<string, { region: string; sizes: Record<string, SizeSpec> }> = {
  'ap-1': {
    region: 'ap-south',
    sizes: {
      '16KiB': { download: 20, saved: 30, anycastMbps: 6.5, baselineMbps: 2.6 },
      '2MiB': { download: 300, saved: 900, anycastMbps: 55.9, baselineMbps: 14 },
    },
  },
  'us-1': {
    region: 'us-east',
    sizes: {
      '16KiB': { download: 4, saved: 1, anycastMbps: 32.8, baselineMbps: 26.2 },
      '2MiB': { download: 170, saved: 10, anycastMbps: 98.7, baselineMbps: 93.2 },
    },
  },
};
const SIZES = ['16KiB', '2MiB'];
const BASELINE = 'us-east-1';

function path(endpoint: string, metric: 'ttfb' | 'download' | 'goodput_mbps', size: string, p50: number): PathResult {
  return {
    endpoint,
    kind: endpoint === 'anycast' ? 'anycast' : 'unicast',
    address: endpoint === 'anycast' ? '198.18.0.10' : '198.19.1.10',
    protocol: 'transfer',
    metric,
    scope: 'end_to_end',
    size,
    sent: 3,
    received: 3,
    loss_pct: 0,
    min_ms: p50,
    p50_ms: p50,
    p90_ms: p50,
    p99_ms: p50,
    max_ms: p50,
    mean_ms: p50,
    stddev_ms: 0,
    jitter_ms: 0,
    flagged: 0,
    ...(endpoint === 'anycast' ? { site: 'us-east-1' } : {}),
  };
}

function benefit(metric: 'ttfb' | 'download', size: string, anycast: number, saved: number): BenefitRow {
  return {
    protocol: 'transfer',
    metric,
    scope: 'end_to_end',
    size,
    baseline: BASELINE,
    anycast_p50_ms: anycast,
    baseline_p50_ms: anycast + saved,
    saved_ms: saved,
    saved_pct: Math.round((saved / (anycast + saved)) * 10000) / 100,
    ci_low_ms: saved - 1,
    ci_high_ms: saved + 1,
    win_rate: 1,
    pairs: 3,
  };
}

function transferRound(agent: string, t: number): RoundResult {
  const { region, sizes } = TRANSFER[agent]!;
  const paths: PathResult[] = [];
  const rows: BenefitRow[] = [];
  for (const size of SIZES) {
    const s = sizes[size]!;
    paths.push(
      path('anycast', 'ttfb', size, 5),
      path(BASELINE, 'ttfb', size, 6),
      path('anycast', 'download', size, s.download),
      path(BASELINE, 'download', size, s.download + s.saved),
      path('anycast', 'goodput_mbps', size, s.anycastMbps),
      path(BASELINE, 'goodput_mbps', size, s.baselineMbps),
    );
  }
  // The probe writes the benefit rows in PROTOCOL_METRICS order, sizes inside each metric.
  for (const size of SIZES) rows.push(benefit('ttfb', size, 5, 1));
  for (const size of SIZES) rows.push(benefit('download', size, sizes[size]!.download, sizes[size]!.saved));
  return {
    agent: { id: agent, region },
    service: 'dl',
    started_at: new Date(t).toISOString(),
    scheduled_at: new Date(t).toISOString(),
    duration_ms: 2000,
    paths,
    benefit: rows,
  };
}

function ms(v: number, signed = false): string {
  const text = `${v.toFixed(Math.abs(v) < 10 ? 2 : 1)} ms`;
  return signed && v > 0 ? `+${text}` : text;
}

function mbps(v: number): string {
  return `${v.toFixed(v < 10 ? 2 : 1)} Mbit/s`;
}

describe('web page: transfer per size (Chromium)', () => {
  const api = async <T>(path: string): Promise<T> => (await (await fetch(new URL(path, web.server.url))).json()) as T;

  const web = pageOnStore('anylat-web-transfer-', (store) => {
    const now = Date.now();
    for (let i = 0; i < ROUNDS; i++) {
      const t = now - 60_000 - (ROUNDS - 1 - i) * GAP_MS;
      store.saveRound(transferRound('ap-1', t));
      store.saveRound(transferRound('us-1', t + 5_000));
      // a second service (UDP only), so that the page opens on the overview
      store.saveRound({ ...regionRound(REGIONS[0]!, i, t + 9_000), service: 'api' });
    }
  });

  it('the API answers one row and one series per agent and size, with the saved values', async () => {
    const b = await api<BenefitResponse>('/api/benefit?service=dl');
    // A service that only downloads opens on the download time.
    assert.equal(b.metric, 'transfer/download');
    assert.deepEqual(
      b.regions.map((r) => [r.agent, r.size]),
      Object.keys(TRANSFER).flatMap((a) => SIZES.map((s) => [a, s])),
    );
    for (const r of b.regions) {
      const s = TRANSFER[r.agent]!.sizes[r.size!]!;
      assert.equal(r.headline?.saved_ms, s.saved, `${r.agent} ${r.size} saved`);
      assert.equal(r.headline?.anycast_p50_ms, s.download, `${r.agent} ${r.size} anycast`);
      assert.equal(r.latest?.saved_ms, s.saved, `${r.agent} ${r.size} latest`);
      assert.deepEqual(r.goodput, { anycast_mbps: s.anycastMbps, baseline_mbps: s.baselineMbps, baseline: BASELINE });
    }
    const udp = await api<BenefitResponse>('/api/benefit?service=api');
    assert.ok(udp.regions.every((r) => r.size === null && r.goodput === null));

    const l = await api<LatencyResponse>('/api/latency?service=dl&metric=transfer/download');
    assert.equal(l.regions.length, 4);
    for (const r of l.regions) {
      const s = TRANSFER[r.agent]!.sizes[r.size!]!;
      // one point per round: the other size's rows are not in this series
      assert.equal(r.t.length, ROUNDS, `${r.agent} ${r.size}: ${r.t.length} points`);
      assert.deepEqual(r.anycast_p50_ms, Array(ROUNDS).fill(s.download));
      assert.deepEqual(r.saved_ms, Array(ROUNDS).fill(s.saved));
    }

    const o = await api<OverviewResponse>('/api/overview');
    const dl = o.services.find((s) => s.service === 'dl')!;
    assert.equal(dl.metric, 'transfer/download');
    assert.deepEqual(
      dl.regions.map((r) => [r.agent, r.size, r.headline?.saved_ms]),
      Object.keys(TRANSFER).flatMap((a) => SIZES.map((s) => [a, s, TRANSFER[a]!.sizes[s]!.saved])),
    );
    assert.ok(o.services.find((s) => s.service === 'api')!.regions.every((r) => r.size === null));
  });

  it('the page shows each size on its own row and chart, goodput in Mbit/s, and the overview per size', async () => {
    const { page, errors } = await openPage(web.browser, web.server.url);
    await page.waitForSelector('body[data-loaded="true"]');
    await page.waitForSelector('#overview-table tbody tr[data-service="dl"]');
    const overview = await page.$$eval('#overview-table tbody tr[data-service="dl"]', (rows) =>
      rows.map((tr) => ({
        agent: (tr as HTMLElement).dataset.agent,
        size: (tr as HTMLElement).dataset.size,
        region: tr.querySelector('td[data-col="region"]')?.textContent,
        metric: tr.querySelector('td[data-col="metric"]')?.textContent,
        saved: tr.querySelector('td[data-col="saved"]')?.textContent,
      })),
    );
    assert.deepEqual(
      overview,
      Object.entries(TRANSFER).flatMap(([agent, { region, sizes }]) =>
        SIZES.map((size) => ({
          agent,
          size,
          region: `${region} · ${size}`,
          metric: 'transfer/download',
          saved: ms(sizes[size]!.saved, true),
        })),
      ),
    );

    await page.goto(`${web.server.url}?service=dl`);
    await page.waitForSelector('#benefit-table tbody tr[data-size="2MiB"]');
    const table = await benefitTable(page);
    assert.equal(table.length, 4);
    const sizesShown = await page.$$eval('#benefit-table tbody tr', (rows) =>
      rows.map((tr) => (tr as HTMLElement).dataset.size),
    );
    assert.deepEqual(sizesShown, [...SIZES, ...SIZES]);
    table.forEach((cells, i) => {
      const size = sizesShown[i]!;
      const s = TRANSFER[cells.agent!]!.sizes[size]!;
      assert.equal(cells.region, `${TRANSFER[cells.agent!]!.region} · ${size}`);
      assert.equal(cells.saved, ms(s.saved, true), `${cells.agent} ${size} saved`);
      assert.equal(cells.anycast_p50, ms(s.download), `${cells.agent} ${size} anycast p50`);
      assert.equal(cells.goodput, `${mbps(s.anycastMbps)} / ${mbps(s.baselineMbps)}`, `${cells.agent} ${size} goodput`);
      assert.doesNotMatch(cells.goodput!, / ms\b/);
    });
    const goodputShown = await page.$eval(
      '#benefit-table thead th[data-col="goodput"]',
      (th) => getComputedStyle(th).display !== 'none',
    );
    assert.equal(goodputShown, true);

    // One latency chart per region and size, each titled with its size, every series drawn.
    await page.waitForFunction(() => document.querySelectorAll('#latency-charts [data-chart] canvas').length >= 4);
    const captions = await page.$$eval('#latency-charts figcaption', (f) => f.map((x) => x.textContent));
    assert.deepEqual(
      captions,
      Object.entries(TRANSFER).flatMap(([agent, { region }]) => SIZES.map((s) => `${region} (${agent}) · ${s}`)),
    );
    const png = await saveScreenshot(page, 'web-transfer');
    const ink = await chartInk(page, png);
    assert.deepEqual(
      ink
        .map((c) => c.name)
        .filter((n) => n.startsWith('latency:'))
        .sort(),
      Object.keys(TRANSFER)
        .flatMap((a) => SIZES.map((s) => `latency:${a} ${s}`))
        .sort(),
    );
    assert.deepEqual(inkProblems(ink.filter((c) => c.name.startsWith('latency:'))), []);
    const benefitLines = await page.$$eval('[data-chart="benefit"] .u-legend .u-series th', (ths) =>
      ths.map((th) => th.textContent?.trim()).filter((t) => t && t !== 'Time'),
    );
    assert.deepEqual(
      benefitLines,
      Object.entries(TRANSFER).flatMap(([agent, { region }]) => SIZES.map((s) => `${region} (${agent}) · ${s}`)),
    );

    // Another protocol: no size, no goodput column.
    await page.goto(`${web.server.url}?service=api`);
    await page.waitForSelector('#benefit-table tbody tr[data-agent]');
    const hidden = await page.$eval(
      '#benefit-table thead th[data-col="goodput"]',
      (th) => getComputedStyle(th).display === 'none',
    );
    assert.equal(hidden, true);
    assert.equal(await page.$$eval('#benefit-table tbody tr[data-size]', (r) => r.length), 0);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
