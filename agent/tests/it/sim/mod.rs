//! A deterministic network simulation of agent cores and a fake controller,
//! in the manner of str0m's `tests/common.rs`: no tokio, no sockets, no real
//! time. Events wait in a queue ordered by virtual time; [`Sim::drive_until`]
//! takes the earliest of the next event and the earliest agent deadline, moves
//! the clock there and handles it, until the target time.
//!
//! The sim plays each agent's shell: it carries the link, and fakes the
//! devices the core drives. The amplifier confirms every switch (or fails
//! them all); the player reports `Started` at once and `Finished` after the
//! content's duration (or never, when it hangs); the downloader puts content
//! in the cache after [`SimConfig::download_delay`]; persistence keeps the
//! latest [`Output::Persist`] of each kind, so [`Sim::restart`] can hand it
//! to a new core. Agents can be killed, restarted, and have their wall clock
//! jump.
//!
//! # Layout
//! - [`clock`]: the virtual clock (base `Instant` plus offset; wall time from a
//!   fixed epoch, skewed per agent).
//! - [`net`]: one path per agent with delay, jitter, loss, duplication and cuts.
//! - [`controller`]: the fake controller.
//! - [`plan`]: building desired states for the tests.

pub mod clock;
pub mod controller;
pub mod net;
pub mod plan;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use dalaba_agent::core::{
    AgentCore, AmplifierCommand, ContentNews, CoreConfig, CoreEvent, DeviceSnapshot, LinkDown, LinkState, LiveNews,
    Output, PersistRequest, PlaybackNews, Restore,
};
use dalaba_protocol::link::{AgentMessage, AmplifierState, ControllerMessage, Hardware};
use dalaba_protocol::state::DesiredState;

use clock::VirtualClock;
use controller::{ConnId, ControllerConfig, FakeController};
use net::{Dir, Path, PathConditions};

/// How a simulation is set up.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub agents: usize,
    /// Seeds every path; each agent's jitter seed comes from its id.
    pub seed: u64,
    pub path: PathConditions,
    pub controller: ControllerConfig,
    /// A connection attempt into a cut path fails after this long.
    pub connect_timeout: Duration,
    /// A fetch puts the content in the cache after this long.
    pub download_delay: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            agents: 1,
            seed: 1,
            path: PathConditions::default(),
            controller: ControllerConfig::default(),
            connect_timeout: Duration::from_secs(10),
            download_delay: Duration::from_secs(2),
        }
    }
}

/// One simulated village: an agent core, its path and what the shell saw.
#[derive(Debug)]
pub struct SimAgent {
    pub id: String,
    pub core: AgentCore,
    /// This agent's wall clock runs this far ahead of the controller's.
    pub skew_ms: i64,
    pub path: Path,
    /// Every output of the core, with the simulated time it was polled
    /// (across restarts).
    pub outputs: Vec<(Duration, Output)>,
    /// What the shell has on disk: the latest persisted plan and play log,
    /// and the content cache.
    pub disk: Restore,
    /// The fake amplifier driver fails every switch.
    pub amplifier_fails: bool,
    /// The fake player never reports the end of anything.
    pub player_hangs: bool,
    /// Whether the agent process runs.
    pub alive: bool,
    /// Counts process starts; news from a previous process is dropped.
    incarnation: u32,
    /// Counts playback starts; the fake player's news about audio stopped
    /// since is dropped, as the real player says nothing more about it.
    playing: u64,
    config: CoreConfig,
    /// The connection the shell holds (being opened or open).
    conn: Option<ConnId>,
}

impl SimAgent {
    pub fn events(&self) -> Vec<(Duration, CoreEvent)> {
        let events = self.outputs.iter().filter_map(|(t, o)| match o {
            Output::Event(e) => Some((*t, e.clone())),
            _ => None,
        });
        events.collect()
    }

    /// When the core asked to connect.
    pub fn connects(&self) -> Vec<Duration> {
        self.outputs.iter().filter(|(_, o)| matches!(o, Output::Connect)).map(|(t, _)| *t).collect()
    }

