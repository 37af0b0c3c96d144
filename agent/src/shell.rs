//! The agent shell: does the IO the core asks for and feeds it what
//! happened. One task per agent identity; the demo runs many in one process.
//!
//! The loop: drain the core's outputs, then wait for whichever comes first —
//! the connection attempt finishing, a frame on the link, the core's next
//! deadline, or the device poll — and hand it to the core.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use dalaba_protocol::codec;
use dalaba_protocol::link::ControllerMessage;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::core::{AgentCore, CoreEvent, LinkDown, Output};
use crate::devices::Devices;
use crate::identity::Identity;
use crate::net::{ControllerUrl, Link, NetError, open_link};

type Connecting = Pin<Box<dyn Future<Output = Result<Link, NetError>> + Send>>;

/// Runs one agent until `stop` is cancelled.
pub async fn run(
    identity: Identity,
    mut core: AgentCore,
    mut devices: Devices,
    device_poll: Duration,
    stop: CancellationToken,
) {
    let url = match ControllerUrl::parse(&identity.controller_url) {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(agent = %identity.agent_id, error = %e, "cannot run agent");
            return;
        }
    };
    let agent = identity.agent_id.clone();
    let mut link: Option<Link> = None;
    let mut connecting: Option<Connecting> = None;
    let mut poll = tokio::time::interval(device_poll);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        while let Some(out) = core.poll_output() {
            match out {
                Output::Connect => {
                    let (url, fp, auth) =
                        (url.clone(), identity.controller_cert_sha256.clone(), identity.authorization());
                    connecting = Some(Box::pin(async move { open_link(&url, &fp, &auth).await }));
                }
                Output::Send(msg) => {
                    let sent = match link.as_mut() {
                        Some(ws) => ws.send(Message::Text(codec::encode(&msg).into())).await.map_err(|e| e.to_string()),
                        None => Err("no link".to_string()),
                    };
                    if let Err(e) = sent {
                        link = None;
                        core.handle_link_down(clock::now(), LinkDown::Closed(format!("send failed: {e}")));
                    }
                }
                Output::Disconnect { reason } => {
                    if let Some(mut ws) = link.take() {
                        let frame = CloseFrame { code: CloseCode::Normal, reason: truncate(&reason).into() };
                        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(Some(frame))).await;
                    }
                    core.handle_link_down(clock::now(), LinkDown::Closed(reason));
                }
                Output::SwitchAmplifier(cmd) => match devices.switch(cmd) {
                    Ok(state) => tracing::info!(%agent, ?cmd, ?state, "amplifier switched"),
                    Err(e) => tracing::error!(%agent, ?cmd, error = %e, "amplifier switch failed"),
                },
                Output::Event(e) => log_event(&agent, &e),
            }
        }
        let deadline = core.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            _ = stop.cancelled() => break,
            result = async { connecting.as_mut().expect("guarded by the select condition").await }, if connecting.is_some() => {
                connecting = None;
                match result {
                    Ok(ws) => {
                        link = Some(ws);
                        core.handle_link_up(clock::now());
                    }
                    Err(e) => {
                        let why = match &e {
                            NetError::Http { status: 401, message } => LinkDown::AuthRejected(message.clone()),
                            other => LinkDown::ConnectFailed(other.to_string()),
                        };
                        core.handle_link_down(clock::now(), why);
                    }
                }
            }
            frame = async { link.as_mut().expect("guarded by the select condition").next().await }, if link.is_some() => {
                let now = clock::now();
                match frame {
                    Some(Ok(Message::Text(text))) => match codec::decode::<ControllerMessage>(&text) {
                        Ok(msg) => core.handle_message(now, msg),
                        Err(e) => {
                            tracing::warn!(%agent, error = %e, "undecodable message from the controller; closing the link");
                            if let Some(mut ws) = link.take() {
                                let frame = CloseFrame { code: CloseCode::Invalid, reason: truncate(&e.to_string()).into() };
                                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(Some(frame))).await;
                            }
                            core.handle_link_down(now, LinkDown::ProtocolError(e.to_string()));
                        }
                    },
                    Some(Ok(Message::Close(frame))) => {
                        link = None;
                        let why = frame
                            .map(|f| format!("controller closed the link: {} {}", u16::from(f.code), f.reason))
                            .unwrap_or_else(|| "controller closed the link".into());
                        core.handle_link_down(now, LinkDown::Closed(why));
                    }
                    Some(Ok(_)) => {} // pings are answered by tungstenite; binary frames come with live audio
                    Some(Err(e)) => {
                        link = None;
                        core.handle_link_down(now, LinkDown::Closed(e.to_string()));
                    }
                    None => {
                        link = None;
                        core.handle_link_down(now, LinkDown::Closed("connection closed".into()));
                    }
                }
            }
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                core.handle_timeout(clock::now());
            }
            _ = poll.tick() => {
                core.handle_device(clock::now(), devices.snapshot());
            }
        }
    }
    if let Some(mut ws) = link.take() {
        let frame = CloseFrame { code: CloseCode::Away, reason: "agent stopping".into() };
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(Some(frame))).await;
    }
}

fn log_event(agent: &str, e: &CoreEvent) {
    match e {
        CoreEvent::Connected { protocol_version } => {
            tracing::info!(%agent, protocol_version, "connected to the controller")
        }
        CoreEvent::Refused { reason, message } => {
            tracing::error!(%agent, ?reason, %message, "the controller refused this agent")
        }
        CoreEvent::LinkLost { reason } => tracing::warn!(%agent, %reason, "link lost"),
        CoreEvent::ReconnectScheduled { after, attempt } => {
            tracing::info!(%agent, after_ms = after.as_millis() as u64, attempt, "reconnecting")
        }
        CoreEvent::LinkSilent => tracing::warn!(%agent, "the controller fell silent; dropping the link"),
        CoreEvent::ClockOffset { ms } => tracing::info!(%agent, offset_ms = ms, "clock offset to the controller"),
    }
}

fn truncate(s: &str) -> String {
    let mut s = s.to_string();
    while s.len() > 123 {
        s.pop();
    }
    s
}
