//! Changing one's own password in headless Chromium against a real
//! controller: an admin creates an account on the accounts page; its
//! holder logs in, is asked to replace the admin's password, is told in
//! words what is wrong with a mistyped form or a wrong current password,
//! changes it, and from then on logs in with the new one only.
//!
//! With `DALABA_SCREENSHOTS=<dir>` the test saves the user guide's
//! `password.png`.

use dalaba_e2e::webdriver::Browser;
use serde_json::json;

use crate::admin_pages::{
    ADMIN, ADMIN_PASSWORD, NewAccount, account_row, admin_on_accounts, form_error, js, lit, log_in, log_out,
    screenshot, submit_account, wait, wait_loaded,
};

const FIRST: &str = "admin chose this one";
const OWN: &str = "only wang fang knows";

/// Types the three fields of the password dialog (which must be open) and
/// submits it.
async fn submit_change(browser: &Browser, current: &str, new: &str, again: &str) {
    js(
        browser,
        &format!(
            "document.getElementById('pw-error').hidden = true; \
             document.getElementById('pw-current').value = {}; document.getElementById('pw-new').value = {}; \
             document.getElementById('pw-again').value = {}; document.getElementById('pw-submit').click(); return true;",
            lit(current),
            lit(new),
            lit(again)
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_replaces_the_password_an_admin_chose_through_the_page() {
    let (_cluster, browser) = admin_on_accounts(2).await; // kept: it serves the page
    let notice = js(&browser, "return document.getElementById('password-notice').hidden;").await;
    assert_eq!(notice, json!(true), "an admin who set their own password at the server is not asked");
    let account = NewAccount {
        name: "wang.fang",
        display: "王芳",
        role: "operator",
        township: 1,
        emergency: false,
        password: FIRST,
        confirm: FIRST,
    };
    submit_account(&browser, &account).await;
    account_row(&browser, "wang.fang").await;
    let pending = "return !!document.querySelector('[data-account-row=\"wang.fang\"] [data-acc-pw-pending]');";
    assert_eq!(js(&browser, pending).await, json!(true), "the admin sees the password is still theirs");
    log_out(&browser).await;

    // Her first login: asked to choose her own password.
    log_in(&browser, "wang.fang", FIRST).await;
    let asked = wait(
        &browser,
        "the notice asking for a new password",
        "const n = document.getElementById('password-notice'); \
         return !n.hidden && n.dataset.kind === 'required' ? n.textContent : null;",
    )
    .await;
    assert!(asked.as_str().is_some_and(|t| t.contains("管理员设置的密码")), "{asked}");
    browser.click("#password-notice-change").await.expect("open the dialog");
    wait(&browser, "the password dialog", "return document.getElementById('password-dialog').open;").await;
    let who = js(&browser, "return document.getElementById('pw-who').textContent;").await;
    assert_eq!(who, json!("王芳 (wang.fang)"));

    // Mistakes are named in words; nothing is sent for those the page can see.
    let long = "密".repeat(100);
    let cases = [
        (FIRST, "short", "short", "至少要 10 个字符"),
        (FIRST, long.as_str(), long.as_str(), "最多 256 个字节"),
        (FIRST, OWN, "only wang fang know", "两次输入的新密码不一样"),
        (FIRST, FIRST, FIRST, "不能和当前密码相同"),
        ("not my password", OWN, OWN, "当前密码不对"),
    ];
    for (current, new, again, says) in cases {
        submit_change(&browser, current, new, again).await;
        let e = form_error(&browser, "#pw-error").await;
        assert!(e.contains(says), "{e}");
    }
    screenshot(&browser, "password.png").await;

    // The change itself: the dialog closes and says what happened.
    submit_change(&browser, FIRST, OWN, OWN).await;
    let done = wait(
        &browser,
        "the password changed",
        "const n = document.getElementById('password-notice'); \
         return !document.getElementById('password-dialog').open && !n.hidden && n.dataset.kind === 'done' \
           ? n.textContent : null;",
    )
    .await;
    assert!(done.as_str().is_some_and(|t| t.contains("密码已修改")), "{done}");
    // The page goes on with its new session: the accounts link is hidden
    // for an operator and the dashboard still loads.
    let role = js(&browser, "return document.body.dataset.role;").await;
    assert_eq!(role, json!("operator"));

    // Only the new password logs in from now on.
    log_out(&browser).await;
    js(
        &browser,
        &format!(
            "document.getElementById('login-name').value = 'wang.fang'; \
             document.getElementById('login-password').value = {}; \
             document.querySelector('[data-login-form] button[type=submit]').click(); return true;",
            lit(FIRST)
        ),
    )
    .await;
    let refused = form_error(&browser, "[data-login-error]").await;
    assert!(refused.contains("账号或密码不对"), "{refused}");
    js(&browser, "document.querySelector('[data-login-error]').hidden = true; return true;").await;
    log_in(&browser, "wang.fang", OWN).await;
    let notice = js(&browser, "return document.getElementById('password-notice').hidden;").await;
    assert_eq!(notice, json!(true), "no longer asked");

    // The admin's accounts page no longer marks the account.
    log_out(&browser).await;
    // (Logging out reloaded the page, still on #/accounts.)
    log_in(&browser, ADMIN, ADMIN_PASSWORD).await;
    wait_loaded(&browser, "accounts").await;
    account_row(&browser, "wang.fang").await;
    assert_eq!(js(&browser, pending).await, json!(false), "changed by its holder");
}
