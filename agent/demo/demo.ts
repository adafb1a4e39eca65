// `anylat demo` without the terminal: the lab, one `anylat run` agent per lab region inside its
// namespace, all writing to one store file, the web dashboard over that store in this (root
// namespace) process, and optionally the InfluxDB delivery of the agents' outboxes. The command
// and the end-to-end tests both start it through startDemo.
import { type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { favourSession, labDown, labUp, niced, spawnIn, type DownReport, type LabDescription } from '../lab/index.ts';
import type { InfluxTarget } from '../sink/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { AnylatError } from '../util/errors.ts';
import { startWebServer, type ListenSpec, type WebServer } from '../web/index.ts';
import { agentConfigYaml, DEFAULT_ROUNDS, demoAgentId, type DemoRounds } from './agent-config.ts';
import { DemoSinks } from './influx.ts';
import { ANYLAT_BIN } from '../util/package.ts';

/** How long an agent may take from spawn to "running" (tsx compiles the agent on its first start). */
const AGENT_READY_TIMEOUT_MS = 60_000;
/** What a demo agent gets for rounds in flight at shutdown; it is killed a little after that. */
const AGENT_GRACE_MS = 3_000;
const AGENT_KILL_AFTER_MS = AGENT_GRACE_MS + 4_000;
/** What InfluxDB gets at shutdown to take the queued lines (the rest stays in the outbox). */
const SINK_DRAIN_MS = 3_000;

export interface DemoOptions {
  /** topology file (default: the lab's agent/lab/topology.yaml) */
  topology?: string;
  /** where agent configs and logs go; created */
  dir: string;
  /** the store every agent writes */
  storePath: string;
  /** delete the store file (and its -wal/-shm) first, so the demo starts empty */
  freshStore?: boolean;
  /** where the dashboard listens; null: no dashboard */
  web?: ListenSpec | null;
  rounds?: DemoRounds;
  /** deliver the agents' outboxes to InfluxDB from this process */
  influx?: InfluxTarget;
  /** the lab's state directory (default: the lab's default) */
  labDir?: string;
  log?: (line: string) => void;
}

export interface DemoAgent {
  region: string;
  id: string;
  netns: string;
  configFile: string;
  logFile: string;
  pid: number;
  /** resolves with the exit code (or signal name) once the agent process has exited */
  exited: Promise<number | string>;
}

export interface DemoStopReport {
  agents: Array<{ region: string; exit: number | string; killed: boolean }>;
  influx?: { delivered: number; remaining: number };
  lab: DownReport | { error: string };
}

export interface RunningDemo {
  lab: LabDescription;
  /** the demo's own handle on the shared store (read the agents' rounds through it) */
  store: Store;
  storePath: string;
  web: WebServer | undefined;
  agents: DemoAgent[];
  sinks: DemoSinks | undefined;
  rounds: DemoRounds;
  startedAt: number;
  /** agents that exited while the demo ran, with the end of their log */
  onAgentExit(listener: (agent: DemoAgent, exit: number | string, logTail: string) => void): void;
  /**
   * Stops the agents (SIGTERM: rounds in flight finish), drains InfluxDB, closes the dashboard and
   * the store and takes the lab down. `fast`: SIGKILL the agents and skip the drain (a second Ctrl-C).
   * Never rejects; what went wrong is in the report.
   */
  stop(opts?: { fast?: boolean }): Promise<DemoStopReport>;
}

/** The last lines of a log file, for error messages. */
export function logTail(file: string, lines = 12): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function removeStore(path: string): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
}

