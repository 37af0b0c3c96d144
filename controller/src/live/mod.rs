//! Live and emergency broadcasts: sessions, their audio fan-out to agent
//! links, signed start and stop commands, and per-agent status.
//!
//! # Layout
//! - this module: [`Live`], the registry of sessions, and the API other
//!   modules call ([`Live::start`], [`Live::stop`]).
//! - `outbox`: each agent link's outbound queue (control messages never
//!   dropped, audio frames bounded with drop-oldest).

use serde::{Deserialize, Serialize};

use crate::api::{ApiError, AppState};
use crate::signing::CommandSigner;

/// How important a live session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LivePriority {
    /// A live page from an operator.
    Paging,
    /// An emergency broadcast: takes villages from paging sessions.
    Emergency,
}

/// Where a session's audio comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Source {
    /// A library item, played now.
    LibraryItem {
        /// The item.
        item_id: i64,
    },
    /// Typed text, spoken now by espeak-ng.
    Text {
        /// What to say.
        text: String,
    },
    /// The operator's microphone through the microphone WebSocket.
    Microphone,
    /// Encoded audio in any format the audio crate decodes (e.g. a CAP
    /// resource). Not accepted from the JSON API.
    Audio {
        /// The file's bytes.
        #[serde(skip)]
        bytes: Vec<u8>,
        /// A file extension or MIME type that helps the decoder.
        #[serde(skip)]
        hint: Option<String>,
    },
}

/// A request to start a session.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// What operators call it.
    pub title: String,
    /// Paging or emergency.
    pub priority: LivePriority,
    /// Which villages hear it.
    pub targets: dalaba_schedules::Targets,
    /// Where the audio comes from.
    pub source: Source,
    /// Volume, 0–100.
    pub volume: u8,
    /// Who started it: `operator`, `alert:<identifier>`, `token:<name>`.
    pub started_by: String,
    /// The session ends on its own after this long.
    pub max_duration_ms: Option<u64>,
}

/// What a started session looks like.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionInfo {
    /// Its id.
    pub session_id: String,
    /// What operators call it.
    pub title: String,
    /// Paging or emergency.
    pub priority: LivePriority,
    /// The villages it targets.
    pub villages: Vec<i64>,
    /// The agents of those villages.
    pub agents: Vec<String>,
    /// When it started (Unix ms).
    pub started_at_ms: i64,
}

/// Every live session. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Live {
    signer: CommandSigner,
}

impl Live {
    /// No sessions yet; commands are signed with `signer`.
    pub fn new(signer: CommandSigner) -> Live {
        Live { signer }
    }

    /// Starts a session.
    pub async fn start(&self, _st: &AppState, _req: StartRequest) -> Result<SessionInfo, ApiError> {
        let _ = &self.signer;
        Err(ApiError::Coded {
            status: axum::http::StatusCode::NOT_IMPLEMENTED,
            code: "not_implemented",
            message: "live sessions are not available yet".into(),
        })
    }

    /// Stops a session.
    pub async fn stop(&self, _st: &AppState, session_id: &str, _reason: &str) -> Result<(), ApiError> {
        Err(ApiError::NotFound(format!("live session {session_id} does not exist")))
    }
}
