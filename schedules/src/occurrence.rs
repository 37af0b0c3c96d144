//! When a schedule fires in a window of time.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ScheduleError;
use crate::schedule::{Prepared, Schedule};
use crate::zone;

/// One firing of a schedule, before conflicts and quiet hours are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Occurrence {
    /// The schedule that fires.
    pub schedule_id: i64,
    /// When it fires (the nominal start).
    pub start: DateTime<Utc>,
    /// When its playlist would end if it starts on time.
    pub end: DateTime<Utc>,
    /// The wall-clock time it was set for in the schedule's zone; differs
    /// from `start` read in that zone only inside a DST gap.
    pub local_time: NaiveDateTime,
}

/// The occurrences of `schedule` that start in `[from, to)`, sorted by start.
///
/// An occurrence starts inside the validity window when its wall-clock
/// date (`local_time`) lies within `valid_from..=valid_until`. Times in a
/// DST gap move to the gap's end; times in a repeated hour fire once, the
/// first time. Several times of one day that land on the same instant
/// fire once.
pub fn occurrences(
    schedule: &Schedule,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Occurrence>, ScheduleError> {
    let prepared = schedule.prepare()?;
    let duration = TimeDelta::milliseconds(i64::try_from(prepared.duration_ms).unwrap_or(i64::MAX));
    Ok(prepared
        .nominal_starts(from.timestamp_millis(), to.timestamp_millis())
        .into_iter()
        .map(|(start_ms, local_time)| {
            let start = zone::instant(start_ms);
            let end = start.checked_add_signed(duration).unwrap_or(DateTime::<Utc>::MAX_UTC);
            Occurrence { schedule_id: schedule.id, start, end, local_time }
        })
        .collect())
}

impl Prepared<'_> {
    /// Nominal starts (ms) in `[from_ms, to_ms)` with the wall-clock time each was set for.
    pub(crate) fn nominal_starts(&self, from_ms: i64, to_ms: i64) -> Vec<(i64, NaiveDateTime)> {
        let mut starts = Vec::new();
        if to_ms <= from_ms {
            return starts;
        }
        let (Some(first), Some(last)) = (zone::local_date(self.tz, from_ms), zone::local_date(self.tz, to_ms)) else {
            return starts;
        };
        // A wall-clock time resolves to an instant on its own date or, past
        // a gap, a little later; two days of margin cover the widest gap
        // on record (Samoa skipped a whole day in 2011).
        let mut first = first.pred_opt().and_then(|d| d.pred_opt()).unwrap_or(first);
        let mut last = last;
        if let Some(valid_from) = self.schedule.valid_from {
            first = first.max(valid_from);
        }
        if let Some(valid_until) = self.schedule.valid_until {
            last = last.min(valid_until);
        }
        let mut date = first;
        while date <= last {
            if self.recurrence.fires_on(date) {
                for time in self.recurrence.times() {
                    let local = date.and_time(*time);
                    if let Some(start) = zone::to_utc_ms(self.tz, local)
                        && (from_ms..to_ms).contains(&start)
                    {
                        starts.push((start, local));
                    }
                }
            }
            match date.succ_opt() {
                Some(next) => date = next,
                None => break,
            }
        }
        starts.sort_unstable();
        starts.dedup_by_key(|(start, _)| *start);
        starts
    }
}
