//! The agent shell: does the IO the core asks for and feeds it what
//! happened. One task per agent identity; the demo runs many in one process.
//!
//! The loop: drain the core's outputs, then wait for whichever comes first —
//! the connection attempt finishing, a frame on the link, the core's next
//! deadline, or the device poll — and hand it to the core.
//!
//! Playback state lives under the state directory: the applied desired state
//! and the play log as JSON in `playback/` (written, fsynced and renamed on
//! every [`Output::Persist`]), content as `cache/<sha256>` ([`crate::cache`]).
//! Missing content is fetched by the [`Downloader`]; the [`ContentCache`]
//! learns what the plan needs from every persisted desired state and evicts
//! the rest over its budget, telling the core. The [`Player`] plays it and
//! reports through the loop's [`NewsSender`] (see [`crate::player`]).
//!
//! Live audio: every binary frame of the link is decoded as a
//! [`LiveFrame`] and reported to the core (which counts it and watches the
//! stream for silence); between [`Output::StartLive`] and
//! [`Output::StopLive`] the frames of that stream also go to the player. A
//! binary frame that is not a live frame is dropped and counted, and never
//! closes the link: audio is best effort, each WebSocket message stands on
//! its own so nothing after it is garbled, and closing the link in the
//! middle of an emergency would cost the commands that stop it. The ids of
//! signed commands carried out are kept in `playback/commands.json`.

use std::collections::BTreeSet;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use dalaba_protocol::link::ControllerMessage;
use dalaba_protocol::live::LiveFrame;
use dalaba_protocol::state::DesiredState;
use dalaba_protocol::{MAX_CONTROLLER_FRAME, codec};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use crate::cache::ContentCache;
use crate::cache::download::{DownloadConfig, Downloader};
use crate::clock;
use crate::core::{
    AgentCore, ContentNews, CoreEvent, LinkDown, LiveNews, Output, PersistRequest, PlaybackNews, Restore,
};
use crate::devices::Devices;
use crate::identity::Identity;
use crate::net::{ControllerUrl, Link, NetError, open_link};
use crate::player::{LiveRequest, Player, StartRequest};

type Connecting = Pin<Box<dyn Future<Output = Result<Link, NetError>> + Send>>;

/// What the shell's own IO tasks (the player, the downloader) report back
/// to the loop, which hands it to the core. Tasks hold a [`NewsSender`].
#[derive(Debug)]
pub enum News {
    /// From the player.
    Playback(PlaybackNews),
    /// From the downloader or the cache.
    Content(ContentNews),
    /// From the player, about a live stream.
    Live(LiveNews),
}

/// Where IO tasks send their [`News`].
pub type NewsSender = mpsc::UnboundedSender<News>;

