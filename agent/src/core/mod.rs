//! The agent's sans-IO core: a state machine driven only by its inputs.
//!
//! It never reads a clock, sleeps, spawns, locks or does IO. The shell owns
//! the socket, the clock, the devices, the player and the disk, and runs this
//! loop:
//!
//! 0. Make the core with [`AgentCore::new`] and hand it what the shell
//!    persisted with [`AgentCore::restore`] before anything else.
//! 1. Feed every input with the time it happened: [`AgentCore::handle_link_up`],
//!    [`AgentCore::handle_link_down`], [`AgentCore::handle_message`],
//!    [`AgentCore::handle_device`], [`AgentCore::handle_playback`],
//!    [`AgentCore::handle_amplifier`], [`AgentCore::handle_content`],
//!    [`AgentCore::handle_live_frame`], [`AgentCore::handle_live`], and
//!    [`AgentCore::handle_timeout`] once [`AgentCore::poll_timeout`] has passed.
//! 2. After each input, drain [`AgentCore::poll_output`] until `None` and
//!    carry out every [`Output`] in order ([`Output::Persist`] durably before
//!    the outputs that follow it).
//! 3. Sleep until the next input or [`AgentCore::poll_timeout`], whichever is
//!    first (recompute it after every input).
//!
//! Link contract: after [`Output::Connect`] the shell reports exactly one of
//! `handle_link_up` or `handle_link_down`; after `handle_link_up` it reports
//! `handle_link_down` when that link ends. When the core asks for
//! [`Output::Disconnect`] it has already scheduled the reconnect: the
//! `handle_link_down` that follows for that link is accepted and ignored.
//!
//! Playback contract: [`Output::StartPlayback`] goes out
//! [`CoreConfig::playback_lead`] before the planned instant, which it carries
//! as `at_ms`, so a player with output latency can place the first sample
//! exactly (a player without pre-roll leaves the lead at zero and starts at
//! once). After it the player reports
//! [`PlaybackNews::Started`] and then [`PlaybackNews::Finished`] or
//! [`PlaybackNews::Failed`] for that entry and part, and after
//! [`Output::StopPlayback`] it may report [`PlaybackNews::Stopped`] with how
//! much of the audio went out; after
//! [`Output::SwitchAmplifier`] the shell reports the driver's answer with
//! `handle_amplifier`; after [`Output::Fetch`] it reports [`ContentNews`].
//!
//! Live contract: the shell decodes every binary frame of the link and
//! reports each with [`AgentCore::handle_live_frame`] (the core counts them
//! and watches for silence); between [`Output::StartLive`] and
//! [`Output::StopLive`] it hands the frames of that stream to the player,
//! which reports [`LiveNews`].
//!
//! # Layout
//! - `link`: the link state machine (hello, welcome, heartbeats, silence,
//!   refusals, reconnects).
//! - `backoff`: jittered exponential backoff with its own seeded generator.
//! - `status`: when to send the agent's status.
//! - `playback`: scheduled playback, the amplifier, lateness and re-planning.
//! - `plan`: checks on a desired state and limits on its settings.
//! - `command`: signed commands: verification, expiry, replay memory.
//! - `live`: live and emergency sessions: arbitration, the session's life,
//!   its reports.
//! - `play_log`: proof of play, persisted and uploaded until acknowledged.
//! - `content`: what the cache holds, what to fetch, the sync report.
//! - `timebase`: wall time to deadlines, and clock jumps.
//! - `timer`: the table of named deadlines.

mod backoff;
mod command;
mod content;
mod link;
mod live;
mod plan;
mod play_log;
mod playback;
mod status;
mod timebase;
mod timer;

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use dalaba_protocol::enrol::SigningKeyInfo;
use dalaba_protocol::link::{AgentMessage, AmplifierState, ControllerMessage, Hardware, NowPlaying, RefusalReason};
use dalaba_protocol::live::CommandRefusal;
use dalaba_protocol::state::{DesiredState, PlayEvent, Priority};

pub use command::{MAX_COMMAND_LIFETIME_MS, MAX_REMEMBERED_COMMANDS, PinnedKey, REPLAY_MARGIN_MS, SeenCommands};
pub use content::{ContentNews, FETCH_RETRY};
pub use link::LinkState;
pub use live::{LiveNews, MAX_COUNTED_GAP};
pub use plan::{MAX_ENTRY_ID_BYTES, MAX_PLAN_CONTENT, MAX_PLAN_ENTRIES, MAX_PLAY_MS, MAX_PLAYS_PER_ENTRY};
pub use play_log::{EVENTS_RETRY, PlayLog};
pub use playback::{CLOCK_CHECK_INTERVAL, LOGGED_RETENTION_MS, OVERRUN_SLACK, PlaybackNews};
pub use timebase::JUMP_THRESHOLD_MS;

