//! The API's one error type: a status, a stable code and a message a person
//! can act on. Internals are logged, never shown.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dalaba_protocol::enrol::ApiError as ErrorBody;
use serde::Serialize;

use crate::store::StoreError;

/// Every way an API call can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or a value is invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// Credentials missing or wrong (401).
    #[error("{0}")]
    Unauthorized(String),
    /// No such thing (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// Something once valid is no longer (410).
    #[error("{0}")]
    Gone(String),
    /// The body is well-formed but its content is invalid (422), with a list
    /// of problems (e.g. one per bad CSV row).
    #[error("{message}")]
    Unprocessable {
        /// Stable code.
        code: &'static str,
        /// Summary.
        message: String,
        /// One entry per problem.
        details: Vec<Detail>,
    },
    /// A fault on our side (500); the text is logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
    /// A specific code and status, with a finer reason and the values it
    /// names, for a console to word the refusal in its own language.
    #[error("{message}")]
    Explained {
        /// HTTP status.
        status: StatusCode,
        /// Stable code.
        code: &'static str,
        /// Explanation, in English.
        message: String,
        /// Stable finer reason.
        reason: &'static str,
        /// Its values, by name.
        params: Vec<(&'static str, String)>,
    },
    /// A specific code and status.
    #[error("{message}")]
    Coded {
        /// HTTP status.
        status: StatusCode,
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
}

/// One problem in an [`ApiError::Unprocessable`].
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    /// 1-based line of the input, when the input has lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

#[derive(Serialize)]
struct ExplainedBody<'a> {
    error: &'a str,
    message: &'a str,
    reason: &'a str,
    params: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct DetailedBody<'a> {
    error: &'a str,
    message: &'a str,
    details: &'a [Detail],
}

impl ApiError {
    /// A refusal that names its reason and the values it names, beside its
    /// English message (see [`ApiError::Explained`]).
    pub fn explained(
        status: StatusCode,
        code: &'static str,
        reason: &'static str,
        params: Vec<(&'static str, String)>,
        message: String,
    ) -> ApiError {
        ApiError::Explained { status, code, message, reason, params }
    }

    /// A bad request (400 `bad_request`) that names its reason.
    pub fn refused(reason: &'static str, params: Vec<(&'static str, String)>, message: String) -> ApiError {
        ApiError::explained(StatusCode::BAD_REQUEST, "bad_request", reason, params, message)
    }

    /// The HTTP status it answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::Coded { status, .. } | ApiError::Explained { status, .. } => *status,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m.clone()),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "unauthorized", m.clone()),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m.clone()),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m.clone()),
            ApiError::Gone(m) => (StatusCode::GONE, "gone", m.clone()),
            ApiError::Coded { status, code, message } => (*status, *code, message.clone()),
            ApiError::Explained { status, code, message, reason, params } => {
                let params =
                    params.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(v.as_str()))).collect();
                let body = ExplainedBody { error: code, message, reason, params };
                return (*status, Json(body)).into_response();
            }
            ApiError::Unprocessable { code, message, details } => {
                let body = DetailedBody { error: code, message, details };
                return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
            }
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "internal error in API handler");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the controller hit an internal error; it has been logged".to_string(),
                )
            }
        };
        (status, Json(ErrorBody { error: code.to_string(), message })).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            StoreError::Invalid(m) => ApiError::BadRequest(m.to_string()),
            StoreError::Import(errors) => super::directory::csv_error(errors),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Library(m) => ApiError::BadRequest(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> ApiError {
        ApiError::Coded { status: r.status(), code: "invalid_json", message: r.body_text() }
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> ApiError {
        ApiError::BadRequest(r.body_text())
    }
}

/// Fallback for unknown API paths: a JSON 404 rather than an empty body.
/// It names the original URI: inside the router nested under `/api/v1`, the
/// plain `Uri` has lost that prefix.
pub async fn not_found(axum::extract::OriginalUri(uri): axum::extract::OriginalUri) -> ApiError {
    ApiError::NotFound(format!("no API route {}", uri.path()))
}

/// Fallback for a known API path with the wrong method.
pub async fn method_not_allowed(
    method: axum::http::Method,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> ApiError {
    ApiError::Coded {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: format!("{} does not accept {method}", uri.path()),
    }
}
