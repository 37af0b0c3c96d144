//! Live sessions with real `dalaba-agent run` processes: preemption of a
//! scheduled item by an emergency (and its resumption), one session on
//! three agents, and an agent that loses its link mid-session and rejoins.
//!
//! Every agent plays through cpal and ALSA into its own PulseAudio null
//! sink, whose monitor `parec` records ([`dalaba_e2e::pulse`]): paced in
//! real time, so an emergency can interrupt an item, and a recording is a
//! timeline (sample `i` was rendered `i / 48 000` s after the first). Wall
//! times come from the agents' JSON logs, the play events and the session
//! reports (all on this machine's clock), and are tied to a recording by
//! one anchor each: an instant the agent reported for a sample it played.

use std::time::{Duration, Instant};

use dalaba_e2e::audio::{RATE, county_day, cron_at, tone_wav, wall_ms};
use dalaba_e2e::proc::Proc;
use dalaba_e2e::proxy::Proxy;
use dalaba_e2e::pulse::{Pulse, Recorder, tone_amplitude, write_asoundrc};
use dalaba_e2e::relay::RelayEmulator;
use dalaba_e2e::{bins, wait_for};
use serde_json::{Value, json};

use crate::cluster::Cluster;

/// Analysis window: 10 ms, so 500, 800, 1200 and 1500 Hz fall on bins.
const WINDOW: usize = 480;
const WINDOW_MS: f64 = 10.0;
/// The least amplitude a second tone needs for a window to count as
/// holding two. A tone that stops (or starts) inside a window, against
/// silence, leaks onto the other tone's bin: for 500 and 1500 Hz in 480
/// samples at most 0.048 of its amplitude (0.012 for these 0.25 tones),
/// and with only a sliver of the tone left in the window that leak can be
/// more than half of what the tone itself shows. Two tones sharing a
/// window, each for at least a third of it, show 0.08 or more each.
const MIXED_FLOOR: f64 = 0.04;
/// The agent's defaults (protocol `PlaybackSettings`) and the emergency
/// warm-up (`EMERGENCY_WARMUP_MS`).
const WARMUP_MS: i64 = 2_000;
const HOLD_MS: i64 = 5_000;

/// One agent process and where its audio goes.
struct Village {
    agent: Proc,
    agent_id: String,
    village_id: i64,
    capture: Recorder,
}

/// How an agent reaches the controller and switches its amplifier.
struct Setup<'a> {
    relay: Option<&'a RelayEmulator>,
    via: Option<&'a Proxy>,
}

/// Uploads a tone to the library; returns its item id.
async fn upload_tone(c: &Cluster, title: &str, hz: f64, secs: f64) -> i64 {
    let path = format!("/api/v1/library?filename=tone-{hz}.wav&title={title}&category=health");
    let r = c.api.call("POST", &path, Some(tone_wav(hz, secs, 0.25)), "audio/wav").await.expect("upload");
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_i64().expect("item id")
}

/// Enrols and starts an agent for the `n`th village, its audio recorded
/// from the `n`th sink of `pulse`.
async fn start_village(c: &Cluster, pulse: &Pulse, name: &str, n: usize, setup: Setup<'_>) -> Village {
    let village_id = c.village_id(n).await;
    let dir = c.enrol_agent(name, village_id).await;
    let mut identity = dalaba_agent::identity::Identity::load(&dir).expect("identity");
    if let Some(proxy) = setup.via {
        identity.controller_url = format!("https://{}", proxy.addr());
        identity.save(&dir).expect("identity saved");
    }
    let amplifier = match setup.relay {
        Some(relay) => format!(
            "[amplifier]\ndriver = \"modbus-rtu\"\n[amplifier.serial]\nport = \"{}\"\nbaud = 9600\ntimeout_ms = 500\n\
             [amplifier.modbus]\nslave = 1\ncoil = 0\n",
            relay.path().display()
        ),
        None => "[amplifier]\ndriver = \"simulated\"\n".to_string(),
    };
    let config = format!(
        "[storage]\nstate_dir = \"{}\"\n{amplifier}[audio]\noutput = \"default\"\n\
         [link]\nbackoff_max_secs = 2\ndevice_poll_secs = 1\n[log]\nformat = \"json\"\nlevel = \"info\"\n",
        dir.display()
    );
    let config_path = dir.with_extension("toml");
    std::fs::write(&config_path, config).expect("agent config");
    let xdg = c.dir.path().join("xdg");
    write_asoundrc(&xdg).expect("asoundrc");
    let capture = pulse.record(n, &c.dir.path().join(format!("{name}.raw"))).expect("parec");
    let sink = Pulse::sink(n);
    let mut env = vec![("XDG_CONFIG_HOME", xdg.to_str().expect("utf-8")), ("PULSE_SINK", sink.as_str())];
    let pulse_env = pulse.env();
    env.extend(pulse_env.iter().map(|(k, v)| (*k, v.as_str())));
    let agent = Proc::spawn(name, &bins::agent(), &["--config", config_path.to_str().expect("utf-8"), "run"], &env)
        .expect("agent starts");
    Village { agent, agent_id: identity.agent_id, village_id, capture }
}

