//! What each API route needs, and who has it: the one place the console's
//! permissions are decided. [`need`] maps a method and a route (axum's
//! matched path) to a [`Need`]; [`Principal::allows`] says whether an
//! account or a token has it; [`action`] names a state-changing request in
//! the audit log. A route missing from the table needs an admin: a new
//! route is closed until someone decides who may use it.

use axum::http::Method;
use serde::Serialize;

use super::{Role, User};
use crate::tokens::{ApiToken, Scope};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Need {
    /// Nothing: login, agents' own routes (they prove themselves), public
    /// documents.
    Public,
    /// Reading anything.
    Read,
    /// Changing the library and schedules.
    Schedule,
    /// Paging villages live.
    Live,
    /// Starting emergencies (CAP alerts; an emergency session's priority is
    /// checked by the live handler).
    Emergency,
    /// Enrolling and removing agents.
    Enrol,
    /// Accounts, tokens, the directory, county-wide settings, the audit log.
    Admin,
}

impl Need {
    /// In words, for a 403.
    pub fn describe(self) -> &'static str {
        match self {
            Need::Public | Need::Read => "read access",
            Need::Schedule => "the operator role (or an API token with the schedule scope)",
            Need::Live => "the operator role (or an API token with the schedule scope)",
            Need::Emergency => {
                "an operator account allowed to start emergencies (or an API token with the emergency scope)"
            }
            Need::Enrol => "the operator role",
            Need::Admin => "the admin role",
        }
    }
}

/// The route table. `route` is axum's matched path (`/api/v1/…`; the
/// prefix may be left out).
pub fn need(method: &Method, route: &str) -> Need {
    let route = route.strip_prefix("/api/v1").unwrap_or(route);
    let get = *method == Method::GET || *method == Method::HEAD;
    match route {
        // Agents authenticate these themselves (enrolment code, link
        // credentials); login is how credentials are obtained.
        "/enrol" | "/link" | "/content/{sha256}" => Need::Public,
        "/session" if *method == Method::POST => Need::Public,
        "/openapi.json" | "/controller" if get => Need::Public,
        // Logging out, and changing one's own password (the handler
        // refuses API tokens: they have none).
        "/session" | "/session/password" => Need::Read,
        "/users" | "/users/{id}" | "/tokens" | "/tokens/{id}" | "/audit" | "/audit/export.csv" => Need::Admin,
        "/live/{id}/microphone" => Need::Live,
        _ if get => Need::Read,
        "/regions" | "/regions/{id}" | "/directory/import" | "/quiet-hours" => Need::Admin,
        "/villages/{id}/enrolment-codes" | "/agents/{id}" => Need::Enrol,
        "/schedules" | "/schedules/preview" | "/schedules/{id}" => Need::Schedule,
        "/library" | "/library/tts" | "/library/categories" | "/library/{id}" => Need::Schedule,
        "/live" | "/live/{id}/stop" => Need::Live,
        // Operators acknowledge alarms; viewers only see them.
        "/alarms/{id}/acknowledge" => Need::Schedule,
        "/alerts" => Need::Emergency,
        _ => Need::Admin,
    }
}

