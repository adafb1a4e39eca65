// A real InfluxDB (the Debian `influxd` 1.6) on free loopback ports, for tests that must run the
// dashboards' and alerts' InfluxQL exactly as Grafana would send it. 1.6 has no v2 write API, so
// points go to `/write?precision=ms` — the same line protocol the agent's sink sends to 2.x/3.x.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.ts';

export const INFLUXD_BIN = '/usr/bin/influxd';

/** One InfluxQL series as `/query` returns it. */
export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

interface QueryResponse {
  results?: Array<{ statement_id?: number; series?: InfluxSeries[]; error?: string }>;
  error?: string;
}

export interface InfluxServer {
  url: string;
  database: string;
  /** POSTs line protocol (ms precision) and throws with InfluxDB's message when it is rejected. */
  write(lines: readonly string[]): Promise<void>;
  /** Runs one InfluxQL statement and returns its series (empty when nothing matched). */
  query(q: string): Promise<InfluxSeries[]>;
  stop(): Promise<void>;
}

async function waitForPing(url: string, child: ChildProcess, logs: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`influxd exited with code ${child.exitCode} before answering /ping:\n${logs()}`);
    try {
      const res = await fetch(`${url}/ping`);
      if (res.status === 204) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`influxd did not answer ${url}/ping within ${timeoutMs} ms:\n${logs()}`);
}

export interface InfluxOptions {
  /**
   * Shard group duration of the database's default retention policy (InfluxQL duration, e.g. `1d`).
   * 1.x answers SHOW TAG VALUES ... WHERE time per shard, so a tag retired 3 days ago leaves a
   * 1-day variable only when shards are shorter than that (and the index is tsi1).
   */
  shardDuration?: string;
}

/** Starts influxd in a temp directory, creates `database`, and returns a handle to stop it. */
export async function startInfluxDB(database = 'anylat', options: InfluxOptions = {}): Promise<InfluxServer> {
  if (!existsSync(INFLUXD_BIN)) {
    throw new Error(`${INFLUXD_BIN} not found: install the Debian package "influxdb" to run the dashboard query tests`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'anylat-influxd-'));
  const httpPort = await freePort();
  const rpcPort = await freePort();
  const config = `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = "${join(dir, 'meta')}"

[data]
  dir = "${join(dir, 'data')}"
  wal-dir = "${join(dir, 'wal')}"
  query-log-enabled = false
  # tsi1, not the in-memory index: only tsi1 honours a time condition in SHOW TAG VALUES, which the
  # dashboards' variables use so that a retired region leaves "All" (1.x's default inmem ignores it).
  index-version = "tsi1"

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  auth-enabled = false
  log-enabled = false

[continuous_queries]
  enabled = false
`;
  const configPath = join(dir, 'influxdb.conf');
  await writeFile(configPath, config);
  const child = spawn(INFLUXD_BIN, ['-config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const url = `http://127.0.0.1:${httpPort}`;

  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await waitForPing(url, child, () => output, 20_000);
  } catch (err) {
    await stop();
    throw err;
  }

  const query = async (q: string): Promise<InfluxSeries[]> => {
    const res = await fetch(`${url}/query?db=${encodeURIComponent(database)}&epoch=ms`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ q }).toString(),
    });
    const body = (await res.json()) as QueryResponse;
    if (!res.ok || body.error)
      throw new Error(`InfluxDB rejected the query (${res.status}): ${body.error ?? ''}\n${q}`);
    const result = body.results?.[0];
    if (result?.error) throw new Error(`InfluxDB query error: ${result.error}\n${q}`);
    return result?.series ?? [];
  };

  const write = async (lines: readonly string[]): Promise<void> => {
    const res = await fetch(`${url}/write?db=${encodeURIComponent(database)}&precision=ms`, {
      method: 'POST',
      body: lines.join('\n'),
    });
    if (res.status !== 204) throw new Error(`InfluxDB rejected the write (${res.status}): ${await res.text()}`);
  };

  await query(
    `CREATE DATABASE "${database}"${options.shardDuration ? ` WITH SHARD DURATION ${options.shardDuration}` : ''}`,
  );
  return { url, database, write, query, stop };
}
