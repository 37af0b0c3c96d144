//! Hostile input to the operator API: over-long fields are refused with a
//! message naming the field and nothing is stored; markup in names and
//! notice texts comes back as the same characters in JSON (the pages write
//! it as text); a failed login with a huge or formula-looking name is
//! recorded cut short and inert in the audit log and its CSV.

use axum::http::{HeaderValue, Method, StatusCode, header};
use dalaba_controller::accounts::audit::{AuditFilter, MAX_ACTOR_CHARS};
use serde_json::{Value, json};

use crate::harness::{Harness, Payload, call, fetch, request, seed};

const HUGE: usize = 10_000;

/// Every list whose length must not change when a request is refused.
async fn counts(h: &Harness) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for path in ["/api/v1/users", "/api/v1/tokens", "/api/v1/schedules", "/api/v1/library", "/api/v1/regions"] {
        let (status, body) = call(&h.app, Method::GET, path, Payload::None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let list = body.as_array().or_else(|| body.as_object().and_then(|o| o.values().find_map(Value::as_array)));
        let n = list.map(Vec::len).unwrap_or_else(|| panic!("{path} is a list: {body}"));
        out.push((path.to_owned(), n));
    }
    let (_, live) = call(&h.app, Method::GET, "/api/v1/live", Payload::None).await;
    out.push(("live".into(), live["active"].as_array().map(Vec::len).expect("active sessions")));
    out
}

