//! What plays in one village: occurrences of the schedules that target it,
//! with conflicts resolved by priority and quiet hours applied.
//!
//! # Resolution
//! Occurrences are placed one at a time, most important first: higher
//! priority, then earlier nominal start, then lower schedule id (a total
//! order, so the same input always gives the same plan). Each goes at its
//! nominal start if that slot is free; otherwise it moves to the end of
//! whatever holds the slot (an item already placed, or quiet hours unless
//! it is an emergency), again and again, as long as it still starts within
//! `max_delay_ms` of its nominal start. If it cannot, it is skipped, and the
//! reason names what held its nominal slot. Items never overlap and never
//! start before their nominal start.
//!
//! # Windows
//! A plan for `[from, to)` also weighs occurrences that started up to a
//! day or two earlier (the largest `max_delay_ms` plus playlist duration),
//! because they can still be playing, or be moved, into the window. Its
//! items are those that end after `from`; its skipped occurrences are those
//! nominally starting at or after `from`.

use std::cmp::Reverse;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::PlanError;
use crate::priority::Priority;
use crate::quiet::{self, QuietHours, Span};
use crate::schedule::{ContentRef, Prepared, Schedule, VillageInfo};
use crate::zone::instant;

/// What one village plays in a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The village.
    pub village_id: i64,
    /// Items to play, by start; they never overlap.
    pub items: Vec<PlannedItem>,
    /// Occurrences that found no slot, by nominal start then schedule id.
    pub skipped: Vec<Skipped>,
}

/// One occurrence as it will play.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedItem {
    /// The schedule it comes from.
    pub schedule_id: i64,
    /// When the schedule fired.
    pub nominal_start: DateTime<Utc>,
    /// When it plays (at or after the nominal start).
    pub start: DateTime<Utc>,
    /// When it ends.
    pub end: DateTime<Utc>,
    /// `start` − `nominal_start`.
    pub moved_by_ms: u64,
    /// The schedule's priority.
    pub priority: Priority,
    /// The schedule's volume, 0 to 100.
    pub volume: u8,
    /// Each play of the playlist, repeats expanded, in order.
    pub plays: Vec<Play>,
}

/// One play of one content item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Play {
    /// When it starts.
    pub start: DateTime<Utc>,
    /// What plays.
    pub content: ContentRef,
}

/// An occurrence that will not play.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The schedule it comes from.
    pub schedule_id: i64,
    /// When the schedule fired.
    pub nominal_start: DateTime<Utc>,
    /// Why.
    pub reason: SkipReason,
}

/// What held an occurrence's nominal slot so that it found no other within its delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SkipReason {
    /// Another occurrence, of higher priority or earlier at the same priority.
    Conflict {
        /// The occurrence that won.
        with: OccurrenceRef,
    },
    /// Quiet hours.
    QuietHours,
}

/// Names one occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OccurrenceRef {
    /// The schedule.
    pub schedule_id: i64,
    /// When it fired.
    pub nominal_start: DateTime<Utc>,
    /// Its priority.
    pub priority: Priority,
}

/// Two occurrences that wanted the same time in one village, for the UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The village.
    pub village_id: i64,
    /// The one that kept its slot.
    pub winner: OccurrenceRef,
    /// The one that moved or was skipped.
    pub loser: OccurrenceRef,
    /// What became of the loser.
    pub outcome: Outcome,
}

/// What became of a conflict's loser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// It plays later.
    Moved {
        /// When it plays.
        start: DateTime<Utc>,
        /// How much later than its nominal start.
        moved_by_ms: u64,
    },
    /// It does not play.
    Skipped,
}

/// Plans many villages over one window: schedules are validated and their
/// occurrences computed once, then each village is resolved on its own.
#[derive(Debug)]
pub struct Planner<'a> {
    from_ms: i64,
    /// Sorted by schedule id.
    schedules: Vec<Prepared<'a>>,
    /// Nominal starts per schedule (same index), including the look-back.
    starts: Vec<Vec<i64>>,
    county_quiet: Vec<Span>,
    /// Sorted by township id.
    township_quiet: Vec<(i64, Vec<Span>)>,
}

