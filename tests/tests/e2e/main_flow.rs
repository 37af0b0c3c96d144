//! The console's main flows in headless Chromium against a real controller,
//! logged in as the people who use it: the reports page (figures, the
//! townships, a township's villages sorted by compliance, the CSV and print
//! links, the empty month, a township account kept to its own township),
//! and a township operator uploading a notice, scheduling it for the
//! township, seeing it play there (and not in the other township) and
//! reading it in the report.

use std::path::Path;
use std::time::Duration;

use dalaba_agent::identity::Identity;
use dalaba_agent::net::{ControllerUrl, open_link};
use dalaba_e2e::audio::{county_day, tone_wav, wall_ms};
use dalaba_e2e::webdriver::Browser;
use dalaba_protocol::codec;
use dalaba_protocol::link::{AgentMessage, ControllerMessage, Hardware, Hello};
use dalaba_protocol::state::{PlayEvent, PlayEvents, PlayOutcome};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::cluster::{Cluster, start_agent};

pub const WAIT: Duration = Duration::from_secs(30);

/// Alarms after one minute offline (the shortest allowed), evaluated often;
/// no clock or disk alarms (a loaded test machine may measure a clock
/// offset over a second, and its disk may be nearly full).
pub const FAST_ALARMS: &str = "[alarms]\noffline_after_minutes = 1\nevaluate_every_secs = 2\n\
                               clock_offset_max_ms = 3600000\ndisk_free_min_mb = 0\n";

/// Opens the console at `hash`, logs in through its form and waits for the
/// dashboard's first load.
pub async fn log_in(browser: &Browser, c: &Cluster, hash: &str, name: &str, password: &str) {
    log_in_as(browser, c, hash, name, name, password).await;
}

/// [`log_in`] for an account whose display name is `display`.
pub async fn log_in_as(browser: &Browser, c: &Cluster, hash: &str, name: &str, display: &str, password: &str) {
    browser.open(&format!("{}/{hash}", c.url())).await.expect("open");
    browser
        .wait_until("the login form", "const d = document.getElementById('login'); return !!d && !d.hidden;", WAIT)
        .await
        .expect("login form");
    run(
        browser,
        &format!(
            "document.getElementById('login-name').value = {name:?}; \
             document.getElementById('login-password').value = {password:?}; \
             document.querySelector('[data-login-form] button[type=submit]').click()"
        ),
    )
    .await;
    browser
        .wait_until(
            "logged in, the dashboard loaded",
            &format!(
                "return document.getElementById('login').hidden && document.body.dataset.ready === 'true' \
                 && document.getElementById('user-name').textContent === {display:?};"
            ),
            WAIT,
        )
        .await
        .expect("logged in");
}

/// Logs out through the header's button; the login form comes back.
pub async fn log_out(browser: &Browser) {
    run(browser, "document.getElementById('logout').click()").await;
    browser
        .wait_until(
            "the login form after logging out",
            "const d = document.getElementById('login'); return !!d && !d.hidden && document.body.dataset.login === 'true';",
            WAIT,
        )
        .await
        .expect("logged out");
}

/// Runs `script` in the page (statements, no return needed).
pub async fn run(browser: &Browser, script: &str) {
    browser.eval(&format!("{script}; return true;")).await.expect("script runs");
}

/// Navigates to `hash` inside the open console and waits until the page's
/// data is in.
pub async fn goto(browser: &Browser, hash: &str, page: &str) {
    run(browser, &format!("location.hash = {hash:?}")).await;
    wait_loaded(browser, page).await;
}

pub async fn wait_loaded(browser: &Browser, page: &str) {
    browser
        .wait_until(
            &format!("the {page} page loaded"),
            &format!("return !!document.querySelector('#page > [data-page=\"{page}\"][data-loaded=\"true\"]');"),
            WAIT,
        )
        .await
        .expect("page loaded");
}

/// `GET path` from inside the page, with its session cookie: (status, body).
pub async fn page_get(browser: &Browser, path: &str) -> (u16, Value) {
    let key = format!("__get{}", wall_ms());
    run(
        browser,
        &format!(
            "window.{key} = null; fetch({path:?}, {{headers: {{Accept: 'application/json'}}}}) \
               .then(async r => {{ window.{key} = [r.status, await r.json().catch(() => null)]; }}) \
               .catch(e => {{ window.{key} = [0, String(e)]; }})"
        ),
    )
    .await;
    let v = browser.wait_until(&format!("GET {path}"), &format!("return window.{key};"), WAIT).await.expect("fetch");
    (v[0].as_u64().unwrap_or(0) as u16, v[1].clone())
}

