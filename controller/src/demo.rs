//! `dalaba-controller demo`: a living demo county.
//!
//! Loads the built-in county (14 townships, 212 villages) into the data
//! directory on first run, creates an enrolment code for every village that
//! has no agent yet, and starts one `dalaba-agent simulate` child process
//! that enrols (first run) and then runs a real agent for each village — the
//! real agent code, with audio to a null sink and a simulated relay board.
//! A second run reuses the data directory: same villages, same agents.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::app;
use crate::clock::Clock;
use crate::config::Config;
use crate::directory::{Level, demo::load_demo};

/// Options of `dalaba-controller demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Data directory of the demo (database, keys, simulated agents' state).
    #[arg(long, default_value = "dalaba-demo")]
    pub data_dir: PathBuf,
    /// The agent binary; by default `dalaba-agent` next to this binary.
    #[arg(long)]
    pub agent_bin: Option<PathBuf>,
    /// Simulate only the first N villages (all by default).
    #[arg(long)]
    pub villages: Option<usize>,
}

/// One village of the simulated fleet, as handed to `dalaba-agent simulate`.
#[derive(Debug, Serialize)]
struct FleetEntry {
    village_code: String,
    village_name: String,
    /// A fresh enrolment code when the village has no agent yet.
    code: Option<String>,
}

/// Runs the demo until Ctrl-C.
pub async fn run(mut config: Config, config_given: bool, args: DemoArgs) -> anyhow::Result<()> {
    if !config_given {
        config.storage.data_dir = args.data_dir.clone();
        config.server.listen = args.listen;
    }
    let agent_bin = match &args.agent_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("cannot locate this binary")?.with_file_name("dalaba-agent"),
    };
    if !agent_bin.exists() {
        bail!(
            "the agent binary {} does not exist; build both binaries first (cargo build --release)",
            agent_bin.display()
        );
    }
    let running = app::start(&config, Clock::System).await?;
    let st = running.state.clone();
    let loaded = st.db(load_demo).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    if loaded {
        tracing::info!("loaded the demo county");
    }
    if crate::demo_broadcasts::seed(&st).await? {
        tracing::info!("added the demo notices and timetable");
    }
    let fleet = fleet(&running, args.villages).await?;
    let fleet_dir = config.storage.data_dir.join("fleet");
    std::fs::create_dir_all(&fleet_dir).with_context(|| format!("cannot create {}", fleet_dir.display()))?;
    let fleet_file = fleet_dir.join("fleet.json");
    crate::tls::write_private(&fleet_file, &serde_json::to_vec_pretty(&fleet)?)?;

    let url = running.url();
    println!("Dalaba demo: {} villages; open {url}/ in a browser", fleet.len());
    if running.scheme == "https" {
        println!("(self-signed certificate, SHA-256 fingerprint {})", running.state.settings.cert_fingerprint);
    }
    // The child's stdin is a pipe from us: if this process dies, even by
    // SIGKILL, the pipe closes and the simulated villages stop.
    let mut child = tokio::process::Command::new(&agent_bin)
        .arg("simulate")
        .arg("--controller")
        .arg(&url)
        .arg("--fleet")
        .arg(&fleet_file)
        .arg("--state-dir")
        .arg(&fleet_dir)
        .arg("--exit-on-stdin-eof")
        // 212 villages connecting would bury the address above in log lines;
        // the villages say only what goes wrong unless RUST_LOG asks for more.
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdin(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", agent_bin.display()))?;
    // Held until we return: `wait()` below would otherwise close it.
    let _lifeline = child.stdin.take();
    tokio::select! {
        _ = app::shutdown_signal() => {}
        status = child.wait() => {
            running.shutdown.cancel();
            bail!("the simulated agents exited unexpectedly ({})", status.map(|s| s.to_string()).unwrap_or_default());
        }
    }
    let _ = child.kill().await;
    running.shutdown.cancel();
    Ok(())
}

async fn fleet(running: &app::Running, limit: Option<usize>) -> anyhow::Result<Vec<FleetEntry>> {
    let st = &running.state;
    let (regions, agents) = st.db(|s| Ok((s.regions()?, s.agents()?))).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let villages: Vec<_> =
        regions.into_iter().filter(|r| r.level == Level::Village).take(limit.unwrap_or(usize::MAX)).collect();
    let mut out = Vec::with_capacity(villages.len());
    let now = st.clock.now_ms();
    for v in villages {
        let code = if agents.iter().any(|a| a.village_id == v.id) {
            None
        } else {
            let code = crate::api::new_enrolment_code().map_err(|e| anyhow::anyhow!("{e}"))?;
            let (id, c) = (v.id, code.clone());
            st.db(move |s| s.create_enrolment_code(id, &c, now + 3_600_000, now))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Some(code)
        };
        out.push(FleetEntry { village_code: v.code, village_name: v.name, code });
    }
    Ok(out)
}
