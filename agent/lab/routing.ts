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

/** `ip -batch` lines that (re)install one namespace's routes under `f`; idempotent. */
export function routeCommands(t: LabTopology, node: LabNode, f: Failures): string[] {
  const out: string[] = [];
  const ifTo = (l: LabLink) => (l.a.node === node.id ? l.a : l.b);
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
