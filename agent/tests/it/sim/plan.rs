//! Desired states for the tests: a small content library and entries placed
//! on the simulation's wall clock.

use std::time::Duration;

use dalaba_protocol::state::{ContentInfo, DesiredState, PlanEntry, PlannedPlay, PlaybackSettings, Priority};

use super::clock::EPOCH_MS;

pub const SEC_MS: i64 = 1_000;
pub const MIN_MS: i64 = 60 * SEC_MS;
pub const HOUR_MS: i64 = 60 * MIN_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// The library: content `n` (1, 2 or 3) lasts 30, 45 or 60 s.
pub const LIBRARY: [(u8, u64); 3] = [(1, 30_000), (2, 45_000), (3, 60_000)];

/// SHA-256 of content `n`.
pub fn hash(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

/// Playing time of content `n`.
pub fn duration_ms(n: u8) -> u64 {
    LIBRARY.iter().find(|(m, _)| *m == n).map(|(_, d)| *d).expect("content in the library")
}

/// Wall clock (controller, unskewed) of day `day` at `h:m`.
pub fn wall(day: i64, h: i64, m: i64) -> i64 {
    EPOCH_MS + day * DAY_MS + h * HOUR_MS + m * MIN_MS
}

/// Simulated time at which an unskewed clock reads `wall_ms`.
pub fn sim_time(wall_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(wall_ms - EPOCH_MS).expect("after the epoch"))
}

/// Builds a desired state.
#[derive(Clone, Debug)]
pub struct Plan {
    state: DesiredState,
}

impl Plan {
    pub fn new(version: u64) -> Self {
        let content = LIBRARY
            .iter()
            .map(|&(n, duration_ms)| ContentInfo {
                sha256: hash(n),
                size_bytes: duration_ms * 4,
                duration_ms,
                gain_db: -f64::from(n),
                title: format!("通知 {n}"),
            })
            .collect();
        Plan {
            state: DesiredState {
                version,
                generated_at_ms: EPOCH_MS,
                from_ms: EPOCH_MS,
                to_ms: EPOCH_MS + 8 * DAY_MS,
                entries: vec![],
                content,
                playback: PlaybackSettings::default(),
            },
        }
    }

    /// An entry playing content `n` at `start_ms`; its id is `n@start_ms`.
    pub fn item(self, start_ms: i64, n: u8) -> Self {
        self.pieces(start_ms, &[n])
    }

    /// An entry playing several pieces back to back.
    pub fn pieces(mut self, start_ms: i64, ns: &[u8]) -> Self {
        let mut at = start_ms;
        let plays = ns
            .iter()
            .map(|&n| {
                let play = PlannedPlay { sha256: hash(n), start_ms: at, duration_ms: duration_ms(n) };
                at += duration_ms(n) as i64;
                play
            })
            .collect();
        self.state.entries.push(PlanEntry {
            id: format!("{}@{start_ms}", ns[0]),
            schedule_id: i64::from(ns[0]),
            title: format!("通知 {}", ns[0]),
            nominal_start_ms: start_ms,
            start_ms,
            plays,
            volume: 80,
            priority: Priority::Scheduled,
        });
        self
    }

    pub fn settings(mut self, adjust: impl FnOnce(&mut PlaybackSettings)) -> Self {
        adjust(&mut self.state.playback);
        self
    }

    pub fn build(self) -> DesiredState {
        self.state
    }
}
