// `anylat lab up|down|status|fail|heal|show|exec`: the emulated accelerator topology (Linux, root).
import { parseArgs } from 'node:util';
import { UsageError } from '../util/errors.ts';
import { formatDescription, formatLinks, formatStatus } from '../lab/format.ts';
import { checkHost, describeLab, fail, findNode, heal, labDown, labUp, requireLab } from '../lab/lab.ts';
import { labStatus } from '../lab/status.ts';
import { spawnIn } from '../lab/netns.ts';
import { labDir } from '../lab/state.ts';
import { loadTopology } from '../lab/topology.ts';

export const LAB_USAGE = `usage: anylat lab <command> [options]

Builds an emulated accelerator on this machine: agents in several regions, anycast edges holding
one address, origins running "anylat reflector", joined by links with delay, jitter and loss
(network namespaces and TUN devices; Linux and root).

commands:
  up [--topology FILE] [--json]     build it (default topology: agent/lab/topology.yaml)
  down                              remove every lab namespace and process, also after a crash
  status [--json]                   namespaces, processes, links with delays and counters, failures
  fail edge|origin REGION           take an edge or an origin down; anycast reroutes
  heal [edge|origin REGION]         bring one back, or everything
  show [--topology FILE] [--json]   check a topology file, print its links and round trips (no root)
  exec NODE -- CMD [ARG...]         run a command in a node's namespace, e.g.
                                    anylat lab exec agent/ap-south -- ping -c 3 198.18.0.10

The lab keeps its state in $ANYLAT_LAB_DIR (default /run/anylat-lab).`;

