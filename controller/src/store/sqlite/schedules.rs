//! Schedules, quiet hours and the versions of agents' desired states.
//!
//! A schedule's settings are one JSON column (what the operator wrote, less
//! the playlist); its playlist is rows of `schedule_items`, so the database
//! itself refuses to delete a library item a schedule plays.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::library::LibraryItem;
use crate::schedules::{PlaylistEntry, ScheduleSpec, StoredSchedule};
use crate::store::{DesiredVersion, StoreError};
use dalaba_schedules::QuietHours;

pub(super) fn all(conn: &Connection) -> Result<Vec<StoredSchedule>, StoreError> {
    let mut stmt = conn.prepare("SELECT id, spec, created_at_ms, updated_at_ms FROM schedules ORDER BY id")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut items = playlists(conn)?;
    rows.into_iter()
        .map(|(id, spec, created, updated)| {
            let playlist = items.remove(&id).unwrap_or_default();
            Ok(StoredSchedule {
                id,
                spec: decode(id, &spec, playlist)?,
                created_at_ms: created,
                updated_at_ms: updated,
            })
        })
        .collect()
}

pub(super) fn one(conn: &Connection, id: i64) -> Result<Option<StoredSchedule>, StoreError> {
    let row = conn
        .query_row("SELECT spec, created_at_ms, updated_at_ms FROM schedules WHERE id = ?1", [id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        })
        .optional()?;
    let Some((spec, created, updated)) = row else { return Ok(None) };
    let playlist = playlist(conn, id)?;
    Ok(Some(StoredSchedule { id, spec: decode(id, &spec, playlist)?, created_at_ms: created, updated_at_ms: updated }))
}

pub(super) fn create(conn: &mut Connection, spec: &ScheduleSpec, now_ms: i64) -> Result<StoredSchedule, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO schedules (name, enabled, spec, created_at_ms, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![spec.name, spec.enabled, encode(spec)?, now_ms],
    )?;
    let id = tx.last_insert_rowid();
    insert_playlist(&tx, id, &spec.playlist)?;
    tx.commit()?;
    Ok(StoredSchedule { id, spec: spec.clone(), created_at_ms: now_ms, updated_at_ms: now_ms })
}

pub(super) fn update(
    conn: &mut Connection,
    id: i64,
    spec: &ScheduleSpec,
    now_ms: i64,
) -> Result<StoredSchedule, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let created: Option<i64> =
        tx.query_row("SELECT created_at_ms FROM schedules WHERE id = ?1", [id], |r| r.get(0)).optional()?;
    let Some(created) = created else { return Err(StoreError::NotFound { what: format!("schedule {id}") }) };
    tx.execute(
        "UPDATE schedules SET name = ?2, enabled = ?3, spec = ?4, updated_at_ms = ?5 WHERE id = ?1",
        params![id, spec.name, spec.enabled, encode(spec)?, now_ms],
    )?;
    tx.execute("DELETE FROM schedule_items WHERE schedule_id = ?1", [id])?;
    insert_playlist(&tx, id, &spec.playlist)?;
    tx.commit()?;
    Ok(StoredSchedule { id, spec: spec.clone(), created_at_ms: created, updated_at_ms: now_ms })
}

