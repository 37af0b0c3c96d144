//! Live sessions over real links: raw agents (the protocol spoken by hand)
//! receive a signed start, the stream's frames at real-time pace with
//! consecutive sequence numbers, then a signed stop; an agent that
//! reconnects mid-session gets a fresh start at once.

use std::time::{Duration, Instant};

use dalaba_agent::identity::Identity;
use dalaba_agent::net::{ControllerUrl, Link, open_link};
use dalaba_e2e::audio::tone_wav;
use dalaba_protocol::codec;
use dalaba_protocol::link::{AgentMessage, ControllerMessage, Hardware, Heartbeat, Hello};
use dalaba_protocol::live::{Command, CommandAction, LiveFrame, SignedCommand};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::cluster::Cluster;

const TONE_SECS: f64 = 2.0;

/// A raw agent: its identity and an open, welcomed link.
struct RawAgent {
    id: Identity,
    link: Link,
}

async fn connect(c: &Cluster, id: &Identity) -> Link {
    let url = ControllerUrl::parse(&c.url()).expect("url");
    let mut link = open_link(&url, &id.controller_cert_sha256, &id.authorization()).await.expect("link");
    let hello = AgentMessage::Hello(Hello {
        protocol_version: dalaba_protocol::PROTOCOL_VERSION,
        agent_version: "raw".into(),
        hardware: Hardware::default(),
    });
    link.send(Message::Text(codec::encode(&hello).into())).await.expect("hello");
    link
}

/// Checks the signature over the payload's exact bytes with the key the
/// agent pinned at enrolment, and the command's addressee.
fn verified(id: &Identity, signed: &SignedCommand) -> Command {
    assert_eq!(signed.key_id, id.signing_key.key_id);
    let key: [u8; 32] = decode_hex(&id.signing_key.public_key).try_into().expect("32 bytes");
    let sig: [u8; 64] = decode_hex(&signed.signature).try_into().expect("64 bytes");
    let key = VerifyingKey::from_bytes(&key).expect("key");
    key.verify(signed.payload.as_bytes(), &Signature::from_bytes(&sig)).expect("signature verifies");
    let command: Command = serde_json::from_str(&signed.payload).expect("a command");
    assert_eq!(command.agent_id, id.agent_id);
    assert_eq!(command.expires_at_ms - command.issued_at_ms, dalaba_protocol::live::DEFAULT_COMMAND_TTL_MS as i64);
    command
}

fn decode_hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

/// What one raw agent saw of a session.
#[derive(Debug)]
struct Seen {
    stream_id: u32,
    seqs: Vec<u32>,
    first_frame: Option<Instant>,
    last_frame: Option<Instant>,
    stopped: bool,
}

/// Reads a link until the session's stop (or `within` passes).
async fn watch(agent: &mut RawAgent, session_id: &str, within: Duration) -> Seen {
    let mut seen = Seen { stream_id: 0, seqs: Vec::new(), first_frame: None, last_frame: None, stopped: false };
    // Heartbeats keep the link (the test controller's silence timeout is 3 s).
    let mut beat = tokio::time::interval(Duration::from_millis(500));
    let mut hb_seq = 0;
    let read = async {
        loop {
            let frame = tokio::select! {
                frame = agent.link.next() => frame,
                _ = beat.tick() => {
                    hb_seq += 1;
                    let hb = AgentMessage::Heartbeat(Heartbeat { seq: hb_seq, sent_at_ms: 0 });
                    agent.link.send(Message::Text(codec::encode(&hb).into())).await.expect("heartbeat");
                    continue;
                }
            };
            let Some(Ok(frame)) = frame else { return };
            match frame {
                Message::Text(t) => {
                    let Ok(ControllerMessage::Command(signed)) =
                        codec::decode_with_limit::<ControllerMessage>(&t, dalaba_protocol::MAX_CONTROLLER_FRAME)
                    else {
                        continue;
                    };
                    match verified(&agent.id, &signed).action {
                        CommandAction::LiveStart(s) => {
                            assert_eq!(s.session_id, session_id);
                            assert!(seen.seqs.is_empty(), "the start comes before any frame");
                            seen.stream_id = s.stream_id;
                        }
                        CommandAction::LiveStop(s) => {
                            assert_eq!(s.session_id, session_id);
                            seen.stopped = true;
                            return;
                        }
                    }
                }
                Message::Binary(b) => {
                    let f = LiveFrame::decode(&b).expect("a live frame");
                    assert_eq!(f.stream_id, seen.stream_id, "frames of the started stream");
                    let now = Instant::now();
                    seen.first_frame.get_or_insert(now);
                    seen.last_frame = Some(now);
                    seen.seqs.push(f.seq);
                }
                _ => {}
            }
        }
    };
    let _ = tokio::time::timeout(within, read).await;
    seen
}

