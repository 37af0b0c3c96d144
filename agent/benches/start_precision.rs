//! Start precision of the real agent: first sample at the output vs the
//! scheduled time, over many scheduled items.
//!
//! `cargo bench -p dalaba-agent --bench start_precision` (release build;
//! needs `pulseaudio`, `pulseaudio-utils` and `libasound2-plugins`). Optional
//! arguments: the number of items (default 120) and their spacing in ms
//! (default 750).
//!
//! The `dalaba-agent run` binary plays short 1 kHz bursts from its cache,
//! scheduled in its desired state, with the controller unreachable; ALSA's
//! default device goes to a PulseAudio null sink, paced in real time, whose
//! monitor `parec` records. Sample 0 of the recording is placed on the wall
//! clock from the arrival times of parec's chunks (see
//! `tests/it/audio_out/support.rs`, `Recording::wall_us_at`); each
//! burst's onset on that clock minus its scheduled time is its start error.
//! Starts are spread over the millisecond so they fall anywhere in the
//! output's periods.

#[path = "../tests/it/audio_out/support.rs"]
mod support;

use std::path::Path;
use std::time::Duration;

use dalaba_audio::level::sine;
use support::*;

fn main() {
    // `cargo bench` passes `--bench`; take only numbers.
    let numbers: Vec<i64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let count = numbers.first().copied().unwrap_or(120).max(1);
    let spacing_ms = numbers.get(1).copied().unwrap_or(750).max(300);
    if !has_tool("pulseaudio") || !has_tool("parec") {
        eprintln!(
            "start_precision: needs pulseaudio and parec (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)"
        );
        std::process::exit(2);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let runtime = work.path().join("runtime");
    let pulse = Pulse::start(&runtime).expect("pulseaudio starts");
    let recorder = Recorder::start(&runtime);
    let state = work.path().join("state");
    let burst = Content::opus(&sine(1000.0, RATE, 0.1, 0.5));
    let first_ms = wall_ms() + 5_000; // the agent starts well before, even on a busy machine
    let items: Vec<Item<'_>> = (0..count)
        .map(|n| Item {
            id: format!("burst{n}"),
            // 0–96 ms of spread, so starts land anywhere within a period.
            start_ms: first_ms + n * spacing_ms + (n * 37) % 97,
            content: &burst,
            volume: 100,
        })
        .collect();
    prepare_state(&state, &items, 0.0, &[&burst]);
    let xdg = asoundrc(&work.path().join("xdg"), PULSE_ASOUNDRC);
    let bin = Path::new(env!("CARGO_BIN_EXE_dalaba-agent"));
    eprintln!("start_precision: {count} items, {spacing_ms} ms apart, about {} s", count * spacing_ms / 1000 + 4);
    let mut agent = Agent::spawn(
        bin,
        work.path(),
        &state,
        "default",
        &[("XDG_CONFIG_HOME", &xdg), ("XDG_RUNTIME_DIR", &runtime), ("HOME", &runtime)],
    );
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    let within = Duration::from_millis((count * spacing_ms + 30_000) as u64);
    let log = agent.wait_logged(&ids, within);
    std::thread::sleep(Duration::from_millis(300));
    let recording = recorder.stop();
    drop(agent);
    drop(pulse);

    let mut errors = Vec::new();
    let mut reported = Vec::new();
    for item in &items {
        let event = log.pending.iter().find(|e| e.id == item.id).expect("logged");
        if event.outcome != dalaba_protocol::state::PlayOutcome::Completed {
            eprintln!("{}: {:?} {:?}", item.id, event.outcome, event.reason);
            continue;
        }
        // Search from 300 ms before the scheduled instant: a burst is
        // matched to its own slot even when another one went missing.
        let sample0 = recording.wall_us_at(0);
        let expected = (item.start_ms * 1_000 - sample0) * i64::from(RATE) / 1_000_000;
        let from = usize::try_from(expected - i64::from(RATE) * 3 / 10).unwrap_or(0);
        let Some(at) = onset(&recording.samples, from, 0.01) else {
            eprintln!("{}: not found in the recording", item.id);
            continue;
        };
        let onset_us = recording.wall_us_at(at);
        let error = (onset_us - item.start_ms * 1_000) as f64 / 1_000.0;
        let said = event.started_ms.map(|s| (s - item.start_ms) as f64);
        if error.abs() > 20.0 || said.is_some_and(|s| s.abs() > 20.0) {
            eprintln!("{}: start error {error:+.1} ms, agent reported {said:?} ms", item.id);
        }
        errors.push(error);
        reported.extend(said);
    }
    println!("start precision over {} of {count} items (PulseAudio null sink, parec on its monitor):", errors.len());
    summary("start error (first sample at the output − scheduled), ms", &errors);
    summary("agent-reported Started.at_ms − scheduled, ms", &reported);
}

fn summary(what: &str, values: &[f64]) {
    if values.is_empty() {
        println!("  {what}: no values");
        return;
    }
    let mut abs: Vec<f64> = values.iter().map(|v| v.abs()).collect();
    abs.sort_by(f64::total_cmp);
    let pct = |p: f64| abs[((abs.len() - 1) as f64 * p).round() as usize];
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let (min, max) = values.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    println!(
        "  {what}: |error| p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}; signed mean {mean:+.1}, range {min:+.1} … {max:+.1}",
        pct(0.50),
        pct(0.95),
        pct(0.99),
        abs[abs.len() - 1],
    );
}
