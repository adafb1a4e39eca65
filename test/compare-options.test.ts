// `anylat compare`'s flags and a config file's keys are one set of settings: every row of the option
// table (agent/commands/compare-options.ts) goes through both paths, the flag on a command line and
// the key in a config file, with a valid and an invalid value, and both must give the same round
// and the same message (the flag's name where the file has its path). A key of the schema that no
// flag sets (and NOT_FLAGS does not excuse), or a flag with no key, fails here.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseDocument } from 'yaml';
import { roundSpecOf } from '../agent/agent.ts';
import { compareSpec, COMPARE_USAGE } from '../agent/commands/compare.ts';
import {
  COMPARE_OPTIONS,
  compareDefaults,
  DOCS_FILE,
  flagOf,
  NOT_FLAGS,
  optionsTable,
  withOptionsTable,
  type CompareOption,
} from '../agent/commands/compare-options.ts';
import { PROTOCOLS } from '../agent/core/model.ts';
import { loadConfig } from '../agent/config/load.ts';
import { referenceRows } from '../agent/config/reference.ts';
import type { RoundSpec } from '../agent/round/run-round.ts';
import { ConfigError, UsageError } from '../agent/util/errors.ts';

const FIXTURES = resolve(import.meta.dirname, 'fixtures', 'config');
const CA = join(FIXTURES, 'ca.pem');
const KEY = join(FIXTURES, 'stamp.key');
const SHORT_KEY = join(FIXTURES, 'short.key');
// compare's agent id is this host's name, as a config's is when agent.id is not set
const HOST = hostname();

/**
 * A valid and an invalid value for each flag, typed as on a command line; a switch has no invalid
 * value. A new row of the table needs its values here.
 */
const VALUES: Record<string, { valid: string | true; invalid?: string }> = {
  samples: { valid: '7', invalid: '0' },
  spacing: { valid: '20ms', invalid: 'soon' },
  timeout: { valid: '1s', invalid: '0' },
  baseline: { valid: 'eu', invalid: 'us' },
  'udp-port': { valid: '8862', invalid: '70000' },
  'auth-key-file': { valid: KEY, invalid: SHORT_KEY },
  'site-tlv-bytes': { valid: '0', invalid: '100000' },
  'tcp-port': { valid: '443', invalid: '70000' },
  'no-echo': { valid: true },
  'connect-clock': { valid: 'monotonic', invalid: 'wall' },
  'echo-clock': { valid: 'kernel', invalid: 'sundial' },
  'tls-port': { valid: '8443', invalid: 'https' },
  sni: { valid: 'app.example.com', invalid: 'not a name' },
  'http-url': { valid: 'https://app.example.com/health', invalid: 'ftp://x/' },
  'site-header': { valid: 'x-served-by', invalid: 'bad header' },
  'no-warm': { valid: true },
  'ttfb-clock': { valid: 'monotonic', invalid: 'tsc' },
  insecure: { valid: true },
  'ca-file': { valid: CA, invalid: KEY },
  'dns-port': { valid: '53', invalid: '70000' },
  'dns-transport': { valid: 'tcp', invalid: 'quic' },
  'dns-qname': { valid: 'id.server', invalid: 'not a name' },
  'dns-qtype': { valid: 'aaaa', invalid: 'MX' },
  'no-nsid': { valid: true },
  'transfer-sizes': { valid: '16KiB,1MiB', invalid: '16KiB,20MiB' },
  'transfer-url': { valid: 'https://cdn.example.com/{size}.bin', invalid: 'ftp://x/{size}' },
  'transfer-port': { valid: '9080', invalid: '0' },
  'transfer-samples': { valid: '2', invalid: '101' },
  'transfer-timeout': { valid: '8s', invalid: '8' },
  'anycast-terminates-tcp': { valid: 'false', invalid: 'yes' },
  'max-in-flight': { valid: '4', invalid: '5000' },
  service: { valid: 'shop', invalid: 'my shop' },
  agent: { valid: 'probe-1', invalid: 'probe 1' },
  region: { valid: 'eu-west-1', invalid: 'eu west' },
};

/** Flags of compare's own (the output, the lag monitor, the help): no config key. */
const OWN = ['json', 'lag-threshold', 'help'];
/** `--protocol` chooses which `probes.<protocol>` entries exist; it is walked on its own below. */
const PROTOCOL = 'protocol';

/** Where compare's defaults differ from the config's; each is explained in compareDefaults. */
const COMPARE_OWN_DEFAULTS = [
  'name',
  'agent.region',
  'probes.tcp.port',
  'probes.tcp.echo',
  'probes.dns.port',
  'probes.http.url',
];

