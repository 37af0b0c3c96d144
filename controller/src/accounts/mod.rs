//! Operator accounts: who may log in to the console, in which role, over
//! which part of the region tree.
//!
//! - **Roles** ([`Role`]): an *admin* manages accounts, tokens, the
//!   directory and county-wide settings and may do everything an operator
//!   may; an *operator* schedules notices, uploads audio, pages villages and
//!   enrols agents; a *viewer* reads. Starting an emergency needs, besides
//!   the operator role, the account's `emergency` flag (admins have it).
//! - **Region**: each account is scoped to the county (`region_id` none) or
//!   to one township; it sees and acts on that subtree only. An admin is
//!   always county-wide.
//! - **Passwords** are kept as Argon2id PHC strings (RFC 9106's second
//!   recommended parameters: 19 MiB, 2 passes, 1 lane), never in clear; at
//!   least [`MIN_PASSWORD_CHARS`] characters.
//! - **Lockout**: [`MAX_FAILED_LOGINS`] failed logins in a row lock the
//!   account for [`LOCKOUT`]; a success resets the count.
//!
//! # Layout
//! - this file: the model, name and password rules, hashing;
//! - `session`: login sessions, their cookie and CSRF token;
//! - `policy`: what each route needs and who has it, in one place;
//! - `scope`: the part of the region tree an account may see and act on;
//! - `audit`: the append-only audit log;
//! - `guard`: the middleware that authenticates, checks CSRF and the
//!   policy, and writes the audit record of every state-changing request;
//! - `cli`: `dalaba-controller user create|list|password|disable`.

pub mod audit;
pub mod cli;
pub mod guard;
pub mod policy;
pub mod scope;
pub mod session;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};

/// Shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password, in bytes (hashing is deliberately slow; a megabyte of
/// password must not be).
pub const MAX_PASSWORD_BYTES: usize = 256;
/// Longest account name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;
/// Failed logins in a row that lock an account.
pub const MAX_FAILED_LOGINS: u32 = 5;
/// How long a locked account stays locked.
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads.
    Viewer,
    /// Schedules, uploads, pages villages, enrols agents.
    Operator,
    /// Everything, including accounts, tokens and the directory.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Operator, Role::Viewer];

    /// Its name in the API, the database and the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}`: choose admin, operator or viewer"))
    }
}

/// A stored account. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Login name (unique, case-insensitive).
    pub name: String,
    /// Name shown in the console and the audit log.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// The township the account is limited to; `None`: the county.
    pub region_id: Option<i64>,
    /// May start emergencies.
    pub emergency: bool,
    /// Created (Unix ms).
    pub created_at_ms: i64,
    /// Disabled (Unix ms); a disabled account cannot log in.
    pub disabled_at_ms: Option<i64>,
    /// Failed logins in a row.
    pub failed_logins: u32,
    /// Locked until (Unix ms) after too many failed logins.
    pub locked_until_ms: Option<i64>,
    /// The last successful login (Unix ms), if any.
    pub last_login_ms: Option<i64>,
    /// The password was chosen by an admin (a new account, a reset): its
    /// holder is asked to choose their own.
    pub password_change_required: bool,
}

/// An account to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Login name (checked with [`check_name`]).
    pub name: String,
    /// Shown name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Township, or `None` for the county.
    pub region_id: Option<i64>,
    /// May start emergencies.
    pub emergency: bool,
    /// Argon2id PHC string ([`hash_password`]).
    pub password_hash: String,
    /// Now (Unix ms).
    pub created_at_ms: i64,
    /// Whether the holder is to change the password (an admin chose it).
    pub password_change_required: bool,
}

/// Changes to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPatch {
    /// New shown name.
    pub display_name: Option<String>,
    /// New role.
    pub role: Option<Role>,
    /// New region (`Some(None)`: the county).
    pub region_id: Option<Option<i64>>,
    /// New emergency flag.
    pub emergency: Option<bool>,
    /// New password hash.
    pub password_hash: Option<String>,
    /// Whether the holder is to change the password.
    pub password_change_required: Option<bool>,
    /// Disable (`Some(Some(now))`) or enable (`Some(None)`).
    pub disabled_at_ms: Option<Option<i64>>,
}

