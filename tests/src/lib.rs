//! Shared helpers for the end-to-end tests and benchmarks: start real
//! `dalaba-controller` and `dalaba-agent` processes, talk to the controller's
//! API over HTTPS, and wait on conditions with deadlines (never on sleeps).
//!
//! # Layout
//! - [`bins`]: locating (and if needed building) the two binaries.
//! - [`proc`]: child processes that are killed when dropped.
//! - [`proxy`]: a TCP proxy that cuts connections on demand.
//! - [`pulse`]: capturing an agent's audio, paced in real time.
//! - [`relay`]: Modbus RTU and raw serial relay boards on pseudo-terminals.
//! - [`api`]: a small HTTPS client for the controller's JSON API.
//! - [`audio`]: test tones, ALSA's `file` plugin capture, the county's calendar.
//! - [`webdriver`]: headless Chromium through chromedriver.
//! - [`wait_for`]: polling a condition until a deadline.

pub mod api;
pub mod audio;
pub mod bins;
pub mod proc;
pub mod proxy;
pub mod pulse;
pub mod relay;
pub mod webdriver;

use std::future::Future;
use std::time::Duration;

/// Polls `check` every 50 ms until it returns `Some`, or fails after
/// `within` with `what` in the message.
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A controller configuration for tests and benchmarks: HTTPS with a
/// generated certificate on `listen`, data in `data_dir`.
pub fn controller_config(
    listen: &str,
    data_dir: &std::path::Path,
    heartbeat: (u64, u64),
    max_connections: usize,
    log: &str,
) -> String {
    let (interval, timeout) = heartbeat;
    format!(
        r#"
[server]
listen = "{listen}"
plain_http = false
allow_plain_http_on_network = false
tls_cert = ""
tls_key = ""
tls_names = ["localhost", "127.0.0.1"]
[storage]
data_dir = "{data}"
[link]
heartbeat_interval_secs = {interval}
heartbeat_timeout_secs = {timeout}
max_connections = {max_connections}
[enrolment]
code_ttl_minutes = 1440
[log]
format = "text"
level = "{log}"
"#,
        data = data_dir.display()
    )
}

/// A CSV directory of one county, `townships` townships and `villages`
/// villages spread over them, in the import format.
pub fn county_csv(townships: usize, villages: usize) -> String {
    let mut out = String::from("level,code,name,parent_code,latitude,longitude,tags\n");
    out.push_str("county,620821000000,测试县,,,,\n");
    for t in 0..townships {
        out.push_str(&format!("township,620821{:03}000,第{}乡,620821000000,,,\n", 100 + t, t + 1));
    }
    for v in 0..villages {
        let t = v % townships;
        let n = v / townships;
        out.push_str(&format!(
            "village,620821{:03}{:03},{}乡{}村,620821{:03}000,35.3,107.3,\n",
            100 + t,
            200 + n,
            t + 1,
            n + 1,
            100 + t
        ));
    }
    out
}
