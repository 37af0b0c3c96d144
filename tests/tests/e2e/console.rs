//! The live console in headless Chromium against real processes: a fake
//! microphone fed from a WAV tone, picked up by the page's AudioWorklet and
//! sent on the microphone WebSocket, reaches three real agents whose ALSA
//! `file` outputs then hold that tone; the page shows the villages playing
//! and the report afterwards. And the server's refusals on the page (a
//! second equal-priority session on a held village: 409; a village without
//! an agent: 422), another operator's session stopped from its own page,
//! and typed text spoken until it plays out. The controller host's input
//! offered as a source, refused on a controller without one (422, its
//! message on the page); and the microphone's cue: warming up first, "speak
//! now" only once the amplifiers' warm-up has passed.

use std::path::Path;
use std::time::Duration;

use dalaba_audio::level::{rms_dbfs, zero_crossing_frequency};
use dalaba_e2e::audio::{RATE, tone_wav};
use dalaba_e2e::proc::Proc;
use dalaba_e2e::pulse::{Pulse, Recorder, write_asoundrc};
use dalaba_e2e::webdriver::Browser;
use dalaba_e2e::{bins, wait_for};
use serde_json::{Value, json};

use crate::cluster::{Cluster, start_agent};

const WAIT: Duration = Duration::from_secs(30);
const TONE_HZ: f64 = 1000.0;
/// Seconds of tone in the WAV file; Chromium loops it.
const TONE_SECS: u32 = 4;
/// How long the microphone plays before the test stops the session.
const ON_AIR: Duration = Duration::from_secs(3);

/// A mono 16-bit 48 kHz WAV file of a 1 kHz tone (a whole number of
/// periods, so Chromium's loop joins without a click).
fn write_tone(path: &Path) {
    std::fs::write(path, tone_wav(TONE_HZ, f64::from(TONE_SECS), 0.5)).expect("write the tone");
}

/// Chromium with a fake microphone that plays `wav`, granted without asking.
async fn browser_with_microphone(wav: &Path) -> Browser {
    let args = [
        "--use-fake-ui-for-media-stream".to_string(),
        "--use-fake-device-for-media-stream".to_string(),
        format!("--use-file-for-fake-audio-capture={}", wav.display()),
    ];
    Browser::start_with(&args).await.expect("browser")
}

/// One village's real agent, playing into its own PulseAudio null sink,
/// paced in real time like a sound card, whose monitor is recorded.
struct VillageAgent {
    village: i64,
    recorder: Recorder,
    proc: Proc,
}

async fn start_village_agent(c: &Cluster, n: usize, xdg: &Path, pulse: &Pulse) -> VillageAgent {
    let village = c.village_id(n).await;
    let dir = c.enrol_agent(&format!("village-{n}"), village).await;
    let config = dir.with_extension("toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nstate_dir = \"{}\"\n[amplifier]\ndriver = \"simulated\"\n[audio]\noutput = \"default\"\n\
             [link]\nbackoff_max_secs = 2\ndevice_poll_secs = 1\n[log]\nformat = \"text\"\nlevel = \"info\"\n",
            dir.display()
        ),
    )
    .expect("agent config");
    let recorder = pulse.record(n, &c.dir.path().join(format!("captured-{n}.raw"))).expect("parec");
    let sink = Pulse::sink(n);
    let pulse_env = pulse.env();
    let mut env = vec![("XDG_CONFIG_HOME", xdg.to_str().expect("utf-8")), ("PULSE_SINK", sink.as_str())];
    env.extend(pulse_env.iter().map(|(k, v)| (*k, v.as_str())));
    let proc =
        Proc::spawn(&format!("agent-{n}"), &bins::agent(), &["--config", config.to_str().expect("utf-8"), "run"], &env)
            .expect("agent starts");
    VillageAgent { village, recorder, proc }
}

/// Opens `hash` and waits until the page's data is in.
async fn open_page(browser: &Browser, c: &Cluster, hash: &str, page: &str) {
    browser.open(&format!("{}/{hash}", c.url())).await.expect("open");
    browser
        .wait_until(
            &format!("the {page} page loaded"),
            &format!(
                "return document.body.dataset.ready === 'true' && \
                 !!document.querySelector('#page > [data-page=\"{page}\"][data-loaded=\"true\"] [data-live-form]');"
            ),
            WAIT,
        )
        .await
        .expect("page loaded");
}