use link::{Link, LinkNews};
use live::Live;
use playback::{Playback, Why};
use status::StatusReport;
use timebase::Timebase;
use timer::{Timer, TimerTable};

/// A moment, as the shell's clock saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time: every deadline of the core is measured on it.
    pub mono: Instant,
    /// Wall clock, Unix milliseconds: what goes on the wire.
    pub wall_ms: i64,
}

/// Settings of the core.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// The agent's id, as enrolled.
    pub agent_id: String,
    /// The agent's software version, sent in the hello.
    pub agent_version: String,
    /// The board, sent in the hello.
    pub hardware: Hardware,
    /// Heartbeat interval until a welcome names one.
    pub default_heartbeat_interval: Duration,
    /// Link up but no welcome within this: disconnect.
    pub welcome_timeout: Duration,
    /// Nothing from the controller for this many heartbeat intervals: the link
    /// is dead.
    pub silence_factor: u32,
    /// Base of the first reconnect delay.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// A status goes out at least this often while connected.
    pub status_interval: Duration,
    /// How long before an item's planned start [`Output::StartPlayback`]
    /// goes out (the player's pre-roll: it opens and decodes the file and
    /// places the first sample so that it leaves the output at
    /// `StartPlayback::at_ms`). Zero by default: start at the instant.
    pub playback_lead: Duration,
    /// Seed of the reconnect jitter.
    pub jitter_seed: u64,
    /// The command-signing key pinned at enrolment; without one every
    /// signed command is refused (`unknown_key`).
    pub command_key: Option<SigningKeyInfo>,
}

impl CoreConfig {
    /// Defaults: heartbeat 15 s, welcome timeout 10 s, silence after 3
    /// intervals, backoff 1 s to 30 s, status every 60 s. The jitter seed is
    /// derived from the agent id, so every agent has its own yet runs replay.
    pub fn new(agent_id: impl Into<String>, agent_version: impl Into<String>, hardware: Hardware) -> Self {
        let agent_id = agent_id.into();
        CoreConfig {
            jitter_seed: fnv1a(agent_id.as_bytes()),
            agent_id,
            agent_version: agent_version.into(),
            hardware,
            default_heartbeat_interval: Duration::from_secs(15),
            welcome_timeout: Duration::from_secs(10),
            silence_factor: 3,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            status_interval: Duration::from_secs(60),
            playback_lead: Duration::ZERO,
            command_key: None,
        }
    }
}

/// What the agent's devices look like now, as the shell read them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceSnapshot {
    /// Free bytes on the data disk.
    pub disk_free_bytes: u64,
    /// Bytes held in the content cache.
    pub cache_bytes: u64,
    /// The amplifier relay's state.
    pub amplifier: AmplifierState,
    /// What is playing, if anything.
    pub now_playing: Option<NowPlaying>,
}

/// Why a link ended (or never came up), as the shell reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkDown {
    /// TCP, TLS or the WebSocket upgrade failed.
    ConnectFailed(String),
    /// The controller rejected the agent's credentials.
    AuthRejected(String),
    /// The link closed (either side, or the network).
    Closed(String),
    /// The controller sent something the shell could not decode.
    ProtocolError(String),
}

/// What the shell persisted, handed back to a new core by
/// [`AgentCore::restore`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Restore {
    /// The last desired state the core asked to persist.
    pub desired: Option<DesiredState>,
    /// The last play log the core asked to persist.
    pub play_log: PlayLog,
    /// SHA-256 of every verified item in the content cache.
    pub cached: BTreeSet<String>,
    /// The signed commands already carried out.
    pub commands: SeenCommands,
}

/// Something the shell must write durably (write, fsync, rename) before it
/// carries out the outputs that follow. Each replaces the previous one of
/// its kind.
#[derive(Clone, Debug, PartialEq)]
pub enum PersistRequest {
    /// The desired state just applied.
    DesiredState(Box<DesiredState>),
    /// The play log after a change.
    PlayLog(PlayLog),
    /// The ids of signed commands carried out, before the command acts.
    Commands(SeenCommands),
}

