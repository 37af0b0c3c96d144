//! Hours offline: how long each village with an enrolled agent had none of
//! its agents online, from its first enrolment (or the period's start) to
//! the period's end (or now, for a period still running).

use serde::Serialize;

/// One village's presence history over a period, as the store returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VillagePresence {
    /// The village.
    pub village_id: i64,
    /// When its first current agent was enrolled (Unix ms).
    pub enrolled_at_ms: i64,
    /// Its agents' online intervals `(connected, disconnected)`, in any
    /// order, overlapping each other when it has two boards; `None`: still
    /// online.
    pub online: Vec<(i64, Option<i64>)>,
}

impl VillagePresence {
    /// Milliseconds of `[from_ms, to_ms)` after enrolment and before
    /// `now_ms` in which no agent of the village was online.
    pub fn offline_ms(&self, from_ms: i64, to_ms: i64, now_ms: i64) -> u64 {
        let start = from_ms.max(self.enrolled_at_ms);
        let end = to_ms.min(now_ms);
        if end <= start {
            return 0;
        }
        let mut spans: Vec<(i64, i64)> = self
            .online
            .iter()
            .map(|&(a, b)| (a.max(start), b.unwrap_or(now_ms).min(end)))
            .filter(|(a, b)| a < b)
            .collect();
        spans.sort_unstable();
        let (mut covered, mut reach) = (0i64, start);
        for (a, b) in spans {
            if b > reach {
                covered += b - a.max(reach);
                reach = b;
            }
        }
        u64::try_from(end - start - covered).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn check(enrolled: i64, online: &[(i64, Option<i64>)], window: (i64, i64, i64), expected_hours: f64) {
        let p = VillagePresence { village_id: 1, enrolled_at_ms: enrolled, online: online.to_vec() };
        let got = p.offline_ms(window.0, window.1, window.2) as f64 / H as f64;
        assert!((got - expected_hours).abs() < 1e-9, "{online:?} in {window:?}: {got} h, expected {expected_hours}");
    }

    #[test]
    fn offline_is_the_window_minus_the_union_of_online_intervals() {
        // Never online over a day.
        check(0, &[], (0, 24 * H, 100 * H), 24.0);
        // Online the whole time, still connected.
        check(0, &[(-H, None)], (0, 24 * H, 100 * H), 0.0);
        // Two boards overlapping: 2–10 and 6–12 cover 10 hours.
        check(0, &[(2 * H, Some(10 * H)), (6 * H, Some(12 * H))], (0, 24 * H, 100 * H), 14.0);
        // A board inside another's interval adds nothing.
        check(0, &[(2 * H, Some(10 * H)), (3 * H, Some(4 * H))], (0, 24 * H, 100 * H), 16.0);
        // Enrolled at 20 h: only 20–24 counts.
        check(20 * H, &[], (0, 24 * H, 100 * H), 4.0);
        // Enrolled after the period: nothing.
        check(30 * H, &[], (0, 24 * H, 100 * H), 0.0);
        // The current period ends now (at 5 h); an open interval from 3 h.
        check(0, &[(3 * H, None)], (0, 24 * H, 5 * H), 3.0);
        // Intervals outside the window are clipped.
        check(0, &[(-5 * H, Some(H)), (23 * H, Some(30 * H))], (0, 24 * H, 100 * H), 22.0);
    }
}
