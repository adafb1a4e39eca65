// `anylat reflector`: the far end a service runs beside itself (STAMP on UDP, TCP echo, HTTP, DNS),
// until SIGTERM or SIGINT.
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { readStampKeyFile } from '../core/stamp-codec.ts';
import { startReflector, type ReflectorOptions } from '../reflector/index.ts';
import { BYTES_ROUTE_DEFAULTS } from '../reflector/bytes.ts';
import { DEFAULT_DNS_PORT, DNS_REFLECTOR_DEFAULTS } from '../reflector/dns.ts';
import { STAMP_REFLECTOR_DEFAULTS } from '../reflector/stamp.ts';
import { UsageError } from '../util/errors.ts';
import { parseArgsOrUsage, parsePort } from './args.ts';

export const REFLECTOR_USAGE = `usage: anylat reflector [options]

Runs the far end anylat measures against: a STAMP Session-Reflector (RFC 8762) on UDP, a TCP
echo and an HTTP endpoint, each on every bound address, all reporting the same site name.
Runs until SIGTERM or SIGINT.

options:
  --bind ADDR          local address to listen on; repeat for several (default: every address of
                       this host, one socket each, IPv6 link-local left out)
  --site NAME          the site name replies carry (default: this host's name)
  --udp-port N         STAMP port (default 862; 0 picks a free one)
  --tcp-port N         TCP echo port (default 862: a different protocol from UDP's 862)
  --http-port N        HTTP port (default 8080); HTTPS with --tls-cert/--tls-key
  --bytes-rate-limit B HTTP GET /bytes/N (N ≤ 10 MiB, the transfer probe's download): bytes per second
                       one source may download on average (default ${BYTES_ROUTE_DEFAULTS.bytesPerSecond}, burst ${BYTES_ROUTE_DEFAULTS.burstBytes}; 0 = none)
  --dns                answer DNS site queries too (CHAOS TXT hostname.bind / id.server and
                       EDNS NSID, UDP and TCP; everything else REFUSED) on port ${DEFAULT_DNS_PORT}
  --dns-port N         DNS port (implies --dns; 53 needs root or CAP_NET_BIND_SERVICE)
  --dns-rate-limit QPS DNS queries per second accepted from one source (default ${DNS_REFLECTOR_DEFAULTS.ratePerSourceQps}; 0 = none)
  --no-udp, --no-tcp, --no-http
                       leave that part out
  --auth-key-file F    STAMP authenticated mode (HMAC-SHA-256): F holds the key as hex digits
                       (at least 32, e.g. \`openssl rand -hex 32 > F\`); unauthenticated packets
                       are then dropped
  --tls-cert F --tls-key F
                       PEM certificate and key: the HTTP endpoint speaks HTTPS
  --rate-limit PPS     STAMP packets per second accepted from one source (default ${STAMP_REFLECTOR_DEFAULTS.ratePerSourcePps}; 0 = none)
  --tcp-per-source N   TCP echo connections open at once from one source (default 16; 0 = no
                       cap, for a reflector behind a relay that connects from one address)
  -h, --help           this text`;

