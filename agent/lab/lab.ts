// The lab's lifecycle: up (namespaces, wire, addresses, routes, edges, origins), down (everything
// it made, also after a crash), status, and fail/heal of edges and origins. Each call works from
// any process: what it needs is in the state directory.
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AnylatError, EnvironmentError, UsageError } from '../util/errors.ts';
import {
  addNamespace,
  deleteNamespace,
  execIn,
  ipBatch,
  labNamespaces,
  listeningIn,
  namespacePids,
  tcBatch,
} from './netns.ts';
import {
  entry,
  isAlive,
  markedProcesses,
  startDaemon,
  startTimeOf,
  stopProcesses,
  TSX_IMPORT,
  type LabProcess,
} from './processes.ts';
import {
  addressCommands,
  anycastTraceHops,
  edgeFor,
  interfacesOf,
  NO_FAILURES,
  originFor,
  routeCommands,
  traceRuleCommands,
  type Failures,
} from './routing.ts';
import { labDir, readState, removeStateDir, withLock, writeState, type LabState } from './state.ts';
import { allNodes, loadTopology, type LabLink, type LabNode, type LabTopology } from './topology.ts';
import { directionParams, type WireSpec } from './wire-spec.ts';
import { ANYLAT_BIN } from '../util/package.ts';

const READY_TIMEOUT_MS = 30_000;

/** Options every lab call takes. */
export interface LabOptions {
  /** state directory (default `$ANYLAT_LAB_DIR` or /run/anylat-lab) */
  dir?: string;
  /** progress lines (default: none) */
  log?: (line: string) => void;
}

/** Options of {@link labUp}. */
export interface LabUpOptions extends LabOptions {
  /** a topology file path, or a topology already loaded (default: agent/lab/topology.yaml) */
  topology?: string | LabTopology;
}

/** Round-trip times a path implies: never below `minMs`, `meanMs` on average (jitter is uniform). */
export interface ExpectedRtt {
  minMs: number;
  meanMs: number;
}

/** Everything a caller needs to use a running lab (also what `lab up --json` prints). */
export interface LabDescription {
  dir: string;
  topologyFile: string;
  anycast: string;
  ports: { udp: number; tcp: number; http: number; dns: number };
  failures: Failures;
  agents: Array<{
    region: string;
    id: string;
    netns: string;
    /** where the anycast address leads from here right now */
    anycast: {
      /** the edge answering (null when every edge is failed) */
      edge: string | null;
      /** the origin that edge relays to, i.e. the site a reflector reply names */
      origin: string | null;
      /** ping of the anycast address: answered by the edge, over the access link */
      edgeRtt: ExpectedRtt | null;
      /** UDP/TCP echo through the edge to the origin: access + backbone links */
      originRtt: ExpectedRtt | null;
      /**
       * the hop addresses `anylat trace ANYCAST` shows: the edge's end of the access link, the
       * serving origin's end of the backbone link, the anycast address (empty when no edge is up)
       */
      trace: string[];
    };
    /** each origin's unicast address, over this agent's internet link to it */
    unicast: Array<{ origin: string; address: string; rtt: ExpectedRtt; lossPct: number; failed: boolean }>;
  }>;
  edges: Array<{ region: string; id: string; netns: string; failed: boolean; origin: string | null }>;
  origins: Array<{ region: string; id: string; netns: string; address: string; site: string; failed: boolean }>;
  links: LabLink[];
  processes: LabProcess[];
}

