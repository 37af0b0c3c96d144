//! Logging in and out, accounts, API tokens and the audit log
//! (`crate::accounts`). Who may call each route is the guard's business;
//! these handlers do the work.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::accounts::audit::{AuditFilter, NewAuditRecord};
use crate::accounts::guard::{self, Caller};
use crate::accounts::policy::Principal;
use crate::accounts::{self, NewUser, Role, User, UserPatch, session};
use crate::directory::Level;
use crate::tokens::{self, Scope};

/// `POST /session` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    name: String,
    password: String,
}

/// `POST /session`: checks a name and password and starts a session.
/// Refusals never say whether the name exists.
pub async fn login(State(st): State<AppState>, request: axum::extract::Request) -> Result<Response, ApiError> {
    let ip = guard::peer_ip(request.extensions());
    let now = st.clock.now_ms();
    let ip_text = ip.map(|i| i.to_string()).unwrap_or_default();
    let body = axum::body::to_bytes(request.into_body(), 16 * 1024).await;
    let parsed = match &body {
        Ok(bytes) => serde_json::from_slice::<Login>(bytes)
            .map_err(|e| format!("the login request must be {{\"name\", \"password\"}}: {e}")),
        Err(_) => Err("the login request is too large".to_owned()),
    };
    let Login { name, password } = match parsed {
        Ok(login) => login,
        Err(why) => {
            let record = NewAuditRecord {
                at_ms: now,
                actor: "anonymous".into(),
                actor_kind: "anonymous".into(),
                ip: ip_text,
                action: "login.failed".into(),
                method: "POST".into(),
                path: "/api/v1/session".into(),
                status: 400,
                village_id: None,
                detail: why.clone(),
            };
            guard::append(&st, record).await;
            return Err(ApiError::BadRequest(why));
        }
    };
    let audit = |action: &str, status: StatusCode, actor: String, detail: String| NewAuditRecord {
        at_ms: now,
        actor,
        actor_kind: "user".into(),
        ip: ip_text.clone(),
        action: action.into(),
        method: "POST".into(),
        path: "/api/v1/session".into(),
        status: status.as_u16(),
        village_id: None,
        detail,
    };
    if let Err(wait) = st.accounts.login_attempt(ip, now) {
        let record =
            audit("login.failed", StatusCode::TOO_MANY_REQUESTS, format!("user:{name}"), "rate limited".into());
        guard::append(&st, record).await;
        let message = format!("too many login attempts from this address; try again in {wait} s");
        let mut response =
            ApiError::Coded { status: StatusCode::TOO_MANY_REQUESTS, code: "rate_limited", message }.into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(response);
    }
    let lookup = name.clone();
    let found = if accounts::check_name(&name).is_ok() { st.db(move |s| s.user_by_name(&lookup)).await? } else { None };
    let verified = {
        let (stored, password) = (found.as_ref().map(|(_, h)| h.clone()), password.clone());
        // Hashing is slow by design: off the async threads. An unknown name
        // is checked against a dummy hash so it takes as long.
        tokio::task::spawn_blocking(move || {
            accounts::verify_password(&password, stored.as_deref().unwrap_or_else(|| accounts::dummy_hash()))
        })
        .await
        .unwrap_or(false)
    };
    let refused = |why: String| ApiError::Unauthorized(why);
    let Some((user, _)) = found else {
        guard::append(
            &st,
            audit("login.failed", StatusCode::UNAUTHORIZED, format!("user:{name}"), "unknown name".into()),
        )
        .await;
        return Err(refused("wrong name or password".into()));
    };
    if let Some(why) = user.login_refusal(now) {
        guard::append(&st, audit("login.failed", StatusCode::UNAUTHORIZED, format!("user:{}", user.name), why.clone()))
            .await;
        return Err(refused(why));
    }
    let id = user.id;
    if !verified {
        st.db(move |s| s.record_login(id, false, now)).await?;
        guard::append(
            &st,
            audit("login.failed", StatusCode::UNAUTHORIZED, format!("user:{}", user.name), "wrong password".into()),
        )
        .await;
        return Err(refused("wrong name or password".into()));
    }
    st.db(move |s| s.record_login(id, true, now)).await?;
    let actor = format!("user:{}", user.name);
    let response = start_session(&st, user, &ip_text, now).await?;
    guard::append(&st, audit("login", StatusCode::OK, actor, String::new())).await;
    Ok(response)
}

