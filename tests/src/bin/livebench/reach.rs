//! Emergency reach: from the start request to the first audio at every
//! agent of a 212-village county.
//!
//! The agents are `dalaba-agent simulate`: real agent code (identity, core,
//! pinned-TLS link, signed-command checks, arbitration, the simulated relay
//! and the 1 s emergency warm-up) with a simulated player, which reports
//! the first sample at the instant the core asks for it (the end of the
//! warm-up) and has no output device, so no device latency and no wait for
//! the first frame. A real agent's first sample also waits for its jitter
//! buffer's 40 ms and its output's latency (a few tens of ms, see the
//! latency figures), both well inside the warm-up only if frames arrive
//! early, which they do: the stream starts with the session.

use std::time::Duration;

use anyhow::Context;
use dalaba_e2e::proc::Proc;
use serde_json::json;

use crate::proxy::{self, Impairment};
use crate::setup::{Bins, Controller, RATE, Spread, load, wall_us};

/// The county: the demo county's size.
const TOWNSHIPS: usize = 14;
const VILLAGES: usize = 212;

/// What one reach run measured.
#[derive(Debug, Clone)]
pub struct Reach {
    /// Loopback or impaired.
    pub name: String,
    /// Request → each agent's reported first sample, ms.
    pub reach: Spread,
    /// Agents that reported no first sample within 15 s.
    pub silent: usize,
    /// Agents in the session.
    pub agents: usize,
    /// How long the start request took to answer, ms.
    pub answer_ms: f64,
    /// Load averages before and after.
    pub load: (String, String),
}

/// Runs one emergency over the whole county.
pub async fn run(bins: &Bins, impair: Option<Impairment>) -> anyhow::Result<Reach> {
    let load_before = load();
    let dir = tempfile::tempdir()?;
    let ctl = Controller::start(bins, dir.path(), "warn").await?;
    let villages = ctl.import_county(TOWNSHIPS, VILLAGES).await?;
    // Ten seconds of a 1 kHz tone, the emergency's audio.
    let tone: Vec<i16> = (0..RATE as usize * 10)
        .map(|i| (8_000.0 * (std::f64::consts::TAU * 1000.0 * i as f64 / f64::from(RATE)).sin()) as i16)
        .collect();
    let item = ctl.upload_wav("警报", &tone).await?;
    let mut fleet = Vec::new();
    for (i, &v) in villages.iter().enumerate() {
        let code = ctl.code(v).await?;
        fleet.push(json!({"village_code": format!("v{i:03}"), "village_name": format!("village {i}"), "code": code}));
    }
    let fleet_file = dir.path().join("fleet.json");
    std::fs::write(&fleet_file, serde_json::to_vec(&fleet)?)?;
    let url = match impair {
        Some(imp) => format!("https://127.0.0.1:{}", proxy::start(ctl.port, imp, 0x00c0_ffee).await?.0),
        None => ctl.url.clone(),
    };
    let state = dir.path().join("agents");
    let args = [
        "--state-dir",
        state.to_str().context("UTF-8 path")?,
        "simulate",
        "--controller",
        &url,
        "--fleet",
        fleet_file.to_str().context("UTF-8 path")?,
    ];
    let agents = Proc::spawn("agents", &bins.agent, &args, &[("RUST_LOG", "warn")])?;
    ctl.wait_online(VILLAGES as u64, Duration::from_secs(180)).await?;
    // Let the connect storm and the first statuses settle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let requested_us = wall_us();
    let session = ctl
        .start_live(&json!({"title": "防汛紧急通知", "priority": "emergency", "targets": {"county": true},
                            "source": {"type": "library_item", "item_id": item}}))
        .await?;
    let answer_ms = (wall_us() - requested_us) as f64 / 1000.0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let report = loop {
        let r = ctl.session(&session).await?;
        let all = r["agents"].as_array().is_some_and(|a| a.iter().all(|a| !a["playing_from_ms"].is_null()));
        if all || tokio::time::Instant::now() >= deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let list = report["agents"].as_array().cloned().unwrap_or_default();
    let reach: Vec<f64> = list
        .iter()
        .filter_map(|a| a["playing_from_ms"].as_i64())
        .map(|ms| (ms * 1000 - requested_us) as f64 / 1000.0)
        .collect();
    let _ = ctl.api.post(&format!("/api/v1/live/{session}/stop"), &json!({"reason": "bench over"})).await;
    drop(agents);
    Ok(Reach {
        name: if impair.is_some() { "impaired links".into() } else { "loopback".into() },
        silent: list.len() - reach.len(),
        agents: list.len(),
        reach: Spread::of(&reach),
        answer_ms,
        load: (load_before, load()),
    })
}