    /// When the amplifier was switched, and how.
    pub fn switches(&self) -> Vec<(Duration, AmplifierCommand)> {
        let switches = self.outputs.iter().filter_map(|(t, o)| match o {
            Output::SwitchAmplifier(cmd) => Some((*t, *cmd)),
            _ => None,
        });
        switches.collect()
    }

    /// When each piece of audio was started: (time, entry id, part).
    pub fn starts(&self) -> Vec<(Duration, String, usize)> {
        let starts = self.outputs.iter().filter_map(|(t, o)| match o {
            Output::StartPlayback { entry_id, part, .. } => Some((*t, entry_id.clone(), *part)),
            _ => None,
        });
        starts.collect()
    }

    /// The delays of every reconnect the core scheduled.
    pub fn reconnect_delays(&self) -> Vec<(Duration, Duration, u32)> {
        let delays = self.events().into_iter().filter_map(|(t, e)| match e {
            CoreEvent::ReconnectScheduled { after, attempt } => Some((t, after, attempt)),
            _ => None,
        });
        delays.collect()
    }
}

/// Something that happens at a simulated time.
#[derive(Debug)]
enum Event {
    /// The handshake of `conn` finished (or timed out).
    Handshake {
        agent: usize,
        conn: ConnId,
        timed_out: bool,
    },
    ToController {
        agent: usize,
        conn: ConnId,
        msg: AgentMessage,
    },
    /// The agent's close of `conn` reached the controller.
    ClosedByAgent {
        agent: usize,
        conn: ConnId,
    },
    ToAgent {
        agent: usize,
        conn: ConnId,
        msg: ControllerMessage,
    },
    /// A binary frame of a live stream reached the agent.
    LiveFrame {
        agent: usize,
        conn: ConnId,
        stream_id: u32,
        seq: u32,
    },
    /// The controller's close (or reset) of `conn` reached the agent.
    ClosedByController {
        agent: usize,
        conn: ConnId,
        reason: &'static str,
    },
    /// The fake devices of one agent process report.
    Device {
        agent: usize,
        incarnation: u32,
        news: DeviceNews,
    },
}

#[derive(Debug)]
enum DeviceNews {
    Amplifier(AmplifierCommand, Result<AmplifierState, String>),
    /// News about the playback numbered so.
    Player(PlaybackNews, u64),
    Live(LiveNews),
    Content(ContentNews),
}

impl Event {
    fn agent(&self) -> usize {
        match *self {
            Event::Handshake { agent, .. }
            | Event::ToController { agent, .. }
            | Event::ClosedByAgent { agent, .. }
            | Event::ToAgent { agent, .. }
            | Event::LiveFrame { agent, .. }
            | Event::ClosedByController { agent, .. }
            | Event::Device { agent, .. } => agent,
        }
    }
}

/// An event in the queue; ties in time keep insertion order.
#[derive(Debug)]
struct Scheduled {
    at: Duration,
    seq: u64,
    event: Event,
}

pub struct Sim {
    pub clock: VirtualClock,
    pub controller: FakeController,
    pub agents: Vec<SimAgent>,
    /// Playing time of every content item the fake player knows.
    pub durations: BTreeMap<String, u64>,
    config: SimConfig,
    queue: BinaryHeap<Scheduled>,
    next_seq: u64,
    next_conn: ConnId,
}

impl Sim {
    /// Starts every agent at time zero with a first device reading.
    pub fn new(config: SimConfig) -> Self {
        Self::with_agents(config, |_, _| {})
    }

