//! Bad input, each with a clear error and nothing else disturbed.

use std::time::Duration;

use dalaba_agent::identity::Identity;
use dalaba_agent::net::{ControllerUrl, Link, NetError, open_link};
use dalaba_e2e::bins;
use dalaba_protocol::codec;
use dalaba_protocol::link::{AgentMessage, ControllerMessage, Hardware, Hello};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::cluster::{Cluster, run_agent_once, start_agent};

async fn raw_link(c: &Cluster, id: &Identity) -> Result<Link, NetError> {
    let url = ControllerUrl::parse(&c.url()).expect("url");
    open_link(&url, &id.controller_cert_sha256, &id.authorization()).await
}

fn hello(version: u32) -> Message {
    Message::Text(
        codec::encode(&AgentMessage::Hello(Hello {
            protocol_version: version,
            agent_version: "test".into(),
            hardware: Hardware::default(),
        }))
        .into(),
    )
}

/// Reads until the controller closes; returns (close code, reason) and any
/// control messages seen before.
async fn until_closed(link: &mut Link) -> (u16, String, Vec<ControllerMessage>) {
    let mut seen = Vec::new();
    let read = async {
        while let Some(frame) = link.next().await {
            match frame {
                Ok(Message::Close(Some(f))) => return (u16::from(f.code), f.reason.to_string()),
                Ok(Message::Close(None)) => return (1005, String::new()),
                Ok(Message::Text(t)) => {
                    seen.push(codec::decode::<ControllerMessage>(&t).expect("controller speaks protocol"))
                }
                Ok(_) => {}
                Err(e) => return (0, e.to_string()),
            }
        }
        (0, "stream ended".to_string())
    };
    let (code, reason) = tokio::time::timeout(Duration::from_secs(10), read).await.expect("closed in time");
    (code, reason, seen)
}

