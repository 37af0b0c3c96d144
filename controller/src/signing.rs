//! The controller's command-signing key.
//!
//! Agents pin the public half at enrolment; later, emergency commands are
//! signed with the private half. Ed25519 today; the algorithm is named on the
//! wire ([`SignatureAlgorithm`]) so SM2/SM3 can be added beside it.

use std::path::Path;

use anyhow::{Context, bail};
use dalaba_protocol::enrol::{SignatureAlgorithm, SigningKeyInfo};
use ed25519_dalek::SigningKey;
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

    /// The public half, as agents pin it.
    pub fn public_info(&self) -> SigningKeyInfo {
        SigningKeyInfo {
            algorithm: SignatureAlgorithm::Ed25519,
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
    fn corrupt_key_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("signing-key.ed25519"), "abcd").expect("write");
        let err = CommandSigner::load_or_generate(dir.path()).unwrap_err();
        assert!(err.to_string().contains("32-byte"), "{err}");
    }
}
