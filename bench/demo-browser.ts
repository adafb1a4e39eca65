// npm run bench:demo [-- --minutes 5] [-- --hog] [-- --quick] [-- --out FILE]
//
// The demo while someone looks at it: `anylat demo` as a user starts it (the CLI: lab, one agent
// per region, the dashboard), with headless Chromium keeping its page open for N minutes (default
// 5): the page refreshes itself, and every 20 s the bench reloads it with another metric
// (udp/rtt, http/total, http/warm, ...) and moves the mouse over its charts, so the browser
// renders all the time, on the same CPUs as the agents and the lab. Optionally (--hog) one
// busy-loop process per CPU runs as well. Then, from the demo's store, a table per region × path
// × protocol/metric: samples sent, lost, lost %, flagged %, and whether HTTP total and warm had a
// value in every round of every region; with the load average during the run. Linux, root; run it
// under `flock /tmp/anylat-lab.lock` (the lab is one per machine). Exit 0 whatever it measured;
// the lab goes down and Chromium closes also on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { chromium, type Browser, type Page } from 'playwright-core';
import { waitForLabFree } from '../agent/demo/lab-busy.ts';
import { labDir, labDown, labNamespaces } from '../agent/lab/index.ts';
import { readState } from '../agent/lab/state.ts';
import { ANYLAT_BIN, ROOT } from './lib/anylat-process.ts';
import { loadCpus, type CpuLoad } from './lib/load.ts';
import {
  describeMachine,
  fmt,
  machineNote,
  markdownTable,
  progress,
  RESULTS_DIR,
  writeResult,
  type MachineNote,
} from './lib/output.ts';
import { freePort } from './lib/ports.ts';
import { quantile } from './lib/stats.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './lib/chromium.ts';

const USAGE = `usage: npm run bench:demo [-- --minutes N] [-- --hog] [-- --quick] [-- --out FILE]
  Linux, root; run under "flock /tmp/anylat-lab.lock" (it builds the lab).
  --minutes N   how long Chromium looks at the page once every region has a round (default 5)
  --hog         also run one busy-loop process per CPU at ordinary priority meanwhile
  --quick       1 minute
  --out FILE    the JSON result (default bench/results/demo[-hog][-quick].json)`;

const REGIONS = ['us-east', 'eu-west', 'ap-south'];
/** The page's metric choices the bench cycles through, one per reload. */
const VIEWS = ['', 'udp/rtt', 'http/total', 'http/warm', 'http/ttfb', 'tcp/rtt', 'icmp/rtt'];
const RELOAD_EVERY_MS = 20_000;
/** The demo stops by itself this long after the planned end, should this process die. */
const DEMO_SAFETY_MS = 5 * 60_000;

interface Args {
  minutes: number;
  hog: boolean;
  quick: boolean;
  out: string;
}

function args(): Args {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string' },
      hog: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const minutes = values.quick ? 1 : values.minutes === undefined ? 5 : Number(values.minutes);
  if (!Number.isFinite(minutes) || minutes <= 0) {
    process.stderr.write(`--minutes: expected a positive number, got "${values.minutes}"\n${USAGE}\n`);
    process.exit(2);
  }
  const name = `demo${values.hog ? '-hog' : ''}${values.quick ? '-quick' : ''}`;
  return { minutes, hog: values.hog, quick: values.quick, out: values.out ?? join(RESULTS_DIR, `${name}.json`) };
}

/** Busy share of all CPUs between two reads of /proc/stat. */
function cpuTimes(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3]! + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

interface PathRow {
  region: string;
  endpoint: string;
  protocol: string;
  metric: string;
  rounds: number;
  sent: number;
  received: number;
  flagged: number;
  /** rounds of this path with a p50 (some sample survived) */
  withValue: number;
  failures: Record<string, number>;
}

interface RegionRow {
  region: string;
  rounds: number;
  httpTotalRounds: number;
  httpWarmRounds: number;
  benefitTotal: number;
  benefitWarm: number;
  roundsLate?: number;
  roundsSkipped?: number;
  loopLagP99Ms?: number;
}

/** One path of one round, as the store keeps it. */
interface PathQueryRow {
  region: string;
  endpoint: string;
  protocol: string;
  metric: string;
  sent: number;
  received: number;
  flagged: number;
  p50_ms: number | null;
  failures: string | null;
}

