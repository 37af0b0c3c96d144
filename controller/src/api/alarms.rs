//! Operator alarms (`crate::alarms`): the list and acknowledgements.
//!
//! `GET /alarms?state=open|all&limit=N&before=ID` lists alarms newest first
//! (`state` defaults to `open`, `limit` to 100, at most 1000; `before`
//! pages back by id). `POST /alarms/{id}/acknowledge` records who
//! acknowledged it and when (again: no change). An account limited to a
//! township sees only its villages' alarms and may acknowledge only
//! those (another township's alarm is a 403, as elsewhere).

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Serialize;

use super::{ApiError, AppState};
use crate::accounts::policy::Principal;
use crate::accounts::scope;
use crate::alarms::{AlarmFilter, AlarmView};
use crate::directory::Level;

/// Alarms listed when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// Most alarms one request lists.
pub const MAX_LIMIT: usize = 1000;

/// The body of `GET /alarms`.
#[derive(Debug, Serialize)]
pub struct Listing {
    /// Newest first.
    pub alarms: Vec<AlarmView>,
}

/// `GET /alarms`.
pub async fn list(
    State(st): State<AppState>,
    caller: Principal,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Listing>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let filter = filter(&query, township_villages(&st, &caller).await?)?;
    let (alarms, regions) = st.db(move |s| Ok((s.alarms(&filter)?, s.regions()?))).await?;
    Ok(Json(Listing { alarms: alarms.iter().map(|a| AlarmView::of(a, &regions)).collect() }))
}

/// `POST /alarms/{id}/acknowledge`.
pub async fn acknowledge(
    State(st): State<AppState>,
    caller: Principal,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<AlarmView>, ApiError> {
    let Path(id) = id?;
    let missing = || ApiError::NotFound(format!("alarm {id} does not exist"));
    let alarm = st.db(move |s| s.alarm(id)).await?.ok_or_else(missing)?;
    let area = scope::area(&st, &caller).await?;
    if !area.covers_villages(&[alarm.village_id]) {
        return Err(area.refusal(&format!("alarm {id}")));
    }
    // Kept as operators read it, `李伟 (li.wei)`; the audit log has the actor.
    let view = st.alarms.acknowledge(&st, id, caller.describe()).await?;
    Ok(Json(view.ok_or_else(missing)?))
}

/// The villages of the caller's township; `None` for a county-wide caller.
async fn township_villages(st: &AppState, caller: &Principal) -> Result<Option<Vec<i64>>, ApiError> {
    let Some(township) = caller.region_id() else { return Ok(None) };
    let regions = st.db(|s| s.regions()).await?;
    Ok(Some(
        regions.iter().filter(|r| r.level == Level::Village && r.parent_id == Some(township)).map(|r| r.id).collect(),
    ))
}

/// The store's filter for a query; a clear 400 for anything else.
fn filter(query: &HashMap<String, String>, villages: Option<Vec<i64>>) -> Result<AlarmFilter, ApiError> {
    if let Some(unknown) = query.keys().find(|k| !matches!(k.as_str(), "state" | "limit" | "before")) {
        return Err(ApiError::BadRequest(format!("unknown parameter {unknown:?}; use state, limit and before")));
    }
    let open_only = match query.get("state").map(String::as_str) {
        None | Some("open") => true,
        Some("all") => false,
        Some(other) => return Err(ApiError::BadRequest(format!("state {other:?} must be open or all"))),
    };
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(n) => match n.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(ApiError::BadRequest(format!("limit {n:?} must be a number from 1 to {MAX_LIMIT}"))),
        },
    };
    let before = match query.get("before") {
        None => None,
        Some(id) => match id.parse::<i64>() {
            Ok(id) if id > 0 => Some(id),
            _ => return Err(ApiError::BadRequest(format!("before {id:?} must be an alarm id"))),
        },
    };
    Ok(AlarmFilter { open_only, limit, before, villages })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(query: &[(&str, &str)], expected: Result<(bool, usize, Option<i64>), &str>) {
        let query: HashMap<String, String> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        match (filter(&query, None), expected) {
            (Ok(f), Ok(want)) => assert_eq!((f.open_only, f.limit, f.before), want, "{query:?}"),
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{query:?}: {e}"),
            (got, want) => panic!("{query:?}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn queries() {
        check(&[], Ok((true, 100, None)));
        check(&[("state", "all"), ("limit", "5"), ("before", "9")], Ok((false, 5, Some(9))));
        check(&[("state", "closed")], Err("state \"closed\" must be open or all"));
        check(&[("limit", "0")], Err("limit \"0\" must be a number from 1 to 1000"));
        check(&[("limit", "1001")], Err("from 1 to 1000"));
        check(&[("limit", "x")], Err("from 1 to 1000"));
        check(&[("before", "-1")], Err("must be an alarm id"));
        check(&[("kind", "disk")], Err("unknown parameter \"kind\""));
    }
}
