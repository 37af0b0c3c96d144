//! `POST /api/v1/alerts`: API tokens, and every way a CAP alert is refused
//! or checked without broadcasting (status Test, unknown areas…). Sessions
//! started, replaced and stopped are in `alert_sessions`.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use dalaba_controller::tokens::{self, Scope};
use serde_json::{Value, json};

use crate::harness::{Harness, T0, create, error_message, fetch, id};

pub const ZH: &str = include_str!("../fixtures/cap/alert-zh.xml");
pub const EN: &str = include_str!("../fixtures/cap/alert-en.xml");
pub const UPDATE: &str = include_str!("../fixtures/cap/update-zh.xml");
pub const CANCEL: &str = include_str!("../fixtures/cap/cancel-zh.xml");

/// The villages of the fixtures' county, by name.
pub struct County {
    pub wangjiagou: i64,
    pub lijia: i64,
    pub taiping: i64,
    pub dongzhuang: i64,
}

/// Two townships of two villages each, with coordinates.
pub async fn county(app: &Router) -> County {
    let county = id(&create(app, json!({"level": "county", "name": "泾川县", "code": "620821000000"})).await);
    let mut ids = Vec::new();
    for (township, code, villages) in [
        (
            "城关镇",
            "620821100000",
            [("王家沟村", "620821100200", 35.335, 107.365), ("李家村", "620821100201", 35.340, 107.380)],
        ),
        (
            "玉都镇",
            "620821101000",
            [("太平村", "620821101200", 35.290, 107.450), ("东庄村", "620821101201", 35.270, 107.500)],
        ),
    ] {
        let parent = json!({"level": "township", "parent_id": county, "name": township, "code": code});
        let township = id(&create(app, parent).await);
        for (name, code, latitude, longitude) in villages {
            let village = json!({"level": "village", "parent_id": township, "name": name, "code": code,
                "latitude": latitude, "longitude": longitude});
            ids.push(id(&create(app, village).await));
        }
    }
    County { wangjiagou: ids[0], lijia: ids[1], taiping: ids[2], dongzhuang: ids[3] }
}

/// Creates a token in the store and returns it.
pub fn token(h: &Harness, name: &str, scopes: &[Scope]) -> String {
    let created = tokens::create(name, scopes.to_vec(), T0).expect("a token");
    h.state.store.create_api_token(&created.new).expect("stored");
    created.token
}

/// Posts an alert with an optional bearer token.
pub async fn post(app: &Router, bearer: Option<&str>, body: impl Into<Vec<u8>>) -> (StatusCode, Value) {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/alerts")
        .header(header::CONTENT_TYPE, "application/cap+xml");
    builder = match bearer {
        Some(token) => builder.header(header::AUTHORIZATION, format!("Bearer {token}")),
        None => builder.header(crate::harness::ANONYMOUS, "1"),
    };
    let (status, _, bytes) = fetch(app, builder.body(Body::from(body.into())).expect("a request")).await;
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, body)
}

/// Names of the villages in an answer.
pub fn village_names(body: &Value) -> Vec<String> {
    let list = body["villages"].as_array().unwrap_or_else(|| panic!("no villages in {body}"));
    list.iter().map(|v| v["name"].as_str().unwrap_or_default().to_owned()).collect()
}

fn as_test(alert: &str) -> String {
    alert
        .replace("<status>Actual</status>", "<status>Test</status>")
        .replace("<cap:status>Actual</cap:status>", "<cap:status>Test</cap:status>")
}

#[tokio::test]
async fn tokens_are_checked_before_the_body() {
    let h = Harness::new();
    county(&h.app).await;
    let emergency = token(&h, "province", &[Scope::Emergency]);
    let reader = token(&h, "dashboard", &[Scope::Read, Scope::Schedule]);
    let revoked = token(&h, "old-platform", &[Scope::Emergency]);
    h.state.store.revoke_api_token("old-platform", T0).expect("revoke");
    let unknown = format!("dlb_{}", "A".repeat(43));
    let cases: [(&str, Option<&str>, StatusCode, &str, &str); 6] = [
        ("no token", None, StatusCode::UNAUTHORIZED, "unauthorized", "send an API token: `Authorization: Bearer dlb_"),
        ("not a Dalaba token", Some("ag-1.secret"), StatusCode::UNAUTHORIZED, "unauthorized", "Bearer dlb_"),
        ("unknown token", Some(&unknown), StatusCode::UNAUTHORIZED, "unauthorized", "unknown API token"),
        ("revoked token", Some(&revoked), StatusCode::UNAUTHORIZED, "unauthorized", "old-platform was revoked"),
        (
            "no emergency scope",
            Some(&reader),
            StatusCode::FORBIDDEN,
            "forbidden",
            "dashboard lacks the emergency scope",
        ),
        ("right token", Some(&emergency), StatusCode::OK, "", ""),
    ];
    for (what, bearer, status, code, mentions) in cases {
        // A body far over the limit: refused for the token, not the size.
        let body = if status == StatusCode::OK { as_test(ZH).into_bytes() } else { vec![b'x'; 3 * 1024 * 1024] };
        let (got, body) = post(&h.app, bearer, body).await;
        assert_eq!(got, status, "{what}: {body}");
        if !code.is_empty() {
            let message = error_message(&body, code);
            assert!(message.contains(mentions), "{what}: {message}");
        }
    }
    let listed = h.state.store.api_tokens().expect("tokens");
    let used: Vec<(&str, Option<i64>)> = listed.iter().map(|t| (t.name.as_str(), t.last_used_ms)).collect();
    assert_eq!(used, [("dashboard", None), ("old-platform", None), ("province", Some(T0))]);
}

