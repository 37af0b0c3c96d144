//! A deterministic network simulation of agent cores and a fake controller,
//! in the manner of str0m's `tests/common.rs`: no tokio, no sockets, no real
//! time. Events wait in a queue ordered by virtual time; [`Sim::drive_until`]
//! takes the earliest of the next event and the earliest agent deadline, moves
//! the clock there and handles it, until the target time.
//!
//! # Layout
//! - [`clock`]: the virtual clock (base `Instant` plus offset; wall time from a
//!   fixed epoch, skewed per agent).
//! - [`net`]: one path per agent with delay, jitter, loss, duplication and cuts.
//! - [`controller`]: the fake controller.

pub mod clock;
pub mod controller;
pub mod net;

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Duration;

use dalaba_agent::core::{AgentCore, CoreConfig, CoreEvent, DeviceSnapshot, LinkDown, LinkState, Output};
use dalaba_protocol::link::{AgentMessage, AmplifierState, ControllerMessage, Hardware};

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
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            agents: 1,
            seed: 1,
            path: PathConditions::default(),
            controller: ControllerConfig::default(),
            connect_timeout: Duration::from_secs(10),
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
    /// Every output of the core, with the simulated time it was polled.
    pub outputs: Vec<(Duration, Output)>,
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
    /// The controller's close (or reset) of `conn` reached the agent.
    ClosedByController {
        agent: usize,
        conn: ConnId,
        reason: &'static str,
    },
}

impl Event {
    fn agent(&self) -> usize {
        match *self {
            Event::Handshake { agent, .. }
            | Event::ToController { agent, .. }
            | Event::ClosedByAgent { agent, .. }
            | Event::ToAgent { agent, .. }
            | Event::ClosedByController { agent, .. } => agent,
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
                    core: AgentCore::new(core_config, clock.now(0)),
                    id,
                    skew_ms: 0,
                    path: Path::new(config.path.clone(), seed),
                    outputs: vec![],
                    conn: None,
                }
            })
            .collect();
        let controller = FakeController::new(config.controller.clone(), config.agents);
        let mut sim = Sim { clock, controller, agents, config, queue: BinaryHeap::new(), next_seq: 0, next_conn: 1 };
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
        while self.step(t) {}
        self.clock.advance_to(t.max(self.now()));
    }

    pub fn drive_for(&mut self, d: Duration) {
        self.drive_until(self.now() + d);
    }

    /// Runs until `done` holds or `deadline` passes; returns when it first held.
    pub fn run_until(&mut self, deadline: Duration, done: impl Fn(&Sim) -> bool) -> Option<Duration> {
        loop {
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

    /// Cuts agent `i`'s path from `from` for `duration`.
    pub fn cut(&mut self, i: usize, from: Duration, duration: Duration) {
        self.agents[i].path.cut(from, duration);
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
                Output::SwitchAmplifier(_) | Output::Event(_) => {}
            }
        }
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
