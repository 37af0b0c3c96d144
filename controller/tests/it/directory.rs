//! Region CRUD through the API, and inputs the API must refuse.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Harness, Payload, call, create, enrol, error_message, id, raw, regions, seed};

#[tokio::test]
async fn regions_are_created_read_listed_by_code_patched_and_deleted() {
    let h = Harness::new();
    let app = &h.app;
    let county = create(app, json!({"level": "county", "name": " 泾川县 ", "code": "620821000000"})).await;
    assert_eq!(county["name"], "泾川县", "names are trimmed");
    assert_eq!((&county["parent_id"], &county["tags"]), (&Value::Null, &json!([])));
    // Created out of code order, so that the list's order is the store's doing.
    let east =
        create(app, json!({"level": "township", "parent_id": id(&county), "name": "玉都镇", "code": "620821101000"}))
            .await;
    let west =
        create(app, json!({"level": "township", "parent_id": id(&county), "name": "城关镇", "code": "620821100000"}))
            .await;
    let village = create(
        app,
        json!({
            "level": "village", "parent_id": id(&west), "name": "王家沟村", "code": "620821100200",
            "latitude": 35.33, "longitude": 107.37, "tags": ["防汛", "hill", "防汛"]
        }),
    )
    .await;
    assert_eq!(village["tags"], json!(["防汛", "hill"]), "tags are deduplicated");

    let (status, one) = call(app, Method::GET, &format!("/api/v1/regions/{}", id(&village)), Payload::None).await;
    assert_eq!((status, &one), (StatusCode::OK, &village));

    let codes: Vec<Value> = regions(app).await.as_array().expect("a list").iter().map(|r| r["code"].clone()).collect();
    assert_eq!(codes, [json!("620821000000"), json!("620821100000"), json!("620821100200"), json!("620821101000")]);

    let path = format!("/api/v1/regions/{}", id(&village));
    let (status, patched) =
        call(app, Method::PATCH, &path, Payload::Json(json!({"name": "王家沟", "tags": ["flood-risk"]}))).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        (&patched["name"], &patched["tags"], &patched["latitude"]),
        (&json!("王家沟"), &json!(["flood-risk"]), &json!(35.33))
    );
    let (status, cleared) =
        call(app, Method::PATCH, &path, Payload::Json(json!({"latitude": null, "longitude": null}))).await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert_eq!((&cleared["latitude"], &cleared["longitude"]), (&Value::Null, &Value::Null));
    assert_eq!(cleared["name"], "王家沟", "absent fields are kept");
    let (_, stored) = call(app, Method::GET, &path, Payload::None).await;
    assert_eq!(stored, cleared);

    let (status, _) = call(app, Method::DELETE, &format!("/api/v1/regions/{}", id(&east)), Payload::None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(app, Method::GET, &format!("/api/v1/regions/{}", id(&east)), Payload::None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    error_message(&body, "not_found");
    assert_eq!(regions(app).await.as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn a_region_with_children_or_agents_is_not_deleted() {
    let h = Harness::new();
    let app = &h.app;
    let tree = seed(app).await;
    enrol(app, tree.villages[0], "pi-wangjiagou").await;

    let (status, body) = call(app, Method::DELETE, &format!("/api/v1/regions/{}", tree.county), Payload::None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let message = error_message(&body, "conflict");
    assert!(message.contains("泾川县") && message.contains("1 child regions"), "{message}");

    let path = format!("/api/v1/regions/{}", tree.villages[0]);
    let (status, body) = call(app, Method::DELETE, &path, Payload::None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let message = error_message(&body, "conflict");
    assert!(message.contains("王家沟村") && message.contains("1 enrolled agents"), "{message}");
    assert_eq!(regions(app).await.as_array().map(Vec::len), Some(4), "nothing was deleted");
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_json_errors() {
    let h = Harness::new();
    let app = &h.app;
    seed(app).await;
    let patch = || Payload::Json(json!({"name": "x"}));
    let cases = [
        (Method::GET, "/api/v1/regions/999999", Payload::None, StatusCode::NOT_FOUND, "not_found", "999999"),
        (Method::PATCH, "/api/v1/regions/999999", patch(), StatusCode::NOT_FOUND, "not_found", "999999"),
        (Method::DELETE, "/api/v1/regions/999999", Payload::None, StatusCode::NOT_FOUND, "not_found", "999999"),
        (Method::GET, "/api/v1/regions/abc", Payload::None, StatusCode::BAD_REQUEST, "bad_request", "abc"),
        (Method::PATCH, "/api/v1/regions/abc", patch(), StatusCode::BAD_REQUEST, "bad_request", "abc"),
        (Method::DELETE, "/api/v1/regions/1.5", Payload::None, StatusCode::BAD_REQUEST, "bad_request", "1.5"),
        (
            Method::GET,
            "/api/v1/regions/99999999999999999999",
            Payload::None,
            StatusCode::BAD_REQUEST,
            "bad_request",
            "",
        ),
    ];
    for (method, path, payload, status, code, mentions) in cases {
        let (got, body) = call(app, method.clone(), path, payload).await;
        assert_eq!(got, status, "{method} {path}: {body}");
        let message = error_message(&body, code);
        assert!(message.contains(mentions), "{method} {path}: {message}");
    }
}

/// Sends one bad request and checks it is refused with a message naming the
/// problem.
async fn check(h: &Harness, what: &str, method: Method, path: &str, payload: Payload, status: u16, mentions: &str) {
    let (got, body) = call(&h.app, method, path, payload).await;
    assert_eq!(got.as_u16(), status, "{what}: {body}");
    assert!(body["error"].is_string(), "{what}: no error code in {body}");
    let message = body["message"].as_str().unwrap_or_else(|| panic!("{what}: no message in {body}"));
    assert!(message.contains(mentions), "{what}: `{message}` should mention `{mentions}`");
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let h = Harness::new();
    let app = &h.app;
    let tree = seed(app).await;
    let before = regions(app).await;
    let village = |fields: Value| {
        let mut new = json!({"level": "village", "parent_id": tree.township, "name": "张家村", "code": "620821100202"});
        for (k, v) in fields.as_object().expect("an object") {
            new[k] = v.clone();
        }
        Payload::Json(new)
    };
    let post = Method::POST;
    let regions_path = "/api/v1/regions";
    let village_path = format!("/api/v1/regions/{}", tree.villages[0]);
    let village_path = village_path.as_str();
    let cases = [
        ("malformed JSON", post.clone(), regions_path, raw("application/json", "{\"level\": \"vil"), 400, "EOF"),
        ("wrong content type", post.clone(), regions_path, raw("text/plain", "{}"), 415, "application/json"),
        ("no body", post.clone(), regions_path, Payload::None, 415, "application/json"),
        ("unknown field", post.clone(), regions_path, village(json!({"colour": "red"})), 422, "unknown field `colour`"),
        (
            "missing field",
            post.clone(),
            regions_path,
            Payload::Json(json!({"name": "x", "code": "620821100202"})),
            422,
            "missing field `level`",
        ),
        ("unknown level", post.clone(), regions_path, village(json!({"level": "town"})), 422, "unknown variant `town`"),
        (
            "short code",
            post.clone(),
            regions_path,
            village(json!({"code": "62082110020"})),
            400,
            "code must be exactly 12 digits",
        ),
        (
            "letters in code",
            post.clone(),
            regions_path,
            village(json!({"code": "62082110020x"})),
            400,
            "code must be exactly 12 digits",
        ),
        ("empty name", post.clone(), regions_path, village(json!({"name": "  "})), 400, "name must not be empty"),
        (
            "overlong name",
            post.clone(),
            regions_path,
            village(json!({"name": "村".repeat(101)})),
            400,
            "101 characters",
        ),
        (
            "control character",
            post.clone(),
            regions_path,
            village(json!({"name": "张\u{7}家村"})),
            400,
            "control characters",
        ),
        (
            "latitude 91",
            post.clone(),
            regions_path,
            village(json!({"latitude": 91.0, "longitude": 107.0})),
            400,
            "latitude 91",
        ),
        (
            "half coordinates",
            post.clone(),
            regions_path,
            village(json!({"latitude": 35.0})),
            400,
            "latitude and longitude",
        ),
        ("bad tag", post.clone(), regions_path, village(json!({"tags": ["a b"]})), 400, "tag `a b`"),
        (
            "village under the county",
            post.clone(),
            regions_path,
            village(json!({"parent_id": tree.county})),
            400,
            "the parent of a village must be a township",
        ),
        (
            "unknown parent",
            post.clone(),
            regions_path,
            village(json!({"parent_id": 999999})),
            400,
            "region 999999 does not exist",
        ),
        (
            "county with a parent",
            post.clone(),
            regions_path,
            village(json!({"level": "county"})),
            400,
            "a county has no parent",
        ),
        (
            "duplicate code",
            post.clone(),
            regions_path,
            village(json!({"code": "620821100201"})),
            409,
            "code 620821100201 is already used",
        ),
        (
            "body over 2 MiB",
            post.clone(),
            regions_path,
            village(json!({"name": "x".repeat(3 << 20)})),
            413,
            "length limit",
        ),
        (
            "patch: unknown field",
            Method::PATCH,
            village_path,
            Payload::Json(json!({"level": "county"})),
            422,
            "unknown field `level`",
        ),
        (
            "patch: empty name",
            Method::PATCH,
            village_path,
            Payload::Json(json!({"name": ""})),
            400,
            "name must not be empty",
        ),
        (
            "patch: duplicate code",
            Method::PATCH,
            village_path,
            Payload::Json(json!({"code": "620821100201"})),
            409,
            "already used",
        ),
        (
            "patch: longitude 181",
            Method::PATCH,
            village_path,
            Payload::Json(json!({"latitude": 35.0, "longitude": 181.0})),
            400,
            "longitude 181",
        ),
        (
            "patch: half coordinates",
            Method::PATCH,
            village_path,
            Payload::Json(json!({"latitude": 35.0})),
            400,
            "latitude and longitude",
        ),
        ("patch: malformed JSON", Method::PATCH, village_path, raw("application/json", "{"), 400, "EOF"),
    ];
    for (what, method, path, payload, status, mentions) in cases {
        check(&h, what, method, path, payload, status, mentions).await;
    }
    assert_eq!(regions(app).await, before, "a refused request changed the directory");
}
