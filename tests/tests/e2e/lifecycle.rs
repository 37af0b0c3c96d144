//! The happy path and the crashes: enrol, connect, survive a controller
//! restart, notice an agent that dies or vanishes.

use std::time::{Duration, Instant};

use crate::cluster::{Cluster, TIMEOUT_SECS, start_agent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_enrol_connect_and_survive_crashes() {
    let mut c = Cluster::start(4).await;
    let mut agents = Vec::new();
    for n in 0..3 {
        let village = c.village_id(n).await;
        let dir = c.enrol_agent(&format!("agent{n}"), village).await;
        // The identity is private to the agent's user.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("credentials.toml")).expect("identity").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        agents.push(start_agent(&format!("agent{n}"), &dir));
    }
    c.wait_online(3, Duration::from_secs(20)).await;

    // Every agent is listed with its village and a live status report.
    let list = c.agents().await;
    assert_eq!(list.len(), 3);
    for a in &list {
        assert_eq!(a["online"], true, "{a}");
        assert!(a["village_name"].as_str().is_some_and(|n| n.ends_with('村')), "{a}");
        assert!(a["township_name"].as_str().is_some(), "{a}");
        assert_eq!(a["hardware"]["amplifier_driver"], "simulated", "{a}");
    }
    dalaba_e2e::wait_for("status reports with amplifier off", Duration::from_secs(10), || async {
        let list = c.agents().await;
        list.iter()
            .all(|a| a["status"]["amplifier"] == "off" && a["status"]["disk_free_bytes"].as_u64() > Some(0))
            .then_some(())
    })
    .await
    .expect("status");
    let regions_before = c.api.get("/api/v1/regions").await.expect("regions").json();

    // SIGKILL the controller and start it again: every agent is back within
    // 10 s of the restart, and the directory is intact.
    c.controller.as_mut().expect("running").kill().await;
    c.controller = None;
    c.start_controller().await;
    let restarted = Instant::now();
    c.wait_online(3, Duration::from_secs(10)).await;
    eprintln!("all agents back {:?} after the controller restarted", restarted.elapsed());
    let regions_after = c.api.get("/api/v1/regions").await.expect("regions").json();
    assert_eq!(regions_before, regions_after);
    assert_eq!(c.agents().await.len(), 3);

    // SIGKILL an agent: shown offline within the heartbeat timeout (+5 s).
    let killed_id = agent_id_of(&c, 0).await;
    agents[0].kill().await;
    let killed = Instant::now();
    wait_offline(&c, &killed_id, Duration::from_secs(TIMEOUT_SECS + 5)).await;
    eprintln!("killed agent offline after {:?}", killed.elapsed());

    // An agent that vanishes without closing its connection (stopped
    // process: no FIN, no heartbeats) is offline within the timeout (+5 s).
    let stopped_id = agent_id_of(&c, 1).await;
    let pid = agents[1].pid().expect("pid");
    signal(pid, "-STOP");
    let stopped = Instant::now();
    wait_offline(&c, &stopped_id, Duration::from_secs(TIMEOUT_SECS + 5)).await;
    eprintln!("silent agent offline after {:?}", stopped.elapsed());
    assert!(c.controller().printed("no message for"), "the controller logs why it dropped the silent agent");
    signal(pid, "-CONT");
    // Revived, it notices its dead link and reconnects.
    c.wait_online(2, Duration::from_secs(40)).await;

    // Last seen survives for offline agents.
    let list = c.agents().await;
    let killed_view = list.iter().find(|a| a["id"] == killed_id.as_str()).expect("listed");
    assert_eq!(killed_view["online"], false);
    assert!(killed_view["last_seen"].as_str().is_some(), "{killed_view}");

    // Metrics count what happened.
    let metrics = c.api.get("/metrics").await.expect("metrics").text();
    assert!(metrics.contains("dalaba_agents_online 2"), "{metrics}");
    assert!(metrics.contains("dalaba_agent_connects_total"), "{metrics}");
}

async fn agent_id_of(c: &Cluster, n: usize) -> String {
    let dir = c.agent_dir(&format!("agent{n}"));
    dalaba_agent::identity::Identity::load(&dir).expect("identity").agent_id
}

async fn wait_offline(c: &Cluster, id: &str, within: Duration) {
    dalaba_e2e::wait_for(&format!("agent {id} offline"), within, || async {
        let list = c.agents().await;
        list.iter().find(|a| a["id"] == id).filter(|a| a["online"] == false).map(|_| ())
    })
    .await
    .expect("offline in time");
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill").args([sig, &pid.to_string()]).status().expect("kill runs").success();
    assert!(ok, "kill {sig} {pid}");
}
