//! Persistence behind one synchronous trait, [`Store`], so that a PostgreSQL
//! store can be added later without touching callers. [`sqlite::SqliteStore`]
//! is the implementation used today.
//!
//! Calls block: from async code, run them in `tokio::task::spawn_blocking`
//! (each is a few milliseconds on a county-sized directory).
//!
//! # Differences from the first sketch of this API
//! - `StoreError::Invalid` carries a [`ValidationError`] rather than a
//!   `String`; its `Display` is the same kind of one-line message naming the
//!   field.
//! - `StoreError::Import` carries the [`CsvErrors`] of a refused import, so
//!   every bad row is listed with its line; nothing is imported.
//! - `NewAgent` has no `village_id`: the enrolment code decides the village.
//! - `ImportSummary` also counts `unchanged` regions.
//! - Enrolment codes are stored as SHA-256 hashes, so a copy of the database
//!   does not reveal codes that are still valid.
//!
//! # Layout
//! - `sqlite`: the SQLite store (`regions`, `agents`, `plays` and `library`
//!   queries);
//! - `migrations`: the ordered schema migrations applied at open.

pub mod migrations;
pub mod sqlite;
#[cfg(test)]
pub(crate) mod testing;

use std::path::PathBuf;

use serde::Serialize;
use thiserror::Error;

use dalaba_protocol::state::PlayEvent;

use crate::accounts::audit::{AuditFilter, AuditRecord, NewAuditRecord};
use crate::accounts::session::{NewSession, StoredSession};
use crate::accounts::{NewUser, User, UserPatch};
use crate::alarms::{Alarm, AlarmFilter, NewAlarm};
use crate::alerts::{AlertRecord, NewAlertRecord};
use crate::directory::{CsvErrors, ImportRow, ImportSummary, NewRegion, Region, RegionPatch, ValidationError};
use crate::library::{Category, LibraryItem, LibraryItemPatch, NewCategory, NewLibraryItem, StoredFile};
use crate::live::{AgentReport, SessionReport};
use crate::reports::{DaySpan, ReportCounts, VillagePresence};
use crate::schedules::{ScheduleSpec, StoredSchedule, Timetable};
use crate::tokens::{ApiToken, NewApiToken};
use dalaba_schedules::QuietHours;

/// What [`Store::record_play_events`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlayEventsStored {
    /// Events stored now.
    pub inserted: usize,
    /// Events that were already stored.
    pub duplicates: usize,
}

/// A stored play event, with where and when it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredPlayEvent {
    /// The agent that reported it.
    pub agent_id: String,
    /// The village it played in.
    pub village_id: i64,
    /// When the controller received it.
    pub received_at_ms: i64,
    /// The event as the agent reported it.
    #[serde(flatten)]
    pub event: PlayEvent,
}

