//! The main measurement: N real agents (`dalaba-agent simulate`, one process
//! holding every agent) linked to one controller over TLS.
//!
//! Two phases, each with its own controller process on the same data
//! directory. [`enrol`] creates the codes, lets `simulate` redeem them and
//! connect, and times that. [`measure`] starts a fresh controller on the
//! enrolled database, so its baseline has seen no enrolment traffic, lets the
//! same fleet connect again, and samples the controller before, after the
//! connect storm has settled, and across a steady-heartbeat window.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use dalaba_e2e::bins;
use dalaba_e2e::proc::Proc;
use serde_json::json;
use tempfile::TempDir;

use crate::controller::{Controller, Counters, stop_both};
use crate::procstat::Sample;

/// Townships and villages of the imported county (the demo county's size);
/// agents are spread round-robin, several per village.
const TOWNSHIPS: usize = 14;
const VILLAGES: usize = 212;

/// Settings shared by every measurement.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The controller's tracing filter.
    pub controller_log: String,
    /// Wait after the last agent came online before sampling.
    pub settle: Duration,
    /// The steady-heartbeat CPU window.
    pub window: Duration,
    /// Added to the environment of the measured controllers (all but the
    /// one that enrols), e.g. to load a heap profiler.
    pub controller_env: Vec<(String, String)>,
}

/// N enrolled agents: their state directories, the fleet file and the
/// controller's data directory, all under one temporary directory.
#[derive(Debug)]
pub struct Fleet {
    /// Agents in the fleet.
    pub n: usize,
    dir: TempDir,
    /// How enrolling them went.
    pub enrolment: Enrolment,
}

/// How long enrolling a fleet took.
#[derive(Debug, Clone, Copy)]
pub struct Enrolment {
    /// Agents enrolled.
    pub n: usize,
    /// Creating the codes (API calls, 8 in parallel).
    pub codes: Duration,
    /// `simulate` start to every enrolment redeemed (16 in parallel).
    pub enrol: Duration,
    /// Enrolments redeemed to every agent online.
    pub connect: Duration,
}

/// The controller's allocator settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    /// glibc malloc as it comes: up to 8 arenas per core.
    Default,
    /// `MALLOC_ARENA_MAX=2`: fewer arenas, less memory held by idle ones.
    TwoArenas,
}

/// One measured configuration.
#[derive(Debug, Clone)]
pub struct LinkRow {
    /// The controller's allocator settings.
    pub allocator: Allocator,
    /// Agents linked.
    pub n: usize,
    /// `simulate` start to every agent online.
    pub connect: Duration,
    /// The controller just before the agents started.
    pub base: Sample,
    /// The controller with every agent linked, after the settle time.
    pub held: Sample,
    /// The controller at the end of the CPU window.
    pub end: Sample,
    /// The agent process at the start of the window.
    pub agent_start: Sample,
    /// The agent process at the end of the window.
    pub agent_end: Sample,
    /// Counters at the start and end of the window.
    pub counters: (Counters, Counters),
}

impl Fleet {
    /// The controller's data directory and config live here.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn fleet_file(&self) -> PathBuf {
        self.dir.path().join("fleet.json")
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("agents")
    }

    /// Starts `dalaba-agent simulate` for the whole fleet against `url`.
    fn simulate(&self, url: &str) -> anyhow::Result<Proc> {
        let state = self.state_dir();
        let fleet = self.fleet_file();
        let args = [
            "--state-dir",
            state.to_str().context("temporary paths are UTF-8")?,
            "simulate",
            "--controller",
            url,
            "--fleet",
            fleet.to_str().context("temporary paths are UTF-8")?,
        ];
        // Ten thousand "connected" lines at info would only measure the
        // pipe; keep the one line that marks the end of enrolment.
        Proc::spawn("agents", &bins::agent(), &args, &[("RUST_LOG", "warn,dalaba_agent::simulate=info")])
    }
}

impl Allocator {
    /// How the report names it.
    pub fn label(self) -> &'static str {
        match self {
            Allocator::Default => "glibc malloc",
            Allocator::TwoArenas => "MALLOC_ARENA_MAX=2",
        }
    }
}

impl LinkRow {
    /// One line for the progress log.
    pub fn summary(&self) -> String {
        format!(
            "{} agents, {}: RSS {:.1} -> {:.1} MiB ({:.1} KiB per agent), CPU {:.2} % of one core",
            self.n,
            self.allocator.label(),
            self.base.rss_kib as f64 / 1024.0,
            self.held.rss_kib as f64 / 1024.0,
            self.kib_per_agent(),
            self.cpu_percent()
        )
    }

    /// Controller RSS growth per linked agent, KiB.
    pub fn kib_per_agent(&self) -> f64 {
        (self.held.rss_kib as f64 - self.base.rss_kib as f64) / self.n as f64
    }

    /// Controller CPU across the window, % of one core.
    pub fn cpu_percent(&self) -> f64 {
        self.end.cpu_percent_since(&self.held)
    }

    /// Agent-process CPU across the window, % of one core.
    pub fn agent_cpu_percent(&self) -> f64 {
        self.agent_end.cpu_percent_since(&self.agent_start)
    }

