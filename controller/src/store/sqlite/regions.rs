//! Directory queries.

use std::collections::HashMap;

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::is_unique_violation;
use crate::directory::import::check_against;
use crate::directory::{
    CsvErrors, ImportRow, ImportSummary, Level, NewRegion, Region, RegionPatch, RowError, RowProblem, ValidationError,
    validate, validate_name, validate_tags,
};
use crate::store::StoreError;

pub(super) fn all(conn: &Connection) -> Result<Vec<Region>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, parent_id, level, name, code, latitude, longitude, tags
         FROM regions ORDER BY code",
    )?;
    let regions = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(regions)
}

pub(super) fn by_id(conn: &Connection, id: i64) -> Result<Option<Region>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, parent_id, level, name, code, latitude, longitude, tags
         FROM regions WHERE id = ?1",
    )?;
    Ok(stmt.query_row([id], from_row).optional()?)
}

pub(super) fn count(conn: &Connection) -> Result<u64, StoreError> {
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM regions", [], |row| row.get(0))?;
    Ok(count.unsigned_abs())
}

pub(super) fn create(conn: &mut Connection, new: &NewRegion) -> Result<Region, StoreError> {
    let new = validate(new)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    check_parent(&tx, new.level, new.parent_id)?;
    check_code_free(&tx, &new.code, None)?;
    let mut region = Region {
        id: 0,
        parent_id: new.parent_id,
        level: new.level,
        name: new.name,
        code: new.code,
        latitude: new.latitude,
        longitude: new.longitude,
        tags: new.tags,
    };
    region.id = insert(&tx, &region)?;
    tx.commit()?;
    Ok(region)
}

pub(super) fn update(conn: &mut Connection, id: i64, patch: &RegionPatch) -> Result<Region, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = by_id(&tx, id)?.ok_or_else(|| not_found(id))?;
    let changed = patch.apply_to(&current);
    let valid = validate(&NewRegion {
        parent_id: changed.parent_id,
        level: changed.level,
        name: changed.name,
        code: changed.code,
        latitude: changed.latitude,
        longitude: changed.longitude,
        tags: changed.tags,
    })?;
    check_code_free(&tx, &valid.code, Some(id))?;
    let region = Region {
        id,
        parent_id: valid.parent_id,
        level: valid.level,
        name: valid.name,
        code: valid.code,
        latitude: valid.latitude,
        longitude: valid.longitude,
        tags: valid.tags,
    };
    write(&tx, &region)?;
    tx.commit()?;
    Ok(region)
}

pub(super) fn delete(conn: &mut Connection, id: i64) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let region = by_id(&tx, id)?.ok_or_else(|| not_found(id))?;
    let children: i64 = tx.query_row("SELECT COUNT(*) FROM regions WHERE parent_id = ?1", [id], |r| r.get(0))?;
    let agents: i64 = tx.query_row("SELECT COUNT(*) FROM agents WHERE village_id = ?1", [id], |r| r.get(0))?;
    let what = format!("{} {} ({})", region.level, region.name, region.code);
    if children > 0 {
        return Err(StoreError::Conflict(format!(
            "{what} still has {children} child regions; delete or move them first"
        )));
    }
    if agents > 0 {
        return Err(StoreError::Conflict(format!("{what} still has {agents} enrolled agents; delete them first")));
    }
    tx.execute("DELETE FROM regions WHERE id = ?1", [id])?;
    tx.commit()?;
    Ok(())
}

