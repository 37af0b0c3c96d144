//! Live and emergency broadcasts: sessions, their audio fan-out to agent
//! links, signed start and stop commands, and per-agent status.
//!
//! # How a session runs
//! [`Live::start`] checks the request, resolves its targets to villages and
//! their agents, prepares the source (a library item's file, espeak-ng's
//! WAV of a text, decoded bytes, a microphone channel, or the controller
//! host's capture device, one session at a time), and refuses a
//! village held by a session of equal or higher priority, naming it. An
//! emergency takes villages from paging sessions (the agents preempt
//! locally). Each agent online gets a [`SignedCommand`] `live_start` on its
//! link; offline agents get one when they next say hello
//! ([`Live::attach`]), so a reconnecting agent rejoins within a second.
//! A source task (`source`) encodes Opus packets (20 ms from a file, 10 ms
//! from a microphone), paced in real time,
//! and [`Live::fan_out`] pushes each, as a [`LiveFrame`], into every taking
//! part agent's [`Outbox`]. The session ends by [`Live::stop`], when its
//! source ends, or at its maximum duration: every agent still in it gets a
//! signed `live_stop`. Agents' reports ([`Live::on_report`],
//! [`Live::on_refusal`]) and link changes update each agent's
//! [`AgentState`], broadcast as [`LiveEvent`]s; the session report is
//! stored at start, at the end, and on every agent's final report.
//!
//! # Layout
//! - this module: [`Live`], the registry of sessions, and its API.
//! - `outbox`: each agent link's outbound queue (control messages never
//!   dropped; audio frames bounded, drop-oldest).
//! - `report`: sessions and agent states as plain data.
//! - `source`: preparing sources and the task that encodes and paces them.
//! - `host_input`: the host's microphone or line-in through cpal, on its
//!   own thread.

mod host_input;
mod outbox;
mod report;
mod source;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use dalaba_protocol::codec;
use dalaba_protocol::link::ControllerMessage;
use dalaba_protocol::live::{
    Command, CommandAction, CommandRefusal, DEFAULT_COMMAND_TTL_MS, EMERGENCY_WARMUP_MS, LiveFrame, LiveReport,
    LiveStart, LiveState, LiveStop, SignedCommand,
};
use dalaba_protocol::state::{PlaybackSettings, Priority};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

pub use host_input::HostInput;
pub use outbox::{FRAME_QUEUE, Outbound, Outbox};
pub use report::{AgentCounts, AgentReport, AgentState, LiveEvent, SessionReport};
pub use source::{MIC_CHUNK_BYTES, PCM_RATE, pcm_chunk};

use crate::api::{ApiError, AppState};
use crate::directory::{Level, Region};
use crate::signing::CommandSigner;

/// Longest session title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// A session's maximum duration when the request names none: one hour.
pub const DEFAULT_MAX_DURATION_MS: u64 = 3_600_000;
/// The longest maximum duration a request may ask for: four hours.
pub const MAX_DURATION_MS: u64 = 4 * 3_600_000;
/// Ended sessions kept in memory (for late agent reports); older ones are
/// read from the store.
const RECENT_KEPT: usize = 32;

/// How important a live session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LivePriority {
    /// A live page from an operator.
    Paging,
    /// An emergency broadcast: takes villages from paging sessions.
    Emergency,
}

