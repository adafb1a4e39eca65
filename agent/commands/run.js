// `anylat run [--config F]`: the scheduled agent, until SIGTERM or SIGINT.
import { parseArgs } from 'node:util';
import { Agent, SHUTDOWN_DEFAULTS } from "../agent.js";
import { formatDuration, parseDuration } from "../util/duration.js";
import { UsageError } from "../util/errors.js";
import { parseArgsOrUsage } from "./args.js";
import { configPath, loadConfig } from "../config/load.js";
import { loadConfigOrReport } from "./config.js";
export const RUN_USAGE = `usage: anylat run [--config FILE] [--grace D] [--drain D] [--outbox]

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

options:
  --config FILE   the config file (default: $ANYLAT_CONFIG, else ./anylat.yaml)
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
    help: { type: 'boolean', short: 'h' },
};
const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 };
function log(line) {
    process.stderr.write(`${new Date().toISOString()} ${line}\n`);
}
/** The embedded dashboard over the agent's own store handle, loaded only when `web` is configured. */
async function startDashboard(ctx) {
    const { startWebServer } = await import("../web/index.js");
    const listen = ctx.config.web;
    // Setting web.listen to a non-loopback address in the config is the explicit consent the
    // dashboard asks for (it has no authentication and says so in the log).
    const server = await startWebServer({ store: ctx.store, listen: { host: listen.host, port: listen.port }, allowPublic: true, log: ctx.log });
    return { url: server.url, close: () => server.close() };
}
export async function run(argv) {
    const { values, positionals } = parseArgsOrUsage(() => parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }), 'run');
    if (values.help) {
        process.stdout.write(`${RUN_USAGE}\n`);
        return 0;
    }
    if (positionals.length > 0)
        throw new UsageError(`run: unexpected argument "${positionals[0]}" (use --config FILE)`);
    const roundGraceMs = values.grace === undefined ? SHUTDOWN_DEFAULTS.roundGraceMs : parseDuration(values.grace, '--grace');
    const drainMs = values.drain === undefined ? SHUTDOWN_DEFAULTS.drainMs : parseDuration(values.drain, '--drain');
    const config = loadConfigOrReport(values.config);
    if (typeof config === 'number')
        return config;
    const agent = new Agent({ config, log, web: startDashboard, outbox: values.outbox === true });
    // Signals are caught before start so one arriving while the store opens still drains cleanly.
    let stopping;
    const signalled = new Promise((resolve) => {
        const onSignal = (signal) => {
            if (stopping) {
                log(`${signal} again: exiting now; stored rounds are safe, rounds in flight are lost, the outbox is kept for the next start`);
                process.exit(SIGNAL_EXIT[signal] ?? 1);
            }
            stopping = signal;
            resolve(signal);
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
    });
    const file = configPath(values.config);
    const onHangup = () => {
        if (stopping)
            return;
        log(`SIGHUP: reloading ${file}`);
        agent.reload(() => loadConfig(file));
    };
    process.on('SIGHUP', onHangup);
    try {
        await agent.start();
    }
    catch (err) {
        process.off('SIGHUP', onHangup);
        await agent.stop({ roundGraceMs: 0, drainMs: 0 }).catch(() => undefined);
        throw err;
    }
    const signal = await signalled;
    process.off('SIGHUP', onHangup);
    log(`${signal}: stopping (rounds in flight get ${formatDuration(roundGraceMs)}, InfluxDB ${formatDuration(drainMs)}; a second signal exits at once)`);
    const r = await agent.stop({ roundGraceMs, drainMs });
    log(`stopped: ${r.roundsFinished} round${r.roundsFinished === 1 ? '' : 's'} finished, ${r.roundsAbandoned} abandoned, ${r.roundsNotStarted} not started` +
        (r.delivered !== undefined ? `; InfluxDB took ${r.delivered} lines, ${r.remaining} stay in the outbox for the next start` : ''));
    // Sockets of an abandoned round may still be open; they must not keep a stopped agent alive.
    setTimeout(() => process.exit(0), 2_000).unref();
    return 0;
}
