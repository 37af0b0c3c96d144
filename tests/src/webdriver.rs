//! A minimal WebDriver client for headless Chromium through chromedriver
//! (Debian packages `chromium` and `chromium-driver`): start a session, open
//! a page, run a script, click or type into an element (a file input takes
//! a path), take a screenshot. Extra Chromium switches (a fake microphone
//! fed from a WAV file, say) go through [`Browser::start_with`].

use std::time::Duration;

use serde_json::{Value, json};

use crate::api::Api;
use crate::proc::Proc;

/// The key of a web element reference in WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session; chromedriver is killed when this is dropped.
#[derive(Debug)]
pub struct Browser {
    _driver: Proc,
    api: Api,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session that accepts the
    /// test controller's self-signed certificate.
    pub async fn start() -> anyhow::Result<Browser> {
        Browser::start_with(&[]).await
    }

    /// Like [`Browser::start`], with `extra` Chromium switches, e.g.
    /// `--use-fake-device-for-media-stream`.
    pub async fn start_with(extra: &[String]) -> anyhow::Result<Browser> {
        let driver_bin = std::path::Path::new("/usr/bin/chromedriver");
        anyhow::ensure!(
            driver_bin.exists(),
            "browser tests need Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        );
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let driver = Proc::spawn("chromedriver", driver_bin, &[&format!("--port={port}")], &[])?;
        let api = Api::new(&format!("http://127.0.0.1:{port}"))?;
        crate::wait_for("chromedriver to listen", Duration::from_secs(20), || async {
            api.get("/status").await.ok().filter(|a| a.status == 200).map(|_| ())
        })
        .await?;
        let profile = tempfile::tempdir()?;
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1366,900",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.extend_from_slice(extra);
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": args,
            }
        }}});
        let answer = api.post("/session", &caps).await?;
        let v = answer.json();
        let session = v["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("chromedriver refused the session: {}", answer.text()))?
            .to_string();
        Ok(Browser { _driver: driver, api, session, _profile: profile })
    }

    async fn command(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let answer = self.api.post(&format!("/session/{}/{path}", self.session), &body).await?;
        let v = answer.json();
        anyhow::ensure!(answer.status == 200, "webdriver {path} failed: {}", answer.text());
        Ok(v["value"].clone())
    }

    /// Navigates to `url`.
    pub async fn open(&self, url: &str) -> anyhow::Result<()> {
        self.command("url", json!({ "url": url })).await.map(|_| ())
    }

    /// Runs a synchronous script (`return …;`) in the page.
    pub async fn eval(&self, script: &str) -> anyhow::Result<Value> {
        self.command("execute/sync", json!({ "script": script, "args": [] })).await
    }

    /// Types `text` into the first element matching the CSS `selector`, as a
    /// user would; for an `<input type="file">`, `text` is the path of the
    /// file to choose (WebDriver "Element Send Keys").
    pub async fn send_keys(&self, selector: &str, text: &str) -> anyhow::Result<()> {
        let element = self.element(selector).await?;
        self.command(&format!("element/{element}/value"), json!({ "text": text })).await.map(|_| ())
    }

    /// Clicks the first element matching the CSS `selector` as a user would
    /// (WebDriver "Element Click"): the page gets a user activation, which
    /// starting an audio context needs, unlike a script's `click()`.
    pub async fn click(&self, selector: &str) -> anyhow::Result<()> {
        let element = self.element(selector).await?;
        self.command(&format!("element/{element}/click"), json!({})).await.map(|_| ())
    }

    /// The WebDriver id of the first element matching the CSS `selector`.
    async fn element(&self, selector: &str) -> anyhow::Result<String> {
        let found = self.command("element", json!({ "using": "css selector", "value": selector })).await?;
        Ok(found[ELEMENT_KEY]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no element id for {selector}: {found}"))?
            .to_string())
    }

    /// Waits until `script` returns a truthy value; returns it.
    pub async fn wait_until(&self, what: &str, script: &str, within: Duration) -> anyhow::Result<Value> {
        crate::wait_for(what, within, || async {
            match self.eval(script).await {
                Ok(v) if !(v.is_null() || v == Value::Bool(false)) => Some(v),
                _ => None,
            }
        })
        .await
    }

    /// A PNG screenshot of the viewport.
    pub async fn screenshot(&self) -> anyhow::Result<Vec<u8>> {
        use base64::Engine;
        let answer = self.api.get(&format!("/session/{}/screenshot", self.session)).await?;
        let b64 = answer.json()["value"].as_str().unwrap_or_default().to_string();
        Ok(base64::engine::general_purpose::STANDARD.decode(b64)?)
    }
}