fn start_pulse(c: &Cluster, sinks: usize) -> Pulse {
    Pulse::start(&c.dir.path().join("pulse"), sinks).expect("pulseaudio with null sinks")
}

/// Wall times (Unix ms) of the agent's JSON log lines whose message is
/// `message`, in order.
fn logged_at(agent: &Proc, message: &str) -> Vec<i64> {
    agent
        .output()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|v| v["fields"]["message"] == message)
        .filter_map(|v| v["timestamp"].as_str().and_then(rfc3339_ms))
        .collect()
}

/// "2026-11-28T22:27:57.123456Z" → Unix ms.
fn rfc3339_ms(s: &str) -> Option<i64> {
    let (date, time) = s.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (h, min) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?);
    let secs: f64 = t.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + min * 60) as f64 * 1000.0 + secs * 1000.0).round() as i64)
}

/// What a 10 ms window of a capture holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Heard {
    Silence,
    /// Mostly this tone (index into the tones asked for).
    Tone(usize),
    /// Two tones at comparable levels: only possible where one ends in the
    /// window and the other begins, or where they overlap.
    Mixed,
}

/// A capture cut into 10 ms windows, each classified against `tones`.
struct Timeline {
    heard: Vec<Heard>,
}

/// A run of windows that hear the same.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Run {
    heard: Heard,
    /// First window and one past the last.
    from: usize,
    to: usize,
}

impl Timeline {
    /// The recording so far.
    fn of(capture: &Recorder, tones: &[f64]) -> Timeline {
        Timeline::of_samples(&capture.samples(), tones)
    }

    fn of_samples(samples: &[f32], tones: &[f64]) -> Timeline {
        let heard = samples
            .chunks_exact(WINDOW)
            .map(|w| {
                let amps: Vec<f64> = tones.iter().map(|&hz| tone_amplitude(w, hz, RATE)).collect();
                let mut order: Vec<usize> = (0..amps.len()).collect();
                order.sort_by(|&a, &b| amps[b].total_cmp(&amps[a]));
                let top = amps[order[0]];
                let second = order.get(1).map_or(0.0, |&i| amps[i]);
                if top < 0.01 {
                    Heard::Silence
                } else if second > 0.5 * top && second > MIXED_FLOOR {
                    Heard::Mixed
                } else {
                    Heard::Tone(order[0])
                }
            })
            .collect();
        Timeline { heard }
    }

    /// Seconds of windows that hear `tone`.
    fn seconds_of(&self, tone: usize) -> f64 {
        self.heard.iter().filter(|h| **h == Heard::Tone(tone)).count() as f64 * WINDOW_MS / 1000.0
    }

    /// The windows that hold two tones.
    fn mixed_windows(&self) -> Vec<usize> {
        self.heard.iter().enumerate().filter(|(_, h)| **h == Heard::Mixed).map(|(i, _)| i).collect()
    }

