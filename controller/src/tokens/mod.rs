//! API tokens: how upstream systems (and, until operator accounts exist,
//! scripts) authenticate to the JSON API.
//!
//! A token is `dlb_` followed by 43 characters of base64url (32 random
//! bytes). It is shown once, when created; the store keeps only its SHA-256,
//! so a copy of the database reveals no usable token. Each token carries
//! scopes ([`Scope`]); the accounts guard checks them against the route
//! table (`accounts::policy`): 401 for a missing, unknown or revoked token,
//! 403 naming what is missing.
//!
//! # Layout
//! - this file: the model, generation, hashing and name rules;
//! - `auth`: the `Authorization: Bearer dlb_…` lookup;
//! - `cli`: `dalaba-controller token create|list|revoke`.

pub mod auth;
pub mod cli;

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// What every token starts with, so a leaked one is recognisable (secret
/// scanners) and a wrong kind of credential is refused early.
pub const TOKEN_PREFIX: &str = "dlb_";
/// Longest token name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read the directory, schedules and reports.
    Read,
    /// Change schedules and the library.
    Schedule,
    /// Send alerts that interrupt everything (`POST /api/v1/alerts`).
    Emergency,
}

/// A stored token. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    /// Its row id.
    pub id: i64,
    /// The operator's name for it (unique), e.g. `province-platform`.
    pub name: String,
    /// What it may do, sorted.
    pub scopes: Vec<Scope>,
    /// When it was created (Unix ms).
    pub created_at_ms: i64,
    /// When it was last accepted (Unix ms).
    pub last_used_ms: Option<i64>,
    /// When it was revoked (Unix ms); a revoked token is refused.
    pub revoked_at_ms: Option<i64>,
}

/// A token to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    /// Its name (checked with [`check_name`]).
    pub name: String,
    /// SHA-256 of the whole token, lowercase hex.
    pub secret_hash: String,
    /// Its scopes.
    pub scopes: Vec<Scope>,
    /// Now (Unix ms).
    pub created_at_ms: i64,
}

/// A token as created: the secret to show once, and what to store.
#[derive(Debug)]
pub struct Created {
    /// The whole token, `dlb_…`. Shown once, never stored.
    pub token: String,
    /// What the store keeps.
    pub new: NewApiToken,
}

/// A scope name that is not `read`, `schedule` or `emergency`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope `{0}`: choose read, schedule or emergency")]
pub struct UnknownScope(pub String);

/// A token name that breaks the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token name `{0}` must be 1 to {MAX_NAME_CHARS} letters, digits, '-', '_' or '.'")]
pub struct BadName(pub String);

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Schedule, Scope::Emergency];

    /// Its name in the API, the database and the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Schedule => "schedule",
            Scope::Emergency => "emergency",
        }
    }

    /// Parses a comma-separated list (`emergency,read`), sorted and without
    /// repeats. An empty list is refused: a token that may do nothing is a
    /// mistake.
    pub fn parse_list(text: &str) -> Result<Vec<Scope>, UnknownScope> {
        let mut scopes = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Scope>, _>>()?;
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(UnknownScope(text.to_owned()));
        }
        Ok(scopes)
    }

    /// The list as stored: `read,emergency`.
    pub fn join(scopes: &[Scope]) -> String {
        scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Scope, UnknownScope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s).ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

impl ApiToken {
    /// Whether the token may act in `scope`.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// Makes a new token named `name` with `scopes`, created at `now_ms`.
pub fn create(name: &str, scopes: Vec<Scope>, now_ms: i64) -> Result<Created, CreateError> {
    check_name(name)?;
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::getrandom(&mut bytes).map_err(|e| CreateError::Random(e.to_string()))?;
    let token = format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let new = NewApiToken { name: name.to_owned(), secret_hash: hash(&token), scopes, created_at_ms: now_ms };
    Ok(Created { token, new })
}

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The name breaks the rules.
    #[error(transparent)]
    Name(#[from] BadName),
    /// The system has no randomness to give.
    #[error("no system randomness: {0}")]
    Random(String),
}

/// SHA-256 of a token, lowercase hex: what the store keeps and looks up.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Checks a token name: 1 to [`MAX_NAME_CHARS`] ASCII letters, digits,
/// `-`, `_` or `.`, so it is safe in logs, on a command line and in the
/// `started_by` of a session.
pub fn check_name(name: &str) -> Result<(), BadName> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok { Ok(()) } else { Err(BadName(crate::accounts::excerpt(name, crate::accounts::SHOWN_CHARS).into_owned())) }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_lists_parse_sorted_without_repeats() {
        assert_eq!(Scope::parse_list("emergency,read").expect("ok"), [Scope::Read, Scope::Emergency]);
        assert_eq!(Scope::parse_list(" read , read ,").expect("ok"), [Scope::Read]);
        assert_eq!(Scope::parse_list("emergency,admin").unwrap_err(), UnknownScope("admin".into()));
        assert!(Scope::parse_list(" , ").is_err(), "an empty list is refused");
        assert_eq!(Scope::join(&[Scope::Read, Scope::Emergency]), "read,emergency");
    }

    #[test]
    fn tokens_are_prefixed_random_and_stored_hashed() {
        let a = create("province", vec![Scope::Emergency], 5).expect("create");
        let b = create("province", vec![Scope::Emergency], 5).expect("create");
        assert!(a.token.starts_with(TOKEN_PREFIX), "{}", a.token);
        assert_eq!(a.token.len(), TOKEN_PREFIX.len() + 43);
        assert_ne!(a.token, b.token);
        assert_eq!(a.new.secret_hash, hash(&a.token));
        assert!(!a.new.secret_hash.contains(&a.token[TOKEN_PREFIX.len()..]));
    }

    #[test]
    fn names_are_checked() {
        for good in ["province-platform", "a", "county_2.backup", &"x".repeat(MAX_NAME_CHARS)] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in ["", "two words", "名字", "semi;colon", &"x".repeat(MAX_NAME_CHARS + 1)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
