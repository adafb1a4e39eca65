// docs/configuration.md is generated from the config schema (agent/config/reference.ts): this
// fails when the committed page differs from what the schema says now, and when a key of the
// schema has no meaning written for it. Refresh with `npm run docs:config` and review the diff.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  configReference,
  meaningOf,
  MEANINGS,
  DEFAULT_TEXT,
  REFERENCE_FILE,
  referenceRows,
} from '../agent/config/reference.ts';

describe('configuration reference', () => {
  const rows = referenceRows();
  const paths = rows.map((r) => r.path);

  it('walks the whole schema: every section, nested probe settings, required keys', () => {
    for (const p of [
      'agent.region',
      'services[].unicast',
      'services[].probes.tcp.echo_clock',
      'influx.bucket',
      'web.listen',
      'defaults.samples',
    ]) {
      assert.ok(paths.includes(p), `${p} in the reference`);
    }
    const req = (p: string) => rows.find((r) => r.path === p)?.required;
    assert.equal(req('agent.region'), true);
    assert.equal(req('agent.id'), false);
    assert.equal(req('services[].probes.http.url'), true);
    assert.equal(rows.find((r) => r.path === 'services[].samples')?.expected, 'a number of samples from 1 to 10000');
  });

  it('has a meaning for every key of the schema, and none for a key it does not have', () => {
    assert.deepEqual(
      paths.filter((p) => meaningOf(p) === undefined),
      [],
      'add the key to MEANINGS in agent/config/reference.ts',
    );
    assert.deepEqual(
      Object.keys(MEANINGS).filter((p) => !paths.includes(p)),
      [],
    );
    assert.deepEqual(
      Object.keys(DEFAULT_TEXT).filter((p) => !paths.includes(p)),
      [],
    );
  });

  it('docs/configuration.md is what the schema generates (refresh: npm run docs:config)', () => {
    assert.equal(
      readFileSync(REFERENCE_FILE, 'utf8'),
      configReference(),
      'docs/configuration.md is stale: run `npm run docs:config` and commit it',
    );
  });
});
