//! Errors, worded for the operator who typed the schedule.

use chrono::{NaiveDate, NaiveTime};
use thiserror::Error;

use crate::recurrence::{MAX_EVERY_WEEKS, MAX_FIRINGS_PER_DAY, MAX_TIMES_PER_DAY};
use crate::schedule::{MAX_DELAY_MS, MAX_DURATION_MS, MAX_REPEATS};

/// Why a schedule (or its recurrence) was refused.
#[derive(Debug, Error)]
pub enum ScheduleError {
    /// The cron crate could not parse the expression.
    #[error("invalid cron expression '{expression}': {source}")]
    InvalidCron {
        /// The expression as written.
        expression: String,
        /// The parser's complaint.
        #[source]
        source: cron::error::Error,
    },
    /// A classic five-field crontab line: our cron starts with seconds.
    #[error(
        "invalid cron expression '{expression}': it has 5 fields, but this cron starts with seconds \
         (write '0 {expression}')"
    )]
    CronFiveFields {
        /// The expression as written.
        expression: String,
    },
    /// A number in the day-of-week field, where 1 means Sunday (not Monday as in crontab).
    #[error(
        "invalid cron expression '{expression}': write the day of week as names such as MON-FRI; \
         numbers are ambiguous (here 1 is Sunday)"
    )]
    CronNumericWeekday {
        /// The expression as written.
        expression: String,
    },
    /// The recurrence fires more often than a loudspeaker schedule sensibly can.
    #[error("the recurrence fires {per_day} times a day; at most {MAX_FIRINGS_PER_DAY} are allowed")]
    TooFrequent {
        /// Firings per matching day.
        per_day: u64,
    },
    /// A human rule without times of day.
    #[error("the rule needs at least one time of day")]
    NoTimes,
    /// A human rule with too many times of day.
    #[error("the rule has {count} times of day; at most {MAX_TIMES_PER_DAY} are allowed")]
    TooManyTimes {
        /// How many were given.
        count: usize,
    },
    /// A time of day with a fraction of a second.
    #[error("the time of day {time} has a fraction of a second; use whole seconds")]
    FractionalTime {
        /// The offending time.
        time: NaiveTime,
    },
    /// A weekly rule without days.
    #[error("the rule needs at least one day of the week")]
    NoWeekdays,
    /// "Every N weeks" with N out of range.
    #[error("'every {every} weeks' is out of range: choose 1 to {MAX_EVERY_WEEKS}")]
    InvalidEvery {
        /// The N given.
        every: u32,
    },
    /// A day of the month that no month has.
    #[error("day {day} of the month does not exist: choose 1 to 31")]
    InvalidMonthDay {
        /// The day given.
        day: u32,
    },
    /// A time zone name that is not in the IANA database.
    #[error("unknown time zone '{name}' (use an IANA name such as Asia/Shanghai)")]
    UnknownTimeZone {
        /// The name given.
        name: String,
    },
    /// A schedule with an empty name.
    #[error("a schedule needs a name")]
    NoName,
    /// A schedule with nothing to play.
    #[error("the playlist is empty: add at least one content item")]
    EmptyPlaylist,
    /// A content item that lasts no time at all.
    #[error("content '{title}' has no duration")]
    ZeroDuration {
        /// The content's title.
        title: String,
    },
    /// A content reference whose hash is not a SHA-256 in lowercase hex.
    #[error("content '{title}' has an invalid SHA-256 '{sha256}' (64 lowercase hex digits expected)")]
    InvalidSha256 {
        /// The content's title.
        title: String,
        /// The hash given.
        sha256: String,
    },
    /// A content item repeated absurdly often.
    #[error("content '{title}' repeats {repeats} times; at most {MAX_REPEATS} are allowed")]
    TooManyRepeats {
        /// The content's title.
        title: String,
        /// The repeats given.
        repeats: u32,
    },
    /// A playlist longer than a day.
    #[error("the playlist lasts {duration_ms} ms; at most {MAX_DURATION_MS} ms (24 hours) are allowed")]
    TooLong {
        /// The playlist's duration, gaps included (saturated on overflow).
        duration_ms: u64,
    },
    /// A delay longer than a day.
    #[error("the maximum delay is {max_delay_ms} ms; at most {MAX_DELAY_MS} ms (24 hours) are allowed")]
    DelayTooLong {
        /// The delay given.
        max_delay_ms: u64,
    },
    /// A schedule that reaches no village.
    #[error("a schedule needs at least one target (the county, a township, a village or a tag)")]
    NoTargets,
    /// `valid_until` before `valid_from`.
    #[error("the validity window ends ({until}) before it starts ({from})")]
    ValidityReversed {
        /// First valid day.
        from: NaiveDate,
        /// Last valid day.
        until: NaiveDate,
    },
    /// A volume above 100 %.
    #[error("volume {volume} is out of range: choose 0 to 100")]
    VolumeOutOfRange {
        /// The volume given.
        volume: u8,
    },
}

/// Why quiet hours were refused.
#[derive(Debug, Error)]
pub enum QuietHoursError {
    /// A time zone name that is not in the IANA database.
    #[error("unknown time zone '{name}' for quiet hours (use an IANA name such as Asia/Shanghai)")]
    UnknownTimeZone {
        /// The name given.
        name: String,
    },
    /// A window that starts and ends at the same time (empty or all day: ambiguous).
    #[error("quiet hours from {start} to {start} are ambiguous: a window must start and end at different times")]
    EmptyWindow {
        /// The start (and end) given.
        start: NaiveTime,
    },
    /// Two entries for the same township.
    #[error("township {township_id} has quiet hours twice")]
    DuplicateTownship {
        /// The township's id.
        township_id: i64,
    },
}

/// Why a plan could not be made.
#[derive(Debug, Error)]
pub enum PlanError {
    /// One of the schedules is invalid.
    #[error("schedule {id}: {source}")]
    Schedule {
        /// The schedule's id.
        id: i64,
        /// What is wrong with it.
        #[source]
        source: ScheduleError,
    },
    /// Two schedules share an id, so their order would not be total.
    #[error("schedule {id} appears twice")]
    DuplicateSchedule {
        /// The repeated id.
        id: i64,
    },
    /// The quiet hours are invalid.
    #[error(transparent)]
    QuietHours(#[from] QuietHoursError),
}
