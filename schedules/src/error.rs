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

impl ScheduleError {
    /// A stable name for the refusal, for a console to word it in the
    /// operator's language (the message itself is English).
    pub fn code(&self) -> &'static str {
        match self {
            ScheduleError::InvalidCron { .. } => "invalid_cron",
            ScheduleError::CronFiveFields { .. } => "cron_five_fields",
            ScheduleError::CronNumericWeekday { .. } => "cron_numeric_weekday",
            ScheduleError::TooFrequent { .. } => "too_frequent",
            ScheduleError::NoTimes => "no_times",
            ScheduleError::TooManyTimes { .. } => "too_many_times",
            ScheduleError::FractionalTime { .. } => "fractional_time",
            ScheduleError::NoWeekdays => "no_weekdays",
            ScheduleError::InvalidEvery { .. } => "invalid_every",
            ScheduleError::InvalidMonthDay { .. } => "invalid_month_day",
            ScheduleError::UnknownTimeZone { .. } => "unknown_time_zone",
            ScheduleError::NoName => "no_name",
            ScheduleError::EmptyPlaylist => "empty_playlist",
            ScheduleError::ZeroDuration { .. } => "zero_duration",
            ScheduleError::InvalidSha256 { .. } => "invalid_sha256",
            ScheduleError::TooManyRepeats { .. } => "too_many_repeats",
            ScheduleError::TooLong { .. } => "too_long",
            ScheduleError::DelayTooLong { .. } => "delay_too_long",
            ScheduleError::NoTargets => "no_targets",
            ScheduleError::ValidityReversed { .. } => "validity_reversed",
            ScheduleError::VolumeOutOfRange { .. } => "volume_out_of_range",
        }
    }

    /// The values the refusal names, with the limit it broke where there is
    /// one (`max`), for the console's wording of [`ScheduleError::code`].
    pub fn params(&self) -> Vec<(&'static str, String)> {
        match self {
            ScheduleError::InvalidCron { expression, .. }
            | ScheduleError::CronFiveFields { expression }
            | ScheduleError::CronNumericWeekday { expression } => vec![("expression", expression.clone())],
            ScheduleError::TooFrequent { per_day } => {
                vec![("per_day", per_day.to_string()), ("max", MAX_FIRINGS_PER_DAY.to_string())]
            }
            ScheduleError::TooManyTimes { count } => {
                vec![("count", count.to_string()), ("max", MAX_TIMES_PER_DAY.to_string())]
            }
            ScheduleError::FractionalTime { time } => vec![("time", time.to_string())],
            ScheduleError::InvalidEvery { every } => {
                vec![("every", every.to_string()), ("max", MAX_EVERY_WEEKS.to_string())]
            }
            ScheduleError::InvalidMonthDay { day } => vec![("day", day.to_string())],
            ScheduleError::UnknownTimeZone { name } => vec![("name", name.clone())],
            ScheduleError::ZeroDuration { title } => vec![("title", title.clone())],
            ScheduleError::InvalidSha256 { title, sha256 } => {
                vec![("title", title.clone()), ("sha256", sha256.clone())]
            }
            ScheduleError::TooManyRepeats { title, repeats } => {
                vec![("title", title.clone()), ("repeats", repeats.to_string()), ("max", MAX_REPEATS.to_string())]
            }
            ScheduleError::TooLong { duration_ms } => {
                vec![("duration_ms", duration_ms.to_string()), ("max", MAX_DURATION_MS.to_string())]
            }
            ScheduleError::DelayTooLong { max_delay_ms } => {
                vec![("max_delay_ms", max_delay_ms.to_string()), ("max", MAX_DELAY_MS.to_string())]
            }
            ScheduleError::ValidityReversed { from, until } => {
                vec![("from", from.to_string()), ("until", until.to_string())]
            }
            ScheduleError::VolumeOutOfRange { volume } => vec![("volume", volume.to_string())],
            ScheduleError::NoTimes
            | ScheduleError::NoWeekdays
            | ScheduleError::NoName
            | ScheduleError::EmptyPlaylist
            | ScheduleError::NoTargets => Vec::new(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_a_stable_code_and_the_values_it_names() {
        let frequent = ScheduleError::TooFrequent { per_day: 200 };
        assert_eq!(frequent.code(), "too_frequent");
        assert_eq!(frequent.params(), [("per_day", "200".to_string()), ("max", MAX_FIRINGS_PER_DAY.to_string())]);
        let from = NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
        let until = NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
        let reversed = ScheduleError::ValidityReversed { from, until };
        assert_eq!(reversed.code(), "validity_reversed");
        assert_eq!(reversed.params(), [("from", "2026-12-01".to_string()), ("until", "2026-11-01".to_string())]);
        assert_eq!(ScheduleError::NoName.code(), "no_name");
        assert!(ScheduleError::NoName.params().is_empty());
        let five = ScheduleError::CronFiveFields { expression: "0 8 * * *".into() };
        assert_eq!((five.code(), five.params()), ("cron_five_fields", vec![("expression", "0 8 * * *".to_string())]));
    }
}
