//! Operator alarms through the in-process application: each kind raised
//! and cleared from presence, status, sync, play events and live refusals;
//! the list and acknowledgements, township scoping, the event stream's
//! filtering, the signed webhook with retries, and a restart that keeps
//! open alarms without raising them again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use dalaba_controller::accounts::Role;
use dalaba_controller::accounts::session::CSRF_HEADER;
use dalaba_controller::alarms::webhook::{SIGNATURE_HEADER, WebhookSettings};
use dalaba_controller::alarms::{AlarmSettings, Alarms};
use dalaba_controller::api::AppState;
use dalaba_protocol::PROTOCOL_VERSION;
use dalaba_protocol::link::{AgentStatus, AmplifierState, Hardware, Hello};
use dalaba_protocol::live::{CommandRefusal, RefusalCode};
use dalaba_protocol::state::{PlayEvent, PlayOutcome, SyncReport, SyncState};
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use crate::harness::{
    Harness, LONG_SESSIONS, Payload, Seeded, account_session, call, create, enrol, error_message, fetch, id, request,
    seed, send,
};

const MIN: i64 = 60_000;

fn hello() -> Hello {
    Hello {
        protocol_version: PROTOCOL_VERSION,
        agent_version: "0.2.0".into(),
        hardware: Hardware { model: "Pi 4".into(), amplifier_driver: "modbus-rtu".into(), ..Hardware::default() },
    }
}

fn healthy() -> AgentStatus {
    AgentStatus {
        clock_offset_ms: Some(20),
        disk_free_bytes: 8_000_000_000,
        cache_bytes: 0,
        amplifier: AmplifierState::Off,
        now_playing: None,
    }
}

fn peer() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 50_000))
}

