// docker-compose.yml cannot run here (no Docker); this checks what would make it fail: mounted
// paths that do not exist, Grafana missing an environment variable its provisioning reads, an
// agent config that does not validate or does not match the InfluxDB and reflector services.
import assert from 'node:assert/strict';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../agent/config/load.ts';
import { ROOT } from '../dashboard/generate.ts';

interface Service {
  image?: string;
  build?: string | { context: string; dockerfile?: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: Array<string | { type: string; source: string; target: string }>;
  depends_on?: Record<string, unknown>;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as Compose;

/** Compose's `${VAR:-default}` with nothing set in the environment: the default. */
function resolveDefaults(value: string): string {
  return value.replace(/\$\{(\w+)(?::?-([^}]*))?\}/g, (_, name: string, def?: string) => {
    if (def === undefined) throw new Error(`compose value ${value} needs ${name} with no default`);
    return def;
  });
}

function env(service: string): Record<string, string> {
  return Object.fromEntries(
    Object.entries(compose.services[service]?.environment ?? {}).map(([k, v]) => [k, resolveDefaults(String(v))]),
  );
}

function mounts(service: string): Array<{ source: string; target: string; bind: boolean }> {
  return (compose.services[service]?.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { source: v.source, target: v.target, bind: v.type === 'bind' };
    const [source = '', target = ''] = v.split(':');
    return { source, target, bind: source.startsWith('.') || source.startsWith('/') };
  });
}

describe('docker-compose.yml', () => {
  it('has InfluxDB 2, Grafana, one agent and one reflector', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ['agent', 'grafana', 'influxdb', 'reflector']);
    assert.match(compose.services.influxdb!.image!, /^influxdb:2\./);
    assert.match(compose.services.grafana!.image!, /^grafana\/grafana(-oss)?:\d+\./);
  });

  it('every mounted host path exists in the repository; named volumes are declared', () => {
    let binds = 0;
    for (const name of Object.keys(compose.services)) {
      for (const m of mounts(name)) {
        if (m.bind) {
          assert.ok(!isAbsolute(m.source), `${name}: ${m.source} must be relative to the repository`);
          assert.ok(existsSync(join(ROOT, m.source)), `${name}: mounted ${m.source} does not exist`);
          binds++;
        } else {
          assert.ok(compose.volumes && m.source in compose.volumes, `${name}: volume ${m.source} is not declared`);
        }
      }
    }
    assert.ok(binds >= 3);
  });

  it('the agent and reflector image is built from the repository’s Dockerfile', () => {
    const build = compose.services.reflector!.build;
    const context = typeof build === 'string' ? build : build!.context;
    const dockerfile = typeof build === 'object' && build.dockerfile ? build.dockerfile : 'Dockerfile';
    assert.ok(statSync(join(ROOT, context)).isDirectory());
    assert.ok(
      existsSync(join(ROOT, context, dockerfile)),
      `${dockerfile} missing: docker compose up --build would fail`,
    );
    assert.equal(
      compose.services.agent!.image,
      compose.services.reflector!.image,
      'the agent runs the image the reflector builds',
    );
  });

  it('Grafana gets ./provisioning where the dashboard provider looks, and every variable it reads', () => {
    const m = mounts('grafana').find((x) => x.source === './provisioning');
    assert.ok(m, 'provisioning is mounted');
    const provider = parse(readFileSync(join(ROOT, 'provisioning/dashboards/anylat.yaml'), 'utf8')) as {
      providers: Array<{ options: { path: string } }>;
    };
    assert.equal(provider.providers[0]!.options.path, `${m.target}/dashboards`);
    const wanted = new Set<string>();
    for (const f of [
      'datasources/influxdb.yaml',
      'alerting/anylat-contact-points.yaml',
      'alerting/anylat-rules.yaml',
    ]) {
      const text = readFileSync(join(ROOT, 'provisioning', f), 'utf8')
        .split('\n')
        .filter((l) => !l.trimStart().startsWith('#'))
        .join('\n');
      for (const [, name] of text.matchAll(/\$\{(\w+)\}/g)) wanted.add(name!);
    }
    assert.deepEqual([...wanted].sort(), [
      'ANYLAT_ALERT_WEBHOOK_URL',
      'ANYLAT_ANYCAST_SLOWER_MS',
      'ANYLAT_INFLUX_DATABASE',
      'ANYLAT_INFLUX_TOKEN',
      'ANYLAT_INFLUX_URL',
    ]);
    const g = env('grafana');
    for (const name of wanted) assert.ok(g[name], `grafana's environment lacks ${name}`);
    assert.equal(g.ANYLAT_INFLUX_URL, 'http://influxdb:8086');
    assert.equal(g.ANYLAT_INFLUX_TOKEN, env('influxdb').DOCKER_INFLUXDB_INIT_ADMIN_TOKEN);
  });

  it('InfluxDB creates the DBRP mapping for the database Grafana queries', () => {
    const init = mounts('influxdb').find((x) => x.target === '/docker-entrypoint-initdb.d');
    assert.ok(init);
    const script = join(ROOT, init.source, '10-anylat-dbrp.sh');
    accessSync(script, constants.X_OK);
    const text = readFileSync(script, 'utf8');
    assert.match(text, /influx v1 dbrp create/);
    assert.match(text, /DOCKER_INFLUXDB_INIT_BUCKET_ID/);
    assert.equal(env('influxdb').ANYLAT_INFLUX_DATABASE, env('grafana').ANYLAT_INFLUX_DATABASE);
  });

  it('the agent’s mounted config validates and points at the compose InfluxDB and reflector', () => {
    const agent = compose.services.agent!;
    const configArg = agent.command![agent.command!.indexOf('--config') + 1];
    const m = mounts('agent').find((x) => x.target === configArg);
    assert.ok(m, `${configArg} is mounted into the agent`);
    const config = loadConfig(join(ROOT, m.source), { env: env('agent') });
    const influx = env('influxdb');
    assert.equal(config.influx?.url, 'http://influxdb:8086');
    assert.equal(config.influx?.bucket, influx.DOCKER_INFLUXDB_INIT_BUCKET);
    assert.equal(config.influx?.org, influx.DOCKER_INFLUXDB_INIT_ORG);
    const service = config.services[0]!;
    assert.deepEqual(service.anycast, ['reflector']);
    const reflector = compose.services.reflector!.command!;
    const flag = (f: string) => Number(reflector[reflector.indexOf(f) + 1]);
    assert.equal(service.probes.udp?.port, flag('--udp-port'));
    assert.equal(service.probes.tcp?.port, flag('--tcp-port'));
    assert.equal(service.probes.http?.url, `http://reflector:${flag('--http-port')}/`);
  });
});
