//! Operator accounts, their login sessions and the audit log.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::is_unique_violation;
use crate::accounts::audit::{AuditFilter, AuditRecord, MAX_RESULTS, NewAuditRecord};
use crate::accounts::session::{NewSession, StoredSession};
use crate::accounts::{LOCKOUT, MAX_FAILED_LOGINS, NewUser, Role, User, UserPatch};
use crate::store::StoreError;

const USER_COLUMNS: &str = "u.id, u.name, u.display_name, u.role, u.region_id, u.emergency, u.created_at_ms, \
                            u.disabled_at_ms, u.failed_logins, u.locked_until_ms, u.last_login_ms, \
                            u.password_change_required";
/// How many columns [`USER_COLUMNS`] names: a query's own columns follow.
const USER_COLUMN_COUNT: usize = 12;

fn user(row: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = row.get(3)?;
    Ok(User {
        id: row.get(0)?,
        name: row.get(1)?,
        display_name: row.get(2)?,
        // The table's CHECK allows only the three; anything else reads as
        // the least privileged.
        role: role.parse().unwrap_or(Role::Viewer),
        region_id: row.get(4)?,
        emergency: row.get(5)?,
        created_at_ms: row.get(6)?,
        disabled_at_ms: row.get(7)?,
        failed_logins: row.get(8)?,
        locked_until_ms: row.get(9)?,
        last_login_ms: row.get(10)?,
        password_change_required: row.get(11)?,
    })
}

fn conflict_or(e: rusqlite::Error, name: &str) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict(format!("an account named {name} already exists; choose another name"))
    } else {
        StoreError::Sqlite(e)
    }
}

pub(super) fn create_user(conn: &Connection, new: &NewUser) -> Result<User, StoreError> {
    conn.execute(
        "INSERT INTO users (name, display_name, role, region_id, emergency, password_hash, created_at_ms,
                            password_change_required)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            new.name,
            new.display_name,
            new.role.as_str(),
            new.region_id,
            new.emergency,
            new.password_hash,
            new.created_at_ms,
            new.password_change_required
        ],
    )
    .map_err(|e| conflict_or(e, &new.name))?;
    user_by_id(conn, conn.last_insert_rowid())?
        .ok_or_else(|| StoreError::NotFound { what: format!("account {}", new.name) })
}

pub(super) fn users(conn: &Connection) -> Result<Vec<User>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.name"))?;
    let rows = stmt.query_map([], user)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn user_by_id(conn: &Connection, id: i64) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1");
    Ok(conn.query_row(&sql, [id], user).optional()?)
}

pub(super) fn user_by_name(conn: &Connection, name: &str) -> Result<Option<(User, String)>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.name = ?1");
    Ok(conn.query_row(&sql, [name], |row| Ok((user(row)?, row.get::<_, String>(USER_COLUMN_COUNT)?))).optional()?)
}

pub(super) fn update_user(conn: &mut Connection, id: i64, patch: &UserPatch) -> Result<User, StoreError> {
    let tx = conn.transaction()?;
    let Some(found) = user_by_id(&tx, id)? else {
        return Err(StoreError::NotFound { what: format!("account {id}") });
    };
    if let Some(name) = &patch.display_name {
        tx.execute("UPDATE users SET display_name = ?2 WHERE id = ?1", params![id, name])?;
    }
    if let Some(role) = patch.role {
        tx.execute("UPDATE users SET role = ?2 WHERE id = ?1", params![id, role.as_str()])?;
    }
    if let Some(region) = patch.region_id {
        tx.execute("UPDATE users SET region_id = ?2 WHERE id = ?1", params![id, region])?;
    }
    if let Some(emergency) = patch.emergency {
        tx.execute("UPDATE users SET emergency = ?2 WHERE id = ?1", params![id, emergency])?;
    }
    if let Some(hash) = &patch.password_hash {
        tx.execute(
            "UPDATE users SET password_hash = ?2, failed_logins = 0, locked_until_ms = NULL WHERE id = ?1",
            params![id, hash],
        )?;
    }
    if let Some(required) = patch.password_change_required {
        tx.execute("UPDATE users SET password_change_required = ?2 WHERE id = ?1", params![id, required])?;
    }
    if let Some(disabled) = patch.disabled_at_ms {
        tx.execute("UPDATE users SET disabled_at_ms = ?2 WHERE id = ?1", params![id, disabled])?;
    }
    // A changed password, role, region or a disabled account ends the
    // account's sessions: what they were granted no longer holds.
    let ends_sessions = patch.password_hash.is_some()
        || patch.role.is_some_and(|r| r != found.role)
        || patch.region_id.is_some_and(|r| r != found.region_id)
        || patch.emergency.is_some_and(|e| e != found.emergency)
        || patch.disabled_at_ms.is_some_and(|d| d.is_some());
    if ends_sessions {
        tx.execute("DELETE FROM user_sessions WHERE user_id = ?1", [id])?;
    }
    let updated = user_by_id(&tx, id)?.ok_or_else(|| StoreError::NotFound { what: format!("account {id}") })?;
    tx.commit()?;
    Ok(updated)
}

