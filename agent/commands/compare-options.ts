// `anylat compare`'s options as one table: each flag names the config keys it sets (below a
// service: `--tcp-port` sets `probes.tcp.port`), so compare checks its flags with the config's own
// schema (agent/config/schema.ts) and the same words. The help text and the table in
// docs/measurement.md are generated from it; test/compare-options.test.ts walks every row through
// both paths and fails on a schema key no row (nor NOT_FLAGS) accounts for.
//   npm run docs:compare      rewrites the table in docs/measurement.md
import { readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PROTOCOLS, type Protocol } from '../core/model.ts';
import { DEFAULT_TEXT, MEANINGS } from '../config/reference.ts';
import { DEFAULTS } from '../config/schema.ts';
import { DEFAULT_SITE_HEADER } from '../probe/http.ts';
import { DEFAULT_TRANSFER_PORT } from '../probe/transfer.ts';
import { DEFAULT_DNS_PORT } from '../reflector/dns.ts';
import { PACKAGE_ROOT } from '../util/package.ts';

/** One flag of `anylat compare`. */
export interface CompareOption {
  /** the flag, without its dashes */
  flag: string;
  /** what its value is called in the help (`N`, `D`, `URL`); none for a switch */
  arg?: string;
  /**
   * the config keys it sets, below a service (`probes.tcp.port`) or at the top (`agent.id`);
   * none for a flag of compare's own (the output, the lag monitor)
   */
  keys?: readonly string[];
  /** a switch's value at its keys: `--no-echo` sets `probes.tcp.echo: false` */
  sets?: boolean;
  /** the value is a comma list (a list in the config) */
  list?: boolean;
  /** the help line; by default the meaning of the config key (agent/config/reference.ts) */
  help?: string;
  /** the default shown; by default compare's own (COMPARE_DEFAULTS), else the config's */
  shown?: string;
}

/** The protocols compare probes when `--protocol` is not given: the ones an anylat reflector answers without setup. */
export const DEFAULT_PROTOCOLS: readonly Protocol[] = ['udp', 'tcp', 'http'];

/** The keys of a service that a config sets and compare does not offer, and why. */
export const NOT_FLAGS: Readonly<Record<string, string>> = {
  schedule: 'compare runs one round, now',
  deadline: 'compare runs one round, now, and waits for it',
};

/** A URL's host part: an IPv6 address in brackets. */
function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/**
 * Where compare's defaults differ from the config's, all in one place. compare is the quick look
 * (docs/measurement.md's quick start: `anylat reflector` at each end, then `anylat compare` with
 * no options), so its probes default to what an anylat reflector answers: the TCP echo on 862
 * (the config's default is a service's own port, 443, without the echo), DNS on the reflector's
 * 8053 (the config's: 53) and the reflector's HTTP endpoint (the config has no default URL). A
 * config names its service and its region; compare calls them `adhoc` and `local`.
 */
export function compareDefaults(anycast: string): Readonly<Record<string, unknown>> {
  return {
    name: 'adhoc',
    'agent.region': 'local',
    'probes.tcp.port': DEFAULTS.udpPort,
    'probes.tcp.echo': true,
    'probes.dns.port': DEFAULT_DNS_PORT,
    'probes.http.url': `http://${urlHost(anycast)}:${DEFAULT_TRANSFER_PORT}/`,
  };
}

const CLOCK = 'C';

