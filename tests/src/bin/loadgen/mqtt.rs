//! A peer measured beside the controller: Mosquitto (Debian's `mosquitto`)
//! holding the same number of idle MQTT-over-TLS clients with a 15 s
//! keepalive, the nearest off-the-shelf equivalent of an agent link.
//!
//! The clients live in this process and speak just enough MQTT 3.1.1 by
//! hand: CONNECT, then PINGREQ every 15 s (the heartbeat) and a QoS 0
//! PUBLISH of a status-sized payload right away and every 60 s (the status
//! report). The broker's certificate is ECDSA P-256, as the controller's.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use dalaba_agent::net::{ControllerUrl, Io, Trust, connect};
use dalaba_e2e::proc::Proc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::controller::fresh_address;
use crate::links::Settings;
use crate::procstat::Sample;

/// Clients connecting at once.
const PARALLEL: usize = 64;
/// MQTT keepalive, as the agents' heartbeat interval.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// A status report goes out every this many pings (60 s).
const PINGS_PER_STATUS: u64 = 4;

/// The broker's figures.
#[derive(Debug, Clone)]
pub struct PeerRow {
    /// Which broker.
    pub name: String,
    /// Clients held.
    pub n: usize,
    /// Start of the clients to every CONNACK.
    pub connect: Duration,
    /// The broker before any client.
    pub base: Sample,
    /// The broker holding every client, after the settle time.
    pub held: Sample,
    /// The broker at the end of the CPU window.
    pub end: Sample,
    /// MQTT packets the clients sent per second in the window.
    pub messages_per_sec: f64,
}

impl PeerRow {
    /// RSS growth per client, KiB.
    pub fn kib_per_client(&self) -> f64 {
        (self.held.rss_kib as f64 - self.base.rss_kib as f64) / self.n as f64
    }

    /// CPU across the window, % of one core.
    pub fn cpu_percent(&self) -> f64 {
        self.end.cpu_percent_since(&self.held)
    }

    /// CPU used across the window by everything but the broker (the
    /// clients in this process included), % of one core.
    pub fn other_cpu_percent(&self) -> f64 {
        let wall = self.end.at.duration_since(self.held.at).as_secs_f64().max(1e-9);
        let machine = self.end.machine_busy.saturating_sub(self.held.machine_busy);
        let other = machine.saturating_sub(self.end.cpu.saturating_sub(self.held.cpu));
        100.0 * other.as_secs_f64() / wall
    }
}

