//! The audio library: upload, text to speech, list, edit, delete, preview,
//! categories. See [`crate::library`] for the pipeline.
//!
//! An upload is the raw file as the request body (any content type), with
//! its description in the query: `POST /library?title=…&category=legal
//! &description=…&filename=notice.mp3`. The size limit is checked against
//! `Content-Length` before anything is written, and again on every chunk.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{ApiError, AppState};
use crate::library::pipeline::{self, AddError, Describe, Received};
use crate::library::tts::{self, TtsError};
use crate::library::{
    Category, ItemSource, LibraryItem, LibraryItemPatch, MAX_DESCRIPTION_CHARS, MAX_TITLE_CHARS, NewCategory,
    check_description, check_title, human_size,
};

/// `GET /library?category=` filter.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only items of this category.
    pub category: Option<String>,
}

/// The query of an upload.
#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    /// Title; defaults to the file name without its extension.
    pub title: Option<String>,
    /// Category key.
    pub category: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// The file's name, for its extension and for messages.
    pub filename: Option<String>,
}

/// The body of `POST /library/tts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtsRequest {
    /// What to say.
    pub text: String,
    /// Title.
    pub title: String,
    /// Category key.
    pub category: String,
    /// Description.
    #[serde(default)]
    pub description: String,
}

/// `?variant=` of the preview.
#[derive(Debug, Deserialize)]
pub struct AudioQuery {
    /// `original` (default) or `distribution`.
    pub variant: Option<String>,
}

