// `anylat trace <target>`: the route to one address on demand, hop by hop (the same tracer the agent
// runs when a site changes, a path goes down or the benefit shifts).
import { parseArgs } from 'node:util';
import { TRACE_DEFAULTS, trace, type TraceResult } from '../net/trace.ts';
import { parseDuration } from '../util/duration.ts';
import { UsageError } from '../util/errors.ts';
import { parseArgsOrUsage, parseCount, parsePort } from './args.ts';

const HELP = `usage: anylat trace <target> [--port N] [--max-hops N] [--timeout 1s] [--deadline 10s] [-n] [--json]

The route to <target> (an address or a name): UDP datagrams with rising TTL to high ports, the
ICMP time-exceeded and port-unreachable answers read from the socket's error queue; no root needed
(Linux). Each hop: TTL, address (* when nobody answered), RTT (kernel receive stamp), reverse name.

  --port N        first destination port; TTL t probes port N + t − 1 (default ${TRACE_DEFAULTS.port})
  --max-hops N    give up after N hops (default ${TRACE_DEFAULTS.maxHops}, at most 64)
  --timeout DUR   wait per probe (default ${TRACE_DEFAULTS.probeTimeoutMs}ms)
  --deadline DUR  the whole trace, reverse names included (default ${TRACE_DEFAULTS.deadlineMs / 1000}s)
  -n, --numeric   no reverse names
  --json          print the trace as JSON (the fields the store and InfluxDB use)`;

/** The hops as a table, one line per TTL, like traceroute. */
export function formatTrace(r: TraceResult): string {
  const head = `trace to ${r.target}${r.target === r.address ? '' : ` (${r.address})`}, udp port ${r.port}: ${r.reached ? `reached in ${r.hops.length} hop${r.hops.length === 1 ? '' : 's'}` : 'not reached'}, ${r.duration_ms.toFixed(0)} ms`;
  const lines = r.hops.map((h) => {
    const who = h.address === undefined ? '*' : h.name !== undefined ? `${h.name} (${h.address})` : h.address;
    const rtt = h.rtt_ms === undefined ? '' : `  ${h.rtt_ms.toFixed(3)} ms`;
    const tail = h.note ?? (h.reached ? '  (target)' : '');
    return `${String(h.ttl).padStart(3)}  ${who}${rtt}${tail.startsWith('!') ? ` ${tail}` : tail}`;
  });
  return [head, ...lines].join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgsOrUsage(
    () =>
      parseArgs({
        args: argv,
        allowPositionals: true,
        options: {
          port: { type: 'string' },
          'max-hops': { type: 'string' },
          timeout: { type: 'string' },
          deadline: { type: 'string' },
          numeric: { type: 'boolean', short: 'n', default: false },
          json: { type: 'boolean', default: false },
          help: { type: 'boolean', short: 'h', default: false },
        },
      }),
    'trace',
  );
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`trace: expected one target, got ${positionals.length === 0 ? 'none' : positionals.join(' ')} (see anylat trace --help)`);
  const maxHops = parseCount(values['max-hops'], '--max-hops', TRACE_DEFAULTS.maxHops);
  if (maxHops > 64) throw new UsageError(`--max-hops: expected at most 64, got ${maxHops}`);
  const port = parsePort(values.port, '--port', TRACE_DEFAULTS.port);
  if (port + maxHops - 1 > 65_535) throw new UsageError(`--port: ${port} + --max-hops ${maxHops} runs past port 65535`);
  const result = await trace(positionals[0]!, {
    port,
    maxHops,
    probeTimeoutMs: values.timeout === undefined ? TRACE_DEFAULTS.probeTimeoutMs : parseDuration(values.timeout, '--timeout'),
    deadlineMs: values.deadline === undefined ? TRACE_DEFAULTS.deadlineMs : parseDuration(values.deadline, '--deadline'),
    names: !values.numeric,
  });
  process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatTrace(result)}\n`);
  return 0;
}