/// `GET /session`: who is logged in, and the CSRF token for the page.
pub async fn whoami(caller: Caller) -> Json<Value> {
    match (&caller.principal, &caller.session) {
        (Principal::User(user), Some(s)) => Json(json!({
            "kind": "user",
            "user": user,
            "csrf_token": s.csrf,
            "expires_at_ms": s.expires_at_ms,
        })),
        (principal, _) => Json(json!({"kind": principal.kind(), "actor": principal.actor(), "principal": principal})),
    }
}

/// `DELETE /session`: logs out.
pub async fn logout(State(st): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    if let Some(s) = caller.session {
        let id_hash = s.id_hash.clone();
        st.db(move |store| store.delete_session(&id_hash)).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// `POST /session/password` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /session/password`: the logged-in account changes its own
/// password. The current one must be given (a console left logged in is
/// not enough); a wrong one counts as a failed login. Every session of the
/// account ends and this one is replaced by a fresh session (new cookie,
/// new CSRF token), returned as `POST /session` returns it.
pub async fn change_password(
    State(st): State<AppState>,
    caller: Caller,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let (Principal::User(me), Some(_)) = (&caller.principal, &caller.session) else {
        return Err(ApiError::Coded {
            status: StatusCode::FORBIDDEN,
            code: "not_an_account",
            message: "only a logged-in account has a password to change (API tokens have none)".into(),
        });
    };
    let ip = guard::peer_ip(request.extensions()).map(|i| i.to_string()).unwrap_or_default();
    let bytes = axum::body::to_bytes(request.into_body(), 16 * 1024)
        .await
        .map_err(|_| ApiError::BadRequest("the request is too large".into()))?;
    let b: PasswordChange = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::BadRequest(format!("the request must be {{\"current_password\", \"new_password\"}}: {e}"))
    })?;
    let now = st.clock.now_ms();
    let name = me.name.clone();
    let Some((user, stored)) = st.db(move |s| s.user_by_name(&name)).await? else {
        return Err(ApiError::Unauthorized("this account no longer exists".into()));
    };
    // Locked by wrong passwords (here or at login): no more guesses until
    // the lock ends, even from a session that is still open.
    if let Some(why) = user.login_refusal(now) {
        return Err(ApiError::Coded { status: StatusCode::FORBIDDEN, code: "locked", message: why });
    }
    let (given, new_password) = (b.current_password, b.new_password);
    // Hashing is slow by design: off the async threads. `None`: the
    // current password is wrong.
    let hashed = tokio::task::spawn_blocking(move || {
        if !accounts::verify_password(&given, &stored) {
            return None;
        }
        Some(if given == new_password {
            Err(accounts::AccountError::SamePassword)
        } else {
            accounts::hash_password(&new_password)
        })
    })
    .await
    .map_err(|e| ApiError::Internal(format!("hashing task: {e}")))?;
    let id = user.id;
    let Some(hashed) = hashed else {
        st.db(move |s| s.record_login(id, false, now)).await?;
        return Err(ApiError::Coded {
            status: StatusCode::FORBIDDEN,
            code: "wrong_password",
            message: "the current password is wrong; the password was not changed".into(),
        });
    };
    let password_hash = hashed.map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let patch =
        UserPatch { password_hash: Some(password_hash), password_change_required: Some(false), ..UserPatch::default() };
    let user = st.db(move |s| s.update_user(id, &patch)).await?;
    start_session(&st, user, &ip, now).await
}

