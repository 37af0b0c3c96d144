//! Jittered exponential backoff for reconnecting to the controller.
//!
//! Attempt `n` (counting from 0 after the last welcome) has a base of
//! `min(max, initial × 2^n)`; the delay is `base/2 + uniform(0, base/2)`
//! ("equal jitter"), so a county's agents that lost the controller at the same
//! moment come back spread over time rather than all at once, yet none waits
//! less than half its base. Delays never exceed `max` and are never zero.
//!
//! The randomness is a small deterministic generator seeded from the
//! configuration, so a simulation with the same seeds replays exactly.

use std::time::Duration;

/// The shortest delay ever returned, so a misconfigured `initial` of zero
/// cannot make the agent hammer the controller in a tight loop.
const MIN_DELAY: Duration = Duration::from_millis(1);

/// How long to wait before the next attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pace {
    /// The usual exponential schedule.
    Normal,
    /// The controller has said it will not take this agent as it is
    /// (authentication rejected, protocol version refused): retrying fast is
    /// pointless, so wait about `max`.
    Slow,
}

/// Backoff state: the attempt counter and the jitter generator.
#[derive(Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    /// Attempts made since the last [`Backoff::reset`].
    attempt: u32,
    rng: SplitMix64,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration, seed: u64) -> Self {
        Backoff { initial, max: max.max(MIN_DELAY), attempt: 0, rng: SplitMix64::new(seed) }
    }

    /// Forgets past failures: the next delay is drawn from the first step.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Draws the delay before the next attempt and counts the attempt.
    /// Returns the delay and the attempt's number (1 for the first retry).
    pub(crate) fn next_delay(&mut self, pace: Pace) -> (Duration, u32) {
        let max = nanos(self.max);
        let delay = match pace {
            Pace::Normal => {
                let base =
                    nanos(self.initial).saturating_mul(1u64.checked_shl(self.attempt).unwrap_or(u64::MAX)).min(max);
                let half = base / 2;
                half + self.rng.below_inclusive(base - half)
            }
            // A quarter of jitter keeps refused agents from returning in lockstep
            // while every wait stays close to `max`.
            Pace::Slow => max - self.rng.below_inclusive(max / 4),
        };
        self.attempt = self.attempt.saturating_add(1);
        (Duration::from_nanos(delay).clamp(MIN_DELAY, self.max), self.attempt)
    }
}

/// Nanoseconds of `d`, saturating at `u64::MAX` (about 584 years).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a tiny, well-mixed generator,
/// plenty for spreading reconnects and not meant for anything secret.
#[derive(Debug)]
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=bound` (multiply-shift; the bias is below 2^-64 × bound).
    fn below_inclusive(&mut self, bound: u64) -> u64 {
        let span = u128::from(bound) + 1;
        // The product of a 64-bit value and a span of at most 2^64, shifted
        // right by 64, is below the span, so it fits in u64.
        ((u128::from(self.next_u64()) * span) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INITIAL: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(30);

    fn delays(seed: u64, pace: Pace, count: usize) -> Vec<Duration> {
        let mut b = Backoff::new(INITIAL, MAX, seed);
        (0..count).map(|_| b.next_delay(pace).0).collect()
    }

    #[test]
    fn delays_stay_within_equal_jitter_bounds() {
        for seed in 0..200 {
            for (n, d) in delays(seed, Pace::Normal, 12).into_iter().enumerate() {
                let base = (INITIAL * 2u32.pow(n as u32)).min(MAX);
                assert!(
                    d >= base / 2 && d <= base,
                    "seed {seed} attempt {n}: {d:?} outside [{:?}, {base:?}]",
                    base / 2
                );
            }
        }
    }

    #[test]
    fn delays_grow_then_cap_at_max() {
        let mean = |n: usize| -> f64 {
            (0..500).map(|seed| delays(seed, Pace::Normal, n + 1)[n].as_secs_f64()).sum::<f64>() / 500.0
        };
        // Equal jitter has a mean of three quarters of the base.
        for (n, expected) in [(0, 0.75), (1, 1.5), (2, 3.0), (3, 6.0), (4, 12.0), (5, 22.5), (9, 22.5)] {
            assert!((mean(n) - expected).abs() < expected * 0.1, "attempt {n}: mean {} vs {expected}", mean(n));
        }
        assert!(delays(3, Pace::Normal, 1000).iter().all(|d| *d <= MAX));
    }

    #[test]
    fn jitter_differs_across_seeds() {
        let a = delays(1, Pace::Normal, 8);
        let b = delays(2, Pace::Normal, 8);
        assert_ne!(a, b);
        assert_eq!(a, delays(1, Pace::Normal, 8), "same seed, same delays");
    }

    #[test]
    fn slow_pace_waits_close_to_max() {
        for seed in 0..200 {
            for d in delays(seed, Pace::Slow, 5) {
                assert!(d >= MAX * 3 / 4 && d <= MAX, "{d:?}");
            }
        }
    }

    #[test]
    fn delay_is_never_zero() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO, 9);
        for pace in [Pace::Normal, Pace::Slow, Pace::Normal] {
            assert_eq!(b.next_delay(pace).0, MIN_DELAY);
        }
    }

    #[test]
    fn reset_starts_over_and_attempts_are_counted() {
        let mut b = Backoff::new(INITIAL, MAX, 5);
        assert_eq!(b.next_delay(Pace::Normal).1, 1);
        assert_eq!(b.next_delay(Pace::Normal).1, 2);
        for _ in 0..100 {
            b.next_delay(Pace::Normal);
        }
        b.reset();
        let (d, attempt) = b.next_delay(Pace::Normal);
        assert_eq!(attempt, 1);
        assert!(d <= INITIAL, "{d:?}");
    }
}
