//! The alarm webhook: every raise and clear is POSTed as JSON to
//! `[alarms] webhook_url`, signed with HMAC-SHA256 over the exact body in
//! `X-Dalaba-Signature: sha256=<hex>` when `webhook_secret` is set.
//!
//! Delivery never blocks evaluation or a link: alarms go into a bounded
//! queue ([`QUEUE`]; a full queue drops the newest and counts it), and one
//! task posts them in order, retrying a failure (no answer, or a status
//! other than 2xx) with doubling waits until `give_up_after`, then logging
//! and counting it and moving on.

use std::sync::Arc;
use std::time::Duration;

use axum::http::Uri;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::AlarmView;
use crate::metrics::Metrics;

/// Deliveries waiting at most; more are dropped (and counted).
pub const QUEUE: usize = 256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-dalaba-signature";

/// Where and how alarms are posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// The `http` or `https` URL.
    pub url: Uri,
    /// The HMAC key, if signing.
    pub secret: Option<String>,
    /// The first wait before a retry; each later one doubles (up to a minute).
    pub first_retry: Duration,
    /// How long one alarm is retried before it is given up.
    pub give_up_after: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
}

impl WebhookSettings {
    /// Settings for `url` with the default retry policy (first retry after
    /// 2 s, give up after 10 minutes, 10 s per attempt).
    pub fn new(url: Uri, secret: Option<String>) -> WebhookSettings {
        WebhookSettings {
            url,
            secret,
            first_retry: Duration::from_secs(2),
            give_up_after: Duration::from_secs(600),
            timeout: Duration::from_secs(10),
        }
    }
}

/// What a raise or clear posts.
#[derive(Debug, Clone, Serialize)]
pub struct Payload {
    /// `alarm.raised` or `alarm.cleared`.
    pub event: &'static str,
    /// The alarm as the API shows it.
    #[serde(flatten)]
    pub alarm: AlarmView,
    /// One sentence for people, in Chinese.
    pub message_zh: String,
    /// The same in English.
    pub message_en: String,
}

impl Payload {
    /// The payload for `alarm`, raised or cleared as its state says.
    pub fn of(alarm: AlarmView) -> Payload {
        let (zh, en) = alarm.kind.describe();
        let cleared = alarm.cleared_ms.is_some();
        let place_zh = format!("{}{}", alarm.township_name, alarm.village_name);
        let place_en = if alarm.township_name.is_empty() {
            alarm.village_name.clone()
        } else {
            format!("{}, {}", alarm.village_name, alarm.township_name)
        };
        let (message_zh, message_en) = if cleared {
            (
                format!("已恢复：{place_zh}（终端 {}）{zh}。", alarm.agent_id),
                format!("Cleared: in {place_en} (agent {}), {en} no more.", alarm.agent_id),
            )
        } else {
            (
                format!("告警：{place_zh}（终端 {}）{zh}。", alarm.agent_id),
                format!("Alarm: in {place_en} (agent {}), {en}.", alarm.agent_id),
            )
        };
        Payload { event: if cleared { "alarm.cleared" } else { "alarm.raised" }, alarm, message_zh, message_en }
    }
}

/// `sha256=<hex>`: HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The sending end of the delivery queue.
#[derive(Debug, Clone)]
pub struct Queue {
    tx: mpsc::Sender<Payload>,
}

impl Queue {
    /// A queue and its receiving end, for [`deliver`].
    pub fn new() -> (Queue, mpsc::Receiver<Payload>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Queue { tx }, rx)
    }

    /// Queues a payload without waiting; a full queue drops it.
    pub fn push(&self, payload: Payload, metrics: &Metrics) {
        if self.tx.try_send(payload).is_err() {
            metrics.alarm_webhook("dropped");
            tracing::error!("alarm webhook queue full; an alarm was not posted");
        }
    }
}

/// Posts every queued payload in order until `shutdown`.
pub async fn deliver(
    mut rx: mpsc::Receiver<Payload>,
    settings: WebhookSettings,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let tls = tls_config();
    loop {
        let payload = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = rx.recv() => match p { Some(p) => p, None => return },
        };
        let body = serde_json::to_vec(&payload).unwrap_or_default();
        let started = tokio::time::Instant::now();
        let mut wait = settings.first_retry;
        loop {
            let attempt = tokio::time::timeout(settings.timeout, post(&settings, &tls, &body)).await;
            let why = match attempt {
                Ok(Ok(status)) if (200..300).contains(&status) => {
                    metrics.alarm_webhook("delivered");
                    break;
                }
                Ok(Ok(status)) => format!("the webhook answered HTTP {status}"),
                Ok(Err(e)) => e,
                Err(_) => format!("no answer within {} s", settings.timeout.as_secs()),
            };
            metrics.alarm_webhook("failed_attempt");
            if started.elapsed() + wait > settings.give_up_after {
                metrics.alarm_webhook("given_up");
                tracing::error!(alarm = payload.alarm.id, event = payload.event, error = %why,
                    "alarm webhook failed; giving up on this alarm");
                break;
            }
            tracing::warn!(alarm = payload.alarm.id, error = %why, retry_in_ms = wait.as_millis() as u64,
                "alarm webhook failed; retrying");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(60));
        }
    }
}

/// The TLS client for `https` webhooks, trusting Mozilla's roots; `None`
/// (logged) if it cannot be built, and then HTTPS attempts fail with that
/// reason.
fn tls_config() -> Option<Arc<rustls::ClientConfig>> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
        Ok(b) => Some(Arc::new(b.with_root_certificates(roots).with_no_client_auth())),
        Err(e) => {
            tracing::error!(error = %e, "cannot set up TLS for the alarm webhook");
            None
        }
    }
}

/// One attempt; the response status, or why there was none.
async fn post(settings: &WebhookSettings, tls: &Option<Arc<rustls::ClientConfig>>, body: &[u8]) -> Result<u16, String> {
    let url = &settings.url;
    let https = url.scheme_str() == Some("https");
    let host = url.host().ok_or("the webhook URL has no host")?.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = url.path_and_query().map_or("/", |p| p.as_str());
    let mut request = hyper::Request::builder()
        .method("POST")
        .uri(path)
        // The authority without any `user:password@`.
        .header(hyper::header::HOST, url.authority().map_or(host, |a| a.as_str().rsplit('@').next().unwrap_or(host)))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, concat!("dalaba-controller/", env!("CARGO_PKG_VERSION")));
    if let Some(secret) = &settings.secret {
        request = request.header(SIGNATURE_HEADER, signature(secret, body));
    }
    let request = request.body(Full::new(Bytes::copy_from_slice(body))).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    if https {
        let tls = tls.as_ref().ok_or("TLS for the webhook could not be set up (see the log at start)")?;
        let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
        let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}:{port} failed: {e}"))?;
        exchange(stream, request).await
    } else {
        exchange(tcp, request).await
    }
}

async fn exchange<S>(io: S, request: hyper::Request<Full<Bytes>>) -> Result<u16, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    tokio::spawn(conn);
    let response = sender.send_request(request).await.map_err(|e| format!("request failed: {e}"))?;
    let status = response.status().as_u16();
    // Read (and drop) the answer so the connection ends cleanly; its
    // content does not matter.
    let _ = response.into_body().collect().await;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        let got = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(got, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
