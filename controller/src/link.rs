//! The controller's end of the agent link (DESIGN.md, "Link").
//!
//! One WebSocket per agent, authenticated on the upgrade request by the
//! agent's id and secret. The agent speaks first with a hello; the controller
//! answers with a welcome (or a refusal naming the reason), then heartbeats
//! and status reports flow until either side closes or the agent falls
//! silent for the heartbeat timeout.
//!
//! Live sessions reach the agent through its outbox
//! ([`crate::live::Outbox`]): signed commands, which are never dropped and
//! go first, and binary audio frames, bounded with drop-oldest so a slow
//! link loses old audio instead of stalling anyone.
//!
//! Every fault on one link — malformed JSON, an unknown message type, an
//! oversized or binary frame, silence — closes that link with a reason in the
//! close frame and the log, and touches nothing else.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use dalaba_protocol::codec::{self, DecodeError};
use dalaba_protocol::link::{AgentMessage, ControllerMessage, HeartbeatAck, Refusal, RefusalReason, Welcome};
use dalaba_protocol::state::{DesiredState, MAX_EVENTS_PER_BATCH, PlayEvents, PlayEventsAck};
use dalaba_protocol::{
    MAX_CONTROL_FRAME, MAX_CONTROLLER_FRAME, PROTOCOL_VERSION, is_supported, parse_bearer_credentials,
};
use futures_util::SinkExt;
use tokio::time::{Instant, timeout};

use crate::api::{ApiError, AppState, secret_hash};
use crate::live::{Outbound, Outbox};
use crate::presence::Kick;

/// How long a new link may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// WebSocket close codes used on the link (RFC 6455 and the private range).
mod close {
    /// Binary frame where text was expected.
    pub const UNSUPPORTED: u16 = 1003;
    /// Payload not valid for the message type.
    pub const INVALID: u16 = 1007;
    /// Protocol rules broken (e.g. no hello first, unknown version).
    pub const POLICY: u16 = 1008;
    /// Frame too large.
    pub const TOO_BIG: u16 = 1009;
    /// A newer connection of the same agent replaced this one.
    pub const SUPERSEDED: u16 = 4000;
    /// The agent fell silent for the heartbeat timeout.
    pub const SILENT: u16 = 4001;
    /// The agent was removed by an operator.
    pub const REMOVED: u16 = 4002;
}

/// `GET /api/v1/link`: authenticates the agent and upgrades to WebSocket.
pub async fn upgrade(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let agent_id = match authenticate_agent(&st, &headers, peer, "agent link").await {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    if st.presence.online_count() >= st.settings.max_connections {
        st.metrics.error("full");
        tracing::warn!(%peer, agent = %agent_id, "agent link refused: connection limit reached");
        return ApiError::Coded {
            status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
            code: "link_limit",
            message: "the controller holds its maximum number of agent links".into(),
        }
        .into_response();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(r) => {
            return ApiError::Coded { status: r.status(), code: "not_websocket", message: r.body_text() }
                .into_response();
        }
    };
    // Small buffers: a link carries a few small JSON messages a minute, and
    // the controller holds thousands of them (see docs/benchmarks.md). The
    // write buffer lets a burst of live frames leave in one write at the
    // flush (`send_outbound`); it grows only on a link that streams.
    ws.max_message_size(MAX_CONTROL_FRAME)
        .max_frame_size(MAX_CONTROL_FRAME)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(8 * 1024)
        .on_upgrade(move |socket| run(st, agent_id, peer, socket))
}

/// Checks an agent's `Authorization: Bearer <agent_id>.<secret>` and
/// returns the agent id: the one credential check behind the link and
/// content downloads. `what` names the refused request in messages and logs.
pub async fn authenticate_agent(
    st: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    what: &str,
) -> Result<String, ApiError> {
    let creds = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_bearer_credentials)
        .map(|(id, secret)| (id.to_string(), secret.to_string()));
    let Some((agent_id, secret)) = creds else {
        st.metrics.error("auth");
        tracing::warn!(%peer, "{what} refused: missing or malformed credentials");
        return Err(ApiError::Unauthorized(format!("{what} needs Authorization: Bearer <agent_id>.<secret>")));
    };
    let lookup = agent_id.clone();
    let stored = st.db(move |s| s.agent_secret_hash(&lookup)).await?;
    let Some(stored) = stored else {
        st.metrics.error("auth");
        tracing::warn!(%peer, agent = %agent_id, "{what} refused: unknown agent");
        return Err(ApiError::Unauthorized(format!("unknown agent {agent_id}; enrol it again")));
    };
    if !constant_time_eq(secret_hash(&secret).as_bytes(), stored.as_bytes()) {
        st.metrics.error("auth");
        tracing::warn!(%peer, agent = %agent_id, "{what} refused: wrong agent secret");
        return Err(ApiError::Unauthorized(format!("wrong secret for agent {agent_id}")));
    }
    Ok(agent_id)
}

