//! Schedules through the API: create, list, preview with conflicts, the
//! refused inputs, quiet hours, the plan views, and the desired states the
//! distribution builds from them.

use axum::http::{Method, StatusCode};
use dalaba_controller::distribution;
use dalaba_controller::library::{ItemSource, NewLibraryItem, StoredFile};
use dalaba_protocol::state::PlaybackSettings;
use serde_json::{Value, json};

use crate::harness::{Harness, Payload, T0, call, enrol, error_message, seed};

/// T0 is 23:06:40 in Shanghai: the next 07:00 is the next morning, 23:00 UTC.
const NEXT_SEVEN: i64 = T0 + (7 * 3600 + 53 * 60 + 20) * 1000;

/// A library item stored directly (the upload path has its own tests).
pub(crate) fn add_item(h: &Harness, title: &str, hash: char, duration_ms: u64) -> i64 {
    let file = |c: char, format: &str| StoredFile {
        sha256: c.to_string().repeat(64),
        size_bytes: 4096,
        format: format.into(),
    };
    let item = h
        .state
        .store
        .insert_library_item(&NewLibraryItem {
            title: title.into(),
            description: String::new(),
            category: "legal".into(),
            source: ItemSource::Upload,
            original: file(hash, "mp3"),
            distribution: file(char::from_digit(hash.to_digit(16).expect("hex") ^ 1, 16).expect("hex"), "ogg-opus"),
            duration_ms,
            loudness_lufs: Some(-20.0),
            true_peak_dbtp: Some(-3.0),
            gain_db: 4.0,
            created_at_ms: T0,
        })
        .expect("insert item");
    item.id
}

pub(crate) fn daily(name: &str, item: i64, times: &[&str], targets: Value) -> Value {
    json!({
        "name": name,
        "playlist": [{"item_id": item}],
        "recurrence": {"rule": {"kind": "daily", "times": times}},
        "targets": targets,
    })
}

async fn post(h: &Harness, body: Value) -> (StatusCode, Value) {
    call(&h.app, Method::POST, "/api/v1/schedules", Payload::Json(body)).await
}

