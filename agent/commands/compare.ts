// `anylat compare <anycast> <name=unicast>...`: one round now, printed as a table or as JSON.
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { PROTOCOLS, type Endpoint, type Protocol } from '../core/model.ts';
import { isHostName } from '../config/fields.ts';
import { QUERY_TYPES, type QueryType } from '../core/dns-codec.ts';
import { readStampKeyFile } from '../core/stamp-codec.ts';
import {
  DEFAULT_TRANSFER_PORT,
  DEFAULT_TRANSFER_SAMPLES,
  DEFAULT_TRANSFER_SIZES,
  MAX_TRANSFER_SIZE,
  parseSize,
  sizeLabel,
} from '../probe/transfer.ts';
import { DEFAULT_DNS_PORT } from '../reflector/dns.ts';
import { formatRound } from '../round/format.ts';
import { DEFAULT_MAX_IN_FLIGHT, runRound, type RoundProtocols, type RoundSpec } from '../round/run-round.ts';
import { parseDuration } from '../util/duration.ts';
import { UsageError } from '../util/errors.ts';
import { LagMonitor } from '../util/lag.ts';
import { parseArgsOrUsage, parseCount, parsePort } from './args.ts';

export const DEFAULT_PROTOCOLS: readonly Protocol[] = ['udp', 'tcp', 'http'];

export const COMPARE_USAGE = `usage: anylat compare <anycast> <name=unicast>... [options]

Runs one round now: N samples per (endpoint, protocol), interleaved in random order each cycle,
then prints each path's statistics and the benefit (baseline − anycast) with its 95% CI.

  <anycast>            the anycast address; a comma list for several (Global Accelerator's two
                       static IPs): the first is "anycast" and the benefit's subject, the others
                       are measured as anycast-2, anycast-3, ...
  <name=unicast>       a regional endpoint: a name of your choice and its address or host name
                       (e.g. us-east-1=203.0.113.7); names are resolved once, before sampling

options:
  --protocol LIST      any of ${PROTOCOLS.join(',')} (default ${DEFAULT_PROTOCOLS.join(',')}; the others only when asked)
  --samples N          samples per endpoint and protocol (default 20)
  --spacing D          interval between one path's samples, like ping -i (default 50ms)
  --timeout D          per-sample timeout (default 2s)
  --baseline B         nearest (the unicast endpoint with the lowest p50, per metric) or a name
                       (default nearest)
  --json               print the round as JSON (the field names InfluxDB uses)
  --udp-port N         STAMP reflector port (default 862)
  --auth-key-file F    STAMP authenticated mode; F holds the reflector's key as hex digits
  --tcp-port N         TCP port (default 862, the reflector's echo)
  --no-echo            TCP: time the connect only (the far end is not an anylat reflector)
  --tls-port N         TLS port (default 443)
  --sni NAME           TLS: server name to send and verify (default: none, the address is verified)
  --http-url URL       HTTP: the URL to GET; its host is the Host header and SNI, the connection
                       goes to each endpoint's address (default http://<anycast>:8080/, the reflector)
  --site-header NAME   HTTP: response header naming the site (default x-anylat-site)
  --no-warm            HTTP: skip the second request on the same connection
  --insecure           TLS/HTTPS: accept any certificate (labs, self-signed)
  --ca-file F          TLS/HTTPS: trust this PEM CA bundle instead of the system's
  --dns-port N         DNS: port (default ${DEFAULT_DNS_PORT}, the reflector's --dns; 53 for a DNS service)
  --dns-transport T    DNS: udp or tcp (default udp; tcp keeps one connection and times each query on it)
  --dns-qname NAME     DNS: the name asked (default hostname.bind: CHAOS TXT, answered with the site)
  --dns-qtype TYPE     DNS: record type for another name: ${QUERY_TYPES.join(', ')} (default A)
  --no-nsid            DNS: send a plain query (no EDNS, no NSID request, no padding)
  --transfer-sizes L   transfer: object sizes to download (default 16KiB,256KiB,2MiB; at most 10MiB)
  --transfer-url URL   transfer: download this URL, {size} replaced by the size in bytes (default
                       the reflector's http://<endpoint>:<transfer-port>/bytes/<size>)
  --transfer-port N    transfer: the reflector's HTTP port (default ${DEFAULT_TRANSFER_PORT})
  --transfer-samples N transfer: downloads per endpoint and size (default ${DEFAULT_TRANSFER_SAMPLES}); they run one at a time
                       after the other samples
  --transfer-timeout D transfer: per download (default: --timeout)
  --anycast-terminates-tcp true|false
                       the anycast side ends TCP at its edge (Global Accelerator's default: true);
                       when true, TCP and HTTP connect times are scope=edge, not in the headline
  --max-in-flight N    samples in flight at once (default ${DEFAULT_MAX_IN_FLIGHT})
  --lag-threshold D    flag samples timed while this process's event loop ran more than D late
                       (default 1ms); flagged samples count as received but stay out of the figures
  --service NAME       service name in the output (default adhoc)
  --agent ID           agent id in the output (default this host's name)
  --region NAME        agent region in the output (default local)
  -h, --help           this text

Unreachable targets are results (loss 100%), not errors: the exit code is 0. Bad arguments exit 2.`;

