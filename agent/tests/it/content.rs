//! The content downloader against a real HTTP server on loopback that can
//! cut, stall, lie and refuse: full downloads, resumption with `Range` after
//! a cut and after a restart, checksum and size failures, 404, and
//! cancellation when the plan no longer needs an item.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dalaba_agent::cache::download::{DownloadConfig, Downloader, STALL_TIMEOUT};
use dalaba_agent::core::ContentNews;
use dalaba_agent::net::ControllerUrl;
use dalaba_agent::shell::News;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How the server answers one request.
#[derive(Clone, Copy, Debug)]
enum Reply {
    /// Honour the range, send everything.
    Serve,
    /// Like `Serve`, but close the connection after this many body bytes.
    CutAfter(usize),
    /// Like `Serve`, but go silent after this many body bytes.
    StallAfter(usize),
    /// The right length, the wrong bytes.
    Wrong,
    /// More bytes than the content has, without a length.
    Oversized,
    /// 404 with the API error body.
    NotFound,
}

/// What the server saw of one request.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    path: String,
    range: Option<String>,
    authorization: Option<String>,
}

struct Server {
    url: ControllerUrl,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl Server {
    /// Serves `content` under its SHA-256; answers follow `script`, then
    /// [`Reply::Serve`].
    async fn start(content: Vec<u8>, script: &[Reply]) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = ControllerUrl::parse(&format!("http://{}", listener.local_addr().expect("addr"))).expect("url");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let (s, q, content) = (Arc::clone(&seen), Arc::clone(&script), Arc::new(content));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let reply = q.lock().expect("lock").pop_front().unwrap_or(Reply::Serve);
                tokio::spawn(answer(tcp, reply, Arc::clone(&content), Arc::clone(&s)));
            }
        });
        Server { url, seen, script }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn answer(mut tcp: TcpStream, reply: Reply, content: Arc<Vec<u8>>, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or_default().to_string();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let range = header("range");
    seen.lock().expect("lock").push(Seen {
        path: path.clone(),
        range: range.clone(),
        authorization: header("authorization"),
    });

    let sha256 = hex::encode(Sha256::digest(content.as_slice()));
    if matches!(reply, Reply::NotFound) || path != format!("/api/v1/content/{sha256}") {
        let body = r#"{"error":"not_found","message":"no such content"}"#;
        let _ = tcp
            .write_all(format!("HTTP/1.1 404 Not Found\r\ncontent-length: {}\r\n\r\n{body}", body.len()).as_bytes())
            .await;
        return;
    }
    let from: usize =
        range.as_deref().and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok()).unwrap_or(0);
    let len = content.len();
    if from >= len {
        let _ = tcp.write_all(b"HTTP/1.1 416 Range Not Satisfiable\r\ncontent-length: 0\r\n\r\n").await;
        return;
    }
    let mut body = content[from..].to_vec();
    let head = match (reply, from) {
        (Reply::Oversized, _) => {
            body = vec![7u8; len + 10];
            "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_string()
        }
        (Reply::Wrong, _) => {
            body = content.iter().map(|b| b ^ 0xff).collect();
            format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n")
        }
        (_, 0) => format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n"),
        (_, from) => format!(
            "HTTP/1.1 206 Partial Content\r\ncontent-range: bytes {from}-{}/{len}\r\ncontent-length: {}\r\n\r\n",
            len - 1,
            len - from
        ),
    };
    let _ = tcp.write_all(head.as_bytes()).await;
    match reply {
        Reply::CutAfter(n) => {
            let _ = tcp.write_all(&body[..n.min(body.len())]).await;
            let _ = tcp.shutdown().await;
        }
        Reply::StallAfter(n) => {
            let _ = tcp.write_all(&body[..n.min(body.len())]).await;
            std::future::pending::<()>().await;
        }
        _ => {
            let _ = tcp.write_all(&body).await;
            let _ = tcp.shutdown().await;
        }
    }
}