    /// The runs of tones in order, silences of up to `bridge` windows
    /// inside a tone (decoder underruns, a concealed frame) bridged, and
    /// runs shorter than 5 windows left out.
    fn tone_runs(&self, bridge: usize) -> Vec<Run> {
        let mut runs: Vec<Run> = Vec::new();
        for (i, &h) in self.heard.iter().enumerate() {
            if !matches!(h, Heard::Tone(_)) {
                continue;
            }
            match runs.last_mut() {
                Some(r) if r.heard == h && i - r.to <= bridge => r.to = i + 1,
                _ => runs.push(Run { heard: h, from: i, to: i + 1 }),
            }
        }
        runs.retain(|r| r.to - r.from >= 5);
        // Runs of one tone split by a short run of another left out above
        // join again.
        let mut joined: Vec<Run> = Vec::new();
        for r in runs {
            match joined.last_mut() {
                Some(last) if last.heard == r.heard && r.from - last.to <= bridge => last.to = r.to,
                _ => joined.push(r),
            }
        }
        joined
    }
}

/// Milliseconds of `windows` analysis windows.
fn ms(windows: usize) -> i64 {
    (windows as f64 * WINDOW_MS) as i64
}

async fn session_report(c: &Cluster, session: &str) -> Value {
    c.api.get(&format!("/api/v1/live/{session}")).await.expect("report").json()
}

/// Waits until the session has ended and every agent in it sent its final
/// report (frames counted).
async fn wait_ended(c: &Cluster, session: &str, within: Duration) -> Value {
    wait_for("the session's end and every agent's final report", within, || async {
        let r = session_report(c, session).await;
        let agents = r["agents"].as_array()?;
        let done = !r["ended_at_ms"].is_null() && agents.iter().all(|a| a["frames_received"].is_u64());
        done.then_some(r)
    })
    .await
    .expect("session over")
}

