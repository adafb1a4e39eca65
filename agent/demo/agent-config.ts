// The config file of each demo agent: one per lab agent, generated from the lab's description so a
// changed topology (regions, addresses, ports) needs no hand-written config. The YAML goes through
// the same loader and checks as any user's config when `anylat run` starts.
import type { LabDescription } from '../lab/index.ts';
import { formatDuration } from '../util/duration.ts';
import { phaseFor } from '../schedule/timing.ts';

/** The service every demo agent measures. */
export const DEMO_SERVICE = 'demo';
/**
 * The same endpoints measured by downloads (the transfer protocol) once a minute: its own service,
 * because a round of downloads takes longer than the demo's short latency rounds allow. It starts
 * half a latency interval after a latency round (second 5 of the minute with the 10 s default), so
 * its downloads do not start together with a latency round in the same agent. On by default
 * (`anylat demo --no-transfer` leaves it out): measured with and without it (docs/lab.md), the
 * latency rounds lost no sample and their flagged share stayed the same.
 */
export const DEMO_TRANSFER_SERVICE = 'demo-transfer';

/**
 * Where the lab's default regions would be (an AWS region's city), for the heartbeat's lat/lon.
 * The topology file has no coordinates, so a region not listed here simply has none.
 */
export const REGION_COORDINATES: Readonly<Record<string, { lat: number; lon: number }>> = {
  'us-east': { lat: 38.9, lon: -77.04 },
  'us-west': { lat: 45.52, lon: -122.68 },
  'eu-west': { lat: 53.35, lon: -6.26 },
  'eu-central': { lat: 50.11, lon: 8.68 },
  'ap-south': { lat: 19.08, lon: 72.88 },
  'ap-northeast': { lat: 35.68, lon: 139.69 },
  'ap-southeast': { lat: 1.35, lon: 103.82 },
  'sa-east': { lat: -23.55, lon: -46.63 },
};

/** How each demo agent measures; the defaults make numbers move within seconds. */
export interface DemoRounds {
  /** round interval in ms: a whole number of seconds that divides a minute (cron seconds field) */
  intervalMs: number;
  /** samples per (endpoint, protocol) per round */
  samples: number;
  /** between one path's consecutive samples */
  spacingMs: number;
  /** per sample; default from the lab's longest path (see probeTimeoutMs) */
  timeoutMs?: number;
  /** also measure service `demo-transfer` (downloads once a minute; the CLI's default): see DEMO_TRANSFER_SERVICE */
  transfer?: boolean;
}

export const DEFAULT_ROUNDS: DemoRounds = { intervalMs: 10_000, samples: 10, spacingMs: 100 };

/** The longest timeout the demo derives, used to check that a round fits its interval up front. */
export const MAX_DERIVED_TIMEOUT_MS = 1_000;

/**
 * A sample's timeout: three of the lab's longest round trips (an HTTP sample's connect, request and
 * warm second request share one timeout; a TCP echo needs two) plus 250 ms for the agent's own
 * wake-ups on a busy machine (with 150 ms, 2 of 20 TCP echoes over the 243 ms path timed out
 * under stress-ng), at least 500 ms. No longer, because every sample to a failed origin waits
 * this long: with 1.5 s, rounds of the end-to-end test (every 5 s, 20 samples 50 ms apart) with an
 * origin down ran past their 4 s deadline. What made healthy samples overrun by hundreds of ms on a
 * busy machine was the agents' own stalls (ping spawned on the main thread, a niceness the
 * kernel's autogroups ignored), fixed where they were, not slack here.
 */
export function probeTimeoutMs(lab: LabDescription): number {
  const rtts = lab.agents.flatMap((a) => [...a.unicast.map((u) => u.rtt.meanMs), a.anycast.originRtt?.meanMs ?? 0]);
  return Math.max(500, Math.ceil((3 * Math.max(...rtts) + 250) / 100) * 100);
}

/** The agent id a demo agent gets for a lab region. */
export function demoAgentId(region: string): string {
  return `demo-${region}`;
}

/** Cron for "every N seconds"; N must divide a minute so that rounds stay evenly spaced. */
export function everySeconds(intervalMs: number): string {
  const s = intervalMs / 1000;
  if (!Number.isInteger(s) || s < 1 || 60 % s !== 0) {
    throw new RangeError(
      `round interval must be a whole number of seconds that divides a minute (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60), got ${intervalMs} ms`,
    );
  }
  return s === 60 ? '0 * * * * *' : `*/${s} * * * * *`;
}

