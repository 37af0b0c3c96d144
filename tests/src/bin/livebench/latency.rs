//! Mouth-to-speaker latency: the test signal spoken into the controller's
//! microphone WebSocket in real time, played by a real `dalaba-agent run`
//! through ALSA into the paced PulseAudio sink, on loopback or through the
//! impairing proxy; and the same signal through Snapcast into the same sink.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use dalaba_agent::identity::Identity;
use dalaba_agent::net::{ControllerUrl, Trust};
use dalaba_e2e::proc::Proc;
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::audio::{Measured, Pulse, Recorder, Signal, asoundrc, feed, measure};
use crate::proxy::{self, Impairment};
use crate::setup::{Bins, Controller, free_port, load};

/// One measured run.
#[derive(Debug, Clone)]
pub struct Run {
    /// What was measured ("Dalaba, loopback").
    pub name: String,
    /// The clicks and dropouts.
    pub measured: Measured,
    /// Extra facts for the report (frames, jitter-buffer counts, proxy).
    pub notes: Vec<String>,
    /// Load averages before and after.
    pub load: (String, String),
}

/// Dalaba: controller, one agent process, the microphone; `impair` puts
/// the proxy between agent and controller.
pub async fn dalaba(bins: &Bins, signal: &Signal, impair: Option<Impairment>) -> anyhow::Result<Run> {
    let name = if impair.is_some() { "Dalaba, impaired link" } else { "Dalaba, loopback" };
    let load_before = load();
    let dir = tempfile::tempdir()?;
    let ctl = Controller::start(bins, dir.path(), "warn,dalaba_controller::live=info").await?;
    let villages = ctl.import_county(1, 1).await?;
    let code = ctl.code(villages[0]).await?;
    let state = dir.path().join("agent");
    let enrol = tokio::process::Command::new(&bins.agent)
        .arg("--state-dir")
        .arg(&state)
        .args(["enrol", "--controller", &ctl.url, "--code", &code])
        .output()
        .await?;
    anyhow::ensure!(enrol.status.success(), "enrolment failed: {}", String::from_utf8_lossy(&enrol.stderr));
    let mut notes = Vec::new();
    let proxy_stats = match impair {
        Some(imp) => {
            let (port, stats) = proxy::start(ctl.port, imp, 0x5eed).await?;
            let mut id = Identity::load(&state)?;
            id.controller_url = format!("https://127.0.0.1:{port}");
            id.save(&state)?;
            Some(stats)
        }
        None => None,
    };
    let runtime = dir.path().join("runtime");
    let pulse = Pulse::start(&runtime)?;
    let xdg = asoundrc(&dir.path().join("xdg"))?;
    let config = dir.path().join("agent.toml");
    let text = dalaba_agent::config::DEFAULT_CONFIG
        .replace("state_dir = \"/var/lib/dalaba-agent\"", &format!("state_dir = {:?}", path_str(&state)?))
        .replace("driver = \"none\"", "driver = \"simulated\"")
        .replace("level = \"info\"", "level = \"warn,dalaba_agent::player=info\"");
    std::fs::write(&config, text)?;
    let env = [
        ("XDG_CONFIG_HOME", path_str(&xdg)?),
        ("XDG_RUNTIME_DIR", path_str(&runtime)?),
        ("HOME", path_str(&runtime)?),
        ("NO_COLOR", "1"),
    ];
    let agent = Proc::spawn("agent", &bins.agent, &["--config", path_str(&config)?, "run"], &env)?;
    agent.wait_printed("audio output open", Duration::from_secs(20)).await?;
    ctl.wait_online(1, Duration::from_secs(30)).await?;
    let recorder = Recorder::start(&pulse.runtime)?;
    let session = ctl
        .start_live(&json!({"title": "latency bench", "priority": "paging", "targets": {"county": true},
                            "source": {"type": "microphone"}}))
        .await?;
    let mut mic = microphone(&ctl, &session).await?;
    // The WebSocket is written by its own task; the feeder only queues.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let sender = tokio::spawn(async move {
        while let Some(c) = rx.recv().await {
            if mic.send(Message::Binary(c.into())).await.is_err() {
                return;
            }
        }
        // The tail plays out, then the microphone goes and the session ends.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = mic.close(None).await;
    });
    let sent = feed(&signal.chunks(), |c| tx.send(c).context("the microphone WebSocket closed")).await?;
    drop(tx);
    sender.await?;
    let report = ended(&ctl, &session).await?;
    let recording = recorder.stop();
    let measured = measure(signal, &signal.spoken_us(&sent), &recording);
    let agent_report = &report["agents"][0];
    notes.push(format!(
        "controller sent {} frames, dropped {}; agent received {}, lost (sequence gaps) {}",
        report["frames_sent"],
        agent_report["frames_dropped"],
        agent_report["frames_received"],
        agent_report["frames_lost"]
    ));
    if let Some(line) = agent.output().iter().find(|l| l.contains("live stream stopped")) {
        let stats = line.find("JitterStats").map_or(line.as_str(), |i| &line[i..]);
        notes.push(format!("agent jitter buffer: {stats}"));
    }
    if let Some(stats) = proxy_stats {
        notes.push(format!(
            "proxy: {} chunks, {} held back for a retransmission",
            stats.chunks.load(std::sync::atomic::Ordering::Relaxed),
            stats.lost.load(std::sync::atomic::Ordering::Relaxed)
        ));
    }
    drop(agent);
    drop(pulse);
    Ok(Run { name: name.into(), measured, notes, load: (load_before, load()) })
}

