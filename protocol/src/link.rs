//! Control messages on the agent link (JSON in WebSocket text frames).
//!
//! Times on the wire are Unix milliseconds (`*_ms: i64`) read from the
//! sender's wall clock; durations are milliseconds (`u64`).

use serde::{Deserialize, Serialize};

use crate::live::{CommandRefusal, LiveReport, SignedCommand};
use crate::state::{DesiredState, PlayEvents, PlayEventsAck, SyncReport};

/// A message from an agent to the controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    /// First message on every link: who the agent is and what it speaks.
    Hello(Hello),
    /// Keeps the link and the agent's presence alive; also carries the send
    /// time so the controller's acknowledgement yields the clock offset.
    Heartbeat(Heartbeat),
    /// The agent's current state, sent after the welcome and on change.
    Status(AgentStatus),
    /// Sync progress of a desired state.
    Sync(SyncReport),
    /// Proof of play from the agent's persisted log.
    PlayEvents(PlayEvents),
    /// The agent's state in a live session, on every change.
    Live(LiveReport),
    /// The agent refused a signed command, and why.
    CommandRefused(CommandRefusal),
}

/// A message from the controller to an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControllerMessage {
    /// The link is accepted.
    Welcome(Welcome),
    /// Answer to a [`Heartbeat`].
    HeartbeatAck(HeartbeatAck),
    /// The controller refuses the link (for example an unsupported protocol
    /// version) and closes it after this message.
    Refused(Refusal),
    /// The agent's plan and content, sent on change and after every welcome.
    DesiredState(DesiredState),
    /// These play events are stored; the agent may drop them.
    PlayEventsAck(PlayEventsAck),
    /// A signed order: start or stop a live session.
    Command(SignedCommand),
}

/// See [`AgentMessage::Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol version the agent speaks.
    pub protocol_version: u32,
    /// The agent's software version (its crate version).
    pub agent_version: String,
    /// What the agent runs on.
    pub hardware: Hardware,
}

/// Description of the machine an agent runs on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Hardware {
    /// Board model, e.g. "Raspberry Pi 4 Model B" or "simulated".
    pub model: String,
    /// CPU architecture, e.g. "aarch64".
    pub arch: String,
    /// Operating system description.
    pub os: String,
    /// Configured audio output (ALSA device name or "null").
    pub audio_output: String,
    /// Configured amplifier driver ("modbus-rtu", "serial-frames", "gpio",
    /// "simulated", "none").
    pub amplifier_driver: String,
}

/// See [`AgentMessage::Heartbeat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Sequence number, increasing per link.
    pub seq: u64,
    /// Agent wall clock when sent.
    pub sent_at_ms: i64,
}

/// See [`ControllerMessage::HeartbeatAck`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAck {
    /// The acknowledged heartbeat's sequence number.
    pub seq: u64,
    /// The heartbeat's `sent_at_ms`, echoed back.
    pub agent_sent_at_ms: i64,
    /// Controller wall clock when the heartbeat was received.
    pub controller_time_ms: i64,
}

impl HeartbeatAck {
    /// Estimated offset of the controller's clock relative to the agent's,
    /// in milliseconds (positive: the controller is ahead), given the agent's
    /// wall clock when the acknowledgement arrived. Assumes a symmetric path,
    /// as NTP does.
    pub fn clock_offset_ms(&self, agent_received_at_ms: i64) -> i64 {
        let midpoint = self.agent_sent_at_ms + (agent_received_at_ms - self.agent_sent_at_ms) / 2;
        self.controller_time_ms - midpoint
    }
}

/// See [`ControllerMessage::Welcome`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Protocol version the controller will speak on this link.
    pub protocol_version: u32,
    /// The agent's id, as the controller knows it.
    pub agent_id: String,
    /// How often the agent should send a heartbeat.
    pub heartbeat_interval_ms: u64,
    /// Controller wall clock when sent.
    pub controller_time_ms: i64,
}

/// See [`ControllerMessage::Refused`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Why, as a machine-readable code.
    pub reason: RefusalReason,
    /// Why, for the log of a person.
    pub message: String,
}

/// Machine-readable reasons for [`Refusal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// The agent's protocol version is not supported by the controller.
    UnsupportedVersion,
    /// The agent said something other than `hello` first.
    HelloExpected,
}

/// See [`AgentMessage::Status`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AgentStatus {
    /// Controller clock minus agent clock, when known.
    pub clock_offset_ms: Option<i64>,
    /// Free bytes on the agent's data disk.
    pub disk_free_bytes: u64,
    /// Bytes held in the agent's content cache.
    pub cache_bytes: u64,
    /// The amplifier relay's state.
    pub amplifier: AmplifierState,
    /// What is playing now, if anything.
    pub now_playing: Option<NowPlaying>,
}

/// State of a village amplifier as the agent knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmplifierState {
    /// Switched off (confirmed by the driver where it can confirm).
    Off,
    /// Switched on.
    On,
    /// Not known yet (no driver answer so far).
    #[default]
    Unknown,
    /// The driver failed to switch or confirm.
    Fault,
}