/// A switch command for the amplifier relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmplifierCommand {
    /// Switch the amplifier on.
    On,
    /// Switch the amplifier off.
    Off,
}

/// What the core asks the shell to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Open TLS and the WebSocket to the controller, then report
    /// [`AgentCore::handle_link_up`] or [`AgentCore::handle_link_down`].
    Connect,
    /// Send a message on the live link.
    Send(AgentMessage),
    /// Close the live link; then report [`AgentCore::handle_link_down`].
    Disconnect {
        /// Why, for the log (also in [`CoreEvent::LinkLost`]).
        reason: String,
    },
    /// Switch the amplifier relay; then report the driver's answer with
    /// [`AgentCore::handle_amplifier`].
    SwitchAmplifier(AmplifierCommand),
    /// Play one piece of content from the cache, its first sample leaving
    /// the output at `at_ms` (the planned start, or now when late). It goes
    /// out [`CoreConfig::playback_lead`] before that instant.
    StartPlayback {
        /// The plan entry, to quote in [`PlaybackNews`].
        entry_id: String,
        /// Which piece of the entry, to quote in [`PlaybackNews`].
        part: usize,
        /// The content (SHA-256, lowercase hex): its file in the cache.
        sha256: String,
        /// Gain for the county's loudness, in dB.
        gain_db: f64,
        /// The schedule's volume, 0–100.
        volume: u8,
        /// Start this far into the audio (0 today; kept for resuming a
        /// preempted item).
        offset_ms: u64,
        /// Wall clock (Unix ms) at which the first sample should leave the
        /// output; in the past when the item is late (then: at once).
        at_ms: i64,
        /// Its planned length (a simulated player plays for this long).
        duration_ms: u64,
    },
    /// Stop the audio of this entry; the player's news about it is ignored.
    StopPlayback {
        /// The plan entry.
        entry_id: String,
        /// Why, for the log.
        reason: String,
    },
    /// Play the live stream `stream_id`: its first sample leaves the output
    /// at `at_ms` (after the amplifier's warm-up; at once when in the past).
    /// The shell hands the stream's frames to the player until
    /// [`Output::StopLive`]; the player reports [`LiveNews`].
    StartLive {
        /// The session, to quote in [`LiveNews`].
        session_id: String,
        /// The stream id its frames carry.
        stream_id: u32,
        /// Gain towards the county loudness, in dB.
        gain_db: f64,
        /// Volume, 0–100.
        volume: u8,
        /// Wall clock (Unix ms) of the first sample.
        at_ms: i64,
    },
    /// Stop the live stream of this session at once.
    StopLive {
        /// The session.
        session_id: String,
        /// Why, for the log.
        reason: String,
    },
    /// Get this content into the cache (verified by its SHA-256), then
    /// report [`ContentNews`].
    Fetch {
        /// SHA-256 of the content, lowercase hex.
        sha256: String,
        /// Its size in bytes.
        size_bytes: u64,
    },
    /// Write this durably before carrying out the outputs after it.
    Persist(PersistRequest),
    /// Something worth logging happened.
    Event(CoreEvent),
}

/// Things the shell should log; the core has already acted on them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreEvent {
    /// The controller welcomed the agent.
    Connected {
        /// The protocol version of this link.
        protocol_version: u32,
    },
    /// The controller refused the agent.
    Refused {
        /// Why, as a code.
        reason: RefusalReason,
        /// Why, as the controller put it.
        message: String,
    },
    /// The link ended or could not be established.
    LinkLost {
        /// Why.
        reason: String,
    },
    /// The next connection attempt is due after this delay.
    ReconnectScheduled {
        /// The delay.
        after: Duration,
        /// How many attempts since the last welcome, this one included.
        attempt: u32,
    },
    /// Nothing came from the controller for `silence_factor` heartbeat
    /// intervals; the link is being dropped.
    LinkSilent,
    /// A new estimate of controller clock minus agent clock, reported the
    /// first time and then when it moves by [`CLOCK_OFFSET_STEP_MS`] or more.
    ClockOffset {
        /// The offset in milliseconds (positive: the controller is ahead).
        ms: i64,
    },
    /// The wall clock jumped; the plan's deadlines were computed again.
    ClockJumped {
        /// How far (positive: forward), in milliseconds.
        by_ms: i64,
    },
    /// A desired state was applied.
    PlanApplied {
        /// Its version.
        version: u64,
        /// How many entries it plans.
        entries: usize,
    },
    /// A desired state was refused as malformed; the previous one stays.
    PlanRejected {
        /// Its version.
        version: u64,
        /// Why.
        reason: String,
    },
    /// An occurrence got its play event (it is also persisted and uploaded).
    PlayLogged(PlayEvent),
    /// The amplifier driver failed to switch.
    AmplifierFailed {
        /// What was asked.
        command: AmplifierCommand,
        /// The driver's error.
        reason: String,
    },
    /// The amplifier was on for the longest time allowed and was switched
    /// off (with the audio, if any).
    AmplifierMaxOnTime {
        /// How long it had been on.
        on_for: Duration,
    },
    /// A signed command was refused (the refusal is also reported).
    CommandRefused(CommandRefusal),
    /// A live session took the loudspeaker.
    LiveStarted {
        /// The session.
        session_id: String,
        /// Paging or emergency.
        priority: Priority,
        /// Its title.
        title: String,
    },
    /// The controller started the session on the air again (after a
    /// reconnect); it plays on.
    LiveRejoined {
        /// The session.
        session_id: String,
    },
    /// A live session ended here.
    LiveEnded {
        /// The session.
        session_id: String,
        /// Why.
        reason: String,
    },
    /// A stop for a session that is not on the air here.
    LiveStopIgnored {
        /// The session named.
        session_id: String,
    },
}

