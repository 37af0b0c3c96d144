//! The OpenAPI document against the router, metrics, pages, the JSON
//! fallback and the agent link's authentication.

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use dalaba_protocol::{LINK_PATH, bearer_credentials};
use http_body_util::BodyExt;
use serde_json::Value;

use crate::harness::{Harness, Payload, call, csv, enrol, enrol_request, error_message, fetch, request, seed, send};

/// Every route `api::router` registers, as (method, path) in OpenAPI's
/// spelling. Keep in step with `controller/src/api/mod.rs`.
pub(crate) const ROUTES: [(&str, &str); 62] = [
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/session"),
    ("post", "/api/v1/session"),
    ("delete", "/api/v1/session"),
    ("post", "/api/v1/session/password"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("patch", "/api/v1/users/{id}"),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{id}"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/audit/export.csv"),
    ("get", "/api/v1/reports"),
    ("get", "/api/v1/reports/villages.csv"),
    ("get", "/api/v1/reports/monthly.html"),
    ("get", "/api/v1/controller"),
    ("get", "/api/v1/regions"),
    ("post", "/api/v1/regions"),
    ("get", "/api/v1/regions/{id}"),
    ("patch", "/api/v1/regions/{id}"),
    ("delete", "/api/v1/regions/{id}"),
    ("get", "/api/v1/directory/export.csv"),
    ("post", "/api/v1/directory/import"),
    ("post", "/api/v1/villages/{id}/enrolment-codes"),
    ("get", "/api/v1/villages/{id}/plays"),
    ("get", "/api/v1/schedules"),
    ("post", "/api/v1/schedules"),
    ("post", "/api/v1/schedules/preview"),
    ("get", "/api/v1/schedules/{id}"),
    ("put", "/api/v1/schedules/{id}"),
    ("delete", "/api/v1/schedules/{id}"),
    ("get", "/api/v1/quiet-hours"),
    ("put", "/api/v1/quiet-hours"),
    ("get", "/api/v1/plan"),
    ("get", "/api/v1/villages/{id}/plan"),
    ("post", "/api/v1/enrol"),
    ("get", "/api/v1/agents"),
    ("get", "/api/v1/agents/{id}"),
    ("delete", "/api/v1/agents/{id}"),
    ("get", "/api/v1/dashboard"),
    ("get", "/api/v1/events"),
    ("get", "/api/v1/link"),
    ("get", "/api/v1/library"),
    ("post", "/api/v1/library"),
    ("post", "/api/v1/library/tts"),
    ("get", "/api/v1/library/categories"),
    ("post", "/api/v1/library/categories"),
    ("get", "/api/v1/library/{id}"),
    ("patch", "/api/v1/library/{id}"),
    ("delete", "/api/v1/library/{id}"),
    ("get", "/api/v1/library/{id}/audio"),
    ("get", "/api/v1/content/{sha256}"),
    ("get", "/api/v1/live"),
    ("post", "/api/v1/live"),
    ("get", "/api/v1/live/{id}"),
    ("post", "/api/v1/live/{id}/stop"),
    ("get", "/api/v1/live/{id}/microphone"),
    ("post", "/api/v1/alerts"),
    ("get", "/api/v1/alarms"),
    ("post", "/api/v1/alarms/{id}/acknowledge"),
    ("get", "/metrics"),
];

const HTTP_METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Whether a request fell through to a fallback rather than reaching a
/// route: the API's JSON `no API route`, or axum's empty 404 outside it.
async fn hits_fallback(app: &Router, method: Method, path: &str) -> bool {
    // Not read to the end: `/events` answers with an endless stream.
    let resp = send(app, request(method, path, Payload::None)).await;
    if resp.status() != StatusCode::NOT_FOUND {
        return false;
    }
    let bytes = resp.into_body().collect().await.expect("a readable body").to_bytes();
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(body) => body["message"].as_str().is_none_or(|m| m.starts_with("no API route")),
        Err(_) => true,
    }
}

