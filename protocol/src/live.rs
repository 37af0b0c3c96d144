//! Live and emergency broadcasts on the link: signed commands that start
//! and stop a session, the binary audio frames of its stream, and the
//! agent's reports.
//!
//! # Commands
//! A live session starts and stops by [`SignedCommand`]: the command as
//! exact JSON text ([`Command`]) and the controller's signature over those
//! bytes, made with the key the agent pinned at enrolment. The agent
//! verifies before it parses, and refuses (reporting
//! [`AgentMessage::CommandRefused`](crate::link::AgentMessage::CommandRefused))
//! a bad signature, an unknown key, a command for another agent, an expired
//! command ([`Command::expires_at_ms`], judged on the agent's clock corrected
//! by its measured offset) and a replayed one (same [`Command::id`]).
//!
//! # Audio
//! Each session's audio is one stream of Opus packets, 10–20 ms each, mono
//! 48 kHz, sent as WebSocket binary frames ([`LiveFrame`]): a 20-byte header
//! (magic, version, stream id, sequence, capture time) and one packet. The
//! agent plays them through a jitter buffer; a gap in sequence numbers is a
//! lost packet (concealed by the decoder).

use serde::{Deserialize, Serialize};

use crate::enrol::SignatureAlgorithm;
use crate::state::Priority;

/// Longest command payload the agent verifies, in bytes.
pub const MAX_COMMAND_BYTES: usize = 8 * 1024;
/// Largest binary frame on the link: header plus one Opus packet (an Opus
/// packet of 20 ms is at most 1275 bytes).
pub const MAX_LIVE_FRAME: usize = LiveFrame::HEADER_LEN + 1275;
/// How long a live command stays valid after it is issued, by default.
pub const DEFAULT_COMMAND_TTL_MS: u64 = 30_000;
/// Amplifier warm-up before an emergency: shorter than a scheduled item's.
pub const EMERGENCY_WARMUP_MS: u64 = 1_000;
/// A live session with no frame for this long ends on the agent (the
/// controller or the link is gone).
pub const LIVE_SILENCE_MS: u64 = 10_000;

/// A command with the controller's signature over its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCommand {
    /// The [`Command`] as JSON text, exactly the bytes that were signed.
    pub payload: String,
    /// The signature algorithm.
    pub algorithm: SignatureAlgorithm,
    /// The signing key's id (as pinned at enrolment).
    pub key_id: String,
    /// The signature over `payload`'s UTF-8 bytes, lowercase hex.
    pub signature: String,
}

/// What a [`SignedCommand`] orders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Unique id: an agent carries out a command once.
    pub id: String,
    /// The agent it is for: a command cannot be replayed to another agent.
    pub agent_id: String,
    /// Controller wall clock when issued (Unix ms).
    pub issued_at_ms: i64,
    /// After this (controller wall clock, Unix ms) the command is refused.
    pub expires_at_ms: i64,
    /// The order.
    #[serde(flatten)]
    pub action: CommandAction,
}

/// The orders a [`Command`] can carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum CommandAction {
    /// Start playing a live session's stream now, over anything of lower
    /// priority.
    LiveStart(LiveStart),
    /// Stop a live session.
    LiveStop(LiveStop),
}

/// See [`CommandAction::LiveStart`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveStart {
    /// The session, as operators and reports name it.
    pub session_id: String,
    /// The stream id its binary frames carry.
    pub stream_id: u32,
    /// `paging` or `emergency` (scheduled and background are not live).
    pub priority: Priority,
    /// What operators call it ("防汛紧急通知").
    pub title: String,
    /// Volume, 0–100.
    pub volume: u8,
    /// Gain in dB applied to the stream (towards the county loudness).
    pub gain_db: f64,
    /// Amplifier warm-up before the audio ([`EMERGENCY_WARMUP_MS`] for emergencies).
    pub warmup_ms: u64,
    /// The session ends on its own after this long, whatever happens.
    pub max_duration_ms: u64,
}