const OPTIONS = {
  protocol: { type: 'string' },
  samples: { type: 'string' },
  spacing: { type: 'string' },
  timeout: { type: 'string' },
  baseline: { type: 'string' },
  json: { type: 'boolean' },
  'udp-port': { type: 'string' },
  'auth-key-file': { type: 'string' },
  'tcp-port': { type: 'string' },
  'no-echo': { type: 'boolean' },
  'tls-port': { type: 'string' },
  sni: { type: 'string' },
  'http-url': { type: 'string' },
  'site-header': { type: 'string' },
  'no-warm': { type: 'boolean' },
  insecure: { type: 'boolean' },
  'ca-file': { type: 'string' },
  'dns-port': { type: 'string' },
  'dns-transport': { type: 'string' },
  'dns-qname': { type: 'string' },
  'dns-qtype': { type: 'string' },
  'no-nsid': { type: 'boolean' },
  'transfer-sizes': { type: 'string' },
  'transfer-url': { type: 'string' },
  'transfer-port': { type: 'string' },
  'transfer-samples': { type: 'string' },
  'transfer-timeout': { type: 'string' },
  'anycast-terminates-tcp': { type: 'string' },
  'max-in-flight': { type: 'string' },
  'lag-threshold': { type: 'string' },
  service: { type: 'string' },
  agent: { type: 'string' },
  region: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const HOST_LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** An IP literal (IPv6 may be bracketed) or a host name, as typed; undefined when it is neither. */
export function checkHost(text: string): string | undefined {
  const bare = text.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare) !== 0) return bare;
  const name = bare.endsWith('.') ? bare.slice(0, -1) : bare;
  if (name.length === 0 || name.length > 253) return undefined;
  // A dotted-quad-looking name that is not a valid IPv4 address is a typo, not a host.
  if (/^[\d.]+$/.test(name)) return undefined;
  return name.split('.').every((l) => HOST_LABEL.test(l)) ? name : undefined;
}

