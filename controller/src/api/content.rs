//! `GET /api/v1/content/{sha256}`: agents download distribution files by
//! content address, with their link credentials, resuming with `Range`.
//!
//! The contract agents code against: `Range: bytes=N-` → 206 with
//! `Content-Range: bytes N-(len-1)/len`; no `Range` → 200 with
//! `Content-Length`; a range past the end → 416 with `Content-Range:
//! bytes */len`; a hash the library does not distribute → 404 JSON error;
//! missing or wrong credentials → 401 JSON error. Files are streamed from
//! disk, never read whole into memory.

use std::net::SocketAddr;
use std::path::Path;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{ApiError, AppState};
use crate::library::range::{RangeReply, resolve};

/// Bytes read from disk per chunk of a response.
const CHUNK: usize = 64 * 1024;

/// `GET /content/{sha256}`.
pub async fn download(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(sha256): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    crate::link::authenticate_agent(&st, &headers, peer, "content download").await?;
    let unknown = || ApiError::NotFound(format!("no content {sha256} in the library"));
    let Some(path) = st.library.content.path(&sha256) else { return Err(unknown()) };
    let lookup = sha256.clone();
    let file = st.db(move |s| s.library_distribution(&lookup)).await?.ok_or_else(unknown)?;
    serve_file(&path, "audio/ogg", &file.sha256, &headers).await
}

/// Streams a content file, honouring one `Range` (see the module docs).
pub(super) async fn serve_file(
    path: &Path,
    content_type: &'static str,
    sha256: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| ApiError::Internal(format!("content file {} cannot be opened: {e}", path.display())))?;
    let len =
        file.metadata().await.map_err(|e| ApiError::Internal(format!("content file {}: {e}", path.display())))?.len();
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, count) = match resolve(range, len) {
        RangeReply::Full => (StatusCode::OK, 0, len),
        RangeReply::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        RangeReply::Unsatisfiable => {
            let mut resp = ApiError::Coded {
                status: StatusCode::RANGE_NOT_SATISFIABLE,
                code: "range_not_satisfiable",
                message: format!("the range {} starts past the end of the {len}-byte file", range.unwrap_or("")),
            }
            .into_response();
            insert(&mut resp, header::CONTENT_RANGE, format!("bytes */{len}"));
            return Ok(resp);
        }
    };
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| ApiError::Internal(format!("content file {}: {e}", path.display())))?;
    }
    let stream = futures_util::stream::unfold((file, count), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
        let mut buf = vec![0; want];
        match file.read(&mut buf).await {
            // The file is shorter than its length said: end the body early,
            // which the client sees as a short read and retries.
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), (file, left - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    insert(&mut resp, header::CONTENT_TYPE, content_type.to_owned());
    insert(&mut resp, header::CONTENT_LENGTH, count.to_string());
    insert(&mut resp, header::ACCEPT_RANGES, "bytes".to_owned());
    insert(&mut resp, header::ETAG, format!("\"{sha256}\""));
    if status == StatusCode::PARTIAL_CONTENT {
        insert(&mut resp, header::CONTENT_RANGE, format!("bytes {start}-{}/{len}", start + count - 1));
    }
    Ok(resp)
}

fn insert(resp: &mut Response, name: header::HeaderName, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(name, value);
    }
}