/// One link, from upgrade to close.
async fn run(st: AppState, agent_id: String, peer: SocketAddr, mut socket: WebSocket) {
    let hello = match timeout(HELLO_TIMEOUT, socket.recv()).await {
        Err(_) => return refuse(&st, socket, &agent_id, peer, close::POLICY, "no hello within 10 s").await,
        Ok(None) | Ok(Some(Err(_))) => return,
        Ok(Some(Ok(Message::Text(text)))) => match codec::decode::<AgentMessage>(&text) {
            Ok(AgentMessage::Hello(h)) => h,
            Ok(_) => {
                let why = "the first message on a link must be hello";
                send(&mut socket, refusal(RefusalReason::HelloExpected, why)).await;
                return refuse(&st, socket, &agent_id, peer, close::POLICY, why).await;
            }
            Err(e) => return refuse(&st, socket, &agent_id, peer, decode_close_code(&e), &e.to_string()).await,
        },
        Ok(Some(Ok(_))) => {
            return refuse(&st, socket, &agent_id, peer, close::UNSUPPORTED, "expected a JSON hello").await;
        }
    };
    st.metrics.message("hello");
    if !is_supported(hello.protocol_version) {
        let why = format!(
            "agent speaks protocol version {}, this controller speaks {}..={}; upgrade the {}",
            hello.protocol_version,
            dalaba_protocol::MIN_SUPPORTED_VERSION,
            PROTOCOL_VERSION,
            if hello.protocol_version > PROTOCOL_VERSION { "controller" } else { "agent" },
        );
        send(&mut socket, refusal(RefusalReason::UnsupportedVersion, &why)).await;
        return refuse(&st, socket, &agent_id, peer, close::POLICY, &why).await;
    }

    let now = st.clock.now_ms();
    let hardware_json = serde_json::to_string(&hello.hardware).unwrap_or_default();
    let (id, version) = (agent_id.clone(), hello.agent_version.clone());
    let connected = move |s: &dyn crate::store::Store| {
        s.record_agent_connected(&id, now, &version, &hardware_json)?;
        s.record_presence_connected(&id, now)
    };
    if let Err(e) = st.db(connected).await {
        tracing::error!(agent = %agent_id, error = %e, "cannot record agent connection");
    }
    let mut reg = st.presence.connect(&agent_id, peer, hello.clone(), now);
    st.metrics.connects.inc();
    if let Some(old) = reg.replaced {
        tracing::warn!(agent = %agent_id, %peer, old_peer = %old, "second connection for agent: the newer wins, closing the older");
    }
    tracing::info!(agent = %agent_id, %peer, version = %hello.agent_version, "agent online");
    let welcome = ControllerMessage::Welcome(Welcome {
        protocol_version: PROTOCOL_VERSION,
        agent_id: agent_id.clone(),
        heartbeat_interval_ms: st.settings.heartbeat_interval.as_millis() as u64,
        controller_time_ms: now,
    });
    let mut reason = if send(&mut socket, welcome).await { None } else { Some("send failed".to_string()) };
    // The desired state follows the welcome, and every change of it after.
    let mut desired = st.distribution.subscribe(&agent_id);
    desired.mark_changed();
    let mut desired_open = true;
    // Live commands and audio frames: a live session that targets this
    // agent queues a fresh signed start here at once (the agent rejoins).
    let outbox = st.live.attach(&st, &agent_id, reg.conn_id);

    let silence = st.settings.heartbeat_timeout;
    // One timer for the link's life, moved on by each frame from the agent:
    // during a live session this loop turns 50 times a second per link
    // (outbound audio), and a fresh timer per turn showed at ~4 % in the
    // profile of the 2,000-link fan-out bench (docs/benchmarks.md).
    let silent = tokio::time::sleep(silence);
    tokio::pin!(silent);
    while reason.is_none() {
        tokio::select! {
            kicked = &mut reg.kicked => {
                let (code, why) = match kicked {
                    Ok(kick @ Kick::Superseded { .. }) => (close::SUPERSEDED, kick.to_string()),
                    Ok(kick @ Kick::Removed) => (close::REMOVED, kick.to_string()),
                    // The registry dropped us without a word: only on shutdown.
                    Err(_) => (close::SUPERSEDED, "closed by the controller".to_string()),
                };
                close_with(&mut socket, code, &why).await;
                reason = Some(why);
            }
            _ = &mut silent => {
                st.metrics.error("timeout");
                let why = format!("no message for {} s", silence.as_secs());
                tracing::warn!(agent = %agent_id, %peer, reason = %why, "agent fell silent; closing its link");
                close_with(&mut socket, close::SILENT, &why).await;
                reason = Some(why);
            }
            changed = desired.changed(), if desired_open => {
                if changed.is_err() {
                    // The distribution let go of this agent (it is being removed).
                    desired_open = false;
                    continue;
                }
                let state = desired.borrow_and_update().as_ref().map(|d| d.to_state());
                if let Some(state) = state
                    && !send_desired(&mut socket, &agent_id, state).await
                {
                    reason = Some("send failed".into());
                }
            }
            out = outbox.next() => {
                if !send_outbound(&mut socket, out, &outbox).await {
                    reason = Some("send failed".into());
                }
            }
            frame = socket.recv() => {
                silent.as_mut().reset(Instant::now() + silence);
                reason = handle_frame(&st, &agent_id, reg.conn_id, &mut socket, frame).await;
            }
        }
    }
    let why = reason.unwrap_or_default();
    st.live.detach(&agent_id, reg.conn_id);
    let now = st.clock.now_ms();
    if st.presence.disconnect(&agent_id, reg.conn_id) {
        let id = agent_id.clone();
        let gone = move |s: &dyn crate::store::Store| {
            s.record_presence_disconnected(&id, now)?;
            s.record_agent_seen(&id, now)
        };
        if let Err(e) = st.db(gone).await {
            tracing::error!(agent = %agent_id, error = %e, "cannot record last seen");
        }
        tracing::info!(agent = %agent_id, %peer, reason = %why, "agent offline");
    } else {
        tracing::info!(agent = %agent_id, %peer, reason = %why, "older link of agent closed");
    }
    st.metrics.disconnects.inc();
}