    /// Like [`Sim::new`], letting `adjust` change each agent's core config.
    pub fn with_agents(config: SimConfig, adjust: impl Fn(usize, &mut CoreConfig)) -> Self {
        let clock = VirtualClock::new();
        let agents = (0..config.agents)
            .map(|i| {
                let id = format!("ag-{i}");
                let mut core_config = CoreConfig::new(id.clone(), "0.1.0", simulated_hardware());
                adjust(i, &mut core_config);
                let seed = config.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
                SimAgent {
                    core: AgentCore::new(core_config.clone(), clock.now(0)),
                    id,
                    skew_ms: 0,
                    path: Path::new(config.path.clone(), seed),
                    outputs: vec![],
                    disk: Restore::default(),
                    amplifier_fails: false,
                    player_hangs: false,
                    alive: true,
                    incarnation: 0,
                    playing: 0,
                    config: core_config,
                    conn: None,
                }
            })
            .collect();
        let controller = FakeController::new(config.controller.clone(), config.agents);
        let mut sim = Sim {
            clock,
            controller,
            agents,
            durations: BTreeMap::new(),
            config,
            queue: BinaryHeap::new(),
            next_seq: 0,
            next_conn: 1,
        };
        for i in 0..sim.agents.len() {
            sim.set_device(i, device(AmplifierState::Off, 1 << 30));
        }
        sim
    }

    /// Simulated time so far.
    pub fn now(&self) -> Duration {
        self.clock.elapsed()
    }

    pub fn agent(&self, i: usize) -> &SimAgent {
        &self.agents[i]
    }

    /// Runs every event and deadline up to and including `t`.
    pub fn drive_until(&mut self, t: Duration) {
        let mut steps = 0u64;
        while self.step(t) {
            settle_guard(&mut steps, self.now());
        }
        self.clock.advance_to(t.max(self.now()));
    }

    pub fn drive_for(&mut self, d: Duration) {
        self.drive_until(self.now() + d);
    }

    /// Runs until `done` holds or `deadline` passes; returns when it first held.
    pub fn run_until(&mut self, deadline: Duration, done: impl Fn(&Sim) -> bool) -> Option<Duration> {
        let mut steps = 0u64;
        loop {
            settle_guard(&mut steps, self.now());
            if done(self) {
                return Some(self.now());
            }
            if !self.step(deadline) {
                self.clock.advance_to(deadline.max(self.now()));
                return done(self).then(|| self.now());
            }
        }
    }

    /// The shell read agent `i`'s devices now.
    pub fn set_device(&mut self, i: usize, snapshot: DeviceSnapshot) {
        let now = self.clock.now(self.agents[i].skew_ms);
        self.agents[i].core.handle_device(now, snapshot);
        self.pump(i);
    }

    /// Gives agent `i` a new desired state at the controller, pushed at once
    /// when the agent is connected, and teaches the fake player its content.
    pub fn publish(&mut self, i: usize, state: DesiredState) {
        for c in &state.content {
            self.durations.insert(c.sha256.clone(), c.duration_ms);
        }
        let t = self.now();
        if let Some((conn, msg)) = self.controller.set_desired(t, i, state) {
            for at in self.agents[i].path.transmit(Dir::Down, t) {
                self.schedule(at, Event::ToAgent { agent: i, conn, msg: msg.clone() });
            }
        }
    }

    /// Kills agent `i`'s process: the operating system closes its socket,
    /// its devices fall silent, nothing is written any more.
    pub fn kill(&mut self, i: usize) {
        let t = self.now();
        let agent = &mut self.agents[i];
        agent.alive = false;
        agent.incarnation += 1;
        if let Some(conn) = agent.conn.take()
            && let Some(at) = agent.path.transmit_close(Dir::Up, t)
        {
            self.schedule(at, Event::ClosedByAgent { agent: i, conn });
        }
    }

    /// Starts agent `i`'s process again: a new core, restored from its disk.
    pub fn restart(&mut self, i: usize) {
        let now = self.clock.now(self.agents[i].skew_ms);
        let agent = &mut self.agents[i];
        agent.alive = true;
        agent.incarnation += 1;
        agent.conn = None;
        agent.core = AgentCore::new(agent.config.clone(), now);
        agent.core.restore(now, agent.disk.clone());
        self.pump(i);
        self.set_device(i, device(AmplifierState::Off, 1 << 30));
    }

