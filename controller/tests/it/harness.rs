//! One in-process controller per test, and the helpers every test shares.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;
use dalaba_controller::accounts::guard::Accounts;
use dalaba_controller::accounts::session::{self, CSRF_HEADER, SessionSettings};
use dalaba_controller::accounts::{NewUser, Role};
use dalaba_controller::alarms::{AlarmSettings, Alarms};
use dalaba_controller::api::{AppState, Settings, router};
use dalaba_controller::clock::Clock;
use dalaba_controller::distribution::Distribution;
use dalaba_controller::library::{Library, LibrarySettings};
use dalaba_controller::metrics::Metrics;
use dalaba_controller::presence::Presence;
use dalaba_controller::signing::CommandSigner;
use dalaba_controller::store::sqlite::SqliteStore;
use dalaba_protocol::state::PlaybackSettings;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Where every test's manual clock starts: 2025-06-15T15:06:40Z.
pub const T0: i64 = 1_750_000_000_000;
/// A stand-in for the TLS certificate's SHA-256; no certificate is made.
pub const FINGERPRINT: &str = "5e1f0a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7";
/// Default enrolment code lifetime in the test settings.
pub const CODE_TTL_MINUTES: u64 = 60;
/// The remote address every request appears to come from.
pub const PEER: ([u8; 4], u16) = ([192, 0, 2, 7], 40_000);

/// The header that makes a request go out without the harness's admin
/// session (to test what a caller without credentials gets).
pub const ANONYMOUS: &str = "x-test-anonymous";

/// A controller application with its state, as `app::start` would build it
/// minus the listener.
pub struct Harness {
    /// The whole HTTP application, every request logged in as the harness's
    /// county admin unless it carries credentials of its own (a cookie, an
    /// `Authorization` header) or [`ANONYMOUS`].
    pub app: Router,
    /// Its state, for reaching presence and the clock directly.
    pub state: AppState,
    // Holds the signing key until the test ends.
    _dir: tempfile::TempDir,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_library(LibrarySettings::default())
    }

    /// A harness whose audio library runs with `library` (e.g. a small
    /// upload limit).
    pub fn with_library(library: LibrarySettings) -> Harness {
        Harness::with(library, AlarmSettings::default())
    }

    /// A harness whose alarms run with `alarms` (e.g. a webhook).
    pub fn with_alarms(alarms: AlarmSettings) -> Harness {
        Harness::with(LibrarySettings::default(), alarms)
    }

    fn with(library: LibrarySettings, alarms: AlarmSettings) -> Harness {
        let dir = tempfile::tempdir().expect("temporary directory");
        let signer = CommandSigner::load_or_generate(dir.path()).expect("signing key");
        let settings = Settings {
            heartbeat_interval: Duration::from_secs(30),
            heartbeat_timeout: Duration::from_secs(90),
            max_connections: 100,
            code_ttl: Duration::from_secs(CODE_TTL_MINUTES * 60),
            cert_fingerprint: FINGERPRINT.to_owned(),
            signing_key: signer.public_info(),
            alerts: dalaba_controller::alerts::AlertSettings::default(),
        };
        let state = AppState {
            store: Arc::new(SqliteStore::open_in_memory().expect("in-memory store")),
            presence: Arc::new(Presence::new()),
            metrics: Arc::new(Metrics::new()),
            clock: Clock::manual(T0),
            settings: Arc::new(settings),
            library: Arc::new(Library::open(dir.path(), library).expect("content directory")),
            distribution: Arc::new(Distribution::new(PlaybackSettings::default())),
            live: Arc::new(dalaba_controller::live::Live::new(signer)),
            // The manual clock may be moved by days: sessions outlast it.
            accounts: Arc::new(Accounts::new(LONG_SESSIONS)),
            alarms: Arc::new(Alarms::new(alarms, T0)),
        };
        let (cookie, csrf) = admin_session(&state);
        let app = router(state.clone()).layer(axum::middleware::map_request(move |mut req: Request<Body>| {
            let (cookie, csrf) = (cookie.clone(), csrf.clone());
            async move {
                let h = req.headers_mut();
                if h.remove(ANONYMOUS).is_none()
                    && !h.contains_key(header::COOKIE)
                    && !h.contains_key(header::AUTHORIZATION)
                {
                    h.insert(header::COOKIE, cookie);
                    h.insert(CSRF_HEADER, csrf);
                }
                req
            }
        }));
        Harness { app, state, _dir: dir }
    }
}

/// Session lifetimes of the harness: a year.
pub const LONG_SESSIONS: SessionSettings =
    SessionSettings { idle: Duration::from_secs(365 * 24 * 3600), absolute: Duration::from_secs(365 * 24 * 3600) };

/// A county admin `admin` (who may start emergencies) and a session of
/// his: the cookie and CSRF headers.
fn admin_session(state: &AppState) -> (HeaderValue, HeaderValue) {
    account_session(state, "admin", Role::Admin, None, true, &LONG_SESSIONS)
}

/// An account `name` and a session of it with `lifetimes`, made in the
/// store (no password): the cookie and CSRF headers to send.
pub fn account_session(
    state: &AppState,
    name: &str,
    role: Role,
    region_id: Option<i64>,
    emergency: bool,
    lifetimes: &SessionSettings,
) -> (HeaderValue, HeaderValue) {
    let new = NewUser {
        name: name.into(),
        display_name: format!("{name} 测试"),
        role,
        region_id,
        emergency,
        // Never logged in with a password: the session is made here.
        password_hash: "-".into(),
        created_at_ms: T0,
        password_change_required: false,
    };
    let user = state.store.create_user(&new).expect("account");
    let (value, session) = session::new_session(user.id, T0, "192.0.2.7", lifetimes).expect("session");
    state.store.create_session(&session).expect("session stored");
    let cookie = HeaderValue::from_str(&format!("{}={value}", session::COOKIE_NAME)).expect("cookie header");
    let csrf = HeaderValue::from_str(&session.csrf).expect("csrf header");
    (cookie, csrf)
}

