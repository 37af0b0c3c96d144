//! A fake controller that speaks the link protocol and remembers what each
//! agent told it.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use dalaba_protocol::link::{
    AgentMessage, AgentStatus, ControllerMessage, Heartbeat, HeartbeatAck, Refusal, RefusalReason, Welcome,
};
use dalaba_protocol::live::{CommandRefusal, LiveReport};
use dalaba_protocol::state::{DesiredState, PlayEvent, PlayEventsAck, SyncReport};
use dalaba_protocol::{MIN_SUPPORTED_VERSION, PROTOCOL_VERSION};

/// Identifies one connection, on both sides.
pub type ConnId = u64;

/// How the fake controller behaves.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// The interval named in every welcome.
    pub heartbeat_interval_ms: u64,
    /// Protocol versions it accepts; others are refused.
    pub accepts: RangeInclusive<u32>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig { heartbeat_interval_ms: 15_000, accepts: MIN_SUPPORTED_VERSION..=PROTOCOL_VERSION }
    }
}

/// What the controller saw of one agent, with the simulated time of each.
#[derive(Clone, Debug, Default)]
pub struct AgentRecord {
    pub hellos: Vec<Duration>,
    pub welcomes: Vec<Duration>,
    pub refusals: Vec<Duration>,
    pub heartbeats: Vec<(Duration, Heartbeat)>,
    pub statuses: Vec<(Duration, AgentStatus)>,
    pub syncs: Vec<(Duration, SyncReport)>,
    /// Play events as stored: once per id, with the time first received.
    pub events: BTreeMap<String, (Duration, PlayEvent)>,
    /// Events received again after they were stored.
    pub duplicate_events: usize,
    /// Desired states sent, with their versions.
    pub desired_sent: Vec<(Duration, u64)>,
    /// Live session reports, as received.
    pub live: Vec<(Duration, LiveReport)>,
    /// Refused commands, as received.
    pub refused: Vec<(Duration, CommandRefusal)>,
}

impl AgentRecord {
    /// The latest sync report.
    pub fn last_sync(&self) -> Option<&SyncReport> {
        self.syncs.last().map(|(_, r)| r)
    }
}

/// What the controller does in answer to one message.
#[derive(Debug, Default)]
pub struct Reply {
    pub messages: Vec<ControllerMessage>,
    /// Close the connection after the messages.
    pub close: bool,
}

#[derive(Debug)]
struct Conn {
    agent: usize,
    agent_id: String,
    hello_seen: bool,
    welcomed: bool,
}

#[derive(Debug)]
pub struct FakeController {
    pub config: ControllerConfig,
    down: bool,
    mute: bool,
    conns: BTreeMap<ConnId, Conn>,
    records: Vec<AgentRecord>,
    /// Each agent's desired state, sent after every welcome and again until
    /// the agent reports it (reconciliation).
    desired: Vec<Option<DesiredState>>,
}

impl FakeController {
    pub fn new(config: ControllerConfig, agents: usize) -> Self {
        FakeController {
            config,
            down: false,
            mute: false,
            conns: BTreeMap::new(),
            records: vec![AgentRecord::default(); agents],
            desired: vec![None; agents],
        }
    }

    /// Stops the process: every live connection is dropped and returned.
    pub fn go_down(&mut self) -> Vec<(ConnId, usize)> {
        self.down = true;
        std::mem::take(&mut self.conns).into_iter().map(|(id, c)| (id, c.agent)).collect()
    }

    pub fn come_up(&mut self) {
        self.down = false;
    }

    /// Keeps connections open but stops answering anything.
    pub fn go_mute(&mut self) {
        self.mute = true;
    }

    pub fn unmute(&mut self) {
        self.mute = false;
    }

    /// A connection from `agent` (authenticated as `agent_id`) finished its
    /// handshake. Returns false when the controller is down.
    pub fn accept(&mut self, conn: ConnId, agent: usize, agent_id: &str) -> bool {
        if self.down {
            return false;
        }
        // A new session from an agent replaces any old one the controller
        // still holds (its close may have been lost in a cut).
        self.conns.retain(|_, c| c.agent != agent);
        self.conns.insert(conn, Conn { agent, agent_id: agent_id.into(), hello_seen: false, welcomed: false });
        true
    }

    /// The agent closed `conn`.
    pub fn closed(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }

    /// Sets `agent`'s desired state. Returns the connection to push it on now,
    /// if the agent holds a welcomed one.
    pub fn set_desired(
        &mut self,
        t: Duration,
        agent: usize,
        state: DesiredState,
    ) -> Option<(ConnId, ControllerMessage)> {
        let version = state.version;
        self.desired[agent] = Some(state.clone());
        if self.down || self.mute {
            return None;
        }
        let conn = self.conns.iter().find(|(_, c)| c.agent == agent && c.welcomed).map(|(id, _)| *id)?;
        self.records[agent].desired_sent.push((t, version));
        Some((conn, ControllerMessage::DesiredState(state)))
    }

