// The Fleet dashboard's "Config" row on a real InfluxDB 1.6, with heartbeats written by the agent's
// own line encoder: a fleet where one agent is still on the previous config (its last reload
// failed) must show two versions, and that agent, oldest first, older than the newest published
// config the panel's threshold is set from.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { heartbeatLine } from '../agent/core/line-protocol.ts';
import type { AgentHeartbeat } from '../agent/core/model.ts';
import { FLEET_PANELS } from '../dashboard/fleet.ts';
import { ROOT } from '../dashboard/generate.ts';
import { DashboardRunner, rows, type DashboardModel } from './fixtures/grafana/dashboard-runner.ts';
import { panelIntervalMs, type TimeRange } from './fixtures/grafana/grafana.ts';
import { startInfluxDB, type InfluxServer } from './support/influxdb.ts';

const MINUTE = 60_000;
const NOW = Date.parse('2026-03-01T12:00:00Z');
const OLD = { version: '0ld0ld0ld0ld', published_s: Date.parse('2026-02-20T09:00:00Z') / 1000 };
const NEW = { version: 'a11ce5a11ce5', published_s: Date.parse('2026-03-01T11:00:00Z') / 1000 };

function hb(agent: string, region: string, minutesAgo: number, config: typeof OLD, reloadOk?: number): string {
  const h: AgentHeartbeat = {
    agent: { id: agent, region },
    at: new Date(NOW - minutesAgo * MINUTE).toISOString(),
    version: '0.1.0',
    uptime_s: 3_600,
    loop_lag_p99_ms: 1,
    rounds_late: 0,
    outbox_rows: 0,
    dead_letters: 0,
    config_version: config.version,
    config_published_s: config.published_s,
  };
  if (reloadOk !== undefined) h.config_reload_ok = reloadOk;
  return heartbeatLine(h)!;
}

let influx: InfluxServer;
const range: TimeRange = {
  fromMs: NOW - 6 * 60 * MINUTE,
  toMs: NOW,
  intervalMs: panelIntervalMs(6 * 60 * MINUTE, 1000, MINUTE),
};
const dash = () =>
  JSON.parse(readFileSync(join(ROOT, 'provisioning/dashboards/anylat-fleet.json'), 'utf8')) as DashboardModel;

before(async () => {
  influx = await startInfluxDB('anylat');
  await influx.write([
    // eu-1 ran the old config, then reloaded the new one.
    hb('eu-1', 'eu-west-1', 90, OLD),
    hb('eu-1', 'eu-west-1', 30, NEW, 1),
    hb('eu-1', 'eu-west-1', 2, NEW, 1),
    // eu-2 was offered the new one, which its copy did not validate: it keeps the old one.
    hb('eu-2', 'eu-west-1', 60, OLD),
    hb('eu-2', 'eu-west-1', 3, OLD, 0),
    // ap-1 started on the new one and never reloaded.
    hb('ap-1', 'ap-southeast-2', 1, NEW),
  ]);
});

after(async () => {
  await influx?.stop();
});

describe('Fleet dashboard: config row', () => {
  it('counts the versions the agents run now, by their last heartbeat', async () => {
    const all = await DashboardRunner.open(dash(), range, (q) => influx.query(q), { region: '$__all' });
    assert.deepEqual(
      rows(await all.series(FLEET_PANELS.configVersions)).map((r) => r.versions),
      [2],
    );
    const ap = await DashboardRunner.open(dash(), range, (q) => influx.query(q), { region: 'ap-southeast-2' });
    assert.deepEqual(
      rows(await ap.series(FLEET_PANELS.configVersions)).map((r) => r.versions),
      [1],
    );
  });

  it("lists each agent's version, publication and last reload; the one behind is older than the newest", async () => {
    const r = await DashboardRunner.open(dash(), range, (q) => influx.query(q), { region: '$__all' });
    const table = rows(await r.series(FLEET_PANELS.configPerAgent, 'A'));
    const byAgent = Object.fromEntries(
      table.map((x) => [x.agent, { version: x.config_version, published: x.published, reload: x.reload_ok }]),
    );
    assert.deepEqual(byAgent, {
      'eu-1': { version: NEW.version, published: NEW.published_s * 1000, reload: 1 },
      'eu-2': { version: OLD.version, published: OLD.published_s * 1000, reload: 0 },
      'ap-1': { version: NEW.version, published: NEW.published_s * 1000, reload: null },
    });
    const [newest] = rows(await r.series(FLEET_PANELS.configPerAgent, 'B')).map((x) => x.newest);
    assert.equal(newest, NEW.published_s * 1000);
    // What the panel paints red: published before the threshold set from target B's `newest`.
    assert.deepEqual(
      table.filter((x) => (x.published as number) < (newest as number)).map((x) => x.agent),
      ['eu-2'],
    );
    const panel = r.panel(FLEET_PANELS.configPerAgent);
    const fromData = panel.transformations?.find((t) => t.id === 'configFromData');
    assert.deepEqual(fromData?.options, {
      configRefId: 'B',
      mappings: [{ fieldName: 'newest', handlerKey: 'threshold1' }],
    });
  });
});
