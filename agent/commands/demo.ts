// `anylat demo` (what `npm start` runs): the lab, one agent per region in its namespace, one
// store, the web dashboard, a live benefit table in the terminal; Ctrl-C takes it all down.
import { existsSync, realpathSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkHost, labDown } from '../lab/index.ts';
import {
  DEFAULT_ROUNDS,
  DEMO_SERVICE,
  everySeconds,
  MAX_DERIVED_TIMEOUT_MS,
  type DemoRounds,
} from '../demo/agent-config.ts';
import { startDemo, type DemoStopReport, type RunningDemo } from '../demo/demo.ts';
import { failureHints } from '../demo/expected.ts';
import { influxFromEnv, INFLUX_ENV } from '../demo/influx.ts';
import { labPresence } from '../demo/lab-busy.ts';
import { demoSnapshot, formatSnapshot } from '../demo/live-table.ts';
import { DemoScreen } from '../demo/screen.ts';
import { displayUrl, type InfluxTarget } from '../sink/index.ts';
import { formatDuration, parseDuration } from '../util/duration.ts';
import { EnvironmentError, UsageError } from '../util/errors.ts';
import { parseListen, type ListenAddress } from '../web/index.ts';
import { parseArgsOrUsage, parseCount } from './args.ts';
import { ANYLAT_BIN } from '../util/package.ts';

const DEFAULT_STORE = 'anylat-demo.db';
const DEFAULT_DIR = '/run/anylat-demo';
const DEFAULT_WEB = '127.0.0.1:8080';
/** A second signal within this long is the same Ctrl-C delivered twice (terminal and npm). */
const REPEAT_SIGNAL_MS = 1_000;

export const DEMO_USAGE = `usage: anylat demo [--duration D] [--web ADDR] [--topology FILE] [--store FILE]
                   [--interval D] [--samples N] [--no-transfer] [--dir DIR]

Builds the lab (Linux, root: see "anylat lab"), starts one "anylat run" agent in each agent
region's namespace, all writing to one embedded store, serves the web dashboard over that store,
and prints the benefit per region in the terminal after every round. Ctrl-C (or SIGTERM) stops
the agents, takes the lab down and exits 0. While it runs, break things from another terminal:
"sudo anylat lab fail origin eu-west", "sudo anylat lab fail edge eu-west", "sudo anylat lab heal".

options:
  --duration D     stop by itself after D (e.g. 2m); default: run until Ctrl-C
  --web ADDR       the dashboard's address (default ${DEFAULT_WEB}; loopback only)
  --topology FILE  lab topology (default agent/lab/topology.yaml)
  --store FILE     store file; default ./${DEFAULT_STORE}, emptied at every start. A file given
                   here is kept and added to.
  --interval D     round interval, whole seconds dividing a minute (default ${formatDuration(DEFAULT_ROUNDS.intervalMs)})
  --samples N      samples per path and round (default ${DEFAULT_ROUNDS.samples})
  --no-transfer    leave out service "demo-transfer" (on by default): downloads of 16KiB, 256KiB and
                   2MiB from every endpoint once a minute, half a round interval after a latency
                   round, through the lab links' 100 Mbit/s limits (the split-TCP gain grows with
                   the size). Every byte crosses the lab's one user-space wire process
  --dir DIR        agent configs and logs (default $ANYLAT_DEMO_DIR, else ${DEFAULT_DIR})
  -h, --help       this text

environment (optional: the agents' rounds also go to InfluxDB):
${Object.entries(INFLUX_ENV)
  .map(([k, v]) => `  ${k.padEnd(15)}  ${v}`)
  .join('\n')}`;