/** Adds one round of a path to its row. */
function addRound(row: PathRow, r: PathQueryRow): void {
  row.rounds++;
  row.sent += r.sent;
  row.received += r.received;
  row.flagged += r.flagged;
  if (r.p50_ms !== null) row.withValue++;
  if (r.failures) {
    for (const [reason, n] of Object.entries(JSON.parse(r.failures) as Record<string, number>))
      row.failures[reason] = (row.failures[reason] ?? 0) + n;
  }
}

/** The paths of the rounds that started in [from, to), summed per region, endpoint and protocol/metric. */
function readPaths(db: Database.Database, from: number, to: number): PathRow[] {
  const rows = db
    .prepare(
      `SELECT r.agent_region AS region, p.endpoint, p.protocol, p.metric, p.sent, p.received, p.flagged,
              p.p50_ms, p.failures
         FROM paths p JOIN rounds r ON r.id = p.round_id
        WHERE r.service = 'demo' AND r.started_at >= ? AND r.started_at < ?
        ORDER BY r.agent_region, p.ord`,
    )
    .all(from, to) as PathQueryRow[];
  const byKey = new Map<string, PathRow>();
  for (const r of rows) {
    const key = [r.region, r.endpoint, r.protocol, r.metric].join('\0');
    let row = byKey.get(key);
    if (!row) {
      row = {
        region: r.region,
        endpoint: r.endpoint,
        protocol: r.protocol,
        metric: r.metric,
        rounds: 0,
        sent: 0,
        received: 0,
        flagged: 0,
        withValue: 0,
        failures: {},
      };
      byKey.set(key, row);
    }
    addRound(row, r);
  }
  return [...byKey.values()];
}

/** What a region's last heartbeat said about its rounds and its event loop, where it said it. */
function heartbeatFields(body: string | undefined): Pick<RegionRow, 'roundsLate' | 'roundsSkipped' | 'loopLagP99Ms'> {
  const hb =
    body !== undefined
      ? (JSON.parse(body) as { rounds_late?: number; rounds_skipped?: number; loop_lag_p99_ms?: number })
      : {};
  return {
    ...(hb.rounds_late !== undefined ? { roundsLate: hb.rounds_late } : {}),
    ...(hb.rounds_skipped !== undefined ? { roundsSkipped: hb.rounds_skipped } : {}),
    ...(hb.loop_lag_p99_ms !== undefined ? { loopLagP99Ms: hb.loop_lag_p99_ms } : {}),
  };
}

/** Per region: its rounds in [from, to), those with http total and warm on every path, its benefit rows. */
function readRegions(db: Database.Database, from: number, to: number): RegionRow[] {
  const regionRounds = db
    .prepare(
      `SELECT agent_region AS region, count(*) AS n FROM rounds
        WHERE service = 'demo' AND started_at >= ? AND started_at < ? GROUP BY agent_region`,
    )
    .all(from, to) as Array<{ region: string; n: number }>;
  /** Rounds of a region in which every endpoint's http `metric` has a value. */
  const everyEndpoint = db.prepare(
    `SELECT count(*) AS n FROM rounds r
      WHERE r.service = 'demo' AND r.agent_region = ? AND r.started_at >= ? AND r.started_at < ?
        AND NOT EXISTS (SELECT 1 FROM paths p WHERE p.round_id = r.id AND p.protocol = 'http'
                          AND p.metric = ? AND p.p50_ms IS NULL)
        AND EXISTS (SELECT 1 FROM paths p WHERE p.round_id = r.id AND p.protocol = 'http' AND p.metric = ?)`,
  );
  const benefit = db.prepare(
    `SELECT count(*) AS n FROM benefit b JOIN rounds r ON r.id = b.round_id
      WHERE r.service = 'demo' AND r.agent_region = ? AND r.started_at >= ? AND r.started_at < ?
        AND b.protocol = 'http' AND b.metric = ? AND b.saved_ms IS NOT NULL`,
  );
  const heartbeats = db.prepare('SELECT agent_region AS region, body FROM heartbeats').all() as Array<{
    region: string;
    body: string;
  }>;
  return REGIONS.map((region): RegionRow => {
    const count = (stmt: typeof benefit, metric: string, extra: unknown[] = []) =>
      (stmt.get(region, from, to, metric, ...extra) as { n: number }).n;
    return {
      region,
      rounds: regionRounds.find((r) => r.region === region)?.n ?? 0,
      httpTotalRounds: count(everyEndpoint, 'total', ['total']),
      httpWarmRounds: count(everyEndpoint, 'warm', ['warm']),
      benefitTotal: count(benefit, 'total'),
      benefitWarm: count(benefit, 'warm'),
      ...heartbeatFields(heartbeats.find((h) => h.region === region)?.body),
    };
  });
}

