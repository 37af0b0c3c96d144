//! `dalaba-livebench`: the live-broadcast benchmarks.
//!
//! ```sh
//! cargo run --release -p dalaba-e2e --bin dalaba-livebench -- latency   # Dalaba loopback + impaired, Snapcast 50/200 ms
//! cargo run --release -p dalaba-e2e --bin dalaba-livebench -- reach     # emergency to 212 simulated villages
//! cargo run --release -p dalaba-e2e --bin dalaba-livebench -- fanout    # one stream to 2,000 raw links
//! ```
//!
//! Each prints its figures as Markdown. Loopback only; every process it
//! starts is stopped at the end. `latency` needs `pulseaudio`,
//! `pulseaudio-utils`, `libasound2-plugins`, and for the peer rows
//! `snapserver` and `snapclient`. See docs/benchmarks.md.
//!
//! # Layout
//! - `setup`: binaries, the controller, the wall clock, percentiles.
//! - `audio`: the paced sink, the click signal, and finding the clicks.
//! - `proxy`: the impairing TCP proxy (delay, jitter, retransmissions).
//! - `latency`: mouth-to-speaker runs, Dalaba and Snapcast.
//! - `reach`: emergency reach over a county of simulated agents.
//! - `fanout`: one stream to thousands of raw links.

#[path = "livebench/audio.rs"]
mod audio;
#[path = "livebench/fanout.rs"]
mod fanout;
#[path = "livebench/latency.rs"]
mod latency;
// Shared with the loadgen; this bench reads CPU time and RSS only.
#[allow(dead_code)]
#[path = "loadgen/procstat.rs"]
mod procstat;
#[path = "livebench/proxy.rs"]
mod proxy;
#[path = "livebench/reach.rs"]
mod reach;
#[path = "livebench/setup.rs"]
mod setup;

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::proxy::Impairment;

/// The live-broadcast benchmarks.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Mouth-to-speaker latency, Dalaba (loopback, impaired) and Snapcast.
    Latency {
        /// Clicks per run.
        #[arg(long, default_value_t = 220)]
        clicks: usize,
        /// Click spacing, ms (latencies must stay below it).
        #[arg(long, default_value_t = 500)]
        spacing_ms: usize,
        /// Runs to leave out: loopback, impaired, snap50, snap200.
        #[arg(long, value_delimiter = ',')]
        skip: Vec<String>,
        /// snapclient's `--player`.
        #[arg(long, default_value = "alsa:buffer_time=40,fragments=4")]
        snap_player: String,
    },
    /// Emergency reach: request → first audio at each of 212 agents.
    Reach {
        /// Also through the impairing proxy.
        #[arg(long)]
        impaired: bool,
    },
    /// One live stream to many raw agent links.
    Fanout {
        /// Links.
        #[arg(long, default_value_t = 2000)]
        links: usize,
        /// Stream length, s.
        #[arg(long, default_value_t = 60)]
        secs: u64,
    },
}