pub(super) fn import(conn: &mut Connection, rows: &[ImportRow]) -> Result<ImportSummary, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let existing = all(&tx)?;
    check_against(rows, &existing)?;
    let by_code: HashMap<&str, &Region> = existing.iter().map(|r| (r.code.as_str(), r)).collect();
    let mut ids: HashMap<String, i64> = existing.iter().map(|r| (r.code.clone(), r.id)).collect();
    // Counties first, then townships, then villages: every parent in the
    // file exists before its children (the sort is stable, so lines keep
    // their order within a level).
    let mut ordered: Vec<&ImportRow> = rows.iter().collect();
    ordered.sort_by_key(|row| row.level);

    let mut summary = ImportSummary::default();
    for row in ordered {
        let parent_id = match &row.parent_code {
            None => None,
            // `check_against` found every parent; this only guards that.
            Some(code) => Some(*ids.get(code).ok_or_else(|| {
                let problem = RowProblem::ParentNotFound { parent_code: code.clone() };
                CsvErrors::Rows(vec![RowError { line: row.line, problem }])
            })?),
        };
        let mut region = Region {
            id: 0,
            parent_id,
            level: row.level,
            name: validate_name(&row.name)?,
            code: row.code.clone(),
            latitude: row.latitude,
            longitude: row.longitude,
            tags: validate_tags(&row.tags)?,
        };
        match by_code.get(row.code.as_str()) {
            Some(&old) => {
                region.id = old.id;
                if *old == region {
                    summary.unchanged += 1;
                } else {
                    write(&tx, &region)?;
                    summary.updated += 1;
                }
            }
            None => {
                let id = insert(&tx, &region)?;
                ids.insert(region.code, id);
                summary.created += 1;
            }
        }
    }
    tx.commit()?;
    Ok(summary)
}

fn by_code(conn: &Connection, code: &str) -> Result<Option<Region>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, parent_id, level, name, code, latitude, longitude, tags
         FROM regions WHERE code = ?1",
    )?;
    Ok(stmt.query_row([code], from_row).optional()?)
}

fn insert(conn: &Connection, region: &Region) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO regions (parent_id, level, name, code, latitude, longitude, tags)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            region.parent_id,
            region.level.as_str(),
            region.name,
            region.code,
            region.latitude,
            region.longitude,
            tags_json(&region.tags),
        ],
    )
    .map_err(|e| code_conflict(e, &region.code))?;
    Ok(conn.last_insert_rowid())
}

/// Writes every column but the level, which never changes.
fn write(conn: &Connection, region: &Region) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE regions SET parent_id = ?2, name = ?3, code = ?4, latitude = ?5,
             longitude = ?6, tags = ?7
         WHERE id = ?1",
        params![
            region.id,
            region.parent_id,
            region.name,
            region.code,
            region.latitude,
            region.longitude,
            tags_json(&region.tags),
        ],
    )
    .map_err(|e| code_conflict(e, &region.code))?;
    Ok(())
}

fn check_parent(conn: &Connection, level: Level, parent_id: Option<i64>) -> Result<(), StoreError> {
    // `validate` has already matched the parent's presence to the level.
    let (Some(expected), Some(parent_id)) = (level.parent_level(), parent_id) else {
        return Ok(());
    };
    let parent = by_id(conn, parent_id)?.ok_or(ValidationError::ParentNotFound { parent_id })?;
    if parent.level != expected {
        return Err(ValidationError::ParentLevel { level, parent_id, parent_level: parent.level }.into());
    }
    Ok(())
}

fn check_code_free(conn: &Connection, code: &str, except: Option<i64>) -> Result<(), StoreError> {
    match by_code(conn, code)? {
        Some(other) if Some(other.id) != except => {
            Err(StoreError::Conflict(format!("code {code} is already used by {} {}", other.level, other.name)))
        }
        _ => Ok(()),
    }
}

/// A unique violation on `code` as a readable conflict; anything else as is.
fn code_conflict(error: rusqlite::Error, code: &str) -> StoreError {
    if is_unique_violation(&error) {
        StoreError::Conflict(format!("code {code} is already used"))
    } else {
        StoreError::Sqlite(error)
    }
}

fn not_found(id: i64) -> StoreError {
    StoreError::NotFound { what: format!("region {id}") }
}

