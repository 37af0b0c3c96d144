//! Service reports through the API: figures per township and county, an
//! account limited to its township, CSV and the printable page made inert,
//! and every bad query answered by name.

use axum::http::{Method, StatusCode, header};
use dalaba_controller::accounts::Role;
use dalaba_protocol::state::{PlayEvent, PlayOutcome};
use serde_json::{Value, json};

use crate::harness::{
    Harness, LONG_SESSIONS, Payload, T0, account_session, call, create, enrol, error_message, fetch, id, request, seed,
};

/// 2025-06-10 08:00 in the county (UTC+8), plus `n` hours.
fn june_10(n: i64) -> i64 {
    1_749_513_600_000 + n * 3_600_000
}

fn event(n: i64, outcome: PlayOutcome) -> PlayEvent {
    let at = june_10(n);
    let started = matches!(outcome, PlayOutcome::Completed | PlayOutcome::Failed);
    PlayEvent {
        id: format!("7@{at}"),
        schedule_id: 7,
        sha256: "ab".repeat(32),
        scheduled_ms: at,
        started_ms: started.then_some(at + 2),
        ended_ms: started.then_some(at + 30_000),
        outcome,
        reason: (outcome != PlayOutcome::Completed).then(|| "why".to_owned()),
        amplifier_confirmed: started,
    }
}

/// Two townships: 城关镇 (the seed's, two villages, one reporting 2 played
/// and 1 missed) and 玉都镇 with a village named like a formula and one
/// like a script (one failed item).
async fn county(h: &Harness) -> (crate::harness::Seeded, i64) {
    let s = seed(&h.app).await;
    let other = id(&create(
        &h.app,
        json!({"level": "township", "parent_id": s.county, "name": "玉都镇", "code": "620821101000"}),
    )
    .await);
    let formula = id(&create(
        &h.app,
        json!({"level": "village", "parent_id": other, "name": "=SUM(1,2)", "code": "620821101200"}),
    )
    .await);
    create(
        &h.app,
        json!({"level": "village", "parent_id": other, "name": "<script>x()</script>", "code": "620821101201"}),
    )
    .await;
    let a = enrol(&h.app, s.villages[0], "pi-a").await.0;
    let b = enrol(&h.app, formula, "pi-b").await.0;
    let store = &h.state.store;
    let ours = [event(0, PlayOutcome::Completed), event(1, PlayOutcome::Completed), event(2, PlayOutcome::Missed)];
    store.record_play_events(&a, &ours, T0).expect("events");
    store.record_play_events(&b, &[event(3, PlayOutcome::Failed)], T0).expect("events");
    (s, other)
}

fn plays(report: &Value) -> (u64, u64, u64, u64) {
    let p = &report["total"]["plays"];
    let n = |k: &str| p[k].as_u64().unwrap_or_else(|| panic!("no {k} in {p}"));
    (n("scheduled"), n("played"), n("missed"), n("failed"))
}

#[tokio::test]
async fn the_county_report_counts_every_township_and_a_township_account_sees_its_own() {
    let h = Harness::new();
    let (s, other) = county(&h).await;
    let (status, report) = call(&h.app, Method::GET, "/api/v1/reports?month=2025-06", Payload::None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(plays(&report), (4, 2, 1, 1));
    assert_eq!(report["townships"].as_array().map(Vec::len), Some(2));
    assert_eq!(report["days"].as_array().map(Vec::len), Some(30));
    let (_, days) = call(&h.app, Method::GET, "/api/v1/reports?from=2025-06-10&to=2025-06-10", Payload::None).await;
    assert_eq!(plays(&days), (4, 2, 1, 1), "one day, both ends included");

    // A township operator gets his township, asked or not, and never another.
    let (cookie, _) = account_session(&h.state, "town-op", Role::Operator, Some(s.township), false, &LONG_SESSIONS);
    for path in ["/api/v1/reports?month=2025-06", &format!("/api/v1/reports?month=2025-06&township={}", s.township)] {
        let mut req = request(Method::GET, path, Payload::None);
        req.headers_mut().insert(header::COOKIE, cookie.clone());
        let (status, _, bytes) = fetch(&h.app, req).await;
        let report: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(plays(&report), (3, 2, 1, 0), "{path}");
        assert_eq!(report["title"], "城关镇");
    }
    let mut req = request(Method::GET, &format!("/api/v1/reports?month=2025-06&township={other}"), Payload::None);
    req.headers_mut().insert(header::COOKIE, cookie);
    let (status, _, bytes) = fetch(&h.app, req).await;
    let body = String::from_utf8_lossy(&bytes);
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("outside_area") && body.contains("limited to 城关镇"), "the area's own refusal: {body}");
}

