// `anylat run [--config F]`: the scheduled agent, until SIGTERM or SIGINT.
import { parseArgs } from 'node:util';
import { Agent, SHUTDOWN_DEFAULTS, type WebContext, type WebHandle } from '../agent.ts';
import { formatDuration, parseDuration } from '../util/duration.ts';
import { UsageError } from '../util/errors.ts';
import { parseArgsOrUsage } from './args.ts';
import { configPath, loadConfig } from '../config/load.ts';
import { ConfigPoller, configToken, defaultCachePath, isConfigUrl } from '../config/remote.ts';
import type { AnylatConfig } from '../config/types.ts';
import { displayUrl } from '../sink/redact.ts';
import { ConfigError } from '../util/errors.ts';
import { loadConfigOrReport, reportProblems } from './config.ts';

/** How often a config URL is polled by default. */
export const DEFAULT_CONFIG_POLL_MS = 60_000;

export const RUN_USAGE = `usage: anylat run [--config FILE|URL] [--grace D] [--drain D] [--outbox]

Runs the agent: every service's rounds on its schedule, each round saved to the embedded store,
the store's outbox delivered to InfluxDB when the config has an influx section, and an "agent"
heartbeat every minute.

SIGTERM or SIGINT stops it: no new rounds; rounds in flight get --grace to finish (then they are
abandoned, nothing of them stored); InfluxDB gets --drain to take what is queued (the rest stays
in the store for the next start); exit 0. A second signal exits at once (130 for SIGINT, 143 for
SIGTERM): everything already stored stays, nothing is half-written.

SIGHUP reloads the config without losing a round: rounds in flight finish; services that did not
change keep their schedule phase and state; removed ones stop after their current round; added
ones start at their next slot. A config that does not validate is logged (every problem) and the
running one kept. Changes to store, influx, web, metrics and agent.id need a restart.

A config URL (http:// or https://, checked against the system's CA store) is fetched at start,
then polled (--config-poll, with If-None-Match/If-Modified-Since); a new version is applied like
SIGHUP, only when it validates (else every problem is logged and the running one kept). The last
good version is cached (--config-cache) so the agent starts while the server is down.

options:
  --config FILE|URL  the config file or URL (default: $ANYLAT_CONFIG, else ./anylat.yaml)
  --config-poll D    how often to poll a config URL; 0 = only at start and on SIGHUP (default 1m)
  --config-token-file F  send the bearer token in F to the config URL (or $ANYLAT_CONFIG_TOKEN_FILE,
                     or the token itself in $ANYLAT_CONFIG_TOKEN)
  --config-cache F   where the last good config of a URL is kept (default: beside the default
                     store: $STATE_DIRECTORY, else the working directory, anylat.config-cache.json)
  --grace D       how long rounds in flight may finish at shutdown (default ${formatDuration(SHUTDOWN_DEFAULTS.roundGraceMs)})
  --drain D       how long to deliver queued points to InfluxDB at shutdown (default ${formatDuration(SHUTDOWN_DEFAULTS.drainMs)})
  --outbox        queue InfluxDB lines in the store's outbox even without an influx section, for
                  another process to deliver ("anylat demo" does, from outside the lab)
  -h, --help      this text`;

