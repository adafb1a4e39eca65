// Runs each service's rounds on its cron. node-cron supplies the slots; this module adds the
// service's phase, keeps one round per service at a time, runs a slot that came late (a blocked
// loop, a round that overran) late instead of dropping it, and bounds everything: a deadline per
// round, a backlog per service, a grace period at shutdown.
//
// What happens when:
// - A slot fires (or node-cron reports it missed because the loop was blocked): its round is due
//   at slot + phase. Missed slots are not lost: node-cron reports each one, and each is queued.
// - A round is due while the service's previous round still runs: it waits and then runs, late.
//   Rounds of one service never overlap and never pile up: they run one after another.
// - More than `maxBacklog` rounds wait (a suspended VM, a clock step): the oldest are skipped,
//   logged and counted in `roundsSkipped`.
// - A round runs past its deadline: its signal aborts with reason "deadline" and it is counted in
//   `roundsAbandoned`; the runner decides what to keep (the agent keeps nothing of it).
// - stop(): no new round starts; waiting rounds are dropped (logged); running rounds get the
//   grace period, then their signal aborts with reason "shutdown".
// - update() (a config reload): services whose timing did not change are left alone (their cron,
//   phase, backlog and running round); a removed service's cron stops, its waiting rounds are
//   dropped and its running round finishes; an added one starts its cron, so its first round is
//   due at its next slot plus its phase; a changed schedule or deadline restarts the cron.
import cron, { type ScheduledTask } from 'node-cron';
import { isLate, MAX_BACKLOG, scheduledStart, type ServiceTiming } from './timing.ts';
import { errorMessage } from '../util/errors.ts';

/** One round the scheduler starts. */
export interface ScheduledRound {
  service: string;
  /** when the round was due: its cron slot plus the service's phase */
  scheduledAt: Date;
  startedAt: Date;
  /** counted in `roundsLate`: it waited behind the previous round or started past the tolerance */
  late: boolean;
  /** aborted at the deadline (reason `"deadline"`) or when shutdown's grace ends (`"shutdown"`) */
  signal: AbortSignal;
}

/** Runs one round; the scheduler waits for it before the service's next round. */
export type RoundRunner = (round: ScheduledRound) => Promise<void>;

export interface SchedulerCounters {
  roundsStarted: number;
  roundsLate: number;
  roundsSkipped: number;
  roundsAbandoned: number;
}

export interface SchedulerOptions {
  timings: readonly ServiceTiming[];
  run: RoundRunner;
  /** log line sink; default stderr */
  log?: (line: string) => void;
  /** rounds a service may have waiting; default MAX_BACKLOG */
  maxBacklog?: number;
}

interface Waiting {
  scheduledAt: number;
  /** became due while the service's previous round was still running */
  behindRound: boolean;
}

interface ServiceState {
  timing: ServiceTiming;
  task?: ScheduledTask;
  /** latest slot seen, so a slot reported twice runs once */
  lastSlot: number;
  phaseTimers: Set<NodeJS.Timeout>;
  backlog: Waiting[];
  running?: { promise: Promise<void>; controller: AbortController };
  /** removed by update(): no new rounds; forgotten once its running round ends */
  retired?: boolean;
}

/** What update() changed, by service name. */
export interface ScheduleChanges {
  added: string[];
  removed: string[];
  retimed: string[];
}

function sameTiming(a: ServiceTiming, b: ServiceTiming): boolean {
  return (
    a.schedule === b.schedule &&
    a.intervalMs === b.intervalMs &&
    a.phaseMs === b.phaseMs &&
    a.deadlineMs === b.deadlineMs &&
    a.lateAfterMs === b.lateAfterMs
  );
}

export class Scheduler {
  private services: ServiceState[];
  private readonly run: RoundRunner;
  private readonly log: (line: string) => void;
  private readonly maxBacklog: number;
  private stopping = false;
  private started = false;
  private readonly counters: SchedulerCounters = {
    roundsStarted: 0,
    roundsLate: 0,
    roundsSkipped: 0,
    roundsAbandoned: 0,
  };