fn tags_json(tags: &[String]) -> String {
    serde_json::Value::from(tags.to_vec()).to_string()
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Region> {
    let bad = |column, error: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(column, Type::Text, error)
    };
    let level: String = row.get(2)?;
    let tags: String = row.get(7)?;
    Ok(Region {
        id: row.get(0)?,
        parent_id: row.get(1)?,
        level: level.parse().map_err(|e| bad(2, Box::new(e)))?,
        name: row.get(3)?,
        code: row.get(4)?,
        latitude: row.get(5)?,
        longitude: row.get(6)?,
        tags: serde_json::from_str(&tags).map_err(|e| bad(7, Box::new(e)))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{NewAgent, Store};

    fn new(level: Level, parent_id: Option<i64>, code: &str, name: &str) -> NewRegion {
        NewRegion {
            parent_id,
            level,
            name: name.into(),
            code: code.into(),
            latitude: None,
            longitude: None,
            tags: vec![],
        }
    }

    /// A store with a county, a township and a village; returns their ids.
    fn store() -> (SqliteStore, [i64; 3]) {
        let store = SqliteStore::open_in_memory().expect("open");
        let county = store.create_region(&new(Level::County, None, "620821000000", "泾川县"));
        let county = county.expect("county").id;
        let township = new(Level::Township, Some(county), "620821100000", "城关镇");
        let township = store.create_region(&township).expect("township").id;
        let village = new(Level::Village, Some(township), "620821100200", "王家沟村");
        let village = store.create_region(&village).expect("village").id;
        (store, [county, township, village])
    }

    fn row(line: usize, level: Level, code: &str, parent: Option<&str>, name: &str) -> ImportRow {
        ImportRow {
            line,
            level,
            code: code.into(),
            name: name.into(),
            parent_code: parent.map(Into::into),
            latitude: None,
            longitude: None,
            tags: vec![],
        }
    }

    #[test]
    fn create_checks_the_parent_and_the_code() {
        let (store, [county, _, village]) = store();
        let err = store.create_region(&new(Level::Village, Some(county), "620821100201", "x"));
        assert!(matches!(err, Err(StoreError::Invalid(ValidationError::ParentLevel { .. }))));
        let err = store.create_region(&new(Level::Village, Some(999), "620821100201", "x"));
        assert!(matches!(err, Err(StoreError::Invalid(ValidationError::ParentNotFound { .. }))));
        let err = store.create_region(&new(Level::Township, Some(county), "620821100200", "x"));
        let err = err.expect_err("code in use");
        assert_eq!(err.to_string(), "code 620821100200 is already used by village 王家沟村");
        let err = store.create_region(&new(Level::County, None, "1", "x")).expect_err("bad code");
        assert!(err.to_string().starts_with("code must be exactly 12 digits"));
        let stored = store.region(village).expect("read").expect("exists");
        assert_eq!((stored.name.as_str(), stored.level), ("王家沟村", Level::Village));
    }

    #[test]
    fn regions_are_ordered_by_code() {
        let (store, [county, ..]) = store();
        store.create_region(&new(Level::Township, Some(county), "620821099000", "早镇")).expect("create");
        let codes: Vec<String> = store.regions().expect("list").into_iter().map(|r| r.code).collect();
        assert_eq!(codes, ["620821000000", "620821099000", "620821100000", "620821100200"]);
        assert_eq!(store.region_count().expect("count"), 4);
        assert_eq!(store.region(12345).expect("read"), None);
    }

    #[test]
    fn update_applies_the_patch() {
        let (store, [_, township, village]) = store();
        let patch = RegionPatch {
            name: Some(" 王家塬村 ".into()),
            latitude: Some(Some(35.3)),
            longitude: Some(Some(107.3)),
            tags: Some(vec!["hill".into(), "hill".into()]),
            ..RegionPatch::default()
        };
        let updated = store.update_region(village, &patch).expect("update");
        assert_eq!(store.region(village).expect("read"), Some(updated.clone()));
        assert_eq!((updated.name.as_str(), updated.tags.as_slice()), ("王家塬村", ["hill".to_owned()].as_slice()));
        assert_eq!(updated.parent_id, Some(township));

        let taken = RegionPatch { code: Some("620821100000".into()), ..RegionPatch::default() };
        assert!(matches!(store.update_region(village, &taken), Err(StoreError::Conflict(_))));
        let half = RegionPatch { latitude: Some(None), ..RegionPatch::default() };
        let err = store.update_region(village, &half).expect_err("half coordinates");
        assert!(matches!(err, StoreError::Invalid(ValidationError::HalfCoordinates)));
        let err = store.update_region(999, &RegionPatch::default()).expect_err("missing");
        assert_eq!(err.to_string(), "region 999 not found");
    }

    #[test]
    fn delete_refuses_regions_with_children_or_agents() {
        let (store, [county, township, village]) = store();
        let err = store.delete_region(township).expect_err("has a village");
        assert_eq!(
            err.to_string(),
            "township 城关镇 (620821100000) still has 1 child regions; delete or move them first"
        );
        store.create_enrolment_code(village, "ABCD-1234", 1_000, 0).expect("code");
        let agent = NewAgent {
            id: "agent-1".into(),
            secret_hash: "h".into(),
            hostname: "pi".into(),
            agent_version: "0.1.0".into(),
            hardware_json: "{}".into(),
            enrolled_at_ms: 10,
        };
        store.redeem_enrolment_code("ABCD-1234", 10, &agent).expect("redeem");
        let err = store.delete_region(village).expect_err("has an agent");
        assert!(matches!(err, StoreError::Conflict(m) if m.contains("1 enrolled agents")));
        store.delete_agent("agent-1").expect("delete agent");
        for id in [village, township, county] {
            store.delete_region(id).expect("delete");
        }
        assert_eq!(store.region_count().expect("count"), 0);
        assert!(matches!(store.delete_region(county), Err(StoreError::NotFound { .. })));
    }

    #[test]
    fn import_upserts_by_code() {
        let (store, [_, township, village]) = store();
        let mut renamed = row(3, Level::Village, "620821100200", Some("620821100000"), "王家塬村");
        renamed.tags = vec!["flood-risk".into()];
        let rows = [
            // Children before parents: the store orders them by level.
            row(2, Level::Village, "620821101200", Some("620821101000"), "李家村"),
            renamed,
            row(4, Level::Township, "620821101000", Some("620821000000"), "玉都镇"),
            row(5, Level::Township, "620821100000", Some("620821000000"), "城关镇"),
        ];
        let summary = store.import_regions(&rows).expect("import");
        assert_eq!(summary, ImportSummary { created: 2, updated: 1, unchanged: 1 });
        let village = store.region(village).expect("read").expect("kept its id");
        assert_eq!((village.name.as_str(), village.parent_id), ("王家塬村", Some(township)));
        assert_eq!(store.region_count().expect("count"), 5);
        let again = store.import_regions(&rows).expect("import again");
        assert_eq!(again, ImportSummary { created: 0, updated: 0, unchanged: 4 });
    }

    #[test]
    fn import_is_all_or_nothing() {
        let (store, _) = store();
        let before = store.regions().expect("list");
        let rows = [
            row(2, Level::Township, "620821101000", Some("620821000000"), "玉都镇"),
            row(3, Level::Village, "620821101200", Some("620821999000"), "李家村"),
            row(4, Level::Township, "620821100200", Some("620821000000"), "王家沟村"),
        ];
        let err = store.import_regions(&rows).expect_err("bad rows");
        let lines: Vec<usize> = err_lines(&err);
        assert_eq!(lines, [3, 4]);
        assert_eq!(store.regions().expect("list"), before);
    }

    fn err_lines(err: &StoreError) -> Vec<usize> {
        match err {
            StoreError::Import(errors) => errors.rows().iter().map(|e| e.line).collect(),
            other => panic!("expected an import error, got {other}"),
        }
    }
}