/// `GET /library`.
pub async fn list(
    State(st): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<LibraryItem>>, ApiError> {
    let Query(query) = query.map_err(|r| ApiError::BadRequest(r.body_text()))?;
    let mut items = st.db(|s| s.library_items()).await?;
    if let Some(category) = query.category {
        items.retain(|i| i.category == category);
    }
    Ok(Json(items))
}

/// `GET /library/{id}`.
pub async fn one(
    State(st): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<LibraryItem>, ApiError> {
    let Path(id) = id?;
    Ok(Json(item(&st, id).await?))
}

/// `PATCH /library/{id}`.
pub async fn update(
    State(st): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    patch: Result<Json<LibraryItemPatch>, JsonRejection>,
) -> Result<Json<LibraryItem>, ApiError> {
    let (Path(id), Json(patch)) = (id?, patch?);
    let item = st.db(move |s| s.update_library_item(id, &patch)).await?;
    // Titles travel in plans and play logs.
    st.distribution.poke();
    Ok(Json(item))
}

/// `DELETE /library/{id}`: refused with 409 while a schedule plays it.
pub async fn remove(State(st): State<AppState>, id: Result<Path<i64>, PathRejection>) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    let (store, library) = (Arc::clone(&st.store), Arc::clone(&st.library));
    blocking(move || pipeline::delete(store.as_ref(), &library.content, id)).await??;
    st.distribution.poke();
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /library/{id}/audio?variant=original|distribution`, with `Range`.
pub async fn audio(
    State(st): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    query: Result<Query<AudioQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let Query(query) = query.map_err(|r| ApiError::BadRequest(r.body_text()))?;
    let item = item(&st, id).await?;
    let file = match query.variant.as_deref() {
        None | Some("original") => item.original,
        Some("distribution") => item.distribution,
        Some(other) => {
            return Err(ApiError::BadRequest(format!("variant {other:?} must be \"original\" or \"distribution\"")));
        }
    };
    let path = st
        .library
        .content
        .path(&file.sha256)
        .ok_or_else(|| ApiError::Internal(format!("item {id} has a bad hash {:?}", file.sha256)))?;
    super::content::serve_file(&path, pipeline::content_type(&file.format), &file.sha256, &headers).await
}

/// `GET /library/categories`.
pub async fn categories(State(st): State<AppState>) -> Result<Json<Vec<Category>>, ApiError> {
    Ok(Json(st.db(|s| s.library_categories()).await?))
}

/// `POST /library/categories`.
pub async fn create_category(
    State(st): State<AppState>,
    new: Result<Json<NewCategory>, JsonRejection>,
) -> Result<(StatusCode, Json<Category>), ApiError> {
    let Json(new) = new?;
    Ok((StatusCode::CREATED, Json(st.db(move |s| s.create_library_category(&new)).await?)))
}

/// `POST /library`: the raw file as the body, streamed to disk.
pub async fn upload(
    State(st): State<AppState>,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<LibraryItem>), ApiError> {
    let Query(query) = query.map_err(|r| ApiError::BadRequest(r.body_text()))?;
    let filename = query.filename.as_deref().map(|f| f.rsplit(['/', '\\']).next().unwrap_or(f).to_owned());
    let title = match (query.title, &filename) {
        (Some(title), _) => title,
        (None, Some(name)) => name.rsplit_once('.').map_or(name.as_str(), |(stem, _)| stem).to_owned(),
        (None, None) => {
            return Err(ApiError::refused(
                "no_title",
                vec![],
                "title is required (or a filename to take it from)".into(),
            ));
        }
    };
    let describe = describe(&st, title, query.description, query.category, ItemSource::Upload).await?;
    let limit = st.library.settings.max_upload_bytes;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    if let Some(declared) = declared
        && declared > limit
    {
        return Err(too_large(format!("file is {}; the limit is {}", human_size(declared), human_size(limit))));
    }
    let hint = filename.as_deref().and_then(|f| f.rsplit_once('.')).map(|(_, ext)| ext.to_ascii_lowercase());
    let received = receive(&st, body, limit, hint).await?;
    add(&st, received, describe, filename.as_deref()).await
}

/// `POST /library/tts`: speaks a notice with espeak-ng and adds the WAV.
pub async fn speak(
    State(st): State<AppState>,
    request: Result<Json<TtsRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<LibraryItem>), ApiError> {
    let Json(request) = request?;
    let settings = &st.library.settings;
    tts::check_text(settings, &request.text).map_err(tts_error)?;
    let describe = describe(&st, request.title, request.description, request.category, ItemSource::Tts).await?;
    let wav = st.library.content.temp_file().map_err(|e| ApiError::Internal(format!("temporary file: {e}")))?;
    tts::speak(settings, &request.text, wav.path()).await.map_err(tts_error)?;
    let received = blocking(move || hash_file(wav))
        .await?
        .map_err(|e| ApiError::Internal(format!("reading the spoken audio: {e}")))?;
    add(&st, received, describe, None).await
}

async fn item(st: &AppState, id: i64) -> Result<LibraryItem, ApiError> {
    st.db(move |s| s.library_item(id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("library item {id} does not exist")))
}

/// Checks the description fields before any bytes are read.
async fn describe(
    st: &AppState,
    title: String,
    description: String,
    category: String,
    source: ItemSource,
) -> Result<Describe, ApiError> {
    check_title(&title).map_err(|message| {
        let (reason, params) = if title.trim().is_empty() {
            ("no_title", vec![])
        } else {
            ("title_too_long", vec![("max", MAX_TITLE_CHARS.to_string())])
        };
        ApiError::refused(reason, params, message)
    })?;
    check_description(&description).map_err(|message| {
        ApiError::refused("description_too_long", vec![("max", MAX_DESCRIPTION_CHARS.to_string())], message)
    })?;
    let categories = st.db(|s| s.library_categories()).await?;
    if !categories.iter().any(|c| c.key == category) {
        let known: Vec<&str> = categories.iter().map(|c| c.key.as_str()).collect();
        let message = format!("category {category:?} does not exist; use one of {}", known.join(", "));
        return Err(ApiError::refused("unknown_category", vec![("category", category)], message));
    }
    Ok(Describe { title: title.trim().to_owned(), description, category, source, now_ms: st.clock.now_ms() })
}

/// Streams the body into a temporary file, hashing and counting it; the
/// file is removed if anything fails, the limit included.
async fn receive(st: &AppState, body: Body, limit: u64, hint: Option<String>) -> Result<Received, ApiError> {
    let io = |e: std::io::Error| ApiError::Internal(format!("writing an upload: {e}"));
    let file = st.library.content.temp_file().map_err(io)?;
    let mut out = tokio::fs::File::from_std(file.as_file().try_clone().map_err(io)?);
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("the upload was interrupted: {e}")))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large(format!("file is larger than the limit of {}", human_size(limit))));
        }
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(io)?;
    }
    out.flush().await.map_err(io)?;
    Ok(Received { file, sha256: hex::encode(hasher.finalize()), size_bytes: size, hint })
}

/// Runs the pipeline on the blocking pool and maps its errors.
async fn add(
    st: &AppState,
    received: Received,
    describe: Describe,
    filename: Option<&str>,
) -> Result<(StatusCode, Json<LibraryItem>), ApiError> {
    let (store, library) = (Arc::clone(&st.store), Arc::clone(&st.library));
    let added =
        blocking(move || pipeline::add(store.as_ref(), &library.content, &library.settings, received, describe))
            .await?;
    match added {
        Ok(item) => {
            tracing::info!(id = item.id, sha256 = %item.original.sha256, format = %item.original.format,
                duration_ms = item.duration_ms, "library item added");
            Ok((StatusCode::CREATED, Json(item)))
        }
        Err(e) => Err(add_error(e, filename)),
    }
}

fn add_error(error: AddError, filename: Option<&str>) -> ApiError {
    use dalaba_audio::AudioError as A;
    let named = |message: String| match filename {
        Some(name) => format!("{name}: {message}"),
        None => message,
    };
    match error {
        AddError::Duplicate(_) => {
            ApiError::Coded { status: StatusCode::CONFLICT, code: "duplicate", message: named(error.to_string()) }
        }
        AddError::Store(e) => ApiError::from(e),
        AddError::Io(e) => ApiError::Internal(format!("content file: {e}")),
        AddError::Audio(e) => {
            let code = match &e {
                A::Empty => "empty_file",
                A::Unsupported { .. } => "not_audio",
                A::Corrupt { .. } | A::DecoderFault { .. } => "corrupt_audio",
                A::Truncated { .. } => "truncated_audio",
                A::TooLong { .. } => "audio_too_long",
                A::NoAudio => "no_audio",
                A::Silent { .. } => "silent_audio",
                A::Read(_) | A::Write(_) | A::Encode(_) => {
                    return ApiError::Internal(format!("processing audio: {e}: {:?}", std::error::Error::source(&e)));
                }
            };
            ApiError::Coded { status: StatusCode::UNPROCESSABLE_ENTITY, code, message: named(e.to_string()) }
        }
    }
}

fn tts_error(error: TtsError) -> ApiError {
    let (status, code) = match &error {
        TtsError::EmptyText | TtsError::TooLong { .. } => (StatusCode::BAD_REQUEST, "bad_text"),
        TtsError::Missing { .. } | TtsError::Start { .. } => (StatusCode::SERVICE_UNAVAILABLE, "tts_unavailable"),
        TtsError::TimedOut { .. } => (StatusCode::GATEWAY_TIMEOUT, "tts_timeout"),
        TtsError::Failed { .. } => (StatusCode::BAD_GATEWAY, "tts_failed"),
    };
    if status.is_server_error() {
        tracing::warn!(error = %error, "text to speech failed");
    }
    ApiError::Coded { status, code, message: error.to_string() }
}

fn too_large(message: String) -> ApiError {
    ApiError::Coded { status: StatusCode::PAYLOAD_TOO_LARGE, code: "too_large", message }
}

/// Hashes a finished file (the spoken WAV) for the pipeline.
fn hash_file(file: tempfile::NamedTempFile) -> std::io::Result<Received> {
    let mut hasher = Sha256::new();
    let mut reader = file.reopen()?;
    let size = std::io::copy(&mut reader, &mut hasher)?;
    Ok(Received { file, sha256: hex::encode(hasher.finalize()), size_bytes: size, hint: Some("wav".into()) })
}

/// Runs CPU-heavy or blocking work off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::Internal(format!("library task failed: {e}")))
}