/// Sends a desired state; false when the link failed. A state too large for
/// one frame is not sent (the agent keeps its previous plan) and logged.
async fn send_desired(socket: &mut WebSocket, agent_id: &str, state: DesiredState) -> bool {
    let version = state.version;
    let text = codec::encode(&ControllerMessage::DesiredState(state));
    if text.len() > MAX_CONTROLLER_FRAME {
        tracing::error!(agent = %agent_id, version, bytes = text.len(), limit = MAX_CONTROLLER_FRAME,
            "desired state too large for one frame; not sent");
        return true;
    }
    tracing::debug!(agent = %agent_id, version, bytes = text.len(), "sending desired state");
    socket.send(Message::Text(Utf8Bytes::from(text))).await.is_ok()
}

/// Handles one received frame; returns why the link must end, if it must.
async fn handle_frame(
    st: &AppState,
    agent_id: &str,
    conn_id: u64,
    socket: &mut WebSocket,
    frame: Option<Result<Message, axum::Error>>,
) -> Option<String> {
    let text = match frame {
        None => return Some("agent closed the connection".into()),
        Some(Err(e)) => {
            let why = link_error(&e);
            if link_lost(&e) {
                // The village went away (power, network, a restart): not
                // the agent's fault, and nothing to send it.
                st.metrics.error("io");
                tracing::info!(agent = %agent_id, reason = %why, "agent link lost");
                return Some(why);
            }
            st.metrics.error(if why.contains("too long") || why.contains("too big") { "oversized" } else { "io" });
            let code =
                if why.contains("too long") || why.contains("too big") { close::TOO_BIG } else { close::INVALID };
            close_with(socket, code, &why).await;
            tracing::warn!(agent = %agent_id, reason = %why, "closing agent link");
            return Some(why);
        }
        Some(Ok(Message::Text(text))) => text,
        Some(Ok(Message::Close(frame))) => {
            let why = frame.map(|f| format!("agent closed: {} {}", f.code, f.reason)).unwrap_or("agent closed".into());
            return Some(why);
        }
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
            st.presence.seen(agent_id, conn_id, st.clock.now_ms());
            return None;
        }
        Some(Ok(Message::Binary(_))) => {
            st.metrics.error("binary");
            let why = "binary frames are not accepted from agents";
            close_with(socket, close::UNSUPPORTED, why).await;
            tracing::warn!(agent = %agent_id, reason = why, "closing agent link");
            return Some(why.into());
        }
    };
    let now = st.clock.now_ms();
    match codec::decode::<AgentMessage>(&text) {
        Ok(AgentMessage::Heartbeat(hb)) => {
            st.metrics.message("heartbeat");
            st.presence.seen(agent_id, conn_id, now);
            let ack = HeartbeatAck { seq: hb.seq, agent_sent_at_ms: hb.sent_at_ms, controller_time_ms: now };
            if !send(socket, ControllerMessage::HeartbeatAck(ack)).await {
                return Some("send failed".into());
            }
            None
        }
        Ok(AgentMessage::Status(status)) => {
            st.metrics.message("status");
            st.presence.status(agent_id, conn_id, status, now);
            None
        }
        Ok(AgentMessage::Sync(report)) => {
            st.metrics.message("sync");
            st.presence.sync(agent_id, conn_id, report, now);
            None
        }
        Ok(AgentMessage::PlayEvents(batch)) => {
            st.metrics.message("play_events");
            if let Err(why) = check_play_events(&batch) {
                st.metrics.error("invalid_message");
                let why = format!("invalid play events: {why}");
                close_with(socket, close::INVALID, &why).await;
                tracing::warn!(agent = %agent_id, reason = %why, "closing agent link");
                return Some(why);
            }
            let id = agent_id.to_string();
            let events = batch.events;
            let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
            let noted = events.clone();
            match st.db(move |s| s.record_play_events(&id, &events, now)).await {
                Ok(stored) => {
                    // Runs of items played without the relay confirmed
                    // raise the amplifier alarm (`crate::alarms::rules`).
                    st.alarms.note_play_events(agent_id, &noted);
                    tracing::debug!(agent = %agent_id, inserted = stored.inserted, duplicates = stored.duplicates, "play events stored");
                    let ack = ControllerMessage::PlayEventsAck(PlayEventsAck { ids });
                    if !send(socket, ack).await {
                        return Some("send failed".into());
                    }
                }
                // Not acknowledged: the agent keeps the events and sends them again.
                Err(e) => tracing::error!(agent = %agent_id, error = %e, "cannot store play events"),
            }
            None
        }
        Ok(AgentMessage::Live(report)) => {
            st.metrics.message("live");
            tracing::debug!(agent = %agent_id, session = %report.session_id, state = ?report.state, "live report");
            st.live.on_report(st, agent_id, report).await;
            None
        }
        Ok(AgentMessage::CommandRefused(refusal)) => {
            st.metrics.message("command_refused");
            tracing::warn!(agent = %agent_id, command = ?refusal.command_id, reason = ?refusal.reason,
                message = %refusal.message, "agent refused a command");
            st.live.on_refusal(st, agent_id, refusal).await;
            None
        }
        Ok(AgentMessage::Hello(_)) => {
            st.metrics.error("protocol");
            let why = "hello sent twice on one link";
            close_with(socket, close::POLICY, why).await;
            tracing::warn!(agent = %agent_id, reason = why, "closing agent link");
            Some(why.into())
        }
        Err(e) => {
            st.metrics.error(match e {
                DecodeError::TooLarge { .. } => "oversized",
                DecodeError::MalformedJson(_) => "malformed",
                DecodeError::InvalidMessage(_) => "unknown_message",
            });
            let why = e.to_string();
            close_with(socket, decode_close_code(&e), &why).await;
            tracing::warn!(agent = %agent_id, reason = %why, "closing agent link");
            Some(why)
        }
    }
}

