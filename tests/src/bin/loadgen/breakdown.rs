//! Where a link's memory goes, by layers: a fresh controller holding N
//! connections that stop at each layer of the stack.
//!
//! - TCP: connected, not a byte sent. The controller has accepted, spawned
//!   the connection task (sized for its largest state, hyper included),
//!   registered the socket with the reactor, armed the handshake timer and
//!   created the rustls acceptor. The controller drops these after its 10 s
//!   TLS handshake timeout, so they are counted within that.
//! - TLS: handshake done, no HTTP request. Adds the rustls server connection
//!   (keys, record buffers) and hyper's HTTP/1 connection with its read
//!   buffer. Dropped after the 30 s request-header timeout.
//! - Link: the full agent link, from [`crate::links`]: adds the WebSocket
//!   (upgrade, 4 KiB read buffer), the link task and its timers, and the
//!   presence entry.
//!
//! Each layer gets its own controller, because memory freed by one layer
//! stays in the allocator and would hide the next layer's cost. The layers
//! are not strictly nested: a connection waiting for its request holds
//! hyper's request buffers, which a linked one has given back.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use dalaba_agent::net::{ControllerUrl, Io, Trust, connect};
use tokio::net::TcpStream;

use crate::controller::Controller;
use crate::links::Settings;
use crate::procstat::{Sample, fd_count};

/// Connections opened at once. The controller's listen backlog is 128 (the
/// tokio default); loopback SYNs beyond it are retried after a second.
const PARALLEL: usize = 128;

/// The controller's TLS handshake timeout (controller/src/server.rs).
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The controller's request header timeout (controller/src/server.rs).
const REQUEST_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Which layer the connections stop at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// TCP established, nothing sent.
    Tcp,
    /// TLS established, no HTTP request.
    Tls,
}

/// One layer's figures.
#[derive(Debug, Clone)]
pub struct LayerRow {
    /// The layer.
    pub layer: Layer,
    /// Connections the controller held when sampled.
    pub n: usize,
    /// The controller before.
    pub base: Sample,
    /// The controller holding them.
    pub held: Sample,
    /// How long opening them took.
    pub open: Duration,
}

impl LayerRow {
    /// RSS growth per connection, KiB.
    pub fn kib_per_connection(&self) -> f64 {
        (self.held.rss_kib as f64 - self.base.rss_kib as f64) / self.n as f64
    }
}

/// Starts a controller on a fresh data directory, opens `n` connections
/// that stop at `layer`, and samples the controller once it holds them.
pub async fn layer(layer: Layer, n: usize, settings: &Settings) -> anyhow::Result<LayerRow> {
    let dir = tempfile::tempdir().context("no temporary directory")?;
    let env: Vec<(&str, &str)> = settings.controller_env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut ctl = Controller::start(dir.path(), &settings.controller_log, &env).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let base = Sample::of(ctl.pid)?;
    let url = ControllerUrl::parse(&ctl.url)?;
    let started = Instant::now();
    let held = open_all(&url, layer, n).await?;
    let open = started.elapsed();
    // Every connection is one descriptor in the controller once accepted;
    // for TLS the server finishes the handshake a moment after the client.
    // Sample promptly: the oldest connections are dropped by the
    // controller's timeouts. A few may still wait in the accept queue
    // (established for the client, not yet for the server); the figures are
    // per connection actually held.
    let deadline = Instant::now() + Duration::from_secs(1);
    while fd_count(ctl.pid) < base.fds + n as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sample = Sample::of(ctl.pid)?;
    let count = sample.fds.saturating_sub(base.fds) as usize;
    // Until the timeout no connection has been dropped, so the memory in
    // the sample is all held by `count` connections.
    let timeout = match layer {
        Layer::Tcp => TLS_HANDSHAKE_TIMEOUT,
        Layer::Tls => REQUEST_HEADER_TIMEOUT,
    };
    anyhow::ensure!(
        sample.at.duration_since(started) < timeout && count >= n / 2,
        "{layer:?}: the controller holds {count} of {n} connections after {:?}; its timeout is {timeout:?}",
        sample.at.duration_since(started)
    );
    // Kill the controller first, so that it (and a heap profiler in it)
    // ends holding every connection.
    ctl.proc.kill().await;
    drop(held);
    Ok(LayerRow { layer, n: count, base, held: sample, open })
}

async fn open_all(url: &ControllerUrl, layer: Layer, n: usize) -> anyhow::Result<Vec<Box<dyn Io>>> {
    let limit = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut jobs = tokio::task::JoinSet::new();
    for _ in 0..n {
        let url = url.clone();
        let limit = Arc::clone(&limit);
        jobs.spawn(async move {
            let _permit = limit.acquire().await?;
            let held: Box<dyn Io> = match layer {
                Layer::Tcp => Box::new(
                    TcpStream::connect((url.host.as_str(), url.port)).await.context("TCP connect to the controller")?,
                ),
                // Capture trusts whatever certificate the controller shows,
                // as the e2e tests' API client does.
                Layer::Tls => connect(&url, Trust::Capture(Arc::new(Mutex::new(None)))).await?,
            };
            anyhow::Ok(held)
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(done) = jobs.join_next().await {
        out.push(done??);
    }
    Ok(out)
}
