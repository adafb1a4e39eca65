// The config file of each demo agent: one per lab agent, generated from the lab's description so a
// changed topology (regions, addresses, ports) needs no hand-written config. The YAML goes through
// the same loader and checks as any user's config when `anylat run` starts.
import type { LabDescription } from '../lab/index.ts';
import { formatDuration } from '../util/duration.ts';

/** The service every demo agent measures. */
export const DEMO_SERVICE = 'demo';
/**
 * The same endpoints measured by downloads (the transfer protocol) once a minute, with `anylat demo
 * --transfer`: its own service, because a round of downloads takes longer than the demo's short
 * latency rounds allow. Off by default: every downloaded byte crosses the lab's one user-space wire
 * process, and on a busy 2-core machine the latency rounds then miss their deadlines.
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
  /** also measure service `demo-transfer` (downloads once a minute); default off: see DEMO_TRANSFER_SERVICE */
  transfer?: boolean;
}

export const DEFAULT_ROUNDS: DemoRounds = { intervalMs: 10_000, samples: 10, spacingMs: 100 };

/**
 * The timeout the demo derives for the default topology, used to check that a round fits its
 * interval before the lab exists (a topology with longer paths is checked when each agent loads
 * its config).
 */
export const MAX_DERIVED_TIMEOUT_MS = 2_000;

/**
 * A sample's timeout: three of the lab's longest round trips (an HTTP sample's connect, request and
 * warm second request share one timeout; a TCP echo needs two), plus 1 s so that one retransmitted
 * SYN still answers in time (Linux resends a SYN after 1 s), plus 250 ms for the agent's own
 * wake-ups on a busy machine (a loaded 2-CPU VM was seen taking 300 ms between a connect and the
 * request the probe sends on it), at least 1.5 s. With 150 ms of slack instead, a healthy lab on a
 * busy machine lost 10-80 % of its TCP echoes and warm HTTP requests to the 243 ms path (the wire,
 * the edges and the reflector had answered every one within a few ms). A longer timeout costs a
 * round nothing while paths answer, and every sample of a round is in flight at once, so samples
 * waiting on a failed origin hold back no other path.
 */
export function probeTimeoutMs(lab: LabDescription): number {
  const rtts = lab.agents.flatMap((a) => [...a.unicast.map((u) => u.rtt.meanMs), a.anycast.originRtt?.meanMs ?? 0]);
  return Math.max(1_500, Math.ceil((3 * Math.max(...rtts) + 1_250) / 100) * 100);
}

/** The agent id a demo agent gets for a lab region. */
export function demoAgentId(region: string): string {
  return `demo-${region}`;
}

/** Cron for "every N seconds"; N must divide a minute so that rounds stay evenly spaced. */
export function everySeconds(intervalMs: number): string {
  const s = intervalMs / 1000;
  if (!Number.isInteger(s) || s < 1 || 60 % s !== 0) {
    throw new RangeError(`round interval must be a whole number of seconds that divides a minute (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60), got ${intervalMs} ms`);
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
export function agentConfigYaml(lab: LabDescription, region: string, storePath: string, rounds: DemoRounds = DEFAULT_ROUNDS): string {
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
    ...(rounds.transfer ? transferService(lab, timeoutMs) : []),
    'store:',
    `  path: ${JSON.stringify(storePath)}`,
    '',
  ];
  return lines.join('\n');
}

/** The `demo-transfer` service of `--transfer` (see DEMO_TRANSFER_SERVICE). */
function transferService(lab: LabDescription, timeoutMs: number): string[] {
  return [
    `  - name: ${DEMO_TRANSFER_SERVICE}`,
    `    anycast: ${lab.anycast}`,
    '    unicast:',
    ...lab.origins.map((o) => `      ${o.region}: ${o.address}`),
    '    baseline: nearest',
    '    terminates_tcp: true',
    '    # One download of each size per endpoint a minute, one at a time, through the lab links\' bandwidth limits.',
    '    probes:',
    `      transfer: { port: ${lab.ports.http}, sizes: [16KiB, 256KiB, 2MiB], samples: 1, timeout: 4s }`,
    `    timeout: ${ms(timeoutMs)}`,
    `    schedule: "${everySeconds(60_000)}"`,
  ];
}
