// The configuration reference (docs/configuration.md), generated from the schema itself: the keys,
// which are required and what each accepts come from walking configSchema (each leaf says what it
// expects when given nothing, in the same words its error messages use); the defaults come from
// DEFAULTS; only the one-line meaning of each key is written here, and test/config-reference.test.ts
// fails when a key of the schema has none, or when the committed page differs from this output.
//   npm run docs:config      rewrites docs/configuration.md
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { DEFAULT_SITE_TLV_BYTES } from '../core/stamp-codec.ts';
import { DNS_PROBE_DEFAULTS } from '../probe/dns.ts';
import { formatDuration } from '../util/duration.ts';
import { PACKAGE_ROOT } from '../util/package.ts';
import { configSchema, DEFAULTS } from './schema.ts';
import { TRACE_CONFIG_DEFAULTS } from './types.ts';

/** One key of anylat.yaml. */
export interface ReferenceRow {
  /** `services[].probes.tcp.echo` */
  path: string;
  required: boolean;
  /** what the value must be, as the error messages say it */
  expected: string;
  /** `mapping`, `list` or `value` */
  kind: 'mapping' | 'list' | 'value';
}

type Def = { type: string; [k: string]: unknown };
const def = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** What a schema says it expects: leaves say it for nothing, mappings and lists for a wrong type. */
function expectedOf(s: z.ZodType): string {
  for (const input of [null, 42, Symbol('x')]) {
    const r = s.safeParse(input);
    const msg = r.success ? undefined : r.error.issues[0]?.message;
    const m = msg === undefined ? null : /^(?:required: )?expected (.*?)(?:, got .*)?$/.exec(msg);
    // "a non-empty token (a string, got nothing)": drop the bracket the ", got" cut opened
    if (m?.[1])
      return m[1].split('(').length > m[1].split(')').length ? m[1].slice(0, m[1].lastIndexOf('(')).trim() : m[1];
  }
  return '';
}

/** Walks the schema depth first, in the order the keys are declared. */
export function walkSchema(schema: z.ZodType, path = '', required = true, out: ReferenceRow[] = []): ReferenceRow[] {
  const d = def(schema);
  switch (d.type) {
    case 'optional':
      return walkSchema(d.innerType as z.ZodType, path, false, out);
    case 'pipe': {
      const inner = def(d.in as z.ZodType).type === 'transform' ? (d.out as z.ZodType) : undefined;
      // a preprocess (null -> {} or undefined) in front of a schema: look through it
      if (inner) return walkSchema(inner, path, required, out);
      break;
    }
    case 'object': {
      // a list's items are described by the list's own row
      if (path !== '' && !path.endsWith('[]'))
        out.push({ path, required, expected: expectedOf(schema), kind: 'mapping' });
      for (const [key, value] of Object.entries(d.shape as Record<string, z.ZodType>)) {
        walkSchema(value, path === '' ? key : `${path}.${key}`, true, out);
      }
      return out;
    }
    case 'array':
      out.push({ path, required, expected: expectedOf(schema), kind: 'list' });
      return walkSchema(d.element as z.ZodType, `${path}[]`, true, out);
  }
  out.push({ path, required, expected: expectedOf(schema), kind: d.type === 'record' ? 'mapping' : 'value' });
  return out;
}

const ROUND = '`services[].{samples,spacing,timeout,schedule,deadline,terminates_tcp,max_in_flight,probes}`';

