// The built-in page over a store a test fills: a store in a scratch folder, the web server on a
// free loopback port and headless Chromium, for one describe block (its before/after hooks).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { openStore, type Store } from '../../agent/store/index.ts';
import { startWebServer, type WebServer } from '../../agent/web/index.ts';
import { launchChromium, type Browser } from './browser.ts';

const RETENTION = { maxAgeMs: 30 * 86_400_000, maxRows: 1_000_000 };

export interface PageOnStore {
  readonly store: Store;
  readonly server: WebServer;
  readonly browser: Browser;
}

/** Call inside a describe block: `fill` writes the store before the server starts. */
export function pageOnStore(scratchPrefix: string, fill: (store: Store) => void): PageOnStore {
  let dir: string | undefined;
  let store: Store | undefined;
  let server: WebServer | undefined;
  let browser: Browser | undefined;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), scratchPrefix));
    store = openStore(join(dir, 'anylat.db'), { retention: RETENTION, outbox: false });
    fill(store);
    server = await startWebServer({ store, listen: '127.0.0.1:0', log: () => {} });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const ready = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`${what} is not up: use it inside a test`);
    return v;
  };
  return {
    get store() {
      return ready(store, 'the store');
    },
    get server() {
      return ready(server, 'the web server');
    },
    get browser() {
      return ready(browser, 'Chromium');
    },
  };
}
