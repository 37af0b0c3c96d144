//! `POST /alerts`: a CAP 1.2 alert from an upstream system (see
//! [`crate::alerts`]). Needs an API token with the emergency scope, checked
//! before the body is read; the body is limited by `[alerts]
//! max_body_kb` while it streams (413 beyond).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::{ApiError, AppState};
use crate::accounts::policy::Principal;
use crate::alerts::AlertResponse;

/// `POST /alerts`.
pub async fn receive(
    State(st): State<AppState>,
    caller: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<AlertResponse>), ApiError> {
    let limit = st.settings.alerts.max_body_bytes;
    let too_large = || ApiError::Coded {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "too_large",
        message: format!("the alert is larger than {} KiB (alerts.max_body_kb)", limit / 1024),
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
        Err(e) => return Err(ApiError::BadRequest(format!("cannot read the alert: {e}"))),
    };
    let (status, answer) = crate::alerts::receive(&st, &caller_name(&caller), &bytes).await?;
    Ok((status, Json(answer)))
}

/// How an alert records who sent it: a token by its name (as before
/// accounts existed), an operator as `user:NAME`.
fn caller_name(caller: &Principal) -> String {
    match caller {
        Principal::Token(t) => t.name.clone(),
        Principal::User(_) | Principal::Local => caller.actor(),
    }
}
