//! CAP alerts received, and the live session each one started.

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::is_unique_violation;
use crate::alerts::{AlertRecord, NewAlertRecord};
use crate::store::StoreError;

const COLUMNS: &str = "id, sender, identifier, sent, msg_type, thread_id, session_id, token_name, received_at_ms";

pub(super) fn insert(conn: &mut Connection, new: &NewAlertRecord) -> Result<AlertRecord, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO cap_alerts (sender, identifier, sent, msg_type, thread_id, token_name, received_at_ms)
         VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6)",
        params![new.sender, new.identifier, new.sent, new.msg_type, new.token_name, new.received_at_ms],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!("alert {} from {} was already received", new.identifier, new.sender))
        } else {
            StoreError::Sqlite(e)
        }
    })?;
    let id = tx.last_insert_rowid();
    // An alert that starts a thread is its own thread.
    let thread_id = new.thread_id.unwrap_or(id);
    tx.execute("UPDATE cap_alerts SET thread_id = ?2 WHERE id = ?1", params![id, thread_id])?;
    let record = one(&tx, id)?.ok_or_else(|| StoreError::NotFound { what: format!("alert {id}") })?;
    tx.commit()?;
    Ok(record)
}

pub(super) fn by_key(conn: &Connection, sender: &str, identifier: &str) -> Result<Option<AlertRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM cap_alerts WHERE sender = ?1 AND identifier = ?2");
    Ok(conn.query_row(&sql, [sender, identifier], record).optional()?)
}

pub(super) fn thread(conn: &Connection, thread_id: i64) -> Result<Vec<AlertRecord>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM cap_alerts WHERE thread_id = ?1 ORDER BY id"))?;
    let rows = stmt.query_map([thread_id], record)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn set_session(conn: &Connection, id: i64, session_id: &str) -> Result<(), StoreError> {
    conn.execute("UPDATE cap_alerts SET session_id = ?2 WHERE id = ?1", params![id, session_id])?;
    Ok(())
}

pub(super) fn delete(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.execute("DELETE FROM cap_alerts WHERE id = ?1", [id])?;
    Ok(())
}

fn one(conn: &Connection, id: i64) -> Result<Option<AlertRecord>, StoreError> {
    Ok(conn.query_row(&format!("SELECT {COLUMNS} FROM cap_alerts WHERE id = ?1"), [id], record).optional()?)
}

fn record(row: &Row<'_>) -> rusqlite::Result<AlertRecord> {
    Ok(AlertRecord {
        id: row.get(0)?,
        sender: row.get(1)?,
        identifier: row.get(2)?,
        sent: row.get(3)?,
        msg_type: row.get(4)?,
        thread_id: row.get(5)?,
        session_id: row.get(6)?,
        token_name: row.get(7)?,
        received_at_ms: row.get(8)?,
    })
}

#[cfg(test)]
mod tests {
    use crate::alerts::NewAlertRecord;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Store, StoreError};

    fn new(identifier: &str, thread_id: Option<i64>) -> NewAlertRecord {
        NewAlertRecord {
            sender: "qx@example".into(),
            identifier: identifier.into(),
            sent: "2025-06-15T23:10:00+08:00".into(),
            msg_type: "Alert".into(),
            thread_id,
            token_name: "province".into(),
            received_at_ms: 5,
        }
    }

    #[test]
    fn alerts_form_threads_and_keep_their_sessions() {
        let store = SqliteStore::open_in_memory().expect("store");
        let first = store.insert_alert(&new("a1", None)).expect("insert");
        assert_eq!(first.thread_id, first.id);
        store.set_alert_session(first.id, "s-1").expect("session");
        let update = store.insert_alert(&new("a2", Some(first.thread_id))).expect("insert");
        let thread = store.alert_thread(first.id).expect("thread");
        assert_eq!(thread.iter().map(|a| a.identifier.as_str()).collect::<Vec<_>>(), ["a1", "a2"]);
        assert_eq!(thread[0].session_id.as_deref(), Some("s-1"));
        let found = store.alert_by_key("qx@example", "a2").expect("lookup").expect("found");
        assert_eq!(found, update);
        assert!(matches!(store.insert_alert(&new("a2", None)), Err(StoreError::Conflict(_))));
        store.delete_alert(update.id).expect("delete");
        assert_eq!(store.alert_by_key("qx@example", "a2").expect("lookup"), None);
    }
}
