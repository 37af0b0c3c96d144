//! The agent's identity: what enrolment produced, kept in
//! `state_dir/credentials.toml` with mode 0600, written atomically.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use dalaba_protocol::enrol::{EnrolRequest, EnrolResponse, SigningKeyInfo};
use dalaba_protocol::link::Hardware;
use serde::{Deserialize, Serialize};

use crate::net::{ControllerUrl, Trust, post_json};

/// File name of the identity inside the state directory.
pub const CREDENTIALS_FILE: &str = "credentials.toml";

/// Everything the agent needs to reach and trust its controller.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The controller's URL.
    pub controller_url: String,
    /// This agent's id.
    pub agent_id: String,
    /// This agent's secret.
    pub secret: String,
    /// The village served.
    pub village_id: i64,
    /// The village's name.
    pub village_name: String,
    /// Pinned SHA-256 of the controller's TLS certificate.
    pub controller_cert_sha256: String,
    /// Pinned command-signing key.
    pub signing_key: SigningKeyInfo,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Identity")
            .field("controller_url", &self.controller_url)
            .field("agent_id", &self.agent_id)
            .field("village", &self.village_name)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// The path of the identity file in `state_dir`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(CREDENTIALS_FILE)
    }

    /// Loads the identity, or explains how to get one.
    pub fn load(state_dir: &Path) -> anyhow::Result<Identity> {
        let path = Identity::path(state_dir);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!(
                    "this agent is not enrolled ({} is missing); run dalaba-agent enrol --controller URL --code CODE",
                    path.display()
                )
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        toml::from_str(&text).with_context(|| format!("{} is damaged; enrol again", path.display()))
    }

    /// Saves the identity: temp file with mode 0600, fsync, rename.
    pub fn save(&self, state_dir: &Path) -> anyhow::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        fs::create_dir_all(state_dir).with_context(|| format!("cannot create {}", state_dir.display()))?;
        let path = Identity::path(state_dir);
        let tmp = path.with_extension("tmp");
        let text = toml::to_string(self).context("serialising the identity")?;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        if let Ok(dir) = fs::File::open(state_dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// The `Authorization` header of the link.
    pub fn authorization(&self) -> String {
        dalaba_protocol::bearer_credentials(&self.agent_id, &self.secret)
    }
}

/// Redeems an enrolment code with the controller at `url`.
///
/// The TLS certificate the controller presents is captured and must match
/// the fingerprint the controller reports in its answer, and
/// `expected_fingerprint` when the technician was given one.
pub async fn enrol(
    url: &str,
    code: &str,
    hostname: &str,
    hardware: Hardware,
    expected_fingerprint: Option<&str>,
) -> anyhow::Result<Identity> {
    let parsed = ControllerUrl::parse(url)?;
    let seen = Arc::new(Mutex::new(None));
    let req = EnrolRequest {
        code: code.trim().to_string(),
        hostname: hostname.to_string(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        hardware,
    };
    // With a fingerprint from the county, nothing is sent to a controller
    // that does not present that exact certificate.
    let trust = match expected_fingerprint {
        Some(fp) => {
            let fp = fp.replace(':', "").to_ascii_lowercase();
            *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(fp.clone());
            Trust::Pinned(fp)
        }
        None => Trust::Capture(Arc::clone(&seen)),
    };
    let resp: EnrolResponse =
        post_json(&parsed, trust, dalaba_protocol::ENROL_PATH, &req).await.context("enrolment failed")?;
    if parsed.tls {
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default();
        if !seen.eq_ignore_ascii_case(&resp.controller_cert_sha256) {
            bail!(
                "enrolment refused: the certificate presented ({seen}) is not the one the controller reports ({}); someone may be in the middle",
                resp.controller_cert_sha256
            );
        }
    }
    Ok(Identity {
        controller_url: parsed.to_string(),
        agent_id: resp.agent_id,
        secret: resp.secret,
        village_id: resp.village_id,
        village_name: resp.village_name,
        controller_cert_sha256: resp.controller_cert_sha256.to_ascii_lowercase(),
        signing_key: resp.signing_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dalaba_protocol::enrol::SignatureAlgorithm;

    #[test]
    fn identity_round_trips_with_private_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = Identity {
            controller_url: "https://127.0.0.1:8443".into(),
            agent_id: "ag-1".into(),
            secret: "s".into(),
            village_id: 3,
            village_name: "王家村".into(),
            controller_cert_sha256: "ab".repeat(32),
            signing_key: SigningKeyInfo {
                algorithm: SignatureAlgorithm::Ed25519,
                key_id: "k".into(),
                public_key: "cd".repeat(32),
            },
        };
        id.save(dir.path()).expect("save");
        assert_eq!(Identity::load(dir.path()).expect("load"), id);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(Identity::path(dir.path())).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{id:?}").contains("secret: \"s\""));
    }

    #[test]
    fn missing_identity_says_how_to_enrol() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Identity::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("dalaba-agent enrol"), "{err}");
    }
}
