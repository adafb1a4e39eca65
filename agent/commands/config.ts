// `anylat config check [--config F]`: validate a config file, list every problem (exit 2), or
// print what the agent would do with it.
import { parseArgs } from 'node:util';
import { PROTOCOLS } from '../core/model.ts';
import { configPath, loadConfig, type LoadOptions } from '../config/load.ts';
import { configToken, fetchConfig, isConfigUrl, parseRemoteConfig } from '../config/remote.ts';
import type { Secret } from '../core/secret.ts';
import type { AnylatConfig } from '../config/types.ts';
import { displayUrl } from '../sink/redact.ts';
import { phaseFor } from '../schedule/timing.ts';
import { formatDuration } from '../util/duration.ts';
import { ConfigError, UsageError } from '../util/errors.ts';
import { parseArgsOrUsage } from './args.ts';

export const CONFIG_USAGE = `usage: anylat config check [--config FILE|URL] [--agent ID] [--region R]

Validates a config file: YAML, \${ENV} substitution, every setting and the rules between them
(a deadline shorter than the interval, a round that fits its deadline, ...). Prints every problem
as "file:line:col: path: what is wrong" and exits 2, or prints a summary and exits 0.

A config shared by a fleet has "agents:" entries: --agent ID (and --region R, when the region
comes from the environment) prints the effective config that agent runs, its entries applied.

options:
  --config FILE   the config file (default: $ANYLAT_CONFIG, else ./anylat.yaml)
  --agent ID      check and print the config as agent ID sees it
  --region R      ... in region R
  -h, --help      this text`;

function ms(n: number): string {
  // Phases are arbitrary milliseconds: show them as seconds with a decimal, not "12345ms".
  return n >= 1000 && n % 1000 !== 0 ? `${(n / 1000).toFixed(1)}s` : formatDuration(n);
}

/** A few lines a person can check against what they meant. */
export function summarize(config: AnylatConfig): string {
  const a = config.agent;
  const lines = [
    `${config.file}: OK`,
    `version ${config.origin.version} (a hash of the text: every agent given the same text shows the same)`,
    `agent ${a.id} (region ${a.region}${a.lat !== undefined && a.lon !== undefined ? `, ${a.lat},${a.lon}` : ''}${
      Object.keys(a.labels).length
        ? `, labels ${Object.entries(a.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')}`
        : ''
    })`,
    ...(config.agentParts === undefined
      ? []
      : [
          config.agentParts.length === 0
            ? 'agents: no entry applies to this agent'
            : `agents: ${config.agentParts.map((i) => `agents[${i}]`).join(', ')} applied`,
        ]),
    `store ${config.store.path} (keeps ${formatDuration(config.store.retention.ageMs)}, at most ${config.store.retention.rows} rounds)`,
    config.influx
      ? `influx ${config.influx.url} bucket ${config.influx.bucket}${config.influx.org ? ` org ${config.influx.org}` : ''} (token set)`
      : 'influx: not configured (rounds stay in the store)',
    config.web
      ? `web dashboard on ${config.web.host.includes(':') ? `[${config.web.host}]` : config.web.host}:${config.web.port}${config.web.metrics ? ' (and /metrics)' : ''}`
      : 'web: off',
    ...(config.metrics
      ? [
          `metrics: Prometheus /metrics on ${config.metrics.host.includes(':') ? `[${config.metrics.host}]` : config.metrics.host}:${config.metrics.port}`,
        ]
      : []),
    `${config.services.length} service${config.services.length === 1 ? '' : 's'}:`,
  ];
  for (const s of config.services) {
    const protocols = PROTOCOLS.filter((p) => s.probes[p] !== undefined).join(',');
    lines.push(
      `  ${s.name}: anycast ${s.anycast.join(', ')} vs ${s.unicast.map((u) => `${u.name}=${u.host}`).join(', ')}; baseline ${s.baseline}`,
      `    ${protocols}; ${s.samples} samples ${formatDuration(s.spacingMs)} apart, timeout ${formatDuration(s.timeoutMs)}; schedule "${s.schedule}" (every ${formatDuration(s.intervalMs)}, phase ${ms(phaseFor(a.id, s.name, s.intervalMs))}, deadline ${formatDuration(s.deadlineMs)})`,
    );
  }
  return lines.join('\n');
}

/** Every problem on its own line, as editors and CI annotate them, then a count. */
export function reportProblems(err: ConfigError, file: string): string {
  const n = err.problems.length;
  return `${err.problems.join('\n')}\nanylat: ${n} problem${n === 1 ? '' : 's'} in ${file}\n`;
}

/**
 * Loads the config `--config` names (or the default path); on a mistake, writes every problem to
 * stderr and returns the exit code instead.
 */
export function loadConfigOrReport(flag: string | undefined, options: LoadOptions = {}): AnylatConfig | number {
  const file = configPath(flag);
  try {
    return loadConfig(file, options);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(reportProblems(err, file));
    return err.exitCode;
  }
}

function configTokenOrUndefined(): { token?: Secret } {
  const token = configToken(undefined);
  return token ? { token } : {};
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgsOrUsage(
    () =>
      parseArgs({
        args: argv,
        options: {
          config: { type: 'string' },
          agent: { type: 'string' },
          region: { type: 'string' },
          help: { type: 'boolean', short: 'h' },
        },
        allowPositionals: true,
        strict: true,
      }),
    'config',
  );
  if (values.help) {
    process.stdout.write(`${CONFIG_USAGE}\n`);
    return 0;
  }
  const [sub, ...extra] = positionals;
  if (sub !== 'check') {
    throw new UsageError(
      sub === undefined
        ? `config: expected a subcommand: check\n\n${CONFIG_USAGE}`
        : `config: unknown subcommand "${sub}" (expected: check)`,
    );
  }
  if (extra.length > 0) throw new UsageError(`config check: unexpected argument "${extra[0]}" (use --config FILE)`);
  const options: LoadOptions = {};
  if (values.agent !== undefined) options.agentId = values.agent;
  if (values.region !== undefined) options.region = values.region;
  const spec = configPath(values.config);
  let config: AnylatConfig | number;
  if (isConfigUrl(spec)) {
    const r = await fetchConfig(spec, { ...configTokenOrUndefined() });
    if (r.kind !== 'new') {
      process.stderr.write(
        `anylat: ${r.kind === 'failed' ? r.message : `${displayUrl(spec)} answered 304 Not Modified`}\n`,
      );
      return 2;
    }
    try {
      config = parseRemoteConfig(r.text, spec, {
        ...options,
        ...(r.publishedAtMs === undefined ? {} : { publishedAtMs: r.publishedAtMs }),
      });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(reportProblems(err, displayUrl(spec)));
      return err.exitCode;
    }
  } else {
    config = loadConfigOrReport(values.config, options);
  }
  if (typeof config === 'number') return config;
  process.stdout.write(`${summarize(config)}\n`);
  return 0;
}
