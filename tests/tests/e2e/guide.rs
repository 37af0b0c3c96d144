//! The user guide's tour (docs/guide.zh.md, docs/guide.en.md): a populated
//! controller — villages online, offline and not yet connected, a library,
//! schedules, a month of proof of play, open alarms — visited page by page
//! as a county administrator, each page checked loaded with its data and
//! no script errors. With `DALABA_SCREENSHOTS=<dir>` it also saves the
//! guide's pictures there (1280×800): dashboard, library, schedule, live,
//! reports, in Chinese, and the dashboard and reports in English.

use std::time::Duration;

use dalaba_e2e::audio::{county_day, tone_wav, wall_ms};
use dalaba_e2e::webdriver::Browser;
use dalaba_protocol::state::PlayOutcome;
use serde_json::{Value, json};

use crate::cluster::{Cluster, start_agent};
use crate::main_flow::{FAST_ALARMS, WAIT, errors, goto, log_in_as, play, report_plays, run, township_id};

const DAY_MS: i64 = 86_400_000;

/// Saves the viewport as `name` when `DALABA_SCREENSHOTS` names a directory.
async fn screenshot(browser: &Browser, name: &str) {
    let Some(dir) = std::env::var_os("DALABA_SCREENSHOTS") else { return };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    run(browser, "if (document.activeElement) document.activeElement.blur(); window.scrollTo(0, 0)").await;
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(dir.join(name), png).expect("write screenshot");
}

