//! `dalaba-agent simulate`: many villages in one process, for the demo and
//! load tests. Each village is a real agent — its own identity, core, link
//! and shell — with a simulated player (no audio device; news at the planned
//! times) and a simulated relay board.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use dalaba_protocol::link::Hardware;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::core::{AgentCore, CoreConfig};
use crate::devices::{Devices, SimulatedRelay};
use crate::identity::{self, Identity};
use crate::player::{Player, SimulatedPlayer};

/// One village of the fleet file written by `dalaba-controller demo`.
#[derive(Debug, Clone, Deserialize)]
pub struct FleetEntry {
    /// The village's administrative code; names its state directory.
    pub village_code: String,
    /// The village's name.
    pub village_name: String,
    /// An enrolment code, when the village has no agent yet.
    pub code: Option<String>,
}

/// Content cache budget of each simulated village: many share one disk.
pub const SIMULATED_CACHE_BUDGET: u64 = 256_000_000;

/// The hardware a simulated agent reports.
pub fn simulated_hardware() -> Hardware {
    Hardware {
        model: "simulated village board".into(),
        arch: std::env::consts::ARCH.into(),
        os: std::env::consts::OS.into(),
        audio_output: "null".into(),
        amplifier_driver: "simulated".into(),
    }
}

/// Enrols what needs enrolling, then runs every village until `stop`.
pub async fn run(controller: &str, fleet_file: &Path, state_dir: &Path, stop: CancellationToken) -> anyhow::Result<()> {
    let text = std::fs::read(fleet_file).with_context(|| format!("cannot read fleet file {}", fleet_file.display()))?;
    let fleet: Vec<FleetEntry> =
        serde_json::from_slice(&text).with_context(|| format!("{} is not a fleet file", fleet_file.display()))?;
    raise_fd_limit(fleet.len());
    let identities = enrol_all(controller, &fleet, state_dir).await;
    tracing::info!(villages = identities.len(), "simulated agents starting");
    let mut tasks = tokio::task::JoinSet::new();
    for (dir, id) in identities {
        let mut config = CoreConfig::new(id.agent_id.clone(), env!("CARGO_PKG_VERSION"), simulated_hardware());
        config.jitter_seed ^= 0x5eed;
        config.command_key = Some(id.signing_key.clone());
        let now = crate::clock::now();
        let core = AgentCore::new(config, now);
        let devices = Devices::new(Box::new(SimulatedRelay::default()), &dir);
        let stop = stop.clone();
        // No audio device for a simulated village: timing only.
        let player = Player::Simulated(SimulatedPlayer::new());
        let poll = std::time::Duration::from_secs(10);
        tasks.spawn(crate::shell::run(id, core, devices, player, poll, SIMULATED_CACHE_BUDGET, stop));
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn enrol_all(controller: &str, fleet: &[FleetEntry], state_dir: &Path) -> Vec<(PathBuf, Identity)> {
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    let mut jobs = tokio::task::JoinSet::new();
    for entry in fleet.iter().cloned() {
        let dir = state_dir.join(&entry.village_code);
        let controller = controller.to_string();
        let limit = Arc::clone(&limit);
        jobs.spawn(async move {
            if let Ok(mut id) = Identity::load(&dir) {
                // The demo may have moved to another port; the pins stay.
                id.controller_url = controller;
                return Some((dir, id));
            }
            let code = entry.code.as_deref()?;
            let _permit = limit.acquire().await.ok()?;
            let hostname = format!("sim-{}", entry.village_code);
            match identity::enrol(&controller, code, &hostname, simulated_hardware(), None).await {
                Ok(id) => match id.save(&dir) {
                    Ok(()) => Some((dir, id)),
                    Err(e) => {
                        tracing::error!(village = %entry.village_name, error = %format!("{e:#}"), "cannot save identity");
                        None
                    }
                },
                Err(e) => {
                    tracing::error!(village = %entry.village_name, error = %format!("{e:#}"), "enrolment failed");
                    None
                }
            }
        });
    }
    let mut out = Vec::new();
    while let Some(r) = jobs.join_next().await {
        if let Ok(Some(x)) = r {
            out.push(x);
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Each simulated village holds a socket; lift the soft open-file limit to
/// the hard one and say so when even that is too low for the fleet.
fn raise_fd_limit(villages: usize) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
    let current = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    if current < villages as u64 + 64 {
        tracing::warn!(open_files = current, villages, "the open-file limit is too low for this many villages");
    }
}