/** Throws EnvironmentError (exit 2) unless this host can run the lab: Linux, root, TUN, iproute2. */
export function checkHost(): void {
  if (process.platform !== 'linux') {
    throw new EnvironmentError(
      'ANYLAT_LAB_PLATFORM',
      `the lab needs Linux (network namespaces and TUN devices); this is ${process.platform}. Run it in a Linux VM, or in a container started with --privileged`,
    );
  }
  if (process.getuid?.() !== 0) {
    throw new EnvironmentError(
      'ANYLAT_LAB_ROOT',
      'the lab needs root (it creates network namespaces and TUN devices): run it with sudo, e.g. "sudo npx anylat lab up" (or "sudo anylat lab up" after "npm link")',
    );
  }
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    throw new EnvironmentError(
      'ANYLAT_LAB_TUN',
      'the lab needs /dev/net/tun: load the module ("modprobe tun"), or in a container add --device /dev/net/tun --cap-add NET_ADMIN',
    );
  }
  for (const bin of ['ip', 'ss']) {
    if (!['/usr/sbin', '/sbin', '/usr/bin', '/bin'].some((d) => existsSync(join(d, bin)))) {
      throw new EnvironmentError(
        'ANYLAT_LAB_IPROUTE',
        `the lab needs "${bin}" from iproute2: install it (apt-get install iproute2)`,
      );
    }
  }
}

function sumRtt(links: LabLink[]): ExpectedRtt {
  const delay = links.reduce((s, l) => s + l.delayMs, 0);
  const jitter = links.reduce((s, l) => s + l.jitterMs, 0);
  // Each link is crossed twice, each crossing adding uniform [0, jitter]: mean jitter/2 each way.
  return { minMs: round3(2 * delay), meanMs: round3(2 * delay + jitter) };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Describes a lab from its state: who is where, what the anycast address reaches, expected RTTs. */
export function describeLab(state: LabState, dir: string): LabDescription {
  const t = state.topology;
  const f = state.failures;
  return {
    dir,
    topologyFile: t.file,
    anycast: t.anycast,
    ports: t.ports,
    failures: f,
    agents: t.agents.map((a) => {
      const e = edgeFor(t, a, f);
      const o = e ? originFor(t, e.node, f) : undefined;
      return {
        region: a.region,
        id: a.id,
        netns: a.netns,
        anycast: {
          edge: e?.node.region ?? null,
          origin: o?.node.region ?? null,
          edgeRtt: e ? sumRtt([e.link]) : null,
          originRtt: e && o ? sumRtt([e.link, o.link]) : null,
          trace: anycastTraceHops(t, a, f),
        },
        unicast: t.origins.map((origin) => {
          const link = t.links.find((l) => l.class === 'internet' && l.a.node === a.id && l.b.node === origin.id)!;
          return {
            origin: origin.region,
            address: origin.address!,
            rtt: sumRtt([link]),
            lossPct: link.lossPct,
            failed: f.origins.includes(origin.region),
          };
        }),
      };
    }),
    edges: t.edges.map((e) => ({
      region: e.region,
      id: e.id,
      netns: e.netns,
      failed: f.edges.includes(e.region),
      origin: originFor(t, e, f)?.node.region ?? null,
    })),
    origins: t.origins.map((o) => ({
      region: o.region,
      id: o.id,
      netns: o.netns,
      address: o.address!,
      site: o.region,
      failed: f.origins.includes(o.region),
    })),
    links: t.links,
    processes: state.processes,
  };
}

function logTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n    ');
  } catch {
    return '(no log)';
  }
}

