//! The audio library: categories and items.

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::is_unique_violation;
use crate::library::{
    Category, ItemSource, LibraryItem, LibraryItemPatch, NewCategory, NewLibraryItem, StoredFile, check_description,
    check_new_category, check_title,
};
use crate::store::StoreError;

const ITEM_COLUMNS: &str = "id, title, description, category, source, original_sha256, original_size,
    original_format, distribution_sha256, distribution_size, distribution_format, duration_ms, loudness_lufs,
    true_peak_dbtp, gain_db, created_at_ms";

pub(super) fn categories(conn: &Connection) -> Result<Vec<Category>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT key, label_zh, label_en, builtin FROM library_categories ORDER BY key")?;
    let rows = stmt.query_map([], |r| {
        Ok(Category { key: r.get(0)?, label_zh: r.get(1)?, label_en: r.get(2)?, builtin: r.get(3)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn create_category(conn: &Connection, new: &NewCategory) -> Result<Category, StoreError> {
    check_new_category(new).map_err(invalid)?;
    conn.execute(
        "INSERT INTO library_categories (key, label_zh, label_en, builtin) VALUES (?1, ?2, ?3, 0)",
        params![new.key, new.label_zh.trim(), new.label_en.trim()],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!("category {} already exists", new.key))
        } else {
            StoreError::Sqlite(e)
        }
    })?;
    Ok(Category {
        key: new.key.clone(),
        label_zh: new.label_zh.trim().to_owned(),
        label_en: new.label_en.trim().to_owned(),
        builtin: false,
    })
}

pub(super) fn item(conn: &Connection, id: i64) -> Result<Option<LibraryItem>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {ITEM_COLUMNS} FROM library_items WHERE id = ?1"))?;
    Ok(stmt.query_row([id], item_row).optional()?)
}

pub(super) fn items(conn: &Connection) -> Result<Vec<LibraryItem>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {ITEM_COLUMNS} FROM library_items ORDER BY id DESC"))?;
    let rows = stmt.query_map([], item_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn by_original(conn: &Connection, sha256: &str) -> Result<Option<LibraryItem>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {ITEM_COLUMNS} FROM library_items WHERE original_sha256 = ?1"))?;
    Ok(stmt.query_row([sha256], item_row).optional()?)
}

pub(super) fn distribution(conn: &Connection, sha256: &str) -> Result<Option<StoredFile>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT distribution_sha256, distribution_size, distribution_format FROM library_items
         WHERE distribution_sha256 = ?1 LIMIT 1",
    )?;
    let file = stmt
        .query_row([sha256], |r| Ok(StoredFile { sha256: r.get(0)?, size_bytes: get_u64(r, 1)?, format: r.get(2)? }))
        .optional()?;
    Ok(file)
}

pub(super) fn content_in_use(conn: &Connection, sha256: &str) -> Result<bool, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM library_items WHERE original_sha256 = ?1 OR distribution_sha256 = ?1)",
    )?;
    Ok(stmt.query_row([sha256], |r| r.get(0))?)
}

pub(super) fn insert(conn: &mut Connection, new: &NewLibraryItem) -> Result<LibraryItem, StoreError> {
    check_title(&new.title).map_err(invalid)?;
    check_description(&new.description).map_err(invalid)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    require_category(&tx, &new.category)?;
    if let Some(existing) = by_original(&tx, &new.original.sha256)? {
        return Err(duplicate(&existing));
    }
    tx.execute(
        "INSERT INTO library_items (title, description, category, source, original_sha256, original_size,
             original_format, distribution_sha256, distribution_size, distribution_format, duration_ms,
             loudness_lufs, true_peak_dbtp, gain_db, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            new.title.trim(),
            new.description,
            new.category,
            new.source.name(),
            new.original.sha256,
            to_i64(new.original.size_bytes),
            new.original.format,
            new.distribution.sha256,
            to_i64(new.distribution.size_bytes),
            new.distribution.format,
            to_i64(new.duration_ms),
            new.loudness_lufs,
            new.true_peak_dbtp,
            new.gain_db,
            new.created_at_ms,
        ],
    )?;
    let id = tx.last_insert_rowid();
    let stored = item(&tx, id)?.ok_or_else(|| StoreError::NotFound { what: format!("library item {id}") })?;
    tx.commit()?;
    Ok(stored)
}