const OPTIONS = {
  duration: { type: 'string' },
  web: { type: 'string' },
  topology: { type: 'string' },
  store: { type: 'string' },
  interval: { type: 'string' },
  samples: { type: 'string' },
  transfer: { type: 'boolean' },
  'no-transfer': { type: 'boolean' },
  dir: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Linux and root, or an error (exit 2) that says what to run instead. */
function requireHost(): void {
  const why =
    process.platform !== 'linux'
      ? `it needs Linux (network namespaces and TUN devices); this is ${process.platform}`
      : process.getuid?.() !== 0
        ? 'it needs root: it builds the lab (network namespaces and TUN devices) its agents run in'
        : undefined;
  if (why === undefined) {
    checkHost(); // TUN device, iproute2: the lab's own messages say what to install
    return;
  }
  const instead =
    process.platform === 'linux'
      ? '  sudo npm start            (or: sudo npx anylat demo)\n'
      : '  run it in a Linux VM or a container started with --privileged\n';
  throw new EnvironmentError(
    'ANYLAT_DEMO_HOST',
    `demo: ${why}. Run it as:\n${instead}` +
      'Without the lab, compare two endpoints of a local reflector (no root needed):\n' +
      '  npx anylat reflector --bind 127.0.0.1 --bind ::1 --udp-port 8862 --tcp-port 8862 --http-port 8081 --site local &\n' +
      '  npx anylat compare 127.0.0.1 v6=::1 --udp-port 8862 --tcp-port 8862 --http-url http://127.0.0.1:8081/\n' +
      '(npx runs this checkout\'s anylat; "npm link" or "npm install -g ." puts anylat on the PATH)',
  );
}

function roundsFrom(values: {
  interval?: string;
  samples?: string;
  transfer?: boolean;
  'no-transfer'?: boolean;
}): DemoRounds {
  const rounds: DemoRounds = { ...DEFAULT_ROUNDS };
  // On by default; --transfer (the former opt-in) is still accepted.
  if (values['no-transfer'] && values.transfer)
    throw new UsageError('--transfer and --no-transfer contradict each other');
  if (!values['no-transfer']) rounds.transfer = true;
  if (values.interval !== undefined) {
    rounds.intervalMs = parseDuration(values.interval, '--interval');
    try {
      everySeconds(rounds.intervalMs);
    } catch (err) {
      throw new UsageError(`--interval: ${(err as Error).message}`);
    }
    if (rounds.intervalMs < 3_000)
      throw new UsageError(`--interval: at least 3s (a round takes about 2 s), got ${values.interval}`);
  }
  rounds.samples = parseCount(values.samples, '--samples', rounds.samples);
  // A round must fit well inside its interval: (samples - 1) × spacing + timeout, plus warm-up.
  const roundMs = (rounds.samples - 1) * rounds.spacingMs + (rounds.timeoutMs ?? MAX_DERIVED_TIMEOUT_MS);
  if (roundMs > rounds.intervalMs - 2_000) {
    throw new UsageError(
      `--samples: ${rounds.samples} samples ${rounds.spacingMs} ms apart take up to ${(roundMs / 1000).toFixed(1)} s per round, too long for a round every ${formatDuration(rounds.intervalMs)}; lower --samples or raise --interval`,
    );
  }
  return rounds;
}

/** How to run anylat from another terminal: `anylat` when on PATH, else through node, with sudo when this ran under it. */
function anylatCommand(): string {
  const bin = ANYLAT_BIN;
  const same = (p: string) => {
    try {
      return realpathSync(p) === realpathSync(bin);
    } catch {
      return false;
    }
  };
  const onPath = (process.env.PATH ?? '').split(':').some((d) => d !== '' && same(join(d, 'anylat')));
  const rel = relative(process.cwd(), bin);
  const base = onPath ? 'anylat' : rel === join('bin', 'anylat.js') ? 'node bin/anylat.js' : `node ${bin}`;
  return process.env.SUDO_USER ? `sudo ${base}` : base;
}

function introLines(
  demo: RunningDemo,
  influx: InfluxTarget | undefined,
  fresh: boolean,
  dir: string,
  labDir: string | undefined,
): string[] {
  const lab = demo.lab;
  const r = demo.rounds;
  const anylat = anylatCommand();
  const lines = [
    `anylat demo: ${demo.agents.length} agents (${demo.agents.map((a) => a.region).join(', ')}) measure service "${DEMO_SERVICE}", each from its own lab namespace:`,
    `  anycast ${lab.anycast} (edges ${lab.edges.map((e) => e.region).join(', ')}) against unicast ${lab.origins.map((o) => `${o.region}=${o.address}`).join(', ')}`,
    `  a round every ${formatDuration(r.intervalMs)}: ${r.samples} samples per path of udp (STAMP), tcp (echo), http, icmp and dns`,
    `  dashboard  ${demo.web ? demo.web.url : 'off'}`,
    `  store      ${demo.storePath}${fresh ? ' (emptied at start, kept after exit)' : ''}: ${anylat} report --store ${demo.storePath}`,
    `  agents     configs in ${join(dir, 'configs')}, logs in ${join(dir, 'logs')}`,
    `  influxdb   ${influx ? `${displayUrl(influx.url)} bucket ${influx.bucket} (delivered from this process: the lab cannot reach it)` : 'off (set INFLUX_URL, INFLUX_TOKEN, INFLUX_ORG, INFLUX_BUCKET to write there too)'}`,
  ];
  const hints = failureHints(labDir ? { dir: labDir } : {});
  if (hints.length > 0) {
    lines.push('try, in another terminal (as root), and watch the table and the page:');
    for (const h of hints) {
      lines.push(`  ${anylat} ${h.args}`);
      for (const e of h.effects) lines.push(`      ${e}`);
    }
    lines.push(`  ${anylat} lab heal   (everything back)`);
  }
  lines.push('Ctrl-C stops the agents and takes the lab down.');
  return lines;
}

function summary(report: DemoStopReport, storePath: string): string[] {
  const lines = [
    `agents stopped: ${report.agents.map((a) => `${a.region} ${a.killed ? 'killed' : `exit ${a.exit}`}`).join(', ')}`,
  ];
  if (report.influx)
    lines.push(
      `influxdb: ${report.influx.delivered} lines delivered at shutdown, ${report.influx.remaining} left in the store's outbox`,
    );
  if ('error' in report.lab) lines.push(`lab down FAILED: ${report.lab.error}`);
  else lines.push(`lab down: ${report.lab.namespaces.length} namespaces removed`);
  lines.push(`the rounds stay in ${storePath}: ${anylatCommand()} report --store ${storePath}`);
  return lines;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseDemoArgs(argv);
  if (values.help) {
    process.stdout.write(`${DEMO_USAGE}\n`);
    return 0;
  }
  const settings = demoSettings(values, positionals);
  const screen = new DemoScreen(process.stdout);
  const log = (line: string) => screen.log(line);

  // Signals are caught from here on: one that arrives while the lab builds still tears it down.
  const stop = new DemoStop(log);
  process.on('SIGINT', stop.onSignal);
  process.on('SIGTERM', stop.onSignal);

  const running = await buildDemo(settings, stop, log);
  const labDirOpt = running.lab.dir;
  running.onAgentExit((agent, exit, tail) =>
    log(`agent ${agent.id} exited (${exit}); the end of ${agent.logFile}:\n  ${tail.split('\n').join('\n  ')}`),
  );
  screen.setIntro(introLines(running, settings.influx, settings.fresh, settings.dir, labDirOpt));

  const table = startLiveTable(running, settings.rounds, screen, log);
  const deadline =
    settings.durationMs === undefined
      ? undefined
      : setTimeout(() => stop.request(`--duration ${values.duration}`), settings.durationMs);

  await stop.wait();
  table.stop();
  if (deadline) clearTimeout(deadline);
  screen.release();
  return stopDemo(running, stop, settings.storePath, table.tables(), log);
}

function parseDemoArgs(argv: string[]) {
  return parseArgsOrUsage(
    () => parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }),
    'demo',
  );
}