/// Plans one village; see [`Planner`] to plan many.
pub fn plan_village(
    village: &VillageInfo,
    schedules: &[Schedule],
    quiet_hours: &QuietHours,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Plan, PlanError> {
    Ok(Planner::new(schedules, quiet_hours, from, to)?.plan(village))
}

/// The conflicts in every village of `villages`, village by village.
pub fn conflicts(
    villages: &[VillageInfo],
    schedules: &[Schedule],
    quiet_hours: &QuietHours,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Conflict>, PlanError> {
    let planner = Planner::new(schedules, quiet_hours, from, to)?;
    Ok(villages.iter().flat_map(|village| planner.conflicts(village)).collect())
}

impl<'a> Planner<'a> {
    /// Validates the schedules (ids must be unique) and the quiet hours and
    /// computes the occurrences for `[from, to)`.
    pub fn new(
        schedules: &'a [Schedule],
        quiet_hours: &QuietHours,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Planner<'a>, PlanError> {
        let mut prepared = schedules
            .iter()
            .map(|s| s.prepare().map_err(|source| PlanError::Schedule { id: s.id, source }))
            .collect::<Result<Vec<_>, _>>()?;
        prepared.sort_by_key(|p| p.schedule.id);
        if let Some(pair) = prepared.windows(2).find(|pair| pair[0].schedule.id == pair[1].schedule.id) {
            return Err(PlanError::DuplicateSchedule { id: pair[0].schedule.id });
        }
        let tz = quiet_hours.zone()?;
        let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
        // Validation bounds both terms by a day each, so this cannot overflow.
        let look_back = prepared.iter().map(|p| p.duration_ms + p.schedule.max_delay_ms).max().unwrap_or(0);
        let earliest = from_ms.saturating_sub(i64::try_from(look_back).unwrap_or(i64::MAX));
        let starts = prepared
            .iter()
            .map(|p| p.nominal_starts(earliest, to_ms).into_iter().map(|(start, _)| start).collect())
            .collect();
        // Items may be pushed up to a delay plus a duration past `to`.
        let latest = to_ms.saturating_add(i64::try_from(look_back).unwrap_or(i64::MAX));
        let quiet_spans = |windows| quiet::spans(tz, windows, earliest, latest);
        let county_quiet = quiet_spans(&quiet_hours.county);
        let mut township_quiet: Vec<(i64, Vec<Span>)> =
            quiet_hours.townships.iter().map(|t| (t.township_id, quiet_spans(&t.windows))).collect();
        township_quiet.sort_by_key(|(id, _)| *id);
        Ok(Planner { from_ms, schedules: prepared, starts, county_quiet, township_quiet })
    }

    /// The plan of one village.
    pub fn plan(&self, village: &VillageInfo) -> Plan {
        let resolution = self.resolve(village);
        let mut items = Vec::new();
        let mut skipped = Vec::new();
        for (candidate, fate) in resolution.candidates.iter().zip(&resolution.fates) {
            let prepared = &self.schedules[candidate.schedule];
            match fate.placement {
                Placement::At(start) => {
                    let end = start + duration(prepared);
                    if end > self.from_ms {
                        items.push(self.item(prepared, candidate.nominal, start, end));
                    }
                }
                Placement::Skipped(first) if candidate.nominal >= self.from_ms => skipped.push(Skipped {
                    schedule_id: prepared.schedule.id,
                    nominal_start: instant(candidate.nominal),
                    reason: match first {
                        Blocker::Item(winner) => SkipReason::Conflict { with: self.occurrence(&resolution, winner) },
                        Blocker::Quiet => SkipReason::QuietHours,
                    },
                }),
                Placement::Skipped(_) => {}
            }
        }
        items.sort_by_key(|item| item.start);
        skipped.sort_by_key(|s| (s.nominal_start, s.schedule_id));
        Plan { village_id: village.id, items, skipped }
    }

    /// Every pair of occurrences that wanted the same time in this village:
    /// for each loser starting at or after `from`, every placed occurrence
    /// that pushed it later, in the order it met them.
    pub fn conflicts(&self, village: &VillageInfo) -> Vec<Conflict> {
        let resolution = self.resolve(village);
        let mut conflicts = Vec::new();
        let mut losers: Vec<usize> = (0..resolution.candidates.len())
            .filter(|&i| resolution.candidates[i].nominal >= self.from_ms && !resolution.fates[i].blockers.is_empty())
            .collect();
        losers.sort_by_key(|&i| {
            (resolution.candidates[i].nominal, self.schedules[resolution.candidates[i].schedule].schedule.id)
        });
        for loser in losers {
            let fate = &resolution.fates[loser];
            let nominal = resolution.candidates[loser].nominal;
            let outcome = match fate.placement {
                Placement::At(start) => {
                    Outcome::Moved { start: instant(start), moved_by_ms: (start - nominal).unsigned_abs() }
                }
                Placement::Skipped(_) => Outcome::Skipped,
            };
            for blocker in &fate.blockers {
                if let Blocker::Item(winner) = *blocker {
                    conflicts.push(Conflict {
                        village_id: village.id,
                        winner: self.occurrence(&resolution, winner),
                        loser: self.occurrence(&resolution, loser),
                        outcome,
                    });
                }
            }
        }
        conflicts
    }

    fn resolve(&self, village: &VillageInfo) -> Resolution {
        let mut candidates = Vec::new();
        for (index, prepared) in self.schedules.iter().enumerate() {
            if prepared.schedule.targets.includes(village) {
                candidates.extend(self.starts[index].iter().map(|&nominal| Candidate { schedule: index, nominal }));
            }
        }
        // Schedules are sorted by id, so the index orders like the id.
        candidates
            .sort_unstable_by_key(|c| (Reverse(self.schedules[c.schedule].schedule.priority), c.nominal, c.schedule));
        let quiet = match self.township_quiet.binary_search_by_key(&village.township_id, |(id, _)| *id) {
            Ok(found) => &self.township_quiet[found].1,
            Err(_) => &self.county_quiet,
        };
        let mut placed: Vec<Span> = Vec::with_capacity(candidates.len());
        let mut placed_by: Vec<usize> = Vec::with_capacity(candidates.len());
        let mut fates = Vec::with_capacity(candidates.len());
        for candidate in &candidates {
            let prepared = &self.schedules[candidate.schedule];
            let length = duration(prepared);
            let latest = candidate.nominal + i64::try_from(prepared.schedule.max_delay_ms).unwrap_or(i64::MAX);
            let quiet = if prepared.schedule.priority.respects_quiet_hours() { quiet.as_slice() } else { &[] };
            let mut start = candidate.nominal;
            let mut blockers = Vec::new();
            let placement = loop {
                let item = first_overlap(&placed, start, start + length);
                let silence = first_overlap(quiet, start, start + length);
                // Any start before a blocker's end still overlaps it, so jump past both.
                let Some(next) = item.map(|i| placed[i].end).max(silence.map(|i| quiet[i].end)) else {
                    break Placement::At(start);
                };
                if let Some(i) = item {
                    blockers.push(Blocker::Item(placed_by[i]));
                }
                if silence.is_some() && !blockers.contains(&Blocker::Quiet) {
                    blockers.push(Blocker::Quiet);
                }
                start = next;
                if start > latest {
                    // Not empty: this turn pushed at least one blocker.
                    break Placement::Skipped(blockers[0]);
                }
            };
            if let Placement::At(start) = placement {
                let at = placed.partition_point(|span| span.start < start);
                placed.insert(at, Span { start, end: start + length });
                placed_by.insert(at, fates.len());
            }
            fates.push(Fate { placement, blockers });
        }
        Resolution { candidates, fates }
    }

    fn item(&self, prepared: &Prepared<'_>, nominal: i64, start: i64, end: i64) -> PlannedItem {
        let schedule = prepared.schedule;
        PlannedItem {
            schedule_id: schedule.id,
            nominal_start: instant(nominal),
            start: instant(start),
            end: instant(end),
            moved_by_ms: (start - nominal).unsigned_abs(),
            priority: schedule.priority,
            volume: schedule.volume,
            plays: prepared
                .plays
                .iter()
                .map(|(offset, content)| Play {
                    start: instant(start + i64::try_from(*offset).unwrap_or(i64::MAX)),
                    content: (*content).clone(),
                })
                .collect(),
        }
    }

    fn occurrence(&self, resolution: &Resolution, index: usize) -> OccurrenceRef {
        let candidate = &resolution.candidates[index];
        let schedule = self.schedules[candidate.schedule].schedule;
        OccurrenceRef {
            schedule_id: schedule.id,
            nominal_start: instant(candidate.nominal),
            priority: schedule.priority,
        }
    }
}

/// An occurrence waiting for a slot.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    /// Index into `Planner::schedules`.
    schedule: usize,
    nominal: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocker {
    /// Index of the placed candidate.
    Item(usize),
    Quiet,
}

#[derive(Debug, Clone, Copy)]
enum Placement {
    At(i64),
    /// With the first blocker: what held the nominal slot.
    Skipped(Blocker),
}

#[derive(Debug)]
struct Fate {
    placement: Placement,
    /// Everything that pushed it later, in order.
    blockers: Vec<Blocker>,
}

/// Candidates in placement order and, at the same index, what became of each.
#[derive(Debug)]
struct Resolution {
    candidates: Vec<Candidate>,
    fates: Vec<Fate>,
}

/// The index of the first span overlapping `[start, end)` in spans sorted and disjoint.
fn first_overlap(spans: &[Span], start: i64, end: i64) -> Option<usize> {
    let index = spans.partition_point(|span| span.end <= start);
    spans.get(index).filter(|span| span.start < end).map(|_| index)
}

fn duration(prepared: &Prepared<'_>) -> i64 {
    // Validation caps durations at a day.
    i64::try_from(prepared.duration_ms).unwrap_or(i64::MAX)
}
