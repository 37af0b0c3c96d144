//! A test cluster: one controller process, any number of agent processes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dalaba_e2e::api::Api;
use dalaba_e2e::proc::Proc;
use dalaba_e2e::{bins, county_csv, wait_for};
use serde_json::{Value, json};
use tempfile::TempDir;

/// Heartbeat settings of test controllers: fast, so presence is tested in
/// seconds.
pub const HEARTBEAT_SECS: u64 = 1;
pub const TIMEOUT_SECS: u64 = 3;

pub struct Cluster {
    pub dir: TempDir,
    pub port: u16,
    pub controller: Option<Proc>,
    pub api: Api,
}

impl Cluster {
    /// Starts a controller with a small county: 1 county, 2 townships,
    /// `villages` villages.
    pub async fn start(villages: usize) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = dalaba_e2e::controller_config(
            &format!("127.0.0.1:{port}"),
            &dir.path().join("data"),
            (HEARTBEAT_SECS, TIMEOUT_SECS),
            1000,
            "info,dalaba_controller=debug",
        );
        std::fs::write(dir.path().join("controller.toml"), config).expect("write config");
        let api = Api::new(&format!("https://127.0.0.1:{port}")).expect("url");
        let mut c = Cluster { dir, port, controller: None, api };
        c.start_controller().await;
        let csv = county_csv(2, villages);
        let r =
            c.api.call("POST", "/api/v1/directory/import", Some(csv.into_bytes()), "text/csv").await.expect("import");
        assert_eq!(r.status, 200, "{}", r.text());
        c
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub async fn start_controller(&mut self) {
        let config = self.dir.path().join("controller.toml");
        let p = Proc::spawn(
            "controller",
            &bins::controller(),
            &["--config", config.to_str().expect("utf-8 path"), "serve"],
            &[],
        )
        .expect("controller starts");
        p.wait_printed("serving at", Duration::from_secs(30)).await.expect("controller serving");
        self.controller = Some(p);
    }

    /// Stops the controller, appends `toml` to its configuration and starts
    /// it again (a test's own settings, e.g. an `[alarms]` section).
    pub async fn restart_with_config(&mut self, toml: &str) {
        if let Some(mut old) = self.controller.take() {
            old.kill().await;
        }
        let config = self.dir.path().join("controller.toml");
        let mut text = std::fs::read_to_string(&config).expect("config");
        text.push_str(toml);
        std::fs::write(&config, text).expect("config");
        self.start_controller().await;
    }

    pub fn controller(&self) -> &Proc {
        self.controller.as_ref().expect("controller running")
    }

    /// The id of the `n`th village (0-based, in code order).
    pub async fn village_id(&self, n: usize) -> i64 {
        let regions = self.api.get("/api/v1/regions").await.expect("regions").json();
        let villages: Vec<&Value> =
            regions.as_array().expect("array").iter().filter(|r| r["level"] == "village").collect();
        villages[n]["id"].as_i64().expect("id")
    }

    pub async fn new_code(&self, village_id: i64) -> String {
        let r =
            self.api.post(&format!("/api/v1/villages/{village_id}/enrolment-codes"), &json!({})).await.expect("code");
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["code"].as_str().expect("code").to_string()
    }

    /// `dalaba-controller user create NAME --role ROLE [--region ID]
    /// --display-name DISPLAY` against this cluster's configuration, the
    /// password on standard input (as an administrator would make the first
    /// account).
    pub fn create_user(&self, name: &str, display: &str, role: &str, region: Option<i64>, password: &str) {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let config = self.dir.path().join("controller.toml");
        let mut cmd = Command::new(bins::controller());
        cmd.args(["--config", config.to_str().expect("utf-8"), "user", "create", name, "--role", role]);
        if let Some(region) = region {
            cmd.args(["--region", &region.to_string()]);
        }
        let mut child = cmd
            .args(["--display-name", display])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("user create runs");
        writeln!(child.stdin.take().expect("stdin"), "{password}").expect("password");
        let out = child.wait_with_output().expect("user create ends");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn agent_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join("agents").join(name)
    }

    /// Enrols an agent process for a village; returns its state directory.
    pub async fn enrol_agent(&self, name: &str, village_id: i64) -> PathBuf {
        let code = self.new_code(village_id).await;
        let dir = self.agent_dir(name);
        let out = run_agent_once(&dir, &["enrol", "--controller", &self.url(), "--code", &code]).await;
        assert!(out.0, "enrolment failed: {}", out.1);
        dir
    }

    pub async fn agents(&self) -> Vec<Value> {
        let r = self.api.get("/api/v1/agents").await.expect("agents");
        assert_eq!(r.status, 200);
        r.json().as_array().cloned().unwrap_or_default()
    }

    pub async fn online_count(&self) -> usize {
        self.agents().await.iter().filter(|a| a["online"] == true).count()
    }

    /// Waits until exactly `n` agents are online.
    pub async fn wait_online(&self, n: usize, within: Duration) {
        wait_for(&format!("{n} agents online"), within, || async {
            let count = match self.api.get("/api/v1/agents").await {
                Ok(r) if r.status == 200 => {
                    r.json().as_array().map(|a| a.iter().filter(|a| a["online"] == true).count())
                }
                _ => None,
            };
            (count == Some(n)).then_some(())
        })
        .await
        .expect("agents online");
    }
}

/// Starts `dalaba-agent run` for a state directory.
pub fn start_agent(name: &str, dir: &Path) -> Proc {
    let config = dir.with_extension("toml");
    std::fs::write(&config, agent_config(dir)).expect("agent config");
    Proc::spawn(name, &bins::agent(), &["--config", config.to_str().expect("utf-8"), "run"], &[]).expect("agent starts")
}

fn agent_config(dir: &Path) -> String {
    format!(
        "[storage]\nstate_dir = \"{}\"\n[amplifier]\ndriver = \"simulated\"\n[audio]\noutput = \"null\"\n\
         [link]\nbackoff_max_secs = 30\ndevice_poll_secs = 1\n[log]\nformat = \"text\"\nlevel = \"info\"\n",
        dir.display()
    )
}

/// Runs the agent binary to completion; returns (success, all output).
pub async fn run_agent_once(dir: &Path, args: &[&str]) -> (bool, String) {
    let mut full = vec!["--state-dir", dir.to_str().expect("utf-8")];
    full.extend_from_slice(args);
    let out = tokio::process::Command::new(bins::agent()).args(&full).output().await.expect("agent runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}
