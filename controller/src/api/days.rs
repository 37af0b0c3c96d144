//! The county's calendar in the API: a `day` parameter is a calendar day in
//! the county's time zone, and a span of days runs from local midnight to
//! local midnight.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use super::ApiError;

/// The county's time zone: days in the API are its calendar days.
pub const COUNTY_TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// `day` (`YYYY-MM-DD`), or the county's today at `now_ms` when absent.
pub fn parse_day(day: Option<&str>, now_ms: i64) -> Result<NaiveDate, ApiError> {
    match day {
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| ApiError::BadRequest(format!("day {d:?} is not a date like 2026-11-28"))),
        None => DateTime::from_timestamp_millis(now_ms)
            .map(|t| t.with_timezone(&COUNTY_TZ).date_naive())
            .ok_or_else(|| ApiError::Internal("clock out of range".into())),
    }
}

/// The instants `[start, end)` of `days` county days from `start`.
pub fn day_span(start: NaiveDate, days: u64) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let at_midnight = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0).and_then(|t| COUNTY_TZ.from_local_datetime(&t).earliest()).map(|t| t.with_timezone(&Utc))
    };
    let end = start.checked_add_days(chrono::Days::new(days));
    match (at_midnight(start), end.and_then(at_midnight)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(ApiError::BadRequest(format!("day {start} is out of range"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn county_days_start_at_local_midnight() {
        let (from, to) = day_span(NaiveDate::from_ymd_opt(2026, 11, 28).expect("date"), 1).expect("bounds");
        // 2026-11-28 00:00 in Shanghai is 2026-11-27 16:00 UTC.
        assert_eq!(from.timestamp_millis(), 1_795_795_200_000);
        assert_eq!((to - from).num_milliseconds(), 86_400_000);
    }

    #[test]
    fn days_are_parsed_or_refused_with_the_expected_shape() {
        assert_eq!(parse_day(Some("2026-02-28"), 0).expect("a date"), NaiveDate::from_ymd_opt(2026, 2, 28).expect("d"));
        let err = parse_day(Some("28/02/2026"), 0).expect_err("not ISO");
        assert!(err.to_string().contains("not a date like"), "{err}");
        // 1970-01-01T16:00Z is already the 2nd in Shanghai.
        assert_eq!(parse_day(None, 16 * 3600 * 1000).expect("today"), NaiveDate::from_ymd_opt(1970, 1, 2).expect("d"));
    }
}
