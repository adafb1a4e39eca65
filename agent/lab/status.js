// `lab status`: the lab as it is, read from the state directory and the namespaces themselves.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeLab } from "./lab.js";
import { labNamespaces, run } from "./netns.js";
import { isAlive } from "./processes.js";
import { labDir, readState } from "./state.js";
import { allNodes } from "./topology.js";
async function interfacesUp(netns) {
    const out = new Map();
    const r = await run('ip', ['-n', netns, '-j', 'link', 'show']);
    if (r.code !== 0)
        return out;
    for (const l of JSON.parse(r.stdout))
        out.set(l.ifname, l.flags.includes('UP'));
    return out;
}
/** The lab as it is: namespaces, processes (alive or not), links with delays and counters, failures. */
export async function labStatus(opts = {}) {
    const dir = labDir(opts.dir);
    const present = labNamespaces();
    let state;
    try {
        state = readState(dir);
    }
    catch {
        state = undefined;
    }
    if (!state) {
        return { up: false, phase: 'down', dir, namespaces: present.map((name) => ({ name, expected: false, present: true })), processes: [], links: [] };
    }
    const t = state.topology;
    const expected = allNodes(t).map((n) => n.netns);
    const namespaces = [...new Set([...expected, ...present])].map((name) => ({ name, expected: expected.includes(name), present: present.includes(name) }));
    let wire;
    try {
        wire = JSON.parse(readFileSync(join(dir, 'wire-stats.json'), 'utf8'));
    }
    catch {
        wire = undefined;
    }
    const ifs = new Map();
    await Promise.all(expected.filter((ns) => present.includes(ns)).map(async (ns) => ifs.set(ns, await interfacesUp(ns))));
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
