// The lab's background processes (wire, edges, reflectors): started detached with their output in
// log files, recorded with their start time so a recycled pid is never mistaken for ours, and
// stopped with SIGTERM, then SIGKILL.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LAB_PREFIX } from './topology.ts';
import { siblingEntry } from '../util/package.ts';

/** One process the lab started. */
export interface LabProcess {
  role: 'wire' | 'edge' | 'origin';
  /** `wire`, `edge/us-east`, `origin/eu-west` */
  name: string;
  pid: number;
  /** /proc/PID/stat field 22: tells this process from a later one that got the same pid */
  startTime: string;
  netns?: string;
  log: string;
}

/** Marks the environment of every lab process, so a sweep after a crash can recognise them. */
export const LAB_ENV_MARK = 'ANYLAT_LAB_ROLE';

/**
 * The niceness of the processes that stand in for hosts of their own (edges, origins, a demo's
 * agents). On one machine they share the CPUs with whatever else runs there (a browser showing
 * the demo, test suites); at nice 0 a busy machine made them answer hundreds of ms late, which
 * the agents reported as loss on a healthy lab. At -10 each gets about nine times the CPU share of
 * an ordinary process when the machine is saturated; they use little, so they run when packets
 * arrive. Without root the kernel refuses it and `nice` runs the command unchanged.
 */
export const LAB_NICE = -10;

/** `argv` run under `nice -n LAB_NICE`: every thread of the process inherits it. */
export function niced(argv: readonly string[]): string[] {
  return ['nice', '-n', String(LAB_NICE), ...argv];
}

/**
 * Gives the session `pid` leads (a detached child: its own session) LAB_NICE as its autogroup's
 * niceness. Where the kernel groups processes by session (autogroup, on in most distributions:
 * /proc/sys/kernel/sched_autogroup_enabled), a process's own niceness only ranks it inside its
 * session, and every session gets an equal share of the CPUs: `nice -n -10` alone changed nothing
 * against other sessions' load. Measured on the shared 2-CPU VM at load average 24: three
 * demo-like agents abandoned 13 of 13 rounds at nice -10, and finished 20 of 20 without a lost
 * sample once their autogroups were at -10. Without autogroup support, or without root, this does
 * nothing (`niced` still applies).
 */
export function favourSession(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/autogroup`, String(LAB_NICE));
  } catch {
    // no autogroup in this kernel, or no permission: the process keeps its plain niceness
  }
}

/** The `--import` URL that lets a plain `node` run the lab's TypeScript entry points. */
export const TSX_IMPORT = import.meta.resolve('tsx');

/** Absolute path of a lab entry point (`wire-main.ts`, `edge-main.ts`). */
export function entry(file: string): string {
  return fileURLToPath(siblingEntry(import.meta.url, `./${file}`));
}

/** The start time of `pid` (clock ticks since boot), or undefined when it does not exist. */
export function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may hold spaces and parentheses: count fields after its closing ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = rest[0];
    if (state === 'Z' || state === 'X') return undefined;
    return rest[19];
  } catch {
    return undefined;
  }
}

/** Whether the recorded process still runs (same pid, same start time, not a zombie). */
export function isAlive(p: Pick<LabProcess, 'pid' | 'startTime'>): boolean {
  return startTimeOf(p.pid) === p.startTime;
}

/**
 * Starts a detached process (its own session: a Ctrl-C in the terminal that ran `lab up` does not
 * reach it) with stdout and stderr appended to `log`.
 */
export function startDaemon(opts: {
  role: LabProcess['role'];
  name: string;
  argv: string[];
  netns?: string;
  log: string;
  env?: NodeJS.ProcessEnv;
  /** run node under this name (a symlink to it in `binDir`), so ps and /proc/PID/comm show it */
  comm?: { name: string; binDir: string };
  /** run it at LAB_NICE (a host of its own in the lab) */
  favoured?: boolean;
}): LabProcess {
  let argv = opts.argv;
  if (opts.comm && argv[0] === process.execPath) {
    // The kernel names a process after the file it executed, so a symlink gives processes we do
    // not control (the reflector) an `anylat-` name from their first instruction on.
    mkdirSync(opts.comm.binDir, { recursive: true });
    const link = join(opts.comm.binDir, opts.comm.name);
    rmSync(link, { force: true });
    symlinkSync(process.execPath, link);
    argv = [link, ...argv.slice(1)];
  }
  if (opts.favoured) argv = niced(argv);
  const fd = openSync(opts.log, 'a');
  try {
    const [cmd, ...args] = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...argv] : argv;
    const child = spawn(cmd!, args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...opts.env, [LAB_ENV_MARK]: opts.name },
    });
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start ${opts.name}: ${cmd} did not run`);
    // Detached, it leads a session of its own (setsid before exec, and spawn returns after exec).
    if (opts.favoured) favourSession(child.pid);
    // The start time is read right away; `ip netns exec` execs in place, so it stays valid.
    const startTime = startTimeOf(child.pid) ?? '';
    return {
      role: opts.role,
      name: opts.name,
      pid: child.pid,
      startTime,
      ...(opts.netns ? { netns: opts.netns } : {}),
      log: opts.log,
    };
  } finally {
    closeSync(fd);
  }
}

/**
 * Processes that carry the lab's environment mark and a comm starting with `anylat-` (the wire
 * and the edges name themselves so): found even when the state file is gone.
 */
export function markedProcesses(): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    if (pid === process.pid) continue;
    try {
      const comm = readFileSync(`/proc/${d}/comm`, 'utf8').trim();
      if (!comm.startsWith(LAB_PREFIX)) continue;
      const env = readFileSync(`/proc/${d}/environ`, 'latin1');
      if (env.split('\0').some((kv) => kv.startsWith(`${LAB_ENV_MARK}=`))) out.push(pid);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Stops processes: SIGTERM, up to `graceMs` to exit, then SIGKILL. Each entry is killed only while
 * its start time still matches (a pid the kernel gave to someone else is left alone).
 */
export async function stopProcesses(
  procs: Array<{ pid: number; startTime: string }>,
  graceMs = 2000,
): Promise<Array<{ pid: number; comm: string }>> {
  const live = procs.filter((p) => p.pid > 1 && p.pid !== process.pid && isAlive(p));
  const stopped = live.map((p) => ({ pid: p.pid, comm: commOf(p.pid) }));
  for (const p of live) signal(p.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && live.some(isAlive)) await new Promise((r) => setTimeout(r, 25));
  for (const p of live) if (isAlive(p)) signal(p.pid, 'SIGKILL');
  const killDeadline = Date.now() + 2000;
  while (Date.now() < killDeadline && live.some(isAlive)) await new Promise((r) => setTimeout(r, 25));
  return stopped;
}

function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}