  constructor(options: SchedulerOptions) {
    this.services = options.timings.map((timing) => ({
      timing,
      lastSlot: Number.NEGATIVE_INFINITY,
      phaseTimers: new Set(),
      backlog: [],
    }));
    this.run = options.run;
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.maxBacklog = options.maxBacklog ?? MAX_BACKLOG;
  }

  /** Starts every service's cron. */
  start(): void {
    this.started = true;
    for (const s of this.services) this.startCron(s);
  }

  private startCron(s: ServiceState): void {
    const onSlot = (ctx: { date: Date }) => this.onSlot(s, ctx.date.getTime());
    // The task only reports slots: it returns at once, so node-cron never sees an overlap, and
    // every slot it could not fire on time arrives as `execution:missed` (handled, not warned).
    const task = cron.createTask(s.timing.schedule, onSlot, { name: `anylat:${s.timing.service}` });
    task.on('execution:missed', onSlot);
    s.task = task;
    void task.start();
  }

  /** Stops a service's cron and drops its waiting rounds; its running round is left to finish. */
  private stopCron(s: ServiceState): number {
    const task = s.task;
    s.task = undefined;
    if (task) void task.destroy();
    for (const t of s.phaseTimers) clearTimeout(t);
    s.phaseTimers.clear();
    const dropped = s.backlog.length;
    s.backlog = [];
    return dropped;
  }

  /**
   * Applies a new set of service timings (a config reload) without touching what did not change:
   * see the header. Rounds in flight are never aborted by an update.
   */
  update(timings: readonly ServiceTiming[]): ScheduleChanges {
    const changes: ScheduleChanges = { added: [], removed: [], retimed: [] };
    if (this.stopping) return changes;
    const next = new Map(timings.map((t) => [t.service, t]));
    for (const s of this.services) {
      if (s.retired) continue;
      const t = next.get(s.timing.service);
      if (t === undefined) {
        s.retired = true;
        const dropped = this.stopCron(s);
        changes.removed.push(s.timing.service);
        if (dropped > 0)
          this.log(
            `schedule: ${s.timing.service}: removed; ${dropped} waiting round${dropped === 1 ? '' : 's'} not started`,
          );
      } else if (!sameTiming(s.timing, t)) {
        const dropped = this.stopCron(s);
        s.timing = t;
        if (this.started) this.startCron(s);
        changes.retimed.push(t.service);
        if (dropped > 0)
          this.log(
            `schedule: ${t.service}: new schedule; ${dropped} round${dropped === 1 ? '' : 's'} due under the old one not started`,
          );
      }
    }
    this.services = this.services.filter((s) => !s.retired || s.running !== undefined);
    const known = new Set(this.services.filter((s) => !s.retired).map((s) => s.timing.service));
    for (const t of timings) {
      if (known.has(t.service)) continue;
      // A service removed and added back while its last round still runs: that round ends first.
      const s: ServiceState = { timing: t, lastSlot: Number.NEGATIVE_INFINITY, phaseTimers: new Set(), backlog: [] };
      this.services.push(s);
      if (this.started) this.startCron(s);
      changes.added.push(t.service);
    }
    return changes;
  }

  /** Counters since start (the heartbeat's rounds_late comes from here). */
  stats(): SchedulerCounters {
    return { ...this.counters };
  }

  /** Rounds running right now, by service. */
  running(): string[] {
    return this.services.filter((s) => s.running).map((s) => s.timing.service);
  }

  /** The services scheduled now (not those removed whose last round still runs), with their timing. */
  timings(): ServiceTiming[] {
    return this.services.filter((s) => !s.retired).map((s) => s.timing);
  }

  private onSlot(s: ServiceState, slotMs: number): void {
    if (this.stopping || s.retired || slotMs <= s.lastSlot) return;
    s.lastSlot = slotMs;
    this.enqueueAt(s, scheduledStart(slotMs, s.timing));
  }

  /** Enqueues when the wall clock reaches `due`; timers run on another clock and may wake a millisecond early. */
  private enqueueAt(s: ServiceState, due: number): void {
    const wait = due - Date.now();
    if (wait <= 0) {
      this.enqueue(s, due);
      return;
    }
    const timer = setTimeout(() => {
      s.phaseTimers.delete(timer);
      this.enqueueAt(s, due);
    }, wait);
    s.phaseTimers.add(timer);
  }

