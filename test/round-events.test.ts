import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PathResult, RoundResult } from '../agent/core/model.ts';
import { deriveEvents } from '../agent/round/events.ts';
import { roundToLines } from '../agent/core/line-protocol.ts';

function path(
  endpoint: string,
  protocol: PathResult['protocol'],
  metric: PathResult['metric'],
  received: number,
  site?: string,
): PathResult {
  return {
    endpoint,
    kind: endpoint.startsWith('anycast') ? 'anycast' : 'unicast',
    address: '192.0.2.1',
    protocol,
    metric,
    scope: 'end_to_end',
    ...(site ? { site } : {}),
    sent: 10,
    received,
    loss_pct: ((10 - received) / 10) * 100,
    flagged: 0,
  };
}

function round(paths: PathResult[]): RoundResult {
  return {
    agent: { id: 'a', region: 'r' },
    service: 'shop',
    started_at: '2026-01-01T00:00:00.000Z',
    duration_ms: 1,
    paths,
    benefit: [],
  };
}

test('first round: no site change can be seen, a path already down is reported', () => {
  const { events, state } = deriveEvents(
    undefined,
    round([path('anycast', 'udp', 'rtt', 10, 'edge-fra'), path('eu', 'udp', 'rtt', 0)]),
  );
  assert.deepEqual(events, [{ type: 'path_down', service: 'shop', message: 'eu udp down (100% loss)' }]);
  assert.deepEqual(state, { sites: { 'anycast/udp': 'edge-fra' }, down: ['eu/udp'] });
});

test('site change per anycast protocol, merged into one event with from/to', () => {
  const prev = {
    sites: { 'anycast/udp': 'edge-fra', 'anycast/tcp': 'edge-fra', 'anycast-2/udp': 'edge-ams' },
    down: [],
  };
  const { events, state } = deriveEvents(
    prev,
    round([
      path('anycast', 'udp', 'rtt', 10, 'edge-lhr'),
      path('anycast', 'tcp', 'connect', 10, 'edge-lhr'),
      path('anycast', 'tcp', 'rtt', 10, 'edge-lhr'),
      path('anycast-2', 'udp', 'rtt', 10, 'edge-ams'),
      path('eu', 'udp', 'rtt', 10, 'eu-west-1'),
    ]),
  );
  assert.deepEqual(events, [
    {
      type: 'site_change',
      service: 'shop',
      message: 'anycast udp: edge-fra -> edge-lhr; anycast tcp: edge-fra -> edge-lhr',
      from: 'edge-fra',
      to: 'edge-lhr',
    },
  ]);
  assert.deepEqual(state.sites, { 'anycast/udp': 'edge-lhr', 'anycast/tcp': 'edge-lhr', 'anycast-2/udp': 'edge-ams' });
  // unicast sites are not tracked: a unicast endpoint answering from another site is not an anycast event
  assert.equal('eu/udp' in state.sites, false);
});

test('down then up: one event each way, several paths merged; the site survives an outage', () => {
  const r1 = deriveEvents(
    { sites: { 'anycast/udp': 'edge-fra' }, down: [] },
    round([path('anycast', 'udp', 'rtt', 0), path('eu', 'udp', 'rtt', 0), path('us', 'udp', 'rtt', 10)]),
  );
  assert.deepEqual(
    r1.events.map((e) => [e.type, e.message]),
    [['path_down', 'anycast udp down (100% loss); eu udp down (100% loss)']],
  );
  assert.deepEqual(r1.state, { sites: { 'anycast/udp': 'edge-fra' }, down: ['anycast/udp', 'eu/udp'] });
  const r2 = deriveEvents(
    r1.state,
    round([path('anycast', 'udp', 'rtt', 0), path('eu', 'udp', 'rtt', 9), path('us', 'udp', 'rtt', 10)]),
  );
  assert.deepEqual(
    r2.events.map((e) => [e.type, e.message]),
    [['path_up', 'eu udp up']],
    'anycast stays down: no second path_down',
  );
  const r3 = deriveEvents(
    r2.state,
    round([path('anycast', 'udp', 'rtt', 10, 'edge-ams'), path('eu', 'udp', 'rtt', 10), path('us', 'udp', 'rtt', 10)]),
  );
  assert.deepEqual(
    r3.events.map((e) => [e.type, e.from, e.to]),
    [
      ['site_change', 'edge-fra', 'edge-ams'],
      ['path_up', undefined, undefined],
    ],
  );
  assert.deepEqual(r3.state.down, []);
});

test('a path is down only when none of its metrics received anything', () => {
  const { events } = deriveEvents(undefined, round([path('eu', 'tcp', 'connect', 10), path('eu', 'tcp', 'rtt', 0)]));
  assert.deepEqual(events, [], 'connect works, only the echo fails: degraded, not down');
});

test('the state survives JSON and the events serialize as one point per type', () => {
  const r = round([path('anycast', 'udp', 'rtt', 0), path('eu', 'udp', 'rtt', 0)]);
  const first = deriveEvents(undefined, r);
  const again = deriveEvents(JSON.parse(JSON.stringify(first.state)), r);
  assert.deepEqual(again.events, [], 'still down: nothing new');
  const lines = roundToLines({ ...r, events: first.events }).filter((l) => l.startsWith('event'));
  assert.equal(lines.length, 1);
  assert.match(
    lines[0]!,
    /^event,agent=a,agent_region=r,service=shop,type=path_down message="anycast udp down \(100% loss\); eu udp down \(100% loss\)" \d+$/,
  );
});
