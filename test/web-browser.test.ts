// The dashboard page in headless Chromium: it loads without a single error, shows every region's
// benefit with the numbers that were saved, follows the controls and the store, and its charts
// really draw (checked on the saved screenshot's pixels).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pageOnStore } from './support/page-on-store.ts';
import type { Page } from 'playwright-core';
import { benefitTable, chartInk, inkProblems, openPage, saveScreenshot, waitForRegions } from './support/browser.ts';
import { CI_HALF_WIDTH, fillStore, LOSSY, regionRound, REGIONS, ROUNDS, type Filled } from './support/web-data.ts';

/** How the page writes milliseconds: two decimals below 10, one above; saved values signed. */
function ms(v: number, signed = false): string {
  const text = `${v.toFixed(Math.abs(v) < 10 ? 2 : 1)} ms`;
  return signed && v > 0 ? `+${text}` : text;
}

function med(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function benefitRow(page: Page, agent: string): Promise<Record<string, string>> {
  return page.$$eval(`#benefit-table tbody tr[data-agent="${agent}"] td`, (tds) =>
    Object.fromEntries(tds.map((td) => [(td as HTMLElement).dataset.col ?? '', (td.textContent ?? '').trim()])),
  );
}

describe('web dashboard in Chromium', () => {
  let filled: Filled;

  const web = pageOnStore('anylat-web-browser-', (store) => {
    filled = fillStore(store);
  });

  // The store holds two services (`api` from an old agent): the page opens on the overview, so these open `web`.
  it('shows every region with the saved numbers, draws every chart, and reports no error', async () => {
    const { page, errors } = await openPage(web.browser, `${web.server.url}?service=web`);
    await waitForRegions(
      page,
      REGIONS.map((s) => s.region),
      20_000,
    );

    const table = await benefitTable(page);
    assert.deepEqual(
      table.map((r) => r.agent),
      ['ap-1', 'eu-1', 'us-1'],
    );
    for (const spec of REGIONS) {
      const rounds = filled.rounds.get(spec.agent)!;
      const udp = rounds.map((r) => r.benefit.find((b) => b.protocol === 'udp')!);
      const cells = table.find((r) => r.agent === spec.agent)!;
      assert.equal(cells.region, spec.region);
      assert.equal(cells.saved, ms(spec.saved, true), `${spec.agent} saved`);
      assert.equal(
        cells.ci,
        `[${(spec.saved - CI_HALF_WIDTH).toFixed(1)}, ${(spec.saved + CI_HALF_WIDTH).toFixed(1)}] ms`,
        `${spec.agent} CI`,
      );
      assert.equal(cells.saved_pct, `${med(udp.map((b) => b.saved_pct)).toFixed(1)}%`, `${spec.agent} saved %`);
      assert.equal(
        cells.win_rate,
        `${Math.round((100 * udp.reduce((a, b) => a + b.win_rate, 0)) / udp.length)}%`,
        `${spec.agent} win rate`,
      );
      assert.equal(cells.anycast_p50, ms(med(udp.map((b) => b.anycast_p50_ms))), `${spec.agent} anycast p50`);
      assert.equal(cells.baseline_p50, ms(med(udp.map((b) => b.baseline_p50_ms))), `${spec.agent} baseline p50`);
      assert.equal(cells.baseline, spec.baseline);
      assert.equal(cells.site, spec.siteAfter ?? spec.site);
      assert.equal(cells.rounds, String(ROUNDS));
      assert.equal(
        cells.verdict,
        spec.saved - CI_HALF_WIDTH > 0
          ? 'anycast faster'
          : spec.saved + CI_HALF_WIDTH < 0
            ? 'anycast slower'
            : 'no clear difference',
      );
    }

    // Site change, events and health made it to the page.
    const event = await page.$eval('#events-table tbody tr', (tr) =>
      Array.from(tr.querySelectorAll('td')).map((td) => td.textContent),
    );
    assert.deepEqual(event.slice(1, 5), ['eu-west', 'eu-1', 'site change', 'eu-west-1 → us-east-1']);
    const health = await page.$$eval('#health-table tbody tr', (rows) =>
      rows.map((r) => [(r as HTMLElement).dataset.agent, r.querySelector('td')?.textContent]),
    );
    assert.deepEqual(health, [
      ['ap-1', 'warning'],
      ['eu-1', 'warning'],
      ['old-1', 'silent'],
      ['us-1', 'ok'],
    ]);
    const failedCell = await page.$eval('#health-table tr[data-agent="eu-1"]', (tr) => {
      const heads = Array.from(document.querySelectorAll('#health-table thead th')).map((th) => th.textContent);
      return tr.querySelectorAll('td')[heads.indexOf('Rounds failed')]?.textContent;
    });
    assert.equal(failedCell, '3', 'Agent health shows rounds_failed');
    const siteNow = await page.$eval('#sites .site-row[data-agent="eu-1"] .site-now', (e) => e.textContent);
    assert.equal(siteNow, 'now: us-east-1');

    // Let the page settle a moment after the last render, then look at it as a user would.
    await page.waitForFunction(() => document.querySelectorAll('[data-chart] canvas').length >= 7);
    const png = await saveScreenshot(page, 'web-dashboard');
    const ink = await chartInk(page, png);
    const names = ink.map((c) => c.name).sort();
    assert.deepEqual(
      names,
      ['benefit', ...REGIONS.map((s) => `latency:${s.agent}`), ...REGIONS.map((s) => `loss:${s.agent}`)].sort(),
    );
    const MIN_PIXELS = 50;
    assert.deepEqual(inkProblems(ink, MIN_PIXELS), []);
    // The lossy path's spikes are drawn in its own colour.
    const loss = ink.find((c) => c.name === `loss:${LOSSY.agent}`)!;
    const pathIndex = await page.$$eval(
      `[data-chart="loss:${LOSSY.agent}"] .u-legend .u-series th`,
      (ths, label) => ths.findIndex((th) => th.textContent?.trim() === label) - 1,
      `${LOSSY.endpoint} ${LOSSY.protocol}`,
    );
    assert.ok(pathIndex >= 0, 'lossy path in the legend');
    assert.ok(loss.pixels[pathIndex]! >= MIN_PIXELS, `lossy path drew ${loss.pixels[pathIndex]} pixels`);

    assert.deepEqual(errors, []);
    await page.close();
  });

  it('follows the metric selector and keeps the choice in the URL', async () => {
    const { page, errors } = await openPage(web.browser, `${web.server.url}?service=web`);
    await page.waitForSelector('body[data-loaded="true"]');
    await page.selectOption('#metric', 'tcp/connect');
    await page.waitForFunction(() => document.getElementById('benefit-caption')?.textContent?.includes('tcp/connect'));
    assert.match(
      await page.$eval('#benefit-caption', (e) => e.textContent ?? ''),
      /edge scope: overstates the benefit/,
    );
    for (const spec of REGIONS) {
      const tcp = filled.rounds.get(spec.agent)!.map((r) => r.benefit.find((b) => b.protocol === 'tcp')!.saved_ms);
      assert.equal((await benefitRow(page, spec.agent)).saved, ms(med(tcp), true), spec.agent);
    }
    assert.match(page.url(), /\?service=web&metric=tcp%2Fconnect$/);
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('refreshes on its own when an agent saves a new round', async () => {
    const { page, errors } = await openPage(web.browser, `${web.server.url}?service=web&since=15m`);
    await page.waitForSelector('body[data-loaded="true"]');
    const spec = REGIONS.find((s) => s.agent === 'us-1')!;
    assert.equal((await benefitRow(page, spec.agent)).rounds, String(ROUNDS));
    web.store.saveRound(regionRound(spec, ROUNDS, Date.now() - 1000));
    await page.waitForFunction(
      ([agent, n]) =>
        document.querySelector(`#benefit-table tr[data-agent="${agent}"] td[data-col="rounds"]`)?.textContent === n,
      [spec.agent, String(ROUNDS + 1)] as const,
      { timeout: 20_000 },
    );
    assert.equal(await page.$eval('#since', (e) => (e as HTMLSelectElement).value), '15m');
    assert.deepEqual(errors, []);
    await page.close();
  });
});
