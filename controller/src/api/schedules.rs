//! Schedules, quiet hours, and what plays where: the timetable through the API.
//!
//! Every change is checked against the directory, the library and the
//! schedule rules before it is stored, and pokes the distribution so
//! agents get their new plans within a moment.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration as TimeDelta, Utc};
use dalaba_schedules::{Conflict, Outcome, Planner, QuietHours, Recurrence, Schedule, SkipReason};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::days::{COUNTY_TZ, day_span, parse_day};
use super::{ApiError, AppState};
use crate::accounts::policy::Principal;
use crate::accounts::scope::{Area, check_targets};
use crate::directory::Level;
use crate::schedules::{Refusal, ScheduleSpec, StoredSchedule, Timetable};

/// How many coming occurrences a preview lists.
const PREVIEW_OCCURRENCES: usize = 10;
/// How far ahead a preview looks for them and for conflicts.
const PREVIEW_DAYS: i64 = 7;
/// How far ahead the next occurrence is searched for the list.
const NEXT_DAYS: i64 = 62;
/// Longest week view, in days.
const MAX_VIEW_DAYS: i64 = 14;

fn unprocessable(message: String) -> ApiError {
    ApiError::Coded { status: StatusCode::UNPROCESSABLE_ENTITY, code: "invalid_schedule", message }
}

/// A refused schedule: 422 `invalid_schedule`, with the refusal's reason
/// and values for the console to word.
fn refused(r: Refusal) -> ApiError {
    ApiError::explained(StatusCode::UNPROCESSABLE_ENTITY, "invalid_schedule", r.reason, r.params, r.message)
}

async fn timetable(st: &AppState) -> Result<Timetable, ApiError> {
    st.db(|s| s.timetable()).await
}

/// A schedule in a list, with when it next fires and how many villages it reaches.
#[derive(Debug, Serialize)]
pub struct Listed {
    #[serde(flatten)]
    schedule: StoredSchedule,
    /// Next nominal start (Unix ms) within two months, if any.
    next_start_ms: Option<i64>,
    /// Villages the targets reach now.
    village_count: usize,
    /// Cron lines equivalent to a human rule, when there are some.
    cron: Option<Vec<String>>,
}

/// `GET /schedules`.
/// An account limited to a township sees the schedules that reach only
/// its villages.
pub async fn list(State(st): State<AppState>, caller: Principal) -> Result<Json<Vec<Listed>>, ApiError> {
    let tt = timetable(&st).await?;
    let now = instant(st.clock.now_ms());
    let villages = tt.villages();
    let area = Area::of(&caller, &tt.regions);
    let listed = tt
        .schedules
        .iter()
        .filter(|s| {
            area.is_county()
                || (!s.spec.targets.county
                    && area.covers_villages(&s.spec.targets.select(&villages).map(|v| v.id).collect::<Vec<_>>()))
        })
        .map(|s| {
            let plan = tt.check(s.id, &s.spec).ok();
            let next_start_ms = plan.as_ref().and_then(|p| {
                dalaba_schedules::occurrences(p, now, now + TimeDelta::days(NEXT_DAYS))
                    .ok()
                    .and_then(|o| o.first().map(|o| o.start.timestamp_millis()))
            });
            Listed {
                schedule: s.clone(),
                next_start_ms,
                village_count: s.spec.targets.select(&villages).count(),
                cron: cron_of(&s.spec.recurrence),
            }
        })
        .collect();
    Ok(Json(listed))
}

/// `GET /schedules/{id}`.
pub async fn one(
    State(st): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<StoredSchedule>, ApiError> {
    let Path(id) = id?;
    st.db(move |s| s.schedule(id))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("schedule {id} does not exist")))
}

/// `POST /schedules`.
pub async fn create(
    State(st): State<AppState>,
    caller: Principal,
    body: Result<Json<ScheduleSpec>, JsonRejection>,
) -> Result<(StatusCode, Json<StoredSchedule>), ApiError> {
    let Json(spec) = body?;
    check_targets(&st, &caller, &spec.targets).await?;
    let tt = timetable(&st).await?;
    tt.check(next_id(&tt), &spec).map_err(refused)?;
    let now = st.clock.now_ms();
    let stored = st.db(move |s| s.create_schedule(&spec, now)).await?;
    tracing::info!(id = stored.id, name = %stored.spec.name, "schedule created");
    st.distribution.poke();
    Ok((StatusCode::CREATED, Json(stored)))
}

