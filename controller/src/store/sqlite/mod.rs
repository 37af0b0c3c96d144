//! The SQLite store: one connection behind a mutex, in WAL mode.
//!
//! Writes run in `BEGIN IMMEDIATE` transactions, so two controllers (or a
//! controller and an admin tool) on the same file serialise instead of
//! failing half-way; `busy_timeout` makes the second one wait.

mod accounts;
mod agents;
mod alarms;
mod alerts;
mod library;
mod live;
mod plays;
mod presence;
mod regions;
mod reports;
mod schedules;
mod tokens;

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::Connection;

use super::migrations::{self, latest_version};
use dalaba_protocol::state::PlayEvent;

use super::{
    Agent, DesiredVersion, EnrolmentCode, NewAgent, PlayEventsStored, RedeemError, Store, StoreError, StoredPlayEvent,
};
use crate::accounts::audit::{AuditFilter, AuditRecord, NewAuditRecord};
use crate::accounts::session::{NewSession, StoredSession};
use crate::accounts::{NewUser, User, UserPatch};
use crate::alarms::{Alarm, AlarmFilter, NewAlarm};
use crate::alerts::{AlertRecord, NewAlertRecord};
use crate::directory::{ImportRow, ImportSummary, NewRegion, Region, RegionPatch};
use crate::library::{Category, LibraryItem, LibraryItemPatch, NewCategory, NewLibraryItem, StoredFile};
use crate::live::{AgentReport, SessionReport};
use crate::reports::{DaySpan, ReportCounts, VillagePresence};
use crate::schedules::{ScheduleSpec, StoredSchedule, Timetable};
use crate::tokens::{ApiToken, NewApiToken};
use dalaba_schedules::QuietHours;

