//! Builds a controller from a validated configuration and starts it.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use dalaba_protocol::state::PlaybackSettings;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState, Settings};
use crate::clock::Clock;
use crate::config::Config;
use crate::distribution::Distribution;
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::signing::CommandSigner;
use crate::store::Store;
use crate::store::sqlite::SqliteStore;
use crate::tls;

/// A controller that is serving.
#[derive(Debug)]
pub struct Running {
    /// The bound address (useful when the configuration asked for port 0).
    pub addr: SocketAddr,
    /// `https` or `http`.
    pub scheme: &'static str,
    /// Shared state, for the demo and tests.
    pub state: AppState,
    /// Cancel to stop serving.
    pub shutdown: CancellationToken,
    /// The server task.
    pub task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// The base URL agents and browsers use.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }
}

/// Opens the data directory and store, loads or creates keys, binds the
/// listener and starts serving.
pub async fn start(config: &Config, clock: Clock) -> anyhow::Result<Running> {
    raise_fd_limit();
    let data_dir = &config.storage.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let db_path = data_dir.join("dalaba.db");
    let store = SqliteStore::open(&db_path).with_context(|| format!("cannot open database {}", db_path.display()))?;
    // Online intervals a crash left open end at the last sign of life the
    // store knows (reports count the rest as offline).
    match store.close_open_presence() {
        Ok(0) => {}
        Ok(n) => tracing::info!(intervals = n, "closed presence intervals left open by the last run"),
        Err(e) => tracing::error!(error = %e, "cannot close presence intervals left open"),
    }
    let started_ms = clock.now_ms();
    // Settings changed in the file since the last start go on record.
    match crate::config_history::record(&store, config, started_ms) {
        Ok(changes) if changes.is_empty() => {}
        Ok(changes) => tracing::info!(changes = %changes.join("; "), "configuration on record"),
        Err(e) => tracing::error!(error = %e, "cannot record the configuration"),
    }
    let signer = CommandSigner::load_or_generate(data_dir)?;
    let identity = if config.server.plain_http {
        None
    } else {
        let (cert, key) = (&config.server.tls_cert, &config.server.tls_key);
        let configured = (!cert.is_empty()).then(|| (std::path::Path::new(cert), std::path::Path::new(key)));
        Some(tls::load_or_generate(
            configured.map(|c| c.0),
            configured.map(|c| c.1),
            data_dir,
            &config.server.tls_names,
        )?)
    };
    let settings = Settings {
        heartbeat_interval: config.link.heartbeat_interval(),
        heartbeat_timeout: config.link.heartbeat_timeout(),
        max_connections: config.link.max_connections,
        code_ttl: std::time::Duration::from_secs(config.enrolment.code_ttl_minutes * 60),
        cert_fingerprint: identity.as_ref().map(|i| i.fingerprint.clone()).unwrap_or_default(),
        signing_key: signer.public_info(),
        alerts: config.alerts.settings(),
    };
    let state = AppState {
        store: Arc::new(store),
        presence: Arc::new(Presence::new()),
        metrics: Arc::new(Metrics::new()),
        clock,
        settings: Arc::new(settings),
        library: Arc::new(
            crate::library::Library::open(data_dir, config.library.settings())
                .with_context(|| format!("cannot open the content directory in {}", data_dir.display()))?,
        ),
        distribution: Arc::new(Distribution::new(PlaybackSettings::default())),
        live: Arc::new(crate::live::Live::new(signer).with_host_input(&config.live.host_input)),
        accounts: Arc::new(crate::accounts::guard::Accounts::new(config.accounts.sessions())),
        alarms: Arc::new(crate::alarms::Alarms::new(config.alarms.settings(), started_ms)),
    };
    let listener =
        listen(config.server.listen).with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    tokio::spawn(crate::distribution::run(state.clone(), shutdown.clone()));
    tokio::spawn(crate::alarms::run(state.clone(), shutdown.clone()));
    let app = api::router(state.clone());
    let task = tokio::spawn(crate::server::serve(
        listener,
        identity.as_ref().map(|i| Arc::clone(&i.server_config)),
        app,
        shutdown.clone(),
    ));
    let scheme = if identity.is_some() { "https" } else { "http" };
    tracing::info!(
        %addr,
        scheme,
        fingerprint = identity.as_ref().map(|i| i.fingerprint.as_str()).unwrap_or("-"),
        "controller listening"
    );
    Ok(Running { addr, scheme, state, shutdown, task })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}

/// Pending connections the kernel queues for `accept`. Tokio's `bind` uses
/// 128; an agent reconnect storm overflows that, and every dropped SYN costs
/// its agent a one-second retransmission (docs/benchmarks.md). The kernel
/// caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` with a listen backlog of [`LISTEN_BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Raises the soft limit on open files to the hard limit: every agent link
/// is a file descriptor, and the usual soft limit (1024) would cap the
/// controller far below the 10,000 agents it is built to hold.
pub fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
        }
    }
    let now = getrlimit(Resource::Nofile).current;
    tracing::debug!(open_files = ?now, "open-file limit");
}
