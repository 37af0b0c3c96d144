//! Who may call what: every API route × every kind of caller, through the
//! real router and its guard, against a table written here by hand (not
//! derived from `accounts::policy`); the CSRF check, ended sessions,
//! revoked tokens; and the audit log's one record per state-changing
//! request.

use axum::http::{HeaderValue, Method, StatusCode, header};
use dalaba_controller::accounts::Role;
use dalaba_controller::accounts::audit::AuditFilter;
use dalaba_controller::accounts::session::{CSRF_HEADER, SessionSettings};
use dalaba_controller::tokens::{self, Scope};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::harness::{ANONYMOUS, Harness, LONG_SESSIONS, Payload, T0, account_session, fetch, request, seed, send};
use crate::routes::ROUTES;

/// What a route needs, by hand: P public, G an agent's own credentials
/// (the route checks them; no caller here is an agent), R read, S
/// schedule, L live paging, E emergency, N enrol agents, A admin, U an
/// account's own session (its password: no token has one).
fn category(method: &str, path: &str) -> char {
    match (method, path) {
        ("get", "/api/v1/link" | "/api/v1/content/{sha256}") => 'G',
        ("get", "/api/v1/openapi.json" | "/api/v1/controller") => 'P',
        ("post", "/api/v1/session" | "/api/v1/enrol") => 'P',
        ("get", "/metrics") => 'P',
        (_, "/api/v1/users" | "/api/v1/users/{id}" | "/api/v1/tokens" | "/api/v1/tokens/{id}") => 'A',
        (_, "/api/v1/audit" | "/api/v1/audit/export.csv") => 'A',
        ("get", "/api/v1/live/{id}/microphone") => 'L',
        ("get", _) => 'R',
        ("delete", "/api/v1/session") => 'R',
        ("post", "/api/v1/session/password") => 'U',
        (_, "/api/v1/regions" | "/api/v1/regions/{id}" | "/api/v1/directory/import" | "/api/v1/quiet-hours") => 'A',
        (_, "/api/v1/villages/{id}/enrolment-codes" | "/api/v1/agents/{id}") => 'N',
        (_, p) if p.starts_with("/api/v1/schedules") || p.starts_with("/api/v1/library") => 'S',
        ("post", "/api/v1/live" | "/api/v1/live/{id}/stop") => 'L',
        ("post", "/api/v1/alerts") => 'E',
        ("post", "/api/v1/alarms/{id}/acknowledge") => 'S',
        other => panic!("no category for {other:?}: add the new route to this table"),
    }
}