/** What the store holds for the rounds that started in [from, to). */
function readStore(path: string, from: number, to: number): { paths: PathRow[]; regions: RegionRow[] } {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const paths = readPaths(db, from, to);
    return { paths, regions: readRegions(db, from, to) };
  } finally {
    db.close();
  }
}

/** Lines the agents logged about loss ("loss on anycast/udp, ...") and rounds that went wrong. */
function agentLogLines(dir: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  let files: string[] = [];
  try {
    files = readdirSync(join(dir, 'logs'));
  } catch {
    return out;
  }
  for (const f of files) {
    const text = readFileSync(join(dir, 'logs', f), 'utf8');
    out[f.replace(/\.log$/, '')] = text
      .split('\n')
      .filter((l) => /loss on|abandon|late|skipped|error/i.test(l))
      .slice(-20);
  }
  return out;
}

function pct(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-';
}

/** Hovers every chart of the page, left to right, so uPlot draws its cursor and legend. */
async function lookAround(page: Page, until: number): Promise<void> {
  const boxes = await page.$$eval('[data-chart] canvas', (cs) =>
    cs.map((c) => {
      const r = c.getBoundingClientRect();
      return { x: r.left, y: r.top + window.scrollY, w: r.width, h: r.height };
    }),
  );
  for (const b of boxes) {
    if (Date.now() >= until) return;
    await page.evaluate((y) => window.scrollTo(0, Math.max(0, y - 100)), b.y);
    const top = await page.evaluate(() => window.scrollY);
    for (let i = 1; i <= 8 && Date.now() < until; i++) {
      await page.mouse.move(b.x + (b.w * i) / 9, b.y - top + b.h / 2);
      await new Promise((r) => setTimeout(r, 150));
    }
  }
}

/** A signal arrived: cleanup runs and exits; errors of the interrupted run are not reported. */
let stopping = false;

function requireLinuxRoot(): void {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) {
    process.stderr.write('bench:demo needs Linux and root: the demo builds the lab (network namespaces)\n');
    process.exit(2);
  }
}

/** What one run holds while it runs (the demo, Chromium, the hog) and how it stops them, once. */
class Session {
  readonly scratch = mkdtempSync(join(tmpdir(), 'anylat-bench-demo-'));
  // A directory that exists before the demo starts is kept when it exits: its agents' logs are read at the end.
  readonly demoDir = join(this.scratch, 'demo');
  readonly storePath = join(this.scratch, 'demo.db');
  demo: ChildProcess | undefined;
  demoOut = '';
  demoExit: Promise<number | string> | undefined;
  browser: Browser | undefined;
  hog: CpuLoad | undefined;
  interrupted = false;
  private cleaned: Promise<void> | undefined;

  constructor() {
    mkdirSync(this.demoDir);
  }

  cleanup(): Promise<void> {
    return (this.cleaned ??= (async () => {
      await this.hog?.stop().catch(() => undefined);
      await this.browser?.close().catch(() => undefined);
      const demo = this.demo;
      if (demo && demo.exitCode === null && demo.signalCode === null) {
        demo.kill('SIGINT');
        const timer = setTimeout(() => demo.kill('SIGKILL'), 30_000);
        await this.demoExit;
        clearTimeout(timer);
      }
      // The demo takes its lab down; if it was killed, the lab it left is ours to remove.
      if (demo && labNamespaces().length > 0 && !/lab down: \d+ namespaces removed/.test(this.demoOut)) await labDown();
    })());
  }

  private readonly onSignal = (signal: NodeJS.Signals): void => {
    if (this.interrupted) return;
    this.interrupted = true;
    stopping = true;
    progress(`${signal}: closing Chromium, stopping the demo and taking the lab down`);
    void this.cleanup().finally(() => {
      rmSync(this.scratch, { recursive: true, force: true });
      process.exit(130);
    });
  };

  listen(): void {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
    process.on('SIGHUP', this.onSignal);
  }

  unlisten(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    process.off('SIGHUP', this.onSignal);
  }
}