/// Smallest change of the clock offset worth an event and a fresh status;
/// smaller changes are path jitter.
pub const CLOCK_OFFSET_STEP_MS: i64 = 1000;

/// The agent core. See the module documentation for the run-loop contract.
#[derive(Debug)]
pub struct AgentCore {
    config: CoreConfig,
    link: Link,
    status: StatusReport,
    timebase: Timebase,
    playback: Playback,
    live: Live,
    fx: Effects,
}

impl AgentCore {
    /// A core that has just started: it switches the amplifier off (fail-safe)
    /// and connects. Hand it the persisted state with [`AgentCore::restore`]
    /// before any other input.
    pub fn new(config: CoreConfig, now: Now) -> Self {
        let mut fx = Effects::default();
        fx.out.push_back(Output::SwitchAmplifier(AmplifierCommand::Off));
        let mut link = Link::new(&config);
        link.start(&mut fx);
        let playback = Playback::with_lead(config.playback_lead);
        let live = Live::new(PinnedKey::from_info(config.command_key.as_ref()));
        AgentCore { status: StatusReport::default(), link, config, timebase: Timebase::new(now), playback, live, fx }
    }

    /// What the shell persisted before the agent last stopped, and what its
    /// content cache holds. Entries already logged are never played again;
    /// those more than the grace period late are logged as missed.
    pub fn restore(&mut self, now: Now, restored: Restore) {
        self.observe(now);
        let ctx = Ctx::new(now, &self.timebase, &self.link);
        self.live.restore(restored.commands.clone());
        self.playback.restore(ctx, restored, &mut self.fx);
    }

    /// The link requested by [`Output::Connect`] is up: say hello.
    pub fn handle_link_up(&mut self, now: Now) {
        self.observe(now);
        self.link.handle_up(&self.config, now, &mut self.fx);
    }

    /// The link ended or could not be opened.
    pub fn handle_link_down(&mut self, now: Now, why: LinkDown) {
        self.observe(now);
        let news = self.link.handle_down(&self.config, now, why, &mut self.fx);
        self.apply(now, news);
    }

    /// A message arrived from the controller.
    pub fn handle_message(&mut self, now: Now, msg: ControllerMessage) {
        self.observe(now);
        let news = self.link.handle_message(&self.config, now, msg, &mut self.fx);
        self.apply(now, news);
        self.refresh_playing(now);
    }

    /// The shell read the devices; a status goes out if it changed.
    pub fn handle_device(&mut self, now: Now, snapshot: DeviceSnapshot) {
        self.observe(now);
        self.status.set_snapshot(snapshot);
        if self.link.state() == LinkState::Connected {
            self.status.send_if_changed(&self.config, now, self.link.clock_offset_ms(), &mut self.fx);
        }
    }

    /// News from the player about audio the core started.
    pub fn handle_playback(&mut self, now: Now, news: PlaybackNews) {
        self.observe(now);
        let ctx = Ctx::new(now, &self.timebase, &self.link);
        self.playback.handle_news(ctx, news, &mut self.fx);
        self.refresh_playing(now);
    }