/** The meaning of each key; `defaults.*` repeats `services[].*` and is described once, below. */
export const MEANINGS: Record<string, string> = {
  agent: 'who this agent is; its id, region and labels are tags on every point it writes',
  'agent.id': 'the `agent` tag on every point',
  'agent.region': 'the `agent_region` tag',
  'agent.lat': 'where the agent is (degrees), written in the heartbeat for the fleet map',
  'agent.lon': 'where the agent is (degrees), written in the heartbeat for the fleet map',
  'agent.labels':
    "extra tags on every point, e.g. `team: sre`; not one of anylat's own tag or field names, nor `time` or `_…`",
  defaults: `settings every service inherits unless it sets them itself: ${ROUND}`,
  services: 'what to compare: one entry per service',
  'services[].name': 'the `service` tag; unique',
  'services[].anycast': 'the anycast address(es): the first is endpoint `anycast`, the others `anycast-2`, …',
  'services[].anycast[]': 'one anycast address or host name',
  'services[].unicast':
    '`name: address` for each regional endpoint; the name is the `endpoint` tag (not `anycast`, `anycast-N` or `nearest`)',
  'services[].baseline':
    '`nearest` (the unicast endpoint with the lowest p50 in each round) or a unicast endpoint name',
  'services[].probes':
    "which protocols to probe, with their settings; a service's `probes` replaces `defaults.probes` as a whole",
  'services[].probes.udp': 'STAMP (RFC 8762) round trip to an anylat reflector',
  'services[].probes.udp.port': "the reflector's UDP port",
  'services[].probes.udp.auth_key_file':
    'STAMP authenticated mode: the HMAC-SHA-256 key, hex, shared with the reflector',
  'services[].probes.udp.site_tlv_bytes': "room for the reflector's site name in each request (0: do not ask for it)",
  'services[].probes.tcp': 'TCP connect, and `rtt` over the open connection when the far end runs the reflector',
  'services[].probes.tcp.port': 'the TCP port',
  'services[].probes.tcp.echo': "time an echo on the open connection (the far end runs anylat's reflector)",
  'services[].probes.tcp.connect_clock':
    '`kernel` (TCP_INFO after the handshake, where available) or `monotonic` (the event loop)',
  'services[].probes.tcp.echo_clock': '`kernel` (TCP_INFO) or `monotonic` (the event loop)',
  'services[].probes.tls': 'TLS handshake time, after TCP',
  'services[].probes.tls.port': 'the TLS port',
  'services[].probes.tls.server_name':
    'the name sent (SNI) and checked against the certificate; required unless `insecure`',
  'services[].probes.tls.insecure': 'accept any certificate (and send no server name)',
  'services[].probes.tls.ca_file': 'a PEM CA file to trust instead of the system roots',
  'services[].probes.http': 'dns, connect, tls, ttfb, total and a warm second request against a URL',
  'services[].probes.http.url':
    "the URL; its host is replaced by each endpoint's address, the Host header and SNI keep the name",
  'services[].probes.http.site_header': 'a response header that names the site that answered',
  'services[].probes.http.insecure': 'accept any certificate',
  'services[].probes.http.ca_file': 'a PEM CA file to trust instead of the system roots',
  'services[].probes.http.warm': 'also time a second request on the same connection (`warm`)',
  'services[].probes.http.ttfb_clock': '`kernel` (TCP_INFO) or `monotonic` (the event loop)',
  'services[].probes.icmp': "`ping`'s own time= (kernel timestamps); always `scope=edge`, never in the headline",
  'services[].probes.dns': "a DNS query's round trip; the site from NSID or CHAOS `hostname.bind`",
  'services[].probes.dns.port': "the DNS server's port",
  'services[].probes.dns.transport': '`udp` (one connected socket) or `tcp` (one connection kept open)',
  'services[].probes.dns.qname': 'the name asked (`hostname.bind`: CHAOS TXT, answered with the site)',
  'services[].probes.dns.qtype': 'the record type for a name other than the CHAOS site names',
  'services[].probes.dns.nsid': "ask for the server's NSID (EDNS option 3)",
  'services[].probes.transfer':
    'downloads of several sizes (`ttfb`, `download`, `goodput_mbps` per size): the split-TCP benefit; run alone after the other samples',
  'services[].probes.transfer.sizes': 'the object sizes, each a `size` tag',
  'services[].probes.transfer.sizes[]': 'one size, at most 10MiB',
  'services[].probes.transfer.url':
    "download from this URL instead of the reflector's `/bytes/N`; `{size}` is replaced by the byte count",
  'services[].probes.transfer.port': "the reflector's HTTP port",
  'services[].probes.transfer.samples': 'downloads per endpoint and size per round',
  'services[].probes.transfer.timeout': 'per download',
  'services[].probes.transfer.site_header': 'a response header that names the site that answered',
  'services[].probes.transfer.insecure': 'accept any certificate',
  'services[].probes.transfer.ca_file': 'a PEM CA file to trust instead of the system roots',
  'services[].samples': 'samples per (endpoint, protocol) per round',
  'services[].spacing': "between one path's consecutive samples",
  'services[].timeout': 'per sample',
  'services[].schedule': 'when rounds run: cron, 5 fields, or 6 with seconds first (`*/30 * * * * *`)',
  'services[].deadline':
    "a round still running this long after it started is abandoned; shorter than the schedule's interval",
  'services[].terminates_tcp':
    "the anycast side ends TCP at its edge (Global Accelerator's default): TCP and HTTP connect become `scope=edge`",
  'services[].max_in_flight': 'samples in flight at once in a round',
  store: 'the embedded SQLite store every round is written to first',
  'store.path': 'the SQLite file',
  'store.retention': 'how much the store keeps',
  'store.retention.age': 'rounds older than this are dropped',
  'store.retention.rows': 'at most this many rounds are kept',
  influx: 'where the sink writes (InfluxDB 1.x, 2.x, 3.x or a compatible server); without it, the store only',
  'influx.url': "the server's base URL",
  'influx.token': 'the API token (InfluxDB 1.x: `user:password`); `token` or `token_file`, not both',
  'influx.token_file': 'a file holding the token',
  'influx.org': 'the organization (ignored by InfluxDB 1.x and VictoriaMetrics)',
  'influx.bucket': 'the bucket (InfluxDB 1.x: `db` or `db/rp`)',
  'influx.set_aside_after': 'a batch that draws 5xx this long is bisected and the lines refused alone set aside',
  metrics: "the agent's health as Prometheus metrics (`/metrics`); off unless `metrics:` is present",
  'metrics.listen': 'where `/metrics` is served',
  agents: 'per-agent parts of a config shared by a fleet: each applies to the agents it names by id or region',
  'agents[].id': 'the agent id(s) this part applies to',
  'agents[].id[]': 'one agent id',
  'agents[].region': 'the region(s) whose agents this part applies to',
  'agents[].region[]': 'one region',
  'agents[].labels': "labels added to the matching agents' `agent.labels`",
  'agents[].defaults': "round settings the matching agents' services inherit, over `defaults`",
  'agents[].services': 'services added for the matching agents, or overriding a shared service of the same name',
  'web.metrics': "`true`: also serve Prometheus `/metrics` on the dashboard's address",
  trace:
    'path context: trace the route to the anycast address and the baseline when a site changes, a path goes down or the benefit shifts',
  'trace.enabled': 'take traces on those events',
  'trace.shift_ms': 'a benefit that moves this far from its recent median triggers a trace',
  'trace.min_interval': 'at most one trace per path in this time',
  'trace.max_hops': 'the highest TTL tried',
  'trace.port': 'the first UDP destination port (one more per hop)',
  'trace.names': 'look up the reverse name of each hop',
  web: "the agent's own dashboard; off unless `web:` is present",
  'web.listen': 'where the dashboard listens',
};

