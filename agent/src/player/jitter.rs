//! The adaptive jitter buffer of a live stream: frames in by sequence
//! number as they arrive, one out per frame period as the output needs it.
//!
//! - **Depth.** Playout starts once [`JitterBuffer::target`] worth of frames
//!   wait (at least [`JitterConfig::min_ms`], 10 ms by default: one 10 ms
//!   microphone frame on a clean link; `[audio] live_min_delay_ms`). The target follows the measured jitter:
//!   `min + max(4 × J, P)`, where J is RFC 3550's smoothed inter-arrival
//!   jitter (the spread of arrival minus capture time between consecutive
//!   frames, gain 1/16) and P the largest recent spread, decaying with a
//!   half-life of 14 s (700 frames of 20 ms, 1,400 of 10 ms), so one burst
//!   of delay is covered
//!   at once and forgotten slowly. It never exceeds [`JitterConfig::max_ms`]
//!   (500 ms by default).
//! - **Growing and shrinking.** When fewer frames wait than the target, one
//!   concealed frame is played instead of the next (the buffer gains a
//!   frame); when more than the target plus [`SHRINK_MARGIN_MS`] (at least
//!   two frames) wait, the oldest is skipped. Each at most once every
//!   [`ADAPT_EVERY_MS`], so the audio is not chopped while it settles.
//! - **Order and loss.** Frames are played in sequence order whatever order
//!   they arrive in; a duplicate is dropped, and so is a frame that arrives
//!   after its turn. A frame missing at its turn while a later one waits is
//!   lost and concealed ([`Playout::Conceal`]: the Opus decoder's
//!   packet-loss concealment extrapolates from the last frames and fades
//!   out); when nothing at all waits, the frame is late, not lost: a
//!   concealed period is played and the frame keeps its turn, for at most
//!   [`CONCEAL_MAX_MS`], then periods of silence ([`Playout::Quiet`]): the
//!   concealment of a held vowel or a tone hardly fades, and at the end of
//!   every recorded source (its stop follows the last frame by a second)
//!   it would drone on for half a second. After [`JitterConfig::max_ms`] of
//!   nothing, the stream counts as stalled: the buffer plays silence and
//!   fills up again before it resumes.
//! - **Bounds.** At most twice the maximum depth waits; beyond that the
//!   oldest frames are dropped.
//!
//! Pure: no clock (arrival times are arguments), no decoder, no threads.

use std::collections::BTreeMap;

/// The buffer adapts its depth at most once in this long (8 frames of
/// 20 ms, 16 of 10 ms).
pub const ADAPT_EVERY_MS: u64 = 160;
/// The buffer shrinks only when it holds this much (and at least two
/// frames) more than its target: arrivals in bursts swing the depth, and a
/// margin of a frame or two at 10 ms would skip and stretch by turns.
pub const SHRINK_MARGIN_MS: u32 = 40;

/// Longest run of concealment while nothing arrives; then silence until
/// the frame comes or the stream stalls. Five 20 ms frames: longer than
/// an output catching up after a stall needs, short enough that the end
/// of a stream is not heard twice.
pub const CONCEAL_MAX_MS: u32 = 100;

/// Limits of a [`JitterBuffer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitterConfig {
    /// Smallest depth (a clean link), ms.
    pub min_ms: u32,
    /// Largest depth, ms.
    pub max_ms: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig { min_ms: 10, max_ms: 500 }
    }
}

/// What to play for the next frame period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Playout {
    /// This Opus packet.
    Packet(Vec<u8>),
    /// Conceal a missing packet (decode "nothing").
    Conceal,
    /// One frame period of silence: the frame due is late, and its turn
    /// is kept.
    Quiet,
    /// Nothing yet (filling up, or stalled): silence.
    Silence,
}

/// What happened to the frames, for the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Frames accepted into the buffer.
    pub received: u64,
    /// Frame periods concealed because their frame was missing.
    pub concealed: u64,
    /// Frames dropped: late, duplicate, skipped to shrink, or overflow.
    pub dropped: u64,
    /// Concealed frames inserted to grow the buffer.
    pub stretched: u64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    /// Frames waiting, by extended (unwrapped) sequence number.
    queue: BTreeMap<u64, Vec<u8>>,
    /// The latest sequence number seen and its extended value.
    last: Option<(u32, u64)>,
    /// The extended sequence number due next; `None` while filling up.
    next: Option<u64>,
    /// Length of one frame (from the decoder), ms.
    frame_ms: u32,
    /// Smoothed jitter and the decaying peak spread, µs.
    jitter_us: f64,
    peak_us: f64,
    /// Arrival minus capture time of the previous frame, µs.
    last_transit_us: Option<i64>,
    /// Frame periods since playout began, and at the last adaptation.
    periods: u64,
    adapted_at: u64,
    /// Consecutive frame periods with nothing to play.
    starved: u32,
    stats: JitterStats,
}