function spawnAgent(
  lab: LabDescription,
  region: string,
  opts: { dir: string; storePath: string; rounds: DemoRounds; outbox: boolean },
): { agent: DemoAgent; child: ChildProcess } {
  const a = lab.agents.find((x) => x.region === region)!;
  const id = demoAgentId(region);
  const configFile = join(opts.dir, 'configs', `${id}.yaml`);
  const logFile = join(opts.dir, 'logs', `${id}.log`);
  writeFileSync(configFile, agentConfigYaml(lab, region, opts.storePath, opts.rounds));
  // The kernel names a process after the file it executed: a symlink to node makes `ps` show
  // which region each agent is (and `lab down` finds it in its namespace regardless).
  const link = join(opts.dir, 'bin', `anylat-${id}`);
  rmSync(link, { force: true });
  symlinkSync(process.execPath, link);
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The agents never talk to InfluxDB themselves (they cannot reach it from the lab).
  for (const k of ['INFLUX_URL', 'INFLUX_TOKEN', 'INFLUX_ORG', 'INFLUX_BUCKET']) delete env[k];
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    const args = [
      ANYLAT_BIN,
      'run',
      '--config',
      configFile,
      '--grace',
      `${AGENT_GRACE_MS}ms`,
      ...(opts.outbox ? ['--outbox'] : []),
    ];
    // Detached: a Ctrl-C in the demo's terminal reaches the demo only, which then stops each agent
    // once (a second signal would make an agent abandon its round).
    // At the lab's niceness: an agent stands in for a host of its own (lab/processes.ts, LAB_NICE).
    const [cmd, ...rest] = niced([link, ...args]);
    child = spawnIn(a.netns, cmd!, rest, { stdio: ['ignore', fd, fd], detached: true, env });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined)
    throw new AnylatError('ANYLAT_DEMO_AGENT', `cannot start the agent for ${region} (ip netns exec failed to spawn)`);
  // Detached, it leads its own session: favour it as a whole (autogroup), not only its threads.
  favourSession(child.pid);
  const exited = new Promise<number | string>((res) =>
    child.once('exit', (code, signal) => res(code ?? signal ?? 'unknown')),
  );
  return { agent: { region, id, netns: a.netns, configFile, logFile, pid: child.pid, exited }, child };
}