/// The controller's persistent state: the directory, enrolment codes,
/// agents and proof of play.
pub trait Store: Send + Sync + 'static {
    /// All regions, ordered by code.
    fn regions(&self) -> Result<Vec<Region>, StoreError>;
    /// One region, if it exists.
    fn region(&self, id: i64) -> Result<Option<Region>, StoreError>;
    /// Validates and creates a region. The parent must exist and be at the
    /// level above; the code must be unused.
    fn create_region(&self, new: &NewRegion) -> Result<Region, StoreError>;
    /// Changes a region's name, code, coordinates or tags.
    fn update_region(&self, id: i64, patch: &RegionPatch) -> Result<Region, StoreError>;
    /// Deletes a region; refused with [`StoreError::Conflict`] while it has
    /// child regions or agents. Its unused enrolment codes go with it.
    fn delete_region(&self, id: i64) -> Result<(), StoreError>;
    /// Creates or updates regions by code in one transaction: all rows or
    /// none. Bad rows are reported with [`StoreError::Import`].
    fn import_regions(&self, rows: &[ImportRow]) -> Result<ImportSummary, StoreError>;
    /// How many regions there are.
    fn region_count(&self) -> Result<u64, StoreError>;

    /// Records a single-use enrolment code for a village.
    fn create_enrolment_code(
        &self,
        village_id: i64,
        code: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<EnrolmentCode, StoreError>;
    /// Uses an enrolment code and inserts the agent in one transaction; a
    /// code is redeemed at most once, even under concurrent calls.
    fn redeem_enrolment_code(&self, code: &str, now_ms: i64, agent: &NewAgent) -> Result<Agent, RedeemError>;
    /// All agents, ordered by id.
    fn agents(&self) -> Result<Vec<Agent>, StoreError>;
    /// One agent, if it exists.
    fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError>;
    /// The hash of an agent's secret, if the agent exists.
    fn agent_secret_hash(&self, id: &str) -> Result<Option<String>, StoreError>;
    /// Records that an agent connected, with what it reported about itself.
    fn record_agent_connected(
        &self,
        id: &str,
        at_ms: i64,
        agent_version: &str,
        hardware_json: &str,
    ) -> Result<(), StoreError>;
    /// Records that an agent was heard from (`last_seen_ms` only).
    fn record_agent_seen(&self, id: &str, at_ms: i64) -> Result<(), StoreError>;
    /// Deletes an agent; it must enrol again to reconnect.
    fn delete_agent(&self, id: &str) -> Result<(), StoreError>;

    // proof of play
    /// Stores an agent's play events exactly once: an event id the agent
    /// already delivered is counted as a duplicate and left as it was.
    fn record_play_events(
        &self,
        agent_id: &str,
        events: &[PlayEvent],
        received_at_ms: i64,
    ) -> Result<PlayEventsStored, StoreError>;
    /// Play events of a village whose scheduled time is in `[from_ms, to_ms)`,
    /// ordered by scheduled time.
    fn play_events(&self, village_id: i64, from_ms: i64, to_ms: i64) -> Result<Vec<StoredPlayEvent>, StoreError>;

    // audio library
    /// Every library category, ordered by key.
    fn library_categories(&self) -> Result<Vec<Category>, StoreError>;
    /// Creates a custom category; a used key is a [`StoreError::Conflict`].
    fn create_library_category(&self, new: &NewCategory) -> Result<Category, StoreError>;
    /// One library item, if it exists.
    fn library_item(&self, id: i64) -> Result<Option<LibraryItem>, StoreError>;
    /// Every library item, newest first.
    fn library_items(&self) -> Result<Vec<LibraryItem>, StoreError>;
    /// The item whose original file has this SHA-256, if any.
    fn library_item_by_original(&self, sha256: &str) -> Result<Option<LibraryItem>, StoreError>;
    /// The distribution file with this SHA-256, if an item refers to it.
    fn library_distribution(&self, sha256: &str) -> Result<Option<StoredFile>, StoreError>;
    /// Whether any item refers to this SHA-256, as original or distribution.
    fn library_content_in_use(&self, sha256: &str) -> Result<bool, StoreError>;
    /// Inserts an item whose files are in place. An unknown category is
    /// [`StoreError::NotFound`]; an original already in the library is a
    /// [`StoreError::Conflict`].
    fn insert_library_item(&self, new: &NewLibraryItem) -> Result<LibraryItem, StoreError>;
    /// Changes an item's title, description or category.
    fn update_library_item(&self, id: i64, patch: &LibraryItemPatch) -> Result<LibraryItem, StoreError>;
    /// Deletes an item and returns it (its files are the caller's to
    /// remove). An item a schedule uses is a [`StoreError::Conflict`].
    fn delete_library_item(&self, id: i64) -> Result<LibraryItem, StoreError>;

    /// Every schedule, by id.
    fn schedules(&self) -> Result<Vec<StoredSchedule>, StoreError>;
    /// One schedule.
    fn schedule(&self, id: i64) -> Result<Option<StoredSchedule>, StoreError>;
    /// Stores a new schedule (checked by the caller). A playlist item that
    /// does not exist is `NotFound`.
    fn create_schedule(&self, spec: &ScheduleSpec, now_ms: i64) -> Result<StoredSchedule, StoreError>;
    /// Replaces a schedule.
    fn update_schedule(&self, id: i64, spec: &ScheduleSpec, now_ms: i64) -> Result<StoredSchedule, StoreError>;
    /// Deletes a schedule.
    fn delete_schedule(&self, id: i64) -> Result<(), StoreError>;
    /// The quiet hours, if ever set.
    fn quiet_hours(&self) -> Result<Option<QuietHours>, StoreError>;
    /// Replaces the quiet hours (checked by the caller).
    fn set_quiet_hours(&self, quiet: &QuietHours, now_ms: i64) -> Result<(), StoreError>;
    /// Everything planning reads, in one consistent read.
    fn timetable(&self) -> Result<Timetable, StoreError>;
    /// The desired-state version and digest last built for each agent.
    fn desired_versions(&self) -> Result<Vec<DesiredVersion>, StoreError>;
    /// Records new desired-state versions (agents removed meanwhile are skipped).
    fn record_desired_versions(&self, versions: &[DesiredVersion], now_ms: i64) -> Result<(), StoreError>;

    // live sessions
    /// Stores a live session's report and every agent row (insert or
    /// replace); an ended session never becomes live again.
    fn save_live_session(&self, report: &SessionReport) -> Result<(), StoreError>;
    /// Stores one agent's row of a stored live session.
    fn save_live_agent(&self, session_id: &str, agent: &AgentReport) -> Result<(), StoreError>;
    /// One live session's report with every agent.
    fn live_session(&self, id: &str) -> Result<Option<SessionReport>, StoreError>;
    /// The latest `limit` live sessions, newest first, with agent counts
    /// and without agent rows.
    fn live_sessions(&self, limit: usize) -> Result<Vec<SessionReport>, StoreError>;

    // API tokens
    /// Stores a new token; a name already used (even revoked) is a
    /// [`StoreError::Conflict`].
    fn create_api_token(&self, new: &NewApiToken) -> Result<ApiToken, StoreError>;
    /// Every token, by name.
    fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError>;
    /// The token whose SHA-256 is `secret_hash`, with the stored hash.
    fn api_token_by_hash(&self, secret_hash: &str) -> Result<Option<(ApiToken, String)>, StoreError>;
    /// Records that a token was accepted.
    fn record_api_token_used(&self, id: i64, at_ms: i64) -> Result<(), StoreError>;
    /// Revokes a token by name and returns it.
    fn revoke_api_token(&self, name: &str, at_ms: i64) -> Result<ApiToken, StoreError>;

    // CAP alerts
    /// Records a received alert; one already received (same sender and
    /// identifier) is a [`StoreError::Conflict`].
    fn insert_alert(&self, new: &NewAlertRecord) -> Result<AlertRecord, StoreError>;
    /// The alert a sender sent with this identifier.
    fn alert_by_key(&self, sender: &str, identifier: &str) -> Result<Option<AlertRecord>, StoreError>;
    /// Every alert of a thread (the first alert and its updates and
    /// cancellations), in the order received.
    fn alert_thread(&self, thread_id: i64) -> Result<Vec<AlertRecord>, StoreError>;
    /// Records the live session an alert started.
    fn set_alert_session(&self, id: i64, session_id: &str) -> Result<(), StoreError>;
    /// Forgets an alert whose session could not start, so a retry is not a
    /// duplicate.
    fn delete_alert(&self, id: i64) -> Result<(), StoreError>;

    // Operator accounts, sessions, audit
    /// Stores a new account; a name in use is a [`StoreError::Conflict`].
    fn create_user(&self, new: &NewUser) -> Result<User, StoreError>;
    /// Every account, by name.
    fn users(&self) -> Result<Vec<User>, StoreError>;
    /// One account.
    fn user(&self, id: i64) -> Result<Option<User>, StoreError>;
    /// An account by login name (case-insensitive), with its password hash.
    fn user_by_name(&self, name: &str) -> Result<Option<(User, String)>, StoreError>;
    /// Changes an account; a change of password, role, region, emergency
    /// flag, or disabling it, ends its sessions.
    fn update_user(&self, id: i64, patch: &UserPatch) -> Result<User, StoreError>;
    /// Counts a failed login (locking the account at the limit) or clears
    /// the count after a success.
    fn record_login(&self, id: i64, success: bool, now_ms: i64) -> Result<(), StoreError>;
    /// Stores a login session (and forgets expired ones).
    fn create_session(&self, new: &NewSession) -> Result<(), StoreError>;
    /// A session by the SHA-256 of its cookie, with its account.
    fn session(&self, id_hash: &str) -> Result<Option<StoredSession>, StoreError>;
    /// Records a session's last use.
    fn touch_session(&self, id_hash: &str, now_ms: i64) -> Result<(), StoreError>;
    /// Ends a session.
    fn delete_session(&self, id_hash: &str) -> Result<(), StoreError>;
    /// Appends to the audit log.
    fn append_audit(&self, record: &NewAuditRecord) -> Result<(), StoreError>;
    /// Searches the audit log, newest first.
    fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError>;
    /// The settings the controller ran with last (`config_history`), as
    /// kept: JSON.
    fn last_config(&self) -> Result<Option<String>, StoreError>;
    /// Keeps the settings the controller runs with now.
    fn save_config(&self, settings_json: &str, now_ms: i64) -> Result<(), StoreError>;

    // Reports
    /// The play events of `villages` on each of `days` by outcome, and the
    /// live sessions of those days that targeted or reached them.
    fn report_counts(&self, villages: &[i64], days: &[DaySpan]) -> Result<ReportCounts, StoreError>;
    /// For every one of `villages` with an enrolled agent: its first
    /// enrolment and its agents' online intervals overlapping
    /// `[from_ms, to_ms)` (an interval still open has no end).
    fn presence_history(&self, villages: &[i64], from_ms: i64, to_ms: i64) -> Result<Vec<VillagePresence>, StoreError>;

    // Presence history
    /// Opens an agent's online interval (kept open if one is: a newer link
    /// replaced an older one).
    fn record_presence_connected(&self, agent_id: &str, at_ms: i64) -> Result<(), StoreError>;
    /// Closes an agent's online interval.
    fn record_presence_disconnected(&self, agent_id: &str, at_ms: i64) -> Result<(), StoreError>;
    /// Records `at_ms` as the last sign of life of every open interval.
    fn checkpoint_presence(&self, at_ms: i64) -> Result<usize, StoreError>;
    /// Closes the intervals a crashed controller left open, at the last
    /// sign of life the store knows; returns how many.
    fn close_open_presence(&self) -> Result<usize, StoreError>;

    // Operator alarms
    /// Raises an alarm; `None` when one of its kind is already open for the
    /// agent.
    fn raise_alarm(&self, new: &NewAlarm) -> Result<Option<Alarm>, StoreError>;
    /// Clears an open alarm; `None` when it is not open.
    fn clear_alarm(&self, id: i64, at_ms: i64) -> Result<Option<Alarm>, StoreError>;
    /// Acknowledges an alarm (the first acknowledgement stays); `None` when
    /// it does not exist.
    fn acknowledge_alarm(&self, id: i64, at_ms: i64, by: &str) -> Result<Option<Alarm>, StoreError>;
    /// One alarm.
    fn alarm(&self, id: i64) -> Result<Option<Alarm>, StoreError>;
    /// Every open alarm, oldest first.
    fn open_alarms(&self) -> Result<Vec<Alarm>, StoreError>;
    /// Alarms by `filter`, newest first.
    fn alarms(&self, filter: &AlarmFilter) -> Result<Vec<Alarm>, StoreError>;
    /// Agents whose sync was failing when last seen: agent, since (Unix
    /// ms) and the reason then.
    fn sync_failing(&self) -> Result<Vec<(String, i64, String)>, StoreError>;
    /// Notes that an agent's sync has been failing since `since_ms`, or
    /// (`None`) that it is not failing.
    fn set_sync_failing(&self, agent_id: &str, failing: Option<(i64, &str)>) -> Result<(), StoreError>;
}