async fn refuse(st: &AppState, mut socket: WebSocket, agent_id: &str, peer: SocketAddr, code: u16, why: &str) {
    st.metrics.error("refused");
    tracing::warn!(agent = %agent_id, %peer, reason = %why, "agent link refused");
    close_with(&mut socket, code, why).await;
}

/// Bounds on what an agent may report, checked before anything is stored.
fn check_play_events(batch: &PlayEvents) -> Result<(), String> {
    if batch.events.len() > MAX_EVENTS_PER_BATCH {
        return Err(format!("{} events in one batch (at most {MAX_EVENTS_PER_BATCH})", batch.events.len()));
    }
    for e in &batch.events {
        if e.id.is_empty() || e.id.len() > 128 {
            return Err("an event id must have 1 to 128 bytes".into());
        }
        if e.sha256.len() != 64 || !e.sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(format!("event {}: sha256 must be 64 lowercase hex digits", e.id));
        }
        if e.reason.as_ref().is_some_and(|r| r.len() > 1000) {
            return Err(format!("event {}: reason longer than 1000 bytes", e.id));
        }
    }
    Ok(())
}

fn refusal(reason: RefusalReason, message: &str) -> ControllerMessage {
    ControllerMessage::Refused(Refusal { reason, message: message.to_string() })
}

