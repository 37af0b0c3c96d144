//! The agent shell's one window on time: a monotonic instant for deadlines
//! and the wall clock for what goes on the wire, read together.
//!
//! The player also converts between the two here: it is told a wall instant
//! to start at and measures output latency on the monotonic clock.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::core::Now;

/// Reads both clocks.
pub fn now() -> Now {
    let (mono, wall) = read();
    Now { mono, wall_ms: i64::try_from(wall.as_millis()).unwrap_or(i64::MAX) }
}

/// The monotonic instant at which the wall clock will read `wall_ms`, as the
/// two clocks stand now (a later jump of the wall clock is not foreseen;
/// the core re-plans after one).
pub fn mono_at(wall_ms: i64) -> Instant {
    let (mono, wall) = read();
    let target = Duration::from_millis(u64::try_from(wall_ms).unwrap_or(0));
    match target.checked_sub(wall) {
        Some(ahead) => mono.checked_add(ahead).unwrap_or(mono),
        None => mono.checked_sub(wall - target).unwrap_or(mono),
    }
}

/// What the wall clock reads (Unix ms) at the monotonic instant `at`, as
/// the two clocks stand now.
pub fn wall_ms_at(at: Instant) -> i64 {
    let (mono, wall) = read();
    let wall_at = match at.checked_duration_since(mono) {
        Some(ahead) => wall.saturating_add(ahead),
        None => wall.saturating_sub(mono - at),
    };
    i64::try_from(wall_at.as_millis()).unwrap_or(i64::MAX)
}

fn read() -> (Instant, Duration) {
    #[allow(clippy::disallowed_methods)] // the one sanctioned read of the wall clock
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (Instant::now(), wall)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_agree_with_each_other() {
        let now = now();
        let later = mono_at(now.wall_ms + 5_000);
        let ahead = later.saturating_duration_since(now.mono);
        assert!(ahead > Duration::from_millis(4_000) && ahead < Duration::from_millis(6_000), "{ahead:?}");
        let back = wall_ms_at(later);
        assert!((back - (now.wall_ms + 5_000)).abs() <= 1_000, "{back}");
        let _ = mono_at(i64::MIN);
        let _ = mono_at(i64::MAX);
    }
}
