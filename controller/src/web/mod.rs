//! The operator pages, embedded in the binary: plain HTML, CSS and
//! JavaScript modules, no build step. The pages talk to the JSON API and the
//! event stream like any other client.
//!
//! # Layout
//! `index.html` is served at `/`; everything it loads is in [`ASSETS`],
//! served at `/assets/{name}`. `main.js` is the entry module and documents
//! the page's stable hooks; `errors.js` is a classic script that collects
//! script errors before any module runs.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::AppState;

const INDEX: &str = include_str!("index.html");

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// One embedded file under `/assets/`.
struct Asset {
    /// The file name, the last segment of its URL.
    name: &'static str,
    /// Its `Content-Type`.
    content_type: &'static str,
    /// The file itself.
    body: &'static str,
}

/// Everything `index.html` loads, directly or through module imports.
const ASSETS: &[Asset] = &[
    Asset { name: "style.css", content_type: CSS, body: include_str!("style.css") },
    Asset { name: "admin.css", content_type: CSS, body: include_str!("admin.css") },
    Asset { name: "reports.css", content_type: CSS, body: include_str!("reports.css") },
    Asset { name: "errors.js", content_type: JS, body: include_str!("errors.js") },
    Asset { name: "main.js", content_type: JS, body: include_str!("main.js") },
    Asset { name: "state.js", content_type: JS, body: include_str!("state.js") },
    Asset { name: "i18n.js", content_type: JS, body: include_str!("i18n.js") },
    Asset { name: "format.js", content_type: JS, body: include_str!("format.js") },
    Asset { name: "api.js", content_type: JS, body: include_str!("api.js") },
    Asset { name: "session.js", content_type: JS, body: include_str!("session.js") },
    Asset { name: "password.js", content_type: JS, body: include_str!("password.js") },
    Asset { name: "model.js", content_type: JS, body: include_str!("model.js") },
    Asset { name: "tree.js", content_type: JS, body: include_str!("tree.js") },
    Asset { name: "filters.js", content_type: JS, body: include_str!("filters.js") },
    Asset { name: "panel.js", content_type: JS, body: include_str!("panel.js") },
    Asset { name: "enrol.js", content_type: JS, body: include_str!("enrol.js") },
    Asset { name: "remove.js", content_type: JS, body: include_str!("remove.js") },
    Asset { name: "sync.js", content_type: JS, body: include_str!("sync.js") },
    Asset { name: "i18n-pages.js", content_type: JS, body: include_str!("i18n-pages.js") },
    Asset { name: "ui.js", content_type: JS, body: include_str!("ui.js") },
    Asset { name: "router.js", content_type: JS, body: include_str!("router.js") },
    Asset { name: "library.js", content_type: JS, body: include_str!("library.js") },
    Asset { name: "schedules.js", content_type: JS, body: include_str!("schedules.js") },
    Asset { name: "editor.js", content_type: JS, body: include_str!("editor.js") },
    Asset { name: "recurrence.js", content_type: JS, body: include_str!("recurrence.js") },
    Asset { name: "targets.js", content_type: JS, body: include_str!("targets.js") },
    Asset { name: "week.js", content_type: JS, body: include_str!("week.js") },
    Asset { name: "villageday.js", content_type: JS, body: include_str!("villageday.js") },
    Asset { name: "i18n-live.js", content_type: JS, body: include_str!("i18n-live.js") },
    Asset { name: "live.js", content_type: JS, body: include_str!("live.js") },
    Asset { name: "livesession.js", content_type: JS, body: include_str!("livesession.js") },
    Asset { name: "mic.js", content_type: JS, body: include_str!("mic.js") },
    Asset { name: "mic-worklet.js", content_type: JS, body: include_str!("mic-worklet.js") },
    Asset { name: "i18n-admin.js", content_type: JS, body: include_str!("i18n-admin.js") },
    Asset { name: "i18n-schedules.js", content_type: JS, body: include_str!("i18n-schedules.js") },
    Asset { name: "accounts.js", content_type: JS, body: include_str!("accounts.js") },
    Asset { name: "tokens.js", content_type: JS, body: include_str!("tokens.js") },
    Asset { name: "audit.js", content_type: JS, body: include_str!("audit.js") },
    Asset { name: "i18n-reports.js", content_type: JS, body: include_str!("i18n-reports.js") },
    Asset { name: "reports.js", content_type: JS, body: include_str!("reports.js") },
    Asset { name: "alarms.js", content_type: JS, body: include_str!("alarms.js") },
];

