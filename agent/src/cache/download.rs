//! The content downloader: `GET /api/v1/content/{sha256}` over the pinned
//! link TLS, streamed to `cache/partial/<sha256>.part` while hashing,
//! resumed with `Range` after a cut, verified (size and SHA-256), fsynced
//! and renamed into `cache/<sha256>`.
//!
//! One loop owns the downloads in flight; [`Downloader`] is its cloneable
//! handle. At most [`DownloadConfig::concurrency`] downloads run at once.
//! Every [`Downloader::fetch`] ends in exactly one [`News::Content`]:
//! [`ContentNews::Cached`], [`ContentNews::FetchFailed`] with a reason for
//! the operator, or [`ContentNews::Missing`] when the plan stopped needing
//! the item before it arrived. A fetch for an item already on its way is
//! folded into that one.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper::body::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{PARTIAL_DIR, is_sha256};
use crate::core::ContentNews;
use crate::identity::Identity;
use crate::net::{self, ControllerUrl, NetError, Trust};
use crate::shell::{News, NewsSender};

/// How long a download may go without receiving a byte.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Downloads at once per agent: a village uplink is slow, and two keep it
/// busy while a third item waits rather than slowing every one down.
pub const CONCURRENT_DOWNLOADS: usize = 2;

/// Path of the content endpoint, without the hash.
pub const CONTENT_PATH: &str = "/api/v1/content/";

/// Where and how to download.
#[derive(Clone)]
pub struct DownloadConfig {
    /// The controller.
    pub controller: ControllerUrl,
    /// Pinned SHA-256 of the controller's certificate.
    pub fingerprint: String,
    /// The `Authorization` header value.
    pub authorization: String,
    /// The cache directory (`state_dir/cache`).
    pub cache_dir: PathBuf,
    /// See [`STALL_TIMEOUT`].
    pub stall_timeout: Duration,
    /// See [`CONCURRENT_DOWNLOADS`].
    pub concurrency: usize,
}

impl std::fmt::Debug for DownloadConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the credentials.
        f.debug_struct("DownloadConfig")
            .field("controller", &self.controller)
            .field("cache_dir", &self.cache_dir)
            .field("stall_timeout", &self.stall_timeout)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl DownloadConfig {
    /// Downloads for `identity` into `cache_dir`, with the default timeouts
    /// and concurrency.
    pub fn new(identity: &Identity, controller: ControllerUrl, cache_dir: PathBuf) -> DownloadConfig {
        DownloadConfig {
            controller,
            fingerprint: identity.controller_cert_sha256.clone(),
            authorization: identity.authorization(),
            cache_dir,
            stall_timeout: STALL_TIMEOUT,
            concurrency: CONCURRENT_DOWNLOADS,
        }
    }

    fn partial_dir(&self) -> PathBuf {
        self.cache_dir.join(PARTIAL_DIR)
    }

    /// Where the partial download of an item lives.
    pub fn partial_path(&self, sha256: &str) -> PathBuf {
        self.partial_dir().join(format!("{sha256}.part"))
    }
}

