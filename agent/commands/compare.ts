// `anylat compare <anycast> <name=unicast>...`: one round now, printed as a table or as JSON. Its
// flags are a thin mapping onto the config schema (compare-options.ts): they are written into the
// document a config file would hold for one service, which the config's own schema checks and the
// config loader's own code fills with defaults; only the command line's syntax is checked here.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { roundSpecOf } from '../agent.ts';
import { PROTOCOLS } from '../core/model.ts';
import { duration } from '../config/fields.ts';
import { serviceConfig } from '../config/load.ts';
import { configSchema } from '../config/schema.ts';
import { formatRound } from '../round/format.ts';
import { runRound, type RoundSpec } from '../round/run-round.ts';
import { UsageError } from '../util/errors.ts';
import { LagMonitor } from '../util/lag.ts';
import { parseArgsOrUsage } from './args.ts';
import { COMPARE_OPTIONS, compareDefaults, DEFAULT_PROTOCOLS, flagOf, optionsHelp } from './compare-options.ts';

export { DEFAULT_PROTOCOLS } from './compare-options.ts';

export const COMPARE_USAGE = `usage: anylat compare <anycast> <name=unicast>... [options]

Runs one round now: N samples per (endpoint, protocol), interleaved in random order each cycle,
then prints each path's statistics and the benefit (baseline − anycast) with its 95% CI. Each
option sets a key of a config file's service (docs/measurement.md lists which) and is checked
by the same rules.

  <anycast>                the anycast address; a comma list for several (Global Accelerator's
                           two static IPs): the first is "anycast" and the benefit's subject, the
                           others are measured as anycast-2, anycast-3, ...
  <name=unicast>           a regional endpoint: a name of your choice and its address or host name
                           (e.g. us-east-1=203.0.113.7); names are resolved once, before sampling

options:
${optionsHelp()}

Unreachable targets are results (loss 100%), not errors: the exit code is 0. Bad arguments exit 2.`;

const OPTIONS = Object.fromEntries(
  COMPARE_OPTIONS.map((o) => [
    o.flag,
    o.arg === undefined
      ? { type: 'boolean' as const, ...(o.flag === 'help' ? { short: 'h' } : {}) }
      : { type: 'string' as const },
  ]),
);

type Dict = Record<string, unknown>;

/**
 * A flag's text as the same text after a key in the file reads: a number or true/false is one
 * (`--tcp-port 70000` is `port: 70000`), anything else stays the text it is.
 */
function scalar(text: string): unknown {
  try {
    const v: unknown = parseYaml(text);
    if (typeof v === 'number' || typeof v === 'boolean') return v;
  } catch {
    // not YAML on its own (`*`, `{`): text
  }
  return text;
}

/** Sets `a.b.c` in a nested mapping, making the mappings on the way. */
function setKey(root: Dict, key: string, value: unknown): void {
  const parts = key.split('.');
  let at = root;
  for (const part of parts.slice(0, -1)) {
    if (typeof at[part] !== 'object' || at[part] === null) at[part] = {};
    at = at[part] as Dict;
  }
  at[parts[parts.length - 1]!] = value;
}

function getKey(root: Dict, key: string): unknown {
  let at: unknown = root;
  for (const part of key.split('.')) at = typeof at === 'object' && at !== null ? (at as Dict)[part] : undefined;
  return at;
}

/** The endpoints as typed: anycast addresses, then name=address pairs (a name only once). */
interface Positionals {
  anycast: string[];
  unicast: Array<{ name: string; address: string; arg: string }>;
}

function parsePositionals(positionals: string[]): Positionals {
  if (positionals.length === 0)
    throw new UsageError(
      'compare: give the anycast address and at least one name=unicast endpoint, e.g. anylat compare 198.51.100.10 us-east-1=203.0.113.7',
    );
  const [anycastArg, ...unicastArgs] = positionals as [string, ...string[]];
  if (anycastArg.includes('='))
    throw new UsageError(`compare: the first argument is the anycast address (no name=), got "${anycastArg}"`);
  if (unicastArgs.length === 0)
    throw new UsageError(
      'compare: no unicast endpoint to compare with; add at least one name=address, e.g. us-east-1=203.0.113.7',
    );
  // An IPv6 address may be bracketed on a command line, as in a URL.
  const bare = (a: string) => a.trim().replace(/^\[(.*)\]$/, '$1');
  const unicast: Positionals['unicast'] = [];
  for (const arg of unicastArgs) {
    const eq = arg.indexOf('=');
    if (eq < 0) throw new UsageError(`compare: "${arg}" is not name=address (e.g. us-east-1=203.0.113.7)`);
    const name = arg.slice(0, eq);
    if (unicast.some((u) => u.name === name)) throw new UsageError(`compare: endpoint name "${name}" is given twice`);
    unicast.push({ name, address: bare(arg.slice(eq + 1)), arg });
  }
  return { anycast: anycastArg.split(',').map(bare), unicast };
}