/// Starts a session for `user` and answers as `POST /session` does: the
/// account, the page's CSRF token, and the session cookie.
async fn start_session(st: &AppState, user: User, ip: &str, now: i64) -> Result<Response, ApiError> {
    let settings = st.accounts.sessions;
    let (cookie, new) = session::new_session(user.id, now, ip, &settings).map_err(ApiError::Internal)?;
    let csrf = new.csrf.clone();
    let expires_at_ms = new.expires_at_ms;
    st.db(move |s| s.create_session(&new)).await?;
    let body = json!({
        "user": user,
        "csrf_token": csrf,
        "expires_at_ms": expires_at_ms,
        "idle_timeout_s": settings.idle.as_secs(),
    });
    let mut response = Json(body).into_response();
    let set = HeaderValue::from_str(&session::set_cookie(&cookie, &settings))
        .map_err(|e| ApiError::Internal(format!("cookie: {e}")))?;
    response.headers_mut().insert(header::SET_COOKIE, set);
    Ok(response)
}

/// `GET /users`.
pub async fn users(State(st): State<AppState>) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(st.db(|s| s.users()).await?))
}

/// `POST /users` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    name: String,
    display_name: Option<String>,
    role: Role,
    #[serde(default)]
    region_id: Option<i64>,
    #[serde(default)]
    emergency: bool,
    password: String,
}

/// `POST /users`: creates an account.
pub async fn create_user(
    State(st): State<AppState>,
    body: Result<Json<NewUserBody>, JsonRejection>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let Json(b) = body?;
    let display_name = b.display_name.clone().unwrap_or_else(|| b.name.clone());
    let invalid = |e: accounts::AccountError| ApiError::BadRequest(e.to_string());
    accounts::check_name(&b.name).map_err(invalid)?;
    accounts::check_display_name(&display_name).map_err(invalid)?;
    let emergency = b.emergency || b.role == Role::Admin;
    accounts::check_role(b.role, b.region_id, emergency).map_err(invalid)?;
    check_region(&st, b.region_id).await?;
    let password = b.password;
    let hash = tokio::task::spawn_blocking(move || accounts::hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(format!("hashing task: {e}")))?
        .map_err(invalid)?;
    let new = NewUser {
        name: b.name,
        display_name,
        role: b.role,
        region_id: b.region_id,
        emergency,
        password_hash: hash,
        created_at_ms: st.clock.now_ms(),
        // The admin chose it: the holder is asked to choose their own.
        password_change_required: true,
    };
    let user = st.db(move |s| s.create_user(&new)).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// `PATCH /users/{id}` body; absent fields stay.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatchBody {
    display_name: Option<String>,
    role: Option<Role>,
    /// `null` makes the account county-wide.
    #[serde(default, deserialize_with = "some")]
    region_id: Option<Option<i64>>,
    emergency: Option<bool>,
    password: Option<String>,
    disabled: Option<bool>,
}

fn some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

