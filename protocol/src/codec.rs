//! Encoding and decoding of control messages, with limits and clear errors.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::MAX_CONTROL_FRAME;

/// Why a control frame could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The frame is larger than [`MAX_CONTROL_FRAME`].
    #[error("control frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size of the frame received.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The frame is not valid JSON.
    #[error("malformed JSON: {0}")]
    MalformedJson(#[source] serde_json::Error),
    /// The frame is JSON but not a known message (unknown `type`, missing or
    /// mistyped fields).
    #[error("unknown or invalid message: {0}")]
    InvalidMessage(#[source] serde_json::Error),
}

/// Serialises a message as one JSON text frame.
pub fn encode<T: Serialize>(message: &T) -> String {
    // Serialising these plain structs cannot fail: they have string keys and
    // no maps with non-string keys, and no custom Serialize impls.
    serde_json::to_string(message).expect("protocol types always serialise")
}

/// Decodes one text frame, enforcing [`MAX_CONTROL_FRAME`].
pub fn decode<T: DeserializeOwned>(text: &str) -> Result<T, DecodeError> {
    decode_with_limit(text, MAX_CONTROL_FRAME)
}

/// Decodes one text frame, enforcing `limit` bytes.
pub fn decode_with_limit<T: DeserializeOwned>(text: &str, limit: usize) -> Result<T, DecodeError> {
    if text.len() > limit {
        return Err(DecodeError::TooLarge { size: text.len(), limit });
    }
    serde_json::from_str(text).map_err(|e| {
        if e.is_syntax() || e.is_eof() { DecodeError::MalformedJson(e) } else { DecodeError::InvalidMessage(e) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::AgentMessage;

    #[test]
    fn malformed_json_is_named() {
        let err = decode::<AgentMessage>("{not json").unwrap_err();
        assert!(matches!(err, DecodeError::MalformedJson(_)), "{err}");
        let err = decode::<AgentMessage>("").unwrap_err();
        assert!(matches!(err, DecodeError::MalformedJson(_)), "{err}");
    }

    #[test]
    fn unknown_type_is_named() {
        let err = decode::<AgentMessage>(r#"{"type":"launch_missiles"}"#).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidMessage(_)), "{err}");
        assert!(err.to_string().contains("launch_missiles"), "{err}");
    }

    #[test]
    fn oversized_frame_is_refused_before_parsing() {
        let big = format!(r#"{{"type":"heartbeat","pad":"{}"}}"#, "x".repeat(MAX_CONTROL_FRAME));
        let err = decode::<AgentMessage>(&big).unwrap_err();
        assert!(matches!(err, DecodeError::TooLarge { .. }), "{err}");
    }
}
