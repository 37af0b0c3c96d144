//! CAP alerts as live sessions: an Alert starts one, an Update replaces it,
//! a Cancel stops it, and a duplicate starts nothing.

use axum::http::StatusCode;
use dalaba_controller::tokens::Scope;
use serde_json::Value;

use crate::alerts::{CANCEL, EN, UPDATE, ZH, county, post, token, village_names};
use crate::harness::{Harness, enrol};

fn session(body: &Value) -> String {
    body["session_id"].as_str().unwrap_or_else(|| panic!("no session in {body}")).to_owned()
}

/// A county whose four villages each have an enrolled agent, and a token.
async fn setup() -> (Harness, String) {
    let h = Harness::new();
    let c = county(&h.app).await;
    for (village, host) in [(c.wangjiagou, "pi-w"), (c.lijia, "pi-l"), (c.taiping, "pi-t"), (c.dongzhuang, "pi-d")] {
        enrol(&h.app, village, host).await;
    }
    let t = token(&h, "province", &[Scope::Emergency]);
    (h, t)
}

#[tokio::test]
async fn an_alert_starts_an_update_replaces_a_cancel_stops() {
    let (h, t) = setup().await;
    let (status, first) = post(&h.app, Some(&t), ZH).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["action"], "started");
    assert_eq!(first["priority"], "emergency");
    assert_eq!(village_names(&first), ["王家沟村", "李家村", "太平村"]);
    assert_eq!(first["agents"].as_array().map(Vec::len), Some(3), "{first}");
    let first_session = session(&first);
    let live = h.state.live.session(&h.state, &first_session).await.expect("the session exists");
    assert_eq!(live.ended_at_ms, None, "on the air");

    // The same alert again: nothing new.
    let (status, again) = post(&h.app, Some(&t), ZH).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!((again["action"].as_str(), session(&again)), (Some("duplicate"), first_session.clone()));

    let (status, update) = post(&h.app, Some(&t), UPDATE).await;
    assert_eq!(status, StatusCode::CREATED, "{update}");
    assert_eq!(update["action"], "replaced");
    assert_eq!(update["stopped_sessions"], serde_json::json!([first_session]));
    assert_eq!(village_names(&update), ["王家沟村", "李家村"]);
    let second_session = session(&update);
    assert_ne!(second_session, first_session);
    let ended = h.state.live.session(&h.state, &first_session).await.expect("the first session");
    assert!(ended.ended_at_ms.is_some(), "the update stopped the first session");

    let (status, cancel) = post(&h.app, Some(&t), CANCEL).await;
    assert_eq!(status, StatusCode::OK, "{cancel}");
    assert_eq!(cancel["action"], "stopped");
    assert_eq!(cancel["stopped_sessions"], serde_json::json!([second_session]));
    let ended = h.state.live.session(&h.state, &second_session).await.expect("the second session");
    assert!(ended.ended_at_ms.is_some(), "the cancel stopped the second session");
}

#[tokio::test]
async fn a_cancel_naming_only_the_first_alert_stops_its_update() {
    let (h, t) = setup().await;
    let (_, first) = post(&h.app, Some(&t), ZH).await;
    let (_, update) = post(&h.app, Some(&t), UPDATE).await;
    let only_first = CANCEL.replace(" jcqx@weather.gansu.example,620821-QX-20250615-002,2025-06-16T01:40:00+08:00", "");
    let (status, cancel) = post(&h.app, Some(&t), only_first).await;
    assert_eq!(status, StatusCode::OK, "{cancel}");
    assert_eq!(session(&cancel), session(&update), "the thread's latest session, not {}", session(&first));
}

#[tokio::test]
async fn a_paging_alert_speaks_its_text_when_the_audio_is_only_a_link() {
    let (h, t) = setup().await;
    let (status, body) = post(&h.app, Some(&t), EN).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["priority"], "paging");
    assert_eq!(village_names(&body), ["李家村", "东庄村"]);
    assert!(body["notes"].to_string().contains("spoke the description"), "{body}");
    let live = h.state.live.session(&h.state, &session(&body)).await.expect("the session");
    assert_eq!(live.started_by, "alert:GS-EMA-2025-0615-0042");
}
