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
