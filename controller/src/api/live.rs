//! Live and emergency sessions: start, list, one session's report with
//! every agent, stop, and the microphone WebSocket.
//!
//! The microphone (`GET /live/{id}/microphone`, upgraded to a WebSocket)
//! takes binary messages of 16-bit little-endian mono PCM at 48 kHz, each
//! 10 to 20 ms (960 to 1920 bytes); the controller encodes them to Opus.
//! One microphone per session; when it disconnects, the session ends.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{ApiError, AppState};
use crate::accounts::policy::{Need, Principal, refusal};
use crate::accounts::scope::{self, check_targets};
use crate::live::{LivePriority, SessionInfo, SessionReport, Source, StartRequest, pcm_chunk};

/// Sessions listed as recent.
const RECENT: usize = 50;

/// The body of `POST /live`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// What operators call it.
    pub title: String,
    /// `paging` or `emergency`.
    pub priority: LivePriority,
    /// Which villages hear it.
    pub targets: dalaba_schedules::Targets,
    /// `{"type": "library_item", "item_id": 5}`, `{"type": "text", "text": "…"}`,
    /// `{"type": "microphone"}` or `{"type": "host_input"}` (the controller
    /// host's capture device, `[live] host_input`).
    pub source: Source,
    /// Volume, 0–100 (default 100).
    #[serde(default = "full_volume")]
    pub volume: u8,
    /// The session ends on its own after this long.
    #[serde(default)]
    pub max_duration_ms: Option<u64>,
}

fn full_volume() -> u8 {
    100
}

/// `GET /live`: the live sessions and the recent ones.
#[derive(Debug, Serialize)]
pub struct Listing {
    /// Sessions on the air, newest first.
    pub active: Vec<SessionReport>,
    /// Ended sessions, newest first.
    pub recent: Vec<SessionReport>,
}

/// The body of `POST /live/{id}/stop` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopBody {
    /// Why, for the agents' logs and the report.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /live`: starts a session.
pub async fn start(
    State(st): State<AppState>,
    caller: Principal,
    body: Result<Json<StartBody>, JsonRejection>,
) -> Result<(StatusCode, Json<SessionInfo>), ApiError> {
    let Json(body) = body?;
    // Paging needs the live right (the guard checked it); an emergency
    // needs the emergency right too.
    if body.priority == LivePriority::Emergency && !caller.allows(Need::Emergency) {
        return Err(ApiError::Coded {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: refusal(&caller, Need::Emergency),
        });
    }
    check_targets(&st, &caller, &body.targets).await?;
    if matches!(body.source, Source::Audio { .. }) {
        return Err(ApiError::BadRequest(
            "the API starts sessions from a library item, text, the microphone or the host input; upload audio to the library first"
                .into(),
        ));
    }
    let req = StartRequest {
        title: body.title,
        priority: body.priority,
        targets: body.targets,
        source: body.source,
        volume: body.volume,
        started_by: caller.describe(),
        max_duration_ms: body.max_duration_ms,
    };
    let live = std::sync::Arc::clone(&st.live);
    let info = live.start(&st, req).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// `GET /live`.
/// An account limited to a township sees the sessions that reached only
/// its villages.
pub async fn list(State(st): State<AppState>, caller: Principal) -> Result<Json<Listing>, ApiError> {
    let area = scope::area(&st, &caller).await?;
    let mut active = st.live.active();
    active.retain(|s| area.covers_villages(&s.villages));
    let stored = st.db(|s| s.live_sessions(RECENT + 16)).await?;
    let recent = stored
        .into_iter()
        .filter(|r| r.ended_at_ms.is_some() && !active.iter().any(|a| a.session_id == r.session_id))
        .filter(|r| area.covers_villages(&r.villages))
        .take(RECENT)
        .collect();
    Ok(Json(Listing { active, recent }))
}

/// `GET /live/{id}`: the session's report with every agent.
pub async fn one(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<SessionReport>, ApiError> {
    let Path(id) = id?;
    Ok(Json(st.live.session(&st, &id).await?))
}

/// `POST /live/{id}/stop`.
pub async fn stop(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    body: Option<Json<StopBody>>,
) -> Result<Json<SessionReport>, ApiError> {
    let Path(id) = id?;
    let reason = body.and_then(|Json(b)| b.reason).filter(|r| !r.trim().is_empty());
    let reason = reason.unwrap_or_else(|| "stopped by the operator".into());
    st.live.stop(&st, &id, &reason).await?;
    Ok(Json(st.live.session(&st, &id).await?))
}

/// `GET /live/{id}/microphone`: the operator's microphone, as a WebSocket.
pub async fn microphone(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let id = match id {
        Ok(Path(id)) => id,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(r) => {
            return ApiError::Coded { status: r.status(), code: "not_websocket", message: r.body_text() }
                .into_response();
        }
    };
    let pcm = match st.live.take_microphone(&id) {
        Ok(tx) => tx,
        Err(e) => return e.into_response(),
    };
    ws.max_message_size(4 * 1024).max_frame_size(4 * 1024).on_upgrade(move |socket| ingest(id, pcm, socket))
}

/// Feeds the microphone's chunks to the session until either side ends.
async fn ingest(session_id: String, pcm: mpsc::Sender<Vec<f32>>, mut socket: WebSocket) {
    let mut dropped = 0u64;
    let why = loop {
        let message = tokio::select! {
            _ = pcm.closed() => break "the session ended".to_owned(),
            m = socket.recv() => m,
        };
        match message {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break "microphone disconnected".to_owned(),
            Some(Ok(Message::Binary(bytes))) => match pcm_chunk(&bytes) {
                Some(samples) => {
                    // A full queue means the encoder is behind: drop rather than wait.
                    if pcm.try_send(samples).is_err() {
                        dropped += 1;
                    }
                }
                None => {
                    let why = format!(
                        "a microphone chunk of {} bytes: send 10–20 ms of 16-bit mono PCM at 48 kHz (960–1920 bytes)",
                        bytes.len()
                    );
                    let frame = CloseFrame { code: 1007, reason: Utf8Bytes::from("bad PCM chunk size") };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    break why;
                }
            },
            Some(Ok(_)) => {}
        }
    };
    tracing::info!(session = %session_id, reason = %why, dropped, "microphone closed");
}
