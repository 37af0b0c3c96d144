//! Child processes for tests: started with piped output that is copied to
//! the test's stderr with a prefix and kept for assertions, and killed when
//! dropped.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running child process.
#[derive(Debug)]
pub struct Proc {
    /// The child.
    pub child: Child,
    name: String,
    output: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Starts `program args…` with extra environment, naming it `name` in
    /// the log.
    pub fn spawn(name: &str, program: &Path, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Proc> {
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| anyhow::anyhow!("cannot start {}: {e}", program.display()))?;
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = Arc::clone(&output);
            let name = name.to_string();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    eprintln!("[{name}] {line}");
                    output.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        Ok(Proc { child, name: name.to_string(), output })
    }

    /// Every line printed so far (stdout and stderr).
    pub fn output(&self) -> Vec<String> {
        self.output.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether any printed line contains `needle`.
    pub fn printed(&self, needle: &str) -> bool {
        self.output.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|l| l.contains(needle))
    }

    /// Waits until a printed line contains `needle`; returns that line.
    pub async fn wait_printed(&self, needle: &str, within: Duration) -> anyhow::Result<String> {
        let what = format!("{} to print {needle:?}", self.name);
        crate::wait_for(&what, within, || async {
            self.output.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|l| l.contains(needle)).cloned()
        })
        .await
    }

    /// SIGKILL, and reap.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// The OS process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}