/// What an agent is playing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NowPlaying {
    /// Title shown to operators.
    pub title: String,
    /// Agent wall clock when playback started.
    pub since_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use crate::state::*;

    fn round_trip_agent(m: AgentMessage) {
        let text = codec::encode(&m);
        let back: AgentMessage = codec::decode(&text).expect("decodes");
        assert_eq!(back, m, "{text}");
    }

    fn round_trip_controller(m: ControllerMessage) {
        let text = codec::encode(&m);
        let back: ControllerMessage = codec::decode(&text).expect("decodes");
        assert_eq!(back, m, "{text}");
    }

    #[test]
    fn every_agent_message_round_trips() {
        round_trip_agent(AgentMessage::Hello(Hello {
            protocol_version: 1,
            agent_version: "0.1.0".into(),
            hardware: Hardware {
                model: "Raspberry Pi 4".into(),
                arch: "aarch64".into(),
                os: "Debian 12".into(),
                audio_output: "default".into(),
                amplifier_driver: "modbus-rtu".into(),
            },
        }));
        round_trip_agent(AgentMessage::Heartbeat(Heartbeat { seq: 7, sent_at_ms: 1_700_000_000_123 }));
        round_trip_agent(AgentMessage::Status(AgentStatus {
            clock_offset_ms: Some(-42),
            disk_free_bytes: 1 << 30,
            cache_bytes: 12345,
            amplifier: AmplifierState::On,
            now_playing: Some(NowPlaying { title: "交通安全".into(), since_ms: 5 }),
        }));
        round_trip_agent(AgentMessage::Status(AgentStatus::default()));
        round_trip_agent(AgentMessage::Sync(SyncReport { version: 3, state: SyncState::UpToDate }));
        round_trip_agent(AgentMessage::Sync(SyncReport {
            version: 4,
            state: SyncState::Downloading { done: 3, total: 5 },
        }));
        round_trip_agent(AgentMessage::Sync(SyncReport {
            version: 5,
            state: SyncState::Failed { reason: "SHA-256 mismatch".into() },
        }));
        round_trip_agent(AgentMessage::PlayEvents(PlayEvents {
            events: vec![PlayEvent {
                id: "7@1700000000000".into(),
                schedule_id: 7,
                sha256: "ab".repeat(32),
                scheduled_ms: 1_700_000_000_000,
                started_ms: Some(1_700_000_000_004),
                ended_ms: Some(1_700_000_030_000),
                outcome: PlayOutcome::Completed,
                reason: None,
                amplifier_confirmed: true,
            }],
        }));
    }

    #[test]
    fn every_controller_message_round_trips() {
        round_trip_controller(ControllerMessage::Welcome(Welcome {
            protocol_version: 1,
            agent_id: "ag-1".into(),
            heartbeat_interval_ms: 15_000,
            controller_time_ms: 99,
        }));
        round_trip_controller(ControllerMessage::HeartbeatAck(HeartbeatAck {
            seq: 3,
            agent_sent_at_ms: 1,
            controller_time_ms: 2,
        }));
        for reason in [RefusalReason::UnsupportedVersion, RefusalReason::HelloExpected] {
            round_trip_controller(ControllerMessage::Refused(Refusal { reason, message: "no".into() }));
        }
        round_trip_controller(ControllerMessage::DesiredState(DesiredState {
            version: 9,
            generated_at_ms: 1,
            from_ms: 2,
            to_ms: 3,
            entries: vec![PlanEntry {
                id: "7@1700000000000".into(),
                schedule_id: 7,
                title: "交通安全".into(),
                nominal_start_ms: 1_700_000_000_000,
                start_ms: 1_700_000_005_000,
                plays: vec![PlannedPlay { sha256: "ab".repeat(32), start_ms: 1_700_000_005_000, duration_ms: 30_000 }],
                volume: 80,
                priority: Priority::Scheduled,
            }],
            content: vec![ContentInfo {
                sha256: "ab".repeat(32),
                size_bytes: 120_000,
                duration_ms: 30_000,
                gain_db: -3.5,
                title: "交通安全".into(),
            }],
            playback: PlaybackSettings::default(),
        }));
        round_trip_controller(ControllerMessage::PlayEventsAck(PlayEventsAck { ids: vec!["a".into(), "b".into()] }));
    }

    #[test]
    fn wire_shape_is_tagged() {
        let text = codec::encode(&AgentMessage::Heartbeat(Heartbeat { seq: 1, sent_at_ms: 2 }));
        assert_eq!(text, r#"{"type":"heartbeat","seq":1,"sent_at_ms":2}"#);
    }

    #[test]
    fn unknown_fields_are_tolerated() {
        let m: AgentMessage =
            codec::decode(r#"{"type":"heartbeat","seq":1,"sent_at_ms":2,"battery":"full"}"#).expect("decodes");
        assert_eq!(m, AgentMessage::Heartbeat(Heartbeat { seq: 1, sent_at_ms: 2 }));
    }

    #[test]
    fn clock_offset_assumes_symmetric_path() {
        // Sent at 1000 (agent), controller stamps 1600, received at 1200 (agent):
        // midpoint 1100 on the agent clock, so the controller is 500 ms ahead.
        let ack = HeartbeatAck { seq: 1, agent_sent_at_ms: 1000, controller_time_ms: 1600 };
        assert_eq!(ack.clock_offset_ms(1200), 500);
    }
}
