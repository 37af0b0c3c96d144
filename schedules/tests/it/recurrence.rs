//! Occurrences of recurrence rules and cron expressions: month ends, leap
//! years, midnight, DST gaps and repeats, validity windows.

use chrono::{NaiveDate, Weekday};
use dalaba_schedules::{HumanRule, Recurrence, Schedule, occurrences};

use crate::common::*;

/// Occurrences of `recurrence` in `zone_name` between two local times, as local times.
fn check(recurrence: Recurrence, zone_name: &str, window: (&str, &str), expected: &[&str]) {
    let mut s = schedule(1, recurrence, 60_000);
    s.timezone = zone_name.to_owned();
    check_schedule(&s, window, expected);
}

fn check_schedule(s: &Schedule, (from, to): (&str, &str), expected: &[&str]) {
    let found = occurrences(s, at(&s.timezone, from), at(&s.timezone, to)).unwrap();
    let found: Vec<String> = found.iter().map(|o| local(&s.timezone, o.start)).collect();
    assert_eq!(found, expected, "{:?} in {} from {from} to {to}", s.recurrence, s.timezone);
}

fn rule(rule: HumanRule) -> Recurrence {
    Recurrence::Rule(rule)
}

fn cron(expression: &str) -> Recurrence {
    Recurrence::Cron(expression.to_owned())
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

#[test]
fn daily_times_across_a_month_end() {
    check(
        daily(&["07:00", "12:00", "18:30"]),
        SHANGHAI,
        ("2025-01-30 12:00", "2025-02-01 12:00"),
        &[
            "2025-01-30 12:00",
            "2025-01-30 18:30",
            "2025-01-31 07:00",
            "2025-01-31 12:00",
            "2025-01-31 18:30",
            "2025-02-01 07:00",
        ],
    );
}

#[test]
fn human_rules_table() {
    let weekdays = rule(HumanRule::Weekdays { times: times(&["07:00"]) });
    check(
        weekdays,
        SHANGHAI,
        ("2025-01-31 00:00", "2025-02-05 00:00"),
        &["2025-01-31 07:00", "2025-02-03 07:00", "2025-02-04 07:00"],
    );
    let weekend = rule(HumanRule::Weekly { days: vec![Weekday::Sat, Weekday::Sun], times: times(&["09:30"]) });
    check(
        weekend,
        SHANGHAI,
        ("2025-01-31 00:00", "2025-02-10 00:00"),
        &["2025-02-01 09:30", "2025-02-02 09:30", "2025-02-08 09:30", "2025-02-09 09:30"],
    );
    let fortnightly = rule(HumanRule::EveryNWeeks {
        every: 2,
        anchor: date("2025-01-06"),
        days: vec![Weekday::Mon],
        times: times(&["08:00"]),
    });
    check(
        fortnightly,
        SHANGHAI,
        ("2024-12-01 00:00", "2025-02-10 00:00"),
        &["2025-01-06 08:00", "2025-01-20 08:00", "2025-02-03 08:00"],
    );
    // Duplicate and unsorted times fire once each, in order.
    check(
        daily(&["18:00", "07:00", "18:00"]),
        SHANGHAI,
        ("2025-03-01 00:00", "2025-03-02 00:00"),
        &["2025-03-01 07:00", "2025-03-01 18:00"],
    );
}

#[test]
fn day_31_skips_shorter_months() {
    check(
        rule(HumanRule::MonthDay { day: 31, times: times(&["10:00"]) }),
        SHANGHAI,
        ("2025-01-01 00:00", "2025-09-01 00:00"),
        &["2025-01-31 10:00", "2025-03-31 10:00", "2025-05-31 10:00", "2025-07-31 10:00", "2025-08-31 10:00"],
    );
}

#[test]
fn day_29_fires_in_february_of_leap_years_only() {
    let day_29 = || rule(HumanRule::MonthDay { day: 29, times: times(&["10:00"]) });
    check(
        day_29(),
        SHANGHAI,
        ("2024-01-15 00:00", "2024-04-01 00:00"),
        &["2024-01-29 10:00", "2024-02-29 10:00", "2024-03-29 10:00"],
    );
    check(day_29(), SHANGHAI, ("2025-01-15 00:00", "2025-04-01 00:00"), &["2025-01-29 10:00", "2025-03-29 10:00"]);
    check(
        cron("0 0 12 29 FEB *"),
        SHANGHAI,
        ("2023-01-01 00:00", "2029-01-01 00:00"),
        &["2024-02-29 12:00", "2028-02-29 12:00"],
    );
}

#[test]
fn cron_table() {
    check(
        cron("0 0 7 * * MON-FRI"),
        SHANGHAI,
        ("2025-01-31 00:00", "2025-02-04 00:00"),
        &["2025-01-31 07:00", "2025-02-03 07:00"],
    );
    check(
        cron("0 0,30 7 * * SAT"),
        SHANGHAI,
        ("2025-02-01 00:00", "2025-02-02 00:00"),
        &["2025-02-01 07:00", "2025-02-01 07:30"],
    );
    check(
        cron("30 15 6 1 * * 2026"),
        SHANGHAI,
        ("2025-12-01 00:00", "2026-03-01 06:00"),
        &["2026-01-01 06:15:30", "2026-02-01 06:15:30"],
    );
    check(
        cron("@daily"),
        SHANGHAI,
        ("2025-02-27 12:00", "2025-03-01 12:00"),
        &["2025-02-28 00:00", "2025-03-01 00:00"],
    );
    // Both day fields restricted: a day must match both (Friday the 13th).
    check(cron("0 0 9 13 * FRI"), SHANGHAI, ("2025-01-01 00:00", "2026-01-01 00:00"), &["2025-06-13 09:00"]);
}

#[test]
fn the_query_window_is_half_open() {
    check(daily(&["07:00", "12:00"]), SHANGHAI, ("2025-03-01 07:00", "2025-03-01 12:00"), &["2025-03-01 07:00"]);
}

#[test]
fn local_midnight_is_the_previous_day_in_utc() {
    let s = schedule(1, daily(&["00:30"]), 60_000);
    let found = occurrences(&s, utc("2025-02-28T00:00:00Z"), utc("2025-03-01T00:00:00Z")).unwrap();
    assert_eq!(found.iter().map(|o| o.start.to_rfc3339()).collect::<Vec<_>>(), ["2025-02-28T16:30:00+00:00"]);
    assert_eq!(found[0].local_time.to_string(), "2025-03-01 00:30:00");
}

#[test]
fn validity_dates_are_local_and_inclusive() {
    let mut s = schedule(1, daily(&["00:30", "23:30"]), 60_000);
    s.valid_from = Some(date("2025-02-01"));
    s.valid_until = Some(date("2025-02-02"));
    check_schedule(
        &s,
        ("2025-01-30 00:00", "2025-02-05 00:00"),
        &["2025-02-01 00:30", "2025-02-01 23:30", "2025-02-02 00:30", "2025-02-02 23:30"],
    );
}

#[test]
fn dst_gap_moves_to_the_end_of_the_gap() {
    // Berlin: 2025-03-30 02:00 CET → 03:00 CEST.
    check(
        daily(&["02:30"]),
        "Europe/Berlin",
        ("2025-03-29 00:00", "2025-04-01 00:00"),
        &["2025-03-29 02:30", "2025-03-30 03:00", "2025-03-31 02:30"],
    );
    // New York: 2025-03-09 02:00 EST → 03:00 EDT. Four times inside the gap fire once, with 03:00 itself.
    check(
        cron("0 0/15 2,3 * * *"),
        "America/New_York",
        ("2025-03-09 00:00", "2025-03-09 04:00"),
        &["2025-03-09 03:00", "2025-03-09 03:15", "2025-03-09 03:30", "2025-03-09 03:45"],
    );
}

#[test]
fn dst_repeat_fires_once_the_first_time() {
    // Berlin: 2025-10-26 03:00 CEST → 02:00 CET; 02:30 happens twice.
    let s = {
        let mut s = schedule(1, daily(&["02:30"]), 60_000);
        s.timezone = "Europe/Berlin".to_owned();
        s
    };
    let found = occurrences(&s, utc("2025-10-25T00:00:00Z"), utc("2025-10-27T12:00:00Z")).unwrap();
    let starts: Vec<String> = found.iter().map(|o| o.start.to_rfc3339()).collect();
    assert_eq!(starts, ["2025-10-25T00:30:00+00:00", "2025-10-26T00:30:00+00:00", "2025-10-27T01:30:00+00:00"]);
    check(
        cron("0 30 1 * * *"),
        "America/New_York",
        ("2025-11-01 12:00", "2025-11-03 12:00"),
        &["2025-11-02 01:30", "2025-11-03 01:30"],
    );
}

#[test]
fn occurrence_end_is_start_plus_the_playlist() {
    let mut s = schedule(1, daily(&["07:00"]), 90_000);
    s.playlist[0].repeats = 2;
    s.gap_ms = 5_000;
    assert_eq!(s.duration_ms(), 3 * 90_000 + 2 * 5_000);
    let found = occurrences(&s, at(SHANGHAI, "2025-03-01 00:00"), at(SHANGHAI, "2025-03-02 00:00")).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].end - found[0].start).num_milliseconds(), 280_000);
}

#[test]
fn schedule_json_from_the_ui_takes_defaults() {
    let json = r#"{
        "id": 7, "name": "交通安全", "volume": 70,
        "playlist": [{"content": {"sha256": "00000000000000000000000000000000000000000000000000000000000000ab",
                                  "duration_ms": 60000, "title": "交通安全提示"}}],
        "recurrence": {"rule": {"kind": "weekdays", "times": ["07:00", "18:30"]}},
        "targets": {"townships": [3]}
    }"#;
    let s: Schedule = serde_json::from_str(json).unwrap();
    assert_eq!(s.timezone, "Asia/Shanghai");
    assert_eq!(s.priority, dalaba_schedules::priority::Priority::Scheduled);
    assert_eq!((s.gap_ms, s.max_delay_ms, s.playlist[0].repeats), (0, 0, 0));
    s.validate().unwrap();
    let back: Schedule = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
    let cron: Recurrence = serde_json::from_str(r#"{"cron": "0 0 7 * * MON-FRI"}"#).unwrap();
    assert_eq!(cron, Recurrence::Cron("0 0 7 * * MON-FRI".to_owned()));
}
