//! API tokens, kept by the SHA-256 of the whole token.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::is_unique_violation;
use crate::store::StoreError;
use crate::tokens::{ApiToken, NewApiToken, Scope};

const COLUMNS: &str = "id, name, scopes, created_at_ms, last_used_ms, revoked_at_ms";

pub(super) fn create(conn: &Connection, new: &NewApiToken) -> Result<ApiToken, StoreError> {
    conn.execute(
        "INSERT INTO api_tokens (name, secret_hash, scopes, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
        params![new.name, new.secret_hash, Scope::join(&new.scopes), new.created_at_ms],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!(
                "an API token named {} already exists (revoked tokens keep their names); choose another name",
                new.name
            ))
        } else {
            StoreError::Sqlite(e)
        }
    })?;
    Ok(ApiToken {
        id: conn.last_insert_rowid(),
        name: new.name.clone(),
        scopes: new.scopes.clone(),
        created_at_ms: new.created_at_ms,
        last_used_ms: None,
        revoked_at_ms: None,
    })
}

pub(super) fn all(conn: &Connection) -> Result<Vec<ApiToken>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM api_tokens ORDER BY name"))?;
    let rows = stmt.query_map([], token)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn by_hash(conn: &Connection, secret_hash: &str) -> Result<Option<(ApiToken, String)>, StoreError> {
    let sql = format!("SELECT {COLUMNS}, secret_hash FROM api_tokens WHERE secret_hash = ?1");
    let found = conn.query_row(&sql, [secret_hash], |row| Ok((token(row)?, row.get::<_, String>(6)?))).optional()?;
    Ok(found)
}

pub(super) fn record_used(conn: &Connection, id: i64, at_ms: i64) -> Result<(), StoreError> {
    conn.execute("UPDATE api_tokens SET last_used_ms = ?2 WHERE id = ?1", params![id, at_ms])?;
    Ok(())
}

pub(super) fn revoke(conn: &Connection, name: &str, at_ms: i64) -> Result<ApiToken, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE name = ?1");
    let Some(found) = conn.query_row(&sql, [name], token).optional()? else {
        return Err(StoreError::NotFound { what: format!("API token {name}") });
    };
    if found.revoked_at_ms.is_some() {
        return Err(StoreError::Conflict(format!("API token {name} is already revoked")));
    }
    conn.execute("UPDATE api_tokens SET revoked_at_ms = ?2 WHERE id = ?1", params![found.id, at_ms])?;
    Ok(ApiToken { revoked_at_ms: Some(at_ms), ..found })
}

fn token(row: &Row<'_>) -> rusqlite::Result<ApiToken> {
    let scopes: String = row.get(2)?;
    // Stored by `create` from parsed scopes; an unknown name (written by a
    // newer controller) grants nothing rather than failing the lookup.
    let scopes = scopes.split(',').filter_map(|s| s.parse().ok()).collect();
    Ok(ApiToken {
        id: row.get(0)?,
        name: row.get(1)?,
        scopes,
        created_at_ms: row.get(3)?,
        last_used_ms: row.get(4)?,
        revoked_at_ms: row.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Store, StoreError};
    use crate::tokens::{Scope, create, hash};

    #[test]
    fn tokens_are_found_by_hash_used_and_revoked() {
        let store = SqliteStore::open_in_memory().expect("store");
        let made = create("province", vec![Scope::Emergency], 10).expect("create");
        let stored = store.create_api_token(&made.new).expect("insert");
        let (found, stored_hash) = store.api_token_by_hash(&hash(&made.token)).expect("lookup").expect("found");
        assert_eq!((found.clone(), stored_hash), (stored, hash(&made.token)));
        assert_eq!(store.api_token_by_hash(&hash("dlb_other")).expect("lookup"), None);
        store.record_api_token_used(found.id, 20).expect("used");
        let revoked = store.revoke_api_token("province", 30).expect("revoke");
        assert_eq!((revoked.last_used_ms, revoked.revoked_at_ms), (Some(20), Some(30)));
        assert!(matches!(store.revoke_api_token("province", 31), Err(StoreError::Conflict(_))));
        assert!(matches!(store.revoke_api_token("nobody", 31), Err(StoreError::NotFound { .. })));
        let again = create("province", vec![Scope::Read], 40).expect("create");
        let err = store.create_api_token(&again.new).expect_err("a used name");
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(store.api_tokens().expect("list").len(), 1);
    }
}