/** Every flag, in the order the help lists them. */
export const COMPARE_OPTIONS: readonly CompareOption[] = [
  {
    flag: 'protocol',
    arg: 'LIST',
    keys: ['probes'],
    list: true,
    help: `any of ${PROTOCOLS.join(',')}; the others only when asked (a config lists them under probes)`,
    shown: DEFAULT_PROTOCOLS.join(','),
  },
  { flag: 'samples', arg: 'N', keys: ['samples'], help: 'samples per endpoint and protocol' },
  {
    flag: 'spacing',
    arg: 'D',
    keys: ['spacing'],
    help: "interval between one path's consecutive samples, like ping -i",
  },
  { flag: 'timeout', arg: 'D', keys: ['timeout'], help: 'per-sample timeout' },
  {
    flag: 'baseline',
    arg: 'B',
    keys: ['baseline'],
    help: 'nearest (the unicast endpoint with the lowest p50, per metric) or an endpoint name',
  },
  { flag: 'json', help: 'print the round as JSON (the field names InfluxDB uses)' },
  { flag: 'udp-port', arg: 'N', keys: ['probes.udp.port'], help: 'UDP: the STAMP reflector port' },
  {
    flag: 'auth-key-file',
    arg: 'F',
    keys: ['probes.udp.auth_key_file'],
    help: "UDP: STAMP authenticated mode; F holds the reflector's key as hex digits",
  },
  {
    flag: 'site-tlv-bytes',
    arg: 'N',
    keys: ['probes.udp.site_tlv_bytes'],
    help: "UDP: room for the reflector's site name in each request (0: do not ask for it)",
  },
  {
    flag: 'tcp-port',
    arg: 'N',
    keys: ['probes.tcp.port'],
    help: "TCP: the port (compare's default: the reflector's echo)",
  },
  {
    flag: 'no-echo',
    keys: ['probes.tcp.echo'],
    sets: false,
    help: 'TCP: time the connect only (the far end is not an anylat reflector)',
  },
  {
    flag: 'connect-clock',
    arg: CLOCK,
    keys: ['probes.tcp.connect_clock'],
    help: 'TCP: kernel (TCP_INFO after the handshake, where available) or monotonic (the event loop)',
  },
  { flag: 'echo-clock', arg: CLOCK, keys: ['probes.tcp.echo_clock'], help: 'TCP: kernel (TCP_INFO) or monotonic' },
  { flag: 'tls-port', arg: 'N', keys: ['probes.tls.port'], help: 'TLS: the port' },
  {
    flag: 'sni',
    arg: 'NAME',
    keys: ['probes.tls.server_name'],
    help: 'TLS: the server name to send and verify (required unless --insecure)',
  },
  {
    flag: 'http-url',
    arg: 'URL',
    keys: ['probes.http.url'],
    help: "HTTP: the URL to GET; its host is the Host header and SNI, the connection goes to each endpoint's address",
  },
  {
    flag: 'site-header',
    arg: 'NAME',
    keys: ['probes.http.site_header', 'probes.transfer.site_header'],
    help: 'HTTP and transfer: the response header that names the site that answered',
    shown: DEFAULT_SITE_HEADER,
  },
  {
    flag: 'no-warm',
    keys: ['probes.http.warm'],
    sets: false,
    help: 'HTTP: skip the second request on the same connection',
  },
  {
    flag: 'ttfb-clock',
    arg: CLOCK,
    keys: ['probes.http.ttfb_clock'],
    help: 'HTTP: kernel (TCP_INFO) or monotonic (the event loop)',
  },
  {
    flag: 'insecure',
    keys: ['probes.tls.insecure', 'probes.http.insecure', 'probes.transfer.insecure'],
    sets: true,
    help: 'TLS, HTTPS and transfer: accept any certificate (labs, self-signed)',
  },
  {
    flag: 'ca-file',
    arg: 'F',
    keys: ['probes.tls.ca_file', 'probes.http.ca_file', 'probes.transfer.ca_file'],
    help: "TLS, HTTPS and transfer: trust this PEM CA bundle instead of the system's",
  },
  {
    flag: 'dns-port',
    arg: 'N',
    keys: ['probes.dns.port'],
    help: "DNS: the port (compare's default: the reflector's --dns; 53 for a DNS service)",
  },
  {
    flag: 'dns-transport',
    arg: 'T',
    keys: ['probes.dns.transport'],
    help: 'DNS: udp, or tcp (one connection kept open, each query timed on it)',
  },
  {
    flag: 'dns-qname',
    arg: 'NAME',
    keys: ['probes.dns.qname'],
    help: 'DNS: the name asked (hostname.bind and id.server: CHAOS TXT, answered with the site)',
  },
  {
    flag: 'dns-qtype',
    arg: 'TYPE',
    keys: ['probes.dns.qtype'],
    help: 'DNS: the record type for a name other than the CHAOS site names',
  },
  {
    flag: 'no-nsid',
    keys: ['probes.dns.nsid'],
    sets: false,
    help: 'DNS: a plain query (no EDNS, no NSID request, no padding)',
  },
  {
    flag: 'transfer-sizes',
    arg: 'L',
    keys: ['probes.transfer.sizes'],
    list: true,
    help: 'transfer: object sizes to download (1B to 10MiB; units B, KiB, MiB, kB, MB)',
    shown: '16KiB,256KiB,2MiB',
  },
  {
    flag: 'transfer-url',
    arg: 'URL',
    keys: ['probes.transfer.url'],
    help: "transfer: download this URL instead of the reflector's /bytes/N, {size} replaced by the size in bytes",
  },
  { flag: 'transfer-port', arg: 'N', keys: ['probes.transfer.port'], help: "transfer: the reflector's HTTP port" },
  {
    flag: 'transfer-samples',
    arg: 'N',
    keys: ['probes.transfer.samples'],
    help: 'transfer: downloads per endpoint and size; they run one at a time after the other samples',
  },
  {
    flag: 'transfer-timeout',
    arg: 'D',
    keys: ['probes.transfer.timeout'],
    help: 'transfer: per download',
    shown: '--timeout',
  },
  {
    flag: 'anycast-terminates-tcp',
    arg: 'true|false',
    keys: ['terminates_tcp'],
    help: "the anycast side ends TCP at its edge (Global Accelerator's default): TCP and HTTP connect are then scope=edge, not in the headline",
  },
  { flag: 'max-in-flight', arg: 'N', keys: ['max_in_flight'] },
  {
    flag: 'lag-threshold',
    arg: 'D',
    help: "flag samples timed while this process's event loop ran more than D late; flagged samples count as received but stay out of the figures",
    shown: '1ms',
  },
  { flag: 'service', arg: 'NAME', keys: ['name'], help: 'service name in the output' },
  { flag: 'agent', arg: 'ID', keys: ['agent.id'], help: 'agent id in the output' },
  { flag: 'region', arg: 'NAME', keys: ['agent.region'], help: 'agent region in the output' },
  { flag: 'help', help: 'this text' },
];

