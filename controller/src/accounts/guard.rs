//! The middleware in front of every API route: it authenticates the caller
//! (a session cookie or an API token), checks the CSRF token of a
//! state-changing request made with a cookie, checks the route's [`Need`]
//! against the caller ([`Principal::allows`]), hands the [`Principal`] to
//! the handler, and appends one audit record for every state-changing
//! request, whatever its outcome. Handlers never decide who may call them;
//! those that act on part of the region tree ask the principal's region.
//!
//! Before the first account exists, a caller without credentials from the
//! controller's own host (loopback) acts as [`Principal::Local`], with every
//! right (the first-run state: the demo, a fresh install being set up);
//! from anywhere else it is refused with how to create the first admin.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::audit::NewAuditRecord;
use super::policy::{self, Need, Principal};
use super::session::{self, CSRF_HEADER, SessionSettings, StoredSession, TOUCH_EVERY_MS};
use crate::api::{ApiError, AppState};
use crate::tokens::constant_time_eq;

/// Login attempts one address may make in [`LOGIN_WINDOW_MS`].
pub const LOGIN_ATTEMPTS: usize = 10;
/// The window of the login rate limit.
pub const LOGIN_WINDOW_MS: i64 = 5 * 60 * 1000;
/// Addresses the limiter remembers at most (then it forgets the oldest).
const LIMITER_ADDRESSES: usize = 10_000;

/// Accounts' run-time state: session lifetimes and the login rate limit.
#[derive(Debug, Default)]
pub struct Accounts {
    /// Session lifetimes.
    pub sessions: SessionSettings,
    attempts: Mutex<HashMap<IpAddr, VecDeque<i64>>>,
    /// An account exists (once true, for good: accounts are disabled,
    /// never deleted).
    has_accounts: AtomicBool,
}

impl Accounts {
    /// With these session lifetimes.
    pub fn new(sessions: SessionSettings) -> Accounts {
        Accounts { sessions, ..Accounts::default() }
    }

    /// Whether any account exists yet (the first-run state ends with the
    /// first one).
    async fn any_account(&self, st: &AppState) -> Result<bool, ApiError> {
        if self.has_accounts.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let any = !st.db(|s| s.users()).await?.is_empty();
        if any {
            self.has_accounts.store(true, Ordering::Relaxed);
        }
        Ok(any)
    }

    /// Counts a login attempt from `ip`; `Err(seconds to wait)` when it is
    /// one too many.
    pub fn login_attempt(&self, ip: Option<IpAddr>, now_ms: i64) -> Result<(), i64> {
        let Some(ip) = ip else { return Ok(()) };
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        if attempts.len() >= LIMITER_ADDRESSES {
            attempts.retain(|_, times| times.back().is_some_and(|&t| now_ms - t < LOGIN_WINDOW_MS));
        }
        let times = attempts.entry(ip).or_default();
        while times.front().is_some_and(|&t| now_ms - t >= LOGIN_WINDOW_MS) {
            times.pop_front();
        }
        if times.len() >= LOGIN_ATTEMPTS {
            let oldest = times.front().copied().unwrap_or(now_ms);
            return Err((oldest + LOGIN_WINDOW_MS - now_ms).max(1000) / 1000);
        }
        times.push_back(now_ms);
        Ok(())
    }
}

/// Who called, and how: a session (with its CSRF token) or a token.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The principal.
    pub principal: Principal,
    /// The session, when the caller came with a cookie.
    pub session: Option<StoredSession>,
}

