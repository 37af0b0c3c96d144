//! The README's first command: the demo county comes online, and a second
//! run reuses its data directory (same villages, same agents).

use std::time::{Duration, Instant};

use dalaba_e2e::api::Api;
use dalaba_e2e::proc::Proc;
use dalaba_e2e::{bins, wait_for};

use crate::cluster::free_port;

async fn demo_run(data: &std::path::Path, port: u16) -> (Proc, Api) {
    let listen = format!("127.0.0.1:{port}");
    let args = ["demo", "--data-dir", data.to_str().expect("utf-8"), "--listen", &listen];
    let p = Proc::spawn("demo", &bins::controller(), &args, &[("RUST_LOG", "warn,dalaba_controller::demo=info")])
        .expect("demo starts");
    let line = p.wait_printed("open https://", Duration::from_secs(30)).await.expect("prints the address");
    assert!(line.contains(&format!("https://127.0.0.1:{port}/")), "{line}");
    (p, Api::new(&format!("https://127.0.0.1:{port}")).expect("url"))
}

async fn wait_all_online(api: &Api) -> serde_json::Value {
    wait_for("212 demo villages online", Duration::from_secs(120), || async {
        let d = api.get("/api/v1/dashboard").await.ok()?.json();
        (d["online"] == 212).then_some(d)
    })
    .await
    .expect("demo online")
}

/// Every agent id, sorted.
async fn agent_ids(api: &Api) -> Vec<String> {
    let list = api.get("/api/v1/agents").await.expect("agents").json();
    let mut ids: Vec<String> =
        list.as_array().expect("array").iter().map(|a| a["id"].as_str().expect("id").to_string()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_county_comes_online_and_a_second_run_reuses_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("demo");
    let port = free_port();

    let started = Instant::now();
    let (mut first, api) = demo_run(&data, port).await;
    let d = wait_all_online(&api).await;
    eprintln!("212 villages online {:?} after start", started.elapsed());
    assert_eq!(d["villages"], 212);
    assert_eq!(d["townships"].as_array().expect("townships").len(), 14);
    let agents = agent_ids(&api).await;
    assert_eq!(agents.len(), 212);

    // SIGKILL the demo: its simulated villages stop with it.
    first.kill().await;
    let fleet = data.join("fleet").join("fleet.json");
    wait_for("the simulated villages to stop", Duration::from_secs(10), || async {
        let running = std::process::Command::new("pgrep")
            .args(["-f", fleet.to_str().expect("utf-8")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(true);
        (!running).then_some(())
    })
    .await
    .expect("the fleet dies with the demo");
    // Second run on the same data directory: the same agents come back,
    // nothing is enrolled twice.
    let (_second, api) = demo_run(&data, port).await;
    wait_all_online(&api).await;
    assert_eq!(agents, agent_ids(&api).await, "the same 212 agents");
}
