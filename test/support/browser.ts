// Headless Chromium for page tests (the dashboard's and the demo's): launch Debian's chromium
// through playwright-core with a fresh profile, open a page while recording every error it
// reports, save a screenshot, and check from the PNG itself that each uPlot chart drew its lines.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from './net.ts';

import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../bench/lib/chromium.ts';
/** Screenshots go here (git-ignored) so a human can look at what the test saw. */
export const ARTIFACTS = join(ROOT, 'test', 'artifacts');

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Chromium with a fresh user-data dir, removed again by close(). */
export async function launchChromium(viewport = { width: 1400, height: 900 }): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'anylat-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport,
      deviceScaleFactor: 1,
    });
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface OpenedPage {
  page: Page;
  /** console errors, uncaught exceptions, failed requests and HTTP errors, in order */
  errors: string[];
}

/** Opens `url` in a new tab, recording everything that went wrong from the first request on. */
export async function openPage(browser: Browser, url: string): Promise<OpenedPage> {
  const page = await browser.context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`exception: ${e.message}`));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => {
    if (r.status() >= 400) errors.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  await page.goto(url, { waitUntil: 'load' });
  return { page, errors };
}

/** Full-page screenshot saved as test/artifacts/<name>.png; returns the PNG. */
export async function saveScreenshot(page: Page, name: string): Promise<Buffer> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const png = await page.screenshot({ fullPage: true, animations: 'disabled' });
  writeFileSync(join(ARTIFACTS, `${name}.png`), png);
  return png;
}

export interface Image {
  width: number;
  height: number;
  /** RGBA, 4 bytes per pixel, row after row */
  rgba: Uint8Array;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Decodes an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes) with node:zlib. */
export function decodePng(png: Buffer): Image {
  if (png.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const data = png.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const depth = data[8];
      const color = data[9];
      const interlace = data[12];
      if (depth !== 8 || (color !== 2 && color !== 6) || interlace !== 0) {
        throw new Error(`unsupported PNG: bit depth ${depth}, colour type ${color}, interlace ${interlace}`);
      }
      channels = color === 6 ? 4 : 3;
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    }
    offset += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = new Uint8Array(width * height * 4);
  let prev = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const cur = new Uint8Array(stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? cur[i - channels]! : 0;
      const b = prev[i]!;
      const c = i >= channels ? prev[i - channels]! : 0;
      const x = line[i]!;
      cur[i] =
        filter === 0
          ? x
          : filter === 1
            ? x + a
            : filter === 2
              ? x + b
              : filter === 3
                ? x + ((a + b) >> 1)
                : filter === 4
                  ? x + paeth(a, b, c)
                  : -1;
      if (filter > 4) throw new Error(`bad PNG filter ${filter} on row ${y}`);
    }
    for (let px = 0; px < width; px++) {
      const o = (y * width + px) * 4;
      out[o] = cur[px * channels]!;
      out[o + 1] = cur[px * channels + 1]!;
      out[o + 2] = cur[px * channels + 2]!;
      out[o + 3] = channels === 4 ? cur[px * channels + 3]! : 255;
    }
    prev = cur;
  }
  return { width, height, rgba: out };
}

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

function hexRgb(color: string): [number, number, number] {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (!m) throw new Error(`expected a #rrggbb colour, got ${color}`);
  return [parseInt(m[1]!, 16), parseInt(m[2]!, 16), parseInt(m[3]!, 16)];
}

/** Pixels inside `rect` within `tolerance` (per channel) of each colour. */
export function countColors(img: Image, rect: Rect, colors: readonly string[], tolerance = 40): number[] {
  const targets = colors.map(hexRgb);
  const counts = targets.map(() => 0);
  const x0 = Math.max(0, Math.floor(rect.x));
  const y0 = Math.max(0, Math.floor(rect.y));
  const x1 = Math.min(img.width, Math.ceil(rect.x + rect.width));
  const y1 = Math.min(img.height, Math.ceil(rect.y + rect.height));
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const o = (y * img.width + x) * 4;
      const r = img.rgba[o]!;
      const g = img.rgba[o + 1]!;
      const b = img.rgba[o + 2]!;
      targets.forEach(([tr, tg, tb], i) => {
        if (Math.abs(r - tr) <= tolerance && Math.abs(g - tg) <= tolerance && Math.abs(b - tb) <= tolerance)
          counts[i]!++;
      });
    }
  }
  return counts;
}

