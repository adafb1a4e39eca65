// `anylat demo` as a user starts it (the CLI, bounded by --duration, the dashboard on a free port),
// looked at in headless Chromium: the page fills with every region's measured benefit, its charts
// draw (checked on the screenshot's pixels), the terminal prints the same table; then Ctrl-C
// (SIGINT) stops the agents, takes the lab down and exits 0. Linux + root.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitForLabFree } from '../agent/demo/lab-busy.ts';
import { labDown } from '../agent/lab/index.ts';
import {
  benefitTable,
  chartInk,
  inkProblems,
  launchChromium,
  openPage,
  saveScreenshot,
  waitForRegions,
  type Browser,
} from './support/browser.ts';
import { freePort, startAnylat } from './support/net.ts';
import { needsRoot } from './support/root.ts';

const REGIONS = ['us-east', 'eu-west', 'ap-south'];
/** A line needs two points: wait for this many rounds of every region before the screenshot. */
const ROUNDS_BEFORE_SCREENSHOT = 3;

function labNamespacesNow(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith('anylat-'));
}

describe(
  'anylat demo in Chromium (Linux, root)',
  needsRoot('the demo builds the lab: network namespaces and TUN devices'),
  () => {
    let scratch: string;
    let demo: Awaited<ReturnType<typeof startAnylat>> | undefined;
    let browser: Browser | undefined;
    let url: string;

    before(async () => {
      assert.equal(process.getuid?.(), 0, 'this test needs root (the demo builds the lab)');
      await waitForLabFree(90_000);
      await labDown();
      scratch = mkdtempSync(join(tmpdir(), 'anylat-demo-browser-'));
      const port = await freePort();
      url = `http://127.0.0.1:${port}/`;
      demo = await startAnylat(
        [
          'demo',
          '--duration',
          '150s',
          '--web',
          `127.0.0.1:${port}`,
          '--interval',
          '5s',
          '--dir',
          join(scratch, 'demo'),
          '--store',
          join(scratch, 'demo.db'),
        ],
        { ready: /Ctrl-C stops the agents/, timeoutMs: 90_000 },
      );
      browser = await launchChromium();
    });

    after(async () => {
      await browser?.close();
      if (demo && demo.child.exitCode === null && demo.child.signalCode === null) {
        await demo.stop('SIGKILL');
        await labDown();
      }
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    });

    it('the page shows every region with the measured benefit and draws every chart, without an error', async () => {
      // The demo runs two services (demo, and demo-transfer by default): the page would open on the
      // overview, so this opens the latency service's own view.
      const { page, errors } = await openPage(browser!, `${url}?service=demo`);
      await waitForRegions(page, REGIONS, 90_000);
      await page.waitForFunction(
        ([regions, n]) =>
          regions.every(
            (region) =>
              Number(
                document.querySelector(`#benefit-table tr[data-region="${region}"] td[data-col="rounds"]`)
                  ?.textContent ?? 0,
              ) >= n,
          ),
        [REGIONS, ROUNDS_BEFORE_SCREENSHOT] as const,
        { timeout: 90_000, polling: 500 },
      );

      const table = await benefitTable(page);
      assert.deepEqual(table.map((r) => r.region).sort(), [...REGIONS].sort());
      const row = (region: string) => table.find((r) => r.region === region)!;
      for (const region of REGIONS) {
        assert.equal(row(region).agent, `demo-${region}`);
        assert.match(row(region).saved ?? '', /^[+-]?\d+\.\d+ ms$/, `${region} saved: ${JSON.stringify(row(region))}`);
      }
      // ap-south is far from both origins: about 29 ms saved through its edge to eu-west.
      const saved = Number(/^\+?(-?\d+\.\d+) ms$/.exec(row('ap-south').saved!)![1]);
      assert.ok(saved > 20 && saved < 35, `ap-south saved ${saved} ms`);
      assert.equal(row('ap-south').site, 'eu-west');
      assert.equal(row('ap-south').verdict, 'anycast faster');
      assert.equal(row('us-east').site, 'us-east');
      assert.equal(row('eu-west').site, 'eu-west');

      // The health table lists the three agents, none silent.
      const health = await page.$$eval('#health-table tbody tr', (rows) =>
        rows.map((r) => [(r as HTMLElement).dataset.agent, r.querySelector('td')?.textContent]),
      );
      assert.deepEqual(health.map((h) => h[0]).sort(), REGIONS.map((r) => `demo-${r}`).sort());
      for (const [agent, status] of health) assert.notEqual(status, 'silent', `${agent} silent`);

      await page.waitForFunction(() => document.querySelectorAll('[data-chart] canvas').length >= 7);
      const png = await saveScreenshot(page, 'demo-dashboard');
      const ink = await chartInk(page, png);
      assert.deepEqual(
        ink.map((c) => c.name).sort(),
        ['benefit', ...REGIONS.map((r) => `latency:demo-${r}`), ...REGIONS.map((r) => `loss:demo-${r}`)].sort(),
      );
      assert.deepEqual(inkProblems(ink), []);
      assert.deepEqual(errors, []);
      await page.close();

      // demo-transfer is on by default: its first round (once a minute) reaches the store.
      const deadline = Date.now() + 120_000;
      let services: string[] = [];
      while (Date.now() < deadline) {
        const body = (await (await fetch(new URL('/api/services', url))).json()) as {
          services: Array<{ service: string }>;
        };
        services = body.services.map((x) => x.service);
        if (services.includes('demo-transfer')) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      assert.deepEqual(services.sort(), ['demo', 'demo-transfer']);

      // The terminal printed the same kind of table: a row per region with its site and numbers.
      const out = demo!.output();
      for (const region of REGIONS)
        assert.match(
          out,
          new RegExp(
            `^  ${region}\\s+(us-east|eu-west)\\s+\\d+\\.\\d+ ms\\s+\\d+\\.\\d+ ms (us-east|eu-west)\\s+[+-]?\\d`,
            'm',
          ),
          `no table row for ${region}:\n${out}`,
        );
    });

    it('Ctrl-C stops the agents, takes the lab down and exits 0', async () => {
      const code = await demo!.stop('SIGINT');
      const out = demo!.output();
      assert.equal(code, 0, out);
      assert.match(out, /SIGINT: stopping the agents/);
      assert.match(out, /agents stopped: us-east exit 0, eu-west exit 0, ap-south exit 0/);
      assert.match(out, /lab down: \d+ namespaces removed/);
      assert.deepEqual(labNamespacesNow(), []);
      await assert.rejects(fetch(url), 'the dashboard is gone with the demo');
      assert.equal(existsSync(join(scratch, 'demo')), false, 'the agents directory the demo created is gone with it');
    });
  },
);
