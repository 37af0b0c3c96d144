//! An account changing its own password (`POST /session/password`), and
//! the request to do so that an admin-chosen password carries.

use axum::http::{HeaderValue, Method, StatusCode, header};
use dalaba_controller::accounts::audit::AuditFilter;
use dalaba_controller::accounts::session::CSRF_HEADER;
use dalaba_controller::tokens::{self, Scope};
use serde_json::{Value, json};

use crate::harness::{ANONYMOUS, Harness, Payload, T0, call, fetch, request};

const FIRST: &str = "chosen by the admin";
const OWN: &str = "my own long password";

/// A logged-in session: the cookie and the CSRF token.
struct Session {
    cookie: HeaderValue,
    csrf: HeaderValue,
}

/// `POST /session` from `peer`; the session, or the refusal.
async fn login(h: &Harness, name: &str, password: &str) -> Result<(Session, Value), (StatusCode, Value)> {
    let mut req = request(Method::POST, "/api/v1/session", Payload::Json(json!({"name": name, "password": password})));
    req.headers_mut().insert(ANONYMOUS, HeaderValue::from_static("1"));
    let (status, headers, bytes) = fetch(&h.app, req).await;
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status != StatusCode::OK {
        return Err((status, body));
    }
    Ok((session_of(&headers, &body), body))
}

fn session_of(headers: &axum::http::HeaderMap, body: &Value) -> Session {
    let set = headers.get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).expect("a session cookie");
    let pair = set.split(';').next().expect("name=value");
    Session {
        cookie: HeaderValue::from_str(pair).expect("cookie"),
        csrf: HeaderValue::from_str(body["csrf_token"].as_str().expect("csrf token")).expect("csrf"),
    }
}

async fn as_session(h: &Harness, s: &Session, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let (status, _, body) = as_session_full(h, s, method, path, body).await;
    (status, body)
}