/// See [`CommandAction::LiveStop`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveStop {
    /// The session.
    pub session_id: String,
    /// Why, for the log and the report ("stopped by 张三", "alert cancelled").
    pub reason: String,
}

/// Why an agent refused a command, with the command id when it could be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRefusal {
    /// The command's id, when the payload could be read.
    pub command_id: Option<String>,
    /// The session it concerned, when known.
    pub session_id: Option<String>,
    /// Why, as a code.
    pub reason: RefusalCode,
    /// Why, for the operator.
    pub message: String,
}

/// Machine-readable reasons for a [`CommandRefusal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// The signature does not verify.
    BadSignature,
    /// Signed with a key (or algorithm) the agent did not pin.
    UnknownKey,
    /// Past its expiry.
    Expired,
    /// Already carried out (same id).
    Replayed,
    /// Meant for another agent.
    WrongAgent,
    /// Not a valid command (bad JSON, bad values).
    Invalid,
    /// A session of equal or higher priority holds the loudspeaker.
    Busy,
}

/// An agent's state in a live session, reported on every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveReport {
    /// The session.
    pub session_id: String,
    /// Where the agent stands.
    #[serde(flatten)]
    pub state: LiveState,
}

/// See [`LiveReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LiveState {
    /// Accepted; amplifier warming up, waiting for audio.
    Receiving {
        /// Whether the amplifier confirmed on.
        amplifier_on: bool,
    },
    /// Audio is coming out.
    Playing {
        /// Agent wall clock of the first sample (Unix ms).
        since_ms: i64,
        /// Whether the amplifier confirmed on.
        amplifier_on: bool,
    },
    /// The session is over on this agent.
    Ended {
        /// First sample (Unix ms), if any played.
        started_ms: Option<i64>,
        /// When it ended (Unix ms).
        ended_ms: i64,
        /// Frames played.
        frames_received: u64,
        /// Frames missing by sequence number (concealed).
        frames_lost: u64,
        /// Why it ended: "stopped", "silence", "max duration", "preempted by …".
        reason: String,
    },
}

/// One binary frame of a live stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFrame {
    /// The stream ([`LiveStart::stream_id`]).
    pub stream_id: u32,
    /// Sequence number, +1 per frame (wrapping).
    pub seq: u32,
    /// Controller wall clock when the audio was captured (Unix µs).
    pub capture_us: i64,
    /// One Opus packet.
    pub opus: Vec<u8>,
}

/// Why a binary frame was not a [`LiveFrame`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Shorter than the header, or no packet.
    #[error("live frame of {0} bytes is too short")]
    TooShort(usize),
    /// Larger than [`MAX_LIVE_FRAME`].
    #[error("live frame of {0} bytes is larger than {MAX_LIVE_FRAME}")]
    TooLarge(usize),
    /// Not our magic or version.
    #[error("not a live frame (bad magic or version)")]
    BadMagic,
}

