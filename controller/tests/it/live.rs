//! Live sessions through the API and the live registry, with agent links
//! stood in for by their outboxes (`Live::attach`): targets, refusals,
//! emergency over paging, signed commands, fan-out to a slow agent, agent
//! reports and the stored session report.

use axum::http::{Method, StatusCode};
use dalaba_controller::live::{AgentState, Outbound, Outbox};
use dalaba_protocol::codec;
use dalaba_protocol::link::ControllerMessage;
use dalaba_protocol::live::{
    Command, CommandAction, CommandRefusal, DEFAULT_COMMAND_TTL_MS, EMERGENCY_WARMUP_MS, LiveFrame, LiveReport,
    LiveState, RefusalCode, SignedCommand,
};
use dalaba_protocol::state::Priority;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::{Value, json};

use crate::harness::{Harness, Payload, Seeded, T0, call, enrol, error_message, raw, seed};

/// A seeded county with one agent per village.
async fn county() -> (Harness, Seeded, [String; 2]) {
    let h = Harness::new();
    let s = seed(&h.app).await;
    let a0 = enrol(&h.app, s.villages[0], "pi-0").await.0;
    let a1 = enrol(&h.app, s.villages[1], "pi-1").await.0;
    (h, s, [a0, a1])
}

fn microphone(title: &str, priority: &str, targets: Value) -> Payload {
    Payload::Json(json!({"title": title, "priority": priority, "targets": targets, "source": {"type": "microphone"}}))
}

async fn start(h: &Harness, body: Payload) -> Value {
    let (status, info) = call(&h.app, Method::POST, "/api/v1/live", body).await;
    assert_eq!(status, StatusCode::CREATED, "{info}");
    info
}

/// The next signed command on an outbox, checked against the controller's
/// public key over the payload's exact bytes.
fn command(h: &Harness, outbox: &Outbox) -> Command {
    let text = match outbox.try_next() {
        Some(Outbound::Control(text)) => text,
        other => panic!("expected a command, got {other:?}"),
    };
    let Ok(ControllerMessage::Command(signed)) = codec::decode::<ControllerMessage>(&text) else {
        panic!("not a command: {text}");
    };
    verify(h, &signed);
    serde_json::from_str(&signed.payload).expect("payload is a command")
}

fn verify(h: &Harness, signed: &SignedCommand) {
    let info = &h.state.settings.signing_key;
    assert_eq!(signed.algorithm, info.algorithm);
    assert_eq!(signed.key_id, info.key_id);
    let key: [u8; 32] = hex::decode(&info.public_key).expect("hex").try_into().expect("32 bytes");
    let key = VerifyingKey::from_bytes(&key).expect("public key");
    let sig: [u8; 64] = hex::decode(&signed.signature).expect("hex").try_into().expect("64 bytes");
    key.verify(signed.payload.as_bytes(), &Signature::from_bytes(&sig)).expect("signature verifies");
    let mut tampered = signed.payload.replace("\"issued_at_ms\"", "\"issued_at_ms\" ");
    if tampered == signed.payload {
        tampered.push(' ');
    }
    assert!(key.verify(tampered.as_bytes(), &Signature::from_bytes(&sig)).is_err(), "other bytes must not verify");
}