/// `PATCH /users/{id}`: changes an account (its sessions end when what
/// they were granted changes).
pub async fn update_user(
    State(st): State<AppState>,
    caller: Principal,
    Path(id): Path<i64>,
    body: Result<Json<UserPatchBody>, JsonRejection>,
) -> Result<Json<User>, ApiError> {
    let Json(b) = body?;
    let Some(current) = st.db(move |s| s.user(id)).await? else {
        return Err(ApiError::NotFound(format!("account {id} not found")));
    };
    let invalid = |e: accounts::AccountError| ApiError::BadRequest(e.to_string());
    if let Some(name) = &b.display_name {
        accounts::check_display_name(name).map_err(invalid)?;
    }
    let role = b.role.unwrap_or(current.role);
    let region = b.region_id.unwrap_or(current.region_id);
    let emergency = b.emergency.unwrap_or(current.emergency) || role == Role::Admin;
    accounts::check_role(role, region, emergency).map_err(invalid)?;
    check_region(&st, region).await?;
    if let Principal::User(me) = &caller
        && me.id == id
        && (role != Role::Admin || b.disabled == Some(true))
    {
        return Err(ApiError::Conflict("you cannot take away your own admin role or disable yourself".into()));
    }
    // A password an admin sets for someone else is a reset: its holder is
    // asked to choose their own.
    let own = matches!(&caller, Principal::User(me) if me.id == id);
    let password_change_required = b.password.as_ref().map(|_| !own);
    let password_hash = match b.password {
        Some(p) => Some(
            tokio::task::spawn_blocking(move || accounts::hash_password(&p))
                .await
                .map_err(|e| ApiError::Internal(format!("hashing task: {e}")))?
                .map_err(invalid)?,
        ),
        None => None,
    };
    let now = st.clock.now_ms();
    let patch = UserPatch {
        display_name: b.display_name,
        role: b.role,
        region_id: b.region_id,
        emergency: (emergency != current.emergency).then_some(emergency),
        password_hash,
        password_change_required,
        disabled_at_ms: b.disabled.map(|d| d.then_some(now)),
    };
    Ok(Json(st.db(move |s| s.update_user(id, &patch)).await?))
}

/// A region an account may be limited to: an existing township.
async fn check_region(st: &AppState, region: Option<i64>) -> Result<(), ApiError> {
    let Some(id) = region else { return Ok(()) };
    match st.db(move |s| s.region(id)).await? {
        Some(r) if r.level == Level::Township => Ok(()),
        Some(r) => Err(ApiError::BadRequest(format!("region {id} ({}) is not a township", r.name))),
        None => Err(ApiError::BadRequest(format!("region {id} does not exist"))),
    }
}

/// `GET /tokens`.
pub async fn list_tokens(State(st): State<AppState>) -> Result<Json<Vec<tokens::ApiToken>>, ApiError> {
    Ok(Json(st.db(|s| s.api_tokens()).await?))
}

/// `POST /tokens` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    name: String,
    scopes: Vec<String>,
}

/// `POST /tokens`: creates a token; the answer holds it, once.
pub async fn create_token(
    State(st): State<AppState>,
    body: Result<Json<NewTokenBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body?;
    let scopes = Scope::parse_list(&b.scopes.join(",")).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let created =
        tokens::create(&b.name, scopes, st.clock.now_ms()).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let new = created.new;
    let stored = st.db(move |s| s.create_api_token(&new)).await?;
    let body = json!({"token": created.token, "api_token": stored,
                      "note": "shown once: store it now; Dalaba keeps only its hash"});
    Ok((StatusCode::CREATED, Json(body)))
}

/// `DELETE /tokens/{id}`: revokes a token.
pub async fn revoke_token(State(st): State<AppState>, Path(id): Path<i64>) -> Result<Json<tokens::ApiToken>, ApiError> {
    let all = st.db(|s| s.api_tokens()).await?;
    let Some(token) = all.into_iter().find(|t| t.id == id) else {
        return Err(ApiError::NotFound(format!("API token {id} not found")));
    };
    let now = st.clock.now_ms();
    Ok(Json(st.db(move |s| s.revoke_api_token(&token.name, now)).await?))
}

/// `GET /audit`: the audit log, newest first.
pub async fn audit(
    State(st): State<AppState>,
    filter: Result<Query<AuditFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<crate::accounts::audit::AuditRecord>>, ApiError> {
    let Query(filter) = filter.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(st.db(move |s| s.audit(&filter)).await?))
}

/// `GET /audit/export.csv`: the same, as CSV.
pub async fn audit_csv(
    State(st): State<AppState>,
    filter: Result<Query<AuditFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<(HeaderMap, String), ApiError> {
    let Query(mut filter) = filter.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    filter.limit = Some(filter.limit.unwrap_or(crate::accounts::audit::MAX_RESULTS));
    let records = st.db(move |s| s.audit(&filter)).await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"audit.csv\""));
    Ok((headers, crate::accounts::audit::to_csv(&records)))
}
