//! Enrolment codes and agents.

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use sha2::{Digest, Sha256};

use super::{is_unique_violation, regions};
use crate::directory::{Level, ValidationError};
use crate::store::{Agent, EnrolmentCode, NewAgent, RedeemError, StoreError};

pub(super) fn create_code(
    conn: &mut Connection,
    village_id: i64,
    code: &str,
    expires_at_ms: i64,
    now_ms: i64,
) -> Result<EnrolmentCode, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let village = regions::by_id(&tx, village_id)?
        .ok_or_else(|| StoreError::NotFound { what: format!("village {village_id}") })?;
    if village.level != Level::Village {
        let level = village.level;
        return Err(ValidationError::NotAVillage { region_id: village_id, level }.into());
    }
    tx.execute(
        "INSERT INTO enrolment_codes (code_hash, village_id, created_at_ms, expires_at_ms)
         VALUES (?1, ?2, ?3, ?4)",
        params![code_hash(code), village_id, now_ms, expires_at_ms],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict("this enrolment code already exists; generate another".into())
        } else {
            StoreError::Sqlite(e)
        }
    })?;
    tx.commit()?;
    Ok(EnrolmentCode { code: code.to_owned(), village_id, created_at_ms: now_ms, expires_at_ms })
}

pub(super) fn redeem(conn: &mut Connection, code: &str, now_ms: i64, agent: &NewAgent) -> Result<Agent, RedeemError> {
    // IMMEDIATE takes the write lock before reading the code, so a second
    // redeemer (even through another connection) waits and then sees it used.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(StoreError::from)?;
    let hash = code_hash(code);
    let found: Option<(i64, i64, Option<i64>)> = tx
        .query_row(
            "SELECT village_id, expires_at_ms, used_at_ms FROM enrolment_codes
             WHERE code_hash = ?1",
            [&hash],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()
        .map_err(StoreError::from)?;
    let (village_id, expires_at_ms, used_at_ms) = found.ok_or(RedeemError::Unknown)?;
    if let Some(used_at_ms) = used_at_ms {
        return Err(RedeemError::AlreadyUsed { used_at_ms });
    }
    if now_ms >= expires_at_ms {
        return Err(RedeemError::Expired { expired_at_ms: expires_at_ms });
    }
    let marked = tx
        .execute(
            "UPDATE enrolment_codes SET used_at_ms = ?2, used_by_agent = ?3
             WHERE code_hash = ?1 AND used_at_ms IS NULL",
            params![hash, now_ms, agent.id],
        )
        .map_err(StoreError::from)?;
    if marked != 1 {
        return Err(RedeemError::AlreadyUsed { used_at_ms: now_ms });
    }
    tx.execute(
        "INSERT INTO agents (id, village_id, secret_hash, hostname, agent_version,
             hardware_json, enrolled_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            agent.id,
            village_id,
            agent.secret_hash,
            agent.hostname,
            agent.agent_version,
            agent.hardware_json,
            agent.enrolled_at_ms,
        ],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!("agent {} is already enrolled", agent.id))
        } else {
            StoreError::Sqlite(e)
        }
    })?;
    tx.commit().map_err(StoreError::from)?;
    Ok(Agent {
        id: agent.id.clone(),
        village_id,
        hostname: agent.hostname.clone(),
        agent_version: agent.agent_version.clone(),
        hardware_json: agent.hardware_json.clone(),
        enrolled_at_ms: agent.enrolled_at_ms,
        last_seen_ms: None,
        last_connected_ms: None,
    })
}

pub(super) fn all(conn: &Connection) -> Result<Vec<Agent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, village_id, hostname, agent_version, hardware_json, enrolled_at_ms,
             last_seen_ms, last_connected_ms
         FROM agents ORDER BY id",
    )?;
    let agents = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(agents)
}

pub(super) fn by_id(conn: &Connection, id: &str) -> Result<Option<Agent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, village_id, hostname, agent_version, hardware_json, enrolled_at_ms,
             last_seen_ms, last_connected_ms
         FROM agents WHERE id = ?1",
    )?;
    Ok(stmt.query_row([id], from_row).optional()?)
}

