// The shape of anylat.yaml (zod) and the rules that span fields: a deadline shorter than the
// interval, a round that fits its deadline, a baseline that names an endpoint, labels that do not
// shadow anylat's own tags. Rules run even when other fields are wrong, so one check lists every
// problem; a rule skips a field that already failed (it has its own message).
import { isIP } from 'node:net';
import { z } from 'zod';
import { PROTOCOLS } from '../core/model.ts';
import { QUERY_TYPES } from '../core/dns-codec.ts';
import {
  DEFAULT_TRANSFER_SAMPLES,
  DEFAULT_TRANSFER_SIZES,
  MAX_TRANSFER_SIZE,
  parseSize,
  sizeLabel,
} from '../probe/transfer.ts';
import { MAX_SITE_TLV_BYTES, parseStampKey } from '../core/stamp-codec.ts';
import { isReservedLabel, RESERVED_TAGS } from '../core/line-protocol.ts';
import { human } from './human.ts';
import { cronInterval, DEFAULT_DEADLINE_SHARE, defaultDeadline } from '../schedule/timing.ts';
import {
  address,
  bool,
  cron,
  duration,
  fileContents,
  filePath,
  headerName,
  hostName,
  httpUrl,
  integer,
  isName,
  leaf,
  listen,
  name,
  number,
  oneOf,
  optional,
  port,
  secretText,
  show,
  text,
} from './fields.ts';
import { suggest } from './suggest.ts';

/** Values a config gets when it does not say. */
export const DEFAULTS = {
  samples: 20,
  spacingMs: 50,
  timeoutMs: 2_000,
  schedule: '* * * * *',
  terminatesTcp: true,
  baseline: 'nearest',
  udpPort: 862,
  tcpPort: 443,
  tlsPort: 443,
  /** a DNS service's port; the reflector answers on 8053 unless run with --dns-port 53 */
  dnsPort: 53,
  retentionAgeMs: 30 * 86_400_000,
  retentionRows: 1_000_000,
  webListen: { host: '127.0.0.1', port: 8080 },
  /** 9464: the port OpenTelemetry's Prometheus exporter made common for agents */
  metricsListen: { host: '127.0.0.1', port: 9464 },
  storeFile: 'anylat.db',
  maxAnycast: 8,
} as const;

/** Issue parameter that makes a problem point at the key rather than its value. */
export const AT_KEY = { anchor: 'key' } as const;

/**
 * A mapping with known keys: a wrong type names what was expected; each unknown key is a problem of
 * its own (`noun` names what a key is: "unknown protocol" reads better than "unknown key" under probes).
 */
function mapping<S extends z.ZodRawShape>(shape: S, what: string, noun = 'key') {
  const keys = Object.keys(shape);
  return z
    .looseObject(shape, {
      error: (iss) =>
        iss.code === 'invalid_type'
          ? iss.input === undefined || iss.input === null
            ? `required: expected ${what}`
            : `expected ${what}, got ${show(iss.input)}`
          : undefined,
    })
    .superRefine(
      (v, ctx) => {
        if (typeof v !== 'object' || v === null || Array.isArray(v)) return;
        for (const k of Object.keys(v)) {
          if (keys.includes(k)) continue;
          const near = suggest(k, keys);
          ctx.addIssue({
            code: 'custom',
            path: [k],
            params: AT_KEY,
            message: `unknown ${noun} "${k}"${near ? `; did you mean "${near}"?` : ''} (expected one of: ${keys.join(', ')})`,
          });
        }
      },
      { when: () => true },
    );
}

function list<S extends z.ZodType>(item: S, what: string) {
  return z.array(item, {
    error: (iss) =>
      iss.input === undefined || iss.input === null
        ? `required: expected ${what}`
        : `expected ${what}, got ${show(iss.input)}`,
  });
}

function dictionary<S extends z.ZodType>(value: S, what: string) {
  return z.record(z.string(), value, {
    error: (iss) =>
      iss.code === 'invalid_type'
        ? iss.input === undefined || iss.input === null
          ? `required: expected ${what}`
          : `expected ${what}, got ${show(iss.input)}`
        : undefined,
  });
}

/** A probe entry: `icmp:` with nothing after it means "on, with defaults". */
function probeEntry<S extends z.ZodType>(schema: S) {
  return z.preprocess((v) => (v === null ? {} : v), schema.optional());
}

const labelValue = leaf('a label value (text)', (v) => {
  if (typeof v === 'string' && v !== '') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
});