/// Open alarms as the API lists them: (kind, agent, state).
async fn open_alarms(h: &Harness) -> Vec<(String, String)> {
    let (status, body) = call(&h.app, Method::GET, "/api/v1/alarms", Payload::None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut kinds: Vec<(String, String)> = body["alarms"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|a| {
            (a["kind"].as_str().unwrap_or_default().to_owned(), a["agent_id"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    kinds.sort();
    kinds
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list.iter().map(|(k, a)| (k.to_string(), a.to_string())).collect();
    v.sort();
    v
}

async fn evaluate(h: &Harness) -> Vec<Value> {
    let changed = h.state.alarms.evaluate(&h.state).await.expect("evaluation");
    changed.iter().map(|a| serde_json::to_value(a).expect("json")).collect()
}

fn play(n: i64, confirmed: bool) -> PlayEvent {
    PlayEvent {
        id: format!("s1@{n}"),
        schedule_id: 1,
        sha256: "ab".repeat(32),
        scheduled_ms: n,
        started_ms: Some(n),
        ended_ms: Some(n + 1_000),
        outcome: PlayOutcome::Completed,
        reason: None,
        amplifier_confirmed: confirmed,
    }
}

#[tokio::test]
async fn each_kind_is_raised_when_its_condition_starts_and_cleared_when_it_ends() {
    let h = Harness::new();
    let s = seed(&h.app).await;
    let (a, _) = enrol(&h.app, s.villages[0], "pi-a").await;
    let now = || h.state.clock.now_ms();
    let link = h.state.presence.connect(&a, peer(), hello(), now());
    assert!(evaluate(&h).await.is_empty(), "online with no report yet: nothing is known");

    // A sick board: clock, disk, amplifier at once; sync failing starts now.
    let sick = AgentStatus {
        clock_offset_ms: Some(-1_500),
        disk_free_bytes: 100_000_000,
        amplifier: AmplifierState::Fault,
        ..healthy()
    };
    h.state.presence.status(&a, link.conn_id, sick, now());
    let failed = SyncReport { version: 1, state: SyncState::Failed { reason: "HTTP 404 for content ab…".into() } };
    h.state.presence.sync(&a, link.conn_id, failed.clone(), now());
    let raised = evaluate(&h).await;
    assert_eq!(raised.len(), 3, "{raised:?}");
    assert_eq!(open_alarms(&h).await, pairs(&[("amplifier", &a), ("clock", &a), ("disk", &a)]));
    let clock = raised.iter().find(|r| r["kind"] == "clock").expect("clock");
    assert_eq!(clock["detail"]["clock_offset_ms"], -1_500);
    assert_eq!(
        (&clock["state"], &clock["village_name"], &clock["township_name"]),
        (&json!("open"), &json!("王家沟村"), &json!("城关镇"))
    );
    assert!(evaluate(&h).await.is_empty(), "no duplicates");

    // Sync failing for an hour, in every report.
    h.state.clock.advance_ms(59 * MIN);
    h.state.presence.sync(&a, link.conn_id, failed.clone(), now());
    assert!(evaluate(&h).await.is_empty(), "59 minutes is not an hour");
    h.state.clock.advance_ms(MIN);
    let raised = evaluate(&h).await;
    assert_eq!(raised.len(), 1);
    assert_eq!(
        (&raised[0]["kind"], &raised[0]["detail"]["sync_error"]),
        (&json!("sync"), &json!("HTTP 404 for content ab…"))
    );

    // All well again: every alarm is cleared, none deleted.
    h.state.presence.status(&a, link.conn_id, healthy(), now());
    h.state.presence.sync(&a, link.conn_id, SyncReport { version: 1, state: SyncState::UpToDate }, now());
    let cleared = evaluate(&h).await;
    assert_eq!(cleared.len(), 4);
    assert!(cleared.iter().all(|c| c["state"] == "cleared" && c["cleared_ms"] == now()), "{cleared:?}");
    assert!(open_alarms(&h).await.is_empty());
    let (_, all) = call(&h.app, Method::GET, "/api/v1/alarms?state=all", Payload::None).await;
    assert_eq!(all["alarms"].as_array().expect("list").len(), 4, "history is kept");

    // Amplifier from the items played: two in a row unconfirmed.
    h.state.alarms.note_play_events(&a, &[play(now(), false)]);
    assert!(evaluate(&h).await.is_empty(), "one item is not a run");
    h.state.alarms.note_play_events(&a, &[play(now() + 1, false)]);
    let raised = evaluate(&h).await;
    assert_eq!(raised[0]["detail"], json!({"source": "plays", "unconfirmed_items": 2}));
    h.state.alarms.note_play_events(&a, &[play(now() + 2, true)]);
    assert_eq!(evaluate(&h).await[0]["state"], "cleared");

    // Offline: after 30 minutes, not at 30.
    assert!(h.state.presence.disconnect(&a, link.conn_id));
    assert!(evaluate(&h).await.is_empty());
    h.state.clock.advance_ms(30 * MIN);
    assert!(evaluate(&h).await.is_empty(), "exactly 30 minutes");
    h.state.clock.advance_ms(1);
    let raised = evaluate(&h).await;
    assert_eq!(
        (&raised[0]["kind"], &raised[0]["detail"]["offline_since_ms"]),
        (&json!("offline"), &json!(now() - 30 * MIN - 1))
    );
    // Back online: cleared.
    h.state.presence.connect(&a, peer(), hello(), now());
    let cleared = evaluate(&h).await;
    assert_eq!((&cleared[0]["kind"], &cleared[0]["state"]), (&json!("offline"), &json!("cleared")));
}

#[tokio::test]
async fn a_board_that_never_connected_is_offline_from_its_enrolment() {
    let h = Harness::new();
    let s = seed(&h.app).await;
    let (a, _) = enrol(&h.app, s.villages[0], "pi-a").await;
    h.state.clock.advance_ms(31 * MIN);
    let raised = evaluate(&h).await;
    assert_eq!(raised.len(), 1);
    assert_eq!((&raised[0]["kind"], &raised[0]["agent_id"]), (&json!("offline"), &json!(a)));
    // Removing the agent clears its alarms.
    let (status, _) = call(&h.app, Method::DELETE, &format!("/api/v1/agents/{a}"), Payload::None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(evaluate(&h).await[0]["state"], "cleared");
}

#[tokio::test]
async fn a_restart_keeps_open_alarms_without_raising_them_again() {
    let h = Harness::new();
    let s = seed(&h.app).await;
    let (a, _) = enrol(&h.app, s.villages[0], "pi-a").await;
    let link = h.state.presence.connect(&a, peer(), hello(), h.state.clock.now_ms());
    h.state.alarms.note_play_events(&a, &[play(1, false), play(2, false)]);
    h.state.presence.status(&a, link.conn_id, AgentStatus { disk_free_bytes: 1, ..healthy() }, h.state.clock.now_ms());
    assert_eq!(evaluate(&h).await.len(), 2, "disk and amplifier");
    h.state.presence.disconnect(&a, link.conn_id);
    h.state.clock.advance_ms(40 * MIN);
    assert_eq!(evaluate(&h).await.len(), 1, "offline");

    // A new controller process: the same store, nothing in memory, the agent
    // not back yet.
    let restarted =
        AppState { alarms: Arc::new(Alarms::new(AlarmSettings::default(), h.state.clock.now_ms())), ..h.state.clone() };
    let changed = restarted.alarms.evaluate(&restarted).await.expect("evaluation");
    assert!(changed.is_empty(), "nothing raised twice, nothing cleared for want of facts: {changed:?}");
    assert_eq!(open_alarms(&h).await, pairs(&[("amplifier", &a), ("disk", &a), ("offline", &a)]));
    // The agent comes back healthy: all three clear.
    let link = restarted.presence.connect(&a, peer(), hello(), restarted.clock.now_ms());
    restarted.presence.status(&a, link.conn_id, healthy(), restarted.clock.now_ms());
    let changed = restarted.alarms.evaluate(&restarted).await.expect("evaluation");
    assert_eq!(changed.len(), 3, "{changed:?}");
}

#[tokio::test]
async fn a_restart_counts_a_failing_sync_from_when_it_started() {
    let h = Harness::new();
    let s = seed(&h.app).await;
    let (a, _) = enrol(&h.app, s.villages[0], "pi-a").await;
    let (b, _) = enrol(&h.app, s.villages[1], "pi-b").await;
    let now = || h.state.clock.now_ms();
    let failed = SyncReport { version: 1, state: SyncState::Failed { reason: "HTTP 404 for content ab…".into() } };
    for agent in [&a, &b] {
        let link = h.state.presence.connect(agent, peer(), hello(), now());
        h.state.presence.status(agent, link.conn_id, healthy(), now());
        h.state.presence.sync(agent, link.conn_id, failed.clone(), now());
    }
    assert!(evaluate(&h).await.is_empty(), "failing since now");
    let failing_since = now();
    // b recovers before the restart: its start is forgotten.
    h.state.clock.advance_ms(10 * MIN);
    let link = h.state.presence.connect(&b, peer(), hello(), now());
    h.state.presence.sync(&b, link.conn_id, SyncReport { version: 1, state: SyncState::UpToDate }, now());
    assert!(evaluate(&h).await.is_empty());
    h.state.clock.advance_ms(30 * MIN);

    // A new controller process: the same store, nothing in memory; both
    // boards come back still (b: again) failing.
    let restarted = AppState { alarms: Arc::new(Alarms::new(AlarmSettings::default(), now())), ..h.state.clone() };
    // What `alarms::run` does first.
    let (alarms, at) = (Arc::clone(&restarted.alarms), now());
    let recalled = restarted.db(move |s| alarms.recall(s, at)).await.expect("recall");
    assert_eq!(recalled.syncs, 1, "{recalled:?}");
    for agent in [&a, &b] {
        let link = restarted.presence.connect(agent, peer(), hello(), now());
        restarted.presence.status(agent, link.conn_id, healthy(), now());
        restarted.presence.sync(agent, link.conn_id, failed.clone(), now());
    }
    assert!(restarted.alarms.evaluate(&restarted).await.expect("evaluation").is_empty(), "40 minutes so far");
    restarted.clock.advance_ms(20 * MIN);
    let raised = restarted.alarms.evaluate(&restarted).await.expect("evaluation");
    let raised: Vec<Value> = raised.iter().map(|a| serde_json::to_value(a).expect("json")).collect();
    assert_eq!(raised.len(), 1, "a's hour, counted from before the restart; b's started 30 minutes ago: {raised:?}");
    assert_eq!((&raised[0]["kind"], &raised[0]["agent_id"]), (&json!("sync"), &json!(a)));
    assert_eq!(raised[0]["detail"]["failing_since_ms"], failing_since, "{raised:?}");
}

/// Waits until `check` holds, polling; panics after ten seconds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_emergency_refused_by_an_agent_raises_an_alarm_until_it_plays_again() {
    let h = Harness::new();
    let s = seed(&h.app).await;
    let (a, _) = enrol(&h.app, s.villages[0], "pi-a").await;
    h.state.presence.connect(&a, peer(), hello(), h.state.clock.now_ms());
    let _outbox = h.state.live.attach(&h.state, &a, 1);
    let stop = CancellationToken::new();
    tokio::spawn(dalaba_controller::alarms::run(h.state.clone(), stop.clone()));
    let start = |priority: &'static str| {
        Payload::Json(json!({"title": "t", "priority": priority, "targets": {"villages": [s.villages[0]]},
            "source": {"type": "microphone"}}))
    };
    let refuse = |session: String| CommandRefusal {
        command_id: None,
        session_id: Some(session),
        reason: RefusalCode::BadSignature,
        message: "signature does not verify".into(),
    };
    // A paging refusal is not an emergency refusal.
    let (status, paging) = call(&h.app, Method::POST, "/api/v1/live", start("paging")).await;
    assert_eq!(status, StatusCode::CREATED, "{paging}");
    let paging = paging["session_id"].as_str().expect("id").to_owned();
    h.state.live.on_refusal(&h.state, &a, refuse(paging.clone())).await;
    call(&h.app, Method::POST, &format!("/api/v1/live/{paging}/stop"), Payload::None).await;

    let (_, emergency) = call(&h.app, Method::POST, "/api/v1/live", start("emergency")).await;
    let emergency = emergency["session_id"].as_str().expect("id").to_owned();
    h.state.live.on_refusal(&h.state, &a, refuse(emergency.clone())).await;
    eventually("the emergency_refused alarm", || async { !open_alarms(&h).await.is_empty() }).await;
    let (_, body) = call(&h.app, Method::GET, "/api/v1/alarms", Payload::None).await;
    let alarms = body["alarms"].as_array().expect("list");
    assert_eq!(alarms.len(), 1, "{body}");
    assert_eq!(
        (&alarms[0]["kind"], &alarms[0]["detail"]["live_session_id"]),
        (&json!("emergency_refused"), &json!(emergency))
    );
    // It plays the next session: cleared.
    call(&h.app, Method::POST, &format!("/api/v1/live/{emergency}/stop"), Payload::None).await;
    let (_, next) = call(&h.app, Method::POST, "/api/v1/live", start("paging")).await;
    let next = next["session_id"].as_str().expect("id").to_owned();
    let playing = dalaba_protocol::live::LiveReport {
        session_id: next,
        state: dalaba_protocol::live::LiveState::Playing { since_ms: h.state.clock.now_ms(), amplifier_on: true },
    };
    h.state.live.on_report(&h.state, &a, playing).await;
    eventually("the alarm to clear", || async { open_alarms(&h).await.is_empty() }).await;
    stop.cancel();
}

/// A second township with one village and an agent in it.
async fn second_township(h: &Harness, s: &Seeded) -> (i64, String) {
    let other = id(&create(
        &h.app,
        json!({"level": "township", "parent_id": s.county, "name": "玉都镇", "code": "620821101000"}),
    )
    .await);
    let village =
        id(&create(&h.app, json!({"level": "village", "parent_id": other, "name": "太平村", "code": "620821101200"}))
            .await);
    (other, enrol(&h.app, village, "pi-other").await.0)
}

async fn as_account(
    h: &Harness,
    session: &(HeaderValue, HeaderValue),
    method: Method,
    path: &str,
) -> (StatusCode, Value) {
    let mut req = request(method, path, Payload::None);
    req.headers_mut().insert(header::COOKIE, session.0.clone());
    req.headers_mut().insert(CSRF_HEADER, session.1.clone());
    let (status, _, bytes) = fetch(&h.app, req).await;
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_list_and_acknowledgements_keep_to_the_callers_township() {
    let h = Harness::new();
    let s = seed(&h.app).await;
    let (mine, _) = enrol(&h.app, s.villages[0], "pi-mine").await;
    let (_, theirs) = second_township(&h, &s).await;
    h.state.clock.advance_ms(31 * MIN);
    assert_eq!(evaluate(&h).await.len(), 2, "both boards never connected");
    let (_, all) = call(&h.app, Method::GET, "/api/v1/alarms", Payload::None).await;
    let id_of = |agent: &str| {
        all["alarms"].as_array().expect("list").iter().find(|a| a["agent_id"] == agent).expect("listed")["id"]
            .as_i64()
            .expect("id")
    };
    let (my_alarm, their_alarm) = (id_of(&mine), id_of(&theirs));
    let newest = my_alarm.max(their_alarm);
    assert_eq!(all["alarms"][0]["id"], newest, "newest first: {all}");

    let town = account_session(&h.state, "town-op", Role::Operator, Some(s.township), false, &LONG_SESSIONS);
    let (status, listed) = as_account(&h, &town, Method::GET, "/api/v1/alarms?state=all").await;
    assert_eq!(status, StatusCode::OK);
    let agents: Vec<&Value> = listed["alarms"].as_array().expect("list").iter().map(|a| &a["agent_id"]).collect();
    assert_eq!(agents, [&json!(mine)], "only its township's");
    let (status, body) =
        as_account(&h, &town, Method::POST, &format!("/api/v1/alarms/{their_alarm}/acknowledge")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(error_message(&body, "outside_area").contains("城关镇"), "{body}");
    let (status, acked) = as_account(&h, &town, Method::POST, &format!("/api/v1/alarms/{my_alarm}/acknowledge")).await;
    assert_eq!(status, StatusCode::OK, "{acked}");
    assert_eq!(
        (&acked["acknowledged_by"], &acked["acknowledged_ms"]),
        (&json!("town-op 测试 (town-op)"), &json!(h.state.clock.now_ms()))
    );
    // Idempotent: the first acknowledgement stays.
    h.state.clock.advance_ms(5_000);
    let (status, again) =
        call(&h.app, Method::POST, &format!("/api/v1/alarms/{my_alarm}/acknowledge"), Payload::None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["acknowledged_by"], "town-op 测试 (town-op)");
    // A viewer may list but not acknowledge.
    let viewer = account_session(&h.state, "viewer", Role::Viewer, None, false, &LONG_SESSIONS);
    assert_eq!(as_account(&h, &viewer, Method::GET, "/api/v1/alarms").await.0, StatusCode::OK);
    let (status, _) = as_account(&h, &viewer, Method::POST, &format!("/api/v1/alarms/{their_alarm}/acknowledge")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(&h.app, Method::POST, "/api/v1/alarms/424242/acknowledge", Payload::None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_message(&body, "not_found"), "alarm 424242 does not exist");
    // Paging back by id.
    let (_, page) = call(&h.app, Method::GET, &format!("/api/v1/alarms?limit=1&before={newest}"), Payload::None).await;
    assert_eq!(page["alarms"].as_array().expect("list").len(), 1);
    assert_eq!(page["alarms"][0]["id"], my_alarm.min(their_alarm));
}

#[tokio::test]
async fn bad_queries_are_clear_400s() {
    let h = Harness::new();
    for (query, expected) in [
        ("state=closed", "state \"closed\" must be open or all"),
        ("limit=0", "limit \"0\" must be a number from 1 to 1000"),
        ("limit=ten", "must be a number from 1 to 1000"),
        ("limit=5000", "from 1 to 1000"),
        ("before=x", "before \"x\" must be an alarm id"),
        ("kind=disk", "unknown parameter \"kind\""),
    ] {
        let (status, body) = call(&h.app, Method::GET, &format!("/api/v1/alarms?{query}"), Payload::None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(error_message(&body, "bad_request").contains(expected), "{query}: {body}");
    }
    let (status, _) = call(&h.app, Method::POST, "/api/v1/alarms/abc/acknowledge", Payload::None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Reads the event stream until an event named `name` arrives; returns its
/// data. Panics after five seconds.
async fn next_event(body: &mut axum::body::Body, buffer: &mut String, name: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let event = block.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or_default();
            let data = block.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or_default();
            if event == name {
                return serde_json::from_str(data).expect("json data");
            }
        }
        let frame = tokio::time::timeout_at(deadline, body.frame()).await.expect("an event in time");
        let frame = frame.expect("the stream goes on").expect("a frame");
        if let Ok(data) = frame.into_data() {
            buffer.push_str(&String::from_utf8_lossy(&data));
        }
    }
}

#[tokio::test]
async fn a_township_account_hears_only_of_its_township_on_the_event_stream() {
    let h = Harness::new();
    let s = seed(&h.app).await;
    let (mine, _) = enrol(&h.app, s.villages[0], "pi-mine").await;
    let (_, theirs) = second_township(&h, &s).await;
    let town = account_session(&h.state, "town-viewer", Role::Viewer, Some(s.township), false, &LONG_SESSIONS);
    let mut req = request(Method::GET, "/api/v1/events", Payload::None);
    req.headers_mut().insert(header::COOKIE, town.0.clone());
    let resp = send(&h.app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut buffer = String::new();

    // Another township's agent comes online, then ours: only ours is heard.
    let now = h.state.clock.now_ms();
    let their_link = h.state.presence.connect(&theirs, peer(), hello(), now);
    let my_link = h.state.presence.connect(&mine, SocketAddr::from(([10, 0, 0, 2], 1)), hello(), now);
    assert_eq!(next_event(&mut body, &mut buffer, "agent").await["id"], json!(mine));
    // Their live session, then ours.
    let session = |village: i64| {
        Payload::Json(json!({"title": "t", "priority": "paging", "targets": {"villages": [village]},
            "source": {"type": "microphone"}}))
    };
    let their_village = h.state.store.agent(&theirs).expect("store").expect("agent").village_id;
    let (status, _) = call(&h.app, Method::POST, "/api/v1/live", session(their_village)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, ours) = call(&h.app, Method::POST, "/api/v1/live", session(s.villages[0])).await;
    let live = next_event(&mut body, &mut buffer, "live").await;
    assert_eq!(live["session"]["session_id"], ours["session_id"], "{live}");
    // Their board's disk alarm, then ours.
    let full = AgentStatus { disk_free_bytes: 1, ..healthy() };
    h.state.presence.status(&theirs, their_link.conn_id, full.clone(), now);
    let first = evaluate(&h).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["agent_id"], json!(theirs));
    h.state.presence.status(&mine, my_link.conn_id, full, now);
    assert_eq!(evaluate(&h).await.len(), 1);
    let alarm = next_event(&mut body, &mut buffer, "alarm").await;
    assert_eq!(alarm["agent_id"], json!(mine), "the other township's alarm was not sent: {alarm}");
    assert_eq!((&alarm["kind"], &alarm["state"]), (&json!("disk"), &json!("open")));
}

/// What the test webhook received.
#[derive(Clone, Default)]
struct Received {
    posts: Arc<std::sync::Mutex<Vec<(HeaderMap, Bytes)>>>,
    /// Answer 500 to this many posts first.
    failures: Arc<std::sync::atomic::AtomicUsize>,
}

async fn webhook_server(received: Received) -> SocketAddr {
    let app = axum::Router::new().route(
        "/hooks/dalaba",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let received = received.clone();
            async move {
                received.posts.lock().expect("lock").push((headers, body));
                let left = received.failures.load(std::sync::atomic::Ordering::SeqCst);
                if left > 0 {
                    received.failures.store(left - 1, std::sync::atomic::Ordering::SeqCst);
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn webhook(addr: SocketAddr, give_up_after: Duration) -> AlarmSettings {
    let url = format!("http://{addr}/hooks/dalaba").parse().expect("url");
    AlarmSettings {
        webhook: Some(WebhookSettings {
            url,
            secret: Some("s3cret".into()),
            first_retry: Duration::from_millis(50),
            give_up_after,
            timeout: Duration::from_secs(2),
        }),
        ..AlarmSettings::default()
    }
}

fn metric(h: &Harness, line: &str) -> bool {
    h.state.metrics.render().lines().any(|l| l == line)
}

#[tokio::test]
async fn raises_and_clears_are_posted_signed_and_retried_until_the_webhook_recovers() {
    let received = Received::default();
    received.failures.store(2, std::sync::atomic::Ordering::SeqCst);
    let addr = webhook_server(received.clone()).await;
    let h = Harness::with_alarms(webhook(addr, Duration::from_secs(30)));
    let stop = CancellationToken::new();
    tokio::spawn(dalaba_controller::alarms::run(h.state.clone(), stop.clone()));
    let s = seed(&h.app).await;
    let (a, _) = enrol(&h.app, s.villages[0], "pi-a").await;
    let link = h.state.presence.connect(&a, peer(), hello(), h.state.clock.now_ms());
    h.state.presence.status(&a, link.conn_id, AgentStatus { disk_free_bytes: 1, ..healthy() }, h.state.clock.now_ms());
    eventually("the raise to be delivered after two failures", || async {
        received.posts.lock().expect("lock").len() >= 3
    })
    .await;
    h.state.presence.status(&a, link.conn_id, healthy(), h.state.clock.now_ms());
    eventually("the clear", || async { received.posts.lock().expect("lock").len() >= 4 }).await;
    let posts = received.posts.lock().expect("lock").clone();
    assert_eq!(posts.len(), 4, "three attempts at the raise, one clear");
    for (headers, body) in &posts {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").expect("key");
        mac.update(body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()), Some(expected.as_str()));
        assert_eq!(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some("application/json"));
    }
    let raise: Value = serde_json::from_slice(&posts[0].1).expect("json");
    assert_eq!(
        (&raise["event"], &raise["kind"], &raise["agent_id"]),
        (&json!("alarm.raised"), &json!("disk"), &json!(a))
    );
    assert_eq!(
        (&raise["village_name"], &raise["village_code"], &raise["township_name"]),
        (&json!("王家沟村"), &json!("620821100200"), &json!("城关镇"))
    );
    assert_eq!(raise["detail"]["disk_free_bytes"], 1);
    assert!(raise["message_zh"].as_str().expect("zh").contains("终端磁盘将满"), "{raise}");
    assert!(raise["message_en"].as_str().expect("en").contains("disk is nearly full"), "{raise}");
    let clear: Value = serde_json::from_slice(&posts[3].1).expect("json");
    assert_eq!((&clear["event"], &clear["state"]), (&json!("alarm.cleared"), &json!("cleared")));
    assert!(metric(&h, "dalaba_alarm_webhook_total{outcome=\"delivered\"} 2"), "{}", h.state.metrics.render());
    assert!(metric(&h, "dalaba_alarm_webhook_total{outcome=\"failed_attempt\"} 2"));
    stop.cancel();
}

#[tokio::test]
async fn a_webhook_that_stays_down_is_given_up_without_holding_up_alarms() {
    // A port nobody listens on.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr");
    let h = Harness::with_alarms(webhook(addr, Duration::from_millis(300)));
    let stop = CancellationToken::new();
    tokio::spawn(dalaba_controller::alarms::run(h.state.clone(), stop.clone()));
    let s = seed(&h.app).await;
    let (a, _) = enrol(&h.app, s.villages[0], "pi-a").await;
    let link = h.state.presence.connect(&a, peer(), hello(), h.state.clock.now_ms());
    h.state.presence.status(&a, link.conn_id, AgentStatus { disk_free_bytes: 1, ..healthy() }, h.state.clock.now_ms());
    // Evaluation does not wait for the webhook: the alarm is listed at once.
    eventually("the alarm", || async { !open_alarms(&h).await.is_empty() }).await;
    eventually("the webhook to be given up", || async {
        metric(&h, "dalaba_alarm_webhook_total{outcome=\"given_up\"} 1")
    })
    .await;
    assert!(!h.state.metrics.render().contains("outcome=\"delivered\""));
    stop.cancel();
}

/// The one test on a real port: a controller started as `app::start` does,
/// an agent on a real WebSocket link. The link writes the presence history,
/// its status reports raise an alarm through the alarm loop, and closing
/// the link closes the history's interval.
#[tokio::test]
async fn a_real_link_writes_the_presence_history_and_its_status_raises_alarms() {
    use dalaba_controller::directory::{Level, NewRegion};
    use dalaba_controller::store::NewAgent;
    use dalaba_protocol::codec;
    use dalaba_protocol::link::{AgentMessage, ControllerMessage};
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = dalaba_controller::config::Config::default_config();
    config.server.listen = "127.0.0.1:0".parse().expect("address");
    config.server.plain_http = true;
    config.storage.data_dir = dir.path().to_path_buf();
    let clock = dalaba_controller::clock::Clock::manual(crate::harness::T0);
    let running = dalaba_controller::app::start(&config, clock).await.expect("controller");
    let store = &running.state.store;
    let region = |parent, level, name: &str, code: &str| {
        let new = NewRegion {
            parent_id: parent,
            level,
            name: name.into(),
            code: code.into(),
            latitude: None,
            longitude: None,
            tags: vec![],
        };
        store.create_region(&new).expect("region").id
    };
    let county = region(None, Level::County, "泾川县", "620821000000");
    let township = region(Some(county), Level::Township, "城关镇", "620821100000");
    let village = region(Some(township), Level::Village, "王家沟村", "620821100200");
    store.create_enrolment_code(village, "CODE", i64::MAX, 0).expect("code");
    let agent = NewAgent {
        id: "ag-real".into(),
        secret_hash: dalaba_controller::api::secret_hash("s3cret"),
        hostname: "pi".into(),
        agent_version: "0.2.0".into(),
        hardware_json: "{}".into(),
        enrolled_at_ms: crate::harness::T0,
    };
    store.redeem_enrolment_code("CODE", crate::harness::T0, &agent).expect("enrolled");

    let mut req = format!("ws://{}/api/v1/link", running.addr).into_client_request().expect("request");
    req.headers_mut().insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer ag-real.s3cret"));
    let tcp = tokio::net::TcpStream::connect(running.addr).await.expect("connect");
    let (mut ws, _) = tokio_tungstenite::client_async(req, tcp).await.expect("upgrade");
    ws.send(Message::text(codec::encode(&AgentMessage::Hello(hello())))).await.expect("hello");
    let welcome = ws.next().await.expect("a frame").expect("no error");
    let welcome: ControllerMessage = codec::decode(welcome.to_text().expect("text")).expect("json");
    assert!(matches!(welcome, ControllerMessage::Welcome(_)), "{welcome:?}");
    let status = AgentStatus { disk_free_bytes: 1, ..healthy() };
    ws.send(Message::text(codec::encode(&AgentMessage::Status(status)))).await.expect("status");

    let (t0, far) = (crate::harness::T0, crate::harness::T0 + 1_000_000);
    eventually("the disk alarm from the link's status", || async {
        store.open_alarms().expect("alarms").iter().any(|a| a.agent_id == "ag-real")
    })
    .await;
    let history = store.presence_history(&[village], t0 - 1, far).expect("history");
    assert_eq!(history[0].online, [(t0, None)], "one open interval");
    ws.close(None).await.expect("close");
    eventually("the interval to close", || async {
        store.presence_history(&[village], t0 - 1, far).expect("history")[0].online == [(t0, Some(t0))]
    })
    .await;
    running.shutdown.cancel();
}