/// Why one download failed; each prints as a reason an operator understands.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The name is not a SHA-256; nothing was requested.
    #[error("content name {0:?} is not a SHA-256")]
    BadName(String),
    /// 404.
    #[error("controller has no content {}", short(.0))]
    NotFound(String),
    /// 401 or 403.
    #[error("the controller refused this agent's credentials for content downloads: {0}")]
    Refused(String),
    /// Could not connect, or another HTTP error.
    #[error("downloading {}: {source}", short(.sha256))]
    Net {
        /// The content.
        sha256: String,
        /// What went wrong.
        #[source]
        source: NetError,
    },
    /// The controller offers a different size than the plan says.
    #[error("the controller offers {} for content {}, but the plan says {}", megabytes(*.offered), short(.sha256), megabytes(*.planned))]
    SizeMismatch {
        /// The content.
        sha256: String,
        /// Size the controller announced.
        offered: u64,
        /// Size in the plan.
        planned: u64,
    },
    /// The controller sent more bytes than the plan's size.
    #[error("the controller sent more than the planned {} of content {}; discarded", megabytes(*.planned), short(.sha256))]
    TooLarge {
        /// The content.
        sha256: String,
        /// Size in the plan.
        planned: u64,
    },
    /// A partial answer that does not continue the partial file.
    #[error("the controller answered with an unexpected range {got:?} (asked from byte {from}); starting over")]
    BadRange {
        /// The `Content-Range` received.
        got: String,
        /// The offset asked for.
        from: u64,
    },
    /// 416: the partial file is longer than the controller's content.
    #[error("the controller's copy of {} is shorter than the partial download; starting over", short(.0))]
    RangeNotSatisfiable(String),
    /// The body ended or broke before the planned size.
    #[error("connection lost after {} of {}; will resume ({why})", megabytes(*.received), megabytes(*.planned))]
    Cut {
        /// Bytes in the partial file.
        received: u64,
        /// Size in the plan.
        planned: u64,
        /// What the connection said.
        why: String,
    },
    /// No bytes for the stall timeout.
    #[error("no data from the controller for {} s after {} of {}; will resume", .secs, megabytes(*.received), megabytes(*.planned))]
    Stalled {
        /// Bytes in the partial file.
        received: u64,
        /// Size in the plan.
        planned: u64,
        /// The stall timeout.
        secs: u64,
    },
    /// The bytes do not hash to the name.
    #[error("checksum mismatch: got {got}, expected {expected}; discarded")]
    Checksum {
        /// SHA-256 of what arrived.
        got: String,
        /// The content's name.
        expected: String,
    },
    /// The local disk failed.
    #[error("cannot {what} {}: {source}", .path.display())]
    Disk {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Handle of the downloader loop of one agent.
#[derive(Clone, Debug)]
pub struct Downloader {
    commands: mpsc::UnboundedSender<Command>,
}

#[derive(Debug)]
enum Command {
    Fetch { sha256: String, size_bytes: u64 },
    Retain { needed: BTreeSet<String> },
}

enum Outcome {
    Done(Result<(), FetchError>),
    Cancelled,
}

impl Downloader {
    /// Starts the loop; it runs until `stop` is cancelled or every handle is
    /// dropped, and sends its news on `news`.
    pub fn spawn(config: DownloadConfig, news: NewsSender, stop: CancellationToken) -> Downloader {
        let (commands, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(config, news, rx, stop));
        Downloader { commands }
    }

    /// Gets this content into the cache; the answer comes as news.
    pub fn fetch(&self, sha256: String, size_bytes: u64) {
        // The loop ends only with the shell's stop, after which nobody
        // waits for the answer.
        let _ = self.commands.send(Command::Fetch { sha256, size_bytes });
    }

    /// The plan needs only `needed` now: downloads of anything else are
    /// cancelled (reported as [`ContentNews::Missing`]) and stale partial
    /// files removed.
    pub fn retain(&self, needed: BTreeSet<String>) {
        let _ = self.commands.send(Command::Retain { needed });
    }
}

async fn run(
    config: DownloadConfig,
    news: NewsSender,
    mut commands: mpsc::UnboundedReceiver<Command>,
    stop: CancellationToken,
) {
    let config = Arc::new(config);
    let limit = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut running: HashMap<String, CancellationToken> = HashMap::new();
    let mut tasks: JoinSet<Outcome> = JoinSet::new();
    let mut task_items: HashMap<tokio::task::Id, String> = HashMap::new();
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            command = commands.recv() => match command {
                None => break,
                Some(Command::Fetch { sha256, size_bytes }) => {
                    if running.contains_key(&sha256) {
                        continue;
                    }
                    // Not a child of `stop`: stopping the agent abandons
                    // downloads where they are, for the next run to resume.
                    let cancel = CancellationToken::new();
                    running.insert(sha256.clone(), cancel.clone());
                    let (config, limit, item) = (Arc::clone(&config), Arc::clone(&limit), sha256.clone());
                    let handle = tasks.spawn(async move {
                        tokio::select! {
                            _ = cancel.cancelled() => Outcome::Cancelled,
                            result = async {
                                // The semaphore is never closed.
                                let _permit = limit.acquire_owned().await;
                                download(&config, &item, size_bytes).await
                            } => Outcome::Done(result),
                        }
                    });
                    task_items.insert(handle.id(), sha256);
                }
                Some(Command::Retain { needed }) => {
                    for (sha256, cancel) in &running {
                        if !needed.contains(sha256) {
                            cancel.cancel();
                        }
                    }
                    remove_stale_partials(&config, &needed, &running);
                }
            },
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let (id, outcome) = match joined {
                    Ok((id, outcome)) => (id, Ok(outcome)),
                    Err(e) => (e.id(), Err(format!("the download task failed: {e}"))),
                };
                let Some(sha256) = task_items.remove(&id) else { continue };
                running.remove(&sha256);
                let content = match outcome {
                    Ok(Outcome::Done(Ok(()))) => ContentNews::Cached { sha256 },
                    Ok(Outcome::Done(Err(e))) => {
                        tracing::warn!(%sha256, reason = %e, "content download failed");
                        ContentNews::FetchFailed { sha256, reason: e.to_string() }
                    }
                    Err(reason) => {
                        tracing::error!(%sha256, %reason, "content download failed");
                        ContentNews::FetchFailed { sha256, reason }
                    }
                    Ok(Outcome::Cancelled) => {
                        remove_quietly(&config.partial_path(&sha256));
                        ContentNews::Missing { sha256 }
                    }
                };
                let _ = news.send(News::Content(content));
            }
        }
    }
}

