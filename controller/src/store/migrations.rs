//! Schema migrations: an ordered list of embedded SQL steps, applied at open,
//! each in its own transaction and recorded in `schema_migrations`.
//!
//! Migrations are append-only: a released step is never edited, a change is
//! a new step.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::StoreError;

/// One schema step.
#[derive(Debug)]
pub struct Migration {
    /// Its version; versions are 1, 2, 3, … in order.
    pub version: u32,
    /// What it does, for logs.
    pub name: &'static str,
    /// The SQL, run as one batch.
    pub sql: &'static str,
}

/// Every migration this build knows, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "regions",
        sql: "
            CREATE TABLE regions (
                id        INTEGER PRIMARY KEY,
                parent_id INTEGER REFERENCES regions (id) ON DELETE RESTRICT,
                level     TEXT NOT NULL CHECK (level IN ('county', 'township', 'village')),
                name      TEXT NOT NULL,
                code      TEXT NOT NULL UNIQUE,
                latitude  REAL,
                longitude REAL,
                tags      TEXT NOT NULL DEFAULT '[]'
            );
            CREATE INDEX regions_parent ON regions (parent_id);
        ",
    },
    Migration {
        version: 2,
        name: "enrolment codes and agents",
        sql: "
            CREATE TABLE enrolment_codes (
                code_hash     TEXT PRIMARY KEY,
                village_id    INTEGER NOT NULL REFERENCES regions (id) ON DELETE CASCADE,
                created_at_ms INTEGER NOT NULL,
                expires_at_ms INTEGER NOT NULL,
                used_at_ms    INTEGER,
                used_by_agent TEXT
            );
            CREATE INDEX enrolment_codes_village ON enrolment_codes (village_id);
            CREATE TABLE agents (
                id                TEXT PRIMARY KEY,
                village_id        INTEGER NOT NULL REFERENCES regions (id) ON DELETE RESTRICT,
                secret_hash       TEXT NOT NULL,
                hostname          TEXT NOT NULL,
                agent_version     TEXT NOT NULL,
                hardware_json     TEXT NOT NULL,
                enrolled_at_ms    INTEGER NOT NULL,
                last_seen_ms      INTEGER,
                last_connected_ms INTEGER
            );
            CREATE INDEX agents_village ON agents (village_id);
        ",
    },
    Migration {
        version: 3,
        name: "play events",
        // No foreign key to agents: proof of play outlives a removed agent.
        sql: "
            CREATE TABLE play_events (
                agent_id            TEXT NOT NULL,
                event_id            TEXT NOT NULL,
                village_id          INTEGER NOT NULL,
                schedule_id         INTEGER NOT NULL,
                sha256              TEXT NOT NULL,
                scheduled_ms        INTEGER NOT NULL,
                started_ms          INTEGER,
                ended_ms            INTEGER,
                outcome             TEXT NOT NULL
                    CHECK (outcome IN ('completed', 'preempted', 'skipped', 'missed', 'failed')),
                reason              TEXT,
                amplifier_confirmed INTEGER NOT NULL,
                received_at_ms      INTEGER NOT NULL,
                PRIMARY KEY (agent_id, event_id)
            );
            CREATE INDEX play_events_village_time ON play_events (village_id, scheduled_ms);
        ",
    },
    Migration {
        version: 4,
        name: "audio library",
        // Files live in data_dir/content/<sha256>; a row is written only
        // after both of its files are in place. One item per original.
        sql: "
            CREATE TABLE library_categories (
                key      TEXT PRIMARY KEY,
                label_zh TEXT NOT NULL,
                label_en TEXT NOT NULL,
                builtin  INTEGER NOT NULL DEFAULT 0
            );
            INSERT INTO library_categories (key, label_zh, label_en, builtin) VALUES
                ('legal', '法律法规', 'Laws and regulations', 1),
                ('traffic', '交通出行', 'Traffic and travel', 1),
                ('health', '卫生健康', 'Health', 1);
            CREATE TABLE library_items (
                id                  INTEGER PRIMARY KEY,
                title               TEXT NOT NULL,
                description         TEXT NOT NULL DEFAULT '',
                category            TEXT NOT NULL REFERENCES library_categories (key) ON DELETE RESTRICT,
                source              TEXT NOT NULL CHECK (source IN ('upload', 'tts')),
                original_sha256     TEXT NOT NULL UNIQUE,
                original_size       INTEGER NOT NULL,
                original_format     TEXT NOT NULL,
                distribution_sha256 TEXT NOT NULL,
                distribution_size   INTEGER NOT NULL,
                distribution_format TEXT NOT NULL,
                duration_ms         INTEGER NOT NULL,
                loudness_lufs       REAL,
                true_peak_dbtp      REAL,
                gain_db             REAL NOT NULL,
                created_at_ms       INTEGER NOT NULL
            );
            CREATE INDEX library_items_category ON library_items (category);
            CREATE INDEX library_items_distribution ON library_items (distribution_sha256);
        ",
    },
    Migration {
        version: 5,
        name: "schedules, quiet hours and desired-state versions",
        // A schedule's settings are JSON (the API's shape, less the
        // playlist); its playlist rows hold the library items, so an item a
        // schedule plays cannot be deleted.
        sql: "
            CREATE TABLE schedules (
                id            INTEGER PRIMARY KEY,
                name          TEXT NOT NULL,
                enabled       INTEGER NOT NULL DEFAULT 1,
                spec          TEXT NOT NULL,
                created_at_ms INTEGER NOT NULL,
                updated_at_ms INTEGER NOT NULL
            );
            CREATE TABLE schedule_items (
                schedule_id INTEGER NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
                position    INTEGER NOT NULL,
                item_id     INTEGER NOT NULL REFERENCES library_items (id) ON DELETE RESTRICT,
                repeats     INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (schedule_id, position)
            );
            CREATE INDEX schedule_items_item ON schedule_items (item_id);
            CREATE TABLE quiet_hours (
                id            INTEGER PRIMARY KEY CHECK (id = 1),
                spec          TEXT NOT NULL,
                updated_at_ms INTEGER NOT NULL
            );
            CREATE TABLE desired_states (
                agent_id    TEXT PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
                version     INTEGER NOT NULL,
                digest      TEXT NOT NULL,
                built_at_ms INTEGER NOT NULL
            );
        ",
    },
    Migration {
        version: 6,
        name: "live session reports",
        // A live session and one row per targeted agent. Agents are not
        // foreign keys: a report outlives the agents it names.
        sql: "
            CREATE TABLE live_sessions (
                id            TEXT PRIMARY KEY,
                title         TEXT NOT NULL,
                priority      TEXT NOT NULL,
                source        TEXT NOT NULL,
                started_by    TEXT NOT NULL,
                targets       TEXT NOT NULL,
                villages      TEXT NOT NULL,
                volume        INTEGER NOT NULL,
                started_at_ms INTEGER NOT NULL,
                ended_at_ms   INTEGER,
                end_reason    TEXT,
                frames_sent   INTEGER NOT NULL DEFAULT 0
            );
            CREATE INDEX live_sessions_started ON live_sessions (started_at_ms);
            CREATE TABLE live_session_agents (
                session_id      TEXT NOT NULL REFERENCES live_sessions (id) ON DELETE CASCADE,
                agent_id        TEXT NOT NULL,
                village_id      INTEGER NOT NULL,
                state           TEXT NOT NULL,
                playing_from_ms INTEGER,
                playing_to_ms   INTEGER,
                frames_sent     INTEGER NOT NULL DEFAULT 0,
                frames_dropped  INTEGER NOT NULL DEFAULT 0,
                frames_received INTEGER,
                frames_lost     INTEGER,
                refusal         TEXT,
                end_reason      TEXT,
                PRIMARY KEY (session_id, agent_id)
            );
        ",
    },
    Migration {
        version: 7,
        name: "API tokens and CAP alerts",
        // Tokens are kept by the SHA-256 of the whole token; a revoked one
        // stays, so its name is not reused and its history stays readable.
        // A CAP alert and the alerts that update or cancel it form a thread
        // (`thread_id`, the first alert's id); `session_id` is the live
        // session an alert started. Sessions are not foreign keys: an alert
        // may arrive before its session is stored, and outlives it.
        sql: "
            CREATE TABLE api_tokens (
                id            INTEGER PRIMARY KEY,
                name          TEXT NOT NULL UNIQUE,
                secret_hash   TEXT NOT NULL UNIQUE,
                scopes        TEXT NOT NULL,
                created_at_ms INTEGER NOT NULL,
                last_used_ms  INTEGER,
                revoked_at_ms INTEGER
            );
            CREATE TABLE cap_alerts (
                id             INTEGER PRIMARY KEY,
                sender         TEXT NOT NULL,
                identifier     TEXT NOT NULL,
                sent           TEXT NOT NULL,
                msg_type       TEXT NOT NULL,
                thread_id      INTEGER NOT NULL,
                session_id     TEXT,
                token_name     TEXT NOT NULL,
                received_at_ms INTEGER NOT NULL,
                UNIQUE (sender, identifier)
            );
            CREATE INDEX cap_alerts_thread ON cap_alerts (thread_id);
        ",
    },
    Migration {
        version: 8,
        name: "operator accounts, sessions and the audit log",
        // A user's region is the subtree he may see and act on (NULL: the
        // county). Sessions are kept by the SHA-256 of the cookie's value.
        // The audit log is append-only: triggers refuse UPDATE and DELETE.
        sql: "
            CREATE TABLE users (
                id              INTEGER PRIMARY KEY,
                name            TEXT NOT NULL UNIQUE COLLATE NOCASE,
                display_name    TEXT NOT NULL,
                role            TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
                region_id       INTEGER REFERENCES regions (id),
                emergency       INTEGER NOT NULL DEFAULT 0,
                password_hash   TEXT NOT NULL,
                created_at_ms   INTEGER NOT NULL,
                disabled_at_ms  INTEGER,
                failed_logins   INTEGER NOT NULL DEFAULT 0,
                locked_until_ms INTEGER
            );
            CREATE TABLE user_sessions (
                id_hash       TEXT PRIMARY KEY,
                user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                csrf          TEXT NOT NULL,
                created_at_ms INTEGER NOT NULL,
                last_seen_ms  INTEGER NOT NULL,
                expires_at_ms INTEGER NOT NULL,
                ip            TEXT NOT NULL
            );
            CREATE INDEX user_sessions_user ON user_sessions (user_id);
            CREATE TABLE audit_log (
                id         INTEGER PRIMARY KEY,
                at_ms      INTEGER NOT NULL,
                actor      TEXT NOT NULL,
                actor_kind TEXT NOT NULL,
                ip         TEXT NOT NULL,
                action     TEXT NOT NULL,
                method     TEXT NOT NULL,
                path       TEXT NOT NULL,
                status     INTEGER NOT NULL,
                village_id INTEGER,
                detail     TEXT NOT NULL
            );
            CREATE INDEX audit_log_at ON audit_log (at_ms);
            CREATE INDEX audit_log_actor ON audit_log (actor, at_ms);
            CREATE INDEX audit_log_action ON audit_log (action, at_ms);
            CREATE INDEX audit_log_village ON audit_log (village_id, at_ms);
            CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
                BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
            CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
                BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        ",
    },
    Migration {
        version: 9,
        name: "presence history and operator alarms",
        // One row per agent link that was up: `disconnected_ms` is NULL
        // while it is. `seen_ms` is a checkpoint of the last sign of life,
        // moved for every open row in one statement every few minutes, so a
        // controller that crashed can close its open rows near the truth at
        // its next start. Rows keep their village and survive the agent's
        // removal, like play events.
        // An alarm is open while `cleared_ms` is NULL; the partial unique
        // index keeps at most one open alarm per (kind, agent), so a restart
        // or a race never raises one twice.
        sql: "
            CREATE TABLE agent_presence (
                id              INTEGER PRIMARY KEY,
                agent_id        TEXT NOT NULL,
                village_id      INTEGER NOT NULL,
                connected_ms    INTEGER NOT NULL,
                disconnected_ms INTEGER,
                seen_ms         INTEGER NOT NULL
            );
            CREATE INDEX agent_presence_village ON agent_presence (village_id, connected_ms);
            CREATE INDEX agent_presence_open ON agent_presence (agent_id) WHERE disconnected_ms IS NULL;
            CREATE TABLE alarms (
                id              INTEGER PRIMARY KEY,
                kind            TEXT NOT NULL,
                agent_id        TEXT NOT NULL,
                village_id      INTEGER NOT NULL,
                raised_ms       INTEGER NOT NULL,
                cleared_ms      INTEGER,
                acknowledged_ms INTEGER,
                acknowledged_by TEXT,
                detail          TEXT NOT NULL DEFAULT '{}'
            );
            CREATE UNIQUE INDEX alarms_open ON alarms (kind, agent_id) WHERE cleared_ms IS NULL;
            CREATE INDEX alarms_village ON alarms (village_id, id);
        ",
    },
    Migration {
        version: 10,
        name: "accounts keep their last login",
        sql: "ALTER TABLE users ADD COLUMN last_login_ms INTEGER;",
    },
    Migration {
        version: 11,
        name: "a password an admin chose is to be changed by its holder",
        sql: "ALTER TABLE users ADD COLUMN password_change_required INTEGER NOT NULL DEFAULT 0;",
    },
    Migration {
        version: 12,
        name: "the settings the controller last ran with",
        sql: "
            CREATE TABLE controller_config (
                id             INTEGER PRIMARY KEY CHECK (id = 1),
                settings       TEXT NOT NULL,
                recorded_at_ms INTEGER NOT NULL
            );
        ",
    },
    Migration {
        version: 13,
        name: "when each agent's sync started failing, kept across restarts",
        // Agents are not foreign keys: the alarm service forgets rows of
        // agents no longer enrolled when it recalls them.
        sql: "
            CREATE TABLE sync_failing (
                agent_id TEXT PRIMARY KEY,
                since_ms INTEGER NOT NULL,
                reason   TEXT NOT NULL
            );
        ",
    },
];