/// The audit log's name for a state-changing request.
pub fn action(method: &Method, route: &str) -> String {
    let route = route.strip_prefix("/api/v1").unwrap_or(route);
    let named = match (method.as_str(), route) {
        ("POST", "/session") => "login",
        ("DELETE", "/session") => "logout",
        ("POST", "/session/password") => "password.change",
        ("POST", "/enrol") => "agent.enrol",
        ("DELETE", "/agents/{id}") => "agent.remove",
        ("POST", "/villages/{id}/enrolment-codes") => "agent.enrolment_code",
        ("POST", "/regions") => "region.create",
        ("PATCH", "/regions/{id}") => "region.update",
        ("DELETE", "/regions/{id}") => "region.delete",
        ("POST", "/directory/import") => "directory.import",
        ("POST", "/schedules") => "schedule.create",
        ("POST", "/schedules/preview") => "schedule.preview",
        ("PUT", "/schedules/{id}") => "schedule.replace",
        ("DELETE", "/schedules/{id}") => "schedule.delete",
        ("PUT", "/quiet-hours") => "quiet_hours.set",
        ("POST", "/library") => "library.upload",
        ("POST", "/library/tts") => "library.tts",
        ("POST", "/library/categories") => "library.category_create",
        ("PATCH", "/library/{id}") => "library.update",
        ("DELETE", "/library/{id}") => "library.delete",
        ("POST", "/live") => "live.start",
        ("POST", "/live/{id}/stop") => "live.stop",
        ("GET", "/live/{id}/microphone") => "live.microphone",
        ("POST", "/alerts") => "alert.receive",
        ("POST", "/alarms/{id}/acknowledge") => "alarm.acknowledge",
        ("POST", "/users") => "user.create",
        ("PATCH", "/users/{id}") => "user.update",
        ("POST", "/tokens") => "token.create",
        ("DELETE", "/tokens/{id}") => "token.revoke",
        _ => "",
    };
    if named.is_empty() { format!("{} {route}", method.as_str()) } else { named.to_owned() }
}

/// Whether a request changes something (and so is audited and needs the
/// CSRF token when it comes with a session cookie).
pub fn changes_state(method: &Method, route: &str) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || route.ends_with("/microphone")
}

