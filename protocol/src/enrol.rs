//! The enrolment exchange: `POST /api/v1/enrol` with a one-time code.
//!
//! An operator creates a code for a village; the technician runs
//! `dalaba-agent enrol --controller URL --code CODE` on the village's board.
//! The controller answers with a per-agent secret and the two things the
//! agent pins from then on: the SHA-256 fingerprint of the controller's TLS
//! certificate and the public key that signs the controller's commands.

use serde::{Deserialize, Serialize};

use crate::link::Hardware;

/// Body of `POST /api/v1/enrol`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolRequest {
    /// The one-time enrolment code.
    pub code: String,
    /// The board's host name, shown to operators.
    pub hostname: String,
    /// The agent's software version.
    pub agent_version: String,
    /// The board.
    pub hardware: Hardware,
}

/// Successful answer to [`EnrolRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolResponse {
    /// The new agent's id.
    pub agent_id: String,
    /// The agent's secret; shown this once, stored hashed by the controller.
    pub secret: String,
    /// The village the agent serves.
    pub village_id: i64,
    /// The village's name.
    pub village_name: String,
    /// SHA-256 of the controller's TLS certificate (DER), lowercase hex.
    pub controller_cert_sha256: String,
    /// The controller's command-signing key.
    pub signing_key: SigningKeyInfo,
}

/// A public key that signs controller commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyInfo {
    /// The signature algorithm.
    pub algorithm: SignatureAlgorithm,
    /// Key id, so keys can be rotated.
    pub key_id: String,
    /// The public key, lowercase hex.
    pub public_key: String,
}

/// Signature algorithms. Ed25519 today; the Chinese standards use SM2/SM3, so
/// the algorithm is named on the wire rather than assumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureAlgorithm {
    /// Ed25519 (RFC 8032).
    Ed25519,
    /// An algorithm this build does not know (named by a newer peer, say
    /// `sm2`). It decodes, so a command signed with it is refused as signed
    /// by an unknown key rather than closing the link as a protocol error.
    #[serde(other)]
    Unknown,
}

/// Error body of every failed API call, enrolment included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable machine-readable code, e.g. `enrolment_code_expired`.
    pub error: String,
    /// Explanation for a person.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrol_messages_round_trip() {
        let req = EnrolRequest {
            code: "ABCD-EFGH".into(),
            hostname: "pi-村委会".into(),
            agent_version: "0.1.0".into(),
            hardware: Hardware::default(),
        };
        let text = serde_json::to_string(&req).expect("serialises");
        assert_eq!(serde_json::from_str::<EnrolRequest>(&text).expect("parses"), req);

        let resp = EnrolResponse {
            agent_id: "ag-1".into(),
            secret: "s".into(),
            village_id: 9,
            village_name: "王村".into(),
            controller_cert_sha256: "ab".repeat(32),
            signing_key: SigningKeyInfo {
                algorithm: SignatureAlgorithm::Ed25519,
                key_id: "k1".into(),
                public_key: "cd".repeat(32),
            },
        };
        let text = serde_json::to_string(&resp).expect("serialises");
        assert_eq!(serde_json::from_str::<EnrolResponse>(&text).expect("parses"), resp);

        let err = ApiError { error: "x".into(), message: "y".into() };
        let text = serde_json::to_string(&err).expect("serialises");
        assert_eq!(serde_json::from_str::<ApiError>(&text).expect("parses"), err);
    }
}