const OPTIONS = {
  bind: { type: 'string', multiple: true },
  site: { type: 'string' },
  'udp-port': { type: 'string' },
  'tcp-port': { type: 'string' },
  'http-port': { type: 'string' },
  'no-udp': { type: 'boolean' },
  'no-tcp': { type: 'boolean' },
  'no-http': { type: 'boolean' },
  'bytes-rate-limit': { type: 'string' },
  dns: { type: 'boolean' },
  'dns-port': { type: 'string' },
  'dns-rate-limit': { type: 'string' },
  'auth-key-file': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'rate-limit': { type: 'string' },
  'tcp-per-source': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function readPem(path: string, option: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new UsageError(`${option} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

/** Parses and checks the command line into reflector options (reads key and certificate files). */
export async function reflectorOptions(argv: string[]): Promise<ReflectorOptions | 'help'> {
  const { values, positionals } = parseArgsOrUsage(
    () => parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }),
    'reflector',
  );
  if (values.help) return 'help';
  if (positionals.length > 0)
    throw new UsageError(
      `reflector: unexpected argument "${positionals[0]}" (every setting is an --option; see anylat reflector --help)`,
    );
  const binds = values.bind ?? [];
  for (const b of binds) {
    const bare = b.replace(/^\[(.*)\]$/, '$1');
    if (isIP(bare.split('%')[0]!) === 0)
      throw new UsageError(`--bind ${b}: expected an IP address of this host (e.g. 0.0.0.0, 192.0.2.10 or ::1)`);
  }
  const site = values.site ?? hostname();
  if (site.trim() === '' || /[\u0000-\u001f\u007f]/.test(site))
    throw new UsageError(`--site: expected a printable name (e.g. us-east-1), got ${JSON.stringify(site)}`);
  const dns = values.dns === true || values['dns-port'] !== undefined || values['dns-rate-limit'] !== undefined;
  if (values['no-udp'] && values['no-tcp'] && values['no-http'] && !dns)
    throw new UsageError(
      '--no-udp, --no-tcp and --no-http together leave nothing to run; drop one of them or add --dns',
    );
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) {
    throw new UsageError(
      '--tls-cert and --tls-key go together: give both (PEM certificate and its private key) or neither',
    );
  }
  let rate: number | undefined;
  if (values['rate-limit'] !== undefined) {
    rate = Number(values['rate-limit']);
    if (!Number.isFinite(rate) || rate < 0)
      throw new UsageError(`--rate-limit: expected packets per second ≥ 0, got "${values['rate-limit']}"`);
  }
  let perSource: number | undefined;
  if (values['tcp-per-source'] !== undefined) {
    perSource = Number(values['tcp-per-source']);
    if (!Number.isInteger(perSource) || perSource < 0)
      throw new UsageError(
        `--tcp-per-source: expected a whole number of connections ≥ 0, got "${values['tcp-per-source']}"`,
      );
  }
  let dnsRate: number | undefined;
  if (values['dns-rate-limit'] !== undefined) {
    dnsRate = Number(values['dns-rate-limit']);
    if (!/^\s*\d+(\.\d+)?\s*$/.test(values['dns-rate-limit']) || !Number.isFinite(dnsRate)) {
      throw new UsageError(`--dns-rate-limit: expected queries per second ≥ 0, got "${values['dns-rate-limit']}"`);
    }
  }
  let bytesRate: number | undefined;
  if (values['bytes-rate-limit'] !== undefined) {
    bytesRate = Number(values['bytes-rate-limit']);
    if (!/^\s*\d+\s*$/.test(values['bytes-rate-limit']))
      throw new UsageError(`--bytes-rate-limit: expected bytes per second ≥ 0, got "${values['bytes-rate-limit']}"`);
  }
  const dnsPort = parsePort(values['dns-port'], '--dns-port', DEFAULT_DNS_PORT, true);
  const udpPort = parsePort(values['udp-port'], '--udp-port', 862, true);
  const tcpPort = parsePort(values['tcp-port'], '--tcp-port', 862, true);
  const httpPort = parsePort(values['http-port'], '--http-port', 8080, true);
  const authKey = values['auth-key-file'] !== undefined ? await readStampKeyFile(values['auth-key-file']) : undefined;
  const tls =
    values['tls-cert'] !== undefined && values['tls-key'] !== undefined
      ? { cert: await readPem(values['tls-cert'], '--tls-cert'), key: await readPem(values['tls-key'], '--tls-key') }
      : undefined;
  return {
    site,
    binds: binds.map((b) => b.replace(/^\[(.*)\]$/, '$1')),
    udp: values['no-udp']
      ? false
      : { port: udpPort, ...(authKey ? { authKey } : {}), ...(rate !== undefined ? { ratePerSourcePps: rate } : {}) },
    tcp: values['no-tcp']
      ? false
      : { port: tcpPort, ...(perSource !== undefined ? { maxConnectionsPerSource: perSource } : {}) },
    http: values['no-http']
      ? false
      : { port: httpPort, ...(tls ? { tls } : {}), ...(bytesRate !== undefined ? { bytesPerSecond: bytesRate } : {}) },
    dns: dns ? { port: dnsPort, ...(dnsRate !== undefined ? { ratePerSourceQps: dnsRate } : {}) } : false,
  };
}

function hostPort(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

export async function run(argv: string[]): Promise<number> {
  const options = await reflectorOptions(argv);
  if (options === 'help') {
    process.stdout.write(`${REFLECTOR_USAGE}\n`);
    return 0;
  }
  // Listen for the signals before saying "listening": a supervisor may signal as soon as it reads that.
  const stop = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const log = (line: string) => process.stderr.write(`anylat reflector: ${line}\n`);
  const reflector = await startReflector({ ...options, log });
  for (const l of reflector.listening) {
    process.stdout.write(
      `listening ${l.kind.padEnd(4)} ${hostPort(l.address, l.port)} ${l.scheme} site=${options.site}\n`,
    );
  }
  const signal = await stop;
  await reflector.close();
  const stats = reflector.stats();
  const summary = Object.entries(stats)
    .map(
      ([kind, counters]) =>
        `${kind}: ${Object.entries(counters)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`,
    )
    .join('; ');
  process.stdout.write(`stopped on ${signal}; ${summary}\n`);
  return 0;
}
