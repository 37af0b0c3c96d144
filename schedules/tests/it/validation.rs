//! Validation errors, as the operator reads them.

use chrono::Weekday;
use dalaba_schedules::{
    HumanRule, PlanError, QuietHours, QuietWindow, Recurrence, Schedule, TownshipQuietHours, occurrences, plan_village,
};

use crate::common::*;

/// Applies `change` to a valid schedule and expects `validate` to fail with `expected`.
fn check(change: impl FnOnce(&mut Schedule), expected: &str) {
    let mut s = schedule(7, daily(&["07:00"]), 60_000);
    change(&mut s);
    let error = s.validate().expect_err(expected);
    assert_eq!(error.to_string(), expected);
}

fn cron(s: &mut Schedule, expression: &str) {
    s.recurrence = Recurrence::Cron(expression.to_owned());
}

fn rule(s: &mut Schedule, rule: HumanRule) {
    s.recurrence = Recurrence::Rule(rule);
}

#[test]
fn validation_table() {
    check(
        |s| cron(s, "0 7 * * MON-FRI"),
        "invalid cron expression '0 7 * * MON-FRI': it has 5 fields, but this cron starts with seconds \
         (write '0 0 7 * * MON-FRI')",
    );
    check(
        |s| cron(s, "0 0 7 * * 1-5"),
        "invalid cron expression '0 0 7 * * 1-5': write the day of week as names such as MON-FRI; \
         numbers are ambiguous (here 1 is Sunday)",
    );
    check(|s| cron(s, "* * * * * *"), "the recurrence fires 86400 times a day; at most 1440 are allowed");
    check(|s| rule(s, HumanRule::Daily { times: vec![] }), "the rule needs at least one time of day");
    check(
        |s| rule(s, HumanRule::Daily { times: times(&["07:00:00.5"]) }),
        "the time of day 07:00:00.500 has a fraction of a second; use whole seconds",
    );
    check(
        |s| rule(s, HumanRule::Weekly { days: vec![], times: times(&["07:00"]) }),
        "the rule needs at least one day of the week",
    );
    check(
        |s| {
            rule(
                s,
                HumanRule::EveryNWeeks {
                    every: 0,
                    anchor: "2025-01-06".parse().unwrap(),
                    days: vec![Weekday::Mon],
                    times: times(&["07:00"]),
                },
            )
        },
        "'every 0 weeks' is out of range: choose 1 to 52",
    );
    check(
        |s| rule(s, HumanRule::MonthDay { day: 32, times: times(&["07:00"]) }),
        "day 32 of the month does not exist: choose 1 to 31",
    );
    check(
        |s| s.timezone = "Asia/Beijing".to_owned(),
        "unknown time zone 'Asia/Beijing' (use an IANA name such as Asia/Shanghai)",
    );
    check(|s| s.name = "  ".to_owned(), "a schedule needs a name");
    check(|s| s.playlist.clear(), "the playlist is empty: add at least one content item");
    check(|s| s.playlist[0].content.duration_ms = 0, "content 'notice 7' has no duration");
    check(
        |s| s.playlist[0].content.sha256 = "ABC".to_owned(),
        "content 'notice 7' has an invalid SHA-256 'ABC' (64 lowercase hex digits expected)",
    );
    check(|s| s.playlist[0].repeats = 100, "content 'notice 7' repeats 100 times; at most 99 are allowed");
    check(
        |s| s.playlist[0].content.duration_ms = 25 * 3_600_000,
        "the playlist lasts 90000000 ms; at most 86400000 ms (24 hours) are allowed",
    );
    check(
        |s| s.max_delay_ms = 86_400_001,
        "the maximum delay is 86400001 ms; at most 86400000 ms (24 hours) are allowed",
    );
    check(
        |s| s.targets = Default::default(),
        "a schedule needs at least one target (the county, a township, a village or a tag)",
    );
    check(
        |s| {
            s.valid_from = Some("2025-03-02".parse().unwrap());
            s.valid_until = Some("2025-03-01".parse().unwrap());
        },
        "the validity window ends (2025-03-01) before it starts (2025-03-02)",
    );
    check(|s| s.volume = 101, "volume 101 is out of range: choose 0 to 100");
}

#[test]
fn unparsable_cron_keeps_the_parsers_cause() {
    let mut s = schedule(7, daily(&["07:00"]), 60_000);
    cron(&mut s, "0 0 25 * * *");
    let error = s.validate().unwrap_err();
    assert!(error.to_string().starts_with("invalid cron expression '0 0 25 * * *': "), "{error}");
    assert!(std::error::Error::source(&error).is_some(), "the cron crate's error is kept as the source");
    let from = at(SHANGHAI, "2025-03-01 00:00");
    assert!(occurrences(&s, from, from).is_err(), "occurrences refuses an invalid schedule");
}

#[test]
fn planning_names_the_bad_schedule_and_refuses_duplicate_ids() {
    let good = schedule(1, daily(&["07:00"]), 60_000);
    let mut bad = schedule(2, daily(&["07:00"]), 60_000);
    bad.targets = Default::default();
    let (from, to) = (at(SHANGHAI, "2025-03-01 00:00"), at(SHANGHAI, "2025-03-02 00:00"));
    let v = village(1, 1, &[]);
    let error = plan_village(&v, &[good.clone(), bad], &QuietHours::none(), from, to).unwrap_err();
    assert_eq!(
        error.to_string(),
        "schedule 2: a schedule needs at least one target (the county, a township, a village or a tag)"
    );
    let error = plan_village(&v, &[good.clone(), good], &QuietHours::none(), from, to).unwrap_err();
    assert!(matches!(error, PlanError::DuplicateSchedule { id: 1 }), "{error}");
}

#[test]
fn quiet_hours_validation() {
    let window = |start: &str, end: &str| QuietWindow { start: start.parse().unwrap(), end: end.parse().unwrap() };
    let check = |quiet: QuietHours, expected: &str| assert_eq!(quiet.validate().unwrap_err().to_string(), expected);
    check(
        QuietHours { timezone: "Mars/Olympus".to_owned(), ..QuietHours::none() },
        "unknown time zone 'Mars/Olympus' for quiet hours (use an IANA name such as Asia/Shanghai)",
    );
    check(
        QuietHours { county: vec![window("22:00", "22:00")], ..QuietHours::none() },
        "quiet hours from 22:00:00 to 22:00:00 are ambiguous: a window must start and end at different times",
    );
    let township = TownshipQuietHours { township_id: 4, windows: vec![window("22:00", "06:00")] };
    check(
        QuietHours { townships: vec![township.clone(), township], ..QuietHours::none() },
        "township 4 has quiet hours twice",
    );
    QuietHours { county: vec![window("22:00", "06:30")], ..QuietHours::none() }.validate().unwrap();
}
