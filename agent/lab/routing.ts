// Where anycast lands and which origin serves it, given what has failed: the same choice BGP
// anycast and Global Accelerator's health checks make, reduced to "nearest one that is up".
// Pure functions of the topology, so the CLI, the edges and `status` all agree.
import { linkBetween, type LabLink, type LabNode, type LabTopology } from './topology.ts';

/** What is failed right now (regions). */
export interface Failures {
  edges: string[];
  origins: string[];
}

export const NO_FAILURES: Failures = { edges: [], origins: [] };

function nearest(
  from: LabNode,
  candidates: LabNode[],
  down: string[],
  t: LabTopology,
): { node: LabNode; link: LabLink } | undefined {
  let best: { node: LabNode; link: LabLink } | undefined;
  for (const c of candidates) {
    if (down.includes(c.region)) continue;
    const link = linkBetween(t, from.id, c.id);
    if (!link) continue;
    if (!best || link.delayMs < best.link.delayMs) best = { node: c, link };
  }
  return best;
}

/** The edge an agent's anycast traffic reaches: the nearest edge that is up, over its access link. */
export function edgeFor(t: LabTopology, agent: LabNode, f: Failures): { node: LabNode; link: LabLink } | undefined {
  return nearest(agent, t.edges, f.edges, t);
}

/** The origin an edge relays to: the nearest origin that is up, over its backbone link. */
export function originFor(t: LabTopology, edge: LabNode, f: Failures): { node: LabNode; link: LabLink } | undefined {
  return nearest(edge, t.origins, f.origins, t);
}

/** `ip -batch` lines for one namespace's addresses on its link ends and loopback. */
export function addressCommands(t: LabTopology, node: LabNode): string[] {
  const out = ['link set dev lo up'];
  if (node.kind !== 'agent' && node.address) out.push(`address add ${node.address}/32 dev lo`);
  for (const l of t.links) {
    for (const end of [l.a, l.b]) {
      if (end.node !== node.id) continue;
      // No IPv6 link-local address: keeps router solicitations off the wire and its counters.
      out.push(`link set dev ${end.ifname} addrgenmode none`);
      out.push(`address add ${end.address}/30 dev ${end.ifname}`);
      out.push(`link set dev ${end.ifname} up`);
    }
  }
  return out;
}

/**
 * Destination ports of the traceroute probes the edges forward to their origin (traceroute's own
 * range: `anylat trace` sends TTL t to port 33434 + t − 1). Every other packet to the anycast address
 * ends at the edge, as with Global Accelerator.
 */
export const TRACE_PORTS = { first: 33434, last: 33534 } as const;

/** Routing table of an edge's traceroute forwarding; an origin uses one table per backbone link above it. */
const TRACE_TABLE = 100;

/**
 * The edges and origins are routers for traceroute probes to the anycast address, so that
 * `anylat trace ANYCAST` from an agent shows where the edge sends UDP: hop 1 is the edge (its end of
 * the agent's access link), hop 2 the origin serving it now (its end of the backbone link), and the
 * last hop the anycast address, answered by the edge after the origin handed the probe back. A UDP
 * probe in {@link TRACE_PORTS} that reaches an edge over an access link is routed (policy rule ahead
 * of the local table) over the backbone to the serving origin, which routes it back to that edge
 * (one table per backbone link, chosen by the incoming interface), where it is local. Each hop is
 * plain Linux forwarding: TTL decremented, ICMP time exceeded sent from the interface's address.
 * The `ip -batch` lines here are installed once at `up`; the routes they use are in
 * {@link routeCommands}, which follows the failures.
 */
export function traceRuleCommands(t: LabTopology, node: LabNode): string[] {
  const out: string[] = [];
  const dport = `ipproto udp dport ${TRACE_PORTS.first}-${TRACE_PORTS.last}`;
  const ends = t.links.flatMap((l) => [l.a, l.b].map((end) => ({ l, end }))).filter((x) => x.end.node === node.id);
  if (node.kind === 'edge') {
    for (const { l, end } of ends)
      if (l.class === 'access') out.push(`rule add pref 100 iif ${end.ifname} ${dport} lookup ${TRACE_TABLE}`);
  } else if (node.kind === 'origin') {
    ends
      .filter((x) => x.l.class === 'backbone')
      .forEach(({ end }, i) => out.push(`rule add pref 100 iif ${end.ifname} ${dport} lookup ${TRACE_TABLE + 1 + i}`));
  } else return out;
  // The local table moves behind the rules above (it is consulted first by default).
  out.push('rule add pref 1000 lookup local', 'rule del pref 0 lookup local');
  return out;
}

/** The addresses a trace from `agent` to the anycast address shows under `f` (empty: nothing answers). */
export function anycastTraceHops(t: LabTopology, agent: LabNode, f: Failures): string[] {
  const e = edgeFor(t, agent, f);
  if (!e) return [];
  const o = originFor(t, e.node, f);
  const far = (l: LabLink, from: LabNode) => (l.a.node === from.id ? l.b : l.a).address;
  return o ? [far(e.link, agent), far(o.link, e.node), t.anycast] : [t.anycast];
}

/** `ip -batch` lines that (re)install one namespace's routes under `f`; idempotent. */
export function routeCommands(t: LabTopology, node: LabNode, f: Failures): string[] {
  const out: string[] = [];
  const ifTo = (l: LabLink) => (l.a.node === node.id ? l.a : l.b);
  if (node.kind === 'edge') {
    // Traceroute probes follow the UDP relay: to the origin serving this edge now.
    const o = originFor(t, node, f);
    if (o) out.push(`route replace ${t.anycast}/32 dev ${ifTo(o.link).ifname} table ${TRACE_TABLE}`);
  }
  if (node.kind === 'origin') {
    // Probes come back to the edge they came from, and the origin's time-exceeded answers reach
    // an agent's access address over the backbone link to that access link's edge.
    t.links
      .filter((l) => l.class === 'backbone' && (l.a.node === node.id || l.b.node === node.id))
      .forEach((l, i) => {
        const dev = ifTo(l).ifname;
        const edge = l.a.node === node.id ? l.b.node : l.a.node;
        out.push(`route replace ${t.anycast}/32 dev ${dev} table ${TRACE_TABLE + 1 + i}`);
        for (const acc of t.links)
          if (acc.class === 'access' && (acc.a.node === edge || acc.b.node === edge))
            out.push(`route replace ${acc.prefix} dev ${dev}`);
      });
  }
  if (node.kind === 'agent') {
    // With every edge down the route stays on the nearest (failed) edge's link, whose far end is
    // down: packets vanish and probes time out, as when no point of presence answers. (A
    // blackhole route would fail sends at once with EINVAL instead.)
    const edge = edgeFor(t, node, f) ?? edgeFor(t, node, NO_FAILURES);
    if (edge) out.push(`route replace ${t.anycast}/32 dev ${ifTo(edge.link).ifname} src ${ifTo(edge.link).address}`);
  }
  if (node.kind === 'agent' || node.kind === 'edge') {
    for (const o of t.origins) {
      const link = linkBetween(t, node.id, o.id);
      if (link && o.address)
        out.push(`route replace ${o.address}/32 dev ${ifTo(link).ifname} src ${ifTo(link).address}`);
    }
  }
  return out;
}

/** Interfaces of a node (its link ends). */
export function interfacesOf(t: LabTopology, node: LabNode): string[] {
  return t.links
    .flatMap((l) => [l.a, l.b])
    .filter((e) => e.node === node.id)
    .map((e) => e.ifname);
}