pub(super) fn delete(conn: &mut Connection, id: i64) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute("DELETE FROM schedule_items WHERE schedule_id = ?1", [id])?;
    if tx.execute("DELETE FROM schedules WHERE id = ?1", [id])? == 0 {
        return Err(StoreError::NotFound { what: format!("schedule {id}") });
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn quiet_hours(conn: &Connection) -> Result<Option<QuietHours>, StoreError> {
    let json: Option<String> =
        conn.query_row("SELECT spec FROM quiet_hours WHERE id = 1", [], |r| r.get(0)).optional()?;
    json.map(|j| {
        serde_json::from_str(&j).map_err(|e| StoreError::Conflict(format!("stored quiet hours are unreadable: {e}")))
    })
    .transpose()
}

pub(super) fn set_quiet_hours(conn: &Connection, quiet: &QuietHours, now_ms: i64) -> Result<(), StoreError> {
    let json = serde_json::to_string(quiet).map_err(|e| StoreError::Conflict(e.to_string()))?;
    conn.execute(
        "INSERT INTO quiet_hours (id, spec, updated_at_ms) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, updated_at_ms = excluded.updated_at_ms",
        params![json, now_ms],
    )?;
    Ok(())
}

pub(super) fn desired_versions(conn: &Connection) -> Result<Vec<DesiredVersion>, StoreError> {
    let mut stmt = conn.prepare("SELECT agent_id, version, digest FROM desired_states")?;
    let rows = stmt
        .query_map([], |r| {
            Ok(DesiredVersion { agent_id: r.get(0)?, version: r.get::<_, i64>(1)?.max(0) as u64, digest: r.get(2)? })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(super) fn record_desired_versions(
    conn: &mut Connection,
    versions: &[DesiredVersion],
    now_ms: i64,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO desired_states (agent_id, version, digest, built_at_ms)
             SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM agents WHERE id = ?1)
             ON CONFLICT (agent_id) DO UPDATE
               SET version = excluded.version, digest = excluded.digest, built_at_ms = excluded.built_at_ms",
        )?;
        for v in versions {
            let version = i64::try_from(v.version).unwrap_or(i64::MAX);
            stmt.execute(params![v.agent_id, version, v.digest, now_ms])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Settings as stored: the spec without its playlist.
fn encode(spec: &ScheduleSpec) -> Result<String, StoreError> {
    let mut value = serde_json::to_value(spec).map_err(|e| StoreError::Conflict(e.to_string()))?;
    if let Some(map) = value.as_object_mut() {
        map.remove("playlist");
    }
    Ok(value.to_string())
}

fn decode(id: i64, json: &str, playlist: Vec<PlaylistEntry>) -> Result<ScheduleSpec, StoreError> {
    let mut value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| StoreError::Conflict(format!("stored schedule {id} is unreadable: {e}")))?;
    if let Some(map) = value.as_object_mut() {
        map.insert("playlist".into(), serde_json::to_value(playlist).unwrap_or_default());
    }
    serde_json::from_value(value).map_err(|e| StoreError::Conflict(format!("stored schedule {id} is unreadable: {e}")))
}

fn insert_playlist(conn: &Connection, id: i64, playlist: &[PlaylistEntry]) -> Result<(), StoreError> {
    let mut stmt =
        conn.prepare("INSERT INTO schedule_items (schedule_id, position, item_id, repeats) VALUES (?1, ?2, ?3, ?4)")?;
    for (position, entry) in playlist.iter().enumerate() {
        match stmt.execute(params![id, position as i64, entry.item_id, entry.repeats]) {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                return Err(StoreError::NotFound { what: format!("library item {}", entry.item_id) });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn playlist(conn: &Connection, id: i64) -> Result<Vec<PlaylistEntry>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT item_id, repeats FROM schedule_items WHERE schedule_id = ?1 ORDER BY position")?;
    let rows = stmt
        .query_map([id], |r| Ok(PlaylistEntry { item_id: r.get(0)?, repeats: r.get(1)? }))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn playlists(conn: &Connection) -> Result<std::collections::HashMap<i64, Vec<PlaylistEntry>>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT schedule_id, item_id, repeats FROM schedule_items ORDER BY schedule_id, position")?;
    let mut map: std::collections::HashMap<i64, Vec<PlaylistEntry>> = Default::default();
    let rows =
        stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, PlaylistEntry { item_id: r.get(1)?, repeats: r.get(2)? })))?;
    for row in rows {
        let (id, entry) = row?;
        map.entry(id).or_default().push(entry);
    }
    Ok(map)
}

/// The library by item id.
pub(super) fn library_by_id(conn: &Connection) -> Result<std::collections::HashMap<i64, LibraryItem>, StoreError> {
    Ok(super::library::items(conn)?.into_iter().map(|item| (item.id, item)).collect())
}