/// The desired-state version an agent was last given, and its plan's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredVersion {
    /// The agent.
    pub agent_id: String,
    /// The version.
    pub version: u64,
    /// SHA-256 of the plan (see `distribution`).
    pub digest: String,
}

/// A single-use enrolment code for one village.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EnrolmentCode {
    pub code: String,
    pub village_id: i64,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// An agent to insert when its enrolment code is redeemed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAgent {
    pub id: String,
    pub secret_hash: String,
    pub hostname: String,
    pub agent_version: String,
    pub hardware_json: String,
    pub enrolled_at_ms: i64,
}

/// An enrolled agent (a village Raspberry Pi). Holds no secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Agent {
    pub id: String,
    pub village_id: i64,
    pub hostname: String,
    pub agent_version: String,
    pub hardware_json: String,
    pub enrolled_at_ms: i64,
    pub last_seen_ms: Option<i64>,
    pub last_connected_ms: Option<i64>,
}

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A region, village or agent that does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. "region 12".
        what: String,
    },
    /// A region's fields or parent break the directory's rules.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Import rows were refused; nothing was imported.
    #[error(transparent)]
    Import(#[from] CsvErrors),
    /// The change conflicts with existing data (a used code, child regions…).
    #[error("{0}")]
    Conflict(String),
    /// A library item or category breaks the library's rules (a blank
    /// title, a bad category key…); the message names the field.
    #[error("{0}")]
    Library(String),
    /// The database was written by a newer controller.
    #[error("database schema version {found} is newer than this controller ({supported}); upgrade the controller")]
    SchemaTooNew {
        /// The database's version.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// The database file could not be opened or configured.
    #[error("cannot open database {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What SQLite reported.
        #[source]
        source: rusqlite::Error,
    },
    /// A schema migration failed; the database stays at the previous version.
    #[error("database migration {version} failed")]
    Migration {
        /// The migration that failed.
        version: u32,
        /// What SQLite reported.
        #[source]
        source: rusqlite::Error,
    },
    /// Any other database failure.
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
}