#[tokio::test]
async fn a_schedule_is_created_listed_previewed_and_planned() {
    let h = Harness::new();
    let s = seed(&h.app).await;
    let item = add_item(&h, "禁毒宣传", 'a', 60_000);
    let (status, created) = post(&h, daily("早间法治", item, &["07:00:00"], json!({"county": true}))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["timezone"], "Asia/Shanghai");
    assert_eq!(created["volume"], 80);
    assert_eq!(created["priority"], "scheduled");
    let id = created["id"].as_i64().expect("id");

    let (status, list) = call(&h.app, Method::GET, "/api/v1/schedules", Payload::None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["next_start_ms"], NEXT_SEVEN);
    assert_eq!(list[0]["village_count"], 2);
    assert_eq!(list[0]["cron"], json!(["0 0 7 * * *"]));

    let (status, one) = call(&h.app, Method::GET, &format!("/api/v1/schedules/{id}"), Payload::None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["playlist"], json!([{"item_id": item, "repeats": 0}]));

    // A second schedule at the same minute for one village, lower priority:
    // the preview warns that it gives way and is moved after the first.
    let mut rival = daily("交通提醒", item, &["07:00:00"], json!({"villages": [s.villages[0]]}));
    rival["priority"] = json!("background");
    let (status, preview) =
        call(&h.app, Method::POST, "/api/v1/schedules/preview", Payload::Json(json!({"schedule": rival}))).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["next"].as_array().expect("next").len(), 10);
    assert_eq!(preview["next"][0]["local"], "2025-06-16 07:00:00");
    assert_eq!(preview["village_count"], 1);
    let conflicts = preview["conflicts"].as_array().expect("conflicts");
    assert_eq!(conflicts.len(), 1, "{preview}");
    assert_eq!(conflicts[0]["other_id"], id);
    assert_eq!(conflicts[0]["role"], "loses");
    assert_eq!(conflicts[0]["outcome"], "moved");
    assert_eq!(conflicts[0]["occurrences"], 7);
    assert_eq!(conflicts[0]["villages"], 1);

    // Saved, it shows in the village's day plan after the first one.
    let (status, _) = post(&h, rival).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, day) =
        call(&h.app, Method::GET, &format!("/api/v1/villages/{}/plan?day=2025-06-16", s.villages[0]), Payload::None)
            .await;
    assert_eq!(status, StatusCode::OK, "{day}");
    let items = day["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{day}");
    assert_eq!(items[0]["name"], "早间法治");
    assert_eq!(items[1]["name"], "交通提醒");
    assert_eq!(items[1]["start_ms"], items[0]["end_ms"]);
    assert_eq!(items[1]["moved_by_ms"], 60_000);

    // The week view of the township lists both villages for 7 days.
    let (status, week) =
        call(&h.app, Method::GET, &format!("/api/v1/plan?start=2025-06-16&region={}", s.township), Payload::None).await;
    assert_eq!(status, StatusCode::OK, "{week}");
    let villages = week["villages"].as_array().expect("villages");
    assert_eq!(villages.len(), 2);
    let counts: Vec<usize> = villages.iter().map(|v| v["items"].as_array().expect("items").len()).collect();
    assert_eq!(counts.iter().sum::<usize>(), 7 * 3, "{counts:?}");

    // The library item cannot go while schedules play it.
    let (status, body) = call(&h.app, Method::DELETE, &format!("/api/v1/library/{item}"), Payload::None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = call(&h.app, Method::DELETE, &format!("/api/v1/schedules/{id}"), Payload::None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(&h.app, Method::GET, &format!("/api/v1/schedules/{id}"), Payload::None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_schedules_are_refused_with_a_reason() {
    let h = Harness::new();
    let s = seed(&h.app).await;
    let item = add_item(&h, "防溺水", 'b', 30_000);
    let base = daily("x", item, &["08:00:00"], json!({"county": true}));
    let with = |key: &str, value: Value| {
        let mut b = base.clone();
        b[key] = value;
        b
    };
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "invalid cron",
            with("recurrence", json!({"cron": "0 0 25 * * *"})),
            "invalid cron expression",
            "invalid_cron",
        ),
        (
            "five-field cron",
            with("recurrence", json!({"cron": "0 7 * * *"})),
            "starts with seconds",
            "cron_five_fields",
        ),
        ("no targets", with("targets", json!({})), "at least one target", "no_targets"),
        (
            "window reversed",
            with("valid_from", json!("2025-07-01")).tap(|b| b["valid_until"] = json!("2025-06-01")),
            "ends (2025-06-01) before it starts (2025-07-01)",
            "validity_reversed",
        ),
        (
            "missing township",
            with("targets", json!({"townships": [9999]})),
            "township 9999 does not exist",
            "unknown_township",
        ),
        (
            "village that is a township",
            with("targets", json!({"villages": [s.township]})),
            "not a village",
            "not_a_village",
        ),
        ("unknown tag", with("targets", json!({"tags": ["港口"]})), "carried by no village", "unknown_tag"),
        (
            "missing item",
            with("playlist", json!([{"item_id": 777}])),
            "library item 777 does not exist",
            "unknown_item",
        ),
        ("empty playlist", with("playlist", json!([])), "playlist is empty", "empty_playlist"),
        ("loud", with("volume", json!(150)), "volume 150", "volume_out_of_range"),
        ("unknown zone", with("timezone", json!("Mars/Olympus")), "unknown time zone", "unknown_time_zone"),
    ];
    for (what, body, expected, reason) in cases {
        let (status, answer) = post(&h, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {answer}");
        let message = error_message(&answer, "invalid_schedule");
        assert!(message.contains(expected), "{what}: {message}");
        // The reason and its values, for the console to word the refusal.
        assert_eq!(answer["reason"], reason, "{what}: {answer}");
        assert!(answer["params"].is_object(), "{what}: {answer}");
    }
    let (_, answer) = post(&h, with("targets", json!({"townships": [9999]}))).await;
    assert_eq!(answer["params"], json!({"id": "9999"}), "{answer}");
    let (_, answer) =
        post(&h, with("valid_from", json!("2025-07-01")).tap(|b| b["valid_until"] = json!("2025-06-01"))).await;
    assert_eq!(answer["params"], json!({"from": "2025-07-01", "until": "2025-06-01"}), "{answer}");
    let (status, answer) = post(&h, with("colour", json!("red"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(error_message(&answer, "invalid_json").contains("colour"), "{answer}");
    let (status, answer) = call(&h.app, Method::PUT, "/api/v1/schedules/42", Payload::Json(base)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, list) = call(&h.app, Method::GET, "/api/v1/schedules", Payload::None).await;
    assert_eq!((status, list), (StatusCode::OK, json!([])), "nothing was stored");
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}
impl Tap for Value {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

#[tokio::test]
async fn quiet_hours_move_scheduled_items_and_are_checked() {
    let h = Harness::new();
    let s = seed(&h.app).await;
    let item = add_item(&h, "健康提示", 'c', 60_000);
    let mut body = daily("深夜", item, &["22:30:00"], json!({"villages": [s.villages[1]]}));
    body["max_delay_ms"] = json!(12 * 3600 * 1000);
    assert_eq!(post(&h, body).await.0, StatusCode::CREATED);
    let quiet = json!({"county": [{"start": "22:00:00", "end": "06:00:00"}]});
    let (status, answer) = call(&h.app, Method::PUT, "/api/v1/quiet-hours", Payload::Json(quiet.clone())).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, stored) = call(&h.app, Method::GET, "/api/v1/quiet-hours", Payload::None).await;
    assert_eq!(stored["county"], quiet["county"]);
    let path = format!("/api/v1/villages/{}/plan?day=2025-06-17", s.villages[1]);
    let (_, day) = call(&h.app, Method::GET, &path, Payload::None).await;
    // The 22:30 of the 16th waits for 06:00 on the 17th.
    let first = &day["items"][0];
    assert_eq!(
        first["start_ms"].as_i64().expect("start") - first["nominal_start_ms"].as_i64().expect("nominal"),
        7 * 3600 * 1000 + 30 * 60 * 1000,
        "{day}"
    );

    let bad = json!({"townships": [{"township_id": 4242, "windows": []}]});
    let (status, answer) = call(&h.app, Method::PUT, "/api/v1/quiet-hours", Payload::Json(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_message(&answer, "invalid_schedule").contains("township 4242 does not exist"));
}

#[tokio::test]
async fn desired_states_follow_the_timetable_and_keep_versions_when_unchanged() {
    let h = Harness::new();
    let s = seed(&h.app).await;
    let (agent, _) = enrol(&h.app, s.villages[0], "pi-wangjiagou").await;
    let (other, _) = enrol(&h.app, s.villages[1], "pi-lijia").await;
    let item = add_item(&h, "禁毒宣传", 'a', 90_000);
    let store = h.state.store.as_ref();
    let settings = PlaybackSettings::default();

    let empty = distribution::build(store, T0, &settings).expect("build");
    assert!(empty[&agent].plan.entries.is_empty());
    let v0 = empty[&agent].version;

    let mut body = daily("早间法治", item, &["07:00:00", "12:00:00"], json!({"villages": [s.villages[0]]}));
    body["volume"] = json!(65);
    let (_, created) = post(&h, body).await;
    let id = created["id"].as_i64().expect("id");
    let built = distribution::build(store, T0 + 1000, &settings).expect("build");
    let mine = &built[&agent];
    assert!(mine.version > v0, "a changed plan gets a newer version");
    assert_eq!(built[&other].version, empty[&other].version, "the other village's plan did not change");
    let state = mine.to_state();
    assert_eq!(state.entries.len(), 14, "two a day for a week");
    let first = &state.entries[0];
    assert_eq!(first.id, format!("{id}@{NEXT_SEVEN}"));
    assert_eq!(first.volume, 65);
    assert_eq!(first.plays[0].sha256, "b".repeat(64), "agents get the distribution file");
    assert_eq!(state.content.len(), 1);
    assert_eq!(state.content[0].gain_db, 4.0);
    assert_eq!(state.content[0].size_bytes, 4096);
    assert_eq!(state.content[0].duration_ms, 90_000);

    // Nothing changed: same version, even from a fresh build (a restart).
    let again = distribution::build(store, T0 + 2000, &settings).expect("build");
    assert_eq!(again[&agent].version, mine.version);
    // Ids stay when the plan is rebuilt later.
    assert_eq!(again[&agent].to_state().entries[0].id, first.id);
}
