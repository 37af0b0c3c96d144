//! Recurrences: cron expressions with seconds, and the human rules the UI
//! offers (daily, weekdays, chosen weekdays, every N weeks, a day of the
//! month).
//!
//! Both are compiled to the same shape — "does it fire on this local date?"
//! plus the sorted times of day — and evaluated on wall-clock dates, so the
//! time-zone policy in [`crate::zone`] applies to both alike. The cron crate
//! parses and validates; its own iterator is not used because it skips
//! firings in a DST gap and fires twice in a repeated hour.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, NaiveTime, Timelike, Weekday};
use cron::TimeUnitSpec;
use serde::{Deserialize, Serialize};

use crate::error::ScheduleError;

/// The most times a recurrence may fire on one day (once a minute).
pub const MAX_FIRINGS_PER_DAY: u64 = 1440;
/// The most times of day a human rule may list.
pub const MAX_TIMES_PER_DAY: usize = 96;
/// The largest N in "every N weeks".
pub const MAX_EVERY_WEEKS: u32 = 52;

/// When a schedule fires, in its own time zone.
///
/// JSON: `{"cron": "0 0 7 * * MON-FRI"}` or `{"rule": {"kind": "daily", "times": ["07:00:00"]}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recurrence {
    /// A cron expression with seconds first: `sec min hour day-of-month month day-of-week [year]`.
    ///
    /// Five-field crontab lines are refused with an error that shows the
    /// fix (prepend `0 `) rather than silently accepted, and the day of
    /// week must be written with names (`MON-FRI`): in this cron dialect
    /// `1` is Sunday, so `1-5` would quietly mean Sunday to Thursday. When
    /// both day fields are restricted a day must match both (the cron
    /// crate's rule, unlike Vixie cron's "either"). `L`, `W` and `#` are
    /// not supported.
    Cron(String),
    /// A rule from the UI's form.
    Rule(HumanRule),
}

/// The recurrences an operator picks from a form; [`HumanRule::to_cron`]
/// shows the cron equivalent where one exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HumanRule {
    /// Every day at the given times.
    Daily {
        /// Times of day, in the schedule's zone.
        times: Vec<NaiveTime>,
    },
    /// Monday to Friday at the given times.
    Weekdays {
        /// Times of day, in the schedule's zone.
        times: Vec<NaiveTime>,
    },
    /// The chosen days of the week at the given times.
    Weekly {
        /// Days of the week.
        days: Vec<Weekday>,
        /// Times of day, in the schedule's zone.
        times: Vec<NaiveTime>,
    },
    /// The chosen days of every N-th week, counting Monday-based weeks from
    /// the week that holds `anchor` (week 0 fires). Days before `anchor`
    /// never fire, even in its week.
    EveryNWeeks {
        /// N, from 1 to [`MAX_EVERY_WEEKS`].
        every: u32,
        /// The first day the rule may fire; its week is week 0.
        anchor: NaiveDate,
        /// Days of the week.
        days: Vec<Weekday>,
        /// Times of day, in the schedule's zone.
        times: Vec<NaiveTime>,
    },
    /// Day `day` of every month at the given times. Months without that
    /// day (the 31st in April, the 30th in February) are skipped, not moved
    /// to the month's last day.
    MonthDay {
        /// Day of the month, 1 to 31.
        day: u32,
        /// Times of day, in the schedule's zone.
        times: Vec<NaiveTime>,
    },
}

/// A recurrence ready to evaluate: the days it fires on and the times of day.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    days: Days,
    /// Sorted, without duplicates, whole seconds.
    times: Vec<NaiveTime>,
}

#[derive(Debug, Clone)]
enum Days {
    All,
    /// Bit `n` set: fires on the day `n` days after Monday.
    Weekdays(u8),
    EveryNWeeks {
        every: u32,
        anchor: NaiveDate,
        mask: u8,
    },
    MonthDay(u32),
    Cron(Box<cron::Schedule>),
}

impl Recurrence {
    /// Checks the recurrence without evaluating it.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        self.compile().map(drop)
    }

    pub(crate) fn compile(&self) -> Result<Compiled, ScheduleError> {
        match self {
            Recurrence::Cron(expression) => compile_cron(expression),
            Recurrence::Rule(rule) => rule.compile(),
        }
    }
}

