//! Desired state (controller → agent) and proof of play (agent →
//! controller): the messages of scheduled broadcasting.
//!
//! The controller keeps, per agent, a versioned desired state: the plan for
//! the next days and the content it needs (DESIGN.md principle 3). It sends
//! the whole state on change and on every reconnect; the agent applies a
//! version once, downloads what is missing, and reports its sync state.
//! Every occurrence the agent handles yields a [`PlayEvent`], persisted on
//! the agent until the controller acknowledges it (principle 4: at-least-once
//! transport, exactly-once effect through the event id).

use serde::{Deserialize, Serialize};

/// Everything an agent should do, as one versioned snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredState {
    /// Increases with every change for this agent; the agent ignores a
    /// version it already applied.
    pub version: u64,
    /// Controller wall clock when built.
    pub generated_at_ms: i64,
    /// The plan covers `[from_ms, to_ms)`.
    pub from_ms: i64,
    /// End of the planned window.
    pub to_ms: i64,
    /// Planned occurrences, ordered by start, never overlapping.
    pub entries: Vec<PlanEntry>,
    /// Every content item the entries need, once each.
    pub content: Vec<ContentInfo>,
    /// How to drive the amplifier and judge lateness.
    pub playback: PlaybackSettings,
}

/// One planned occurrence of a schedule in this village.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanEntry {
    /// Stable id of the occurrence (schedule id and nominal start), the key
    /// of its play event: the same occurrence keeps its id across versions.
    pub id: String,
    /// The schedule.
    pub schedule_id: i64,
    /// What operators call it.
    pub title: String,
    /// When the schedule wanted it (Unix ms).
    pub nominal_start_ms: i64,
    /// When it plays, after conflict resolution (Unix ms).
    pub start_ms: i64,
    /// The audio, in order, with their start times.
    pub plays: Vec<PlannedPlay>,
    /// The schedule's volume, 0–100.
    pub volume: u8,
    /// Its priority.
    pub priority: Priority,
}

/// One piece of audio within an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedPlay {
    /// SHA-256 of the content (lowercase hex).
    pub sha256: String,
    /// When it starts (Unix ms).
    pub start_ms: i64,
    /// How long it lasts.
    pub duration_ms: u64,
}

/// A content item the agent needs in its cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentInfo {
    /// SHA-256 of the distribution file (lowercase hex): its name and check.
    pub sha256: String,
    /// Size of the distribution file in bytes.
    pub size_bytes: u64,
    /// Playing time.
    pub duration_ms: u64,
    /// Gain to apply so every item plays at the county's loudness, in dB.
    pub gain_db: f64,
    /// Title, for logs and "now playing".
    pub title: String,
}

/// Amplifier and lateness settings sent with the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybackSettings {
    /// Amplifier on this long before the audio.
    pub warmup_ms: u64,
    /// Amplifier kept on this long after the audio, so back-to-back items do
    /// not chatter the relay.
    pub hold_ms: u64,
    /// An item more than this late is not played but logged as missed.
    pub grace_ms: u64,
    /// Safety net: the amplifier is never on longer than this at a stretch.
    pub max_on_ms: u64,
}

impl Default for PlaybackSettings {
    fn default() -> Self {
        PlaybackSettings { warmup_ms: 2_000, hold_ms: 5_000, grace_ms: 60_000, max_on_ms: 2 * 3_600_000 }
    }
}

/// Broadcast priorities on the wire (see `dalaba_schedules::priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Background audio.
    Background,
    /// A scheduled notice.
    Scheduled,
    /// A live page.
    Paging,
    /// An emergency.
    Emergency,
}

/// How far the agent got with a desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// The desired-state version this report is about.
    pub version: u64,
    /// Where it stands.
    pub state: SyncState,
}

/// Sync progress of one desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SyncState {
    /// Every needed content item is cached and verified.
    UpToDate,
    /// Downloading: `done` of `total` items are in the cache.
    Downloading {
        /// Items cached.
        done: u32,
        /// Items needed.
        total: u32,
    },
    /// A download failed and is being retried.
    Failed {
        /// Why, for the operator.
        reason: String,
    },
}

/// What became of one occurrence: the proof of play.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayEvent {
    /// Unique id: the plan entry's id (one event per occurrence).
    pub id: String,
    /// The schedule.
    pub schedule_id: i64,
    /// The content played (first item of the entry when several).
    pub sha256: String,
    /// When it was planned to start (Unix ms, agent clock).
    pub scheduled_ms: i64,
    /// When audio really started, if it did.
    pub started_ms: Option<i64>,
    /// When it ended, if it started.
    pub ended_ms: Option<i64>,
    /// How it ended.
    pub outcome: PlayOutcome,
    /// Why, for skipped, missed, preempted and failed.
    pub reason: Option<String>,
    /// Whether the amplifier driver confirmed it was on.
    pub amplifier_confirmed: bool,
}

/// Outcomes of an occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlayOutcome {
    /// Played to the end.
    Completed,
    /// Stopped by something of higher priority.
    Preempted,
    /// Not played on purpose (e.g. removed from the plan while due).
    Skipped,
    /// Not played because it was too late (agent down, clock jump).
    Missed,
    /// Playing failed (missing content, audio device error).
    Failed,
}

/// A batch of play events from the agent's persisted log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayEvents {
    /// The events, oldest first.
    pub events: Vec<PlayEvent>,
}

/// The controller has stored these events; the agent may forget them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayEventsAck {
    /// Ids of the stored events (stored now or before: storing is idempotent).
    pub ids: Vec<String>,
}

/// Largest number of events in one [`PlayEvents`] message, so a batch stays
/// well under the control frame limit.
pub const MAX_EVENTS_PER_BATCH: usize = 100;