/// Where `mosquitto` is installed, if it is.
pub fn find_mosquitto() -> Option<PathBuf> {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Runs `mosquitto` on loopback with `n` TLS clients and measures it the
/// same way as the controller.
pub async fn bench(mosquitto: &Path, n: usize, settings: &Settings) -> anyhow::Result<PeerRow> {
    let dir = tempfile::tempdir().context("no temporary directory")?;
    let (ip, port) = fresh_address()?;
    write_config(dir.path(), ip, port)?;
    let conf = dir.path().join("mosquitto.conf");
    let mut broker =
        Proc::spawn("mosquitto", mosquitto, &["-c", conf.to_str().context("temporary paths are UTF-8")?], &[])?;
    let pid = broker.pid().context("mosquitto exited at start")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect((ip, port)).await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "mosquitto did not listen on {port} within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let base = Sample::of(pid)?;

    let url = ControllerUrl::parse(&format!("https://{ip}:{port}"))?;
    let connected = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let limit = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut clients = tokio::task::JoinSet::new();
    let started = Instant::now();
    for id in 0..n {
        let (url, connected, sent, limit) =
            (url.clone(), Arc::clone(&connected), Arc::clone(&sent), Arc::clone(&limit));
        clients.spawn(async move { client(&url, id, &limit, &connected, &sent).await });
    }
    let within = Duration::from_secs(60) + Duration::from_millis(10) * n as u32;
    while connected.load(Ordering::Relaxed) < n as u64 {
        if let Some(Ok(Err(e))) = clients.try_join_next() {
            anyhow::bail!("an MQTT client failed: {e:#}");
        }
        anyhow::ensure!(
            started.elapsed() < within,
            "only {} of {n} MQTT clients connected",
            connected.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let connect = started.elapsed();
    eprintln!("loadgen: mosquitto: {n} clients connected after {:.1} s; settling", connect.as_secs_f64());
    tokio::time::sleep(settings.settle).await;

    let held = Sample::of(pid)?;
    let sent_before = sent.load(Ordering::Relaxed);
    tokio::time::sleep(settings.window).await;
    let end = Sample::of(pid)?;
    let sent_in_window = sent.load(Ordering::Relaxed) - sent_before;
    if let Some(Ok(Err(e))) = clients.try_join_next() {
        anyhow::bail!("an MQTT client failed during the window: {e:#}");
    }
    clients.abort_all();
    broker.kill().await;
    let messages_per_sec = sent_in_window as f64 / end.at.duration_since(held.at).as_secs_f64().max(1e-9);
    Ok(PeerRow { name: version(mosquitto).await, n, connect, base, held, end, messages_per_sec })
}

/// One client: connect, then ping and report until aborted.
async fn client(
    url: &ControllerUrl,
    id: usize,
    limit: &tokio::sync::Semaphore,
    connected: &AtomicU64,
    sent: &AtomicU64,
) -> anyhow::Result<()> {
    let mut io = {
        let _permit = limit.acquire().await?;
        // Capture accepts the broker's self-signed certificate.
        let mut io = connect(url, Trust::Capture(Arc::new(Mutex::new(None)))).await?;
        io.write_all(&connect_packet(&format!("load-{id:05}"), KEEPALIVE)).await?;
        io.flush().await?;
        let mut ack = [0u8; 4];
        io.read_exact(&mut ack).await.context("no CONNACK")?;
        anyhow::ensure!(ack == [0x20, 0x02, 0x00, 0x00], "CONNACK refused: {ack:02x?}");
        io
    };
    connected.fetch_add(1, Ordering::Relaxed);
    let topic = format!("dalaba/status/load-{id:05}");
    let mut pings = 0u64;
    loop {
        if pings.is_multiple_of(PINGS_PER_STATUS) {
            io.write_all(&publish_packet(&topic, &[b'x'; 200])).await?;
            sent.fetch_add(1, Ordering::Relaxed);
        }
        if pings > 0 {
            ping(&mut io).await?;
            sent.fetch_add(1, Ordering::Relaxed);
        }
        pings += 1;
        tokio::time::sleep(KEEPALIVE).await;
    }
}

async fn ping(io: &mut Box<dyn Io>) -> anyhow::Result<()> {
    io.write_all(&[0xc0, 0x00]).await?;
    io.flush().await?;
    let mut resp = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(10), io.read_exact(&mut resp)).await.context("no PINGRESP in 10 s")??;
    anyhow::ensure!(resp == [0xd0, 0x00], "expected PINGRESP, got {resp:02x?}");
    Ok(())
}

/// MQTT 3.1.1 CONNECT with a clean session.
fn connect_packet(client_id: &str, keepalive: Duration) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02];
    body.extend_from_slice(&(keepalive.as_secs() as u16).to_be_bytes());
    push_str(&mut body, client_id);
    packet(0x10, &body)
}

/// MQTT QoS 0 PUBLISH.
fn publish_packet(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(topic.len() + payload.len() + 2);
    push_str(&mut body, topic);
    body.extend_from_slice(payload);
    packet(0x30, &body)
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A fixed header (type and flags, variable-length remaining length) and
/// the body.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

fn write_config(dir: &Path, ip: Ipv4Addr, port: u16) -> anyhow::Result<()> {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), ip.to_string()])
        .context("cannot generate a certificate")?;
    std::fs::write(dir.join("cert.pem"), key.cert.pem())?;
    std::fs::write(dir.join("key.pem"), key.signing_key.serialize_pem())?;
    // `user root` keeps a broker started by root from switching to the
    // `mosquitto` user, who could not read the temporary directory; for
    // anyone else the setting does nothing.
    let conf = format!(
        "listener {port} {ip}\n\
         certfile {dir}/cert.pem\n\
         keyfile {dir}/key.pem\n\
         allow_anonymous true\n\
         persistence false\n\
         connection_messages false\n\
         log_dest stderr\n\
         log_type error\n\
         log_type warning\n\
         user root\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("mosquitto.conf"), conf)?;
    Ok(())
}

async fn version(mosquitto: &Path) -> String {
    let out = tokio::process::Command::new(mosquitto).arg("-h").output().await;
    out.ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(|l| l.trim().to_string()))
        .and_then(|l| {
            l.split_whitespace().find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit())).map(String::from)
        })
        .map(|v| format!("Mosquitto {v}"))
        .unwrap_or_else(|| "Mosquitto".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_mqtt_packets() {
        let c = connect_packet("a", Duration::from_secs(15));
        assert_eq!(c, [0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 15, 0, 1, b'a']);
        let p = publish_packet("t", &[b'x'; 200]);
        // Remaining length 203 = 0xcb 0x01 in two bytes.
        assert_eq!(&p[..5], &[0x30, 0xcb, 0x01, 0, 1]);
        assert_eq!(p.len(), 3 + 203);
    }
}
