//! Operator accounts in headless Chromium against a real controller: once
//! the first account exists (made with `dalaba-controller user create`),
//! the API refuses callers without a session, the console asks to log in,
//! a wrong password is answered on the page, a right one opens the
//! dashboard, a state-changing click carries the CSRF token, and logging
//! out asks again.

use std::time::Duration;

use dalaba_e2e::webdriver::Browser;

use crate::cluster::Cluster;

const WAIT: Duration = Duration::from_secs(20);

const LOGIN_SHOWN: &str =
    "const d = document.getElementById('login'); return !!d && !d.hidden && document.body.dataset.login === 'true';";

async fn log_in(browser: &Browser, name: &str, password: &str) {
    browser
        .eval(&format!(
            "document.getElementById('login-name').value = {name:?}; \
             document.getElementById('login-password').value = {password:?}; \
             document.querySelector('[data-login-form] button[type=submit]').click(); return true;"
        ))
        .await
        .expect("submit the login form");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_asks_to_log_in_once_an_account_exists() {
    let c = Cluster::start(3).await;
    // Before any account: the controller's own host may use the API.
    assert_eq!(c.api.get("/api/v1/regions").await.expect("regions").status, 200);
    c.create_user("li.wei", "李伟", "operator", None, "correct horse battery");
    let r = c.api.get("/api/v1/regions").await.expect("regions");
    assert_eq!(r.status, 401, "an account exists: callers must log in: {}", r.text());
    assert!(r.text().contains("please log in"), "{}", r.text());

    let browser = Browser::start().await.expect("browser");
    browser.open(&c.url()).await.expect("open");
    browser.wait_until("the login form", LOGIN_SHOWN, WAIT).await.expect("login form shown");
    log_in(&browser, "li.wei", "not the password").await;
    let error = browser
        .wait_until(
            "the refusal on the page",
            "const e = document.querySelector('[data-login-error]'); return e && !e.hidden ? e.textContent : null;",
            WAIT,
        )
        .await
        .expect("refusal shown");
    assert!(error.as_str().is_some_and(|e| e.contains("账号或密码不对")), "in the operator's words: {error}");

    log_in(&browser, "li.wei", "correct horse battery").await;
    browser
        .wait_until(
            "the dashboard",
            "return document.body.dataset.ready === 'true' && document.getElementById('login').hidden \
             && document.getElementById('count-villages').textContent.trim() === '3';",
            WAIT,
        )
        .await
        .expect("dashboard loaded after login");
    let user = browser.eval("return document.getElementById('user-name').textContent;").await.expect("eval");
    assert_eq!(user, "李伟");
    let cookie = browser.eval("return document.cookie;").await.expect("eval");
    assert!(!cookie.as_str().unwrap_or_default().contains("dalaba_session"), "the session cookie is HttpOnly");

    // A state-changing click: an enrolment code (POST with the CSRF token).
    browser.eval("document.querySelector('[data-village-code]').click(); return true;").await.expect("card");
    browser
        .wait_until("the village panel", "return !document.getElementById('village-panel').hidden;", WAIT)
        .await
        .expect("panel");
    browser.eval("document.getElementById('create-code').click(); return true;").await.expect("create code");
    let code = browser
        .wait_until(
            "an enrolment code",
            "const e = document.getElementById('enrol-code'); return (e && e.textContent.trim()) || null;",
            WAIT,
        )
        .await
        .expect("a code, so the CSRF token went with the POST");
    assert_eq!(code.as_str().map(str::len), Some(9), "{code}");

    browser.eval("document.getElementById('logout').click(); return true;").await.expect("logout");
    browser.wait_until("the login form again", LOGIN_SHOWN, WAIT).await.expect("login form after logout");
    let errors = browser.eval("return window.__errors || [];").await.expect("errors");
    assert_eq!(errors, serde_json::json!([]), "no script errors");
}
