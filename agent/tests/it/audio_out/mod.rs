//! The real audio path: the `dalaba-agent run` binary, as a child process,
//! plays a scheduled tone from its cache through cpal into ALSA, with the
//! controller unreachable (its URL points at a closed port).
//!
//! - ALSA's `file` plugin over `null` (set through `XDG_CONFIG_HOME` before
//!   the agent first touches ALSA) captures the exact samples: the tone is
//!   there, at its frequency and at the level of its gain and volume. The
//!   `null` device is not paced in real time, so only content is checked
//!   there, never time.
//! - PulseAudio's null sink is paced in real time: its monitor, recorded
//!   with `parec`, shows when the first sample came out (see
//!   [`pulse_null_sink_first_sample_within_50_ms`] for the calibration).
//! - Failures: a device that does not exist, a missing or corrupt file —
//!   each item is logged as failed with its reason and the agent runs on.

pub mod support;

use std::path::Path;
use std::time::Duration;

use dalaba_audio::level::{rms_dbfs, sine, zero_crossing_frequency};
use dalaba_protocol::state::PlayOutcome;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_dalaba-agent");

/// The tone: 1 kHz at amplitude 0.5, two seconds.
fn tone() -> Content {
    Content::opus(&sine(1000.0, RATE, 2.0, 0.5))
}

#[test]
fn file_plugin_captures_the_scheduled_tone_at_its_gain_and_volume() {
    let work = tempfile::tempdir().expect("tempdir");
    let state = work.path().join("state");
    let tone = tone();
    let start_ms = wall_ms() + 3_000;
    let (gain_db, volume) = (-3.0, 70);
    let item = Item { id: "tone@1".into(), start_ms, content: &tone, volume };
    prepare_state(&state, &[item], gain_db, &[&tone]);
    let xdg = asoundrc(&work.path().join("xdg"), FILE_PLUGIN_ASOUNDRC);
    let raw = work.path().join("captured.raw");
    let mut agent = Agent::spawn(
        Path::new(BIN),
        work.path(),
        &state,
        "default",
        &[("XDG_CONFIG_HOME", &xdg), ("ALSA_TEST_PCM_FILE", &raw)],
    );
    let log = agent.wait_logged(&["tone@1"], Duration::from_secs(30));
    drop(agent); // closes the capture file
    let event = log.pending.iter().find(|e| e.id == "tone@1").expect("the event awaits the controller");
    assert_eq!(event.outcome, PlayOutcome::Completed, "{event:?}");
    assert!(event.started_ms.is_some_and(|s| s >= start_ms - 5), "{event:?}");

    let bytes = std::fs::read(&raw).expect("the capture file");
    let (left, right) = (s16_channel(&bytes, 2, 0), s16_channel(&bytes, 2, 1));
    assert_eq!(left, right, "every channel carries the same mono signal");
    assert!(onset(&left, 0, 1e-4).is_some(), "the tone is in the capture");
    // The null device is not paced: it takes the samples as fast as the
    // callback makes them, so the (unoptimised) decoder can fall behind and
    // the mixer insert silence (an underrun). Compare the content without
    // the gaps.
    let parts = stretches(&left);
    let seconds = parts.iter().map(|p| p.len()).sum::<usize>() as f64 / f64::from(RATE);
    assert!((seconds - 2.0).abs() < 0.02, "two seconds of tone, not {seconds} s");
    // Frequency and level on the longest stretch without a gap.
    let longest = parts.iter().max_by_key(|p| p.len()).expect("a stretch");
    assert!(longest.len() > RATE as usize / 5, "a stretch of at least 0.2 s, not {} samples", longest.len());
    let middle = &longest[RATE as usize / 100..longest.len() - RATE as usize / 100];
    let freq = zero_crossing_frequency(middle, RATE).expect("a tone");
    assert!((freq - 1000.0).abs() < 2.0, "{freq} Hz");
    // 0.5 × 10^(−3/20) × 0.7² = 0.1734 peak: −18.2 dBFS RMS.
    let expected_dbfs = 20.0 * (0.5 * 10f64.powf(gain_db / 20.0) * 0.49 / 2f64.sqrt()).log10();
    let measured = rms_dbfs(middle);
    assert!((measured - expected_dbfs).abs() < 0.5, "{measured:.2} dBFS, expected {expected_dbfs:.2}");
}

/// The stretches of sound in `x`, split at 16 or more samples of silence
/// (a sine's own zero crossings never last that long).
fn stretches(x: &[f32]) -> Vec<&[f32]> {
    let mut out = Vec::new();
    let (mut start, mut quiet) = (None, 0);
    for (i, s) in x.iter().enumerate() {
        if s.abs() > 1e-4 {
            start.get_or_insert(i);
            quiet = 0;
        } else if let Some(from) = start {
            quiet += 1;
            if quiet >= 16 {
                out.push(&x[from..=i - quiet]);
                (start, quiet) = (None, 0);
            }
        }
    }
    if let Some(from) = start {
        out.push(&x[from..x.len() - quiet]);
    }
    out
}

