// A real VictoriaMetrics (Debian's `victoria-metrics`) for tests: a free loopback port, a temp
// data directory, stop and restart on the same port and data, and queries that see freshly
// written points at once. It accepts InfluxDB line protocol on /api/v2/write and maps
// `measurement field=…` to the metric `measurement_field`, tags to labels. It stores every value
// as a float (so int vs float cannot be told apart) and, in the Debian build (1.79), keeps a
// string field as a series whose value is 0: the name and tags arrive, the text does not.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from './ports.ts';

export const VICTORIA_BIN = process.env.ANYLAT_VICTORIA_BIN ?? '/usr/bin/victoria-metrics';

export interface ExportedSeries {
  metric: Record<string, string> & { __name__: string };
  values: number[];
  timestamps: number[];
}

export interface VictoriaOptions {
  /** extra command-line flags, e.g. `-influx.maxLineSize=16KB` */
  flags?: string[];
}

export class Victoria {
  readonly port: number;
  readonly dataDir: string;
  private readonly flags: string[];
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private output = '';

  private constructor(port: number, dataDir: string, flags: string[]) {
    this.port = port;
    this.dataDir = dataDir;
    this.flags = flags;
  }

  /** Starts a fresh instance and waits for /health. */
  static async start(options: VictoriaOptions = {}): Promise<Victoria> {
    if (!existsSync(VICTORIA_BIN)) {
      throw new Error(
        `${VICTORIA_BIN} not found: install Debian's victoria-metrics package (apt-get install victoria-metrics), as .ci/run does`,
      );
    }
    const vm = new Victoria(await freePort(), mkdtempSync(join(tmpdir(), 'anylat-vm-')), options.flags ?? []);
    await vm.launch();
    return vm;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Everything the process printed (for failure messages). */
  log(): string {
    return this.output;
  }

  private async launch(): Promise<void> {
    const args = [
      `-httpListenAddr=127.0.0.1:${this.port}`,
      `-storageDataPath=${this.dataDir}`,
      // Test points carry today's timestamps; a long retention keeps them whatever the clock says.
      '-retentionPeriod=100y',
      // No deduplication: a point written twice shows up twice, so "exactly once" is checkable.
      '-dedup.minScrapeInterval=0s',
      // Make fresh points visible to queries at once.
      '-search.latencyOffset=0s',
      '-search.disableCache',
      '-loggerLevel=WARN',
      ...this.flags,
    ];
    const child = spawn(VICTORIA_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const onData = (d: Buffer) => {
      this.output += d.toString();
      if (this.output.length > 200_000) this.output = this.output.slice(-100_000);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `victoria-metrics exited during start (${child.exitCode ?? child.signalCode}):\n${this.output}`,
        );
      }
      try {
        const res = await fetch(`${this.url}/health`);
        if (res.ok && (await res.text()).trim() === 'OK') return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline)
        throw new Error(`victoria-metrics did not become healthy on ${this.url}:\n${this.output}`);
      await delay(50);
    }
  }

  /** Graceful stop (SIGTERM: it finishes requests in flight and flushes); data stays. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(killer);
  }

  /** Starts again on the same port and data directory. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** Stops and removes the data directory. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Makes points received so far searchable now instead of within about a second. */
  async flush(): Promise<void> {
    const res = await fetch(`${this.url}/internal/force_flush`);
    if (!res.ok) throw new Error(`force_flush: ${res.status} ${await res.text()}`);
  }

  /**
   * Raw samples of the series matching `match` (a series selector such as `{agent="eu-1"}`),
   * between `start` and `end` (epoch ms; default the last 24 h up to an hour ahead), each with
   * every value and timestamp VictoriaMetrics holds: duplicates included.
   */
  async export(
    match: string,
    opts: { start?: number; end?: number; extraLabels?: string[] } = {},
  ): Promise<ExportedSeries[]> {
    const now = Date.now();
    const params = new URLSearchParams({
      'match[]': match,
      start: String(((opts.start ?? now - 86_400_000) / 1000).toFixed(3)),
      end: String(((opts.end ?? now + 3_600_000) / 1000).toFixed(3)),
    });
    for (const l of opts.extraLabels ?? []) params.append('extra_label', l);
    await this.flush();
    const res = await fetch(`${this.url}/api/v1/export?${params}`);
    const text = await res.text();
    if (!res.ok) throw new Error(`export ${match}: ${res.status} ${text}`);
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as ExportedSeries)
      .map((s) => {
        // Export does not promise time order within a series; tests compare sorted samples.
        const idx = s.timestamps.map((_, i) => i).sort((a, b) => s.timestamps[a]! - s.timestamps[b]!);
        return { metric: s.metric, timestamps: idx.map((i) => s.timestamps[i]!), values: idx.map((i) => s.values[i]!) };
      });
  }

  /** An instant PromQL/MetricsQL query at `time` (epoch ms). */
  async query(
    expr: string,
    time: number = Date.now(),
    extraLabels: string[] = [],
  ): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
    const params = new URLSearchParams({ query: expr, time: String(time / 1000) });
    for (const l of extraLabels) params.append('extra_label', l);
    await this.flush();
    const res = await fetch(`${this.url}/api/v1/query?${params}`);
    const body = (await res.json()) as {
      status: string;
      data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
      error?: string;
    };
    if (body.status !== 'success') throw new Error(`query ${expr}: ${body.error ?? res.status}`);
    return body.data.result;
  }

  /** Polls `fn` until it returns a value other than undefined. */
  async waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await delay(100);
    }
  }
}
