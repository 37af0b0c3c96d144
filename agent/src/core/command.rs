//! Signed commands: verified before they are parsed, refused with a reason,
//! carried out once.
//!
//! Order of the checks, each refusal with its [`RefusalCode`]: the payload's
//! size ([`MAX_COMMAND_BYTES`], `invalid`); the algorithm and key id against
//! the key pinned at enrolment (`unknown_key`); the signature over the
//! payload's exact bytes (`bad_signature`); the payload as a [`Command`]
//! (`invalid`); the agent it names (`wrong_agent`); its lifetime, at most
//! [`MAX_COMMAND_LIFETIME_MS`] (`invalid`); its expiry on the agent's wall
//! clock corrected by the measured offset to the controller's (`expired`);
//! its id against those already carried out (`replayed`).
//!
//! Replay protection: every accepted id is remembered until its expiry plus
//! [`REPLAY_MARGIN_MS`] (on the same corrected clock, so a command is
//! forgotten only once it would be refused as expired anyway) and persisted
//! ([`PersistRequest::Commands`](super::PersistRequest::Commands)) before the
//! command is carried out, so a restart does not accept it again. The
//! memory holds at most [`MAX_REMEMBERED_COMMANDS`]; past that the ids that
//! expire first go first (the lifetime cap keeps that from mattering for a
//! controller that is not itself broken).
//!
//! The algorithm is named on the wire; [`PinnedKey`] is the one place that
//! knows how to verify each (an SM2 variant goes beside Ed25519).

use std::collections::BTreeMap;

use dalaba_protocol::enrol::{SignatureAlgorithm, SigningKeyInfo};
use dalaba_protocol::live::{Command, CommandRefusal, MAX_COMMAND_BYTES, RefusalCode, SignedCommand};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Longest lifetime (expiry minus issue time) of a command the agent
/// accepts. Bounds how long ids must be remembered.
pub const MAX_COMMAND_LIFETIME_MS: i64 = 600_000;

/// Ids are remembered this long past their expiry, so a clock corrected a
/// little differently later still refuses a replay as replayed.
pub const REPLAY_MARGIN_MS: i64 = 300_000;

/// Most command ids remembered at once.
pub const MAX_REMEMBERED_COMMANDS: usize = 4096;

/// Longest command id, in bytes.
const MAX_COMMAND_ID_BYTES: usize = 200;

/// The ids of commands carried out, as the shell persists them: id → the
/// controller-clock instant (Unix ms) after which it may be forgotten.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenCommands {
    /// Command id → forget after (controller clock, Unix ms).
    pub ids: BTreeMap<String, i64>,
}

/// The command-signing key pinned at enrolment, ready to verify.
#[derive(Clone, Debug)]
pub enum PinnedKey {
    /// An Ed25519 public key.
    Ed25519 {
        /// Its id, as the controller names it.
        key_id: String,
        /// The key.
        key: VerifyingKey,
    },
    /// No usable key: every command is refused with this reason.
    Unusable(String),
}

impl PinnedKey {
    /// The key from the identity's [`SigningKeyInfo`], or why it is unusable.
    pub fn from_info(info: Option<&SigningKeyInfo>) -> PinnedKey {
        let Some(info) = info else {
            return PinnedKey::Unusable("this agent has no pinned command key".into());
        };
        match info.algorithm {
            SignatureAlgorithm::Ed25519 => {
                let bytes = hex::decode(&info.public_key).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
                match bytes.map(|b| VerifyingKey::from_bytes(&b)) {
                    Some(Ok(key)) => PinnedKey::Ed25519 { key_id: info.key_id.clone(), key },
                    _ => {
                        PinnedKey::Unusable(format!("the pinned Ed25519 key {} is not a valid public key", info.key_id))
                    }
                }
            }
            SignatureAlgorithm::Unknown => PinnedKey::Unusable(format!(
                "the pinned key {} uses a signature algorithm this agent build does not know",
                info.key_id
            )),
        }
    }

    /// Checks the key named and the signature over the payload's bytes.
    fn verify(&self, signed: &SignedCommand) -> Result<(), (RefusalCode, String)> {
        match self {
            PinnedKey::Unusable(why) => Err((RefusalCode::UnknownKey, why.clone())),
            PinnedKey::Ed25519 { key_id, key } => {
                if signed.algorithm != SignatureAlgorithm::Ed25519 || signed.key_id != *key_id {
                    return Err((
                        RefusalCode::UnknownKey,
                        format!(
                            "signed with {:?} key {:?}; this agent trusts only Ed25519 key {key_id:?}",
                            signed.algorithm,
                            short(&signed.key_id)
                        ),
                    ));
                }
                let bad = |why: &str| (RefusalCode::BadSignature, format!("the signature {why}"));
                let bytes = hex::decode(&signed.signature).map_err(|_| bad("is not hex"))?;
                let bytes = <[u8; 64]>::try_from(bytes).map_err(|_| bad("is not 64 bytes long"))?;
                key.verify(signed.payload.as_bytes(), &Signature::from_bytes(&bytes))
                    .map_err(|_| bad(&format!("does not verify with key {key_id:?}")))
            }
        }
    }
}

