//! Builders and renderers shared by the tests.

use chrono::{DateTime, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use dalaba_schedules::priority::Priority;
use dalaba_schedules::{
    ContentRef, HumanRule, Plan, PlaylistItem, Recurrence, Schedule, SkipReason, Targets, VillageInfo,
};

pub const SHANGHAI: &str = "Asia/Shanghai";

/// A content reference with a made-up hash derived from `n`.
pub fn content(n: u64, duration_ms: u64) -> ContentRef {
    ContentRef { sha256: format!("{n:064x}"), duration_ms, title: format!("notice {n}") }
}

/// A county-wide scheduled notice in Shanghai with one content item.
pub fn schedule(id: i64, recurrence: Recurrence, duration_ms: u64) -> Schedule {
    Schedule {
        id,
        name: format!("schedule {id}"),
        playlist: vec![PlaylistItem { content: content(id as u64, duration_ms), repeats: 0 }],
        gap_ms: 0,
        recurrence,
        timezone: SHANGHAI.to_owned(),
        valid_from: None,
        valid_until: None,
        max_delay_ms: 0,
        targets: Targets { county: true, ..Targets::default() },
        priority: Priority::Scheduled,
        volume: 80,
    }
}

/// A schedule firing daily at `time` (HH:MM[:SS]) lasting `minutes`, with a delay allowance.
pub fn daily_at(id: i64, time: &str, minutes: u64, max_delay_minutes: u64, priority: Priority) -> Schedule {
    let mut s = schedule(id, daily(&[time]), minutes * 60_000);
    s.max_delay_ms = max_delay_minutes * 60_000;
    s.priority = priority;
    s
}

pub fn times(times: &[&str]) -> Vec<NaiveTime> {
    times.iter().map(|t| t.parse().unwrap()).collect()
}

pub fn daily(at: &[&str]) -> Recurrence {
    Recurrence::Rule(HumanRule::Daily { times: times(at) })
}

pub fn zone(name: &str) -> Tz {
    name.parse().unwrap()
}

/// The instant at which the wall clock of `zone_name` shows `local` ("2025-01-31 07:00"); the first if repeated.
pub fn at(zone_name: &str, local: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
    zone(zone_name).from_local_datetime(&naive).earliest().unwrap().with_timezone(&Utc)
}

pub fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// `instant` on the wall clock of `zone_name`, as "2025-01-31 07:00" (":SS" added when not zero).
pub fn local(zone_name: &str, instant: DateTime<Utc>) -> String {
    let local = instant.with_timezone(&zone(zone_name));
    if local.format("%S").to_string() == "00" {
        local.format("%Y-%m-%d %H:%M").to_string()
    } else {
        local.format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

pub fn village(id: i64, township_id: i64, tags: &[&str]) -> VillageInfo {
    VillageInfo { id, township_id, tags: tags.iter().map(|t| t.to_string()).collect() }
}

/// A plan as lines in Shanghai time: "07:00-07:05 #1", "07:08-07:13 #1 moved 480s",
/// "skip #2 07:03 conflict #1@07:00", "skip #2 21:55 quiet".
pub fn render(plan: &Plan) -> Vec<String> {
    let hm = |t: DateTime<Utc>| t.with_timezone(&zone(SHANGHAI)).format("%H:%M").to_string();
    let mut lines: Vec<String> = plan
        .items
        .iter()
        .map(|item| {
            let moved =
                if item.moved_by_ms > 0 { format!(" moved {}s", item.moved_by_ms / 1000) } else { String::new() };
            format!("{}-{} #{}{moved}", hm(item.start), hm(item.end), item.schedule_id)
        })
        .collect();
    lines.extend(plan.skipped.iter().map(|s| {
        let reason = match s.reason {
            SkipReason::Conflict { with } => format!("conflict #{}@{}", with.schedule_id, hm(with.nominal_start)),
            SkipReason::QuietHours => "quiet".to_owned(),
        };
        format!("skip #{} {} {reason}", s.schedule_id, hm(s.nominal_start))
    }));
    lines
}
