// A config reload in the middle of rounds, against a real reflector on loopback and the real
// store: the rounds in flight finish and are stored, an unchanged service keeps every slot and its
// phase, a changed one runs its next round with the new settings, a removed one stops after its
// current round, an added one starts at its own phase; a config that does not validate changes
// nothing and reports the same lines `anylat config check` prints.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from '../agent/agent.ts';
import { loadConfig } from '../agent/config/load.ts';
import { phaseFor } from '../agent/schedule/timing.ts';
import { openStore } from '../agent/store/store.ts';
import { ConfigError } from '../agent/util/errors.ts';
import { udpReflectorForFile } from './support/udp-reflector.ts';

const files = udpReflectorForFile('r-site', 'anylat-reload-');
const { scratch } = files;
const AGENT_ID = 'reload-test';
const INTERVAL = 2_000;

const storePath = join(scratch, 'anylat.db');

/**
 * A 2-second service of `samples` UDP samples 40 ms apart: a round lasts a few hundred ms and has a
 * generous deadline, so a machine busy with other work does not abandon rounds on its own.
 */
function service(name: string, samples: number): string {
  return `  - name: ${name}
    anycast: 127.0.0.1
    unicast:
      lo-two: 127.0.0.2
    probes:
      udp: { port: ${files.udpPort} }
    samples: ${samples}
    spacing: 40ms
    timeout: 300ms
    schedule: "*/2 * * * * *"
    deadline: 1800ms
`;
}

function writeConfig(name: string, services: string): string {
  const file = join(scratch, `${name}.yaml`);
  writeFileSync(file, `agent:\n  id: ${AGENT_ID}\n  region: lab\nservices:\n${services}store:\n  path: ${storePath}\n`);
  return file;
}

function storedRounds(service: string): Array<{ id: number; scheduledMs: number; startedMs: number; sent: number }> {
  const s = openStore(storePath, { readonly: true });
  try {
    return s.rounds({ service }).map((r) => {
      const full = s.getRound(r.id)!;
      return {
        id: r.id,
        scheduledMs: Date.parse(r.scheduled_at!),
        startedMs: Date.parse(r.started_at),
        sent: full.paths[0]?.sent ?? 0,
      };
    });
  } finally {
    s.close();
  }
}

describe('config reload', () => {
  it('in the middle of rounds loses nothing and changes only what changed', async () => {
    const first = writeConfig('first', service('keep', 4) + service('change', 3) + service('gone', 4));
    const lines: string[] = [];
    const agent = new Agent({ config: loadConfig(first), log: (l) => lines.push(l) });
    await agent.start();
    let reloadAt = 0;
    let goneBefore = 0;
    let stopped = false;
    try {
      // Two rounds of each, then wait for a moment when `gone` (about to be removed) has a round in flight.
      const ready = Date.now() + 60_000;
      while (storedRounds('keep').length < 2 || storedRounds('gone').length < 2) {
        if (Date.now() > ready) assert.fail(`no rounds after 30 s:\n${lines.join('\n')}`);
        await sleep(100);
      }
      const inFlight = Date.now() + 60_000;
      for (;;) {
        const running = agent.running();
        if (running.includes('gone')) break;
        if (Date.now() > inFlight) assert.fail(`never saw a round of gone running:\n${lines.join('\n')}`);
        await sleep(5);
      }
      goneBefore = storedRounds('gone').length;
      const second = writeConfig('second', service('keep', 4) + service('change', 6) + service('added', 2));
      reloadAt = Date.now();
      const r = agent.reload(() => loadConfig(second));
      assert.equal(r.result, 'applied', lines.join('\n'));
      assert.deepEqual(
        { added: r.added, removed: r.removed, changed: r.changed, needsRestart: r.needsRestart },
        {
          added: ['added'],
          removed: ['gone'],
          changed: ['change'],
          needsRestart: [],
        },
      );
      assert.ok(agent.running().includes('gone'), "the removed service's round in flight was not cut short");

      // A config that does not validate: nothing changes, and the problems are config check's lines.
      const bad = writeConfig('bad', service('keep', 0));
      const failed = agent.reload(() => loadConfig(bad));
      assert.equal(failed.result, 'failed');
      let expected: string[] = [];
      try {
        loadConfig(bad);
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        expected = [...err.problems];
      }
      assert.ok(expected.length > 0 && expected.every((l) => l.startsWith(`${bad}:`)), expected.join('\n'));
      assert.deepEqual(failed.problems, expected);
      for (const p of expected) assert.ok(lines.includes(`config: ${p}`), `not logged: ${p}`);
      assert.deepEqual(
        agent.config.services.map((s) => s.name),
        ['keep', 'change', 'added'],
      );

      // Rounds go on for a few seconds under the new config.
      const settle = Date.now() + 60_000;
      while (
        storedRounds('added').length < 3 ||
        storedRounds('change').filter((x) => x.scheduledMs > reloadAt).length < 2
      ) {
        if (Date.now() > settle) assert.fail(`the new config's rounds did not come:\n${lines.join('\n')}`);
        await sleep(100);
      }
    } finally {
      const result = await agent.stop({ roundGraceMs: 5_000, drainMs: 0 });
      stopped = result.roundsAbandoned === 0;
    }
    assert.ok(stopped, 'a round was abandoned at shutdown');
    const log = lines.join('\n');
    assert.doesNotMatch(log, /abandoned|not stored|skipped/, log);

    // keep: one round per second across the reload, none lost, none doubled, the same phase.
    const keep = storedRounds('keep');
    const keepPhase = phaseFor(AGENT_ID, 'keep', INTERVAL);
    for (let i = 1; i < keep.length; i++)
      assert.equal(keep[i]!.scheduledMs - keep[i - 1]!.scheduledMs, INTERVAL, `keep lost or doubled a round:\n${log}`);
    for (const k of keep) assert.equal(k.scheduledMs % INTERVAL, keepPhase);
    assert.ok(keep.some((k) => k.scheduledMs < reloadAt) && keep.some((k) => k.scheduledMs > reloadAt + INTERVAL));
    assert.ok(keep.every((k) => k.sent === 4));

    // gone: its round in flight at the reload was stored; none was due after it.
    const gone = storedRounds('gone');
    assert.equal(gone.length, goneBefore + 1, log);
    assert.ok(gone.every((g) => g.scheduledMs <= reloadAt));

    // change: rounds started before the reload ran the old settings, every later one the new, no gap.
    const change = storedRounds('change');
    for (let i = 1; i < change.length; i++)
      assert.equal(change[i]!.scheduledMs - change[i - 1]!.scheduledMs, INTERVAL, log);
    for (const c of change)
      assert.equal(c.sent, c.startedMs < reloadAt ? 3 : 6, `round started ${new Date(c.startedMs).toISOString()}`);

    // added: starts after the reload at its own phase, one round per second.
    const added = storedRounds('added');
    const addedPhase = phaseFor(AGENT_ID, 'added', INTERVAL);
    assert.ok(added[0]!.scheduledMs > reloadAt);
    assert.ok(added[0]!.scheduledMs - reloadAt <= 2 * INTERVAL, 'the added service waited more than its first slot');
    for (const a of added) assert.equal(a.scheduledMs % INTERVAL, addedPhase);
    for (let i = 1; i < added.length; i++) assert.equal(added[i]!.scheduledMs - added[i - 1]!.scheduledMs, INTERVAL);
    assert.ok(added.every((a) => a.sent === 2));
  });
});
