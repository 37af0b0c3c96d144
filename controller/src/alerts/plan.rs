//! An alert to what a live session needs: title, priority, villages, audio
//! and how long it may run.
//!
//! # Priority
//! | severity \ urgency | Immediate | Expected | Future, Past, Unknown |
//! |---|---|---|---|
//! | Extreme | emergency | emergency | paging |
//! | Severe | emergency | emergency | paging |
//! | Moderate, Minor, Unknown | paging | paging | paging |
//!
//! An emergency interrupts everything (quiet hours included); paging
//! interrupts scheduled notices only. With several `<info>` blocks the
//! highest wins.
//!
//! # Text and audio
//! The words come from the preferred `<info>`: the first in Chinese
//! (`zh…`), else the first. Its first `<resource>` with embedded audio
//! (`derefUri`, an `audio/…` type) is played; a resource that is only a
//! `uri` cannot be fetched (the county network is offline), so the
//! description and instruction are spoken instead, and the answer says so.

use std::collections::BTreeSet;

use axum::http::StatusCode;

use super::AlertSettings;
use super::areas::{self, Reach};
use super::cap::{Alert, Info, Severity, Urgency};
use crate::api::{ApiError, Detail};
use crate::directory::Region;
use crate::live::{LivePriority, Source};

/// Longest session title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// What an alert asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The session's title: the headline, else the event.
    pub title: String,
    /// Emergency or paging (the table above).
    pub priority: LivePriority,
    /// The villages its areas reach.
    pub villages: BTreeSet<i64>,
    /// The sound.
    pub source: Source,
    /// How long the session may run, ms.
    pub max_duration_ms: u64,
    /// Remarks for the sender.
    pub notes: Vec<String>,
}

/// The priority of one `<info>`'s urgency and severity.
pub fn priority(urgency: Urgency, severity: Severity) -> LivePriority {
    let grave = matches!(severity, Severity::Extreme | Severity::Severe);
    let soon = matches!(urgency, Urgency::Immediate | Urgency::Expected);
    if grave && soon { LivePriority::Emergency } else { LivePriority::Paging }
}

/// The `<info>` whose words are used: the first in Chinese, else the first.
pub fn preferred(alert: &Alert) -> Option<&Info> {
    alert.infos.iter().find(|i| i.language.to_ascii_lowercase().starts_with("zh")).or(alert.infos.first())
}

/// Plans a session for an Alert or Update at `now_ms`. An alert without
/// info or areas, one that has expired, or one with an area that matches
/// no village is a 422 naming the problem.
pub fn plan(alert: &Alert, regions: &[Region], now_ms: i64, settings: &AlertSettings) -> Result<Plan, ApiError> {
    let Some(info) = preferred(alert) else {
        return Err(unprocessable("no_info", "the alert has no <info> block: nothing to say and nowhere to say it"));
    };
    let mut max_duration_ms = settings.max_duration_ms;
    if let Some(expires) = info.expires {
        let left = expires.timestamp_millis().saturating_sub(now_ms);
        if left <= 0 {
            return Err(unprocessable("expired", &format!("the alert expired at {}", expires.to_rfc3339())));
        }
        max_duration_ms = max_duration_ms.min(left.unsigned_abs());
    }
    let areas: Vec<_> = alert.infos.iter().flat_map(|i| &i.areas).collect();
    if areas.is_empty() {
        return Err(unprocessable("no_area", "the alert has no <area>: Dalaba broadcasts only to areas it can map"));
    }
    let Reach { villages, unmatched, mut notes } = areas::reach(&areas, regions);
    if !unmatched.is_empty() {
        let names: Vec<String> = unmatched.iter().map(|u| format!("`{}`", u.area)).collect();
        let message = match unmatched.as_slice() {
            [one] => format!("unknown area `{}`: {}", one.area, one.reason),
            _ => format!("unknown areas {}: they match no village", names.join(", ")),
        };
        let details =
            unmatched.iter().map(|u| Detail { line: None, message: format!("`{}`: {}", u.area, u.reason) }).collect();
        return Err(ApiError::Unprocessable { code: "unknown_area", message, details });
    }
    let priority = alert.infos.iter().map(|i| priority(i.urgency, i.severity)).max().unwrap_or(LivePriority::Paging);
    let title_text = info.headline.as_deref().unwrap_or(&info.event);
    let title: String = title_text.chars().take(MAX_TITLE_CHARS).collect();
    let source = source(info, &mut notes);
    Ok(Plan { title, priority, villages, source, max_duration_ms, notes })
}

/// The sound of an info: embedded audio, else its words.
fn source(info: &Info, notes: &mut Vec<String>) -> Source {
    let mut linked = None;
    for r in &info.resources {
        let audio = r.mime_type.to_ascii_lowercase().starts_with("audio/");
        let name = if r.description.is_empty() { r.mime_type.as_str() } else { r.description.as_str() };
        match (&r.embedded, audio) {
            (Some(bytes), true) => {
                return Source::Audio { bytes: bytes.clone(), hint: Some(r.mime_type.clone()) };
            }
            (None, true) if r.uri.is_some() => linked = linked.or(Some(name.to_owned())),
            _ => notes.push(format!("resource `{name}` ({}) is not embedded audio; ignored", r.mime_type)),
        }
    }
    if let Some(name) = linked {
        notes.push(format!(
            "resource `{name}` is only a link (uri), which the county network cannot fetch; \
             spoke the description and instruction instead"
        ));
    }
    let words: Vec<&str> = [info.description.as_deref(), info.instruction.as_deref()].into_iter().flatten().collect();
    let text = if words.is_empty() {
        notes.push("the alert has no description or instruction; spoke its headline".to_owned());
        info.headline.clone().unwrap_or_else(|| info.event.clone())
    } else {
        words.join("\n")
    };
    Source::Text { text }
}

fn unprocessable(code: &'static str, message: &str) -> ApiError {
    ApiError::Coded { status: StatusCode::UNPROCESSABLE_ENTITY, code, message: message.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::cap;

    #[test]
    fn the_priority_table() {
        use LivePriority::{Emergency as E, Paging as P};
        let urgencies = [Urgency::Immediate, Urgency::Expected, Urgency::Future, Urgency::Past, Urgency::Unknown];
        let table = [
            (Severity::Extreme, [E, E, P, P, P]),
            (Severity::Severe, [E, E, P, P, P]),
            (Severity::Moderate, [P, P, P, P, P]),
            (Severity::Minor, [P, P, P, P, P]),
            (Severity::Unknown, [P, P, P, P, P]),
        ];
        for (severity, row) in table {
            for (urgency, expected) in urgencies.into_iter().zip(row) {
                assert_eq!(priority(urgency, severity), expected, "{severity:?} {urgency:?}");
            }
        }
    }

    #[test]
    fn chinese_info_is_preferred() {
        let text = include_str!("../../tests/fixtures/cap/alert-zh.xml");
        let mut alert = cap::parse(text).expect("parses");
        let mut english = alert.infos[0].clone();
        english.language = "en-US".into();
        english.headline = Some("Rainstorm red warning".into());
        alert.infos.insert(0, english);
        assert_eq!(preferred(&alert).and_then(|i| i.headline.as_deref()), Some("泾川县气象台发布暴雨红色预警信号"));
        alert.infos.remove(1);
        assert_eq!(preferred(&alert).and_then(|i| i.headline.as_deref()), Some("Rainstorm red warning"));
    }
}