impl LivePriority {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            LivePriority::Paging => "paging",
            LivePriority::Emergency => "emergency",
        }
    }

    /// Parses [`LivePriority::as_str`].
    pub fn parse(s: &str) -> Option<LivePriority> {
        [LivePriority::Paging, LivePriority::Emergency].into_iter().find(|p| p.as_str() == s)
    }

    fn wire(self) -> Priority {
        match self {
            LivePriority::Paging => Priority::Paging,
            LivePriority::Emergency => Priority::Emergency,
        }
    }

    /// The amplifier warm-up agents wait before the audio of such a session.
    pub fn warmup_ms(self) -> u64 {
        match self {
            LivePriority::Emergency => EMERGENCY_WARMUP_MS,
            LivePriority::Paging => PlaybackSettings::default().warmup_ms,
        }
    }
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
    /// A microphone or line-in on the controller host (`[live] host_input`).
    HostInput,
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

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::LibraryItem { item_id } => format!("library_item:{item_id}"),
            Source::Text { .. } => "text".into(),
            Source::Microphone => "microphone".into(),
            Source::HostInput => "host_input".into(),
            Source::Audio { .. } => "audio".into(),
        }
    }
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
    /// The session ends on its own after this long (default
    /// [`DEFAULT_MAX_DURATION_MS`], at most [`MAX_DURATION_MS`]).
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
    /// The agents of those villages, by id.
    pub agents: Vec<String>,
    /// The agents that were offline at the start (they join when they
    /// reconnect while the session lasts).
    pub offline: Vec<String>,
    /// When it started (Unix ms).
    pub started_at_ms: i64,
    /// Sessions whose villages it took (an emergency over paging).
    pub preempted: Vec<String>,
    /// The microphone WebSocket path, for a microphone session.
    pub microphone_path: Option<String>,
}

/// Every live session. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Live {
    signer: CommandSigner,
    registry: Mutex<Registry>,
    events: broadcast::Sender<LiveEvent>,
    next_id: AtomicU64,
    frame_queue: usize,
    host_input: HostInput,
}

#[derive(Debug, Default)]
struct Registry {
    /// Live sessions and the last [`RECENT_KEPT`] ended ones.
    sessions: HashMap<String, Session>,
    ended: VecDeque<String>,
    /// Each online agent's outbound queue, with its link's id.
    links: HashMap<String, (u64, Arc<Outbox>)>,
}

#[derive(Debug)]
struct Session {
    report: SessionReport,
    priority: LivePriority,
    stream_id: u32,
    seq: u32,
    gain_db: f64,
    max_duration_ms: u64,
    /// Villages a more important session took.
    taken: BTreeSet<i64>,
    /// The last start command id sent to each agent.
    start_commands: HashMap<String, String>,
    stop: CancellationToken,
    /// The microphone's PCM channel until the microphone connects.
    microphone: Option<mpsc::Sender<Vec<f32>>>,
}

impl Session {
    fn is_live(&self) -> bool {
        self.report.ended_at_ms.is_none()
    }

    fn holds(&self, village: i64) -> bool {
        self.is_live() && !self.taken.contains(&village) && self.report.villages.contains(&village)
    }
}

impl Live {
    /// No sessions yet; commands are signed with `signer`.
    pub fn new(signer: CommandSigner) -> Live {
        Live::with_frame_queue(signer, FRAME_QUEUE)
    }

    /// Like [`Live::new`] with `frame_queue` frames per agent link (tests
    /// and benchmarks).
    pub fn with_frame_queue(signer: CommandSigner, frame_queue: usize) -> Live {
        let (events, _) = broadcast::channel(4096);
        Live {
            signer,
            registry: Mutex::new(Registry::default()),
            events,
            next_id: AtomicU64::new(1),
            frame_queue,
            host_input: HostInput::default(),
        }
    }

    /// Sessions may capture the host's ALSA device `device` (`[live]
    /// host_input`; empty disables them).
    pub fn with_host_input(mut self, device: &str) -> Live {
        self.host_input = HostInput::new(device);
        self
    }