async fn as_session_full(
    h: &Harness,
    s: &Session,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut req = request(method, path, body.map_or(Payload::None, Payload::Json));
    req.headers_mut().insert(header::COOKIE, s.cookie.clone());
    req.headers_mut().insert(CSRF_HEADER, s.csrf.clone());
    let (status, headers, bytes) = fetch(&h.app, req).await;
    (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn change(current: &str, new: &str) -> Option<Value> {
    Some(json!({"current_password": current, "new_password": new}))
}

#[tokio::test]
async fn an_account_changes_the_password_an_admin_chose_and_its_other_sessions_end() {
    let h = Harness::new();
    let (status, created) = call(
        &h.app,
        Method::POST,
        "/api/v1/users",
        Payload::Json(json!({"name": "wang.fang", "display_name": "王芳", "role": "operator", "password": FIRST})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["password_change_required"], true, "an admin chose it: {created}");
    let id = created["id"].as_i64().expect("id");

    let (office, body) = login(&h, "wang.fang", FIRST).await.expect("login");
    assert_eq!(body["user"]["password_change_required"], true, "the console is told: {body}");
    let (phone, _) = login(&h, "wang.fang", FIRST).await.expect("a second login");

    // A wrong current password: refused, counted as a failed login.
    let (status, body) = as_session(&h, &office, Method::POST, "/api/v1/session/password", change("guess", OWN)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("wrong_password")), "{body}");
    // A new password too short, or the same as the current one.
    let (status, body) =
        as_session(&h, &office, Method::POST, "/api/v1/session/password", change(FIRST, "short")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("at least 10 characters")), "{body}");
    let (status, body) = as_session(&h, &office, Method::POST, "/api/v1/session/password", change(FIRST, FIRST)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("must differ")), "{body}");
    // A new password of a thousand characters: refused, not echoed; a
    // body past 16 KiB: refused before it is read.
    let long = "密".repeat(1_000);
    let (status, body) = as_session(&h, &office, Method::POST, "/api/v1/session/password", change(FIRST, &long)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("at most 256 bytes") && !m.contains("密")), "{body}");
    let huge = "x".repeat(20_000);
    let (status, body) = as_session(&h, &office, Method::POST, "/api/v1/session/password", change(FIRST, &huge)).await;
    assert_eq!((status, body["message"].as_str()), (StatusCode::BAD_REQUEST, Some("the request is too large")));
    // A body that is not the change: named.
    let (status, body) =
        as_session(&h, &office, Method::POST, "/api/v1/session/password", Some(json!({"password": OWN}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("current_password")), "{body}");
    let user = h.state.store.user(id).expect("read").expect("account");
    assert_eq!(user.failed_logins, 1, "only the wrong password counts");
    assert!(login(&h, "wang.fang", FIRST).await.is_ok(), "nothing changed yet");

    // The change: a fresh session in the answer, every old one ended.
    let (status, headers, body) =
        as_session_full(&h, &office, Method::POST, "/api/v1/session/password", change(FIRST, OWN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["password_change_required"], false, "{body}");
    assert!(!body.to_string().contains("$argon2") && body["user"].get("password_hash").is_none(), "no hash: {body}");
    let fresh = session_of(&headers, &body);
    assert_ne!(fresh.csrf, office.csrf, "a new CSRF token");
    for (what, old) in [("the session that changed it", &office), ("the other session", &phone)] {
        let (status, _) = as_session(&h, old, Method::GET, "/api/v1/session", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} ended");
    }
    let (status, me) = as_session(&h, &fresh, Method::GET, "/api/v1/session", None).await;
    assert_eq!((status, me["user"]["name"].as_str()), (StatusCode::OK, Some("wang.fang")), "{me}");
    assert_eq!(me["user"]["password_change_required"], false, "{me}");
    assert_eq!(login(&h, "wang.fang", FIRST).await.err().map(|e| e.0), Some(StatusCode::UNAUTHORIZED));
    assert!(login(&h, "wang.fang", OWN).await.is_ok(), "the new password logs in");

    // On record, each attempt once, and no password in the log.
    let filter = AuditFilter { action: Some("password.change".into()), ..AuditFilter::default() };
    let records = h.state.store.audit(&filter).expect("audit");
    let statuses: Vec<u16> = records.iter().rev().map(|r| r.status).collect();
    assert_eq!(statuses, [403, 400, 400, 400, 400, 400, 200], "{records:?}");
    assert!(records.iter().all(|r| r.actor == "user:wang.fang" && !r.detail.contains(OWN)), "{records:?}");

    // An admin resetting it asks again; an admin setting their own does not.
    let path = format!("/api/v1/users/{id}");
    let (status, reset) = call(&h.app, Method::PATCH, &path, Payload::Json(json!({"password": FIRST}))).await;
    assert_eq!((status, reset["password_change_required"].as_bool()), (StatusCode::OK, Some(true)), "{reset}");
    let (_, admin) = call(&h.app, Method::GET, "/api/v1/session", Payload::None).await;
    let admin_id = admin["user"]["id"].as_i64().expect("the harness's admin");
    let own = format!("/api/v1/users/{admin_id}");
    let (status, own) = call(&h.app, Method::PATCH, &own, Payload::Json(json!({"password": OWN}))).await;
    assert_eq!((status, own["password_change_required"].as_bool()), (StatusCode::OK, Some(false)), "{own}");
}

#[tokio::test]
async fn an_api_token_has_no_password_to_change_and_a_page_needs_its_csrf_token() {
    let h = Harness::new();
    let created = tokens::create("province", vec![Scope::Read], T0).expect("token");
    h.state.store.create_api_token(&created.new).expect("stored");
    let mut req = request(Method::POST, "/api/v1/session/password", Payload::Json(json!({})));
    let bearer = HeaderValue::from_str(&format!("Bearer {}", created.token)).expect("header");
    req.headers_mut().insert(header::AUTHORIZATION, bearer);
    let (status, _, bytes) = fetch(&h.app, req).await;
    let body: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("not_an_account")), "{body}");

    let (status, _) = call(
        &h.app,
        Method::POST,
        "/api/v1/users",
        Payload::Json(json!({"name": "li.wei", "role": "viewer", "password": FIRST})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (s, _) = login(&h, "li.wei", FIRST).await.expect("login");
    // A viewer may change their own password, but not without the page's
    // CSRF token.
    let mut req = request(Method::POST, "/api/v1/session/password", Payload::Json(json!({})));
    req.headers_mut().insert(header::COOKIE, s.cookie.clone());
    req.headers_mut().insert(ANONYMOUS, HeaderValue::from_static("1"));
    let (status, _, _) = fetch(&h.app, req).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token");
    let (status, body) = as_session(&h, &s, Method::POST, "/api/v1/session/password", change(FIRST, OWN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn wrong_current_passwords_lock_the_account_even_for_an_open_session() {
    let h = Harness::new();
    let body = json!({"name": "zhao.liu", "role": "operator", "password": FIRST});
    let (status, _) = call(&h.app, Method::POST, "/api/v1/users", Payload::Json(body)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (s, _) = login(&h, "zhao.liu", FIRST).await.expect("login");
    for guess in 0..5 {
        let wrong = format!("guess number {guess}");
        let (status, body) = as_session(&h, &s, Method::POST, "/api/v1/session/password", change(&wrong, OWN)).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("wrong_password")), "{body}");
    }
    // Locked: the right password is refused too, here and at login.
    let (status, body) = as_session(&h, &s, Method::POST, "/api/v1/session/password", change(FIRST, OWN)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("locked")), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("locked for 15 more minute")), "{body}");
    assert_eq!(login(&h, "zhao.liu", FIRST).await.err().map(|e| e.0), Some(StatusCode::UNAUTHORIZED));
    h.state.clock.advance_ms(16 * 60 * 1000);
    let (status, body) = as_session(&h, &s, Method::POST, "/api/v1/session/password", change(FIRST, OWN)).await;
    assert_eq!(status, StatusCode::OK, "after the lock: {body}");
}