/// Why an enrolment code could not be redeemed.
#[derive(Debug, Error)]
pub enum RedeemError {
    /// No such code was ever issued.
    #[error("unknown enrolment code")]
    Unknown,
    /// The code was issued but has expired.
    #[error("this enrolment code expired at {}", utc(*.expired_at_ms))]
    Expired {
        /// When it expired, in ms since the Unix epoch.
        expired_at_ms: i64,
    },
    /// The code was already redeemed.
    #[error("this enrolment code was already used at {}", utc(*.used_at_ms))]
    AlreadyUsed {
        /// When it was used, in ms since the Unix epoch.
        used_at_ms: i64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Formats ms since the Unix epoch for an operator, e.g. `2025-03-01 08:00:00 UTC`.
fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| format!("{ms} ms"), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redeem_errors_show_readable_times() {
        let err = RedeemError::Expired { expired_at_ms: 1_740_816_000_000 };
        assert_eq!(err.to_string(), "this enrolment code expired at 2025-03-01 08:00:00 UTC");
        assert_eq!(utc(i64::MAX), format!("{} ms", i64::MAX));
    }

    #[test]
    fn schema_too_new_message() {
        let err = StoreError::SchemaTooNew { found: 7, supported: 2 };
        assert_eq!(
            err.to_string(),
            "database schema version 7 is newer than this controller (2); upgrade the controller"
        );
    }
}
