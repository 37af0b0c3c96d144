//! The real live path: the `dalaba-agent run` binary connects to a tiny
//! test controller (a WebSocket over plain HTTP on loopback, which the
//! agent allows for `http://` URLs), which refuses nothing and acknowledges
//! heartbeats. It sends a live start with a forged signature (refused and
//! reported), then a properly signed emergency start, three seconds of a
//! 440 Hz tone as Opus live frames at real-time pace, and the stop. ALSA's
//! `file` plugin captures what the agent played.
//!
//! The `null` device under the file plugin is not paced in real time: the
//! output consumes audio far faster than frames arrive, so the jitter
//! buffer runs dry between frames and conceals (or goes silent) there.
//! Every frame is still played once, so the capture is checked for its
//! content — at least the three seconds of tone, at 440 Hz (Goertzel
//! energy far above other frequencies) — never for time.

use std::path::Path;
use std::time::Duration;

use dalaba_agent::identity::Identity;
use dalaba_audio::level::sine;
use dalaba_audio::opus::{Encoder, FRAME_SAMPLES, OpusSettings};
use dalaba_protocol::PROTOCOL_VERSION;
use dalaba_protocol::enrol::{SignatureAlgorithm, SigningKeyInfo};
use dalaba_protocol::link::{AgentMessage, ControllerMessage, HeartbeatAck, Welcome};
use dalaba_protocol::live::{
    Command, CommandAction, EMERGENCY_WARMUP_MS, LiveFrame, LiveStart, LiveState, LiveStop, RefusalCode, SignedCommand,
};
use dalaba_protocol::state::Priority;
use ed25519_dalek::{Signer, SigningKey};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::audio_out::support::{Agent, FILE_PLUGIN_ASOUNDRC, RATE, asoundrc, s16_channel, wall_ms, wall_us};

const BIN: &str = env!("CARGO_BIN_EXE_dalaba-agent");
const AGENT: &str = "ag-live-test";
const STREAM: u32 = 9;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[3u8; 32])
}

fn signed(command: &Command) -> SignedCommand {
    let payload = serde_json::to_string(command).expect("json");
    let signature = hex::encode(key().sign(payload.as_bytes()).to_bytes());
    SignedCommand { payload, algorithm: SignatureAlgorithm::Ed25519, key_id: "k-test".into(), signature }
}

fn command(id: &str, action: CommandAction) -> Command {
    let now = wall_ms();
    Command { id: id.into(), agent_id: AGENT.into(), issued_at_ms: now, expires_at_ms: now + 30_000, action }
}

fn start() -> CommandAction {
    CommandAction::LiveStart(LiveStart {
        session_id: "L1".into(),
        stream_id: STREAM,
        priority: Priority::Emergency,
        title: "test emergency".into(),
        volume: 100,
        gain_db: 0.0,
        warmup_ms: EMERGENCY_WARMUP_MS,
        max_duration_ms: 60_000,
    })
}

/// Energy of `samples` at `freq` (Goertzel), normalised by length.
fn goertzel(samples: &[f32], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(RATE);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / samples.len().max(1) as f64
}

/// The controller's side of one link: what the agent said arrives on
/// `heard`; what to say goes into the returned sender.
async fn accept(
    listener: tokio::net::TcpListener,
) -> (mpsc::UnboundedSender<Message>, mpsc::UnboundedReceiver<AgentMessage>) {
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
        .await
        .expect("the agent connects within 30 s")
        .expect("accept");
    let ws = tokio_tungstenite::accept_async(tcp).await.expect("WebSocket upgrade");
    let (mut tx, mut rx) = ws.split();
    let (say, mut to_say) = mpsc::unbounded_channel::<Message>();
    let (hear, heard) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(m) = to_say.recv().await {
            if tx.send(m).await.is_err() {
                return;
            }
        }
    });
    let acks = say.clone();
    tokio::spawn(async move {
        while let Some(Ok(m)) = rx.next().await {
            let Message::Text(text) = m else { continue };
            let Ok(msg) = serde_json::from_str::<AgentMessage>(&text) else { continue };
            let reply = match &msg {
                AgentMessage::Hello(_) => Some(ControllerMessage::Welcome(Welcome {
                    protocol_version: PROTOCOL_VERSION,
                    agent_id: AGENT.into(),
                    heartbeat_interval_ms: 15_000,
                    controller_time_ms: wall_ms(),
                })),
                AgentMessage::Heartbeat(hb) => Some(ControllerMessage::HeartbeatAck(HeartbeatAck {
                    seq: hb.seq,
                    agent_sent_at_ms: hb.sent_at_ms,
                    controller_time_ms: wall_ms(),
                })),
                _ => None,
            };
            if let Some(reply) = reply {
                let _ = acks.send(Message::Text(serde_json::to_string(&reply).expect("json").into()));
            }
            if hear.send(msg).is_err() {
                return;
            }
        }
    });
    (say, heard)
}

fn text(msg: &ControllerMessage) -> Message {
    Message::Text(serde_json::to_string(msg).expect("json").into())
}

/// The next message `pick` accepts, within 15 s.
async fn wait_for<T>(heard: &mut mpsc::UnboundedReceiver<AgentMessage>, pick: impl Fn(AgentMessage) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let msg = tokio::time::timeout_at(deadline, heard.recv())
            .await
            .expect("the agent answers within 15 s")
            .expect("the link is open");
        if let Some(t) = pick(msg) {
            return t;
        }
    }
}

