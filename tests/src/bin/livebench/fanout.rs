//! Fan-out: one live stream to N raw agent links on one controller.
//!
//! The links are held by this process (the protocol spoken by hand, as in
//! the e2e tests): each says hello, sends a heartbeat every 15 s, and for
//! every binary frame of the stream notes its sequence number and how long
//! after its capture time (the controller's wall clock when the frame was
//! fanned out) it arrived. The session plays a library item; the
//! controller's CPU is read from `/proc` over the stream's steady part.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use dalaba_agent::net::{ControllerUrl, open_link};
use dalaba_protocol::codec;
use dalaba_protocol::link::{AgentMessage, ControllerMessage, Heartbeat, Hello};
use dalaba_protocol::live::{Command, CommandAction, LiveFrame};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::procstat::Sample;
use crate::setup::{Bins, Controller, RATE, Spread, load, raise_fd_limit, wall_us};

/// A frame counts as in time when it arrives within this of its capture.
pub const IN_TIME_MS: usize = 100;

/// What the fan-out run measured.
#[derive(Debug, Clone)]
pub struct Fanout {
    /// Links.
    pub links: usize,
    /// Frames the controller sent per link (the stream's length).
    pub frames_sent: u64,
    /// Frames received over all links.
    pub received: u64,
    /// Of those, within [`IN_TIME_MS`] of capture.
    pub in_time: u64,
    /// Frames missing by sequence number, over all links.
    pub gaps: u64,
    /// Frames the controller dropped from full outboxes.
    pub dropped: u64,
    /// Capture → arrival, ms: p50, p99, max (1 ms buckets).
    pub delay: Spread,
    /// Controller CPU, % of one core: idle links, and during the stream.
    pub cpu_idle: f64,
    /// During the stream.
    pub cpu_stream: f64,
    /// Of which in the kernel (system time: socket writes, and on loopback
    /// the receiving side's TCP work, which runs in the sender's call).
    pub cpu_stream_kernel: f64,
    /// This process (the links' side) during the stream.
    pub cpu_bench: f64,
    /// The rest of the machine during the stream.
    pub cpu_other: f64,
    /// Controller RSS during the stream, MiB.
    pub rss_mib: f64,
    /// Load averages before and after.
    pub load: (String, String),
}

/// Per-link counts.
#[derive(Debug, Clone, Default)]
struct Seen {
    frames: u64,
    gaps: u64,
    last_seq: Option<u32>,
    /// Arrival − capture in 1 ms buckets; the last one is "1 s or more".
    delays: Vec<u64>,
}

/// Runs the fan-out bench with `links` raw links and a `secs`-second stream.
pub async fn run(bins: &Bins, links: usize, secs: u64) -> anyhow::Result<Fanout> {
    raise_fd_limit(links as u64 + 1024)?;
    let load_before = load();
    let dir = tempfile::tempdir()?;
    let ctl = Controller::start(bins, dir.path(), "warn").await?;
    let villages = ctl.import_county(14, 212).await?;
    let tone: Vec<i16> = (0..RATE as usize * secs as usize)
        .map(|i| (8_000.0 * (std::f64::consts::TAU * 440.0 * i as f64 / f64::from(RATE)).sin()) as i16)
        .collect();
    let item = ctl.upload_wav("fanout", &tone).await?;
    eprintln!("livebench: enrolling {links} raw agents");
    let identities = enrol(&ctl, &villages, links).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = JoinSet::new();
    let url = ControllerUrl::parse(&ctl.url)?;
    for id in identities {
        let (url, stop) = (url.clone(), Arc::clone(&stop));
        tasks.spawn(async move { hold(url, id, stop).await });
        // A gentle connect storm: the listen backlog is 128.
        tokio::task::yield_now().await;
    }
    ctl.wait_online(links as u64, Duration::from_secs(120)).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle0 = Sample::of(ctl.pid)?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle1 = Sample::of(ctl.pid)?;
    eprintln!("livebench: {links} links online; streaming {secs} s");
    let session = ctl
        .start_live(&json!({"title": "fan-out bench", "priority": "paging", "targets": {"county": true},
                            "source": {"type": "library_item", "item_id": item}}))
        .await?;
    // The steady part: from 5 s in to 5 s before the end.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let me = std::process::id();
    let (c0, b0, k0) = (Sample::of(ctl.pid)?, Sample::of(me)?, system_time(ctl.pid));
    tokio::time::sleep(Duration::from_secs(secs.saturating_sub(10).max(1))).await;
    let (c1, b1, k1) = (Sample::of(ctl.pid)?, Sample::of(me)?, system_time(ctl.pid));
    // The file plays out, then the session ends and the stop goes out.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let report = loop {
        let r = ctl.session(&session).await?;
        if !r["ended_at_ms"].is_null() || tokio::time::Instant::now() >= deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Seen { delays: vec![0; 1001], ..Seen::default() };
    while let Some(done) = tasks.join_next().await {
        let seen = done??;
        total.frames += seen.frames;
        total.gaps += seen.gaps;
        for (t, s) in total.delays.iter_mut().zip(&seen.delays) {
            *t += s;
        }
    }
    let dropped =
        report["agents"].as_array().map_or(0, |a| a.iter().filter_map(|a| a["frames_dropped"].as_u64()).sum());
    let in_time = total.delays.iter().take(IN_TIME_MS + 1).sum();
    let wall = c1.at.duration_since(c0.at).as_secs_f64().max(1e-9);
    let machine = c1.machine_busy.saturating_sub(c0.machine_busy).as_secs_f64();
    let ours = c1.cpu.saturating_sub(c0.cpu) + b1.cpu.saturating_sub(b0.cpu);
    Ok(Fanout {
        links,
        frames_sent: report["frames_sent"].as_u64().unwrap_or(0),
        received: total.frames,
        in_time,
        gaps: total.gaps,
        dropped,
        delay: histogram_spread(&total.delays),
        cpu_idle: idle1.cpu_percent_since(&idle0),
        cpu_stream: c1.cpu_percent_since(&c0),
        cpu_stream_kernel: 100.0 * k1.saturating_sub(k0).as_secs_f64() / wall,
        cpu_bench: b1.cpu_percent_since(&b0),
        cpu_other: (100.0 * (machine - ours.as_secs_f64()) / wall).max(0.0),
        rss_mib: c1.rss_kib as f64 / 1024.0,
        load: (load_before, load()),
    })
}