#[tokio::test]
async fn a_test_alert_is_mapped_but_not_broadcast() {
    let h = Harness::new();
    let c = county(&h.app).await;
    let t = token(&h, "province", &[Scope::Emergency]);
    let (status, body) = post(&h.app, Some(&t), as_test(ZH)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["action"], "dry_run");
    assert_eq!(body["session_id"], Value::Null);
    assert_eq!(body["priority"], "emergency");
    assert_eq!(body["title"], "泾川县气象台发布暴雨红色预警信号");
    assert_eq!(village_names(&body), ["王家沟村", "李家村", "太平村"]);
    let ids: Vec<i64> = body["villages"].as_array().expect("list").iter().filter_map(|v| v["id"].as_i64()).collect();
    assert_eq!(ids, [c.wangjiagou, c.lijia, c.taiping]);
    assert_eq!(body["villages"][0]["code"], "620821100200");
    assert!(body["notes"].to_string().contains("status Test"), "{body}");

    // English, paging, a polygon and a geocode; its audio is only a link.
    let (status, body) = post(&h.app, Some(&t), as_test(EN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["priority"], "paging");
    assert_eq!(village_names(&body), ["李家村", "东庄村"]);
    let ids: Vec<i64> = body["villages"].as_array().expect("list").iter().filter_map(|v| v["id"].as_i64()).collect();
    assert_eq!(ids, [c.lijia, c.dongzhuang]);
    assert!(body["notes"].to_string().contains("only a link (uri)"), "{body}");
}

#[tokio::test]
async fn refused_alerts_say_why() {
    let h = Harness::new();
    county(&h.app).await;
    let t = token(&h, "province", &[Scope::Emergency]);
    let unknown_area = ZH
        .replace("<value>620821100</value>", "<value>620821999</value>")
        .replace("<areaDesc>城关镇</areaDesc>", "<areaDesc>不存在乡</areaDesc>");
    let expired = EN.replace("2025-06-16T09:30:00+08:00</cap:expires>", "2025-06-15T09:30:00+08:00</cap:expires>");
    let oversized = ZH.replace("<contact>", &format!("<contact>{}", "x".repeat(1024 * 1024)));
    let cases: [(&str, String, StatusCode, &str, &str); 8] = [
        ("malformed XML", ZH.replace("</sender>", "</sendr>"), StatusCode::BAD_REQUEST, "malformed_xml", "line 4"),
        (
            "not XML at all",
            "{\"alert\": 1}".to_owned(),
            StatusCode::BAD_REQUEST,
            "malformed_xml",
            "text outside the root element",
        ),
        ("CAP 1.1", ZH.replace("cap:1.2", "cap:1.1"), StatusCode::BAD_REQUEST, "not_cap", "send CAP 1.2"),
        (
            "invalid CAP",
            ZH.replace("<urgency>Immediate</urgency>", ""),
            StatusCode::BAD_REQUEST,
            "invalid_cap",
            "<urgency> is missing",
        ),
        (
            "unknown area",
            unknown_area,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_area",
            "unknown area `不存在乡`: code 620821999",
        ),
        ("expired", expired, StatusCode::UNPROCESSABLE_ENTITY, "expired", "expired at 2025-06-15T09:30:00+08:00"),
        (
            "cancel of an unknown alert",
            CANCEL.to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_reference",
            "620821-QX-20250615-001",
        ),
        ("oversized", oversized, StatusCode::PAYLOAD_TOO_LARGE, "too_large", "larger than 1024 KiB"),
    ];
    for (what, body, status, code, mentions) in cases {
        let (got, answer) = post(&h.app, Some(&t), body).await;
        assert_eq!(got, status, "{what}: {answer}");
        let message = error_message(&answer, code);
        assert!(message.contains(mentions), "{what}: {message}");
    }
    // Nothing was recorded: the same alert, fixed, is not a duplicate.
    assert_eq!(
        h.state.store.alert_by_key("jcqx@weather.gansu.example", "620821-QX-20250615-001").expect("lookup"),
        None
    );
}