impl HumanRule {
    /// The cron lines (seconds first) that together fire exactly when this
    /// rule does, one line per distinct minute and second; `None` for
    /// [`HumanRule::EveryNWeeks`] (cron has no anchor week) and for an
    /// invalid rule.
    pub fn to_cron(&self) -> Option<Vec<String>> {
        let compiled = self.compile().ok()?;
        let (day_of_month, day_of_week) = match self {
            HumanRule::Daily { .. } => ("*".to_owned(), "*".to_owned()),
            HumanRule::Weekdays { .. } => ("*".to_owned(), "MON-FRI".to_owned()),
            HumanRule::Weekly { days, .. } => ("*".to_owned(), day_names(days)),
            HumanRule::EveryNWeeks { .. } => return None,
            HumanRule::MonthDay { day, .. } => (day.to_string(), "*".to_owned()),
        };
        let mut hours_by_minute: BTreeMap<(u32, u32), BTreeSet<u32>> = BTreeMap::new();
        for time in &compiled.times {
            hours_by_minute.entry((time.minute(), time.second())).or_default().insert(time.hour());
        }
        let lines = hours_by_minute
            .into_iter()
            .map(|((minute, second), hours)| {
                let hours: Vec<String> = hours.iter().map(u32::to_string).collect();
                format!("{second} {minute} {} {day_of_month} * {day_of_week}", hours.join(","))
            })
            .collect();
        Some(lines)
    }

    fn compile(&self) -> Result<Compiled, ScheduleError> {
        let (days, times) = match self {
            HumanRule::Daily { times } => (Days::All, times),
            HumanRule::Weekdays { times } => (Days::Weekdays(0b1_1111), times),
            HumanRule::Weekly { days, times } => (Days::Weekdays(weekday_mask(days)?), times),
            HumanRule::EveryNWeeks { every, anchor, days, times } => {
                if !(1..=MAX_EVERY_WEEKS).contains(every) {
                    return Err(ScheduleError::InvalidEvery { every: *every });
                }
                (Days::EveryNWeeks { every: *every, anchor: *anchor, mask: weekday_mask(days)? }, times)
            }
            HumanRule::MonthDay { day, times } => {
                if !(1..=31).contains(day) {
                    return Err(ScheduleError::InvalidMonthDay { day: *day });
                }
                (Days::MonthDay(*day), times)
            }
        };
        Ok(Compiled { days, times: normalise_times(times)? })
    }
}

impl Compiled {
    /// Whether the recurrence fires on this local date.
    pub(crate) fn fires_on(&self, date: NaiveDate) -> bool {
        match &self.days {
            Days::All => true,
            Days::Weekdays(mask) => mask & weekday_bit(date.weekday()) != 0,
            Days::EveryNWeeks { every, anchor, mask } => {
                let weeks = (week_start(date) - week_start(*anchor)) / 7;
                date >= *anchor && mask & weekday_bit(date.weekday()) != 0 && weeks % i64::from(*every) == 0
            }
            Days::MonthDay(day) => date.day() == *day,
            Days::Cron(schedule) => {
                u32::try_from(date.year()).is_ok_and(|year| schedule.years().includes(year))
                    && schedule.months().includes(date.month())
                    && schedule.days_of_month().includes(date.day())
                    && schedule.days_of_week().includes(date.weekday().number_from_sunday())
            }
        }
    }

    /// The times of day it fires at, sorted.
    pub(crate) fn times(&self) -> &[NaiveTime] {
        &self.times
    }
}

fn compile_cron(expression: &str) -> Result<Compiled, ScheduleError> {
    let trimmed = expression.trim();
    // Shorthands such as `@daily` are passed to the parser as they are.
    if !trimmed.starts_with('@') {
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        if fields.len() == 5 {
            return Err(ScheduleError::CronFiveFields { expression: expression.to_owned() });
        }
        if fields.get(5).is_some_and(|day_of_week| day_of_week.bytes().any(|b| b.is_ascii_digit())) {
            return Err(ScheduleError::CronNumericWeekday { expression: expression.to_owned() });
        }
    }
    let schedule = cron::Schedule::from_str(trimmed)
        .map_err(|source| ScheduleError::InvalidCron { expression: expression.to_owned(), source })?;
    let per_day = u64::from(schedule.hours().count())
        * u64::from(schedule.minutes().count())
        * u64::from(schedule.seconds().count());
    if per_day > MAX_FIRINGS_PER_DAY {
        return Err(ScheduleError::TooFrequent { per_day });
    }
    let mut times = Vec::new();
    for hour in schedule.hours().iter() {
        for minute in schedule.minutes().iter() {
            times.extend(schedule.seconds().iter().filter_map(|second| NaiveTime::from_hms_opt(hour, minute, second)));
        }
    }
    Ok(Compiled { days: Days::Cron(Box::new(schedule)), times })
}