#[test]
fn a_missing_device_and_bad_files_fail_with_reasons_and_the_agent_runs_on() {
    let work = tempfile::tempdir().expect("tempdir");
    let xdg = asoundrc(&work.path().join("xdg"), FILE_PLUGIN_ASOUNDRC);
    let raw = work.path().join("captured.raw");
    let env = [("XDG_CONFIG_HOME", xdg.as_path()), ("ALSA_TEST_PCM_FILE", raw.as_path())];
    let tone = tone();

    // A sound card that is not there.
    let state = work.path().join("no-card");
    let item = Item { id: "nocard@1".into(), start_ms: wall_ms() + 2_000, content: &tone, volume: 100 };
    prepare_state(&state, &[item], 0.0, &[&tone]);
    let mut agent = Agent::spawn(Path::new(BIN), work.path(), &state, "plughw:7,0", &env);
    let log = agent.wait_logged(&["nocard@1"], Duration::from_secs(30));
    let event = &log.pending[0];
    assert_eq!(event.outcome, PlayOutcome::Failed);
    let reason = event.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("plughw:7,0") && reason.contains("no ALSA output device"), "{reason}");
    assert!(agent.is_running(), "a missing sound card does not stop the agent");
    drop(agent);

    // A corrupt file in the cache, and one the cache lost after the plan
    // was made (the core believes it cached until the player opens it).
    let state = work.path().join("bad-files");
    let corrupt = Content::raw(b"OggS this is no Ogg page at all, just bytes".repeat(40), 2_000);
    let vanished = Content::opus(&sine(440.0, RATE, 1.0, 0.5));
    let t = wall_ms() + 2_000;
    let items = [
        Item { id: "corrupt@1".into(), start_ms: t, content: &corrupt, volume: 100 },
        Item { id: "vanished@1".into(), start_ms: t + 1_000, content: &vanished, volume: 100 },
    ];
    prepare_state(&state, &items, 0.0, &[&corrupt, &vanished]);
    let mut agent = Agent::spawn(Path::new(BIN), work.path(), &state, "default", &env);
    let cached = state.join("cache").join(&vanished.sha256);
    std::thread::sleep(Duration::from_millis(1_000)); // let the agent scan its cache first
    std::fs::remove_file(&cached).expect("remove");
    let log = agent.wait_logged(&["corrupt@1", "vanished@1"], Duration::from_secs(30));
    for (id, expect) in [("corrupt@1", "cannot play"), ("vanished@1", "cannot open")] {
        let event = log.pending.iter().find(|e| e.id == id).expect("logged");
        assert_eq!(event.outcome, PlayOutcome::Failed, "{event:?}");
        let reason = event.reason.as_deref().unwrap_or_default();
        assert!(reason.contains(expect), "{id}: {reason}");
    }
    assert!(agent.is_running());
}

/// The first sample through a real-time paced sink comes within 50 ms of
/// the scheduled time.
///
/// ALSA's default device goes to PulseAudio (`pcm.!default { type pulse }`),
/// whose null sink `village` runs on the system clock; `parec` records its
/// monitor and a reader thread stamps every chunk with the wall clock as it
/// arrives. Calibration of the recording chain (`Recording::wall_us_at`):
/// a chunk cannot arrive before its last sample was rendered, so the
/// earliest (arrival − samples received after the one in question / 48 kHz)
/// over the chunks holding or following it within 3 s (samples parec lost
/// before it cannot pull it early) places a sample on the wall clock, with no
/// reference but the wall clock itself; the local window follows the sink's
/// clock where it drifts from the wall clock (~50 ppm here). What remains is
/// the monitor path's constant delay, below the 5 ms chunk period
/// (`--latency-msec=5`); measured, the onsets land 5 ± 1 ms before the
/// scheduled instant, well inside the 50 ms bound. The tone's onset on that
/// clock minus the scheduled time is the start error. Skipped, with a notice,
/// only when pulseaudio is not installed (`.ci/run` installs it).
#[test]
fn pulse_null_sink_first_sample_within_50_ms() {
    if !has_tool("pulseaudio") || !has_tool("parec") {
        eprintln!("SKIPPED pulse_null_sink_first_sample_within_50_ms: pulseaudio or parec is not installed");
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let runtime = work.path().join("runtime");
    let pulse = Pulse::start(&runtime).expect("pulseaudio starts");
    let recorder = Recorder::start(&runtime);
    let state = work.path().join("state");
    let tone = Content::opus(&sine(1000.0, RATE, 0.5, 0.5));
    let start_ms = wall_ms() + 3_000;
    let items: Vec<Item<'_>> = (0..3)
        .map(|n| Item { id: format!("t{n}"), start_ms: start_ms + n * 1_500, content: &tone, volume: 100 })
        .collect();
    prepare_state(&state, &items, 0.0, &[&tone]);
    let xdg = asoundrc(&work.path().join("xdg"), PULSE_ASOUNDRC);
    let mut agent = Agent::spawn(
        Path::new(BIN),
        work.path(),
        &state,
        "default",
        &[("XDG_CONFIG_HOME", &xdg), ("XDG_RUNTIME_DIR", &runtime), ("HOME", &runtime)],
    );
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    let log = agent.wait_logged(&ids, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300)); // the last samples reach parec
    let recording = recorder.stop();
    drop(agent);
    drop(pulse);
    let mut from = 0;
    for item in &items {
        let event = log.pending.iter().find(|e| e.id == item.id).expect("logged");
        assert_eq!(event.outcome, PlayOutcome::Completed, "{event:?}");
        let at = onset(&recording.samples, from, 0.01).expect("the tone is in the recording");
        from = at + RATE as usize / 2;
        let onset_us = recording.wall_us_at(at);
        let error_ms = (onset_us - item.start_ms * 1_000) as f64 / 1_000.0;
        let reported = event.started_ms.map(|s| s - item.start_ms);
        eprintln!("{}: first sample {error_ms:+.1} ms from schedule (agent reported {reported:?} ms)", item.id);
        assert!(error_ms.abs() <= 50.0, "{}: first sample {error_ms:+.1} ms from its scheduled time", item.id);
    }
}