/// What a request carries.
pub enum Payload {
    /// No body and no content type.
    None,
    /// A JSON value, sent as `application/json`.
    Json(Value),
    /// Bytes with the given content type.
    Raw(&'static str, Vec<u8>),
}

/// Raw bytes with a content type.
pub fn raw(content_type: &'static str, bytes: impl Into<Vec<u8>>) -> Payload {
    Payload::Raw(content_type, bytes.into())
}

/// A CSV file.
pub fn csv(bytes: impl Into<Vec<u8>>) -> Payload {
    raw("text/csv", bytes)
}

/// Builds a request.
pub fn request(method: Method, path: &str, payload: Payload) -> Request<Body> {
    let builder = Request::builder().method(method).uri(path);
    let built = match payload {
        Payload::None => builder.body(Body::empty()),
        Payload::Json(v) => builder.header(header::CONTENT_TYPE, "application/json").body(Body::from(v.to_string())),
        Payload::Raw(content_type, bytes) => builder.header(header::CONTENT_TYPE, content_type).body(Body::from(bytes)),
    };
    built.expect("a valid request")
}

/// Sends one request as the server would hand it over: with the peer address
/// (as `server.rs` inserts it) and, for an upgrade request, hyper's upgrade
/// handle (one that never completes, as there is no connection).
pub async fn send(app: &Router, mut req: Request<Body>) -> Response {
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from(PEER)));
    if req.headers().contains_key(header::UPGRADE) {
        let on_upgrade = hyper::upgrade::on(&mut req);
        req.extensions_mut().insert(on_upgrade);
    }
    app.clone().oneshot(req).await.expect("the router is infallible")
}

/// Sends a request and reads the whole answer.
pub async fn fetch(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
    let resp = send(app, req).await;
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.expect("a readable body").to_bytes();
    (parts.status, parts.headers, bytes)
}

/// Calls the application. The body is parsed as JSON; a body that is not
/// JSON comes back as a JSON string, so a test can show it.
pub async fn call(app: &Router, method: Method, path: &str, payload: Payload) -> (StatusCode, Value) {
    let (status, _, bytes) = fetch(app, request(method, path, payload)).await;
    let body =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body)
}

/// Asserts that a body is the API's error shape, with this code, and
/// returns its message.
pub fn error_message<'a>(body: &'a Value, code: &str) -> &'a str {
    assert_eq!(body["error"].as_str(), Some(code), "error code in {body}");
    let message = body["message"].as_str().unwrap_or_else(|| panic!("no message in {body}"));
    assert!(!message.is_empty(), "empty message in {body}");
    message
}

/// Every region, in the API's order.
pub async fn regions(app: &Router) -> Value {
    let (status, body) = call(app, Method::GET, "/api/v1/regions", Payload::None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Creates a region and returns it.
pub async fn create(app: &Router, new: Value) -> Value {
    let (status, body) = call(app, Method::POST, "/api/v1/regions", Payload::Json(new.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "creating {new}: {body}");
    body
}

/// A region's id.
pub fn id(region: &Value) -> i64 {
    region["id"].as_i64().unwrap_or_else(|| panic!("no id in {region}"))
}

/// Ids of the seeded directory.
pub struct Seeded {
    pub county: i64,
    pub township: i64,
    pub villages: [i64; 2],
}

/// A county with one township of two villages.
pub async fn seed(app: &Router) -> Seeded {
    let county = id(&create(app, json!({"level": "county", "name": "泾川县", "code": "620821000000"})).await);
    let township =
        id(&create(app, json!({"level": "township", "parent_id": county, "name": "城关镇", "code": "620821100000"}))
            .await);
    let mut villages = [0; 2];
    for (i, (name, code)) in [("王家沟村", "620821100200"), ("李家村", "620821100201")].into_iter().enumerate() {
        villages[i] =
            id(&create(app, json!({"level": "village", "parent_id": township, "name": name, "code": code})).await);
    }
    Seeded { county, township, villages }
}

/// Creates an enrolment code for a village with the default lifetime.
pub async fn enrolment_code(app: &Router, village: i64) -> String {
    let path = format!("/api/v1/villages/{village}/enrolment-codes");
    let (status, body) = call(app, Method::POST, &path, Payload::None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["code"].as_str().unwrap_or_else(|| panic!("no code in {body}")).to_owned()
}

/// The body of `POST /api/v1/enrol`.
pub fn enrol_request(code: &str, hostname: &str) -> Payload {
    Payload::Json(json!({
        "code": code,
        "hostname": hostname,
        "agent_version": "0.1.0",
        "hardware": {
            "model": "Raspberry Pi 4 Model B",
            "arch": "aarch64",
            "os": "Debian 12",
            "audio_output": "hw:0",
            "amplifier_driver": "modbus-rtu"
        }
    }))
}

/// Enrols an agent for a village; returns its id and secret.
pub async fn enrol(app: &Router, village: i64, hostname: &str) -> (String, String) {
    let code = enrolment_code(app, village).await;
    let (status, body) = call(app, Method::POST, "/api/v1/enrol", enrol_request(&code, hostname)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let field = |name: &str| body[name].as_str().unwrap_or_else(|| panic!("no {name} in {body}")).to_owned();
    (field("agent_id"), field("secret"))
}
