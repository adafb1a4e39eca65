// `anylat report` only reads: run as an unprivileged user (uid 65534) it works on a store it may
// read in a folder it may not write (after a clean agent stop the -wal and -shm files are gone and
// SQLite would have to create one), and on a read-only mount, where nobody can write at all.
// Needs root to create the fixture and the mount; skipped otherwise.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../agent/store/index.ts';
import { ANYLAT_BIN, NOBODY, ROOT, assertNobodyCanRead } from './support/net.ts';
import { benefitRow, makeRound } from './support/rounds.ts';

const isRoot = process.getuid?.() === 0;
let scratch = '';
const mounts: string[] = [];

function makeStore(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'anylat.db');
  const store = openStore(path, { retention: { maxAgeMs: 86_400_000, maxRows: 1000 } });
  const now = Date.now();
  for (let i = 0; i < 3; i++)
    store.saveRound(
      makeRound({ agent: 'eu-1', service: 'web', startedAt: now - (10 - i) * 60_000, benefit: [benefitRow(20 + i)] }),
    );
  // A clean stop, as the agent's: SQLite checkpoints and removes the -wal and -shm files.
  store.close();
  assert.ok(!existsSync(`${path}-wal`) && !existsSync(`${path}-shm`));
  return path;
}

function reportAsNobody(store: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [ANYLAT_BIN, 'report', '--store', store, '--since', '1h', '--json'], {
    uid: NOBODY,
    gid: NOBODY,
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, HOME: '/nonexistent' },
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(() => {
  if (!isRoot) return;
  scratch = mkdtempSync(join(tmpdir(), 'anylat-report-ro-'));
  chmodSync(scratch, 0o755);
});

after(() => {
  for (const m of mounts.reverse()) spawnSync('umount', [m]);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('anylat report is read-only', { skip: !isRoot && 'needs root to set up the store and the mount' }, () => {
  it('as uid 65534, on a store it may read in a folder it may not write, after a clean agent stop', () => {
    assertNobodyCanRead();
    const store = makeStore(join(scratch, 'folder'));
    chmodSync(join(scratch, 'folder'), 0o755);
    chmodSync(store, 0o644);
    const r = reportAsNobody(store);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { rows: Array<{ rounds: number; saved_ms: number }> };
    assert.deepEqual(
      out.rows.map((row) => [row.rounds, row.saved_ms]),
      [[3, 21]],
    );
    assert.ok(!existsSync(`${store}-shm`) && !existsSync(`${store}-wal`), 'nothing was created beside the store');
  });

  it('as uid 65534, on a read-only mount', () => {
    const src = join(scratch, 'src');
    const store = makeStore(src);
    chmodSync(src, 0o777);
    chmodSync(store, 0o666);
    const ro = join(scratch, 'ro');
    mkdirSync(ro);
    assert.equal(spawnSync('mount', ['--bind', src, ro]).status, 0, 'bind mount');
    mounts.push(ro);
    assert.equal(spawnSync('mount', ['-o', 'remount,bind,ro', ro]).status, 0, 'remount read-only');
    const r = reportAsNobody(join(ro, 'anylat.db'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { rows: unknown[] }).rows.length, 1);
  });
});