pub(super) fn update(conn: &mut Connection, id: i64, patch: &LibraryItemPatch) -> Result<LibraryItem, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut current = item(&tx, id)?.ok_or_else(|| not_found(id))?;
    if let Some(title) = &patch.title {
        check_title(title).map_err(invalid)?;
        current.title = title.trim().to_owned();
    }
    if let Some(description) = &patch.description {
        check_description(description).map_err(invalid)?;
        current.description = description.clone();
    }
    if let Some(category) = &patch.category {
        require_category(&tx, category)?;
        current.category = category.clone();
    }
    tx.execute(
        "UPDATE library_items SET title = ?2, description = ?3, category = ?4 WHERE id = ?1",
        params![id, current.title, current.description, current.category],
    )?;
    tx.commit()?;
    Ok(current)
}

pub(super) fn delete(conn: &mut Connection, id: i64) -> Result<LibraryItem, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = item(&tx, id)?.ok_or_else(|| not_found(id))?;
    tx.execute("DELETE FROM library_items WHERE id = ?1", [id]).map_err(|e| {
        if is_foreign_key_violation(&e) {
            StoreError::Conflict(format!(
                "library item {id} \u{201c}{}\u{201d} is used by a schedule; remove it from every schedule first",
                current.title
            ))
        } else {
            StoreError::Sqlite(e)
        }
    })?;
    tx.commit()?;
    Ok(current)
}

/// The conflict of uploading an original the library already holds.
fn duplicate(existing: &LibraryItem) -> StoreError {
    StoreError::Conflict(format!(
        "this audio is already in the library as item {} \u{201c}{}\u{201d}",
        existing.id, existing.title
    ))
}

fn require_category(conn: &Connection, key: &str) -> Result<(), StoreError> {
    let found = conn.query_row("SELECT 1 FROM library_categories WHERE key = ?1", [key], |_| Ok(())).optional()?;
    found.ok_or_else(|| StoreError::NotFound { what: format!("library category {key:?}") })
}

fn not_found(id: i64) -> StoreError {
    StoreError::NotFound { what: format!("library item {id}") }
}

fn invalid(message: String) -> StoreError {
    StoreError::Library(message)
}

/// Whether `error` is a violated FOREIGN KEY constraint (a row elsewhere
/// still refers to the one being deleted). SQLite reports an `ON DELETE
/// RESTRICT` refusal as `SQLITE_CONSTRAINT_TRIGGER` with the foreign-key
/// message, and a deferred one as `SQLITE_CONSTRAINT_FOREIGNKEY`.
fn is_foreign_key_violation(error: &rusqlite::Error) -> bool {
    match error {
        rusqlite::Error::SqliteFailure(e, message) => {
            e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
                || (e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_TRIGGER
                    && message.as_deref().is_some_and(|m| m.contains("FOREIGN KEY constraint failed")))
        }
        _ => false,
    }
}

/// SQLite integers are signed; sizes and durations never come near 2⁶³.
fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn get_u64(r: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    let value: i64 = r.get(index)?;
    u64::try_from(value)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Integer, e.into()))
}