type DemoValues = ReturnType<typeof parseDemoArgs>['values'];

/** What the command line and the environment ask of this demo, checked. */
interface DemoSettings {
  values: DemoValues;
  durationMs: number | undefined;
  web: ListenAddress;
  rounds: DemoRounds;
  influx: InfluxTarget | undefined;
  dir: string;
  fresh: boolean;
  storePath: string;
}

function demoSettings(values: DemoValues, positionals: string[]): DemoSettings {
  if (positionals.length > 0)
    throw new UsageError(`demo: unexpected argument "${positionals[0]}" (see anylat demo --help)`);
  const durationMs = values.duration === undefined ? undefined : parseDuration(values.duration, '--duration');
  if (durationMs !== undefined && durationMs <= 0)
    throw new UsageError(`--duration: expected a duration greater than zero, got "${values.duration}"`);
  const web = parseListen(values.web ?? DEFAULT_WEB);
  const rounds = roundsFrom(values);
  const influx = influxFromEnv();
  requireHost();
  return {
    values,
    durationMs,
    web,
    rounds,
    influx,
    dir: resolve(values.dir ?? process.env.ANYLAT_DEMO_DIR ?? DEFAULT_DIR),
    fresh: values.store === undefined,
    storePath: resolve(values.store ?? DEFAULT_STORE),
  };
}

/** What ends the demo (a signal or --duration), and the demo to hurry when a second signal comes. */
class DemoStop {
  reason: string | undefined;
  demo: RunningDemo | undefined;
  private wake: (() => void) | undefined;
  private firstSignalAt = 0;
  private readonly log: (line: string) => void;

  constructor(log: (line: string) => void) {
    this.log = log;
  }