async fn raw_agents(c: &Cluster, n: usize) -> Vec<RawAgent> {
    let mut agents = Vec::new();
    for i in 0..n {
        let dir = c.enrol_agent(&format!("raw-{i}"), c.village_id(i).await).await;
        let id = Identity::load(&dir).expect("identity");
        let link = connect(c, &id).await;
        agents.push(RawAgent { id, link });
    }
    c.wait_online(n, Duration::from_secs(10)).await;
    agents
}

async fn start(c: &Cluster, body: Value) -> String {
    let r = c.api.post("/api/v1/live", &body).await.expect("start");
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["session_id"].as_str().expect("session id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_agents_get_a_signed_start_paced_frames_and_a_signed_stop() {
    let c = Cluster::start(3).await;
    let agents = raw_agents(&c, 3).await;
    let r = c.api.call(
        "POST",
        "/api/v1/library?filename=tone.wav&title=试音&category=health",
        Some(tone_wav(1000.0, TONE_SECS, 0.25)),
        "audio/wav",
    );
    let r = r.await.expect("upload");
    assert_eq!(r.status, 201, "{}", r.text());
    let item = r.json()["id"].as_i64().expect("item id");
    let session = start(
        &c,
        json!({"title": "防汛紧急通知", "priority": "emergency", "targets": {"county": true},
               "source": {"type": "library_item", "item_id": item}}),
    )
    .await;
    let mut tasks = Vec::new();
    for mut agent in agents {
        let session = session.clone();
        tasks.push(tokio::spawn(async move { watch(&mut agent, &session, Duration::from_secs(30)).await }));
    }
    let expected = (TONE_SECS * 50.0) as u32;
    for task in tasks {
        let seen = task.await.expect("watcher");
        assert!(seen.stopped, "a signed stop ends the session: {seen:?}");
        // Every frame, in order, numbered from 0 (2 s of 20 ms frames, the
        // encoder's last partial frame padded).
        let n = seen.seqs.len() as u32;
        assert!((expected..=expected + 2).contains(&n), "{n} frames");
        assert_eq!(seen.seqs, (0..n).collect::<Vec<_>>());
        // Paced in real time: the frames span about the tone's length,
        // not a burst (generous bounds for a loaded machine).
        let span = seen.last_frame.expect("frames").duration_since(seen.first_frame.expect("frames"));
        assert!(span >= Duration::from_millis(1_500) && span <= Duration::from_secs(10), "{span:?}");
    }
    let report = c.api.get(&format!("/api/v1/live/{session}")).await.expect("report").json();
    assert_eq!(report["end_reason"], "played out", "{report}");
    for a in report["agents"].as_array().expect("agents") {
        assert_eq!(a["frames_dropped"], 0, "{a}");
        assert!(a["frames_sent"].as_u64().unwrap_or(0) >= u64::from(expected), "{a}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reconnecting_mid_session_gets_a_fresh_start_within_a_second() {
    let c = Cluster::start(2).await;
    let mut agents = raw_agents(&c, 1).await;
    let session = start(
        &c,
        json!({"title": "寻人", "priority": "paging", "targets": {"county": true}, "source": {"type": "microphone"}}),
    )
    .await;
    let agent = &mut agents[0];
    let first = next_start(agent).await;
    // The link drops; the agent comes back.
    let RawAgent { id, link } = agents.remove(0);
    drop(link);
    let offline = dalaba_e2e::wait_for("the agent shown offline in the session", Duration::from_secs(10), || async {
        let r = c.api.get(&format!("/api/v1/live/{session}")).await.ok()?.json();
        (r["agents"][0]["state"] == "offline").then_some(())
    });
    offline.await.expect("offline");
    let t = Instant::now();
    let mut again = RawAgent { link: connect(&c, &id).await, id };
    let second = next_start(&mut again).await;
    let took = t.elapsed();
    assert!(took < Duration::from_secs(1), "rejoined after {took:?}");
    assert_ne!(first.id, second.id, "a fresh command");
    assert!(second.issued_at_ms >= first.issued_at_ms);
    let r = c.api.post(&format!("/api/v1/live/{session}/stop"), &json!({"reason": "done"})).await.expect("stop");
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The next live start on a link.
async fn next_start(agent: &mut RawAgent) -> Command {
    let read = async {
        while let Some(Ok(frame)) = agent.link.next().await {
            if let Message::Text(t) = frame
                && let Ok(ControllerMessage::Command(signed)) =
                    codec::decode_with_limit::<ControllerMessage>(&t, dalaba_protocol::MAX_CONTROLLER_FRAME)
            {
                let command = verified(&agent.id, &signed);
                if matches!(command.action, CommandAction::LiveStart(_)) {
                    return Some(command);
                }
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("in time").expect("a start")
}

/// `[live] host_input`: the controller captures ALSA's default device, here
/// the `file` plugin reading a raw 1 kHz tone (not paced in real time, so
/// the capture floods and the controller drops what its encoder cannot
/// take); raw agents receive the signed start and Opus frames of the tone.
/// Without the setting the source is a 422 naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_input_session_streams_the_controllers_capture_device() {
    let mut c = Cluster::start(1).await;
    let mut agents = raw_agents(&c, 1).await;
    let body = json!({"title": "广播室话筒", "priority": "paging", "targets": {"county": true},
                      "source": {"type": "host_input"}});
    let r = c.api.post("/api/v1/live", &body).await.expect("start");
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("no host input configured; set [live] host_input"), "{}", r.text());

    // The tone, ALSA's capture device reading it, and the controller again
    // with the setting and that ALSA configuration.
    let tone: Vec<u8> = (0..48_000 * 20)
        .flat_map(|i| {
            let s = 0.25 * (std::f64::consts::TAU * 1000.0 * f64::from(i) / 48_000.0).sin();
            ((s * 32767.0).round() as i16).to_le_bytes()
        })
        .collect();
    let raw = c.dir.path().join("tone.raw");
    std::fs::write(&raw, tone).expect("tone");
    let xdg = c.dir.path().join("xdg");
    std::fs::create_dir_all(xdg.join("alsa")).expect("mkdir");
    let asoundrc = format!(
        "pcm.!default {{ type plug; slave {{ pcm \"tap\"; format S16_LE; rate 48000; channels 1 }} }}\n\
         pcm.tap {{ type file; slave.pcm \"null\"; infile \"{}\"; file \"/dev/null\"; format \"raw\" }}\n",
        raw.display()
    );
    std::fs::write(xdg.join("alsa/asoundrc"), asoundrc).expect("asoundrc");
    let config = c.dir.path().join("controller.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text.replace("[log]", "[live]\nhost_input = \"default\"\n[log]")).expect("config");
    if let Some(mut old) = c.controller.take() {
        old.kill().await;
    }
    let p = dalaba_e2e::proc::Proc::spawn(
        "controller",
        &dalaba_e2e::bins::controller(),
        &["--config", config.to_str().expect("utf-8"), "serve"],
        &[("XDG_CONFIG_HOME", xdg.to_str().expect("utf-8"))],
    )
    .expect("controller starts");
    p.wait_printed("serving at", Duration::from_secs(30)).await.expect("serving");
    c.controller = Some(p);
    let RawAgent { id, .. } = agents.remove(0);
    let mut agent = RawAgent { link: connect(&c, &id).await, id };
    c.wait_online(1, Duration::from_secs(10)).await;

    let session = start(&c, body.clone()).await;
    let r = c.api.post("/api/v1/live", &body).await.expect("second start");
    assert_eq!(r.status, 409, "one session holds the host input: {}", r.text());
    let message = r.json()["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.starts_with(&format!("the host input \"default\" is in use by live session {session}")),
        "{message}"
    );
    let start_command = next_start(&mut agent).await;
    let CommandAction::LiveStart(s) = start_command.action else { unreachable!("a start") };
    // Frames of the stream: the tone's packets are far larger than silence's.
    let mut sizes = Vec::new();
    let read = async {
        while let Some(Ok(frame)) = agent.link.next().await {
            if let Message::Binary(b) = frame {
                let f = LiveFrame::decode(&b).expect("a live frame");
                assert_eq!(f.stream_id, s.stream_id);
                sizes.push(f.opus.len());
                if sizes.len() >= 50 {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read).await.expect("50 frames in time");
    let loud = sizes.iter().filter(|&&n| n > 40).count();
    assert!(loud >= 25, "most frames carry the tone: {sizes:?}");
    let r = c.api.post(&format!("/api/v1/live/{session}/stop"), &json!({"reason": "done"})).await.expect("stop");
    assert_eq!(r.status, 200, "{}", r.text());
    let report = r.json();
    assert_eq!(report["source"], "host_input", "{report}");
    // The input is released: a new session may take it.
    let again = dalaba_e2e::wait_for("the host input released", Duration::from_secs(5), || async {
        let r = c.api.post("/api/v1/live", &body).await.ok()?;
        (r.status == 201).then(|| r.json()["session_id"].as_str().map(str::to_owned)).flatten()
    });
    let second = again.await.expect("a second session");
    let r = c.api.post(&format!("/api/v1/live/{second}/stop"), &json!({})).await.expect("stop");
    assert_eq!(r.status, 200, "{}", r.text());
}
