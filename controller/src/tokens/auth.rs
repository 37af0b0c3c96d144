//! The `Authorization: Bearer dlb_…` check. The accounts guard
//! (`accounts::guard`) calls [`lookup`] for every API request that carries
//! the header, before the body is read, and decides with the route table
//! (`accounts::policy`) whether the token's scopes suffice: a caller
//! without the right token learns so (401, or 403 naming what is needed)
//! without uploading anything.

use axum::http::{HeaderMap, header};

use super::{ApiToken, TOKEN_PREFIX, constant_time_eq, hash};
use crate::api::{ApiError, AppState};

/// Checks the bearer token in `headers`: 401 for a missing, malformed,
/// unknown or revoked token. Which scopes a route needs is the guard's
/// business (`accounts::policy`); it records the token's use
/// ([`record_use`]) once the token is allowed.
pub async fn lookup(st: &AppState, headers: &HeaderMap) -> Result<ApiToken, ApiError> {
    let refuse = |message: String| {
        st.metrics.error("api_token");
        tracing::warn!("API call refused: {message}");
        ApiError::Unauthorized(message)
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(refuse(
            "send `Authorization: Bearer dlb_…` (create a token with `dalaba-controller token create`)".into(),
        ));
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
    Ok(token)
}

/// Records that `token` was accepted now.
pub async fn record_use(st: &AppState, token: &ApiToken) -> Result<(), ApiError> {
    let (id, now) = (token.id, st.clock.now_ms());
    st.db(move |s| s.record_api_token_used(id, now)).await
}