    /// Agent `i`'s wall clock jumps by `by_ms` (an NTP sync, say).
    pub fn jump_clock(&mut self, i: usize, by_ms: i64) {
        self.agents[i].skew_ms += by_ms;
    }

    /// Cuts agent `i`'s path from `from` for `duration`.
    pub fn cut(&mut self, i: usize, from: Duration, duration: Duration) {
        self.agents[i].path.cut(from, duration);
    }

    /// The controller sends `msg` to agent `i` now, on its link (if any).
    pub fn send_to_agent(&mut self, i: usize, msg: ControllerMessage) {
        let t = self.now();
        let Some(conn) = self.agents[i].conn else { return };
        for at in self.agents[i].path.transmit(Dir::Down, t) {
            self.schedule(at, Event::ToAgent { agent: i, conn, msg: msg.clone() });
        }
    }

    /// The controller streams `count` frames of `stream_id` to agent `i`,
    /// one every `every` from now, numbered from `first_seq`, over the
    /// agent's path (delayed, lost or repeated as it says).
    pub fn stream(&mut self, i: usize, stream_id: u32, first_seq: u32, count: u32, every: Duration) {
        let Some(conn) = self.agents[i].conn else { return };
        let t0 = self.now();
        for k in 0..count {
            let sent = t0 + every * k;
            for at in self.agents[i].path.transmit(Dir::Down, sent) {
                let seq = first_seq.wrapping_add(k);
                self.schedule(at, Event::LiveFrame { agent: i, conn, stream_id, seq });
            }
        }
    }

    /// Stops the controller now: live links are reset, connections refused.
    pub fn controller_down(&mut self) {
        let t = self.now();
        for (conn, agent) in self.controller.go_down() {
            if let Some(at) = self.agents[agent].path.transmit_close(Dir::Down, t) {
                self.schedule(at, Event::ClosedByController { agent, conn, reason: "connection reset" });
            }
        }
    }

    pub fn controller_up(&mut self) {
        self.controller.come_up();
    }

    /// Whether every agent's core is connected.
    pub fn all_connected(&self) -> bool {
        self.agents.iter().all(|a| a.core.link_state() == LinkState::Connected)
    }

    /// Handles the earliest event or deadline if it is due by `limit`.
    fn step(&mut self, limit: Duration) -> bool {
        let next_event = self.queue.peek().map(|s| s.at);
        let next_timer = self
            .agents
            .iter()
            .enumerate()
            .filter(|(_, a)| a.alive)
            .filter_map(|(i, a)| a.core.poll_timeout().map(|at| (self.clock.offset_of(at), i)))
            .min();
        match (next_event, next_timer) {
            (Some(at), timer) if at <= limit && timer.is_none_or(|(t, _)| at <= t) => {
                self.clock.advance_to(at.max(self.now()));
                let scheduled = self.queue.pop().expect("peeked");
                self.handle(scheduled.event);
                true
            }
            (_, Some((at, i))) if at <= limit => {
                self.clock.advance_to(at.max(self.now()));
                let now = self.clock.now(self.agents[i].skew_ms);
                self.agents[i].core.handle_timeout(now);
                self.pump(i);
                true
            }
            _ => false,
        }
    }

