//! The simulation's virtual clock.

use std::time::{Duration, Instant};

use dalaba_agent::core::Now;

/// Unix milliseconds at the start of every simulation (2024-06-01T00:00:00Z).
pub const EPOCH_MS: i64 = 1_717_200_000_000;

/// Virtual time: a base `Instant` captured once plus the time simulated so
/// far. Wall time is [`EPOCH_MS`] plus the same offset, optionally skewed per
/// machine.
#[derive(Debug)]
pub struct VirtualClock {
    base: Instant,
    elapsed: Duration,
}

impl VirtualClock {
    pub fn new() -> Self {
        VirtualClock { base: Instant::now(), elapsed: Duration::ZERO }
    }

    /// Time simulated so far.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Moves time forward; it never goes back.
    pub fn advance_to(&mut self, t: Duration) {
        assert!(t >= self.elapsed, "virtual time goes back from {:?} to {t:?}", self.elapsed);
        self.elapsed = t;
    }

    /// The simulated time of a monotonic instant handed out by this clock.
    pub fn offset_of(&self, instant: Instant) -> Duration {
        instant.saturating_duration_since(self.base)
    }

    /// Wall clock of a machine whose clock runs `skew_ms` ahead.
    pub fn wall_ms(&self, skew_ms: i64) -> i64 {
        EPOCH_MS + self.elapsed.as_millis() as i64 + skew_ms
    }

    /// "Now" for a machine whose clock runs `skew_ms` ahead.
    pub fn now(&self, skew_ms: i64) -> Now {
        Now { mono: self.base + self.elapsed, wall_ms: self.wall_ms(skew_ms) }
    }
}