export interface ChartInk {
  /** the container's data-chart name */
  name: string;
  colors: string[];
  /** the plot canvas in full-page screenshot pixels */
  rect: Rect;
  /** pixels of each series' colour inside the canvas */
  pixels: number[];
}

/**
 * For every element with `data-chart` and `data-series-colors` (how the dashboard marks its uPlot
 * charts), counts each series' colour inside the chart's canvas in a full-page screenshot taken
 * at scroll 0. Axes and grid are grey, so coloured pixels there are drawn series.
 */
export async function chartInk(page: Page, png: Buffer): Promise<ChartInk[]> {
  const img = decodePng(png);
  const charts = await page.evaluate(() => {
    const dpr = window.devicePixelRatio;
    return Array.from(document.querySelectorAll<HTMLElement>('[data-chart][data-series-colors]')).map((el) => {
      const canvas = el.querySelector('canvas');
      const r = (canvas ?? el).getBoundingClientRect();
      return {
        name: el.dataset.chart!,
        colors: JSON.parse(el.dataset.seriesColors!) as string[],
        rect: {
          x: (r.left + window.scrollX) * dpr,
          y: (r.top + window.scrollY) * dpr,
          width: r.width * dpr,
          height: r.height * dpr,
        },
        hasCanvas: canvas !== null,
      };
    });
  });
  return charts.map((c) => ({
    name: c.name,
    colors: c.colors,
    rect: c.rect,
    pixels: c.hasCanvas ? countColors(img, c.rect, c.colors) : c.colors.map(() => 0),
  }));
}

/**
 * What is wrong with the dashboard's charts in `ink`: a canvas too small, a series that drew
 * fewer than `min` pixels. Loss charts only need one visible series, since paths without loss
 * share the 0 line and only the one drawn last shows. Empty when every chart drew.
 */
export function inkProblems(ink: readonly ChartInk[], min = 50): string[] {
  const problems: string[] = [];
  for (const chart of ink) {
    if (chart.rect.width < 200 || chart.rect.height < 100)
      problems.push(`${chart.name}: canvas only ${Math.round(chart.rect.width)}x${Math.round(chart.rect.height)}`);
    if (chart.name.startsWith('loss:')) {
      const total = chart.pixels.reduce((a, b) => a + b, 0);
      if (total < min) problems.push(`${chart.name}: no line drawn (${chart.pixels.join(', ')} pixels per series)`);
    } else {
      chart.pixels.forEach((n, i) => {
        if (n < min) problems.push(`${chart.name}: series ${i} (${chart.colors[i]}) drew ${n} pixels`);
      });
    }
  }
  return problems;
}

/** The dashboard's benefit table as shown: one record per region row, keyed by its cells' data-col. */
export async function benefitTable(page: Page): Promise<Array<Record<string, string>>> {
  return page.$$eval('#benefit-table tbody tr[data-agent]', (rows) =>
    rows.map((tr) => {
      const out: Record<string, string> = { agent: (tr as HTMLElement).dataset.agent ?? '' };
      for (const td of Array.from(tr.querySelectorAll('td')))
        out[(td as HTMLElement).dataset.col ?? ''] = (td.textContent ?? '').trim();
      return out;
    }),
  );
}

/** Waits until the dashboard has loaded and its benefit table shows a measured row for each region. */
export async function waitForRegions(page: Page, regions: readonly string[], timeoutMs = 60_000): Promise<void> {
  await page.waitForSelector('body[data-loaded="true"]', { timeout: timeoutMs });
  await page.waitForFunction(
    (want) => {
      const rows = Array.from(document.querySelectorAll<HTMLElement>('#benefit-table tbody tr[data-region]'));
      return want.every((region) =>
        rows.some(
          (r) => r.dataset.region === region && r.querySelector('td[data-col="saved"]')?.textContent !== 'no rounds',
        ),
      );
    },
    [...regions],
    { timeout: timeoutMs, polling: 250 },
  );
}
