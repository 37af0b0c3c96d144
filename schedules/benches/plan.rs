//! Planning speed: the 7-day plans of a county's 212 villages (14
//! townships) with 50 schedules and quiet hours. Target: under 100 ms.
//!
//! Run with `cargo bench -p dalaba-schedules`; prints the best and median
//! of several runs and what the plans hold. Timings are printed, never
//! asserted.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveTime, TimeZone, Utc, Weekday};
use dalaba_schedules::priority::Priority;
use dalaba_schedules::{
    ContentRef, HumanRule, Plan, Planner, PlaylistItem, QuietHours, QuietWindow, Recurrence, Schedule, Targets,
    TownshipQuietHours, VillageInfo, plan_village,
};

const TOWNSHIPS: i64 = 14;
const VILLAGES: i64 = 212;
const RUNS: usize = 20;

fn main() {
    let villages = villages();
    let schedules = schedules();
    let quiet = quiet_hours();
    let from = Utc.with_ymd_and_hms(2025, 3, 2, 16, 0, 0).single().expect("valid instant"); // Monday 00:00 in Shanghai
    let to = from + chrono::TimeDelta::days(7);

    let plans = plan_all(&villages, &schedules, &quiet, from, to);
    let items: usize = plans.iter().map(|p| p.items.len()).sum();
    let moved = plans.iter().flat_map(|p| &p.items).filter(|i| i.moved_by_ms > 0).count();
    let skipped: usize = plans.iter().map(|p| p.skipped.len()).sum();
    let planner = Planner::new(&schedules, &quiet, from, to).expect("valid schedules");
    let conflicts: usize = villages.iter().map(|v| planner.conflicts(v).len()).sum();

    let (best, median) = measure(|| plan_all(&villages, &schedules, &quiet, from, to));
    let (best_naive, median_naive) = measure(|| {
        villages
            .iter()
            .map(|v| plan_village(v, &schedules, &quiet, from, to).expect("valid schedules"))
            .collect::<Vec<_>>()
    });

    println!(
        "plan 7 days: {VILLAGES} villages, {} schedules → {items} items ({moved} moved), {skipped} skipped, {conflicts} conflicts",
        schedules.len()
    );
    println!("  Planner (occurrences once, then each village): best {best:.2?}, median {median:.2?} over {RUNS} runs");
    println!("  plan_village per village (for comparison):     best {best_naive:.2?}, median {median_naive:.2?}");
}

fn plan_all(
    villages: &[VillageInfo],
    schedules: &[Schedule],
    quiet: &QuietHours,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Plan> {
    let planner = Planner::new(schedules, quiet, from, to).expect("valid schedules");
    villages.iter().map(|v| planner.plan(v)).collect()
}

fn measure<T>(mut run: impl FnMut() -> T) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            black_box(run());
            started.elapsed()
        })
        .collect();
    times.sort();
    (times[0], times[RUNS / 2])
}

fn villages() -> Vec<VillageInfo> {
    (1..=VILLAGES)
        .map(|id| {
            let mut tags = Vec::new();
            if id % 4 == 0 {
                tags.push("market".to_owned());
            }
            if id % 3 == 0 {
                tags.push("school".to_owned());
            }
            if id % 7 == 0 {
                tags.push("riverside".to_owned());
            }
            VillageInfo { id, township_id: 1 + (id - 1) % TOWNSHIPS, tags }
        })
        .collect()
}

fn quiet_hours() -> QuietHours {
    let window = |start, end| QuietWindow { start: time(start), end: time(end) };
    QuietHours {
        county: vec![window("22:00", "06:30")],
        townships: vec![TownshipQuietHours { township_id: 3, windows: vec![window("21:00", "07:00")] }],
        ..QuietHours::none()
    }
}