/// The caller's address, when the server knows it.
pub fn peer_ip(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// The middleware (see the module documentation).
pub async fn guard(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route =
        req.extensions().get::<MatchedPath>().map_or_else(|| req.uri().path().to_owned(), |m| m.as_str().to_owned());
    // The path as the caller sent it: inside the nested `/api/v1` router
    // the request's own URI has lost the prefix.
    let path = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| req.uri().path().to_owned(), |u| u.path().to_owned());
    let ip = peer_ip(req.extensions());
    let need = policy::need(&method, &route);
    let audited = policy::changes_state(&method, &route);
    let record = |actor: String, kind: &str, status: StatusCode, detail: String| NewAuditRecord {
        at_ms: st.clock.now_ms(),
        actor,
        actor_kind: kind.to_owned(),
        ip: ip.map(|i| i.to_string()).unwrap_or_default(),
        action: policy::action(&method, &route),
        method: method.to_string(),
        path: path.clone(),
        status: status.as_u16(),
        village_id: village_of(&route, &path),
        detail,
    };
    if need == Need::Public {
        let response = next.run(req).await;
        // Login writes its own record (it knows the name and the outcome);
        // an enrolment is the agent's, proven by its one-time code.
        if audited && route.ends_with("/enrol") {
            append(&st, record("agent".into(), "agent", response.status(), String::new())).await;
        }
        return response;
    }
    // A WebSocket handshake cannot carry the CSRF header: the microphone
    // socket sends it as `?csrf=`.
    let query_csrf = route.ends_with("/microphone").then(|| query_value(req.uri().query(), "csrf")).flatten();
    let caller = match authenticate(&st, req.headers(), audited, ip, query_csrf.as_deref()).await {
        Ok(caller) => caller,
        Err((error, clear)) => {
            if audited {
                append(&st, record("anonymous".into(), "anonymous", error.status(), error.to_string())).await;
            }
            let mut response = error.into_response();
            if clear && let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            return response;
        }
    };
    let principal = caller.principal.clone();
    if !principal.allows(need) {
        st.metrics.error("forbidden");
        let error = ApiError::Coded {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: policy::refusal(&principal, need),
        };
        if audited {
            append(&st, record(principal.actor(), principal.kind(), error.status(), error.to_string())).await;
        }
        return error.into_response();
    }
    if let Principal::Token(token) = &principal
        && let Err(e) = crate::tokens::auth::record_use(&st, token).await
    {
        return e.into_response();
    }
    if let Err(error) = super::scope::check_route(&st, &principal, &route, &path).await {
        if audited {
            append(&st, record(principal.actor(), principal.kind(), error.status(), error.to_string())).await;
        }
        return error.into_response();
    }
    req.extensions_mut().insert(caller);
    let response = next.run(req).await;
    if audited {
        let detail = if response.status().is_success() { String::new() } else { "refused".to_owned() };
        append(&st, record(principal.actor(), principal.kind(), response.status(), detail)).await;
    }
    response
}

/// Appends an audit record; a failure is logged (the request has been
/// answered already) and counted.
pub async fn append(st: &AppState, record: NewAuditRecord) {
    let record = record.bounded();
    if let Err(e) = st.db(move |s| s.append_audit(&record)).await {
        st.metrics.error("audit");
        tracing::error!(error = %e, "cannot write the audit log");
    }
}

/// One parameter of a query string (tokens are base64url: no decoding).
fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
}

/// The village a route names (`/villages/{id}/…`), for the audit log. The
/// route is matched inside the nested `/api/v1` router (no prefix); the
/// path is the caller's (with it).
fn village_of(route: &str, path: &str) -> Option<i64> {
    let route = route.strip_prefix("/api/v1").unwrap_or(route);
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    if !route.starts_with("/villages/{id}") {
        return None;
    }
    path.strip_prefix("/villages/")?.split('/').next()?.parse().ok()
}

