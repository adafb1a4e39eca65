// The dashboard reads the store on its own thread: while it answers a long window, the thread that
// started it (the agent's, which times the probes) keeps running its timers. Measured with the
// agent's own LagMonitor, the one that flags samples a stall may have delayed, against the same
// request answered inline (on the caller's thread), which the monitor must catch.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openStore, type Store } from '../agent/store/index.ts';
import { LagMonitor } from '../agent/util/lag.ts';
import { startWebServer, type WebServer } from '../agent/web/index.ts';
import type { BenefitResponse, ServicesResponse } from '../agent/web/index.ts';
import { fillStore } from '../bench/lib/big-store.ts';
import { makeRound } from './support/rounds.ts';

const AGENTS = 3;
const ROUNDS = 12_000;
const GAP_MS = 20_000;
/** The longest stretch the monitor saw the loop held up within [t0, t1]. */
function longestStall(lag: LagMonitor, t0: number, t1: number): number {
  return Math.max(
    0,
    ...lag
      .windowsSince(t0)
      .filter((w) => w.from <= t1)
      .map((w) => w.to - w.from),
  );
}

/** Times `path` three times; per request its duration and the longest stall of this thread meanwhile. */
async function measure(server: WebServer, path: string): Promise<Array<{ ms: number; stall: number }>> {
  const lag = new LagMonitor({ thresholdMs: 1 }).start();
  const out: Array<{ ms: number; stall: number }> = [];
  try {
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 30));
      const t0 = performance.now();
      const res = await fetch(new URL(path, server.url));
      const body = (await res.json()) as BenefitResponse;
      const t1 = performance.now();
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.equal(body.regions.length, AGENTS);
      assert.equal(body.regions[0]!.headline?.rounds, ROUNDS / AGENTS, 'the whole store is in the window');
      await new Promise((r) => setTimeout(r, 5)); // let the monitor tick past the end
      out.push({ ms: t1 - t0, stall: longestStall(lag, t0, t1) });
    }
  } finally {
    lag.stop();
  }
  return out;
}

describe('web dashboard on its own thread', () => {
  let dir: string;
  let store: Store;
  let worker: WebServer;
  let inline: WebServer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'anylat-web-worker-'));
    const path = join(dir, 'anylat.db');
    store = openStore(path, { retention: { maxAgeMs: 30 * 86_400_000, maxRows: 1_000_000 }, outbox: false });
    fillStore(path, { rounds: ROUNDS, agents: AGENTS, gapMs: GAP_MS, now: Date.now() });
    worker = await startWebServer({ store, listen: '127.0.0.1:0', log: () => {} });
    inline = await startWebServer({ store, listen: '127.0.0.1:0', log: () => {}, inline: true });
  });

  after(async () => {
    await worker?.close();
    await inline?.close();
    store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sees the rounds the agent writes through its own handle', async () => {
    const res = await fetch(new URL('/api/services', worker.url));
    const body = (await res.json()) as ServicesResponse;
    assert.deepEqual(
      body.services.map((s) => [s.service, s.rounds]),
      [['web', ROUNDS]],
    );
  });

  it("keeps the caller's event loop running while it answers a long window; answered inline, the same request stalls it", async () => {
    // Benefit over every stored round: medians of 84,000 benefit rows and the site runs of
    // 84,000 paths, a small answer. Only where the work runs differs between the two servers.
    const path = '/api/benefit?since=400d';
    const off = await measure(worker, path);
    const on = await measure(inline, path);
    const show = (xs: typeof off) =>
      xs.map((x) => `${x.ms.toFixed(0)} ms request, longest stall ${x.stall.toFixed(1)} ms`).join('; ');
    // Inline, the query blocks this thread for most of the request: the monitor sees it.
    for (const x of on) assert.ok(x.stall >= x.ms / 2, `inline: ${show(on)}`);
    // On the worker, no stall comes near the request's length (best of three, against a
    // scheduling hiccup of this shared machine; inline, none of the three could pass).
    assert.ok(Math.min(...off.map((x) => x.stall / x.ms)) < 1 / 4, `worker: ${show(off)}`);
  });

  it("closes while a long query is still running, and the file stays the agent's", async () => {
    const extra = await startWebServer({ store, listen: '127.0.0.1:0', log: () => {} });
    // Answered or cut off, whichever comes first: what matters is that close() returns.
    const pending = fetch(new URL('/api/loss?since=400d', extra.url))
      .then((res) => res.arrayBuffer())
      .catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    await extra.close();
    await pending;
    await assert.rejects(fetch(new URL('/api/health', extra.url)), 'nothing listens any more');
    // The agent's handle writes on as before.
    store.saveRound(makeRound({ agent: 'agent-0', region: 'region-0', startedAt: Date.now() }));
    assert.equal(
      store.services().reduce((n, s) => n + s.rounds, 0),
      ROUNDS + 1,
    );
  });
});