async fn eval(browser: &Browser, script: &str) -> Value {
    browser.eval(script).await.expect("eval")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guide_tour_visits_every_page_of_a_populated_controller() {
    let mut c = Cluster::start(8).await;
    c.restart_with_config(FAST_ALARMS).await;
    let tw1 = township_id(&c, "第1乡").await;

    // The library: a notice and a jingle.
    let mut items = Vec::new();
    for (title, category, hz) in [("森林防火提示", "health", 660.0), ("早间法治广播", "legal", 880.0)] {
        let r = c
            .api
            .call(
                "POST",
                &format!("/api/v1/library?filename=notice.wav&title={}&category={category}", urlencode(title)),
                Some(tone_wav(hz, 4.0, 0.25)),
                "audio/wav",
            )
            .await
            .expect("upload");
        assert_eq!(r.status, 201, "{}", r.text());
        items.push(r.json()["id"].as_i64().expect("id"));
    }
    // Schedules: every morning for the county, weekday evenings for 第1乡.
    let mut schedules = Vec::new();
    for body in [
        json!({"name": "早间法治广播", "playlist": [{"item_id": items[1]}],
               "recurrence": {"rule": {"kind": "daily", "times": ["07:30:00"]}}, "targets": {"county": true}}),
        json!({"name": "森林防火每日提示", "playlist": [{"item_id": items[0]}],
               "recurrence": {"rule": {"kind": "weekdays", "times": ["18:00:00"]}}, "targets": {"townships": [tw1]}}),
    ] {
        let r = c.api.post("/api/v1/schedules", &body).await.expect("schedule");
        assert_eq!(r.status, 201, "{}", r.text());
        schedules.push(r.json()["id"].as_i64().expect("id"));
    }

    // Six villages with boards; each reports this month's plays (07:30 and
    // 18:00 every day so far, a few missed or failed). Four boards then
    // run; two stay dark (offline alarms); two villages have none.
    let now = wall_ms();
    let today_start = now - (now / 1000 + 8 * 3600).rem_euclid(86_400) * 1000;
    let day_of_month: i64 = county_day(now)[8..10].parse().expect("day");
    let mut dirs = Vec::new();
    for n in 0..6 {
        let village = c.village_id(n).await;
        let dir = c.enrol_agent(&format!("board{n}"), village).await;
        let mut events = Vec::new();
        for d in 0..day_of_month {
            for (k, offset) in [(0, 7 * 3_600_000 + 1_800_000), (1, 18 * 3_600_000)] {
                let at = today_start - d * DAY_MS + offset;
                if at > now - 60_000 {
                    continue;
                }
                let outcome = match (d * 7 + k + n as i64 * 3) % 23 {
                    0 => PlayOutcome::Missed,
                    5 if n == 2 => PlayOutcome::Failed,
                    _ => PlayOutcome::Completed,
                };
                events.push(play(&format!("{}@{at}", schedules[k as usize]), at, outcome, (d + n as i64) % 17 != 3));
            }
        }
        if !events.is_empty() {
            report_plays(&c, &dir, events).await;
        }
        dirs.push(dir);
    }
    let _boards: Vec<_> = dirs.iter().take(4).enumerate().map(|(n, d)| start_agent(&format!("board{n}"), d)).collect();
    c.wait_online(4, WAIT).await;
    c.create_user("li.wei", "李伟", "admin", None, "county admin password");

    let browser = Browser::start_with(&["--window-size=1280,800".to_string()]).await.expect("browser");
    log_in_as(&browser, &c, "#/", "li.wei", "李伟", "county admin password").await;

    // The library.
    goto(&browser, "#/library", "library").await;
    assert_eq!(eval(&browser, "return document.querySelectorAll('[data-lib-item]').length;").await, 2);
    screenshot(&browser, "library.png").await;

    // A schedule in the editor, its preview computed.
    goto(&browser, &format!("#/schedules/{}", schedules[1]), "schedule").await;
    browser
        .wait_until(
            "the editor's preview",
            "const p = document.querySelector('[data-preview]'); \
             return p && p.dataset.state === 'ok' && p.querySelectorAll('[data-occurrence]').length > 0;",
            WAIT,
        )
        .await
        .expect("preview");
    screenshot(&browser, "schedule.png").await;

    // The live console.
    goto(&browser, "#/live", "live").await;
    assert_eq!(eval(&browser, "return !!document.querySelector('[data-live-form]');").await, true);
    screenshot(&browser, "live.png").await;

    // The month's report.
    goto(&browser, "#/reports", "reports").await;
    let played = eval(
        &browser,
        "const f = document.querySelector('[data-figure=\"played\"]'); return f ? Number(f.dataset.value) : 0;",
    )
    .await;
    assert!(played.as_i64().unwrap_or(0) > 0, "the month's plays are counted: {played}");
    screenshot(&browser, "reports.png").await;

    // The dashboard, once the two dark boards have raised their alarms.
    goto_dashboard(&browser).await;
    browser
        .wait_until(
            "two offline alarms",
            "return document.querySelectorAll('#alarms-list [data-kind=\"offline\"]').length === 2;",
            Duration::from_secs(150),
        )
        .await
        .expect("alarms");
    assert_eq!(eval(&browser, "return document.getElementById('count-online').textContent.trim();").await, "4");
    screenshot(&browser, "dashboard.png").await;

    // The same in English.
    run(&browser, "document.getElementById('lang-toggle').click()").await;
    let sentence = eval(&browser, "return document.querySelector('#alarms-list [data-alarm-text]').textContent;").await;
    assert!(sentence.as_str().unwrap_or_default().contains(" offline for "), "{sentence}");
    screenshot(&browser, "dashboard.en.png").await;
    goto(&browser, "#/reports", "reports").await;
    assert_eq!(
        eval(&browser, "return document.querySelector('[data-figure=\"compliance\"] .rp-fig-l').textContent;").await,
        "Compliance"
    );
    screenshot(&browser, "reports.en.png").await;
    run(&browser, "document.getElementById('lang-toggle').click()").await;
    assert_eq!(errors(&browser).await, json!([]), "no script errors");
}

async fn goto_dashboard(browser: &Browser) {
    run(browser, "location.hash = '#/'").await;
    browser
        .wait_until(
            "the dashboard",
            "return document.body.dataset.view === 'dashboard' && document.body.dataset.ready === 'true' \
               && document.getElementById('alarms').dataset.loaded === 'true';",
            WAIT,
        )
        .await
        .expect("dashboard");
}

/// Percent-encodes a query value.
fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}