/// Enrols `n` agents round-robin over `villages`, 16 at a time.
async fn enrol(ctl: &Controller, villages: &[i64], n: usize) -> anyhow::Result<Vec<dalaba_agent::identity::Identity>> {
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    let mut jobs = JoinSet::new();
    for i in 0..n {
        let (api_ctl_url, village, limit) = (ctl.url.clone(), villages[i % villages.len()], Arc::clone(&limit));
        let api = ctl.api.clone();
        jobs.spawn(async move {
            let _permit = limit.acquire().await?;
            let r = api.post(&format!("/api/v1/villages/{village}/enrolment-codes"), &json!({})).await?;
            anyhow::ensure!(r.status == 201, "creating a code answered {}: {}", r.status, r.text());
            let code = r.json()["code"].as_str().context("no code")?.to_string();
            let hw = dalaba_agent::simulate::simulated_hardware();
            dalaba_agent::identity::enrol(&api_ctl_url, &code, &format!("raw-{i}"), hw, None).await
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(done) = jobs.join_next().await {
        out.push(done??);
    }
    Ok(out)
}

/// One raw agent link until `stop`: hello, heartbeats, frames counted.
async fn hold(url: ControllerUrl, id: dalaba_agent::identity::Identity, stop: Arc<AtomicBool>) -> anyhow::Result<Seen> {
    let mut link = open_link(&url, &id.controller_cert_sha256, &id.authorization()).await?;
    let hello = AgentMessage::Hello(Hello {
        protocol_version: dalaba_protocol::PROTOCOL_VERSION,
        agent_version: "livebench".into(),
        hardware: dalaba_agent::simulate::simulated_hardware(),
    });
    link.send(Message::Text(codec::encode(&hello).into())).await?;
    let mut seen = Seen { delays: vec![0; 1001], ..Seen::default() };
    let mut stream_id = None;
    let mut beat = tokio::time::interval(Duration::from_secs(15));
    let mut check = tokio::time::interval(Duration::from_millis(500));
    let mut hb = 0u64;
    loop {
        let msg = tokio::select! {
            m = link.next() => m,
            _ = beat.tick() => {
                hb += 1;
                let m = AgentMessage::Heartbeat(Heartbeat { seq: hb, sent_at_ms: wall_us() / 1000 });
                link.send(Message::Text(codec::encode(&m).into())).await?;
                continue;
            }
            _ = check.tick() => {
                if stop.load(Ordering::Relaxed) {
                    return Ok(seen);
                }
                continue;
            }
        };
        let Some(Ok(msg)) = msg else { anyhow::bail!("agent {}: the link closed", id.agent_id) };
        match msg {
            Message::Binary(bytes) => {
                let arrived = wall_us();
                let Ok(f) = LiveFrame::decode(&bytes) else { continue };
                if Some(f.stream_id) != stream_id {
                    continue;
                }
                if let Some(last) = seen.last_seq {
                    seen.gaps += u64::from(f.seq.wrapping_sub(last).saturating_sub(1));
                }
                seen.last_seq = Some(f.seq);
                seen.frames += 1;
                let ms = usize::try_from((arrived - f.capture_us).max(0) / 1000).unwrap_or(usize::MAX);
                seen.delays[ms.min(1000)] += 1;
            }
            Message::Text(t) => {
                if let Ok(ControllerMessage::Command(signed)) =
                    codec::decode_with_limit::<ControllerMessage>(&t, dalaba_protocol::MAX_CONTROLLER_FRAME)
                    && let Ok(command) = serde_json::from_str::<Command>(&signed.payload)
                    && let CommandAction::LiveStart(s) = command.action
                {
                    stream_id = Some(s.stream_id);
                }
            }
            _ => {}
        }
    }
}

/// System (kernel) CPU time of a process: `stime`, field 15 of
/// `/proc/PID/stat`.
fn system_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let ticks: u64 = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(15 - 3))
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    Duration::from_micros(ticks * 1_000_000 / rustix::param::clock_ticks_per_second().max(1))
}

/// Percentiles from 1 ms buckets.
fn histogram_spread(buckets: &[u64]) -> Spread {
    let n: u64 = buckets.iter().sum();
    if n == 0 {
        return Spread::default();
    }
    let at = |p: f64| -> f64 {
        let rank = ((n as f64 * p).ceil() as u64).clamp(1, n);
        let mut acc = 0;
        for (ms, c) in buckets.iter().enumerate() {
            acc += c;
            if acc >= rank {
                return ms as f64;
            }
        }
        (buckets.len() - 1) as f64
    };
    let min = buckets.iter().position(|c| *c > 0).unwrap_or(0) as f64;
    Spread { n: n as usize, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: at(1.0), min }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_from_buckets() {
        let mut b = vec![0u64; 1001];
        b[3] = 90;
        b[40] = 9;
        b[1000] = 1;
        let s = histogram_spread(&b);
        assert_eq!((s.n, s.p50, s.p95, s.p99, s.max, s.min), (100, 3.0, 40.0, 40.0, 1000.0, 3.0));
    }
}