    /// The amplifier driver's answer to [`Output::SwitchAmplifier`]: the state
    /// it confirmed, or its error.
    pub fn handle_amplifier(&mut self, now: Now, command: AmplifierCommand, result: Result<AmplifierState, String>) {
        self.observe(now);
        self.playback.handle_amplifier(command, result, &mut self.fx);
        let ctx = Ctx::new(now, &self.timebase, &self.link);
        self.live.amplifier_changed(ctx, &self.playback, &mut self.fx);
    }

    /// A binary frame of live stream `stream_id` arrived, with sequence
    /// number `seq` (the shell decoded it; the audio goes to the player).
    pub fn handle_live_frame(&mut self, now: Now, stream_id: u32, seq: u32) {
        self.observe(now);
        let ctx = Ctx::new(now, &self.timebase, &self.link);
        self.live.frame(ctx, stream_id, seq, &mut self.fx);
    }

    /// News from the player about the live stream the core started.
    pub fn handle_live(&mut self, now: Now, news: LiveNews) {
        self.observe(now);
        let ctx = Ctx::new(now, &self.timebase, &self.link);
        self.live.news(ctx, news, &mut self.playback, &mut self.fx);
        self.refresh_playing(now);
    }

    /// Tells the controller what plays now (a live session before a
    /// scheduled item) when that changed.
    fn refresh_playing(&mut self, now: Now) {
        let playing = self.live.now_playing().or_else(|| self.playback.now_playing());
        if self.status.set_playing(playing) && self.link.state() == LinkState::Connected {
            self.status.send_if_changed(&self.config, now, self.link.clock_offset_ms(), &mut self.fx);
        }
    }

    /// The live session on the air: its id and stream id.
    pub fn live_on_air(&self) -> Option<(&str, u32)> {
        self.live.on_air()
    }

    /// News about the content cache.
    pub fn handle_content(&mut self, now: Now, news: ContentNews) {
        self.observe(now);
        let ctx = Ctx::new(now, &self.timebase, &self.link);
        self.playback.handle_content(ctx, news, &mut self.fx);
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Now) {
        self.observe(now);
        for timer in self.fx.timers.due(now.mono) {
            // An earlier timer in this batch may have disarmed this one (a
            // silent link takes its heartbeat with it).
            if !self.fx.timers.is_due(timer, now.mono) {
                continue;
            }
            self.fx.timers.clear(timer);
            match timer {
                Timer::Reconnect | Timer::WelcomeTimeout | Timer::Heartbeat | Timer::Silence => {
                    let news = self.link.handle_timer(&self.config, now, timer, &mut self.fx);
                    self.apply(now, news);
                }
                Timer::Status => self.status.send(&self.config, now, self.link.clock_offset_ms(), &mut self.fx),
                Timer::LiveSilence | Timer::LiveMaxDuration => {
                    let ctx = Ctx::new(now, &self.timebase, &self.link);
                    self.live.timer(ctx, timer, &mut self.playback, &mut self.fx);
                }
                Timer::MaxOnTime => {
                    // The safety net switches the amplifier off, and ends
                    // a live session with it.
                    let ctx = Ctx::new(now, &self.timebase, &self.link);
                    self.playback.handle_timer(ctx, timer, &mut self.fx);
                    self.live.timer(ctx, timer, &mut self.playback, &mut self.fx);
                }
                Timer::EventsRetry
                | Timer::FetchRetry
                | Timer::ClockCheck
                | Timer::PlaybackOverrun
                | Timer::AmplifierOff
                | Timer::AmplifierOn
                | Timer::PlaybackStart => {
                    let ctx = Ctx::new(now, &self.timebase, &self.link);
                    self.playback.handle_timer(ctx, timer, &mut self.fx);
                }
            }
        }
        self.refresh_playing(now);
    }

