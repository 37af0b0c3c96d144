//! The controller's command-signing key.
//!
//! Agents pin the public half at enrolment; later, emergency commands are
//! signed with the private half. Ed25519 today; the algorithm is named on the
//! wire ([`SignatureAlgorithm`]) so SM2/SM3 can be added beside it.

use std::path::Path;

use anyhow::{Context, bail};
use dalaba_protocol::enrol::{SignatureAlgorithm, SigningKeyInfo};
use dalaba_protocol::live::{Command, SignedCommand};
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

/// The loaded signing key.
pub struct CommandSigner {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for CommandSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandSigner").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl CommandSigner {
    /// Loads `data_dir/signing-key.ed25519` (32 raw bytes, hex-encoded),
    /// generating it first if it does not exist.
    pub fn load_or_generate(data_dir: &Path) -> anyhow::Result<CommandSigner> {
        let path = data_dir.join("signing-key.ed25519");
        let key = if path.exists() {
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let bytes = hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))?;
            let Ok(seed) = <[u8; 32]>::try_from(bytes.as_slice()) else {
                bail!("{} must hold a 32-byte Ed25519 seed", path.display());
            };
            SigningKey::from_bytes(&seed)
        } else {
            let mut seed = [0u8; 32];
            getrandom::getrandom(&mut seed)
                .map_err(|e| anyhow::anyhow!("no system randomness for the signing key: {e}"))?;
            crate::tls::write_private(&path, hex::encode(seed).as_bytes())?;
            tracing::info!(path = %path.display(), "generated a command-signing key");
            SigningKey::from_bytes(&seed)
        };
        let key_id = hex::encode(&Sha256::digest(key.verifying_key().as_bytes())[..8]);
        Ok(CommandSigner { key, key_id })
    }

    /// Signs `command`: its JSON text becomes the payload, and the
    /// signature covers exactly those bytes.
    pub fn sign(&self, command: &Command) -> SignedCommand {
        // A Command is plain structs and strings: serialising cannot fail.
        let payload = serde_json::to_string(command).unwrap_or_default();
        self.sign_payload(payload)
    }

    /// Signs `payload`'s UTF-8 bytes as they are.
    pub fn sign_payload(&self, payload: String) -> SignedCommand {
        // The key is an Ed25519 key; another algorithm would be another key type.
        let signature = hex::encode(self.key.sign(payload.as_bytes()).to_bytes());
        SignedCommand { payload, algorithm: self.algorithm(), key_id: self.key_id.clone(), signature }
    }

    /// The signature algorithm of this key. One today; SM2 would be a
    /// second key type behind the same methods.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Ed25519
    }

    /// The public half, as agents pin it.
    pub fn public_info(&self) -> SigningKeyInfo {
        SigningKeyInfo {
            algorithm: self.algorithm(),
            key_id: self.key_id.clone(),
            public_key: hex::encode(self.key.verifying_key().as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = CommandSigner::load_or_generate(dir.path()).expect("generate").public_info();
        let b = CommandSigner::load_or_generate(dir.path()).expect("reload").public_info();
        assert_eq!(a, b);
        assert_eq!(a.public_key.len(), 64);
    }

    #[test]
    fn signatures_verify_over_the_exact_payload_bytes() {
        use dalaba_protocol::live::{CommandAction, LiveStop};
        use ed25519_dalek::{Signature, Verifier, VerifyingKey};
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = CommandSigner::load_or_generate(dir.path()).expect("generate");
        let command = Command {
            id: "c1".into(),
            agent_id: "ag-1".into(),
            issued_at_ms: 1,
            expires_at_ms: 2,
            action: CommandAction::LiveStop(LiveStop { session_id: "L1".into(), reason: "stopped".into() }),
        };
        let signed = signer.sign(&command);
        let info = signer.public_info();
        assert_eq!((signed.algorithm, signed.key_id.as_str()), (info.algorithm, info.key_id.as_str()));
        let key_bytes: [u8; 32] = hex::decode(&info.public_key).expect("hex").try_into().expect("32 bytes");
        let key = VerifyingKey::from_bytes(&key_bytes).expect("key");
        let sig_bytes: [u8; 64] = hex::decode(&signed.signature).expect("hex").try_into().expect("64 bytes");
        let sig = Signature::from_bytes(&sig_bytes);
        assert!(key.verify(signed.payload.as_bytes(), &sig).is_ok());
        assert_eq!(serde_json::from_str::<Command>(&signed.payload).expect("payload parses"), command);
        // One byte changed anywhere (here: a space the JSON parser would not mind) breaks it.
        let mut other = signed.payload.clone();
        other.push(' ');
        assert!(key.verify(other.as_bytes(), &sig).is_err());
    }

    #[test]
    fn corrupt_key_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("signing-key.ed25519"), "abcd").expect("write");
        let err = CommandSigner::load_or_generate(dir.path()).unwrap_err();
        assert!(err.to_string().contains("32-byte"), "{err}");
    }
}
