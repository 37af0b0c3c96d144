//! The `Authorization: Bearer dlb_…` check, as an axum extractor that names
//! the scope a route needs in its type:
//!
//! ```text
//! async fn handler(caller: Authorized<Emergency>, …) -> …
//! ```
//!
//! It runs before the body is read, so a caller without the right token
//! learns so (401, or 403 naming the scope) without uploading anything.
//! Operator accounts (a later issue) can add their session cookie here and
//! keep every route's signature.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};

use super::{ApiToken, Scope, TOKEN_PREFIX, constant_time_eq, hash};
use crate::api::{ApiError, AppState};

/// A scope a route needs, as a type.
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope.
    const SCOPE: Scope;
}

/// Needs [`Scope::Read`].
#[derive(Debug)]
pub struct Read;
/// Needs [`Scope::Schedule`].
#[derive(Debug)]
pub struct Schedule;
/// Needs [`Scope::Emergency`].
#[derive(Debug)]
pub struct Emergency;

impl RequiredScope for Read {
    const SCOPE: Scope = Scope::Read;
}
impl RequiredScope for Schedule {
    const SCOPE: Scope = Scope::Schedule;
}
impl RequiredScope for Emergency {
    const SCOPE: Scope = Scope::Emergency;
}

/// A caller whose token holds scope `S`.
#[derive(Debug)]
pub struct Authorized<S: RequiredScope> {
    /// The token it presented.
    pub token: ApiToken,
    _scope: PhantomData<S>,
}

impl<S: RequiredScope> FromRequestParts<AppState> for Authorized<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let token = authenticate(st, &parts.headers, S::SCOPE).await?;
        Ok(Authorized { token, _scope: PhantomData })
    }
}

/// Checks the bearer token in `headers` and that it holds `scope`; records
/// its use. 401 for a missing, malformed, unknown or revoked token; 403,
/// naming the scope, for a token without it.
pub async fn authenticate(st: &AppState, headers: &HeaderMap, scope: Scope) -> Result<ApiToken, ApiError> {
    let refuse = |message: String| {
        st.metrics.error("api_token");
        tracing::warn!(%scope, "API call refused: {message}");
        ApiError::Unauthorized(message)
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(refuse(format!(
            "this route needs an API token with the {scope} scope: send `Authorization: Bearer dlb_…` \
             (create one with `dalaba-controller token create`)"
        )));
    };
    let presented = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    let Some(presented) = presented.filter(|t| t.starts_with(TOKEN_PREFIX)) else {
        return Err(refuse("the Authorization header must be `Bearer dlb_…` (a Dalaba API token)".to_owned()));
    };
    let presented_hash = hash(presented);
    let lookup = presented_hash.clone();
    let Some((token, stored_hash)) = st.db(move |s| s.api_token_by_hash(&lookup)).await? else {
        return Err(refuse("unknown API token".to_owned()));
    };
    // The lookup already matched the hash; comparing again in constant time
    // keeps the check correct should a store ever look tokens up another way.
    if !constant_time_eq(presented_hash.as_bytes(), stored_hash.as_bytes()) {
        return Err(refuse("unknown API token".to_owned()));
    }
    if let Some(at) = token.revoked_at_ms {
        return Err(refuse(format!("API token {} was revoked at {}", token.name, crate::clock::rfc3339(at))));
    }
    if !token.allows(scope) {
        st.metrics.error("api_token_scope");
        tracing::warn!(token = %token.name, %scope, "API call refused: scope missing");
        return Err(ApiError::Coded {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: format!(
                "API token {} lacks the {scope} scope (it has: {})",
                token.name,
                Scope::join(&token.scopes)
            ),
        });
    }
    let (id, now) = (token.id, st.clock.now_ms());
    st.db(move |s| s.record_api_token_used(id, now)).await?;
    Ok(ApiToken { last_used_ms: Some(now), ..token })
}
