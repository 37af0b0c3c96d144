//! Service reports (`crate::reports`): scheduled, played, missed and
//! failed per village and township over a month or a span of days, as
//! JSON, CSV and a printable page.
//!
//! `?month=2026-11` or `?from=2026-11-01&to=2026-11-30` (both days
//! included), `township=ID` to narrow to one township, and `lang=zh|en`
//! for the CSV header and the page's labels (default `zh`). An account
//! limited to a township gets its township whatever it asks for, and a
//! 403 when it names another.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use chrono::NaiveDate;
use serde::Deserialize;

use super::days::COUNTY_TZ;
use super::{ApiError, AppState};
use crate::accounts::policy::Principal;
use crate::reports::{Lang, Period, Report, ReportError, Scope, Selection};

/// The query of every report route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `YYYY-MM`.
    month: Option<String>,
    /// First day, `YYYY-MM-DD`.
    from: Option<NaiveDate>,
    /// Last day (included), `YYYY-MM-DD`.
    to: Option<NaiveDate>,
    /// One township's id.
    township: Option<i64>,
    /// The language of the CSV header, page and chart labels (`zh`, the
    /// default, or `en`); the JSON is the same in both.
    lang: Option<Lang>,
}

/// `GET /reports`.
pub async fn report(
    State(st): State<AppState>,
    caller: Principal,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Json<Report>, ApiError> {
    Ok(Json(build(&st, &caller, query).await?.0))
}

/// `GET /reports/villages.csv`: one row per village.
pub async fn villages_csv(
    State(st): State<AppState>,
    caller: Principal,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<(HeaderMap, String), ApiError> {
    let (report, lang) = build(&st, &caller, query).await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"report.csv\""));
    Ok((headers, crate::reports::csv::villages_in(&report, lang)))
}

/// `GET /reports/monthly.html`: the printable page.
pub async fn monthly_html(
    State(st): State<AppState>,
    caller: Principal,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<(HeaderMap, String), ApiError> {
    let (report, lang) = build(&st, &caller, query).await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // The page has no scripts and no outside resources; should a name slip
    // through escaping, nothing could run.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
    );
    Ok((headers, crate::reports::html::monthly_in(&report, st.clock.now_ms(), lang)))
}

/// The report the query asks for, within what the caller may see, and the
/// language asked for.
async fn build(
    st: &AppState,
    caller: &Principal,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<(Report, Lang), ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let period = period(&q)?;
    let scope = match (caller.region_id(), q.township) {
        (Some(own), Some(asked)) if own != asked => {
            // The same refusal as every other route outside the area.
            let area = crate::accounts::scope::area(st, caller).await?;
            return Err(area.refusal(&format!("township {asked}")));
        }
        (Some(own), _) => Scope::Township(own),
        (None, Some(asked)) => Scope::Township(asked),
        (None, None) => Scope::County,
    };
    let regions = st.db(|s| s.regions()).await?;
    let selection = Selection::new(&regions, &scope).map_err(report_error)?;
    let spans = period.spans().map_err(report_error)?;
    let villages = selection.village_ids();
    let (from_ms, to_ms) = match (spans.first(), spans.last()) {
        (Some(first), Some(last)) => (first.from_ms, last.to_ms),
        _ => (0, 0),
    };
    let counts = st.db(move |s| s.report_counts(&villages, &spans)).await?;
    let mut report = Report::build(&selection, &period, &counts);
    let villages = selection.village_ids();
    let presence = st.db(move |s| s.presence_history(&villages, from_ms, to_ms)).await?;
    report.add_presence(&presence, from_ms, to_ms, st.clock.now_ms());
    Ok((report, q.lang.unwrap_or_default()))
}

fn period(q: &ReportQuery) -> Result<Period, ApiError> {
    let both =
        || ApiError::BadRequest("ask for a month (month=2026-11) or a span of days (from=…&to=…), not both".into());
    match (&q.month, q.from, q.to) {
        (Some(month), None, None) => {
            let parsed = month
                .split_once('-')
                .and_then(|(y, m)| Some((y.parse::<i32>().ok()?, m.parse::<u32>().ok()?)))
                .filter(|_| month.len() == 7);
            let Some((year, month)) = parsed else {
                return Err(ApiError::BadRequest(format!("month {month:?} must look like 2026-11")));
            };
            Period::month(year, month, COUNTY_TZ).map_err(report_error)
        }
        (None, Some(from), Some(to)) => {
            let after = to.succ_opt().ok_or_else(|| ApiError::BadRequest(format!("day {to} is out of range")))?;
            Period::new(from, after, COUNTY_TZ).map_err(report_error)
        }
        (None, None, None) => Err(ApiError::BadRequest("ask for a month (month=2026-11) or from=…&to=… days".into())),
        (Some(_), _, _) => Err(both()),
        _ => Err(ApiError::BadRequest("from and to go together (both days included)".into())),
    }
}

fn report_error(e: ReportError) -> ApiError {
    match e {
        ReportError::NotA { found: None, .. } => ApiError::NotFound(e.to_string()),
        _ => ApiError::BadRequest(e.to_string()),
    }
}
