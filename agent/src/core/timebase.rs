//! Wall clock against monotonic clock: converting plan times to deadlines,
//! and noticing when the wall clock jumps.
//!
//! Plans speak wall time (Unix ms); the core's deadlines are monotonic
//! instants. Every input carries both clocks read together, so the latest
//! pair is an anchor that converts one into the other. Between two inputs both
//! clocks should move by the same amount; when the wall clock moves by more
//! than [`JUMP_THRESHOLD_MS`] more or less than the monotonic one, it jumped
//! (an NTP sync on a board without a real-time clock, an operator setting the
//! date, a resume from suspend) and every deadline derived from wall time must
//! be computed again. Smaller differences are NTP slewing and are absorbed by
//! moving the anchor.

use std::time::{Duration, Instant};

use super::Now;

/// The smallest disagreement between wall and monotonic time, between two
/// inputs, that counts as a jump.
pub const JUMP_THRESHOLD_MS: i64 = 2_000;

#[derive(Debug)]
pub(super) struct Timebase {
    anchor: Now,
}

impl Timebase {
    pub(super) fn new(now: Now) -> Self {
        Timebase { anchor: now }
    }

    /// Takes in the clocks of an input. Returns how far the wall clock jumped
    /// since the previous input (positive: forward), if it did.
    pub(super) fn observe(&mut self, now: Now) -> Option<i64> {
        let mono_ms =
            i64::try_from(now.mono.saturating_duration_since(self.anchor.mono).as_millis()).unwrap_or(i64::MAX);
        let wall_ms = now.wall_ms.saturating_sub(self.anchor.wall_ms);
        self.anchor = now;
        let by_ms = wall_ms.saturating_sub(mono_ms);
        (by_ms.abs() > JUMP_THRESHOLD_MS).then_some(by_ms)
    }

    /// The monotonic instant at which the wall clock will read `wall_ms`, as
    /// far as the latest input tells. A time before the anchor maps to an
    /// instant in the past (or to the anchor itself when the monotonic clock
    /// cannot go back that far), which is due at once.
    pub(super) fn mono_at(&self, wall_ms: i64) -> Instant {
        let delta = wall_ms.saturating_sub(self.anchor.wall_ms);
        let span = Duration::from_millis(delta.unsigned_abs());
        if delta >= 0 {
            self.anchor.mono.checked_add(span).unwrap_or(self.anchor.mono + Duration::from_secs(100 * 365 * 86_400))
        } else {
            self.anchor.mono.checked_sub(span).unwrap_or(self.anchor.mono)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WALL0: i64 = 1_700_000_000_000;

    fn at(t0: Instant, mono_ms: u64, wall_ms: i64) -> Now {
        Now { mono: t0 + Duration::from_millis(mono_ms), wall_ms: WALL0 + wall_ms }
    }

    #[test]
    fn jumps_are_what_wall_time_does_beyond_monotonic_time() {
        let t0 = Instant::now();
        let mut tb = Timebase::new(at(t0, 0, 0));
        // (monotonic ms, wall ms, jump expected)
        let cases = [
            (10_000, 10_000, None),
            (20_000, 21_500, None),
            (30_000, 31_500 + 3_600_000, Some(3_600_000)),
            (40_000, 41_500 + 3_600_000, None),
            (50_000, 51_500, Some(-3_600_000)),
            (60_000, 61_500 + 2_000, None),
            (70_000, 71_500 + 4_001, Some(2_001)),
        ];
        for (mono, wall, expected) in cases {
            assert_eq!(tb.observe(at(t0, mono, wall)), expected, "at {mono} ms");
        }
    }

    #[test]
    fn wall_times_map_to_instants_from_the_latest_anchor() {
        let t0 = Instant::now() + Duration::from_secs(3600);
        let mut tb = Timebase::new(at(t0, 0, 0));
        assert_eq!(tb.mono_at(WALL0 + 5_000), t0 + Duration::from_secs(5));
        assert_eq!(tb.mono_at(WALL0 - 5_000), t0 - Duration::from_secs(5));
        tb.observe(at(t0, 1_000, 3_600_000));
        assert_eq!(tb.mono_at(WALL0 + 3_600_000 + 5_000), t0 + Duration::from_secs(6), "re-anchored after the jump");
        assert!(tb.mono_at(i64::MIN) <= t0, "far in the past, and no panic");
        assert!(tb.mono_at(i64::MAX) > t0);
    }
}
