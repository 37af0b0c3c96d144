//! Pure schedule logic shared by the controller and the agents, so both
//! agree on what plays where and when.
//!
//! A [`Schedule`] is a playlist, a [`Recurrence`] (cron with seconds, or a
//! [`HumanRule`] from the UI's form) read in a time zone (default
//! Asia/Shanghai), a validity window of local dates, [`Targets`], a
//! [`Priority`](priority::Priority), a volume and a maximum delay. From a
//! set of schedules and the county's [`QuietHours`] this crate computes:
//! - [`occurrences`] of one schedule in a window, as UTC instants;
//! - the [`Plan`] of one village ([`plan_village`], or a [`Planner`] for
//!   many villages over the same window): items that never overlap, with
//!   conflicts resolved by priority — the lower or later one moves after the
//!   other if its maximum delay allows, otherwise it is skipped with a
//!   reason;
//! - the [`conflicts`] for the UI: which occurrence won over which, and
//!   what became of the loser.
//!
//! All types are plain serde data: the controller stores schedules as JSON
//! and sends plans to agents. Output is deterministic: the same input gives
//! the same output, whatever the order of the schedules.
//!
//! This crate never reads a clock, touches a socket or a file, or spawns a
//! task: "now" is always an argument (the window's `from`).
//!
//! # Layout
//! - [`priority`]: who may interrupt whom (DESIGN.md principle 6), and who
//!   respects quiet hours.
//! - `schedule`: [`Schedule`] and its parts, targeting ([`VillageInfo`]),
//!   validation.
//! - `recurrence`: [`Recurrence`], [`HumanRule`], cron checks, evaluation
//!   by local date.
//! - `zone`: wall-clock time to instant, with the DST policy (a time in a
//!   gap moves to the gap's end; a repeated time fires once, the first).
//! - `occurrence`: [`occurrences`].
//! - `quiet`: [`QuietHours`] per county or township.
//! - `plan`: [`Planner`], [`plan_village`], [`conflicts`] and the plan types.
//! - `error`: [`ScheduleError`], [`QuietHoursError`], [`PlanError`].

mod error;
mod occurrence;
mod plan;
pub mod priority;
mod quiet;
mod recurrence;
mod schedule;
mod zone;

pub use error::{PlanError, QuietHoursError, ScheduleError};
pub use occurrence::{Occurrence, occurrences};
pub use plan::{
    Conflict, OccurrenceRef, Outcome, Plan, PlannedItem, Planner, Play, SkipReason, Skipped, conflicts, plan_village,
};
pub use quiet::{QuietHours, QuietWindow, TownshipQuietHours};
pub use recurrence::{HumanRule, MAX_EVERY_WEEKS, MAX_FIRINGS_PER_DAY, MAX_TIMES_PER_DAY, Recurrence};
pub use schedule::{
    ContentRef, MAX_DELAY_MS, MAX_DURATION_MS, MAX_REPEATS, PlaylistItem, Schedule, Targets, VillageInfo,
};
pub use zone::DEFAULT_TIMEZONE;