async function waitUntil(what: string, proc: LabProcess, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (await check()) return;
    // The log's tail goes into the message: a failed `up` removes the state directory with it.
    if (!isAlive(proc))
      throw new AnylatError(
        'ANYLAT_LAB_START',
        `${proc.name} exited before ${what}; the end of its log:\n    ${logTail(proc.log)}`,
      );
    if (Date.now() > deadline)
      throw new AnylatError(
        'ANYLAT_LAB_START',
        `${proc.name} not ${what} after ${READY_TIMEOUT_MS / 1000} s; the end of its log:\n    ${logTail(proc.log)}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitListening(proc: LabProcess, address: string, tcp: number[], udp: number[]): Promise<void> {
  await waitUntil(
    `listening on ${address} (tcp ${[...new Set(tcp)].join(',')}, udp ${udp.join(',')})`,
    proc,
    async () => {
      const l = await listeningIn(proc.netns!);
      return tcp.every((p) => l.tcp.includes(`${address}:${p}`)) && udp.every((p) => l.udp.includes(`${address}:${p}`));
    },
  );
}

function wireSpec(t: LabTopology, dir: string): WireSpec {
  return {
    title: 'anylat-wire',
    readyFile: join(dir, 'wire.ready'),
    statsFile: join(dir, 'wire-stats.json'),
    links: t.links.map((l) => {
      const p = directionParams({ delayMs: l.delayMs, jitterMs: l.jitterMs, lossPct: l.lossPct });
      return {
        id: l.id,
        a: { netns: l.a.netns, ifname: l.a.ifname },
        b: { netns: l.b.netns, ifname: l.b.ifname },
        ab: p,
        ba: { ...p },
      };
    }),
  };
}

/**
 * `tc` commands that cap each of `node`'s shaped links at its rate, one token bucket (tbf) on the
 * node's end of the link, so each direction is capped by its sender. The bucket holds 1 ms of the
 * rate (at least 16 KiB, a couple of TSO bursts), and at most 50 ms of queue waits behind it:
 * enough for a TCP flow to fill the link, short enough not to hide the link's own delay.
 */
export function rateCommands(t: LabTopology, node: LabNode): string[] {
  const out: string[] = [];
  for (const l of t.links) {
    if (l.rateMbit === undefined) continue;
    const burst = Math.max(16 * 1024, Math.ceil((l.rateMbit * 1e6) / 8 / 1000));
    for (const end of [l.a, l.b]) {
      if (end.netns === node.netns)
        out.push(`qdisc replace dev ${end.ifname} root tbf rate ${l.rateMbit}mbit burst ${burst} latency 50ms`);
    }
  }
  return out;
}

/** Writes `spec` to `specFile`, starts a wire process for it and waits until its TUN devices exist. */
export async function startWire(
  spec: WireSpec,
  files: { specFile: string; log: string },
  name = 'wire',
): Promise<LabProcess> {
  writeFileSync(files.specFile, JSON.stringify(spec, null, 2));
  const proc = startDaemon({
    role: 'wire',
    name,
    log: files.log,
    argv: [process.execPath, '--import', TSX_IMPORT, entry('wire-main.ts'), files.specFile],
    comm: { name: spec.title, binDir: join(dirname(files.specFile), 'bin') },
  });
  await waitUntil('ready', proc, () => existsSync(spec.readyFile));
  return proc;
}

/** What each step of {@link labUp} works on: the state grows as processes start. */
interface UpContext {
  dir: string;
  log: (line: string) => void;
  topology: LabTopology;
  state: LabState;
}

/** Brings the lab up; throws (after cleaning up) if any part fails. */
export async function labUp(opts: LabUpOptions = {}): Promise<LabDescription> {
  checkHost();
  const dir = labDir(opts.dir);
  const log = opts.log ?? (() => {});
  const topology = typeof opts.topology === 'object' ? opts.topology : loadTopology(opts.topology);
  return withLock(dir, async () => {
    refuseExistingLab(dir);
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const state: LabState = {
      version: 1,
      phase: 'starting',
      createdAt: new Date().toISOString(),
      topology,
      failures: { edges: [], origins: [] },
      processes: [],
    };
    writeState(dir, state);
    const ctx: UpContext = { dir, log, topology, state };
    try {
      await buildLab(ctx);
      state.phase = 'up';
      writeState(dir, state);
      log('lab is up');
      return describeLab(state, dir);
    } catch (err) {
      log(`failed, cleaning up: ${(err as Error).message}`);
      await teardown(dir);
      throw err;
    }
  });
}

function refuseExistingLab(dir: string): void {
  const leftovers = labNamespaces();
  if (leftovers.length > 0 || readState(dir)) {
    throw new EnvironmentError(
      'ANYLAT_LAB_EXISTS',
      `a lab is already up (or left behind by a crash): ${leftovers.length > 0 ? `namespaces ${leftovers.join(', ')}` : `state in ${dir}`}. Run "anylat lab down" first`,
    );
  }
}

async function buildLab(ctx: UpContext): Promise<void> {
  const { dir, log, topology, state } = ctx;
  const nodes = allNodes(topology);
  log(`creating ${nodes.length} namespaces`);
  for (const n of nodes) await addNamespace(n.netns);

  log(`starting the wire: ${topology.links.length} links`);
  state.processes.push(
    await startWire(wireSpec(topology, dir), {
      specFile: join(dir, 'wire-spec.json'),
      log: join(dir, 'logs', 'wire.log'),
    }),
  );
  writeState(dir, state);

  log('addresses and routes');
  await Promise.all(
    nodes.map((n) =>
      ipBatch(n.netns, [
        ...addressCommands(topology, n),
        ...traceRuleCommands(topology, n),
        ...routeCommands(topology, n, NO_FAILURES),
      ]),
    ),
  );
  await enableForwarding(topology);
  const shaped = topology.links.filter((l) => l.rateMbit !== undefined);
  if (shaped.length > 0) {
    log(`bandwidth limits on ${shaped.length} links`);
    await Promise.all(nodes.map((n) => tcBatch(n.netns, rateCommands(topology, n))));
  }

  log(`starting ${topology.edges.length} edges and ${topology.origins.length} origins`);
  // Every process is started and the state written before any wait: when one does not come up,
  // the teardown finds the others in the state.
  const starting = [...startEdges(ctx), ...startOrigins(ctx)];
  writeState(dir, state);
  await Promise.all(starting);
}

// Edges and origins forward traceroute probes (routing.ts): plain forwarding, no reverse-path
// filter (a probe comes back to its edge over the backbone), and no ICMP rate limit, so a
// trace right after another still gets every hop's answer.
async function enableForwarding(topology: LabTopology): Promise<void> {
  await Promise.all(
    [...topology.edges, ...topology.origins].map(async (n) => {
      const r = await execIn(n.netns, 'sysctl', [
        '-q',
        '-w',
        'net.ipv4.ip_forward=1',
        'net.ipv4.conf.all.rp_filter=0',
        'net.ipv4.conf.default.rp_filter=0',
        'net.ipv4.icmp_ratelimit=0',
      ]);
      if (r.code !== 0)
        throw new AnylatError('ANYLAT_LAB_EXEC', `sysctl in ${n.netns} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
    }),
  );
}