/// One attempt at one item: resume or start, stream, verify, rename.
pub async fn download(config: &DownloadConfig, sha256: &str, size_bytes: u64) -> Result<(), FetchError> {
    if !is_sha256(sha256) {
        return Err(FetchError::BadName(sha256.to_string()));
    }
    let partial = config.partial_path(sha256);
    let disk = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Disk { what, path, source }
    };
    tokio::fs::create_dir_all(config.partial_dir()).await.map_err(disk("create", &config.partial_dir()))?;
    let mut file = tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&partial)
        .await
        .map_err(disk("open", &partial))?;
    let mut hasher = Sha256::new();
    let mut have = hash_prefix(&mut file, &mut hasher).await.map_err(disk("read", &partial))?;
    if have > size_bytes {
        // Longer than the content can be: not a prefix of it.
        file.set_len(0).await.map_err(disk("truncate", &partial))?;
        (have, hasher) = (0, Sha256::new());
    }
    if have < size_bytes {
        let result = receive(config, sha256, size_bytes, &mut file, &mut hasher, &mut have).await;
        // Whatever arrived stays for the next attempt, so it must be written.
        let flushed = file.flush().await.map_err(disk("write", &partial));
        if let Err(e) = result {
            if matches!(
                e,
                FetchError::TooLarge { .. } | FetchError::BadRange { .. } | FetchError::RangeNotSatisfiable(_)
            ) {
                drop(file);
                remove_quietly(&partial);
            }
            return Err(e);
        }
        flushed?;
    }
    let got = hex::encode(hasher.finalize());
    if got != sha256 {
        drop(file);
        remove_quietly(&partial);
        return Err(FetchError::Checksum { got, expected: sha256.to_string() });
    }
    file.sync_all().await.map_err(disk("sync", &partial))?;
    drop(file);
    let done = config.cache_dir.join(sha256);
    tokio::fs::rename(&partial, &done).await.map_err(disk("rename into the cache", &done))?;
    // The rename is durable once the directory is.
    if let Ok(dir) = tokio::fs::File::open(&config.cache_dir).await {
        let _ = dir.sync_all().await;
    }
    Ok(())
}