function probesSchema(baseDir: string) {
  const pem = fileContents(baseDir, 'the CA file', (buf, path) => {
    if (!buf.toString('utf8').includes('-----BEGIN CERTIFICATE-----'))
      throw new Error(`expected a PEM CA file, but "${path}" holds no "-----BEGIN CERTIFICATE-----"`);
    return buf;
  });
  const stampKey = fileContents(baseDir, 'the STAMP key file', (buf, path) =>
    parseStampKey(buf.toString('utf8'), path),
  );
  return mapping(
    {
      udp: probeEntry(udpProbe(stampKey)),
      tcp: probeEntry(tcpProbe()),
      tls: probeEntry(
        mapping(
          { port: optional(port), server_name: optional(hostName), insecure: optional(bool), ca_file: optional(pem) },
          'tls probe settings (port, server_name, insecure, ca_file)',
        ),
      ),
      http: probeEntry(httpProbe(pem)),
      icmp: probeEntry(mapping({}, 'nothing (icmp has no settings)')),
      dns: probeEntry(dnsProbe()),
      transfer: probeEntry(transferProbe(pem)),
    },
    `a mapping of probes (${PROTOCOLS.join(', ')})`,
    'protocol',
  );
}

function udpProbe<K extends z.ZodType>(stampKey: K) {
  return mapping(
    {
      port: optional(port),
      auth_key_file: optional(stampKey),
      site_tlv_bytes: optional(integer(0, MAX_SITE_TLV_BYTES, 'a size in bytes')),
    },
    'udp probe settings (port, auth_key_file, site_tlv_bytes) or nothing',
  );
}

function tcpProbe() {
  return mapping(
    {
      port: optional(port),
      echo: optional(bool),
      connect_clock: optional(oneOf(['kernel', 'monotonic'] as const)),
      echo_clock: optional(oneOf(['kernel', 'monotonic'] as const)),
    },
    'tcp probe settings (port, echo, connect_clock, echo_clock) or nothing',
  );
}

function httpProbe<P extends z.ZodType>(pem: P) {
  return mapping(
    {
      url: httpUrl,
      site_header: optional(headerName),
      insecure: optional(bool),
      ca_file: optional(pem),
      warm: optional(bool),
      ttfb_clock: optional(oneOf(['kernel', 'monotonic'] as const)),
    },
    'http probe settings (url, site_header, insecure, ca_file, warm, ttfb_clock)',
  );
}

function dnsProbe() {
  return mapping(
    {
      port: optional(port),
      transport: optional(oneOf(['udp', 'tcp'] as const)),
      qname: optional(hostName),
      qtype: optional(oneOf(QUERY_TYPES, true)),
      nsid: optional(bool),
    },
    'dns probe settings (port, transport, qname, qtype, nsid) or nothing',
  );
}

function transferProbe<P extends z.ZodType>(pem: P) {
  return mapping(
    {
      sizes: optional(list(transferSize, 'a list of sizes like [16KiB, 256KiB, 2MiB]')),
      url: optional(transferUrlField),
      port: optional(port),
      samples: optional(integer(1, 100, 'a number of downloads per size')),
      timeout: optional(duration),
      site_header: optional(headerName),
      insecure: optional(bool),
      ca_file: optional(pem),
    },
    'transfer probe settings (sizes, url, port, samples, timeout, site_header, insecure, ca_file) or nothing',
  );
}

/** A transfer size: `16KiB`, `2MiB`, `500kB` or bytes, 1 byte to the reflector's cap. */
const transferSize = leaf(
  `a size from 1B to ${MAX_TRANSFER_SIZE / (1024 * 1024)}MiB like 16KiB, 256KiB or 2MiB`,
  (v) => {
    if (typeof v !== 'string' && typeof v !== 'number') return undefined;
    const n = parseSize(v);
    return n !== undefined && n >= 1 && n <= MAX_TRANSFER_SIZE ? n : undefined;
  },
);

/** The URL a transfer downloads; `{size}` in it becomes the size in bytes. */
const transferUrlField = leaf('an http:// or https:// URL, with {size} where the size in bytes goes', (v) => {
  if (typeof v !== 'string') return undefined;
  try {
    const u = new URL(v.replaceAll('{size}', '1'));
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' ? v.trim() : undefined;
  } catch {
    return undefined;
  }
});

