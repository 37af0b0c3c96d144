//! What a live session looks like to operators, as plain data: its report
//! while it runs and after it ends, each agent's state in it, and the events
//! dashboards receive. The store keeps reports in this shape.

use dalaba_protocol::live::RefusalCode;
use serde::{Deserialize, Serialize};

use super::LivePriority;

/// A session and every targeted agent's part in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionReport {
    /// The session's id.
    pub session_id: String,
    /// What operators call it.
    pub title: String,
    /// Paging or emergency.
    pub priority: LivePriority,
    /// Where the audio comes from: `library_item:<id>`, `text`,
    /// `microphone` or `audio`.
    pub source: String,
    /// Who started it: `operator`, `alert:<identifier>`, `token:<name>`.
    pub started_by: String,
    /// The targets as requested (JSON of `dalaba_schedules::Targets`).
    pub targets: serde_json::Value,
    /// The villages the targets reached when it started.
    pub villages: Vec<i64>,
    /// Volume, 0–100.
    pub volume: u8,
    /// When it started (controller clock, Unix ms).
    pub started_at_ms: i64,
    /// When it ended, if it has.
    pub ended_at_ms: Option<i64>,
    /// Why it ended: "stopped by …", "played out", "max duration", ….
    pub end_reason: Option<String>,
    /// Frames the source produced.
    pub frames_sent: u64,
    /// How many agents stand where (for lists, which leave out `agents`).
    #[serde(default)]
    pub counts: AgentCounts,
    /// Each targeted agent, by id. Left empty in session lists.
    pub agents: Vec<AgentReport>,
}

/// One agent's part in a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReport {
    /// The agent.
    pub agent_id: String,
    /// Its village.
    pub village_id: i64,
    /// Where it stands now (or stood at the end).
    #[serde(flatten)]
    pub state: AgentState,
    /// First sample played (agent clock, Unix ms), if any.
    pub playing_from_ms: Option<i64>,
    /// When it stopped playing (agent clock, Unix ms).
    pub playing_to_ms: Option<i64>,
    /// Frames the controller queued for it.
    pub frames_sent: u64,
    /// Frames dropped from its queue because its link was slow.
    pub frames_dropped: u64,
    /// Frames the agent played, as it reported at the end.
    pub frames_received: Option<u64>,
    /// Frames missing by sequence number, as the agent reported at the end.
    pub frames_lost: Option<u64>,
    /// The agent's refusal of a command, if it refused one.
    pub refusal: Option<String>,
}

/// One agent's state in a session, as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AgentState {
    /// Not connected: it joins if it reconnects while the session is live.
    Offline,
    /// The start command is on its way; no answer yet.
    Sent,
    /// Accepted: the amplifier is warming up, audio is arriving.
    Receiving {
        /// Whether the amplifier confirmed on.
        amplifier_on: bool,
    },
    /// Audio is coming out of the loudspeaker.
    Playing {
        /// Whether the amplifier confirmed on.
        amplifier_on: bool,
    },
    /// The agent refused the start command.
    Refused {
        /// Why, as a code.
        reason: RefusalCode,
        /// Why, for the operator.
        message: String,
    },
    /// A more important session took this agent's village.
    Preempted {
        /// That session.
        by: String,
    },
    /// The session is over on this agent.
    Ended {
        /// Why, as the agent or the controller said.
        reason: String,
    },
}

impl AgentState {
    /// Whether the agent still takes part (frames are sent to it, it
    /// rejoins on reconnect).
    pub fn is_taking_part(&self) -> bool {
        matches!(
            self,
            AgentState::Offline | AgentState::Sent | AgentState::Receiving { .. } | AgentState::Playing { .. }
        )
    }

    /// The state's name, as stored.
    pub fn name(&self) -> &'static str {
        match self {
            AgentState::Offline => "offline",
            AgentState::Sent => "sent",
            AgentState::Receiving { .. } => "receiving",
            AgentState::Playing { .. } => "playing",
            AgentState::Refused { .. } => "refused",
            AgentState::Preempted { .. } => "preempted",
            AgentState::Ended { .. } => "ended",
        }
    }
}

impl SessionReport {
    /// The agent's entry, if the session targets it.
    pub fn agent(&self, agent_id: &str) -> Option<&AgentReport> {
        let i = self.agents.binary_search_by(|a| a.agent_id.as_str().cmp(agent_id)).ok()?;
        self.agents.get(i)
    }

    /// The agent's entry, mutable.
    pub fn agent_mut(&mut self, agent_id: &str) -> Option<&mut AgentReport> {
        let i = self.agents.binary_search_by(|a| a.agent_id.as_str().cmp(agent_id)).ok()?;
        self.agents.get_mut(i)
    }

    /// A copy without the agents, for lists.
    pub fn summary(&self) -> SessionReport {
        SessionReport { agents: Vec::new(), ..self.clone() }
    }
}

/// How many of a session's agents stand where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AgentCounts {
    /// Agents targeted.
    pub total: u64,
    /// Agents that played any of it.
    pub played: u64,
    /// Agents playing now.
    pub playing: u64,
    /// Agents offline now.
    pub offline: u64,
    /// Agents that refused it.
    pub refused: u64,
    /// Agents taken by a more important session.
    pub preempted: u64,
}

impl AgentCounts {
    /// Counts `agents`.
    pub fn of(agents: &[AgentReport]) -> AgentCounts {
        let mut c = AgentCounts { total: agents.len() as u64, ..AgentCounts::default() };
        for a in agents {
            c.played += u64::from(a.playing_from_ms.is_some());
            match a.state {
                AgentState::Playing { .. } => c.playing += 1,
                AgentState::Offline => c.offline += 1,
                AgentState::Refused { .. } => c.refused += 1,
                AgentState::Preempted { .. } => c.preempted += 1,
                _ => {}
            }
        }
        c
    }
}

/// A change dashboards hear about on the event stream (SSE event `live`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A session started or ended (its summary, without agents).
    Session {
        /// The session.
        session: SessionReport,
    },
    /// An agent's state in a session changed.
    Agent {
        /// The session.
        session_id: String,
        /// The agent's entry.
        agent: AgentReport,
    },
}
