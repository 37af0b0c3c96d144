//! Network adapters: the controller URL, TLS with a pinned certificate, the
//! WebSocket link, the one HTTPS POST of enrolment and the streaming HTTPS
//! requests of the content downloader.
//!
//! The agent trusts exactly one certificate: the controller's, by the SHA-256
//! fingerprint it pinned at enrolment. There is no CA bundle to keep up to
//! date on a board that runs for years, and a stolen CA cannot impersonate
//! the county.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dalaba_protocol::MAX_CONTROLLER_FRAME;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// How long a TCP connect plus TLS handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why talking to the controller failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The controller URL is not usable.
    #[error("bad controller URL {url:?}: {why}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        why: String,
    },
    /// TCP connect failed or timed out.
    #[error("cannot reach the controller at {addr}: {why}")]
    Unreachable {
        /// host:port.
        addr: String,
        /// Why.
        why: String,
    },
    /// The TLS handshake failed (including a fingerprint mismatch).
    #[error("TLS with the controller failed: {0}")]
    Tls(String),
    /// The controller answered with an HTTP error.
    #[error("the controller answered {status}: {message}")]
    Http {
        /// HTTP status.
        status: u16,
        /// The message in the error body, or the body itself.
        message: String,
    },
    /// Anything else on the wire.
    #[error("{0}")]
    Protocol(String),
}

/// A parsed controller URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerUrl {
    /// `true` for https.
    pub tls: bool,
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl ControllerUrl {
    /// Parses `https://host[:port]` (or `http://` for loopback tests).
    pub fn parse(url: &str) -> Result<ControllerUrl, NetError> {
        let bad = |why: &str| NetError::BadUrl { url: url.to_string(), why: why.to_string() };
        let uri: hyper::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("must start with https://")),
        };
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(ControllerUrl { tls, host, port })
    }

    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL of the link WebSocket.
    pub fn link_url(&self) -> String {
        format!("{}://{}{}", if self.tls { "wss" } else { "ws" }, self.authority(), dalaba_protocol::LINK_PATH)
    }
}

impl std::fmt::Display for ControllerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", if self.tls { "https" } else { "http" }, self.authority())
    }
}

/// A byte stream to the controller, TLS or plain.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The link's WebSocket.
pub type Link = WebSocketStream<Box<dyn Io>>;

/// Certificate trust for one connection.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Accept only the certificate with this SHA-256 fingerprint.
    Pinned(String),
    /// Enrolment: accept the certificate but record its fingerprint, so the
    /// caller can compare it with what the controller says it is (and with
    /// what the technician was told, when given).
    Capture(Arc<Mutex<Option<String>>>),
}

/// Opens TCP and, for https, TLS under `trust`.
pub async fn connect(url: &ControllerUrl, trust: Trust) -> Result<Box<dyn Io>, NetError> {
    let addr = url.authority();
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((url.host.as_str(), url.port)))
        .await
        .map_err(|_| NetError::Unreachable { addr: addr.clone(), why: "timed out".into() })?
        .map_err(|e| NetError::Unreachable { addr: addr.clone(), why: e.to_string() })?;
    let _ = tcp.set_nodelay(true);
    if !url.tls {
        return Ok(Box::new(tcp));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinningVerifier { trust, provider: Arc::clone(&provider) });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NetError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let name = ServerName::try_from(url.host.clone()).map_err(|e| NetError::Tls(e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| NetError::Tls("handshake timed out".into()))?
        .map_err(|e| NetError::Tls(e.to_string()))?;
    Ok(Box::new(tls))
}

/// Opens the link WebSocket with the agent's credentials.
pub async fn open_link(url: &ControllerUrl, fingerprint: &str, authorization: &str) -> Result<Link, NetError> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let io = connect(url, Trust::Pinned(fingerprint.to_string())).await?;
    let mut req = url.link_url().into_client_request().map_err(|e| NetError::Protocol(e.to_string()))?;
    let auth = authorization.parse().map_err(|_| NetError::Protocol("credentials are not a valid header".into()))?;
    req.headers_mut().insert(hyper::header::AUTHORIZATION, auth);
    let config = WebSocketConfig::default()
        // The controller sends whole plans; what the agent sends stays within
        // the controller's own, smaller limit.
        .max_message_size(Some(MAX_CONTROLLER_FRAME))
        .max_frame_size(Some(MAX_CONTROLLER_FRAME))
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let upgrade = tokio_tungstenite::client_async_with_config(req, io, Some(config));
    let upgraded = tokio::time::timeout(CONNECT_TIMEOUT, upgrade)
        .await
        .map_err(|_| NetError::Protocol("the controller did not answer the WebSocket upgrade within 10 s".into()))?;
    match upgraded {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let status = resp.status().as_u16();
            let body = resp.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default().to_string();
            Err(NetError::Http { status, message: error_message(&body) })
        }
        Err(e) => Err(NetError::Protocol(format!("WebSocket upgrade failed: {e}"))),
    }
}

