//! What one audit record holds for a request through the real router: the
//! full path as the caller sent it, and the village a `/villages/{id}/…`
//! route names.

use axum::http::{Method, StatusCode};
use dalaba_controller::accounts::audit::AuditFilter;

use crate::harness::{Harness, Payload, call, seed};

#[tokio::test]
async fn a_record_names_the_full_path_and_the_village() {
    let h = Harness::new();
    let s = seed(&h.app).await;
    let path = format!("/api/v1/villages/{}/enrolment-codes", s.villages[1]);
    let (status, body) = call(&h.app, Method::POST, &path, Payload::None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let records = h
        .state
        .store
        .audit(&AuditFilter { action: Some("agent.enrolment_code".into()), ..AuditFilter::default() })
        .expect("audit");
    let all = h.state.store.audit(&AuditFilter::default()).expect("audit");
    assert_eq!(records.len(), 1, "{all:#?}");
    assert_eq!(records[0].path, path);
    assert_eq!(records[0].village_id, Some(s.villages[1]));
    let by_village =
        h.state.store.audit(&AuditFilter { village_id: Some(s.villages[1]), ..AuditFilter::default() }).expect("audit");
    assert_eq!(by_village, records, "the search by village finds it");
}

#[tokio::test]
async fn the_log_pages_back_by_id_and_an_account_keeps_its_last_login() {
    let h = Harness::new();
    seed(&h.app).await;
    let (_, first) = call(&h.app, Method::GET, "/api/v1/audit?limit=2", Payload::None).await;
    let first = first.as_array().expect("records").clone();
    assert_eq!(first.len(), 2);
    let oldest = first[1]["id"].as_i64().expect("id");
    let (status, next) =
        call(&h.app, Method::GET, &format!("/api/v1/audit?limit=2&before_id={oldest}"), Payload::None).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    let next = next.as_array().expect("records");
    assert_eq!(next.len(), 2);
    assert!(next.iter().all(|r| r["id"].as_i64().expect("id") < oldest), "{next:?}");
    let (status, body) = call(&h.app, Method::GET, "/api/v1/audit?before_id=x", Payload::None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A login is kept on the account; a failed one is not.
    let user = serde_json::json!({"name": "li.wei", "role": "viewer", "password": "correct horse battery"});
    let (status, created) = call(&h.app, Method::POST, "/api/v1/users", Payload::Json(user)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["last_login_ms"], serde_json::Value::Null);
    let login = |password: &str| serde_json::json!({"name": "li.wei", "password": password});
    let (status, _) = call(&h.app, Method::POST, "/api/v1/session", Payload::Json(login("wrong password"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    h.state.clock.advance_ms(5_000);
    let (status, body) =
        call(&h.app, Method::POST, "/api/v1/session", Payload::Json(login("correct horse battery"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, users) = call(&h.app, Method::GET, "/api/v1/users", Payload::None).await;
    let li = users.as_array().into_iter().flatten().find(|u| u["name"] == "li.wei").expect("listed");
    assert_eq!(li["last_login_ms"], h.state.clock.now_ms(), "{li}");
}
