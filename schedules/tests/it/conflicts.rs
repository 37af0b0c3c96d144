//! Conflict resolution in a village's plan, and the conflict list for the UI.

use dalaba_schedules::priority::Priority::{self, *};
use dalaba_schedules::{
    Conflict, OccurrenceRef, Outcome, Planner, QuietHours, Schedule, Targets, conflicts, plan_village,
};

use crate::common::*;

const DAY: (&str, &str) = ("2025-03-03 00:00", "2025-03-04 00:00");

/// Plans village 1 (township 1, tag "market") over `window` (Shanghai) and compares the rendered plan.
fn check(schedules: &[Schedule], window: (&str, &str), expected: &[&str]) {
    let plan = plan_village(
        &village(1, 1, &["market"]),
        schedules,
        &QuietHours::none(),
        at(SHANGHAI, window.0),
        at(SHANGHAI, window.1),
    )
    .unwrap();
    assert_eq!(render(&plan), expected);
}

fn s(id: i64, time: &str, minutes: u64, max_delay_minutes: u64, priority: Priority) -> Schedule {
    daily_at(id, time, minutes, max_delay_minutes, priority)
}

#[test]
fn conflict_resolution_table() {
    // The lower priority moves after the higher one…
    check(
        &[s(1, "07:00", 5, 30, Background), s(2, "07:03", 5, 0, Scheduled)],
        DAY,
        &["07:03-07:08 #2", "07:08-07:13 #1 moved 480s"],
    );
    // …or is skipped when its delay does not reach that far.
    check(
        &[s(1, "07:00", 5, 1, Background), s(2, "07:03", 5, 0, Scheduled)],
        DAY,
        &["07:03-07:08 #2", "skip #1 07:00 conflict #2@07:03"],
    );
    // Equal priority: the earlier one keeps its slot.
    check(
        &[s(1, "07:05", 5, 10, Scheduled), s(2, "07:00", 10, 10, Scheduled)],
        DAY,
        &["07:00-07:10 #2", "07:10-07:15 #1 moved 300s"],
    );
    // Equal priority and start: the lower id keeps it, whatever the input order.
    check(
        &[s(5, "07:00", 5, 10, Scheduled), s(3, "07:00", 5, 10, Scheduled)],
        DAY,
        &["07:00-07:05 #3", "07:05-07:10 #5 moved 300s"],
    );
    // Cascade: an emergency pushes #2, which pushes #3.
    check(
        &[s(1, "07:00", 10, 0, Emergency), s(2, "07:05", 10, 60, Scheduled), s(3, "07:12", 5, 60, Scheduled)],
        DAY,
        &["07:00-07:10 #1", "07:10-07:20 #2 moved 300s", "07:20-07:25 #3 moved 480s"],
    );
    // A move may use a gap between two higher items, if the whole playlist fits.
    check(
        &[
            s(1, "07:00", 5, 0, Paging),
            s(2, "07:10", 5, 0, Paging),
            s(3, "07:15", 5, 0, Paging),
            s(4, "07:02", 5, 30, Scheduled),
        ],
        DAY,
        &["07:00-07:05 #1", "07:05-07:10 #4 moved 180s", "07:10-07:15 #2", "07:15-07:20 #3"],
    );
    // The delay bounds the start, not the end.
    check(
        &[s(1, "07:00", 10, 0, Scheduled), s(2, "07:05", 30, 5, Background)],
        DAY,
        &["07:00-07:10 #1", "07:10-07:40 #2 moved 300s"],
    );
}

#[test]
fn conflicts_across_midnight() {
    check(
        &[s(1, "23:50", 20, 0, Scheduled), s(2, "00:05", 5, 30, Scheduled)],
        ("2025-03-03 00:00", "2025-03-05 00:00"),
        // The first line is the evening before the window, still playing at its start.
        &[
            "23:50-00:10 #1",
            "00:10-00:15 #2 moved 300s",
            "23:50-00:10 #1",
            "00:10-00:15 #2 moved 300s",
            "23:50-00:10 #1",
        ],
    );
}

#[test]
fn an_item_still_playing_at_the_window_start_is_in_the_plan() {
    // Yesterday's 23:58 runs until 00:03 and pushes today's 00:01.
    check(
        &[s(1, "23:58", 5, 0, Scheduled), s(2, "00:01", 5, 10, Scheduled)],
        ("2025-03-04 00:00", "2025-03-04 12:00"),
        &["23:58-00:03 #1", "00:03-00:08 #2 moved 120s"],
    );
}

