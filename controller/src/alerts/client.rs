//! `dalaba-controller alert FILE`: sends a CAP file to the running
//! controller, as an upstream platform would.
//!
//! The running controller owns the live sessions, so this command does not
//! open the database: it posts the file to `POST /api/v1/alerts` at the
//! configured listen address (or `--url`), over TLS that trusts only the
//! controller's own certificate, pinned by its SHA-256 read from the data
//! directory (or `server.tls_cert`). The token comes from `--token` or, so it
//! stays out of the process list, the environment variable `DALABA_TOKEN`.
//! The answer is printed as JSON; a refusal is an error naming the
//! controller's reason.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::Config;

/// The environment variable holding the API token.
pub const TOKEN_ENV: &str = "DALABA_TOKEN";
/// Largest file sent; the controller's own limit is usually lower.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// How long the whole exchange may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Options of `dalaba-controller alert`.
#[derive(Debug, clap::Args)]
pub struct AlertArgs {
    /// The CAP 1.2 XML file.
    pub file: PathBuf,
    /// An API token with the emergency scope (default: $DALABA_TOKEN).
    #[arg(long)]
    pub token: Option<String>,
    /// The controller's address, e.g. https://127.0.0.1:8443 (default: the
    /// configured listen address).
    #[arg(long)]
    pub url: Option<String>,
}

/// Sends the file; prints the controller's answer.
pub async fn run(config: &Config, args: AlertArgs) -> anyhow::Result<()> {
    let token = match args.token {
        Some(t) => t,
        None => std::env::var(TOKEN_ENV)
            .map_err(|_| anyhow!("no API token: pass --token or set {TOKEN_ENV} (dalaba-controller token create)"))?,
    };
    let size = std::fs::metadata(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?.len();
    if size > MAX_FILE_BYTES {
        bail!("{} is {size} bytes; a CAP alert is far smaller", args.file.display());
    }
    let body = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let (tls, host, port) = match &args.url {
        Some(url) => parse_url(url)?,
        None => {
            let listen = config.server.listen;
            let ip = match listen.ip() {
                IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            (!config.server.plain_http, ip.to_string(), listen.port())
        }
    };
    let fingerprint = if tls { Some(controller_fingerprint(config)?) } else { None };
    let exchange = post(&host, port, fingerprint, &token, body);
    let (status, answer) = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| anyhow!("no answer from {host}:{port} within {TIMEOUT:?}"))??;
    let json: serde_json::Value = serde_json::from_slice(&answer).unwrap_or(serde_json::Value::Null);
    if !(200..300).contains(&status) {
        let code = json["error"].as_str().unwrap_or("error");
        let message =
            json["message"].as_str().map_or_else(|| String::from_utf8_lossy(&answer).into_owned(), str::to_owned);
        bail!("the controller refused the alert ({status} {code}): {message}");
    }
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

/// `https://host:port` or `http://host:port` → (tls, host, port).
fn parse_url(url: &str) -> anyhow::Result<(bool, String, u16)> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        bail!("--url {url} must start with https:// or http://");
    };
    let authority = rest.trim_end_matches('/');
    let (host, port) = authority
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_start_matches('[').trim_end_matches(']'), p.parse().ok()?)))
        .ok_or_else(|| anyhow!("--url {url} must be scheme://host:port"))?;
    Ok((tls, host.to_owned(), port))
}

/// SHA-256 of the certificate the controller serves.
fn controller_fingerprint(config: &Config) -> anyhow::Result<String> {
    let path = if config.server.tls_cert.is_empty() {
        config.storage.data_dir.join("tls").join("cert.pem")
    } else {
        PathBuf::from(&config.server.tls_cert)
    };
    let cert = first_certificate(&path).with_context(|| {
        format!(
            "cannot read the controller's certificate {} (check --config; has the controller run once?)",
            path.display()
        )
    })?;
    Ok(crate::tls::fingerprint(&cert))
}

fn first_certificate(path: &Path) -> anyhow::Result<CertificateDer<'static>> {
    let mut certs = CertificateDer::pem_file_iter(path)?;
    Ok(certs.next().ok_or_else(|| anyhow!("no certificate in the file"))??)
}

async fn post(
    host: &str,
    port: u16,
    fingerprint: Option<String>,
    token: &str,
    body: Vec<u8>,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .with_context(|| format!("cannot connect to {host}:{port}"))?;
    let request = hyper::Request::builder()
        .method("POST")
        .uri("/api/v1/alerts")
        .header(hyper::header::HOST, format!("{host}:{port}"))
        .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(hyper::header::CONTENT_TYPE, "application/cap+xml")
        .body(Full::new(Bytes::from(body)))?;
    match fingerprint {
        Some(fingerprint) => {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = Arc::new(Pinned { fingerprint, provider: Arc::clone(&provider) });
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            let name = ServerName::try_from(host.to_owned())?;
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .with_context(|| format!("TLS with {host}:{port} failed"))?;
            exchange(tls, request).await
        }
        None => exchange(tcp, request).await,
    }
}

async fn exchange<S>(io: S, request: hyper::Request<Full<Bytes>>) -> anyhow::Result<(u16, Vec<u8>)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)).await?;
    tokio::spawn(conn);
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes().to_vec();
    Ok((status, body))
}

/// Trusts exactly one certificate, by its SHA-256.
#[derive(Debug)]
struct Pinned {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = crate::tls::fingerprint(end_entity);
        if crate::tokens::constant_time_eq(seen.as_bytes(), self.fingerprint.as_bytes()) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the server's certificate {seen} is not this controller's ({})",
                self.fingerprint
            )))
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
    fn urls_are_scheme_host_port() {
        assert_eq!(parse_url("https://127.0.0.1:8443").expect("ok"), (true, "127.0.0.1".into(), 8443));
        assert_eq!(parse_url("http://localhost:80/").expect("ok"), (false, "localhost".into(), 80));
        assert_eq!(parse_url("https://[::1]:8443").expect("ok"), (true, "::1".into(), 8443));
        for bad in ["127.0.0.1:8443", "https://host", "ftp://h:1", "https://h:port"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