function parseEndpoints(positionals: string[]): Endpoint[] {
  if (positionals.length === 0)
    throw new UsageError(
      'compare: give the anycast address and at least one name=unicast endpoint, e.g. anylat compare 198.51.100.10 us-east-1=203.0.113.7',
    );
  const [anycastArg, ...unicastArgs] = positionals as [string, ...string[]];
  if (anycastArg.includes('='))
    throw new UsageError(`compare: the first argument is the anycast address (no name=), got "${anycastArg}"`);
  const endpoints: Endpoint[] = [];
  const anycasts = anycastArg.split(',').map((s) => s.trim());
  anycasts.forEach((a, i) => {
    const host = checkHost(a);
    if (host === undefined)
      throw new UsageError(`compare: anycast address "${a}" is neither an IP address nor a host name`);
    endpoints.push({ name: i === 0 ? 'anycast' : `anycast-${i + 1}`, kind: 'anycast', host });
  });
  if (unicastArgs.length === 0)
    throw new UsageError(
      'compare: no unicast endpoint to compare with; add at least one name=address, e.g. us-east-1=203.0.113.7',
    );
  for (const arg of unicastArgs) {
    const eq = arg.indexOf('=');
    if (eq < 0) throw new UsageError(`compare: "${arg}" is not name=address (e.g. us-east-1=203.0.113.7)`);
    const name = arg.slice(0, eq);
    const addr = arg.slice(eq + 1);
    if (!NAME.test(name))
      throw new UsageError(
        `compare: endpoint name "${name}" in "${arg}": use letters, digits, '.', '_' or '-' (up to 63), starting with a letter or digit`,
      );
    if (/^anycast(-\d+)?$/.test(name) || name === 'nearest')
      throw new UsageError(`compare: "${name}" is reserved; name the unicast endpoint after its region or site`);
    if (endpoints.some((e) => e.name === name)) throw new UsageError(`compare: endpoint name "${name}" is given twice`);
    const host = checkHost(addr);
    if (host === undefined)
      throw new UsageError(`compare: address "${addr}" in "${arg}" is neither an IP address nor a host name`);
    endpoints.push({ name, kind: 'unicast', host });
  }
  return endpoints;
}

function parseProtocols(text: string | undefined): Protocol[] {
  if (text === undefined) return [...DEFAULT_PROTOCOLS];
  const list = text
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
  if (list.length === 0) throw new UsageError(`--protocol: expected a list of ${PROTOCOLS.join(',')}, got "${text}"`);
  for (const p of list) {
    if (!(PROTOCOLS as readonly string[]).includes(p))
      throw new UsageError(`--protocol: unknown protocol "${p}"; choose from ${PROTOCOLS.join(', ')}`);
  }
  return PROTOCOLS.filter((p) => list.includes(p));
}

function parseBool(text: string | undefined, option: string, fallback: boolean): boolean {
  if (text === undefined) return fallback;
  if (/^(true|yes|1)$/i.test(text)) return true;
  if (/^(false|no|0)$/i.test(text)) return false;
  throw new UsageError(`${option}: expected true or false, got "${text}"`);
}

function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

function checkUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--http-url: "${text}" is not a URL; expected e.g. https://app.example.com/health`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UsageError(`--http-url: only http:// and https:// URLs can be probed, got "${url.protocol}"`);
  return url.toString();
}