/// The checks of the module docs, and the memory of ids carried out.
#[derive(Debug)]
pub(super) struct CommandGate {
    key: PinnedKey,
    seen: SeenCommands,
}

impl CommandGate {
    pub(super) fn new(key: PinnedKey) -> Self {
        CommandGate { key, seen: SeenCommands::default() }
    }

    pub(super) fn restore(&mut self, seen: SeenCommands) {
        self.seen = seen;
    }

    /// Verifies `signed` for `agent_id` at `controller_now_ms` (the agent's
    /// wall clock plus the measured offset). An accepted command's id is
    /// remembered at once; the caller persists [`CommandGate::seen`].
    pub(super) fn admit(
        &mut self,
        signed: &SignedCommand,
        agent_id: &str,
        controller_now_ms: i64,
    ) -> Result<Command, CommandRefusal> {
        let refuse = |command_id: Option<&str>, (reason, message): (RefusalCode, String)| CommandRefusal {
            command_id: command_id.map(str::to_string),
            session_id: None,
            reason,
            message,
        };
        if signed.payload.len() > MAX_COMMAND_BYTES {
            let why = format!("the command is {} bytes, more than {MAX_COMMAND_BYTES}", signed.payload.len());
            return Err(refuse(None, (RefusalCode::Invalid, why)));
        }
        self.key.verify(signed).map_err(|r| refuse(None, r))?;
        let command: Command = serde_json::from_str(&signed.payload)
            .map_err(|e| refuse(None, (RefusalCode::Invalid, format!("the command is not valid: {e}"))))?;
        let id = Some(command.id.as_str());
        if command.id.is_empty() || command.id.len() > MAX_COMMAND_ID_BYTES {
            let why = format!("the command id is empty or longer than {MAX_COMMAND_ID_BYTES} bytes");
            return Err(refuse(None, (RefusalCode::Invalid, why)));
        }
        if command.agent_id != agent_id {
            let why = format!("the command is for agent {:?}, not this agent ({agent_id})", short(&command.agent_id));
            return Err(refuse(id, (RefusalCode::WrongAgent, why)));
        }
        let lifetime = command.expires_at_ms.saturating_sub(command.issued_at_ms);
        if !(0..=MAX_COMMAND_LIFETIME_MS).contains(&lifetime) {
            let why =
                format!("the command is valid for {lifetime} ms; at most {MAX_COMMAND_LIFETIME_MS} ms is accepted");
            return Err(refuse(id, (RefusalCode::Invalid, why)));
        }
        if command.expires_at_ms < controller_now_ms {
            let why = format!(
                "the command {} expired {} ms ago (judged on the agent's clock corrected to the controller's)",
                command.id,
                controller_now_ms.saturating_sub(command.expires_at_ms)
            );
            return Err(refuse(id, (RefusalCode::Expired, why)));
        }
        if self.seen.ids.contains_key(&command.id) {
            let why = format!("the command {} was already carried out", command.id);
            return Err(refuse(id, (RefusalCode::Replayed, why)));
        }
        self.remember(&command, controller_now_ms);
        Ok(command)
    }

    pub(super) fn seen(&self) -> &SeenCommands {
        &self.seen
    }

    fn remember(&mut self, command: &Command, controller_now_ms: i64) {
        self.seen.ids.retain(|_, forget_after| *forget_after >= controller_now_ms);
        while self.seen.ids.len() >= MAX_REMEMBERED_COMMANDS {
            let first = self.seen.ids.iter().min_by_key(|(_, at)| **at).map(|(id, _)| id.clone());
            match first {
                Some(id) => self.seen.ids.remove(&id),
                None => break,
            };
        }
        self.seen.ids.insert(command.id.clone(), command.expires_at_ms.saturating_add(REPLAY_MARGIN_MS));
    }
}