/// Deterministic, non-repeating test content.
fn content(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

struct Agent {
    config: DownloadConfig,
    downloader: Downloader,
    news: mpsc::UnboundedReceiver<News>,
    stop: CancellationToken,
}

impl Agent {
    fn start(server: &Server, cache_dir: &Path) -> Agent {
        Agent::with_stall_timeout(server, cache_dir, STALL_TIMEOUT)
    }

    fn with_stall_timeout(server: &Server, cache_dir: &Path, stall_timeout: Duration) -> Agent {
        let config = DownloadConfig {
            controller: server.url.clone(),
            fingerprint: String::new(),
            authorization: dalaba_protocol::bearer_credentials("ag-1", "s3cret"),
            cache_dir: cache_dir.to_path_buf(),
            stall_timeout,
            concurrency: 2,
        };
        let (tx, news) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let downloader = Downloader::spawn(config.clone(), tx, stop.clone());
        Agent { config, downloader, news, stop }
    }

    async fn next_news(&mut self) -> ContentNews {
        match tokio::time::timeout(Duration::from_secs(20), self.news.recv()).await {
            Ok(Some(News::Content(n))) => n,
            other => panic!("expected content news, got {other:?}"),
        }
    }

    async fn fetch(&mut self, data: &[u8]) -> ContentNews {
        self.downloader.fetch(sha(data), data.len() as u64);
        self.next_news().await
    }

    fn partial(&self, data: &[u8]) -> PathBuf {
        self.config.partial_path(&sha(data))
    }
}

/// Waits until the partial file holds `len` bytes.
async fn partial_reaches(path: &Path, len: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) < len {
        assert!(tokio::time::Instant::now() < deadline, "{} never reached {len} bytes", path.display());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn failure(news: ContentNews) -> String {
    match news {
        ContentNews::FetchFailed { reason, .. } => reason,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_full_download_is_verified_and_lands_in_the_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = content(300_000);
    let server = Server::start(data.clone(), &[]).await;
    let mut agent = Agent::start(&server, dir.path());
    assert_eq!(agent.fetch(&data).await, ContentNews::Cached { sha256: sha(&data) });
    assert_eq!(std::fs::read(dir.path().join(sha(&data))).expect("cached file"), data);
    assert!(!agent.partial(&data).exists());
    assert_eq!(
        server.seen(),
        [Seen {
            path: format!("/api/v1/content/{}", sha(&data)),
            range: None,
            authorization: Some("Bearer ag-1.s3cret".into()),
        }]
    );
}

#[tokio::test]
async fn a_cut_download_resumes_with_range_from_the_partial_length() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = content(3_400_000);
    let server = Server::start(data.clone(), &[Reply::CutAfter(1_200_000)]).await;
    let mut agent = Agent::start(&server, dir.path());
    let reason = failure(agent.fetch(&data).await);
    assert!(reason.starts_with("connection lost after 1.2 MB of 3.4 MB; will resume"), "{reason}");
    assert_eq!(std::fs::metadata(agent.partial(&data)).expect("partial").len(), 1_200_000);
    assert!(!dir.path().join(sha(&data)).exists());

    assert_eq!(agent.fetch(&data).await, ContentNews::Cached { sha256: sha(&data) });
    let ranges: Vec<_> = server.seen().into_iter().map(|s| s.range).collect();
    assert_eq!(ranges, [None, Some("bytes=1200000-".into())]);
    assert_eq!(std::fs::read(dir.path().join(sha(&data))).expect("cached file"), data);
    assert!(!agent.partial(&data).exists());
}

#[tokio::test]
async fn a_download_interrupted_by_a_restart_resumes_in_the_next_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = content(500_000);
    let server = Server::start(data.clone(), &[Reply::StallAfter(123_457)]).await;
    let mut first = Agent::start(&server, dir.path());
    first.downloader.fetch(sha(&data), data.len() as u64);
    partial_reaches(&first.partial(&data), 123_457).await;
    // The agent dies mid-download: its tasks end without a word.
    first.stop.cancel();
    drop(first.downloader);
    assert!(first.news.recv().await.is_none(), "a stopped downloader reports nothing");

    let mut second = Agent::start(&server, dir.path());
    assert_eq!(second.fetch(&data).await, ContentNews::Cached { sha256: sha(&data) });
    let ranges: Vec<_> = server.seen().into_iter().map(|s| s.range).collect();
    assert_eq!(ranges, [None, Some("bytes=123457-".into())]);
    assert_eq!(std::fs::read(dir.path().join(sha(&data))).expect("cached file"), data);
}

#[tokio::test]
async fn a_damaged_partial_file_is_a_checksum_mismatch_then_a_fresh_download() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = content(200_000);
    let server = Server::start(data.clone(), &[]).await;
    let mut agent = Agent::start(&server, dir.path());
    std::fs::create_dir_all(agent.partial(&data).parent().expect("parent")).expect("mkdir");
    std::fs::write(agent.partial(&data), vec![0u8; 50_000]).expect("write");
    let reason = failure(agent.fetch(&data).await);
    assert!(reason.starts_with("checksum mismatch: got "), "{reason}");
    assert!(!agent.partial(&data).exists(), "a mismatch deletes the partial file");
    assert_eq!(agent.fetch(&data).await, ContentNews::Cached { sha256: sha(&data) });
    let ranges: Vec<_> = server.seen().into_iter().map(|s| s.range).collect();
    assert_eq!(ranges, [Some("bytes=50000-".into()), None]);
}