/// Why an account's fields were refused; each says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// A bad login name.
    #[error("account name `{0}` must be 1 to {MAX_NAME_CHARS} letters, digits, '-', '_' or '.'")]
    BadName(String),
    /// A bad display name.
    #[error("the display name must be 1 to {MAX_DISPLAY_NAME_CHARS} characters without control characters")]
    BadDisplayName,
    /// A password too short or too long.
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters (and at most {MAX_PASSWORD_BYTES} bytes)")]
    BadPassword,
    /// An admin limited to a township.
    #[error("an admin account is county-wide: leave out the region")]
    RegionalAdmin,
    /// A viewer with the emergency flag.
    #[error("only operators and admins may start emergencies")]
    ViewerEmergency,
    /// A new password the same as the current one.
    #[error("the new password must differ from the current one")]
    SamePassword,
    /// Hashing failed (no randomness).
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Checks a login name: 1–64 of `[A-Za-z0-9._-]`.
pub fn check_name(name: &str) -> Result<(), AccountError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(AccountError::BadName(excerpt(name, SHOWN_CHARS).into_owned())) }
}

/// How much of a refused value an error message repeats.
pub const SHOWN_CHARS: usize = 24;

/// `text` cut to its first `most` characters, marked with `…` when cut:
/// what an error message or a log record repeats of a caller's value.
pub fn excerpt(text: &str, most: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(most) {
        Some((at, _)) => std::borrow::Cow::Owned(format!("{}…", &text[..at])),
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// Checks a display name: 1–100 characters, no control characters.
pub fn check_display_name(name: &str) -> Result<(), AccountError> {
    let n = name.trim().chars().count();
    if (1..=MAX_DISPLAY_NAME_CHARS).contains(&n) && !name.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(AccountError::BadDisplayName)
    }
}

/// Checks a role's combination with a region and the emergency flag.
pub fn check_role(role: Role, region_id: Option<i64>, emergency: bool) -> Result<(), AccountError> {
    if role == Role::Admin && region_id.is_some() {
        return Err(AccountError::RegionalAdmin);
    }
    if role == Role::Viewer && emergency {
        return Err(AccountError::ViewerEmergency);
    }
    Ok(())
}

/// The Argon2id hasher with RFC 9106's second recommended parameters.
fn argon2() -> Argon2<'static> {
    // 19 MiB, 2 passes, 1 lane: about 30 ms on a Raspberry Pi-class core,
    // a few ms here. Constants that `Params::new` accepts.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password (checked for length first) into a PHC string.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(AccountError::BadPassword);
    }
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether `password` matches the stored PHC string. A malformed stored
/// hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    PasswordHash::new(stored).is_ok_and(|parsed| argon2().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash that matches no password, verified when the account does not
/// exist so that a login takes as long either way.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("no account has this password").unwrap_or_default())
}

impl User {
    /// Whether the account may log in at `now_ms`; the reason when not.
    pub fn login_refusal(&self, now_ms: i64) -> Option<String> {
        if self.disabled_at_ms.is_some() {
            return Some("this account is disabled; ask an administrator".into());
        }
        if let Some(until) = self.locked_until_ms.filter(|&u| u > now_ms) {
            let minutes = (until - now_ms + 59_999) / 60_000;
            return Some(format!(
                "too many failed logins: this account is locked for {minutes} more minute(s) \
                 (until {})",
                crate::clock::rfc3339(until)
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert_ne!(hash, hash_password("correct horse battery").expect("hash"), "salted");
        assert_eq!(hash_password("short"), Err(AccountError::BadPassword));
        assert_eq!(hash_password(&"x".repeat(300)), Err(AccountError::BadPassword));
        assert!(!verify_password("anything at all", dummy_hash()));
    }

    #[test]
    fn names_roles_and_regions_follow_the_rules() {
        assert!(check_name("li.wei-2").is_ok());
        for bad in ["", "has space", "<script>", &"a".repeat(65), "名字"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_display_name("李伟 (泾川县)").is_ok());
        assert!(check_display_name("  ").is_err());
        assert!(check_display_name("a\u{7}b").is_err());
        assert_eq!(check_role(Role::Admin, Some(3), true), Err(AccountError::RegionalAdmin));
        assert_eq!(check_role(Role::Viewer, None, true), Err(AccountError::ViewerEmergency));
        assert!(check_role(Role::Operator, Some(3), true).is_ok());
        assert_eq!("operator".parse::<Role>(), Ok(Role::Operator));
        assert!("root".parse::<Role>().is_err());
    }
}