/** `anycast: 192.0.2.1` or a list of them (Global Accelerator has two static addresses). */
const anycastList = z.preprocess(
  (v) => (typeof v === 'string' || typeof v === 'number' ? [v] : v),
  list(address, 'an IP address, a host name, or a list of them'),
);

function roundSettings(baseDir: string) {
  return {
    probes: optional(probesSchema(baseDir)),
    samples: optional(integer(1, 10_000, 'a number of samples')),
    spacing: optional(duration),
    timeout: optional(duration),
    schedule: optional(cron),
    deadline: optional(duration),
    terminates_tcp: optional(bool),
    max_in_flight: optional(integer(1, 1_024, 'a number of samples in flight')),
  };
}

/** One name or a list of them (an `agents:` entry's `id` or `region`). */
function names(what: string) {
  return z.preprocess((v) => (typeof v === 'string' ? [v] : v), list(name(what), `${what}, or a list of them`));
}

/** Where the sink writes: `influx:`. */
function influxSchema(baseDir: string) {
  return mapping(
    {
      url: httpUrl,
      token: optional(secretText),
      token_file: optional(
        fileContents(baseDir, 'the token file', (buf, path) => {
          const token = buf.toString('utf8').trim();
          if (token === '') throw new Error(`the token file "${path}" is empty; put the InfluxDB token in it`);
          return token;
        }),
      ),
      org: optional(text('an organization name')),
      bucket: text('a bucket name (InfluxDB 1.x: database or database/retention-policy)'),
      set_aside_after: optional(duration),
    },
    'a mapping with url, token or token_file, org, bucket, set_aside_after',
  );
}

/** How a schema is checked beyond its shape. */
export interface SchemaOptions {
  /**
   * one round now (`anylat compare`), not scheduled rounds: the rules that fit a round into its
   * schedule's interval do not apply
   */
  oneRound?: boolean;
  /**
   * how a message between fields names a service's setting, given its path below the service
   * (`probes.tls.server_name`) and, for a flag-like mention, the value it would take: the config
   * says `server_name` and `insecure: true`, compare says `--sni` and `--insecure`
   */
  say?: (path: string, value?: unknown) => string;
}

/** A config file names a setting by its key (the message's path already says where it is). */
export function sayKey(path: string, value?: unknown): string {
  const key = path.slice(path.lastIndexOf('.') + 1);
  return value === undefined ? key : `${key}: ${String(value)}`;
}

/** The schema of anylat.yaml; `baseDir` resolves the relative file paths in it. */
export function configSchema(baseDir: string, options: SchemaOptions = {}) {
  const { service, serviceOverride } = serviceSchemas(baseDir);
  const schema = mapping(
    {
      agent: agentSection(),
      defaults: optional(mapping(roundSettings(baseDir), 'a mapping of settings every service inherits')),
      services: list(service, 'a list of services'),
      store: optional(storeSection(baseDir)),
      influx: optional(influxSchema(baseDir)),
      web: z.preprocess(
        (v) => (v === null ? {} : v),
        mapping(
          { listen: optional(listen), metrics: optional(bool) },
          'a mapping with listen (and metrics)',
        ).optional(),
      ),
      metrics: z.preprocess(
        (v) => (v === null ? {} : v),
        mapping({ listen: optional(listen) }, 'a mapping with listen (where /metrics is served)').optional(),
      ),
      trace: z.preprocess((v) => (v === null ? {} : v), traceSection().optional()),
      agents: optional(
        list(agentPart(baseDir, serviceOverride), 'a list of per-agent parts (each with id and/or region)'),
      ),
    },
    'a mapping with agent, services and optionally defaults, store, influx, web, metrics, trace, agents',
  );
  const rules: Rules = { oneRound: options.oneRound === true, say: options.say ?? sayKey };
  return schema.superRefine((root, ctx) => crossFieldRules(root, ctx, rules), { when: () => true });
}

/** A `services:` entry, and an `agents:` entry's service (which may only override a shared one). */
function serviceSchemas(baseDir: string) {
  const serviceFields = {
    name: name('a service name'),
    anycast: anycastList,
    unicast: dictionary(address, 'a mapping of unicast endpoint names to addresses (e.g. us-east-1: 203.0.113.10)'),
    baseline: optional(text('"nearest" or a unicast endpoint name')),
    ...roundSettings(baseDir),
  };
  const service = mapping(serviceFields, 'a service (a mapping with name, anycast, unicast, probes, ...)');
  // An `agents:` entry's service: a new one (complete) or an override of a shared one by name
  // (only the fields it changes); which of the two is known once the entries are applied.
  const serviceOverride = mapping(
    { ...serviceFields, anycast: optional(anycastList), unicast: optional(serviceFields.unicast) },
    'a service to add, or the name of a shared service and the settings this agent changes',
  );
  return { service, serviceOverride };
}

