//! The operator pages in headless Chromium against a real controller:
//! uploading to the library with a progress bar, writing a schedule in the
//! editor with its live preview (occurrences, conflicts, the server's 422),
//! the schedules list, the week view, a village's day, and each agent's
//! sync state on the dashboard.

use std::path::Path;
use std::time::Duration;

use dalaba_e2e::webdriver::Browser;
use serde_json::{Value, json};

use crate::cluster::{Cluster, start_agent};

const WAIT: Duration = Duration::from_secs(20);

/// A small WAV file: `seconds` of a 440 Hz tone, 16 kHz mono 16-bit.
fn write_tone(path: &Path, seconds: u32) {
    let rate = 16_000u32;
    let samples: Vec<i16> = (0..rate * seconds)
        .map(|n| ((n as f64 * 440.0 * std::f64::consts::TAU / rate as f64).sin() * 8000.0) as i16)
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, wav).expect("write wav");
}

/// Opens `hash` and waits until the page's data is in.
async fn open_page(browser: &Browser, c: &Cluster, hash: &str, page: &str) {
    browser.open(&format!("{}/{hash}", c.url())).await.expect("open");
    wait_loaded(browser, page).await;
}

async fn wait_loaded(browser: &Browser, page: &str) {
    browser
        .wait_until(
            &format!("the {page} page loaded"),
            &format!("return !!document.querySelector('#page > [data-page=\"{page}\"][data-loaded=\"true\"]');"),
            WAIT,
        )
        .await
        .expect("page loaded");
}

/// Runs `script` in the page (statements, no return needed).
async fn run(browser: &Browser, script: &str) {
    browser.eval(&format!("{script}; return true;")).await.expect("script runs");
}

/// Picks the recurrence `kind` in the editor and types `value` into its
/// field `input`, as an operator would.
async fn choose_recurrence(browser: &Browser, kind: &str, input: &str, value: &str) {
    run(
        browser,
        &format!(
            "const k = document.querySelector('[data-rec-kind]'); k.value = '{kind}'; \
             k.dispatchEvent(new Event('change', {{bubbles: true}})); \
             const f = document.querySelector('{input}'); f.value = '{value}'; \
             f.dispatchEvent(new Event('input', {{bubbles: true}}))"
        ),
    )
    .await;
}

async fn errors(browser: &Browser) -> Value {
    browser.eval("return window.__errors;").await.expect("eval")
}

async fn screenshot(browser: &Browser, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    let out = dalaba_e2e::bins::target_dir().join("screenshots");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join(name), png).expect("write screenshot");
}