    /// The desired state, when `agent` has not reported it yet.
    fn unreported_desired(&mut self, t: Duration, agent: usize) -> Option<ControllerMessage> {
        let state = self.desired[agent].as_ref()?;
        let reported = self.records[agent].last_sync().is_some_and(|r| r.version >= state.version);
        if reported {
            return None;
        }
        self.records[agent].desired_sent.push((t, state.version));
        Some(ControllerMessage::DesiredState(state.clone()))
    }

    /// A message arrived at simulated time `t`, controller wall clock `wall_ms`.
    pub fn receive(&mut self, t: Duration, wall_ms: i64, conn_id: ConnId, msg: AgentMessage) -> Reply {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return Reply::default();
        };
        if self.mute {
            return Reply::default();
        }
        let record = &mut self.records[conn.agent];
        match msg {
            // The network may repeat a hello; one answer is enough.
            AgentMessage::Hello(_) if conn.hello_seen => Reply::default(),
            AgentMessage::Hello(hello) => {
                conn.hello_seen = true;
                record.hellos.push(t);
                if !self.config.accepts.contains(&hello.protocol_version) {
                    record.refusals.push(t);
                    self.conns.remove(&conn_id);
                    let refusal = Refusal {
                        reason: RefusalReason::UnsupportedVersion,
                        message: format!("protocol version {} is not supported", hello.protocol_version),
                    };
                    return Reply { messages: vec![ControllerMessage::Refused(refusal)], close: true };
                }
                conn.welcomed = true;
                record.welcomes.push(t);
                let welcome = Welcome {
                    protocol_version: hello.protocol_version,
                    agent_id: conn.agent_id.clone(),
                    heartbeat_interval_ms: self.config.heartbeat_interval_ms,
                    controller_time_ms: wall_ms,
                };
                let agent = conn.agent;
                let mut messages = vec![ControllerMessage::Welcome(welcome)];
                if let Some(state) = self.desired[agent].clone() {
                    self.records[agent].desired_sent.push((t, state.version));
                    messages.push(ControllerMessage::DesiredState(state));
                }
                Reply { messages, close: false }
            }
            AgentMessage::Heartbeat(_)
            | AgentMessage::Status(_)
            | AgentMessage::Sync(_)
            | AgentMessage::PlayEvents(_)
            | AgentMessage::Live(_)
            | AgentMessage::CommandRefused(_)
                if !conn.welcomed =>
            {
                self.conns.remove(&conn_id);
                let refusal = Refusal { reason: RefusalReason::HelloExpected, message: "say hello first".into() };
                Reply { messages: vec![ControllerMessage::Refused(refusal)], close: true }
            }
            AgentMessage::Heartbeat(hb) => {
                record.heartbeats.push((t, hb));
                let ack = HeartbeatAck { seq: hb.seq, agent_sent_at_ms: hb.sent_at_ms, controller_time_ms: wall_ms };
                let agent = conn.agent;
                let mut messages = vec![ControllerMessage::HeartbeatAck(ack)];
                messages.extend(self.unreported_desired(t, agent));
                Reply { messages, close: false }
            }
            AgentMessage::Status(status) => {
                record.statuses.push((t, status));
                Reply::default()
            }
            AgentMessage::Sync(report) => {
                record.syncs.push((t, report));
                Reply::default()
            }
            AgentMessage::Live(report) => {
                record.live.push((t, report));
                Reply::default()
            }
            AgentMessage::CommandRefused(refusal) => {
                record.refused.push((t, refusal));
                Reply::default()
            }
            AgentMessage::PlayEvents(batch) => {
                let mut ids = Vec::new();
                for event in batch.events {
                    ids.push(event.id.clone());
                    if record.events.contains_key(&event.id) {
                        record.duplicate_events += 1;
                    } else {
                        record.events.insert(event.id.clone(), (t, event));
                    }
                }
                Reply { messages: vec![ControllerMessage::PlayEventsAck(PlayEventsAck { ids })], close: false }
            }
        }
    }

    /// What the controller saw of `agent`.
    pub fn record(&self, agent: usize) -> &AgentRecord {
        &self.records[agent]
    }

    /// Whether `agent` holds a welcomed connection.
    pub fn is_present(&self, agent: usize) -> bool {
        self.conns.values().any(|c| c.agent == agent && c.welcomed)
    }
}
