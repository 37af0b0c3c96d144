//! Login sessions: a random 32-byte id in an `HttpOnly; Secure;
//! SameSite=Strict` cookie, kept in the store only as its SHA-256, with a
//! CSRF token that every state-changing request must echo in
//! `X-CSRF-Token`. A session ends at logout, after
//! [`SessionSettings::idle`] without a request, or at
//! [`SessionSettings::absolute`] after login, whichever comes first.

use std::time::Duration;

use axum::http::{HeaderMap, header};
use base64::Engine;
use cookie::{Cookie, SameSite};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::User;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "dalaba_session";
/// The header a state-changing request carries the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How often a session's last use is written (not on every request).
pub const TOUCH_EVERY_MS: i64 = 60_000;

/// Session lifetimes (`[accounts]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after login whatever happens.
    pub absolute: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings { idle: Duration::from_secs(30 * 60), absolute: Duration::from_secs(12 * 3600) }
    }
}

/// A session to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// SHA-256 of the cookie's value, hex.
    pub id_hash: String,
    /// The account.
    pub user_id: i64,
    /// The CSRF token.
    pub csrf: String,
    /// Login time (Unix ms).
    pub created_at_ms: i64,
    /// Absolute end (Unix ms).
    pub expires_at_ms: i64,
    /// Where the login came from.
    pub ip: String,
}

/// A stored session and its account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredSession {
    /// SHA-256 of the cookie's value.
    #[serde(skip)]
    pub id_hash: String,
    /// The account.
    pub user: User,
    /// The CSRF token.
    #[serde(skip)]
    pub csrf: String,
    /// Login time (Unix ms).
    pub created_at_ms: i64,
    /// Last request (Unix ms, to [`TOUCH_EVERY_MS`]).
    pub last_seen_ms: i64,
    /// Absolute end (Unix ms).
    pub expires_at_ms: i64,
}

impl StoredSession {
    /// Why the session is over at `now_ms`, if it is.
    pub fn ended(&self, now_ms: i64, settings: &SessionSettings) -> Option<&'static str> {
        if now_ms >= self.expires_at_ms {
            return Some("your session has expired; please log in again");
        }
        if now_ms.saturating_sub(self.last_seen_ms) >= settings.idle.as_millis() as i64 {
            return Some("your session ended after a period without activity; please log in again");
        }
        None
    }
}

/// A fresh session for `user_id`: the cookie's value (shown to the browser
/// only) and what to store.
pub fn new_session(
    user_id: i64,
    now_ms: i64,
    ip: &str,
    settings: &SessionSettings,
) -> Result<(String, NewSession), String> {
    let id = random_token()?;
    let csrf = random_token()?;
    let new = NewSession {
        id_hash: hash(&id),
        user_id,
        csrf,
        created_at_ms: now_ms,
        expires_at_ms: now_ms.saturating_add(settings.absolute.as_millis() as i64),
        ip: ip.to_owned(),
    };
    Ok((id, new))
}

/// SHA-256 of a cookie value, lowercase hex.
pub fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// The `Set-Cookie` value that gives the browser its session.
pub fn set_cookie(value: &str, settings: &SessionSettings) -> String {
    Cookie::build((COOKIE_NAME, value.to_owned()))
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(settings.absolute.as_secs() as i64))
        .build()
        .to_string()
}

/// The `Set-Cookie` value that removes it.
pub fn clear_cookie() -> String {
    Cookie::build((COOKIE_NAME, ""))
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::ZERO)
        .build()
        .to_string()
}

/// The session cookie's value in a request, if any.
pub fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE_NAME && !c.value().is_empty())
        .map(|c| c.value().to_owned())
}

/// 32 random bytes, base64url.
fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("no system randomness: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn the_cookie_is_strict_and_secret_and_found_among_others() {
        let settings = SessionSettings::default();
        let (value, new) = new_session(7, 1_000, "10.0.0.1", &settings).expect("session");
        assert_eq!(new.id_hash, hash(&value));
        assert_ne!(new.csrf, value);
        assert_eq!(new.expires_at_ms, 1_000 + 12 * 3600 * 1000);
        let set = set_cookie(&value, &settings);
        for part in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
            assert!(set.contains(part), "{set}");
        }
        assert!(clear_cookie().contains("Max-Age=0"));
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(&format!("a=b; {COOKIE_NAME}={value}; c=d")).unwrap());
        assert_eq!(cookie_value(&headers), Some(value));
        headers.insert(header::COOKIE, HeaderValue::from_static("dalaba_session=; x=y"));
        assert_eq!(cookie_value(&headers), None);
    }
}