/// Routes of the embedded pages.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { file(HTML, INDEX) }))
        .route("/assets/{name}", get(|Path(name): Path<String>| async move { asset(&name) }))
}

/// The asset called `name`, or a 404.
fn asset(name: &str) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => file(a.content_type, a.body),
        None => {
            let mut response = file(TEXT, "no such asset\n");
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    }
}

/// A page or asset: revalidated on every load (the binary may have been
/// upgraded) and never sniffed as another type.
fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every text between `open` and the next `close`, for each occurrence.
    fn between<'a>(text: &'a str, open: &str, close: char) -> Vec<&'a str> {
        let mut found = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find(open) {
            rest = &rest[start + open.len()..];
            let end = rest.find(close).unwrap_or(rest.len());
            found.push(&rest[..end]);
            rest = &rest[end..];
        }
        found
    }

    /// The assets `index.html` names, the modules each script imports and
    /// the AudioWorklet modules it loads by URL, as (who refers, name).
    fn references() -> Vec<(&'static str, &'static str)> {
        let mut refs: Vec<_> = between(INDEX, "\"/assets/", '"').into_iter().map(|n| ("index.html", n)).collect();
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for quote in ['\'', '"'] {
                for open in [format!("from {quote}./"), format!("import {quote}./"), format!("{quote}/assets/")] {
                    refs.extend(between(a.body, &open, quote).into_iter().map(|n| (a.name, n)));
                }
            }
        }
        refs
    }

    #[test]
    fn every_referenced_asset_is_embedded() {
        let refs = references();
        assert!(refs.contains(&("index.html", "main.js")), "index.html loads main.js: {refs:?}");
        assert!(refs.iter().any(|&(from, _)| from == "main.js"), "main.js imports modules: {refs:?}");
        let missing: Vec<_> = refs.iter().filter(|(_, name)| !ASSETS.iter().any(|a| a.name == *name)).collect();
        assert!(missing.is_empty(), "referenced but not in ASSETS: {missing:?}");
    }

    #[test]
    fn every_embedded_asset_is_referenced() {
        let refs = references();
        let unused: Vec<_> = ASSETS.iter().map(|a| a.name).filter(|n| !refs.iter().any(|(_, r)| r == n)).collect();
        assert!(unused.is_empty(), "in ASSETS but never loaded: {unused:?}");
    }

    /// The keys of one language's block (`zh: {` … `},`) of a dictionary
    /// written one `key: value` per line at four spaces.
    fn dictionary_keys(source: &str, lang: &str) -> Vec<String> {
        let start = source.find(&format!("\n  {lang}: {{\n")).unwrap_or_else(|| panic!("no {lang} block"));
        let block = &source[start..];
        let end = block.find("\n  },").expect("block ends");
        let mut keys: Vec<String> = block[..end]
            .lines()
            .filter_map(|l| l.strip_prefix("    "))
            .filter(|l| !l.starts_with(' ') && !l.starts_with("//"))
            .filter_map(|l| l.split_once(':').map(|(k, _)| k.trim_matches('\'').to_owned()))
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn every_page_string_is_in_both_languages() {
        for file in
            ["i18n.js", "i18n-pages.js", "i18n-live.js", "i18n-admin.js", "i18n-reports.js", "i18n-schedules.js"]
        {
            let source = ASSETS.iter().find(|a| a.name == file).expect("embedded").body;
            let (zh, en) = (dictionary_keys(source, "zh"), dictionary_keys(source, "en"));
            assert!(zh.len() > 1, "{file}: {zh:?}");
            let only_zh: Vec<_> = zh.iter().filter(|k| !en.contains(k)).collect();
            let only_en: Vec<_> = en.iter().filter(|k| !zh.contains(k)).collect();
            assert!(only_zh.is_empty() && only_en.is_empty(), "{file}: only zh {only_zh:?}, only en {only_en:?}");
        }
    }

    #[test]
    fn assets_are_served_with_their_type_and_unknown_names_are_404() {
        let check = |name: &str, status: StatusCode, content_type: &str| {
            let response = asset(name);
            let headers = response.headers();
            assert_eq!(response.status(), status, "{name}");
            assert_eq!(headers[header::CONTENT_TYPE], content_type, "{name}");
            assert_eq!(headers[header::CACHE_CONTROL], "no-cache", "{name}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{name}");
        };
        check("main.js", StatusCode::OK, JS);
        check("style.css", StatusCode::OK, CSS);
        check("app.js", StatusCode::NOT_FOUND, TEXT);
        check("..%2Fmod.rs", StatusCode::NOT_FOUND, TEXT);
    }
}
