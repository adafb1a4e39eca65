// One config for a fleet: `agents:` entries matched by id or region add labels, override shared
// settings and services, and add services; each agent gets its own effective config from the same
// text (and so the same version); `anylat config check --agent ID` prints one agent's.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseConfig } from '../agent/config/load.ts';
import { runAnylat } from './support/net.ts';

const scratch = mkdtempSync(join(tmpdir(), 'anylat-fleet-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const FLEET = `agent:
  id: \${AGENT_ID}
  region: \${AGENT_REGION}
  labels: { env: prod }
defaults:
  probes: { udp: }
  samples: 20
services:
  - name: api
    anycast: [192.0.2.10, 192.0.2.11]
    unicast: { us-east-1: 203.0.113.10, eu-west-1: 203.0.113.20 }
agents:
  - id: eu-1
    labels: { rack: r1 }
    services:
      - name: api
        samples: 50
      - name: office
        anycast: 192.0.2.30
        unicast: { dublin: 198.51.100.7 }
  - region: [ap-southeast-2, ap-northeast-1]
    defaults:
      timeout: 3s
`;

function asAgent(id: string, region: string) {
  return parseConfig(FLEET, 'fleet.yaml', { env: { AGENT_ID: id, AGENT_REGION: region }, baseDir: scratch });
}

describe('agents: per-agent parts of a shared config', () => {
  it('an entry matched by id adds labels, overrides a shared service and adds one', () => {
    const c = asAgent('eu-1', 'eu-west-1');
    assert.deepEqual(c.agentParts, [0]);
    assert.deepEqual(c.agent, { id: 'eu-1', region: 'eu-west-1', labels: { env: 'prod', rack: 'r1' } });
    assert.deepEqual(
      c.services.map((s) => s.name),
      ['api', 'office'],
    );
    const [api, office] = c.services;
    assert.equal(api!.samples, 50);
    assert.deepEqual(api!.anycast, ['192.0.2.10', '192.0.2.11'], 'fields the entry does not set stay shared');
    assert.deepEqual(
      api!.unicast.map((u) => u.name),
      ['us-east-1', 'eu-west-1'],
    );
    assert.equal(office!.samples, 20, 'an added service inherits the shared defaults');
    assert.deepEqual(office!.probes, { udp: { port: 862 } });
    assert.deepEqual(office!.unicast, [{ name: 'dublin', host: '198.51.100.7' }]);
  });

  it('an entry matched by region overrides defaults; an agent no entry matches gets the shared part', () => {
    const ap = asAgent('ap-7', 'ap-northeast-1');
    assert.deepEqual(ap.agentParts, [1]);
    assert.equal(ap.services.length, 1);
    assert.equal(ap.services[0]!.timeoutMs, 3_000);
    assert.equal(ap.services[0]!.samples, 20);
    assert.deepEqual(ap.agent.labels, { env: 'prod' });
    const us = asAgent('us-1', 'us-east-1');
    assert.deepEqual(us.agentParts, []);
    assert.equal(us.services[0]!.timeoutMs, 2_000);
    // Same text, same version: what the fleet dashboard compares.
    assert.equal(us.origin.version, ap.origin.version);
    assert.equal(us.origin.version, asAgent('eu-1', 'eu-west-1').origin.version);
  });

  it("anylat config check --agent prints that agent's effective config", async () => {
    const file = join(scratch, 'fleet.yaml');
    writeFileSync(file, FLEET);
    const r = await runAnylat(['config', 'check', '--config', file, '--agent', 'eu-1', '--region', 'eu-west-1'], {
      env: { AGENT_ID: undefined, AGENT_REGION: undefined },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^agent eu-1 \(region eu-west-1, labels env=prod rack=r1\)$/m);
    assert.match(r.stdout, /^agents: agents\[0\] applied$/m);
    assert.match(r.stdout, /^ {2}office: anycast 192\.0\.2\.30 vs dublin=198\.51\.100\.7/m);
    assert.match(r.stdout, /^ {4}udp; 50 samples/m);
    const other = await runAnylat(['config', 'check', '--config', file, '--agent', 'us-1', '--region', 'us-east-1']);
    assert.equal(other.code, 0, other.stderr);
    assert.match(other.stdout, /^agents: no entry applies to this agent$/m);
    assert.doesNotMatch(other.stdout, /office/);
  });
});