/// Runs one agent until `stop` is cancelled, playing through `player`
/// (whose [`Player::lead`] the core's `playback_lead` should match). Its content cache is kept
/// within `cache_budget_bytes`, except for content its plan needs.
pub async fn run(
    identity: Identity,
    mut core: AgentCore,
    mut devices: Devices,
    mut player: Player,
    device_poll: Duration,
    cache_budget_bytes: u64,
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
    let store = Store::new(devices.state_dir());
    let mut cache = ContentCache::open(&agent, devices.state_dir(), cache_budget_bytes);
    // The loop holds a sender too, so `recv` never ends while it runs.
    let (news_tx, mut news_rx) = mpsc::unbounded_channel::<News>();
    let downloads = DownloadConfig::new(&identity, url.clone(), cache.dir().to_path_buf());
    let downloader = Downloader::spawn(downloads, news_tx.clone(), stop.child_token());
    let mut restored = store.load(&agent);
    let needed = needed_content(restored.desired.as_ref());
    downloader.retain(needed.clone());
    cache.plan_changed(needed);
    restored.cached = cache.cached();
    core.restore(clock::now(), restored);
    let mut link: Option<Link> = None;
    // The live stream the player plays: (session, stream id).
    let mut live: Option<(String, u32)> = None;
    let mut bad_frames: u64 = 0;
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
                Output::SwitchAmplifier(cmd) => {
                    let result = devices.switch(cmd).await;
                    match &result {
                        Ok(state) => tracing::info!(%agent, ?cmd, ?state, "amplifier switched"),
                        Err(e) => tracing::error!(%agent, ?cmd, error = %e, "amplifier switch failed"),
                    }
                    core.handle_amplifier(clock::now(), cmd, result.map_err(|e| e.to_string()));
                }
                Output::StartPlayback { entry_id, part, sha256, gain_db, volume, at_ms, duration_ms, offset_ms } => {
                    tracing::info!(%agent, %entry_id, part, %sha256, gain_db, volume, at_ms, offset_ms, "starting playback");
                    let path = cache.path(&sha256);
                    let request = StartRequest { entry_id, part, path, gain_db, volume, at_ms, offset_ms, duration_ms };
                    player.start(request, &news_tx);
                }
                Output::StopPlayback { entry_id, reason } => {
                    player.stop(&entry_id);
                    tracing::warn!(%agent, %entry_id, %reason, "playback stopped")
                }
                Output::StartLive { session_id, stream_id, gain_db, volume, at_ms } => {
                    tracing::info!(%agent, %session_id, stream_id, gain_db, volume, at_ms, "starting live stream");
                    live = Some((session_id.clone(), stream_id));
                    player.start_live(LiveRequest { session_id, stream_id, gain_db, volume, at_ms }, &news_tx);
                }
                Output::StopLive { session_id, reason } => {
                    player.stop_live(&session_id);
                    live = live.filter(|(id, _)| *id != session_id);
                    tracing::info!(%agent, %session_id, %reason, "live stream stopped");
                }
                Output::Fetch { sha256, size_bytes } => {
                    if cache.is_cached(&sha256) {
                        core.handle_content(clock::now(), ContentNews::Cached { sha256 });
                    } else {
                        tracing::info!(%agent, %sha256, size_bytes, "downloading content");
                        downloader.fetch(sha256, size_bytes);
                    }
                }
                Output::Persist(request) => {
                    if let Err(e) = store.persist(&request) {
                        tracing::error!(%agent, error = %e, "cannot persist playback state");
                    }
                    if let PersistRequest::DesiredState(desired) = &request {
                        let needed = needed_content(Some(desired));
                        downloader.retain(needed.clone());
                        for sha256 in cache.plan_changed(needed) {
                            core.handle_content(clock::now(), ContentNews::Missing { sha256 });
                        }
                    }
                }
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
                    Some(Ok(Message::Text(text))) => match codec::decode_with_limit::<ControllerMessage>(&text, MAX_CONTROLLER_FRAME) {
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
                    Some(Ok(Message::Binary(bytes))) => match LiveFrame::decode(&bytes) {
                        Ok(frame) => {
                            core.handle_live_frame(now, frame.stream_id, frame.seq);
                            if live.as_ref().is_some_and(|(_, stream)| *stream == frame.stream_id) {
                                player.live_frame(frame, now.mono);
                            }
                        }
                        Err(e) => {
                            bad_frames += 1;
                            if bad_frames.is_power_of_two() {
                                tracing::warn!(%agent, error = %e, bad_frames, "binary frame dropped");
                            }
                        }
                    },
                    Some(Ok(_)) => {} // pings are answered by tungstenite
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
            Some(news) = news_rx.recv() => match news {
                News::Playback(n) => core.handle_playback(clock::now(), n),
                News::Content(n) => content_news(&agent, &mut cache, &mut core, n),
                News::Live(n) => core.handle_live(clock::now(), n),
            },
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

/// SHA-256 of every content item a desired state needs.
fn needed_content(desired: Option<&DesiredState>) -> BTreeSet<String> {
    desired.map(|d| d.content.iter().map(|c| c.sha256.clone()).collect()).unwrap_or_default()
}

/// The downloader's news: a stored item enters the cache's recency (which
/// may evict others) before the core hears of it.
fn content_news(agent: &str, cache: &mut ContentCache, core: &mut AgentCore, news: ContentNews) {
    let (news, evicted) = match news {
        ContentNews::Cached { sha256 } => match cache.stored(&sha256) {
            Ok(evicted) => {
                tracing::info!(%agent, %sha256, "content downloaded and verified");
                (ContentNews::Cached { sha256 }, evicted)
            }
            Err(e) => {
                let reason = format!("the downloaded file {} vanished: {e}", cache.path(&sha256).display());
                (ContentNews::FetchFailed { sha256, reason }, Vec::new())
            }
        },
        other => (other, Vec::new()),
    };
    core.handle_content(clock::now(), news);
    for sha256 in evicted {
        core.handle_content(clock::now(), ContentNews::Missing { sha256 });
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
        CoreEvent::ClockJumped { by_ms } => tracing::warn!(%agent, by_ms, "the wall clock jumped; re-planning"),
        CoreEvent::PlanApplied { version, entries } => tracing::info!(%agent, version, entries, "plan applied"),
        CoreEvent::PlanRejected { version, reason } => tracing::error!(%agent, version, %reason, "plan rejected"),
        CoreEvent::PlayLogged(e) => tracing::info!(
            %agent, entry = %e.id, outcome = ?e.outcome, reason = e.reason.as_deref().unwrap_or(""),
            amplifier_confirmed = e.amplifier_confirmed, "play logged"
        ),
        CoreEvent::AmplifierFailed { command, reason } => {
            tracing::error!(%agent, ?command, %reason, "amplifier switch failed")
        }
        CoreEvent::AmplifierMaxOnTime { on_for } => {
            tracing::error!(%agent, on_for_s = on_for.as_secs(), "amplifier on too long; switched off")
        }
        CoreEvent::CommandRefused(r) => tracing::warn!(
            %agent, command = r.command_id.as_deref().unwrap_or("?"), reason = ?r.reason, message = %r.message,
            "signed command refused"
        ),
        CoreEvent::LiveStarted { session_id, priority, title } => {
            tracing::info!(%agent, %session_id, ?priority, %title, "live session started")
        }
        CoreEvent::LiveRejoined { session_id } => tracing::info!(%agent, %session_id, "live session rejoined"),
        CoreEvent::LiveEnded { session_id, reason } => {
            tracing::info!(%agent, %session_id, %reason, "live session ended")
        }
        CoreEvent::LiveStopIgnored { session_id } => {
            tracing::info!(%agent, %session_id, "stop for a session not on the air here")
        }
    }
}

/// Playback state on disk under the agent's state directory. Writes are
/// synchronous and small (a plan, a play log); the content cache is
/// [`ContentCache`].
#[derive(Debug)]
struct Store {
    dir: PathBuf,
}

impl Store {
    fn new(state_dir: &Path) -> Store {
        Store { dir: state_dir.join("playback") }
    }

    /// What the core persisted last time (the cached content is the
    /// [`ContentCache`]'s to say). A damaged file is logged and treated as
    /// absent.
    fn load(&self, agent: &str) -> Restore {
        Restore {
            desired: read_json(agent, &self.dir.join(DESIRED_FILE)),
            play_log: read_json(agent, &self.dir.join(PLAY_LOG_FILE)).unwrap_or_default(),
            cached: BTreeSet::new(),
            commands: read_json(agent, &self.dir.join(COMMANDS_FILE)).unwrap_or_default(),
        }
    }

    fn persist(&self, request: &PersistRequest) -> std::io::Result<()> {
        let (file, json) = match request {
            PersistRequest::DesiredState(state) => (DESIRED_FILE, serde_json::to_vec(state)),
            PersistRequest::PlayLog(log) => (PLAY_LOG_FILE, serde_json::to_vec(log)),
            PersistRequest::Commands(seen) => (COMMANDS_FILE, serde_json::to_vec(seen)),
        };
        write_atomic(&self.dir, file, &json.map_err(std::io::Error::other)?)
    }
}

const DESIRED_FILE: &str = "desired.json";
const PLAY_LOG_FILE: &str = "play-log.json";
const COMMANDS_FILE: &str = "commands.json";

fn read_json<T: serde::de::DeserializeOwned>(agent: &str, path: &Path) -> Option<T> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::error!(%agent, path = %path.display(), error = %e, "cannot read persisted playback state");
            return None;
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(%agent, path = %path.display(), error = %e, "persisted playback state is damaged; ignoring it");
            None
        }
    }
}

