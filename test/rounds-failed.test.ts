// Rounds measured but lost because the store cannot be written are counted. The agent runs with
// its store on a small tmpfs (as root; skipped otherwise); the test fills the disk, the store
// answers "database or disk is full", and the heartbeat (and its `agent` line for InfluxDB) says
// how many rounds were lost once there is room again.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from '../agent/agent.ts';
import { loadConfig } from '../agent/config/load.ts';
import { startReflector, type RunningReflector } from '../agent/reflector/index.ts';
import { openStore } from '../agent/store/store.ts';
import { freePort, freeUdpPort } from './support/net.ts';

const isRoot = process.getuid?.() === 0;
const scratch = mkdtempSync(join(tmpdir(), 'anylat-full-'));
const mnt = join(scratch, 'disk');
let mounted = false;
let reflector: RunningReflector | undefined;

before(() => {
  if (!isRoot) return;
  spawnSync('mkdir', ['-p', mnt]);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt], { encoding: 'utf8' });
  mounted = r.status === 0;
});

after(async () => {
  await reflector?.close();
  if (mounted) spawnSync('umount', [mnt]);
  rmSync(scratch, { recursive: true, force: true });
});

/** Fills the file system holding `dir` until it says ENOSPC. */
function fill(dir: string): string {
  const file = join(dir, 'filler');
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(16 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return file;
}

async function until(what: string, fn: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('rounds_failed', () => {
  it(
    'rounds lost to a full disk are counted in the heartbeat and the agent line',
    { skip: !isRoot && 'needs root to mount a tmpfs' },
    async () => {
      assert.ok(mounted, 'mounted a 2 MB tmpfs');
      const udp = await freeUdpPort();
      const tcp = await freePort();
      reflector = await startReflector({
        site: 'full',
        binds: ['127.0.0.1', '127.0.0.2'],
        udp: { port: udp },
        tcp: { port: tcp },
        http: false,
        log: () => {},
      });
      const file = join(scratch, 'anylat.yaml');
      writeFileSync(
        file,
        `agent: { id: full-disk, region: lab }
services:
  - name: loop
    anycast: 127.0.0.1
    unicast: { lo-two: 127.0.0.2 }
    probes: { udp: { port: ${udp} }, tcp: { port: ${tcp}, echo: true } }
    samples: 3
    spacing: 20ms
    timeout: 300ms
    schedule: "* * * * * *"
    deadline: 800ms
store: { path: ${join(mnt, 'anylat.db')} }
`,
      );
      const logs: string[] = [];
      const agent = new Agent({
        config: loadConfig(file),
        log: (l) => logs.push(l),
        outbox: true,
        heartbeatIntervalMs: 500,
      });
      await agent.start();
      let filler: string | undefined;
      try {
        await until('a round saved', () => agent.saved >= 1);
        filler = fill(mnt);
        await until('two rounds lost', () => agent.failed >= 2);
        assert.ok(
          logs.some((l) =>
            /round loop: measured but not stored \(.*(full|disk).*\); counted in rounds_failed/i.test(l),
          ),
          logs.join('\n'),
        );
        assert.equal(agent.heartbeat(false).rounds_failed, agent.failed);
        unlinkSync(filler);
        filler = undefined;
        const lost = agent.failed;
        await until('a round saved again', () => agent.saved >= 2 && agent.failed >= lost);
        await sleep(1200);
      } finally {
        if (filler) unlinkSync(filler);
        await agent.stop({ roundGraceMs: 1000, drainMs: 0 });
      }
      const store = openStore(join(mnt, 'anylat.db'), { readonly: true });
      try {
        const agentLines = store
          .readOutbox(100_000, { agent: 'full-disk' })
          .map((e) => e.line)
          .filter((l) => l.startsWith('agent,'));
        const counted = agentLines.map((l) => Number(/[ ,]rounds_failed=(\d+)i/.exec(l)?.[1] ?? -1));
        assert.ok(Math.max(...counted) >= 2, `agent lines: ${agentLines.join('\n')}`);
        const health = store.agentHealth().find((h) => h.agent === 'full-disk');
        assert.ok((health?.rounds_failed ?? 0) >= 2, JSON.stringify(health));
      } finally {
        store.close();
      }
    },
  );
});