/** Starts `anylat demo` with its dashboard on `port`, and waits until its agents run. */
async function startDemo(s: Session, port: number, durationMs: number): Promise<void> {
  // Detached: a Ctrl-C reaches this process, which stops the demo once, as the demo expects.
  const child = spawn(
    process.execPath,
    [
      ANYLAT_BIN,
      'demo',
      '--web',
      `127.0.0.1:${port}`,
      '--dir',
      s.demoDir,
      '--store',
      s.storePath,
      '--duration',
      `${Math.ceil((durationMs + DEMO_SAFETY_MS) / 1000)}s`,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  s.demo = child;
  const demoExit = new Promise<number | string>((res) =>
    child.once('exit', (code, signal) => res(code ?? signal ?? 'unknown')),
  );
  s.demoExit = demoExit;
  const onData = (d: Buffer) => {
    s.demoOut += d.toString();
    if (s.demoOut.length > 1_000_000) s.demoOut = s.demoOut.slice(-500_000);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo did not start in 120 s:\n${s.demoOut}`)), 120_000);
    const check = () => {
      if (/Ctrl-C stops the agents/.test(s.demoOut)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    void demoExit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited (${code}) before it ran:\n${s.demoOut}`));
    });
  });
}

interface PageStats {
  reloads: number;
  errors: string[];
  views: number;
}