    fn handle(&mut self, event: Event) {
        let t = self.now();
        let i = event.agent();
        let agent_now = self.clock.now(self.agents[i].skew_ms);
        match event {
            Event::Device { incarnation, .. } if incarnation != self.agents[i].incarnation => {}
            Event::Device { news, .. } => {
                let playing = self.agents[i].playing;
                let core = &mut self.agents[i].core;
                match news {
                    DeviceNews::Amplifier(cmd, result) => core.handle_amplifier(agent_now, cmd, result),
                    DeviceNews::Player(news, n) if n == playing => core.handle_playback(agent_now, news),
                    DeviceNews::Player(..) => {}
                    DeviceNews::Live(news) => core.handle_live(agent_now, news),
                    DeviceNews::Content(news) => {
                        if let ContentNews::Cached { sha256 } = &news {
                            self.agents[i].disk.cached.insert(sha256.clone());
                        }
                        self.agents[i].core.handle_content(agent_now, news);
                    }
                }
                self.pump(i);
            }
            Event::Handshake { conn, .. } if self.agents[i].conn != Some(conn) => {}
            Event::Handshake { conn, timed_out, .. } => {
                let failure = if timed_out || self.agents[i].path.is_cut(t) {
                    Some(LinkDown::ConnectFailed("connection timed out".into()))
                } else if !self.controller.accept(conn, i, &self.agents[i].id.clone()) {
                    Some(LinkDown::ConnectFailed("connection refused".into()))
                } else {
                    None
                };
                match failure {
                    Some(why) => {
                        self.agents[i].conn = None;
                        self.agents[i].core.handle_link_down(agent_now, why);
                    }
                    None => self.agents[i].core.handle_link_up(agent_now),
                }
                self.pump(i);
            }
            Event::ToController { conn, msg, .. } => {
                if self.agents[i].path.is_cut(t) {
                    return;
                }
                let reply = self.controller.receive(t, self.clock.wall_ms(0), conn, msg);
                for msg in reply.messages {
                    for at in self.agents[i].path.transmit(Dir::Down, t) {
                        self.schedule(at, Event::ToAgent { agent: i, conn, msg: msg.clone() });
                    }
                }
                if reply.close
                    && let Some(at) = self.agents[i].path.transmit_close(Dir::Down, t)
                {
                    self.schedule(at, Event::ClosedByController { agent: i, conn, reason: "closed by controller" });
                }
            }
            Event::ClosedByAgent { conn, .. } => self.controller.closed(conn),
            Event::ToAgent { conn, msg, .. } => {
                if self.agents[i].conn == Some(conn) && !self.agents[i].path.is_cut(t) {
                    self.agents[i].core.handle_message(agent_now, msg);
                    self.pump(i);
                }
            }
            Event::LiveFrame { conn, stream_id, seq, .. } => {
                if self.agents[i].conn == Some(conn) && !self.agents[i].path.is_cut(t) {
                    self.agents[i].core.handle_live_frame(agent_now, stream_id, seq);
                    self.pump(i);
                }
            }
            Event::ClosedByController { conn, reason, .. } => {
                if self.agents[i].conn == Some(conn) && !self.agents[i].path.is_cut(t) {
                    self.agents[i].conn = None;
                    self.agents[i].core.handle_link_down(agent_now, LinkDown::Closed(reason.into()));
                    self.pump(i);
                }
            }
        }
    }

