//! Scheduled broadcasting end to end, with real processes and real parts:
//! a tone uploaded to the controller's library, a schedule for one village,
//! the agent receiving its desired state, downloading the content over
//! HTTPS, playing it through cpal into ALSA (the `file` plugin captures the
//! samples) while switching a Modbus RTU relay board (an emulator on a
//! pseudo-terminal pair) — with the controller stopped after the sync — and
//! its proof of play reaching the controller once after it returns.

use std::path::Path;
use std::time::{Duration, Instant};

use dalaba_audio::level::{rms_dbfs, zero_crossing_frequency};
use dalaba_e2e::audio::{RATE, county_day, cron_at, file_plugin_config, s16_left, tone_wav, wall_ms};
use dalaba_e2e::proc::Proc;
use dalaba_e2e::relay::RelayEmulator;
use dalaba_e2e::{bins, wait_for};
use serde_json::{Value, json};

use crate::cluster::Cluster;

/// Seconds of tone.
const TONE_SECS: f64 = 2.0;
const TONE_HZ: f64 = 1000.0;
const AMPLITUDE: f64 = 0.25;
/// The agent's defaults (protocol `PlaybackSettings`).
const WARMUP_MS: i64 = 2_000;
const HOLD_MS: i64 = 5_000;

fn agent_config(dir: &Path, relay: &Path) -> String {
    format!(
        "[storage]\nstate_dir = \"{}\"\n\
         [amplifier]\ndriver = \"modbus-rtu\"\n\
         [amplifier.serial]\nport = \"{}\"\nbaud = 9600\ntimeout_ms = 500\n\
         [amplifier.modbus]\nslave = 1\ncoil = 0\n\
         [audio]\noutput = \"default\"\n\
         [link]\nbackoff_max_secs = 2\ndevice_poll_secs = 1\n\
         [log]\nformat = \"text\"\nlevel = \"info\"\n",
        dir.display(),
        relay.display()
    )
}