pub(super) fn record_login(conn: &Connection, id: i64, success: bool, now_ms: i64) -> Result<(), StoreError> {
    if success {
        conn.execute(
            "UPDATE users SET failed_logins = 0, locked_until_ms = NULL, last_login_ms = ?2 WHERE id = ?1",
            params![id, now_ms],
        )?;
    } else {
        let lock_until = now_ms.saturating_add(LOCKOUT.as_millis() as i64);
        conn.execute(
            // The count starts again once it has locked the account.
            "UPDATE users SET
                 locked_until_ms = CASE WHEN failed_logins + 1 >= ?2 THEN ?3 ELSE locked_until_ms END,
                 failed_logins = CASE WHEN failed_logins + 1 >= ?2 THEN 0 ELSE failed_logins + 1 END
             WHERE id = ?1",
            params![id, MAX_FAILED_LOGINS, lock_until],
        )?;
    }
    Ok(())
}

pub(super) fn create_session(conn: &Connection, new: &NewSession) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO user_sessions (id_hash, user_id, csrf, created_at_ms, last_seen_ms, expires_at_ms, ip)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
        params![new.id_hash, new.user_id, new.csrf, new.created_at_ms, new.expires_at_ms, new.ip],
    )?;
    // Sessions long over are forgotten as new ones begin.
    conn.execute("DELETE FROM user_sessions WHERE expires_at_ms <= ?1", [new.created_at_ms])?;
    Ok(())
}

pub(super) fn session(conn: &Connection, id_hash: &str) -> Result<Option<StoredSession>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLUMNS}, s.csrf, s.created_at_ms, s.last_seen_ms, s.expires_at_ms
         FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?1"
    );
    let found = conn
        .query_row(&sql, [id_hash], |row| {
            Ok(StoredSession {
                id_hash: id_hash.to_owned(),
                user: user(row)?,
                csrf: row.get(USER_COLUMN_COUNT)?,
                created_at_ms: row.get(USER_COLUMN_COUNT + 1)?,
                last_seen_ms: row.get(USER_COLUMN_COUNT + 2)?,
                expires_at_ms: row.get(USER_COLUMN_COUNT + 3)?,
            })
        })
        .optional()?;
    Ok(found)
}

pub(super) fn touch_session(conn: &Connection, id_hash: &str, now_ms: i64) -> Result<(), StoreError> {
    conn.execute("UPDATE user_sessions SET last_seen_ms = ?2 WHERE id_hash = ?1", params![id_hash, now_ms])?;
    Ok(())
}

pub(super) fn delete_session(conn: &Connection, id_hash: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM user_sessions WHERE id_hash = ?1", [id_hash])?;
    Ok(())
}

pub(super) fn append_audit(conn: &Connection, r: &NewAuditRecord) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit_log (at_ms, actor, actor_kind, ip, action, method, path, status, village_id, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![r.at_ms, r.actor, r.actor_kind, r.ip, r.action, r.method, r.path, r.status, r.village_id, r.detail],
    )?;
    Ok(())
}

pub(super) fn audit(conn: &Connection, f: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
    // Every condition is always present and disabled by a NULL parameter,
    // so the statement is one fixed text.
    let sql = "SELECT id, at_ms, actor, actor_kind, ip, action, method, path, status, village_id, detail
               FROM audit_log
               WHERE (?1 IS NULL OR at_ms >= ?1) AND (?2 IS NULL OR at_ms < ?2)
                 AND (?3 IS NULL OR actor = ?3 OR substr(actor, instr(actor, ':') + 1) = ?3)
                 AND (?4 IS NULL OR action = ?4 OR (substr(?4, -1) = '.' AND substr(action, 1, length(?4)) = ?4))
                 AND (?5 IS NULL OR village_id = ?5)
                 AND (?7 IS NULL OR id < ?7)
               ORDER BY id DESC LIMIT ?6";
    let limit = f.limit.unwrap_or(200).clamp(1, MAX_RESULTS);
    let mut stmt = conn.prepare(sql)?;
    let rows =
        stmt.query_map(params![f.from_ms, f.to_ms, f.actor, f.action, f.village_id, limit, f.before_id], |row| {
            Ok(AuditRecord {
                id: row.get(0)?,
                at_ms: row.get(1)?,
                actor: row.get(2)?,
                actor_kind: row.get(3)?,
                ip: row.get(4)?,
                action: row.get(5)?,
                method: row.get(6)?,
                path: row.get(7)?,
                status: row.get(8)?,
                village_id: row.get(9)?,
                detail: row.get(10)?,
            })
        })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
