//! The agent shell's one window on time: a monotonic instant for deadlines
//! and the wall clock for what goes on the wire, read together.

use crate::core::Now;

/// Reads both clocks.
pub fn now() -> Now {
    #[allow(clippy::disallowed_methods)] // the one sanctioned read of the wall clock
    let wall_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    Now { mono: std::time::Instant::now(), wall_ms }
}
