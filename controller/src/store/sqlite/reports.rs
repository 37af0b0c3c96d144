//! The sums behind reports, aggregated in SQL: per village and county day
//! from `play_events`, per village from the live session reports. A month
//! of a county is about 130,000 play events and comes back as at most
//! villages × days rows.

use chrono::NaiveDate;
use rusqlite::{Connection, params};

use super::SqliteStore;
use crate::reports::{DaySpan, LiveCounts, PlayCounts, ReportCounts, VillageDay, VillageLive};
use crate::store::StoreError;

impl SqliteStore {
    /// `Store::report_counts`: villages and days without any event are
    /// left out.
    pub(super) fn counts_for_report(&self, villages: &[i64], days: &[DaySpan]) -> Result<ReportCounts, StoreError> {
        let mut conn = self.lock();
        // One read transaction: every day sees the same events.
        let tx = conn.transaction()?;
        let counts = report_counts(&tx, villages, days)?;
        tx.commit()?;
        Ok(counts)
    }
}

/// [`SqliteStore::report_counts`] on a connection.
pub(super) fn report_counts(conn: &Connection, villages: &[i64], days: &[DaySpan]) -> Result<ReportCounts, StoreError> {
    let ids = serde_json::to_string(villages).unwrap_or_else(|_| "[]".to_owned());
    let mut plays = Vec::new();
    // One query per county day: a day is local midnight to local midnight,
    // which SQL cannot compute for every time zone, and each query is a
    // range scan of `play_events_village_time` per village.
    let mut per_day = conn.prepare_cached(
        "SELECT village_id,
                SUM(outcome = 'completed'), SUM(outcome = 'preempted'), SUM(outcome = 'missed'),
                SUM(outcome = 'failed'), SUM(outcome = 'skipped'),
                SUM(started_ms IS NOT NULL AND amplifier_confirmed = 0)
         FROM play_events
         WHERE village_id IN (SELECT value FROM json_each(?1)) AND scheduled_ms >= ?2 AND scheduled_ms < ?3
         GROUP BY village_id",
    )?;
    for span in days {
        let rows = per_day.query_map(params![ids, span.from_ms, span.to_ms], |r| day_row(r, span.day))?;
        for row in rows {
            plays.push(row?);
        }
    }
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return Ok(ReportCounts { plays, live: Vec::new() });
    };
    let mut live_stmt = conn.prepare_cached(
        "SELECT a.village_id, COUNT(DISTINCT a.session_id),
                COUNT(DISTINCT CASE WHEN a.playing_from_ms IS NOT NULL THEN a.session_id END)
         FROM live_sessions s JOIN live_session_agents a ON a.session_id = s.id
         WHERE s.started_at_ms >= ?2 AND s.started_at_ms < ?3
           AND a.village_id IN (SELECT value FROM json_each(?1))
         GROUP BY a.village_id",
    )?;
    let live = live_stmt
        .query_map(params![ids, first.from_ms, last.to_ms], |r| {
            Ok(VillageLive {
                village_id: r.get(0)?,
                live: LiveCounts { targeted: count(r.get(1)?), reached: count(r.get(2)?) },
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(ReportCounts { plays, live })
}

fn day_row(r: &rusqlite::Row<'_>, day: NaiveDate) -> rusqlite::Result<VillageDay> {
    Ok(VillageDay {
        village_id: r.get(0)?,
        day,
        plays: PlayCounts {
            played: count(r.get(1)?),
            preempted: count(r.get(2)?),
            missed: count(r.get(3)?),
            failed: count(r.get(4)?),
            skipped: count(r.get(5)?),
            amplifier_unconfirmed: count(r.get(6)?),
        },
    })
}

/// A SQL count (never negative) as `u64`.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
