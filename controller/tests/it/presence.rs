//! Presence, registered directly, as `/agents` and `/dashboard` show it.

use std::net::SocketAddr;

use axum::http::{Method, StatusCode};
use dalaba_controller::clock::rfc3339;
use dalaba_protocol::PROTOCOL_VERSION;
use dalaba_protocol::link::{Hardware, Hello};
use serde_json::{Value, json};

use crate::harness::{Harness, Payload, T0, call, create, enrol, fetch, id, request, seed};

fn hello() -> Hello {
    Hello {
        protocol_version: PROTOCOL_VERSION,
        agent_version: "0.2.0".into(),
        hardware: Hardware { model: "simulated".into(), ..Hardware::default() },
    }
}

fn agent<'a>(agents: &'a Value, id: &str) -> &'a Value {
    agents.as_array().expect("a list").iter().find(|a| a["id"] == id).unwrap_or_else(|| panic!("{id} in {agents}"))
}

#[tokio::test]
async fn agents_and_dashboard_follow_presence() {
    let h = Harness::new();
    let app = &h.app;
    let tree = seed(app).await;
    let other =
        create(app, json!({"level": "township", "parent_id": tree.county, "name": "玉都镇", "code": "620821101000"}))
            .await;
    let shared = id(&create(
        app,
        json!({"level": "village", "parent_id": id(&other), "name": "太平村", "code": "620821101200"}),
    )
    .await);
    // 城关镇: one village online, one offline; a third without an agent.
    // 玉都镇: one village with two agents, one of them online.
    let (online, _) = enrol(app, tree.villages[0], "pi-a").await;
    let (offline, _) = enrol(app, tree.villages[1], "pi-b").await;
    create(app, json!({"level": "village", "parent_id": tree.township, "name": "张家村", "code": "620821100202"}))
        .await;
    let (shared_online, _) = enrol(app, shared, "pi-c").await;
    let (shared_offline, _) = enrol(app, shared, "pi-d").await;

    h.state.clock.advance_ms(5_000);
    let peer = SocketAddr::from(([10, 0, 0, 1], 50_000));
    let first = h.state.presence.connect(&online, peer, hello(), h.state.clock.now_ms());
    h.state.presence.connect(&shared_online, SocketAddr::from(([10, 0, 0, 2], 50_000)), hello(), T0 + 6_000);

    let (status, agents) = call(app, Method::GET, "/api/v1/agents", Payload::None).await;
    assert_eq!(status, StatusCode::OK);
    let live = agent(&agents, &online);
    assert_eq!(live["online"], true, "{live}");
    assert_eq!(live["connected_since"], rfc3339(T0 + 5_000));
    assert_eq!(live["last_seen"], rfc3339(T0 + 5_000));
    assert_eq!((&live["peer"], &live["agent_version"]), (&json!("10.0.0.1:50000"), &json!("0.2.0")));
    assert_eq!(live["hardware"]["model"], "simulated", "the hello's hardware wins over enrolment's");
    for id in [&offline, &shared_offline] {
        let agent = agent(&agents, id);
        assert_eq!((&agent["online"], &agent["connected_since"]), (&json!(false), &Value::Null), "{agent}");
    }
    let (_, one) = call(app, Method::GET, &format!("/api/v1/agents/{online}"), Payload::None).await;
    assert_eq!(&one, live);

    let (status, dashboard) = call(app, Method::GET, "/api/v1/dashboard", Payload::None).await;
    assert_eq!(status, StatusCode::OK);
    let totals = ["villages", "online", "offline", "no_agent", "agents", "agents_online"].map(|k| &dashboard[k]);
    assert_eq!(totals, [&json!(4), &json!(2), &json!(1), &json!(1), &json!(4), &json!(2)], "{dashboard}");
    let townships = json!([
        {"id": tree.township, "name": "城关镇", "villages": 3, "online": 1, "offline": 1, "no_agent": 1},
        {"id": id(&other), "name": "玉都镇", "villages": 1, "online": 1, "offline": 0, "no_agent": 0},
    ]);
    assert_eq!(dashboard["townships"], townships);

    let (_, _, metrics) = fetch(app, request(Method::GET, "/metrics", Payload::None)).await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(metrics.lines().any(|l| l == "dalaba_agents_online 2"), "{metrics}");

    assert!(h.state.presence.disconnect(&online, first.conn_id));
    let (_, dashboard) = call(app, Method::GET, "/api/v1/dashboard", Payload::None).await;
    let counts = ["online", "offline", "no_agent", "agents_online"].map(|k| &dashboard[k]);
    assert_eq!(counts, [&json!(1), &json!(2), &json!(1), &json!(1)], "{dashboard}");
    let (_, agents) = call(app, Method::GET, "/api/v1/agents", Payload::None).await;
    let gone = agent(&agents, &online);
    assert_eq!((&gone["online"], &gone["connected_since"]), (&json!(false), &Value::Null), "{gone}");
}