/** Starts every edge and records it in the state; the promises settle once each one listens. */
function startEdges({ dir, topology, state }: UpContext): Array<Promise<void>> {
  const starting: Array<Promise<void>> = [];
  for (const e of topology.edges) {
    const proc = startDaemon({
      role: 'edge',
      name: e.id,
      netns: e.netns,
      log: join(dir, 'logs', `edge-${e.region}.log`),
      argv: [process.execPath, '--import', TSX_IMPORT, entry('edge-main.ts'), dir, e.region],
      comm: { name: `anylat-edge-${e.region}`, binDir: join(dir, 'bin') },
      favoured: true,
    });
    state.processes.push(proc);
    starting.push(
      waitListening(
        proc,
        topology.anycast,
        [...new Set([topology.ports.tcp, topology.ports.http, topology.ports.dns])],
        [topology.ports.udp, topology.ports.dns],
      ),
    );
  }
  return starting;
}

/** Starts every origin's reflector and records it in the state; as {@link startEdges}. */
function startOrigins({ dir, topology, state }: UpContext): Array<Promise<void>> {
  const starting: Array<Promise<void>> = [];
  for (const o of topology.origins) {
    const proc = startDaemon({
      role: 'origin',
      name: o.id,
      netns: o.netns,
      log: join(dir, 'logs', `origin-${o.region}.log`),
      argv: originArgv(topology, o),
      comm: { name: `anylat-origin-${o.region}`, binDir: join(dir, 'bin') },
      favoured: true,
    });
    state.processes.push(proc);
    starting.push(
      waitListening(
        proc,
        o.address!,
        [topology.ports.tcp, topology.ports.http, topology.ports.dns],
        [topology.ports.udp, topology.ports.dns],
      ),
    );
  }
  return starting;
}

