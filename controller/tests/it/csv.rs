//! Directory export and import as CSV.

use axum::http::{Method, StatusCode, header};
use serde_json::json;

use crate::harness::{Harness, Payload, call, create, csv, error_message, fetch, regions, request, seed};

const HEADER: &str = "level,code,name,parent_code,latitude,longitude,tags\r\n";

/// `GET /api/v1/directory/export.csv`, checked and as text.
async fn export(h: &Harness) -> String {
    let (status, headers, bytes) =
        fetch(&h.app, request(Method::GET, "/api/v1/directory/export.csv", Payload::None)).await;
    assert_eq!(status, StatusCode::OK);
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("text/csv; charset=utf-8"));
    String::from_utf8(bytes.to_vec()).expect("the export is UTF-8")
}

#[tokio::test]
async fn importing_the_export_changes_nothing() {
    let h = Harness::new();
    let tree = seed(&h.app).await;
    let path = format!("/api/v1/regions/{}", tree.villages[1]);
    let tagged = json!({"latitude": 35.123456789, "longitude": 107.0, "tags": ["flood-risk", "防汛"]});
    let (status, _) = call(&h.app, Method::PATCH, &path, Payload::Json(tagged)).await;
    assert_eq!(status, StatusCode::OK);
    let before = regions(&h.app).await;

    let text = export(&h).await;
    assert!(text.starts_with(&format!("\u{feff}{HEADER}")), "{text}");
    assert_eq!(text.lines().count(), 5, "{text}");
    let (status, body) = call(&h.app, Method::POST, "/api/v1/directory/import", csv(text)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"created": 0, "updated": 0, "unchanged": 4}));
    assert_eq!(regions(&h.app).await, before);
}

#[tokio::test]
async fn import_creates_and_updates_by_code() {
    let h = Harness::new();
    seed(&h.app).await;
    let file = format!(
        "{HEADER}township,620821100000,城关镇新,620821000000,,,\r\n\
         village,620821100202,张家村,620821100000,35.3,107.4,hill\r\n"
    );
    let (status, body) = call(&h.app, Method::POST, "/api/v1/directory/import", csv(file)).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"created": 1, "updated": 1, "unchanged": 0})));
    let all = regions(&h.app).await;
    let names: Vec<&str> = all.as_array().expect("a list").iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["泾川县", "城关镇新", "王家沟村", "李家村", "张家村"]);
}

#[tokio::test]
async fn bad_rows_are_all_listed_and_nothing_is_imported() {
    let h = Harness::new();
    seed(&h.app).await;
    let before = regions(&h.app).await;
    let file = format!(
        "{HEADER}village,620821100202,张家村,620821100000,,,\r\n\
         town,620821100203,赵家村,620821100000,,,\r\n\
         village,620821100204,,620821100000,,,\r\n\
         village,620821100205,孙家村,620821000000,,,\r\n\
         village,620821100206,周家村,620821999000,,,\r\n\
         village,620821100207,吴家村,620821100000,91,107,\r\n"
    );
    let (status, body) = call(&h.app, Method::POST, "/api/v1/directory/import", csv(file)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    error_message(&body, "csv_invalid");
    let lines: Vec<i64> =
        body["details"].as_array().expect("details").iter().filter_map(|d| d["line"].as_i64()).collect();
    assert_eq!(lines, [3, 4, 5, 6, 7], "{body}");
    for detail in body["details"].as_array().expect("details") {
        assert!(detail["message"].as_str().is_some_and(|m| !m.is_empty()), "{detail}");
    }
    assert_eq!(regions(&h.app).await, before, "the good row must not be imported alone");
}

#[tokio::test]
async fn whole_file_problems_are_refused() {
    let h = Harness::new();
    seed(&h.app).await;
    let before = regions(&h.app).await;
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("empty body", Vec::new(), "empty"),
        ("only a byte-order mark", "\u{feff}\r\n".into(), "empty"),
        ("header only", HEADER.into(), "no rows"),
        ("wrong header", b"level,code,name\r\ncounty,620821000000,x\r\n".to_vec(), "header"),
        ("not UTF-8", [HEADER.as_bytes(), b"county,620821000000,\xe6\xb3,,,,\r\n"].concat(), "UTF-8"),
    ];
    for (what, bytes, mentions) in cases {
        let (status, body) = call(&h.app, Method::POST, "/api/v1/directory/import", csv(bytes)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {body}");
        let message = error_message(&body, "csv_invalid");
        assert!(message.contains(mentions), "{what}: {message}");
    }
    assert_eq!(regions(&h.app).await, before);
}

#[tokio::test]
async fn formula_looking_names_are_exported_inert_and_round_trip() {
    let h = Harness::new();
    let tree = seed(&h.app).await;
    let name = "=cmd|' /C calc'!A0";
    let new = json!({"level": "village", "parent_id": tree.township, "name": name, "code": "620821100202"});
    create(&h.app, new).await;
    let before = regions(&h.app).await;

    let text = export(&h).await;
    let row = text.lines().find(|l| l.contains("620821100202")).expect("the village's row");
    assert_eq!(row, "village,620821100202,'=cmd|' /C calc'!A0,620821100000,,,");

    let (status, body) = call(&h.app, Method::POST, "/api/v1/directory/import", csv(text)).await;
    assert_eq!((status, &body["created"], &body["updated"]), (StatusCode::OK, &json!(0), &json!(0)), "{body}");
    let after = regions(&h.app).await;
    assert_eq!(after, before);
    assert!(after.as_array().expect("a list").iter().any(|r| r["name"] == name), "the `'` is not kept");
}