const OPTIONS = {
  config: { type: 'string' },
  grace: { type: 'string' },
  drain: { type: 'string' },
  outbox: { type: 'boolean' },
  'config-poll': { type: 'string' },
  'config-token-file': { type: 'string' },
  'config-cache': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString()} ${line}\n`);
}

/** The embedded dashboard over the agent's own store handle, loaded only when `web` is configured. */
async function startDashboard(ctx: WebContext): Promise<WebHandle> {
  const { startWebServer } = await import('../web/index.ts');
  const listen = ctx.config.web!;
  // Setting web.listen to a non-loopback address in the config is the explicit consent the
  // dashboard asks for (it has no authentication and says so in the log).
  const server = await startWebServer({
    store: ctx.store,
    listen: { host: listen.host, port: listen.port },
    allowPublic: true,
    log: ctx.log,
    ...(ctx.metrics ? { metrics: ctx.metrics } : {}),
  });
  return { url: server.url, close: () => server.close() };
}

/** The config at start: from a URL (with its poller) or a file; an exit code when it does not load. */
async function initialConfig(
  spec: string,
  values: {
    config?: string | undefined;
    'config-poll'?: string | undefined;
    'config-token-file'?: string | undefined;
    'config-cache'?: string | undefined;
  },
): Promise<{ config: AnylatConfig; poller?: ConfigPoller } | number> {
  if (!isConfigUrl(spec)) {
    const config = loadConfigOrReport(values.config);
    return typeof config === 'number' ? config : { config };
  }
  const pollMs =
    values['config-poll'] === undefined
      ? DEFAULT_CONFIG_POLL_MS
      : parseDuration(values['config-poll'], '--config-poll');
  try {
    const token = configToken(values['config-token-file']);
    const poller = new ConfigPoller({
      url: spec,
      pollMs,
      cachePath: values['config-cache'] ?? defaultCachePath(),
      log,
      ...(token ? { token } : {}),
    });
    return { config: await poller.initial(), poller };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(reportProblems(err, displayUrl(spec)));
    return err.exitCode;
  }
}

/** SIGTERM/SIGINT: the first starts a drain (`signalled`), a second exits at once. */
function catchStopSignals(): { signalled: Promise<NodeJS.Signals>; stopping: () => boolean } {
  let stopping: NodeJS.Signals | undefined;
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log(
          `${signal} again: exiting now; stored rounds are safe, rounds in flight are lost, the outbox is kept for the next start`,
        );
        process.exit(SIGNAL_EXIT[signal] ?? 1);
      }
      stopping = signal;
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  return { signalled, stopping: () => stopping !== undefined };
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgsOrUsage(
    () => parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }),
    'run',
  );
  if (values.help) {
    process.stdout.write(`${RUN_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`run: unexpected argument "${positionals[0]}" (use --config FILE)`);
  const roundGraceMs =
    values.grace === undefined ? SHUTDOWN_DEFAULTS.roundGraceMs : parseDuration(values.grace, '--grace');
  const drainMs = values.drain === undefined ? SHUTDOWN_DEFAULTS.drainMs : parseDuration(values.drain, '--drain');

  const spec = configPath(values.config);
  const loaded = await initialConfig(spec, values);
  if (typeof loaded === 'number') return loaded;
  const { config, poller } = loaded;

  const agent = new Agent({ config, log, web: startDashboard, outbox: values.outbox === true });
  // Signals are caught before start so one arriving while the store opens still drains cleanly.
  const stop = catchStopSignals();
  const signalled = stop.signalled;

  const onHangup = () => {
    if (stop.stopping()) return;
    log(`SIGHUP: reloading ${poller ? displayUrl(spec) : spec}`);
    if (poller) void poller.check();
    else agent.reload(() => loadConfig(spec));
  };
  process.on('SIGHUP', onHangup);

  try {
    await agent.start();
  } catch (err) {
    process.off('SIGHUP', onHangup);
    await agent.stop({ roundGraceMs: 0, drainMs: 0 }).catch(() => undefined);
    throw err;
  }
  poller?.start((load) => agent.reload(load));
  const signal = await signalled;
  process.off('SIGHUP', onHangup);
  await poller?.stop();
  log(
    `${signal}: stopping (rounds in flight get ${formatDuration(roundGraceMs)}, InfluxDB ${formatDuration(drainMs)}; a second signal exits at once)`,
  );
  const r = await agent.stop({ roundGraceMs, drainMs });
  log(
    `stopped: ${r.roundsFinished} round${r.roundsFinished === 1 ? '' : 's'} finished, ${r.roundsAbandoned} abandoned, ${r.roundsNotStarted} not started` +
      (r.delivered !== undefined
        ? `; InfluxDB took ${r.delivered} lines, ${r.remaining} stay in the outbox for the next start`
        : ''),
  );
  // Sockets of an abandoned round may still be open; they must not keep a stopped agent alive.
  setTimeout(() => process.exit(0), 2_000).unref();
  return 0;
}