/** The flag (as typed) that sets a config key, `--insecure` or `--tcp-port 862` with a value. */
export function flagOf(key: string, value?: unknown): string | undefined {
  const o = COMPARE_OPTIONS.find((x) => x.keys?.includes(key));
  if (!o) return undefined;
  return value === undefined || o.sets !== undefined ? `--${o.flag}` : `--${o.flag} ${String(value)}`;
}

/** The config reference's name for a key below a service or at the top. */
function referenceKey(key: string): string {
  return key.startsWith('agent.') ? key : `services[].${key}`;
}

/** The default a flag shows, in Markdown: its own, compare's, or the config's (from the reference). */
export function shownDefault(o: CompareOption): string | undefined {
  if (o.shown !== undefined) return `\`${o.shown}\``;
  const key = o.keys?.[0];
  if (key === undefined || o.sets !== undefined) return undefined;
  const own = compareDefaults('<anycast>')[key];
  if (own !== undefined) return `\`${String(own)}\``;
  return DEFAULT_TEXT[referenceKey(key)];
}

/** A flag's help text: its own or the config key's meaning. */
function helpOf(o: CompareOption): string {
  const key = o.keys?.[0];
  return o.help ?? (key === undefined ? '' : (MEANINGS[referenceKey(key)] ?? ''));
}

/** `--tcp-port N` */
export function usageOf(o: CompareOption): string {
  return `${o.flag === 'help' ? '-h, ' : ''}--${o.flag}${o.arg === undefined ? '' : ` ${o.arg}`}`;
}

/** Words wrapped to `width` columns. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** The options part of `anylat compare --help`. */
export function optionsHelp(): string {
  const out: string[] = [];
  const col = 25;
  for (const o of COMPARE_OPTIONS) {
    const dflt = shownDefault(o)?.replace(/`/g, '');
    const text = `${helpOf(o)}${dflt === undefined ? '' : ` (default ${dflt})`}`;
    const head = `  ${usageOf(o)}`;
    const body = wrap(text, 100 - col);
    if (head.length < col - 1) {
      out.push(`${head.padEnd(col)}${body[0] ?? ''}`);
    } else {
      out.push(head);
      if (body[0] !== undefined) out.push(`${' '.repeat(col)}${body[0]}`);
    }
    for (const more of body.slice(1)) out.push(`${' '.repeat(col)}${more}`);
  }
  return out.join('\n');
}

const cell = (s: string) => s.replace(/\|/g, '\\|');

/** The options table of docs/measurement.md. */
export function optionsTable(): string {
  const lines = ['| option | config key | default | meaning |', '|---|---|---|---|'];
  for (const o of COMPARE_OPTIONS) {
    const keys = o.keys?.map((k) => `\`${k === 'probes' ? 'probes.<protocol>' : k}\``).join(', ') ?? '';
    const sets = o.sets === undefined ? '' : `: \`${String(o.sets)}\``;
    const dflt = shownDefault(o);
    lines.push(`| \`${cell(usageOf(o))}\` | ${keys}${sets} | ${cell(dflt ?? '')} | ${cell(helpOf(o))} |`);
  }
  return lines.join('\n');
}

/** The page the table is in, and the marks around it. */
export const DOCS_FILE = join(PACKAGE_ROOT, 'docs', 'measurement.md');
const BEGIN = '<!-- compare options: generated from agent/commands/compare-options.ts by `npm run docs:compare` -->';
const END = '<!-- end of compare options -->';

/** `page` with the table between its marks replaced by the table the code has now. */
export function withOptionsTable(page: string): string {
  const from = page.indexOf(BEGIN);
  const to = page.indexOf(END);
  if (from < 0 || to < from) throw new Error(`${DOCS_FILE}: no "${BEGIN}" ... "${END}" marks`);
  return `${page.slice(0, from + BEGIN.length)}\n${optionsTable()}\n${page.slice(to)}`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(DOCS_FILE, withOptionsTable(readFileSync(DOCS_FILE, 'utf8')));
  console.log(`wrote the compare options table in ${DOCS_FILE}`);
}