  private enqueue(s: ServiceState, scheduledAt: number): void {
    if (this.stopping) return;
    s.backlog.push({ scheduledAt, behindRound: s.running !== undefined });
    s.backlog.sort((a, b) => a.scheduledAt - b.scheduledAt);
    if (s.backlog.length > this.maxBacklog) {
      const skipped = s.backlog.splice(0, s.backlog.length - this.maxBacklog);
      this.counters.roundsSkipped += skipped.length;
      this.log(
        `schedule: ${s.timing.service}: skipped ${skipped.length} round${skipped.length === 1 ? '' : 's'} due ${new Date(skipped[0]!.scheduledAt).toISOString()}` +
          `${skipped.length > 1 ? ` to ${new Date(skipped.at(-1)!.scheduledAt).toISOString()}` : ''}: more than ${this.maxBacklog} were waiting (was the agent stalled or the clock stepped?)`,
      );
    }
    this.pump(s);
  }

  private pump(s: ServiceState): void {
    if (s.retired && !s.running) {
      this.services = this.services.filter((x) => x !== s);
      return;
    }
    if (this.stopping || s.running) return;
    const next = s.backlog.shift();
    if (!next) return;
    const startedAt = Date.now();
    const late = isLate(next.scheduledAt, startedAt, next.behindRound, s.timing);
    this.counters.roundsStarted++;
    if (late) this.counters.roundsLate++;
    const controller = new AbortController();
    const deadline = setTimeout(() => {
      this.counters.roundsAbandoned++;
      this.log(
        `schedule: ${s.timing.service}: round due ${new Date(next.scheduledAt).toISOString()} passed its ${s.timing.deadlineMs} ms deadline; abandoned`,
      );
      controller.abort('deadline');
    }, s.timing.deadlineMs);
    const round: ScheduledRound = {
      service: s.timing.service,
      scheduledAt: new Date(next.scheduledAt),
      startedAt: new Date(startedAt),
      late,
      signal: controller.signal,
    };
    const promise = Promise.resolve()
      .then(() => this.run(round))
      .catch((err: unknown) => this.log(`schedule: ${s.timing.service}: round failed: ${errorMessage(err)}`))
      .finally(() => {
        clearTimeout(deadline);
        s.running = undefined;
        this.pump(s);
      });
    s.running = { promise, controller };
  }

  /**
   * Stops scheduling: no round starts after this. Rounds waiting are dropped (and logged); rounds
   * running get `graceMs` to finish, then are aborted with reason "shutdown" and given `abortMs`
   * more to return. Resolves with what happened to them.
   */
  async stop(
    graceMs: number,
    abortMs = 1_000,
  ): Promise<{ finished: number; aborted: number; dropped: number; stillRunning: number }> {
    this.stopping = true;
    let dropped = 0;
    for (const s of this.services) {
      const task = s.task;
      s.task = undefined;
      if (task) await task.destroy();
      for (const t of s.phaseTimers) clearTimeout(t);
      s.phaseTimers.clear();
      dropped += s.backlog.length;
      s.backlog = [];
    }
    if (dropped > 0)
      this.log(`schedule: shutting down: ${dropped} waiting round${dropped === 1 ? '' : 's'} not started`);
    const inFlight = this.services.filter((s) => s.running).map((s) => s.running!);
    const settled = (ms: number) =>
      waitFor(
        inFlight.map((r) => r.promise),
        ms,
      );
    const finishedInGrace = await settled(graceMs);
    let aborted = 0;
    for (const s of this.services) {
      if (s.running && !s.running.controller.signal.aborted) {
        s.running.controller.abort('shutdown');
        aborted++;
      }
    }
    if (aborted > 0) await settled(abortMs);
    const stillRunning = this.services.filter((s) => s.running).length;
    return { finished: finishedInGrace, aborted, dropped, stillRunning };
  }
}

/** Waits until every promise settles or `ms` passes; returns how many had settled by then. */
async function waitFor(promises: Array<Promise<unknown>>, ms: number): Promise<number> {
  let done = 0;
  const all = Promise.all(
    promises.map((p) =>
      p.then(
        () => done++,
        () => done++,
      ),
    ),
  );
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
  return done;
}