    /// The next thing for the shell to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.fx.out.pop_front()
    }

    /// When [`AgentCore::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.fx.timers.next()
    }

    /// Where the link stands.
    pub fn link_state(&self) -> LinkState {
        self.link.state()
    }

    /// Controller clock minus agent clock from the latest heartbeat
    /// acknowledgement, in milliseconds.
    pub fn clock_offset_ms(&self) -> Option<i64> {
        self.link.clock_offset_ms()
    }

    /// The version of the applied desired state.
    pub fn applied_version(&self) -> Option<u64> {
        self.playback.desired().map(|d| d.version)
    }

    /// The play log: what has been logged and what awaits acknowledgement.
    pub fn play_log(&self) -> &PlayLog {
        self.playback.log.log()
    }

    /// Every input passes here first: a wall clock jump re-plans.
    fn observe(&mut self, now: Now) {
        if let Some(by_ms) = self.timebase.observe(now) {
            self.fx.event(CoreEvent::ClockJumped { by_ms });
            let ctx = Ctx::new(now, &self.timebase, &self.link);
            self.playback.replan(ctx, Why::ClockJump(by_ms), &mut self.fx);
        }
    }

    /// Lets the rest of the core react to what the link just did.
    fn apply(&mut self, now: Now, news: Option<LinkNews>) {
        let offset = self.link.clock_offset_ms();
        let ctx = Ctx::new(now, &self.timebase, &self.link);
        match news {
            None => {}
            Some(LinkNews::Welcomed) => {
                self.status.link_welcomed(&self.config, now, offset, &mut self.fx);
                self.playback.link_welcomed(ctx, &mut self.fx);
                self.live.link_welcomed(ctx, &self.playback, &mut self.fx);
            }
            Some(LinkNews::ClockOffsetMoved) => self.status.send_if_changed(&self.config, now, offset, &mut self.fx),
            Some(LinkNews::Lost) => {
                self.status.link_lost(&mut self.fx);
                self.playback.link_lost(&mut self.fx);
            }
            Some(LinkNews::DesiredState(state)) => self.playback.apply(ctx, *state, &mut self.fx),
            Some(LinkNews::EventsAcked(ack)) => self.playback.log.acked(ctx, ack.ids, &mut self.fx),
            Some(LinkNews::Command(command)) => {
                let agent_id = &self.config.agent_id;
                self.live.command(ctx, agent_id, offset, &command, &mut self.playback, &mut self.fx)
            }
        }
    }
}

/// What a part of the core needs to know about the moment of an input.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    now: Now,
    clock: &'a Timebase,
    connected: bool,
}

impl<'a> Ctx<'a> {
    fn new(now: Now, clock: &'a Timebase, link: &Link) -> Self {
        Ctx { now, clock, connected: link.state() == LinkState::Connected }
    }
}

/// What the parts of the core produce: outputs for the shell and deadlines.
#[derive(Debug, Default)]
struct Effects {
    out: VecDeque<Output>,
    timers: TimerTable,
}

impl Effects {
    fn event(&mut self, event: CoreEvent) {
        self.out.push_back(Output::Event(event));
    }

    fn send(&mut self, msg: AgentMessage) {
        self.out.push_back(Output::Send(msg));
    }
}

impl fmt::Display for LinkDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkDown::ConnectFailed(e) => write!(f, "connect failed: {e}"),
            LinkDown::AuthRejected(e) => write!(f, "authentication rejected: {e}"),
            LinkDown::Closed(e) => write!(f, "link closed: {e}"),
            LinkDown::ProtocolError(e) => write!(f, "protocol error: {e}"),
        }
    }
}

/// FNV-1a, 64 bits: spreads agent ids into jitter seeds.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod testing;

#[cfg(test)]
mod tests {
    use super::testing::Harness;
    use super::*;

    #[test]
    fn new_switches_the_amplifier_off_then_connects() {
        let mut h = Harness::new();
        assert_eq!(h.drain(), vec![Output::SwitchAmplifier(AmplifierCommand::Off), Output::Connect]);
        assert_eq!(h.core.link_state(), LinkState::Connecting);
        assert_eq!(h.core.poll_timeout(), None, "nothing is due while the shell connects");
    }

    #[test]
    fn default_seeds_differ_between_agents() {
        let a = CoreConfig::new("ag-1", "0.1.0", Hardware::default());
        let b = CoreConfig::new("ag-2", "0.1.0", Hardware::default());
        assert_ne!(a.jitter_seed, b.jitter_seed);
        assert_eq!(a.jitter_seed, CoreConfig::new("ag-1", "9", Hardware::default()).jitter_seed);
    }

    #[test]
    fn link_down_reasons_read_well() {
        let cases = [
            (LinkDown::ConnectFailed("refused".into()), "connect failed: refused"),
            (LinkDown::AuthRejected("401".into()), "authentication rejected: 401"),
            (LinkDown::Closed("eof".into()), "link closed: eof"),
            (LinkDown::ProtocolError("bad json".into()), "protocol error: bad json"),
        ];
        for (why, expected) in cases {
            assert_eq!(why.to_string(), expected);
        }
    }
}