/** Launches Chromium and opens the dashboard; the page's errors go into `pageStats`. */
async function openPage(s: Session, url: string, pageStats: PageStats): Promise<Page> {
  // Playwright's own signal handlers would exit this process before the demo is stopped.
  s.browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  const context = await s.browser.newContext({ viewport: { width: 1400, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageStats.errors.push(`exception: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') pageStats.errors.push(`console: ${m.text()}`);
  });
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 120_000 });
  return page;
}

async function waitForEveryRegion(s: Session): Promise<void> {
  const db = () => new Database(s.storePath, { readonly: true, fileMustExist: true });
  for (const deadline = Date.now() + 120_000; ;) {
    const d = db();
    const n = (
      d.prepare("SELECT count(DISTINCT agent_region) AS n FROM rounds WHERE service = 'demo'").get() as { n: number }
    ).n;
    d.close();
    if (n >= REGIONS.length) break;
    if (Date.now() > deadline) throw new Error(`after 120 s only ${n} regions had a round:\n${s.demoOut}`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

/** A check that throws once the demo's agents or its lab are no longer the ones it started. */
function labGuard(s: Session): () => void {
  // The lab is one per machine: a test that runs `lab down` (without the lab lock) stops the
  // demo's agents under it, and what the store holds after that is not this run's figures.
  const createdAt = readState(labDir())?.createdAt;
  return () => {
    const exited = /agent demo-\S+ exited[^\n]*/.exec(s.demoOut);
    const now = readState(labDir())?.createdAt;
    if (exited || now !== createdAt)
      throw new Error(
        `the demo's lab was taken down or replaced during the run (${exited ? exited[0] : `lab state ${now ?? 'gone'}`}): someone ran a lab test without "flock /tmp/anylat-lab.lock"; the figures are void, run the benchmark again`,
      );
  };
}

/** Reloads the page with the next metric every RELOAD_EVERY_MS and looks around it, until `end`. */
async function lookAtPage(
  s: Session,
  page: Page,
  url: string,
  pageStats: PageStats,
  span: { from: number; end: number; intact: () => void },
): Promise<void> {
  const { from, end, intact } = span;
  let lastReport = Date.now();
  while (Date.now() < end && !s.interrupted) {
    const view = VIEWS[pageStats.reloads % VIEWS.length]!;
    await page.goto(view ? `${url}?metric=${encodeURIComponent(view)}` : url, { waitUntil: 'load' });
    pageStats.reloads++;
    const next = Math.min(end, Date.now() + RELOAD_EVERY_MS);
    while (Date.now() < next && !s.interrupted) {
      await lookAround(page, next);
      pageStats.views++;
      await new Promise((r) => setTimeout(r, 250));
    }
    intact();
    if (Date.now() - lastReport > 60_000) {
      lastReport = Date.now();
      progress(`${Math.round((Date.now() - from) / 1000)} s; load average ${loadavg()[0]!.toFixed(2)}`);
    }
  }
}

/** The measured window: when it started and ended, and the machine's CPU counters at both ends. */
interface Watched {
  from: number;
  to: number;
  cpuStart: ReturnType<typeof cpuTimes>;
  cpuEnd: ReturnType<typeof cpuTimes>;
}

/** Starts the demo and Chromium, then has Chromium look at the page for `a.minutes` once every region has a round. */
async function watchDemo(a: Args, s: Session, pageStats: PageStats): Promise<Watched> {
  if ((await waitForLabFree(10 * 60_000)) === 'running') throw new Error('a lab stayed up for 10 minutes');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const durationMs = a.minutes * 60_000;
  progress(`starting anylat demo (dashboard on ${url})`);
  await startDemo(s, port, durationMs);
  progress('the demo runs; starting Chromium');
  const page = await openPage(s, url, pageStats);
  // The measured window starts once every region has saved a round: start-up (tsx compiling,
  // the first round) is not what someone looking at the page sees.
  progress('waiting for the first round of every region');
  await waitForEveryRegion(s);
  if (a.hog) {
    s.hog = loadCpus();
    progress(`CPU hog: ${s.hog.processes} busy loops`);
  }
  const intact = labGuard(s);
  const from = Date.now();
  const cpuStart = cpuTimes();
  const end = from + durationMs;
  progress(`Chromium looks at the page for ${a.minutes} min (reload every ${RELOAD_EVERY_MS / 1000} s)`);
  await lookAtPage(s, page, url, pageStats, { from, end, intact });
  const to = Date.now();
  const cpuEnd = cpuTimes();
  intact();
  await s.hog?.stop();
  s.hog = undefined;
  return { from, to, cpuStart, cpuEnd };
}

/** One row per region and path, one column per protocol/metric: "lost % / flagged %" of that path's samples. */
function pathTable(paths: readonly PathRow[]): string {
  // Every metric of a path takes the same number of samples: rounds × samples.
  const metrics = [...new Set(paths.map((p) => `${p.protocol} ${p.metric}`))];
  const pathKeys = [...new Set(paths.map((p) => `${p.region}\0${p.endpoint}`))];
  return markdownTable(
    ['region', 'path', 'samples per metric', 'lost', ...metrics.map((m) => `${m} lost / flagged`), 'failures'],
    pathKeys.map((key) => {
      const [region, endpoint] = key.split('\0') as [string, string];
      const mine = paths.filter((p) => p.region === region && p.endpoint === endpoint);
      const failures: Record<string, number> = {};
      for (const p of mine)
        for (const [reason, n] of Object.entries(p.failures))
          failures[`${p.protocol} ${p.metric} ${reason}`] = (failures[`${p.protocol} ${p.metric} ${reason}`] ?? 0) + n;
      const samples = [...new Set(mine.map((p) => p.sent))];
      return [
        region,
        endpoint,
        samples.join(', '),
        mine.reduce((s, p) => s + p.sent - p.received, 0),
        ...metrics.map((m) => {
          const p = mine.find((x) => `${x.protocol} ${x.metric}` === m);
          return p ? `${pct(p.sent - p.received, p.sent)} / ${pct(p.flagged, p.received)}` : '-';
        }),
        Object.keys(failures).length > 0
          ? Object.entries(failures)
              .map(([k, n]) => `${k} ${n}`)
              .join(', ')
          : 'none',
      ];
    }),
  );
}

function regionTable(regions: readonly RegionRow[]): string {
  return markdownTable(
    [
      'region',
      'rounds',
      'http total in every path',
      'http warm in every path',
      'total benefit rows',
      'warm benefit rows',
      'rounds late / skipped',
      'loop lag p99 ms',
    ],
    regions.map((r) => [
      r.region,
      r.rounds,
      `${r.httpTotalRounds} of ${r.rounds}`,
      `${r.httpWarmRounds} of ${r.rounds}`,
      r.benefitTotal,
      r.benefitWarm,
      `${r.roundsLate ?? '-'} / ${r.roundsSkipped ?? '-'}`,
      fmt(r.loopLagP99Ms, 1),
    ]),
  );
}

/** The sums over every path (and over http's) that the summary line gives and the JSON keeps. */
function totals(paths: readonly PathRow[], regions: readonly RegionRow[]) {
  const http = paths.filter((p) => p.protocol === 'http');
  return {
    sent: paths.reduce((s, p) => s + p.sent, 0),
    lost: paths.reduce((s, p) => s + p.sent - p.received, 0),
    received: paths.reduce((s, p) => s + p.received, 0),
    flagged: paths.reduce((s, p) => s + p.flagged, 0),
    httpFlagged: http.reduce((s, p) => s + p.flagged, 0),
    httpReceived: http.reduce((s, p) => s + p.received, 0),
    everyRegionTotalWarm: regions.every(
      (r) => r.rounds > 0 && r.httpTotalRounds === r.rounds && r.httpWarmRounds === r.rounds,
    ),
  };
}

function loadLine(load: readonly number[]): string {
  return load.length > 0
    ? `load average (1 min) during the run: min ${Math.min(...load).toFixed(2)}, median ${quantile(load, 0.5).toFixed(2)}, max ${Math.max(...load).toFixed(2)} (${load.length} readings, every 5 s)`
    : 'load average: no reading';
}

/** Everything the report is made of, gathered once the demo has stopped. */
interface Outcome {
  a: Args;
  started: number;
  before: MachineNote;
  after: MachineNote;
  load: number[];
  cpuBusy: number | undefined;
  pageStats: PageStats;
  paths: PathRow[];
  regions: RegionRow[];
  totals: ReturnType<typeof totals>;
  demoCode: number | string | undefined;
}

function reportText(o: Outcome): string {
  const { a, pageStats, cpuBusy } = o;
  const { sent, lost, received, flagged, httpFlagged, httpReceived, everyRegionTotalWarm } = o.totals;
  const what = `anylat demo (rounds every 10 s, 10 samples per path) with headless Chromium on its page for ${a.minutes} min (reloaded every ${RELOAD_EVERY_MS / 1000} s with another metric, the mouse over every chart in between: ${pageStats.reloads} reloads)${a.hog ? `, and ${cpus().length} busy-loop processes (one per CPU)` : ''}; rounds that started in that window`;
  return [
    what,
    '',
    pathTable(o.paths),
    '',
    regionTable(o.regions),
    '',
    `all paths: ${lost} of ${sent} samples lost (${pct(lost, sent)}), ${flagged} of ${received} flagged (${pct(flagged, received)}); http: ${httpFlagged} of ${httpReceived} flagged (${pct(httpFlagged, httpReceived)}); http total and warm in every round of every region: ${everyRegionTotalWarm ? 'yes' : 'no'}`,
    `machine CPU busy during the run: ${cpuBusy === undefined ? '-' : `${(100 * cpuBusy).toFixed(0)}%`}; page errors: ${pageStats.errors.length}${pageStats.errors.length ? ` (first: ${pageStats.errors[0]})` : ''}; demo exit ${o.demoCode}`,
    loadLine(o.load),
    `machine: ${describeMachine(o.before)}; at the end: load ${o.after.loadavg.join(' / ')}; ran ${Math.round((Date.now() - o.started) / 1000)} s`,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const a = args();
  requireLinuxRoot();
  const started = Date.now();
  const s = new Session();
  s.listen();
  const before = machineNote();
  const load: number[] = [];
  const loadTimer = setInterval(() => load.push(loadavg()[0]!), 5_000);
  const pageStats: PageStats = { reloads: 0, errors: [], views: 0 };
  let w: Watched;
  try {
    w = await watchDemo(a, s, pageStats);
  } finally {
    clearInterval(loadTimer);
    if (!s.interrupted) {
      progress('closing Chromium, stopping the demo (Ctrl-C), taking the lab down');
      await s.cleanup();
    }
  }
  if (s.interrupted) return;
  const demoCode = await s.demoExit;
  const after = machineNote();
  const { paths, regions } = readStore(s.storePath, w.from, w.to);
  const logs = agentLogLines(s.demoDir);
  rmSync(s.scratch, { recursive: true, force: true });
  s.unlisten();
  const cpuBusy = (w.cpuEnd.busy - w.cpuStart.busy) / (w.cpuEnd.total - w.cpuStart.total);
  const sums = totals(paths, regions);
  const o: Outcome = { a, started, before, after, load, cpuBusy, pageStats, paths, regions, totals: sums, demoCode };
  process.stdout.write(reportText(o));
  writeResult(a.out, {
    benchmark: 'demo',
    minutes: a.minutes,
    hog: a.hog,
    quick: a.quick,
    machine: { before, after, loadavg1: load, cpuBusy },
    window: { from: new Date(w.from).toISOString(), to: new Date(w.to).toISOString() },
    page: pageStats,
    paths,
    regions,
    totals: sums,
    agentLogs: logs,
    demoExit: demoCode,
  });
}

await main().catch((err: unknown) => {
  // Ctrl-C: the page's calls fail as Chromium closes; the signal's cleanup exits (130) once done.
  if (stopping) return;
  process.stderr.write(`bench:demo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