    /// Plays the shell for agent `i`: carries out every output.
    fn pump(&mut self, i: usize) {
        let t = self.now();
        while let Some(output) = self.agents[i].core.poll_output() {
            self.agents[i].outputs.push((t, output.clone()));
            match output {
                Output::Connect => {
                    let conn = self.next_conn;
                    self.next_conn += 1;
                    self.agents[i].conn = Some(conn);
                    let path = &mut self.agents[i].path;
                    let (at, timed_out) = if path.is_cut(t) {
                        (t + self.config.connect_timeout, true)
                    } else {
                        // TCP, then TLS, then the WebSocket upgrade: about
                        // three round trips.
                        (t + (0..6).map(|_| path.one_way()).sum::<Duration>(), false)
                    };
                    self.schedule(at, Event::Handshake { agent: i, conn, timed_out });
                }
                Output::Send(msg) => {
                    let Some(conn) = self.agents[i].conn else {
                        continue;
                    };
                    for at in self.agents[i].path.transmit(Dir::Up, t) {
                        self.schedule(at, Event::ToController { agent: i, conn, msg: msg.clone() });
                    }
                }
                Output::Disconnect { .. } => {
                    if let Some(conn) = self.agents[i].conn.take() {
                        if let Some(at) = self.agents[i].path.transmit_close(Dir::Up, t) {
                            self.schedule(at, Event::ClosedByAgent { agent: i, conn });
                        }
                        let now = self.clock.now(self.agents[i].skew_ms);
                        self.agents[i].core.handle_link_down(now, LinkDown::Closed("closed by agent".into()));
                    }
                }
                Output::SwitchAmplifier(cmd) => {
                    let result = if self.agents[i].amplifier_fails {
                        Err("relay board did not answer".to_string())
                    } else {
                        Ok(match cmd {
                            AmplifierCommand::On => AmplifierState::On,
                            AmplifierCommand::Off => AmplifierState::Off,
                        })
                    };
                    self.device_news(i, t, DeviceNews::Amplifier(cmd, result));
                }
                Output::StartPlayback { entry_id, part, sha256, duration_ms, .. } => {
                    self.agents[i].playing += 1;
                    let n = self.agents[i].playing;
                    let at_ms = self.clock.wall_ms(self.agents[i].skew_ms);
                    let started = PlaybackNews::Started { entry_id: entry_id.clone(), part, at_ms };
                    self.device_news(i, t, DeviceNews::Player(started, n));
                    // It plays what is left (less than the content when resumed).
                    let news = match self.durations.get(&sha256) {
                        _ if self.agents[i].player_hangs => None,
                        Some(ms) => Some((
                            t + Duration::from_millis((*ms).min(duration_ms)),
                            PlaybackNews::Finished { entry_id, part },
                        )),
                        None => Some((t, PlaybackNews::Failed { entry_id, part, reason: "cannot decode".into() })),
                    };
                    if let Some((at, news)) = news {
                        self.device_news(i, at, DeviceNews::Player(news, n));
                    }
                }
                Output::StopPlayback { .. } => self.agents[i].playing += 1,
                Output::StartLive { session_id, at_ms, .. } => {
                    let now_ms = self.clock.wall_ms(self.agents[i].skew_ms);
                    let at = t + Duration::from_millis(u64::try_from(at_ms - now_ms).unwrap_or(0));
                    let at_ms = at_ms.max(now_ms);
                    self.device_news(i, at, DeviceNews::Live(LiveNews::Started { session_id, at_ms }));
                }
                Output::StopLive { .. } => {}
                Output::Persist(PersistRequest::Commands(seen)) => self.agents[i].disk.commands = seen,
                Output::Fetch { sha256, .. } => {
                    let at = t + self.config.download_delay;
                    self.device_news(i, at, DeviceNews::Content(ContentNews::Cached { sha256 }));
                }
                Output::Persist(PersistRequest::DesiredState(state)) => self.agents[i].disk.desired = Some(*state),
                Output::Persist(PersistRequest::PlayLog(log)) => self.agents[i].disk.play_log = log,
                Output::Event(_) => {}
            }
        }
    }

    fn device_news(&mut self, i: usize, at: Duration, news: DeviceNews) {
        let incarnation = self.agents[i].incarnation;
        self.schedule(at, Event::Device { agent: i, incarnation, news });
    }

    fn schedule(&mut self, at: Duration, event: Event) {
        self.next_seq += 1;
        self.queue.push(Scheduled { at, seq: self.next_seq, event });
    }
}

/// A device reading with this amplifier state and free disk.
pub fn device(amplifier: AmplifierState, disk_free_bytes: u64) -> DeviceSnapshot {
    DeviceSnapshot { disk_free_bytes, cache_bytes: 0, amplifier, now_playing: None }
}

fn simulated_hardware() -> Hardware {
    Hardware {
        model: "simulated".into(),
        arch: std::env::consts::ARCH.into(),
        os: "simulation".into(),
        audio_output: "null".into(),
        amplifier_driver: "simulated".into(),
    }
}

// The queue is a max-heap: the earliest event must compare greatest.
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Scheduled {}

/// Most events one drive may process. A core that keeps scheduling work for
/// the same instant would otherwise hang the test instead of failing it.
const MAX_STEPS: u64 = 20_000_000;

fn settle_guard(steps: &mut u64, now: Duration) {
    *steps += 1;
    assert!(
        *steps <= MAX_STEPS,
        "the simulation did not settle by {now:?}: {MAX_STEPS} events without reaching the deadline (a livelock in the core?)"
    );
}
