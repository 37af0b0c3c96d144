//! The only types that cross between the Dalaba controller and its agents.
//!
//! Neither side links the other's code: everything they say to each other is
//! defined here, as serde types with a round-trip test each.
//!
//! # Layout
//! - [`link`]: the WebSocket control messages (JSON text frames), both ways,
//!   and the version rules.
//! - [`enrol`]: the one-time enrolment exchange over HTTPS.
//! - [`state`]: desired state (plan and content) and proof of play.
//! - [`live`]: signed live and emergency commands, live audio frames and
//!   the agents' live reports.
//! - [`codec`]: decoding with limits and clear errors.
//!
//! # Versioning
//! Every link starts with the agent's [`link::Hello`], which names the
//! protocol version it speaks. The controller answers with
//! [`link::ControllerMessage::Welcome`] when it supports that version, or
//! [`link::ControllerMessage::Refused`] with a human-readable reason and closes
//! the connection. Unknown JSON fields are ignored, so a newer peer may add
//! fields without a version bump; an unknown message type is an error.

pub mod codec;
pub mod enrol;
pub mod link;
pub mod live;
pub mod state;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The oldest protocol version this build still accepts from a peer.
pub const MIN_SUPPORTED_VERSION: u32 = 1;

/// Whether a peer speaking `version` can be served by this build.
pub fn is_supported(version: u32) -> bool {
    (MIN_SUPPORTED_VERSION..=PROTOCOL_VERSION).contains(&version)
}

/// Path of the agent link WebSocket on the controller.
pub const LINK_PATH: &str = "/api/v1/link";

/// Path of the enrolment endpoint on the controller.
pub const ENROL_PATH: &str = "/api/v1/enrol";

/// Largest control (text) frame the controller accepts from an agent, in
/// bytes. A larger frame closes the connection that sent it.
pub const MAX_CONTROL_FRAME: usize = 64 * 1024;

/// Largest frame an agent accepts from its controller: a week's plan with
/// its content list (a few hundred entries) needs more than a control frame.
pub const MAX_CONTROLLER_FRAME: usize = 4 * 1024 * 1024;

/// Header that carries an agent's credentials on the link upgrade request:
/// `Authorization: Bearer <agent_id>.<secret>`.
pub fn bearer_credentials(agent_id: &str, secret: &str) -> String {
    format!("Bearer {agent_id}.{secret}")
}

/// Splits the value of an `Authorization` header made by
/// [`bearer_credentials`] into agent id and secret.
pub fn parse_bearer_credentials(header: &str) -> Option<(&str, &str)> {
    let token = header.strip_prefix("Bearer ")?;
    let (id, secret) = token.split_once('.')?;
    if id.is_empty() || secret.is_empty() {
        return None;
    }
    Some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_round_trip() {
        let h = bearer_credentials("ag-12", "s3cr3t");
        assert_eq!(parse_bearer_credentials(&h), Some(("ag-12", "s3cr3t")));
    }

    #[test]
    fn bearer_rejects_malformed() {
        for bad in ["", "Bearer ", "Bearer x", "Bearer .s", "Bearer a.", "Basic a.b"] {
            assert_eq!(parse_bearer_credentials(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn version_window() {
        assert!(is_supported(PROTOCOL_VERSION));
        assert!(!is_supported(PROTOCOL_VERSION + 1));
        assert!(!is_supported(0));
    }
}
