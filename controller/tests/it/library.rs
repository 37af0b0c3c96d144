//! The audio library through the HTTP API: uploads of every format, the
//! refused inputs (and that they leave nothing behind), the streaming size
//! limit, text to speech, previews, categories, deletion, deduplication,
//! and agents' content downloads with `Range`.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use dalaba_audio::probe::{self, Format};
use dalaba_controller::library::LibrarySettings;
use dalaba_protocol::bearer_credentials;
use serde_json::{Value, json};

use crate::harness::{Harness, Payload, call, enrol, error_message, fetch, raw, request, seed};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../audio/tests/fixtures");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Half a second of a 440 Hz tone as 16-bit mono WAV, written here.
pub(crate) fn wav_tone() -> Vec<u8> {
    let rate: u32 = 16_000;
    let samples: Vec<i16> = (0..rate / 2)
        .map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 8000.0) as i16)
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

fn upload_path(filename: &str, category: &str) -> String {
    format!("/api/v1/library?title=%E9%80%9A%E7%9F%A5&category={category}&filename={filename}")
}

async fn upload(h: &Harness, filename: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    call(&h.app, Method::POST, &upload_path(filename, "legal"), raw("application/octet-stream", bytes)).await
}

/// Nothing of a refused upload remains: no item, no content file, no
/// temporary file.
fn assert_nothing_left(h: &Harness, items_before: usize) {
    let content = &h.state.library.content;
    assert_eq!(content.temp_count().expect("tmp"), 0, "a temporary file was left");
    assert_eq!(content.file_count().expect("files"), items_before * 2, "a content file was left");
    let items = h.state.store.library_items().expect("items");
    assert_eq!(items.len(), items_before, "a row was left");
}

async fn download(
    h: &Harness,
    sha: &str,
    auth: Option<&str>,
    range: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut builder = Request::builder().method(Method::GET).uri(format!("/api/v1/content/{sha}"));
    if let Some(auth) = auth {
        builder = builder.header(header::AUTHORIZATION, auth);
    }
    if let Some(range) = range {
        builder = builder.header(header::RANGE, range);
    }
    let (status, headers, body) = fetch(&h.app, builder.body(Body::empty()).expect("request")).await;
    (status, headers, body.to_vec())
}

#[tokio::test]
async fn every_format_becomes_an_item_with_an_opus_copy() {
    let h = Harness::new();
    let cases = [
        ("tone.mp3", fixture("tone.mp3"), "mp3"),
        ("tone.m4a", fixture("tone.m4a"), "m4a"),
        ("tone.flac", fixture("tone.flac"), "flac"),
        ("tone.ogg", fixture("tone.ogg"), "ogg-vorbis"),
        ("tone.opus", fixture("tone.opus"), "ogg-opus"),
        ("tone.wav", wav_tone(), "wav"),
    ];
    for (name, bytes, format) in cases {
        let size = bytes.len() as u64;
        let (status, item) = upload(&h, name, bytes).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {item}");
        assert_eq!(item["original"]["format"], format, "{name}");
        assert_eq!(item["original"]["size_bytes"], size, "{name}");
        assert_eq!(item["distribution"]["format"], "ogg-opus");
        assert_eq!(item["title"], "通知");
        assert_eq!(item["source"], "upload");
        let duration = item["duration_ms"].as_u64().expect("duration");
        assert!((400..=600).contains(&duration), "{name}: {duration} ms");
        let lufs = item["loudness_lufs"].as_f64().expect("loudness");
        let gain = item["gain_db"].as_f64().expect("gain");
        assert!(lufs < -10.0 && lufs > -30.0, "{name}: {lufs} LUFS");
        assert!(gain.is_finite(), "{name}");

        let sha = item["distribution"]["sha256"].as_str().expect("sha");
        let path = h.state.library.content.path(sha).expect("a content path");
        let file = std::fs::File::open(&path).expect("the distribution file exists");
        let copy = probe::analyse(file, Some("opus"), &probe::Settings::default()).expect("the copy decodes");
        assert_eq!((copy.format, copy.sample_rate, copy.channels), (Format::Opus, 48_000, 1), "{name}");
        let original = item["original"]["sha256"].as_str().expect("sha");
        assert!(h.state.library.content.path(original).expect("path").is_file(), "{name}: original kept");
    }
    let (status, list) = call(&h.app, Method::GET, "/api/v1/library", Payload::None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().map(Vec::len), Some(6));
    assert_eq!(h.state.library.content.temp_count().expect("tmp"), 0);
}