fn item_row(r: &Row<'_>) -> rusqlite::Result<LibraryItem> {
    let source: String = r.get(4)?;
    let source = ItemSource::from_name(&source).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, format!("source {source:?}").into())
    })?;
    Ok(LibraryItem {
        id: r.get(0)?,
        title: r.get(1)?,
        description: r.get(2)?,
        category: r.get(3)?,
        source,
        original: StoredFile { sha256: r.get(5)?, size_bytes: get_u64(r, 6)?, format: r.get(7)? },
        distribution: StoredFile { sha256: r.get(8)?, size_bytes: get_u64(r, 9)?, format: r.get(10)? },
        duration_ms: get_u64(r, 11)?,
        loudness_lufs: r.get(12)?,
        true_peak_dbtp: r.get(13)?,
        gain_db: r.get(14)?,
        created_at_ms: r.get(15)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;

    fn file(byte: char, format: &str) -> StoredFile {
        StoredFile { sha256: byte.to_string().repeat(64), size_bytes: 1000, format: format.into() }
    }

    fn new_item(original: char) -> NewLibraryItem {
        NewLibraryItem {
            title: "禁毒宣传".into(),
            description: String::new(),
            category: "legal".into(),
            source: ItemSource::Upload,
            original: file(original, "mp3"),
            distribution: file('d', "ogg-opus"),
            duration_ms: 1500,
            loudness_lufs: Some(-20.0),
            true_peak_dbtp: Some(-3.0),
            gain_db: 2.0,
            created_at_ms: 7,
        }
    }

    #[test]
    fn items_round_trip_and_dedupe_by_original() {
        let store = SqliteStore::open_in_memory().expect("open");
        let item = store.insert_library_item(&new_item('a')).expect("insert");
        assert_eq!(store.library_item(item.id).expect("read"), Some(item.clone()));
        assert_eq!(store.library_item_by_original(&"a".repeat(64)).expect("by original"), Some(item.clone()));
        assert_eq!(store.library_distribution(&"d".repeat(64)).expect("dist"), Some(file('d', "ogg-opus")));
        assert_eq!(store.library_distribution(&"a".repeat(64)).expect("an original is not distributed"), None);
        assert!(store.library_content_in_use(&"a".repeat(64)).expect("in use"));
        let err = store.insert_library_item(&new_item('a')).expect_err("same original");
        assert!(matches!(&err, StoreError::Conflict(m) if m.contains(&format!("item {}", item.id))), "{err}");
    }

    #[test]
    fn unknown_categories_and_bad_titles_are_refused() {
        let store = SqliteStore::open_in_memory().expect("open");
        let mut new = new_item('a');
        new.category = "sports".into();
        let err = store.insert_library_item(&new).expect_err("no such category");
        assert_eq!(err.to_string(), "library category \"sports\" not found");
        new.category = "health".into();
        new.title = " ".into();
        assert!(matches!(store.insert_library_item(&new), Err(StoreError::Library(_))));
    }

    #[test]
    fn categories_are_seeded_and_creatable_once() {
        let store = SqliteStore::open_in_memory().expect("open");
        let new = NewCategory { key: "fire".into(), label_zh: "消防安全".into(), label_en: "Fire safety".into() };
        let created = store.create_library_category(&new).expect("create");
        assert!(!created.builtin);
        let all = store.library_categories().expect("all");
        let labels: Vec<(&str, &str, bool)> =
            all.iter().map(|c| (c.key.as_str(), c.label_zh.as_str(), c.builtin)).collect();
        assert_eq!(
            labels,
            [
                ("fire", "消防安全", false),
                ("health", "卫生健康", true),
                ("legal", "法律法规", true),
                ("traffic", "交通出行", true)
            ]
        );
        let err = store.create_library_category(&new).expect_err("twice");
        assert_eq!(err.to_string(), "category fire already exists");
    }

    #[test]
    fn updates_change_only_what_is_given() {
        let store = SqliteStore::open_in_memory().expect("open");
        let item = store.insert_library_item(&new_item('a')).expect("insert");
        let patch = LibraryItemPatch { category: Some("traffic".into()), ..LibraryItemPatch::default() };
        let updated = store.update_library_item(item.id, &patch).expect("update");
        assert_eq!((updated.title.as_str(), updated.category.as_str()), ("禁毒宣传", "traffic"));
        let patch = LibraryItemPatch { category: Some("nope".into()), ..LibraryItemPatch::default() };
        assert!(matches!(store.update_library_item(item.id, &patch), Err(StoreError::NotFound { .. })));
        assert!(matches!(
            store.update_library_item(99, &LibraryItemPatch::default()),
            Err(StoreError::NotFound { .. })
        ));
    }

    /// Schedules refer to items with `ON DELETE RESTRICT` (a later
    /// migration); a stand-in table with the same kind of key shows that a
    /// referenced item is refused as a conflict, and stays.
    #[test]
    fn deleting_a_referenced_item_is_a_conflict() {
        let store = SqliteStore::open_in_memory().expect("open");
        let used = store.insert_library_item(&new_item('a')).expect("insert");
        let free = store.insert_library_item(&new_item('b')).expect("insert");
        store
            .lock()
            .execute_batch(&format!(
                "CREATE TABLE uses (item_id INTEGER NOT NULL REFERENCES library_items (id) ON DELETE RESTRICT);
                 INSERT INTO uses VALUES ({});",
                used.id
            ))
            .expect("a referring table");
        let err = store.delete_library_item(used.id).expect_err("in use");
        assert!(matches!(&err, StoreError::Conflict(m) if m.contains("used by a schedule")), "{err}");
        assert!(store.library_item(used.id).expect("read").is_some());
        assert_eq!(store.delete_library_item(free.id).expect("delete").id, free.id);
        assert_eq!(store.library_item(free.id).expect("read"), None);
        assert!(matches!(store.delete_library_item(free.id), Err(StoreError::NotFound { .. })));
    }
}