async fn sync_state(c: &Cluster, agent: &str) -> Option<Value> {
    let agents = c.agents().await;
    agents.into_iter().find(|a| a["id"] == agent).map(|a| a["sync"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_tone_plays_offline_through_alsa_and_the_relay_and_is_reported_once() {
    let mut c = Cluster::start(2).await;
    let village = c.village_id(0).await;
    let dir = c.enrol_agent("village", village).await;
    let agent_id = dalaba_agent::identity::Identity::load(&dir).expect("identity").agent_id;

    // The library: a tone uploaded as WAV, measured and transcoded.
    let r = c
        .api
        .call(
            "POST",
            "/api/v1/library?filename=tone.wav&title=试音&category=health",
            Some(tone_wav(TONE_HZ, TONE_SECS, AMPLITUDE)),
            "audio/wav",
        )
        .await
        .expect("upload");
    assert_eq!(r.status, 201, "{}", r.text());
    let item = r.json();
    let gain_db = item["gain_db"].as_f64().expect("gain");

    // The agent: ALSA file plugin for audio, a Modbus relay emulator.
    let relay = RelayEmulator::start(1).expect("relay emulator");
    let epoch = (Instant::now(), wall_ms());
    let to_wall = |at: Instant| epoch.1 + at.duration_since(epoch.0).as_millis() as i64;
    let xdg = file_plugin_config(&c.dir.path().join("xdg"));
    let raw = c.dir.path().join("captured.raw");
    let config = dir.with_extension("toml");
    std::fs::write(&config, agent_config(&dir, relay.path())).expect("agent config");
    let agent = Proc::spawn(
        "agent",
        &bins::agent(),
        &["--config", config.to_str().expect("utf-8"), "run"],
        &[("XDG_CONFIG_HOME", xdg.to_str().expect("utf-8")), ("ALSA_TEST_PCM_FILE", raw.to_str().expect("utf-8"))],
    )
    .expect("agent starts");
    c.wait_online(1, Duration::from_secs(20)).await;
    wait_for("relay forced off at start", Duration::from_secs(10), || async {
        relay.writes().iter().any(|w| !w.on).then_some(())
    })
    .await
    .expect("forced off");

    // The agent's first plan (nothing to play yet), so that its next
    // version is known to carry the schedule.
    let first = wait_for("the agent's first plan", Duration::from_secs(15), || async {
        sync_state(&c, &agent_id).await.and_then(|s| s["version"].as_u64())
    })
    .await
    .expect("a first plan");

    // The schedule: once, 25 s from now (to the second), for this village.
    let at_ms = (wall_ms() + 25_000) / 1000 * 1000;
    let schedule = json!({
        "name": "试音广播",
        "playlist": [{"item_id": item["id"]}],
        "recurrence": {"cron": cron_at(at_ms)},
        "targets": {"villages": [village]},
        "volume": 100,
    });
    let r = c.api.post("/api/v1/schedules", &schedule).await.expect("schedule");
    assert_eq!(r.status, 201, "{}", r.text());

    // The agent gets its plan and the content, and says so.
    wait_for("agent up to date", Duration::from_secs(15), || async {
        sync_state(&c, &agent_id)
            .await
            .filter(|s| s["state"]["state"] == "up_to_date" && s["version"].as_u64().is_some_and(|v| v > first))
            .map(|_| ())
    })
    .await
    .expect("agent synced before the broadcast");
    assert!(wall_ms() < at_ms - WARMUP_MS - 1000, "synced too late for the test to mean anything");

    // Controller down; the broadcast happens regardless.
    c.controller.take().expect("controller").kill().await;
    // Done when the relay went on for the item and off again after the hold.
    let within = Duration::from_millis((at_ms - wall_ms()).max(0) as u64 + 15_000);
    wait_for("the relay on for the item and off after the hold", within, || async {
        let writes = relay.writes();
        let on = writes.iter().position(|w| w.on)?;
        writes[on..].iter().any(|w| !w.on).then_some(())
    })
    .await
    .expect("the broadcast played with the controller down");
    assert!(!relay.coil(0), "the relay is off after the hold");

    // The controller returns; the proof of play arrives, once.
    c.start_controller().await;
    let path = format!("/api/v1/villages/{village}/plays?day={}", county_day(at_ms));
    let events = wait_for("the play event", Duration::from_secs(30), || async {
        let r = c.api.get(&path).await.ok()?;
        let events = r.json()["events"].as_array().cloned()?;
        (!events.is_empty()).then_some(events)
    })
    .await
    .expect("play event stored");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = c.api.get(&path).await.expect("plays").json()["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(again.len(), 1, "stored once: {again:?}");
    let event = &events[0];
    assert_eq!(event["outcome"], "completed", "{event}");
    assert_eq!(event["scheduled_ms"], at_ms, "{event}");
    assert_eq!(event["amplifier_confirmed"], true, "{event}");
    let started = event["started_ms"].as_i64().expect("started");
    let ended = event["ended_ms"].as_i64().expect("ended");
    assert!((started - at_ms).abs() < 100, "started {} ms off schedule", started - at_ms);

    // The relay: on one warm-up before the audio, off one hold after it, every frame with a valid CRC.
    let writes = relay.writes();
    let on = writes.iter().find(|w| w.on).expect("switched on");
    let off = writes.iter().rev().find(|w| !w.on).expect("switched off");
    let (on_ms, off_ms) = (to_wall(on.at), to_wall(off.at));
    assert!((at_ms - on_ms - WARMUP_MS).abs() < 300, "on {} ms before the audio", at_ms - on_ms);
    assert!((off_ms - ended - HOLD_MS).abs() < 500, "off {} ms after the audio", off_ms - ended);
    assert!(relay.requests().iter().all(|r| r.crc_ok), "every request had a valid CRC");

    // The audio: the tone, at its gain, in the samples ALSA received.
    drop(agent);
    let samples = s16_left(&std::fs::read(&raw).expect("capture"));
    let first = samples.iter().position(|s| s.abs() > 1e-3).expect("sound in the capture");
    let end = samples.iter().rposition(|s| s.abs() > 1e-3).expect("sound") + 1;
    let seconds = (end - first) as f64 / f64::from(RATE);
    assert!((seconds - TONE_SECS).abs() < 0.05, "{seconds} s of sound");
    let middle = &samples[first + RATE as usize / 4..first + RATE as usize * 7 / 4];
    let freq = zero_crossing_frequency(middle, RATE).expect("a tone");
    assert!((freq - TONE_HZ).abs() < 2.0, "{freq} Hz");
    let expected = 20.0 * (AMPLITUDE / 2f64.sqrt()).log10() + gain_db;
    let measured = rms_dbfs(middle);
    assert!((measured - expected).abs() < 1.0, "{measured:.2} dBFS, expected {expected:.2} (gain {gain_db:.2} dB)");
}