#[tokio::test]
async fn bad_inputs_are_refused_by_name_and_leave_nothing() {
    let h = Harness::new();
    let mut corrupt = fixture("tone.mp3");
    let middle = corrupt.len() / 3;
    for b in &mut corrupt[middle..] {
        *b = 0x5a;
    }
    let cases: [(&str, Vec<u8>, StatusCode, &str, &str); 3] = [
        ("empty.mp3", Vec::new(), StatusCode::UNPROCESSABLE_ENTITY, "empty_file", "the file is empty"),
        (
            "notes.mp3",
            "会议通知：明天上午九点在村委会开会。\n".repeat(20).into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_audio",
            "looks like text",
        ),
        ("corrupt.mp3", corrupt, StatusCode::UNPROCESSABLE_ENTITY, "", ""),
    ];
    for (name, bytes, expected, code, mentions) in cases {
        let (status, body) = upload(&h, name, bytes).await;
        assert_eq!(status, expected, "{name}: {body}");
        if code.is_empty() {
            let code = body["error"].as_str().unwrap_or_default();
            assert!(["corrupt_audio", "truncated_audio"].contains(&code), "{name}: {body}");
        } else {
            let message = error_message(&body, code);
            assert!(message.contains(mentions) && message.starts_with(name), "{name}: {message}");
        }
        assert_nothing_left(&h, 0);
    }
}

#[tokio::test]
async fn the_size_limit_holds_while_streaming() {
    let h = Harness::with_library(LibrarySettings { max_upload_bytes: 10_000, ..LibrarySettings::default() });
    // Declared too large: refused before a byte is read.
    let mut req = request(Method::POST, &upload_path("big.wav", "legal"), raw("audio/wav", vec![0; 10_001]));
    req.headers_mut().insert(header::CONTENT_LENGTH, "10001".parse().expect("header"));
    let (status, _, bytes) = fetch(&h.app, req).await;
    let body: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(error_message(&body, "too_large"), "file is 10001 bytes; the limit is 10000 bytes");
    // No length declared (a chunked body): refused when the count passes the limit.
    let chunks = futures_util::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(vec![0u8; 1000])));
    let req = Request::builder()
        .method(Method::POST)
        .uri(upload_path("big.wav", "legal"))
        .body(Body::from_stream(chunks))
        .expect("request");
    let (status, _, bytes) = fetch(&h.app, req).await;
    let body: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(error_message(&body, "too_large"), "file is larger than the limit of 10000 bytes");
    assert_nothing_left(&h, 0);
    let (status, _) = upload(&h, "tone.mp3", fixture("tone.mp3")).await;
    assert_eq!(status, StatusCode::CREATED, "a file under the limit passes");
}