    /// CPU used across the window by everything but the controller and the
    /// agents (this bench, other work on the machine), % of one core: the
    /// noise under the figures.
    pub fn other_cpu_percent(&self) -> f64 {
        let wall = self.end.at.duration_since(self.held.at).as_secs_f64().max(1e-9);
        let machine = self.end.machine_busy.saturating_sub(self.held.machine_busy).as_secs_f64();
        let ours = self.end.cpu.saturating_sub(self.held.cpu) + self.agent_end.cpu.saturating_sub(self.agent_start.cpu);
        (100.0 * (machine - ours.as_secs_f64()) / wall).max(0.0)
    }

    /// Messages per second received by the controller in the window:
    /// (heartbeats, statuses).
    pub fn message_rates(&self) -> (f64, f64) {
        let secs = self.end.at.duration_since(self.held.at).as_secs_f64().max(1e-9);
        let (a, b) = self.counters;
        (b.heartbeats.saturating_sub(a.heartbeats) as f64 / secs, b.statuses.saturating_sub(a.statuses) as f64 / secs)
    }
}

/// Creates a county and `n` enrolment codes, lets `simulate` enrol and
/// connect them all, and stops both processes.
pub async fn enrol(n: usize, settings: &Settings) -> anyhow::Result<Fleet> {
    let dir = tempfile::tempdir().context("no temporary directory")?;
    let ctl = Controller::start(dir.path(), &settings.controller_log, &[]).await?;
    let villages = ctl.import_county(TOWNSHIPS, VILLAGES).await?;
    let started = Instant::now();
    let assigned: Vec<i64> = (0..n).map(|i| villages[i % villages.len()]).collect();
    let codes = ctl.enrolment_codes(&assigned).await?;
    let codes_took = started.elapsed();
    let entries: Vec<serde_json::Value> = codes
        .iter()
        .enumerate()
        .map(|(i, code)| json!({"village_code": format!("load-{i:05}"), "village_name": format!("load {i}"), "code": code}))
        .collect();
    let enrolment = Enrolment { n, codes: codes_took, enrol: Duration::ZERO, connect: Duration::ZERO };
    let mut fleet = Fleet { n, dir, enrolment };
    std::fs::write(fleet.fleet_file(), serde_json::to_vec(&entries)?).context("cannot write the fleet file")?;

    let started = Instant::now();
    let mut agents = fleet.simulate(&ctl.url)?;
    agents.wait_printed("simulated agents starting", enrol_budget(n)).await?;
    fleet.enrolment.enrol = started.elapsed();
    ctl.wait_online(n, connect_budget(n)).await?;
    fleet.enrolment.connect = started.elapsed() - fleet.enrolment.enrol;
    anyhow::ensure!(!agents.printed("enrolment failed"), "some enrolments failed; see the agents' log above");
    let mut ctl = ctl;
    stop_both(&mut ctl, &mut agents).await;
    Ok(fleet)
}

/// Measures a fresh controller holding the whole fleet.
pub async fn measure(fleet: &Fleet, allocator: Allocator, settings: &Settings) -> anyhow::Result<LinkRow> {
    let label = format!("{} agents, {}", fleet.n, allocator.label());
    let mut env: Vec<(&str, &str)> = settings.controller_env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if allocator == Allocator::TwoArenas {
        env.push(("MALLOC_ARENA_MAX", "2"));
    }
    let mut ctl = Controller::start(fleet.dir(), &settings.controller_log, &env).await?;
    // Let start-up work (migrations, the first requests' allocations) finish.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let base = Sample::of(ctl.pid)?;

    let started = Instant::now();
    let mut agents = fleet.simulate(&ctl.url)?;
    let agent_pid = agents.pid().context("the agent process exited at start")?;
    ctl.wait_online(fleet.n, connect_budget(fleet.n)).await?;
    let connect = started.elapsed();
    eprintln!("loadgen: {label}: {} agents online after {:.1} s; settling", fleet.n, connect.as_secs_f64());
    tokio::time::sleep(settings.settle).await;

    let c0 = ctl.counters().await?;
    let held = Sample::of(ctl.pid)?;
    let agent_start = Sample::of(agent_pid)?;
    eprintln!("loadgen: {label}: measuring CPU for {} s", settings.window.as_secs());
    tokio::time::sleep(settings.window).await;
    let end = Sample::of(ctl.pid)?;
    let agent_end = Sample::of(agent_pid)?;
    let c1 = ctl.counters().await?;
    anyhow::ensure!(
        c1.online == fleet.n as u64,
        "{label}: {} of {} agents online at the end of the window",
        c1.online,
        fleet.n
    );
    stop_both(&mut ctl, &mut agents).await;
    Ok(LinkRow { allocator, n: fleet.n, connect, base, held, end, agent_start, agent_end, counters: (c0, c1) })
}

/// Enrolment is 16 POSTs in parallel, each a TLS handshake and a SQLite
/// insert, plus an fsynced identity file: allow 20 ms each, and a minute.
fn enrol_budget(n: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(20) * n as u32
}

/// The connect storm: allow 10 ms an agent, and a minute.
fn connect_budget(n: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(10) * n as u32
}
