// The store's schema as an ordered list of migrations. A store file records the versions it has
// applied; opening it applies the missing ones in one IMMEDIATE transaction, so two agents opening
// the same new file at once do not both create it. Never edit a shipped migration: add one.
import type Database from 'better-sqlite3';
import { AnylatError } from '../util/errors.ts';

interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'rounds, paths, benefit, events, state, outbox, dead letters, heartbeats',
    sql: `
      CREATE TABLE rounds (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        agent         TEXT    NOT NULL,
        agent_region  TEXT    NOT NULL,
        labels        TEXT,
        service       TEXT    NOT NULL,
        started_at    INTEGER NOT NULL,
        scheduled_at  INTEGER,
        duration_ms   REAL    NOT NULL,
        saved_at      INTEGER NOT NULL
      );
      CREATE INDEX rounds_started ON rounds (started_at);
      CREATE INDEX rounds_service_started ON rounds (service, started_at);

      CREATE TABLE paths (
        round_id   INTEGER NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
        ord        INTEGER NOT NULL,
        endpoint   TEXT    NOT NULL,
        kind       TEXT    NOT NULL CHECK (kind IN ('anycast', 'unicast')),
        address    TEXT    NOT NULL,
        protocol   TEXT    NOT NULL,
        metric     TEXT    NOT NULL,
        scope      TEXT    NOT NULL CHECK (scope IN ('edge', 'end_to_end')),
        site       TEXT,
        sent       INTEGER NOT NULL CHECK (sent >= 0),
        received   INTEGER NOT NULL CHECK (received >= 0),
        loss_pct   REAL,
        min_ms REAL, p50_ms REAL, p90_ms REAL, p99_ms REAL, max_ms REAL,
        mean_ms REAL, stddev_ms REAL, jitter_ms REAL,
        flagged    INTEGER NOT NULL,
        failures   TEXT,
        late INTEGER, duplicate INTEGER, stray INTEGER, invalid INTEGER,
        PRIMARY KEY (round_id, ord)
      ) WITHOUT ROWID;

      CREATE TABLE benefit (
        round_id        INTEGER NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
        ord             INTEGER NOT NULL,
        protocol        TEXT    NOT NULL,
        metric          TEXT    NOT NULL,
        scope           TEXT    NOT NULL CHECK (scope IN ('edge', 'end_to_end')),
        baseline        TEXT    NOT NULL,
        anycast_p50_ms  REAL,
        baseline_p50_ms REAL,
        saved_ms        REAL,
        saved_pct       REAL,
        ci_low_ms       REAL,
        ci_high_ms      REAL,
        win_rate        REAL,
        pairs           INTEGER NOT NULL,
        PRIMARY KEY (round_id, ord)
      ) WITHOUT ROWID;

      CREATE TABLE events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        round_id   INTEGER NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
        agent      TEXT    NOT NULL,
        service    TEXT    NOT NULL,
        type       TEXT    NOT NULL CHECK (type IN ('site_change', 'path_down', 'path_up')),
        message    TEXT    NOT NULL,
        from_value TEXT,
        to_value   TEXT,
        at         INTEGER NOT NULL
      );
      CREATE INDEX events_round ON events (round_id);
      CREATE INDEX events_at ON events (at);

      CREATE TABLE service_state (
        agent      TEXT    NOT NULL,
        service    TEXT    NOT NULL,
        state      TEXT    NOT NULL,
        round_id   INTEGER,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (agent, service)
      );

      CREATE TABLE outbox (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        agent      TEXT    NOT NULL,
        line       TEXT    NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE INDEX outbox_agent_id ON outbox (agent, id);

      CREATE TABLE dead_letters (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        outbox_id INTEGER NOT NULL,
        agent     TEXT    NOT NULL,
        line      TEXT    NOT NULL,
        status    INTEGER,
        message   TEXT    NOT NULL,
        failed_at INTEGER NOT NULL
      );
      CREATE INDEX dead_letters_agent ON dead_letters (agent, id);

      CREATE TABLE heartbeats (
        agent        TEXT    PRIMARY KEY,
        agent_region TEXT    NOT NULL,
        at           INTEGER NOT NULL,
        body         TEXT    NOT NULL
      );
    `,
  },
  {
    // The dashboard lists services and agents with their round counts on every request, and the
    // agent health reads each agent's newest round. Counting rounds meant reading every one of
    // them (17 ms at 30,000 rounds, growing with the store); these totals are kept by triggers
    // instead, so reading them costs the same at any size. Rounds are only ever inserted (saveRound)
    // and deleted (retention), never updated, so the two triggers cover every change.
    version: 2,
    name: 'round totals per service, agent and region (round_groups), kept by triggers',
    sql: `
      CREATE TABLE round_groups (
        service      TEXT    NOT NULL,
        agent        TEXT    NOT NULL,
        agent_region TEXT    NOT NULL,
        rounds       INTEGER NOT NULL,
        first_t      INTEGER NOT NULL,
        last_t       INTEGER NOT NULL,
        PRIMARY KEY (service, agent, agent_region)
      ) WITHOUT ROWID;

      INSERT INTO round_groups (service, agent, agent_region, rounds, first_t, last_t)
        SELECT service, agent, agent_region, COUNT(*), MIN(started_at), MAX(started_at)
        FROM rounds GROUP BY service, agent, agent_region;

      CREATE TRIGGER round_groups_insert AFTER INSERT ON rounds BEGIN
        INSERT INTO round_groups (service, agent, agent_region, rounds, first_t, last_t)
          VALUES (new.service, new.agent, new.agent_region, 1, new.started_at, new.started_at)
          ON CONFLICT (service, agent, agent_region) DO UPDATE SET
            rounds  = rounds + 1,
            first_t = MIN(first_t, excluded.first_t),
            last_t  = MAX(last_t, excluded.last_t);
      END;

      -- Retention deletes the oldest rounds: first_t is looked up again only when the group's first
      -- round goes (one step along rounds_service_started), last_t only when its last one does.
      CREATE TRIGGER round_groups_delete AFTER DELETE ON rounds BEGIN
        UPDATE round_groups SET
          rounds  = rounds - 1,
          first_t = CASE WHEN rounds <= 1 OR old.started_at > first_t THEN first_t ELSE COALESCE(
                      (SELECT started_at FROM rounds
                       WHERE service = old.service AND agent = old.agent AND agent_region = old.agent_region
                       ORDER BY started_at LIMIT 1), first_t) END,
          last_t  = CASE WHEN rounds <= 1 OR old.started_at < last_t THEN last_t ELSE COALESCE(
                      (SELECT started_at FROM rounds
                       WHERE service = old.service AND agent = old.agent AND agent_region = old.agent_region
                       ORDER BY started_at DESC LIMIT 1), last_t) END
          WHERE service = old.service AND agent = old.agent AND agent_region = old.agent_region;
        DELETE FROM round_groups
          WHERE service = old.service AND agent = old.agent AND agent_region = old.agent_region AND rounds <= 0;
      END;
    `,
  },
  {
    // Path context: the hops the agent traced when a round had a site change, a path down or a
    // benefit shift, kept with that round (deleted with it by retention).
    version: 3,
    name: 'traces taken on events (hops as JSON), kept with their round',
    sql: `
      CREATE TABLE traces (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        round_id    INTEGER NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
        agent       TEXT    NOT NULL,
        service     TEXT    NOT NULL,
        trigger     TEXT    NOT NULL,
        reason      TEXT    NOT NULL,
        endpoint    TEXT    NOT NULL,
        kind        TEXT    NOT NULL CHECK (kind IN ('anycast', 'unicast')),
        address     TEXT    NOT NULL,
        at          INTEGER NOT NULL,
        traced_at   INTEGER NOT NULL,
        duration_ms REAL    NOT NULL,
        reached     INTEGER NOT NULL,
        hops        TEXT    NOT NULL
      );
      CREATE INDEX traces_round ON traces (round_id);
      CREATE INDEX traces_at ON traces (at);
    `,
  },
  {
    // The transfer protocol downloads objects of several sizes; a size is a tag of its paths and
    // benefit rows (NULL for every other protocol).
    version: 4,
    name: 'size of transfer paths and benefit rows',
    sql: `
      ALTER TABLE paths ADD COLUMN size TEXT;
      ALTER TABLE benefit ADD COLUMN size TEXT;
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

function appliedVersion(db: Database.Database): number {
  const table = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).get();
  if (!table) return 0;
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  return row.v ?? 0;
}

function tooNew(path: string, version: number): AnylatError {
  return new AnylatError(
    'ANYLAT_STORE_SCHEMA',
    `store ${path} has schema version ${version}, newer than this anylat understands (${SCHEMA_VERSION}): upgrade anylat or point store.path at another file`,
  );
}

/** Brings the schema up to date; a no-op when it already is. */
export function migrate(db: Database.Database, path: string): void {
  if (appliedVersion(db) === SCHEMA_VERSION) return;
  db.transaction(() => {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER PRIMARY KEY,
      name       TEXT    NOT NULL,
      applied_at TEXT    NOT NULL
    )`);
    // Re-read inside the write lock: another process may have migrated while we waited for it.
    const current = appliedVersion(db);
    if (current > SCHEMA_VERSION) throw tooNew(path, current);
    const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      db.exec(m.sql);
      record.run(m.version, m.name, new Date().toISOString());
    }
  }).immediate();
}

/** For read-only handles: refuses a store this build cannot read, without changing it. */
export function checkReadable(db: Database.Database, path: string): void {
  const current = appliedVersion(db);
  if (current > SCHEMA_VERSION) throw tooNew(path, current);
  if (current === 0) {
    throw new AnylatError(
      'ANYLAT_STORE_EMPTY',
      `store ${path} has no anylat data yet (no schema): is this the store an agent writes?`,
    );
  }
}
