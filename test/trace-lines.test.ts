// The `trace` measurement as InfluxDB reads it: golden lines for one trace (a hop nobody answered,
// a named hop, the target; refresh test/golden/trace-lines.txt with ANYLAT_UPDATE_GOLDEN=1 after a
// deliberate schema change), and the same lines written to a real InfluxDB 1.x and read back as
// distinct points with the field types the schema states.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { PathTrace } from '../agent/core/model.ts';
import { traceLines } from '../agent/core/line-protocol.ts';
import { startInfluxDB, type InfluxServer } from './support/influxdb.ts';

const GOLDEN = new URL('./golden/trace-lines.txt', import.meta.url);

const TRACE: PathTrace = {
  agent: { id: 'eu-1', region: 'eu-west-1', labels: { team: 'net ops' } },
  service: 'web shop',
  trigger: 'site_change',
  reason: 'anycast udp: edge-eu -> edge-us',
  endpoint: 'anycast',
  kind: 'anycast',
  address: '198.18.0.10',
  at: '2025-03-01T12:00:00.123Z',
  traced_at: '2025-03-01T12:00:04.500Z',
  duration_ms: 1250.5,
  reached: true,
  hops: [
    { ttl: 1 },
    { ttl: 2, address: '10.77.0.2', rtt_ms: 1.234, name: 'edge "1".lab' },
    { ttl: 3, address: '198.18.0.10', rtt_ms: 72.5, reached: true },
  ],
};

describe('trace line protocol', () => {
  it('serializes to the golden lines: one point per hop, stamped round start + (hop − 1) ms', () => {
    const text = `${traceLines(TRACE).join('\n')}\n`;
    if (process.env.ANYLAT_UPDATE_GOLDEN === '1') writeFileSync(GOLDEN, text);
    assert.equal(text, readFileSync(GOLDEN, 'utf8'));
  });

  describe('in InfluxDB 1.x', () => {
    let influx: InfluxServer;
    before(async () => {
      influx = await startInfluxDB('anylat');
    });
    after(async () => {
      await influx?.stop();
    });

    it('every hop is its own point, with its types', async () => {
      await influx.write(traceLines(TRACE));
      await influx.write(traceLines(TRACE)); // a re-sent batch overwrites itself
      const [series] = await influx.query(
        `SELECT "hop", "address", "rtt_ms", "name", "reached" FROM "trace" WHERE "service" = 'web shop' AND "trigger" = 'site_change' AND "endpoint" = 'anycast'`,
      );
      assert.ok(series, 'no trace series');
      assert.deepEqual(series.columns, ['time', 'hop', 'address', 'rtt_ms', 'name', 'reached']);
      assert.deepEqual(
        series.values.map((v) => v.slice(1)),
        [
          [1, null, null, null, false],
          [2, '10.77.0.2', 1.234, 'edge "1".lab', false],
          [3, '198.18.0.10', 72.5, null, true],
        ],
      );
      const types = await influx.query('SHOW FIELD KEYS FROM "trace"');
      assert.deepEqual(Object.fromEntries(types[0]!.values.map((v) => [v[0], v[1]])), { address: 'string', hop: 'integer', name: 'string', reached: 'boolean', rtt_ms: 'float' });
    });
  });
});
