//! Wall-clock times to instants, with one policy for daylight-saving
//! transitions, used by recurrences and quiet hours alike.
//!
//! - A time that does not exist (inside a spring-forward gap) moves to the
//!   first instant after the gap: 02:30 on a day when clocks jump from 02:00
//!   to 03:00 becomes 03:00.
//! - A time that exists twice (inside a fall-back repeat) is taken once, at
//!   its first occurrence.
//!
//! China has no DST; other deployments may.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The default zone of schedules and quiet hours.
pub const DEFAULT_TIMEZONE: &str = "Asia/Shanghai";

/// Parses an IANA zone name.
pub(crate) fn parse(name: &str) -> Option<Tz> {
    name.parse().ok()
}

/// The instant (ms since the Unix epoch) at which the wall clock of `tz`
/// shows `local`, by the policy above. `None` only at the edges of chrono's
/// range or in a zone whose transitions defeat the search.
pub(crate) fn to_utc_ms(tz: Tz, local: NaiveDateTime) -> Option<i64> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) => Some(at.timestamp_millis()),
        LocalResult::Ambiguous(first, second) => Some(first.min(second).timestamp_millis()),
        LocalResult::None => gap_end(tz, local).map(|secs| secs * 1000),
    }
}

/// The local date in `tz` at the instant `ms`.
pub(crate) fn local_date(tz: Tz, ms: i64) -> Option<NaiveDate> {
    DateTime::<Utc>::from_timestamp_millis(ms).map(|at| at.with_timezone(&tz).date_naive())
}

/// A millisecond timestamp as a `DateTime`, clamped to chrono's range (only
/// reached by instants hundreds of millennia away).
pub(crate) fn instant(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(if ms < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// The first second (Unix seconds) at which the wall clock reaches `local`,
/// for a `local` that falls in a gap.
fn gap_end(tz: Tz, local: NaiveDateTime) -> Option<i64> {
    // UTC offsets lie between −12 h and +14 h, so the wall clock shows
    // `local` somewhere between `local` − 14 h and `local` + 12 h read as
    // UTC; an hour of margin either side keeps the search bracketed.
    let base = local.and_utc().timestamp();
    let reached = |secs: i64| {
        DateTime::<Utc>::from_timestamp(secs, 0).is_none_or(|at| at.with_timezone(&tz).naive_local() >= local)
    };
    let (mut below, mut at_or_above) = (base.checked_sub(15 * 3600)?, base.checked_add(13 * 3600)?);
    if reached(below) || !reached(at_or_above) {
        return None;
    }
    while at_or_above - below > 1 {
        let middle = below + (at_or_above - below) / 2;
        if reached(middle) {
            at_or_above = middle;
        } else {
            below = middle;
        }
    }
    Some(at_or_above)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(zone: &str, local: &str, expected_utc: &str) {
        let tz = parse(zone).unwrap();
        let local: NaiveDateTime = local.parse().unwrap();
        let got = to_utc_ms(tz, local).map(instant).unwrap();
        assert_eq!(got.to_rfc3339(), expected_utc, "{local} in {zone}");
    }

    #[test]
    fn dst_policy_table() {
        check("Asia/Shanghai", "2025-03-30T02:30:00", "2025-03-29T18:30:00+00:00");
        // Europe/Berlin springs forward 2025-03-30 02:00 CET → 03:00 CEST.
        check("Europe/Berlin", "2025-03-30T02:30:00", "2025-03-30T01:00:00+00:00");
        check("Europe/Berlin", "2025-03-30T02:00:00", "2025-03-30T01:00:00+00:00");
        check("Europe/Berlin", "2025-03-30T03:00:00", "2025-03-30T01:00:00+00:00");
        // …and falls back 2025-10-26 03:00 CEST → 02:00 CET: the first 02:30 is CEST.
        check("Europe/Berlin", "2025-10-26T02:30:00", "2025-10-26T00:30:00+00:00");
        check("America/New_York", "2025-03-09T02:30:00", "2025-03-09T07:00:00+00:00");
        check("America/New_York", "2025-11-02T01:30:00", "2025-11-02T05:30:00+00:00");
        // Samoa skipped 30 December 2011 entirely.
        check("Pacific/Apia", "2011-12-30T09:00:00", "2011-12-30T10:00:00+00:00");
    }
}