/// A session cookie or an API token; `Err((why, clear the cookie))`.
async fn authenticate(
    st: &AppState,
    headers: &HeaderMap,
    changes: bool,
    ip: Option<IpAddr>,
    query_csrf: Option<&str>,
) -> Result<Caller, (ApiError, bool)> {
    if headers.contains_key(header::AUTHORIZATION) {
        let token = crate::tokens::auth::lookup(st, headers).await.map_err(|e| (e, false))?;
        return Ok(Caller { principal: Principal::Token(token), session: None });
    }
    let Some(value) = session::cookie_value(headers) else {
        if !st.accounts.any_account(st).await.map_err(|e| (e, false))? {
            if ip.is_some_and(|ip| ip.is_loopback()) {
                return Ok(Caller { principal: Principal::Local, session: None });
            }
            return Err((
                ApiError::Unauthorized(
                    "no operator account exists yet: on the controller, create the first admin with \
                     `dalaba-controller user create NAME --role admin`, then log in"
                        .into(),
                ),
                false,
            ));
        }
        return Err((
            ApiError::Unauthorized("please log in (or send an API token: `Authorization: Bearer dlb_…`)".into()),
            false,
        ));
    };
    let id_hash = session::hash(&value);
    let lookup = id_hash.clone();
    let found = st.db(move |s| s.session(&lookup)).await.map_err(|e| (e, false))?;
    let Some(found) = found else {
        return Err((
            ApiError::Unauthorized("your session is not valid (logged out?); please log in again".into()),
            true,
        ));
    };
    let now = st.clock.now_ms();
    let ended = found
        .ended(now, &st.accounts.sessions)
        .or_else(|| found.user.disabled_at_ms.map(|_| "this account has been disabled; ask an administrator"));
    if let Some(why) = ended {
        let gone = id_hash.clone();
        let _ = st.db(move |s| s.delete_session(&gone)).await;
        return Err((ApiError::Unauthorized(why.into()), true));
    }
    if changes {
        let sent = headers
            .get(CSRF_HEADER)
            .map(HeaderValue::as_bytes)
            .or_else(|| query_csrf.map(str::as_bytes))
            .unwrap_or_default();
        if !constant_time_eq(sent, found.csrf.as_bytes()) {
            st.metrics.error("csrf");
            return Err((
                ApiError::Coded {
                    status: StatusCode::FORBIDDEN,
                    code: "csrf",
                    message: "this request lacks the page's CSRF token (X-CSRF-Token); reload the page and try again"
                        .into(),
                },
                false,
            ));
        }
    }
    if now - found.last_seen_ms >= TOUCH_EVERY_MS {
        let touched = id_hash.clone();
        st.db(move |s| s.touch_session(&touched, now)).await.map_err(|e| (e, false))?;
    }
    Ok(Caller { principal: Principal::User(found.user.clone()), session: Some(found) })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        // The guard put it there; a route outside the guard has none.
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| ApiError::Unauthorized("please log in".into()))
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        Caller::from_request_parts(parts, st).await.map(|c| c.principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_limit_counts_per_address_in_a_window() {
        let a = Accounts::default();
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let other: IpAddr = "10.1.2.4".parse().unwrap();
        for i in 0..LOGIN_ATTEMPTS as i64 {
            assert_eq!(a.login_attempt(Some(ip), i), Ok(()));
        }
        let wait = a.login_attempt(Some(ip), 1_000).unwrap_err();
        assert!((290..=300).contains(&wait), "{wait}");
        assert_eq!(a.login_attempt(Some(other), 1_000), Ok(()));
        assert_eq!(a.login_attempt(Some(ip), LOGIN_WINDOW_MS + 10), Ok(()), "the window moved on");
        assert_eq!(village_of("/api/v1/villages/{id}/plan", "/api/v1/villages/42/plan"), Some(42));
        assert_eq!(village_of("/villages/{id}/plan", "/api/v1/villages/42/plan"), Some(42), "as nested");
        assert_eq!(village_of("/api/v1/schedules/{id}", "/api/v1/schedules/42"), None);
        assert_eq!(query_value(Some("a=1&csrf=x-y_z"), "csrf"), Some("x-y_z".into()));
        assert_eq!(query_value(Some("csrfx=1"), "csrf"), None);
        assert_eq!(query_value(None, "csrf"), None);
    }
}