#[tokio::test]
async fn the_csv_and_the_page_are_inert_and_bad_queries_say_why() {
    let h = Harness::new();
    let (s, _) = county(&h).await;
    let (status, headers, bytes) =
        fetch(&h.app, request(Method::GET, "/api/v1/reports/villages.csv?month=2025-06", Payload::None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap_or_default().starts_with("text/csv"));
    let csv = String::from_utf8_lossy(&bytes);
    assert!(csv.contains("王家沟村") && csv.contains("\"'=SUM(1,2)\""), "{csv}");

    let (status, headers, bytes) =
        fetch(&h.app, request(Method::GET, "/api/v1/reports/monthly.html?month=2025-06", Payload::None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap_or_default().starts_with("default-src 'none'"));
    let page = String::from_utf8_lossy(&bytes);
    assert!(page.contains("&lt;script&gt;x()&lt;/script&gt;") && !page.contains("<script>x()"), "a name is text");

    for (query, status, expected) in [
        ("", StatusCode::BAD_REQUEST, "ask for a month"),
        ("month=2025-13", StatusCode::BAD_REQUEST, "2025-13 is not a month"),
        ("month=June", StatusCode::BAD_REQUEST, "must look like 2026-11"),
        ("month=2025-06&from=2025-06-01&to=2025-06-02", StatusCode::BAD_REQUEST, "not both"),
        ("from=2025-06-01", StatusCode::BAD_REQUEST, "from and to go together"),
        ("from=2025-06-10&to=2025-06-01", StatusCode::BAD_REQUEST, "1 to 366 days"),
        ("from=2024-01-01&to=2025-06-01", StatusCode::BAD_REQUEST, "1 to 366 days"),
        ("month=2025-06&township=999999", StatusCode::NOT_FOUND, "999999"),
        ("month=2025-06&colour=red", StatusCode::BAD_REQUEST, "colour"),
        ("month=2025-06&lang=fr", StatusCode::BAD_REQUEST, "fr"),
    ] {
        let (got, body) = call(&h.app, Method::GET, &format!("/api/v1/reports?{query}"), Payload::None).await;
        assert_eq!(got, status, "{query}: {body}");
        let code = if status == StatusCode::NOT_FOUND { "not_found" } else { "bad_request" };
        assert!(error_message(&body, code).contains(expected), "{query}: {body}");
    }
    let path = format!("/api/v1/reports?month=2025-06&township={}", s.villages[0]);
    let (got, body) = call(&h.app, Method::GET, &path, Payload::None).await;
    assert_eq!(got, StatusCode::BAD_REQUEST, "a village is not a township: {body}");
}

#[tokio::test]
async fn hours_offline_and_the_language_of_the_csv_and_page() {
    let h = Harness::new();
    let s = seed(&h.app).await;
    let (a, _) = enrol(&h.app, s.villages[0], "pi-a").await;
    // Enrolled at T0 (15 June 15:06:40 UTC); online from T0 + 1 h to T0 + 3 h,
    // and again from T0 + 5 h on; the report is read at T0 + 10 h.
    let hour = 3_600_000;
    h.state.store.record_presence_connected(&a, T0 + hour).expect("connect");
    h.state.store.record_presence_disconnected(&a, T0 + 3 * hour).expect("disconnect");
    h.state.store.record_presence_connected(&a, T0 + 5 * hour).expect("connect");
    h.state.clock.advance_ms(10 * hour);
    let (status, report) = call(&h.app, Method::GET, "/api/v1/reports?month=2025-06", Payload::None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let village = &report["townships"][0]["villages"][0];
    assert_eq!((&village["hours_offline"], &village["offline_ms"]), (&json!(3.0), &json!(3 * hour)), "{village}");
    let without = &report["townships"][0]["villages"][1];
    assert_eq!(without["hours_offline"], Value::Null, "no agent: not counted");
    assert_eq!(report["townships"][0]["hours_offline"], 3.0);
    assert_eq!(report["hours_offline"], Value::Null, "the total is under `total`");
    assert_eq!(report["total"]["hours_offline"], 3.0);
    // A township's count and its list of villages have their own names (a
    // JSON object with one key twice loses one of them).
    let township = &report["townships"][0];
    assert_eq!((township["village_count"].as_u64(), township["villages"].as_array().map(Vec::len)), (Some(2), Some(2)));
    assert_eq!(report["total"]["village_count"], 2);

    let (_, _, bytes) =
        fetch(&h.app, request(Method::GET, "/api/v1/reports/villages.csv?month=2025-06&lang=en", Payload::None)).await;
    let csv = String::from_utf8_lossy(&bytes);
    assert!(csv.starts_with("\u{feff}township,township_code,village,"), "{csv}");
    assert!(csv.contains(",hours_offline\r\n") && csv.contains(",3.0\r\n"), "{csv}");
    let (_, _, bytes) =
        fetch(&h.app, request(Method::GET, "/api/v1/reports/villages.csv?month=2025-06", Payload::None)).await;
    assert!(String::from_utf8_lossy(&bytes).starts_with("\u{feff}乡镇,乡镇代码,村,"), "Chinese by default");
    let (_, _, bytes) =
        fetch(&h.app, request(Method::GET, "/api/v1/reports/monthly.html?month=2025-06&lang=en", Payload::None)).await;
    let page = String::from_utf8_lossy(&bytes);
    assert!(page.contains("<html lang=\"en\">") && page.contains("Hours offline") && !page.contains("离线"), "{page}");
    let (_, _, bytes) =
        fetch(&h.app, request(Method::GET, "/api/v1/reports/monthly.html?month=2025-06&lang=zh", Payload::None)).await;
    assert!(String::from_utf8_lossy(&bytes).contains("离线时长 (Hours offline)"));
}
