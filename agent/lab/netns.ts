// Network namespaces through iproute2's `ip`: create, configure in batches, list, delete, and
// run a command inside one. Everything is addressed by namespace name; nothing here ever runs
// `ip` against the root namespace's addresses or routes.
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { AnylatError } from '../util/errors.ts';
import { LAB_PREFIX } from './topology.ts';

/** Where `ip netns add` puts its bind mounts. */
export const NETNS_DIR = '/run/netns';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion; never rejects for a non-zero exit (the result says it). */
export function run(
  file: string,
  args: string[],
  options: { input?: string; timeoutMs?: number } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { timeout: options.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
          reject(new AnylatError('ANYLAT_LAB_EXEC', `cannot run ${file}: ${err.message}`));
          return;
        }
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

/** Runs `ip ARGS`; throws with the command and ip's own message when it fails. */
export async function ip(args: string[], input?: string): Promise<string> {
  const r = await run('ip', args, input === undefined ? {} : { input });
  if (r.code !== 0) {
    throw new AnylatError(
      'ANYLAT_LAB_IP',
      `ip ${args.join(' ')} failed: ${r.stderr.trim() || `exit ${r.code}`}${input ? `\n  batch:\n    ${input.trim().split('\n').join('\n    ')}` : ''}`,
    );
  }
  return r.stdout;
}

/** Runs `tc` commands (one per line, no leading `tc`) inside namespace `netns`, in one exec. */
export async function tcBatch(netns: string, commands: string[]): Promise<void> {
  if (commands.length === 0) return;
  const input = `${commands.join('\n')}\n`;
  const r = await run('tc', ['-n', netns, '-batch', '-'], { input });
  if (r.code !== 0)
    throw new AnylatError(
      'ANYLAT_LAB_TC',
      `tc -n ${netns} failed: ${r.stderr.trim() || `exit ${r.code}`}\n  batch:\n    ${input.trim().split('\n').join('\n    ')}`,
    );
}

/** Runs `ip` commands (one per line, no leading `ip`) inside namespace `netns`, in one exec. */
export async function ipBatch(netns: string, commands: string[]): Promise<void> {
  if (commands.length === 0) return;
  await ip(['-n', netns, '-batch', '-'], `${commands.join('\n')}\n`);
}

/** Namespaces whose name starts with `anylat-` (the lab's, including leftovers of a crash). */
export function labNamespaces(): string[] {
  if (!existsSync(NETNS_DIR)) return [];
  return readdirSync(NETNS_DIR)
    .filter((n) => n.startsWith(LAB_PREFIX))
    .sort();
}

/** Creates a namespace; fails if it exists. */
export async function addNamespace(netns: string): Promise<void> {
  if (!netns.startsWith(LAB_PREFIX))
    throw new Error(`refusing to create namespace "${netns}": lab namespaces start with ${LAB_PREFIX}`);
  await ip(['netns', 'add', netns]);
}

/** Deletes a namespace if it exists. */
export async function deleteNamespace(netns: string): Promise<void> {
  if (!netns.startsWith(LAB_PREFIX)) throw new Error(`refusing to delete namespace "${netns}": not a lab namespace`);
  if (!existsSync(`${NETNS_DIR}/${netns}`)) return;
  await ip(['netns', 'delete', netns]);
}

/** Process ids running inside a namespace (`ip netns pids`). */
export async function namespacePids(netns: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', netns]);
  if (r.code !== 0) return [];
  return r.stdout
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number);
}

/**
 * Starts `cmd args` inside namespace `netns` (via `ip netns exec`, which execs the command, so
 * the child's pid is the command's). The options are `spawn`'s.
 */
export function spawnIn(netns: string, cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  return spawn('ip', ['netns', 'exec', netns, cmd, ...args], options);
}

/** Runs `cmd args` inside namespace `netns` to completion and returns its exit code and output. */
export async function execIn(
  netns: string,
  cmd: string,
  args: string[],
  options: { input?: string; timeoutMs?: number } = {},
): Promise<ExecResult> {
  return run('ip', ['netns', 'exec', netns, cmd, ...args], options);
}

/** Local addresses with a listening TCP socket or a bound UDP socket inside `netns` (`ss -N`). */
export async function listeningIn(netns: string): Promise<{ tcp: string[]; udp: string[] }> {
  const r = await run('ss', ['-N', netns, '-H', '-l', '-n', '-t', '-u']);
  const out = { tcp: [] as string[], udp: [] as string[] };
  if (r.code !== 0) return out;
  for (const line of r.stdout.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 5) continue;
    if (cols[0] === 'tcp') out.tcp.push(cols[4]!);
    else if (cols[0] === 'udp') out.udp.push(cols[4]!);
  }
  return out;
}
