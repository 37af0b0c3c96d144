//! Property tests over random schedules, windows and quiet hours, with
//! windows placed on month ends, leap days, year ends and DST transitions.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use dalaba_schedules::priority::Priority;
use dalaba_schedules::{
    HumanRule, Plan, Planner, PlaylistItem, QuietHours, QuietWindow, Recurrence, Schedule, Targets, VillageInfo,
    occurrences, plan_village,
};
use proptest::prelude::*;

use crate::common::*;

const ZONES: [&str; 5] = ["Asia/Shanghai", "Europe/Berlin", "America/New_York", "UTC", "Australia/Sydney"];
/// Month end, leap day, Berlin spring DST, New York spring DST, Berlin fall DST, New York fall DST, year end.
const WINDOW_DATES: [&str; 7] =
    ["2025-01-30", "2024-02-27", "2025-03-28", "2025-03-07", "2025-10-24", "2025-10-31", "2025-12-30"];

#[derive(Debug, Clone)]
struct Case {
    schedules: Vec<Schedule>,
    quiet: QuietHours,
    village: VillageInfo,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

fn time() -> impl Strategy<Value = NaiveTime> {
    (0u32..24, 0u32..12).prop_map(|(h, m)| NaiveTime::from_hms_opt(h, m * 5, 0).unwrap())
}

fn weekdays() -> impl Strategy<Value = Vec<Weekday>> {
    prop::collection::vec(0u8..7, 1..4)
        .prop_map(|days| days.into_iter().map(|d| Weekday::try_from(d).unwrap()).collect())
}

/// Human rules cron can express.
fn cron_rule() -> impl Strategy<Value = HumanRule> {
    let times = || prop::collection::vec(time(), 1..4);
    prop_oneof![
        times().prop_map(|times| HumanRule::Daily { times }),
        times().prop_map(|times| HumanRule::Weekdays { times }),
        (weekdays(), times()).prop_map(|(days, times)| HumanRule::Weekly { days, times }),
        (prop_oneof![1u32..32, 28u32..32], times()).prop_map(|(day, times)| HumanRule::MonthDay { day, times }),
    ]
}

fn recurrence() -> impl Strategy<Value = Recurrence> {
    let anchor = (0u64..700).prop_map(|d| NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Days::new(d));
    prop_oneof![
        cron_rule().prop_map(Recurrence::Rule),
        (1u32..4, anchor, weekdays(), prop::collection::vec(time(), 1..3)).prop_map(|(every, anchor, days, times)| {
            Recurrence::Rule(HumanRule::EveryNWeeks { every, anchor, days, times })
        }),
        (0u32..12, 0u32..24, 0u32..3).prop_map(|(m, h, days)| {
            let days = ["*", "MON-FRI", "SAT,SUN"][days as usize];
            Recurrence::Cron(format!("0 {},{} {h},{} * * {days}", m * 5, m * 5 + 2, (h + 7) % 24))
        }),
    ]
}

fn schedule_strategy() -> impl Strategy<Value = Schedule> {
    (
        recurrence(),
        0..ZONES.len(),
        (10u64..1800, 0u32..3, 0u64..10_000, 1u64..200),
        (0usize..4, 0u64..180),
        prop::option::of((-3i64..4, 0u64..5)),
        0u8..5,
    )
        .prop_map(|(recurrence, zone, (seconds, repeats, gap_ms, n), (priority, delay), validity, targets)| {
            let mut s = schedule(0, recurrence, seconds * 1000);
            s.timezone = ZONES[zone].to_owned();
            s.playlist[0].repeats = repeats;
            s.playlist.push(PlaylistItem { content: content(n, 1000 + n * 700), repeats: 0 });
            s.gap_ms = gap_ms;
            s.priority = Priority::ALL[priority];
            s.max_delay_ms = delay * 60_000;
            // Validity relative to the window's date, filled in by `case`.
            if let Some((offset, length)) = validity {
                s.valid_from = NaiveDate::from_ymd_opt(2000, 1, 1).map(|d| d + TimeDelta::days(offset));
                s.valid_until = s.valid_from.map(|d| d + TimeDelta::days(length as i64));
            }
            s.targets = match targets {
                0 | 1 => Targets { county: true, ..Targets::default() },
                2 => Targets { townships: vec![1], ..Targets::default() },
                3 => Targets { tags: vec!["market".to_owned()], ..Targets::default() },
                _ => Targets { villages: vec![2], ..Targets::default() },
            };
            s
        })
}

fn quiet_strategy() -> impl Strategy<Value = QuietHours> {
    prop::option::of((time(), time(), prop::bool::ANY)).prop_map(|window| {
        let windows: Vec<QuietWindow> = window
            .filter(|(start, end, _)| start != end)
            .map(|(start, end, _)| QuietWindow { start, end })
            .into_iter()
            .collect();
        let utc = window.is_some_and(|(_, _, utc)| utc);
        QuietHours { timezone: if utc { "UTC" } else { SHANGHAI }.to_owned(), county: windows, townships: Vec::new() }
    })
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(schedule_strategy(), 0..12),
        quiet_strategy(),
        (1i64..3, prop::bool::ANY),
        (0..WINDOW_DATES.len(), 0u32..24, 1i64..4),
    )
        .prop_map(|(mut schedules, quiet, (village_id, market), (date, hour, days))| {
            let date: NaiveDate = WINDOW_DATES[date].parse().unwrap();
            let base = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
            for (index, s) in schedules.iter_mut().enumerate() {
                // Ids in an order unrelated to the input order.
                s.id = (index as i64 * 7919) % 1000;
                let shift = |d: NaiveDate| date + (d - base);
                s.valid_from = s.valid_from.map(shift);
                s.valid_until = s.valid_until.map(shift);
            }
            let from = Utc.from_utc_datetime(&date.and_hms_opt(hour, 0, 0).unwrap());
            let village = village(village_id, 1, if market { &["market"] } else { &[] });
            Case { schedules, quiet, village, from, to: from + TimeDelta::days(days) }
        })
}