#[tokio::test]
async fn over_long_fields_are_refused_by_name_and_nothing_is_stored() {
    let h = Harness::new();
    let s = seed(&h.app).await;
    let item = crate::schedules::add_item(&h, "禁毒宣传", 'a', 60_000);
    let long = "长".repeat(HUGE);
    let user = |name: &str, display: &str, password: &str| json!({"name": name, "display_name": display, "role": "operator", "password": password});
    let cases: Vec<(&str, Method, String, Value, &str)> = vec![
        (
            "account name",
            Method::POST,
            "/api/v1/users".into(),
            user(&"a".repeat(HUGE), "李伟", "correct horse battery"),
            "account name",
        ),
        (
            "display name",
            Method::POST,
            "/api/v1/users".into(),
            user("li.wei", &long, "correct horse battery"),
            "display name",
        ),
        ("password", Method::POST, "/api/v1/users".into(), user("li.wei", "李伟", &"p".repeat(HUGE)), "password"),
        (
            "token name",
            Method::POST,
            "/api/v1/tokens".into(),
            json!({"name": "t".repeat(HUGE), "scopes": ["read"]}),
            "name",
        ),
        (
            "schedule name",
            Method::POST,
            "/api/v1/schedules".into(),
            crate::schedules::daily(&long, item, &["07:00:00"], json!({"villages": [s.villages[0]]})),
            "name",
        ),
        (
            "notice title",
            Method::POST,
            "/api/v1/library/tts".into(),
            json!({"text": "请注意防火", "title": long, "category": "notice"}),
            "title",
        ),
        (
            "notice text",
            Method::POST,
            "/api/v1/library/tts".into(),
            json!({"text": long.repeat(10), "title": "防火", "category": "notice"}),
            "text",
        ),
        (
            "live title",
            Method::POST,
            "/api/v1/live".into(),
            json!({"title": long, "priority": "paging", "targets": {"villages": [s.villages[0]]}, "source": {"type": "microphone"}}),
            "title",
        ),
        (
            "region name",
            Method::POST,
            "/api/v1/regions".into(),
            json!({"level": "village", "parent_id": s.township, "name": long, "code": "620821100299"}),
            "name",
        ),
    ];
    let before = counts(&h).await;
    for (what, method, path, body, word) in cases {
        let (status, answer) = call(&h.app, method.clone(), &path, Payload::Json(body)).await;
        assert!(
            [StatusCode::BAD_REQUEST, StatusCode::UNPROCESSABLE_ENTITY].contains(&status),
            "{what}: {status} {answer}"
        );
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(word), "{what}: the message names the field: {answer}");
        assert!(message.chars().count() < 300, "{what}: the message does not echo the value: {message}");
    }
    assert_eq!(counts(&h).await, before, "nothing was stored");

    // An account's display name changed to something over-long stays as it was.
    let (status, created) =
        call(&h.app, Method::POST, "/api/v1/users", Payload::Json(user("li.wei", "李伟", "correct horse battery")))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let path = format!("/api/v1/users/{}", created["id"]);
    let (status, answer) = call(&h.app, Method::PATCH, &path, Payload::Json(json!({"display_name": long}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (_, users) = call(&h.app, Method::GET, "/api/v1/users", Payload::None).await;
    let shown = users.as_array().into_iter().flatten().find(|u| u["name"] == "li.wei").expect("listed");
    assert_eq!(shown["display_name"], "李伟");
}

#[tokio::test]
async fn markup_in_names_and_notices_comes_back_as_the_same_characters() {
    let h = Harness::new();
    let s = seed(&h.app).await;
    let script = "<script>alert(1)</script>";
    let img = "<img src=x onerror=\"window.__pwned=1\">";
    let (status, user) = call(
        &h.app,
        Method::POST,
        "/api/v1/users",
        Payload::Json(
            json!({"name": "eve", "display_name": img, "role": "viewer", "password": "correct horse battery"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(user["display_name"], img);
    let item = crate::schedules::add_item(&h, "禁毒宣传", 'a', 60_000);
    let (status, schedule) = call(
        &h.app,
        Method::POST,
        "/api/v1/schedules",
        Payload::Json(crate::schedules::daily(script, item, &["07:00:00"], json!({"villages": [s.villages[0]]}))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{schedule}");
    // Served as JSON, never as a page: the browser does not parse it as markup.
    let (status, headers, bytes) =
        fetch(&h.app, request(Method::GET, &format!("/api/v1/schedules/{}", schedule["id"]), Payload::None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get(header::CONTENT_TYPE), Some(&HeaderValue::from_static("application/json")));
    let body: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(body["name"], script, "stored and returned character for character");
}

#[tokio::test]
async fn a_failed_login_with_a_huge_or_formula_name_is_recorded_short_and_inert() {
    let h = Harness::new();
    // Once an account exists (the harness's own admin), logins are real.
    for name in ["x".repeat(HUGE), "=HYPERLINK(\"http://evil\",\"点我\")".to_owned()] {
        let (status, body) = call(
            &h.app,
            Method::POST,
            "/api/v1/session",
            Payload::Json(json!({"name": name, "password": "wrong password"})),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let records = h
        .state
        .store
        .audit(&AuditFilter { action: Some("login.failed".into()), ..AuditFilter::default() })
        .expect("audit");
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records.iter().all(|r| r.actor.chars().count() <= MAX_ACTOR_CHARS + 1), "{records:?}");

    let (status, _, bytes) = fetch(&h.app, request(Method::GET, "/api/v1/audit/export.csv", Payload::None)).await;
    assert_eq!(status, StatusCode::OK);
    let csv = String::from_utf8(bytes.to_vec()).expect("utf-8");
    assert!(csv.len() < 4_000, "the huge name is not written out whole: {} bytes", csv.len());
    for line in csv.lines().skip(1) {
        for cell in line.split(',') {
            let cell = cell.trim_start_matches('"');
            assert!(!cell.starts_with(['=', '+', '-', '@']), "a cell that a spreadsheet would run: {line}");
        }
    }
    assert!(csv.contains("user:=HYPERLINK"), "the name is kept, as text: {csv}");

    // The actor search matches names, not patterns.
    let search = |actor: &str| AuditFilter { actor: Some(actor.into()), ..AuditFilter::default() };
    for pattern in ["%", "_%", "x%"] {
        assert_eq!(h.state.store.audit(&search(pattern)).expect("audit"), [], "{pattern}");
    }
    assert_eq!(h.state.store.audit(&search("=HYPERLINK(\"http://evil\",\"点我\")")).expect("audit").len(), 1);
}