/// The impaired link of issue 4: 60 ± 30 ms each way, 1 % of chunks
/// retransmitted after 200 ms.
const IMPAIRED: Impairment = Impairment {
    delay: Duration::from_millis(60),
    jitter: Duration::from_millis(30),
    loss: 0.01,
    rto: Duration::from_millis(200),
};

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let result = setup::Bins::build().and_then(|bins| {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        runtime.block_on(run(&bins, args.bench))
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dalaba-livebench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(bins: &setup::Bins, bench: Bench) -> anyhow::Result<()> {
    println!("machine: {}", procstat::machine());
    match bench {
        Bench::Latency { clicks, spacing_ms, skip, snap_player } => {
            // 4 s before the first click: the paging warm-up (2 s) and the
            // jitter buffer settling.
            let signal = audio::Signal::new(clicks, spacing_ms, 4_000);
            let mut runs = Vec::new();
            let wanted = |name: &str| !skip.iter().any(|s| s == name);
            if wanted("loopback") {
                runs.push(latency::dalaba(bins, &signal, None).await?);
                print_run(runs.last());
            }
            if wanted("impaired") {
                runs.push(latency::dalaba(bins, &signal, Some(IMPAIRED)).await?);
                print_run(runs.last());
            }
            for buffer in [50, 200] {
                if wanted(&format!("snap{buffer}")) {
                    match latency::snapcast(&signal, buffer, &snap_player).await {
                        Ok(r) => {
                            runs.push(r);
                            print_run(runs.last());
                        }
                        Err(e) => println!("Snapcast, buffer {buffer} ms: {e:#}"),
                    }
                }
            }
            print_latency_table(&runs);
        }
        Bench::Reach { impaired } => {
            let mut rows = vec![reach::run(bins, None).await?];
            if impaired {
                rows.push(reach::run(bins, Some(IMPAIRED)).await?);
            }
            println!(
                "\n| links | agents | p50 | p99 | p100 | no first audio | start request answered | load before → after |"
            );
            println!("|---|---:|---:|---:|---:|---:|---:|---|");
            for r in rows {
                println!(
                    "| {} | {} | {:.0} ms | {:.0} ms | {:.0} ms | {} | {:.0} ms | {} → {} |",
                    r.name, r.agents, r.reach.p50, r.reach.p99, r.reach.max, r.silent, r.answer_ms, r.load.0, r.load.1
                );
            }
        }
        Bench::Fanout { links, secs } => {
            let f = fanout::run(bins, links, secs).await?;
            let expected = f.frames_sent * f.links as u64;
            let share = |n: u64| 100.0 * n as f64 / expected.max(1) as f64;
            println!(
                "\n| links | frames per link | delivered | within {} ms | gaps | dropped by the controller | capture → arrival p50 / p99 / max | controller CPU, idle links | controller CPU, streaming (kernel) | controller RSS | links' process CPU | rest of machine | load before → after |",
                fanout::IN_TIME_MS
            );
            println!("|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|");
            println!(
                "| {} | {} | {:.3} % | {:.3} % | {} | {} | {:.0} / {:.0} / {:.0} ms | {:.1} % | {:.1} % ({:.1} %) | {:.1} MiB | {:.1} % | {:.1} % | {} → {} |",
                f.links,
                f.frames_sent,
                share(f.received),
                share(f.in_time),
                f.gaps,
                f.dropped,
                f.delay.p50,
                f.delay.p99,
                f.delay.max,
                f.cpu_idle,
                f.cpu_stream,
                f.cpu_stream_kernel,
                f.rss_mib,
                f.cpu_bench,
                f.cpu_other,
                f.load.0,
                f.load.1
            );
        }
    }
    Ok(())
}

fn print_run(run: Option<&latency::Run>) {
    let Some(r) = run else { return };
    let s = r.measured.spread();
    eprintln!(
        "livebench: {}: {} clicks, p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms, missing {}, dropouts {} ({:.0} ms)",
        r.name, s.n, s.p50, s.p95, s.max, r.measured.missing, r.measured.gaps, r.measured.gap_ms
    );
    for n in &r.notes {
        eprintln!("livebench:   {n}");
    }
}

fn print_latency_table(runs: &[latency::Run]) {
    println!(
        "\n| run | clicks found | p50 | p95 | p99 | max | min | clicks missing | dropouts (total) | load before → after |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in runs {
        let s = r.measured.spread();
        println!(
            "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} | {} ({:.0} ms) | {} → {} |",
            r.name,
            s.n,
            s.p50,
            s.p95,
            s.p99,
            s.max,
            s.min,
            r.measured.missing,
            r.measured.gaps,
            r.measured.gap_ms,
            r.load.0,
            r.load.1
        );
    }
    for r in runs {
        for n in &r.notes {
            println!("- {}: {n}", r.name);
        }
    }
    let find = |prefix: &str| runs.iter().find(|r| r.name.starts_with(prefix)).map(|r| r.measured.spread());
    if let Some(d) = find("Dalaba, loopback") {
        for snap in ["Snapcast, buffer 50", "Snapcast, buffer 200"] {
            if let Some(s) = find(snap).filter(|s| s.n > 0 && d.n > 0) {
                println!(
                    "- ratio Dalaba loopback / {snap} ms: p50 {:.2}, p95 {:.2}",
                    d.p50 / s.p50.max(1e-9),
                    d.p95 / s.p95.max(1e-9)
                );
            }
        }
    }
}