const ANYCAST = '192.0.2.1';
const dir = mkdtempSync(join(tmpdir(), 'anylat-compare-options-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The protocols a flag needs to take effect (a flag for a probe not asked for is left out). */
function protocolsOf(o: CompareOption): string[] {
  const probes = (o.keys ?? []).filter((k) => k.startsWith('probes.')).map((k) => k.split('.')[1]!);
  return probes.length > 0 ? probes : ['udp', 'tcp', 'http'];
}

/** The command line for `flag` (absent when undefined) with the protocols it needs. */
function argv(o: CompareOption, value: string | true | undefined, protocols: string[]): string[] {
  // TLS needs a server name or --insecure (the config's rule): a server name, unless the flag is --sni
  // (--insecure would also set the http and transfer probes' insecure)
  const tls = !protocols.includes('tls') ? [] : o.flag === 'sni' ? ['--insecure'] : ['--sni', 'app.example.com'];
  const flag = value === undefined ? [] : value === true ? [`--${o.flag}`] : [`--${o.flag}`, value];
  return [ANYCAST, 'eu=192.0.2.2', 'us-west=192.0.2.3', '--protocol', protocols.join(','), ...tls, ...flag];
}

/**
 * The config file that says what the command line says: the same endpoints and probes, the values
 * compare's own defaults stand for written out, and the flag's value after its key(s) as a user
 * writes it (the YAML parser reads the text; a comma list is a YAML list).
 */
function configFile(o: CompareOption, value: string | true | undefined, protocols: string[]): string {
  const doc = parseDocument(
    // hourly: a scheduled round's time limit is not what is compared (compare runs one round now)
    `agent: {region: local}\nservices:\n  - {name: adhoc, anycast: [${ANYCAST}], unicast: {eu: 192.0.2.2, us-west: 192.0.2.3}, schedule: "0 * * * *"}\n`,
  );
  const service = ['services', 0];
  for (const p of protocols) doc.setIn([...service, 'probes', p], doc.createNode({}));
  if (protocols.includes('tls')) {
    if (o.flag === 'sni') doc.setIn([...service, 'probes', 'tls', 'insecure'], true);
    else doc.setIn([...service, 'probes', 'tls', 'server_name'], 'app.example.com');
  }
  for (const [key, v] of Object.entries(compareDefaults(ANYCAST))) {
    const probe = key.startsWith('probes.') ? key.split('.')[1]! : undefined;
    if (probe !== undefined && !protocols.includes(probe)) continue;
    doc.setIn(key.startsWith('agent.') ? key.split('.') : [...service, ...key.split('.')], v);
  }
  if (value !== undefined) {
    for (const key of o.keys ?? []) {
      const probe = key.startsWith('probes.') ? key.split('.')[1]! : undefined;
      if (probe !== undefined && !protocols.includes(probe)) continue;
      const node = value === true ? doc.createNode(o.sets) : parseDocument(o.list ? `[${value}]` : value).contents;
      doc.setIn(key.startsWith('agent.') ? key.split('.') : [...service, ...key.split('.')], node);
    }
  }
  const file = join(dir, `${o.flag}.yaml`);
  writeFileSync(file, doc.toString());
  return file;
}

async function viaFlags(args: string[]): Promise<RoundSpec> {
  const parsed = await compareSpec(args);
  assert.notEqual(parsed, 'help');
  return (parsed as Exclude<typeof parsed, 'help'>).spec;
}

function viaConfig(file: string): RoundSpec {
  const config = loadConfig(file, { hostname: HOST, env: {} });
  return roundSpecOf(config.services[0]!, { id: config.agent.id, region: config.agent.region });
}

/** The messages of a failed command line: each `--flag: message`; returns the messages. */
async function flagProblems(args: string[], flag: string): Promise<string[]> {
  let error: unknown;
  try {
    await compareSpec(args);
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof UsageError, `${args.join(' ')}: expected a UsageError, got ${String(error)}`);
  assert.equal(error.exitCode, 2);
  const lines = error.message.split('\n');
  for (const line of lines) assert.ok(line.startsWith(`${flag}: `), `"${line}" names ${flag}`);
  return lines.map((l) => l.slice(flag.length + 2));
}

/** The messages of a failed config file: each `file:line:col: path: message`; returns the messages. */
function configProblems(file: string, paths: string[]): string[] {
  let error: unknown;
  try {
    loadConfig(file, { hostname: HOST, env: {} });
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof ConfigError, `${file}: expected a ConfigError, got ${String(error)}`);
  assert.equal(error.exitCode, 2);
  return error.problems.map((line) => {
    const m = /^[^:]+:\d+:\d+: (\S+): (.*)$/.exec(line);
    assert.ok(m, `"${line}" is file:line:col: path: message`);
    const at = m[1]!;
    assert.ok(
      paths.some((p) => at === p || at.startsWith(`${p}[`) || at.startsWith(`${p}.`)),
      `"${line}" names one of ${paths.join(', ')}`,
    );
    return m[2]!;
  });
}

/** `services[0].probes.tcp.port` for `probes.tcp.port`. */
function configPath(key: string): string {
  return key.startsWith('agent.') ? key : `services[0].${key}`;
}

const mapped = COMPARE_OPTIONS.filter((o) => o.keys !== undefined && o.flag !== PROTOCOL);

describe('compare options and config keys are one table', () => {
  it('every flag with a key has test values, and the flags of its own are only the output, the lag monitor and the help', () => {
    assert.deepEqual(
      mapped.map((o) => o.flag).filter((f) => VALUES[f] === undefined),
      [],
      'give the new flag a valid and an invalid value in VALUES',
    );
    assert.deepEqual(
      COMPARE_OPTIONS.filter((o) => o.keys === undefined).map((o) => o.flag),
      OWN,
    );
  });

  it('every key of a service in the schema has a flag (or a reason in NOT_FLAGS), and every flag sets a key the schema has', () => {
    const rows = referenceRows();
    const keys = new Set(rows.map((r) => r.path));
    const leaves = rows
      .filter((r) => r.path.startsWith('services[].') && r.kind !== 'mapping')
      .map((r) => r.path.slice('services[].'.length).replace(/\[\]$/, ''));
    const flagged = new Set(COMPARE_OPTIONS.flatMap((o) => o.keys ?? []));
    const positional = ['anycast', 'unicast'];
    assert.deepEqual(
      [...new Set(leaves)].filter((k) => !flagged.has(k) && NOT_FLAGS[k] === undefined && !positional.includes(k)),
      [],
      'add a row to COMPARE_OPTIONS in agent/commands/compare-options.ts (or a reason to NOT_FLAGS)',
    );
    for (const key of [...flagged].filter((k) => k !== 'probes')) {
      const path = key.startsWith('agent.') ? key : `services[].${key}`;
      assert.ok(
        keys.has(path),
        `--${COMPARE_OPTIONS.find((o) => o.keys?.includes(key))!.flag} sets ${path}, which the schema does not have`,
      );
    }
    for (const k of Object.keys(NOT_FLAGS))
      assert.ok(keys.has(`services[].${k}`), `NOT_FLAGS.${k} is a key of the schema`);
    // --protocol reaches every probe the schema knows
    const probes = rows
      .filter((r) => /^services\[\]\.probes\.[a-z]+$/.test(r.path))
      .map((r) => r.path.split('.').pop());
    assert.deepEqual(probes, [...PROTOCOLS]);
  });

  it("compare's own defaults are the listed ones, each a key of the schema", () => {
    assert.deepEqual(Object.keys(compareDefaults(ANYCAST)), COMPARE_OWN_DEFAULTS);
  });

  for (const o of mapped) {
    const v = VALUES[o.flag];
    const protocols = protocolsOf(o);
    it(`--${o.flag} (${o.keys!.join(', ')}): same round as the config key, valid and absent; same message when invalid`, async () => {
      assert.ok(v, `VALUES["${o.flag}"]`);
      // absent: compare's default is the config's, or compare's own written into the file
      assert.deepEqual(await viaFlags(argv(o, undefined, protocols)), viaConfig(configFile(o, undefined, protocols)));
      // a valid value
      const set = await viaFlags(argv(o, v.valid, protocols));
      assert.deepEqual(set, viaConfig(configFile(o, v.valid, protocols)));
      assert.notDeepEqual(set, await viaFlags(argv(o, undefined, protocols)), `--${o.flag} changes the round`);
      // an invalid value: the same messages, naming the flag where the file names its path
      if (v.invalid === undefined) return;
      const fromFlag = await flagProblems(argv(o, v.invalid, protocols), `--${o.flag}`);
      const fromFile = configProblems(configFile(o, v.invalid, protocols), o.keys!.map(configPath));
      assert.deepEqual([...new Set(fromFile)].sort(), [...new Set(fromFlag)].sort());
      assert.ok(fromFlag.length >= 1);
    });
  }

  it('--protocol: the probes a config lists; an unknown one is the same problem', async () => {
    const o = COMPARE_OPTIONS.find((x) => x.flag === PROTOCOL)!;
    const protocols = ['udp', 'dns', 'icmp'];
    assert.deepEqual(await viaFlags(argv(o, undefined, protocols)), viaConfig(configFile(o, undefined, protocols)));
    const flag = await flagProblems([ANYCAST, 'eu=192.0.2.2', '--protocol', 'udp,smtp'], '--protocol');
    const file = join(dir, 'smtp.yaml');
    writeFileSync(
      file,
      `agent: {region: local}\nservices:\n  - {name: adhoc, anycast: [${ANYCAST}], unicast: {eu: 192.0.2.2}, probes: {udp: , smtp: }}\n`,
    );
    assert.deepEqual(configProblems(file, ['services[0].probes.smtp']), flag);
    assert.deepEqual(flag, ['unknown protocol "smtp" (expected one of: udp, tcp, tls, http, icmp, dns, transfer)']);
  });

  it('the endpoints: the rules of anycast and unicast, the same messages', async () => {
    const cases: Array<[string[], string, string]> = [
      [['192.0.2.1', 'eu=bad_host!'], 'compare: endpoint "eu=bad_host!"', 'unicast: {eu: "bad_host!"}'],
      [['192.0.2.1', 'eu=300.1.2.3'], 'compare: endpoint "eu=300.1.2.3"', 'unicast: {eu: 300.1.2.3}'],
      [['192.0.2.1', 'nearest=192.0.2.2'], 'compare: endpoint "nearest=192.0.2.2"', 'unicast: {nearest: 192.0.2.2}'],
      [
        ['192.0.2.1', 'anycast-3=192.0.2.2'],
        'compare: endpoint "anycast-3=192.0.2.2"',
        'unicast: {anycast-3: 192.0.2.2}',
      ],
      [
        ['192.0.2.1,192.0.2.1', 'eu=192.0.2.2'],
        'compare: anycast address "192.0.2.1"',
        'anycast: [192.0.2.1, 192.0.2.1], unicast: {eu: 192.0.2.2}',
      ],
    ];
    for (const [args, where, yaml] of cases) {
      const flag = await flagProblems([...args, '--protocol', 'udp'], where);
      const file = join(dir, 'endpoints.yaml');
      const anycast = yaml.startsWith('anycast') ? '' : `anycast: [${args[0]}], `;
      writeFileSync(file, `agent: {region: local}\nservices:\n  - {name: adhoc, ${anycast}${yaml}, probes: {udp: }}\n`);
      const path = /^unicast: \{([^:]+):/.exec(yaml);
      assert.deepEqual(
        configProblems(file, [path ? `services[0].unicast.${path[1]}` : 'services[0].anycast[1]']),
        flag,
        args.join(' '),
      );
    }
    // `_` in a host name: tolerated by both (internal names), unlike compare before
    const spec = await viaFlags(['192.0.2.1', 'eu=eu_west.internal', '--protocol', 'udp']);
    assert.equal(spec.endpoints[1]!.host, 'eu_west.internal');
  });

  it('a rule between settings says the same thing, naming flags on the command line and keys in a file', async () => {
    const tls = await flagProblems([ANYCAST, 'eu=192.0.2.2', '--protocol', 'tls'], '--protocol');
    assert.deepEqual(tls, [
      'set --sni (the name the certificate is for, sent as SNI), or --insecure to skip certificate checks',
    ]);
    const url = await flagProblems(
      [ANYCAST, 'eu=192.0.2.2', '--protocol', 'transfer', '--transfer-url', 'https://cdn.example.com/a.bin'],
      '--transfer-url',
    );
    assert.deepEqual(url, [
      'the --transfer-url has no {size} but 3 sizes are asked (by default 16KiB, 256KiB, 2MiB): put {size} where the size in bytes goes, or give one size',
    ]);
    const file = join(dir, 'rules.yaml');
    writeFileSync(
      file,
      `agent: {region: local}\nservices:\n  - {name: adhoc, anycast: [${ANYCAST}], unicast: {eu: 192.0.2.2}, probes: {tls: , transfer: {url: "https://cdn.example.com/a.bin"}}}\n`,
    );
    assert.deepEqual(configProblems(file, ['services[0].probes.tls', 'services[0].probes.transfer.url']), [
      'set server_name (the name the certificate is for, sent as SNI), or insecure: true to skip certificate checks',
      'the url has no {size} but 3 sizes are asked (by default 16KiB, 256KiB, 2MiB): put {size} where the size in bytes goes, or give one size',
    ]);
    assert.equal(flagOf('probes.tls.insecure', true), '--insecure');
  });

  it('one round is not a schedule: a round longer than a scheduled one may take is fine', async () => {
    const spec = await viaFlags([
      ANYCAST,
      'eu=192.0.2.2',
      '--protocol',
      'udp',
      '--samples',
      '2000',
      '--spacing',
      '100ms',
    ]);
    assert.equal(spec.samples, 2000);
  });

  it('the help and docs/measurement.md list every flag from the table', () => {
    for (const o of COMPARE_OPTIONS) assert.ok(COMPARE_USAGE.includes(`--${o.flag}`), `--${o.flag} in the help`);
    const page = readFileSync(DOCS_FILE, 'utf8');
    assert.equal(page, withOptionsTable(page), 'docs/measurement.md is stale: run npm run docs:compare');
    for (const o of mapped) assert.ok(optionsTable().includes(`\`${o.keys![0]}\``), `${o.flag}'s key in the docs`);
  });
});