/// `GET path` from inside the page as text: (status, content type, body).
pub async fn page_text(browser: &Browser, path: &str) -> (u16, String, String) {
    let key = format!("__text{}", wall_ms());
    run(
        browser,
        &format!(
            "window.{key} = null; fetch({path:?}) \
               .then(async r => {{ window.{key} = [r.status, r.headers.get('content-type') || '', await r.text()]; }}) \
               .catch(e => {{ window.{key} = [0, '', String(e)]; }})"
        ),
    )
    .await;
    let v = browser.wait_until(&format!("GET {path}"), &format!("return window.{key};"), WAIT).await.expect("fetch");
    let text = |i: usize| v[i].as_str().unwrap_or_default().to_string();
    (v[0].as_u64().unwrap_or(0) as u16, text(1), text(2))
}

pub async fn errors(browser: &Browser) -> Value {
    browser.eval("return window.__errors;").await.expect("eval")
}

/// The id of the township called `name`.
pub async fn township_id(c: &Cluster, name: &str) -> i64 {
    let regions = c.api.get("/api/v1/regions").await.expect("regions").json();
    let tw = regions.as_array().expect("array").iter().find(|r| r["level"] == "township" && r["name"] == name).cloned();
    tw.expect("township")["id"].as_i64().expect("id")
}

pub fn play(id: &str, scheduled_ms: i64, outcome: PlayOutcome, amplifier_confirmed: bool) -> PlayEvent {
    let played = matches!(outcome, PlayOutcome::Completed);
    PlayEvent {
        id: id.into(),
        schedule_id: 7,
        sha256: "ab".repeat(32),
        scheduled_ms,
        started_ms: played.then_some(scheduled_ms + 5),
        ended_ms: played.then_some(scheduled_ms + 30_000),
        outcome,
        reason: (!played).then(|| "test".to_string()),
        amplifier_confirmed,
    }
}

/// Sends `events` as one batch over the agent's own link, as its agent
/// would, and waits for the acknowledgement.
pub async fn report_plays(c: &Cluster, dir: &Path, events: Vec<PlayEvent>) {
    let id = Identity::load(dir).expect("identity");
    let url = ControllerUrl::parse(&c.url()).expect("url");
    let mut link = open_link(&url, &id.controller_cert_sha256, &id.authorization()).await.expect("link");
    let text = |m: &AgentMessage| Message::Text(codec::encode(m).into());
    let hello = AgentMessage::Hello(Hello {
        protocol_version: dalaba_protocol::PROTOCOL_VERSION,
        agent_version: "t".into(),
        hardware: Hardware::default(),
    });
    link.send(text(&hello)).await.expect("hello");
    let n = events.len();
    link.send(text(&AgentMessage::PlayEvents(PlayEvents { events }))).await.expect("send");
    let acked = async {
        while let Some(Ok(frame)) = link.next().await {
            if let Message::Text(t) = frame {
                let m = codec::decode_with_limit::<ControllerMessage>(&t, dalaba_protocol::MAX_CONTROLLER_FRAME)
                    .expect("controller speaks protocol");
                if let ControllerMessage::PlayEventsAck(a) = m {
                    return a.ids.len();
                }
            }
        }
        0
    };
    let got = tokio::time::timeout(Duration::from_secs(10), acked).await.expect("acknowledged in time");
    assert_eq!(got, n, "every event acknowledged");
}