async fn report(h: &Harness, id: &str) -> Value {
    let (status, body) = call(&h.app, Method::GET, &format!("/api/v1/live/{id}"), Payload::None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn agent_state<'a>(report: &'a Value, agent: &str) -> &'a Value {
    report["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["agent_id"] == agent))
        .unwrap_or_else(|| panic!("no {agent} in {report}"))
}

#[tokio::test]
async fn targets_resolve_to_villages_and_their_agents_online_or_not() {
    let (h, s, [a0, a1]) = county().await;
    let _link = h.state.live.attach(&h.state, &a0, 1);
    let info = start(&h, microphone("广播", "paging", json!({"villages": [s.villages[1]]}))).await;
    assert_eq!(info["villages"], json!([s.villages[1]]));
    assert_eq!(info["agents"], json!([a1]));
    assert_eq!(info["offline"], json!([a1]));
    let id = info["session_id"].as_str().expect("id");
    assert_eq!(info["microphone_path"], json!(format!("/api/v1/live/{id}/microphone")));
    assert_eq!(agent_state(&report(&h, id).await, &a1)["state"], "offline");

    let info = start(&h, microphone("全县", "emergency", json!({"townships": [s.township]}))).await;
    assert_eq!(info["villages"], json!(s.villages));
    let mut agents = vec![a0.clone(), a1.clone()];
    agents.sort();
    assert_eq!(info["agents"], json!(agents));

    for (targets, expected, reason) in [
        (json!({}), "needs targets", "no_targets"),
        (json!({"villages": [999]}), "target village 999 does not exist", "unknown_village"),
        (json!({"villages": [s.township]}), "is a township, not a village", "not_a_village"),
        (json!({"tags": ["nowhere"]}), "carried by no village", "unknown_tag"),
    ] {
        let (status, body) = call(&h.app, Method::POST, "/api/v1/live", microphone("x", "paging", targets)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(error_message(&body, "bad_request").contains(expected), "{body}");
        assert_eq!(body["reason"], reason, "{body}");
    }
}

#[tokio::test]
async fn a_village_without_agents_cannot_start_a_session() {
    let h = Harness::new();
    let s = seed(&h.app).await;
    let (status, body) =
        call(&h.app, Method::POST, "/api/v1/live", microphone("x", "paging", json!({"county": true}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(error_message(&body, "no_agents").contains("2 village(s)"), "{body}");
    assert_eq!((&body["reason"], &body["params"]), (&json!("no_agents"), &json!({"villages": "2"})), "{body}");
    let _ = s;
}

#[tokio::test]
async fn equal_priority_is_refused_naming_the_holder() {
    let (h, s, _) = county().await;
    let first = start(&h, microphone("午间寻人", "paging", json!({"villages": [s.villages[0]]}))).await;
    let id = first["session_id"].as_str().expect("id");
    let (status, body) =
        call(&h.app, Method::POST, "/api/v1/live", microphone("x", "paging", json!({"townships": [s.township]}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = error_message(&body, "conflict");
    for needle in ["王家沟村", id, "午间寻人", "started by admin 测试 (admin)", "paging"] {
        assert!(message.contains(needle), "{needle} missing from {message}");
    }
    // The same, by name, for the console to word.
    assert_eq!(body["reason"], "held_by_equal", "{body}");
    assert_eq!(
        body["params"],
        json!({"village": "王家沟村", "others": "0", "priority": "paging", "session_id": id, "title": "午间寻人",
               "started_by": "admin 测试 (admin)"}),
        "{body}"
    );
    // The other village is free.
    start(&h, microphone("y", "paging", json!({"villages": [s.villages[1]]}))).await;
    // A paging session never interrupts an emergency.
    let e = start(&h, microphone("防汛", "emergency", json!({"county": true}))).await;
    let (status, body) =
        call(&h.app, Method::POST, "/api/v1/live", microphone("z", "paging", json!({"villages": [s.villages[0]]})))
            .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = error_message(&body, "conflict");
    assert!(message.contains(e["session_id"].as_str().expect("id")) && message.contains("emergency"), "{message}");
    assert_eq!(body["reason"], "held_by_emergency", "{body}");
    let (status, body) =
        call(&h.app, Method::POST, "/api/v1/live", microphone("z", "emergency", json!({"county": true}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn an_emergency_takes_villages_from_paging() {
    let (h, s, [a0, a1]) = county().await;
    let links = [h.state.live.attach(&h.state, &a0, 1), h.state.live.attach(&h.state, &a1, 2)];
    let paging = start(&h, microphone("寻人", "paging", json!({"townships": [s.township]}))).await;
    let paging = paging["session_id"].as_str().expect("id").to_owned();
    for link in &links {
        assert!(matches!(command(&h, link).action, CommandAction::LiveStart(_)));
    }
    let emergency = start(&h, microphone("防汛", "emergency", json!({"villages": [s.villages[0]]}))).await;
    let eid = emergency["session_id"].as_str().expect("id");
    assert_eq!(emergency["preempted"], json!([paging]));
    // The emergency's start goes to village 0 only; no stop for the paging
    // session there (the agent preempts locally).
    let CommandAction::LiveStart(start0) = command(&h, &links[0]).action else { panic!("start expected") };
    assert_eq!((start0.session_id.as_str(), start0.priority), (eid, Priority::Emergency));
    assert_eq!(start0.warmup_ms, EMERGENCY_WARMUP_MS);
    assert_eq!(links[0].try_next(), None);
    assert_eq!(links[1].try_next(), None);
    let r = report(&h, &paging).await;
    assert_eq!(agent_state(&r, &a0)["state"], "preempted");
    assert_eq!(agent_state(&r, &a0)["by"], eid);
    assert_eq!(agent_state(&r, &a1)["state"], "sent");
    assert_eq!(r["ended_at_ms"], Value::Null, "village 1 still hears the page");
    // Frames of the paging session now reach village 1 only.
    assert!(h.state.live.fan_out(&h.state, &paging, vec![(vec![1, 2, 3], 0)]));
    assert_eq!(links[0].try_next(), None);
    assert!(matches!(links[1].try_next(), Some(Outbound::Frame(_))));
    // A second emergency over village 1 empties the paging session: it ends.
    let (status, body) =
        call(&h.app, Method::POST, "/api/v1/live", microphone("x", "emergency", json!({"villages": [s.villages[1]]})))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let r = report(&h, &paging).await;
    assert!(r["end_reason"].as_str().expect("ended").contains("preempted by emergency session"), "{r}");
}

#[tokio::test]
async fn commands_are_signed_per_agent_and_expire_after_the_ttl() {
    let (h, s, [a0, _]) = county().await;
    let link = h.state.live.attach(&h.state, &a0, 1);
    let info = start(&h, microphone("广播", "paging", json!({"villages": [s.villages[0]]}))).await;
    let id = info["session_id"].as_str().expect("id");
    let c = command(&h, &link);
    assert_eq!(c.agent_id, a0);
    assert_eq!((c.issued_at_ms, c.expires_at_ms), (T0, T0 + DEFAULT_COMMAND_TTL_MS as i64));
    let CommandAction::LiveStart(live) = c.action else { panic!("start expected") };
    assert_eq!((live.session_id.as_str(), live.priority, live.volume), (id, Priority::Paging, 100));
    h.state.clock.advance_ms(5_000);
    let (status, body) = call(
        &h.app,
        Method::POST,
        &format!("/api/v1/live/{id}/stop"),
        Payload::Json(json!({"reason": "张三 stopped it"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["end_reason"], "张三 stopped it");
    let stop = command(&h, &link);
    assert_ne!(stop.id, c.id, "every command has its own id");
    assert_eq!((stop.issued_at_ms, stop.expires_at_ms), (T0 + 5_000, T0 + 5_000 + DEFAULT_COMMAND_TTL_MS as i64));
    let CommandAction::LiveStop(stop) = stop.action else { panic!("stop expected") };
    assert_eq!((stop.session_id.as_str(), stop.reason.as_str()), (id, "张三 stopped it"));
    let (status, body) = call(&h.app, Method::POST, &format!("/api/v1/live/{id}/stop"), Payload::None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(error_message(&body, "conflict").contains("already ended"), "{body}");
    let (status, _) = call(&h.app, Method::POST, "/api/v1/live/L0/stop", Payload::None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_slow_agent_drops_its_oldest_frames_without_stalling_the_others() {
    let (h, s, [a0, a1]) = county().await;
    let fast = h.state.live.attach(&h.state, &a0, 1);
    let slow = h.state.live.attach(&h.state, &a1, 2);
    let info = start(&h, microphone("广播", "paging", json!({"townships": [s.township]}))).await;
    let id = info["session_id"].as_str().expect("id");
    let stream = match command(&h, &fast).action {
        CommandAction::LiveStart(s) => s.stream_id,
        other => panic!("{other:?}"),
    };
    command(&h, &slow);
    let n = dalaba_controller::live::FRAME_QUEUE as u32 + 10;
    for i in 0..n {
        assert!(h.state.live.fan_out(&h.state, id, vec![(vec![0xf8, i as u8], i64::from(i))]));
        // The fast agent's link takes every frame as it comes.
        match fast.try_next() {
            Some(Outbound::Frame(bytes)) => {
                let f = LiveFrame::decode(&bytes).expect("frame");
                assert_eq!((f.stream_id, f.seq, f.opus.as_slice()), (stream, i, &[0xf8, i as u8][..]));
            }
            other => panic!("frame {i}: {other:?}"),
        }
    }
    // The slow one kept the newest FRAME_QUEUE, in order.
    let seqs: Vec<u32> = std::iter::from_fn(|| slow.try_next())
        .map(|o| match o {
            Outbound::Frame(b) => LiveFrame::decode(&b).expect("frame").seq,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(seqs, (10..n).collect::<Vec<_>>());
    let r = report(&h, id).await;
    assert_eq!(
        (agent_state(&r, &a0)["frames_sent"].as_u64(), agent_state(&r, &a0)["frames_dropped"].as_u64()),
        (Some(n.into()), Some(0))
    );
    assert_eq!(
        (agent_state(&r, &a1)["frames_sent"].as_u64(), agent_state(&r, &a1)["frames_dropped"].as_u64()),
        (Some(n.into()), Some(10))
    );
    assert!(h.state.metrics.render().contains("dalaba_live_frames_dropped_total 10"));
    // Control messages are never dropped, and go before waiting frames.
    for i in 0..3 {
        h.state.live.fan_out(&h.state, id, vec![(vec![0xf8, i], 0)]);
    }
    h.state.live.stop(&h.state, id, "done").await.expect("stop");
    assert!(matches!(slow.try_next(), Some(Outbound::Control(_))));
}

/// A file's packets leave in bursts of five, all pushed to a link at
/// once (one write there), stamped with their media time 20 ms apart so
/// the agent's jitter buffer sees the burst as arrival spread.
#[tokio::test]
async fn a_file_source_sends_bursts_stamped_with_their_media_time() {
    let (h, s, [a0, _]) = county().await;
    let path = "/api/v1/library?title=t&category=legal&filename=tone.wav";
    let (status, item) =
        call(&h.app, Method::POST, path, raw("application/octet-stream", crate::library::wav_tone())).await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    let link = h.state.live.attach(&h.state, &a0, 1);
    let body = json!({"title": "通知", "priority": "paging", "targets": {"villages": [s.villages[0]]},
                      "source": {"type": "library_item", "item_id": item["id"]}});
    start(&h, Payload::Json(body)).await;
    command(&h, &link);
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    // Half a second of audio: 25 frames, five bursts.
    while frames.len() < 25 {
        assert!(tokio::time::Instant::now() < deadline, "frames in time: {} so far", frames.len());
        let waiting = link.frames_waiting();
        if waiting == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            continue;
        }
        assert_eq!(waiting, 5, "a whole burst at once, after {} frames", frames.len());
        for _ in 0..waiting {
            match link.try_next() {
                Some(Outbound::Frame(b)) => frames.push(LiveFrame::decode(&b).expect("frame")),
                other => panic!("{other:?}"),
            }
        }
    }
    for pair in frames.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1);
        assert_eq!(pair[1].capture_us - pair[0].capture_us, 20_000, "media time, 20 ms a frame");
    }
}

#[tokio::test]
async fn reports_and_refusals_make_the_session_report() {
    let (h, _, [a0, a1]) = county().await;
    let l0 = h.state.live.attach(&h.state, &a0, 1);
    let l1 = h.state.live.attach(&h.state, &a1, 2);
    let mut events = h.state.live.subscribe();
    let info = start(&h, microphone("广播", "emergency", json!({"county": true}))).await;
    let id = info["session_id"].as_str().expect("id").to_owned();
    command(&h, &l0);
    let refused = command(&h, &l1);
    let live = |state| LiveReport { session_id: id.clone(), state };
    h.state.live.on_report(&h.state, &a0, live(LiveState::Receiving { amplifier_on: true })).await;
    h.state.live.on_report(&h.state, &a0, live(LiveState::Playing { since_ms: T0 + 1_100, amplifier_on: true })).await;
    h.state
        .live
        .on_refusal(
            &h.state,
            &a1,
            CommandRefusal {
                command_id: Some(refused.id),
                session_id: None,
                reason: RefusalCode::Expired,
                message: "command expired 3 s ago".into(),
            },
        )
        .await;
    let r = report(&h, &id).await;
    assert_eq!(agent_state(&r, &a0)["state"], "playing");
    assert_eq!(agent_state(&r, &a0)["amplifier_on"], true);
    assert_eq!(agent_state(&r, &a1)["state"], "refused");
    assert_eq!(agent_state(&r, &a1)["reason"], "expired");
    // A refused agent gets no frames.
    h.state.live.fan_out(&h.state, &id, vec![(vec![1], 0)]);
    assert!(matches!(l0.try_next(), Some(Outbound::Frame(_))));
    assert_eq!(l1.try_next(), None);
    // Dashboards heard of every change.
    let mut kinds = Vec::new();
    while let Ok(e) = events.try_recv() {
        kinds.push(serde_json::to_value(&e).expect("json")["kind"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(kinds.first().map(String::as_str), Some("session"));
    assert!(kinds.iter().filter(|k| *k == "agent").count() >= 3, "{kinds:?}");

    h.state.clock.advance_ms(10_000);
    h.state.live.stop(&h.state, &id, "stopped by 张三").await.expect("stop");
    h.state
        .live
        .on_report(
            &h.state,
            &a0,
            live(LiveState::Ended {
                started_ms: Some(T0 + 1_100),
                ended_ms: T0 + 10_050,
                frames_received: 440,
                frames_lost: 3,
                reason: "stopped".into(),
            }),
        )
        .await;
    // The stored report, read straight from the store.
    let stored = h.state.store.live_session(&id).expect("read").expect("stored");
    assert_eq!(stored.end_reason.as_deref(), Some("stopped by 张三"));
    assert_eq!(stored.ended_at_ms, Some(T0 + 10_000));
    let a = stored.agents.iter().find(|a| a.agent_id == a0).expect("a0");
    assert_eq!(a.state, AgentState::Ended { reason: "stopped".into() });
    assert_eq!((a.playing_from_ms, a.playing_to_ms), (Some(T0 + 1_100), Some(T0 + 10_050)));
    assert_eq!((a.frames_received, a.frames_lost, a.frames_sent), (Some(440), Some(3), 1));
    let b = stored.agents.iter().find(|a| a.agent_id == a1).expect("a1");
    assert_eq!(b.refusal.as_deref(), Some("command expired 3 s ago"));
    assert_eq!((stored.counts.total, stored.counts.played, stored.counts.refused), (2, 1, 1));
    let (status, list) = call(&h.app, Method::GET, "/api/v1/live", Payload::None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["active"], json!([]));
    assert_eq!(list["recent"][0]["session_id"], id.as_str());
    assert_eq!(list["recent"][0]["counts"]["played"], 1);
}

#[tokio::test]
async fn a_reconnecting_agent_gets_a_fresh_start_at_once() {
    let (h, s, [a0, _]) = county().await;
    let first = h.state.live.attach(&h.state, &a0, 1);
    let info = start(&h, microphone("广播", "paging", json!({"villages": [s.villages[0]]}))).await;
    let id = info["session_id"].as_str().expect("id");
    let c1 = command(&h, &first);
    h.state.live.detach(&a0, 1);
    assert_eq!(agent_state(&report(&h, id).await, &a0)["state"], "offline");
    h.state.clock.advance_ms(40_000);
    let second = h.state.live.attach(&h.state, &a0, 2);
    let c2 = command(&h, &second);
    assert_ne!(c1.id, c2.id);
    assert_eq!(c2.issued_at_ms, T0 + 40_000, "a fresh command, not the expired one");
    let CommandAction::LiveStart(start) = c2.action else { panic!("start expected") };
    assert_eq!(start.session_id, id);
    assert!(start.max_duration_ms <= 3_600_000 - 40_000, "the remaining time: {}", start.max_duration_ms);
    assert_eq!(agent_state(&report(&h, id).await, &a0)["state"], "sent");
    // The older link's late detach does not take the new one offline.
    h.state.live.detach(&a0, 1);
    assert_eq!(agent_state(&report(&h, id).await, &a0)["state"], "sent");
}

#[tokio::test]
async fn bad_requests_say_what_is_wrong() {
    let (h, s, _) = county().await;
    let v = json!({"villages": [s.villages[0]]});
    for (body, status, needle) in [
        (
            json!({"title": " ", "priority": "paging", "targets": v, "source": {"type": "microphone"}}),
            400,
            "needs a title",
        ),
        (
            json!({"title": "x", "priority": "paging", "targets": v, "source": {"type": "microphone"}, "volume": 101}),
            400,
            "volume",
        ),
        (
            json!({"title": "x", "priority": "paging", "targets": v, "source": {"type": "library_item", "item_id": 77}}),
            404,
            "library item 77",
        ),
        (
            json!({"title": "x", "priority": "paging", "targets": v, "source": {"type": "text", "text": ""}}),
            400,
            "empty",
        ),
        (json!({"title": "x", "priority": "paging", "targets": v, "source": {"type": "audio"}}), 400, "library"),
        (
            json!({"title": "x", "priority": "paging", "targets": v, "source": {"type": "microphone"}, "max_duration_ms": 1}),
            400,
            "max_duration_ms",
        ),
        (json!({"title": "x", "priority": "urgent", "targets": v, "source": {"type": "microphone"}}), 422, "priority"),
    ] {
        let (got, resp) = call(&h.app, Method::POST, "/api/v1/live", Payload::Json(body.clone())).await;
        assert_eq!(got.as_u16(), status, "{body}: {resp}");
        assert!(resp["message"].as_str().unwrap_or_default().contains(needle), "{needle}: {resp}");
    }
    let (status, _) = call(&h.app, Method::GET, "/api/v1/live/L0", Payload::None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let info = start(&h, microphone("x", "paging", v.clone())).await;
    let id = info["session_id"].as_str().expect("id");
    h.state.live.take_microphone(id).expect("the first microphone");
    let again = h.state.live.take_microphone(id).expect_err("one microphone per session");
    assert!(again.to_string().contains("already connected"), "{again}");
}
