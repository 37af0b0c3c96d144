//! The real binary: `token create|list|revoke` on a data directory, and
//! `alert FILE` posting to a running `serve` over its pinned TLS.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use dalaba_controller::config::DEFAULT_CONFIG;
use dalaba_controller::directory::{Level, NewRegion};
use dalaba_controller::store::Store;
use dalaba_controller::store::sqlite::SqliteStore;

const BIN: &str = env!("CARGO_BIN_EXE_dalaba-controller");

/// A data directory, its configuration file, and the county of the CAP
/// fixtures (without coordinates: the Test alert below maps by code).
fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data directory");
    let config = DEFAULT_CONFIG
        .replace("listen = \"127.0.0.1:8443\"", "listen = \"127.0.0.1:0\"")
        .replace("data_dir = \"dalaba-data\"", &format!("data_dir = {:?}", data.display().to_string()));
    let path = dir.path().join("controller.toml");
    std::fs::write(&path, config).expect("config");
    let store = SqliteStore::open(&data.join("dalaba.db")).expect("store");
    let region = |parent_id, level, name: &str, code: &str| NewRegion {
        parent_id,
        level,
        name: name.into(),
        code: code.into(),
        latitude: None,
        longitude: None,
        tags: vec![],
    };
    let county = store.create_region(&region(None, Level::County, "泾川县", "620821000000")).expect("county");
    let town = store.create_region(&region(Some(county.id), Level::Township, "城关镇", "620821100000")).expect("town");
    store.create_region(&region(Some(town.id), Level::Village, "王家沟村", "620821100200")).expect("village");
    (dir, path)
}

fn run(config: &Path, args: &[&str], token_env: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(config).args(args).env_remove("DALABA_TOKEN").env("RUST_LOG", "warn");
    if let Some(token) = token_env {
        cmd.env("DALABA_TOKEN", token);
    }
    cmd.output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Creates a token and returns it (the one line on standard output).
fn create_token(config: &Path, name: &str, scope: &str) -> String {
    let out = run(config, &["token", "create", "--name", name, "--scope", scope], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "only the token on stdout: {stdout}");
    assert!(lines[0].starts_with("dlb_"), "{stdout}");
    assert!(text(&out.stderr).contains("shown only this once"), "{}", text(&out.stderr));
    lines[0].to_owned()
}

/// A running `serve` and its base URL; killed when dropped.
struct Serving(Child, String);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(config: &Path) -> Serving {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("Dalaba controller serving at ") {
                let _ = tx.send(url.trim_end_matches('/').to_owned());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(60)).expect("serve prints its address");
    Serving(child, url)
}

#[test]
fn token_commands_create_once_list_without_secrets_and_revoke() {
    let (_dir, config) = setup();
    let token = create_token(&config, "province-platform", "emergency,read");
    let out = run(&config, &["token", "list"], None);
    let listed = text(&out.stdout);
    assert!(out.status.success());
    assert!(listed.contains("province-platform\tread,emergency\tcreated "), "{listed}");
    assert!(listed.contains("never used") && listed.contains("active"), "{listed}");
    assert!(!listed.contains(&token) && !listed.contains(&token[4..20]), "the list shows no secret: {listed}");

    let again = run(&config, &["token", "create", "--name", "province-platform", "--scope", "read"], None);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already exists"), "{}", text(&again.stderr));
    let bad = run(&config, &["token", "create", "--name", "x", "--scope", "admin"], None);
    assert!(text(&bad.stderr).contains("unknown scope `admin`"), "{}", text(&bad.stderr));

    let out = run(&config, &["token", "revoke", "province-platform"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&run(&config, &["token", "list"], None).stdout);
    assert!(listed.contains("revoked "), "{listed}");
    let twice = run(&config, &["token", "revoke", "province-platform"], None);
    assert!(!twice.status.success() && text(&twice.stderr).contains("already revoked"), "{}", text(&twice.stderr));
}

#[test]
fn alert_command_posts_to_the_running_controller() {
    let (dir, config) = setup();
    let token = create_token(&config, "province", "emergency");
    let reader = create_token(&config, "dashboard", "read");
    let file = dir.path().join("test-alert.xml");
    let alert = include_str!("../fixtures/cap/update-zh.xml")
        .replace("<status>Actual</status>", "<status>Test</status>")
        .replace("<msgType>Update</msgType>", "<msgType>Alert</msgType>");
    std::fs::write(&file, alert).expect("alert file");
    let file = file.display().to_string();
    let server = serve(&config);
    let url = server.1.as_str();

    let out = run(&config, &["alert", &file, "--url", url], Some(&token));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(answer["action"], "dry_run");
    assert_eq!(answer["villages"][0]["name"], "王家沟村");

    let out = run(&config, &["alert", &file, "--url", url, "--token", &reader], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("(403 forbidden): API token dashboard lacks the emergency scope"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&config, &["alert", &file, "--url", url], None);
    assert!(!out.status.success() && text(&out.stderr).contains("DALABA_TOKEN"), "{}", text(&out.stderr));

    assert!(run(&config, &["token", "revoke", "province"], None).status.success());
    let out = run(&config, &["alert", &file, "--url", url], Some(&token));
    assert!(text(&out.stderr).contains("(401 unauthorized): API token province was revoked"), "{}", text(&out.stderr));
}
