//! Operator alarms: raised, cleared (never deleted) and acknowledged.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::is_unique_violation;
use crate::alarms::{Alarm, AlarmFilter, AlarmKind, NewAlarm};
use crate::store::StoreError;

const COLUMNS: &str = "id, kind, agent_id, village_id, raised_ms, cleared_ms, acknowledged_ms, acknowledged_by, detail";

/// Raises an alarm; `None` when one of its kind is already open for the
/// agent (the unique index decides, so two raisers never both win).
pub(super) fn raise(conn: &Connection, new: &NewAlarm) -> Result<Option<Alarm>, StoreError> {
    let inserted = conn.execute(
        "INSERT INTO alarms (kind, agent_id, village_id, raised_ms, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![new.kind.as_str(), new.agent_id, new.village_id, new.raised_ms, new.detail.to_string()],
    );
    match inserted {
        Ok(_) => one(conn, conn.last_insert_rowid()),
        Err(e) if is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Clears an open alarm; `None` if it is not open (or does not exist).
pub(super) fn clear(conn: &Connection, id: i64, at_ms: i64) -> Result<Option<Alarm>, StoreError> {
    let changed = conn.execute(
        "UPDATE alarms SET cleared_ms = MAX(raised_ms, ?2) WHERE id = ?1 AND cleared_ms IS NULL",
        params![id, at_ms],
    )?;
    if changed == 0 { Ok(None) } else { one(conn, id) }
}

/// Acknowledges an alarm; a second acknowledgement keeps the first's time
/// and name. `None` if there is no such alarm.
pub(super) fn acknowledge(conn: &Connection, id: i64, at_ms: i64, by: &str) -> Result<Option<Alarm>, StoreError> {
    conn.execute(
        "UPDATE alarms SET acknowledged_ms = ?2, acknowledged_by = ?3 WHERE id = ?1 AND acknowledged_ms IS NULL",
        params![id, at_ms, by],
    )?;
    one(conn, id)
}

/// One alarm.
pub(super) fn one(conn: &Connection, id: i64) -> Result<Option<Alarm>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM alarms WHERE id = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([id], from_row).optional()?)
}

/// Every open alarm, oldest first.
pub(super) fn open(conn: &Connection) -> Result<Vec<Alarm>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM alarms WHERE cleared_ms IS NULL ORDER BY id");
    let alarms = conn.prepare_cached(&sql)?.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(alarms)
}

/// Agents whose sync was failing when last seen, with since and reason.
pub(super) fn sync_failing(conn: &Connection) -> Result<Vec<(String, i64, String)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT agent_id, since_ms, reason FROM sync_failing ORDER BY agent_id")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Notes a failing sync (the first `since_ms` stays while it lasts) or its end.
pub(super) fn set_sync_failing(
    conn: &Connection,
    agent_id: &str,
    failing: Option<(i64, &str)>,
) -> Result<(), StoreError> {
    match failing {
        Some((since_ms, reason)) => conn.execute(
            "INSERT INTO sync_failing (agent_id, since_ms, reason) VALUES (?1, ?2, ?3)
             ON CONFLICT (agent_id) DO UPDATE SET reason = excluded.reason",
            params![agent_id, since_ms, reason],
        )?,
        None => conn.execute("DELETE FROM sync_failing WHERE agent_id = ?1", [agent_id])?,
    };
    Ok(())
}