/// How long a write waits for another connection's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Store`] in one SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its
    /// schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_at(path, latest_version())
    }

    /// An empty store in memory, for tests and demos.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory()?;
        SqliteStore::with_connection(conn, Path::new(":memory:"), latest_version())
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        migrations::current_version(&self.lock())
    }

    /// Opens the database migrated only up to `version`, to test upgrades
    /// from older releases.
    #[cfg(test)]
    pub(crate) fn open_at_version(path: &Path, version: u32) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_at(path, version)
    }

    fn open_at(path: &Path, version: u32) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open { path: path.to_owned(), source })?;
        SqliteStore::with_connection(conn, path, version)
    }

    fn with_connection(mut conn: Connection, path: &Path, version: u32) -> Result<SqliteStore, StoreError> {
        configure(&conn).map_err(|source| StoreError::Open { path: path.to_owned(), source })?;
        migrations::migrate(&mut conn, version)?;
        Ok(SqliteStore { conn: Mutex::new(conn) })
    }

    /// The connection. A panic while it was held cannot leave a transaction
    /// open (dropping a `Transaction` rolls it back), so a poisoned lock is
    /// safe to take over.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store for SqliteStore {
    fn regions(&self) -> Result<Vec<Region>, StoreError> {
        regions::all(&self.lock())
    }

    fn region(&self, id: i64) -> Result<Option<Region>, StoreError> {
        regions::by_id(&self.lock(), id)
    }

    fn create_region(&self, new: &NewRegion) -> Result<Region, StoreError> {
        regions::create(&mut self.lock(), new)
    }

    fn update_region(&self, id: i64, patch: &RegionPatch) -> Result<Region, StoreError> {
        regions::update(&mut self.lock(), id, patch)
    }

    fn delete_region(&self, id: i64) -> Result<(), StoreError> {
        regions::delete(&mut self.lock(), id)
    }

    fn import_regions(&self, rows: &[ImportRow]) -> Result<ImportSummary, StoreError> {
        regions::import(&mut self.lock(), rows)
    }

    fn region_count(&self) -> Result<u64, StoreError> {
        regions::count(&self.lock())
    }

    fn create_enrolment_code(
        &self,
        village_id: i64,
        code: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<EnrolmentCode, StoreError> {
        agents::create_code(&mut self.lock(), village_id, code, expires_at_ms, now_ms)
    }

    fn redeem_enrolment_code(&self, code: &str, now_ms: i64, agent: &NewAgent) -> Result<Agent, RedeemError> {
        agents::redeem(&mut self.lock(), code, now_ms, agent)
    }

    fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        agents::all(&self.lock())
    }

    fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        agents::by_id(&self.lock(), id)
    }

    fn agent_secret_hash(&self, id: &str) -> Result<Option<String>, StoreError> {
        agents::secret_hash(&self.lock(), id)
    }

    fn record_agent_connected(
        &self,
        id: &str,
        at_ms: i64,
        agent_version: &str,
        hardware_json: &str,
    ) -> Result<(), StoreError> {
        agents::record_connected(&self.lock(), id, at_ms, agent_version, hardware_json)
    }

    fn record_agent_seen(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        agents::record_seen(&self.lock(), id, at_ms)
    }

    fn record_play_events(
        &self,
        agent_id: &str,
        events: &[PlayEvent],
        received_at_ms: i64,
    ) -> Result<PlayEventsStored, StoreError> {
        plays::record(&mut self.lock(), agent_id, events, received_at_ms)
    }

    fn play_events(&self, village_id: i64, from_ms: i64, to_ms: i64) -> Result<Vec<StoredPlayEvent>, StoreError> {
        plays::of_village(&self.lock(), village_id, from_ms, to_ms)
    }

    fn schedules(&self) -> Result<Vec<StoredSchedule>, StoreError> {
        schedules::all(&self.lock())
    }

    fn schedule(&self, id: i64) -> Result<Option<StoredSchedule>, StoreError> {
        schedules::one(&self.lock(), id)
    }

    fn create_schedule(&self, spec: &ScheduleSpec, now_ms: i64) -> Result<StoredSchedule, StoreError> {
        schedules::create(&mut self.lock(), spec, now_ms)
    }

    fn update_schedule(&self, id: i64, spec: &ScheduleSpec, now_ms: i64) -> Result<StoredSchedule, StoreError> {
        schedules::update(&mut self.lock(), id, spec, now_ms)
    }

    fn delete_schedule(&self, id: i64) -> Result<(), StoreError> {
        schedules::delete(&mut self.lock(), id)
    }

    fn quiet_hours(&self) -> Result<Option<QuietHours>, StoreError> {
        schedules::quiet_hours(&self.lock())
    }

    fn set_quiet_hours(&self, quiet: &QuietHours, now_ms: i64) -> Result<(), StoreError> {
        schedules::set_quiet_hours(&self.lock(), quiet, now_ms)
    }

    fn timetable(&self) -> Result<Timetable, StoreError> {
        let mut conn = self.lock();
        // One read transaction: the directory, library and schedules agree.
        let tx = conn.transaction()?;
        let timetable = Timetable {
            regions: regions::all(&tx)?,
            library: schedules::library_by_id(&tx)?,
            schedules: schedules::all(&tx)?,
            quiet_hours: schedules::quiet_hours(&tx)?,
        };
        tx.commit()?;
        Ok(timetable)
    }

    fn desired_versions(&self) -> Result<Vec<DesiredVersion>, StoreError> {
        schedules::desired_versions(&self.lock())
    }

    fn record_desired_versions(&self, versions: &[DesiredVersion], now_ms: i64) -> Result<(), StoreError> {
        schedules::record_desired_versions(&mut self.lock(), versions, now_ms)
    }

    fn save_live_session(&self, report: &SessionReport) -> Result<(), StoreError> {
        live::save_session(&mut self.lock(), report)
    }

    fn save_live_agent(&self, session_id: &str, agent: &AgentReport) -> Result<(), StoreError> {
        live::save_agent(&self.lock(), session_id, agent)
    }

    fn live_session(&self, id: &str) -> Result<Option<SessionReport>, StoreError> {
        live::session(&self.lock(), id)
    }

    fn live_sessions(&self, limit: usize) -> Result<Vec<SessionReport>, StoreError> {
        live::sessions(&self.lock(), limit)
    }

    fn delete_agent(&self, id: &str) -> Result<(), StoreError> {
        agents::delete(&self.lock(), id)
    }

    fn library_categories(&self) -> Result<Vec<Category>, StoreError> {
        library::categories(&self.lock())
    }

    fn create_library_category(&self, new: &NewCategory) -> Result<Category, StoreError> {
        library::create_category(&self.lock(), new)
    }

    fn library_item(&self, id: i64) -> Result<Option<LibraryItem>, StoreError> {
        library::item(&self.lock(), id)
    }

    fn library_items(&self) -> Result<Vec<LibraryItem>, StoreError> {
        library::items(&self.lock())
    }

    fn library_item_by_original(&self, sha256: &str) -> Result<Option<LibraryItem>, StoreError> {
        library::by_original(&self.lock(), sha256)
    }

    fn library_distribution(&self, sha256: &str) -> Result<Option<StoredFile>, StoreError> {
        library::distribution(&self.lock(), sha256)
    }

    fn library_content_in_use(&self, sha256: &str) -> Result<bool, StoreError> {
        library::content_in_use(&self.lock(), sha256)
    }

    fn insert_library_item(&self, new: &NewLibraryItem) -> Result<LibraryItem, StoreError> {
        library::insert(&mut self.lock(), new)
    }

    fn update_library_item(&self, id: i64, patch: &LibraryItemPatch) -> Result<LibraryItem, StoreError> {
        library::update(&mut self.lock(), id, patch)
    }

    fn delete_library_item(&self, id: i64) -> Result<LibraryItem, StoreError> {
        library::delete(&mut self.lock(), id)
    }

    fn create_api_token(&self, new: &NewApiToken) -> Result<ApiToken, StoreError> {
        tokens::create(&self.lock(), new)
    }

    fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        tokens::all(&self.lock())
    }

    fn api_token_by_hash(&self, secret_hash: &str) -> Result<Option<(ApiToken, String)>, StoreError> {
        tokens::by_hash(&self.lock(), secret_hash)
    }

    fn record_api_token_used(&self, id: i64, at_ms: i64) -> Result<(), StoreError> {
        tokens::record_used(&self.lock(), id, at_ms)
    }

    fn revoke_api_token(&self, name: &str, at_ms: i64) -> Result<ApiToken, StoreError> {
        tokens::revoke(&self.lock(), name, at_ms)
    }

    fn insert_alert(&self, new: &NewAlertRecord) -> Result<AlertRecord, StoreError> {
        alerts::insert(&mut self.lock(), new)
    }

    fn alert_by_key(&self, sender: &str, identifier: &str) -> Result<Option<AlertRecord>, StoreError> {
        alerts::by_key(&self.lock(), sender, identifier)
    }

    fn alert_thread(&self, thread_id: i64) -> Result<Vec<AlertRecord>, StoreError> {
        alerts::thread(&self.lock(), thread_id)
    }

    fn set_alert_session(&self, id: i64, session_id: &str) -> Result<(), StoreError> {
        alerts::set_session(&self.lock(), id, session_id)
    }

    fn delete_alert(&self, id: i64) -> Result<(), StoreError> {
        alerts::delete(&self.lock(), id)
    }

    fn create_user(&self, new: &NewUser) -> Result<User, StoreError> {
        accounts::create_user(&self.lock(), new)
    }

    fn users(&self) -> Result<Vec<User>, StoreError> {
        accounts::users(&self.lock())
    }

    fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
        accounts::user_by_id(&self.lock(), id)
    }

    fn user_by_name(&self, name: &str) -> Result<Option<(User, String)>, StoreError> {
        accounts::user_by_name(&self.lock(), name)
    }

    fn update_user(&self, id: i64, patch: &UserPatch) -> Result<User, StoreError> {
        accounts::update_user(&mut self.lock(), id, patch)
    }

    fn record_login(&self, id: i64, success: bool, now_ms: i64) -> Result<(), StoreError> {
        accounts::record_login(&self.lock(), id, success, now_ms)
    }

    fn create_session(&self, new: &NewSession) -> Result<(), StoreError> {
        accounts::create_session(&self.lock(), new)
    }

    fn session(&self, id_hash: &str) -> Result<Option<StoredSession>, StoreError> {
        accounts::session(&self.lock(), id_hash)
    }

    fn touch_session(&self, id_hash: &str, now_ms: i64) -> Result<(), StoreError> {
        accounts::touch_session(&self.lock(), id_hash, now_ms)
    }

    fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        accounts::delete_session(&self.lock(), id_hash)
    }

    fn append_audit(&self, record: &NewAuditRecord) -> Result<(), StoreError> {
        accounts::append_audit(&self.lock(), record)
    }

    fn last_config(&self) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        let conn = self.lock();
        Ok(conn.query_row("SELECT settings FROM controller_config WHERE id = 1", [], |r| r.get(0)).optional()?)
    }

    fn save_config(&self, settings_json: &str, now_ms: i64) -> Result<(), StoreError> {
        self.lock().execute(
            "INSERT INTO controller_config (id, settings, recorded_at_ms) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET settings = excluded.settings, recorded_at_ms = excluded.recorded_at_ms",
            rusqlite::params![settings_json, now_ms],
        )?;
        Ok(())
    }

    fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        accounts::audit(&self.lock(), filter)
    }

    fn report_counts(&self, villages: &[i64], days: &[DaySpan]) -> Result<ReportCounts, StoreError> {
        self.counts_for_report(villages, days)
    }

    fn presence_history(&self, villages: &[i64], from_ms: i64, to_ms: i64) -> Result<Vec<VillagePresence>, StoreError> {
        let mut conn = self.lock();
        // One read transaction: enrolments and intervals agree.
        let tx = conn.transaction()?;
        let history = presence::history(&tx, villages, from_ms, to_ms)?;
        tx.commit()?;
        Ok(history)
    }

    fn record_presence_connected(&self, agent_id: &str, at_ms: i64) -> Result<(), StoreError> {
        presence::connected(&self.lock(), agent_id, at_ms)
    }

    fn record_presence_disconnected(&self, agent_id: &str, at_ms: i64) -> Result<(), StoreError> {
        presence::disconnected(&self.lock(), agent_id, at_ms)
    }

    fn checkpoint_presence(&self, at_ms: i64) -> Result<usize, StoreError> {
        presence::checkpoint(&self.lock(), at_ms)
    }

    fn close_open_presence(&self) -> Result<usize, StoreError> {
        presence::close_open(&self.lock())
    }

    fn raise_alarm(&self, new: &NewAlarm) -> Result<Option<Alarm>, StoreError> {
        alarms::raise(&self.lock(), new)
    }

    fn clear_alarm(&self, id: i64, at_ms: i64) -> Result<Option<Alarm>, StoreError> {
        alarms::clear(&self.lock(), id, at_ms)
    }

    fn acknowledge_alarm(&self, id: i64, at_ms: i64, by: &str) -> Result<Option<Alarm>, StoreError> {
        alarms::acknowledge(&self.lock(), id, at_ms, by)
    }

    fn alarm(&self, id: i64) -> Result<Option<Alarm>, StoreError> {
        alarms::one(&self.lock(), id)
    }

    fn open_alarms(&self) -> Result<Vec<Alarm>, StoreError> {
        alarms::open(&self.lock())
    }

    fn alarms(&self, filter: &AlarmFilter) -> Result<Vec<Alarm>, StoreError> {
        alarms::list(&self.lock(), filter)
    }

    fn sync_failing(&self) -> Result<Vec<(String, i64, String)>, StoreError> {
        alarms::sync_failing(&self.lock())
    }

    fn set_sync_failing(&self, agent_id: &str, failing: Option<(i64, &str)>) -> Result<(), StoreError> {
        alarms::set_sync_failing(&self.lock(), agent_id, failing)
    }
}

/// Per-connection settings. `journal_mode` answers with a row, hence the query.
fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get::<_, String>(0))?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
}

/// Whether `error` is a violated UNIQUE or PRIMARY KEY constraint.
fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_sets_wal_and_foreign_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("dalaba.db")).expect("open");
        let conn = store.lock();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("mode");
        let fks: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).expect("fks");
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).expect("sync");
        assert_eq!((mode.as_str(), fks, sync), ("wal", 1, 1));
    }

    #[test]
    fn open_reports_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing-dir").join("dalaba.db");
        let err = SqliteStore::open(&path).expect_err("no such directory");
        assert!(err.to_string().starts_with("cannot open database "), "{err}");
        assert!(err.to_string().contains("missing-dir"));
    }

    #[test]
    fn a_poisoned_lock_is_recovered() {
        let store = std::sync::Arc::new(SqliteStore::open_in_memory().expect("open"));
        let clone = std::sync::Arc::clone(&store);
        let panicked = std::thread::spawn(move || {
            let _guard = clone.lock();
            panic!("poison the lock");
        })
        .join();
        assert!(panicked.is_err());
        assert_eq!(store.region_count().expect("count after poison"), 0);
    }
}
