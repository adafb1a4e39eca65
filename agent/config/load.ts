// Loading a config: read, parse with positions, substitute `${ENV}`, validate, fill defaults. Every
// problem found on the way becomes one line `file:line:col: path: what is wrong, what is expected`,
// all of them at once, in file order, in one ConfigError (exit 2).
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { z } from 'zod';
import { ConfigError } from '../util/errors.ts';
import { defaultDeadline, cronInterval } from '../schedule/timing.ts';
import type { RoundProtocols } from '../round/run-round.ts';
import { DEFAULT_TRANSFER_SIZES } from '../probe/transfer.ts';
import { applyAgentParts } from './agents.ts';
import { Secret } from '../core/secret.ts';
import { configSchema, DEFAULTS } from './schema.ts';
import { formatPath, readSource, type Anchor, type PathSegment, type Problem } from './source.ts';
import type { AnylatConfig, ConfigOrigin, ServiceConfig } from './types.ts';
import { TRACE_CONFIG_DEFAULTS } from './types.ts';

/** Where `anylat run` and `config check` look when `--config` is not given. */
export const DEFAULT_CONFIG_FILE = 'anylat.yaml';

export interface LoadOptions {
  /** variables for `${VAR}`; default process.env */
  env?: NodeJS.ProcessEnv;
  /** the default agent id; default os.hostname() */
  hostname?: string;
  /** load the config as agent `agentId` sees it (`config check --agent`), whatever agent.id says */
  agentId?: string;
  /** and in this region, whatever agent.region says */
  region?: string;
}

/** `--config`, else `$ANYLAT_CONFIG`, else ./anylat.yaml. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? (env.ANYLAT_CONFIG || DEFAULT_CONFIG_FILE);
}

/** Reads and validates `file`. Throws ConfigError listing every problem. */
export function loadConfig(file: string, options: LoadOptions = {}): AnylatConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'a directory'
            : code;
    throw new ConfigError([`${file}: cannot read the config file: ${why}; pass --config FILE or set ANYLAT_CONFIG`]);
  }
  const baseDir = dirname(isAbsolute(file) ? file : resolve(file));
  let publishedAtMs: number | undefined;
  try {
    publishedAtMs = Math.round(statSync(file).mtimeMs);
  } catch {
    // read a moment ago; a file replaced in between keeps no mtime, which is only informative
  }
  return parseConfig(text, file, {
    ...options,
    baseDir,
    origin: { kind: 'file', ...(publishedAtMs === undefined ? {} : { publishedAtMs }) },
  });
}