#[test]
fn a_signed_live_stream_is_played_and_a_forged_command_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let state = work.path().join("state");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    Identity {
        controller_url: format!("http://127.0.0.1:{port}"),
        agent_id: AGENT.into(),
        secret: "s".repeat(43),
        village_id: 1,
        village_name: "Test village".into(),
        controller_cert_sha256: "ab".repeat(32),
        signing_key: SigningKeyInfo {
            algorithm: SignatureAlgorithm::Ed25519,
            key_id: "k-test".into(),
            public_key: hex::encode(key().verifying_key().to_bytes()),
        },
    }
    .save(&state)
    .expect("identity");
    let xdg = asoundrc(&work.path().join("xdg"), FILE_PLUGIN_ASOUNDRC);
    let raw = work.path().join("captured.raw");
    let agent = Agent::spawn(
        Path::new(BIN),
        work.path(),
        &state,
        "default",
        &[("XDG_CONFIG_HOME", &xdg), ("ALSA_TEST_PCM_FILE", &raw)],
    );

    let (refusal, reports) = runtime.block_on(async {
        let (say, mut heard) = accept(listener).await;
        wait_for(&mut heard, |m| matches!(m, AgentMessage::Hello(_)).then_some(())).await;

        let mut forged = signed(&command("forged-1", start()));
        forged.payload = forged.payload.replace("test emergency", "fake emergency");
        say.send(text(&ControllerMessage::Command(forged))).expect("send");
        let refusal =
            wait_for(&mut heard, |m| if let AgentMessage::CommandRefused(r) = m { Some(r) } else { None }).await;

        say.send(text(&ControllerMessage::Command(signed(&command("cmd-1", start()))))).expect("send");
        let mut reports = Vec::new();
        reports.push(wait_for(&mut heard, |m| if let AgentMessage::Live(r) = m { Some(r.state) } else { None }).await);
        // The amplifier's warm-up, then three seconds of tone in real time.
        tokio::time::sleep(Duration::from_millis(EMERGENCY_WARMUP_MS + 200)).await;
        let tone = sine(440.0, RATE, 3.0, 0.5);
        let mut encoder = Encoder::new(&OpusSettings::default()).expect("encoder");
        let mut pace = tokio::time::interval(Duration::from_millis(20));
        for (seq, chunk) in tone.chunks_exact(FRAME_SAMPLES).enumerate() {
            pace.tick().await;
            let opus = encoder.encode_frame(chunk).expect("encode");
            let frame = LiveFrame { stream_id: STREAM, seq: seq as u32, capture_us: wall_us(), opus };
            say.send(Message::Binary(frame.encode().into())).expect("send");
        }
        // Garbage on the binary channel is dropped, and the link stays.
        say.send(Message::Binary(vec![0u8; 7].into())).expect("send");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let stop = CommandAction::LiveStop(LiveStop { session_id: "L1".into(), reason: "test over".into() });
        say.send(text(&ControllerMessage::Command(signed(&command("cmd-2", stop))))).expect("send");
        loop {
            let state =
                wait_for(&mut heard, |m| if let AgentMessage::Live(r) = m { Some(r.state) } else { None }).await;
            let done = matches!(state, LiveState::Ended { .. });
            reports.push(state);
            if done {
                break;
            }
        }
        (refusal, reports)
    });
    let log = agent.log_text();
    drop(agent); // closes the capture file

    assert_eq!(refusal.reason, RefusalCode::BadSignature, "{refusal:?}");
    assert!(refusal.message.contains("k-test"), "{refusal:?}");
    assert!(matches!(reports[0], LiveState::Receiving { .. }), "{reports:?}");
    assert!(reports.iter().any(|r| matches!(r, LiveState::Playing { .. })), "{reports:?}\n{log}");
    let Some(LiveState::Ended { started_ms, frames_received, frames_lost, reason, .. }) = reports.last() else {
        panic!("{reports:?}")
    };
    assert_eq!((*frames_received, *frames_lost), (150, 0), "{reports:?}");
    assert_eq!(reason, "stopped: test over");
    assert!(started_ms.is_some(), "{reports:?}");

    let bytes = std::fs::read(&raw).expect("the capture file");
    let left = s16_channel(&bytes, 2, 0);
    let played: Vec<f32> = left.iter().copied().filter(|s| s.abs() > 1e-3).collect();
    let seconds = played.len() as f64 / f64::from(RATE);
    // The `null` device is not paced: it drains the jitter buffer as fast as
    // the mixer runs, and on a loaded machine the buffer skips a few frames
    // to keep its depth. Content is what this test checks (timing is the
    // PulseAudio tests' job), so most of the 3 s must be there, not all.
    assert!(seconds >= 2.5, "{seconds} s of sound in the capture\n{log}");
    let at_tone = goertzel(&played, 440.0);
    eprintln!("{seconds:.2} s of sound; 440 Hz energy {at_tone:.3e}; reports {reports:?}");
    for other in [220.0, 660.0, 1000.0] {
        let e = goertzel(&played, other);
        assert!(at_tone > 100.0 * e, "440 Hz: {at_tone}, {other} Hz: {e}");
    }
}
