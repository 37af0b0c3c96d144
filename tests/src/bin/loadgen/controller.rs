//! A real `dalaba-controller serve` process for the bench, and the few API
//! calls the bench makes to it.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use dalaba_e2e::api::Api;
use dalaba_e2e::bins;
use dalaba_e2e::proc::Proc;
use serde_json::json;

/// Parallel API calls while creating enrolment codes; each call is its own
/// TLS connection, so a few in flight keep both cores busy.
const CODE_PARALLELISM: usize = 8;

/// A controller process serving on loopback.
#[derive(Debug)]
pub struct Controller {
    /// The process.
    pub proc: Proc,
    /// Its OS process id.
    pub pid: u32,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// A client for its API.
    pub api: Api,
}

/// The counters the bench reads from `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    /// `dalaba_agents_online`.
    pub online: u64,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// Status reports received.
    pub statuses: u64,
    /// Links welcomed.
    pub connects: u64,
    /// Link errors of any kind.
    pub errors: u64,
}

impl Controller {
    /// Starts a controller on a fresh loopback address whose data directory
    /// is `dir/data`, with the default heartbeat (15 s) and timeout (45 s),
    /// room for 20,000 links,
    /// and the tracing filter `log`. `env` is added to its environment
    /// (e.g. `MALLOC_ARENA_MAX`).
    pub async fn start(dir: &Path, log: &str, env: &[(&str, &str)]) -> anyhow::Result<Controller> {
        let (ip, port) = fresh_address()?;
        let config = dalaba_e2e::controller_config(&format!("{ip}:{port}"), &dir.join("data"), (15, 45), 20_000, log);
        let path = dir.join("controller.toml");
        std::fs::write(&path, config).with_context(|| format!("cannot write {}", path.display()))?;
        let path = path.to_str().context("temporary paths are UTF-8")?;
        let proc = Proc::spawn("controller", &bins::controller(), &["--config", path, "serve"], env)?;
        proc.wait_printed("serving at", Duration::from_secs(30)).await?;
        let pid = proc.pid().context("the controller exited at start")?;
        let url = format!("https://{ip}:{port}");
        let api = Api::new(&url)?;
        Ok(Controller { proc, pid, url, api })
    }

    /// Imports a county of `townships` and `villages`; returns the village
    /// ids in code order.
    pub async fn import_county(&self, townships: usize, villages: usize) -> anyhow::Result<Vec<i64>> {
        self.api.import_county(townships, villages).await
    }

    /// Creates one enrolment code for each of `villages` (ids may repeat).
    pub async fn enrolment_codes(&self, villages: &[i64]) -> anyhow::Result<Vec<String>> {
        let limit = Arc::new(tokio::sync::Semaphore::new(CODE_PARALLELISM));
        let mut jobs = tokio::task::JoinSet::new();
        for (i, &village) in villages.iter().enumerate() {
            let api = self.api.clone();
            let limit = Arc::clone(&limit);
            jobs.spawn(async move {
                let _permit = limit.acquire().await?;
                let r = api.post(&format!("/api/v1/villages/{village}/enrolment-codes"), &json!({})).await?;
                anyhow::ensure!(r.status == 201, "creating a code answered {}: {}", r.status, r.text());
                let code = r.json()["code"].as_str().context("no code in the answer")?.to_string();
                Ok((i, code))
            });
        }
        let mut codes = vec![String::new(); villages.len()];
        while let Some(done) = jobs.join_next().await {
            let (i, code) = done??;
            codes[i] = code;
        }
        Ok(codes)
    }

    /// Reads `/metrics`.
    pub async fn counters(&self) -> anyhow::Result<Counters> {
        let r = self.api.get("/metrics").await?;
        anyhow::ensure!(r.status == 200, "/metrics answered {}", r.status);
        Ok(parse_counters(&r.text()))
    }

    /// Polls `/metrics` once a second (each poll is a TLS handshake on the
    /// measured process, so not faster) until `n` agents are online; returns
    /// how long that took.
    pub async fn wait_online(&self, n: usize, within: Duration) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let mut last = Counters::default();
        while start.elapsed() < within {
            if let Ok(c) = self.counters().await {
                if c.online == n as u64 {
                    return Ok(start.elapsed());
                }
                last = c;
            }
            anyhow::ensure!(self.proc.pid().is_some(), "the controller exited");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        anyhow::bail!("only {} of {n} agents online after {within:?} ({} link errors so far)", last.online, last.errors)
    }
}

/// Picks the counters out of the Prometheus text.
fn parse_counters(text: &str) -> Counters {
    let mut c = Counters::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else { continue };
        let Ok(v) = value.trim().parse::<f64>() else { continue };
        let v = v as u64;
        match name {
            "dalaba_agents_online" => c.online = v,
            "dalaba_agent_connects_total" => c.connects = v,
            n if n.starts_with("dalaba_agent_messages_total") && n.contains("\"heartbeat\"") => c.heartbeats = v,
            n if n.starts_with("dalaba_agent_messages_total") && n.contains("\"status\"") => c.statuses = v,
            n if n.starts_with("dalaba_agent_link_errors_total") => c.errors += v,
            _ => {}
        }
    }
    c
}

/// Stops the controller and its agents without either noticing the other
/// go: the agents are frozen (SIGSTOP) so they close nothing, the
/// controller is killed holding every link (a heap profiler sees it whole,
/// and it writes no ten thousand "last seen" rows), then the agents.
pub async fn stop_both(ctl: &mut Controller, agents: &mut Proc) {
    if let Some(pid) = agents.pid().and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::STOP);
    }
    ctl.proc.kill().await;
    agents.kill().await;
}

/// A loopback address not used before in this run, and a port on it that
/// was free a moment ago.
///
/// Every server the bench starts gets its own address in 127.0.0.0/8. The
/// connections a run opens and closes (tens of thousands: API calls,
/// enrolments, links) leave sockets in TIME-WAIT on 127.0.0.1 for a minute,
/// and a later connect storm to the same address would spend its time
/// searching for a free source port.
pub fn fresh_address() -> anyhow::Result<(Ipv4Addr, u16)> {
    static NEXT: AtomicU8 = AtomicU8::new(10);
    let ip = Ipv4Addr::new(127, 0, 0, NEXT.fetch_add(1, Ordering::Relaxed));
    let l = std::net::TcpListener::bind((ip, 0)).with_context(|| format!("cannot bind a port on {ip}"))?;
    Ok((ip, l.local_addr()?.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_prometheus_counters() {
        let text = "# HELP dalaba_agents_online Agents\n\
                    dalaba_agents_online 10000\n\
                    dalaba_agent_connects_total 10003\n\
                    dalaba_agent_messages_total{type=\"heartbeat\"} 40000\n\
                    dalaba_agent_messages_total{type=\"status\"} 12000\n\
                    dalaba_agent_link_errors_total{kind=\"timeout\"} 2\n\
                    dalaba_agent_link_errors_total{kind=\"auth\"} 1\n";
        let c = parse_counters(text);
        assert_eq!((c.online, c.connects, c.heartbeats, c.statuses, c.errors), (10000, 10003, 40000, 12000, 3));
    }
}
