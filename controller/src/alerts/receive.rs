//! One alert, received: parse, plan, record, and start or stop live
//! sessions.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use dalaba_schedules::Targets;
use serde::Serialize;

use super::cap::{self, Alert, CapError, MsgType, Reference, Status};
use super::plan::{self, Plan};
use super::{AlertRecord, NewAlertRecord};
use crate::api::{ApiError, AppState};
use crate::live::{LivePriority, StartRequest};

/// The answer to an alert.
#[derive(Debug, Clone, Serialize)]
pub struct AlertResponse {
    /// What was done: `started`, `replaced`, `stopped`, `duplicate`,
    /// `dry_run` or `none`.
    pub action: Action,
    /// The alert's sender.
    pub sender: String,
    /// The alert's identifier.
    pub identifier: String,
    /// The live session started (or, for a Cancel, stopped; for a
    /// duplicate, the one the first copy started).
    pub session_id: Option<String>,
    /// Sessions this alert stopped.
    pub stopped_sessions: Vec<String>,
    /// The session's title.
    pub title: Option<String>,
    /// Its priority.
    pub priority: Option<LivePriority>,
    /// The villages it reaches.
    pub villages: Vec<VillageRef>,
    /// The agents of those villages.
    pub agents: Vec<String>,
    /// Remarks: what was ignored, what was used instead.
    pub notes: Vec<String>,
}

/// What an alert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// An Alert started a session.
    Started,
    /// An Update stopped its thread's session and started a new one.
    Replaced,
    /// A Cancel stopped its thread's session.
    Stopped,
    /// The alert was received before; nothing new happened.
    Duplicate,
    /// Not `Actual`: checked and mapped, nothing broadcast.
    DryRun,
    /// Ack or Error: nothing to do.
    None,
}

/// A village an alert reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VillageRef {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its 12-digit code.
    pub code: String,
}

/// Receives one alert `body` from `caller` (an API token's name, or
/// `user:NAME`); answers 201 when a
/// session started, 200 otherwise.
pub async fn receive(st: &AppState, caller: &str, body: &[u8]) -> Result<(StatusCode, AlertResponse), ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        bad_request("malformed_xml", format!("the body is not UTF-8 text (invalid byte at offset {})", e.valid_up_to()))
    })?;
    let alert = cap::parse(text).map_err(|e| {
        let code = match e {
            CapError::Xml { .. } => "malformed_xml",
            CapError::NotCap(_) => "not_cap",
            CapError::Invalid(_) => "invalid_cap",
        };
        bad_request(code, e.to_string())
    })?;
    let mut out = AlertResponse {
        action: Action::None,
        sender: alert.sender.clone(),
        identifier: alert.identifier.clone(),
        session_id: None,
        stopped_sessions: Vec::new(),
        title: None,
        priority: None,
        villages: Vec::new(),
        agents: Vec::new(),
        notes: Vec::new(),
    };
    tracing::info!(
        caller = %caller, sender = %alert.sender, identifier = %alert.identifier,
        msg_type = %alert.msg_type, status = %alert.status, "CAP alert received"
    );
    match alert.msg_type {
        MsgType::Ack | MsgType::Error => {
            out.notes.push(format!("msgType {}: nothing to broadcast", alert.msg_type));
            Ok((StatusCode::OK, out))
        }
        MsgType::Cancel => cancel(st, caller, &alert, out).await,
        MsgType::Alert | MsgType::Update => start(st, caller, &alert, out).await,
    }
}

async fn start(
    st: &AppState,
    caller: &str,
    alert: &Alert,
    mut out: AlertResponse,
) -> Result<(StatusCode, AlertResponse), ApiError> {
    let regions = st.db(|s| s.regions()).await?;
    let Plan { title, priority, villages, source, max_duration_ms, notes } =
        plan::plan(alert, &regions, st.clock.now_ms(), &st.settings.alerts)?;
    out.notes.extend(notes);
    out.title = Some(title.clone());
    out.priority = Some(priority);
    out.villages = regions
        .iter()
        .filter(|r| villages.contains(&r.id))
        .map(|r| VillageRef { id: r.id, name: r.name.clone(), code: r.code.clone() })
        .collect();
    let thread = match alert.msg_type {
        MsgType::Update => Some(thread(st, &alert.references, &mut out.notes).await?),
        _ => None,
    }
    .flatten();
    if alert.status != Status::Actual {
        out.agents = agents_of(st, &villages).await?;
        return Ok(dry_run(alert, out));
    }
    let record = match record(st, caller, alert, thread.as_ref().map(|t| t.id)).await? {
        Ok(record) => record,
        Err(existing) => return Ok(duplicate(existing, out)),
    };
    if let Some(session) = thread.as_ref().and_then(|t| t.session.clone()) {
        let reason = format!("updated by alert {}", alert.identifier);
        if stop(st, &session, &reason, &mut out.notes).await? {
            out.stopped_sessions.push(session);
        }
    }
    let request = StartRequest {
        title,
        priority,
        targets: Targets { villages: villages.iter().copied().collect(), ..Targets::default() },
        source,
        volume: st.settings.alerts.volume,
        started_by: format!("alert:{}", alert.identifier),
        max_duration_ms: Some(max_duration_ms),
    };
    let info = match st.live.start(st, request).await {
        Ok(info) => info,
        Err(e) => {
            // Forget the alert, so the sender's retry is not a duplicate.
            let id = record.id;
            if let Err(forget) = st.db(move |s| s.delete_alert(id)).await {
                tracing::error!(error = %forget, "cannot forget an alert whose session did not start");
            }
            return Err(e);
        }
    };
    let (id, session) = (record.id, info.session_id.clone());
    st.db(move |s| s.set_alert_session(id, &session)).await?;
    tracing::info!(session = %info.session_id, villages = info.villages.len(), "CAP alert started a live session");
    out.action = if alert.msg_type == MsgType::Update { Action::Replaced } else { Action::Started };
    out.session_id = Some(info.session_id);
    out.agents = info.agents;
    Ok((StatusCode::CREATED, out))
}