/** An `agents:` entry: who it applies to, and what it adds or changes for them. */
function agentPart<S extends z.ZodType>(baseDir: string, serviceOverride: S) {
  return mapping(
    {
      id: optional(names('an agent id')),
      region: optional(names('a region name')),
      labels: optional(dictionary(labelValue, 'a mapping of label names to values')),
      defaults: optional(mapping(roundSettings(baseDir), "a mapping of settings this agent's services inherit")),
      services: optional(list(serviceOverride, 'a list of services to add or override')),
    },
    'a mapping with id and/or region (who it applies to) and labels, defaults, services',
  );
}

/** `agent:`, who this agent is. */
function agentSection() {
  return mapping(
    {
      id: optional(name('an agent id')),
      region: name('a region name like eu-west-1'),
      lat: optional(number(-90, 90, 'a latitude')),
      lon: optional(number(-180, 180, 'a longitude')),
      labels: optional(dictionary(labelValue, 'a mapping of label names to values')),
    },
    'a mapping with region (and optionally id, lat, lon, labels)',
  );
}

/** `store:`, where the rounds are kept and for how long. */
function storeSection(baseDir: string) {
  return mapping(
    {
      path: optional(filePath(baseDir)),
      retention: optional(
        mapping(
          { age: optional(duration), rows: optional(integer(100, 1_000_000_000, 'a number of rounds')) },
          'a mapping with age and/or rows',
        ),
      ),
    },
    'a mapping with path and/or retention',
  );
}

/** `trace:`, when and how the agent traces a service whose benefit shifted. */
function traceSection() {
  return mapping(
    {
      enabled: optional(bool),
      shift_ms: optional(number(0.1, 60_000, 'a benefit shift in ms')),
      min_interval: optional(duration),
      max_hops: optional(integer(1, 64, 'a number of hops')),
      port: optional(integer(1, 65_000, 'a port number')),
      names: optional(bool),
    },
    'a mapping with enabled, shift_ms, min_interval, max_hops, port, names',
  );
}

// ---- rules across fields ----

type Dict = Record<string, unknown>;
type Ctx = z.RefinementCtx;
type Rules = { oneRound: boolean; say: (path: string, value?: unknown) => string };

function isDict(v: unknown): v is Dict {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && v !== z.NEVER;
}

/** A value that passed its own validation (failed ones are z.NEVER or the raw input of a failed mapping). */
function good<T>(v: unknown, test: (x: unknown) => x is T): v is T {
  return v !== undefined && v !== z.NEVER && test(v);
}
const isNum = (x: unknown): x is number => typeof x === 'number';
const isStr = (x: unknown): x is string => typeof x === 'string';

/** Where a service's setting comes from: the service, `defaults`, or anylat's default. */
type Source = { from: 'service' | 'defaults' | 'builtin'; path: Array<string | number> };

function pick<T>(
  svc: Dict,
  defaults: Dict | undefined,
  key: string,
  i: number,
  test: (x: unknown) => x is T,
  builtin: T | undefined,
): { value: T | undefined; src: Source } | undefined {
  if (svc[key] !== undefined)
    return good(svc[key], test) ? { value: svc[key], src: { from: 'service', path: ['services', i, key] } } : undefined;
  if (defaults && defaults[key] !== undefined)
    return good(defaults[key], test)
      ? { value: defaults[key], src: { from: 'defaults', path: ['defaults', key] } }
      : undefined;
  return { value: builtin, src: { from: 'builtin', path: ['services', i] } };
}

