//! The JSON API under `/api/v1`, the agent link, metrics and pages.
//!
//! # Layout
//! - `error`: the one error type every handler returns.
//! - `directory`: regions, CSV import and export.
//! - `agents`: agents, enrolment codes, enrolment.
//! - `events`: the server-sent event stream for dashboards.
//! - `days`: the county's calendar (a `day` parameter, spans of days).
//! - `plays`: proof of play per village and day.
//! - `reports`: service reports (JSON, CSV, printable page) over a month or
//!   days, limited to the caller's township.
//! - `library`: the audio library (uploads, text to speech, previews);
//!   `content`: agents' downloads of distribution files by SHA-256.
//! - `schedules`: schedules, quiet hours, schedule previews and the plan views.
//! - `live`: live and emergency sessions and the microphone WebSocket.
//! - `alerts`: CAP alerts from upstream systems (API token, emergency scope).
//! - `alarms`: operator alarms (`crate::alarms`), their list and
//!   acknowledgements, limited to the caller's township.
//! - `accounts`: login sessions, accounts, API tokens, the audit log; every
//!   route is behind [`crate::accounts::guard`].
//! - `openapi`: the OpenAPI document.
//! - [`crate::link`]: the agent WebSocket (mounted here).

mod accounts;
mod agents;
mod alarms;
mod alerts;
mod content;
pub(crate) mod days;
mod directory;
mod error;
mod events;
mod library;
mod live;
mod openapi;
mod plays;
mod reports;
mod schedules;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, patch, post};
use dalaba_protocol::enrol::SigningKeyInfo;

pub use agents::{new_enrolment_code, secret_hash};
pub use error::{ApiError, Detail};
pub use openapi::OPENAPI;

use crate::clock::Clock;
use crate::distribution::Distribution;
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::store::{Store, StoreError};

/// Settings the handlers need, derived from the configuration at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Heartbeat interval announced to agents.
    pub heartbeat_interval: Duration,
    /// An agent silent this long is disconnected and shown offline.
    pub heartbeat_timeout: Duration,
    /// Most agent links held at once.
    pub max_connections: usize,
    /// Default enrolment code lifetime.
    pub code_ttl: Duration,
    /// SHA-256 of the controller's TLS certificate; empty when serving plain
    /// HTTP.
    pub cert_fingerprint: String,
    /// The command-signing public key agents pin.
    pub signing_key: SigningKeyInfo,
    /// How CAP alerts are received and broadcast.
    pub alerts: crate::alerts::AlertSettings,
}

/// Shared state of every handler. Cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Who is online.
    pub presence: Arc<Presence>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Wall time.
    pub clock: Clock,
    /// Settings.
    pub settings: Arc<Settings>,
    /// The audio library's files and settings.
    pub library: Arc<crate::library::Library>,
    /// Every agent's desired state.
    pub distribution: Arc<Distribution>,
    /// Live and emergency sessions.
    pub live: Arc<crate::live::Live>,
    /// Operator sessions and the login rate limit.
    pub accounts: Arc<crate::accounts::guard::Accounts>,
    /// Operator alarms.
    pub alarms: Arc<crate::alarms::Alarms>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl AppState {
    /// Runs a store call on the blocking pool.
    pub async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(e) => Err(ApiError::Internal(format!("store task failed: {e}"))),
        }
    }
}

/// Largest CSV accepted by the directory import.
pub const MAX_CSV_BYTES: usize = 16 * 1024 * 1024;

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/session", get(accounts::whoami).post(accounts::login).delete(accounts::logout))
        .route("/session/password", post(accounts::change_password))
        .route("/users", get(accounts::users).post(accounts::create_user))
        .route("/users/{id}", patch(accounts::update_user))
        .route("/tokens", get(accounts::list_tokens).post(accounts::create_token))
        .route("/tokens/{id}", delete(accounts::revoke_token))
        .route("/audit", get(accounts::audit))
        .route("/audit/export.csv", get(accounts::audit_csv))
        .route("/reports", get(reports::report))
        .route("/reports/villages.csv", get(reports::villages_csv))
        .route("/reports/monthly.html", get(reports::monthly_html))
        .route("/controller", get(agents::controller_info))
        .route("/regions", get(directory::list).post(directory::create))
        .route("/regions/{id}", get(directory::one).patch(directory::update).delete(directory::remove))
        .route("/directory/export.csv", get(directory::export_csv))
        .route("/directory/import", post(directory::import_csv).layer(DefaultBodyLimit::max(MAX_CSV_BYTES)))
        .route("/villages/{id}/enrolment-codes", post(agents::create_code))
        .route("/villages/{id}/plays", get(plays::of_village_day))
        .route("/villages/{id}/plan", get(schedules::village_day))
        .route("/schedules", get(schedules::list).post(schedules::create))
        .route("/schedules/preview", post(schedules::preview))
        .route("/schedules/{id}", get(schedules::one).put(schedules::replace).delete(schedules::remove))
        .route("/quiet-hours", get(schedules::quiet_hours).put(schedules::set_quiet_hours))
        .route("/plan", get(schedules::plan_view))
        .route("/enrol", post(agents::enrol))
        .route("/agents", get(agents::list))
        .route("/agents/{id}", get(agents::one))
        .route("/agents/{id}", delete(agents::remove))
        .route("/dashboard", get(agents::dashboard))
        .route("/events", get(events::stream))
        .route("/link", get(crate::link::upgrade))
        .route("/library", get(library::list).post(library::upload).layer(DefaultBodyLimit::disable()))
        .route("/library/tts", post(library::speak))
        .route("/library/categories", get(library::categories).post(library::create_category))
        .route("/library/{id}", get(library::one).patch(library::update).delete(library::remove))
        .route("/library/{id}/audio", get(library::audio))
        .route("/content/{sha256}", get(content::download))
        .route("/live", get(live::list).post(live::start))
        .route("/live/{id}", get(live::one))
        .route("/live/{id}/stop", post(live::stop))
        .route("/live/{id}/microphone", get(live::microphone))
        .route("/alerts", post(alerts::receive))
        .route("/alarms", get(alarms::list))
        .route("/alarms/{id}/acknowledge", post(alarms::acknowledge))
        // After every route: the guard sees each one's matched path.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::accounts::guard::guard))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed);
    Router::new().nest("/api/v1", api).route("/metrics", get(metrics)).merge(crate::web::routes()).with_state(state)
}

async fn metrics(axum::extract::State(st): axum::extract::State<AppState>) -> impl axum::response::IntoResponse {
    st.metrics.agents_online.set(st.presence.online_count() as i64);
    (
        [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        st.metrics.render(),
    )
}
