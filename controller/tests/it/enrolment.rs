//! Enrolment codes, enrolment and the agent list.

use axum::http::{Method, StatusCode};
use dalaba_controller::clock::rfc3339;
use serde_json::{Value, json};

use crate::harness::{
    CODE_TTL_MINUTES, FINGERPRINT, Harness, Payload, T0, call, enrol, enrol_request, enrolment_code, error_message,
    seed,
};

/// Letters and digits of a code: no 0/O, 1/I/L.
const CODE_ALPHABET: &str = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";

fn codes_path(village: impl std::fmt::Display) -> String {
    format!("/api/v1/villages/{village}/enrolment-codes")
}

#[tokio::test]
async fn a_code_enrols_one_agent_once() {
    let h = Harness::new();
    let app = &h.app;
    let tree = seed(app).await;

    let (status, created) = call(app, Method::POST, &codes_path(tree.villages[0]), Payload::None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let code = created["code"].as_str().expect("a code");
    let shape_ok =
        code.len() == 9 && code.char_indices().all(|(i, c)| if i == 4 { c == '-' } else { CODE_ALPHABET.contains(c) });
    assert!(shape_ok, "`{code}` is not XXXX-XXXX");
    assert_eq!(created["village_id"], tree.villages[0]);
    assert_eq!(created["expires_at"], rfc3339(T0 + CODE_TTL_MINUTES as i64 * 60_000));
    let command = created["command"].as_str().expect("a command");
    let pin = format!("--code {code} --fingerprint {}", h.state.settings.cert_fingerprint);
    assert!(command.starts_with("dalaba-agent enrol --controller https://") && command.ends_with(&pin), "{command}");

    // Technicians type codes by hand: case and surrounding spaces do not matter.
    let typed = format!(" {} ", code.to_ascii_lowercase());
    let (status, enrolled) = call(app, Method::POST, "/api/v1/enrol", enrol_request(&typed, "pi-wangjiagou")).await;
    assert_eq!(status, StatusCode::OK, "{enrolled}");
    assert!(enrolled["agent_id"].as_str().is_some_and(|id| id.starts_with("ag-")), "{enrolled}");
    let secret = enrolled["secret"].as_str().expect("a secret");
    assert!(secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()), "{secret}");
    assert_eq!((&enrolled["village_id"], &enrolled["village_name"]), (&json!(tree.villages[0]), &json!("王家沟村")));
    assert_eq!(enrolled["controller_cert_sha256"], FINGERPRINT);
    let signing_key = serde_json::to_value(&h.state.settings.signing_key).expect("serialise");
    assert_eq!(enrolled["signing_key"], signing_key);

    h.state.clock.advance_ms(1_000);
    let (status, body) = call(app, Method::POST, "/api/v1/enrol", enrol_request(code, "pi-again")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let message = error_message(&body, "enrolment_code_used");
    assert!(message.contains(&rfc3339(T0)), "says when it was used: {message}");
}

#[tokio::test]
async fn unknown_and_expired_codes_are_refused() {
    let h = Harness::new();
    let app = &h.app;
    let tree = seed(app).await;

    let (status, body) = call(app, Method::POST, "/api/v1/enrol", enrol_request("ZZZZ-ZZZZ", "pi")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    error_message(&body, "enrolment_code_unknown");

    let (status, created) =
        call(app, Method::POST, &codes_path(tree.villages[1]), Payload::Json(json!({"ttl_minutes": 5}))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["expires_at"], rfc3339(T0 + 5 * 60_000));
    let code = created["code"].as_str().expect("a code");
    h.state.clock.advance_ms(5 * 60_000);
    let (status, body) = call(app, Method::POST, "/api/v1/enrol", enrol_request(code, "pi")).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    let message = error_message(&body, "enrolment_code_expired");
    assert!(message.contains(&rfc3339(T0 + 5 * 60_000)), "{message}");

    let (status, agents) = call(app, Method::GET, "/api/v1/agents", Payload::None).await;
    assert_eq!((status, agents), (StatusCode::OK, json!([])), "no refused attempt enrolled an agent");
}

#[tokio::test]
async fn codes_are_only_for_villages_with_a_sane_lifetime() {
    let h = Harness::new();
    let app = &h.app;
    let tree = seed(app).await;
    let ttl = |minutes: Value| Payload::Json(json!({"ttl_minutes": minutes}));
    let cases = [
        (
            "a township",
            codes_path(tree.township),
            Payload::None,
            StatusCode::BAD_REQUEST,
            "is a township, not a village",
        ),
        ("the county", codes_path(tree.county), Payload::None, StatusCode::BAD_REQUEST, "is a county, not a village"),
        ("an unknown village", codes_path(999999), Payload::None, StatusCode::NOT_FOUND, "village 999999"),
        ("a non-numeric id", codes_path("abc"), Payload::None, StatusCode::BAD_REQUEST, "abc"),
        ("ttl 0", codes_path(tree.villages[0]), ttl(json!(0)), StatusCode::BAD_REQUEST, "ttl_minutes"),
        ("ttl over 30 days", codes_path(tree.villages[0]), ttl(json!(43_201)), StatusCode::BAD_REQUEST, "ttl_minutes"),
        ("negative ttl", codes_path(tree.villages[0]), ttl(json!(-1)), StatusCode::UNPROCESSABLE_ENTITY, "ttl_minutes"),
        // Regression: a refused body was answered in plain text, not as an API error.
        (
            "an unknown field",
            codes_path(tree.villages[0]),
            Payload::Json(json!({"ttl": 5})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field `ttl`",
        ),
    ];
    for (what, path, payload, status, mentions) in cases {
        let (got, body) = call(app, Method::POST, &path, payload).await;
        assert_eq!(got, status, "{what}: {body}");
        assert!(body["error"].is_string(), "{what}: {body}");
        let message = body["message"].as_str().unwrap_or_else(|| panic!("{what}: no message in {body}"));
        assert!(message.contains(mentions), "{what}: `{message}` should mention `{mentions}`");
    }
}

#[tokio::test]
async fn enrolment_refuses_malformed_and_oversized_requests() {
    let h = Harness::new();
    let app = &h.app;
    let tree = seed(app).await;
    let code = enrolment_code(app, tree.villages[0]).await;
    let cases = [
        ("malformed JSON", Payload::Raw("application/json", b"{\"code\":".to_vec()), 400),
        ("missing hardware", Payload::Json(json!({"code": code, "hostname": "pi", "agent_version": "1"})), 422),
        ("overlong hostname", enrol_request(&code, &"h".repeat(101)), 400),
        ("overlong code", enrol_request(&"A".repeat(65), "pi"), 400),
    ];
    for (what, payload, status) in cases {
        let (got, body) = call(app, Method::POST, "/api/v1/enrol", payload).await;
        assert_eq!(got.as_u16(), status, "{what}: {body}");
        assert!(body["error"].is_string() && body["message"].is_string(), "{what}: {body}");
    }
    // None of those used the code up.
    enrol(app, tree.villages[0], "pi").await;
}

#[tokio::test]
async fn enrolled_agents_are_listed_and_can_be_removed() {
    let h = Harness::new();
    let app = &h.app;
    let tree = seed(app).await;
    let (agent, _) = enrol(app, tree.villages[0], "pi-wangjiagou").await;

    let (status, agents) = call(app, Method::GET, "/api/v1/agents", Payload::None).await;
    assert_eq!(status, StatusCode::OK);
    let [listed] = agents.as_array().expect("a list").as_slice() else { panic!("one agent expected: {agents}") };
    let expect = json!({
        "id": agent,
        "village_id": tree.villages[0],
        "village_name": "王家沟村",
        "village_code": "620821100200",
        "township_id": tree.township,
        "township_name": "城关镇",
        "hostname": "pi-wangjiagou",
        "agent_version": "0.1.0",
        "enrolled_at": rfc3339(T0),
        "online": false,
        "connected_since": null,
        "peer": null,
        "status": null,
    });
    for (field, value) in expect.as_object().expect("an object") {
        assert_eq!(&listed[field], value, "{field} in {listed}");
    }
    assert_eq!(listed["hardware"]["model"], "Raspberry Pi 4 Model B");

    let path = format!("/api/v1/agents/{agent}");
    let (status, one) = call(app, Method::GET, &path, Payload::None).await;
    assert_eq!((status, &one), (StatusCode::OK, listed));

    let (status, _) = call(app, Method::DELETE, &path, Payload::None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for method in [Method::DELETE, Method::GET] {
        let (status, body) = call(app, method.clone(), &path, Payload::None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {body}");
        error_message(&body, "not_found");
    }
    let (_, agents) = call(app, Method::GET, "/api/v1/agents", Payload::None).await;
    assert_eq!(agents, json!([]));
    // With its agent gone, the village can be deleted.
    let (status, _) = call(app, Method::DELETE, &format!("/api/v1/regions/{}", tree.villages[0]), Payload::None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}