fn plan(case: &Case) -> Plan {
    plan_village(&case.village, &case.schedules, &case.quiet, case.from, case.to).unwrap()
}

fn by_id(case: &Case, id: i64) -> &Schedule {
    case.schedules.iter().find(|s| s.id == id).unwrap()
}

/// The quiet spans, computed naively (the strategy uses zones without DST).
fn quiet_spans(quiet: &QuietHours, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let tz = zone(&quiet.timezone);
    let mut spans = Vec::new();
    let mut date = from.with_timezone(&tz).date_naive() - TimeDelta::days(3);
    while date <= to.with_timezone(&tz).date_naive() + TimeDelta::days(3) {
        for w in &quiet.county {
            let end_date = if w.end > w.start { date } else { date + TimeDelta::days(1) };
            let start = tz.from_local_datetime(&date.and_time(w.start)).unwrap().with_timezone(&Utc);
            let end = tz.from_local_datetime(&end_date.and_time(w.end)).unwrap().with_timezone(&Utc);
            spans.push((start, end));
        }
        date += TimeDelta::days(1);
    }
    spans
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn plan_items_never_overlap(case in case()) {
        let plan = plan(&case);
        for pair in plan.items.windows(2) {
            prop_assert!(pair[0].end <= pair[1].start, "{:?} overlaps {:?}", pair[0], pair[1]);
        }
    }

    #[test]
    fn plan_items_stay_in_their_allowed_windows(case in case()) {
        let plan = plan(&case);
        let quiet = quiet_spans(&case.quiet, case.from, case.to);
        for item in &plan.items {
            let s = by_id(&case, item.schedule_id);
            let max_delay = TimeDelta::milliseconds(s.max_delay_ms as i64);
            let duration = TimeDelta::milliseconds(s.duration_ms() as i64);
            prop_assert!(item.nominal_start <= item.start && item.start <= item.nominal_start + max_delay, "{item:?}");
            prop_assert_eq!(item.end, item.start + duration);
            prop_assert_eq!(item.moved_by_ms as i64, (item.start - item.nominal_start).num_milliseconds());
            prop_assert!(item.end > case.from && item.nominal_start < case.to);
            prop_assert_eq!(item.plays.first().map(|p| p.start), Some(item.start));
            let last = item.plays.last().unwrap();
            prop_assert_eq!(last.start + TimeDelta::milliseconds(last.content.duration_ms as i64), item.end);
            prop_assert!(s.targets.includes(&case.village));
            if s.priority != Priority::Emergency {
                for (start, end) in &quiet {
                    prop_assert!(item.end <= *start || *end <= item.start, "{item:?} plays in quiet hours {start}–{end}");
                }
            }
        }
    }

    #[test]
    fn every_occurrence_is_planned_or_skipped_once(case in case()) {
        let plan = plan(&case);
        let mut expected = Vec::new();
        for s in case.schedules.iter().filter(|s| s.targets.includes(&case.village)) {
            expected.extend(occurrences(s, case.from, case.to).unwrap().into_iter().map(|o| (o.schedule_id, o.start)));
        }
        expected.sort();
        let mut found: Vec<(i64, DateTime<Utc>)> = plan
            .items
            .iter()
            .filter(|i| i.nominal_start >= case.from)
            .map(|i| (i.schedule_id, i.nominal_start))
            .chain(plan.skipped.iter().map(|s| (s.schedule_id, s.nominal_start)))
            .collect();
        found.sort();
        prop_assert_eq!(found, expected);
    }

    #[test]
    fn occurrences_lie_in_the_validity_and_query_windows(case in case()) {
        for s in &case.schedules {
            let tz = zone(&s.timezone);
            let found = occurrences(s, case.from, case.to).unwrap();
            for pair in found.windows(2) {
                prop_assert!(pair[0].start < pair[1].start);
            }
            for o in &found {
                prop_assert!(case.from <= o.start && o.start < case.to, "{o:?}");
                let date = o.local_time.date();
                prop_assert!(s.valid_from.is_none_or(|d| d <= date) && s.valid_until.is_none_or(|d| date <= d), "{o:?}");
                let wall = o.start.with_timezone(&tz).naive_local();
                if wall != o.local_time {
                    // Only a time in a DST gap moves, to the gap's end, within the hour.
                    prop_assert!(tz.from_local_datetime(&o.local_time).single().is_none(), "{o:?}");
                    prop_assert!(wall > o.local_time && wall - o.local_time <= TimeDelta::hours(1), "{o:?}");
                }
            }
        }
    }

    #[test]
    fn plan_is_deterministic(case in case()) {
        let plan = plan(&case);
        let mut reversed = case.schedules.clone();
        reversed.reverse();
        prop_assert_eq!(&plan_village(&case.village, &reversed, &case.quiet, case.from, case.to).unwrap(), &plan);
        let json = serde_json::to_string(&plan).unwrap();
        prop_assert_eq!(&serde_json::from_str::<Plan>(&json).unwrap(), &plan);
        // The conflict list agrees with the placement order: winners outrank losers.
        let planner = Planner::new(&case.schedules, &case.quiet, case.from, case.to).unwrap();
        for c in planner.conflicts(&case.village) {
            let rank = |o: &dalaba_schedules::OccurrenceRef| (std::cmp::Reverse(o.priority), o.nominal_start, o.schedule_id);
            prop_assert!(rank(&c.winner) < rank(&c.loser), "{c:?}");
        }
    }

    #[test]
    fn human_rules_agree_with_the_cron_crate(rule in cron_rule(), utc in prop::bool::ANY, (date, hour, days) in (0..WINDOW_DATES.len(), 0u32..24, 1i64..40)) {
        let zone_name = if utc { "UTC" } else { SHANGHAI };
        let tz = zone(zone_name);
        let mut s = schedule(1, Recurrence::Rule(rule.clone()), 1000);
        s.timezone = zone_name.to_owned();
        let from = Utc.from_utc_datetime(&WINDOW_DATES[date].parse::<NaiveDate>().unwrap().and_hms_opt(hour, 0, 0).unwrap());
        let to = from + TimeDelta::days(days);
        let ours: Vec<DateTime<Utc>> = occurrences(&s, from, to).unwrap().into_iter().map(|o| o.start).collect();
        let mut theirs = BTreeSet::new();
        for line in rule.to_cron().unwrap() {
            let cron = cron::Schedule::from_str(&line).unwrap();
            // `after` is exclusive; start a second early so `from` itself counts.
            let start = (from - TimeDelta::seconds(1)).with_timezone(&tz);
            theirs.extend(cron.after(&start).map(|t| t.with_timezone(&Utc)).take_while(|t| *t < to));
        }
        prop_assert_eq!(ours, theirs.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn daily_fires_once_per_local_day(zone_index in 0..ZONES.len(), at in time(), start in 0u64..365) {
        let zone_name = ZONES[zone_index];
        let tz = zone(zone_name);
        let mut s = schedule(1, Recurrence::Rule(HumanRule::Daily { times: vec![at] }), 1000);
        s.timezone = zone_name.to_owned();
        let first = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Days::new(start);
        let from = tz.from_local_datetime(&first.and_hms_opt(0, 0, 0).unwrap()).earliest().unwrap().with_timezone(&Utc);
        let to = from + TimeDelta::days(400);
        let found = occurrences(&s, from, to).unwrap();
        let mut dates = BTreeSet::new();
        for o in &found {
            let wall = o.start.with_timezone(&tz);
            prop_assert!(dates.insert(wall.date_naive()), "two occurrences on {}", wall.date_naive());
            prop_assert_eq!(o.local_time.time(), at);
            prop_assert!(wall.time() == at || wall.time() > at, "{o:?}");
        }
        // Every local day strictly inside the window has its occurrence.
        let last = (to - TimeDelta::days(1)).with_timezone(&tz).date_naive();
        let mut day = first + chrono::Days::new(1);
        while day < last {
            prop_assert!(dates.contains(&day), "no occurrence on {day}");
            day = day.succ_opt().unwrap();
        }
    }
}
