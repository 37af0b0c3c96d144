//! What every live bench needs: the release binaries, a controller on
//! loopback with a county, enrolled agents, the wall clock, and figures.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use dalaba_e2e::api::Api;
use dalaba_e2e::proc::Proc;
use serde_json::{Value, json};

/// `dalaba-controller` and `dalaba-agent` of this build's profile, built
/// first (only those two packages: a no-op when they are fresh).
#[derive(Debug, Clone)]
pub struct Bins {
    /// `dalaba-controller`.
    pub controller: PathBuf,
    /// `dalaba-agent`.
    pub agent: PathBuf,
}

impl Bins {
    /// Builds the two binaries in this bench's profile, unless
    /// `DALABA_SKIP_BUILD` is set.
    pub fn build() -> anyhow::Result<Bins> {
        let dir = dalaba_e2e::bins::target_dir();
        if std::env::var_os("DALABA_SKIP_BUILD").is_none() {
            let mut cmd = std::process::Command::new(env!("CARGO"));
            cmd.args(["build", "-p", "dalaba-controller", "-p", "dalaba-agent", "--bins"]);
            if dir.ends_with("release") {
                cmd.arg("--release");
            }
            let status = cmd.status().context("cargo does not run")?;
            anyhow::ensure!(status.success(), "building dalaba-controller and dalaba-agent failed");
        }
        Ok(Bins { controller: dir.join("dalaba-controller"), agent: dir.join("dalaba-agent") })
    }
}

/// A controller process on a loopback port of its own.
#[derive(Debug)]
pub struct Controller {
    /// The process, held so that it lives as long as this handle (it is
    /// killed on drop).
    #[allow(dead_code)]
    pub proc: Proc,
    /// Its process id.
    pub pid: u32,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// Its port.
    pub port: u16,
    /// A client for its API.
    pub api: Api,
}

impl Controller {
    /// Starts `dalaba-controller serve` with data under `dir`, the default
    /// heartbeat (15 s, timeout 45 s) and the tracing filter `log`.
    pub async fn start(bins: &Bins, dir: &Path, log: &str) -> anyhow::Result<Controller> {
        let port = free_port()?;
        let config =
            dalaba_e2e::controller_config(&format!("127.0.0.1:{port}"), &dir.join("data"), (15, 45), 20_000, log);
        let path = dir.join("controller.toml");
        std::fs::write(&path, config).with_context(|| format!("cannot write {}", path.display()))?;
        let path = path.to_str().context("temporary paths are UTF-8")?;
        let proc = Proc::spawn("controller", &bins.controller, &["--config", path, "serve"], &[])?;
        proc.wait_printed("serving at", Duration::from_secs(30)).await?;
        let pid = proc.pid().context("the controller exited at start")?;
        let url = format!("https://127.0.0.1:{port}");
        let api = Api::new(&url)?;
        Ok(Controller { proc, pid, url, port, api })
    }

    /// Imports a county of `townships` and `villages`; returns the village
    /// ids in code order.
    pub async fn import_county(&self, townships: usize, villages: usize) -> anyhow::Result<Vec<i64>> {
        self.api.import_county(townships, villages).await
    }

    /// One enrolment code for a village.
    pub async fn code(&self, village: i64) -> anyhow::Result<String> {
        let r = self.api.post(&format!("/api/v1/villages/{village}/enrolment-codes"), &json!({})).await?;
        anyhow::ensure!(r.status == 201, "creating a code answered {}: {}", r.status, r.text());
        Ok(r.json()["code"].as_str().context("no code in the answer")?.to_string())
    }

    /// Agents online, from `/metrics`.
    pub async fn online(&self) -> anyhow::Result<u64> {
        let text = self.api.get("/metrics").await?.text();
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("dalaba_agents_online "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64)
    }

    /// Waits until `n` agents are online (polling once a second).
    pub async fn wait_online(&self, n: u64, within: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let online = self.online().await.unwrap_or(0);
            if online >= n {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "only {online} of {n} agents online after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Uploads a mono 16-bit WAV to the library; returns the item id.
    pub async fn upload_wav(&self, title: &str, samples: &[i16]) -> anyhow::Result<i64> {
        let path = format!("/api/v1/library?filename=bench.wav&title={title}&category=health");
        let r = self.api.call("POST", &path, Some(wav(samples)), "audio/wav").await?;
        anyhow::ensure!(r.status == 201, "upload answered {}: {}", r.status, r.text());
        r.json()["id"].as_i64().context("no item id")
    }

    /// Starts a live session; returns its id.
    pub async fn start_live(&self, body: &Value) -> anyhow::Result<String> {
        let r = self.api.post("/api/v1/live", body).await?;
        anyhow::ensure!(r.status == 201, "starting the session answered {}: {}", r.status, r.text());
        Ok(r.json()["session_id"].as_str().context("no session id")?.to_owned())
    }

    /// A session's report.
    pub async fn session(&self, id: &str) -> anyhow::Result<Value> {
        let r = self.api.get(&format!("/api/v1/live/{id}")).await?;
        anyhow::ensure!(r.status == 200, "the session report answered {}: {}", r.status, r.text());
        Ok(r.json())
    }
}

/// A mono 16-bit 48 kHz WAV file.
pub fn wav(samples: &[i16]) -> Vec<u8> {
    let n = samples.len() as u32;
    let mut out = Vec::with_capacity(44 + 2 * samples.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + 2 * n).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(2 * RATE).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(2 * n).to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Every stream's sample rate.
pub const RATE: u32 = 48_000;

/// Wall clock now, Unix µs (the bench measures agents against it).
pub fn wall_us() -> i64 {
    #[allow(clippy::disallowed_methods)] // the harness measures against the wall clock
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind a port")?;
    Ok(l.local_addr()?.port())
}

/// The machine's load averages, as `uptime` shows them.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Lifts the soft open-file limit to `want` (or the hard limit).
pub fn raise_fd_limit(want: u64) -> anyhow::Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    if now.current.unwrap_or(u64::MAX) >= want {
        return Ok(());
    }
    let hard = now.maximum.unwrap_or(u64::MAX);
    let _ = setrlimit(Resource::Nofile, Rlimit { current: Some(want.min(hard)), maximum: now.maximum });
    let got = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    anyhow::ensure!(got >= want, "open-file limit {got} is below the {want} this run needs");
    Ok(())
}

/// Percentiles of a set of values.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spread {
    /// How many.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Smallest.
    pub min: f64,
}

impl Spread {
    /// The spread of `values` (nearest-rank percentiles).
    pub fn of(values: &[f64]) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let pct = |p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1];
        Spread { n: v.len(), p50: pct(0.50), p95: pct(0.95), p99: pct(0.99), max: v[v.len() - 1], min: v[0] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=200).map(f64::from).collect();
        let s = Spread::of(&values);
        assert_eq!((s.n, s.p50, s.p95, s.p99, s.max, s.min), (200, 100.0, 190.0, 198.0, 200.0, 1.0));
        assert_eq!(Spread::of(&[]).n, 0);
    }
}
