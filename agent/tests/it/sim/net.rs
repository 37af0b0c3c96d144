//! The network between one agent and the controller: delay with jitter,
//! loss, duplication and cuts, drawn from a seeded generator so every run
//! replays exactly.

use std::time::Duration;

/// How a path behaves.
#[derive(Clone, Debug)]
pub struct PathConditions {
    /// One-way delay, before jitter.
    pub delay: Duration,
    /// The one-way delay varies uniformly by up to this much either way.
    pub jitter: Duration,
    /// Probability that a message is lost.
    pub drop: f64,
    /// Probability that a message arrives twice.
    pub duplicate: f64,
}

impl Default for PathConditions {
    /// A quiet 20 ms path.
    fn default() -> Self {
        PathConditions { delay: Duration::from_millis(20), jitter: Duration::ZERO, drop: 0.0, duplicate: 0.0 }
    }
}

/// Which way a message travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Agent to controller.
    Up,
    /// Controller to agent.
    Down,
}

/// One agent's path to the controller. Like a TCP stream, it keeps order in
/// each direction: jitter delays messages but never reorders them.
#[derive(Debug)]
pub struct Path {
    pub conditions: PathConditions,
    rng: SimRng,
    /// Windows `[from, until)` during which everything sent or arriving is
    /// lost and connection attempts time out.
    cuts: Vec<(Duration, Duration)>,
    /// Latest arrival so far, per direction.
    last_up: Duration,
    last_down: Duration,
}

impl Path {
    pub fn new(conditions: PathConditions, seed: u64) -> Self {
        Path { conditions, rng: SimRng::new(seed), cuts: vec![], last_up: Duration::ZERO, last_down: Duration::ZERO }
    }

    pub fn cut(&mut self, from: Duration, duration: Duration) {
        self.cuts.push((from, from + duration));
    }

    pub fn is_cut(&self, t: Duration) -> bool {
        self.cuts.iter().any(|&(from, until)| from <= t && t < until)
    }

    /// Arrival times of a message sent at `t`: none if lost, two if duplicated.
    pub fn transmit(&mut self, dir: Dir, t: Duration) -> Vec<Duration> {
        if self.is_cut(t) || self.rng.chance(self.conditions.drop) {
            return vec![];
        }
        let mut arrivals = vec![self.arrival(dir, t)];
        if self.rng.chance(self.conditions.duplicate) {
            arrivals.push(self.arrival(dir, t));
        }
        arrivals
    }

    /// Arrival time of a connection close sent at `t`: closes are never
    /// dropped or duplicated (TCP retransmits them), only lost to a cut.
    pub fn transmit_close(&mut self, dir: Dir, t: Duration) -> Option<Duration> {
        (!self.is_cut(t)).then(|| self.arrival(dir, t))
    }

    /// One sampled one-way delay.
    pub fn one_way(&mut self) -> Duration {
        let PathConditions { delay, jitter, .. } = self.conditions;
        let low = delay.saturating_sub(jitter);
        let span = (delay + jitter - low).as_nanos() as f64;
        low + Duration::from_nanos((self.rng.unit() * span) as u64)
    }

    fn arrival(&mut self, dir: Dir, t: Duration) -> Duration {
        let at = t + self.one_way();
        let last = match dir {
            Dir::Up => &mut self.last_up,
            Dir::Down => &mut self.last_down,
        };
        *last = (*last).max(at);
        *last
    }
}

/// SplitMix64: small, seeded, reproducible.
#[derive(Debug)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    pub fn new(seed: u64) -> Self {
        SimRng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn jittered_delays_stay_in_range_and_keep_order() {
        let conditions = PathConditions { delay: 200 * MS, jitter: 100 * MS, ..PathConditions::default() };
        let mut path = Path::new(conditions, 1);
        let mut last = Duration::ZERO;
        for i in 0..1000 {
            let t = i * 10 * MS;
            let at = path.transmit(Dir::Up, t)[0];
            assert!(at >= t + 100 * MS && at >= last, "{at:?}");
            last = at;
        }
        for _ in 0..1000 {
            let d = path.one_way();
            assert!(d >= 100 * MS && d <= 300 * MS, "{d:?}");
        }
    }

    #[test]
    fn loss_and_duplication_happen_at_their_rates() {
        let conditions = PathConditions { drop: 0.05, duplicate: 0.1, ..PathConditions::default() };
        let mut path = Path::new(conditions, 2);
        let counts: Vec<usize> = (0..10_000).map(|i| path.transmit(Dir::Down, i * MS).len()).collect();
        let lost = counts.iter().filter(|&&n| n == 0).count();
        let doubled = counts.iter().filter(|&&n| n == 2).count();
        assert!((400..600).contains(&lost), "{lost}");
        assert!((800..1100).contains(&doubled), "{doubled}");
    }

    #[test]
    fn a_cut_loses_everything_inside_its_window() {
        let mut path = Path::new(PathConditions::default(), 3);
        path.cut(Duration::from_secs(10), Duration::from_secs(5));
        assert_eq!(path.transmit(Dir::Up, Duration::from_secs(9)).len(), 1);
        assert!(path.transmit(Dir::Up, Duration::from_secs(10)).is_empty());
        assert_eq!(path.transmit_close(Dir::Down, Duration::from_secs(14)), None);
        assert_eq!(path.transmit(Dir::Up, Duration::from_secs(15)).len(), 1);
    }
}
