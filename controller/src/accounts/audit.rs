//! The audit log: who did what, when, from where. One record per
//! state-changing request (written by the guard, whatever its outcome),
//! per login attempt, per alert received and per agent enrolment. The
//! table refuses UPDATE and DELETE (migration 8's triggers); records are
//! searched by time, actor, action and village, and exported as CSV.

use serde::{Deserialize, Serialize};

use crate::directory::csv::{neutralise, push_record};

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Row id (increasing).
    pub id: i64,
    /// When (Unix ms).
    pub at_ms: i64,
    /// `user:NAME`, `token:NAME`, `agent:ID`, or `anonymous`.
    pub actor: String,
    /// `user`, `token`, `agent` or `anonymous`.
    pub actor_kind: String,
    /// The caller's address.
    pub ip: String,
    /// What (`schedule.create`, `login`, `login.failed`, …).
    pub action: String,
    /// HTTP method.
    pub method: String,
    /// The request path as sent (ids included).
    pub path: String,
    /// The answer's status.
    pub status: u16,
    /// The village concerned, when the request names one.
    pub village_id: Option<i64>,
    /// Anything else worth keeping (a refusal's reason, a login name).
    pub detail: String,
}

/// A record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditRecord {
    /// When (Unix ms).
    pub at_ms: i64,
    /// See [`AuditRecord::actor`].
    pub actor: String,
    /// See [`AuditRecord::actor_kind`].
    pub actor_kind: String,
    /// The caller's address.
    pub ip: String,
    /// What.
    pub action: String,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Answer's status.
    pub status: u16,
    /// The village concerned.
    pub village_id: Option<i64>,
    /// Anything else.
    pub detail: String,
}

/// Longest `detail` kept, in characters.
pub const MAX_DETAIL_CHARS: usize = 500;
/// Most records one search returns.
pub const MAX_RESULTS: u32 = 10_000;

/// What to search for; every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// From (Unix ms, inclusive).
    pub from_ms: Option<i64>,
    /// To (Unix ms, exclusive).
    pub to_ms: Option<i64>,
    /// Exact actor (`user:li.wei`) or a bare name matching any kind.
    pub actor: Option<String>,
    /// Action, or an action prefix ending in `.` (`schedule.`).
    pub action: Option<String>,
    /// Village id.
    pub village_id: Option<i64>,
    /// Most records, newest first (default 200, at most [`MAX_RESULTS`]).
    pub limit: Option<u32>,
    /// Only records older than this id: the next page after a page whose
    /// oldest record had it.
    pub before_id: Option<i64>,
}

/// Longest `actor` kept: a login name is at most 64 characters, but a
/// failed login records whatever name was typed.
pub const MAX_ACTOR_CHARS: usize = 80;
/// Longest `path` kept.
pub const MAX_PATH_CHARS: usize = 300;

impl NewAuditRecord {
    /// Cuts `detail` to [`MAX_DETAIL_CHARS`], `actor` to
    /// [`MAX_ACTOR_CHARS`] and `path` to [`MAX_PATH_CHARS`] (each marked
    /// with `…`), so no caller can grow the log by more than a few hundred
    /// characters a request.
    pub fn bounded(mut self) -> NewAuditRecord {
        cut(&mut self.detail, MAX_DETAIL_CHARS);
        cut(&mut self.actor, MAX_ACTOR_CHARS);
        cut(&mut self.path, MAX_PATH_CHARS);
        self
    }
}

fn cut(text: &mut String, most: usize) {
    if let std::borrow::Cow::Owned(shorter) = super::excerpt(text, most) {
        *text = shorter;
    }
}

/// The records as CSV with a header row (RFC 4180, UTF-8 with a BOM so
/// spreadsheet programs read the Chinese text right).
pub fn to_csv(records: &[AuditRecord]) -> String {
    let mut out = String::from("\u{feff}time,actor,kind,ip,action,method,path,status,village_id,detail\r\n");
    for r in records {
        let cells = [
            crate::clock::rfc3339(r.at_ms),
            r.actor.clone(),
            r.actor_kind.clone(),
            r.ip.clone(),
            r.action.clone(),
            r.method.clone(),
            r.path.clone(),
            r.status.to_string(),
            r.village_id.map(|v| v.to_string()).unwrap_or_default(),
            r.detail.clone(),
        ];
        // The directory export's rules: formula-looking cells get a `'`.
        let cells: Vec<String> = cells.iter().map(|c| neutralise(c)).collect();
        push_record(&mut out, &cells);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_cells_cannot_become_formulas() {
        let record = |detail: &str| AuditRecord {
            id: 1,
            at_ms: 0,
            actor: "user:=cmd".into(),
            actor_kind: "user".into(),
            ip: "".into(),
            action: "x".into(),
            method: "POST".into(),
            path: "/".into(),
            status: 200,
            village_id: None,
            detail: detail.into(),
        };
        let csv = to_csv(&[record("=HYPERLINK(\"x\")"), record("王家村, 一组")]);
        assert!(csv.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{csv}");
        assert!(csv.contains("\"王家村, 一组\""), "{csv}");
        assert!(!csv.lines().skip(1).any(|l| l.split(',').any(|c| c.starts_with('='))), "{csv}");
    }

    #[test]
    fn long_details_are_cut() {
        let r = NewAuditRecord {
            at_ms: 0,
            actor: "a".into(),
            actor_kind: "user".into(),
            ip: "".into(),
            action: "x".into(),
            method: "POST".into(),
            path: "/".into(),
            status: 200,
            village_id: None,
            detail: "字".repeat(600),
        }
        .bounded();
        assert_eq!(r.detail.chars().count(), MAX_DETAIL_CHARS + 1);
        assert!(r.detail.ends_with('…'));
        let r = NewAuditRecord { actor: format!("user:{}", "é".repeat(10_000)), path: "/x".repeat(400), ..r }.bounded();
        assert_eq!((r.actor.chars().count(), r.path.chars().count()), (MAX_ACTOR_CHARS + 1, MAX_PATH_CHARS + 1));
        let r = NewAuditRecord { actor: "a".repeat(MAX_ACTOR_CHARS), ..r }.bounded();
        assert_eq!(r.actor, "a".repeat(MAX_ACTOR_CHARS), "a value at the limit is kept whole");
    }
}
