// `lab status`: the lab as it is, read from the state directory and the namespaces themselves.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeLab, type LabDescription, type LabOptions } from './lab.ts';
import { labNamespaces, run } from './netns.ts';
import { isAlive, type LabProcess } from './processes.ts';
import { labDir, readState, type LabState } from './state.ts';
import { allNodes, type LabLink } from './topology.ts';
import type { WireStats } from './wire-spec.ts';

/** What `lab status` shows. */
export interface LabStatus {
  up: boolean;
  phase: LabState['phase'] | 'down';
  dir: string;
  /** `anylat-` namespaces present, and whether the topology expects them */
  namespaces: Array<{ name: string; expected: boolean; present: boolean }>;
  processes: Array<LabProcess & { alive: boolean }>;
  links: Array<LabLink & { up: boolean; stats?: WireStats['links'][string] }>;
  /** how late the wire sent packets against their due time, last 4096 packets (µs) */
  wireLateness?: WireStats['lateness_us'];
  description?: LabDescription;
}

async function interfacesUp(netns: string): Promise<Map<string, boolean>> {
  const out = new Map<string, boolean>();
  const r = await run('ip', ['-n', netns, '-j', 'link', 'show']);
  if (r.code !== 0) return out;
  for (const l of JSON.parse(r.stdout) as Array<{ ifname: string; flags: string[] }>)
    out.set(l.ifname, l.flags.includes('UP'));
  return out;
}

/** The lab as it is: namespaces, processes (alive or not), links with delays and counters, failures. */
export async function labStatus(opts: LabOptions = {}): Promise<LabStatus> {
  const dir = labDir(opts.dir);
  const present = labNamespaces();
  let state: LabState | undefined;
  try {
    state = readState(dir);
  } catch {
    state = undefined;
  }
  if (!state) {
    return {
      up: false,
      phase: 'down',
      dir,
      namespaces: present.map((name) => ({ name, expected: false, present: true })),
      processes: [],
      links: [],
    };
  }
  const t = state.topology;
  const expected = allNodes(t).map((n) => n.netns);
  const namespaces = [...new Set([...expected, ...present])].map((name) => ({
    name,
    expected: expected.includes(name),
    present: present.includes(name),
  }));
  let wire: WireStats | undefined;
  try {
    wire = JSON.parse(readFileSync(join(dir, 'wire-stats.json'), 'utf8')) as WireStats;
  } catch {
    wire = undefined;
  }
  const ifs = new Map<string, Map<string, boolean>>();
  await Promise.all(
    expected.filter((ns) => present.includes(ns)).map(async (ns) => ifs.set(ns, await interfacesUp(ns))),
  );
  const processes = state.processes.map((p) => ({ ...p, alive: isAlive(p) }));
  const links = t.links.map((l) => ({
    ...l,
    up: ifs.get(l.a.netns)?.get(l.a.ifname) === true && ifs.get(l.b.netns)?.get(l.b.ifname) === true,
    ...(wire?.links[l.id] ? { stats: wire.links[l.id] } : {}),
  }));
  return {
    up: state.phase === 'up' && processes.every((p) => p.alive) && namespaces.every((n) => n.present || !n.expected),
    phase: state.phase,
    dir,
    namespaces,
    processes,
    links,
    ...(wire ? { wireLateness: wire.lateness_us } : {}),
    description: describeLab(state, dir),
  };
}