function crossFieldRules(root: unknown, ctx: Ctx, rules: Rules): void {
  if (!isDict(root)) return;
  if (isDict(root.agent)) agentRules(root.agent, ctx);
  if (isDict(root.influx)) influxRules(root.influx, ctx);
  if (Array.isArray(root.agents)) {
    root.agents.forEach((part, j) => {
      if (isDict(part) && part.id === undefined && part.region === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['agents', j],
          message: 'expected id and/or region: which agents this part applies to',
        });
      }
      if (isDict(part) && isDict(part.labels)) agentRules({ labels: part.labels }, ctx, ['agents', j, 'labels']);
    });
  }
  const defaults = isDict(root.defaults) ? root.defaults : undefined;
  if (!Array.isArray(root.services)) return;
  if (root.services.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['services'], message: 'expected at least one service' });
    return;
  }
  const firstByName = new Map<string, number>();
  root.services.forEach((svc, i) => {
    if (!isDict(svc)) return;
    if (good(svc.name, isStr)) {
      const first = firstByName.get(svc.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['services', i, 'name'],
          message: `duplicate service name "${svc.name}" (also services[${first}]); names must be unique`,
        });
      } else {
        firstByName.set(svc.name, i);
      }
    }
    serviceRules(svc, defaults, i, ctx, rules);
  });
}

function agentRules(agent: Dict, ctx: Ctx, at: Array<string | number> = ['agent', 'labels']): void {
  if (!isDict(agent.labels)) return;
  for (const key of Object.keys(agent.labels)) {
    const path = [...at, key];
    if ((RESERVED_TAGS as readonly string[]).includes(key)) {
      ctx.addIssue({
        code: 'custom',
        path,
        params: AT_KEY,
        message: `"${key}" is a tag anylat writes itself (${RESERVED_TAGS.join(', ')}); choose another label name`,
      });
    } else if (key.startsWith('_')) {
      ctx.addIssue({
        code: 'custom',
        path,
        params: AT_KEY,
        message: `"${key}": names starting with "_" are InfluxDB's own columns; choose another label name`,
      });
    } else if (key === 'time') {
      ctx.addIssue({
        code: 'custom',
        path,
        params: AT_KEY,
        message: '"time" is InfluxDB\'s timestamp column (a tag named time is dropped); choose another label name',
      });
    } else if (isReservedLabel(key)) {
      ctx.addIssue({
        code: 'custom',
        path,
        params: AT_KEY,
        message: `"${key}" is a field anylat writes; a tag with the same name makes queries ambiguous; choose another label name`,
      });
    } else if (!/^[A-Za-z][A-Za-z0-9_]{0,62}$/.test(key)) {
      ctx.addIssue({
        code: 'custom',
        path,
        params: AT_KEY,
        message: `expected a label name (a letter, then letters, digits, "_"), got "${key}"`,
      });
    }
  }
}

function influxRules(influx: Dict, ctx: Ctx): void {
  if (influx.token !== undefined && influx.token_file !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['influx', 'token_file'],
      params: AT_KEY,
      message: 'set token or token_file, not both',
    });
  } else if (influx.token === undefined && influx.token_file === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['influx'],
      message: 'required: token or token_file (the InfluxDB API token; InfluxDB 1.x: user:password)',
    });
  }
}

const isProbes = (x: unknown): x is Dict => isDict(x);

/** The unicast endpoints' names: at least one, none reserved, each a name; returns the good ones. */
function unicastRules(svc: Dict, at: (...rest: Array<string | number>) => Array<string | number>, ctx: Ctx): string[] {
  const unicastNames: string[] = [];
  if (!isDict(svc.unicast)) return unicastNames;
  const names = Object.keys(svc.unicast);
  if (names.length === 0) {
    ctx.addIssue({
      code: 'custom',
      path: at('unicast'),
      message: 'expected at least one unicast endpoint (name: address); the benefit is measured against them',
    });
  }
  for (const n of names) {
    if (n === 'anycast' || /^anycast-\d+$/.test(n)) {
      ctx.addIssue({
        code: 'custom',
        path: at('unicast', n),
        params: AT_KEY,
        message: `"${n}" is reserved for the anycast address(es); name unicast endpoints after their region, e.g. us-east-1`,
      });
    } else if (n === 'nearest') {
      // a unicast endpoint named so could never be the baseline by name: `nearest` means the rule
      ctx.addIssue({
        code: 'custom',
        path: at('unicast', n),
        params: AT_KEY,
        message: `"nearest" is reserved for the baseline rule (the unicast endpoint with the lowest p50); name unicast endpoints after their region, e.g. us-east-1`,
      });
    } else if (!isName(n)) {
      ctx.addIssue({
        code: 'custom',
        path: at('unicast', n),
        params: AT_KEY,
        message: `expected an endpoint name (letters, digits, "-", "_", "."), got "${n}"`,
      });
    } else {
      unicastNames.push(n);
    }
  }
  return unicastNames;
}

