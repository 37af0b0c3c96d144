//! Alerts from upstream systems: CAP 1.2 XML in, live sessions out.
//!
//! `POST /api/v1/alerts` (and `dalaba-controller alert FILE`, which posts
//! to it) takes one CAP 1.2 alert from a caller whose API token has the
//! emergency scope. The alert's areas become villages, its urgency and
//! severity a priority, its embedded audio or its text the sound, and its
//! message type an action:
//!
//! | msgType | action |
//! |---|---|
//! | Alert | start a live session |
//! | Update | stop the session of the referenced alert's thread, start the new one |
//! | Cancel | stop the session of the referenced alert's thread |
//! | Ack, Error | nothing |
//!
//! Only `status` Actual broadcasts; Exercise, System, Test and Draft are
//! checked and mapped and the answer shows what would have happened (a dry
//! run for platforms connecting for the first time). An alert received
//! twice (same sender and identifier) starts nothing the second time.
//!
//! # Layout
//! - `cap`: the bounded CAP 1.2 reader (and why it is not a CAP crate);
//! - `geo`: polygons, circles and their tests against village coordinates;
//! - `areas`: CAP areas to villages;
//! - `plan`: an alert to a session request (the priority table, the audio);
//! - `receive`: the whole exchange with the store and live sessions;
//! - `client`: `dalaba-controller alert FILE`, which posts to the running
//!   controller.

pub mod areas;
pub mod cap;
pub mod client;
pub mod geo;
pub mod plan;
pub mod receive;

use serde::Serialize;

pub use receive::{AlertResponse, receive};

/// Largest alert body accepted by default: 1 MiB (an embedded minute of
/// speech is well under that).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// How alerts are received and broadcast (`[alerts]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    /// Largest body, in bytes; larger is 413.
    pub max_body_bytes: usize,
    /// Volume of alert sessions, 0–100.
    pub volume: u8,
    /// Longest an alert session runs, ms (shorter when the alert expires
    /// sooner).
    pub max_duration_ms: u64,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings { max_body_bytes: DEFAULT_MAX_BODY_BYTES, volume: 100, max_duration_ms: 30 * 60 * 1000 }
    }
}

/// A received alert as stored: which thread it belongs to and the session
/// it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertRecord {
    /// Its row id.
    pub id: i64,
    /// The CAP sender.
    pub sender: String,
    /// The CAP identifier.
    pub identifier: String,
    /// The CAP sent time, as written.
    pub sent: String,
    /// Alert, Update or Cancel.
    pub msg_type: String,
    /// The id of the first alert of its thread (its own id for an Alert).
    pub thread_id: i64,
    /// The live session it started.
    pub session_id: Option<String>,
    /// The API token that sent it.
    pub token_name: String,
    /// When it arrived (Unix ms).
    pub received_at_ms: i64,
}

/// A received alert to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlertRecord {
    /// The CAP sender.
    pub sender: String,
    /// The CAP identifier.
    pub identifier: String,
    /// The CAP sent time, as written.
    pub sent: String,
    /// Alert, Update or Cancel.
    pub msg_type: String,
    /// The thread it continues; `None` starts a new one.
    pub thread_id: Option<i64>,
    /// The API token that sent it.
    pub token_name: String,
    /// Now (Unix ms).
    pub received_at_ms: i64,
}
