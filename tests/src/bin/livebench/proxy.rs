//! An impairing TCP proxy (no `tc netem` here): delay, jitter and loss as
//! a TCP connection shows them to the application.
//!
//! Each chunk read from one side is written to the other after a delay
//! drawn uniformly from `delay ± jitter`; with probability `loss` the
//! chunk is "lost" and arrives only after an extra retransmission time
//! (`rto`, like TCP's minimum RTO of 200 ms). TCP never reorders, so a
//! chunk never overtakes the one before it: its write time is at least the
//! previous chunk's (a late chunk holds back everything behind it, TCP's
//! head-of-line blocking). Both directions are impaired alike. The model
//! leaves out what real TCP adds beyond that: congestion-window shrinking
//! after a loss and retransmission of several segments.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How the proxy impairs the link.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Mean one-way delay.
    pub delay: Duration,
    /// Half-width of the uniform spread around it.
    pub jitter: Duration,
    /// Probability that a chunk is lost and retransmitted.
    pub loss: f64,
    /// Extra delay of a retransmitted chunk.
    pub rto: Duration,
}

/// Counters of what the proxy did.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Chunks forwarded.
    pub chunks: AtomicU64,
    /// Chunks "lost" (held back for a retransmission).
    pub lost: AtomicU64,
}

/// Starts the proxy on a loopback port in front of `upstream`; returns the
/// port and the counters. Runs until the runtime ends.
pub async fn start(upstream: u16, imp: Impairment, seed: u64) -> anyhow::Result<(u16, Arc<ProxyStats>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let stats = Arc::new(ProxyStats::default());
    let counters = Arc::clone(&stats);
    tokio::spawn(async move {
        let mut n = 0u64;
        while let Ok((down, _)) = listener.accept().await {
            n += 1;
            let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)).await else { continue };
            let _ = (down.set_nodelay(true), up.set_nodelay(true));
            let (dr, dw) = down.into_split();
            let (ur, uw) = up.into_split();
            let s = seed.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            tokio::spawn(pipe(dr, uw, imp, Rng(s | 1), Arc::clone(&counters)));
            tokio::spawn(pipe(ur, dw, imp, Rng((s ^ 0xdead_beef) | 1), Arc::clone(&counters)));
        }
    });
    Ok((port, stats))
}

/// One direction: a reader stamping each chunk with its write time, a
/// writer writing at those times.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    imp: Impairment,
    mut rng: Rng,
    stats: Arc<ProxyStats>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut last = Instant::now();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let at = schedule(Instant::now(), last, imp, &mut rng, &stats);
        last = at;
        if tx.send((at, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// The write time of a chunk read at `now` when the previous one is
/// written at `last`.
fn schedule(now: Instant, last: Instant, imp: Impairment, rng: &mut Rng, stats: &ProxyStats) -> Instant {
    let spread = imp.jitter.as_secs_f64() * (2.0 * rng.unit() - 1.0);
    let mut delay = (imp.delay.as_secs_f64() + spread).max(0.0);
    stats.chunks.fetch_add(1, Ordering::Relaxed);
    if rng.unit() < imp.loss {
        stats.lost.fetch_add(1, Ordering::Relaxed);
        delay += imp.rto.as_secs_f64();
    }
    (now + Duration::from_secs_f64(delay)).max(last)
}

/// xorshift64*: reproducible and good enough for drawing delays.
struct Rng(u64);

impl Rng {
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMP: Impairment = Impairment {
        delay: Duration::from_millis(60),
        jitter: Duration::from_millis(30),
        loss: 0.01,
        rto: Duration::from_millis(200),
    };

    #[test]
    fn delays_spread_around_the_mean_keep_order_and_one_in_a_hundred_waits_an_rto() {
        let mut rng = Rng(7);
        let stats = ProxyStats::default();
        let t0 = Instant::now();
        let mut last = t0;
        let mut delays = Vec::new();
        for k in 0..10_000u32 {
            let now = t0 + Duration::from_millis(20) * k;
            let at = schedule(now, last, IMP, &mut rng, &stats);
            assert!(at >= last, "order kept");
            last = at;
            delays.push(at.duration_since(now).as_secs_f64() * 1000.0);
        }
        let lost = stats.lost.load(Ordering::Relaxed);
        assert!((60..=140).contains(&lost), "{lost} of 10000 lost");
        let within = delays.iter().filter(|d| (30.0..=90.0).contains(*d)).count();
        // Chunks behind a retransmission wait for it (about ten each time).
        assert!(within > 8_000, "{within} within 60 ± 30 ms");
        let mean = delays.iter().sum::<f64>() / delays.len() as f64;
        assert!((60.0..85.0).contains(&mean), "mean {mean} ms");
        assert!(delays.iter().any(|d| *d > 230.0), "a retransmission shows");
    }

    #[tokio::test]
    async fn forwards_bytes_in_order_both_ways() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let up_port = upstream.local_addr().expect("addr").port();
        let fast = Impairment { delay: Duration::from_millis(2), jitter: Duration::from_millis(1), ..IMP };
        let (port, _) = start(up_port, fast, 1).await.expect("proxy");
        let echo = tokio::spawn(async move {
            let (mut s, _) = upstream.accept().await.expect("accept");
            let mut buf = vec![0u8; 1000];
            s.read_exact(&mut buf).await.expect("read");
            s.write_all(&buf).await.expect("echo");
        });
        let mut c = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        let sent: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        for part in sent.chunks(10) {
            c.write_all(part).await.expect("write");
        }
        let mut back = vec![0u8; 1000];
        c.read_exact(&mut back).await.expect("read back");
        assert_eq!(back, sent);
        echo.await.expect("echo task");
    }
}