/// Most outbox messages written with one flush.
const OUTBOUND_BATCH: usize = 16;

/// Sends what the live outbox holds next, a command as text, a frame as
/// binary, and whatever else already waits there (up to
/// [`OUTBOUND_BATCH`]) with one flush: a file source's frames come in
/// bursts, and one TLS write per burst instead of per frame is what keeps
/// a county-wide fan-out cheap. False when the link failed.
async fn send_outbound(socket: &mut WebSocket, first: Outbound, outbox: &Outbox) -> bool {
    let message = |out| match out {
        Outbound::Control(text) => Message::Text(Utf8Bytes::from(text)),
        Outbound::Frame(bytes) => Message::Binary(bytes),
    };
    if socket.feed(message(first)).await.is_err() {
        return false;
    }
    for _ in 1..OUTBOUND_BATCH {
        let Some(out) = outbox.try_next() else { break };
        if socket.feed(message(out)).await.is_err() {
            return false;
        }
    }
    socket.flush().await.is_ok()
}

async fn send(socket: &mut WebSocket, msg: ControllerMessage) -> bool {
    socket.send(Message::Text(Utf8Bytes::from(codec::encode(&msg)))).await.is_ok()
}

async fn close_with(socket: &mut WebSocket, code: u16, why: &str) {
    // A close reason is at most 123 bytes; cut on a character boundary.
    let mut reason = why.to_string();
    while reason.len() > 123 {
        reason.pop();
    }
    let frame = CloseFrame { code, reason: Utf8Bytes::from(reason) };
    // The peer may be gone already; the link ends either way.
    let _ = socket.send(Message::Close(Some(frame))).await;
}

fn decode_close_code(e: &DecodeError) -> u16 {
    match e {
        DecodeError::TooLarge { .. } => close::TOO_BIG,
        DecodeError::MalformedJson(_) | DecodeError::InvalidMessage(_) => close::INVALID,
    }
}

/// An error with its causes, each said once (a cause's text is often
/// already part of the error's own).
fn link_error(e: &axum::Error) -> String {
    use std::error::Error;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let text = inner.to_string();
        if !s.contains(&text) {
            s = format!("{s}: {text}");
        }
        src = inner.source();
    }
    s
}

/// Whether the connection broke under the link (the peer vanished without
/// closing it) rather than the agent sending something wrong.
fn link_lost(e: &axum::Error) -> bool {
    use std::error::Error;
    use std::io::ErrorKind as K;
    let mut src: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(inner) = src {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::TimedOut
            );
        }
        if inner.to_string().contains("without closing handshake") {
            return true;
        }
        src = inner.source();
    }
    false
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use std::io::{Error, ErrorKind};

    use super::*;

    #[test]
    fn a_vanished_peer_is_a_lost_link_said_once() {
        let eof = Error::new(ErrorKind::UnexpectedEof, "peer closed connection without sending TLS close_notify");
        let e = axum::Error::new(eof);
        assert!(link_lost(&e));
        assert_eq!(link_error(&e).matches("close_notify").count(), 1, "{}", link_error(&e));
        let reset = axum::Error::new(Error::new(ErrorKind::ConnectionReset, "connection reset by peer"));
        assert!(link_lost(&reset));
        let oversized = axum::Error::new(Error::new(ErrorKind::InvalidData, "Space limit exceeded: Message too long"));
        assert!(!link_lost(&oversized), "an agent's fault is not a lost link");
    }
}