/// Alarms by `filter`, newest first.
pub(super) fn list(conn: &Connection, filter: &AlarmFilter) -> Result<Vec<Alarm>, StoreError> {
    let villages = filter.villages.as_ref().map(|v| serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned()));
    let sql = format!(
        "SELECT {COLUMNS} FROM alarms
         WHERE (?1 = 0 OR cleared_ms IS NULL) AND (?2 IS NULL OR id < ?2)
           AND (?3 IS NULL OR village_id IN (SELECT value FROM json_each(?3)))
         ORDER BY id DESC LIMIT ?4"
    );
    let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
    let alarms = conn
        .prepare_cached(&sql)?
        .query_map(params![filter.open_only, filter.before, villages, limit], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(alarms)
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Alarm> {
    let kind: String = row.get(1)?;
    let detail: String = row.get(8)?;
    Ok(Alarm {
        id: row.get(0)?,
        kind: AlarmKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                1,
                rusqlite::types::Type::Text,
                format!("alarm kind {kind}").into(),
            )
        })?,
        agent_id: row.get(2)?,
        village_id: row.get(3)?,
        raised_ms: row.get(4)?,
        cleared_ms: row.get(5)?,
        acknowledged_ms: row.get(6)?,
        acknowledged_by: row.get(7)?,
        // The column is written from a `Value`; anything else reads as {}.
        detail: serde_json::from_str(&detail).unwrap_or_else(|_| serde_json::json!({})),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;

    fn new(kind: AlarmKind, agent: &str, at: i64) -> NewAlarm {
        NewAlarm { kind, agent_id: agent.into(), village_id: 7, raised_ms: at, detail: json!({"n": at}) }
    }

    #[test]
    fn one_open_alarm_per_kind_and_agent() {
        let store = SqliteStore::open_in_memory().expect("store");
        let first = store.raise_alarm(&new(AlarmKind::Disk, "a", 10)).expect("raise").expect("new");
        assert_eq!(store.raise_alarm(&new(AlarmKind::Disk, "a", 11)).expect("raise"), None, "still open");
        let other = store.raise_alarm(&new(AlarmKind::Clock, "a", 12)).expect("raise").expect("another kind");
        assert_eq!(store.open_alarms().expect("open").len(), 2);
        let cleared = store.clear_alarm(first.id, 20).expect("clear").expect("was open");
        assert_eq!(cleared.cleared_ms, Some(20));
        assert_eq!(store.clear_alarm(first.id, 21).expect("clear"), None, "cleared once");
        let again = store.raise_alarm(&new(AlarmKind::Disk, "a", 30)).expect("raise").expect("a new episode");
        assert!(again.id > other.id);
        let acked = store.acknowledge_alarm(again.id, 40, "user:li").expect("ack").expect("exists");
        let twice = store.acknowledge_alarm(again.id, 50, "user:wang").expect("ack").expect("exists");
        assert_eq!((twice.acknowledged_ms, twice.acknowledged_by.as_deref()), (Some(40), Some("user:li")));
        assert_eq!(acked, twice);
        assert_eq!(store.acknowledge_alarm(999, 1, "x").expect("ack"), None);
        let all = store.alarms(&AlarmFilter { limit: 10, ..Default::default() }).expect("list");
        assert_eq!(all.iter().map(|a| a.id).collect::<Vec<_>>(), [again.id, other.id, first.id]);
        let page = store.alarms(&AlarmFilter { limit: 1, before: Some(again.id), ..Default::default() }).expect("list");
        assert_eq!(page.iter().map(|a| a.id).collect::<Vec<_>>(), [other.id]);
        let open = store.alarms(&AlarmFilter { limit: 10, open_only: true, ..Default::default() }).expect("list");
        assert_eq!(open.len(), 2);
        let none =
            store.alarms(&AlarmFilter { limit: 10, villages: Some(vec![8]), ..Default::default() }).expect("list");
        assert!(none.is_empty());
        assert_eq!(first.detail, json!({"n": 10}));
    }

    #[test]
    fn a_failing_sync_keeps_its_first_since_until_it_ends() {
        let store = SqliteStore::open_in_memory().expect("store");
        store.set_sync_failing("b", Some((20, "disk full"))).expect("set");
        store.set_sync_failing("a", Some((10, "no route"))).expect("set");
        store.set_sync_failing("a", Some((30, "timed out"))).expect("set again");
        let rows = store.sync_failing().expect("rows");
        assert_eq!(rows, [("a".into(), 10, "timed out".into()), ("b".into(), 20, "disk full".into())]);
        store.set_sync_failing("a", None).expect("ended");
        store.set_sync_failing("zz", None).expect("nothing to end");
        assert_eq!(store.sync_failing().expect("rows"), [("b".into(), 20, "disk full".into())]);
    }
}
