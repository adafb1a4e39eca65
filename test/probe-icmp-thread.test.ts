// The icmp probe starts ping from a worker thread, never from the agent's main thread: spawn()
// forks there, and fork copies the agent's page tables (25-100 ms a spawn on a busy 2-CPU VM), which
// held every other probe's replies back for seconds per demo round. This file watches the main
// thread's child_process.spawn before the probe is loaded, so a probe that spawns here is caught.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';

const spawnedHere: string[] = [];
const original = childProcess.spawn;
childProcess.spawn = ((...args: Parameters<typeof original>) => {
  spawnedHere.push(String(args[0]));
  return original(...args);
}) as typeof original;
syncBuiltinESMExports();

test('icmp samples (20 at once) answer from ping, and the main thread spawned none of them', async () => {
  const { createIcmpProbe } = await import('../agent/probe/icmp.ts');
  const probe = createIcmpProbe({ endpoint: 'anycast', address: '127.0.0.1' }, { timeoutMs: 2_000 });
  const attempts = await Promise.all(Array.from({ length: 20 }, (_, i) => probe.sample(i)));
  await probe.close();
  for (const a of attempts) assert.equal(a.ok, true, JSON.stringify(a));
  assert.deepEqual(spawnedHere, [], 'ping was spawned on the main thread');
});