const ms = (v: number) => `\`${formatDuration(v)}\``;

/** Defaults, from DEFAULTS where the schema has one. */
export const DEFAULT_TEXT: Record<string, string> = {
  'agent.id': 'the host name',
  'services[].baseline': `\`${DEFAULTS.baseline}\``,
  'services[].probes': '`defaults.probes`; one of the two must name at least one probe',
  'services[].probes.udp.port': String(DEFAULTS.udpPort),
  'services[].probes.tcp.port': String(DEFAULTS.tcpPort),
  'services[].probes.udp.site_tlv_bytes': String(DEFAULT_SITE_TLV_BYTES),
  'services[].probes.tcp.echo': '`false`',
  'services[].probes.tcp.connect_clock': '`kernel` where available',
  'services[].probes.tcp.echo_clock': '`kernel` where available',
  'services[].probes.tls.port': String(DEFAULTS.tlsPort),
  'services[].probes.dns.port': String(DEFAULTS.dnsPort),
  'services[].probes.dns.transport': `\`${DNS_PROBE_DEFAULTS.transport}\``,
  'services[].probes.dns.qname': `\`${DNS_PROBE_DEFAULTS.qname}\``,
  'services[].probes.dns.qtype': `\`${DNS_PROBE_DEFAULTS.qtype}\``,
  'services[].probes.dns.nsid': `\`${String(DNS_PROBE_DEFAULTS.nsid)}\``,
  'services[].probes.transfer.sizes': '`[16KiB, 256KiB, 2MiB]`',
  'services[].probes.transfer.port': '8080',
  'services[].probes.transfer.samples': '3',
  'services[].probes.transfer.timeout': "the service's `timeout`",
  'services[].probes.transfer.insecure': '`false`',
  'influx.set_aside_after': '`1h`',
  'web.metrics': '`false`',
  'trace.enabled': '`true` when `trace:` is present',
  'trace.shift_ms': String(TRACE_CONFIG_DEFAULTS.shiftMs),
  'trace.min_interval': ms(TRACE_CONFIG_DEFAULTS.minIntervalMs),
  'trace.max_hops': String(TRACE_CONFIG_DEFAULTS.maxHops),
  'trace.port': String(TRACE_CONFIG_DEFAULTS.port),
  'trace.names': '`true`',
  'metrics.listen': `\`${DEFAULTS.metricsListen.host}:${DEFAULTS.metricsListen.port}\``,
  'services[].probes.tls.insecure': '`false`',
  'services[].probes.http.insecure': '`false`',
  'services[].probes.http.warm': '`true`',
  'services[].probes.http.ttfb_clock': '`kernel` where available (plain http)',
  'services[].samples': String(DEFAULTS.samples),
  'services[].spacing': ms(DEFAULTS.spacingMs),
  'services[].timeout': ms(DEFAULTS.timeoutMs),
  'services[].schedule': `\`${DEFAULTS.schedule}\``,
  'services[].deadline': '90% of the interval',
  'services[].terminates_tcp': `\`${String(DEFAULTS.terminatesTcp)}\``,
  'services[].max_in_flight': '32',
  'store.path': `\`${DEFAULTS.storeFile}\` in \`$STATE_DIRECTORY\` (systemd), else next to the config file`,
  'store.retention.age': ms(DEFAULTS.retentionAgeMs),
  'store.retention.rows': String(DEFAULTS.retentionRows),
  'web.listen': `\`${DEFAULTS.webListen.host}:${DEFAULTS.webListen.port}\``,
};