#[tokio::test]
async fn openapi_documents_exactly_the_routed_paths() {
    let h = Harness::new();
    let (status, headers, bytes) = fetch(&h.app, request(Method::GET, "/api/v1/openapi.json", Payload::None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some("application/json"));
    let doc: Value = serde_json::from_slice(&bytes).expect("the document is JSON");
    assert_eq!(doc["openapi"], "3.1.0");

    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().expect("a path item").keys().filter(|k| HTTP_METHODS.contains(&k.as_str()));
            methods.map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(
        routed.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routed but not documented"
    );
    assert_eq!(
        documented.difference(&routed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented but not in ROUTES"
    );

    // The check below must be able to fail: an unrouted path is seen as such.
    assert!(hits_fallback(&h.app, Method::GET, "/api/v1/regionz").await);
    assert!(hits_fallback(&h.app, Method::GET, "/metricz").await);
    for (method, path) in &documented {
        let concrete = path.replace("{id}", "999999").replace("{sha256}", &"0".repeat(64));
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("a method");
        assert!(!hits_fallback(&h.app, method.clone(), &concrete).await, "documented {method} {path} is not routed");
    }
    // `{id}` and `{sha256}` are the only parameters substituted above.
    for path in paths.keys() {
        assert!(path.replace("{id}", "").replace("{sha256}", "").find('{').is_none(), "unknown parameter in {path}");
    }
}

/// The properties a component schema of the document lists.
fn schema_properties(doc: &Value, schema: &str) -> BTreeSet<String> {
    let properties = doc["components"]["schemas"][schema]["properties"].as_object();
    properties.unwrap_or_else(|| panic!("schema {schema} has no properties")).keys().cloned().collect()
}

#[tokio::test]
async fn responses_have_only_documented_fields() {
    let h = Harness::new();
    let app = &h.app;
    let doc: Value = serde_json::from_str(dalaba_controller::api::OPENAPI).expect("the document is JSON");
    let tree = seed(app).await;
    let (agent, _) = enrol(app, tree.villages[0], "pi").await;
    let codes = format!("/api/v1/villages/{}/enrolment-codes", tree.villages[1]);
    let (_, code) = call(app, Method::POST, &codes, Payload::None).await;
    let code = code["code"].as_str().expect("a code").to_owned();
    let cases = [
        ("Region", Method::GET, format!("/api/v1/regions/{}", tree.villages[0]), Payload::None),
        ("Agent", Method::GET, format!("/api/v1/agents/{agent}"), Payload::None),
        ("EnrolmentCode", Method::POST, codes.clone(), Payload::None),
        ("EnrolResponse", Method::POST, "/api/v1/enrol".to_owned(), enrol_request(&code, "pi-2")),
        ("Error", Method::GET, "/api/v1/regions/999999".to_owned(), Payload::None),
        ("Error", Method::POST, "/api/v1/directory/import".to_owned(), csv("level\n")),
    ];
    for (schema, method, path, payload) in cases {
        let (status, body) = call(app, method.clone(), &path, payload).await;
        let fields: BTreeSet<String> = body.as_object().unwrap_or_else(|| panic!("{body}")).keys().cloned().collect();
        let documented = schema_properties(&doc, schema);
        let undocumented: Vec<&String> = fields.difference(&documented).collect();
        assert!(undocumented.is_empty(), "{method} {path} ({status}) answers {undocumented:?}, not in schema {schema}");
    }
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let h = Harness::new();
    let (status, headers, bytes) = fetch(&h.app, request(Method::GET, "/metrics", Payload::None)).await;
    assert_eq!(status, StatusCode::OK);
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    let text = String::from_utf8(bytes.to_vec()).expect("UTF-8");
    assert!(text.contains("# TYPE dalaba_agents_online gauge"), "{text}");
    assert!(text.lines().any(|l| l == "dalaba_agents_online 0"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}

#[tokio::test]
async fn unknown_api_paths_are_json_404s() {
    let h = Harness::new();
    for (method, path) in
        [(Method::GET, "/api/v1/nope"), (Method::POST, "/api/v1/regions/1/children"), (Method::GET, "/api/v2/regions")]
    {
        let (status, body) = call(&h.app, method.clone(), path, Payload::None).await;
        if path.starts_with("/api/v1/") {
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
            let message = error_message(&body, "not_found");
            assert_eq!(message, format!("no API route {path}"));
        } else {
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        }
    }
}

#[tokio::test]
async fn controller_facts_name_the_pins() {
    let h = Harness::new();
    let (status, body) = call(&h.app, Method::GET, "/api/v1/controller", Payload::None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["cert_sha256"], h.state.settings.cert_fingerprint.as_str());
    assert_eq!(body["signing_key"]["public_key"], h.state.settings.signing_key.public_key.as_str());
    assert_eq!(body["protocol_version"], dalaba_protocol::PROTOCOL_VERSION);
}

#[tokio::test]
async fn wrong_methods_are_json_405s() {
    let h = Harness::new();
    for (method, path) in [(Method::PUT, "/api/v1/regions"), (Method::DELETE, "/api/v1/enrol")] {
        let (status, body) = call(&h.app, method.clone(), path, Payload::None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        let message = error_message(&body, "method_not_allowed");
        assert!(message.contains(path) && message.contains(method.as_str()), "{message}");
    }
}

#[tokio::test]
async fn the_dashboard_page_is_served() {
    let h = Harness::new();
    let (status, headers, bytes) = fetch(&h.app, request(Method::GET, "/", Payload::None)).await;
    assert_eq!(status, StatusCode::OK);
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("text/html; charset=utf-8"));
    assert!(String::from_utf8_lossy(&bytes).to_ascii_lowercase().starts_with("<!doctype html>"));
}

/// A WebSocket upgrade request for the agent link.
fn link_request(authorization: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri(LINK_PATH)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==");
    if let Some(value) = authorization {
        builder = builder.header(header::AUTHORIZATION, value);
    }
    builder.body(Body::empty()).expect("a valid request")
}

#[tokio::test]
async fn the_link_needs_an_enrolled_agents_credentials() {
    let h = Harness::new();
    let tree = seed(&h.app).await;
    let (agent, secret) = enrol(&h.app, tree.villages[0], "pi").await;
    let wrong = bearer_credentials(&agent, &"0".repeat(64));
    let unknown = bearer_credentials("ag-0000000000000000", &secret);
    let cases = [
        ("no credentials", None, "Bearer"),
        ("not bearer", Some("Basic cGk6cGk="), "Bearer"),
        ("no secret", Some("Bearer ag-1234"), "Bearer"),
        ("unknown agent", Some(unknown.as_str()), "unknown agent"),
        ("wrong secret", Some(wrong.as_str()), "wrong secret"),
    ];
    for (what, authorization, mentions) in cases {
        let (status, _, bytes) = fetch(&h.app, link_request(authorization)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("{what}: not JSON: {bytes:?}"));
        let message = error_message(&body, "unauthorized");
        assert!(message.contains(mentions), "{what}: {message}");
    }
    let resp = send(&h.app, link_request(Some(&bearer_credentials(&agent, &secret)))).await;
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS, "the right secret is accepted");
}