/// `PUT /schedules/{id}`: replaces the schedule.
pub async fn replace(
    State(st): State<AppState>,
    caller: Principal,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<ScheduleSpec>, JsonRejection>,
) -> Result<Json<StoredSchedule>, ApiError> {
    let Path(id) = id?;
    let Json(spec) = body?;
    check_targets(&st, &caller, &spec.targets).await?;
    let tt = timetable(&st).await?;
    if !tt.schedules.iter().any(|s| s.id == id) {
        return Err(ApiError::NotFound(format!("schedule {id} does not exist")));
    }
    tt.check(id, &spec).map_err(refused)?;
    let now = st.clock.now_ms();
    let stored = st.db(move |s| s.update_schedule(id, &spec, now)).await?;
    tracing::info!(id, name = %stored.spec.name, "schedule updated");
    st.distribution.poke();
    Ok(Json(stored))
}

/// `DELETE /schedules/{id}`.
pub async fn remove(State(st): State<AppState>, id: Result<Path<i64>, PathRejection>) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    st.db(move |s| s.delete_schedule(id)).await?;
    tracing::info!(id, "schedule deleted");
    st.distribution.poke();
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /schedules/preview`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// The schedule being edited, when it is stored already.
    #[serde(default)]
    pub id: Option<i64>,
    /// The schedule as the form holds it now.
    pub schedule: ScheduleSpec,
}

/// One coming occurrence in a preview.
#[derive(Debug, Serialize)]
pub struct Upcoming {
    /// Nominal start, Unix ms.
    start_ms: i64,
    /// The same in the schedule's zone, `YYYY-MM-DD HH:MM:SS`.
    local: String,
}

/// Conflicts of the previewed schedule with one other schedule, summed over villages.
#[derive(Debug, Serialize)]
pub struct ConflictSummary {
    /// The other schedule.
    other_id: i64,
    /// Its name.
    other_name: String,
    /// Whether the previewed schedule keeps its slot (`wins`) or gives way (`loses`).
    role: &'static str,
    /// `moved` or `skipped`: what became of the loser.
    outcome: &'static str,
    /// Occurrences affected, over all villages.
    occurrences: usize,
    /// Villages affected.
    villages: usize,
    /// The first affected nominal start of the loser (Unix ms).
    first_ms: i64,
}

/// `POST /schedules/preview`: checks a schedule as it is being edited and
/// shows its next occurrences, the villages it reaches, and its conflicts
/// with the stored schedules over the coming week — before anything is saved.
pub async fn preview(
    State(st): State<AppState>,
    caller: Principal,
    body: Result<Json<PreviewRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(req) = body?;
    check_targets(&st, &caller, &req.schedule.targets).await?;
    let tt = timetable(&st).await?;
    let id = req.id.unwrap_or_else(|| next_id(&tt));
    let candidate = tt.check(id, &req.schedule).map_err(refused)?;
    let now_ms = st.clock.now_ms();
    let (from, to) = (instant(now_ms), instant(now_ms) + TimeDelta::days(PREVIEW_DAYS));
    let villages = tt.villages();
    let reached: Vec<_> = req.schedule.targets.select(&villages).cloned().collect();
    let next: Vec<Upcoming> = dalaba_schedules::occurrences(&candidate, from, from + TimeDelta::days(NEXT_DAYS))
        .map_err(|e| refused(e.into()))?
        .into_iter()
        .take(PREVIEW_OCCURRENCES)
        .map(|o| Upcoming { start_ms: o.start.timestamp_millis(), local: o.local_time.to_string() })
        .collect();
    let mut schedules: Vec<Schedule> = tt.plan_schedules().into_iter().filter(|s| s.id != id).collect();
    let enabled = req.schedule.enabled;
    if enabled {
        schedules.push(candidate);
    }
    let conflicts = if enabled {
        let planner = Planner::new(&schedules, &tt.quiet(), from, to).map_err(|e| ApiError::Internal(e.to_string()))?;
        summarise(id, &tt, reached.iter().flat_map(|v| planner.conflicts(v)))
    } else {
        Vec::new()
    };
    Ok(Json(json!({
        "valid": true,
        "cron": cron_of(&req.schedule.recurrence),
        "next": next,
        "village_count": reached.len(),
        "conflicts": conflicts,
    })))
}

fn summarise(id: i64, tt: &Timetable, conflicts: impl Iterator<Item = Conflict>) -> Vec<ConflictSummary> {
    // (other, role, outcome) → (occurrences, villages, first)
    type Key = (i64, &'static str, &'static str);
    let mut sums: BTreeMap<Key, (usize, BTreeSet<i64>, i64)> = BTreeMap::new();
    for c in conflicts {
        let (other, role) = if c.winner.schedule_id == id && c.loser.schedule_id != id {
            (c.loser.schedule_id, "wins")
        } else if c.loser.schedule_id == id && c.winner.schedule_id != id {
            (c.winner.schedule_id, "loses")
        } else {
            continue;
        };
        let outcome = match c.outcome {
            Outcome::Moved { .. } => "moved",
            Outcome::Skipped => "skipped",
        };
        let first = c.loser.nominal_start.timestamp_millis();
        let e = sums.entry((other, role, outcome)).or_insert((0, BTreeSet::new(), first));
        e.0 += 1;
        e.1.insert(c.village_id);
        e.2 = e.2.min(first);
    }
    sums.into_iter()
        .map(|((other_id, role, outcome), (occurrences, villages, first_ms))| ConflictSummary {
            other_id,
            other_name: tt.schedules.iter().find(|s| s.id == other_id).map(|s| s.spec.name.clone()).unwrap_or_default(),
            role,
            outcome,
            occurrences,
            villages: villages.len(),
            first_ms,
        })
        .collect()
}

/// `GET /quiet-hours`: the county's and townships' quiet hours.
pub async fn quiet_hours(State(st): State<AppState>) -> Result<Json<QuietHours>, ApiError> {
    Ok(Json(st.db(|s| s.quiet_hours()).await?.unwrap_or_else(QuietHours::none)))
}

/// `PUT /quiet-hours`.
pub async fn set_quiet_hours(
    State(st): State<AppState>,
    body: Result<Json<QuietHours>, JsonRejection>,
) -> Result<Json<QuietHours>, ApiError> {
    let Json(quiet) = body?;
    quiet.validate().map_err(|e| unprocessable(e.to_string()))?;
    let tt = timetable(&st).await?;
    for t in &quiet.townships {
        if !tt.regions.iter().any(|r| r.id == t.township_id && r.level == Level::Township) {
            return Err(unprocessable(format!("township {} does not exist", t.township_id)));
        }
    }
    let now = st.clock.now_ms();
    let stored = quiet.clone();
    st.db(move |s| s.set_quiet_hours(&stored, now)).await?;
    tracing::info!("quiet hours changed");
    st.distribution.poke();
    Ok(Json(quiet))
}

/// Query of the plan views.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewQuery {
    /// First county day, `YYYY-MM-DD`; today when absent.
    pub start: Option<String>,
    /// Number of days (1–14); 7 when absent.
    pub days: Option<i64>,
    /// A county, township or village id: the villages shown; the whole county when absent.
    pub region: Option<i64>,
}

/// One village's plan in a view.
#[derive(Debug, Serialize)]
pub struct VillageView {
    village_id: i64,
    name: String,
    township_id: Option<i64>,
    items: Vec<ViewItem>,
    skipped: Vec<ViewSkipped>,
}

/// A planned occurrence in a view.
#[derive(Debug, Serialize)]
pub struct ViewItem {
    schedule_id: i64,
    name: String,
    titles: Vec<String>,
    nominal_start_ms: i64,
    start_ms: i64,
    end_ms: i64,
    moved_by_ms: u64,
    priority: dalaba_schedules::priority::Priority,
    volume: u8,
}

/// A skipped occurrence in a view.
#[derive(Debug, Serialize)]
pub struct ViewSkipped {
    schedule_id: i64,
    name: String,
    nominal_start_ms: i64,
    reason: String,
}

/// `GET /plan?start=&days=&region=`: what plays where, village by village,
/// over county days (the week view).
pub async fn plan_view(
    State(st): State<AppState>,
    caller: Principal,
    query: Result<Query<ViewQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|r| ApiError::BadRequest(r.body_text()))?;
    let days = q.days.unwrap_or(7);
    if !(1..=MAX_VIEW_DAYS).contains(&days) {
        return Err(ApiError::BadRequest(format!("days must be 1 to {MAX_VIEW_DAYS}, not {days}")));
    }
    let start = parse_day(q.start.as_deref(), st.clock.now_ms())?;
    let tt = timetable(&st).await?;
    // A township account sees its own villages only, and may not name
    // another region.
    let area = Area::of(&caller, &tt.regions);
    if let Some(region) = q.region.and_then(|id| tt.regions.iter().find(|r| r.id == id))
        && !area.covers_region(region)
    {
        return Err(area.refusal(&format!("region {}", region.name)));
    }
    let ids: Option<BTreeSet<i64>> = match q.region {
        None => None,
        Some(region) => Some(villages_under(&tt, region)?),
    };
    let (from, to) = day_span(start, days as u64)?;
    let wanted = |id: i64| ids.as_ref().is_none_or(|s| s.contains(&id)) && area.covers_villages(&[id]);
    let views = plan_for(&tt, from, to, wanted)?;
    Ok(Json(json!({
        "start": start.to_string(),
        "days": days,
        "timezone": COUNTY_TZ.name(),
        "from_ms": from.timestamp_millis(),
        "to_ms": to.timestamp_millis(),
        "villages": views,
    })))
}

/// `GET /villages/{id}/plan?day=`: one village's plan for one county day.
pub async fn village_day(
    State(st): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    query: Result<Query<super::plays::DayQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Path(village_id) = id?;
    let Query(q) = query.map_err(|r| ApiError::BadRequest(r.body_text()))?;
    let day = parse_day(q.day.as_deref(), st.clock.now_ms())?;
    let tt = timetable(&st).await?;
    if !tt.regions.iter().any(|r| r.id == village_id && r.level == Level::Village) {
        return Err(ApiError::NotFound(format!("village {village_id} does not exist")));
    }
    let (from, to) = day_span(day, 1)?;
    let mut views = plan_for(&tt, from, to, |id| id == village_id)?;
    let view = views.pop();
    Ok(Json(json!({
        "village_id": village_id,
        "day": day.to_string(),
        "timezone": COUNTY_TZ.name(),
        "items": view.as_ref().map(|v| &v.items),
        "skipped": view.as_ref().map(|v| &v.skipped),
    })))
}

fn plan_for(
    tt: &Timetable,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    wanted: impl Fn(i64) -> bool,
) -> Result<Vec<VillageView>, ApiError> {
    let schedules = tt.plan_schedules();
    let planner = Planner::new(&schedules, &tt.quiet(), from, to).map_err(|e| ApiError::Internal(e.to_string()))?;
    let name_of = |id: i64| tt.schedules.iter().find(|s| s.id == id).map(|s| s.spec.name.clone()).unwrap_or_default();
    let names: BTreeMap<i64, &str> = tt.regions.iter().map(|r| (r.id, r.name.as_str())).collect();
    Ok(tt
        .villages()
        .iter()
        .filter(|v| wanted(v.id))
        .map(|v| {
            let plan = planner.plan(v);
            VillageView {
                village_id: v.id,
                name: names.get(&v.id).copied().unwrap_or_default().to_owned(),
                township_id: Some(v.township_id),
                items: plan
                    .items
                    .into_iter()
                    .filter(|i| i.start < to)
                    .map(|i| ViewItem {
                        schedule_id: i.schedule_id,
                        name: name_of(i.schedule_id),
                        titles: i.plays.iter().map(|p| p.content.title.clone()).collect(),
                        nominal_start_ms: i.nominal_start.timestamp_millis(),
                        start_ms: i.start.timestamp_millis(),
                        end_ms: i.end.timestamp_millis(),
                        moved_by_ms: i.moved_by_ms,
                        priority: i.priority,
                        volume: i.volume,
                    })
                    .collect(),
                skipped: plan
                    .skipped
                    .into_iter()
                    .filter(|s| s.nominal_start < to)
                    .map(|s| ViewSkipped {
                        schedule_id: s.schedule_id,
                        name: name_of(s.schedule_id),
                        nominal_start_ms: s.nominal_start.timestamp_millis(),
                        reason: match s.reason {
                            SkipReason::QuietHours => "quiet hours".to_owned(),
                            SkipReason::Conflict { with } => {
                                format!("held by schedule {} ({})", with.schedule_id, name_of(with.schedule_id))
                            }
                        },
                    })
                    .collect(),
            }
        })
        .collect())
}

fn villages_under(tt: &Timetable, region: i64) -> Result<BTreeSet<i64>, ApiError> {
    let Some(r) = tt.regions.iter().find(|r| r.id == region) else {
        return Err(ApiError::NotFound(format!("region {region} does not exist")));
    };
    Ok(match r.level {
        Level::County => tt.villages().iter().map(|v| v.id).collect(),
        Level::Township => tt.villages().iter().filter(|v| v.township_id == region).map(|v| v.id).collect(),
        Level::Village => [region].into(),
    })
}

fn cron_of(recurrence: &Recurrence) -> Option<Vec<String>> {
    match recurrence {
        Recurrence::Cron(c) => Some(vec![c.clone()]),
        Recurrence::Rule(rule) => rule.to_cron(),
    }
}

/// An id no stored schedule has, for checking a new one among the others.
fn next_id(tt: &Timetable) -> i64 {
    tt.schedules.iter().map(|s| s.id).max().unwrap_or(0).saturating_add(1)
}

fn instant(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MAX_UTC)
}
