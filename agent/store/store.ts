// The embedded store: every round in one transaction (round, paths, benefit rows, events, the
// service's state and the round's InfluxDB lines in the outbox), the outbox the sink drains, dead
// letters, agent heartbeats and retention. SQLite in WAL mode: readers in other processes never
// block the writer, and several agents may write one file (short IMMEDIATE transactions plus a
// busy timeout serialize them).
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type {
  AgentHeartbeat,
  BenefitRow,
  Metric,
  PathResult,
  PathTrace,
  Protocol,
  RoundResult,
  Scope,
} from '../core/model.ts';
import { heartbeatLine, isoToMs, roundToLines, traceLines } from '../core/line-protocol.ts';
import { AnylatError, errorMessage } from '../util/errors.ts';
import { applyRetention, describeRetention, type RetentionOptions, type RetentionResult } from './retention.ts';
import { checkReadable, migrate } from './schema.ts';
import { timingGaps, type TimingGap } from './timing-gaps.ts';
import * as q from './queries.ts';
import type { ReportQuery, ReportRow } from './queries.ts';

export type { RetentionOptions, RetentionResult } from './retention.ts';

export interface StoreOptions {
  /** required for a writer; a read-only handle never trims */
  retention?: RetentionOptions;
  /** open for reading only (`anylat report`, another process's dashboard) */
  readonly?: boolean;
  /**
   * Write InfluxDB lines to the outbox (default true). An agent without InfluxDB passes false so
   * the outbox does not fill up to its cap with lines nobody will send.
   */
  outbox?: boolean;
  /** how long a statement waits for another process's write lock; default 5000 ms */
  busyTimeoutMs?: number;
  /** saveRound/saveHeartbeat run retention at most this often; default 60 s, 0 = every write */
  retentionIntervalMs?: number;
  /** where retention and other notices go; default stderr */
  log?: (line: string) => void;
}

/** One InfluxDB line waiting for delivery. `id` orders the outbox. */
export interface OutboxEntry {
  id: number;
  agent: string;
  line: string;
}

/** A line InfluxDB rejected as malformed, with what the server said. */
export interface DeadLetter {
  id: number;
  outbox_id: number;
  agent: string;
  line: string;
  status?: number;
  message: string;
  failed_at: string;
}

/** What `anylat outbox status` shows for one agent. */
export interface OutboxStatus {
  agent: string;
  outbox_rows: number;
  oldest_queued_at?: string;
  dead_letters: number;
  first_failed_at?: string;
  last_failed_at?: string;
  /** the most common dead-letter messages, most frequent first */
  reasons: Array<{ count: number; status?: number; message: string }>;
}

/** Rows retention dropped through this handle since it was opened. */
export interface DroppedCounts {
  rounds: number;
  /** undelivered InfluxDB lines: the number to worry about */
  outbox: number;
  deadLetters: number;
}

/** A round as listed by `rounds()`. */
export interface RoundSummary {
  id: number;
  agent: string;
  agent_region: string;
  service: string;
  started_at: string;
  scheduled_at?: string;
  duration_ms: number;
}

type Params = Record<string, string | number | null>;

function storeError(path: string, err: unknown): AnylatError {
  if (err instanceof AnylatError) return err;
  const msg = errorMessage(err);
  return new AnylatError(
    'ANYLAT_STORE_OPEN',
    `cannot open store ${path}: ${msg}; check store.path (or --store) and that the directory is writable`,
    { cause: err },
  );
}

function num(v: number | undefined): number | null {
  return v === undefined || Number.isNaN(v) ? null : v;
}

function isoOrUndefined(ms: number | null): string | undefined {
  return ms === null ? undefined : new Date(ms).toISOString();
}

function dropNulls<T extends object>(row: Record<string, unknown>): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) if (v !== null) out[k] = v;
  return out as T;
}