  readonly onSignal = (signal: NodeJS.Signals): void => {
    // Under `npm start`, Ctrl-C reaches the demo twice: from the terminal and forwarded by npm.
    if (this.reason !== undefined && Date.now() - this.firstSignalAt < REPEAT_SIGNAL_MS) return;
    if (this.reason !== undefined) {
      this.log(`${signal} again: killing the agents; the lab still goes down`);
      void this.demo?.stop({ fast: true });
      return;
    }
    this.reason = signal;
    this.firstSignalAt = Date.now();
    this.wake?.();
  };

  request(reason: string): void {
    this.reason ??= reason;
    this.wake?.();
  }

  async wait(): Promise<void> {
    if (this.reason === undefined) await new Promise<void>((r) => (this.wake = r));
  }
}

/** Clears what a crashed lab left, then starts the lab and the agents. */
async function buildDemo(settings: DemoSettings, stop: DemoStop, log: (line: string) => void): Promise<RunningDemo> {
  const { values, dir } = settings;
  const presence = labPresence();
  if (presence === 'running') {
    throw new EnvironmentError(
      'ANYLAT_LAB_EXISTS',
      'demo: a lab is already running on this machine (another "anylat demo", a test, or "anylat lab up"); only one can run at a time. Stop it with "sudo anylat lab down", then start the demo again',
    );
  }
  if (presence === 'leftovers') {
    log('removing what a crashed lab left behind ("anylat lab down")');
    await labDown();
  }
  log(
    `anylat demo: building the lab${values.topology ? ` from ${values.topology}` : ''} (about 5 s), then starting the agents`,
  );
  // The agents' configs, logs and links are rewritten at every start: the default directory, or
  // one this run created, goes when it exits, whichever way, so nothing stays behind in /run. A
  // directory the user named and that existed before is left alone.
  const chosen = values.dir !== undefined || process.env.ANYLAT_DEMO_DIR !== undefined;
  const removeDir = chosen && existsSync(dir) ? () => {} : () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
  stop.demo = await startDemo({
    dir,
    storePath: settings.storePath,
    freshStore: settings.fresh,
    web: settings.web,
    rounds: settings.rounds,
    ...(values.topology ? { topology: values.topology } : {}),
    ...(settings.influx ? { influx: settings.influx } : {}),
    log,
  });
  return stop.demo;
}

/** Redraws the benefit table once every agent finished a round; `tables` counts the tables drawn. */
function startLiveTable(
  running: RunningDemo,
  rounds: DemoRounds,
  screen: DemoScreen,
  log: (line: string) => void,
): { stop(): void; tables(): number } {
  const regions = running.agents.map((a) => ({ region: a.region, agent: a.id }));
  const seen = new Map<string, number>();
  let pendingSince: number | undefined;
  let tables = 0;
  const refresh = () => {
    const counts = new Map(regions.map((r) => [r.agent, 0]));
    for (const s of running.store.services())
      if (s.service === DEMO_SERVICE && counts.has(s.agent)) counts.set(s.agent, s.rounds);
    const advanced = regions.filter((r) => (counts.get(r.agent) ?? 0) > (seen.get(r.agent) ?? 0));
    if (advanced.length === 0) return;
    pendingSince ??= Date.now();
    // One table per round of every agent; an agent that stopped does not hold the others back.
    if (advanced.length < regions.length && Date.now() - pendingSince < rounds.intervalMs) return;
    for (const [agent, n] of counts) seen.set(agent, n);
    pendingSince = undefined;
    const snap = demoSnapshot(running.store, { service: DEMO_SERVICE, eventsSince: running.startedAt, regions });
    screen.setTable(formatSnapshot(snap, 3 * rounds.intervalMs));
    tables++;
  };
  const timer = setInterval(() => {
    try {
      refresh();
    } catch (err) {
      log(`table: ${(err as Error).message}`);
    }
  }, 1_000);
  return { stop: () => clearInterval(timer), tables: () => tables };
}

async function stopDemo(
  running: RunningDemo,
  stop: DemoStop,
  storePath: string,
  tables: number,
  log: (line: string) => void,
): Promise<number> {
  log(`${stop.reason}: stopping the agents (rounds in flight finish), then taking the lab down; Ctrl-C again to hurry`);
  const report = await running.stop();
  for (const line of summary(report, storePath)) log(line);
  if (tables === 0) log('no round was completed before the demo stopped');
  process.off('SIGINT', stop.onSignal);
  process.off('SIGTERM', stop.onSignal);
  // Sockets and timers of stopped parts must not keep the process alive.
  setTimeout(() => process.exit(process.exitCode ?? 0), 2_000).unref();
  return 'error' in report.lab ? 1 : 0;
}
