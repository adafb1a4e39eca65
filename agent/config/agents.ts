// Per-agent parts of a shared config. One file serves a fleet; its `agents:` entries name who they
// apply to (`id`, `region`, one or a list each; an entry applies when either matches) and what
// changes for those agents: `labels` are added to the agent's, `defaults` override the shared
// defaults key by key, and `services` either override a shared service of the same name (only the
// fields the entry sets) or add a new one. Entries apply in file order, so a later one wins.
//
// This works on the parsed YAML before it is validated as a whole, so the effective config goes
// through exactly the rules a single-agent file does; `origin` maps a problem found in it back to
// the entry that wrote the value, so the message points at the line a person must edit.
import { formatPath, type PathSegment } from './source.ts';

type Dict = Record<string, unknown>;

function isDict(v: unknown): v is Dict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function listOf(v: unknown): unknown[] {
  return v === undefined || v === null ? [] : Array.isArray(v) ? v : [v];
}

/** Whether an `agents:` entry applies to the agent `id` in `region`. */
export function partApplies(part: Dict, id: string, region: unknown): boolean {
  return listOf(part.id).includes(id) || (region !== undefined && listOf(part.region).includes(region));
}

export interface AppliedParts {
  /** the effective document for one agent, without `agents:` */
  data: Dict;
  /** indexes of the `agents:` entries that applied */
  matched: number[];
  /** where a value of `data` was written: in an `agents:` entry, or where it is in the shared part */
  origin(path: readonly PathSegment[]): PathSegment[];
}

/** Applies the entries of `data.agents` that match agent `id` (and the document's region). */
export function applyAgentParts(data: Dict, id: string): AppliedParts {
  const out = structuredClone(data);
  const parts = Array.isArray(out.agents) ? out.agents : [];
  delete out.agents;
  const origins = new Map<string, PathSegment[]>();
  const matched: number[] = [];
  const agent = isDict(out.agent) ? out.agent : undefined;
  const services = Array.isArray(out.services) ? out.services : [];
  parts.forEach((part, j) => {
    if (!isDict(part) || !partApplies(part, id, agent?.region)) return;
    matched.push(j);
    if (isDict(part.labels) && agent) {
      agent.labels = { ...(isDict(agent.labels) ? agent.labels : {}), ...part.labels };
      for (const k of Object.keys(part.labels))
        origins.set(formatPath(['agent', 'labels', k]), ['agents', j, 'labels', k]);
    }
    if (isDict(part.defaults)) {
      out.defaults = { ...(isDict(out.defaults) ? out.defaults : {}), ...part.defaults };
      for (const k of Object.keys(part.defaults))
        origins.set(formatPath(['defaults', k]), ['agents', j, 'defaults', k]);
    }
    if (Array.isArray(part.services)) {
      part.services.forEach((svc, k) => {
        if (!isDict(svc)) return;
        const at = services.findIndex((s) => isDict(s) && s.name === svc.name);
        if (at >= 0) {
          services[at] = { ...(services[at] as Dict), ...svc };
          for (const field of Object.keys(svc)) {
            if (field !== 'name') origins.set(formatPath(['services', at, field]), ['agents', j, 'services', k, field]);
          }
        } else {
          origins.set(formatPath(['services', services.length]), ['agents', j, 'services', k]);
          services.push(svc);
        }
      });
    }
  });
  const origin = (path: readonly PathSegment[]): PathSegment[] => {
    for (let n = path.length; n > 0; n--) {
      const from = origins.get(formatPath(path.slice(0, n)));
      if (from) return [...from, ...path.slice(n)];
    }
    return [...path];
  };
  return { data: out, matched, origin };
}
