//! The dashboard in headless Chromium against a real controller and agents:
//! first render, live updates over the event stream, the language switch,
//! and enrolling a board from the village panel.

use std::time::Duration;

use dalaba_e2e::webdriver::Browser;

use crate::cluster::{Cluster, run_agent_once, start_agent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_villages_and_follows_presence_live() {
    let c = Cluster::start(4).await;
    let mut agents = Vec::new();
    let mut codes = Vec::new();
    for n in 0..2 {
        let dir = c.enrol_agent(&format!("agent{n}"), c.village_id(n).await).await;
        agents.push(start_agent(&format!("agent{n}"), &dir));
    }
    c.wait_online(2, Duration::from_secs(20)).await;
    let regions = c.api.get("/api/v1/regions").await.expect("regions").json();
    for r in regions.as_array().expect("array").iter().filter(|r| r["level"] == "village") {
        codes.push(r["code"].as_str().expect("code").to_string());
    }

    let browser = Browser::start().await.expect("browser");
    browser.open(&format!("{}/", c.url())).await.expect("open");
    browser
        .wait_until("first render", "return document.body.dataset.ready === 'true';", Duration::from_secs(20))
        .await
        .expect("dashboard rendered");
    let text = |id: &str| format!("return document.getElementById('{id}').textContent.trim();");
    assert_eq!(browser.eval(&text("count-villages")).await.expect("eval"), "4");
    assert_eq!(browser.eval(&text("count-online")).await.expect("eval"), "2");
    assert_eq!(browser.eval(&text("count-none")).await.expect("eval"), "2");
    let status =
        |code: &str| format!("return document.querySelector('[data-village-code=\"{code}\"]').dataset.status;");
    assert_eq!(browser.eval(&status(&codes[0])).await.expect("eval"), "online");
    assert_eq!(browser.eval(&status(&codes[3])).await.expect("eval"), "none");
    assert_eq!(browser.eval("return document.documentElement.lang;").await.expect("eval"), "zh-CN");
    browser
        .wait_until(
            "event stream connected",
            "return document.getElementById('live').dataset.connected === 'true';",
            Duration::from_secs(10),
        )
        .await
        .expect("live");

    // An agent dies: its village turns offline on the open page, no reload.
    agents[0].kill().await;
    browser
        .wait_until(
            "village offline on the page",
            &format!(
                "return document.querySelector('[data-village-code=\"{}\"]').dataset.status === 'offline';",
                codes[0]
            ),
            Duration::from_secs(10),
        )
        .await
        .expect("live update");
    assert_eq!(browser.eval(&text("count-online")).await.expect("eval"), "1");
    assert_eq!(browser.eval(&text("count-offline")).await.expect("eval"), "1");

    // The English switch.
    browser.eval("document.getElementById('lang-toggle').click(); return true;").await.expect("click");
    browser
        .wait_until("English", "return document.documentElement.lang === 'en';", Duration::from_secs(5))
        .await
        .expect("english");
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let out = dalaba_e2e::bins::target_dir().join("screenshots");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("dashboard-en.png"), png).expect("write screenshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_enrols_a_board_from_the_village_panel() {
    let c = Cluster::start(3).await;
    // One village already has a board; the operator enrols the second.
    let first = c.enrol_agent("agent0", c.village_id(0).await).await;
    let _agent0 = start_agent("agent0", &first);
    c.wait_online(1, Duration::from_secs(20)).await;
    let regions = c.api.get("/api/v1/regions").await.expect("regions").json();
    let village = regions.as_array().expect("array").iter().filter(|r| r["level"] == "village").nth(1).cloned();
    let village = village.expect("a second village");
    let code_of_village = village["code"].as_str().expect("code").to_string();
    let name_of_village = village["name"].as_str().expect("name").to_string();
    let info = c.api.get("/api/v1/controller").await.expect("controller info").json();
    let fingerprint = info["cert_sha256"].as_str().expect("cert_sha256").to_string();
    assert!(!fingerprint.is_empty(), "a TLS controller reports its fingerprint");

    let browser = Browser::start().await.expect("browser");
    browser.open(&format!("{}/", c.url())).await.expect("open");
    browser
        .wait_until(
            "first render with a live stream",
            "return document.body.dataset.ready === 'true' \
             && document.getElementById('live').dataset.connected === 'true';",
            Duration::from_secs(20),
        )
        .await
        .expect("dashboard rendered");
    let card = format!("document.querySelector('[data-village-code=\"{code_of_village}\"]')");
    assert_eq!(browser.eval(&format!("return {card}.dataset.status;")).await.expect("eval"), "none");
    assert_eq!(browser.eval(&format!("return {card}.getAttribute('role');")).await.expect("eval"), "button");
    assert_eq!(browser.eval(&format!("return {card}.tabIndex;")).await.expect("eval"), 0);
    assert_eq!(browser.eval("return document.getElementById('village-panel').hidden;").await.expect("eval"), true);

    // Open the village: its facts, no agent yet.
    browser.eval(&format!("{card}.click(); return true;")).await.expect("click card");
    let panel_open = format!(
        "const p = document.getElementById('village-panel'); \
         return !p.hidden && p.dataset.villageCode === '{code_of_village}';"
    );
    browser.wait_until("the village panel", &panel_open, Duration::from_secs(5)).await.expect("panel opens");
    let text = |id: &str| format!("return document.getElementById('{id}').textContent.trim();");
    assert_eq!(browser.eval(&text("vp-name")).await.expect("eval"), name_of_village.as_str());
    assert_eq!(browser.eval(&text("vp-code")).await.expect("eval"), code_of_village.as_str());
    assert_eq!(
        browser.eval("return document.querySelectorAll('#village-panel [data-agent-id]').length;").await.expect("eval"),
        0
    );

    // Esc closes it; Enter on the focused card opens it again.
    browser
        .eval(
            "document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', bubbles: true})); \
             return document.getElementById('village-panel').hidden;",
        )
        .await
        .expect("escape");
    assert_eq!(browser.eval("return document.getElementById('village-panel').hidden;").await.expect("eval"), true);
    assert_eq!(
        browser.eval(&format!("return document.activeElement === {card};")).await.expect("eval"),
        true,
        "focus returns to the card"
    );
    browser
        .eval(&format!(
            "{card}.focus(); {card}.dispatchEvent(new KeyboardEvent('keydown', {{key: 'Enter', bubbles: true}})); \
             return true;"
        ))
        .await
        .expect("enter");
    browser.wait_until("the panel again", &panel_open, Duration::from_secs(5)).await.expect("panel reopens");

    // A code, and the exact command for the technician.
    browser.eval("document.getElementById('create-code').click(); return true;").await.expect("create code");
    let code = browser
        .wait_until(
            "an enrolment code on the page",
            "const e = document.getElementById('enrol-code'); return (e && e.textContent.trim()) || null;",
            Duration::from_secs(10),
        )
        .await
        .expect("code shown");
    let code = code.as_str().expect("code text").to_string();
    assert_eq!(code.len(), 9, "a code like K7QM-2XPA: {code}");
    let command = browser.eval(&text("enrol-command")).await.expect("eval");
    let command = command.as_str().expect("command text").to_string();
    assert!(command.contains(&c.url()), "{command}");
    assert!(command.contains(&code), "{command}");
    assert!(command.contains(&format!("--fingerprint {fingerprint}")), "{command}");
    assert_eq!(
        command,
        format!(
            "dalaba-agent --state-dir /var/lib/dalaba-agent enrol --controller {} --code {code} --fingerprint {fingerprint}",
            c.url()
        )
    );

    // The technician runs exactly that (in another state directory).
    let words: Vec<&str> = command.split(' ').collect();
    assert_eq!(&words[..4], &["dalaba-agent", "--state-dir", "/var/lib/dalaba-agent", "enrol"]);
    let dir = c.agent_dir("board1");
    let (ok, out) = run_agent_once(&dir, &words[3..]).await;
    assert!(ok, "enrolment with the dashboard's command failed: {out}");
    let _board = start_agent("board1", &dir);

    // The open panel follows the new board live, and so does the card.
    let row = browser
        .wait_until(
            "the new agent online in the panel",
            "const r = document.querySelector('#village-panel [data-agent-id][data-online=\"true\"]'); \
             return r ? r.dataset.agentId : null;",
            Duration::from_secs(20),
        )
        .await
        .expect("agent row online");
    let agent_id = row.as_str().expect("agent id").to_string();
    browser
        .wait_until("the card online", &format!("return {card}.dataset.status === 'online';"), Duration::from_secs(10))
        .await
        .expect("card online");
    let agents = c.agents().await;
    let a = agents.iter().find(|a| a["id"] == agent_id.as_str()).expect("the new agent in the API");
    assert_eq!(a["village_code"], code_of_village.as_str());
    // Its status report arrives (amplifier, disk) and the row shows it.
    browser
        .wait_until(
            "a status report in the row",
            &format!(
                "const r = document.querySelector('[data-agent-id=\"{agent_id}\"] [data-field=\"disk\"]'); \
                 return r && !r.hidden && / [kMGTP]?B$/.test(r.textContent);"
            ),
            Duration::from_secs(10),
        )
        .await
        .expect("status shown");

    // The picture shows the new board and the code with its command.
    browser
        .eval("const b = document.querySelector('#village-panel .vp-body'); b.scrollTop = b.scrollHeight; return true;")
        .await
        .expect("scroll");
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let out = dalaba_e2e::bins::target_dir().join("screenshots");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("village-panel.png"), png).expect("write screenshot");

    // Removing the board: asked first, then gone from the panel and the API.
    browser
        .eval(&format!("document.querySelector('[data-remove-agent=\"{agent_id}\"]').click(); return true;"))
        .await
        .expect("remove");
    browser
        .wait_until(
            "the confirmation",
            "return document.getElementById('confirm-remove').open;",
            Duration::from_secs(5),
        )
        .await
        .expect("confirm shown");
    browser.eval("document.getElementById('confirm-ok').click(); return true;").await.expect("confirm");
    browser
        .wait_until(
            "the agent gone from the panel and the card back to none",
            &format!(
                "return !document.querySelector('[data-agent-id=\"{agent_id}\"]') \
                 && !document.getElementById('confirm-remove').open \
                 && {card}.dataset.status === 'none';"
            ),
            Duration::from_secs(10),
        )
        .await
        .expect("agent removed");
    assert!(c.agents().await.iter().all(|a| a["id"] != agent_id.as_str()), "removed in the API");

    let errors = browser.eval("return window.__errors;").await.expect("eval");
    assert_eq!(errors, serde_json::json!([]), "no script errors");
}