#[tokio::test]
async fn the_same_bytes_twice_are_a_conflict_naming_the_item() {
    let h = Harness::new();
    let (_, first) = upload(&h, "tone.mp3", fixture("tone.mp3")).await;
    let (status, body) = upload(&h, "again.mp3", fixture("tone.mp3")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = error_message(&body, "duplicate");
    assert!(message.contains(&format!("item {}", first["id"])), "{message}");
    assert_nothing_left(&h, 1);
}

#[tokio::test]
async fn descriptions_are_checked_before_the_upload_is_read() {
    let h = Harness::new();
    let (status, body) =
        call(&h.app, Method::POST, &upload_path("tone.mp3", "sports"), raw("audio/mpeg", fixture("tone.mp3"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_message(&body, "bad_request").contains("category \"sports\" does not exist"));
    assert_eq!((&body["reason"], &body["params"]), (&json!("unknown_category"), &json!({"category": "sports"})));
    let path = "/api/v1/library?category=legal";
    let (status, body) = call(&h.app, Method::POST, path, raw("audio/mpeg", fixture("tone.mp3"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_message(&body, "bad_request").contains("title is required"));
    assert_eq!(body["reason"], "no_title", "{body}");
    // Too long, by reason and limit, for the page to word.
    let long = format!("/api/v1/library?category=legal&title={}", "长".repeat(201));
    let (status, body) = call(&h.app, Method::POST, &long, raw("audio/mpeg", fixture("tone.mp3"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!((&body["reason"], &body["params"]), (&json!("title_too_long"), &json!({"max": "200"})), "{body}");
    let blank = "/api/v1/library?category=legal&title=%20%20";
    let (_, body) = call(&h.app, Method::POST, blank, raw("audio/mpeg", fixture("tone.mp3"))).await;
    assert_eq!(body["reason"], "no_title", "{body}");
    assert_nothing_left(&h, 0);
}

#[tokio::test]
async fn items_are_edited_filtered_previewed_and_deleted() {
    let h = Harness::new();
    let (_, item) = upload(&h, "tone.mp3", fixture("tone.mp3")).await;
    let id = item["id"].as_i64().expect("id");
    let path = format!("/api/v1/library/{id}");
    let patch = json!({"title": "交通安全", "category": "traffic", "description": "国庆"});
    let (status, edited) = call(&h.app, Method::PATCH, &path, Payload::Json(patch)).await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!((edited["title"].as_str(), edited["category"].as_str()), (Some("交通安全"), Some("traffic")));
    let (_, traffic) = call(&h.app, Method::GET, "/api/v1/library?category=traffic", Payload::None).await;
    let (_, health) = call(&h.app, Method::GET, "/api/v1/library?category=health", Payload::None).await;
    assert_eq!((traffic.as_array().map(Vec::len), health.as_array().map(Vec::len)), (Some(1), Some(0)));

    let audio = format!("/api/v1/library/{id}/audio");
    let mut req = request(Method::GET, &audio, Payload::None);
    req.headers_mut().insert(header::RANGE, "bytes=0-99".parse().expect("header"));
    let (status, headers, bytes) = fetch(&h.app, req).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers[header::CONTENT_TYPE], "audio/mpeg");
    assert_eq!(bytes.as_ref(), &fixture("tone.mp3")[..100]);
    let (status, headers, _) =
        fetch(&h.app, request(Method::GET, &format!("{audio}?variant=distribution"), Payload::None)).await;
    assert_eq!((status, headers[header::CONTENT_TYPE].to_str().ok()), (StatusCode::OK, Some("audio/ogg")));

    let (status, _) = call(&h.app, Method::DELETE, &path, Payload::None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(&h.app, Method::GET, &path, Payload::None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_nothing_left(&h, 0);
}

#[tokio::test]
async fn categories_are_listed_and_created() {
    let h = Harness::new();
    let new = json!({"key": "fire", "label_zh": "消防安全", "label_en": "Fire safety"});
    let (status, created) = call(&h.app, Method::POST, "/api/v1/library/categories", Payload::Json(new.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, body) = call(&h.app, Method::POST, "/api/v1/library/categories", Payload::Json(new)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let bad = json!({"key": "Fire Safety", "label_zh": "消防", "label_en": "Fire"});
    let (status, body) = call(&h.app, Method::POST, "/api/v1/library/categories", Payload::Json(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, all) = call(&h.app, Method::GET, "/api/v1/library/categories", Payload::None).await;
    let keys: Vec<&str> = all.as_array().expect("list").iter().filter_map(|c| c["key"].as_str()).collect();
    assert_eq!(keys, ["fire", "health", "legal", "traffic"]);
    assert_eq!(all[2]["label_zh"], "法律法规");
    let (status, _) = upload_to(&h, "fire").await;
    assert_eq!(status, StatusCode::CREATED, "a custom category takes items");
}

async fn upload_to(h: &Harness, category: &str) -> (StatusCode, Value) {
    call(&h.app, Method::POST, &upload_path("tone.ogg", category), raw("audio/ogg", fixture("tone.ogg"))).await
}

#[tokio::test]
async fn text_to_speech_adds_a_spoken_item() {
    let h = Harness::new();
    let notice = json!({"text": "请注意交通安全，过马路走人行横道。", "title": "交通提示", "category": "traffic"});
    let (status, item) = call(&h.app, Method::POST, "/api/v1/library/tts", Payload::Json(notice)).await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    assert_eq!((item["source"].as_str(), item["original"]["format"].as_str()), (Some("tts"), Some("wav")));
    assert!(item["duration_ms"].as_u64().expect("duration") > 500, "{item}");

    let long = json!({"text": "长".repeat(5001), "title": "x", "category": "traffic"});
    let (status, body) = call(&h.app, Method::POST, "/api/v1/library/tts", Payload::Json(long)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_message(&body, "bad_text"), "the text is 5001 characters; the limit is 5000");
    assert_nothing_left(&h, 1);
}

#[tokio::test]
async fn a_missing_speech_program_is_a_503_naming_the_package() {
    let settings = LibrarySettings { tts_command: "/nonexistent/espeak-ng".into(), ..LibrarySettings::default() };
    let h = Harness::with_library(settings);
    let notice = json!({"text": "你好", "title": "问候", "category": "health"});
    let (status, body) = call(&h.app, Method::POST, "/api/v1/library/tts", Payload::Json(notice)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(error_message(&body, "tts_unavailable").contains("espeak-ng"));
    assert_nothing_left(&h, 0);
}

#[tokio::test]
async fn agents_download_content_with_ranges() {
    let h = Harness::new();
    let tree = seed(&h.app).await;
    let (agent, secret) = enrol(&h.app, tree.villages[0], "pi").await;
    let auth = bearer_credentials(&agent, &secret);
    let (_, item) = upload(&h, "tone.flac", fixture("tone.flac")).await;
    let sha = item["distribution"]["sha256"].as_str().expect("sha").to_owned();
    let whole = std::fs::read(h.state.library.content.path(&sha).expect("path")).expect("file");
    let len = whole.len();

    let (status, headers, body) = download(&h, &sha, Some(&auth), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_LENGTH], len.to_string().as_str());
    assert_eq!(body, whole);

    let (status, headers, body) = download(&h, &sha, Some(&auth), Some("bytes=100-")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers[header::CONTENT_RANGE], format!("bytes 100-{}/{len}", len - 1).as_str());
    assert_eq!(body, &whole[100..]);

    let (status, headers, _) = download(&h, &sha, Some(&auth), Some(&format!("bytes={len}-"))).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(headers[header::CONTENT_RANGE], format!("bytes */{len}").as_str());

    let original = item["original"]["sha256"].as_str().expect("sha");
    for unknown in [original, &"0".repeat(64), "not-a-hash"] {
        let (status, _, body) = download(&h, unknown, Some(&auth), None).await;
        let body: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
        error_message(&body, "not_found");
    }

    let wrong = bearer_credentials(&agent, &"0".repeat(64));
    for auth in [None, Some(wrong.as_str())] {
        let (status, _, body) = download(&h, &sha, auth, None).await;
        let body: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        error_message(&body, "unauthorized");
    }
}