async function waitRunning(agent: DemoAgent, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + AGENT_READY_TIMEOUT_MS;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(agent.logFile, 'utf8');
    } catch {
      // not created yet
    }
    if (/ running \d+ services?/.test(text)) return;
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new AnylatError(
        'ANYLAT_DEMO_AGENT',
        `the agent for ${agent.region} exited (${child.exitCode ?? child.signalCode}) before it ran; the end of ${agent.logFile}:\n    ${logTail(agent.logFile).split('\n').join('\n    ')}`,
      );
    }
    if (Date.now() > deadline) {
      throw new AnylatError(
        'ANYLAT_DEMO_AGENT',
        `the agent for ${agent.region} was not running after ${AGENT_READY_TIMEOUT_MS / 1000} s; the end of ${agent.logFile}:\n    ${logTail(agent.logFile).split('\n').join('\n    ')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopAgent(
  agent: DemoAgent,
  child: ChildProcess,
  fast: boolean,
): Promise<{ region: string; exit: number | string; killed: boolean }> {
  const running = () => child.exitCode === null && child.signalCode === null;
  let killed = false;
  if (running()) {
    child.kill(fast ? 'SIGKILL' : 'SIGTERM');
    killed = fast;
    const timer = setTimeout(
      () => {
        if (running()) {
          killed = true;
          child.kill('SIGKILL');
        }
      },
      fast ? 0 : AGENT_KILL_AFTER_MS,
    );
    await agent.exited;
    clearTimeout(timer);
  }
  return { region: agent.region, exit: await agent.exited, killed };
}

type ExitListener = (agent: DemoAgent, exit: number | string, logTail: string) => void;

/** What the demo has started so far: the teardown undoes exactly this, also halfway through. */
interface DemoParts {
  options: DemoOptions;
  log: (line: string) => void;
  rounds: DemoRounds;
  dir: string;
  storePath: string;
  children: Array<{ agent: DemoAgent; child: ChildProcess }>;
  store: Store | undefined;
  web: WebServer | undefined;
  lab: LabDescription | undefined;
  sinks: DemoSinks | undefined;
  exitListeners: ExitListener[];
  /** set once the teardown began: agents exiting from then on are not news */
  stopping: boolean;
}

/**
 * Starts the demo. Throws (after undoing what it started) when the lab cannot come up (not Linux,
 * not root, a lab already up: EnvironmentError, exit 2), the dashboard's address is taken, or an
 * agent does not start.
 */
export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  const startedAt = Date.now();
  const parts: DemoParts = {
    options,
    log: options.log ?? (() => {}),
    rounds: options.rounds ?? DEFAULT_ROUNDS,
    dir: resolve(options.dir),
    storePath: resolve(options.storePath),
    children: [],
    store: undefined,
    web: undefined,
    lab: undefined,
    sinks: undefined,
    exitListeners: [],
    stopping: false,
  };
  for (const sub of ['configs', 'logs', 'bin']) mkdirSync(join(parts.dir, sub), { recursive: true });
  if (options.freshStore) removeStore(parts.storePath);

  let started: { store: Store; lab: LabDescription };
  try {
    started = await startParts(parts);
  } catch (err) {
    parts.log(`demo: could not start (${(err as Error).message.split('\n')[0]}); cleaning up`);
    // Only take down a lab this call brought up: ANYLAT_LAB_EXISTS means someone else's is running.
    if (parts.lab) await teardown(parts, true);
    else {
      if (parts.web) await parts.web.close().catch(() => undefined);
      parts.store?.close();
    }
    throw err;
  }

  const { children } = parts;
  let stopped: Promise<DemoStopReport> | undefined;
  return {
    lab: started.lab,
    store: started.store,
    storePath: parts.storePath,
    web: parts.web,
    agents: children.map((c) => c.agent),
    sinks: parts.sinks,
    rounds: parts.rounds,
    startedAt,
    onAgentExit: (listener) => parts.exitListeners.push(listener),
    stop: (opts = {}) => {
      // A second, fast stop while a graceful one runs: kill what is left, the lab still goes down.
      if (stopped && opts.fast) {
        for (const { child } of children)
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      stopped ??= teardown(parts, opts.fast === true);
      return stopped;
    },
  };
}

/** Opens the store, the dashboard, the lab and the agents, recording each in `parts` as it comes. */
async function startParts(parts: DemoParts): Promise<{ store: Store; lab: LabDescription }> {
  const { options, log, children } = parts;
  // The demo's handle creates the store (schema) before any agent, and serves the dashboard.
  const store = openStore(parts.storePath, { outbox: false, log });
  parts.store = store;
  if (options.web !== null) {
    parts.web = await startWebServer({
      store,
      listen: options.web ?? '127.0.0.1:8080',
      log,
      // The dashboard's own message names the config key (web.listen); the demo's is --web.
      bindRemedy: 'give the demo another one with --web ADDR (e.g. --web 127.0.0.1:8081)',
    });
  }
  const lab = await labUp({
    ...(options.topology ? { topology: options.topology } : {}),
    ...(options.labDir ? { dir: options.labDir } : {}),
    log: (l) => log(`lab: ${l}`),
  });
  parts.lab = lab;
  log(
    `starting ${lab.agents.length} agents (${lab.agents.map((a) => a.region).join(', ')}), one in each agent namespace`,
  );
  for (const a of lab.agents) {
    children.push(
      spawnAgent(lab, a.region, {
        dir: parts.dir,
        storePath: parts.storePath,
        rounds: parts.rounds,
        outbox: options.influx !== undefined,
      }),
    );
  }
  for (const { agent } of children) {
    void agent.exited.then((exit) => {
      if (parts.stopping) return;
      const tail = logTail(agent.logFile);
      for (const l of parts.exitListeners) l(agent, exit, tail);
    });
  }
  await Promise.all(children.map(({ agent, child }) => waitRunning(agent, child)));
  if (options.influx) {
    parts.sinks = new DemoSinks(store, options.influx, (l) => log(`influx: ${l}`));
    for (const { agent } of children) parts.sinks.add(agent.id);
  }
  return { store, lab };
}

/** Stops the agents, drains InfluxDB, closes the dashboard and the store, takes the lab down. */
async function teardown(parts: DemoParts, fast: boolean): Promise<DemoStopReport> {
  const { options, log } = parts;
  parts.stopping = true;
  const agents = await Promise.all(parts.children.map(({ agent, child }) => stopAgent(agent, child, fast)));
  const report: DemoStopReport = { agents, lab: { namespaces: [], processes: [] } };
  if (parts.sinks) report.influx = await parts.sinks.drain(fast ? 0 : SINK_DRAIN_MS);
  if (parts.web) await parts.web.close().catch((err: unknown) => log(`web: close failed: ${(err as Error).message}`));
  parts.store?.close();
  try {
    report.lab = await labDown({ ...(options.labDir ? { dir: options.labDir } : {}) });
  } catch (err) {
    report.lab = { error: (err as Error).message };
  }
  return report;
}
