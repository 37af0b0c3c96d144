//! Quiet hours: times of day when scheduled broadcasts stay silent, for the
//! whole county or per township.
//!
//! A township that has its own entry uses only its own windows (it may
//! widen or narrow the county's); the others use the county's. Windows are
//! read in one zone and may cross midnight (22:00–06:30). Everything below
//! [`Priority::Emergency`](crate::priority::Priority) respects them.

use chrono::NaiveTime;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::QuietHoursError;
use crate::zone;

/// The quiet hours of a county and its townships.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    /// IANA zone the windows are read in.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Windows for every township without its own entry.
    #[serde(default)]
    pub county: Vec<QuietWindow>,
    /// Townships with their own windows.
    #[serde(default)]
    pub townships: Vec<TownshipQuietHours>,
}

/// One township's own quiet hours, replacing the county's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TownshipQuietHours {
    /// The township's id.
    pub township_id: i64,
    /// Its windows; empty: no quiet hours at all.
    pub windows: Vec<QuietWindow>,
}

/// From `start` until `end` every day; crosses midnight when `end` is not after `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietWindow {
    /// Local time the silence begins.
    pub start: NaiveTime,
    /// Local time it ends (exclusive).
    pub end: NaiveTime,
}

/// A half-open span of instants in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: i64,
    pub(crate) end: i64,
}

impl QuietHours {
    /// No quiet hours.
    pub fn none() -> QuietHours {
        QuietHours { timezone: default_timezone(), county: Vec::new(), townships: Vec::new() }
    }

    /// Checks the zone and the windows.
    pub fn validate(&self) -> Result<(), QuietHoursError> {
        self.zone().map(drop)
    }

    /// The windows that apply in a township.
    pub fn windows_for(&self, township_id: i64) -> &[QuietWindow] {
        self.townships.iter().find(|t| t.township_id == township_id).map_or(&self.county, |t| &t.windows)
    }

    pub(crate) fn zone(&self) -> Result<Tz, QuietHoursError> {
        let tz = zone::parse(&self.timezone)
            .ok_or_else(|| QuietHoursError::UnknownTimeZone { name: self.timezone.clone() })?;
        let all = self.county.iter().chain(self.townships.iter().flat_map(|t| &t.windows));
        if let Some(window) = all.into_iter().find(|w| w.start == w.end) {
            return Err(QuietHoursError::EmptyWindow { start: window.start });
        }
        let mut ids: Vec<i64> = self.townships.iter().map(|t| t.township_id).collect();
        ids.sort_unstable();
        if let Some(pair) = ids.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(QuietHoursError::DuplicateTownship { township_id: pair[0] });
        }
        Ok(tz)
    }
}

impl Default for QuietHours {
    fn default() -> Self {
        QuietHours::none()
    }
}

/// The quiet spans of `windows` that touch `[from_ms, to_ms)`, sorted and
/// merged so they never overlap. Window edges follow the zone policy (a
/// boundary inside a DST gap moves to the gap's end).
pub(crate) fn spans(tz: Tz, windows: &[QuietWindow], from_ms: i64, to_ms: i64) -> Vec<Span> {
    let mut spans = Vec::new();
    let (Some(first), Some(last)) = (zone::local_date(tz, from_ms), zone::local_date(tz, to_ms)) else {
        return spans;
    };
    // A window that began the day before may still be running at `from`.
    let mut date = first.pred_opt().and_then(|d| d.pred_opt()).unwrap_or(first);
    while date <= last {
        for window in windows {
            let end_date = if window.end > window.start { Some(date) } else { date.succ_opt() };
            let start = zone::to_utc_ms(tz, date.and_time(window.start));
            let end = end_date.and_then(|d| zone::to_utc_ms(tz, d.and_time(window.end)));
            if let (Some(start), Some(end)) = (start, end)
                && start < end
                && end > from_ms
                && start < to_ms
            {
                spans.push(Span { start, end });
            }
        }
        match date.succ_opt() {
            Some(next) => date = next,
            None => break,
        }
    }
    spans.sort_unstable_by_key(|s| (s.start, s.end));
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }
    merged
}

fn default_timezone() -> String {
    zone::DEFAULT_TIMEZONE.to_owned()
}