pub(super) fn secret_hash(conn: &Connection, id: &str) -> Result<Option<String>, StoreError> {
    let hash = conn.query_row("SELECT secret_hash FROM agents WHERE id = ?1", [id], |row| row.get(0)).optional()?;
    Ok(hash)
}

pub(super) fn record_connected(
    conn: &Connection,
    id: &str,
    at_ms: i64,
    agent_version: &str,
    hardware_json: &str,
) -> Result<(), StoreError> {
    let changed = conn.execute(
        "UPDATE agents SET last_connected_ms = ?2, last_seen_ms = ?2, agent_version = ?3,
             hardware_json = ?4
         WHERE id = ?1",
        params![id, at_ms, agent_version, hardware_json],
    )?;
    found(changed, id)
}

pub(super) fn record_seen(conn: &Connection, id: &str, at_ms: i64) -> Result<(), StoreError> {
    let changed = conn.execute("UPDATE agents SET last_seen_ms = ?2 WHERE id = ?1", params![id, at_ms])?;
    found(changed, id)
}

pub(super) fn delete(conn: &Connection, id: &str) -> Result<(), StoreError> {
    let changed = conn.execute("DELETE FROM agents WHERE id = ?1", [id])?;
    found(changed, id)
}

/// Codes are stored hashed: a copy of the database must not enrol agents.
fn code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

