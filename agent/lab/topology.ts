// The lab's topology file (agent/lab/topology.yaml is the default and its documentation): read,
// checked, and resolved into every namespace, link, address and delay the lab creates. Nothing
// here touches the system, so `anylat lab show` works anywhere.
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { fileURLToPath } from 'node:url';
import { LineCounter, isMap, parseDocument, type Node } from 'yaml';
import { ConfigError } from '../util/errors.ts';

/** The topology file `anylat lab up` uses when none is given. */
export const DEFAULT_TOPOLOGY_FILE = fileURLToPath(new URL('./topology.yaml', import.meta.url));

/** Prefix of every namespace and process the lab creates. */
export const LAB_PREFIX = 'anylat-';

export type NodeKind = 'agent' | 'edge' | 'origin';
export type LinkClass = 'access' | 'backbone' | 'internet';

/** Delay, jitter and loss of one link (both directions alike). */
export interface LinkParams {
  /** one-way delay floor, ms */
  delayMs: number;
  /** extra one-way delay per packet, uniform in [0, jitterMs] */
  jitterMs: number;
  /** packets lost per direction, percent */
  lossPct: number;
  /** bandwidth per direction, Mbit/s (a tbf qdisc on each end's device); absent: unlimited */
  rateMbit?: number;
}

/** An agent, edge or origin: one network namespace. */
export interface LabNode {
  kind: NodeKind;
  region: string;
  /** `agent/us-east`: how the CLI and overrides name it */
  id: string;
  /** network namespace, `anylat-agent-us-east` */
  netns: string;
  /** origins: the unicast address its reflector binds; edges: the anycast address */
  address?: string;
}

/** One end of a link. */
export interface LinkEnd {
  node: string;
  netns: string;
  ifname: string;
  address: string;
}

/** A point-to-point link: two TUN devices joined by the wire. */
export interface LabLink extends LinkParams {
  /** `agent/us-east~edge/eu-west` */
  id: string;
  class: LinkClass;
  /** the /30 both ends share */
  prefix: string;
  /** the agent end (access, internet) or the edge end (backbone) */
  a: LinkEnd;
  b: LinkEnd;
}

/** A topology file, resolved. */
export interface LabTopology {
  file: string;
  anycast: string;
  /** `dns`: the reflectors' DNS answers (UDP and TCP), relayed by the edges like the others */
  ports: { udp: number; tcp: number; http: number; dns: number };
  agents: LabNode[];
  edges: LabNode[];
  origins: LabNode[];
  links: LabLink[];
}

interface ClassSpec {
  stretch: number;
  extraMs: number;
  jitterMs: number;
  lossPct: number;
  /** 0: unlimited */
  rateMbit?: number;
}

const REGION = /^[a-z][a-z0-9-]{0,11}$/;
const CLASS_DEFAULTS: Record<LinkClass, ClassSpec> = {
  access: { stretch: 1, extraMs: 1, jitterMs: 0.2, lossPct: 0 },
  backbone: { stretch: 1, extraMs: 0.5, jitterMs: 0.1, lossPct: 0 },
  internet: { stretch: 1.25, extraMs: 1.5, jitterMs: 2, lossPct: 0 },
};
const TOP_KEYS = [
  'anycast',
  'ports',
  'link_prefix',
  'agents',
  'edges',
  'origins',
  'distance_ms',
  'classes',
  'overrides',
];

type Path = Array<string | number>;

class Problems {
  readonly list: string[] = [];
  constructor(
    private readonly file: string,
    private readonly locate: (path: Path) => number,
  ) {}
  add(path: Path, message: string): void {
    const where =
      path.length === 0
        ? ''
        : ` ${path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('')}:`;
    this.list.push(`${this.file}:${this.locate(path)}:${where} ${message}`);
  }
  /** `v` when it is a number in [min, max]; else a problem saying `what` was expected. */
  num(path: Path, v: unknown, min: number, max: number, what: string): number | undefined {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      this.add(path, `expected ${what}, got ${JSON.stringify(v) ?? 'nothing'}`);
      return undefined;
    }
    return v;
  }
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function inPrefix(ip: string, base: number, bits: number): boolean {
  const size = 2 ** (32 - bits);
  const v = ipToInt(ip);
  return v >= base && v < base + size;
}