/// The id of the township called `name`.
async fn township_id(c: &Cluster, name: &str) -> i64 {
    let regions = c.api.get("/api/v1/regions").await.expect("regions").json();
    let tw = regions.as_array().expect("array").iter().find(|r| r["level"] == "township" && r["name"] == name).cloned();
    tw.expect("township")["id"].as_i64().expect("id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_uploads_audio_and_writes_a_schedule_through_the_pages() {
    let c = Cluster::start(4).await;
    let wav = c.dir.path().join("notice-tone.wav");
    write_tone(&wav, 3);
    let browser = Browser::start().await.expect("browser");

    // The library: choose a file, upload it, watch the bar reach 100 %.
    open_page(&browser, &c, "#/library", "library").await;
    assert_eq!(browser.eval("return document.body.dataset.view;").await.expect("eval"), "library");
    assert_eq!(
        browser
            .eval("return document.querySelector('[data-nav=\"library\"]').getAttribute('aria-current');")
            .await
            .expect("eval"),
        "page"
    );
    browser.send_keys("[data-lib-file]", wav.to_str().expect("utf-8 path")).await.expect("choose file");
    let title = browser
        .eval("return document.querySelector('[data-lib-upload-title]').value;")
        .await
        .expect("title from the file name");
    assert_eq!(title, "notice-tone");
    run(&browser, "document.querySelector('[data-lib-upload-title]').value = '交通安全提示'").await;
    run(&browser, "document.querySelector('[data-lib-upload-category]').value = 'traffic'").await;
    run(&browser, "document.querySelector('[data-lib-upload-submit]').click()").await;
    let item_id = browser
        .wait_until(
            "the uploaded item in the list, the bar at 100 %",
            "const p = document.querySelector('[data-upload-progress]'); \
             const row = [...document.querySelectorAll('[data-lib-item]')].find(r => r.dataset.title === '交通安全提示'); \
             return p && p.dataset.percent === '100' && p.value === 100 && row ? row.dataset.libItem : null;",
            WAIT,
        )
        .await
        .expect("uploaded");
    let item_id: i64 = item_id.as_str().expect("id").parse().expect("numeric id");
    // The same file again, and a file that is not audio: refused in the
    // operator's words.
    let fake = c.dir.path().join("notice.mp3");
    std::fs::write(&fake, "这不是音频，是一段文字。").expect("fake file");
    for (path, says) in [(&wav, "已经在音频库里了"), (&fake, "不是能播放的音频")] {
        browser.send_keys("[data-lib-file]", path.to_str().expect("utf-8 path")).await.expect("choose file");
        run(&browser, "document.querySelector('[data-lib-upload-submit]').click()").await;
        let shown = browser
            .wait_until(
                "the refusal in words",
                &format!(
                    "const e = document.querySelector('[data-upload-error]'); \
                     return e && !e.hidden && e.textContent.includes('{says}') ? e.textContent : null;"
                ),
                WAIT,
            )
            .await
            .expect("refusal shown");
        assert!(shown.as_str().is_some_and(|t| t.contains("详细原因")), "{shown}");
    }
    let row = format!("document.querySelector('[data-lib-item=\"{item_id}\"]')");
    assert_eq!(browser.eval(&format!("return {row}.dataset.category;")).await.expect("eval"), "traffic");
    let text = browser.eval(&format!("return {row}.textContent;")).await.expect("eval");
    assert!(text.as_str().expect("text").contains("0:03"), "the duration is shown: {text}");
    // The preview player plays the item from the API.
    run(&browser, &format!("document.querySelector('[data-lib-play=\"{item_id}\"]').click()")).await;
    let src = browser.eval("return document.querySelector('[data-lib-player]').src;").await.expect("eval");
    assert!(
        src.as_str().expect("src").ends_with(&format!("/api/v1/library/{item_id}/audio?variant=original")),
        "{src}"
    );
    screenshot(&browser, "library.png").await;

    // A typed notice, spoken by espeak-ng, joins the library.
    browser.send_keys("[data-tts-text]", "请注意交通安全，出门戴头盔。").await.expect("type text");
    browser.send_keys("[data-tts-title]", "戴头盔提示").await.expect("type title");
    run(&browser, "document.querySelector('[data-tts-submit]').click()").await;
    browser
        .wait_until(
            "the spoken item in the list",
            "const row = [...document.querySelectorAll('[data-lib-item]')].find(r => r.dataset.title === '戴头盔提示'); \
             return row && row.textContent.includes('文字转语音');",
            Duration::from_secs(60),
        )
        .await
        .expect("tts item");
    // A custom category appears in the filter.
    run(&browser, "document.querySelector('[data-cat-form]').closest('details').open = true").await;
    browser.send_keys("[data-cat-key]", "fire-safety").await.expect("key");
    browser.send_keys("[data-cat-zh]", "消防安全").await.expect("zh");
    browser.send_keys("[data-cat-en]", "Fire safety").await.expect("en");
    run(&browser, "document.querySelector('[data-cat-submit]').click()").await;
    browser
        .wait_until(
            "the new category in the filter",
            "return [...document.querySelectorAll('[data-lib-filter] option')] \
               .some(o => o.value === 'fire-safety' && o.textContent === '消防安全');",
            WAIT,
        )
        .await
        .expect("category");

    // An existing schedule at 08:00 for the whole county, made through the API.
    let existing = c
        .api
        .post(
            "/api/v1/schedules",
            &json!({
                "name": "早间法治广播",
                "playlist": [{"item_id": item_id, "repeats": 0}],
                "recurrence": {"rule": {"kind": "daily", "times": ["08:00:00"]}},
                "targets": {"county": true},
            }),
        )
        .await
        .expect("create");
    assert_eq!(existing.status, 201, "{}", existing.text());
    let existing_id = existing.json()["id"].as_i64().expect("id");

    // The editor: a name, the item, 08:00 daily — but no target yet.
    open_page(&browser, &c, "#/schedules/new", "schedule").await;
    browser.send_keys("[data-ed-name]", "交通安全每日提示").await.expect("type name");
    run(
        &browser,
        &format!(
            "document.querySelector('[data-playlist-add]').value = '{item_id}'; \
             document.querySelector('[data-playlist-add-button]').click()"
        ),
    )
    .await;
    run(
        &browser,
        "const t = document.querySelector('[data-rec-time]'); t.value = '08:00:00'; \
         t.dispatchEvent(new Event('input', {bubbles: true}))",
    )
    .await;
    // Without targets the server refuses; the form says why in the
    // operator's words, by the refusal's reason.
    let message = browser
        .wait_until(
            "the server's 422 next to the form",
            "const e = document.querySelector('[data-form-error]'); \
             const p = document.querySelector('[data-preview]'); \
             return !e.hidden && p.dataset.state === 'error' \
               && e.textContent.includes('请至少选一个播出范围') ? e.textContent : null;",
            WAIT,
        )
        .await
        .expect("422 shown");
    assert!(!message.as_str().expect("text").contains("target"), "no English: {message}");
    run(&browser, "document.querySelector('[data-save]').click()").await;
    browser
        .wait_until(
            "the save refused with the reason",
            "const e = document.querySelector('[data-form-error]'); \
             return !e.hidden && e.textContent.startsWith('保存失败') && e.textContent.includes('请至少选一个播出范围');",
            WAIT,
        )
        .await
        .expect("save refused");
    // Township 1 from the tree: the preview shows 10 plays and the conflict.
    let township = township_id(&c, "第1乡").await;
    run(&browser, &format!("document.querySelector('[data-target-township=\"{township}\"]').click()")).await;
    // A cron line written for crontab (five fields) is refused with the
    // fix, in words, while the operator types.
    choose_recurrence(&browser, "cron", "[data-rec-cron]", "0 8 * * *").await;
    browser
        .wait_until(
            "the five-field cron refused in words",
            "const e = document.querySelector('[data-form-error]'); \
             return !e.hidden && e.textContent.includes('只有 5 段') && e.textContent.includes('0 8 * * *');",
            WAIT,
        )
        .await
        .expect("cron refusal in words");
    choose_recurrence(&browser, "daily", "[data-rec-time]", "08:00:00").await;
    browser
        .wait_until(
            "a valid preview with 10 occurrences and the conflict",
            &format!(
                "const p = document.querySelector('[data-preview]'); \
                 return p.dataset.state === 'ok' \
                   && p.querySelectorAll('[data-occurrence]').length === 10 \
                   && !!p.querySelector('[data-conflict=\"{existing_id}\"]') \
                   && document.querySelector('[data-form-error]').hidden;"
            ),
            WAIT,
        )
        .await
        .expect("preview");
    let occurrences = browser
        .eval("return [...document.querySelectorAll('[data-occurrence]')].map(o => o.textContent);")
        .await
        .expect("eval");
    for o in occurrences.as_array().expect("list") {
        assert!(o.as_str().expect("text").ends_with(" 08:00:00"), "every occurrence at 08:00: {o}");
    }
    let conflict = format!("document.querySelector('[data-conflict=\"{existing_id}\"]')");
    // Equal priority, first come first served: the new schedule gives way.
    assert_eq!(browser.eval(&format!("return {conflict}.dataset.role;")).await.expect("eval"), "loses");
    let words = browser.eval(&format!("return {conflict}.textContent;")).await.expect("eval");
    assert!(words.as_str().expect("text").contains("早间法治广播"), "{words}");
    assert_eq!(
        browser.eval("return document.querySelector('[data-preview-villages]').textContent;").await.expect("eval"),
        "2 个村"
    );
    screenshot(&browser, "schedule-editor.png").await;

    // Save: back on the list, the new schedule is there.
    run(&browser, "document.querySelector('[data-save]').click()").await;
    wait_loaded(&browser, "schedules").await;
    let new_id = browser
        .wait_until(
            "the saved schedule in the list",
            "const r = [...document.querySelectorAll('[data-schedule-row]')].find(r => r.dataset.name === '交通安全每日提示'); \
             return r ? r.dataset.scheduleRow : null;",
            WAIT,
        )
        .await
        .expect("listed");
    let new_id: i64 = new_id.as_str().expect("id").parse().expect("numeric");
    let stored = c.api.get(&format!("/api/v1/schedules/{new_id}")).await.expect("get").json();
    assert_eq!(stored["targets"]["townships"], json!([township]));
    assert_eq!(stored["recurrence"], json!({"rule": {"kind": "daily", "times": ["08:00:00"]}}));
    assert_eq!(stored["playlist"], json!([{"item_id": item_id, "repeats": 0}]));

    // The county's quiet hours, on the same page.
    run(&browser, "document.querySelector('[data-quiet-add]').click()").await;
    run(&browser, "document.querySelector('[data-quiet-save]').click()").await;
    browser
        .wait_until(
            "the quiet hours saved",
            "return document.querySelector('[data-quiet-status]').textContent === '已保存';",
            WAIT,
        )
        .await
        .expect("quiet hours saved");
    let quiet = c.api.get("/api/v1/quiet-hours").await.expect("quiet hours").json();
    assert_eq!(quiet["county"], json!([{"start": "22:00:00", "end": "06:00:00"}]));

    // Editing it again: the form holds what was saved, and the preview in
    // English still names the conflict.
    open_page(&browser, &c, &format!("#/schedules/{new_id}"), "schedule").await;
    assert_eq!(
        browser.eval("return document.querySelector('[data-ed-name]').value;").await.expect("eval"),
        "交通安全每日提示"
    );
    run(&browser, "document.getElementById('lang-toggle').click()").await;
    browser
        .wait_until(
            "the conflict in English",
            &format!(
                "const c = document.querySelector('[data-conflict=\"{existing_id}\"]'); \
                 return document.documentElement.lang === 'en' && c && c.textContent.startsWith('Gives way to');"
            ),
            WAIT,
        )
        .await
        .expect("english preview");
    screenshot(&browser, "schedule-editor-en.png").await;
    run(&browser, "document.getElementById('lang-toggle').click()").await;

    // Deleting the item a schedule uses is refused; the page says why.
    open_page(&browser, &c, "#/library", "library").await;
    run(&browser, &format!("document.querySelector('[data-lib-delete=\"{item_id}\"]').click()")).await;
    run(&browser, &format!("document.querySelector('[data-lib-confirm-delete=\"{item_id}\"]').click()")).await;
    browser
        .wait_until(
            "the 409 message in the row",
            &format!(
                "const e = document.querySelector('[data-lib-row-error=\"{item_id}\"]'); \
                 return e && !e.hidden && e.textContent.startsWith('删除失败');"
            ),
            WAIT,
        )
        .await
        .expect("delete refused");

    // The week view of township 1 from today: the new schedule plays in its villages.
    open_page(&browser, &c, &format!("#/week?region={township}"), "week").await;
    let cells = browser
        .eval(&format!(
            "return [...document.querySelectorAll('[data-week-cell]')] \
               .filter(c => c.querySelector('[data-plan-item=\"{new_id}\"]')).length;"
        ))
        .await
        .expect("eval");
    assert!(cells.as_i64().expect("count") >= 2, "the schedule is in the week view: {cells}");
    screenshot(&browser, "week.png").await;

    // From the dashboard's village panel to the village's day: both plans.
    let village = c.village_id(0).await;
    browser.open(&format!("{}/#/", c.url())).await.expect("open");
    browser
        .wait_until("the dashboard", "return document.body.dataset.ready === 'true';", WAIT)
        .await
        .expect("dashboard");
    run(&browser, &format!("document.querySelector('.village[data-village-id=\"{village}\"]').click()")).await;
    browser
        .wait_until("the village panel", "return !document.getElementById('village-panel').hidden;", WAIT)
        .await
        .expect("panel");
    run(&browser, "document.querySelector('[data-village-day-link]').click()").await;
    wait_loaded(&browser, "village-day").await;
    for id in [new_id, existing_id] {
        let found = browser
            .eval(&format!("return !!document.querySelector('#page [data-plan-item=\"{id}\"]');"))
            .await
            .expect("eval");
        assert_eq!(found, true, "schedule {id} in the village's day");
    }
    screenshot(&browser, "village-day.png").await;
    assert_eq!(errors(&browser).await, json!([]), "no script errors");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_each_agents_sync_state_in_words() {
    let c = Cluster::start(2).await;
    let village = c.village_id(0).await;
    let dir = c.enrol_agent("agent0", village).await;
    let _agent = start_agent("agent0", &dir);
    c.wait_online(1, WAIT).await;

    let browser = Browser::start().await.expect("browser");
    browser.open(&format!("{}/", c.url())).await.expect("open");
    browser
        .wait_until("the dashboard", "return document.body.dataset.ready === 'true';", WAIT)
        .await
        .expect("dashboard");
    run(&browser, &format!("document.querySelector('.village[data-village-id=\"{village}\"]').click()")).await;
    // The agent reports its sync once it has its desired state; with
    // nothing to download it is up to date.
    let sync = "document.querySelector('#village-panel [data-agent-id] [data-field=\"sync\"] dd')";
    browser
        .wait_until(
            "the agent up to date in the panel",
            &format!("const d = {sync}; return d && d.dataset.sync === 'up_to_date' && d.textContent === '已同步';"),
            WAIT,
        )
        .await
        .expect("sync shown");
    run(&browser, "document.getElementById('lang-toggle').click()").await;
    assert_eq!(browser.eval(&format!("return {sync}.textContent;")).await.expect("eval"), "up to date");

    // The other two states in words, in both languages, from the page's own module.
    run(
        &browser,
        "import('/assets/panel.js').then(m => { window.__sync = [ \
           m.syncText({version: 2, state: {state: 'downloading', done: 3, total: 5}}), \
           m.syncText({version: 2, state: {state: 'failed', reason: 'disk full'}})]; })",
    )
    .await;
    let english = browser.wait_until("the module's answer", "return window.__sync || null;", WAIT).await.expect("eval");
    assert_eq!(english[0]["text"], "downloading 3/5");
    assert_eq!(english[1]["text"], "failed: disk full");
    run(&browser, "document.getElementById('lang-toggle').click()").await;
    run(
        &browser,
        "import('/assets/panel.js').then(m => { window.__syncZh = [ \
           m.syncText({version: 2, state: {state: 'downloading', done: 3, total: 5}}), \
           m.syncText({version: 2, state: {state: 'failed', reason: 'disk full'}})]; })",
    )
    .await;
    let chinese =
        browser.wait_until("the module's answer", "return window.__syncZh || null;", WAIT).await.expect("eval");
    assert_eq!(chinese[0]["text"], "下载中 3/5");
    assert_eq!(chinese[1]["text"], "失败：disk full");
    assert_eq!(chinese[0]["state"], "downloading");
    assert_eq!(errors(&browser).await, json!([]), "no script errors");
}
