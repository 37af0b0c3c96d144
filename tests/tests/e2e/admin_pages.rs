//! The accounts, API tokens and audit log pages in headless Chromium
//! against a real controller: an admin creates a township operator and a
//! viewer, changes, disables, enables and resets them, creates an API token
//! whose secret is shown once and revokes it; the audit log shows those
//! actions, filters them (the filters surviving a reload), pages back and
//! exports the same rows as CSV; a viewer sees no admin links; first-run
//! mode acts as an admin; hostile names are shown as inert text and
//! over-long ones refused in words.
//!
//! With `DALABA_SCREENSHOTS=<dir>` the tests save the user guide's
//! screenshots there: `accounts.png`, `tokens.png`, `audit.png`.

use std::time::Duration;

use dalaba_e2e::webdriver::Browser;
use serde_json::{Value, json};

use crate::cluster::Cluster;

const WAIT: Duration = Duration::from_secs(20);
pub(crate) const ADMIN: &str = "county.admin";
pub(crate) const ADMIN_PASSWORD: &str = "correct horse battery";

/// A JavaScript literal of `s` (JSON is one, whatever `s` holds).
pub(crate) fn lit(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

pub(crate) async fn js(browser: &Browser, script: &str) -> Value {
    browser.eval(script).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

pub(crate) async fn wait(browser: &Browser, what: &str, script: &str) -> Value {
    browser.wait_until(what, script, WAIT).await.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Logs in through the form (which must be up) and waits until it is gone.
pub(crate) async fn log_in(browser: &Browser, name: &str, password: &str) {
    wait(
        browser,
        "the login form",
        "const d = document.getElementById('login'); return !!d && !d.hidden && document.body.dataset.login === 'true';",
    )
    .await;
    js(
        browser,
        &format!(
            "document.getElementById('login-name').value = {}; \
             document.getElementById('login-password').value = {}; \
             document.querySelector('[data-login-form] button[type=submit]').click(); return true;",
            lit(name),
            lit(password)
        ),
    )
    .await;
    wait(browser, "logged in", "return document.getElementById('login').hidden && !document.body.dataset.login;").await;
}

pub(crate) async fn log_out(browser: &Browser) {
    js(browser, "document.getElementById('logout').click(); return true;").await;
    wait(browser, "the login form after logging out", "return document.body.dataset.login === 'true';").await;
}

/// Opens `hash` and waits until the page's data is in. A change of hash
/// alone is not a new document, so the page shown before is marked stale
/// and only a fresh one counts.
pub(crate) async fn open_page(browser: &Browser, c: &Cluster, hash: &str, page: &str) {
    mark_stale(browser).await;
    browser.open(&format!("{}/{hash}", c.url())).await.expect("open");
    wait_loaded(browser, page).await;
}

/// Reloads the document and waits until `page` is loaded again.
async fn reload(browser: &Browser, page: &str) {
    mark_stale(browser).await;
    js(browser, "setTimeout(() => location.reload(), 0); return true;").await;
    wait_loaded(browser, page).await;
}

pub(crate) async fn mark_stale(browser: &Browser) {
    js(
        browser,
        "const p = document.querySelector('#page > [data-page]'); if (p) p.dataset.stale = 'true'; return true;",
    )
    .await;
}

pub(crate) async fn wait_loaded(browser: &Browser, page: &str) {
    wait(
        browser,
        &format!("the {page} page loaded"),
        &format!(
            "return !!document.querySelector('#page > [data-page=\"{page}\"][data-loaded=\"true\"]:not([data-stale])');"
        ),
    )
    .await;
}

/// Saves a screenshot for the user guide when `DALABA_SCREENSHOTS` names a
/// directory.
pub(crate) async fn screenshot(browser: &Browser, name: &str) {
    let Some(dir) = std::env::var_os("DALABA_SCREENSHOTS") else { return };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    // No focus ring on whatever was typed into last.
    js(browser, "if (document.activeElement) document.activeElement.blur(); return true;").await;
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(dir.join(name), png).expect("write screenshot");
}

/// A controller with `villages` villages and a county admin, and a
/// browser logged in as that admin on the accounts page.
pub(crate) async fn admin_on_accounts(villages: usize) -> (Cluster, Browser) {
    let c = Cluster::start(villages).await;
    c.create_user(ADMIN, "县管理员", "admin", None, ADMIN_PASSWORD);
    let browser = Browser::start().await.expect("browser");
    browser.open(&format!("{}/#/accounts", c.url())).await.expect("open");
    log_in(&browser, ADMIN, ADMIN_PASSWORD).await;
    wait_loaded(&browser, "accounts").await;
    (c, browser)
}

/// A new account as typed into the accounts page's form.
pub(crate) struct NewAccount<'a> {
    pub name: &'a str,
    pub display: &'a str,
    pub role: &'a str,
    /// Which township in the select (1 = the first), 0 for the county.
    pub township: usize,
    pub emergency: bool,
    pub password: &'a str,
    pub confirm: &'a str,
}

/// Fills the new-account form and submits it; returns the township chosen.
pub(crate) async fn submit_account(browser: &Browser, a: &NewAccount<'_>) -> String {
    let chosen = js(
        browser,
        &format!(
            "const f = document.querySelector('[data-account-form]'); \
             const set = (sel, v) => {{ const e = f.querySelector(sel); e.value = v; \
               e.dispatchEvent(new Event('change', {{ bubbles: true }})); }}; \
             document.querySelector('[data-acc-error]').hidden = true; \
             set('[data-acc-name]', {name}); set('[data-acc-display]', {display}); set('[data-acc-role]', {role}); \
             const region = f.querySelector('[data-acc-region]'); region.selectedIndex = {township}; \
             const em = f.querySelector('[data-acc-emergency]'); if (!em.disabled) em.checked = {emergency}; \
             set('[data-acc-password]', {password}); set('[data-acc-confirm]', {confirm}); \
             f.querySelector('[data-acc-create]').click(); \
             return region.options[region.selectedIndex].textContent;",
            name = lit(a.name),
            display = lit(a.display),
            role = lit(a.role),
            township = a.township,
            emergency = a.emergency,
            password = lit(a.password),
            confirm = lit(a.confirm),
        ),
    )
    .await;
    chosen.as_str().unwrap_or_default().to_owned()
}

/// The row of account `name`: its data attributes and text, once shown.
pub(crate) async fn account_row(browser: &Browser, name: &str) -> Value {
    wait(
        browser,
        &format!("the row of account {name}"),
        &format!(
            "const r = document.querySelector('[data-account-row=' + CSS.escape({}) + ']'); \
             return r ? {{ role: r.dataset.role, region: r.dataset.region, emergency: r.dataset.emergency, \
               state: r.dataset.state, display: r.querySelector('[data-cell=display]').textContent, \
               text: r.textContent, editing: !!r.querySelector('form') }} : null;",
            lit(name)
        ),
    )
    .await
}

/// Clicks the button `selector` in account `name`'s row.
async fn click_in_row(browser: &Browser, row: &str, name: &str, selector: &str) {
    let clicked = js(
        browser,
        &format!(
            "const r = document.querySelector('[{row}=' + CSS.escape({}) + ']'); \
             const b = r && r.querySelector({}); if (b) b.click(); return !!b;",
            lit(name),
            lit(selector)
        ),
    )
    .await;
    assert_eq!(clicked, json!(true), "{selector} in the row of {name}");
}

/// The form error under the new-account form, once shown.
pub(crate) async fn form_error(browser: &Browser, selector: &str) -> String {
    let e = wait(
        browser,
        &format!("the error {selector}"),
        &format!("const e = document.querySelector('{selector}'); return e && !e.hidden && e.textContent ? e.textContent : null;"),
    )
    .await;
    e.as_str().unwrap_or_default().to_owned()
}

/// Runs `fetch(url, init)` in the page; its status and text.
async fn page_fetch(browser: &Browser, url: &str, init: &str) -> (u64, String) {
    js(
        browser,
        &format!(
            "window.__fetched = null; fetch({}, {init}).then(async (r) => {{ window.__fetched = [r.status, await r.text()]; }}, \
             (e) => {{ window.__fetched = [0, String(e)]; }}); return true;",
            lit(url)
        ),
    )
    .await;
    let v = wait(browser, &format!("fetching {url}"), "return window.__fetched;").await;
    (v[0].as_u64().unwrap_or_default(), v[1].as_str().unwrap_or_default().to_owned())
}

/// `ms` as typed into a county-time field: `YYYY-MM-DDTHH:MM`, UTC+8.
async fn county_minute(browser: &Browser, ms: i64) -> String {
    let v = js(browser, &format!("return new Date({ms} + 8 * 3600e3).toISOString().slice(0, 16);")).await;
    v.as_str().expect("a time").to_owned()
}

/// The audit rows shown: [id, actor, action] each.
async fn audit_rows(browser: &Browser) -> Vec<(i64, String, String)> {
    let v = js(
        browser,
        "return [...document.querySelectorAll('[data-audit-row]')].map((r) => \
           [Number(r.dataset.auditRow), r.dataset.actor, r.dataset.action]);",
    )
    .await;
    v.as_array()
        .expect("an array")
        .iter()
        .map(|r| (r[0].as_i64().unwrap_or(-1), r[1].as_str().unwrap_or("").into(), r[2].as_str().unwrap_or("").into()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_manages_accounts_and_tokens_and_reads_them_in_the_audit_log() {
    let (c, browser) = admin_on_accounts(4).await;
    let nav =
        js(&browser, "return ['accounts', 'audit'].map((k) => document.querySelector(`[data-nav=${k}]`).hidden);")
            .await;
    assert_eq!(nav, json!([false, false]), "an admin sees the admin links");
    assert_eq!(js(&browser, "return document.body.dataset.role;").await, json!("admin"));

    // Passwords that differ are caught before anything is sent.
    let mut operator = NewAccount {
        name: "zhang.san",
        display: "张三",
        role: "operator",
        township: 1,
        emergency: true,
        password: "township password 1",
        confirm: "township password 2",
    };
    submit_account(&browser, &operator).await;
    let e = form_error(&browser, "[data-acc-error]").await;
    assert!(e.contains("两次输入的密码不一样"), "{e}");
    let rows = js(&browser, "return document.querySelectorAll('[data-account-row]').length;").await;
    assert_eq!(rows, json!(1), "only the admin");

    // A township operator allowed to start emergencies, and a viewer.
    operator.confirm = operator.password;
    let township = submit_account(&browser, &operator).await;
    assert_eq!(township, "第1乡");
    let row = account_row(&browser, "zhang.san").await;
    assert_eq!(
        (row["role"].as_str(), row["emergency"].as_str(), row["state"].as_str()),
        (Some("operator"), Some("true"), Some("active"))
    );
    assert_ne!(row["region"], json!(""), "limited to a township");
    assert!(row["text"].as_str().is_some_and(|t| t.contains("第1乡") && t.contains("张三")), "{row}");
    let viewer = NewAccount {
        name: "wang.wu",
        display: "王五",
        role: "viewer",
        township: 0,
        emergency: false,
        password: "viewer password 1",
        confirm: "viewer password 1",
    };
    submit_account(&browser, &viewer).await;
    let row = account_row(&browser, "wang.wu").await;
    assert_eq!((row["role"].as_str(), row["region"].as_str()), (Some("viewer"), Some("")));
    assert!(row["text"].as_str().is_some_and(|t| t.contains("全县")), "{row}");
    let status = js(&browser, "return document.querySelector('[data-acc-status]').textContent;").await;
    assert!(status.as_str().is_some_and(|s| s.contains("王五")), "{status}");

    // The operator loses the emergency right.
    click_in_row(&browser, "data-account-row", "zhang.san", "[data-acc-edit]").await;
    js(
        &browser,
        "const f = document.querySelector('[data-acc-edit-form]'); \
         f.querySelector('[data-acc-edit-emergency]').checked = false; f.querySelector('[data-acc-save]').click(); return true;",
    )
    .await;
    wait(
        &browser,
        "the operator without the emergency right",
        "const r = document.querySelector('[data-account-row=\"zhang.san\"]'); \
         return r && r.dataset.emergency === 'false' && !r.querySelector('form');",
    )
    .await;

    // Disabled after a confirmation in plain words, then enabled again.
    click_in_row(&browser, "data-account-row", "zhang.san", "[data-acc-disable]").await;
    let ask =
        js(&browser, "return document.querySelector('[data-account-row=\"zhang.san\"] .adm-confirm').textContent;")
            .await;
    assert!(ask.as_str().is_some_and(|a| a.contains("张三") && a.contains("不能再登录")), "{ask}");
    click_in_row(&browser, "data-account-row", "zhang.san", "[data-acc-confirm-disable]").await;
    wait(
        &browser,
        "disabled",
        "return document.querySelector('[data-account-row=\"zhang.san\"][data-state=\"disabled\"]');",
    )
    .await;
    click_in_row(&browser, "data-account-row", "zhang.san", "[data-acc-enable]").await;
    wait(
        &browser,
        "enabled",
        "return document.querySelector('[data-account-row=\"zhang.san\"][data-state=\"active\"]');",
    )
    .await;

    // The viewer's password is reset (used to log in below).
    click_in_row(&browser, "data-account-row", "wang.wu", "[data-acc-reset]").await;
    js(
        &browser,
        "const f = document.querySelector('[data-acc-reset-form]'); \
         f.querySelector('[data-acc-new-password]').value = 'a brand new password'; \
         f.querySelector('[data-acc-new-confirm]').value = 'a brand new password'; \
         f.querySelector('[data-acc-save]').click(); return true;",
    )
    .await;
    wait(&browser, "the reset form closed", "return !document.querySelector('[data-acc-reset-form]');").await;
    let row = account_row(&browser, "wang.wu").await;
    assert_eq!(row["editing"], json!(false));
    let last = |name: &str| {
        format!("return document.querySelector('[data-account-row=\"{name}\"] [data-cell=last-login]').textContent;")
    };
    let admin_last = js(&browser, &last(ADMIN)).await;
    assert!(admin_last.as_str().is_some_and(|t| t.contains("北京时间")), "the admin's login: {admin_last}");
    assert_eq!(js(&browser, &last("wang.wu")).await, json!("从未登录"));
    screenshot(&browser, "accounts.png").await;

    // An API token: its secret once, working until revoked.
    js(
        &browser,
        "const f = document.querySelector('[data-token-form]'); f.querySelector('[data-tok-name]').value = 'province-platform'; \
         f.querySelector('[data-tok-scope=emergency]').checked = true; f.querySelector('[data-tok-create]').click(); return true;",
    )
    .await;
    let secret = wait(
        &browser,
        "the new token's secret",
        "const b = document.querySelector('[data-token-secret-box]'); \
         return b && !b.hidden ? document.querySelector('[data-token-secret]').textContent : null;",
    )
    .await;
    let secret = secret.as_str().expect("text").to_owned();
    assert!(secret.starts_with("dlb_"), "{secret}");
    let warning = js(&browser, "return document.querySelector('[data-token-secret-warning]').textContent;").await;
    assert!(warning.as_str().is_some_and(|w| w.contains("只显示这一次")), "{warning}");
    let row = wait(&browser, "the token's row", "const r = document.querySelector('[data-token-row=\"province-platform\"]'); return r ? [r.dataset.revoked, r.textContent] : null;").await;
    assert_eq!(row[0], json!("false"));
    assert!(
        row[1].as_str().is_some_and(|t| t.contains("查看") && t.contains("应急广播") && t.contains("从未使用")),
        "{row}"
    );
    browser.click("[data-token-copy]").await.expect("copy");
    let copied = wait(
        &browser,
        "the copy answered",
        "return document.querySelector('[data-token-secret-box] .copy-status').textContent || null;",
    )
    .await;
    assert!(copied == json!("已复制") || copied == json!("已选中，请按 Ctrl+C 复制"), "{copied}");
    js(&browser, "document.querySelector('[data-token-secret-box]').scrollIntoView(); return true;").await;
    screenshot(&browser, "tokens.png").await;
    let bearer = format!("{{ credentials: 'omit', headers: {{ Authorization: 'Bearer ' + {} }} }}", lit(&secret));
    let (status, _) = page_fetch(&browser, "/api/v1/regions", &bearer).await;
    assert_eq!(status, 200, "the token works");
    js(&browser, "document.querySelector('[data-token-done]').click(); return true;").await;
    let gone = js(&browser, &format!("return !document.body.innerHTML.includes({});", lit(&secret))).await;
    assert_eq!(gone, json!(true), "the secret is gone once dismissed");
    reload(&browser, "accounts").await;
    wait(
        &browser,
        "the token listed again",
        "return document.querySelector('[data-token-row=\"province-platform\"]');",
    )
    .await;
    let gone = js(&browser, &format!("return !document.body.innerHTML.includes({});", lit(&secret))).await;
    assert_eq!(gone, json!(true), "the secret is never shown again");
    click_in_row(&browser, "data-token-row", "province-platform", "[data-token-revoke]").await;
    let ask = js(
        &browser,
        "return document.querySelector('[data-token-row=\"province-platform\"] .adm-confirm').textContent;",
    )
    .await;
    assert!(ask.as_str().is_some_and(|a| a.contains("province-platform") && a.contains("不能恢复")), "{ask}");
    click_in_row(&browser, "data-token-row", "province-platform", "[data-token-confirm-revoke]").await;
    wait(
        &browser,
        "the token revoked",
        "return document.querySelector('[data-token-row=\"province-platform\"][data-revoked=\"true\"]');",
    )
    .await;
    let (status, _) = page_fetch(&browser, "/api/v1/regions", &bearer).await;
    assert_eq!(status, 401, "a revoked token is refused");

    // An enrolment code for a village, from the dashboard's village panel.
    mark_stale(&browser).await;
    browser.open(&format!("{}/#/", c.url())).await.expect("open");
    wait(
        &browser,
        "the dashboard",
        "return document.body.dataset.ready === 'true' && !!document.querySelector('[data-village-code]');",
    )
    .await;
    let code = js(
        &browser,
        "const v = document.querySelector('[data-village-code]'); v.click(); return v.dataset.villageCode;",
    )
    .await;
    wait(&browser, "the village panel", "return !document.getElementById('village-panel').hidden;").await;
    js(&browser, "document.getElementById('create-code').click(); return true;").await;
    wait(&browser, "an enrolment code", "return document.getElementById('enrol-code').textContent.trim() || null;")
        .await;
    let (_, regions) = page_fetch(&browser, "/api/v1/regions", "{}").await;
    let regions: Vec<Value> = serde_json::from_str(&regions).expect("regions");
    let village = regions.iter().find(|r| r["code"] == code).expect("the village");
    let (village_id, village_name) = (village["id"].as_i64().expect("id"), village["name"].as_str().expect("name"));

    // The audit log: everything the admin did, newest first.
    open_page(&browser, &c, "#/audit", "audit").await;
    let rows = audit_rows(&browser).await;
    let count = |action: &str| rows.iter().filter(|r| r.2 == action && r.1 == format!("user:{ADMIN}")).count();
    assert_eq!(count("user.create"), 2, "{rows:?}");
    assert_eq!(count("token.create"), 1, "{rows:?}");
    assert_eq!(count("token.revoke"), 1, "{rows:?}");
    assert!(count("user.update") >= 4, "edit, disable, enable, reset: {rows:?}");
    assert!(rows.windows(2).all(|w| w[0].0 > w[1].0), "newest first: {rows:?}");
    let targets = js(
        &browser,
        "return ['token.revoke', 'user.update'].map((a) => document.querySelector(`[data-audit-row][data-action=\"${a}\"]`).textContent);",
    )
    .await;
    assert!(targets[0].as_str().is_some_and(|t| t.contains("接口密钥：province-platform")), "{targets}");
    assert!(targets[1].as_str().is_some_and(|t| t.contains("账号：")), "{targets}");
    screenshot(&browser, "audit.png").await;

    // Filtered by actor and action through the form, kept in the hash.
    mark_stale(&browser).await;
    js(
        &browser,
        &format!(
            "const f = document.querySelector('[data-audit-form]'); f.querySelector('[data-audit-actor]').value = {}; \
             f.querySelector('[data-audit-action]').value = 'token.'; f.querySelector('[data-audit-apply]').click(); return true;",
            lit(ADMIN)
        ),
    )
    .await;
    wait_loaded(&browser, "audit").await;
    let hash = js(&browser, "return location.hash;").await;
    assert_eq!(hash, json!("#/audit?actor=county.admin&action=token."));
    let only_tokens = vec![
        ("user:county.admin".to_owned(), "token.revoke".to_owned()),
        ("user:county.admin".to_owned(), "token.create".to_owned()),
    ];
    let shown = |rows: Vec<(i64, String, String)>| rows.into_iter().map(|r| (r.1, r.2)).collect::<Vec<_>>();
    assert_eq!(shown(audit_rows(&browser).await), only_tokens);
    reload(&browser, "audit").await;
    assert_eq!(shown(audit_rows(&browser).await), only_tokens, "the filter survives a reload");
    let kept = js(&browser, "return [document.querySelector('[data-audit-actor]').value, document.querySelector('[data-audit-action]').value];").await;
    assert_eq!(kept, json!([ADMIN, "token."]));

    // The CSV export carries the same filter.
    let href = js(&browser, "return document.querySelector('[data-audit-csv]').href;").await;
    let href = href.as_str().expect("a link").to_owned();
    assert!(href.contains("actor=county.admin") && href.contains("action=token."), "{href}");
    let (status, csv) = page_fetch(&browser, &href, "{}").await;
    assert_eq!(status, 200, "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two rows: {csv}");
    assert!(lines[0].contains("time,actor"), "{csv}");
    assert!(lines[1].contains("token.revoke") && lines[2].contains("token.create"), "{csv}");

    // Filtered by village through the form.
    mark_stale(&browser).await;
    js(
        &browser,
        &format!(
            "const f = document.querySelector('[data-audit-form]'); f.querySelector('[data-audit-village]').value = '{village_id}'; \
             f.querySelector('[data-audit-action]').value = ''; f.querySelector('[data-audit-actor]').value = ''; \
             f.querySelector('[data-audit-apply]').click(); return true;"
        ),
    )
    .await;
    wait_loaded(&browser, "audit").await;
    assert_eq!(js(&browser, "return location.hash;").await, json!(format!("#/audit?village={village_id}")));
    // The page shows what the API holds for the village (the enrolment
    // code made from its panel), and the export asks for the same.
    let csv_href = js(&browser, "return document.querySelector('[data-audit-csv]').href;").await;
    assert!(csv_href.as_str().is_some_and(|h| h.ends_with(&format!("village_id={village_id}"))), "{csv_href}");
    let (_, held) = page_fetch(&browser, &format!("/api/v1/audit?village_id={village_id}"), "{}").await;
    let held: Vec<Value> = serde_json::from_str(&held).expect("records");
    let rows = js(
        &browser,
        "return [...document.querySelectorAll('[data-audit-row]')].map((r) => [Number(r.dataset.auditRow), r.textContent]);",
    )
    .await;
    let rows = rows.as_array().expect("rows");
    let ids: Vec<i64> = rows.iter().map(|r| r[0].as_i64().expect("id")).collect();
    assert_eq!(ids, held.iter().map(|r| r["id"].as_i64().expect("id")).collect::<Vec<_>>());
    let named = format!("村：{village_name}");
    assert!(rows.iter().all(|r| r[1].as_str().is_some_and(|t| t.contains(&named))), "{rows:?}");
    assert!(
        held.iter().any(|r| r["action"] == "agent.enrolment_code"
            && r["path"] == format!("/api/v1/villages/{village_id}/enrolment-codes")),
        "the enrolment code is on record for the village: {held:?}"
    );
    assert!(!rows.is_empty(), "{rows:?}");

    // A time range in county time (UTC+8), minute by minute as typed.
    let (_, all) = page_fetch(&browser, "/api/v1/audit?limit=1000", "{}").await;
    let all: Vec<Value> = serde_json::from_str(&all).expect("records");
    let at = |action: &str| all.iter().find(|r| r["action"] == action).and_then(|r| r["at_ms"].as_i64()).expect(action);
    let created = at("token.create");
    let minute = created - created.rem_euclid(60_000);
    let (from, to) = (county_minute(&browser, minute).await, county_minute(&browser, minute + 60_000).await);
    open_page(&browser, &c, &format!("#/audit?from={from}&to={to}"), "audit").await;
    let ats = js(&browser, "return [...document.querySelectorAll('[data-audit-row]')].map((r) => [Number(r.dataset.at), r.dataset.action]);").await;
    let ats = ats.as_array().expect("rows");
    assert!(ats.iter().any(|r| r[1] == "token.create"), "{ats:?}");
    assert!(ats.iter().all(|r| r[0].as_i64().is_some_and(|ms| (minute..minute + 60_000).contains(&ms))), "{ats:?}");
    let newest = all.iter().filter_map(|r| r["at_ms"].as_i64()).max().expect("records");
    let later = county_minute(&browser, newest - newest.rem_euclid(60_000) + 60_000).await;
    open_page(&browser, &c, &format!("#/audit?from={later}"), "audit").await;
    let empty = js(&browser, "const e = document.querySelector('[data-audit-empty]'); return [document.querySelectorAll('[data-audit-row]').length, e.hidden, e.textContent];").await;
    assert_eq!((&empty[0], &empty[1]), (&json!(0), &json!(false)), "{empty}");
    assert!(empty[2].as_str().is_some_and(|t| t.contains("没有符合条件")), "{empty}");

    // Paging back two at a time reaches every record of the actor once.
    open_page(&browser, &c, "#/audit?actor=county.admin&limit=2", "audit").await;
    assert_eq!(audit_rows(&browser).await.len(), 2);
    for _ in 0..30 {
        let state = js(&browser, "return { older: !document.querySelector('[data-audit-older]').hidden, end: !document.querySelector('[data-audit-end]').hidden };").await;
        if state["end"] == json!(true) {
            break;
        }
        assert_eq!(state["older"], json!(true), "{state}");
        let before = audit_rows(&browser).await.len();
        js(&browser, "document.querySelector('[data-audit-older]').click(); return true;").await;
        wait(
            &browser,
            "an older page",
            &format!("return document.querySelectorAll('[data-audit-row]').length > {before};"),
        )
        .await;
    }
    let paged: Vec<i64> = audit_rows(&browser).await.into_iter().map(|r| r.0).collect();
    let (_, all) = page_fetch(&browser, "/api/v1/audit?actor=county.admin&limit=1000", "{}").await;
    let all: Vec<i64> = serde_json::from_str::<Vec<Value>>(&all)
        .expect("records")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(paged, all, "every record once, newest first");

    // A viewer sees no admin links, and the accounts page says why.
    log_out(&browser).await;
    log_in(&browser, "wang.wu", "a brand new password").await;
    wait(&browser, "the viewer's role", "return document.body.dataset.role === 'viewer';").await;
    let nav =
        js(&browser, "return ['accounts', 'audit'].map((k) => document.querySelector(`[data-nav=${k}]`).hidden);")
            .await;
    assert_eq!(nav, json!([true, true]), "a viewer sees no admin links");
    open_page(&browser, &c, "#/accounts", "accounts").await;
    let page = js(&browser, "return [!!document.querySelector('[data-accounts-admin-only]'), !!document.querySelector('[data-account-form], [data-token-form]')];").await;
    assert_eq!(page, json!([true, false]));
    let hidden = "return [...document.querySelectorAll(SELECTOR)].map((e) => getComputedStyle(e).display);";
    open_page(&browser, &c, "#/schedules", "schedules").await;
    let shown = js(&browser, &hidden.replace("SELECTOR", "'[data-new-schedule], [data-quiet-save]'")).await;
    assert_eq!(shown, json!(["none", "none"]), "a viewer sees no buttons to change schedules");
    open_page(&browser, &c, "#/library", "library").await;
    let shown = js(&browser, &hidden.replace("SELECTOR", "'[data-lib-upload-form], [data-tts-form]'")).await;
    assert_eq!(shown, json!(["none", "none"]), "a viewer sees no upload forms");

    // Back as the admin: the viewer's login, found by actor.
    log_out(&browser).await;
    log_in(&browser, ADMIN, ADMIN_PASSWORD).await;
    open_page(&browser, &c, "#/audit?actor=wang.wu", "audit").await;
    let rows = audit_rows(&browser).await;
    assert!(!rows.is_empty() && rows.iter().all(|r| r.1 == "user:wang.wu"), "{rows:?}");
    assert!(rows.iter().any(|r| r.2 == "login"), "{rows:?}");
    open_page(&browser, &c, "#/accounts", "accounts").await;
    let viewer_last = js(&browser, &last("wang.wu")).await;
    assert!(viewer_last.as_str().is_some_and(|t| t.contains("北京时间")), "the viewer's login: {viewer_last}");
    let errors = js(&browser, "return window.__errors || [];").await;
    assert_eq!(errors, json!([]), "no script errors");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_are_shown_as_text_and_overlong_ones_refused_in_words() {
    let c = Cluster::start(2).await;
    let browser = Browser::start().await.expect("browser");

    // First-run mode (no account yet): the controller's own host is an admin.
    open_page(&browser, &c, "#/accounts", "accounts").await;
    let first = js(
        &browser,
        "return [document.body.dataset.role, !!document.querySelector('[data-first-run]'), \
         document.querySelector('[data-nav=accounts]').hidden, !!document.querySelector('[data-account-form]')];",
    )
    .await;
    assert_eq!(first, json!(["admin", true, false, true]));

    c.create_user(ADMIN, "县管理员", "admin", None, ADMIN_PASSWORD);
    mark_stale(&browser).await;
    js(&browser, "setTimeout(() => location.reload(), 0); return true;").await;
    log_in(&browser, ADMIN, ADMIN_PASSWORD).await;
    wait_loaded(&browser, "accounts").await;
    assert_eq!(js(&browser, "return !!document.querySelector('[data-first-run]');").await, json!(false));

    let hostile = [
        ("img.user", r#"<img src=x onerror="window.__pwned=1">"#),
        ("formula.user", r#"=HYPERLINK("http://evil.invalid","click")"#),
    ];
    for (name, display) in hostile {
        let a = NewAccount {
            name,
            display,
            role: "operator",
            township: 1,
            emergency: false,
            password: "hostile password",
            confirm: "hostile password",
        };
        submit_account(&browser, &a).await;
        let row = account_row(&browser, name).await;
        assert_eq!(row["display"].as_str(), Some(display), "shown literally");
    }
    let inert = js(
        &browser,
        "return [typeof window.__pwned, document.querySelectorAll('#page img').length, \
         document.body.innerText.includes('<img src=x onerror=')];",
    )
    .await;
    assert_eq!(inert, json!(["undefined", 0, true]), "the markup is text");
    // The audit page lists the accounts' names too (as suggestions for who).
    open_page(&browser, &c, "#/audit", "audit").await;
    let inert = js(&browser, "return [typeof window.__pwned, document.querySelectorAll('#page img').length];").await;
    assert_eq!(inert, json!(["undefined", 0]));

    // Over-long names: refused by the controller, said in words, not echoed.
    open_page(&browser, &c, "#/accounts", "accounts").await;
    let long = "长".repeat(10_000);
    let a = NewAccount {
        name: "long.display",
        display: &long,
        role: "viewer",
        township: 0,
        emergency: false,
        password: "a long password",
        confirm: "a long password",
    };
    submit_account(&browser, &a).await;
    let e = form_error(&browser, "[data-acc-error]").await;
    assert!(e.contains("显示名称") && e.contains("100") && e.chars().count() < 200, "{e}");
    let long_login = "a".repeat(10_000);
    let a = NewAccount { name: &long_login, display: "某人", ..a };
    submit_account(&browser, &a).await;
    let e = wait(
        &browser,
        "the login name refused",
        "const e = document.querySelector('[data-acc-error]'); return !e.hidden && e.textContent.includes('登录名') ? e.textContent : null;",
    )
    .await;
    assert!(e.as_str().is_some_and(|e| e.contains("64") && e.chars().count() < 200), "{e}");
    js(
        &browser,
        &format!(
            "const f = document.querySelector('[data-token-form]'); f.querySelector('[data-tok-name]').value = {}; \
             f.querySelector('[data-tok-create]').click(); return true;",
            lit(&"t".repeat(10_000))
        ),
    )
    .await;
    let e = form_error(&browser, "[data-tok-error]").await;
    assert!(e.contains("密钥名称") && e.chars().count() < 200, "{e}");
    let rows = js(&browser, "return document.querySelectorAll('[data-account-row]').length;").await;
    assert_eq!(rows, json!(3), "the admin and the two hostile names, nothing over-long");

    // The same in English.
    js(&browser, "document.getElementById('lang-toggle').click(); return true;").await;
    let english = js(
        &browser,
        "return [document.querySelector('[data-accounts-section] th').textContent, \
         document.querySelector('[data-account-row=\"img.user\"]').textContent];",
    )
    .await;
    assert_eq!(english[0], json!("Login name"));
    assert!(english[1].as_str().is_some_and(|t| t.contains("operator") && t.contains(hostile[0].1)), "{english}");
    let a = NewAccount { name: "long.display", display: &long, ..a };
    submit_account(&browser, &a).await;
    let e = form_error(&browser, "[data-acc-error]").await;
    assert!(e.starts_with("The account was not created") && e.contains("at most 100 characters"), "{e}");
    assert_eq!(js(&browser, "return typeof window.__pwned;").await, json!("undefined"));
    let errors = js(&browser, "return window.__errors || [];").await;
    assert_eq!(errors, json!([]), "no script errors");
}
