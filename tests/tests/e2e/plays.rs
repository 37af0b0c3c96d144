//! Proof of play over a real link: stored exactly once however often the
//! agent sends it, visible per village and day, and bounded.

use std::time::Duration;

use dalaba_agent::identity::Identity;
use dalaba_agent::net::{ControllerUrl, open_link};
use dalaba_protocol::codec;
use dalaba_protocol::link::{AgentMessage, ControllerMessage, Hardware, Hello};
use dalaba_protocol::state::{PlayEvent, PlayEvents, PlayOutcome};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::cluster::Cluster;

fn event(id: &str, scheduled_ms: i64) -> PlayEvent {
    PlayEvent {
        id: id.into(),
        schedule_id: 3,
        sha256: "cd".repeat(32),
        scheduled_ms,
        started_ms: Some(scheduled_ms + 4),
        ended_ms: Some(scheduled_ms + 20_000),
        outcome: PlayOutcome::Completed,
        reason: None,
        amplifier_confirmed: true,
    }
}

fn text(m: &AgentMessage) -> Message {
    Message::Text(codec::encode(m).into())
}

/// Reads control messages until one satisfies `pick`.
async fn next_matching<T>(
    link: &mut dalaba_agent::net::Link,
    mut pick: impl FnMut(ControllerMessage) -> Option<T>,
) -> T {
    let read = async {
        while let Some(Ok(frame)) = link.next().await {
            if let Message::Text(t) = frame {
                let m = codec::decode_with_limit::<ControllerMessage>(&t, dalaba_protocol::MAX_CONTROLLER_FRAME)
                    .expect("controller speaks protocol");
                if let Some(v) = pick(m) {
                    return Some(v);
                }
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("in time").expect("link open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn play_events_are_stored_once_and_listed_per_day() {
    let c = Cluster::start(2).await;
    let village = c.village_id(0).await;
    let dir = c.enrol_agent("raw", village).await;
    let id = Identity::load(&dir).expect("identity");
    let url = ControllerUrl::parse(&c.url()).expect("url");
    // 2026-11-28 09:00 in Shanghai.
    let t = 1_795_827_600_000;
    let batch = AgentMessage::PlayEvents(PlayEvents { events: vec![event("3@a", t), event("3@b", t + 60_000)] });

    // The same batch twice on one link, then again on a new link (as after a
    // drop before the acknowledgement arrived): acknowledged every time.
    for _ in 0..2 {
        let mut link = open_link(&url, &id.controller_cert_sha256, &id.authorization()).await.expect("link");
        let hello = AgentMessage::Hello(Hello {
            protocol_version: dalaba_protocol::PROTOCOL_VERSION,
            agent_version: "t".into(),
            hardware: Hardware::default(),
        });
        link.send(text(&hello)).await.expect("hello");
        for _ in 0..2 {
            link.send(text(&batch)).await.expect("send");
            let ids = next_matching(&mut link, |m| match m {
                ControllerMessage::PlayEventsAck(a) => Some(a.ids),
                _ => None,
            })
            .await;
            assert_eq!(ids, ["3@a", "3@b"]);
        }
    }
    let day = c.api.get(&format!("/api/v1/villages/{village}/plays?day=2026-11-28")).await.expect("plays").json();
    let events = day["events"].as_array().expect("events");
    assert_eq!(events.len(), 2, "stored exactly once: {day}");
    assert_eq!(events[0]["outcome"], "completed");
    assert_eq!(events[0]["agent_id"], id.agent_id.as_str());
    let other = c.api.get(&format!("/api/v1/villages/{village}/plays?day=2026-11-27")).await.expect("plays").json();
    assert_eq!(other["events"].as_array().map(Vec::len), Some(0));
    let bad = c.api.get(&format!("/api/v1/villages/{village}/plays?day=yesterday")).await.expect("plays");
    assert_eq!(bad.status, 400, "{}", bad.text());

    // A malformed batch closes that link with a reason and stores nothing.
    let mut link = open_link(&url, &id.controller_cert_sha256, &id.authorization()).await.expect("link");
    let hello =
        AgentMessage::Hello(Hello { protocol_version: 1, agent_version: "t".into(), hardware: Hardware::default() });
    link.send(text(&hello)).await.expect("hello");
    let mut bad_event = event("3@c", t + 120_000);
    bad_event.sha256 = "not-a-hash".into();
    link.send(text(&AgentMessage::PlayEvents(PlayEvents { events: vec![bad_event] }))).await.expect("send");
    let closed = async {
        while let Some(Ok(frame)) = link.next().await {
            if let Message::Close(Some(f)) = frame {
                return Some((u16::from(f.code), f.reason.to_string()));
            }
        }
        None
    };
    let (code, reason) = tokio::time::timeout(Duration::from_secs(10), closed).await.expect("in time").expect("closed");
    assert_eq!(code, 1007, "{reason}");
    assert!(reason.contains("sha256"), "{reason}");
    let day = c.api.get(&format!("/api/v1/villages/{village}/plays?day=2026-11-28")).await.expect("plays").json();
    assert_eq!(day["events"].as_array().map(Vec::len), Some(2));
}
