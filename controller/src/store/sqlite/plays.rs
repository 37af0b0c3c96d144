//! Proof of play: events reported by agents, stored exactly once.

use dalaba_protocol::state::{PlayEvent, PlayOutcome};
use rusqlite::{Connection, Row, TransactionBehavior, params};

use crate::store::{PlayEventsStored, StoreError, StoredPlayEvent};

pub(super) fn record(
    conn: &mut Connection,
    agent_id: &str,
    events: &[PlayEvent],
    received_at_ms: i64,
) -> Result<PlayEventsStored, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let village_id: i64 =
        tx.query_row("SELECT village_id FROM agents WHERE id = ?1", [agent_id], |r| r.get(0)).map_err(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound { what: format!("agent {agent_id}") },
            e => StoreError::Sqlite(e),
        })?;
    let mut stored = PlayEventsStored::default();
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO play_events (agent_id, event_id, village_id, schedule_id, sha256, scheduled_ms,
                 started_ms, ended_ms, outcome, reason, amplifier_confirmed, received_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for e in events {
            let n = insert.execute(params![
                agent_id,
                e.id,
                village_id,
                e.schedule_id,
                e.sha256,
                e.scheduled_ms,
                e.started_ms,
                e.ended_ms,
                outcome_name(e.outcome),
                e.reason,
                e.amplifier_confirmed,
                received_at_ms,
            ])?;
            if n == 1 {
                stored.inserted += 1;
            } else {
                stored.duplicates += 1;
            }
        }
    }
    tx.commit()?;
    Ok(stored)
}

pub(super) fn of_village(
    conn: &Connection,
    village_id: i64,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<StoredPlayEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT agent_id, event_id, village_id, schedule_id, sha256, scheduled_ms, started_ms, ended_ms,
                outcome, reason, amplifier_confirmed, received_at_ms
         FROM play_events
         WHERE village_id = ?1 AND scheduled_ms >= ?2 AND scheduled_ms < ?3
         ORDER BY scheduled_ms, agent_id, event_id",
    )?;
    let rows = stmt.query_map(params![village_id, from_ms, to_ms], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn row(r: &Row<'_>) -> rusqlite::Result<StoredPlayEvent> {
    let outcome: String = r.get(8)?;
    Ok(StoredPlayEvent {
        agent_id: r.get(0)?,
        village_id: r.get(2)?,
        received_at_ms: r.get(11)?,
        event: PlayEvent {
            id: r.get(1)?,
            schedule_id: r.get(3)?,
            sha256: r.get(4)?,
            scheduled_ms: r.get(5)?,
            started_ms: r.get(6)?,
            ended_ms: r.get(7)?,
            // The CHECK constraint admits only the five names.
            outcome: outcome_from(&outcome).unwrap_or(PlayOutcome::Failed),
            reason: r.get(9)?,
            amplifier_confirmed: r.get(10)?,
        },
    })
}

fn outcome_name(o: PlayOutcome) -> &'static str {
    match o {
        PlayOutcome::Completed => "completed",
        PlayOutcome::Preempted => "preempted",
        PlayOutcome::Skipped => "skipped",
        PlayOutcome::Missed => "missed",
        PlayOutcome::Failed => "failed",
    }
}

fn outcome_from(s: &str) -> Option<PlayOutcome> {
    [PlayOutcome::Completed, PlayOutcome::Preempted, PlayOutcome::Skipped, PlayOutcome::Missed, PlayOutcome::Failed]
        .into_iter()
        .find(|o| outcome_name(*o) == s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;

    fn event(id: &str, scheduled_ms: i64, outcome: PlayOutcome) -> PlayEvent {
        PlayEvent {
            id: id.into(),
            schedule_id: 7,
            sha256: "ab".repeat(32),
            scheduled_ms,
            started_ms: Some(scheduled_ms + 3),
            ended_ms: Some(scheduled_ms + 30_000),
            outcome,
            reason: None,
            amplifier_confirmed: true,
        }
    }

    fn store_with_agent() -> (SqliteStore, i64) {
        let store = SqliteStore::open_in_memory().expect("store");
        let village = crate::store::testing::demo_with_agent(&store);
        (store, village)
    }

    #[test]
    fn events_are_stored_exactly_once() {
        let (store, village) = store_with_agent();
        let batch = [event("a", 1_000, PlayOutcome::Completed), event("b", 2_000, PlayOutcome::Missed)];
        assert_eq!(
            store.record_play_events("ag-1", &batch, 5).expect("store"),
            PlayEventsStored { inserted: 2, duplicates: 0 }
        );
        // The link dropped before the acknowledgement: the agent sends again.
        let again = [event("b", 2_000, PlayOutcome::Missed), event("c", 3_000, PlayOutcome::Failed)];
        assert_eq!(
            store.record_play_events("ag-1", &again, 6).expect("store"),
            PlayEventsStored { inserted: 1, duplicates: 1 }
        );
        let stored = store.play_events(village, 0, 10_000).expect("query");
        let ids: Vec<&str> = stored.iter().map(|e| e.event.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(stored[1].event, event("b", 2_000, PlayOutcome::Missed));
        assert_eq!(stored[1].received_at_ms, 5, "the first delivery is kept");
        assert_eq!(store.play_events(village, 1_500, 2_500).expect("query").len(), 1);
    }

    #[test]
    fn unknown_agent_is_not_found() {
        let (store, _) = store_with_agent();
        let err = store.record_play_events("ag-x", &[event("a", 1, PlayOutcome::Completed)], 1).unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    }
}
