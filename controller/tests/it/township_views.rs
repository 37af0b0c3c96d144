//! What an account limited to one township sees on the county-wide views:
//! the dashboard's counts, the week plan and the directory export hold its
//! own township only, and naming another township in the plan is refused.
//! A county-wide account still sees everything.

use axum::http::{HeaderValue, Method, StatusCode, header};
use dalaba_controller::accounts::Role;
use dalaba_controller::accounts::session::CSRF_HEADER;
use serde_json::{Value, json};

use crate::harness::{
    Harness, LONG_SESSIONS, Payload, Seeded, account_session, call, create, enrol, fetch, id, request, seed,
};

/// Sends a GET as the holder of `session`: status, body as text.
async fn get_as(h: &Harness, session: &(HeaderValue, HeaderValue), path: &str) -> (StatusCode, String) {
    let mut req = request(Method::GET, path, Payload::None);
    req.headers_mut().insert(header::COOKIE, session.0.clone());
    req.headers_mut().insert(CSRF_HEADER, session.1.clone());
    let (status, _, bytes) = fetch(&h.app, req).await;
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The seeded county plus a second township (玉都镇) with one village,
/// an agent in a village of each township, and a county-wide schedule.
async fn two_townships(h: &Harness) -> (Seeded, i64, i64) {
    let s = seed(&h.app).await;
    let other = id(&create(
        &h.app,
        json!({"level": "township", "parent_id": s.county, "name": "玉都镇", "code": "620821101000"}),
    )
    .await);
    let far =
        id(&create(&h.app, json!({"level": "village", "parent_id": other, "name": "太平村", "code": "620821101200"}))
            .await);
    enrol(&h.app, s.villages[0], "pi-ours").await;
    enrol(&h.app, far, "pi-far").await;
    let item = crate::schedules::add_item(h, "禁毒宣传", 'a', 60_000);
    let (status, body) = call(
        &h.app,
        Method::POST,
        "/api/v1/schedules",
        Payload::Json(crate::schedules::daily("全县", item, &["07:00:00"], json!({"county": true}))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (s, other, far)
}

#[tokio::test]
async fn the_dashboard_counts_only_the_accounts_township() {
    let h = Harness::new();
    let (s, other, _) = two_townships(&h).await;
    let county = account_session(&h.state, "county-viewer", Role::Viewer, None, false, &LONG_SESSIONS);
    let town = account_session(&h.state, "town-viewer", Role::Viewer, Some(s.township), false, &LONG_SESSIONS);

    let (status, body) = get_as(&h, &county, "/api/v1/dashboard").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let all: Value = serde_json::from_str(&body).expect("json");
    assert_eq!((all["villages"].as_u64(), all["agents"].as_u64()), (Some(3), Some(2)), "{all}");
    let ids: Vec<i64> = all["townships"].as_array().expect("list").iter().filter_map(|t| t["id"].as_i64()).collect();
    assert_eq!(ids.len(), 2, "{all}");
    assert!(ids.contains(&other));

    let (status, body) = get_as(&h, &town, "/api/v1/dashboard").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mine: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(mine["villages"], 2, "{mine}");
    assert_eq!(mine["agents"], 1, "the other township's agent is not counted: {mine}");
    assert_eq!(mine["no_agent"], 1, "{mine}");
    let townships = mine["townships"].as_array().expect("list");
    assert_eq!(townships.len(), 1, "{mine}");
    assert_eq!(townships[0]["id"], s.township);
    assert!(!body.contains("玉都镇"), "the other township is not named: {body}");
}

#[tokio::test]
async fn the_week_plan_holds_the_accounts_villages_and_refuses_another_township() {
    let h = Harness::new();
    let (s, other, far) = two_townships(&h).await;
    let county = account_session(&h.state, "county-op", Role::Operator, None, false, &LONG_SESSIONS);
    let town = account_session(&h.state, "town-op", Role::Operator, Some(s.township), false, &LONG_SESSIONS);
    let villages = |body: &str| -> Vec<i64> {
        let plan: Value = serde_json::from_str(body).expect("json");
        let mut ids: Vec<i64> =
            plan["villages"].as_array().expect("list").iter().filter_map(|v| v["village_id"].as_i64()).collect();
        ids.sort_unstable();
        ids
    };

    let (status, body) = get_as(&h, &county, "/api/v1/plan?days=2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(villages(&body).contains(&far), "{body}");

    let (status, body) = get_as(&h, &town, "/api/v1/plan?days=2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(villages(&body), s.villages, "the county schedule is shown in the township's villages only");
    let (status, body) = get_as(&h, &town, &format!("/api/v1/plan?region={}", s.township)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(villages(&body), s.villages);

    for region in [other, far, s.county] {
        let (status, body) = get_as(&h, &town, &format!("/api/v1/plan?region={region}")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "region {region}: {body}");
        assert!(body.contains("limited to 城关镇"), "{body}");
    }
    // An unknown region is the handler's own answer, as for everyone.
    let (status, _) = get_as(&h, &town, "/api/v1/plan?region=999999").await;
    let (county_status, _) = get_as(&h, &county, "/api/v1/plan?region=999999").await;
    assert_eq!(status, county_status);
}

#[tokio::test]
async fn the_directory_export_holds_the_county_row_and_the_accounts_township() {
    let h = Harness::new();
    let (s, _, _) = two_townships(&h).await;
    let county = account_session(&h.state, "county-viewer", Role::Viewer, None, false, &LONG_SESSIONS);
    let town = account_session(&h.state, "town-viewer", Role::Viewer, Some(s.township), false, &LONG_SESSIONS);

    let (status, all) = get_as(&h, &county, "/api/v1/directory/export.csv").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert!(all.contains("玉都镇") && all.contains("太平村"), "{all}");

    let (status, mine) = get_as(&h, &town, "/api/v1/directory/export.csv").await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let rows: Vec<&str> = mine.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "county, township and its two villages: {mine}");
    assert!(rows[0].contains("泾川县") && rows[1].contains("城关镇"), "{mine}");
    assert!(rows.iter().all(|r| !r.contains("玉都镇") && !r.contains("太平村")), "{mine}");
    assert!(rows[1].contains("620821000000"), "the township keeps its parent code: {mine}");
}