fn normalise_times(times: &[NaiveTime]) -> Result<Vec<NaiveTime>, ScheduleError> {
    if times.is_empty() {
        return Err(ScheduleError::NoTimes);
    }
    if times.len() > MAX_TIMES_PER_DAY {
        return Err(ScheduleError::TooManyTimes { count: times.len() });
    }
    if let Some(time) = times.iter().find(|t| t.nanosecond() != 0) {
        return Err(ScheduleError::FractionalTime { time: *time });
    }
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    Ok(sorted)
}

fn weekday_mask(days: &[Weekday]) -> Result<u8, ScheduleError> {
    match days.iter().fold(0, |mask, day| mask | weekday_bit(*day)) {
        0 => Err(ScheduleError::NoWeekdays),
        mask => Ok(mask),
    }
}

fn weekday_bit(day: Weekday) -> u8 {
    1 << day.num_days_from_monday()
}

/// The day number (from the common era) of the Monday that starts `date`'s week.
fn week_start(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce()) - i64::from(date.weekday().num_days_from_monday())
}

fn day_names(days: &[Weekday]) -> String {
    let mut sorted = days.to_vec();
    sorted.sort_by_key(|d| d.num_days_from_monday());
    sorted.dedup();
    let names: Vec<String> = sorted.iter().map(|d| d.to_string().to_uppercase()).collect();
    names.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveTime {
        s.parse().unwrap()
    }

    fn check_to_cron(rule: HumanRule, expected: Option<&[&str]>) {
        let expected = expected.map(|lines| lines.iter().map(|l| l.to_string()).collect::<Vec<_>>());
        assert_eq!(rule.to_cron(), expected, "{rule:?}");
    }

    #[test]
    fn to_cron_table() {
        check_to_cron(
            HumanRule::Daily { times: vec![t("07:00"), t("12:00"), t("18:30")] },
            Some(&["0 0 7,12 * * *", "0 30 18 * * *"]),
        );
        check_to_cron(HumanRule::Weekdays { times: vec![t("08:15:30")] }, Some(&["30 15 8 * * MON-FRI"]));
        check_to_cron(
            HumanRule::Weekly { days: vec![Weekday::Sat, Weekday::Mon, Weekday::Mon], times: vec![t("09:00")] },
            Some(&["0 0 9 * * MON,SAT"]),
        );
        check_to_cron(HumanRule::MonthDay { day: 31, times: vec![t("10:00")] }, Some(&["0 0 10 31 * *"]));
        check_to_cron(
            HumanRule::EveryNWeeks {
                every: 2,
                anchor: NaiveDate::from_ymd_opt(2025, 1, 6).unwrap(),
                days: vec![Weekday::Mon],
                times: vec![t("09:00")],
            },
            None,
        );
        check_to_cron(HumanRule::Daily { times: vec![] }, None);
    }

    #[test]
    fn every_n_weeks_counts_monday_weeks_from_the_anchor() {
        let rule = HumanRule::EveryNWeeks {
            every: 2,
            // A Wednesday: the Monday of its week is before the anchor and does not fire.
            anchor: NaiveDate::from_ymd_opt(2025, 1, 8).unwrap(),
            days: vec![Weekday::Mon, Weekday::Fri],
            times: vec![t("09:00")],
        };
        let compiled = rule.compile().unwrap();
        let fired: Vec<String> = NaiveDate::from_ymd_opt(2025, 1, 1)
            .unwrap()
            .iter_days()
            .take(35)
            .filter(|d| compiled.fires_on(*d))
            .map(|d| d.to_string())
            .collect();
        assert_eq!(fired, ["2025-01-10", "2025-01-20", "2025-01-24", "2025-02-03"]);
    }

    #[test]
    fn cron_times_are_the_product_of_its_fields() {
        let compiled = compile_cron("0 0,30 7,18 * * *").unwrap();
        assert_eq!(compiled.times(), [t("07:00"), t("07:30"), t("18:00"), t("18:30")]);
    }
}