/// Runs `script` in the page (statements, no return needed).
async fn run(browser: &Browser, script: &str) {
    browser.eval(&format!("{script}; return true;")).await.expect("script runs");
}

/// Ticks the target box of each village (they sit in collapsed township lists).
async fn pick_villages(browser: &Browser, villages: &[i64]) {
    for v in villages {
        run(browser, &format!("document.querySelector('[data-target-village=\"{v}\"]').click()")).await;
    }
}

/// Presses the start button and confirms; returns the confirmation's text.
async fn start_and_confirm(browser: &Browser) -> String {
    browser.click("[data-live-start]").await.expect("start");
    let text = browser
        .wait_until(
            "the confirmation",
            "const d = document.querySelector('[data-live-confirm]'); \
             return d && d.open ? d.querySelector('[data-live-confirm-text]').textContent : null;",
            WAIT,
        )
        .await
        .expect("confirmation shown");
    browser.click("[data-live-confirm-ok]").await.expect("confirm");
    text.as_str().unwrap_or_default().to_string()
}

async fn errors(browser: &Browser) -> Value {
    browser.eval("return window.__errors;").await.expect("eval")
}

async fn screenshot(browser: &Browser, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    let out = bins::target_dir().join("screenshots");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join(name), png).expect("write screenshot");
}

/// What a capture holds, measured in 10 ms blocks.
struct Capture {
    /// Seconds of sound (blocks above -40 dBFS).
    sound: f64,
    /// Seconds of sound whose zero-crossing frequency is the tone's.
    tone: f64,
    /// The median frequency of the blocks at the tone's full level (its
    /// RMS is -9 dBFS).
    loud_hz: f64,
    /// The share of those blocks at the tone's frequency.
    loud_share: f64,
}