#[tokio::test]
async fn wrong_bytes_are_a_checksum_mismatch_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = content(100_000);
    let server = Server::start(data.clone(), &[Reply::Wrong]).await;
    let mut agent = Agent::start(&server, dir.path());
    let reason = failure(agent.fetch(&data).await);
    let wrong: Vec<u8> = data.iter().map(|b| b ^ 0xff).collect();
    assert_eq!(reason, format!("checksum mismatch: got {}, expected {}; discarded", sha(&wrong), sha(&data)));
    assert!(!dir.path().join(sha(&data)).exists());
    assert!(!agent.partial(&data).exists());
}

#[tokio::test]
async fn a_body_larger_than_planned_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = content(100_000);
    let server = Server::start(data.clone(), &[Reply::Oversized]).await;
    let mut agent = Agent::start(&server, dir.path());
    let reason = failure(agent.fetch(&data).await);
    assert!(reason.starts_with("the controller sent more than the planned 0.1 MB of content "), "{reason}");
    assert!(!dir.path().join(sha(&data)).exists());
    assert!(!agent.partial(&data).exists());
}

#[tokio::test]
async fn missing_content_is_reported_with_the_controllers_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = content(1_000);
    let server = Server::start(data.clone(), &[Reply::NotFound]).await;
    let mut agent = Agent::start(&server, dir.path());
    let reason = failure(agent.fetch(&data).await);
    assert_eq!(reason, format!("controller has no content {}…", &sha(&data)[..12]));
    assert!(!dir.path().join(sha(&data)).exists());
}

#[tokio::test]
async fn a_stalled_download_fails_and_keeps_what_arrived() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = content(100_000);
    let server = Server::start(data.clone(), &[Reply::StallAfter(40_000)]).await;
    let mut agent = Agent::with_stall_timeout(&server, dir.path(), Duration::from_secs(1));
    let reason = failure(agent.fetch(&data).await);
    assert_eq!(reason, "no data from the controller for 1 s after 0.0 MB of 0.1 MB; will resume");
    assert_eq!(std::fs::metadata(agent.partial(&data)).expect("partial").len(), 40_000);
}

#[tokio::test]
async fn content_the_plan_no_longer_needs_stops_downloading_and_its_partial_goes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = content(300_000);
    let server = Server::start(data.clone(), &[Reply::StallAfter(10_000)]).await;
    let mut agent = Agent::start(&server, dir.path());
    agent.downloader.fetch(sha(&data), data.len() as u64);
    partial_reaches(&agent.partial(&data), 10_000).await;
    // A stale partial of content no plan needs, from an earlier run.
    let stale = agent.config.partial_path(&"ab".repeat(32));
    std::fs::write(&stale, b"old").expect("write");

    agent.downloader.retain(Default::default());
    assert_eq!(agent.next_news().await, ContentNews::Missing { sha256: sha(&data) });
    assert!(!agent.partial(&data).exists());
    assert!(!stale.exists());
    assert!(server.script.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn a_name_that_is_not_a_hash_requests_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(content(10), &[]).await;
    let mut agent = Agent::start(&server, dir.path());
    agent.downloader.fetch("../../credentials.toml".into(), 10);
    let reason = failure(agent.next_news().await);
    assert!(reason.contains("is not a SHA-256"), "{reason}");
    assert!(server.seen().is_empty());
}
