//! Proof of play through the API: what each village played on a day.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::days::{COUNTY_TZ, day_span, parse_day};
use super::{ApiError, AppState};
use crate::store::StoredPlayEvent;

/// Query of `GET /villages/{id}/plays`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayQuery {
    /// `YYYY-MM-DD` in the county's time zone; today when absent.
    pub day: Option<String>,
}

/// `GET /villages/{id}/plays?day=YYYY-MM-DD`: the village's play events of
/// one county day, ordered by scheduled time.
pub async fn of_village_day(
    State(st): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    query: Result<Query<DayQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Path(village_id) = id?;
    let Query(q) = query.map_err(|r| ApiError::BadRequest(r.body_text()))?;
    let day = parse_day(q.day.as_deref(), st.clock.now_ms())?;
    let (from, to) = day_span(day, 1)?;
    let (from, to) = (from.timestamp_millis(), to.timestamp_millis());
    let village = st.db(move |s| s.region(village_id)).await?;
    if village.is_none() {
        return Err(ApiError::NotFound(format!("village {village_id} does not exist")));
    }
    let events: Vec<StoredPlayEvent> = st.db(move |s| s.play_events(village_id, from, to)).await?;
    Ok(Json(serde_json::json!({
        "village_id": village_id,
        "day": day.to_string(),
        "timezone": COUNTY_TZ.name(),
        "events": events,
    })))
}