/// The schema version this build creates and understands.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The version recorded in the database (0 for a new database).
pub fn current_version(conn: &Connection) -> Result<u32, StoreError> {
    ensure_table(conn)?;
    let version: Option<u32> = conn.query_row("SELECT MAX(version) FROM schema_migrations", [], |row| row.get(0))?;
    Ok(version.unwrap_or(0))
}

/// Applies every migration up to `target`; refuses a database newer than
/// this build.
pub(crate) fn migrate(conn: &mut Connection, target: u32) -> Result<(), StoreError> {
    let found = current_version(conn)?;
    let supported = latest_version();
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > found && m.version <= target) {
        apply(conn, migration).map_err(|source| StoreError::Migration { version: migration.version, source })?;
    }
    Ok(())
}

fn ensure_table(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version       INTEGER PRIMARY KEY,
            applied_at_ms INTEGER NOT NULL
        )",
    )?;
    Ok(())
}

/// Applies one migration unless another process got there first.
fn apply(conn: &mut Connection, migration: &Migration) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let done = tx
        .query_row("SELECT 1 FROM schema_migrations WHERE version = ?1", [migration.version], |_| Ok(()))
        .optional()?
        .is_some();
    if !done {
        tx.execute_batch(migration.sql)?;
        // SQLite's clock, so that opening a store needs no clock argument.
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at_ms)
             VALUES (?1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))",
            [migration.version],
        )?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{Level, NewRegion};
    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;

    fn county() -> NewRegion {
        NewRegion {
            parent_id: None,
            level: Level::County,
            name: "泾川县".into(),
            code: "620821000000".into(),
            latitude: Some(35.33),
            longitude: Some(107.37),
            tags: vec!["demo".into()],
        }
    }

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt =
            conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").expect("prepare");
        let names = stmt.query_map([], |row| row.get(0)).expect("query");
        names.collect::<Result<_, _>>().expect("names")
    }

    #[test]
    fn versions_are_consecutive_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.name);
        }
        assert_eq!(latest_version(), 13);
    }

    #[test]
    fn migrates_an_empty_database() {
        let mut conn = Connection::open_in_memory().expect("open");
        assert_eq!(current_version(&conn).expect("version"), 0);
        migrate(&mut conn, latest_version()).expect("migrate");
        assert_eq!(current_version(&conn).expect("version"), latest_version());
        let expected = [
            "agent_presence",
            "agents",
            "alarms",
            "api_tokens",
            "audit_log",
            "cap_alerts",
            "controller_config",
            "desired_states",
            "enrolment_codes",
            "library_categories",
            "library_items",
            "live_session_agents",
            "live_sessions",
            "play_events",
            "quiet_hours",
            "regions",
            "schedule_items",
            "schedules",
            "schema_migrations",
            "sync_failing",
            "user_sessions",
            "users",
        ];
        assert_eq!(tables(&conn), expected);
        let applied: i64 =
            conn.query_row("SELECT MIN(applied_at_ms) FROM schema_migrations", [], |r| r.get(0)).expect("applied");
        assert!(applied > 1_700_000_000_000, "applied_at_ms {applied} is not a recent time");
    }

    #[test]
    fn upgrades_a_version_1_database_keeping_its_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dalaba.db");
        let id = {
            let store = SqliteStore::open_at_version(&path, 1).expect("open at 1");
            assert_eq!(store.schema_version().expect("version"), 1);
            store.create_region(&county()).expect("create").id
        };
        let store = SqliteStore::open(&path).expect("upgrade");
        assert_eq!(store.schema_version().expect("version"), latest_version());
        let region = store.region(id).expect("read").expect("still there");
        assert_eq!((region.name.as_str(), region.tags.as_slice()), ("泾川县", ["demo".to_owned()].as_slice()));
        store.create_enrolment_code(id, "x", 10, 0).expect_err("a county is not a village");
    }

    #[test]
    fn upgrades_a_version_2_database_with_agents_to_play_events() {
        use dalaba_protocol::state::{PlayEvent, PlayOutcome};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dalaba.db");
        let village = {
            let store = SqliteStore::open_at_version(&path, 2).expect("open at 2");
            crate::store::testing::demo_with_agent(&store)
        };
        let store = SqliteStore::open(&path).expect("upgrade");
        assert_eq!(store.schema_version().expect("version"), latest_version());
        assert_eq!(store.agents().expect("agents").len(), 1, "agents survive the upgrade");
        let event = PlayEvent {
            id: "e".into(),
            schedule_id: 1,
            sha256: "ab".repeat(32),
            scheduled_ms: 5,
            started_ms: None,
            ended_ms: None,
            outcome: PlayOutcome::Missed,
            reason: Some("agent was not running".into()),
            amplifier_confirmed: false,
        };
        store.record_play_events("ag-1", &[event], 6).expect("the new table works");
        assert_eq!(store.play_events(village, 0, 10).expect("query").len(), 1);
    }

    #[test]
    fn reopening_is_idempotent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dalaba.db");
        drop(SqliteStore::open(&path).expect("first open"));
        drop(SqliteStore::open(&path).expect("second open"));
        let conn = Connection::open(&path).expect("open");
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0)).expect("count");
        assert_eq!(rows, i64::from(latest_version()));
    }

    #[test]
    fn refuses_a_newer_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dalaba.db");
        drop(SqliteStore::open(&path).expect("open"));
        Connection::open(&path)
            .and_then(|c| c.execute("INSERT INTO schema_migrations VALUES (99, 0)", []))
            .expect("pretend a newer controller ran");
        let err = SqliteStore::open(&path).expect_err("refused");
        assert_eq!(
            err.to_string(),
            format!(
                "database schema version 99 is newer than this controller ({}); upgrade the controller",
                latest_version()
            )
        );
    }

    #[test]
    fn upgrades_a_version_3_database_to_the_library_with_its_categories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dalaba.db");
        drop(SqliteStore::open_at_version(&path, 3).expect("open at 3"));
        let store = SqliteStore::open(&path).expect("upgrade");
        let keys: Vec<String> = store.library_categories().expect("categories").into_iter().map(|c| c.key).collect();
        assert_eq!(keys, ["health", "legal", "traffic"]);
        assert_eq!(store.library_items().expect("items"), []);
    }

    #[test]
    fn upgrades_a_version_10_database_keeping_accounts_unflagged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dalaba.db");
        drop(SqliteStore::open_at_version(&path, 10).expect("open at 10"));
        Connection::open(&path)
            .and_then(|c| {
                c.execute(
                    "INSERT INTO users (name, display_name, role, password_hash, created_at_ms)
                     VALUES ('li.wei', '李伟', 'operator', '-', 1)",
                    [],
                )
            })
            .expect("an account from before");
        let store = SqliteStore::open(&path).expect("upgrade");
        let users = store.users().expect("users");
        assert_eq!(users.len(), 1);
        assert!(!users[0].password_change_required, "nobody is asked to change a password they already had");
    }
}