async fn start_session(c: &Cluster, body: Value) -> String {
    let r = c.api.post("/api/v1/live", &body).await.expect("start");
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["session_id"].as_str().expect("session id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_preempts_a_scheduled_item_which_resumes_where_it_stopped() {
    const ITEM_HZ: f64 = 500.0;
    const ITEM_SECS: f64 = 12.0;
    const EMERGENCY_HZ: f64 = 1500.0;
    const EMERGENCY_SECS: f64 = 4.0;
    let c = Cluster::start(2).await;
    let pulse = start_pulse(&c, 1);
    let item = upload_tone(&c, "法治宣传", ITEM_HZ, ITEM_SECS).await;
    let emergency = upload_tone(&c, "防汛紧急通知", EMERGENCY_HZ, EMERGENCY_SECS).await;
    let relay = RelayEmulator::start(1).expect("relay emulator");
    let epoch = (Instant::now(), wall_ms());
    let to_wall = |at: Instant| epoch.1 + at.duration_since(epoch.0).as_millis() as i64;
    let v = start_village(&c, &pulse, "village", 0, Setup { relay: Some(&relay), via: None }).await;
    c.wait_online(1, Duration::from_secs(20)).await;
    wait_for("relay forced off at start", Duration::from_secs(10), || async {
        relay.writes().iter().any(|w| !w.on).then_some(())
    })
    .await
    .expect("forced off");

    // The long item, scheduled for this village 15 s ahead (to the second).
    let at_ms = (wall_ms() + 15_000) / 1000 * 1000;
    let schedule = json!({
        "name": "法治宣传", "playlist": [{"item_id": item}], "recurrence": {"cron": cron_at(at_ms)},
        "targets": {"villages": [v.village_id]}, "volume": 100,
    });
    let r = c.api.post("/api/v1/schedules", &schedule).await.expect("schedule");
    assert_eq!(r.status, 201, "{}", r.text());
    wait_for("the plan and its content on the agent", Duration::from_secs(10), || async {
        let agents = c.agents().await;
        let a = agents.into_iter().find(|a| a["id"] == v.agent_id.as_str())?;
        (a["sync"]["state"]["state"] == "up_to_date").then_some(())
    })
    .await
    .expect("agent synced");
    assert!(wall_ms() < at_ms - WARMUP_MS - 1000, "synced too late for the test to mean anything");

    // The item is heard: three seconds of it in the capture.
    wait_for("three seconds of the item in the capture", Duration::from_secs(25), || async {
        let t = Timeline::of(&v.capture, &[ITEM_HZ, EMERGENCY_HZ]);
        (t.seconds_of(0) >= 3.0).then_some(())
    })
    .await
    .expect("the item plays");
    // The capture is a timeline only while parec keeps up: it starts about
    // two seconds late (measured), and a starved machine could lose more.
    // What it lost from now on is measured, so a short capture is not
    // blamed on the agent.
    let shortfall_before = v.capture.shortfall_secs(v.capture.samples().len());

    // The emergency.
    let session = start_session(
        &c,
        json!({"title": "防汛紧急通知", "priority": "emergency", "targets": {"villages": [v.village_id]},
               "source": {"type": "library_item", "item_id": emergency}}),
    )
    .await;
    let report = wait_ended(&c, &session, Duration::from_secs(20)).await;

    // The item resumes and completes; its proof of play arrives.
    let plays = format!("/api/v1/villages/{}/plays?day={}", v.village_id, county_day(at_ms));
    let event = wait_for("the item's play event", Duration::from_secs(20), || async {
        let events = c.api.get(&plays).await.ok()?.json()["events"].as_array().cloned()?;
        events.into_iter().next()
    })
    .await
    .expect("play event stored");
    wait_for("the relay off one hold after the item", Duration::from_secs(10), || async {
        let w = relay.writes();
        (w.len() >= 3 && w.last().is_some_and(|w| !w.on)).then_some(())
    })
    .await
    .expect("relay off");
    let (accepted, session_ended) =
        (logged_at(&v.agent, "live session started"), logged_at(&v.agent, "live session ended"));
    let (stopped, starts) = (logged_at(&v.agent, "playback stopped"), logged_at(&v.agent, "starting playback"));
    drop(v.agent);

    // The play event: the item completed, interrupted once and resumed.
    assert_eq!(event["outcome"], "completed", "{event}");
    assert!(event["reason"].as_str().is_some_and(|r| r.contains("resumed")), "{event}");
    assert_eq!(event["scheduled_ms"], at_ms, "{event}");
    assert_eq!(event["amplifier_confirmed"], true, "{event}");
    let started = event["started_ms"].as_i64().expect("started");
    let ended = event["ended_ms"].as_i64().expect("ended");
    assert!((started - at_ms).abs() < 100, "started {} ms off schedule", started - at_ms);

    // The session report: the village played it, with its times.
    assert_eq!(report["end_reason"], "played out", "{report}");
    let agents = report["agents"].as_array().expect("agents");
    assert_eq!(agents.len(), 1, "{report}");
    let a = &agents[0];
    assert_eq!((a["village_id"].as_i64(), a["agent_id"].as_str()), (Some(v.village_id), Some(v.agent_id.as_str())));
    assert_eq!(a["state"], "ended", "{a}");
    let from_ms = a["playing_from_ms"].as_i64().expect("played");
    let to_ms = a["playing_to_ms"].as_i64().expect("ended");
    assert!(a["frames_lost"].as_u64().is_some_and(|n| n <= 5), "{a}");
    assert!(a["frames_received"].as_u64().is_some_and(|n| n >= 195), "{a}");
    assert_eq!((accepted.len(), session_ended.len(), stopped.len()), (1, 1, 1), "one session, one preemption");
    let accepted = accepted[0];

    // The audio: 500 Hz, then 1500 Hz, then 500 Hz again, never together.
    let samples = v.capture.samples();
    let shortfall = v.capture.shortfall_secs(samples.len());
    let t = Timeline::of_samples(&samples, &[ITEM_HZ, EMERGENCY_HZ]);
    // Runs of one tone up to 600 ms apart count as one: on a loaded machine
    // the stream can stall for a few hundred milliseconds (concealed, then
    // caught up); what matters here is the order of the tones.
    let runs = t.tone_runs(60);
    let order: Vec<Heard> = runs.iter().map(|r| r.heard).collect();
    assert_eq!(order, vec![Heard::Tone(0), Heard::Tone(1), Heard::Tone(0)], "{runs:?}");
    let (before, emergency_run, after) = (runs[0], runs[1], runs[2]);
    // Never together but at the two switches: a window there may straddle
    // the switch, and on a loaded machine the output's period can carry
    // one more (at most 20 ms on each side of a switch).
    let switches = [before.to, emergency_run.from, emergency_run.to, after.from];
    let mixed: Vec<usize> = t.mixed_windows();
    assert!(
        mixed.len() <= 4 && mixed.iter().all(|&w| switches.iter().any(|&s| w.abs_diff(s) <= 2)),
        "windows holding both tones {mixed:?}, away from the switches {switches:?}; runs {runs:?}"
    );
    // Resumed where it stopped: the item's tone adds up to its length once
    // (less whatever the capture lost while it played).
    let item_secs = t.seconds_of(0);
    let capture_lost = (shortfall - shortfall_before).max(0.0);
    assert!(
        item_secs < ITEM_SECS + 0.3 && item_secs > ITEM_SECS - 0.3 - capture_lost,
        "{item_secs:.2} s of the item (restarted from zero would be more); runs {runs:?}; the capture lost \
         {capture_lost:.2} s meanwhile"
    );
    let emergency_secs = t.seconds_of(1);

    // Timing, tied to the capture by the session's first sample as the
    // agent reported it.
    let wall_at = |window: usize| from_ms - ms(emergency_run.from) + ms(window);
    let item_stopped = wall_at(before.to);
    let stop_latency = item_stopped - accepted;
    let gap = ms(emergency_run.from - before.to);
    // The resumption, tied to the item's end as the play event says.
    let resumed = ended - ms(after.to - after.from);
    let resume_latency = resumed - to_ms;
    eprintln!(
        "preemption: item stopped {stop_latency} ms after the agent accepted the emergency; emergency audio {gap} ms \
         after the item's last sample ({} ms after accepting); item resumed {resume_latency} ms after the session \
         ended on the agent; {:.2} s of item before, {:.2} s after; {item_secs:.2} s of item, {emergency_secs:.2} s \
         of emergency in all; the capture lost {capture_lost:.2} s meanwhile",
        from_ms - accepted,
        ms(before.to - before.from) as f64 / 1000.0,
        ms(after.to - after.from) as f64 / 1000.0,
    );
    // The live stream's gaps under load are concealed by the decoder, which
    // extends the tone a little.
    assert!((3.7..4.7).contains(&emergency_secs), "{emergency_secs:.2} s of the emergency");
    assert!(stop_latency < 250, "the item stopped {stop_latency} ms after the emergency was accepted");
    assert!(from_ms - accepted < 1_500, "emergency audio {} ms after accepting", from_ms - accepted);
    // The capture is read in 10 ms windows, so this figure is good to one
    // window either way; the order itself is checked exactly from the
    // agent's log on the next line.
    let resolution = WINDOW_MS as i64;
    assert!((-resolution..3_000).contains(&resume_latency), "resumed {resume_latency} ms after the session ended");
    assert!(stopped[0] - accepted < 50 && starts.len() == 2 && starts[1] >= session_ended[0], "{stopped:?} {starts:?}");

    // The relay: on one warm-up before the item, on through the switch-over
    // and back, off one hold after the item's end; every CRC valid.
    let writes = relay.writes();
    let on = writes.iter().position(|w| w.on).expect("switched on");
    assert_eq!(writes[on + 1..].len(), 1, "one switch after the on: {writes:?}");
    let off = writes[on + 1];
    assert!(!off.on, "{writes:?}");
    let (on_ms, off_ms) = (to_wall(writes[on].at), to_wall(off.at));
    assert!((at_ms - on_ms - WARMUP_MS).abs() < 300, "on {} ms before the item", at_ms - on_ms);
    assert!((off_ms - ended - HOLD_MS).abs() < 700, "off {} ms after the item", off_ms - ended);
    assert!(relay.requests().iter().all(|r| r.crc_ok), "every request had a valid CRC");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_play_one_paging_session_from_the_library() {
    const HZ: f64 = 800.0;
    const SECS: f64 = 5.0;
    let c = Cluster::start(3).await;
    let pulse = start_pulse(&c, 3);
    let item = upload_tone(&c, "通知", HZ, SECS).await;
    let mut villages = Vec::new();
    for n in 0..3 {
        let setup = Setup { relay: None, via: None };
        villages.push(start_village(&c, &pulse, &format!("village-{n}"), n, setup).await);
    }
    c.wait_online(3, Duration::from_secs(20)).await;
    let session = start_session(
        &c,
        json!({"title": "村委会通知", "priority": "paging", "targets": {"county": true},
               "source": {"type": "library_item", "item_id": item}}),
    )
    .await;
    let report = wait_ended(&c, &session, Duration::from_secs(20)).await;
    assert_eq!(report["end_reason"], "played out", "{report}");
    let agents = report["agents"].as_array().expect("agents");
    let mut listed: Vec<i64> = agents.iter().filter_map(|a| a["village_id"].as_i64()).collect();
    listed.sort_unstable();
    let mut expected: Vec<i64> = villages.iter().map(|v| v.village_id).collect();
    expected.sort_unstable();
    assert_eq!(listed, expected, "{report}");
    assert_eq!(report["counts"]["played"], 3, "{report}");
    for a in agents {
        assert_eq!(a["state"], "ended", "{a}");
        assert!(a["playing_from_ms"].is_i64() && a["playing_to_ms"].is_i64(), "{a}");
        assert!(a["frames_lost"].as_u64().is_some_and(|n| n <= 5), "{a}");
        assert!(a["frames_received"].as_u64().is_some_and(|n| n >= (SECS * 50.0) as u64 - 5), "{a}");
        assert_eq!(a["frames_dropped"], 0, "{a}");
    }
    for v in villages {
        let Village { agent, agent_id, capture, .. } = v;
        drop(agent);
        let t = Timeline::of(&capture, &[HZ]);
        let heard = t.seconds_of(0);
        let runs = t.tone_runs(15);
        eprintln!("{agent_id}: {heard:.2} s of the tone in {} run(s)", runs.len());
        // A recorded source waits for the amplifiers' warm-up: the whole
        // notice is heard, from its first word.
        // (Loss concealment under load can stretch the tone a little.)
        assert!((SECS - 0.3..SECS + 0.7).contains(&heard), "{agent_id}: {heard:.2} s of the tone");
        assert_eq!(runs.len(), 1, "{agent_id}: one stretch of tone: {runs:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cut_off_mid_session_rejoins_within_a_second_of_reconnecting() {
    const HZ: f64 = 1200.0;
    const SECS: f64 = 12.0;
    let c = Cluster::start(2).await;
    let pulse = start_pulse(&c, 1);
    let item = upload_tone(&c, "寻人启事", HZ, SECS).await;
    let proxy = Proxy::start(format!("127.0.0.1:{}", c.port).parse().expect("addr")).await.expect("proxy");
    let v = start_village(&c, &pulse, "village", 0, Setup { relay: None, via: Some(&proxy) }).await;
    c.wait_online(1, Duration::from_secs(20)).await;
    let session = start_session(
        &c,
        json!({"title": "寻人启事", "priority": "emergency", "targets": {"villages": [v.village_id]},
               "source": {"type": "library_item", "item_id": item}}),
    )
    .await;
    let state = |r: &Value| r["agents"][0]["state"].as_str().unwrap_or("").to_owned();
    wait_for("the agent playing", Duration::from_secs(10), || async {
        (state(&session_report(&c, &session).await) == "playing").then_some(())
    })
    .await
    .expect("playing");
    let connections = proxy.forwarded().len();

    // The link is cut: the controller sees the agent go.
    proxy.cut();
    wait_for("the agent offline in the session", Duration::from_secs(5), || async {
        (state(&session_report(&c, &session).await) == "offline").then_some(())
    })
    .await
    .expect("offline");
    // The outage itself: long enough for the agent's reconnect attempts to
    // fail and back off, well under its 10 s silence limit.
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.restore();
    let reconnected = wait_for("the agent's new connection", Duration::from_secs(5), || async {
        proxy.forwarded().get(connections).copied()
    })
    .await
    .expect("reconnected");
    let playing_again = wait_for("the agent playing again", Duration::from_secs(5), || async {
        (state(&session_report(&c, &session).await) == "playing").then(Instant::now)
    })
    .await
    .expect("playing again");
    let report = wait_ended(&c, &session, Duration::from_secs(20)).await;
    let welcomed = logged_at(&v.agent, "connected to the controller");
    let rejoined = logged_at(&v.agent, "live session rejoined");
    let ended = logged_at(&v.agent, "live session ended");
    drop(v.agent);

    let shown = playing_again.duration_since(reconnected);
    assert_eq!(welcomed.len(), 2, "connected twice: {welcomed:?}");
    assert_eq!(rejoined.len(), 1, "the fresh start found the session on the air: {rejoined:?}");
    assert_eq!(ended.len(), 1, "the session did not end on the agent during the outage");
    let rejoin_ms = rejoined[0] - welcomed[1];
    assert!(shown < Duration::from_secs(1), "shown playing {shown:?} after reconnecting");
    assert!((0..1_000).contains(&rejoin_ms), "rejoined {rejoin_ms} ms after the welcome");

    // The audio: the tone, a gap for the outage, the tone again within a
    // second of the welcome.
    let a = &report["agents"][0];
    assert_eq!(report["end_reason"], "played out", "{report}");
    let from_ms = a["playing_from_ms"].as_i64().expect("played");
    let t = Timeline::of(&v.capture, &[HZ]);
    // Glitches under load up to 600 ms are bridged; the 2 s outage is not.
    let runs = t.tone_runs(60);
    assert_eq!(runs.len(), 2, "the tone, an outage, the tone: {runs:?}");
    let wall_at = |window: usize| from_ms - ms(runs[0].from) + ms(window);
    let heard_again = wall_at(runs[1].from) - welcomed[1];
    let outage = ms(runs[1].from - runs[0].to);
    eprintln!(
        "rejoin: shown playing {shown:?} after the new connection, rejoined {rejoin_ms} ms after the welcome, \
         heard again {heard_again} ms after it; {outage} ms without audio; frames lost {}",
        a["frames_lost"]
    );
    assert!((0..1_000).contains(&heard_again), "heard again {heard_again} ms after the welcome");
}

/// The classifier itself, on made-up captures: a tone that ends (or
/// begins) anywhere inside a window against silence is never two tones;
/// two tones sharing a window at comparable lengths (each well over a
/// third of it) are.
#[test]
fn a_tone_edge_against_silence_is_not_two_tones_but_a_switch_is() {
    let sine = |hz: f64, i: usize| (0.25 * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(RATE)).sin()) as f32;
    for cut in 1..WINDOW {
        let ends: Vec<f32> = (0..2 * WINDOW).map(|i| if i < WINDOW + cut { sine(500.0, i) } else { 0.0 }).collect();
        let starts: Vec<f32> = (0..2 * WINDOW).map(|i| if i >= WINDOW + cut { sine(1500.0, i) } else { 0.0 }).collect();
        for samples in [ends, starts] {
            let t = Timeline::of_samples(&samples, &[500.0, 1500.0]);
            assert!(t.mixed_windows().is_empty(), "edge at sample {cut}: {:?}", t.heard);
        }
    }
    for cut in WINDOW / 3 + 10..=2 * WINDOW / 3 - 10 {
        let switch: Vec<f32> = (0..WINDOW).map(|i| if i < cut { sine(500.0, i) } else { sine(1500.0, i) }).collect();
        let t = Timeline::of_samples(&switch, &[500.0, 1500.0]);
        assert_eq!(t.mixed_windows(), vec![0], "switch at sample {cut}");
    }
}