/// Snapcast: `snapserver` reading the signal from a pipe (PCM codec, the
/// given end-to-end buffer), `snapclient` with `player` (by default ALSA's
/// default device, as the agent plays, with a 40 ms device buffer like the
/// agent's), into the same kind of paced sink.
pub async fn snapcast(signal: &Signal, buffer_ms: u32, player: &str) -> anyhow::Result<Run> {
    let load_before = load();
    let dir = tempfile::tempdir()?;
    let fifo = dir.path().join("snapfifo");
    let (stream_port, tcp_port, http_port) = (free_port()?, free_port()?, free_port()?);
    // An empty configuration file: Debian's adds a source on /tmp/snapfifo,
    // which clients would join instead.
    let config = dir.path().join("snapserver.conf");
    std::fs::write(&config, "")?;
    let source = format!("pipe://{}?name=bench&sampleformat=48000:16:1&codec=pcm&mode=create", fifo.display());
    let server_args = [
        format!("--config={}", config.display()),
        format!("--stream.source={source}"),
        format!("--stream.buffer={buffer_ms}"),
        "--stream.chunk_ms=10".into(),
        format!("--stream.port={stream_port}"),
        format!("--tcp.port={tcp_port}"),
        format!("--http.port={http_port}"),
        "--stream.bind_to_address=127.0.0.1".into(),
        "--tcp.bind_to_address=127.0.0.1".into(),
        "--http.bind_to_address=127.0.0.1".into(),
        format!("--server.datadir={}", dir.path().display()),
        "--logging.sink=stderr".into(),
    ];
    let args: Vec<&str> = server_args.iter().map(String::as_str).collect();
    let server = Proc::spawn("snapserver", Path::new("snapserver"), &args, &[("HOME", path_str(dir.path())?)])?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !fifo.exists() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "snapserver made no pipe (apt-get install snapserver)");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let runtime = dir.path().join("runtime");
    let pulse = Pulse::start(&runtime)?;
    let xdg = asoundrc(&dir.path().join("xdg"))?;
    let port = stream_port.to_string();
    let client_args = ["-h", "127.0.0.1", "-p", &port, "--player", player, "-s", "default", "--logsink", "stderr"];
    let env =
        [("XDG_CONFIG_HOME", path_str(&xdg)?), ("XDG_RUNTIME_DIR", path_str(&runtime)?), ("HOME", path_str(&runtime)?)];
    let client = Proc::spawn("snapclient", Path::new("snapclient"), &client_args, &env)?;
    let recorder = Recorder::start(&pulse.runtime)?;
    // Opening the pipe for writing waits for snapserver's reader.
    let open = tokio::task::spawn_blocking(move || std::fs::OpenOptions::new().write(true).open(fifo));
    let mut writer = tokio::time::timeout(Duration::from_secs(10), open).await???;
    let sent = feed(&signal.chunks(), |c| {
        use std::io::Write;
        // 960 bytes into a pipe that snapserver reads: no wait.
        writer.write_all(&c).context("the pipe closed")
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(u64::from(buffer_ms) + 1_500)).await;
    let recording = recorder.stop();
    let measured = measure(signal, &signal.spoken_us(&sent), &recording);
    let underruns = client.output().iter().filter(|l| l.to_lowercase().contains("underrun")).count();
    let notes = vec![format!("snapclient log lines mentioning an underrun: {underruns}")];
    drop((client, server, pulse));
    Ok(Run { name: format!("Snapcast, buffer {buffer_ms} ms"), measured, notes, load: (load_before, load()) })
}

/// The session's report once it has ended and the agent's final report
/// (with its frame counts) is in, or after 15 s.
async fn ended(ctl: &Controller, session: &str) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = ctl.session(session).await?;
        if !r["ended_at_ms"].is_null() && !r["agents"][0]["frames_received"].is_null() {
            return Ok(r);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(r);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

type Mic = tokio_tungstenite::WebSocketStream<Box<dyn dalaba_agent::net::Io>>;

/// The session's microphone WebSocket, straight to the controller.
async fn microphone(ctl: &Controller, session: &str) -> anyhow::Result<Mic> {
    let url = ControllerUrl::parse(&ctl.url)?;
    let io = dalaba_agent::net::connect(&url, Trust::Capture(Arc::new(Mutex::new(None)))).await?;
    let req = format!("wss://127.0.0.1:{}/api/v1/live/{session}/microphone", ctl.port).into_client_request()?;
    let (ws, _) = tokio_tungstenite::client_async(req, io).await.context("the microphone WebSocket")?;
    Ok(ws)
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("temporary paths are UTF-8")
}