fn found(changed: usize, id: &str) -> Result<(), StoreError> {
    if changed == 0 { Err(StoreError::NotFound { what: format!("agent {id}") }) } else { Ok(()) }
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Agent> {
    Ok(Agent {
        id: row.get(0)?,
        village_id: row.get(1)?,
        hostname: row.get(2)?,
        agent_version: row.get(3)?,
        hardware_json: row.get(4)?,
        enrolled_at_ms: row.get(5)?,
        last_seen_ms: row.get(6)?,
        last_connected_ms: row.get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::directory::demo::load_demo;
    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;

    fn agent(id: &str) -> NewAgent {
        NewAgent {
            id: id.into(),
            secret_hash: format!("hash-of-{id}"),
            hostname: "dalaba-pi".into(),
            agent_version: "0.1.0".into(),
            hardware_json: r#"{"model":"Pi 4"}"#.into(),
            enrolled_at_ms: 1_000,
        }
    }

    /// A demo-county store and the id of one of its villages.
    fn store_at(path: Option<&std::path::Path>) -> (SqliteStore, i64) {
        let store = match path {
            Some(path) => SqliteStore::open(path),
            None => SqliteStore::open_in_memory(),
        }
        .expect("open");
        load_demo(&store).expect("demo");
        let village = store.regions().expect("regions").into_iter().find(|r| r.level == Level::Village);
        (store, village.expect("a village").id)
    }

    #[test]
    fn redeem_inserts_the_agent_in_the_codes_village() {
        let (store, village) = store_at(None);
        let code = store.create_enrolment_code(village, "7K3F-9QX2", 5_000, 1_000).expect("code");
        assert_eq!(code.village_id, village);
        let enrolled = store.redeem_enrolment_code("7K3F-9QX2", 2_000, &agent("a1")).expect("redeem");
        assert_eq!(enrolled.village_id, village);
        assert_eq!(store.agent("a1").expect("read"), Some(enrolled.clone()));
        assert_eq!(store.agents().expect("list"), [enrolled]);
        assert_eq!(store.agent_secret_hash("a1").expect("hash").as_deref(), Some("hash-of-a1"));
        assert_eq!(store.agent_secret_hash("nobody").expect("hash"), None);
        let stored: String =
            store.lock().query_row("SELECT code_hash FROM enrolment_codes", [], |r| r.get(0)).expect("row");
        assert_ne!(stored, "7K3F-9QX2", "codes are stored hashed");
    }

    #[test]
    fn redeem_distinguishes_unknown_expired_and_used() {
        let (store, village) = store_at(None);
        store.create_enrolment_code(village, "A", 5_000, 1_000).expect("code");
        let err = store.redeem_enrolment_code("B", 2_000, &agent("a1")).expect_err("unknown");
        assert!(matches!(err, RedeemError::Unknown));
        let err = store.redeem_enrolment_code("A", 5_000, &agent("a1")).expect_err("expired");
        assert!(matches!(err, RedeemError::Expired { expired_at_ms: 5_000 }));
        store.redeem_enrolment_code("A", 4_000, &agent("a1")).expect("redeem");
        let err = store.redeem_enrolment_code("A", 4_500, &agent("a2")).expect_err("used");
        assert!(matches!(err, RedeemError::AlreadyUsed { used_at_ms: 4_000 }));
        assert_eq!(store.agents().expect("list").len(), 1);
    }

    #[test]
    fn a_failed_redeem_leaves_the_code_unused() {
        let (store, village) = store_at(None);
        store.create_enrolment_code(village, "A", 5_000, 0).expect("code");
        store.create_enrolment_code(village, "B", 5_000, 0).expect("code");
        store.redeem_enrolment_code("A", 1, &agent("a1")).expect("redeem");
        let err = store.redeem_enrolment_code("B", 1, &agent("a1")).expect_err("same agent id");
        assert!(matches!(err, RedeemError::Store(StoreError::Conflict(_))));
        store.redeem_enrolment_code("B", 2, &agent("a2")).expect("B is still unused");
    }

    #[test]
    fn codes_are_for_existing_villages_only() {
        let (store, village) = store_at(None);
        let county = store.regions().expect("regions").into_iter().find(|r| r.level == Level::County);
        let county = county.expect("county").id;
        let err = store.create_enrolment_code(county, "A", 5, 0).expect_err("county");
        assert!(err.to_string().ends_with("is a county, not a village"), "{err}");
        let err = store.create_enrolment_code(-1, "A", 5, 0).expect_err("missing");
        assert_eq!(err.to_string(), "village -1 not found");
        store.create_enrolment_code(village, "A", 5, 0).expect("code");
        let err = store.create_enrolment_code(village, "A", 5, 0).expect_err("duplicate");
        assert!(matches!(err, StoreError::Conflict(_)));
    }

    #[test]
    fn concurrent_redeems_use_a_code_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dalaba.db");
        let (store, village) = store_at(Some(&path));
        store.create_enrolment_code(village, "ONCE", i64::MAX, 0).expect("code");
        // Two stores on one file: two connections, as with two processes.
        let stores = [Arc::new(store), Arc::new(SqliteStore::open(&path).expect("second"))];
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = Arc::clone(&stores[i % 2]);
                std::thread::spawn(move || store.redeem_enrolment_code("ONCE", 10, &agent(&format!("a{i}"))))
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().expect("no panic")).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| matches!(e, RedeemError::AlreadyUsed { .. })));
        assert_eq!(stores[1].agents().expect("list").len(), 1);
    }

    #[test]
    fn connection_records_update_the_agent() {
        let (store, village) = store_at(None);
        store.create_enrolment_code(village, "A", 5_000, 0).expect("code");
        store.redeem_enrolment_code("A", 1, &agent("a1")).expect("redeem");
        store.record_agent_connected("a1", 100, "0.2.0", r#"{"model":"Pi 5"}"#).expect("connected");
        store.record_agent_seen("a1", 150).expect("seen");
        let a1 = store.agent("a1").expect("read").expect("exists");
        assert_eq!((a1.last_connected_ms, a1.last_seen_ms), (Some(100), Some(150)));
        assert_eq!((a1.agent_version.as_str(), a1.hardware_json.as_str()), ("0.2.0", r#"{"model":"Pi 5"}"#));
        let err = store.record_agent_seen("nobody", 1).expect_err("unknown");
        assert_eq!(err.to_string(), "agent nobody not found");
        store.delete_agent("a1").expect("delete");
        assert_eq!(store.agent("a1").expect("read"), None);
        assert!(store.delete_agent("a1").is_err());
    }
}