/// Measures a recording (mono, 48 kHz, paced in real time): sound is any
/// 10 ms block above -40 dBFS; the tone, a block at its frequency.
fn analyse(samples: &[f32]) -> Capture {
    const BLOCK: usize = RATE as usize / 100;
    let (mut sound, mut tone, mut loud) = (0usize, 0usize, Vec::new());
    for block in samples.chunks_exact(BLOCK) {
        let level = rms_dbfs(block);
        if level < -40.0 {
            continue;
        }
        sound += 1;
        let hz = zero_crossing_frequency(block, RATE);
        tone += usize::from(hz.is_some_and(|f| (f - TONE_HZ).abs() < 3.0));
        if level > -10.0 {
            loud.extend(hz);
        }
    }
    loud.sort_by(f64::total_cmp);
    let at_tone = loud.iter().filter(|f| (*f - TONE_HZ).abs() < 3.0).count();
    let loud_share = at_tone as f64 / loud.len().max(1) as f64;
    let seconds = |blocks: usize| (blocks * BLOCK) as f64 / f64::from(RATE);
    Capture {
        sound: seconds(sound),
        tone: seconds(tone),
        loud_hz: loud.get(loud.len() / 2).copied().unwrap_or(0.0),
        loud_share,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fake_microphone_on_the_live_console_plays_its_tone_in_three_villages() {
    let c = Cluster::start(4).await;
    let pulse = Pulse::start(&c.dir.path().join("pulse"), 3).expect("pulseaudio with null sinks");
    let xdg = c.dir.path().join("xdg");
    write_asoundrc(&xdg).expect("asoundrc");
    let mut agents = Vec::new();
    for n in 0..3 {
        agents.push(start_village_agent(&c, n, &xdg, &pulse).await);
    }
    c.wait_online(3, WAIT).await;
    let wav = c.dir.path().join("mic-tone.wav");
    write_tone(&wav);
    let browser = browser_with_microphone(&wav).await;

    // The console: three villages, the microphone, emergency; start, confirm.
    open_page(&browser, &c, "#/live", "live").await;
    let villages: Vec<i64> = agents.iter().map(|a| a.village).collect();
    pick_villages(&browser, &villages).await;
    run(&browser, "document.querySelector('[data-live-source=\"microphone\"]').click()").await;
    run(&browser, "document.querySelector('[data-live-priority=\"emergency\"]').click()").await;
    screenshot(&browser, "console-form.png").await;
    let confirm = start_and_confirm(&browser).await;
    assert!(confirm.contains("3 个村") && confirm.contains("应急"), "{confirm}");

    // The grid: all three villages playing, amplifiers on; the meter moves.
    let all_playing = format!(
        "return [{}].every(v => {{ const c = document.querySelector(`[data-live-village=\"${{v}}\"]`); \
         return c && c.dataset.state === 'playing' && c.dataset.amp === 'on'; }});",
        villages.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
    );
    let playing = browser.wait_until("three villages playing", &all_playing, WAIT).await;
    if playing.is_err() {
        screenshot(&browser, "console-not-playing.png").await;
        let grid = browser.eval("return document.querySelector('[data-live-session]')?.innerText;").await;
        let error = browser.eval("return document.querySelector('[data-live-error]')?.innerText;").await;
        panic!("the villages did not all play: {grid:?} / {error:?} / {:?}", errors(&browser).await);
    }
    browser
        .wait_until(
            "the microphone meter showing the tone",
            "const m = document.querySelector('[data-mic-level]'); \
             return m && !m.hidden && Number(m.dataset.chunks) > 10 && Number(m.dataset.peakDb) > -12;",
            WAIT,
        )
        .await
        .expect("meter");
    screenshot(&browser, "console-live.png").await;

    // The tone flows for a while; then stop.
    tokio::time::sleep(ON_AIR).await;
    browser.click("[data-live-stop]").await.expect("stop");

    // The report on the page: three villages played, each from–to.
    let report = browser
        .wait_until(
            "the report listing three villages that played",
            "const r = document.querySelector('[data-live-report]'); \
             const rows = r ? [...r.querySelectorAll('[data-report-village][data-played=\"true\"]')] : []; \
             return r && !r.hidden && r.dataset.played === '3' && rows.length === 3 ? r.innerText : null;",
            WAIT,
        )
        .await
        .expect("report");
    let session = browser
        .eval("return document.querySelector('[data-live-session]').dataset.liveSession;")
        .await
        .expect("session id");
    let session = session.as_str().expect("id");
    for v in &villages {
        let name = browser
            .eval(&format!("return document.querySelector('[data-live-village=\"{v}\"] .lv-name').textContent;"))
            .await
            .expect("name");
        assert!(report.as_str().unwrap_or_default().contains(name.as_str().expect("text")), "{report}");
    }
    // Frames lost arrive with each agent's final report, after the end.
    let lost = browser
        .wait_until(
            "each agent's frames lost in the report",
            "const cells = [...document.querySelectorAll('[data-live-report] [data-frames-lost]')]; \
             return cells.length === 3 && cells.every(c => /^\\d+$/.test(c.dataset.framesLost)) \
               ? cells.map(c => Number(c.dataset.framesLost)) : null;",
            WAIT,
        )
        .await;
    if lost.is_err() {
        let text = browser.eval("return document.querySelector('[data-live-report]').innerText;").await;
        panic!("no frames lost on the page: {text:?}");
    }
    screenshot(&browser, "console-report.png").await;
    assert_eq!(errors(&browser).await, json!([]), "script errors on the page");

    // The controller's report agrees.
    let stored = c.api.get(&format!("/api/v1/live/{session}")).await.expect("report").json();
    assert_eq!(stored["source"], "microphone", "{stored}");
    assert_eq!(stored["priority"], "emergency", "{stored}");
    assert!(stored["frames_sent"].as_u64().unwrap_or(0) >= 100, "{stored}");

    // Each agent's loudspeaker output holds the tone.
    wait_for("every agent's final report", WAIT, || async {
        let r = c.api.get(&format!("/api/v1/live/{session}")).await.ok()?.json();
        let agents = r["agents"].as_array()?.clone();
        agents.iter().all(|a| a["state"] == "ended" && a["frames_received"].is_u64()).then_some(())
    })
    .await
    .expect("final reports");
    for a in &mut agents {
        a.proc.kill().await;
    }
    for a in &agents {
        let c = analyse(&a.recorder.samples());
        let what = format!(
            "village {}: {:.2} s of sound, {:.2} s at 1 kHz, {:.1} Hz at full level ({:.0} % of it)",
            a.village,
            c.sound,
            c.tone,
            c.loud_hz,
            c.loud_share * 100.0
        );
        eprintln!("{what}");
        assert!(c.tone >= 2.0, "{what}");
        assert!((c.loud_hz - TONE_HZ).abs() < 3.0 && c.loud_share > 0.6, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_refusals_stops_a_session_from_its_page_and_speaks_text() {
    let c = Cluster::start(2).await;
    let (held, empty) = (c.village_id(0).await, c.village_id(1).await);
    let dir = c.enrol_agent("held", held).await;
    let _agent = start_agent("agent", &dir);
    c.wait_online(1, WAIT).await;

    // Another operator is paging the village from their microphone.
    let body = json!({"title": "村委会通知", "priority": "paging", "targets": {"villages": [held]},
        "source": {"type": "microphone"}});
    let r = c.api.post("/api/v1/live", &body).await.expect("start");
    assert_eq!(r.status, 201, "{}", r.text());
    let first = r.json()["session_id"].as_str().expect("id").to_string();

    let wav = c.dir.path().join("mic-tone.wav");
    write_tone(&wav);
    let browser = browser_with_microphone(&wav).await;
    open_page(&browser, &c, "#/live", "live").await;
    browser
        .wait_until(
            "the session on the air in the list",
            &format!("return !!document.querySelector('[data-live-row=\"{first}\"][data-live=\"true\"]');"),
            WAIT,
        )
        .await
        .expect("listed");

    // Paging the same village: 409, with the holder named.
    pick_villages(&browser, &[held]).await;
    start_and_confirm(&browser).await;
    let message = browser
        .wait_until(
            "the 409 message",
            "const e = document.querySelector('[data-live-error]'); \
             return e && !e.hidden && e.dataset.status === '409' ? e.textContent : null;",
            WAIT,
        )
        .await
        .expect("409 shown");
    let message = message.as_str().expect("text");
    // In words: the village, what holds it and what to do.
    assert!(
        message.starts_with("无法开始")
            && message.contains("正在播出喊话“村委会通知”")
            && message.contains("请先停止它"),
        "{message}"
    );
    assert_eq!(
        browser.eval("return !!document.querySelector('[data-live-session]');").await.expect("eval"),
        json!(false),
        "no session view after a refusal"
    );

    // A village without an agent: 422 (the clicks untick the held village).
    pick_villages(&browser, &[held, empty]).await;
    start_and_confirm(&browser).await;
    let message = browser
        .wait_until(
            "the 422 message",
            "const e = document.querySelector('[data-live-error]'); \
             return e && !e.hidden && e.dataset.status === '422' ? e.textContent : null;",
            WAIT,
        )
        .await
        .expect("422 shown");
    let message = message.as_str().expect("text");
    assert!(message.starts_with("无法开始") && message.contains("都还没有登记终端"), "{message}");
    // In English too.
    browser.click("#lang-toggle").await.expect("language");
    let labels = browser
        .eval(
            "return [document.querySelector('[data-nav=\"live\"]').textContent, \
               document.querySelector('[data-live-start]').textContent];",
        )
        .await
        .expect("labels");
    assert_eq!(labels, json!(["Live", "Start paging"]));
    assert_eq!(errors(&browser).await, json!([]), "script errors on the page");

    // The other operator's session on its own page, stopped from there.
    browser.open(&format!("{}/#/live/{first}", c.url())).await.expect("open");
    browser
        .wait_until(
            "the session's page, on the air",
            &format!("return !!document.querySelector('[data-live-session=\"{first}\"][data-ended=\"false\"]');"),
            WAIT,
        )
        .await
        .expect("session page");
    browser.click("[data-live-stop]").await.expect("stop");
    browser
        .wait_until(
            "the session ended, its report shown",
            "const r = document.querySelector('[data-live-report]'); \
             return document.querySelector('[data-live-session]').dataset.ended === 'true' && r && !r.hidden;",
            WAIT,
        )
        .await
        .expect("stopped");
    let r = c.api.get(&format!("/api/v1/live/{first}")).await.expect("report").json();
    assert_eq!(r["end_reason"], "stopped by the operator", "{r}");

    // Now the village is free: typed text, spoken now, played out.
    open_page(&browser, &c, "#/live", "live").await;
    pick_villages(&browser, &[held]).await;
    run(&browser, "document.querySelector('[data-live-source=\"text\"]').click()").await;
    run(&browser, "document.querySelector('[data-live-text]').value = '请注意，今晚有大风。'").await;
    start_and_confirm(&browser).await;
    browser
        .wait_until(
            "the village playing the text",
            &format!("return document.querySelector('[data-live-village=\"{held}\"]')?.dataset.state === 'playing';"),
            WAIT,
        )
        .await
        .expect("playing");
    let report = browser
        .wait_until(
            "the text played out, the report shown",
            "const r = document.querySelector('[data-live-report]'); \
             return r && !r.hidden && r.dataset.played === '1' ? document.querySelector('[data-live-session]').innerText : null;",
            WAIT,
        )
        .await
        .expect("played out");
    assert!(report.as_str().unwrap_or_default().contains("played out"), "{report}");
    assert_eq!(errors(&browser).await, json!([]), "script errors on the page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn choosing_the_host_input_on_a_controller_without_one_shows_why_it_cannot_start() {
    let c = Cluster::start(1).await;
    let village = c.village_id(0).await;
    // Enrolled is enough: the host input is refused before anything is sent.
    c.enrol_agent("village", village).await;
    let browser = Browser::start().await.expect("browser");
    open_page(&browser, &c, "#/live", "live").await;
    pick_villages(&browser, &[village]).await;
    run(&browser, "document.querySelector('[data-live-source=\"host_input\"]').click()").await;
    let hint = browser
        .eval(
            "const p = document.querySelector('[data-live-host-hint]'); return p && !p.hidden ? p.textContent : null;",
        )
        .await
        .expect("eval");
    assert!(hint.as_str().unwrap_or_default().contains("[live] host_input"), "{hint}");
    let confirm = start_and_confirm(&browser).await;
    assert!(confirm.contains("控制器本机输入"), "{confirm}");

    let refused = "const e = document.querySelector('[data-live-error]'); \
                   return e && !e.hidden && e.dataset.status === '422' ? e.textContent : null;";
    let message = browser.wait_until("the 422 message", refused, WAIT).await.expect("422 shown");
    let message = message.as_str().expect("text");
    assert!(
        message.contains("控制器没有配置本机输入")
            && message.contains("no host input configured; set [live] host_input"),
        "{message}"
    );
    assert_eq!(
        browser.eval("return !!document.querySelector('[data-live-session]');").await.expect("eval"),
        json!(false),
        "no session view after a refusal"
    );

    // In English: the form's labels, and the refusal again.
    browser.click("#lang-toggle").await.expect("language");
    let label = browser
        .eval("return document.querySelector('[data-live-source=\"host_input\"]').parentElement.textContent;")
        .await
        .expect("label");
    assert_eq!(label, json!("Controller host input"));
    run(&browser, "document.querySelector('[data-live-error]').hidden = true").await;
    start_and_confirm(&browser).await;
    let message = browser.wait_until("the 422 message in English", refused, WAIT).await.expect("422 shown");
    let message = message.as_str().expect("text");
    assert!(
        message.starts_with("Cannot start: the controller has no host input configured")
            && message.contains("no host input configured; set [live] host_input"),
        "{message}"
    );
    assert_eq!(errors(&browser).await, json!([]), "script errors on the page");
}

/// Records each state the speak-now cue shows, with the page's clock, from
/// before the start: `window.__cue`, a list of `{state, text, at}`.
const RECORD_CUE: &str = "window.__cue = []; \
    new MutationObserver(() => { \
      const c = document.querySelector('[data-live-cue]'); \
      if (!c || c.hidden) return; \
      const last = window.__cue[window.__cue.length - 1]; \
      if (!last || last.state !== c.dataset.liveCue || last.text !== c.textContent) \
        window.__cue.push({ state: c.dataset.liveCue, text: c.textContent, at: Date.now() }); \
    }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true })";

/// The paging warm-up the agents wait (protocol `PlaybackSettings`), and
/// the margin the console adds for the start commands' way to them.
const PAGING_WARMUP_MS: i64 = 2_000;
const COMMAND_MARGIN_MS: i64 = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_microphone_the_console_says_to_wait_for_the_warm_up_and_then_to_speak() {
    let c = Cluster::start(1).await;
    let village = c.village_id(0).await;
    let dir = c.enrol_agent("village", village).await;
    let _agent = start_agent("agent", &dir);
    c.wait_online(1, WAIT).await;
    let wav = c.dir.path().join("mic-tone.wav");
    write_tone(&wav);
    let browser = browser_with_microphone(&wav).await;

    // Paging (the default) from the microphone.
    open_page(&browser, &c, "#/live", "live").await;
    pick_villages(&browser, &[village]).await;
    run(&browser, "document.querySelector('[data-live-source=\"microphone\"]').click()").await;
    run(&browser, RECORD_CUE).await;
    start_and_confirm(&browser).await;

    // Right after the start: warming up, announced, no cue to speak yet.
    let first = browser
        .wait_until(
            "the cue on the session view",
            "const c = document.querySelector('[data-live-cue]'); \
             return c && !c.hidden \
               ? [c.dataset.liveCue, c.querySelector('.lv-cue-main').textContent, c.getAttribute('aria-live')] : null;",
            WAIT,
        )
        .await
        .expect("cue shown");
    assert_eq!(first, json!(["warming", "正在预热扩音器…", "assertive"]));
    screenshot(&browser, "console-warming.png").await;

    // Then "speak now".
    let speak = browser
        .wait_until(
            "the speak-now cue",
            "const c = document.querySelector('[data-live-cue]'); \
             return c && !c.hidden && c.dataset.liveCue === 'speak' ? c.querySelector('.lv-cue-main').textContent : null;",
            WAIT,
        )
        .await
        .expect("speak now");
    assert_eq!(speak, json!("请讲话"));
    screenshot(&browser, "console-speak.png").await;

    // Not before the warm-up had passed since the controller started the
    // session (same host, same clock), and not long after.
    let session = browser
        .eval("return document.querySelector('[data-live-session]').dataset.liveSession;")
        .await
        .expect("session id");
    let session = session.as_str().expect("id");
    let report = c.api.get(&format!("/api/v1/live/{session}")).await.expect("report").json();
    let started = report["started_at_ms"].as_i64().expect("started_at_ms");
    let log = browser.eval("return window.__cue;").await.expect("cue log");
    let log = log.as_array().expect("list");
    let states: Vec<&str> = log.iter().map(|e| e["state"].as_str().unwrap_or_default()).collect();
    assert_eq!(states, ["warming", "speak"], "{log:?}");
    let speak_at = log[1]["at"].as_i64().expect("at") - started;
    assert!(
        (PAGING_WARMUP_MS..PAGING_WARMUP_MS + COMMAND_MARGIN_MS + 1_500).contains(&speak_at),
        "speak now {speak_at} ms after the start: {log:?}"
    );
    assert!(log[0]["at"].as_i64().expect("at") - started < PAGING_WARMUP_MS, "{log:?}");

    // The session is real: the village plays; stopped, the cue goes.
    browser
        .wait_until(
            "the village playing",
            &format!(
                "return document.querySelector('[data-live-village=\"{village}\"]')?.dataset.state === 'playing';"
            ),
            WAIT,
        )
        .await
        .expect("playing");
    browser.click("[data-live-stop]").await.expect("stop");
    browser
        .wait_until(
            "the session ended, the cue gone",
            "return document.querySelector('[data-live-session]').dataset.ended === 'true' && \
               document.querySelector('[data-live-cue]').hidden;",
            WAIT,
        )
        .await
        .expect("ended");
    assert_eq!(errors(&browser).await, json!([]), "script errors on the page");
}