impl JitterBuffer {
    /// An empty buffer, assuming 20 ms frames until told otherwise.
    pub fn new(config: JitterConfig) -> Self {
        let max_ms = config.max_ms.max(config.min_ms);
        JitterBuffer {
            config: JitterConfig { min_ms: config.min_ms, max_ms },
            queue: BTreeMap::new(),
            last: None,
            next: None,
            frame_ms: 20,
            jitter_us: 0.0,
            peak_us: 0.0,
            last_transit_us: None,
            periods: 0,
            adapted_at: 0,
            starved: 0,
            stats: JitterStats::default(),
        }
    }

    /// The length of one frame, as the decoder found it (2.5–120 ms).
    pub fn set_frame_ms(&mut self, ms: u32) {
        self.frame_ms = ms.clamp(2, 120);
    }

    /// A frame arrived: sequence number, capture time (sender's clock, µs)
    /// and arrival time (receiver's clock, µs; only differences matter).
    pub fn push(&mut self, seq: u32, capture_us: i64, arrival_us: i64, packet: Vec<u8>) {
        let ext = self.extend(seq);
        let transit = arrival_us.saturating_sub(capture_us);
        if let Some(last) = self.last_transit_us {
            let d = transit.saturating_sub(last).unsigned_abs() as f64;
            self.jitter_us += (d - self.jitter_us) / 16.0;
            self.peak_us = self.peak_us.max(d);
        }
        // 0.999 per 20 ms: the same 14 s half-life whatever the frame length.
        self.peak_us *= 0.999f64.powf(f64::from(self.frame_ms) / 20.0);
        self.last_transit_us = Some(transit);
        if self.next.is_some_and(|next| ext < next) || self.queue.contains_key(&ext) {
            self.stats.dropped += 1;
            return;
        }
        self.queue.insert(ext, packet);
        self.stats.received += 1;
        let limit = 2 * self.frames_of(self.config.max_ms);
        while self.queue.len() > limit {
            self.queue.pop_first();
            self.stats.dropped += 1;
        }
    }

    /// What to play for the next frame period.
    pub fn pop(&mut self) -> Playout {
        let target = self.target_frames();
        let Some(next) = self.next else {
            if self.queue.len() < target {
                return Playout::Silence;
            }
            self.next = self.queue.first_key_value().map(|(k, _)| *k);
            self.starved = 0;
            return self.pop();
        };
        self.periods += 1;
        if self.queue.is_empty() {
            self.starved += 1;
            if self.starved * self.frame_ms >= self.config.max_ms {
                // Stalled: fill up again before playing on.
                self.next = None;
                return Playout::Silence;
            }
            // Nothing has arrived, not even a later frame: the frame due is
            // late, not lost (an output catching up after a stall drains
            // the buffer faster than real time). Conceal without moving on,
            // so it still plays when it comes; the added delay is shed by
            // skipping once the buffer is deeper than its target. Moving on
            // here turned every output stall into a run of concealment and
            // then every frame arriving "after its turn" into a drop.
            if self.starved * self.frame_ms > CONCEAL_MAX_MS {
                return Playout::Quiet;
            }
            self.stats.concealed += 1;
            return Playout::Conceal;
        }
        self.starved = 0;
        let depth = self.queue.last_key_value().map_or(0, |(last, _)| last + 1).saturating_sub(next);
        let may_adapt = (self.periods - self.adapted_at) * u64::from(self.frame_ms) >= ADAPT_EVERY_MS;
        let margin = self.frames_of(SHRINK_MARGIN_MS).max(2) as u64;
        if may_adapt && depth < target as u64 {
            self.adapted_at = self.periods;
            self.stats.stretched += 1;
            return Playout::Conceal;
        }
        let mut next = next;
        if may_adapt && depth > target as u64 + margin {
            self.adapted_at = self.periods;
            if self.queue.remove(&next).is_some() {
                self.stats.dropped += 1;
            }
            next += 1;
        }
        self.next = Some(next + 1);
        match self.queue.remove(&next) {
            Some(packet) => {
                // Frames before `next` can no longer play.
                while self.queue.first_key_value().is_some_and(|(k, _)| *k < next) {
                    self.queue.pop_first();
                    self.stats.dropped += 1;
                }
                Playout::Packet(packet)
            }
            None => {
                self.stats.concealed += 1;
                Playout::Conceal
            }
        }
    }