/** The transfer probe's options from the --transfer-* flags, checked like the config's probes.transfer. */
function transferOptions(
  values: {
    'transfer-sizes'?: string;
    'transfer-url'?: string;
    'transfer-port'?: string;
    'transfer-samples'?: string;
    'transfer-timeout'?: string;
  },
  insecure: boolean,
  ca: Buffer | undefined,
): NonNullable<RoundProtocols['transfer']> {
  let sizes = [...DEFAULT_TRANSFER_SIZES];
  const text = values['transfer-sizes'];
  if (text !== undefined) {
    sizes = [];
    for (const item of text
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')) {
      const n = parseSize(item);
      if (n === undefined || n < 1 || n > MAX_TRANSFER_SIZE)
        throw new UsageError(`--transfer-sizes: expected sizes from 1B to 10MiB like 16KiB,256KiB,2MiB, got "${item}"`);
      if (sizes.includes(n)) throw new UsageError(`--transfer-sizes: ${sizeLabel(n)} is given twice`);
      sizes.push(n);
    }
    if (sizes.length === 0)
      throw new UsageError(`--transfer-sizes: expected at least one size, e.g. 16KiB,256KiB,2MiB`);
  }
  const out: NonNullable<RoundProtocols['transfer']> = { sizes };
  const url = values['transfer-url'];
  if (url !== undefined) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url.replaceAll('{size}', '1'));
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:'))
      throw new UsageError(`--transfer-url: expected an http:// or https:// URL, got "${url}"`);
    if (!url.includes('{size}') && sizes.length > 1)
      throw new UsageError(
        `--transfer-url: the URL has no {size} but ${sizes.length} sizes are asked; put {size} where the size in bytes goes, or give one --transfer-sizes`,
      );
    out.url = url;
    if (insecure) out.insecure = true;
    if (ca) out.ca = ca;
  }
  if (values['transfer-port'] !== undefined)
    out.port = parsePort(values['transfer-port'], '--transfer-port', DEFAULT_TRANSFER_PORT);
  if (values['transfer-samples'] !== undefined) {
    out.samples = parseCount(values['transfer-samples'], '--transfer-samples', DEFAULT_TRANSFER_SAMPLES);
    if (out.samples > 100)
      throw new UsageError(`--transfer-samples: at most 100 downloads per size, got ${out.samples}`);
  }
  if (values['transfer-timeout'] !== undefined) {
    out.sampleTimeoutMs = parseDuration(values['transfer-timeout'], '--transfer-timeout');
    if (out.sampleTimeoutMs <= 0)
      throw new UsageError(`--transfer-timeout: must be more than 0, got "${values['transfer-timeout']}"`);
  }
  return out;
}

/** The dns probe's options from the --dns-* flags, checked like the config's probes.dns. */
function dnsOptions(values: {
  'dns-port'?: string;
  'dns-transport'?: string;
  'dns-qname'?: string;
  'dns-qtype'?: string;
  'no-nsid'?: boolean;
}): NonNullable<RoundProtocols['dns']> {
  const out: NonNullable<RoundProtocols['dns']> = {
    port: parsePort(values['dns-port'], '--dns-port', DEFAULT_DNS_PORT),
  };
  const transport = values['dns-transport'];
  if (transport !== undefined) {
    if (transport !== 'udp' && transport !== 'tcp')
      throw new UsageError(`--dns-transport: expected udp or tcp, got "${transport}"`);
    out.transport = transport;
  }
  const qname = values['dns-qname'];
  if (qname !== undefined) {
    if (!isHostName(qname))
      throw new UsageError(
        `--dns-qname: expected a DNS name such as hostname.bind, id.server or example.com, got "${qname}"`,
      );
    out.qname = qname;
  }
  const qtype = values['dns-qtype']?.toUpperCase();
  if (qtype !== undefined) {
    if (!(QUERY_TYPES as readonly string[]).includes(qtype))
      throw new UsageError(`--dns-qtype: expected one of ${QUERY_TYPES.join(', ')}, got "${values['dns-qtype']}"`);
    out.qtype = qtype as QueryType;
  }
  if (values['no-nsid']) out.nsid = false;
  return out;
}

