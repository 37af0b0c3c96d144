//! An in-test TCP proxy for network faults (`tc netem` is not available
//! here): put it between an agent and the controller, then [`Proxy::cut`]
//! every connection through it and refuse new ones until
//! [`Proxy::restore`]. It knows nothing of TLS or WebSockets; bytes pass
//! untouched, so the agent's pinned certificate still holds.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A TCP proxy on a loopback port. Stops, closing every connection, when
/// dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    /// Whether new connections are forwarded (else closed at once).
    open: AtomicBool,
    /// Bumped by every cut: connections end when it changes (or when the
    /// proxy is dropped and the sender with it).
    generation: watch::Sender<u64>,
    /// When each forwarded connection was accepted.
    forwarded: Mutex<Vec<Instant>>,
}

impl Proxy {
    /// A proxy on `127.0.0.1:<free port>` forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            open: AtomicBool::new(true),
            generation: watch::Sender::new(0),
            forwarded: Mutex::new(Vec::new()),
        });
        let s = Arc::clone(&shared);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !s.open.load(Ordering::SeqCst) {
                    // Refused: the peer sees the connection close.
                    drop(client);
                    continue;
                }
                s.forwarded.lock().unwrap_or_else(|e| e.into_inner()).push(Instant::now());
                let mut cut = s.generation.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else { return };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        // A cut, or the proxy dropped: both sockets close here.
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Ok(Proxy { addr, shared, accept })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every open connection and refuses new ones.
    pub fn cut(&self) {
        self.shared.open.store(false, Ordering::SeqCst);
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.shared.open.store(true, Ordering::SeqCst);
    }

    /// When each forwarded connection was accepted, in order.
    pub fn forwarded(&self) -> Vec<Instant> {
        self.shared.forwarded.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
