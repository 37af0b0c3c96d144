//! Reports: how well each village, township and the county kept to its
//! broadcast timetable over a period, as data, SVG charts, a CSV file and a
//! printable HTML page.
//!
//! # How a report is made
//! The caller (the API, after authorisation) resolves what the operator may
//! see to a [`Scope`], picks a [`Period`] of county days (in the API's
//! `COUNTY_TZ`), and then:
//!
//! ```text
//! let period = Period::month(2026, 11, COUNTY_TZ)?;
//! let selection = Selection::new(&store.regions()?, &scope)?;
//! let counts = store.report_counts(&selection.village_ids(), &period.spans()?)?;
//! let report = Report::build(&selection, &period, &counts);
//! html::monthly_in(&report, now_ms, lang) | csv::villages_in(&report, lang) | svg::daily_outcomes(…)
//! ```
//!
//! The store aggregates in SQL (one row per village and day, one per village
//! for live sessions); everything here is pure and reads no clock. The
//! schema needs nothing new: each day's query is a range scan of the
//! existing `play_events (village_id, scheduled_ms)` index, and a county
//! month over a year of logs takes 50–80 ms (`cargo bench -p
//! dalaba-controller --bench reports`; a covering index was tried there and
//! gained nothing, the time being SQLite's own aggregation).
//!
//! # What the figures mean
//! - **Scheduled** comes from the play events, not from planning the past
//!   again. The controller keeps no past plans (a desired state covers the
//!   next 7 days and only its version and digest are stored), and planning
//!   last month with today's schedules would count schedules edited or
//!   deleted since. Every occurrence an agent's plan held yields exactly one
//!   play event — completed, preempted, skipped, missed or failed; an agent
//!   that was down logs the items it slept through as missed when it starts
//!   — so the events are the honest record of what each village was due to
//!   play. Scheduled = played + preempted + missed + failed; skipped items
//!   were withdrawn on purpose and are not due.
//! - Their limit: an occurrence no agent reported is absent. A village with
//!   no agent, or whose board died for good, has no events and shows "no
//!   reports" (no compliance), never 0 % or 100 %; and a report of recent
//!   days grows as offline agents deliver their logs. Counts are per agent:
//!   a village with two boards counts each board's occurrences.
//! - **Played** is `completed`; **compliance** is played ÷ scheduled. A
//!   preempted item (a live or emergency broadcast took the loudspeaker and
//!   the item's window passed) is due but not played, and shown apart.
//! - **Amplifier not confirmed** counts items whose audio started while the
//!   amplifier driver never confirmed the relay on (`amplifier_confirmed`
//!   false). That is a fault where a relay board is fitted; a board set up
//!   with the `none` driver never confirms, so all its items count. Items
//!   that failed because of the amplifier (on longer than allowed) are in
//!   **failed**.
//! - **Live sessions**: sessions started in the period that targeted an
//!   agent of the village, and those in which it played any audio (as the
//!   live session report counts "played"). Above a village they add up to
//!   village-sessions.
//! - **Hours offline** count, for each village with an enrolled agent, the
//!   time from its first enrolment (or the period's start) to the period's
//!   end (or now, for the current period) in which none of its agents had a
//!   link up. The store keeps each link's interval (`agent_presence`,
//!   written on connect and disconnect, checkpointed every few minutes; a
//!   controller that crashed closes its open intervals at the last
//!   checkpoint when it starts, so a crash counts as offline from at most
//!   one checkpoint before it). Townships and the county add up their
//!   villages' hours; villages without an agent are not counted (`null`).
//!
//! # Layout
//! - `period`: [`Period`], whole county days, and each day's [`DaySpan`];
//! - `model`: [`Scope`], [`Selection`], the store's [`ReportCounts`] and the
//!   [`Report`] they add up to;
//! - [`svg`]: charts as SVG strings; [`csv`]: the per-village CSV export;
//!   [`html`]: the printable monthly page. Every text they write from the
//!   directory is escaped (names are operator input).

pub mod csv;
pub mod html;
mod markup;
mod model;
mod offline;
mod period;
pub mod svg;

#[cfg(test)]
mod tests;

use chrono::NaiveDate;
use thiserror::Error;

use crate::directory::Level;

pub use model::{
    Figures, LiveCounts, PlayCounts, Report, ReportCounts, Scope, ScopeKind, Selection, TownshipReport, VillageDay,
    VillageLive, VillageReport,
};
pub use offline::VillagePresence;
pub use period::{DaySpan, Period};

/// The language of a report's CSV header, page and chart labels
/// (`lang=zh|en`). Chinese (the default) keeps the English in parentheses
/// after each label, as printouts have always had; English has English
/// only. Names from the directory are shown as they are either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// 中文 (with English in parentheses).
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// `zh` or `en` by the language.
    pub fn pick<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

/// Why a report cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReportError {
    /// The period is empty, reversed or longer than [`Period::MAX_DAYS`].
    #[error("a report covers 1 to 366 days; {from} to {to} is not such a period")]
    BadPeriod {
        /// The first day asked for.
        from: NaiveDate,
        /// The day after the last, as asked for.
        to: NaiveDate,
    },
    /// No such calendar month.
    #[error("{year}-{month} is not a month")]
    BadMonth {
        /// The year asked for.
        year: i32,
        /// The month asked for (1–12 is valid).
        month: u32,
    },
    /// A day whose midnight the calendar cannot place.
    #[error("day {day} is out of range")]
    DayOutOfRange {
        /// The day.
        day: NaiveDate,
    },
    /// A scope named a region that is not a township (or village).
    #[error("region {id} is not a {}", level.as_str())]
    NotA {
        /// The level the scope needs.
        level: Level,
        /// The region asked for.
        id: i64,
        /// Its level, or `None` if it does not exist (a 404 rather than a 400).
        found: Option<Level>,
    },
}