/// Why `principal` may not do what needs `need`, in words for a 403.
pub fn refusal(principal: &Principal, need: Need) -> String {
    match principal {
        Principal::Token(t) => {
            let scope = match need {
                Need::Public | Need::Read => Some(Scope::Read),
                Need::Schedule | Need::Live => Some(Scope::Schedule),
                Need::Emergency => Some(Scope::Emergency),
                Need::Enrol | Need::Admin => None,
            };
            match scope {
                Some(scope) => {
                    format!("API token {} lacks the {scope} scope (it has: {})", t.name, Scope::join(&t.scopes))
                }
                None => format!("API tokens cannot do this (API token {}): it needs {}", t.name, need.describe()),
            }
        }
        Principal::User(u) => {
            format!("{} ({}, {}) may not do this: it needs {}", u.display_name, u.name, u.role, need.describe())
        }
        Principal::Local => format!("this needs {}", need.describe()),
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Principal {
    /// An operator logged in to the console.
    User(User),
    /// An upstream system with an API token.
    Token(ApiToken),
    /// The controller's own host (a loopback address) before any account
    /// exists: the first-run state, until an admin is created with
    /// `dalaba-controller user create NAME --role admin`. Callers from
    /// the network are refused in that state.
    Local,
}

impl Principal {
    /// Whether the caller has `need`.
    pub fn allows(&self, need: Need) -> bool {
        match self {
            Principal::User(u) => match need {
                Need::Public | Need::Read => true,
                Need::Schedule | Need::Live | Need::Enrol => u.role >= Role::Operator,
                Need::Emergency => u.role == Role::Admin || (u.role == Role::Operator && u.emergency),
                Need::Admin => u.role == Role::Admin,
            },
            Principal::Token(t) => match need {
                Need::Public => true,
                Need::Read => t.allows(Scope::Read),
                Need::Schedule | Need::Live => t.allows(Scope::Schedule),
                Need::Emergency => t.allows(Scope::Emergency),
                Need::Enrol | Need::Admin => false,
            },
            Principal::Local => true,
        }
    }

    /// The subtree the caller may see and act on; `None`: the county.
    pub fn region_id(&self) -> Option<i64> {
        match self {
            Principal::User(u) => u.region_id,
            Principal::Token(_) | Principal::Local => None,
        }
    }

    /// How the audit log names the caller: `user:li.wei`, `token:province`.
    pub fn actor(&self) -> String {
        match self {
            Principal::User(u) => format!("user:{}", u.name),
            Principal::Token(t) => format!("token:{}", t.name),
            Principal::Local => "local".to_owned(),
        }
    }

    /// How reports and refusals name the caller to operators:
    /// `李伟 (li.wei)`, `token:province`.
    pub fn describe(&self) -> String {
        match self {
            Principal::User(u) => format!("{} ({})", u.display_name, u.name),
            _ => self.actor(),
        }
    }

    /// `user` or `token`.
    pub fn kind(&self) -> &'static str {
        match self {
            Principal::User(_) => "user",
            Principal::Token(_) => "token",
            Principal::Local => "local",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, emergency: bool) -> Principal {
        Principal::User(User {
            id: 1,
            name: "u".into(),
            display_name: "U".into(),
            role,
            region_id: None,
            emergency,
            created_at_ms: 0,
            disabled_at_ms: None,
            failed_logins: 0,
            locked_until_ms: None,
            last_login_ms: None,
            password_change_required: false,
        })
    }

    fn token(scopes: &[Scope]) -> Principal {
        Principal::Token(ApiToken {
            id: 1,
            name: "t".into(),
            scopes: scopes.to_vec(),
            created_at_ms: 0,
            last_used_ms: None,
            revoked_at_ms: None,
        })
    }

    #[test]
    fn roles_and_scopes_grant_what_the_issue_says() {
        use Need::*;
        let cases: [(Principal, [bool; 6]); 7] = [
            //                                   Read  Sched Live  Emerg Enrol Admin
            (user(Role::Viewer, false), [true, false, false, false, false, false]),
            (user(Role::Operator, false), [true, true, true, false, true, false]),
            (user(Role::Operator, true), [true, true, true, true, true, false]),
            (user(Role::Admin, false), [true, true, true, true, true, true]),
            (token(&[Scope::Read]), [true, false, false, false, false, false]),
            (token(&[Scope::Schedule]), [false, true, true, false, false, false]),
            (token(&[Scope::Emergency]), [false, false, false, true, false, false]),
        ];
        for (who, expected) in cases {
            let got = [Read, Schedule, Live, Emergency, Enrol, Admin].map(|n| who.allows(n));
            assert_eq!(got, expected, "{who:?}");
        }
    }

    #[test]
    fn the_route_table_closes_what_it_does_not_know() {
        assert_eq!(need(&Method::POST, "/api/v1/enrol"), Need::Public);
        assert_eq!(need(&Method::POST, "/api/v1/session"), Need::Public);
        assert_eq!(need(&Method::DELETE, "/api/v1/session"), Need::Read);
        assert_eq!(need(&Method::GET, "/api/v1/schedules"), Need::Read);
        assert_eq!(need(&Method::GET, "/api/v1/audit"), Need::Admin);
        assert_eq!(need(&Method::GET, "/api/v1/live/{id}/microphone"), Need::Live);
        assert_eq!(need(&Method::PUT, "/api/v1/schedules/{id}"), Need::Schedule);
        assert_eq!(need(&Method::POST, "/api/v1/regions"), Need::Admin);
        assert_eq!(need(&Method::GET, "/api/v1/alarms"), Need::Read);
        assert_eq!(need(&Method::POST, "/api/v1/alarms/{id}/acknowledge"), Need::Schedule);
        assert_eq!(action(&Method::POST, "/api/v1/alarms/{id}/acknowledge"), "alarm.acknowledge");
        assert_eq!(need(&Method::POST, "/api/v1/something-new"), Need::Admin);
        assert_eq!(action(&Method::PUT, "/api/v1/schedules/{id}"), "schedule.replace");
        assert_eq!(action(&Method::POST, "/api/v1/new"), "POST /new");
        assert!(changes_state(&Method::GET, "/api/v1/live/{id}/microphone"));
        assert!(!changes_state(&Method::GET, "/api/v1/schedules"));
    }
}