/**
 * A read-only handle that changes nothing and needs no write access anywhere. SQLite reads a WAL
 * store through its -shm file and creates it when missing, which a user who may read the store
 * but not write its folder cannot (nor anyone on a read-only mount): after a clean agent stop the
 * -wal and -shm files are gone and the plain read-only open fails ("attempt to write a readonly
 * database"). Then, when no -wal file holds data (no writer has anything uncheckpointed), the file
 * is read into memory and opened from there: the same bytes, a consistent snapshot. (better-sqlite3
 * is built without URI file names, so SQLite's `immutable=1` is not available.)
 */
function openReadOnly(path: string): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    db.prepare('SELECT COUNT(*) FROM sqlite_master').get();
    return db;
  } catch (err) {
    db?.close();
    const msg = errorMessage(err);
    if (
      !existsSync(path) ||
      /does not exist/i.test(msg) ||
      !/readonly database|unable to open|disk I\/O|read-only file system/i.test(msg)
    )
      throw err;
    let walBytes = 0;
    try {
      walBytes = statSync(`${path}-wal`).size;
    } catch {
      // no -wal file: nothing is waiting to be checkpointed
    }
    if (walBytes > 0) {
      throw new AnylatError(
        'ANYLAT_STORE_READONLY_WAL',
        `cannot read store ${path}: its folder is not writable for this user and ${path}-wal holds data not yet in the store ` +
          `(an agent is writing it, or was killed): run this as the agent's user, or let this user write the folder`,
        { cause: err },
      );
    }
    const image = readFileSync(path);
    // The header marks the file as WAL (bytes 18-19 = 2); an in-memory copy cannot use a WAL.
    if (image.length >= 20 && image[18] === 2 && image[19] === 2) {
      image[18] = 1;
      image[19] = 1;
    }
    return new Database(image, { readonly: true });
  }
}

/** Opens (creating and migrating when writable) the store at `path`. */
export function openStore(path: string, options: StoreOptions = {}): Store {
  return new Store(path, options);
}

export class Store {
  readonly path: string;
  readonly readonly: boolean;
  private readonly db: Database.Database;
  private readonly options: StoreOptions;
  private readonly log: (line: string) => void;
  private readonly counts: DroppedCounts = { rounds: 0, outbox: 0, deadLetters: 0 };
  private lastRetention = Number.NEGATIVE_INFINITY;
  private readonly stmt: WriteStatements | undefined;
  /** round totals kept by the schema (false only for a read-only handle on an older file) */
  private readonly groups: boolean;

