//! Quiet hours: across midnight, per township, never for emergencies.

use dalaba_schedules::priority::Priority::{self, *};
use dalaba_schedules::{QuietHours, QuietWindow, Schedule, TownshipQuietHours, plan_village};

use crate::common::*;

fn window(start: &str, end: &str) -> QuietWindow {
    QuietWindow { start: start.parse().unwrap(), end: end.parse().unwrap() }
}

/// County 22:00–06:30; township 2 has its own 12:00–14:00 instead.
fn quiet() -> QuietHours {
    QuietHours {
        county: vec![window("22:00", "06:30")],
        townships: vec![TownshipQuietHours { township_id: 2, windows: vec![window("12:00", "14:00")] }],
        ..QuietHours::none()
    }
}

/// Plans a village of `township` from 2025-03-03 12:00 to 2025-03-04 12:00 (Shanghai).
fn check(township: i64, schedules: &[Schedule], expected: &[&str]) {
    let (from, to) = (at(SHANGHAI, "2025-03-03 12:00"), at(SHANGHAI, "2025-03-04 12:00"));
    let plan = plan_village(&village(1, township, &[]), schedules, &quiet(), from, to).unwrap();
    assert_eq!(render(&plan), expected, "township {township}");
}

fn s(id: i64, time: &str, minutes: u64, max_delay_minutes: u64, priority: Priority) -> Schedule {
    daily_at(id, time, minutes, max_delay_minutes, priority)
}

#[test]
fn quiet_hours_table() {
    // Ends inside the window with no delay allowed: skipped.
    check(1, &[s(1, "21:55", 10, 0, Scheduled)], &["skip #1 21:55 quiet"]);
    // Fits before the window: plays.
    check(1, &[s(1, "21:50", 10, 0, Scheduled)], &["21:50-22:00 #1"]);
    // Inside, across midnight, with a long enough delay: moved to 06:30.
    check(1, &[s(1, "23:00", 5, 8 * 60, Scheduled)], &["06:30-06:35 #1 moved 27000s"]);
    check(1, &[s(1, "01:00", 5, 6 * 60, Background)], &["06:30-06:35 #1 moved 19800s"]);
    check(1, &[s(1, "06:00", 5, 20, Scheduled)], &["skip #1 06:00 quiet"]);
    // Emergencies are never blocked.
    check(1, &[s(1, "23:00", 5, 0, Emergency)], &["23:00-23:05 #1"]);
    // Two moved items queue up after the window, the earlier nominal first.
    check(
        1,
        &[s(1, "06:00", 5, 60, Scheduled), s(2, "23:00", 5, 8 * 60, Scheduled)],
        &["06:30-06:35 #2 moved 27000s", "06:35-06:40 #1 moved 2100s"],
    );
    // An emergency in the morning still pushes a moved notice.
    check(
        1,
        &[s(1, "06:30", 10, 0, Emergency), s(2, "23:00", 5, 8 * 60, Scheduled)],
        &["06:30-06:40 #1", "06:40-06:45 #2 moved 27600s"],
    );
}

#[test]
fn a_township_uses_its_own_quiet_hours() {
    let schedules = [s(1, "23:00", 5, 0, Scheduled), s(2, "12:30", 5, 120, Scheduled)];
    check(2, &schedules, &["14:00-14:05 #2 moved 5400s", "23:00-23:05 #1"]);
    check(1, &schedules, &["12:30-12:35 #2", "skip #1 23:00 quiet"]);
}

#[test]
fn no_quiet_hours_by_default() {
    check(1, &[], &[]);
    let plan = plan_village(
        &village(1, 1, &[]),
        &[s(1, "23:00", 5, 0, Scheduled)],
        &QuietHours::default(),
        at(SHANGHAI, "2025-03-03 12:00"),
        at(SHANGHAI, "2025-03-04 12:00"),
    )
    .unwrap();
    assert_eq!(render(&plan), ["23:00-23:05 #1"]);
}