async fn cancel(
    st: &AppState,
    caller: &str,
    alert: &Alert,
    mut out: AlertResponse,
) -> Result<(StatusCode, AlertResponse), ApiError> {
    out.title = plan::preferred(alert).map(|i| i.headline.clone().unwrap_or_else(|| i.event.clone()));
    let Some(thread) = thread(st, &alert.references, &mut out.notes).await? else {
        let refs: Vec<String> = alert.references.iter().map(|r| format!("{},{}", r.sender, r.identifier)).collect();
        let message = if refs.is_empty() {
            "a Cancel must name the alert it cancels in <references>".to_owned()
        } else {
            format!("Cancel references alerts this controller never received: {}", refs.join(" "))
        };
        return Err(ApiError::Coded { status: StatusCode::UNPROCESSABLE_ENTITY, code: "unknown_reference", message });
    };
    if alert.status != Status::Actual {
        out.session_id = thread.session;
        return Ok(dry_run(alert, out));
    }
    if let Err(existing) = record(st, caller, alert, Some(thread.id)).await? {
        return Ok(duplicate(existing, out));
    }
    match thread.session {
        Some(session) => {
            let reason = format!("cancelled by alert {}", alert.identifier);
            if stop(st, &session, &reason, &mut out.notes).await? {
                out.stopped_sessions.push(session.clone());
            }
            out.session_id = Some(session);
        }
        None => out.notes.push("the referenced alert started no session".to_owned()),
    }
    out.action = Action::Stopped;
    Ok((StatusCode::OK, out))
}

/// A thread of alerts and its latest session.
struct Thread {
    id: i64,
    session: Option<String>,
}

/// The thread of the first referenced alert that was received here; the
/// others are named in `notes`.
async fn thread(st: &AppState, references: &[Reference], notes: &mut Vec<String>) -> Result<Option<Thread>, ApiError> {
    let mut found = None;
    for r in references {
        let (sender, identifier) = (r.sender.clone(), r.identifier.clone());
        match st.db(move |s| s.alert_by_key(&sender, &identifier)).await? {
            Some(record) => {
                found.get_or_insert(record.thread_id);
            }
            None => notes.push(format!("referenced alert {},{} was never received here", r.sender, r.identifier)),
        }
    }
    let Some(id) = found else {
        return Ok(None);
    };
    let records = st.db(move |s| s.alert_thread(id)).await?;
    let session = records.into_iter().rev().find_map(|r| r.session_id);
    Ok(Some(Thread { id, session }))
}

/// Records the alert; `Err(existing)` when it was received before.
async fn record(
    st: &AppState,
    caller: &str,
    alert: &Alert,
    thread_id: Option<i64>,
) -> Result<Result<AlertRecord, AlertRecord>, ApiError> {
    let new = NewAlertRecord {
        sender: alert.sender.clone(),
        identifier: alert.identifier.clone(),
        sent: alert.sent.clone(),
        msg_type: alert.msg_type.to_string(),
        thread_id,
        token_name: caller.to_owned(),
        received_at_ms: st.clock.now_ms(),
    };
    match st.db(move |s| s.insert_alert(&new)).await {
        Ok(record) => Ok(Ok(record)),
        Err(ApiError::Conflict(_)) => {
            let (sender, identifier) = (alert.sender.clone(), alert.identifier.clone());
            let existing = st.db(move |s| s.alert_by_key(&sender, &identifier)).await?;
            existing.map(Err).ok_or_else(|| ApiError::Internal("a duplicate alert vanished".to_owned()))
        }
        Err(e) => Err(e),
    }
}

/// Stops a session; `false` (and a note) when it had already ended.
async fn stop(st: &AppState, session: &str, reason: &str, notes: &mut Vec<String>) -> Result<bool, ApiError> {
    match st.live.stop(st, session, reason).await {
        Ok(()) => Ok(true),
        // Ended on its own (its time ran out) or by an operator.
        Err(ApiError::NotFound(_) | ApiError::Conflict(_)) => {
            notes.push(format!("live session {session} had already ended"));
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

async fn agents_of(st: &AppState, villages: &BTreeSet<i64>) -> Result<Vec<String>, ApiError> {
    let agents = st.db(|s| s.agents()).await?;
    Ok(agents.into_iter().filter(|a| villages.contains(&a.village_id)).map(|a| a.id).collect())
}

fn dry_run(alert: &Alert, mut out: AlertResponse) -> (StatusCode, AlertResponse) {
    out.action = Action::DryRun;
    out.notes.push(format!("status {}: checked and mapped; nothing was broadcast", alert.status));
    (StatusCode::OK, out)
}

fn duplicate(existing: AlertRecord, mut out: AlertResponse) -> (StatusCode, AlertResponse) {
    out.action = Action::Duplicate;
    out.session_id = existing.session_id;
    out.notes.push(format!(
        "this alert was already received at {}; nothing new was started",
        crate::clock::rfc3339(existing.received_at_ms)
    ));
    (StatusCode::OK, out)
}

fn bad_request(code: &'static str, message: String) -> ApiError {
    ApiError::Coded { status: StatusCode::BAD_REQUEST, code, message }
}