/// Asks for the rest of the item from `*have` and appends it to `file`.
async fn receive(
    config: &DownloadConfig,
    sha256: &str,
    size_bytes: u64,
    file: &mut tokio::fs::File,
    hasher: &mut Sha256,
    have: &mut u64,
) -> Result<(), FetchError> {
    let net = |source| FetchError::Net { sha256: sha256.to_string(), source };
    let mut req = hyper::Request::get(format!("{CONTENT_PATH}{sha256}"))
        .header(hyper::header::AUTHORIZATION, &config.authorization)
        .body(Full::new(Bytes::new()))
        .map_err(|e| net(NetError::Protocol(e.to_string())))?;
    if *have > 0 {
        let range = format!("bytes={have}-").parse().map_err(|_| net(NetError::Protocol("bad range".into())))?;
        req.headers_mut().insert(hyper::header::RANGE, range);
    }
    let trust = Trust::Pinned(config.fingerprint.clone());
    let resp = net::send(&config.controller, trust, req, config.stall_timeout).await.map_err(net)?;
    match resp.status() {
        StatusCode::OK => {
            if *have > 0 {
                // The controller ignored the range: start over.
                file.set_len(0).await.map_err(|source| FetchError::Disk {
                    what: "truncate",
                    path: config.partial_path(sha256),
                    source,
                })?;
                (*have, *hasher) = (0, Sha256::new());
            }
            if let Some(offered) = content_length(&resp)
                && offered != size_bytes
            {
                return Err(FetchError::SizeMismatch { sha256: sha256.to_string(), offered, planned: size_bytes });
            }
        }
        StatusCode::PARTIAL_CONTENT => {
            let got = resp
                .headers()
                .get(hyper::header::CONTENT_RANGE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            match parse_content_range(&got) {
                Some((start, _, total)) if start == *have && total == size_bytes => {}
                Some((start, _, total)) if start == *have => {
                    return Err(FetchError::SizeMismatch {
                        sha256: sha256.to_string(),
                        offered: total,
                        planned: size_bytes,
                    });
                }
                _ => return Err(FetchError::BadRange { got, from: *have }),
            }
        }
        StatusCode::RANGE_NOT_SATISFIABLE => return Err(FetchError::RangeNotSatisfiable(sha256.to_string())),
        StatusCode::NOT_FOUND => return Err(FetchError::NotFound(sha256.to_string())),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            return Err(match net::http_error(resp).await {
                NetError::Http { message, .. } => FetchError::Refused(message),
                other => net(other),
            });
        }
        _ => return Err(net(net::http_error(resp).await)),
    }
    let mut body = resp.into_body();
    file.seek(std::io::SeekFrom::Start(*have)).await.map_err(|source| FetchError::Disk {
        what: "seek in",
        path: config.partial_path(sha256),
        source,
    })?;
    loop {
        let frame = match tokio::time::timeout(config.stall_timeout, body.frame()).await {
            Err(_) => {
                return Err(FetchError::Stalled {
                    received: *have,
                    planned: size_bytes,
                    secs: config.stall_timeout.as_secs(),
                });
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(FetchError::Cut { received: *have, planned: size_bytes, why: e.to_string() });
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else { continue };
        let len = data.len() as u64;
        if have.saturating_add(len) > size_bytes {
            return Err(FetchError::TooLarge { sha256: sha256.to_string(), planned: size_bytes });
        }
        file.write_all(&data).await.map_err(|source| FetchError::Disk {
            what: "write",
            path: config.partial_path(sha256),
            source,
        })?;
        hasher.update(&data);
        *have += len;
    }
    if *have < size_bytes {
        return Err(FetchError::Cut {
            received: *have,
            planned: size_bytes,
            why: "the controller ended the answer early".into(),
        });
    }
    Ok(())
}

/// Hashes the partial file from its start and returns its length.
async fn hash_prefix(file: &mut tokio::fs::File, hasher: &mut Sha256) -> std::io::Result<u64> {
    file.seek(std::io::SeekFrom::Start(0)).await?;
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
}

fn content_length(resp: &hyper::Response<hyper::body::Incoming>) -> Option<u64> {
    resp.headers().get(hyper::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// `bytes START-END/TOTAL` → (start, end, total); `None` for anything else.
fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end, total) = (start.trim().parse().ok()?, end.trim().parse().ok()?, total.trim().parse().ok()?);
    (start <= end && end < total).then_some((start, end, total))
}

/// Removes partial files of content that is neither needed nor downloading.
fn remove_stale_partials(
    config: &DownloadConfig,
    needed: &BTreeSet<String>,
    running: &HashMap<String, CancellationToken>,
) {
    let Ok(entries) = std::fs::read_dir(config.partial_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let keep = name
            .to_str()
            .and_then(|n| n.strip_suffix(".part"))
            .is_some_and(|sha256| needed.contains(sha256) || running.contains_key(sha256));
        if !keep {
            tracing::info!(path = %entry.path().display(), "removing a partial download the plan no longer needs");
            remove_quietly(&entry.path());
        }
    }
}

fn remove_quietly(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::error!(path = %path.display(), error = %e, "cannot remove a partial download"),
    }
}

/// A content hash shortened for messages: `ab12cd34ef56…`.
pub fn short(sha256: &str) -> String {
    let head: String = sha256.chars().take(12).collect();
    if head.len() < sha256.len() { format!("{head}…") } else { head }
}

/// Bytes as megabytes with one decimal, as operators read sizes: `1.2 MB`.
pub fn megabytes(bytes: u64) -> String {
    let tenths = bytes.saturating_add(50_000) / 100_000;
    format!("{}.{} MB", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        for (value, expected) in [
            ("bytes 10-99/100", Some((10, 99, 100))),
            ("bytes 0-0/1", Some((0, 0, 1))),
            (" bytes 5-9/10 ", Some((5, 9, 10))),
            ("bytes 10-99/99", None),
            ("bytes 20-10/100", None),
            ("bytes */100", None),
            ("bytes 1-2/*", None),
            ("items 1-2/3", None),
            ("", None),
            ("bytes 99999999999999999999-1/2", None),
        ] {
            assert_eq!(parse_content_range(value), expected, "{value:?}");
        }
    }

    #[test]
    fn operator_figures() {
        assert_eq!(megabytes(0), "0.0 MB");
        assert_eq!(megabytes(1_200_000), "1.2 MB");
        assert_eq!(megabytes(3_449_999), "3.4 MB");
        assert_eq!(megabytes(u64::MAX), "18446744073709.5 MB");
        assert_eq!(short(&"ab".repeat(32)), "abababababab…");
        assert_eq!(short("ab"), "ab");
    }
}