    /// Before playout may begin (the amplifier warming up): keeps only the
    /// newest target's worth of frames, so the audio starts live.
    pub fn keep_latest(&mut self) {
        let target = self.target_frames();
        while self.queue.len() > target {
            self.queue.pop_first();
            self.stats.dropped += 1;
        }
    }

    /// The depth the buffer aims at now.
    pub fn target_ms(&self) -> u32 {
        let spread_ms = (4.0 * self.jitter_us).max(self.peak_us) / 1000.0;
        let ms = f64::from(self.config.min_ms) + spread_ms;
        ms.min(f64::from(self.config.max_ms)) as u32
    }

    /// What happened so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    fn target_frames(&self) -> usize {
        self.frames_of(self.target_ms())
    }

    fn frames_of(&self, ms: u32) -> usize {
        (ms.div_ceil(self.frame_ms)).max(1) as usize
    }

    /// Unwraps a 32-bit sequence number next to the latest one.
    fn extend(&mut self, seq: u32) -> u64 {
        let ext = match self.last {
            None => u64::from(u32::MAX) + 1 + u64::from(seq),
            Some((last_seq, last_ext)) => {
                let delta = i64::from(seq.wrapping_sub(last_seq) as i32);
                last_ext.saturating_add_signed(delta)
            }
        };
        if self.last.is_none_or(|(_, last_ext)| ext > last_ext) {
            self.last = Some((seq, ext));
        }
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME_US: i64 = 20_000;
    /// Two 20 ms frames minimum: the cases below count frames against it.
    const FORTY: JitterConfig = JitterConfig { min_ms: 40, max_ms: 500 };

    fn packet(seq: u32) -> Vec<u8> {
        seq.to_be_bytes().to_vec()
    }

    /// Pushes frame `seq`, captured on time and arriving `delay_us` late.
    fn push(b: &mut JitterBuffer, seq: u32, delay_us: i64) {
        let capture = i64::from(seq) * FRAME_US;
        b.push(seq, capture, capture + delay_us, packet(seq));
    }

    fn played(p: &Playout) -> Option<u32> {
        match p {
            Playout::Packet(bytes) => Some(u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes"))),
            _ => None,
        }
    }

    #[test]
    fn frames_play_in_sequence_order_after_the_minimum_depth() {
        let mut b = JitterBuffer::new(FORTY);
        assert_eq!(b.target_ms(), 40, "a clean link starts small");
        push(&mut b, 10, 0);
        assert_eq!(b.pop(), Playout::Silence, "filling up");
        push(&mut b, 12, 0);
        push(&mut b, 11, 0);
        push(&mut b, 11, 0);
        let out: Vec<Option<u32>> = (0..3).map(|_| b.pop()).map(|p| played(&p)).collect();
        assert_eq!(out, vec![Some(10), Some(11), Some(12)]);
        assert_eq!(b.stats().dropped, 1, "the duplicate");
    }

    #[test]
    fn a_missing_frame_is_concealed_and_a_late_one_dropped() {
        let mut b = JitterBuffer::new(FORTY);
        for seq in [1, 2, 4, 5] {
            push(&mut b, seq, 0);
        }
        let mut out = Vec::new();
        for _ in 0..4 {
            out.push(b.pop());
        }
        assert_eq!(played(&out[0]), Some(1));
        assert_eq!(played(&out[1]), Some(2));
        assert_eq!(out[2], Playout::Conceal, "3 is missing at its turn");
        assert_eq!(played(&out[3]), Some(4));
        push(&mut b, 3, 0);
        assert_eq!(b.stats().concealed, 1);
        assert_eq!(b.stats().dropped, 1, "3 came after its turn");
        assert_eq!(played(&b.pop()), Some(5));
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut b = JitterBuffer::new(FORTY);
        for seq in [u32::MAX - 1, u32::MAX, 0, 1] {
            push(&mut b, seq, 0);
        }
        let out: Vec<Option<u32>> = (0..4).map(|_| b.pop()).map(|p| played(&p)).collect();
        assert_eq!(out, vec![Some(u32::MAX - 1), Some(u32::MAX), Some(0), Some(1)]);
    }

    #[test]
    fn the_depth_grows_with_jitter_and_stays_bounded() {
        let mut b = JitterBuffer::new(FORTY);
        for seq in 0..100 {
            push(&mut b, seq, 5_000);
        }
        assert_eq!(b.target_ms(), 40, "constant delay is not jitter");
        // 0 or 60 ms late, alternately: the depth covers the spread.
        let mut b = JitterBuffer::new(FORTY);
        for seq in 0..100 {
            push(&mut b, seq, if seq % 2 == 0 { 0 } else { 60_000 });
        }
        let t = b.target_ms();
        assert!((100..=300).contains(&t), "{t} ms");
        // Wild jitter (up to 3 s): capped.
        let mut b = JitterBuffer::new(FORTY);
        for seq in 0..100 {
            push(&mut b, seq, i64::from(seq % 7) * 500_000);
        }
        assert_eq!(b.target_ms(), 500);
    }

    #[test]
    fn a_growing_target_inserts_a_concealed_frame_and_an_overfull_buffer_skips() {
        let mut b = JitterBuffer::new(FORTY);
        for seq in 0..3 {
            push(&mut b, seq, 0);
        }
        // Steady state: one in, one out.
        let mut seq = 3;
        for _ in 0..20 {
            assert!(played(&b.pop()).is_some());
            push(&mut b, seq, 0);
            seq += 1;
        }
        // A burst of jitter raises the target; the buffer stretches.
        push(&mut b, seq, 150_000);
        seq += 1;
        for _ in 0..40 {
            b.pop();
            push(&mut b, seq, 0);
            seq += 1;
        }
        assert!(b.stats().stretched >= 1, "{:?}", b.stats());
        // Then a flood of frames: the buffer skips down towards its target.
        let before = b.stats().dropped;
        for _ in 0..20 {
            push(&mut b, seq, 0);
            seq += 1;
        }
        for _ in 0..40 {
            b.pop();
        }
        assert!(b.stats().dropped > before, "{:?}", b.stats());
    }

    #[test]
    fn an_output_catching_up_plays_the_late_frames_instead_of_dropping_them() {
        let mut b = JitterBuffer::new(FORTY);
        for seq in 0..3 {
            push(&mut b, seq, 0);
        }
        let mut last = None;
        let mut seq = 3;
        for _ in 0..20 {
            last = played(&b.pop()).or(last);
            push(&mut b, seq, 0);
            seq += 1;
        }
        // The output stalled and now asks for eight periods at once: the
        // buffer runs dry and conceals.
        let mut concealed = 0;
        for _ in 0..8 {
            match b.pop() {
                Playout::Conceal => concealed += 1,
                p => last = played(&p).or(last),
            }
        }
        assert!(concealed >= 4, "{concealed}");
        // The frames that were due arrive: they play, in order, none lost.
        for _ in 0..4 {
            push(&mut b, seq, 0);
            seq += 1;
        }
        let due = last.expect("played") + 1;
        let next: Vec<Option<u32>> = (0..3).map(|_| played(&b.pop())).collect();
        assert_eq!(next, (due..due + 3).map(Some).collect::<Vec<_>>());
        assert_eq!(b.stats().dropped, 0, "{:?}", b.stats());
    }

    #[test]
    fn a_stalled_stream_fills_up_again_and_the_queue_is_bounded() {
        let mut b = JitterBuffer::new(FORTY);
        push(&mut b, 0, 0);
        push(&mut b, 1, 0);
        b.pop();
        b.pop();
        let out: Vec<Playout> = (0..30).map(|_| b.pop()).collect();
        assert!(out[..5].iter().all(|p| *p == Playout::Conceal), "100 ms concealed: {out:?}");
        assert!(out[5..24].iter().all(|p| *p == Playout::Quiet), "then quiet: {out:?}");
        assert_eq!(out[29], Playout::Silence, "stalled after 500 ms");
        assert_eq!(b.stats().concealed, 5);
        for seq in 100..1_000 {
            push(&mut b, seq, 0);
        }
        assert!(b.queue.len() <= 50);
        b.keep_latest();
        assert!(b.queue.len() <= 2);
        assert_eq!(played(&b.pop()), Some(998), "the newest frames start the audio");
    }
}