/// Sends one request on a fresh connection and returns the answer with its
/// body unread, so a large body can be streamed. The `Host` header is set
/// here; `answer_timeout` bounds the wait for the answer's head.
pub async fn send(
    url: &ControllerUrl,
    trust: Trust,
    mut req: hyper::Request<Full<Bytes>>,
    answer_timeout: Duration,
) -> Result<hyper::Response<hyper::body::Incoming>, NetError> {
    let io = connect(url, trust).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .map_err(|e| NetError::Protocol(e.to_string()))?;
    tokio::spawn(conn);
    let host = url
        .authority()
        .parse()
        .map_err(|_| NetError::Protocol("the controller's address is not a valid Host header".into()))?;
    req.headers_mut().insert(hyper::header::HOST, host);
    tokio::time::timeout(answer_timeout, sender.send_request(req))
        .await
        .map_err(|_| {
            NetError::Protocol(format!("the controller did not answer within {} s", answer_timeout.as_secs()))
        })?
        .map_err(|e| NetError::Protocol(e.to_string()))
}

/// Turns an error answer into [`NetError::Http`] with the controller's
/// message, reading at most 64 KiB of its body.
pub async fn http_error(resp: hyper::Response<hyper::body::Incoming>) -> NetError {
    let status = resp.status().as_u16();
    let message = match http_body_util::Limited::new(resp.into_body(), 64 << 10).collect().await {
        Ok(body) => error_message(&String::from_utf8_lossy(&body.to_bytes())),
        Err(e) => format!("(error body unreadable: {e})"),
    };
    NetError::Http { status, message }
}

/// POSTs JSON and parses a JSON answer; an error answer becomes
/// [`NetError::Http`] with the controller's message.
pub async fn post_json<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
    url: &ControllerUrl,
    trust: Trust,
    path: &str,
    body: &Req,
) -> Result<Resp, NetError> {
    let json = serde_json::to_vec(body).map_err(|e| NetError::Protocol(e.to_string()))?;
    let req = hyper::Request::post(path)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(json)))
        .map_err(|e| NetError::Protocol(e.to_string()))?;
    let resp = send(url, trust, req, Duration::from_secs(30)).await?;
    let status = resp.status();
    if !status.is_success() {
        return Err(http_error(resp).await);
    }
    let bytes = http_body_util::Limited::new(resp.into_body(), 1 << 20)
        .collect()
        .await
        .map_err(|e| NetError::Protocol(format!("reading the answer: {e}")))?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| NetError::Protocol(format!("unexpected answer from the controller: {e}")))
}

fn error_message(body: &str) -> String {
    serde_json::from_str::<dalaba_protocol::enrol::ApiError>(body)
        .map(|e| e.message)
        .unwrap_or_else(|_| body.chars().take(200).collect())
}

/// SHA-256 of a DER certificate, lowercase hex.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    hex::encode(Sha256::digest(cert.as_ref()))
}

#[derive(Debug)]
struct PinningVerifier {
    trust: Trust,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = fingerprint(end_entity);
        match &self.trust {
            Trust::Pinned(pinned) if !pinned.eq_ignore_ascii_case(&seen) => Err(rustls::Error::General(format!(
                "controller certificate {seen} is not the pinned {pinned}; re-enrol if the controller's certificate was replaced"
            ))),
            Trust::Pinned(_) => Ok(ServerCertVerified::assertion()),
            Trust::Capture(slot) => {
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(seen);
                Ok(ServerCertVerified::assertion())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = ControllerUrl::parse("https://127.0.0.1:8443").expect("parses");
        assert_eq!(u, ControllerUrl { tls: true, host: "127.0.0.1".into(), port: 8443 });
        assert_eq!(u.link_url(), "wss://127.0.0.1:8443/api/v1/link");
        assert_eq!(ControllerUrl::parse("https://county.example").expect("parses").port, 443);
        assert_eq!(ControllerUrl::parse("https://[::1]:9").expect("parses").link_url(), "wss://[::1]:9/api/v1/link");
        for bad in ["", "ftp://x", "county.example", "https://"] {
            assert!(ControllerUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