/// At most 80 characters of something the controller sent, for a message.
fn short(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
pub(super) mod tests {
    use dalaba_protocol::live::{CommandAction, LiveStop};
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    pub(in super::super) fn signing_key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    pub(in super::super) fn key_info() -> SigningKeyInfo {
        SigningKeyInfo {
            algorithm: SignatureAlgorithm::Ed25519,
            key_id: "k1".into(),
            public_key: hex::encode(signing_key().verifying_key().to_bytes()),
        }
    }

    pub(in super::super) fn sign(command: &Command) -> SignedCommand {
        let payload = serde_json::to_string(command).expect("json");
        let signature = hex::encode(signing_key().sign(payload.as_bytes()).to_bytes());
        SignedCommand { payload, algorithm: SignatureAlgorithm::Ed25519, key_id: "k1".into(), signature }
    }

    fn stop(id: &str, issued: i64) -> Command {
        Command {
            id: id.into(),
            agent_id: "ag-1".into(),
            issued_at_ms: issued,
            expires_at_ms: issued + 30_000,
            action: CommandAction::LiveStop(LiveStop { session_id: "L1".into(), reason: "test".into() }),
        }
    }

    fn check(gate: &mut CommandGate, signed: &SignedCommand, now: i64, expected: Result<(), RefusalCode>) {
        let got = gate.admit(signed, "ag-1", now).map(|_| ()).map_err(|r| r.reason);
        assert_eq!(got, expected, "{signed:?}");
    }

    #[test]
    fn each_check_refuses_with_its_code() {
        let mut gate = CommandGate::new(PinnedKey::from_info(Some(&key_info())));
        let good = sign(&stop("c1", 1_000));
        let mut tampered = good.clone();
        tampered.payload = tampered.payload.replace("test", "tset");
        let mut other_key = good.clone();
        other_key.key_id = "k2".into();
        let mut not_hex = good.clone();
        not_hex.signature = "zz".into();
        let mut short_sig = good.clone();
        short_sig.signature = "ab".into();
        let mut huge = good.clone();
        huge.payload = " ".repeat(MAX_COMMAND_BYTES + 1);
        let garbage = {
            let mut c = sign(&stop("x", 0));
            c.payload = "{\"id\":3".into();
            c.signature = hex::encode(signing_key().sign(c.payload.as_bytes()).to_bytes());
            c
        };
        let mut other_agent = stop("c2", 1_000);
        other_agent.agent_id = "ag-2".into();
        let mut forever = stop("c3", 1_000);
        forever.expires_at_ms = i64::MAX;

        check(&mut gate, &tampered, 2_000, Err(RefusalCode::BadSignature));
        check(&mut gate, &other_key, 2_000, Err(RefusalCode::UnknownKey));
        check(&mut gate, &not_hex, 2_000, Err(RefusalCode::BadSignature));
        check(&mut gate, &short_sig, 2_000, Err(RefusalCode::BadSignature));
        check(&mut gate, &huge, 2_000, Err(RefusalCode::Invalid));
        check(&mut gate, &garbage, 2_000, Err(RefusalCode::Invalid));
        check(&mut gate, &sign(&other_agent), 2_000, Err(RefusalCode::WrongAgent));
        check(&mut gate, &sign(&forever), 2_000, Err(RefusalCode::Invalid));
        check(&mut gate, &good, 31_001, Err(RefusalCode::Expired));
        check(&mut gate, &good, 2_000, Ok(()));
        check(&mut gate, &good, 2_000, Err(RefusalCode::Replayed));
        assert!(gate.seen().ids.contains_key("c1"));

        let mut none = CommandGate::new(PinnedKey::from_info(None));
        check(&mut none, &sign(&stop("c9", 1_000)), 2_000, Err(RefusalCode::UnknownKey));
        let mut bad = key_info();
        bad.public_key = "00".into();
        let mut broken = CommandGate::new(PinnedKey::from_info(Some(&bad)));
        check(&mut broken, &sign(&stop("c9", 1_000)), 2_000, Err(RefusalCode::UnknownKey));

        // A newer controller signing with an algorithm this build does not
        // know: the message decodes, and the command is refused, not the link.
        let wire = serde_json::to_string(&sign(&stop("c10", 1_000))).expect("json").replace("\"ed25519\"", "\"sm2\"");
        let sm2: SignedCommand = serde_json::from_str(&wire).expect("an unknown algorithm still decodes");
        assert_eq!(sm2.algorithm, SignatureAlgorithm::Unknown);
        check(&mut gate, &sm2, 2_000, Err(RefusalCode::UnknownKey));
    }

    #[test]
    fn ids_are_forgotten_only_after_expiry_and_the_memory_is_bounded() {
        let mut gate = CommandGate::new(PinnedKey::from_info(Some(&key_info())));
        gate.admit(&sign(&stop("c1", 1_000)), "ag-1", 2_000).expect("accepted");
        // Long after: c1 is forgotten when the next id is remembered.
        gate.admit(&sign(&stop("c2", 1_000_000)), "ag-1", 1_000_001).expect("accepted");
        assert_eq!(gate.seen().ids.keys().collect::<Vec<_>>(), vec!["c2"]);
        for n in 0..MAX_REMEMBERED_COMMANDS + 10 {
            gate.admit(&sign(&stop(&format!("n{n}"), 1_000_000)), "ag-1", 1_000_001).expect("accepted");
        }
        assert_eq!(gate.seen().ids.len(), MAX_REMEMBERED_COMMANDS);
    }
}
