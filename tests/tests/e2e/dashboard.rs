//! The dashboard in headless Chromium against a real controller and agents:
//! first render, live updates over the event stream, the language switch.

use std::time::Duration;

use dalaba_e2e::webdriver::Browser;

use crate::cluster::{Cluster, start_agent};

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