  constructor(path: string, options: StoreOptions = {}) {
    this.path = path;
    this.options = options;
    this.readonly = options.readonly === true;
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    try {
      if (!this.readonly && path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
      this.db = this.readonly ? openReadOnly(path) : new Database(path);
    } catch (err) {
      if (this.readonly && err instanceof Error && /unable to open|does not exist/i.test(err.message)) {
        throw new AnylatError(
          'ANYLAT_STORE_MISSING',
          `no store at ${path}: check --store (or store.path in the config); an agent creates it on its first round`,
          { cause: err },
        );
      }
      throw storeError(path, err);
    }
    try {
      this.db.pragma(`busy_timeout = ${Math.max(0, Math.round(options.busyTimeoutMs ?? 5000))}`);
      if (this.readonly) {
        checkReadable(this.db, path);
      } else {
        this.db.pragma('journal_mode = WAL');
        // FULL: a committed round survives a power cut, not only a killed process. Rounds come
        // minutes apart, so one fsync per commit costs nothing that matters.
        this.db.pragma('synchronous = FULL');
        this.db.pragma('foreign_keys = ON');
        migrate(this.db, path);
      }
      this.stmt = this.readonly ? undefined : prepareWrites(this.db);
      this.groups = q.hasRoundGroups(this.db);
      // A writer trims once at open (a lowered limit takes effect now), then at most every
      // retentionIntervalMs as it writes.
      if (this.stmt !== undefined && options.retention) this.applyRetention(Date.now());
    } catch (err) {
      this.db.close();
      throw storeError(path, err);
    }
  }

  private writable(): WriteStatements {
    if (this.stmt === undefined) throw new AnylatError('ANYLAT_STORE_READONLY', `store ${this.path} is open read-only`);
    return this.stmt;
  }

  // ---------------------------------------------------------------- writes

  /**
   * Saves one round in ONE transaction: the round, its paths, benefit rows and events, the
   * service's state for the next round (`opts.state`, any JSON value, kept per agent and service)
   * and its InfluxDB lines in the outbox. Either all of it is written or nothing. Returns the id.
   */
  saveRound(round: RoundResult, opts: { state?: unknown } = {}): number {
    const s = this.writable();
    const started = isoToMs(round.started_at);
    const scheduled = round.scheduled_at === undefined ? null : isoToMs(round.scheduled_at);
    const lines = this.options.outbox === false ? [] : roundToLines(round);
    const state = opts.state === undefined ? undefined : JSON.stringify(opts.state);
    const now = Date.now();
    const id = this.db
      .transaction(() => {
        const roundId = Number(
          s.round.run({
            agent: round.agent.id,
            agent_region: round.agent.region,
            labels: round.agent.labels ? JSON.stringify(round.agent.labels) : null,
            service: round.service,
            started_at: started,
            scheduled_at: scheduled,
            duration_ms: round.duration_ms,
            saved_at: now,
          }).lastInsertRowid,
        );
        round.paths.forEach((p, ord) => s.path.run(pathParams(roundId, ord, p)));
        round.benefit.forEach((b, ord) => s.benefit.run(benefitParams(roundId, ord, b)));
        for (const e of round.events ?? []) {
          s.event.run({
            round_id: roundId,
            agent: round.agent.id,
            service: e.service,
            type: e.type,
            message: e.message,
            from_value: e.from ?? null,
            to_value: e.to ?? null,
            at: started,
          });
        }
        if (state !== undefined) s.state.run(round.agent.id, round.service, state, roundId, now);
        for (const line of lines) s.outbox.run(round.agent.id, line, now);
        return roundId;
      })
      .immediate();
    this.maybeRetention(now);
    return id;
  }

  /**
   * Saves a trace taken because of round `roundId` (its hops as JSON) and queues its `trace` lines,
   * in one transaction. False when the round is gone (retention took it while the trace ran).
   */
  saveTrace(roundId: number, t: PathTrace): boolean {
    this.writable();
    const lines = this.options.outbox === false ? [] : traceLines(t);
    const now = Date.now();
    return this.db
      .transaction(() => {
        if (this.db.prepare('SELECT 1 FROM rounds WHERE id = ?').get(roundId) === undefined) return false;
        this.db
          .prepare(
            `INSERT INTO traces (round_id, agent, service, trigger, reason, endpoint, kind, address, at, traced_at, duration_ms, reached, hops)
             VALUES (@round_id, @agent, @service, @trigger, @reason, @endpoint, @kind, @address, @at, @traced_at, @duration_ms, @reached, @hops)`,
          )
          .run({
            round_id: roundId,
            agent: t.agent.id,
            service: t.service,
            trigger: t.trigger,
            reason: t.reason,
            endpoint: t.endpoint,
            kind: t.kind,
            address: t.address,
            at: isoToMs(t.at),
            traced_at: isoToMs(t.traced_at),
            duration_ms: t.duration_ms,
            reached: t.reached ? 1 : 0,
            hops: JSON.stringify(t.hops),
          });
        const outbox = this.db.prepare('INSERT INTO outbox (agent, line, created_at) VALUES (?, ?, ?)');
        for (const line of lines) outbox.run(t.agent.id, line, now);
        return true;
      })
      .immediate();
  }

  /** Records the agent's heartbeat (for the dashboard's agent health) and queues its line. */
  saveHeartbeat(hb: AgentHeartbeat): void {
    const s = this.writable();
    const at = isoToMs(hb.at);
    const line = this.options.outbox === false ? undefined : heartbeatLine(hb);
    const now = Date.now();
    this.db
      .transaction(() => {
        s.heartbeat.run(hb.agent.id, hb.agent.region, at, JSON.stringify(hb));
        if (line !== undefined) s.outbox.run(hb.agent.id, line, now);
      })
      .immediate();
    this.maybeRetention(now);
  }

  /** The state saved with `agent`'s last round of `service`, or undefined before its first round. */
  serviceState(service: string, agent: string): unknown {
    const row = this.db
      .prepare('SELECT state FROM service_state WHERE agent = ? AND service = ?')
      .get(agent, service) as { state: string } | undefined;
    return row === undefined ? undefined : (JSON.parse(row.state) as unknown);
  }

  // ---------------------------------------------------------------- outbox (the sink's API)

  /** The oldest `limit` outbox entries (of one agent when given), oldest first. */
  readOutbox(limit: number, opts: { agent?: string } = {}): OutboxEntry[] {
    const sql =
      opts.agent === undefined
        ? 'SELECT id, agent, line FROM outbox ORDER BY id LIMIT ?'
        : 'SELECT id, agent, line FROM outbox WHERE agent = ? ORDER BY id LIMIT ?';
    const args = opts.agent === undefined ? [limit] : [opts.agent, limit];
    return this.db.prepare(sql).all(...args) as OutboxEntry[];
  }

  /** Deletes delivered entries (InfluxDB answered 2xx). Returns how many were still there. */
  ack(ids: readonly number[]): number {
    const s = this.writable();
    if (ids.length === 0) return 0;
    return this.db
      .transaction(() => {
        let n = 0;
        for (const id of ids) n += s.ack.run(id).changes;
        return n;
      })
      .immediate();
  }

  /** Moves entries InfluxDB rejected as malformed to the dead letters, with the server's message. */
  deadLetter(ids: readonly number[], serverMessage: string, status?: number): number {
    const s = this.writable();
    if (ids.length === 0) return 0;
    const now = Date.now();
    return this.db
      .transaction(() => {
        let n = 0;
        for (const id of ids) {
          n += s.deadLetter.run(status ?? null, serverMessage, now, id).changes;
          s.ack.run(id);
        }
        return n;
      })
      .immediate();
  }

  /** Lines waiting for InfluxDB (of one agent when given). */
  outboxRows(agent?: string): number {
    const row = (
      agent === undefined
        ? this.db.prepare('SELECT COUNT(*) AS n FROM outbox').get()
        : this.db.prepare('SELECT COUNT(*) AS n FROM outbox WHERE agent = ?').get(agent)
    ) as { n: number };
    return row.n;
  }

  /** When the oldest line waiting for InfluxDB was queued (epoch ms), or undefined when none waits. */
  outboxOldestAt(agent?: string): number | undefined {
    const row = (
      agent === undefined
        ? this.db.prepare('SELECT created_at FROM outbox ORDER BY id LIMIT 1').get()
        : this.db.prepare('SELECT created_at FROM outbox WHERE agent = ? ORDER BY id LIMIT 1').get(agent)
    ) as { created_at: number } | undefined;
    return row?.created_at;
  }

  /** Lines InfluxDB rejected, still kept (of one agent when given). */
  deadLetters(agent?: string): number {
    const row = (
      agent === undefined
        ? this.db.prepare('SELECT COUNT(*) AS n FROM dead_letters').get()
        : this.db.prepare('SELECT COUNT(*) AS n FROM dead_letters WHERE agent = ?').get(agent)
    ) as { n: number };
    return row.n;
  }

  /** The most recent dead letters, newest first. */
  deadLetterList(opts: { agent?: string; limit?: number } = {}): DeadLetter[] {
    const where = opts.agent === undefined ? '' : 'WHERE agent = @agent';
    const rows = this.db
      .prepare(
        `SELECT id, outbox_id, agent, line, status, message, failed_at FROM dead_letters ${where} ORDER BY id DESC LIMIT @limit`,
      )
      .all({ ...(opts.agent === undefined ? {} : { agent: opts.agent }), limit: opts.limit ?? 100 }) as Array<
      Record<string, unknown> & { failed_at: number }
    >;
    return rows.map((r) => dropNulls<DeadLetter>({ ...r, failed_at: new Date(r.failed_at).toISOString() }));
  }

  /**
   * Moves dead letters back into the outbox (of one agent when given; those that failed at or
   * after `since`, epoch ms, when given), under their old outbox ids where free so they keep their
   * place: the oldest lines go first. For `anylat outbox requeue` once the cause is fixed.
   */
  requeueDeadLetters(opts: { agent?: string; since?: number } = {}): number {
    this.writable();
    const where: string[] = [];
    if (opts.agent !== undefined) where.push('agent = @agent');
    if (opts.since !== undefined) where.push('failed_at >= @since');
    const params = {
      ...(opts.agent === undefined ? {} : { agent: opts.agent }),
      ...(opts.since === undefined ? {} : { since: opts.since }),
    };
    const select = this.db.prepare(
      `SELECT id, outbox_id, agent, line FROM dead_letters ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY outbox_id`,
    );
    const taken = this.db.prepare('SELECT 1 FROM outbox WHERE id = ?').pluck();
    const withId = this.db.prepare('INSERT INTO outbox (id, agent, line, created_at) VALUES (?, ?, ?, ?)');
    const withoutId = this.db.prepare('INSERT INTO outbox (agent, line, created_at) VALUES (?, ?, ?)');
    const drop = this.db.prepare('DELETE FROM dead_letters WHERE id = ?');
    const now = Date.now();
    return this.db
      .transaction(() => {
        const rows = select.all(params) as Array<{ id: number; outbox_id: number; agent: string; line: string }>;
        for (const r of rows) {
          if (taken.get(r.outbox_id) === undefined) withId.run(r.outbox_id, r.agent, r.line, now);
          else withoutId.run(r.agent, r.line, now);
          drop.run(r.id);
        }
        return rows.length;
      })
      .immediate();
  }

  /** Per agent: lines waiting, the oldest one's age, dead letters and their most common reasons. */
  outboxStatus(opts: { agent?: string } = {}): OutboxStatus[] {
    const filter = opts.agent === undefined ? '' : 'WHERE agent = @agent';
    const params = opts.agent === undefined ? {} : { agent: opts.agent };
    const waiting = this.db
      .prepare(`SELECT agent, COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox ${filter} GROUP BY agent`)
      .all(params) as Array<{
      agent: string;
      n: number;
      oldest: number;
    }>;
    const dead = this.db
      .prepare(
        `SELECT agent, COUNT(*) AS n, MIN(failed_at) AS first, MAX(failed_at) AS last FROM dead_letters ${filter} GROUP BY agent`,
      )
      .all(params) as Array<{ agent: string; n: number; first: number; last: number }>;
    const reasons = this.db
      .prepare(
        `SELECT agent, status, message, COUNT(*) AS n FROM dead_letters ${filter} GROUP BY agent, status, message ORDER BY n DESC, message`,
      )
      .all(params) as Array<{ agent: string; status: number | null; message: string; n: number }>;
    const agents = [...new Set([...waiting.map((w) => w.agent), ...dead.map((d) => d.agent)])].sort();
    const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
    return agents.map((agent) => {
      const w = waiting.find((x) => x.agent === agent);
      const d = dead.find((x) => x.agent === agent);
      return dropNulls<OutboxStatus>({
        agent,
        outbox_rows: w?.n ?? 0,
        oldest_queued_at: iso(w?.oldest),
        dead_letters: d?.n ?? 0,
        first_failed_at: iso(d?.first),
        last_failed_at: iso(d?.last),
        reasons: reasons
          .filter((r) => r.agent === agent)
          .slice(0, 5)
          .map((r) => ({
            count: r.n,
            ...(r.status === null ? {} : { status: r.status }),
            message: r.message.slice(0, 300),
          })),
      });
    });
  }

  // ---------------------------------------------------------------- retention

  /** Rows retention dropped through this handle since it was opened. */
  dropped(): DroppedCounts {
    return { ...this.counts };
  }

  /** Total rows dropped (rounds + undelivered lines + dead letters): the heartbeat's `dropped_rows`. */
  get droppedRows(): number {
    return this.counts.rounds + this.counts.outbox + this.counts.deadLetters;
  }

  /** Runs one retention pass now; logs a line for each kind of drop. */
  applyRetention(now: number = Date.now()): RetentionResult {
    this.writable();
    const r = this.options.retention;
    if (!r) return { roundsByAge: 0, roundsByCount: 0, outbox: 0, deadLetters: 0 };
    this.lastRetention = now;
    const res = applyRetention(this.db, r, now);
    this.counts.rounds += res.roundsByAge + res.roundsByCount;
    this.counts.outbox += res.outbox;
    this.counts.deadLetters += res.deadLetters;
    for (const line of describeRetention(res, r)) this.log(line);
    return res;
  }

  private maybeRetention(now: number): void {
    if (!this.options.retention) return;
    if (now - this.lastRetention < (this.options.retentionIntervalMs ?? 60_000)) return;
    this.applyRetention(now);
  }

  // ---------------------------------------------------------------- reads

  /** Metrics measured in the window without any benefit row, and whether lag flags are why (timing-gaps.ts). */
  timingGaps(query: ReportQuery & { protocol?: Protocol; metric?: Metric }): TimingGap[] {
    return timingGaps(this.db, query);
  }
  /** Rounds started in [since, until), oldest first. */
  rounds(
    query: { since?: number; until?: number; service?: string; agent?: string; limit?: number } = {},
  ): RoundSummary[] {
    const { where, params } = q.roundFilter(query);
    const rows = this.db
      .prepare(
        `SELECT id, agent, agent_region, service, started_at, scheduled_at, duration_ms FROM rounds r ${where}
         ORDER BY started_at, id LIMIT @limit`,
      )
      .all({ ...params, limit: query.limit ?? -1 }) as Array<{
      id: number;
      agent: string;
      agent_region: string;
      service: string;
      started_at: number;
      scheduled_at: number | null;
      duration_ms: number;
    }>;
    return rows.map((r) => {
      const out: RoundSummary = {
        id: r.id,
        agent: r.agent,
        agent_region: r.agent_region,
        service: r.service,
        started_at: new Date(r.started_at).toISOString(),
        duration_ms: r.duration_ms,
      };
      const scheduled = isoOrUndefined(r.scheduled_at);
      if (scheduled !== undefined) out.scheduled_at = scheduled;
      return out;
    });
  }

  /** One round exactly as it was saved (undefined once retention dropped it). */
  getRound(id: number): RoundResult | undefined {
    const r = this.db.prepare('SELECT * FROM rounds WHERE id = ?').get(id) as
      | {
          agent: string;
          agent_region: string;
          labels: string | null;
          service: string;
          started_at: number;
          scheduled_at: number | null;
          duration_ms: number;
        }
      | undefined;
    if (!r) return undefined;
    const paths = (
      this.db.prepare('SELECT * FROM paths WHERE round_id = ? ORDER BY ord').all(id) as Array<Record<string, unknown>>
    ).map((p) => {
      const { round_id: _r, ord: _o, failures, ...rest } = p;
      const out = dropNulls<PathResult>(rest);
      if (typeof failures === 'string') out.failures = JSON.parse(failures) as PathResult['failures'];
      return out;
    });
    const benefit = (
      this.db.prepare('SELECT * FROM benefit WHERE round_id = ? ORDER BY ord').all(id) as Array<Record<string, unknown>>
    ).map((b) => {
      const { round_id: _r, ord: _o, ...rest } = b;
      return dropNulls<BenefitRow>(rest);
    });
    const events = (
      this.db
        .prepare('SELECT type, service, message, from_value, to_value FROM events WHERE round_id = ? ORDER BY id')
        .all(id) as Array<{
        type: string;
        service: string;
        message: string;
        from_value: string | null;
        to_value: string | null;
      }>
    ).map((e) =>
      dropNulls<NonNullable<RoundResult['events']>[number]>({
        type: e.type,
        service: e.service,
        message: e.message,
        from: e.from_value,
        to: e.to_value,
      }),
    );
    const agent: RoundResult['agent'] = { id: r.agent, region: r.agent_region };
    if (r.labels !== null) agent.labels = JSON.parse(r.labels) as Record<string, string>;
    const round: RoundResult = {
      agent,
      service: r.service,
      started_at: new Date(r.started_at).toISOString(),
      duration_ms: r.duration_ms,
      paths,
      benefit,
    };
    const scheduled = isoOrUndefined(r.scheduled_at);
    if (scheduled !== undefined) round.scheduled_at = scheduled;
    if (events.length > 0) round.events = events;
    return round;
  }

  /** Benefit per agent region over time (one point per round and benefit row). */
  benefitSeries(query: q.SeriesQuery): q.BenefitPoint[] {
    return q.benefitSeries(this.db, query);
  }

  /** Loss per path (endpoint, protocol) over time. */
  lossSeries(query: q.SeriesQuery): q.LossPoint[] {
    return q.lossSeries(this.db, query);
  }

  /** Site changes and paths going down/up, newest first. */
  events(query: q.SeriesQuery & { limit?: number }): q.EventRow[] {
    return q.events(this.db, query);
  }

  /** Traces taken on events, newest first (none from a file older than schema 3). */
  traces(query: q.SeriesQuery & { limit?: number }): q.TraceRow[] {
    return q.traces(this.db, query);
  }

  /** The last heartbeat of each agent that ever wrote one. */
  agentHealth(now: number = Date.now()): q.AgentHealth[] {
    return q.agentHealth(this.db, now, this.groups);
  }

  /** Services and agents present in the store, with their round counts. */
  services(): q.ServiceSummary[] {
    return q.services(this.db, this.groups);
  }

  /**
   * The benefit table over a window, aggregated in SQL: the one read path of `anylat report` and
   * the web page (test/support/benefit-report.ts computes the same numbers the slow way for the tests).
   */
  benefitSummary(query: ReportQuery & { protocol?: Protocol; metric?: Metric }): ReportRow[] {
    return q.benefitSummary(this.db, query);
  }

  /** The newest benefit row of one agent in a window (give protocol and metric). */
  latestBenefit(query: q.SeriesQuery & { agent: string }): q.BenefitPoint | undefined {
    return q.latestBenefit(this.db, query);
  }

  /** `benefitSeries` as parallel arrays per agent. */
  benefitColumns(query: q.SeriesQuery): Map<string, q.BenefitColumns> {
    return q.benefitColumns(this.db, query);
  }

  /** Window medians of each path's per-round p50 (transfer goodput per size, in Mbit/s). */
  pathMedians(query: q.SeriesQuery): q.PathMedian[] {
    return q.pathMedians(this.db, query);
  }

  /** `lossSeries` as parallel arrays per agent and path. */
  lossColumns(query: q.SeriesQuery): q.LossColumns[] {
    return q.lossColumns(this.db, query);
  }

  /** Gaps between round starts per agent and service, and per agent over all services. */
  roundGaps(query: { since: number; until?: number }): q.RoundGaps[] {
    return q.roundGaps(this.db, query);
  }

  /** What each service's benefit rows hold in a window (service, protocol, metric, scope). */
  benefitMetrics(query: {
    since: number;
    until?: number;
  }): Array<{ service: string; protocol: Protocol; metric: Metric; scope: Scope }> {
    return q.benefitMetrics(this.db, query);
  }

  /** Sent and received per service, agent and path over a window (the dashboard's overview). */
  lossTotals(query: q.SeriesQuery): q.LossTotal[] {
    return q.lossTotals(this.db, query);
  }

  /** Runs of rounds per agent in which the same anycast site answered. */
  siteRuns(query: q.SeriesQuery & { protocol: Protocol; metric: Metric }): q.SiteRun[] {
    return q.siteRuns(this.db, query);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function prepareWrites(db: Database.Database) {
  return {
    round: db.prepare(
      `INSERT INTO rounds (agent, agent_region, labels, service, started_at, scheduled_at, duration_ms, saved_at)
       VALUES (@agent, @agent_region, @labels, @service, @started_at, @scheduled_at, @duration_ms, @saved_at)`,
    ),
    path: db.prepare(
      `INSERT INTO paths (round_id, ord, endpoint, kind, address, protocol, metric, scope, site, sent, received, loss_pct,
         min_ms, p50_ms, p90_ms, p99_ms, max_ms, mean_ms, stddev_ms, jitter_ms, flagged, failures, late, duplicate, stray, invalid, size)
       VALUES (@round_id, @ord, @endpoint, @kind, @address, @protocol, @metric, @scope, @site, @sent, @received, @loss_pct,
         @min_ms, @p50_ms, @p90_ms, @p99_ms, @max_ms, @mean_ms, @stddev_ms, @jitter_ms, @flagged, @failures, @late, @duplicate, @stray, @invalid, @size)`,
    ),
    benefit: db.prepare(
      `INSERT INTO benefit (round_id, ord, protocol, metric, scope, baseline, anycast_p50_ms, baseline_p50_ms, saved_ms, saved_pct,
         ci_low_ms, ci_high_ms, win_rate, pairs, size)
       VALUES (@round_id, @ord, @protocol, @metric, @scope, @baseline, @anycast_p50_ms, @baseline_p50_ms, @saved_ms, @saved_pct,
         @ci_low_ms, @ci_high_ms, @win_rate, @pairs, @size)`,
    ),
    event: db.prepare(
      `INSERT INTO events (round_id, agent, service, type, message, from_value, to_value, at)
       VALUES (@round_id, @agent, @service, @type, @message, @from_value, @to_value, @at)`,
    ),
    state: db.prepare(
      `INSERT INTO service_state (agent, service, state, round_id, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (agent, service) DO UPDATE SET state = excluded.state, round_id = excluded.round_id, updated_at = excluded.updated_at`,
    ),
    outbox: db.prepare('INSERT INTO outbox (agent, line, created_at) VALUES (?, ?, ?)'),
    heartbeat: db.prepare(
      `INSERT INTO heartbeats (agent, agent_region, at, body) VALUES (?, ?, ?, ?)
       ON CONFLICT (agent) DO UPDATE SET agent_region = excluded.agent_region, at = excluded.at, body = excluded.body`,
    ),
    ack: db.prepare('DELETE FROM outbox WHERE id = ?'),
    deadLetter: db.prepare(
      `INSERT INTO dead_letters (outbox_id, agent, line, status, message, failed_at)
       SELECT id, agent, line, ?, ?, ? FROM outbox WHERE id = ?`,
    ),
  };
}

type WriteStatements = ReturnType<typeof prepareWrites>;

function pathParams(roundId: number, ord: number, p: PathResult): Params {
  return {
    round_id: roundId,
    ord,
    endpoint: p.endpoint,
    kind: p.kind,
    address: p.address,
    protocol: p.protocol,
    metric: p.metric,
    scope: p.scope,
    site: p.site ?? null,
    sent: p.sent,
    received: p.received,
    loss_pct: p.loss_pct,
    min_ms: num(p.min_ms),
    p50_ms: num(p.p50_ms),
    p90_ms: num(p.p90_ms),
    p99_ms: num(p.p99_ms),
    max_ms: num(p.max_ms),
    mean_ms: num(p.mean_ms),
    stddev_ms: num(p.stddev_ms),
    jitter_ms: num(p.jitter_ms),
    flagged: p.flagged,
    failures: p.failures === undefined ? null : JSON.stringify(p.failures),
    late: num(p.late),
    duplicate: num(p.duplicate),
    stray: num(p.stray),
    invalid: num(p.invalid),
    size: p.size ?? null,
  };
}

function benefitParams(roundId: number, ord: number, b: BenefitRow): Params {
  return {
    round_id: roundId,
    ord,
    protocol: b.protocol,
    metric: b.metric,
    scope: b.scope,
    baseline: b.baseline,
    anycast_p50_ms: num(b.anycast_p50_ms),
    baseline_p50_ms: num(b.baseline_p50_ms),
    saved_ms: num(b.saved_ms),
    saved_pct: num(b.saved_pct),
    ci_low_ms: num(b.ci_low_ms),
    ci_high_ms: num(b.ci_high_ms),
    win_rate: num(b.win_rate),
    pairs: b.pairs,
    size: b.size ?? null,
  };
}