/** The anycast addresses: at least one, at most DEFAULTS.maxAnycast, each once. */
function anycastRules(svc: Dict, at: (...rest: Array<string | number>) => Array<string | number>, ctx: Ctx): void {
  if (!Array.isArray(svc.anycast)) return;
  if (svc.anycast.length === 0)
    ctx.addIssue({ code: 'custom', path: at('anycast'), message: 'expected at least one anycast address' });
  if (svc.anycast.length > DEFAULTS.maxAnycast) {
    ctx.addIssue({
      code: 'custom',
      path: at('anycast'),
      message: `expected at most ${DEFAULTS.maxAnycast} anycast addresses, got ${svc.anycast.length}`,
    });
  }
  const seen = new Map<string, number>();
  svc.anycast.forEach((a, j) => {
    if (!good(a, isStr)) return;
    const first = seen.get(a);
    if (first !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: at('anycast', j),
        message: `"${a}" is listed twice (also anycast[${first}])`,
      });
    else seen.set(a, j);
  });
}

function serviceRules(svc: Dict, defaults: Dict | undefined, i: number, ctx: Ctx, rules: Rules): void {
  const { say } = rules;
  const at = (...rest: Array<string | number>) => ['services', i, ...rest];
  const unicastNames = unicastRules(svc, at, ctx);
  anycastRules(svc, at, ctx);

  if (
    good(svc.baseline, isStr) &&
    svc.baseline !== 'nearest' &&
    isDict(svc.unicast) &&
    !unicastNames.includes(svc.baseline)
  ) {
    const near = suggest(svc.baseline, unicastNames);
    ctx.addIssue({
      code: 'custom',
      path: at('baseline'),
      message: `expected "nearest" or a unicast endpoint name (${unicastNames.join(', ') || 'none defined'}), got "${svc.baseline}"${near ? `; did you mean "${near}"?` : ''}`,
    });
  }

  const probes = pick(svc, defaults, 'probes', i, isProbes, undefined);
  if (probes && probes.value === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: at(),
      message: `expected probes (here or in defaults): at least one of ${PROTOCOLS.join(', ')}`,
    });
  } else if (probes?.value && Object.keys(probes.value).length === 0) {
    ctx.addIssue({
      code: 'custom',
      path: probes.src.path,
      message: `expected at least one probe: ${PROTOCOLS.join(', ')}`,
    });
  } else if (probes?.value && isDict(probes.value.tls)) {
    const tls = probes.value.tls;
    if (tls.server_name === undefined && tls.insecure !== true) {
      ctx.addIssue({
        code: 'custom',
        path: [...probes.src.path, 'tls'],
        params: AT_KEY,
        message: `set ${say('probes.tls.server_name')} (the name the certificate is for, sent as SNI), or ${say('probes.tls.insecure', true)} to skip certificate checks`,
      });
    }
  }

  if (probes?.value && isDict(probes.value.transfer)) {
    const t = probes.value.transfer;
    const sizes = Array.isArray(t.sizes) ? t.sizes.length : DEFAULT_TRANSFER_SIZES.length;
    if (good(t.url, isStr) && !t.url.includes('{size}') && sizes > 1) {
      ctx.addIssue({
        code: 'custom',
        path: [...probes.src.path, 'transfer', 'url'],
        message: `the ${say('probes.transfer.url')} has no {size} but ${sizes} sizes are asked (${Array.isArray(t.sizes) ? say('probes.transfer.sizes') : `by default ${DEFAULT_TRANSFER_SIZES.map(sizeLabel).join(', ')}`}): put {size} where the size in bytes goes, or give one size`,
      });
    }
    if (Array.isArray(t.sizes)) {
      if (t.sizes.length === 0)
        ctx.addIssue({
          code: 'custom',
          path: [...probes.src.path, 'transfer', 'sizes'],
          message: 'expected at least one size, e.g. [16KiB, 256KiB, 2MiB]',
        });
      const seen = new Map<number, number>();
      t.sizes.forEach((v, j) => {
        if (!good(v, isNum)) return;
        const first = seen.get(v);
        if (first !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: [...probes.src.path, 'transfer', 'sizes', j],
            message: `${sizeLabel(v)} is listed twice (also sizes[${first}])`,
          });
        else seen.set(v, j);
      });
    }
  }

  if (!rules.oneRound) timingRules(svc, defaults, i, ctx);
}

