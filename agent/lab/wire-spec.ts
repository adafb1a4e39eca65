// What a wire process is asked to carry (written by the lab as JSON, read by wire-main.ts) and what
// it reports back (its stats file).
import type { DirectionParams, DirectionStats } from './delay-line.ts';

/** One end of a link: a TUN device the wire creates inside a network namespace. */
export interface WireEnd {
  /** network namespace name (as in `ip netns list`) */
  netns: string;
  /** interface name inside it, at most 15 bytes */
  ifname: string;
}

/** One point-to-point link: packets read from `a` are written to `b` after `ab`, and back after `ba`. */
export interface WireLink {
  id: string;
  a: WireEnd;
  b: WireEnd;
  ab: DirectionParams;
  ba: DirectionParams;
}

/** Everything a wire process needs. */
export interface WireSpec {
  /** process title (`/proc/PID/comm`), starts with `anylat-` */
  title: string;
  links: WireLink[];
  /** written (JSON `{ pid }`) once every TUN device exists and the scheduler runs */
  readyFile: string;
  /** rewritten about once a second with {@link WireStats} */
  statsFile: string;
  /** busy-poll this many µs before each deadline instead of sleeping (default 100) */
  spinUs?: number;
  /** SCHED_FIFO priority of the scheduler thread (default 10; 0 = an ordinary thread) */
  realtimePriority?: number;
}

/** Counters per link, per direction, as the stats file holds them. */
export interface WireStats {
  pid: number;
  at: string;
  links: Record<string, { ab: DirectionStats & { held: number }; ba: DirectionStats & { held: number } }>;
  /** how late packets left compared to their due time, over the last 4096 packets (µs) */
  lateness_us: { p50: number; p99: number; max: number; samples: number };
}

/** Defaults for a direction: no delay, no jitter, no loss, order kept. */
export function directionParams(p: Partial<DirectionParams> = {}): DirectionParams {
  return { delayMs: 0, jitterMs: 0, lossPct: 0, reorder: false, queueLimit: 10_000, ...p };
}