/** The rows of the reference: every key of the schema (the base directory only resolves files). */
export function referenceRows(): ReferenceRow[] {
  return walkSchema(configSchema('/'));
}

/** Keys that repeat `services[]`'s: `defaults.x` and an `agents:` part's `services[].x`. */
const REPEATS: ReadonlyArray<readonly [string, string]> = [
  ['defaults.', 'for every service that does not set it'],
  ['agents[].defaults.', "for the matching agents' services, over `defaults`"],
  ['agents[].services[].', "for the matching agents' service of that name"],
];

/** The key of `services[]` a repeated key stands for, and how. */
function repeatOf(path: string): { key: string; how: string } | undefined {
  for (const [prefix, how] of REPEATS)
    if (path.startsWith(prefix)) return { key: `services[].${path.slice(prefix.length)}`, how };
  return undefined;
}

/** The meaning of a key; a repeated key is described by its `services[]` key. */
export function meaningOf(path: string): string | undefined {
  const r = repeatOf(path);
  if (r) return MEANINGS[r.key] === undefined ? undefined : `as \`${r.key}\`, ${r.how}`;
  return MEANINGS[path];
}

const cell = (s: string) => s.replace(/\|/g, '\\|');

/** docs/configuration.md */
export function configReference(): string {
  const rows = referenceRows();
  const lines = [
    '# Configuration reference',
    '',
    '<!-- Generated from agent/config/schema.ts by `npm run docs:config` (agent/config/reference.ts); do not edit.',
    '     test/config-reference.test.ts fails when this file differs from what the schema says. -->',
    '',
    'Every key `anylat.yaml` accepts, generated from the schema the agent validates with, so the',
    'types and the required keys here are the ones `anylat config check` enforces. "expects" is',
    'worded as the error messages word it. How the file is read (environment variables, relative',
    'paths, the rules between fields, the messages): [agent.md](agent.md#the-config-file); a',
    'commented example: `anylat.example.yaml`.',
    '',
  ];
  const sections = new Map<string, ReferenceRow[]>();
  for (const r of rows) {
    const top = r.path.split(/[.[]/)[0]!;
    if (!sections.has(top)) sections.set(top, []);
    sections.get(top)!.push(r);
  }
  for (const [top, list] of sections) {
    lines.push(`## \`${top}\``, '');
    const head = list.find((r) => r.path === top);
    if (head) {
      const meaning = meaningOf(top);
      lines.push(
        `${meaning ? `${meaning[0]!.toUpperCase()}${meaning.slice(1)}. ` : ''}${head.required ? 'Required' : 'Optional'}; expects ${cell(head.expected)}.`,
        '',
      );
    }
    // repeated keys (`defaults.x`, an `agents:` part's services) are listed once, under `services`
    const keys = list.filter((r) => r.path !== top && repeatOf(r.path) === undefined);
    if (keys.length > 0) {
      lines.push('| key | required | expects | default | meaning |', '|---|---|---|---|---|');
      for (const r of keys) {
        const dflt = DEFAULT_TEXT[r.path];
        lines.push(
          `| \`${r.path}\` | ${r.required ? 'yes' : ''} | ${cell(r.expected)} | ${cell(dflt ?? '')} | ${cell(meaningOf(r.path) ?? '')} |`,
        );
      }
      lines.push('');
    }
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

/** Where the generated page lives. */
export const REFERENCE_FILE = join(PACKAGE_ROOT, 'docs', 'configuration.md');

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(REFERENCE_FILE, configReference());
  console.log(`wrote ${REFERENCE_FILE}`);
}