impl LiveFrame {
    /// Magic bytes and version at the start of every frame.
    pub const MAGIC: [u8; 3] = *b"DL\x01";
    /// Header length: magic (3), flags (1), stream (4), seq (4), capture µs (8).
    pub const HEADER_LEN: usize = 20;

    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::HEADER_LEN + self.opus.len());
        out.extend_from_slice(&Self::MAGIC);
        out.push(0);
        out.extend_from_slice(&self.stream_id.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.capture_us.to_be_bytes());
        out.extend_from_slice(&self.opus);
        out
    }

    /// Reads a frame; never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<LiveFrame, FrameError> {
        if bytes.len() > MAX_LIVE_FRAME {
            return Err(FrameError::TooLarge(bytes.len()));
        }
        if bytes.len() <= Self::HEADER_LEN {
            return Err(FrameError::TooShort(bytes.len()));
        }
        if bytes[..3] != Self::MAGIC {
            return Err(FrameError::BadMagic);
        }
        let u32_at = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let mut us = [0u8; 8];
        us.copy_from_slice(&bytes[12..20]);
        Ok(LiveFrame {
            stream_id: u32_at(4),
            seq: u32_at(8),
            capture_us: i64::from_be_bytes(us),
            opus: bytes[Self::HEADER_LEN..].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use crate::link::{AgentMessage, ControllerMessage};

    fn start() -> Command {
        Command {
            id: "cmd-1".into(),
            agent_id: "ag-1".into(),
            issued_at_ms: 1_000,
            expires_at_ms: 31_000,
            action: CommandAction::LiveStart(LiveStart {
                session_id: "L7".into(),
                stream_id: 7,
                priority: Priority::Emergency,
                title: "防汛紧急通知".into(),
                volume: 100,
                gain_db: -2.5,
                warmup_ms: EMERGENCY_WARMUP_MS,
                max_duration_ms: 3_600_000,
            }),
        }
    }

    #[test]
    fn commands_and_reports_round_trip() {
        for command in [
            start(),
            Command {
                action: CommandAction::LiveStop(LiveStop { session_id: "L7".into(), reason: "stopped".into() }),
                ..start()
            },
        ] {
            let text = serde_json::to_string(&command).expect("json");
            assert_eq!(serde_json::from_str::<Command>(&text).expect("back"), command, "{text}");
        }
        let signed = SignedCommand {
            payload: serde_json::to_string(&start()).expect("json"),
            algorithm: SignatureAlgorithm::Ed25519,
            key_id: "k1".into(),
            signature: "ab".repeat(64),
        };
        let m = ControllerMessage::Command(signed);
        assert_eq!(codec::decode::<ControllerMessage>(&codec::encode(&m)).expect("decodes"), m);
        for m in [
            AgentMessage::Live(LiveReport {
                session_id: "L7".into(),
                state: LiveState::Playing { since_ms: 5, amplifier_on: true },
            }),
            AgentMessage::Live(LiveReport {
                session_id: "L7".into(),
                state: LiveState::Ended {
                    started_ms: Some(5),
                    ended_ms: 9,
                    frames_received: 100,
                    frames_lost: 1,
                    reason: "stopped".into(),
                },
            }),
            AgentMessage::CommandRefused(CommandRefusal {
                command_id: Some("cmd-1".into()),
                session_id: None,
                reason: RefusalCode::Replayed,
                message: "command cmd-1 was already carried out".into(),
            }),
        ] {
            assert_eq!(codec::decode::<AgentMessage>(&codec::encode(&m)).expect("decodes"), m);
        }
    }

    #[test]
    fn frames_round_trip_and_bad_bytes_are_errors() {
        let f = LiveFrame { stream_id: 7, seq: u32::MAX, capture_us: -3, opus: vec![0xfc, 1, 2] };
        let bytes = f.encode();
        assert_eq!(bytes.len(), LiveFrame::HEADER_LEN + 3);
        assert_eq!(LiveFrame::decode(&bytes), Ok(f));
        assert_eq!(LiveFrame::decode(&bytes[..LiveFrame::HEADER_LEN]), Err(FrameError::TooShort(20)));
        assert_eq!(LiveFrame::decode(&[]), Err(FrameError::TooShort(0)));
        let mut bad = bytes.clone();
        bad[2] = 9;
        assert_eq!(LiveFrame::decode(&bad), Err(FrameError::BadMagic));
        assert_eq!(LiveFrame::decode(&vec![0u8; MAX_LIVE_FRAME + 1]), Err(FrameError::TooLarge(MAX_LIVE_FRAME + 1)));
        // Every short prefix and random-ish input is an error or a frame, never a panic.
        for n in 0..64 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37 + n) as u8).collect();
            let _ = LiveFrame::decode(&junk);
        }
    }
}