// No per-source rate limit or TCP connection cap: an edge relays every agent it serves from one
// address (with the cap of 16, a busy lab had edges' connections reset).
function originArgv(topology: LabTopology, o: LabNode): string[] {
  return [
    process.execPath,
    ANYLAT_BIN,
    'reflector',
    '--bind',
    o.address!,
    '--site',
    o.region,
    '--udp-port',
    String(topology.ports.udp),
    '--tcp-port',
    String(topology.ports.tcp),
    '--http-port',
    String(topology.ports.http),
    '--rate-limit',
    '0',
    '--tcp-per-source',
    '0',
    '--dns-port',
    String(topology.ports.dns),
    '--dns-rate-limit',
    '0',
    '--bytes-rate-limit',
    '0',
  ];
}

/** What {@link labDown} removed. */
export interface DownReport {
  namespaces: string[];
  /** processes that were running and got stopped */
  processes: Array<{ pid: number; comm: string }>;
}

async function teardown(dir: string): Promise<DownReport> {
  let state: LabState | undefined;
  try {
    state = readState(dir);
  } catch {
    state = undefined;
  }
  const victims = new Map<number, { pid: number; startTime: string }>();
  for (const p of state?.processes ?? []) victims.set(p.pid, p);
  const namespaces = labNamespaces();
  // Anything running in a lab namespace goes with it (edges, reflectors, agents a demo started).
  for (const ns of namespaces) {
    for (const pid of await namespacePids(ns)) {
      const st = startTimeOf(pid);
      if (st !== undefined) victims.set(pid, { pid, startTime: st });
    }
  }
  // The wire lives in the root namespace: found by its mark when the state file is gone.
  for (const pid of markedProcesses()) {
    const st = startTimeOf(pid);
    if (st !== undefined) victims.set(pid, { pid, startTime: st });
  }
  const stopped = await stopProcesses([...victims.values()]);
  const problems: string[] = [];
  for (const ns of namespaces) {
    try {
      await deleteNamespace(ns);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (problems.length > 0) {
    // The state stays, so a second `lab down` can finish the job.
    throw new AnylatError(
      'ANYLAT_LAB_DOWN_INCOMPLETE',
      `lab down could not remove everything:\n  ${problems.join('\n  ')}\nrun "anylat lab down" again; "ip netns list" shows what is left`,
    );
  }
  removeStateDir(dir);
  return { namespaces, processes: stopped };
}

/** Removes every lab namespace and process (also after a crash); safe when nothing is up. */
export async function labDown(opts: LabOptions = {}): Promise<DownReport> {
  checkHost();
  const dir = labDir(opts.dir);
  return withLock(dir, () => teardown(dir));
}

/** The running lab's state; throws EnvironmentError (exit 2) when no lab is up. */
export function requireLab(opts: LabOptions = {}): LabState {
  return requireState(labDir(opts.dir));
}

function requireState(dir: string): LabState {
  const state = readState(dir);
  if (!state)
    throw new EnvironmentError('ANYLAT_LAB_DOWN', `no lab is up (no state in ${dir}): run "anylat lab up" first`);
  return state;
}

/** Reads the lab's description without touching anything; throws when no lab is up. */
export function labDescription(opts: LabOptions = {}): LabDescription {
  const dir = labDir(opts.dir);
  return describeLab(requireState(dir), dir);
}

/** Re-installs every route and interface state so they match the state's failures. */
async function applyFailures(state: LabState, previous: Failures): Promise<void> {
  const t = state.topology;
  const f = state.failures;
  const isFailed = (n: LabNode) =>
    (n.kind === 'edge' ? f.edges : n.kind === 'origin' ? f.origins : []).includes(n.region);
  const wasFailed = (n: LabNode) =>
    (n.kind === 'edge' ? previous.edges : n.kind === 'origin' ? previous.origins : []).includes(n.region);
  // A failed node's interfaces go down (it stops answering, and its routes with them); a healed
  // one's come back up and get their routes again.
  for (const n of allNodes(t)) {
    if (isFailed(n) && !wasFailed(n))
      await ipBatch(
        n.netns,
        interfacesOf(t, n).map((i) => `link set dev ${i} down`),
      );
    if (!isFailed(n) && wasFailed(n))
      await ipBatch(
        n.netns,
        interfacesOf(t, n).map((i) => `link set dev ${i} up`),
      );
  }
  await Promise.all(
    allNodes(t)
      .filter((n) => !isFailed(n))
      .map((n) => ipBatch(n.netns, routeCommands(t, n, f))),
  );
  for (const p of state.processes) if (p.role === 'edge' && isAlive(p)) process.kill(p.pid, 'SIGHUP');
}

function kindOf(kind: string): 'edge' | 'origin' {
  if (kind !== 'edge' && kind !== 'origin') throw new UsageError(`lab: expected "edge" or "origin", got "${kind}"`);
  return kind;
}

function checkRegion(t: LabTopology, kind: 'edge' | 'origin', region: string): void {
  const nodes = kind === 'edge' ? t.edges : t.origins;
  if (!nodes.some((n) => n.region === region)) {
    throw new UsageError(`lab: no ${kind} in region "${region}" (${kind}s: ${nodes.map((n) => n.region).join(', ')})`);
  }
}

/**
 * Fails an edge (agents' anycast routes move to the next-nearest edge) or an origin (edges relay
 * to the next-nearest origin; its unicast address stops answering). Idempotent.
 */
export async function fail(kind: 'edge' | 'origin', region: string, opts: LabOptions = {}): Promise<LabDescription> {
  checkHost();
  const k = kindOf(kind);
  const dir = labDir(opts.dir);
  return withLock(dir, async () => {
    const state = requireState(dir);
    checkRegion(state.topology, k, region);
    const previous = structuredClone(state.failures);
    const list = k === 'edge' ? state.failures.edges : state.failures.origins;
    if (!list.includes(region)) list.push(region);
    writeState(dir, state);
    await applyFailures(state, previous);
    return describeLab(state, dir);
  });
}

/** Heals one edge or origin, or (no arguments) everything. Idempotent. */
export async function heal(kind?: 'edge' | 'origin', region?: string, opts: LabOptions = {}): Promise<LabDescription> {
  checkHost();
  const dir = labDir(opts.dir);
  return withLock(dir, async () => {
    const state = requireState(dir);
    const previous = structuredClone(state.failures);
    if (kind === undefined) state.failures = { edges: [], origins: [] };
    else {
      const k = kindOf(kind);
      if (region === undefined)
        throw new UsageError(`lab heal ${k}: which region? e.g. "anylat lab heal ${k} us-east"`);
      checkRegion(state.topology, k, region);
      if (k === 'edge') state.failures.edges = state.failures.edges.filter((r) => r !== region);
      else state.failures.origins = state.failures.origins.filter((r) => r !== region);
    }
    writeState(dir, state);
    await applyFailures(state, previous);
    return describeLab(state, dir);
  });
}

/** Resolves `agent/us-east` (or `anylat-agent-us-east`) to the lab node. */
export function findNode(t: LabTopology, name: string): LabNode {
  const node = allNodes(t).find((n) => n.id === name || n.netns === name);
  if (!node)
    throw new UsageError(
      `lab: no node "${name}" (nodes: ${allNodes(t)
        .map((n) => n.id)
        .join(', ')})`,
    );
  return node;
}