/// Write, fsync, rename, fsync the directory: a crash leaves the old file or
/// the new one, never half of one.
pub(crate) fn write_atomic(dir: &Path, file: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file);
    let tmp = dir.join(format!("{file}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(dir)?.sync_all()
}

fn truncate(s: &str) -> String {
    let mut s = s.to_string();
    while s.len() > 123 {
        s.pop();
    }
    s
}

#[cfg(test)]
mod tests {
    use dalaba_protocol::state::{PlayEvent, PlayOutcome};

    use super::*;
    use crate::core::PlayLog;

    #[test]
    fn store_round_trips_the_play_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        assert_eq!(store.load("ag-1"), Restore::default(), "nothing persisted yet");
        let mut log = PlayLog::default();
        log.logged.insert("7@1".into(), 1);
        log.pending.push(PlayEvent {
            id: "7@1".into(),
            schedule_id: 7,
            sha256: "ab".repeat(32),
            scheduled_ms: 1,
            started_ms: None,
            ended_ms: None,
            outcome: PlayOutcome::Missed,
            reason: Some("agent was not running".into()),
            amplifier_confirmed: false,
        });
        store.persist(&PersistRequest::PlayLog(log.clone())).expect("persist");
        assert_eq!(store.load("ag-1").play_log, log);

        std::fs::write(store.dir.join(PLAY_LOG_FILE), b"{ half").expect("write");
        assert_eq!(store.load("ag-1").play_log, PlayLog::default(), "a damaged file is ignored");
    }
}