/// 50 schedules: county notices at 07:00/12:00/18:30, weekday ones,
/// one per township, tag-targeted, cron, fortnightly and monthly ones,
/// background music and a weekly emergency drill.
fn schedules() -> Vec<Schedule> {
    let county = || Targets { county: true, ..Targets::default() };
    let township = |t| Targets { townships: vec![t], ..Targets::default() };
    let tag = |t: &str| Targets { tags: vec![t.to_owned()], ..Targets::default() };
    let rule = Recurrence::Rule;
    let mut out = Vec::new();
    let mut add = |recurrence, minutes: u64, targets, priority, delay_minutes: u64| {
        let id = out.len() as i64 + 1;
        out.push(schedule(id, recurrence, minutes, targets, priority, delay_minutes));
    };
    for (i, at) in ["07:00", "12:00", "18:30"].iter().cycle().take(10).enumerate() {
        add(rule(HumanRule::Daily { times: times(&[at]) }), 2 + i as u64 % 4, county(), Priority::Scheduled, 30);
    }
    for i in 0..8 {
        let at = ["07:30", "17:00", "12:10", "18:40"][i % 4];
        let targets = if i % 2 == 0 { county() } else { township(1 + i as i64) };
        add(rule(HumanRule::Weekdays { times: times(&[at]) }), 3, targets, Priority::Scheduled, 20);
    }
    for t in 1..=TOWNSHIPS {
        add(rule(HumanRule::Daily { times: times(&["08:00", "19:00"]) }), 5, township(t), Priority::Scheduled, 45);
    }
    add(
        rule(HumanRule::Weekly { days: vec![Weekday::Sat], times: times(&["07:00", "09:00"]) }),
        4,
        tag("market"),
        Priority::Scheduled,
        30,
    );
    add(
        rule(HumanRule::Weekly { days: vec![Weekday::Wed], times: times(&["08:00"]) }),
        4,
        tag("market"),
        Priority::Scheduled,
        30,
    );
    add(rule(HumanRule::Weekdays { times: times(&["16:30"]) }), 3, tag("school"), Priority::Scheduled, 15);
    add(rule(HumanRule::Weekdays { times: times(&["07:05"]) }), 2, tag("school"), Priority::Scheduled, 15);
    add(rule(HumanRule::Daily { times: times(&["06:45", "20:00"]) }), 3, tag("riverside"), Priority::Scheduled, 30);
    add(
        rule(HumanRule::Weekly { days: vec![Weekday::Sun], times: times(&["10:00"]) }),
        10,
        tag("riverside"),
        Priority::Scheduled,
        60,
    );
    add(Recurrence::Cron("0 0 9 * * MON,THU".to_owned()), 6, county(), Priority::Scheduled, 60);
    add(Recurrence::Cron("0 30 12 * * *".to_owned()), 30, county(), Priority::Background, 120);
    add(Recurrence::Cron("0 0 19,21 * * SAT,SUN".to_owned()), 20, county(), Priority::Background, 60);
    add(Recurrence::Cron("0 0 10 * * WED".to_owned()), 2, county(), Priority::Emergency, 0);
    let anchor = "2025-01-06".parse().expect("valid date");
    for t in [2, 5] {
        let fortnightly =
            HumanRule::EveryNWeeks { every: 2, anchor, days: vec![Weekday::Tue], times: times(&["15:00"]) };
        add(rule(fortnightly), 15, township(t), Priority::Scheduled, 60);
    }
    for day in [1, 3] {
        add(rule(HumanRule::MonthDay { day, times: times(&["11:00"]) }), 10, county(), Priority::Scheduled, 60);
    }
    add(rule(HumanRule::Daily { times: times(&["23:00"]) }), 3, township(7), Priority::Scheduled, 8 * 60);
    add(rule(HumanRule::Daily { times: times(&["13:00"]) }), 3, township(9), Priority::Scheduled, 10);
    add(
        rule(HumanRule::Weekly { days: vec![Weekday::Fri], times: times(&["16:00"]) }),
        5,
        tag("school"),
        Priority::Scheduled,
        30,
    );
    add(Recurrence::Cron("0 20 12 * * MON-FRI".to_owned()), 4, county(), Priority::Scheduled, 30);
    assert_eq!(out.len(), 50);
    out
}

fn schedule(
    id: i64,
    recurrence: Recurrence,
    minutes: u64,
    targets: Targets,
    priority: Priority,
    delay: u64,
) -> Schedule {
    let content = ContentRef {
        sha256: format!("{:064x}", id * 1_000_003),
        duration_ms: minutes * 60_000 / 2,
        title: format!("通知 {id}"),
    };
    Schedule {
        id,
        name: format!("schedule {id}"),
        playlist: vec![PlaylistItem { content, repeats: 1 }],
        gap_ms: 0,
        recurrence,
        timezone: "Asia/Shanghai".to_owned(),
        valid_from: None,
        valid_until: None,
        max_delay_ms: delay * 60_000,
        targets,
        priority,
        volume: 80,
    }
}

fn time(s: &str) -> NaiveTime {
    s.parse().expect("valid time")
}

fn times(list: &[&str]) -> Vec<NaiveTime> {
    list.iter().map(|s| time(s)).collect()
}