/** 10/8, 172.16/12, 192.168/16 and the benchmarking range 198.18/15: never routed on the internet. */
export function isLabAddress(ip: string): boolean {
  return (
    isIPv4(ip) &&
    (inPrefix(ip, ipToInt('10.0.0.0'), 8) ||
      inPrefix(ip, ipToInt('172.16.0.0'), 12) ||
      inPrefix(ip, ipToInt('192.168.0.0'), 16) ||
      inPrefix(ip, ipToInt('198.18.0.0'), 15))
  );
}

const PRIVATE_HINT = 'an IPv4 address in 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 198.18.0.0/15';

/** Reads, checks and resolves a topology file. Throws ConfigError listing every problem with its line. */
export function loadTopology(file: string = DEFAULT_TOPOLOGY_FILE): LabTopology {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([
      `${file}: cannot read the topology file (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    ]);
  }
  return parseTopology(text, file);
}

/** Checks and resolves topology YAML; `file` names it in messages. */
export function parseTopology(text: string, file = '<topology>'): LabTopology {
  const { data, p } = readDocument(text, file);
  for (const key of Object.keys(data))
    if (!TOP_KEYS.includes(key)) p.add([key], `unknown key (known: ${TOP_KEYS.join(', ')})`);

  // anycast
  const anycast = data.anycast ?? '198.18.0.10';
  if (typeof anycast !== 'string' || !isLabAddress(anycast))
    p.add(['anycast'], `expected ${PRIVATE_HINT}, got ${JSON.stringify(anycast)}`);

  const ports = readPorts(data.ports, p);
  const agentRegions = readRegions(data, 'agents', p);
  const edgeRegions = readRegions(data, 'edges', p);
  const origins = readOrigins(data.origins, anycast, p);
  const linkCount =
    agentRegions.length * edgeRegions.length +
    edgeRegions.length * origins.length +
    agentRegions.length * origins.length;
  const linkBase = readLinkPrefix(data.link_prefix, linkCount, origins, anycast, p);
  const distance = readDistances(data.distance_ms, p);
  const distanceOf = (r1: string, r2: string, path: Path): number => {
    if (r1 === r2) return 0;
    const d = distance.get([r1, r2].sort().join(' '));
    if (d === undefined) {
      p.add(path, `no one-way delay between ${r1} and ${r2}: add distance_ms.${r1}.${r2}`);
      return 0;
    }
    return d;
  };
  const classes = readClasses(data.classes, p);

  // nodes and links
  const node = (kind: NodeKind, region: string, address?: string): LabNode => ({
    kind,
    region,
    id: `${kind}/${region}`,
    netns: `${LAB_PREFIX}${kind}-${region}`,
    ...(address ? { address } : {}),
  });
  const agents = agentRegions.map((r) => node('agent', r));
  const edges = edgeRegions.map((r) => node('edge', r, typeof anycast === 'string' ? anycast : undefined));
  const originNodes = origins.map((o) => node('origin', o.region, o.address));
  const links: LabLink[] = [];
  const addLink = (klass: LinkClass, x: LabNode, y: LabNode): void => {
    const d = distanceOf(x.region, y.region, ['distance_ms']);
    links.push(makeLink(klass, x, y, classes[klass], d, linkBase + 4 * links.length));
  };
  for (const a of agents) for (const e of edges) addLink('access', a, e);
  for (const e of edges) for (const o of originNodes) addLink('backbone', e, o);
  for (const a of agents) for (const o of originNodes) addLink('internet', a, o);

  applyOverrides(data.overrides, links, p);

  if (p.list.length > 0) throw new ConfigError([...new Set(p.list)]);
  return { file, anycast: anycast as string, ports, agents, edges, origins: originNodes, links };
}

/** The file as a mapping, and where its problems go; a syntax error or a non-mapping throws at once. */
function readDocument(text: string, file: string): { data: Record<string, unknown>; p: Problems } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => `${file}:${e.linePos?.[0]?.line ?? 1}: ${e.message.split('\n')[0]!.replace(/:$/, '')}`),
    );
  }
  const locate = (path: Path): number => {
    for (let depth = path.length; depth >= 0; depth--) {
      const node = doc.getIn(path.slice(0, depth), true) as Node | undefined;
      if (node && typeof node === 'object' && 'range' in node && node.range) return lines.linePos(node.range[0]).line;
    }
    return 1;
  };
  const raw: unknown = doc.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || !isMap(doc.contents)) {
    throw new ConfigError([`${file}:1: expected a mapping with anycast, agents, edges, origins, distance_ms, ...`]);
  }
  return { data: raw as Record<string, unknown>, p: new Problems(file, locate) };
}

function readPorts(value: unknown, p: Problems): LabTopology['ports'] {
  const ports = { udp: 862, tcp: 862, http: 8080, dns: 8053 };
  if (value === undefined) return ports;
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    p.add(['ports'], 'expected a mapping with udp, tcp, http, dns');
  else
    for (const [k, v] of Object.entries(value)) {
      if (k !== 'udp' && k !== 'tcp' && k !== 'http' && k !== 'dns')
        p.add(['ports', k], 'unknown key (known: udp, tcp, http, dns)');
      else {
        const port = p.num(['ports', k], v, 1, 65535, 'a port 1..65535');
        if (port !== undefined) {
          if (!Number.isInteger(port)) p.add(['ports', k], `expected a whole port number, got ${port}`);
          ports[k] = port;
        }
      }
    }
  if (ports.tcp === ports.http)
    p.add(['ports', 'http'], `the http port must differ from the tcp port (both ${ports.tcp})`);
  // DNS listens on UDP and TCP: it shares neither with another part.
  for (const other of ['udp', 'tcp', 'http'] as const) {
    if (ports.dns === ports[other])
      p.add(
        ['ports', 'dns'],
        `the dns port must differ from the ${other} port (both ${ports.dns}): DNS listens on UDP and TCP`,
      );
  }
  return ports;
}

function readRegions(data: Record<string, unknown>, key: 'agents' | 'edges', p: Problems): string[] {
  const v = data[key];
  if (!Array.isArray(v) || v.length === 0) {
    p.add([key], `expected a list of region names, e.g. [us-east, eu-west], got ${JSON.stringify(v) ?? 'nothing'}`);
    return [];
  }
  const seen = new Set<string>();
  return v.flatMap((r, i) => {
    if (typeof r !== 'string' || !REGION.test(r)) {
      p.add(
        [key, i],
        `expected a region name (lower-case letters, digits, "-"; at most 12 characters, starting with a letter), got ${JSON.stringify(r)}`,
      );
      return [];
    }
    if (seen.has(r)) {
      p.add([key, i], `region "${r}" is listed twice`);
      return [];
    }
    seen.add(r);
    return [r];
  });
}

function readOrigins(value: unknown, anycast: unknown, p: Problems): Array<{ region: string; address: string }> {
  const origins: Array<{ region: string; address: string }> = [];
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Object.keys(value).length === 0) {
    p.add(['origins'], 'expected a mapping of region to unicast address, e.g. {us-east: 10.78.0.1}');
    return origins;
  }
  const seen = new Set<string>();
  for (const [r, addr] of Object.entries(value)) {
    if (!REGION.test(r))
      p.add(
        ['origins', r],
        'expected a region name (lower-case letters, digits, "-"; at most 12 characters, starting with a letter)',
      );
    else if (typeof addr !== 'string' || !isLabAddress(addr))
      p.add(['origins', r], `expected ${PRIVATE_HINT}, got ${JSON.stringify(addr)}`);
    else if (addr === anycast || seen.has(addr))
      p.add(
        ['origins', r],
        `address ${addr} is already used; every origin needs its own, other than the anycast address`,
      );
    else {
      seen.add(addr);
      origins.push({ region: r, address: addr });
    }
  }
  return origins;
}

/** The first address of the links' prefix (10.77.0.0 when it is wrong: the problem is reported). */
function readLinkPrefix(
  value: unknown,
  linkCount: number,
  origins: ReadonlyArray<{ region: string; address: string }>,
  anycast: unknown,
  p: Problems,
): number {
  let linkBase = ipToInt('10.77.0.0');
  const prefixText = value ?? '10.77.0.0/16';
  const m = typeof prefixText === 'string' ? /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(prefixText) : null;
  if (!m || !isLabAddress(m[1]!) || Number(m[2]) < 8 || Number(m[2]) > 30) {
    p.add(
      ['link_prefix'],
      `expected a CIDR prefix inside ${PRIVATE_HINT.replace('an IPv4 address in ', '')}, e.g. 10.77.0.0/16, got ${JSON.stringify(prefixText)}`,
    );
  } else {
    const bits = Number(m[2]);
    const size = 2 ** (32 - bits);
    linkBase = ipToInt(m[1]!) - (ipToInt(m[1]!) % size);
    if (linkCount * 4 > size)
      p.add(
        ['link_prefix'],
        `${prefixText as string} holds ${size / 4} /30 links; this topology needs ${linkCount}: use a shorter prefix`,
      );
    for (const o of origins)
      if (inPrefix(o.address, linkBase, bits))
        p.add(['origins', o.region], `${o.address} lies inside link_prefix ${prefixText as string}`);
    if (typeof anycast === 'string' && isIPv4(anycast) && inPrefix(anycast, linkBase, bits))
      p.add(['anycast'], `${anycast} lies inside link_prefix ${prefixText as string}`);
  }
  return linkBase;
}

/** One-way delays keyed by the two regions, sorted and joined by a space. */
function readDistances(dist: unknown, p: Problems): Map<string, number> {
  const distance = new Map<string, number>();
  if (dist !== undefined && (dist === null || typeof dist !== 'object' || Array.isArray(dist))) {
    p.add(['distance_ms'], 'expected a mapping: region -> {other region: one-way ms}');
  } else if (dist) {
    for (const [r1, row] of Object.entries(dist as Record<string, unknown>)) {
      if (row === null || typeof row !== 'object' || Array.isArray(row)) {
        p.add(['distance_ms', r1], 'expected a mapping: other region -> one-way ms');
        continue;
      }
      for (const [r2, v] of Object.entries(row)) {
        const ms = p.num(['distance_ms', r1, r2], v, 0, 10_000, 'a one-way delay in ms ≥ 0');
        if (ms === undefined) continue;
        const key = [r1, r2].sort().join(' ');
        if (distance.has(key) && distance.get(key) !== ms)
          p.add(['distance_ms', r1, r2], `${r1} ↔ ${r2} is given twice with different values`);
        distance.set(key, ms);
      }
    }
  }
  return distance;
}

function readClasses(cls: unknown, p: Problems): Record<LinkClass, ClassSpec> {
  const classes: Record<LinkClass, ClassSpec> = structuredClone(CLASS_DEFAULTS);
  if (cls === undefined) return classes;
  if (cls === null || typeof cls !== 'object' || Array.isArray(cls)) {
    p.add(['classes'], 'expected a mapping with access, backbone, internet');
    return classes;
  }
  for (const [name, spec] of Object.entries(cls as Record<string, unknown>)) {
    if (name !== 'access' && name !== 'backbone' && name !== 'internet') {
      p.add(['classes', name], 'unknown link class (known: access, backbone, internet)');
      continue;
    }
    if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
      p.add(['classes', name], 'expected a mapping with stretch, extra_ms, jitter_ms, loss_pct, rate_mbit');
      continue;
    }
    for (const [k, v] of Object.entries(spec)) {
      const path = ['classes', name, k];
      if (k === 'stretch') classes[name].stretch = p.num(path, v, 0, 100, 'a factor ≥ 0') ?? 1;
      else if (k === 'extra_ms') classes[name].extraMs = p.num(path, v, 0, 10_000, 'ms ≥ 0') ?? 0;
      else if (k === 'jitter_ms') classes[name].jitterMs = p.num(path, v, 0, 10_000, 'ms ≥ 0') ?? 0;
      else if (k === 'loss_pct') classes[name].lossPct = p.num(path, v, 0, 100, 'a percentage 0..100') ?? 0;
      else if (k === 'rate_mbit') classes[name].rateMbit = p.num(path, v, 0, 100_000, 'Mbit/s ≥ 0 (0: unlimited)') ?? 0;
      else p.add(path, 'unknown key (known: stretch, extra_ms, jitter_ms, loss_pct, rate_mbit)');
    }
  }
  return classes;
}

const IF_PREFIX: Record<NodeKind, string> = { agent: 'a-', edge: 'e-', origin: 'o-' };

/** The link of class `klass` from `x` to `y` over regions `distanceMs` apart, on the /30 at `base`. */
function makeLink(klass: LinkClass, x: LabNode, y: LabNode, c: ClassSpec, distanceMs: number, base: number): LabLink {
  return {
    id: `${x.id}~${y.id}`,
    class: klass,
    prefix: `${intToIp(base)}/30`,
    delayMs: round3(distanceMs * c.stretch + c.extraMs),
    jitterMs: c.jitterMs,
    lossPct: c.lossPct,
    ...(c.rateMbit ? { rateMbit: c.rateMbit } : {}),
    a: { node: x.id, netns: x.netns, ifname: `${IF_PREFIX[y.kind]}${y.region}`, address: intToIp(base + 1) },
    b: { node: y.id, netns: y.netns, ifname: `${IF_PREFIX[x.kind]}${x.region}`, address: intToIp(base + 2) },
  };
}

/** `overrides:`: per-link delay, jitter, loss and rate, applied to `links` in place. */
function applyOverrides(ov: unknown, links: LabLink[], p: Problems): void {
  if (ov === undefined || ov === null) return;
  if (!Array.isArray(ov)) {
    p.add(['overrides'], 'expected a list of {between: [agent/REGION, origin/REGION], delay_ms, jitter_ms, loss_pct}');
    return;
  }
  ov.forEach((item: unknown, i) => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      p.add(['overrides', i], 'expected a mapping {between: [X, Y], delay_ms, jitter_ms, loss_pct}');
      return;
    }
    const o = item as Record<string, unknown>;
    const between = o.between;
    if (!Array.isArray(between) || between.length !== 2 || !between.every((b) => typeof b === 'string')) {
      p.add(['overrides', i, 'between'], 'expected two node names, e.g. [agent/ap-south, origin/us-east]');
      return;
    }
    const [x, y] = between as [string, string];
    const link = links.find((l) => (l.a.node === x && l.b.node === y) || (l.a.node === y && l.b.node === x));
    if (!link) {
      p.add(
        ['overrides', i, 'between'],
        `no link joins ${x} and ${y} (links join agent-edge, edge-origin and agent-origin; names are kind/region)`,
      );
      return;
    }
    for (const [k, v] of Object.entries(o)) {
      const path = ['overrides', i, k];
      if (k === 'between') continue;
      if (k === 'delay_ms') link.delayMs = p.num(path, v, 0, 10_000, 'ms ≥ 0') ?? link.delayMs;
      else if (k === 'jitter_ms') link.jitterMs = p.num(path, v, 0, 10_000, 'ms ≥ 0') ?? link.jitterMs;
      else if (k === 'loss_pct') link.lossPct = p.num(path, v, 0, 100, 'a percentage 0..100') ?? link.lossPct;
      else if (k === 'rate_mbit') {
        const r = p.num(path, v, 0, 100_000, 'Mbit/s ≥ 0 (0: unlimited)');
        if (r !== undefined) {
          if (r > 0) link.rateMbit = r;
          else delete link.rateMbit;
        }
      } else p.add(path, 'unknown key (known: between, delay_ms, jitter_ms, loss_pct, rate_mbit)');
    }
  });
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Every node of the topology, agents first. */
export function allNodes(t: LabTopology): LabNode[] {
  return [...t.agents, ...t.edges, ...t.origins];
}

/** The link between two nodes (by id, either order). */
export function linkBetween(t: LabTopology, x: string, y: string): LabLink | undefined {
  return t.links.find((l) => (l.a.node === x && l.b.node === y) || (l.a.node === y && l.b.node === x));
}