/// The text of the headline figure `key` on the reports page.
async fn figure(browser: &Browser, key: &str) -> String {
    let v = browser
        .eval(&format!(
            "const f = document.querySelector('[data-report-figures] [data-figure=\"{key}\"]'); \
             return f ? f.querySelector('.rp-fig-v').textContent : null;"
        ))
        .await
        .expect("eval");
    v.as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reports_page_shows_the_month_by_township_and_village_and_keeps_a_township_to_its_own() {
    let c = Cluster::start(4).await;
    // In code order: villages 0 and 1 are in 第1乡, 2 and 3 in 第2乡.
    let (tw1, tw2) = (township_id(&c, "第1乡").await, township_id(&c, "第2乡").await);
    let mut dirs = Vec::new();
    for n in 0..3 {
        let village = c.village_id(n).await;
        dirs.push((village, c.enrol_agent(&format!("raw{n}"), village).await));
    }
    let (v0, v1) = (dirs[0].0, dirs[1].0);
    // Today's plays, a few minutes apart, all in one county month.
    let now = wall_ms() - 10 * 60_000;
    let at = |i: i64| now - i * 60_000;
    let month = county_day(at(10))[..7].to_string();
    assert_eq!(month, county_day(now)[..7], "the events fall in one month");
    use PlayOutcome::{Completed, Failed, Missed};
    // 第1乡: village 0 played 3 of 4 (one without the amplifier confirmed),
    // village 1 played 1 of 2. 第2乡: village 2 played 2 of 2.
    report_plays(
        &c,
        &dirs[0].1,
        vec![
            play("7@1", at(1), Completed, true),
            play("7@2", at(2), Completed, true),
            play("7@3", at(3), Completed, false),
            play("7@4", at(4), Missed, false),
        ],
    )
    .await;
    report_plays(&c, &dirs[1].1, vec![play("7@1", at(1), Completed, true), play("7@2", at(2), Failed, false)]).await;
    report_plays(&c, &dirs[2].1, vec![play("7@1", at(1), Completed, true), play("7@2", at(2), Completed, true)]).await;
    // A name an operator typed, markup included, is shown as text.
    let r = c
        .api
        .call(
            "PATCH",
            &format!("/api/v1/regions/{v1}"),
            Some(json!({"name": "<img src=x onerror=alert(1)>村"}).to_string().into_bytes()),
            "application/json",
        )
        .await
        .expect("rename");
    assert_eq!(r.status, 200, "{}", r.text());
    let v1_name = "<img src=x onerror=alert(1)>村";

    c.create_user("county.admin", "county.admin", "admin", None, "county admin password");
    c.create_user("tw1.operator", "tw1.operator", "operator", Some(tw1), "township operator password");

    let browser = Browser::start().await.expect("browser");
    log_in(&browser, &c, "#/", "county.admin", "county admin password").await;
    run(&browser, "document.querySelector('[data-nav=\"reports\"]').click()").await;
    wait_loaded(&browser, "reports").await;
    // The default month is this month in China time.
    let shown = browser.eval("return document.querySelector('[data-report-month]').value;").await.expect("eval");
    assert_eq!(shown, county_day(wall_ms())[..7]);
    if shown != month.as_str() {
        goto(&browser, &format!("#/reports?month={month}"), "reports").await;
    }
    browser
        .wait_until(
            "the county's figures",
            "return !!document.querySelector('[data-report-figures] [data-figure=\"played\"]');",
            WAIT,
        )
        .await
        .expect("figures");
    assert_eq!(figure(&browser, "compliance").await, "75.0%", "6 of 8 played");
    assert_eq!(figure(&browser, "played").await, "6");
    assert_eq!(figure(&browser, "missed").await, "1");
    assert_eq!(figure(&browser, "failed").await, "1");
    assert_eq!(figure(&browser, "amplifier").await, "1");
    let played_sub = browser
        .eval("return document.querySelector('[data-figure=\"played\"] .rp-fig-s').textContent;")
        .await
        .expect("eval");
    assert_eq!(played_sub, "已播 6 / 应播 8");
    // The chart: today's bar holds the day's plays.
    let bars = browser
        .eval(&format!(
            "const g = document.querySelector('[data-report-bars] g[data-day=\"{}\"]'); \
             return g ? [Number(g.dataset.played), g.querySelectorAll('rect').length] : null;",
            county_day(now)
        ))
        .await
        .expect("eval");
    assert_eq!(bars, json!([6, 3]), "played, missed and failed stacked on today's bar");
    // The townships: 4 of 6 and 2 of 2.
    let rows = browser
        .eval(
            "return [...document.querySelectorAll('[data-report-townships] [data-report-township-row]')] \
               .map(r => [Number(r.dataset.reportTownshipRow), r.dataset.played, r.dataset.scheduled, \
                          r.querySelector('[data-col=\"compliance\"]').textContent]);",
        )
        .await
        .expect("eval");
    assert_eq!(rows, json!([[tw1, "4", "6", "66.7%"], [tw2, "2", "2", "100%"]]));
    assert_eq!(
        browser.eval("return document.querySelector('[data-report-villages]').hidden;").await.expect("eval"),
        true,
        "no villages table for the whole county"
    );
    let options = browser
        .eval("return [...document.querySelectorAll('[data-report-township] option')].map(o => o.textContent);")
        .await
        .expect("eval");
    assert_eq!(options, json!(["全县", "第1乡", "第2乡"]));

    // One township: its villages, sorted by compliance, worst first.
    run(
        &browser,
        &format!(
            "const s = document.querySelector('[data-report-township]'); s.value = '{tw1}'; \
             s.dispatchEvent(new Event('change'))"
        ),
    )
    .await;
    browser
        .wait_until(
            "the township's villages",
            "const v = document.querySelector('[data-report-villages]'); \
             return v && !v.hidden && v.querySelectorAll('[data-report-village]').length === 2;",
            WAIT,
        )
        .await
        .expect("villages");
    assert!(
        browser
            .eval("return location.hash;")
            .await
            .expect("eval")
            .as_str()
            .unwrap_or("")
            .contains(&format!("township={tw1}"))
    );
    assert_eq!(figure(&browser, "compliance").await, "66.7%");
    let order =
        "return [...document.querySelectorAll('[data-report-village]')].map(r => Number(r.dataset.reportVillage));";
    assert_eq!(browser.eval(order).await.expect("eval"), json!([v0, v1]), "by code at first");
    run(&browser, "document.querySelector('[data-report-villages] [data-sort=\"compliance\"]').click()").await;
    assert_eq!(browser.eval(order).await.expect("eval"), json!([v1, v0]), "50 % before 75 %");
    run(&browser, "document.querySelector('[data-report-villages] [data-sort=\"compliance\"]').click()").await;
    assert_eq!(browser.eval(order).await.expect("eval"), json!([v0, v1]), "and back");
    let name = browser
        .eval(&format!("return document.querySelector('[data-report-village=\"{v1}\"] td').textContent;"))
        .await
        .expect("eval");
    assert_eq!(name, v1_name, "names are text");
    assert_eq!(browser.eval("return document.querySelectorAll('#page img').length;").await.expect("eval"), 0);

    // The CSV and the printable page: the same query, the page's language.
    let links = browser
        .eval(
            "return [document.querySelector('[data-report-csv]').getAttribute('href'), \
                     document.querySelector('[data-report-print]').getAttribute('href')];",
        )
        .await
        .expect("eval");
    let q = format!("month={month}&township={tw1}&lang=zh");
    assert_eq!(
        links,
        json!([format!("/api/v1/reports/villages.csv?{q}"), format!("/api/v1/reports/monthly.html?{q}")])
    );

    // Both answer with the township's villages, headed in Chinese.
    let (status, kind, csv) = page_text(&browser, links[0].as_str().expect("href")).await;
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"), "{csv}");
    let mut lines = csv.trim_start_matches('\u{feff}').lines();
    assert!(lines.next().unwrap_or_default().starts_with("乡镇"), "{csv}");
    assert_eq!(lines.count(), 2, "one row per village of 第1乡: {csv}");
    let (status, kind, page) = page_text(&browser, links[1].as_str().expect("href")).await;
    assert_eq!((status, kind.as_str()), (200, "text/html; charset=utf-8"));
    assert!(page.contains("第1乡") && !page.contains("第2乡"), "the township's page");

    // English: the labels follow.
    run(&browser, "document.getElementById('lang-toggle').click()").await;
    let label = browser
        .eval("return document.querySelector('[data-figure=\"compliance\"] .rp-fig-l').textContent;")
        .await
        .expect("eval");
    assert_eq!(label, "Compliance");
    let href = browser.eval("return document.querySelector('[data-report-csv]').getAttribute('href');").await;
    let href = href.expect("eval").as_str().unwrap_or_default().to_string();
    assert!(href.ends_with("lang=en"), "{href}");
    let (status, _, csv) = page_text(&browser, &href).await;
    assert_eq!(status, 200, "{csv}");
    assert!(csv.trim_start_matches('\u{feff}').starts_with("township,township_code,village"), "{csv}");
    run(&browser, "document.getElementById('lang-toggle').click()").await;

    // The month before: nothing played, said in words.
    run(&browser, "document.querySelector('.pg-reports .pg-head button').click()").await;
    browser
        .wait_until(
            "the empty month",
            "const e = document.querySelector('[data-report-empty]'); \
             return location.hash.includes('month=') && e && !e.hidden \
               && document.querySelector('[data-report-figures]').hidden ? e.textContent : null;",
            WAIT,
        )
        .await
        .expect("empty state");
    let empty = browser.eval("return document.querySelector('[data-report-empty]').textContent;").await;
    assert!(empty.expect("eval").as_str().unwrap_or("").starts_with("本月还没有播放记录"));
    assert_eq!(errors(&browser).await, json!([]), "no script errors");

    // The township operator: only 第1乡, with no township choice, whatever
    // the address asks for; the API refuses the other township.
    log_out(&browser).await;
    log_in(
        &browser,
        &c,
        &format!("#/reports?month={month}&township={tw2}"),
        "tw1.operator",
        "township operator password",
    )
    .await;
    wait_loaded(&browser, "reports").await;
    browser
        .wait_until(
            "the township's own report",
            "return document.querySelectorAll('[data-report-village]').length === 2;",
            WAIT,
        )
        .await
        .expect("own villages");
    let seen = browser
        .eval(
            "return [document.querySelector('[data-report-township]').closest('label').hidden, \
                     [...document.querySelectorAll('[data-report-township-row]')].map(r => Number(r.dataset.reportTownshipRow)), \
                     document.querySelector('[data-report-title]').textContent, \
                     document.querySelector('#page').textContent.includes('第2乡')];",
        )
        .await
        .expect("eval");
    assert_eq!(seen, json!([true, [tw1], format!("第1乡 广播报表 · {month}"), false]));
    assert_eq!(figure(&browser, "played").await, "4");
    let (status, _) = page_get(&browser, &format!("/api/v1/reports?month={month}&township={tw2}")).await;
    assert_eq!(status, 403, "another township's report is refused");
    assert_eq!(errors(&browser).await, json!([]), "no script errors");
}

/// HH:MM:SS in China time of `at_ms`.
fn china_time(at_ms: i64) -> String {
    let s = (at_ms / 1000 + 8 * 3600).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_township_operator_uploads_schedules_sees_it_play_in_the_township_and_reads_the_report() {
    let c = Cluster::start(2).await;
    // Village 0 is in 第1乡, village 1 in 第2乡; one real agent each (a
    // paced null audio output: ALSA's capture plugin is not paced and
    // would write gigabytes over the minutes this test runs).
    let (tw1, tw2) = (township_id(&c, "第1乡").await, township_id(&c, "第2乡").await);
    let (v1, v2) = (c.village_id(0).await, c.village_id(1).await);
    let dir1 = c.enrol_agent("agent1", v1).await;
    let dir2 = c.enrol_agent("agent2", v2).await;
    let _a1 = start_agent("agent1", &dir1);
    let _a2 = start_agent("agent2", &dir2);
    c.wait_online(2, WAIT).await;
    c.create_user("county.admin", "county.admin", "admin", None, "county admin password");
    c.create_user("wang.fang", "wang.fang", "operator", Some(tw1), "township operator password");

    let browser = Browser::start().await.expect("browser");
    log_in(&browser, &c, "#/", "wang.fang", "township operator password").await;

    // The library: upload a 2 s tone.
    let wav = c.dir.path().join("notice.wav");
    std::fs::write(&wav, tone_wav(1000.0, 2.0, 0.25)).expect("write wav");
    run(&browser, "document.querySelector('[data-nav=\"library\"]').click()").await;
    wait_loaded(&browser, "library").await;
    browser.send_keys("[data-lib-file]", wav.to_str().expect("utf-8 path")).await.expect("choose file");
    run(&browser, "document.querySelector('[data-lib-upload-title]').value = '防火安全提示'").await;
    run(&browser, "document.querySelector('[data-lib-upload-submit]').click()").await;
    let item = browser
        .wait_until(
            "the uploaded notice in the library",
            "const row = [...document.querySelectorAll('[data-lib-item]')].find(r => r.dataset.title === '防火安全提示'); \
             return row ? row.dataset.libItem : null;",
            WAIT,
        )
        .await
        .expect("uploaded");
    let item = item.as_str().expect("id").to_string();

    // Reaching into the other township, the page's own request is refused
    // and the refusal is said in the operator's words.
    let refused = browser
        .eval(&format!(
            "return import('/assets/api.js').then((m) => m.getJSON('/villages/{v2}/plays?day=2026-01-01') \
               .then(() => 'allowed', (e) => [e.status, m.loadErrorText(e)]));"
        ))
        .await
        .expect("eval");
    assert_eq!(refused[0], 403, "{refused}");
    assert_eq!(refused[1], "您的账号只管第1乡，这超出了管辖范围。", "{refused}");

    // The editor: daily at a time a little ahead, for the township.
    goto(&browser, "#/schedules/new", "schedule").await;
    browser.send_keys("[data-ed-name]", "防火安全每日提示").await.expect("type name");
    run(
        &browser,
        &format!(
            "document.querySelector('[data-playlist-add]').value = '{item}'; \
             document.querySelector('[data-playlist-add-button]').click()"
        ),
    )
    .await;
    run(&browser, &format!("document.querySelector('[data-target-township=\"{tw1}\"]').click()")).await;
    let other = browser
        .eval(&format!("return !!document.querySelector('[data-target-township=\"{tw2}\"]');"))
        .await
        .expect("eval");
    assert_eq!(other, false, "the other township is not offered as a target");
    let at_ms = (wall_ms() + 60_000) / 1000 * 1000;
    run(
        &browser,
        &format!(
            "const t = document.querySelector('[data-rec-time]'); t.value = '{}'; \
             t.dispatchEvent(new Event('input', {{bubbles: true}}))",
            china_time(at_ms)
        ),
    )
    .await;
    browser
        .wait_until(
            "a valid preview",
            "const p = document.querySelector('[data-preview]'); \
             return p.dataset.state === 'ok' && document.querySelector('[data-form-error]').hidden;",
            WAIT,
        )
        .await
        .expect("preview");
    run(&browser, "document.querySelector('[data-save]').click()").await;
    wait_loaded(&browser, "schedules").await;
    browser
        .wait_until(
            "the saved schedule in the list",
            "return [...document.querySelectorAll('[data-schedule-row]')].some(r => r.dataset.name === '防火安全每日提示');",
            WAIT,
        )
        .await
        .expect("listed");
    assert!(wall_ms() < at_ms - 20_000, "saved too late for the agent to get it in time");

    // It plays in 第1乡's village: its proof of play on the village's day.
    let day = county_day(at_ms);
    let within = Duration::from_millis((at_ms - wall_ms()).max(0) as u64 + 60_000);
    dalaba_e2e::wait_for("the play event of 第1乡's village", within, || async {
        let (status, body) = page_get(&browser, &format!("/api/v1/villages/{v1}/plays?day={day}")).await;
        (status == 200 && body["events"].as_array().is_some_and(|e| !e.is_empty())).then_some(())
    })
    .await
    .expect("played and reported");
    goto(&browser, &format!("#/village/{v1}/{day}"), "village-day").await;
    let outcomes = browser
        .eval("return [...document.querySelectorAll('#page [data-play-event]')].map(e => e.dataset.outcome);")
        .await
        .expect("eval");
    assert_eq!(outcomes, json!(["completed"]), "played to the end");
    let text = browser.eval("return document.querySelector('#page').textContent;").await.expect("eval");
    assert!(text.as_str().unwrap_or("").contains("防火安全每日提示"), "{text}");
    // The other township's village is not the operator's to look at.
    let (status, _) = page_get(&browser, &format!("/api/v1/villages/{v2}/plays?day={day}")).await;
    assert_eq!(status, 403, "another township's village is refused");

    // The report: one play of one scheduled, the township only.
    run(&browser, "document.querySelector('[data-nav=\"reports\"]').click()").await;
    wait_loaded(&browser, "reports").await;
    if county_day(wall_ms())[..7] != day[..7] {
        goto(&browser, &format!("#/reports?month={}", &day[..7]), "reports").await;
    }
    assert_eq!(figure(&browser, "played").await, "1");
    assert_eq!(figure(&browser, "compliance").await, "100%");
    let seen = browser
        .eval(
            "return [[...document.querySelectorAll('[data-report-township-row]')].map(r => Number(r.dataset.reportTownshipRow)), \
                     [...document.querySelectorAll('[data-report-village]')].map(r => [Number(r.dataset.reportVillage), r.dataset.played]), \
                     document.querySelector('#page').textContent.includes('第2乡')];",
        )
        .await
        .expect("eval");
    assert_eq!(seen, json!([[tw1], [[v1, "1"]], false]), "第1乡 only");
    let (status, _) = page_get(&browser, &format!("/api/v1/reports?month={}&township={tw2}", &day[..7])).await;
    assert_eq!(status, 403, "another township's report is refused");
    assert_eq!(errors(&browser).await, json!([]), "no script errors");

    // The county admin sees both townships; 第2乡 scheduled nothing.
    log_out(&browser).await;
    log_in(&browser, &c, &format!("#/reports?month={}", &day[..7]), "county.admin", "county admin password").await;
    wait_loaded(&browser, "reports").await;
    let rows = browser
        .eval(
            "return [...document.querySelectorAll('[data-report-township-row]')] \
               .map(r => [Number(r.dataset.reportTownshipRow), r.dataset.played, r.dataset.scheduled]);",
        )
        .await
        .expect("eval");
    assert_eq!(rows, json!([[tw1, "1", "1"], [tw2, "0", "0"]]));
    // 第2乡's village had nothing planned and played nothing.
    let (status, plan) = page_get(&browser, &format!("/api/v1/villages/{v2}/plan?day={day}")).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["items"], json!([]), "nothing planned in 第2乡");
    let (_, plays) = page_get(&browser, &format!("/api/v1/villages/{v2}/plays?day={day}")).await;
    assert_eq!(plays["events"], json!([]), "nothing played in 第2乡");
    assert_eq!(errors(&browser).await, json!([]), "no script errors");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_villages_raise_alarms_on_the_dashboard_an_operator_acknowledges_a_viewer_only_reads_and_a_township_sees_its_own()
 {
    let mut c = Cluster::start(2).await;
    let (v1, v2) = (c.village_id(0).await, c.village_id(1).await);
    let dir1 = c.enrol_agent("agent1", v1).await;
    let dir2 = c.enrol_agent("agent2", v2).await;
    c.restart_with_config(FAST_ALARMS).await;
    // The settings changed in the file are on record, by name.
    let audit: Value = c.api.get("/api/v1/audit?action=config.").await.expect("audit").json();
    let details: Vec<&str> = audit.as_array().expect("records").iter().filter_map(|r| r["detail"].as_str()).collect();
    assert_eq!(details.len(), 2, "the first start and the restart: {audit}");
    assert!(details[0].contains("alarms.offline_after_minutes: 30 → 1"), "{}", details[0]);
    assert_eq!(details[1], "the first configuration on record");
    let mut a1 = start_agent("agent1", &dir1);
    let mut a2 = start_agent("agent2", &dir2);
    c.wait_online(2, WAIT).await;
    let tw1 = township_id(&c, "第1乡").await;
    c.create_user("duty.operator", "duty.operator", "operator", None, "duty operator password");
    c.create_user("county.viewer", "county.viewer", "viewer", None, "county viewer password");
    c.create_user("tw1.operator", "tw1.operator", "operator", Some(tw1), "township operator password");

    let browser = Browser::start().await.expect("browser");
    log_in(&browser, &c, "#/", "duty.operator", "duty operator password").await;
    let clear = browser
        .wait_until(
            "the panel loaded, all clear",
            "const s = document.getElementById('alarms'); const e = document.getElementById('alarms-empty'); \
             return s.dataset.loaded === 'true' && s.dataset.count === '0' && !e.hidden \
               && document.getElementById('alarms-count').hidden ? e.textContent : null;",
            WAIT,
        )
        .await;
    if clear.is_err() {
        let panel = browser.eval("return document.getElementById('alarms').outerHTML;").await.expect("eval");
        panic!("not all clear: {panel}");
    }

    // Both boards go dark; after the threshold the panel shows both, from
    // the event stream (the page is not reloaded), newest first.
    a1.kill().await;
    a2.kill().await;
    let rows = "return [...document.querySelectorAll('#alarms-list [data-alarm-id]')] \
                  .map(r => [r.dataset.kind, r.querySelector('[data-alarm-text]').textContent, \
                             !r.querySelector('[data-alarm-ack]').hidden]);";
    browser
        .wait_until(
            "two offline alarms in the panel",
            "return document.querySelectorAll('#alarms-list [data-alarm-id][data-kind=\"offline\"]').length === 2;",
            Duration::from_secs(150),
        )
        .await
        .expect("alarms raised");
    let shown = browser.eval(rows).await.expect("eval");
    let shown = shown.as_array().expect("rows");
    let mut villages: Vec<&str> = Vec::new();
    for row in shown {
        let text = row[1].as_str().unwrap_or_default();
        let village = text.split(" 离线已 ").next().unwrap_or_default();
        assert!(text.contains(" 离线已 ") && text.ends_with("分钟"), "one sentence: {text}");
        villages.push(village);
        assert_eq!(row[2], true, "an operator may acknowledge: {row}");
    }
    villages.sort_unstable();
    assert_eq!(villages, ["1乡1村", "2乡1村"]);
    assert_eq!(browser.eval("return document.getElementById('alarms-count').textContent;").await.expect("eval"), "2");
    let (status, listed) = page_get(&browser, "/api/v1/alarms?state=open").await;
    assert_eq!(status, 200, "{listed}");
    let ids: Vec<i64> = listed["alarms"].as_array().expect("alarms").iter().filter_map(|a| a["id"].as_i64()).collect();
    let order = browser
        .eval("return [...document.querySelectorAll('#alarms-list [data-alarm-id]')].map(r => Number(r.dataset.alarmId));")
        .await
        .expect("eval");
    assert_eq!(order, json!(ids), "the panel lists them as the API does, newest first");
    let first = listed["alarms"].as_array().expect("alarms").iter().find(|a| a["village_id"] == v1).cloned();
    let id1 = first.expect("village 1's alarm")["id"].as_i64().expect("id");

    // In English, the same sentence in English.
    run(&browser, "document.getElementById('lang-toggle').click()").await;
    let english = browser
        .eval(&format!("return document.querySelector('[data-alarm-id=\"{id1}\"] [data-alarm-text]').textContent;"))
        .await
        .expect("eval");
    assert!(english.as_str().unwrap_or_default().starts_with("1乡1村 offline for "), "{english}");
    assert_eq!(
        browser.eval("return document.querySelector('#alarms-heading').textContent.trim();").await.expect("eval"),
        "Operator alarms 2"
    );
    run(&browser, "document.getElementById('lang-toggle').click()").await;

    // The operator acknowledges village 1's alarm: it stays open, marked.
    run(&browser, &format!("document.querySelector('[data-alarm-ack=\"{id1}\"]').click()")).await;
    browser
        .wait_until(
            "the alarm acknowledged",
            &format!(
                "const r = document.querySelector('[data-alarm-id=\"{id1}\"]'); \
                 return r && r.dataset.acknowledged === 'true' && r.querySelector('[data-alarm-ack]').hidden \
                   && r.textContent.includes('已确认：duty.operator');"
            ),
            WAIT,
        )
        .await
        .expect("acknowledged");
    let (_, listed) = page_get(&browser, "/api/v1/alarms?state=open").await;
    let acked = listed["alarms"].as_array().expect("alarms").iter().find(|a| a["id"] == id1).cloned().expect("open");
    assert_eq!(acked["acknowledged_by"], "duty.operator (duty.operator)", "{acked}");

    // Village 1's board comes back: its alarm clears and leaves the panel.
    a1 = start_agent("agent1", &dir1);
    browser
        .wait_until(
            "village 1's alarm cleared",
            &format!(
                "return !document.querySelector('[data-alarm-id=\"{id1}\"]') \
                   && document.getElementById('alarms').dataset.count === '1';"
            ),
            Duration::from_secs(60),
        )
        .await
        .expect("cleared");
    assert_eq!(errors(&browser).await, json!([]), "no script errors");

    // A viewer sees the open alarm and no button to acknowledge it.
    log_out(&browser).await;
    log_in(&browser, &c, "#/", "county.viewer", "county viewer password").await;
    browser
        .wait_until("the viewer's panel", "return document.getElementById('alarms').dataset.count === '1';", WAIT)
        .await
        .expect("viewer's panel");
    let shown = browser.eval(rows).await.expect("eval");
    assert_eq!(shown[0][0], "offline");
    assert!(shown[0][1].as_str().unwrap_or_default().starts_with("2乡1村 离线已 "), "{shown}");
    assert_eq!(shown[0][2], false, "no acknowledge button for a viewer");
    assert_eq!(errors(&browser).await, json!([]), "no script errors");

    // 第1乡's operator: 第2乡's alarm is not theirs; all clear.
    log_out(&browser).await;
    log_in(&browser, &c, "#/", "tw1.operator", "township operator password").await;
    browser
        .wait_until(
            "all clear for 第1乡",
            "const s = document.getElementById('alarms'); \
             return s.dataset.loaded === 'true' && s.dataset.count === '0' \
               && !document.getElementById('alarms-empty').hidden;",
            WAIT,
        )
        .await
        .expect("all clear in the township");
    let (status, listed) = page_get(&browser, "/api/v1/alarms?state=open").await;
    assert_eq!((status, listed["alarms"].clone()), (200, json!([])), "the API agrees");
    assert_eq!(errors(&browser).await, json!([]), "no script errors");
    drop(a1);
}
