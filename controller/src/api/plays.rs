//! Proof of play through the API: what each village played on a day.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use chrono::{NaiveDate, TimeZone};
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::store::StoredPlayEvent;

/// The county's time zone: days in the API are its calendar days.
pub const COUNTY_TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

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
    let day = match q.day {
        Some(d) => NaiveDate::parse_from_str(&d, "%Y-%m-%d")
            .map_err(|_| ApiError::BadRequest(format!("day {d:?} is not a date like 2026-11-28")))?,
        None => chrono::DateTime::from_timestamp_millis(st.clock.now_ms())
            .map(|t| t.with_timezone(&COUNTY_TZ).date_naive())
            .ok_or_else(|| ApiError::Internal("clock out of range".into()))?,
    };
    let (from, to) = day_bounds(day).ok_or_else(|| ApiError::BadRequest(format!("day {day} is out of range")))?;
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

/// Unix-ms bounds `[start, end)` of a county day.
fn day_bounds(day: NaiveDate) -> Option<(i64, i64)> {
    let start = COUNTY_TZ.from_local_datetime(&day.and_hms_opt(0, 0, 0)?).earliest()?;
    let next = COUNTY_TZ.from_local_datetime(&day.succ_opt()?.and_hms_opt(0, 0, 0)?).earliest()?;
    Some((start.timestamp_millis(), next.timestamp_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn county_days_start_at_local_midnight() {
        let (from, to) = day_bounds(NaiveDate::from_ymd_opt(2026, 11, 28).expect("date")).expect("bounds");
        // 2026-11-28 00:00 in Shanghai is 2026-11-27 16:00 UTC.
        assert_eq!(from, 1_795_795_200_000);
        assert_eq!(to - from, 86_400_000);
    }
}