/// A kind of caller and the categories it holds.
struct Who {
    name: &'static str,
    holds: &'static str,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

fn session(
    h: &Harness,
    name: &str,
    role: Role,
    region: Option<i64>,
    emergency: bool,
) -> Vec<(header::HeaderName, HeaderValue)> {
    let (cookie, csrf) = account_session(&h.state, name, role, region, emergency, &LONG_SESSIONS);
    vec![(header::COOKIE, cookie), (header::HeaderName::from_static(CSRF_HEADER), csrf)]
}

fn bearer(h: &Harness, name: &str, scopes: &[Scope], revoked: bool) -> Vec<(header::HeaderName, HeaderValue)> {
    let created = tokens::create(name, scopes.to_vec(), T0).expect("token");
    h.state.store.create_api_token(&created.new).expect("stored");
    if revoked {
        h.state.store.revoke_api_token(name, T0).expect("revoked");
    }
    vec![(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {}", created.token)).expect("header"))]
}

async fn status(h: &Harness, method: &str, path: &str, headers: &[(header::HeaderName, HeaderValue)]) -> StatusCode {
    let concrete = path.replace("{id}", "999999").replace("{sha256}", &"0".repeat(64));
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
    let payload = if method == Method::GET { Payload::None } else { Payload::Json(json!({})) };
    let mut req = request(method, &concrete, payload);
    for (name, value) in headers {
        req.headers_mut().insert(name.clone(), value.clone());
    }
    // Headers only: `/events` streams for ever.
    send(&h.app, req).await.status()
}

#[tokio::test]
async fn every_route_answers_each_caller_as_the_table_says() {
    let h = Harness::new();
    let s = seed(&h.app).await;
    let callers = vec![
        Who { name: "viewer", holds: "RU", headers: session(&h, "viewer", Role::Viewer, None, false) },
        Who { name: "operator", holds: "RSLNU", headers: session(&h, "op", Role::Operator, None, false) },
        Who {
            name: "township operator",
            holds: "RSLNU",
            headers: session(&h, "op-town", Role::Operator, Some(s.township), false),
        },
        Who { name: "emergency operator", holds: "RSLNEU", headers: session(&h, "op-e", Role::Operator, None, true) },
        Who { name: "admin", holds: "RSLNEAU", headers: session(&h, "admin2", Role::Admin, None, true) },
        Who { name: "read token", holds: "R", headers: bearer(&h, "reader", &[Scope::Read], false) },
        Who { name: "schedule token", holds: "SL", headers: bearer(&h, "scheduler", &[Scope::Schedule], false) },
        Who { name: "emergency token", holds: "E", headers: bearer(&h, "province", &[Scope::Emergency], false) },
        Who { name: "revoked token", holds: "", headers: bearer(&h, "old", &Scope::ALL, true) },
        Who {
            name: "anonymous",
            holds: "",
            headers: vec![(header::HeaderName::from_static(ANONYMOUS), HeaderValue::from_static("1"))],
        },
    ];
    // Logging out goes last: it ends the caller's session.
    let mut routes: Vec<(&str, &str)> =
        ROUTES.iter().copied().filter(|r| *r != ("delete", "/api/v1/session")).collect();
    routes.push(("delete", "/api/v1/session"));
    let mut failures = Vec::new();
    for who in &callers {
        for (method, path) in &routes {
            let needs = category(method, path);
            let got = status(&h, method, path, &who.headers).await;
            let allowed = needs == 'P' || who.holds.contains(needs);
            let ok = if needs == 'G' {
                got == StatusCode::UNAUTHORIZED
            } else if allowed {
                got != StatusCode::UNAUTHORIZED && got != StatusCode::FORBIDDEN
            } else if who.name == "anonymous" || who.name == "revoked token" {
                got == StatusCode::UNAUTHORIZED
            } else {
                got == StatusCode::FORBIDDEN
            };
            if !ok {
                failures.push(format!("{}: {} {} ({needs}) answered {got}", who.name, method.to_uppercase(), path));
            }
        }
    }
    assert!(failures.is_empty(), "{} wrong answers:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn a_session_needs_its_csrf_token_and_ends_when_it_expires() {
    let h = Harness::new();
    let (cookie, csrf) = account_session(&h.state, "op", Role::Operator, None, false, &LONG_SESSIONS);
    let body = json!({"title": "x"});
    // A cookie without the page's token: refused before the handler.
    let mut req = request(Method::POST, "/api/v1/library/categories", Payload::Json(body.clone()));
    req.headers_mut().insert(header::COOKIE, cookie.clone());
    let (got, _, bytes) = fetch(&h.app, req).await;
    assert_eq!(got, StatusCode::FORBIDDEN);
    let answer: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(answer["error"], "csrf", "{answer}");
    // A wrong token too.
    let mut req = request(Method::POST, "/api/v1/library/categories", Payload::Json(body.clone()));
    req.headers_mut().insert(header::COOKIE, cookie.clone());
    req.headers_mut().insert(CSRF_HEADER, HeaderValue::from_static("guess"));
    assert_eq!(send(&h.app, req).await.status(), StatusCode::FORBIDDEN);
    // The microphone WebSocket cannot carry the header: it sends `?csrf=`.
    let mut req = request(Method::GET, "/api/v1/live/L1/microphone", Payload::None);
    req.headers_mut().insert(header::COOKIE, cookie.clone());
    assert_eq!(send(&h.app, req).await.status(), StatusCode::FORBIDDEN, "no token in the query");
    let with_token = format!("/api/v1/live/L1/microphone?csrf={}", csrf.to_str().expect("ascii"));
    let mut req = request(Method::GET, &with_token, Payload::None);
    req.headers_mut().insert(header::COOKIE, cookie.clone());
    let got = send(&h.app, req).await.status();
    assert!(got != StatusCode::FORBIDDEN && got != StatusCode::UNAUTHORIZED, "the query's token is accepted: {got}");
    // Reading needs no token.
    let mut req = request(Method::GET, "/api/v1/session", Payload::None);
    req.headers_mut().insert(header::COOKIE, cookie.clone());
    let (got, _, bytes) = fetch(&h.app, req).await;
    assert_eq!(got, StatusCode::OK);
    let me: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!((me["user"]["name"].as_str(), me["csrf_token"].as_str()), (Some("op"), csrf.to_str().ok()));

    // A session past its absolute lifetime: 401, and the cookie is cleared.
    let short =
        SessionSettings { idle: std::time::Duration::from_secs(3600), absolute: std::time::Duration::from_secs(1) };
    let (old, _) = account_session(&h.state, "late", Role::Viewer, None, false, &short);
    h.state.clock.advance_ms(2_000);
    let mut req = request(Method::GET, "/api/v1/regions", Payload::None);
    req.headers_mut().insert(header::COOKIE, old);
    let resp = send(&h.app, req).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let cleared = resp.headers().get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
}

#[tokio::test]
async fn every_state_changing_request_leaves_exactly_one_audit_record() {
    let h = Harness::new();
    let count = |h: &Harness| {
        h.state.store.audit(&AuditFilter { limit: Some(10_000), ..AuditFilter::default() }).expect("audit").len()
    };
    let mut routes: Vec<(&str, &str)> =
        ROUTES.iter().copied().filter(|r| *r != ("delete", "/api/v1/session")).collect();
    routes.push(("delete", "/api/v1/session"));
    let mut audited = 0;
    for (method, path) in routes {
        let changes = method != "get" || path.ends_with("/microphone");
        if path == "/metrics" || (method == "get" && !changes) {
            continue;
        }
        let before = count(&h);
        status(&h, method, path, &[]).await;
        let after = count(&h);
        assert_eq!(after, before + 1, "{} {path} left {} records", method.to_uppercase(), after - before);
        audited += 1;
    }
    assert!(audited >= 25, "only {audited} state-changing routes walked");
    let records = h.state.store.audit(&AuditFilter::default()).expect("audit");
    let newest = &records[0];
    assert_eq!((newest.action.as_str(), newest.actor.as_str()), ("logout", "user:admin"));
    let failed_login = records.iter().find(|r| r.action == "login.failed").expect("the empty login is on record");
    assert_eq!(failed_login.status, 400);
    // Searchable by action prefix and exportable, inert for spreadsheets.
    let schedules = h.state.store.audit(&AuditFilter { action: Some("schedule.".into()), ..AuditFilter::default() });
    assert_eq!(schedules.expect("search").len(), 4, "create, preview, replace, delete");
}

/// `POST /session` as the console sends it, from `peer`.
async fn login(h: &Harness, name: &str, password: &str, peer: [u8; 4]) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut req = request(Method::POST, "/api/v1/session", Payload::Json(json!({"name": name, "password": password})));
    req.headers_mut().insert(ANONYMOUS, HeaderValue::from_static("1"));
    req.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((peer, 5000))));
    let resp = h.app.clone().oneshot(req).await.expect("infallible");
    let (parts, body) = resp.into_parts();
    let bytes = http_body_util::BodyExt::collect(body).await.expect("body").to_bytes();
    (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn logins_check_argon2id_passwords_lock_after_five_failures_and_are_rate_limited() {
    use dalaba_controller::accounts::{NewUser, hash_password};
    let h = Harness::new();
    for name in ["li.wei", "wang.fang"] {
        let new = NewUser {
            name: name.into(),
            display_name: name.into(),
            role: Role::Operator,
            region_id: None,
            emergency: false,
            password_hash: hash_password("correct horse battery").expect("hash"),
            created_at_ms: T0,
            password_change_required: false,
        };
        h.state.store.create_user(&new).expect("account");
    }
    let (got, headers, body) = login(&h, "li.wei", "correct horse battery", [10, 0, 0, 1]).await;
    assert_eq!(got, StatusCode::OK, "{body}");
    let cookie = headers.get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    for part in ["dalaba_session=", "HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert_eq!(body["user"]["role"], "operator");
    assert!(body["csrf_token"].as_str().is_some_and(|t| t.len() >= 40), "{body}");
    assert!(!body.to_string().contains("$argon2") && body["user"].get("password_hash").is_none(), "no hash: {body}");

    // Five wrong passwords lock the account; the right one is then refused too.
    for _ in 0..5 {
        let (got, _, body) = login(&h, "wang.fang", "wrong password!", [10, 0, 0, 2]).await;
        assert_eq!((got, body["message"].as_str()), (StatusCode::UNAUTHORIZED, Some("wrong name or password")));
    }
    let (got, _, body) = login(&h, "wang.fang", "correct horse battery", [10, 0, 0, 3]).await;
    assert_eq!(got, StatusCode::UNAUTHORIZED);
    assert!(body["message"].as_str().is_some_and(|m| m.contains("locked for 15 more minute")), "{body}");
    h.state.clock.advance_ms(16 * 60 * 1000);
    let (got, _, _) = login(&h, "wang.fang", "correct horse battery", [10, 0, 0, 3]).await;
    assert_eq!(got, StatusCode::OK, "unlocked after the lockout");
    // An unknown name is refused in the same words.
    let (got, _, body) = login(&h, "nobody", "correct horse battery", [10, 0, 0, 4]).await;
    assert_eq!((got, body["message"].as_str()), (StatusCode::UNAUTHORIZED, Some("wrong name or password")));

    // Ten attempts from one address in five minutes, then 429.
    for _ in 0..10 {
        login(&h, "nobody", "x", [10, 0, 0, 9]).await;
    }
    let (got, headers, _) = login(&h, "nobody", "x", [10, 0, 0, 9]).await;
    assert_eq!(got, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key(header::RETRY_AFTER));
    let failures = h.state.store.audit(&AuditFilter { action: Some("login.failed".into()), ..AuditFilter::default() });
    // Five wrong and one locked, one unknown name, ten and one limited.
    assert_eq!(failures.expect("audit").len(), 6 + 1 + 11, "every failed attempt is on record");
}

/// Sends `method path` with `body` as the holder of `session`.
async fn as_account(
    h: &Harness,
    session: &(HeaderValue, HeaderValue),
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let payload = body.map_or(Payload::None, Payload::Json);
    let mut req = request(method, path, payload);
    req.headers_mut().insert(header::COOKIE, session.0.clone());
    req.headers_mut().insert(CSRF_HEADER, session.1.clone());
    let (status, _, bytes) = fetch(&h.app, req).await;
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_township_operator_acts_on_its_township_and_cannot_reach_into_another() {
    use crate::harness::{call, create, enrol, id};
    let h = Harness::new();
    let s = seed(&h.app).await;
    let other = id(&create(
        &h.app,
        json!({"level": "township", "parent_id": s.county, "name": "玉都镇", "code": "620821101000"}),
    )
    .await);
    let far =
        id(&create(&h.app, json!({"level": "village", "parent_id": other, "name": "太平村", "code": "620821101200"}))
            .await);
    let ours_agent = enrol(&h.app, s.villages[0], "pi-ours").await.0;
    let far_agent = enrol(&h.app, far, "pi-far").await.0;
    let item = crate::schedules::add_item(&h, "禁毒宣传", 'a', 60_000);
    let schedule = |name: &str, targets: Value| crate::schedules::daily(name, item, &["07:00:00"], targets);
    let (_, mine) = call(
        &h.app,
        Method::POST,
        "/api/v1/schedules",
        Payload::Json(schedule("本镇", json!({"townships": [s.township]}))),
    )
    .await;
    let (_, theirs) =
        call(&h.app, Method::POST, "/api/v1/schedules", Payload::Json(schedule("外镇", json!({"townships": [other]}))))
            .await;
    let (_, county) =
        call(&h.app, Method::POST, "/api/v1/schedules", Payload::Json(schedule("全县", json!({"county": true})))).await;
    let paging = |targets: Value| json!({"title": "寻人", "priority": "paging", "targets": targets, "source": {"type": "microphone"}});
    let (status, far_session) =
        call(&h.app, Method::POST, "/api/v1/live", Payload::Json(paging(json!({"villages": [far]})))).await;
    assert_eq!(status, StatusCode::CREATED, "{far_session}");
    let far_session = far_session["session_id"].as_str().expect("id").to_owned();

    let op = account_session(&h.state, "town-op", Role::Operator, Some(s.township), false, &LONG_SESSIONS);
    // Lists show the township only.
    let (_, regions) = as_account(&h, &op, Method::GET, "/api/v1/regions", None).await;
    let mut ids: Vec<i64> = regions.as_array().expect("list").iter().filter_map(|r| r["id"].as_i64()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [s.township, s.villages[0], s.villages[1]]);
    let (_, agents) = as_account(&h, &op, Method::GET, "/api/v1/agents", None).await;
    assert_eq!(
        agents.as_array().map(|a| a.iter().map(|x| x["id"].clone()).collect::<Vec<_>>()),
        Some(vec![json!(ours_agent)])
    );
    let (_, schedules) = as_account(&h, &op, Method::GET, "/api/v1/schedules", None).await;
    let names: Vec<&str> = schedules.as_array().expect("list").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["本镇"]);
    let (_, live) = as_account(&h, &op, Method::GET, "/api/v1/live", None).await;
    assert_eq!(live["active"], json!([]), "the other township's session is not listed");

    // By id, or by targets, another township is out of reach.
    let theirs_path = format!("/api/v1/schedules/{}", theirs["id"]);
    let county_path = format!("/api/v1/schedules/{}", county["id"]);
    let refused: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/regions/{far}"), None),
        (Method::GET, format!("/api/v1/regions/{}", s.county), None),
        (Method::GET, format!("/api/v1/villages/{far}/plan"), None),
        (Method::POST, format!("/api/v1/villages/{far}/enrolment-codes"), None),
        (Method::GET, format!("/api/v1/agents/{far_agent}"), None),
        (Method::DELETE, format!("/api/v1/agents/{far_agent}"), None),
        (Method::GET, theirs_path.clone(), None),
        (Method::PUT, theirs_path.clone(), Some(schedule("改", json!({"townships": [s.township]})))),
        (Method::DELETE, theirs_path, None),
        (Method::DELETE, county_path, None),
        (Method::POST, "/api/v1/schedules".into(), Some(schedule("全县", json!({"county": true})))),
        (Method::POST, "/api/v1/schedules".into(), Some(schedule("外", json!({"villages": [s.villages[0], far]})))),
        (
            Method::POST,
            "/api/v1/schedules/preview".into(),
            Some(json!({"schedule": schedule("外", json!({"townships": [other]}))})),
        ),
        (Method::POST, "/api/v1/live".into(), Some(paging(json!({"townships": [other]})))),
        (Method::GET, format!("/api/v1/live/{far_session}"), None),
        (Method::POST, format!("/api/v1/live/{far_session}/stop"), Some(json!({}))),
    ];
    for (method, path, body) in refused {
        let (status, answer) = as_account(&h, &op, method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert!(
            answer["message"].as_str().is_some_and(|m| m.contains("limited to 城关镇")),
            "{method} {path}: {answer}"
        );
    }
    // Its own township works, and an emergency needs the emergency right.
    let (status, body) = as_account(&h, &op, Method::GET, &format!("/api/v1/schedules/{}", mine["id"]), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) =
        as_account(&h, &op, Method::POST, &format!("/api/v1/villages/{}/enrolment-codes", s.villages[1]), None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) =
        as_account(&h, &op, Method::POST, "/api/v1/live", Some(paging(json!({"villages": [s.villages[0]]})))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut emergency = paging(json!({"villages": [s.villages[1]]}));
    emergency["priority"] = json!("emergency");
    let (status, body) = as_account(&h, &op, Method::POST, "/api/v1/live", Some(emergency)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("allowed to start emergencies")), "{body}");
}