/** Parses and checks the command line into a round spec (reads key and CA files). */
export async function compareSpec(
  argv: string[],
): Promise<{ spec: RoundSpec; json: boolean; lagThresholdMs: number } | 'help'> {
  const { values, positionals } = parseArgsOrUsage(
    () => parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }),
    'compare',
  );
  if (values.help) return 'help';
  const endpoints = parseEndpoints(positionals);
  const protocols = parseProtocols(values.protocol);
  const samples = parseCount(values.samples, '--samples', 20);
  if (samples > 100_000)
    throw new UsageError(`--samples: ${samples} is more than one round should take (at most 100000)`);
  const spacingMs = values.spacing === undefined ? 50 : parseDuration(values.spacing, '--spacing');
  const timeoutMs = values.timeout === undefined ? 2000 : parseDuration(values.timeout, '--timeout');
  if (timeoutMs <= 0) throw new UsageError(`--timeout: must be more than 0, got "${values.timeout}"`);
  const baseline = values.baseline ?? 'nearest';
  if (baseline !== 'nearest' && !endpoints.some((e) => e.kind === 'unicast' && e.name === baseline)) {
    const names = endpoints.filter((e) => e.kind === 'unicast').map((e) => e.name);
    throw new UsageError(
      `--baseline: "${baseline}" names no unicast endpoint; use nearest or one of: ${names.join(', ')}`,
    );
  }
  const maxInFlight = parseCount(values['max-in-flight'], '--max-in-flight', DEFAULT_MAX_IN_FLIGHT);
  const lagThresholdMs =
    values['lag-threshold'] === undefined ? 1 : parseDuration(values['lag-threshold'], '--lag-threshold');
  if (lagThresholdMs <= 0)
    throw new UsageError(`--lag-threshold: must be more than 0, got "${values['lag-threshold']}"`);
  const terminatesTcp = parseBool(values['anycast-terminates-tcp'], '--anycast-terminates-tcp', true);
  const insecure = values.insecure === true;
  let ca: Buffer | undefined;
  if (values['ca-file'] !== undefined) {
    try {
      ca = await readFile(values['ca-file']);
    } catch (err) {
      throw new UsageError(
        `--ca-file ${values['ca-file']}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
    }
  }
  if (values.sni !== undefined && checkHost(values.sni) === undefined)
    throw new UsageError(`--sni: "${values.sni}" is not a host name`);

  const opts: RoundProtocols = {};
  for (const p of protocols) {
    switch (p) {
      case 'udp': {
        const authKey =
          values['auth-key-file'] !== undefined ? await readStampKeyFile(values['auth-key-file']) : undefined;
        opts.udp = { port: parsePort(values['udp-port'], '--udp-port', 862), ...(authKey ? { authKey } : {}) };
        break;
      }
      case 'tcp':
        opts.tcp = { port: parsePort(values['tcp-port'], '--tcp-port', 862), echo: values['no-echo'] !== true };
        break;
      case 'tls':
        opts.tls = {
          port: parsePort(values['tls-port'], '--tls-port', 443),
          ...(values.sni !== undefined ? { serverName: values.sni } : {}),
          ...(insecure ? { insecure } : {}),
          ...(ca ? { ca } : {}),
        };
        break;
      case 'http':
        opts.http = {
          url:
            values['http-url'] !== undefined
              ? checkUrl(values['http-url'])
              : `http://${urlHost(endpoints[0]!.host)}:8080/`,
          ...(insecure ? { insecure } : {}),
          ...(ca ? { ca } : {}),
          ...(values['site-header'] !== undefined ? { siteHeader: values['site-header'] } : {}),
          ...(values['no-warm'] ? { warm: false } : {}),
        };
        break;
      case 'icmp':
        opts.icmp = {};
        break;
      case 'dns':
        opts.dns = dnsOptions(values);
        break;
      case 'transfer':
        opts.transfer = transferOptions(values, insecure, ca);
        break;
    }
  }
  const spec: RoundSpec = {
    service: values.service ?? 'adhoc',
    agent: { id: values.agent ?? hostname(), region: values.region ?? 'local' },
    endpoints,
    protocols: opts,
    samples,
    spacingMs,
    timeoutMs,
    maxInFlight,
    baseline,
    terminatesTcp,
  };
  return { spec, json: values.json === true, lagThresholdMs };
}

export async function run(argv: string[]): Promise<number> {
  const parsed = await compareSpec(argv);
  if (parsed === 'help') {
    process.stdout.write(`${COMPARE_USAGE}\n`);
    return 0;
  }
  const lag = new LagMonitor({ thresholdMs: parsed.lagThresholdMs }).start();
  let round;
  try {
    round = await runRound({ ...parsed.spec, lag });
  } finally {
    lag.stop();
  }
  process.stdout.write(parsed.json ? `${JSON.stringify(round, null, 2)}\n` : formatRound(round));
  return 0;
}
