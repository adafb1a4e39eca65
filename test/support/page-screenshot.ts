// Regenerates docs/img/page-overview.png: the built-in page's overview over the fixture store of
// test/support/overview-data.ts (5 services × 3 regions), in headless Chromium, cut below Agent
// health. Loopback only; everything it starts it stops.
//
//   node --import tsx test/support/page-screenshot.ts [out.png]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../agent/store/index.ts';
import { startWebServer } from '../../agent/web/index.ts';
import { launchChromium, openPage } from './browser.ts';
import { ROOT } from './net.ts';
import { fillOverviewStore } from './overview-data.ts';

const out = process.argv[2] ?? join(ROOT, 'docs', 'img', 'page-overview.png');
const dir = mkdtempSync(join(tmpdir(), 'anylat-page-screenshot-'));
const store = openStore(join(dir, 'anylat.db'), {
  retention: { maxAgeMs: 30 * 86_400_000, maxRows: 1_000_000 },
  outbox: false,
});
try {
  fillOverviewStore(store);
  const server = await startWebServer({ store, listen: '127.0.0.1:0', log: () => {} });
  const browser = await launchChromium({ width: 1400, height: 900 });
  try {
    const { page, errors } = await openPage(browser, server.url);
    await page.waitForSelector('body[data-view="overview"]', { timeout: 30_000 });
    // Below Agent health the page only explains itself: leave that out of the picture.
    const bottom = await page.$eval('#health-table', (t) => {
      const card = t.closest('section')!.getBoundingClientRect();
      return Math.ceil(card.bottom + window.scrollY + 16);
    });
    const png = await page.screenshot({
      fullPage: true,
      animations: 'disabled',
      clip: { x: 0, y: 0, width: 1400, height: bottom },
    });
    writeFileSync(out, png);
    if (errors.length > 0) throw new Error(`the page reported errors: ${errors.join('; ')}`);
    console.log(`wrote ${out} (${png.length} bytes)`);
  } finally {
    await browser.close();
    await server.close();
  }
} finally {
  store.close();
  rmSync(dir, { recursive: true, force: true });
}
