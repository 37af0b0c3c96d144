//! `dalaba-loadgen`: how much memory and CPU the controller spends holding
//! agent links.
//!
//! For each agent count N it starts a real `dalaba-controller serve` on
//! loopback, enrols N agents and links them with one `dalaba-agent simulate`
//! process (the real agent code, one full agent per entry), then samples the
//! controller from `/proc`: RSS before and with N links, RSS per link, CPU
//! across a window of steady heartbeat, threads and descriptors. For the
//! largest N it also measures where a link's memory goes (connections that
//! stop after TCP, after TLS), the controller with `MALLOC_ARENA_MAX=2`,
//! and Mosquitto holding as many MQTT-over-TLS clients, when installed. It
//! prints Markdown tables and stops its children.
//!
//! ```sh
//! cargo run --release -p dalaba-e2e --bin dalaba-loadgen -- --agents 1000,10000
//! ```
//!
//! Run it with `--release`: it builds and runs the controller and agent in
//! its own profile. Loopback only; every wait has a deadline.
//!
//! # Layout
//! - `controller`: the controller process and the API calls the bench makes.
//! - `links`: enrolling a fleet, and measuring the controller holding it.
//! - `breakdown`: connections that stop at the TCP or TLS layer.
//! - `mqtt`: Mosquitto and hand-written MQTT clients, the peer.
//! - `procstat`: reading RSS, CPU time, threads and descriptors from `/proc`.
//! - `report`: the Markdown tables.

#[path = "loadgen/breakdown.rs"]
mod breakdown;
#[path = "loadgen/controller.rs"]
mod controller;
#[path = "loadgen/links.rs"]
mod links;
#[path = "loadgen/mqtt.rs"]
mod mqtt;
#[path = "loadgen/procstat.rs"]
mod procstat;
#[path = "loadgen/report.rs"]
mod report;

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};

use crate::breakdown::Layer;
use crate::links::{Allocator, Settings};
use crate::report::Report;

/// Measures controller memory and CPU per agent link.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Agent counts to measure, each with its own controller.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    agents: Vec<usize>,
    /// Seconds of steady heartbeat over which CPU is measured; 60 is four
    /// heartbeat intervals.
    #[arg(long, default_value_t = 60)]
    window_secs: u64,
    /// Seconds to wait after the last agent came online before sampling.
    #[arg(long, default_value_t = 20)]
    settle_secs: u64,
    /// The controller's tracing filter. At "info" every connect is a log
    /// line, itself a cost in a connect storm.
    #[arg(long, default_value = "warn")]
    controller_log: String,
    /// KEY=VALUE added to the environment of the measured controllers
    /// (all but the one that enrols), e.g.
    /// LD_PRELOAD of a heap profiler (see docs/benchmarks.md).
    #[arg(long, value_parser = key_value)]
    controller_env: Vec<(String, String)>,
    /// Parts of the run to leave out.
    #[arg(long, value_delimiter = ',', value_enum)]
    skip: Vec<Part>,
}

/// The parts of a run. All but the first are done for the largest N only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    /// Real agents linked to the controller, for every N.
    Links,
    /// Connections that stop after TCP.
    TcpLayer,
    /// Connections that stop after TLS.
    TlsLayer,
    /// The controller with `MALLOC_ARENA_MAX=2`.
    Arena,
    /// Mosquitto with as many MQTT-over-TLS clients.
    Mqtt,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match bench(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dalaba-loadgen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn bench(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(!args.agents.is_empty() && !args.agents.contains(&0), "--agents needs counts above zero");
    let largest = args.agents.iter().copied().max().unwrap_or(0);
    // This process holds up to N connections itself (layers, MQTT); the
    // children inherit the limit, whatever they raise on their own.
    raise_fd_limit(largest as u64 + 4096)?;
    // Build before the clock starts (a no-op when fresh).
    let _ = (dalaba_e2e::bins::controller(), dalaba_e2e::bins::agent());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut report = Report { machine: procstat::machine(), ..Report::default() };
    let result = runtime.block_on(run(&args, largest, &mut report));
    // Whatever was measured before a failure is still worth seeing.
    println!("\n{}", report.render());
    result
}

/// The main measurement for every N, then the extras for the largest. A
/// failed extra becomes a note in the report.
async fn run(args: &Args, largest: usize, report: &mut Report) -> anyhow::Result<()> {
    let settings = Settings {
        controller_log: args.controller_log.clone(),
        settle: Duration::from_secs(args.settle_secs),
        window: Duration::from_secs(args.window_secs),
        controller_env: args.controller_env.clone(),
    };
    if !args.skip.contains(&Part::Links) {
        let mut kept = None;
        for &n in &args.agents {
            eprintln!("loadgen: enrolling {n} agents");
            let fleet = links::enrol(n, &settings).await.with_context(|| format!("enrolling {n} agents"))?;
            report.fleets.push(fleet.enrolment);
            let row = links::measure(&fleet, Allocator::Default, &settings).await?;
            eprintln!("loadgen: {}", row.summary());
            report.links.push(row);
            if n == largest && kept.is_none() {
                kept = Some(fleet);
            }
        }
        let fleet = kept.context("the largest fleet is kept")?;
        if !args.skip.contains(&Part::Arena) {
            match links::measure(&fleet, Allocator::TwoArenas, &settings).await {
                Ok(row) => {
                    eprintln!("loadgen: {}", row.summary());
                    report.links.push(row);
                }
                Err(e) => report.notes.push(format!("MALLOC_ARENA_MAX=2: {e:#}")),
            }
        }
    }
    for (layer, part) in [(Layer::Tcp, Part::TcpLayer), (Layer::Tls, Part::TlsLayer)] {
        if !args.skip.contains(&part) {
            eprintln!("loadgen: {largest} connections stopping at {layer:?}");
            match breakdown::layer(layer, largest, &settings).await {
                Ok(row) => report.layers.push(row),
                Err(e) => report.notes.push(format!("{layer:?} layer: {e:#}")),
            }
        }
    }
    if !args.skip.contains(&Part::Mqtt) {
        match mqtt::find_mosquitto() {
            Some(path) => {
                eprintln!("loadgen: mosquitto with {largest} clients");
                match mqtt::bench(&path, largest, &settings).await {
                    Ok(row) => report.peer = Some(row),
                    Err(e) => report.notes.push(format!("Mosquitto: {e:#}")),
                }
            }
            None => report.notes.push("Mosquitto is not installed (apt-get install mosquitto); no peer row.".into()),
        }
    }
    Ok(())
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

/// Lifts the open-file limit to `want` (both soft and hard when allowed,
/// else soft to hard) and fails if that is not enough.
fn raise_fd_limit(want: u64) -> anyhow::Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    let hard = now.maximum.unwrap_or(u64::MAX);
    if now.current.unwrap_or(u64::MAX) >= want {
        return Ok(());
    }
    let wanted = Rlimit { current: Some(want), maximum: Some(want.max(hard)) };
    if setrlimit(Resource::Nofile, wanted).is_err() {
        let _ = setrlimit(Resource::Nofile, Rlimit { current: Some(hard), maximum: now.maximum });
    }
    let got = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    anyhow::ensure!(
        got >= want,
        "open-file limit {got} is below the {want} this run needs; raise the hard limit (ulimit -Hn) or measure fewer agents"
    );
    Ok(())
}