function ms(v: number): string {
  return formatDuration(Math.round(v));
}

/**
 * The YAML config of the demo agent in `region`: the anycast address against every origin's
 * unicast address, UDP STAMP, TCP echo, HTTP, ICMP and DNS on the lab's ports, writing to `storePath`.
 */
export function agentConfigYaml(
  lab: LabDescription,
  region: string,
  storePath: string,
  rounds: DemoRounds = DEFAULT_ROUNDS,
): string {
  const agent = lab.agents.find((a) => a.region === region);
  if (!agent) throw new RangeError(`the lab has no agent in region "${region}"`);
  const coords = REGION_COORDINATES[region];
  const timeoutMs = rounds.timeoutMs ?? probeTimeoutMs(lab);
  const paths = (lab.origins.length + 1) * 5;
  // Rounds end well before the next one is due; the config check verifies it fits.
  const deadlineMs = Math.max(1_000, rounds.intervalMs - 1_000);
  const lines = [
    `# Generated by "anylat demo" for the lab agent in ${region}; rewritten on every demo start.`,
    `# It is an ordinary agent config: "anylat config check --config <this file>" explains it.`,
    'agent:',
    `  id: ${demoAgentId(region)}`,
    `  region: ${region}`,
    ...(coords ? [`  lat: ${coords.lat}`, `  lon: ${coords.lon}`] : []),
    '  labels:',
    '    lab: demo',
    'services:',
    `  - name: ${DEMO_SERVICE}`,
    `    anycast: ${lab.anycast}`,
    '    unicast:',
    ...lab.origins.map((o) => `      ${o.region}: ${o.address}`),
    '    baseline: nearest',
    '    # The lab edges terminate TCP like Global Accelerator: TCP/HTTP connect are edge-scoped.',
    '    terminates_tcp: true',
    '    probes:',
    `      udp: { port: ${lab.ports.udp} }`,
    `      tcp: { port: ${lab.ports.tcp}, echo: true }`,
    // The URL's host is only the Host header: each request goes to the endpoint's address.
    `      http: { url: "http://${lab.anycast}:${lab.ports.http}/", warm: true }`,
    '      icmp:',
    `      dns: { port: ${lab.ports.dns} }`,
    `    samples: ${rounds.samples}`,
    `    spacing: ${ms(rounds.spacingMs)}`,
    `    timeout: ${ms(timeoutMs)}`,
    // Samples to a failed origin hold their slot until they time out: with room for every sample
    // of a round, they never hold back the paths that answer.
    `    max_in_flight: ${rounds.samples * paths}`,
    `    schedule: "${everySeconds(rounds.intervalMs)}"`,
    `    deadline: ${ms(deadlineMs)}`,
    ...(rounds.transfer ? transferService(lab, timeoutMs, transferSecond(demoAgentId(region), rounds.intervalMs)) : []),
    'store:',
    `  path: ${JSON.stringify(storePath)}`,
    '',
  ];
  return lines.join('\n');
}

/** The `demo-transfer` service (on unless `--no-transfer`; see DEMO_TRANSFER_SERVICE). */
/**
 * The second of the minute at which the agent's transfer round starts: half a latency interval after
 * one of its latency rounds starts (a latency round lasts a second or two), both services' phases
 * (schedule/timing.ts: a hash of agent id and service) taken into account.
 */
export function transferSecond(agentId: string, intervalMs: number): number {
  const latency = phaseFor(agentId, DEMO_SERVICE, intervalMs);
  const transfer = phaseFor(agentId, DEMO_TRANSFER_SERVICE, 60_000);
  const steps = intervalMs / 1000;
  const s = Math.round((latency + intervalMs / 2 - transfer) / 1000);
  return ((s % steps) + steps) % steps;
}

function transferService(lab: LabDescription, timeoutMs: number, offsetS: number): string[] {
  return [
    `  - name: ${DEMO_TRANSFER_SERVICE}`,
    `    anycast: ${lab.anycast}`,
    '    unicast:',
    ...lab.origins.map((o) => `      ${o.region}: ${o.address}`),
    '    baseline: nearest',
    '    terminates_tcp: true',
    "    # One download of each size per endpoint a minute, one at a time, through the lab links' bandwidth limits.",
    '    probes:',
    `      transfer: { port: ${lab.ports.http}, sizes: [16KiB, 256KiB, 2MiB], samples: 1, timeout: 4s }`,
    `    timeout: ${ms(timeoutMs)}`,
    `    schedule: "${offsetS} * * * * *"`,
  ];
}