/** `--protocol`'s list: lower case, each once, in the order anylat runs them. */
function parseProtocols(text: string | undefined): string[] {
  if (text === undefined) return [...DEFAULT_PROTOCOLS];
  const list = text
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
  if (list.length === 0) throw new UsageError(`--protocol: expected a list of ${PROTOCOLS.join(',')}, got "${text}"`);
  return [
    ...PROTOCOLS.filter((p) => list.includes(p)),
    ...new Set(list.filter((p) => !PROTOCOLS.includes(p as never))),
  ];
}

/**
 * The config document the flags stand for: `agent` and one service with the probes `--protocol`
 * names. A flag for a probe that is not asked for is left out, as before; compare's own defaults
 * (compareDefaults) fill what the flags leave unset.
 */
function compareDocument(values: Record<string, string | boolean | undefined>, ends: Positionals): Dict {
  const service: Dict = {
    anycast: ends.anycast,
    unicast: Object.fromEntries(ends.unicast.map((u) => [u.name, u.address])),
  };
  const probes: Dict = {};
  for (const p of parseProtocols(values.protocol as string | undefined)) probes[p] = {};
  service.probes = probes;
  const agent: Dict = {};
  const set = (key: string, value: unknown) => {
    if (key.startsWith('agent.')) setKey(agent, key.slice('agent.'.length), value);
    else if (!key.startsWith('probes.') || key.split('.')[1]! in probes) setKey(service, key, value);
  };
  for (const o of COMPARE_OPTIONS) {
    const given = values[o.flag];
    if (o.keys === undefined || o.flag === 'protocol' || given === undefined || given === false) continue;
    const value =
      o.sets !== undefined
        ? o.sets
        : o.list
          ? String(given)
              .split(',')
              .map((s) => s.trim())
              .filter((s) => s !== '')
              .map(scalar)
          : scalar(String(given));
    for (const key of o.keys) set(key, value);
  }
  for (const [key, value] of Object.entries(compareDefaults(ends.anycast[0] ?? ''))) {
    if (getKey(key.startsWith('agent.') ? { agent } : service, key) === undefined) set(key, value);
  }
  return { agent, services: [service] };
}

/** Where a problem the schema found in compare's document came from on the command line. */
function whereOf(path: ReadonlyArray<PropertyKey>, ends: Positionals): string {
  const inService = path[0] === 'services';
  const rest = inService ? path.slice(2) : path;
  if (inService && rest[0] === 'unicast' && typeof rest[1] === 'string') {
    const u = ends.unicast.find((x) => x.name === rest[1]);
    return `compare: endpoint "${u?.arg ?? rest[1]}"`;
  }
  if (inService && rest[0] === 'anycast')
    return `compare: anycast address${typeof rest[1] === 'number' ? ` "${ends.anycast[rest[1]] ?? ''}"` : ''}`;
  const key = rest.filter((s) => typeof s === 'string').join('.');
  let best: { flag: string; length: number } | undefined;
  for (const o of COMPARE_OPTIONS) {
    for (const k of o.keys ?? []) {
      if ((key === k || key.startsWith(`${k}.`)) && (!best || k.length > best.length))
        best = { flag: `--${o.flag}`, length: k.length };
    }
  }
  return best?.flag ?? 'compare';
}

/** Parses and checks the command line into a round spec (reads key and CA files). */
export async function compareSpec(
  argv: string[],
): Promise<{ spec: RoundSpec; json: boolean; lagThresholdMs: number } | 'help'> {
  const { values, positionals } = parseArgsOrUsage(
    () => parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }),
    'compare',
  );
  if (values.help) return 'help';
  const ends = parsePositionals(positionals);
  const doc = compareDocument(values, ends);
  const problems: string[] = [];
  let lagThresholdMs = 1;
  if (values['lag-threshold'] !== undefined) {
    const lag = duration.safeParse(scalar(String(values['lag-threshold'])));
    if (lag.success) lagThresholdMs = lag.data;
    else problems.push(...lag.error.issues.map((i) => `--lag-threshold: ${i.message}`));
  }
  const schema = configSchema(process.cwd(), {
    oneRound: true,
    say: (key, value) => flagOf(key, value) ?? key,
  });
  const result = schema.safeParse(doc, { reportInput: false });
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(`${whereOf(issue.path, ends)}: ${issue.message}`);
  }
  if (problems.length > 0 || !result.success) throw new UsageError([...new Set(problems)].join('\n'));
  const parsed = result.data;
  const service = serviceConfig(parsed.services[0]!);
  const spec = roundSpecOf(service, { id: parsed.agent.id ?? hostname(), region: parsed.agent.region });
  return { spec, json: values.json === true, lagThresholdMs };
}

export async function run(argv: string[]): Promise<number> {
  const parsed = await compareSpec(argv);
  if (parsed === 'help') {
    process.stdout.write(`${COMPARE_USAGE}\n`);
    return 0;
  }
  const lag = new LagMonitor({ thresholdMs: parsed.lagThresholdMs }).start();
  let round;
  try {
    round = await runRound({ ...parsed.spec, lag });
  } finally {
    lag.stop();
  }
  process.stdout.write(parsed.json ? `${JSON.stringify(round, null, 2)}\n` : formatRound(round));
  return 0;
}