function json(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function options(
  argv: string[],
  allowed: { topology?: boolean; json?: boolean },
  command: string,
): { topology?: string; json: boolean; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { topology: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(`lab ${command}: ${(err as Error).message}`);
  }
  const v = parsed.values;
  if (v.topology !== undefined && !allowed.topology)
    throw new UsageError(`lab ${command}: --topology is not an option here (it belongs to "lab up" and "lab show")`);
  if (v.json && !allowed.json) throw new UsageError(`lab ${command}: --json is not an option here`);
  return {
    ...(v.topology !== undefined ? { topology: v.topology } : {}),
    json: v.json === true,
    positionals: parsed.positionals,
  };
}

function noPositionals(p: string[], command: string): void {
  if (p.length > 0) throw new UsageError(`lab ${command}: unexpected argument "${p[0]}"`);
}

export async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (wantsHelp(command, rest)) {
    process.stdout.write(`${LAB_USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  switch (command) {
    case 'up':
      return up(rest, command);
    case 'down':
      return down(rest, command);
    case 'status':
      return status(rest, command);
    case 'fail':
    case 'heal':
      return failOrHeal(rest, command);
    case 'show':
      return show(rest, command);
    case 'exec':
      return exec(rest);
    default:
      throw new UsageError(
        `lab: unknown command "${command}" (commands: up, down, status, fail, heal, show, exec; see anylat lab --help)`,
      );
  }
}

/** No command, or a help flag before `--` (after it, the flags belong to the command `exec` runs). */
function wantsHelp(command: string | undefined, rest: string[]): boolean {
  const beforeCmd = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  return (
    command === undefined ||
    command === '--help' ||
    command === '-h' ||
    command === 'help' ||
    beforeCmd.includes('--help') ||
    beforeCmd.includes('-h')
  );
}

async function up(rest: string[], command: string): Promise<number> {
  const o = options(rest, { topology: true, json: true }, command);
  noPositionals(o.positionals, command);
  const log = o.json ? undefined : (line: string) => process.stderr.write(`lab: ${line}\n`);
  const d = await labUp({ ...(o.topology !== undefined ? { topology: o.topology } : {}), ...(log ? { log } : {}) });
  if (o.json) json(d);
  else
    process.stdout.write(
      `${formatDescription(d)}\n\nnamespaces: ${[...d.agents, ...d.edges, ...d.origins].map((n) => n.netns).join(' ')}\n` +
        `try: anylat lab exec ${d.agents.at(-1)!.id} -- ping -c 3 ${d.anycast}\n     anylat lab status; anylat lab fail origin ${d.origins[0]!.region}; anylat lab down\n`,
    );
  return 0;
}

async function down(rest: string[], command: string): Promise<number> {
  const o = options(rest, {}, command);
  noPositionals(o.positionals, command);
  const r = await labDown();
  process.stdout.write(
    r.namespaces.length === 0 && r.processes.length === 0
      ? 'lab: nothing to remove\n'
      : `lab: removed ${r.namespaces.length} namespaces and stopped ${r.processes.length} processes${r.processes.length > 0 ? ` (${r.processes.map((p) => `${p.comm} ${p.pid}`).join(', ')})` : ''}\n`,
  );
  return 0;
}

async function status(rest: string[], command: string): Promise<number> {
  const o = options(rest, { json: true }, command);
  noPositionals(o.positionals, command);
  checkHost();
  const s = await labStatus();
  if (o.json) json(s);
  else process.stdout.write(`${formatStatus(s)}\n`);
  return 0;
}

async function failOrHeal(rest: string[], command: 'fail' | 'heal'): Promise<number> {
  const o = options(rest, { json: true }, command);
  const [kind, region, extra] = o.positionals;
  if (extra !== undefined) throw new UsageError(`lab ${command}: unexpected argument "${extra}"`);
  if (command === 'fail' && (kind === undefined || region === undefined))
    throw new UsageError('lab fail: expected "edge REGION" or "origin REGION", e.g. anylat lab fail origin us-east');
  if (kind !== undefined && kind !== 'edge' && kind !== 'origin' && !(command === 'heal' && kind === 'all')) {
    throw new UsageError(
      `lab ${command}: expected "edge" or "origin"${command === 'heal' ? ' (or nothing, or "all")' : ''}, got "${kind}"`,
    );
  }
  const d =
    command === 'fail'
      ? await fail(kind as 'edge' | 'origin', region!)
      : kind === undefined || kind === 'all'
        ? await heal()
        : await heal(kind as 'edge' | 'origin', region);
  if (o.json) json(d);
  else {
    const f = d.failures;
    const failed = [...f.edges.map((r) => `edge/${r}`), ...f.origins.map((r) => `origin/${r}`)];
    process.stdout.write(
      `lab: failed now: ${failed.length === 0 ? 'none' : failed.join(', ')}\n\n${formatDescription(d)}\n`,
    );
  }
  return 0;
}

function show(rest: string[], command: string): number {
  const o = options(rest, { topology: true, json: true }, command);
  noPositionals(o.positionals, command);
  const t = loadTopology(o.topology);
  const d = describeLab(
    {
      version: 1,
      phase: 'up',
      createdAt: new Date().toISOString(),
      topology: t,
      failures: { edges: [], origins: [] },
      processes: [],
    },
    labDir(),
  );
  if (o.json) json({ ...d, processes: undefined, dir: undefined });
  else process.stdout.write(`${formatDescription(d)}\n\n${formatLinks(d.links)}\n`);
  return 0;
}

function exec(rest: string[]): Promise<number> {
  const sep = rest.indexOf('--');
  const [name, ...cmd] = sep < 0 ? rest : [...rest.slice(0, sep), ...rest.slice(sep + 1)];
  if (name === undefined || cmd.length === 0)
    throw new UsageError(
      'lab exec: expected NODE -- CMD [ARG...], e.g. anylat lab exec agent/us-east -- ping -c 3 198.18.0.10',
    );
  checkHost();
  const node = findNode(requireLab().topology, name);
  const child = spawnIn(node.netns, cmd[0]!, cmd.slice(1), { stdio: 'inherit' });
  return new Promise<number>((resolve) => {
    child.on('error', (err) => {
      process.stderr.write(`anylat: lab exec: ${err.message}\n`);
      resolve(1);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