/** The version of a config text: what `/metrics`, the heartbeat and the fleet dashboard show. */
export function configVersion(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

function isDict(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function format(file: string, p: Problem): string {
  const path = formatPath(p.path);
  return `${file}:${p.line}:${p.col}: ${path === '' ? '' : `${path}: `}${p.message}`;
}

/** Validates config text; `file` names it in messages, `baseDir` resolves relative paths in it. */
export function parseConfig(
  text: string,
  file: string,
  options: LoadOptions & { baseDir: string; origin?: Omit<ConfigOrigin, 'version'> },
): AnylatConfig {
  const env = options.env ?? process.env;
  const { source, problems, syntaxError, unusable } = readSource(text, env);
  if (!syntaxError) {
    const data = source.data ?? {};
    if (isDict(data) && isDict(data.agent)) {
      // Given on the command line: what the file says there (an unset \${AGENT_ID}) does not matter.
      const given = (key: 'id' | 'region', value: string) => {
        (data.agent as Record<string, unknown>)[key] = value;
        const at = formatPath(['agent', key]);
        for (let i = problems.length - 1; i >= 0; i--) if (formatPath(problems[i]!.path) === at) problems.splice(i, 1);
      };
      if (options.agentId !== undefined) given('id', options.agentId);
      if (options.region !== undefined) given('region', options.region);
    }
    const schema = configSchema(options.baseDir);
    let result = schema.safeParse(data, { reportInput: false });
    // The shared part is checked as written, then the agent's effective config (the shared part
    // with its `agents:` entries applied) by the same rules, its problems traced to the entry.
    let origin = (path: readonly PathSegment[]): PathSegment[] => [...path];
    let parts: number[] | undefined;
    let context = '';
    if (result.success && problems.length === 0 && result.data.agents !== undefined && isDict(data)) {
      const id = result.data.agent.id ?? options.hostname ?? hostname();
      const applied = applyAgentParts(data, id);
      context = ` (in agent ${id}'s config, with ${applied.matched.map((i) => `agents[${i}]`).join(', ') || 'no agents entry'} applied)`;
      origin = applied.origin;
      parts = applied.matched;
      result = schema.safeParse(applied.data, { reportInput: false });
    }
    if (result.success && problems.length === 0) {
      const config = build(result.data, file, options.hostname ?? hostname(), env, options.baseDir);
      config.origin = { kind: 'file', ...options.origin, version: configVersion(text) };
      if (parts !== undefined) config.agentParts = parts;
      return config;
    }
    for (const issue of result.error?.issues ?? []) {
      const anchor: Anchor = (issue as { params?: { anchor?: Anchor } }).params?.anchor ?? 'value';
      const from = origin(issue.path as PathSegment[]);
      const at = source.locate(from, anchor);
      if (unusable.has(formatPath(at.path))) continue;
      // A problem in the shared part that only this agent's entries bring about says so.
      const message = context !== '' && from[0] !== 'agents' ? `${issue.message}${context}` : issue.message;
      problems.push({ line: at.line, col: at.col, path: at.path, message });
    }
  }
  const lines = [...new Set(problems.sort((a, b) => a.line - b.line || a.col - b.col).map((p) => format(file, p)))];
  throw new ConfigError(lines);
}

type Parsed = z.output<ReturnType<typeof configSchema>>;
/** One service as the schema parsed it (before defaults). */
export type ParsedService = Parsed['services'][number];
type RawProbes = NonNullable<ParsedService['probes']>;
/** The round settings of `defaults:` as the schema parsed them. */
export type RawSettings = Partial<
  Pick<
    Parsed['services'][number],
    'probes' | 'samples' | 'spacing' | 'timeout' | 'schedule' | 'deadline' | 'terminates_tcp' | 'max_in_flight'
  >
>;

/** The probes' options from their parsed settings, with every default filled (DEFAULTS). */
export function probeSettings(raw: RawProbes): RoundProtocols {
  const out: RoundProtocols = {};
  if (raw.udp) {
    out.udp = { port: raw.udp.port ?? DEFAULTS.udpPort };
    if (raw.udp.auth_key_file) out.udp.authKey = raw.udp.auth_key_file;
    if (raw.udp.site_tlv_bytes !== undefined) out.udp.siteTlvBytes = raw.udp.site_tlv_bytes;
  }
  if (raw.tcp) {
    out.tcp = { port: raw.tcp.port ?? DEFAULTS.tcpPort, echo: raw.tcp.echo ?? false };
    if (raw.tcp.connect_clock) out.tcp.connectClock = raw.tcp.connect_clock;
    if (raw.tcp.echo_clock) out.tcp.echoClock = raw.tcp.echo_clock;
  }
  if (raw.tls) {
    out.tls = { port: raw.tls.port ?? DEFAULTS.tlsPort };
    if (raw.tls.server_name) out.tls.serverName = raw.tls.server_name;
    if (raw.tls.insecure !== undefined) out.tls.insecure = raw.tls.insecure;
    if (raw.tls.ca_file) out.tls.ca = raw.tls.ca_file;
  }
  if (raw.http) {
    out.http = { url: raw.http.url };
    if (raw.http.site_header) out.http.siteHeader = raw.http.site_header;
    if (raw.http.insecure !== undefined) out.http.insecure = raw.http.insecure;
    if (raw.http.ca_file) out.http.ca = raw.http.ca_file;
    if (raw.http.warm !== undefined) out.http.warm = raw.http.warm;
    if (raw.http.ttfb_clock) out.http.ttfbClock = raw.http.ttfb_clock;
  }
  if (raw.icmp) out.icmp = {};
  if (raw.transfer) {
    const t = raw.transfer;
    out.transfer = { sizes: t.sizes ?? [...DEFAULT_TRANSFER_SIZES] };
    if (t.url) out.transfer.url = t.url;
    if (t.port !== undefined) out.transfer.port = t.port;
    if (t.samples !== undefined) out.transfer.samples = t.samples;
    if (t.timeout !== undefined) out.transfer.sampleTimeoutMs = t.timeout;
    if (t.site_header) out.transfer.siteHeader = t.site_header;
    if (t.insecure !== undefined) out.transfer.insecure = t.insecure;
    if (t.ca_file) out.transfer.ca = t.ca_file;
  }
  if (raw.dns) {
    out.dns = { port: raw.dns.port ?? DEFAULTS.dnsPort };
    if (raw.dns.transport) out.dns.transport = raw.dns.transport;
    if (raw.dns.qname) out.dns.qname = raw.dns.qname;
    if (raw.dns.qtype) out.dns.qtype = raw.dns.qtype;
    if (raw.dns.nsid !== undefined) out.dns.nsid = raw.dns.nsid;
  }
  return out;
}

/** A service with its defaults filled: its own settings, else `defaults:`, else DEFAULTS. */
export function serviceConfig(s: ParsedService, defaults: RawSettings = {}): ServiceConfig {
  const schedule = s.schedule ?? defaults.schedule ?? DEFAULTS.schedule;
  const intervalMs = cronInterval(schedule);
  const svc: ServiceConfig = {
    name: s.name,
    anycast: s.anycast,
    unicast: Object.entries(s.unicast).map(([name, address]) => ({ name, host: address })),
    baseline: s.baseline ?? DEFAULTS.baseline,
    terminatesTcp: s.terminates_tcp ?? defaults.terminates_tcp ?? DEFAULTS.terminatesTcp,
    // The rules guarantee probes are set here or in defaults.
    probes: probeSettings((s.probes ?? defaults.probes)!),
    samples: s.samples ?? defaults.samples ?? DEFAULTS.samples,
    spacingMs: s.spacing ?? defaults.spacing ?? DEFAULTS.spacingMs,
    timeoutMs: s.timeout ?? defaults.timeout ?? DEFAULTS.timeoutMs,
    schedule,
    intervalMs,
    deadlineMs: s.deadline ?? defaults.deadline ?? defaultDeadline(intervalMs),
  };
  const inFlight = s.max_in_flight ?? defaults.max_in_flight;
  if (inFlight !== undefined) svc.maxInFlight = inFlight;
  return svc;
}

function build(data: Parsed, file: string, host: string, env: NodeJS.ProcessEnv, baseDir: string): AnylatConfig {
  const defaults: RawSettings = data.defaults ?? {};
  const services = data.services.map((s) => serviceConfig(s, defaults));
  const agent: AnylatConfig['agent'] = {
    id: data.agent.id ?? host,
    region: data.agent.region,
    labels: data.agent.labels ?? {},
  };
  if (data.agent.lat !== undefined) agent.lat = data.agent.lat;
  if (data.agent.lon !== undefined) agent.lon = data.agent.lon;
  // systemd's StateDirectory= exports STATE_DIRECTORY: the store goes there unless told otherwise.
  const stateDir = env.STATE_DIRECTORY?.split(':')[0];
  const config: AnylatConfig = {
    file,
    origin: { kind: 'file', version: '' },
    agent,
    services,
    store: {
      path: data.store?.path ?? resolve(stateDir || baseDir, DEFAULTS.storeFile),
      retention: {
        ageMs: data.store?.retention?.age ?? DEFAULTS.retentionAgeMs,
        rows: data.store?.retention?.rows ?? DEFAULTS.retentionRows,
      },
    },
  };
  if (data.influx) {
    config.influx = {
      url: data.influx.url,
      token: new Secret((data.influx.token ?? data.influx.token_file)!),
      org: data.influx.org ?? '',
      bucket: data.influx.bucket,
      setAsideAfterMs: data.influx.set_aside_after ?? 3_600_000,
    };
  }
  if (data.web) {
    config.web = data.web.listen ?? { ...DEFAULTS.webListen };
    if (data.web.metrics === true) config.web.metrics = true;
  }
  if (data.metrics) config.metrics = data.metrics.listen ?? { ...DEFAULTS.metricsListen };
  if (data.trace) {
    config.trace = {
      enabled: data.trace.enabled ?? true,
      shiftMs: data.trace.shift_ms ?? TRACE_CONFIG_DEFAULTS.shiftMs,
      minIntervalMs: data.trace.min_interval ?? TRACE_CONFIG_DEFAULTS.minIntervalMs,
      maxHops: data.trace.max_hops ?? TRACE_CONFIG_DEFAULTS.maxHops,
      port: data.trace.port ?? TRACE_CONFIG_DEFAULTS.port,
      names: data.trace.names ?? true,
    };
  }
  return config;
}
