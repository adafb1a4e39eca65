// The page's overview of every service × region, over a store whose right answers the fixture
// states (test/support/overview-data.ts): the JSON endpoint, then the page in headless Chromium as
// a user reads it (every row's figures, a click through to the service's own view and back, each
// service's round interval in agent health, chart legends showing the latest values).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import type { BenefitResponse, HealthResponse, OverviewResponse } from '../agent/web/index.ts';
import { openPage } from './support/browser.ts';
import { pageOnStore } from './support/page-on-store.ts';
import { regionRound, REGIONS } from './support/web-data.ts';
import {
  AGENTS,
  fillOverviewStore,
  lossOf,
  SERVICES,
  verdictOf,
  type AgentName,
  type OverviewFill,
} from './support/overview-data.ts';

/** The metric each service's figures must be on: the end-to-end primary of what it measures. */
const HEADLINE: Record<string, string> = {
  web: 'udp/rtt',
  shop: 'http/ttfb',
  stream: 'tcp/rtt',
  login: 'tls/handshake',
  api: 'udp/rtt',
};

function med(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** How the page writes milliseconds: two decimals below 10, one above; saved values signed. */
function ms(v: number, signed = false): string {
  const text = `${v.toFixed(Math.abs(v) < 10 ? 2 : 1)} ms`;
  return signed && v > 0 ? `+${text}` : text;
}

/** Every (service, agent, cell) of the fixture, in the order the overview lists them (service, then region). */
function cells() {
  return [...SERVICES]
    .sort((a, b) => a.service.localeCompare(b.service))
    .flatMap((spec) =>
      (Object.keys(AGENTS) as AgentName[])
        .filter((agent) => spec.regions[agent])
        .sort((a, b) => AGENTS[a].localeCompare(AGENTS[b]))
        .map((agent) => ({ spec, agent, cell: spec.regions[agent]! })),
    );
}

/** What the saved rounds say a cell's headline is (independent of the store's SQL). */
function truth(fill: OverviewFill, service: string, agent: string) {
  const rows = fill.rounds.get(`${service}/${agent}`)!.map((r) => r.benefit[0]!);
  return {
    saved: med(rows.map((b) => b.saved_ms!)),
    lo: med(rows.map((b) => b.ci_low_ms!)),
    hi: med(rows.map((b) => b.ci_high_ms!)),
    rounds: rows.length,
  };
}

async function overviewRows(page: Page): Promise<Array<Record<string, string>>> {
  return page.$$eval('#overview-table tbody tr[data-service]', (rows) =>
    rows.map((tr) => {
      const out: Record<string, string> = {
        service: (tr as HTMLElement).dataset.service ?? '',
        agent: (tr as HTMLElement).dataset.agent ?? '',
      };
      for (const td of Array.from(tr.querySelectorAll('td')))
        out[(td as HTMLElement).dataset.col ?? ''] = (td.textContent ?? '').trim();
      return out;
    }),
  );
}

describe('web overview: every service × region', () => {
  let fill: OverviewFill;

  const web = pageOnStore('anylat-web-overview-', (store) => {
    fill = fillOverviewStore(store);
  });

  it('/api/overview gives every service × region on its headline metric: saved, CI, loss and round interval', async () => {
    const res = await fetch(new URL('/api/overview?since=1h', web.server.url));
    assert.equal(res.status, 200);
    const body = (await res.json()) as OverviewResponse;
    assert.deepEqual(
      body.services.map((s) => [s.service, s.metric]),
      [...SERVICES].sort((a, b) => a.service.localeCompare(b.service)).map((s) => [s.service, HEADLINE[s.service]]),
    );
    const got = body.services.flatMap((s) => s.regions.map((r) => ({ service: s.service, ...r })));
    const want = cells();
    assert.deepEqual(
      got.map((r) => `${r.service}/${r.agent_region}`),
      want.map((w) => `${w.spec.service}/${AGENTS[w.agent]}`),
    );
    for (const [i, { spec, agent, cell }] of want.entries()) {
      const r = got[i]!;
      const what = `${spec.service}/${agent}`;
      const t = truth(fill, spec.service, agent);
      // The fixture states the answer; the saved rounds agree with it.
      assert.equal(t.saved, cell.saved, `${what} fixture`);
      assert.equal(r.headline?.saved_ms, cell.saved, `${what} saved`);
      assert.equal(r.headline?.ci_low_ms, t.lo, `${what} CI low`);
      assert.equal(r.headline?.ci_high_ms, t.hi, `${what} CI high`);
      assert.equal(r.headline?.rounds, t.rounds, `${what} rounds`);
      assert.equal(r.anycast_loss_pct, lossOf(cell).anycast, `${what} anycast loss`);
      assert.equal(r.unicast_loss_pct, lossOf(cell).unicast, `${what} unicast loss`);
      assert.equal(r.interval_s, spec.intervalS, `${what} interval`);
    }
    // HTTP requests that fail after TLS count once, at their full share: 4 of 20 is 20 %.
    const shopAp = got.find((r) => r.service === 'shop' && r.agent === 'ap-1')!;
    assert.equal(shopAp.anycast_loss_pct, 20);
    const apiEu = got.find((r) => r.service === 'api' && r.agent === 'eu-1')!;
    assert.equal(apiEu.unicast_loss_endpoint, 'us-east-1');
  });

  it("a service's own view opens on the same headline metric: HTTP ttfb, never DNS", async () => {
    const body = (await (await fetch(new URL('/api/benefit?service=shop', web.server.url))).json()) as BenefitResponse;
    assert.equal(body.metric, 'http/ttfb');
    assert.ok(
      body.metrics.some((m) => m.key === 'http/dns'),
      'dns is measured (and end to end) but not the default',
    );
  });

  it('agent health gives each service its own round interval, not the agent-wide rate', async () => {
    const body = (await (await fetch(new URL('/api/health', web.server.url))).json()) as HealthResponse;
    const us = body.agents.find((a) => a.agent === 'us-1')!;
    assert.deepEqual(us.round_intervals, [
      { service: 'api', interval_s: 60 },
      { service: 'login', interval_s: 60 },
      { service: 'shop', interval_s: 10 },
      { service: 'stream', interval_s: 10 },
      { service: 'web', interval_s: 10 },
    ]);
    // Five services interleaved: the agent starts some round far more often than any one service's.
    assert.ok(us.round_interval_s! < 10, `agent-wide ${us.round_interval_s} s`);
  });

  it('the page opens on the overview with every row right, and a click lands on that service and back', async () => {
    const { page, errors } = await openPage(web.browser, web.server.url);
    await page.waitForSelector('body[data-view="overview"]', { timeout: 20_000 });
    assert.equal(await page.$eval('#service-view', (e) => (e as HTMLElement).hidden), true);
    const rows = await overviewRows(page);
    const want = cells();
    assert.deepEqual(
      rows.map((r) => `${r.service}/${r.region}/${r.agent}`),
      want.map((w) => `${w.spec.service}/${AGENTS[w.agent]}/${w.agent}`),
    );
    for (const [i, { spec, agent, cell }] of want.entries()) {
      const r = rows[i]!;
      const what = `${spec.service}/${agent}`;
      const t = truth(fill, spec.service, agent);
      assert.equal(r.metric, HEADLINE[spec.service], what);
      assert.equal(r.saved, ms(cell.saved, true), `${what} saved`);
      assert.equal(r.ci, `[${t.lo.toFixed(1)}, ${t.hi.toFixed(1)}] ms`, `${what} CI`);
      assert.equal(r.verdict, verdictOf(cell), `${what} verdict`);
      assert.equal(r.anycast_loss, `${lossOf(cell).anycast.toFixed(1)}%`, `${what} anycast loss`);
      assert.equal(r.unicast_loss, `${lossOf(cell).unicast.toFixed(1)}%`, `${what} unicast loss`);
      assert.equal(r.rounds, String(t.rounds), `${what} rounds`);
      assert.equal(r.interval, `${spec.intervalS} s`, `${what} interval`);
    }
    // The near-origin region reads as no clear difference, the slower one as slower.
    assert.equal(rows.find((r) => r.service === 'api' && r.agent === 'us-1')!.verdict, 'no clear difference');
    assert.equal(rows.find((r) => r.service === 'stream' && r.agent === 'eu-1')!.verdict, 'anycast slower');

    // Agent health labels each service's interval.
    const every = await page.$eval(
      '#health-table tbody tr[data-agent="us-1"] td[data-col="intervals"]',
      (td) => td.textContent,
    );
    assert.equal(every, '10 s: shop, stream, web · 60 s: api, login');

    // Click the shop row of ap-south: its own view, on ttfb, with the same figure.
    await page.click('#overview-table tr[data-service="shop"][data-agent="ap-1"] td[data-col="region"]');
    await page.waitForSelector('body[data-view="service"]');
    await page.waitForFunction(() => document.getElementById('benefit-caption')?.textContent?.startsWith('http/ttfb'));
    assert.match(page.url(), /\?service=shop$/);
    assert.equal(await page.$eval('#service', (e) => (e as HTMLSelectElement).value), 'shop');
    assert.equal(await page.$eval('#overview-section', (e) => (e as HTMLElement).hidden), true);
    const saved = await page.$eval('#benefit-table tr[data-agent="ap-1"] td[data-col="saved"]', (td) => td.textContent);
    assert.equal(saved, ms(41, true));

    // Back returns to the overview.
    await page.goBack();
    await page.waitForSelector('body[data-view="overview"]');
    assert.equal((await overviewRows(page)).length, want.length);
    // "All services" in the menu too, after picking one there.
    await page.selectOption('#service', 'stream');
    await page.waitForSelector('body[data-view="service"]');
    await page.selectOption('#service', '');
    await page.waitForSelector('body[data-view="overview"]');
    assert.deepEqual(errors, []);
    await page.close();
  });

  it("chart legends show each series' latest value when not hovered, and again after the pointer leaves", async () => {
    const { page, errors } = await openPage(web.browser, `${web.server.url}?service=web`);
    await page.waitForSelector('body[data-view="service"]', { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelectorAll('[data-chart] canvas').length >= 7);
    const legend = () =>
      page.$$eval('[data-chart="benefit"] .u-legend .u-series', (trs) =>
        trs.map((tr) => [
          tr.querySelector('.u-label')?.textContent ?? '',
          tr.querySelector('.u-value')?.textContent ?? '',
        ]),
      );
    const latest = (agent: AgentName) => fill.rounds.get(`web/${agent}`)!.at(-1)!.benefit[0]!.saved_ms!.toFixed(2);
    const expected = (Object.keys(AGENTS) as AgentName[])
      .sort((a, b) => AGENTS[a].localeCompare(AGENTS[b]))
      .map((a) => [`${AGENTS[a]} (${a})`, latest(a)]);
    const newest = Math.max(
      ...(Object.keys(AGENTS) as AgentName[]).map((a) => Date.parse(fill.rounds.get(`web/${a}`)!.at(-1)!.started_at)),
    );

    const before = await legend();
    assert.deepEqual(before.slice(1), expected);
    const [label, time] = before[0]!;
    assert.equal(label, 'Time');
    assert.notEqual(time, '--');
    // the newest round's time (uPlot writes it to the minute or second, by the chart's span)
    const newestText = await page.evaluate(`uPlot.fmtDate('{YYYY}-{MM}-{DD} {h}:{mm}')(new Date(${newest}))`);
    assert.ok(time!.startsWith(newestText as string), `legend time ${time}, newest round ${newestText}`);

    // Hover the left edge (an old round), then leave: the legend follows, then comes back to the latest.
    const box = (await page.$('[data-chart="benefit"] .u-over'))!;
    const rect = (await box.boundingBox())!;
    await page.mouse.move(rect.x + 3, rect.y + rect.height / 2);
    await page.waitForFunction(
      (want) =>
        document.querySelector('[data-chart="benefit"] .u-legend .u-series:nth-child(2) .u-value')?.textContent !==
        want,
      expected[0]![1],
    );
    await page.mouse.move(rect.x + rect.width / 2, rect.y + rect.height + 200);
    await page.waitForFunction(
      (want) =>
        document.querySelector('[data-chart="benefit"] .u-legend .u-series:nth-child(2) .u-value')?.textContent ===
        want,
      expected[0]![1],
    );
    assert.deepEqual((await legend()).slice(1), expected);
    assert.deepEqual(errors, []);
    await page.close();
  });
  it('a service named in the address before its first round: the overview says so, and the service opens once it has a round', async () => {
    // What `anylat demo` does: its page can open before the service's first round is stored.
    const { page, errors } = await openPage(web.browser, `${web.server.url}?service=later`);
    await page.waitForSelector('body[data-view="overview"]', { timeout: 20_000 });
    assert.match(await page.$eval('#status', (e) => e.textContent ?? ''), /no rounds of later yet/);
    web.store.saveRound({ ...regionRound(REGIONS[0]!, 0, Date.now() - 1000), service: 'later' });
    await page.waitForSelector('body[data-view="service"]', { timeout: 60_000 });
    assert.equal(await page.$eval('#service', (e) => (e as HTMLSelectElement).value), 'later');
    assert.doesNotMatch(await page.$eval('#status', (e) => e.textContent ?? ''), /no rounds of/);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