/// Enrols an identity directly (no agent process) for raw-link tests.
async fn identity(c: &Cluster, n: usize, name: &str) -> Identity {
    let dir = c.enrol_agent(name, c.village_id(n).await).await;
    Identity::load(&dir).expect("identity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_only_their_own_link() {
    let c = Cluster::start(4).await;
    // A real agent that must stay undisturbed throughout.
    let dir = c.enrol_agent("bystander", c.village_id(0).await).await;
    let _bystander = start_agent("bystander", &dir);
    c.wait_online(1, Duration::from_secs(20)).await;
    let id = identity(&c, 1, "raw").await;

    // Malformed JSON.
    let mut link = raw_link(&c, &id).await.expect("link");
    link.send(hello(dalaba_protocol::PROTOCOL_VERSION)).await.expect("send");
    link.send(Message::Text("{not json".into())).await.expect("send");
    let (code, reason, seen) = until_closed(&mut link).await;
    assert!(matches!(seen.first(), Some(ControllerMessage::Welcome(_))), "{seen:?}");
    assert_eq!(code, 1007, "{reason}");
    assert!(reason.contains("malformed JSON"), "{reason}");

    // An unknown message type.
    let mut link = raw_link(&c, &id).await.expect("link");
    link.send(hello(dalaba_protocol::PROTOCOL_VERSION)).await.expect("send");
    link.send(Message::Text(r#"{"type":"self_destruct"}"#.into())).await.expect("send");
    let (code, reason, _) = until_closed(&mut link).await;
    assert_eq!(code, 1007, "{reason}");
    assert!(reason.contains("self_destruct"), "{reason}");

    // An oversized frame.
    let mut link = raw_link(&c, &id).await.expect("link");
    link.send(hello(dalaba_protocol::PROTOCOL_VERSION)).await.expect("send");
    let big = format!(r#"{{"type":"heartbeat","seq":1,"sent_at_ms":1,"pad":"{}"}}"#, "x".repeat(200_000));
    let _ = link.send(Message::Text(big.into())).await;
    let (code, reason, _) = until_closed(&mut link).await;
    assert!(code == 1009 || code == 0, "oversized frame closed the link: {code} {reason}");

    // An unknown protocol version is refused with a message, and logged.
    let mut link = raw_link(&c, &id).await.expect("link");
    link.send(hello(99)).await.expect("send");
    let (code, reason, seen) = until_closed(&mut link).await;
    assert_eq!(code, 1008, "{reason}");
    match seen.first() {
        Some(ControllerMessage::Refused(r)) => assert!(r.message.contains("protocol version 99"), "{r:?}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(c.controller().printed("agent link refused"), "controller logs the refusal");

    // Something other than hello first.
    let mut link = raw_link(&c, &id).await.expect("link");
    link.send(Message::Text(r#"{"type":"heartbeat","seq":1,"sent_at_ms":1}"#.into())).await.expect("send");
    let (code, _, seen) = until_closed(&mut link).await;
    assert_eq!(code, 1008);
    assert!(matches!(seen.first(), Some(ControllerMessage::Refused(_))), "{seen:?}");

    // The bystander never noticed.
    let list = c.agents().await;
    let bystander = Identity::load(&dir).expect("identity").agent_id;
    let b = list.iter().find(|a| a["id"] == bystander.as_str()).expect("listed");
    assert_eq!(b["online"], true);
    let metrics = c.api.get("/metrics").await.expect("metrics").text();
    for kind in ["malformed", "unknown_message", "refused"] {
        assert!(metrics.contains(&format!("kind=\"{kind}\"")), "{kind} counted: {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_and_second_connection() {
    let c = Cluster::start(3).await;
    let id = identity(&c, 0, "a").await;

    // A wrong secret is refused before the upgrade, with a reason.
    let mut wrong = id.clone();
    wrong.secret = "0".repeat(64);
    match raw_link(&c, &wrong).await {
        Err(NetError::Http { status: 401, message }) => assert!(message.contains("wrong secret"), "{message}"),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
    let mut unknown = id.clone();
    unknown.agent_id = "ag-nobody".into();
    match raw_link(&c, &unknown).await {
        Err(NetError::Http { status: 401, message }) => assert!(message.contains("unknown agent"), "{message}"),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }

    // A second connection claiming the same agent: the newer wins.
    let mut first = raw_link(&c, &id).await.expect("first");
    first.send(hello(1)).await.expect("send");
    c.wait_online(1, Duration::from_secs(5)).await;
    let mut second = raw_link(&c, &id).await.expect("second");
    second.send(hello(1)).await.expect("send");
    let (code, reason, _) = until_closed(&mut first).await;
    assert_eq!(code, 4000, "{reason}");
    assert!(reason.contains("superseded"), "{reason}");
    // The newer is the one online, and stays so after the older is gone.
    c.controller().wait_printed("older link of agent closed", Duration::from_secs(5)).await.expect("older gone");
    assert_eq!(c.online_count().await, 1);
    second.send(Message::Text(r#"{"type":"heartbeat","seq":1,"sent_at_ms":1}"#.into())).await.expect("newer alive");
    assert!(c.controller().printed("second connection for agent"), "logged");

    // Removing the agent closes its live link, and its secret stops working.
    let r = c
        .api
        .call("DELETE", &format!("/api/v1/agents/{}", id.agent_id), None, "application/json")
        .await
        .expect("delete");
    assert_eq!(r.status, 204, "{}", r.text());
    let (code, reason, _) = until_closed(&mut second).await;
    assert_eq!(code, 4002, "{reason}");
    match raw_link(&c, &id).await {
        Err(NetError::Http { status: 401, message }) => assert!(message.contains("unknown agent"), "{message}"),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_codes_are_single_use_and_checked() {
    let c = Cluster::start(2).await;
    let village = c.village_id(0).await;
    let code = c.new_code(village).await;
    let dir = c.agent_dir("first");
    let (ok, out) = run_agent_once(&dir, &["enrol", "--controller", &c.url(), "--code", &code]).await;
    assert!(ok, "{out}");

    // Reused.
    let (ok, out) = run_agent_once(&c.agent_dir("second"), &["enrol", "--controller", &c.url(), "--code", &code]).await;
    assert!(!ok);
    assert!(out.contains("already used"), "{out}");
    assert!(!c.agent_dir("second").join("credentials.toml").exists());

    // Wrong.
    let (ok, out) =
        run_agent_once(&c.agent_dir("third"), &["enrol", "--controller", &c.url(), "--code", "ZZZZ-ZZZZ"]).await;
    assert!(!ok);
    assert!(out.contains("does not exist"), "{out}");

    // A wrong expected fingerprint stops enrolment before anything is saved.
    let code = c.new_code(village).await;
    let (ok, out) = run_agent_once(
        &c.agent_dir("fourth"),
        &["enrol", "--controller", &c.url(), "--code", &code, "--fingerprint", &"ab".repeat(32)],
    )
    .await;
    assert!(!ok);
    assert!(out.contains("is not the pinned"), "{out}");

    // Only the first enrolment produced an agent.
    assert_eq!(c.agents().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_with_bad_rows_imports_nothing() {
    let c = Cluster::start(2).await;
    let before = c.api.get("/api/v1/regions").await.expect("regions").json();
    let csv = "level,code,name,parent_code,latitude,longitude,tags\n\
               village,620821100299,好村,620821100000,,,\n\
               village,12345,坏码村,620821100000,,,\n\
               hamlet,620821100298,坏级村,620821100000,,,\n\
               village,620821100297,,620821100000,,,\n";
    let r = c
        .api
        .call("POST", "/api/v1/directory/import", Some(csv.as_bytes().to_vec()), "text/csv")
        .await
        .expect("import");
    assert_eq!(r.status, 422, "{}", r.text());
    let body = r.json();
    let lines: Vec<u64> =
        body["details"].as_array().expect("details").iter().filter_map(|d| d["line"].as_u64()).collect();
    for line in [3, 4, 5] {
        assert!(lines.contains(&line), "line {line} reported: {body}");
    }
    assert!(!lines.contains(&2), "the good row is not blamed: {body}");
    assert_eq!(c.api.get("/api/v1/regions").await.expect("regions").json(), before, "nothing imported");
}

#[tokio::test]
async fn configs_print_parse_and_fail_cleanly() {
    for bin in [bins::controller(), bins::agent()] {
        let out = std::process::Command::new(&bin).arg("--print-default-config").output().expect("runs");
        assert!(out.status.success());
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, &out.stdout).expect("write");
        // The printed default is a valid config for the binary itself…
        let check = std::process::Command::new(&bin)
            .args(["--config", path.to_str().expect("utf-8"), "--check-config"])
            .output()
            .expect("runs");
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
        assert!(String::from_utf8_lossy(&check.stdout).contains("configuration OK"));
        // …and a broken one is a one-line error with exit code 64.
        std::fs::write(&path, "[storage\nthis is not toml").expect("write");
        let bad = std::process::Command::new(&bin)
            .args(["--config", path.to_str().expect("utf-8"), "--check-config"])
            .output()
            .expect("runs");
        assert_eq!(bad.status.code(), Some(64), "{}", String::from_utf8_lossy(&bad.stderr));
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains("invalid config"), "{stderr}");
    }
}