    /// Subscribes to session and agent-state changes.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.events.subscribe()
    }

    /// Starts a session: see the module documentation.
    pub async fn start(&self, st: &AppState, req: StartRequest) -> Result<SessionInfo, ApiError> {
        check_request(st, &req)?;
        let (regions, agents) = st.db(|s| Ok((s.regions()?, s.agents()?))).await?;
        let villages = resolve_targets(&regions, &req.targets)?;
        let mut targeted: Vec<(String, i64)> = agents
            .into_iter()
            .filter(|a| villages.binary_search(&a.village_id).is_ok())
            .map(|a| (a.id, a.village_id))
            .collect();
        targeted.sort();
        if targeted.is_empty() {
            let message =
                format!("the targets reach {} village(s), but none has an enrolled agent to play it", villages.len());
            let params = vec![("villages", villages.len().to_string())];
            return Err(ApiError::explained(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no_agents",
                "no_agents",
                params,
                message,
            ));
        }
        let (session_id, stream_id) = self.new_ids(st.clock.now_ms());
        let holder = format!("live session {session_id} \"{}\", started by {}", req.title.trim(), req.started_by);
        let prepared = source::prepare(st, &req.source, &self.host_input, holder).await?;
        let now = st.clock.now_ms();
        let max_duration_ms = req.max_duration_ms.unwrap_or(DEFAULT_MAX_DURATION_MS);
        let stop = CancellationToken::new();
        let (microphone, pcm) = match prepared.kind {
            source::Kind::Microphone => {
                let (tx, rx) = mpsc::channel(source::MIC_QUEUE);
                (Some(tx), Some(rx))
            }
            source::Kind::File(_) | source::Kind::HostInput(_) => (None, None),
        };
        let names: HashMap<i64, &str> = regions.iter().map(|r| (r.id, r.name.as_str())).collect();
        let mut events = Vec::new();
        let (report, preempted, emptied) = {
            let mut reg = self.lock();
            let takeovers = conflicts(&reg, &villages, req.priority, &names)?;
            let mut preempted = Vec::new();
            let mut emptied = Vec::new();
            for id in takeovers {
                let Some(s) = reg.sessions.get_mut(&id) else { continue };
                s.taken.extend(villages.iter().copied());
                for a in s.report.agents.iter_mut().filter(|a| villages.binary_search(&a.village_id).is_ok()) {
                    if a.state.is_taking_part() {
                        a.state = AgentState::Preempted { by: session_id.clone() };
                        events.push(LiveEvent::Agent { session_id: id.clone(), agent: a.clone() });
                    }
                }
                if s.report.villages.iter().all(|v| s.taken.contains(v)) {
                    emptied.push(id.clone());
                }
                preempted.push(id);
            }
            let report = SessionReport {
                session_id: session_id.clone(),
                title: req.title.trim().to_owned(),
                priority: req.priority,
                source: req.source.describe(),
                started_by: req.started_by.clone(),
                targets: serde_json::to_value(&req.targets).unwrap_or_default(),
                villages: villages.clone(),
                volume: req.volume,
                started_at_ms: now,
                ended_at_ms: None,
                end_reason: None,
                frames_sent: 0,
                counts: AgentCounts::default(),
                agents: targeted
                    .iter()
                    .map(|(agent_id, village_id)| AgentReport {
                        agent_id: agent_id.clone(),
                        village_id: *village_id,
                        state: AgentState::Offline,
                        playing_from_ms: None,
                        playing_to_ms: None,
                        frames_sent: 0,
                        frames_dropped: 0,
                        frames_received: None,
                        frames_lost: None,
                        refusal: None,
                    })
                    .collect(),
            };
            let mut session = Session {
                report,
                priority: req.priority,
                stream_id,
                seq: 0,
                gain_db: prepared.gain_db,
                max_duration_ms,
                taken: BTreeSet::new(),
                start_commands: HashMap::new(),
                stop: stop.clone(),
                microphone,
            };
            let Registry { links, .. } = &*reg;
            for i in 0..session.report.agents.len() {
                let agent_id = session.report.agents[i].agent_id.clone();
                if let Some((_, outbox)) = links.get(&agent_id) {
                    self.send_start(&mut session, &agent_id, now, outbox);
                }
            }
            session.report.counts = AgentCounts::of(&session.report.agents);
            let report = session.report.clone();
            reg.sessions.insert(session_id.clone(), session);
            (report, preempted, emptied)
        };
        st.metrics.live_sessions.inc();
        tracing::info!(session = %session_id, title = %report.title, priority = report.priority.as_str(),
            started_by = %report.started_by, villages = report.villages.len(), agents = report.agents.len(),
            "live session started");
        let stored = report.clone();
        if let Err(e) = st.db(move |s| s.save_live_session(&stored)).await {
            tracing::error!(session = %session_id, error = %e, "cannot store the live session");
        }
        for e in events {
            self.emit(e);
        }
        self.emit(LiveEvent::Session { session: report.summary() });
        for id in emptied {
            let why = format!("preempted by emergency session {session_id}");
            self.finish(st, &id, &why).await;
        }
        // Recorded audio waits for the agents' amplifiers to warm up (they
        // drop what arrives before), so a notice is heard from its first word.
        let lead = Duration::from_millis(req.priority.warmup_ms()) + source::COMMAND_MARGIN;
        source::spawn(
            st.clone(),
            session_id.clone(),
            prepared,
            pcm,
            stop,
            Duration::from_millis(max_duration_ms),
            lead,
        );
        Ok(SessionInfo {
            microphone_path: (req.source == Source::Microphone)
                .then(|| format!("/api/v1/live/{session_id}/microphone")),
            session_id,
            title: report.title,
            priority: report.priority,
            villages: report.villages,
            offline: report
                .agents
                .iter()
                .filter(|a| a.state == AgentState::Offline)
                .map(|a| a.agent_id.clone())
                .collect(),
            agents: report.agents.into_iter().map(|a| a.agent_id).collect(),
            started_at_ms: now,
            preempted,
        })
    }

    /// Stops a live session; every agent still in it gets a signed stop.
    pub async fn stop(&self, st: &AppState, session_id: &str, reason: &str) -> Result<(), ApiError> {
        if self.finish(st, session_id, reason).await {
            return Ok(());
        }
        let report = self.session(st, session_id).await?;
        let when = report.ended_at_ms.map(crate::clock::rfc3339).unwrap_or_default();
        Err(ApiError::Conflict(format!(
            "live session {session_id} already ended at {when} ({})",
            report.end_reason.unwrap_or_default()
        )))
    }

    /// One session's report with every agent: from memory while it is live
    /// or recent, else from the store.
    pub async fn session(&self, st: &AppState, session_id: &str) -> Result<SessionReport, ApiError> {
        if let Some(s) = self.lock().sessions.get(session_id) {
            let mut report = s.report.clone();
            report.counts = AgentCounts::of(&report.agents);
            return Ok(report);
        }
        let id = session_id.to_owned();
        st.db(move |s| s.live_session(&id))
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("live session {session_id} does not exist")))
    }

    /// The live sessions (with agent counts, without agents), newest first.
    pub fn active(&self) -> Vec<SessionReport> {
        let reg = self.lock();
        let mut out: Vec<SessionReport> = reg
            .sessions
            .values()
            .filter(|s| s.is_live())
            .map(|s| SessionReport { counts: AgentCounts::of(&s.report.agents), ..s.report.summary() })
            .collect();
        out.sort_by(|a, b| b.started_at_ms.cmp(&a.started_at_ms).then(b.session_id.cmp(&a.session_id)));
        out
    }

    /// Registers an agent's welcomed link and returns its outbound queue.
    /// Every live session that targets the agent sends it a fresh signed
    /// start at once: the agent rejoins.
    pub fn attach(&self, st: &AppState, agent_id: &str, conn_id: u64) -> Arc<Outbox> {
        let outbox = Arc::new(Outbox::new(self.frame_queue));
        let now = st.clock.now_ms();
        let mut events = Vec::new();
        {
            let mut reg = self.lock();
            reg.links.insert(agent_id.to_owned(), (conn_id, Arc::clone(&outbox)));
            for s in reg.sessions.values_mut().filter(|s| s.is_live()) {
                if s.report.agent(agent_id).is_some_and(|a| a.state.is_taking_part()) {
                    self.send_start(s, agent_id, now, &outbox);
                    if let Some(a) = s.report.agent(agent_id) {
                        events.push(LiveEvent::Agent { session_id: s.report.session_id.clone(), agent: a.clone() });
                    }
                }
            }
        }
        for e in events {
            tracing::info!(agent = %agent_id, "agent rejoins a live session");
            self.emit(e);
        }
        outbox
    }

    /// Unregisters a link that closed (unless a newer link replaced it);
    /// the agent shows offline in every live session.
    pub fn detach(&self, agent_id: &str, conn_id: u64) {
        let mut events = Vec::new();
        {
            let mut reg = self.lock();
            if reg.links.get(agent_id).is_none_or(|(c, _)| *c != conn_id) {
                return;
            }
            reg.links.remove(agent_id);
            for s in reg.sessions.values_mut().filter(|s| s.is_live()) {
                let session_id = s.report.session_id.clone();
                if let Some(a) = s.report.agent_mut(agent_id).filter(|a| a.state.is_taking_part()) {
                    a.state = AgentState::Offline;
                    events.push(LiveEvent::Agent { session_id, agent: a.clone() });
                }
            }
        }
        for e in events {
            self.emit(e);
        }
    }

    /// An agent's report of its state in a session.
    pub async fn on_report(&self, st: &AppState, agent_id: &str, report: LiveReport) {
        let updated = {
            let mut reg = self.lock();
            let Some(s) = reg.sessions.get_mut(&report.session_id) else {
                tracing::debug!(agent = %agent_id, session = %report.session_id, "report on an unknown live session");
                return;
            };
            let Some(a) = s.report.agent_mut(agent_id) else {
                tracing::warn!(agent = %agent_id, session = %report.session_id, "report on a session that does not target the agent");
                return;
            };
            let last = match report.state {
                LiveState::Receiving { amplifier_on } => {
                    if a.state.is_taking_part() {
                        a.state = AgentState::Receiving { amplifier_on };
                    }
                    false
                }
                LiveState::Playing { since_ms, amplifier_on } => {
                    if a.state.is_taking_part() {
                        a.state = AgentState::Playing { amplifier_on };
                    }
                    a.playing_from_ms.get_or_insert(since_ms);
                    false
                }
                LiveState::Ended { started_ms, ended_ms, frames_received, frames_lost, reason } => {
                    if a.state.is_taking_part() {
                        a.state = AgentState::Ended { reason: cut(&reason, 200) };
                    }
                    a.playing_from_ms = started_ms.or(a.playing_from_ms);
                    a.playing_to_ms = Some(ended_ms);
                    a.frames_received = Some(frames_received);
                    a.frames_lost = Some(frames_lost);
                    true
                }
            };
            (a.clone(), last)
        };
        self.agent_changed(st, &report.session_id, updated.0, updated.1).await;
    }

    /// An agent refused a command: a refused start takes it out of the
    /// session (it rejoins on reconnect); a refused stop is noted.
    pub async fn on_refusal(&self, st: &AppState, agent_id: &str, refusal: CommandRefusal) {
        let updated = {
            let mut reg = self.lock();
            let found = reg.sessions.values_mut().find(|s| {
                refusal.session_id.as_deref() == Some(s.report.session_id.as_str())
                    || refusal.command_id.as_ref().is_some_and(|c| s.start_commands.get(agent_id) == Some(c))
            });
            let Some(s) = found else {
                tracing::warn!(agent = %agent_id, command = ?refusal.command_id, "refusal of an unknown live command");
                return;
            };
            let was_start = refusal.command_id.is_none()
                || refusal.command_id.as_ref().is_some_and(|c| s.start_commands.get(agent_id) == Some(c));
            let session_id = s.report.session_id.clone();
            let Some(a) = s.report.agent_mut(agent_id) else { return };
            let message = cut(&refusal.message, 500);
            if was_start {
                a.state = AgentState::Refused { reason: refusal.reason, message: message.clone() };
                a.refusal = Some(message);
            } else {
                a.refusal = Some(format!("stop refused: {message}"));
            }
            (session_id, a.clone())
        };
        self.agent_changed(st, &updated.0, updated.1, true).await;
    }

    /// Pushes Opus packets with their capture times (µs), in order, to
    /// every agent taking part in the session, each agent's in one go (a
    /// file's burst, see `source`). Returns false when the session is over.
    pub fn fan_out(&self, st: &AppState, session_id: &str, packets: Vec<(Vec<u8>, i64)>) -> bool {
        let (mut sent, mut dropped) = (0u64, 0u64);
        {
            let mut reg = self.lock();
            let Registry { sessions, links, .. } = &mut *reg;
            let Some(s) = sessions.get_mut(session_id).filter(|s| s.is_live()) else { return false };
            let frames: Vec<Bytes> = packets
                .into_iter()
                .map(|(opus, capture_us)| {
                    let frame = LiveFrame { stream_id: s.stream_id, seq: s.seq, capture_us, opus };
                    s.seq = s.seq.wrapping_add(1);
                    Bytes::from(frame.encode())
                })
                .collect();
            let n = frames.len() as u64;
            s.report.frames_sent += n;
            for a in s.report.agents.iter_mut().filter(|a| a.state.is_taking_part()) {
                if let Some((_, outbox)) = links.get(&a.agent_id) {
                    a.frames_sent += n;
                    sent += n;
                    let lost = outbox.push_frames(&frames);
                    a.frames_dropped += lost;
                    dropped += lost;
                }
            }
        }
        st.metrics.live_frames_sent.inc_by(sent);
        if dropped > 0 {
            st.metrics.live_frames_dropped.inc_by(dropped);
        }
        true
    }

    /// Hands the microphone's PCM channel to the one microphone connection.
    pub fn take_microphone(&self, session_id: &str) -> Result<mpsc::Sender<Vec<f32>>, ApiError> {
        let mut reg = self.lock();
        let Some(s) = reg.sessions.get_mut(session_id) else {
            return Err(ApiError::NotFound(format!("live session {session_id} is not live")));
        };
        if !s.is_live() {
            return Err(ApiError::Conflict(format!("live session {session_id} has ended")));
        }
        if s.report.source != "microphone" {
            return Err(ApiError::Conflict(format!(
                "live session {session_id} plays {}, not a microphone",
                s.report.source
            )));
        }
        s.microphone.take().ok_or_else(|| {
            ApiError::Conflict(format!("a microphone is already connected to live session {session_id}"))
        })
    }

    /// Ends a live session; false when it is not live.
    pub(crate) async fn finish(&self, st: &AppState, session_id: &str, reason: &str) -> bool {
        let now = st.clock.now_ms();
        let report = {
            let mut reg = self.lock();
            let Registry { sessions, links, ended } = &mut *reg;
            let Some(s) = sessions.get_mut(session_id).filter(|s| s.is_live()) else { return false };
            s.report.ended_at_ms = Some(now);
            s.report.end_reason = Some(cut(reason, 500));
            s.stop.cancel();
            s.microphone = None;
            for a in s.report.agents.iter().filter(|a| a.state.is_taking_part()) {
                if let Some((_, outbox)) = links.get(&a.agent_id) {
                    let stop = CommandAction::LiveStop(LiveStop {
                        session_id: session_id.to_owned(),
                        reason: cut(reason, 500),
                    });
                    outbox.push_control(self.command_text(&a.agent_id, now, stop).1);
                }
            }
            s.report.counts = AgentCounts::of(&s.report.agents);
            let report = s.report.clone();
            ended.push_back(session_id.to_owned());
            while ended.len() > RECENT_KEPT {
                if let Some(old) = ended.pop_front() {
                    sessions.remove(&old);
                }
            }
            report
        };
        tracing::info!(session = %session_id, reason, frames = report.frames_sent, "live session ended");
        let stored = report.clone();
        if let Err(e) = st.db(move |s| s.save_live_session(&stored)).await {
            tracing::error!(session = %session_id, error = %e, "cannot store the live session report");
        }
        self.emit(LiveEvent::Session { session: report.summary() });
        true
    }

    async fn agent_changed(&self, st: &AppState, session_id: &str, agent: AgentReport, store: bool) {
        if store {
            let (id, row) = (session_id.to_owned(), agent.clone());
            if let Err(e) = st.db(move |s| s.save_live_agent(&id, &row)).await {
                tracing::error!(session = %session_id, agent = %agent.agent_id, error = %e, "cannot store a live report");
            }
        }
        self.emit(LiveEvent::Agent { session_id: session_id.to_owned(), agent });
    }

    /// Signs a fresh start for `agent_id` and queues it; marks the agent sent.
    fn send_start(&self, s: &mut Session, agent_id: &str, now: i64, outbox: &Outbox) {
        let start = CommandAction::LiveStart(LiveStart {
            session_id: s.report.session_id.clone(),
            stream_id: s.stream_id,
            priority: s.priority.wire(),
            title: s.report.title.clone(),
            volume: s.report.volume,
            gain_db: s.gain_db,
            warmup_ms: s.priority.warmup_ms(),
            max_duration_ms: s
                .max_duration_ms
                .saturating_sub(u64::try_from(now - s.report.started_at_ms).unwrap_or(0))
                .max(1_000),
        });
        let (id, text) = self.command_text(agent_id, now, start);
        outbox.push_control(text);
        s.start_commands.insert(agent_id.to_owned(), id);
        if let Some(a) = s.report.agent_mut(agent_id) {
            a.state = AgentState::Sent;
        }
    }

    /// A signed command for one agent: its id and the link message's text.
    fn command_text(&self, agent_id: &str, now: i64, action: CommandAction) -> (String, String) {
        let id = format!("{}-{}", random_hex(6), self.next_id.fetch_add(1, Ordering::Relaxed));
        let command = Command {
            id: id.clone(),
            agent_id: agent_id.to_owned(),
            issued_at_ms: now,
            expires_at_ms: now.saturating_add(DEFAULT_COMMAND_TTL_MS as i64),
            action,
        };
        (id, codec::encode(&ControllerMessage::Command(self.sign(&command))))
    }

    /// Signs a command with the controller's key.
    pub fn sign(&self, command: &Command) -> SignedCommand {
        self.signer.sign(command)
    }

    fn new_ids(&self, now: i64) -> (String, u32) {
        let mut seed = [0u8; 4];
        // Without system randomness the counter still keeps ids apart.
        let _ = getrandom::getrandom(&mut seed);
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let stream_id = u32::from_be_bytes(seed) ^ (n as u32);
        let time = chrono::DateTime::from_timestamp_millis(now)
            .map_or_else(|| now.to_string(), |t| t.format("%Y%m%d-%H%M%S").to_string());
        (format!("L{time}-{}", hex::encode(seed)), stream_id)
    }

    fn emit(&self, event: LiveEvent) {
        // No subscriber is fine: nobody is watching.
        let _ = self.events.send(event);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // Critical sections only move plain data; a poisoned lock still
        // holds a consistent registry.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn check_request(st: &AppState, req: &StartRequest) -> Result<(), ApiError> {
    let chars = req.title.trim().chars().count();
    if chars == 0 {
        return Err(ApiError::refused("no_title", vec![], "a live session needs a title".into()));
    }
    if chars > MAX_TITLE_CHARS {
        let message = format!("the title is longer than {MAX_TITLE_CHARS} characters");
        return Err(ApiError::refused("title_too_long", vec![("max", MAX_TITLE_CHARS.to_string())], message));
    }
    if req.volume > 100 {
        let message = format!("volume {} is out of range 0–100", req.volume);
        return Err(ApiError::refused("volume_out_of_range", vec![("volume", req.volume.to_string())], message));
    }
    if req.targets.is_empty() {
        let message = "a live session needs targets: the county, townships, villages or tags".into();
        return Err(ApiError::refused("no_targets", vec![], message));
    }
    if let Some(ms) = req.max_duration_ms
        && !(1_000..=MAX_DURATION_MS).contains(&ms)
    {
        return Err(ApiError::BadRequest(format!(
            "max_duration_ms must be between 1000 and {MAX_DURATION_MS} (four hours)"
        )));
    }
    if req.started_by.trim().is_empty() || req.started_by.len() > 200 {
        return Err(ApiError::BadRequest("started_by must name who started the session (1–200 bytes)".into()));
    }
    if let Source::Text { text } = &req.source {
        crate::library::tts::check_text(&st.library.settings, text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    Ok(())
}

/// The villages `targets` reach, sorted; an unknown target is a 400.
fn resolve_targets(regions: &[Region], targets: &dalaba_schedules::Targets) -> Result<Vec<i64>, ApiError> {
    let timetable = crate::schedules::Timetable { regions: regions.to_vec(), ..Default::default() };
    timetable.check_targets(targets).map_err(|r| ApiError::refused(r.reason, r.params, r.message))?;
    let mut villages: Vec<i64> = timetable.villages().iter().filter(|v| targets.includes(v)).map(|v| v.id).collect();
    villages.sort_unstable();
    if villages.is_empty() {
        let levels = regions.iter().any(|r| r.level == Level::Village);
        return Err(if levels {
            ApiError::refused("reach_no_village", vec![], "the targets reach no village".into())
        } else {
            ApiError::refused("no_villages_yet", vec![], "the directory has no villages yet".into())
        });
    }
    Ok(villages)
}

/// Sessions whose villages a new session of `priority` takes, or the 409
/// naming the session that holds one of them.
fn conflicts(
    reg: &Registry,
    villages: &[i64],
    priority: LivePriority,
    names: &HashMap<i64, &str>,
) -> Result<Vec<String>, ApiError> {
    let mut takeovers = Vec::new();
    let mut sessions: Vec<&Session> = reg.sessions.values().filter(|s| s.is_live()).collect();
    sessions.sort_by_key(|s| (s.report.started_at_ms, s.report.session_id.clone()));
    for s in sessions {
        let held: Vec<i64> = villages.iter().copied().filter(|&v| s.holds(v)).collect();
        let Some(&first) = held.first() else { continue };
        if s.priority >= priority {
            let name = names.get(&first).copied().unwrap_or("a targeted village");
            let others = match held.len() - 1 {
                0 => String::new(),
                1 => " and 1 other targeted village".into(),
                n => format!(" and {n} other targeted villages"),
            };
            let advice = if s.priority == priority {
                "stop it first, or leave those villages out"
            } else {
                "a paging session cannot interrupt an emergency; wait until it ends"
            };
            let message = format!(
                "{name}{others} is on the air with {} session {} \"{}\", started by {}; {advice}",
                s.priority.as_str(),
                s.report.session_id,
                s.report.title,
                s.report.started_by,
            );
            let params = vec![
                ("village", name.to_owned()),
                ("others", (held.len() - 1).to_string()),
                ("priority", s.priority.as_str().to_owned()),
                ("session_id", s.report.session_id.clone()),
                ("title", s.report.title.clone()),
                ("started_by", s.report.started_by.clone()),
            ];
            let reason = if s.priority == priority { "held_by_equal" } else { "held_by_emergency" };
            return Err(ApiError::explained(StatusCode::CONFLICT, "conflict", reason, params, message));
        }
        takeovers.push(s.report.session_id.clone());
    }
    Ok(takeovers)
}

fn cut(s: &str, max: usize) -> String {
    let mut out = s.to_owned();
    while out.len() > max {
        out.pop();
    }
    out
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The caller adds a counter, so ids stay unique without randomness.
    let _ = getrandom::getrandom(&mut buf);
    hex::encode(buf)
}