#[test]
fn targets_select_the_village() {
    let mut township = s(2, "08:00", 5, 0, Scheduled);
    township.targets = Targets { townships: vec![1], ..Targets::default() };
    let mut other_township = s(3, "09:00", 5, 0, Scheduled);
    other_township.targets = Targets { townships: vec![2], ..Targets::default() };
    let mut tagged = s(4, "10:00", 5, 0, Scheduled);
    tagged.targets = Targets { tags: vec!["market".to_owned()], ..Targets::default() };
    let mut listed = s(5, "11:00", 5, 0, Scheduled);
    listed.targets = Targets { villages: vec![1], ..Targets::default() };
    let mut other_village = s(6, "12:00", 5, 0, Scheduled);
    other_village.targets = Targets { villages: vec![2], tags: vec!["school".to_owned()], ..Targets::default() };
    check(
        &[s(1, "07:00", 5, 0, Scheduled), township, other_township, tagged, listed, other_village],
        DAY,
        &["07:00-07:05 #1", "08:00-08:05 #2", "10:00-10:05 #4", "11:00-11:05 #5"],
    );
}

#[test]
fn dst_gap_makes_two_schedules_collide() {
    // In Berlin on 2025-03-30, 02:30 becomes 03:00 and meets the 03:00 notice; the lower id wins.
    let berlin = |id, time| {
        let mut s = s(id, time, 5, 10, Scheduled);
        s.timezone = "Europe/Berlin".to_owned();
        s
    };
    let schedules = [berlin(2, "02:30"), berlin(1, "03:00")];
    let (from, to) = (at("Europe/Berlin", "2025-03-30 00:00"), at("Europe/Berlin", "2025-03-31 00:00"));
    let plan = plan_village(&village(1, 1, &[]), &schedules, &QuietHours::none(), from, to).unwrap();
    let lines: Vec<String> = plan
        .items
        .iter()
        .map(|i| {
            format!(
                "#{} {} {}",
                i.schedule_id,
                local("Europe/Berlin", i.start),
                local("Europe/Berlin", i.nominal_start)
            )
        })
        .collect();
    assert_eq!(lines, ["#1 2025-03-30 03:00 2025-03-30 03:00", "#2 2025-03-30 03:05 2025-03-30 03:00"]);
}

#[test]
fn conflicts_name_winner_loser_and_outcome() {
    let schedules = [s(1, "07:00", 10, 0, Emergency), s(2, "07:05", 10, 60, Scheduled), s(3, "07:12", 5, 3, Scheduled)];
    let villages = [village(1, 1, &[]), village(2, 1, &[])];
    let (from, to) = (at(SHANGHAI, DAY.0), at(SHANGHAI, DAY.1));
    let found = conflicts(&villages, &schedules, &QuietHours::none(), from, to).unwrap();
    let occurrence = |id: i64, time: &str, priority| OccurrenceRef {
        schedule_id: id,
        nominal_start: at(SHANGHAI, &format!("2025-03-03 {time}")),
        priority,
    };
    let per_village = |village_id| {
        vec![
            Conflict {
                village_id,
                winner: occurrence(1, "07:00", Emergency),
                loser: occurrence(2, "07:05", Scheduled),
                outcome: Outcome::Moved { start: at(SHANGHAI, "2025-03-03 07:10"), moved_by_ms: 300_000 },
            },
            Conflict {
                village_id,
                winner: occurrence(2, "07:05", Scheduled),
                loser: occurrence(3, "07:12", Scheduled),
                outcome: Outcome::Skipped,
            },
        ]
    };
    assert_eq!(found, [per_village(1), per_village(2)].concat());
}

#[test]
fn a_planner_serves_many_villages_like_plan_village() {
    let schedules = [s(1, "07:00", 10, 0, Emergency), s(2, "07:05", 10, 60, Scheduled)];
    let (from, to) = (at(SHANGHAI, DAY.0), at(SHANGHAI, DAY.1));
    let planner = Planner::new(&schedules, &QuietHours::none(), from, to).unwrap();
    for v in [village(1, 1, &[]), village(2, 3, &["school"])] {
        assert_eq!(planner.plan(&v), plan_village(&v, &schedules, &QuietHours::none(), from, to).unwrap());
    }
}
