// Every timing decision of the schedule, in one place: a service's interval, its fixed phase, when
// a slot's round should start, when a start counts as late, the default deadline, how far a stalled
// service catches up. node-cron supplies the slots (the cron's own fire times); everything added
// on top of them is decided here.
import { createHash } from 'node:crypto';
import cron from 'node-cron';

/** The phase never exceeds this, so a round stays within a minute of its cron time. */
export const MAX_PHASE_MS = 60_000;

/** A start later than this after its scheduled time is late even when nothing held it up. */
export const MAX_LATE_TOLERANCE_MS = 1_000;

/** Default deadline as a share of the interval: leaves a tenth for the store, the log and jitter. */
export const DEFAULT_DEADLINE_SHARE = 0.9;

/**
 * Rounds a service may have waiting behind a running or stalled one. After a long stall (a
 * suspended VM, a stepped clock) older slots beyond this are skipped — logged and counted — instead
 * of being run back to back long after the fact.
 */
export const MAX_BACKLOG = 10;

/** Fires examined to find a schedule's shortest gap; enough to see every gap of a cron's cycle that matters. */
const GAP_SAMPLES = 64;

/** Undefined when node-cron accepts `expression`, else what it objects to. */
export function validateCron(expression: string): string | undefined {
  const v = cron.validateDetailed(expression.trim());
  if (v.valid) return undefined;
  return v.errors.map((e) => e.message).join('; ') || 'not a cron expression';
}

/**
 * The shortest gap between two consecutive fires of `expression` (ms): its interval for deadlines
 * and phases. `*\/7 * * * * *` fires at :00, :07, … :56 and again at :00, so its interval is 4 s.
 */
export function cronInterval(expression: string): number {
  const key = expression.trim();
  // Walking node-cron's next runs takes tens of ms, and a config load asks for each service's
  // interval several times; a reload does it again while rounds are timing packets. Remembered
  // per expression: the shortest gap of a cron's cycle does not depend on when it is asked.
  const known = intervals.get(key);
  if (known !== undefined) return known;
  const task = cron.createTask(key, () => undefined);
  try {
    const runs = task.getNextRuns(GAP_SAMPLES).map((d) => d.getTime());
    let gap = Number.POSITIVE_INFINITY;
    for (let i = 1; i < runs.length; i++) gap = Math.min(gap, runs[i]! - runs[i - 1]!);
    const interval = Number.isFinite(gap) ? gap : 86_400_000;
    if (intervals.size >= 1_000) intervals.clear();
    intervals.set(key, interval);
    return interval;
  } finally {
    void task.destroy();
  }
}

const intervals = new Map<string, number>();

/** The deadline a service gets when its config sets none. */
export function defaultDeadline(intervalMs: number): number {
  return Math.floor(intervalMs * DEFAULT_DEADLINE_SHARE);
}

/**
 * A fixed phase in [0, min(interval, MAX_PHASE_MS)) from a hash of agent id and service: stable
 * across restarts, different for each service and each agent, so neither one agent's services nor
 * many agents probing one reflector fire in the same millisecond.
 */
export function phaseFor(agentId: string, service: string, intervalMs: number): number {
  const bound = Math.min(intervalMs, MAX_PHASE_MS);
  const digest = createHash('sha256').update(agentId).update('\0').update(service).digest();
  const fraction = digest.readUIntBE(0, 6) / 2 ** 48;
  return Math.floor(fraction * bound);
}

/** How late a start may be before it counts in `rounds_late`: a quarter interval, at most a second. */
export function lateTolerance(intervalMs: number): number {
  return Math.min(MAX_LATE_TOLERANCE_MS, Math.floor(intervalMs / 4));
}

/** Everything the scheduler needs to know about one service's timing. */
export interface ServiceTiming {
  service: string;
  schedule: string;
  intervalMs: number;
  phaseMs: number;
  deadlineMs: number;
  lateAfterMs: number;
}

/** Derives a service's timing from its schedule (and deadline, when configured). */
export function serviceTiming(agentId: string, service: string, schedule: string, deadlineMs?: number): ServiceTiming {
  const intervalMs = cronInterval(schedule);
  return {
    service,
    schedule: schedule.trim(),
    intervalMs,
    phaseMs: phaseFor(agentId, service, intervalMs),
    deadlineMs: deadlineMs ?? defaultDeadline(intervalMs),
    lateAfterMs: lateTolerance(intervalMs),
  };
}

/** When the round of the cron slot `slotMs` is due (epoch ms): the slot shifted by the service's phase. */
export function scheduledStart(slotMs: number, timing: ServiceTiming): number {
  return slotMs + timing.phaseMs;
}

/**
 * Whether a round started late: it waited for the service's previous round, or it started more
 * than the tolerance after its scheduled time (a blocked event loop, a missed cron fire).
 */
export function isLate(
  scheduledAtMs: number,
  startedAtMs: number,
  waitedBehindRound: boolean,
  timing: ServiceTiming,
): boolean {
  return waitedBehindRound || startedAtMs - scheduledAtMs > timing.lateAfterMs;
}
