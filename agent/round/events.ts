// Events a round implies against the one before it: the anycast site that answers changed, a path
// stopped answering, a path came back. Events share the round's timestamp and their tags
// (service, type) in InfluxDB, so several of one type are merged into one event per round.
import type { AnylatEvent, EventType, PathResult, Protocol, RoundResult } from '../core/model.ts';

/** What events need to remember between rounds of one service; JSON-able, kept by the caller. */
export interface RoundState {
  /** last site seen per anycast path, keyed `endpoint/protocol` (kept while the path is down) */
  sites: Record<string, string>;
  /** paths (`endpoint/protocol`) down at the end of the last round */
  down: string[];
}

interface PathView {
  key: string;
  endpoint: string;
  protocol: Protocol;
  anycast: boolean;
  site?: string;
  down: boolean;
}

/**
 * A path is an (endpoint, protocol); it is down when none of its metrics received anything (every
 * sample failed before timing even its first phase). A path whose echo fails while its connect
 * works is degraded, not down: its loss shows in the metric's `loss_pct`.
 */
function pathsOf(round: RoundResult): PathView[] {
  const byKey = new Map<string, PathView>();
  const rows = new Map<string, PathResult[]>();
  for (const p of round.paths) {
    const key = `${p.endpoint}/${p.protocol}`;
    const list = rows.get(key);
    if (list) list.push(p);
    else rows.set(key, [p]);
  }
  for (const [key, list] of rows) {
    const first = list[0]!;
    const site = list.find((p) => p.site !== undefined)?.site;
    const view: PathView = {
      key,
      endpoint: first.endpoint,
      protocol: first.protocol,
      anycast: first.kind === 'anycast',
      down: list.every((p) => p.sent > 0 && p.received === 0),
    };
    if (site !== undefined) view.site = site;
    byKey.set(key, view);
  }
  return [...byKey.values()];
}

function distinct(values: string[]): string {
  return [...new Set(values)].join(',');
}

function merge(
  type: EventType,
  service: string,
  parts: Array<{ text: string; from?: string; to?: string }>,
): AnylatEvent | undefined {
  if (parts.length === 0) return undefined;
  const event: AnylatEvent = { type, service, message: parts.map((p) => p.text).join('; ') };
  const froms = parts.map((p) => p.from).filter((v): v is string => v !== undefined);
  const tos = parts.map((p) => p.to).filter((v): v is string => v !== undefined);
  if (froms.length > 0) event.from = distinct(froms);
  if (tos.length > 0) event.to = distinct(tos);
  return event;
}

/**
 * Events of `round` given the state the previous round left (undefined for a service's first round:
 * no site change can be seen yet, and a path already down is reported down). Returns at most one
 * event per type, and the state to keep for the next round.
 */
export function deriveEvents(
  previous: RoundState | undefined,
  round: RoundResult,
): { events: AnylatEvent[]; state: RoundState } {
  const paths = pathsOf(round);
  const wasDown = new Set(previous?.down ?? []);
  const sites: Record<string, string> = {};
  const changes: Array<{ text: string; from?: string; to?: string }> = [];
  const downs: Array<{ text: string }> = [];
  const ups: Array<{ text: string }> = [];
  for (const p of paths) {
    if (p.anycast) {
      const before = previous?.sites[p.key];
      if (p.site !== undefined) {
        sites[p.key] = p.site;
        if (before !== undefined && before !== p.site) {
          changes.push({ text: `${p.endpoint} ${p.protocol}: ${before} -> ${p.site}`, from: before, to: p.site });
        }
      } else if (before !== undefined) {
        sites[p.key] = before;
      }
    }
    if (p.down && !wasDown.has(p.key)) downs.push({ text: `${p.endpoint} ${p.protocol} down (100% loss)` });
    if (!p.down && wasDown.has(p.key)) ups.push({ text: `${p.endpoint} ${p.protocol} up` });
  }
  const events = [
    merge('site_change', round.service, changes),
    merge('path_down', round.service, downs),
    merge('path_up', round.service, ups),
  ].filter((e): e is AnylatEvent => e !== undefined);
  return { events, state: { sites, down: paths.filter((p) => p.down).map((p) => p.key) } };
}
