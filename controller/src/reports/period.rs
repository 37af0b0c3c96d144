//! A report's period: whole county days `[from, to)`, and the instants each
//! day spans in the county's time zone.
//!
//! The time zone is the caller's (the API's `COUNTY_TZ`); a day starts at
//! its earliest local midnight, the rule the API's `day_span` uses.

use chrono::{Datelike, NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;

use super::ReportError;

/// Whole county days from `from` (included) to `to` (excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    /// The first day.
    from: NaiveDate,
    /// The day after the last.
    to: NaiveDate,
    /// The time zone the days are counted in.
    #[serde(skip)]
    tz: Tz,
}

/// One county day and the instants it spans, `[from_ms, to_ms)`: local
/// midnight to local midnight, so 23 or 25 hours where clocks change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaySpan {
    /// The calendar day in the county.
    pub day: NaiveDate,
    /// Its first instant (Unix ms).
    pub from_ms: i64,
    /// The next day's first instant (Unix ms).
    pub to_ms: i64,
}

impl Period {
    /// The longest period a report covers: a leap year.
    pub const MAX_DAYS: i64 = 366;

    /// The days `[from, to)` in `tz`; at least one day and at most
    /// [`Period::MAX_DAYS`].
    pub fn new(from: NaiveDate, to: NaiveDate, tz: Tz) -> Result<Period, ReportError> {
        let days = (to - from).num_days();
        if !(1..=Period::MAX_DAYS).contains(&days) {
            return Err(ReportError::BadPeriod { from, to });
        }
        Ok(Period { from, to, tz })
    }

    /// A calendar month in `tz`, e.g. `Period::month(2026, 11, COUNTY_TZ)`
    /// for November 2026.
    pub fn month(year: i32, month: u32, tz: Tz) -> Result<Period, ReportError> {
        let bad = ReportError::BadMonth { year, month };
        let from = NaiveDate::from_ymd_opt(year, month, 1).ok_or(bad.clone())?;
        let to = from.checked_add_months(chrono::Months::new(1)).ok_or(bad)?;
        Period::new(from, to, tz)
    }

    /// The first day.
    pub fn from(&self) -> NaiveDate {
        self.from
    }

    /// The day after the last.
    pub fn to(&self) -> NaiveDate {
        self.to
    }

    /// The last day.
    pub fn last(&self) -> NaiveDate {
        self.to.pred_opt().unwrap_or(self.from)
    }

    /// Whether the period is exactly one calendar month.
    pub fn is_month(&self) -> bool {
        self.from.day() == 1 && self.from.checked_add_months(chrono::Months::new(1)) == Some(self.to)
    }

    /// Every day of the period, in order.
    pub fn days(&self) -> Vec<NaiveDate> {
        self.from.iter_days().take_while(|d| *d < self.to).collect()
    }

    /// Every day of the period with the instants it spans in its time zone.
    pub fn spans(&self) -> Result<Vec<DaySpan>, ReportError> {
        let midnight = |day: NaiveDate| {
            let local = day.and_hms_opt(0, 0, 0)?;
            Some(self.tz.from_local_datetime(&local).earliest()?.timestamp_millis())
        };
        self.days()
            .into_iter()
            .map(|day| {
                let out_of_range = ReportError::DayOutOfRange { day };
                let next = day.succ_opt().ok_or(out_of_range.clone())?;
                match (midnight(day), midnight(next)) {
                    (Some(from_ms), Some(to_ms)) => Ok(DaySpan { day, from_ms, to_ms }),
                    _ => Err(out_of_range),
                }
            })
            .collect()
    }

    /// The time zone the days are counted in.
    pub fn tz(&self) -> Tz {
        self.tz
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a valid date")
    }

    #[test]
    fn a_month_has_its_days_from_local_midnight() {
        let p = Period::month(2026, 2, SHANGHAI).expect("February");
        assert_eq!((p.from(), p.to(), p.last()), (date(2026, 2, 1), date(2026, 3, 1), date(2026, 2, 28)));
        assert!(p.is_month());
        let spans = p.spans().expect("spans");
        assert_eq!(spans.len(), 28);
        // 2026-02-01 00:00 in Shanghai is 2026-01-31 16:00 UTC.
        assert_eq!(spans[0].from_ms, 1_769_875_200_000);
        assert!(spans.windows(2).all(|w| w[0].to_ms == w[1].from_ms && w[0].day < w[1].day));
        assert_eq!(Period::month(2024, 12, SHANGHAI).expect("December").to(), date(2025, 1, 1));
    }

    #[test]
    fn bad_periods_are_refused() {
        assert!(matches!(Period::month(2026, 13, SHANGHAI), Err(ReportError::BadMonth { .. })));
        assert!(matches!(
            Period::new(date(2026, 3, 1), date(2026, 3, 1), SHANGHAI),
            Err(ReportError::BadPeriod { .. })
        ));
        assert!(matches!(
            Period::new(date(2026, 3, 2), date(2026, 3, 1), SHANGHAI),
            Err(ReportError::BadPeriod { .. })
        ));
        assert!(Period::new(date(2024, 1, 1), date(2025, 1, 1), SHANGHAI).is_ok(), "a leap year is allowed");
        assert!(Period::new(date(2024, 1, 1), date(2025, 1, 2), SHANGHAI).is_err(), "367 days are not");
        let week = Period::new(date(2026, 3, 2), date(2026, 3, 9), SHANGHAI).expect("a week");
        assert!(!week.is_month());
        assert_eq!(week.days().len(), 7);
    }

    #[test]
    fn days_where_clocks_change_are_23_and_25_hours() {
        let berlin = chrono_tz::Europe::Berlin;
        let p = Period::new(date(2026, 3, 29), date(2026, 3, 30), berlin).expect("spring");
        let s = p.spans().expect("spans")[0];
        assert_eq!(s.to_ms - s.from_ms, 23 * 3_600_000);
        let p = Period::new(date(2026, 10, 25), date(2026, 10, 26), berlin).expect("autumn");
        let s = p.spans().expect("spans")[0];
        assert_eq!(s.to_ms - s.from_ms, 25 * 3_600_000);
    }
}
