//! Region directory handlers: county → townships → villages.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::error::Detail;
use super::{ApiError, AppState};
use crate::accounts::policy::Principal;
use crate::accounts::scope::Area;
use crate::directory::csv as dircsv;
use crate::directory::{Level, NewRegion, Region, RegionPatch};

/// `GET /regions`: every region, flat, ordered by code.
/// An account limited to a township sees that township and its villages.
pub async fn list(State(st): State<AppState>, caller: Principal) -> Result<Json<Vec<Region>>, ApiError> {
    let regions = st.db(|s| s.regions()).await?;
    let area = Area::of(&caller, &regions);
    Ok(Json(regions.into_iter().filter(|r| area.covers_region(r)).collect()))
}

/// `GET /regions/{id}`.
pub async fn one(State(st): State<AppState>, id: Result<Path<i64>, PathRejection>) -> Result<Json<Region>, ApiError> {
    let Path(id) = id?;
    st.db(move |s| s.region(id))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("region {id} does not exist")))
}

/// `POST /regions`.
pub async fn create(
    State(st): State<AppState>,
    body: Result<Json<NewRegion>, JsonRejection>,
) -> Result<(StatusCode, Json<Region>), ApiError> {
    let Json(new) = body?;
    let region = st.db(move |s| s.create_region(&new)).await?;
    tracing::info!(id = region.id, code = %region.code, name = %region.name, "region created");
    st.distribution.poke();
    Ok((StatusCode::CREATED, Json(region)))
}

/// `PATCH /regions/{id}`.
pub async fn update(
    State(st): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<RegionPatch>, JsonRejection>,
) -> Result<Json<Region>, ApiError> {
    let Path(id) = id?;
    let Json(patch) = body?;
    let region = st.db(move |s| s.update_region(id, &patch)).await?;
    tracing::info!(id, "region updated");
    st.distribution.poke();
    Ok(Json(region))
}

/// `DELETE /regions/{id}`.
pub async fn remove(State(st): State<AppState>, id: Result<Path<i64>, PathRejection>) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    st.db(move |s| s.delete_region(id)).await?;
    tracing::info!(id, "region deleted");
    st.distribution.poke();
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /directory/export.csv`.
/// A township account exports the county's row (so the file's tree has its
/// root and the township its parent code) and its own township.
pub async fn export_csv(State(st): State<AppState>, caller: Principal) -> Result<impl IntoResponse, ApiError> {
    let mut regions = st.db(|s| s.regions()).await?;
    let area = Area::of(&caller, &regions);
    regions.retain(|r| r.level == Level::County || area.covers_region(r));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"regions.csv\""),
        ],
        dircsv::export(&regions),
    ))
}

/// `POST /directory/import` with a CSV body: all rows or none.
pub async fn import_csv(State(st): State<AppState>, body: Bytes) -> Result<Json<serde_json::Value>, ApiError> {
    let summary = st
        .db(move |s| {
            let existing = s.regions()?;
            match dircsv::parse_import_against(&body, &existing) {
                Ok(rows) => s.import_regions(&rows).map(Ok),
                Err(errors) => Ok(Err(errors)),
            }
        })
        .await?
        .map_err(csv_error)?;
    st.distribution.poke();
    tracing::info!(
        created = summary.created,
        updated = summary.updated,
        unchanged = summary.unchanged,
        "directory imported from CSV"
    );
    Ok(Json(
        serde_json::json!({ "created": summary.created, "updated": summary.updated, "unchanged": summary.unchanged }),
    ))
}

pub(super) fn csv_error(errors: dircsv::CsvErrors) -> ApiError {
    let details: Vec<Detail> =
        errors.rows().iter().map(|e| Detail { line: Some(e.line), message: e.problem.to_string() }).collect();
    ApiError::Unprocessable { code: "csv_invalid", message: errors.summary(), details }
}