/**
 * The longest the transfer downloads of one round can take: they run one at a time, after the other
 * samples, so samples × endpoints × sizes × their timeout. undefined without transfer; null when a
 * setting it needs failed its own check.
 */
function transferBudget(
  svc: Dict,
  defaults: Dict | undefined,
  i: number,
  roundTimeout: number,
): { ms: number; text: string } | undefined | null {
  const probes = pick(svc, defaults, 'probes', i, isProbes, undefined)?.value;
  if (!probes || probes.transfer === undefined) return undefined;
  const t = probes.transfer;
  if (!isDict(t)) return null;
  const samples = t.samples === undefined ? DEFAULT_TRANSFER_SAMPLES : good(t.samples, isNum) ? t.samples : undefined;
  const timeout = t.timeout === undefined ? roundTimeout : good(t.timeout, isNum) ? t.timeout : undefined;
  const sizes =
    t.sizes === undefined ? DEFAULT_TRANSFER_SIZES.length : Array.isArray(t.sizes) ? t.sizes.length : undefined;
  const endpoints =
    (Array.isArray(svc.anycast) ? svc.anycast.length : 1) + (isDict(svc.unicast) ? Object.keys(svc.unicast).length : 0);
  if (samples === undefined || timeout === undefined || sizes === undefined) return null;
  return {
    ms: samples * endpoints * sizes * timeout,
    text: `${samples} transfer samples × ${endpoints} endpoints × ${sizes} sizes × ${human(timeout)}`,
  };
}

function timingRules(svc: Dict, defaults: Dict | undefined, i: number, ctx: Ctx): void {
  const schedule = pick(svc, defaults, 'schedule', i, isStr, DEFAULTS.schedule);
  const samples = pick(svc, defaults, 'samples', i, isNum, DEFAULTS.samples);
  const spacing = pick(svc, defaults, 'spacing', i, isNum, DEFAULTS.spacingMs);
  const timeout = pick(svc, defaults, 'timeout', i, isNum, DEFAULTS.timeoutMs);
  const deadline = pick(svc, defaults, 'deadline', i, isNum, undefined);
  if (!schedule?.value) return;
  const interval = cronInterval(schedule.value);
  const every = `the schedule "${schedule.value}" (fires every ${human(interval)} at the shortest)`;

  if (deadline?.value !== undefined && deadline.value >= interval) {
    ctx.addIssue({
      code: 'custom',
      path: deadline.src.path,
      message: `deadline ${human(deadline.value)} must be shorter than the interval of ${every}, so a round ends before the next is due`,
    });
    return;
  }
  if (!deadline || samples?.value === undefined || spacing?.value === undefined || timeout?.value === undefined) return;
  const deadlineMs = deadline.value ?? defaultDeadline(interval);
  const isName = (a: unknown) => typeof a === 'string' && isIP(a) === 0;
  const names =
    (Array.isArray(svc.anycast) && svc.anycast.some(isName)) ||
    (isDict(svc.unicast) && Object.values(svc.unicast).some(isName));
  const transfer = transferBudget(svc, defaults, i, timeout.value);
  if (transfer === null) return;
  const needs = (samples.value - 1) * spacing.value + timeout.value + (names ? timeout.value : 0) + (transfer?.ms ?? 0);
  if (needs <= deadlineMs) return;
  const formula = `(samples - 1) × spacing + timeout${transfer ? ' + transfer downloads' : ''} = ${samples.value - 1} × ${human(spacing.value)} + ${human(timeout.value)}${names ? ` + ${human(timeout.value)} to resolve host names` : ''}${transfer ? ` + ${transfer.text}` : ''} = ${human(needs)}`;
  const limit =
    deadline.value !== undefined
      ? `its deadline ${human(deadlineMs)}`
      : `its deadline ${human(deadlineMs)} (by default ${Math.round(DEFAULT_DEADLINE_SHARE * 100)}% of the ${human(interval)} interval of "${schedule.value}")`;
  // Point at the setting most likely to be tuned that the service itself sets.
  const where = (['deadline', 'schedule', 'timeout', 'spacing', 'samples'] as const).find((k) => svc[k] !== undefined);
  ctx.addIssue({
    code: 'custom',
    path: where ? ['services', i, where] : ['services', i],
    message: `a round may take up to ${formula}, longer than ${limit}; lower samples, spacing or timeout${transfer ? ', or the transfer samples, sizes or timeout' : ''}, or schedule rounds less often`,
  });
}
