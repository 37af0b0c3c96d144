//! The agent's audio player: plays `state_dir/cache/<sha256>` when the core
//! says [`Output::StartPlayback`](crate::core::Output::StartPlayback) and
//! reports [`PlaybackNews`](crate::core::PlaybackNews) to the shell loop
//! through its [`NewsSender`].
//!
//! Two players behind one [`Player`] enum:
//! - [`AudioPlayer`]: cpal on the configured ALSA device (`[audio] output`:
//!   `"default"`, `"plughw:1,0"`, … or `"null"`, which discards the audio
//!   but keeps real-time pacing and reports the same timing). The output is
//!   opened once at start and kept open, so starting an item costs nothing.
//! - [`SimulatedPlayer`]: no device, no file; `Started` at the planned
//!   instant, `Finished` after the planned duration. `dalaba-agent simulate`
//!   uses it for hundreds of villages in one process.
//!
//! # Start precision (the pre-roll)
//! The core hands an item over [`Player::lead`] early (its
//! [`CoreConfig::playback_lead`](crate::core::CoreConfig::playback_lead)),
//! naming the wall instant `at_ms` its first sample must leave the output.
//! The player opens and decodes the file ([`dalaba_audio::StreamDecoder`],
//! one packet at a time) while the output keeps playing silence. In every
//! output callback cpal says when the buffer's first frame will be played
//! (`OutputCallbackInfo`: playback minus callback instant is the whole
//! output latency, ALSA's and PulseAudio's buffers included), so the mixer
//! starts the item at the exact frame that leaves at `at_ms`, and reports
//! `Started { at_ms }` with that frame's instant. An item handed over late
//! starts in the next buffer.
//!
//! # Level
//! Amplitude = 10^(gain_db / 20) × (volume / 100)²: the content's gain
//! towards the county loudness, and the schedule's volume on a square-law
//! curve (40·log10(volume/100) dB), which is close to how loud it sounds:
//! 100 → 0 dB, 70 → −6.2 dB, 50 → −12 dB, 25 → −24 dB, 10 → −40 dB, 0 →
//! silence. Samples are clipped at full scale.
//!
//! # Live streams
//! [`Player::start_live`] plays the frames the shell hands over with
//! [`Player::live_frame`] through an adaptive jitter buffer ([`jitter`]) and
//! the Opus decoder's packet-loss concealment, inside the output callback,
//! at the stream's gain and volume; nothing leaves the output before the
//! request's `at_ms` (the amplifier's warm-up), and the player reports
//! [`LiveNews::Started`](crate::core::LiveNews::Started) with the first
//! sample's instant. A live stream replaces scheduled audio in the output
//! while it plays (the core has stopped that already).
//!
//! # Failures
//! Nothing here panics on a file or a device. A missing sound card, a
//! missing or damaged file are each reported as `Failed { reason }` with
//! the device or path and the cause, and the agent keeps running; the
//! output is opened again at the next item when it failed.

pub mod jitter;
mod live;
mod mixer;
mod output;
mod simulated;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dalaba_protocol::live::LiveFrame;

pub use output::{AudioPlayer, OutputSettings};
pub use simulated::SimulatedPlayer;

use crate::shell::NewsSender;

/// The default pre-roll of the audio player: comfortably more than the
/// output latency (tens of ms) plus opening and decoding a file's first
/// packet on a Raspberry Pi.
pub const DEFAULT_LEAD: Duration = Duration::from_millis(500);

/// One piece of audio to play.
#[derive(Clone, Debug, PartialEq)]
pub struct StartRequest {
    /// The plan entry, quoted back in the news.
    pub entry_id: String,
    /// Which piece of the entry, quoted back in the news.
    pub part: usize,
    /// The file in the content cache.
    pub path: PathBuf,
    /// The content's gain towards the county loudness, in dB.
    pub gain_db: f64,
    /// The schedule's volume, 0–100.
    pub volume: u8,
    /// Wall clock (Unix ms) at which the first sample should leave the
    /// output; in the past means at once.
    pub at_ms: i64,
    /// How far into the audio to begin, in ms: a preempted item resumes
    /// where it stopped. Zero for an item from its beginning.
    pub offset_ms: u64,
    /// The planned length, in ms (the simulated player's only measure).
    pub duration_ms: u64,
}

impl StartRequest {
    /// The linear factor for this item's samples (see the module docs).
    pub fn amplitude(&self) -> f32 {
        amplitude(self.gain_db, self.volume)
    }
}

/// A live stream to play
/// ([`Output::StartLive`](crate::core::Output::StartLive)).
#[derive(Clone, Debug, PartialEq)]
pub struct LiveRequest {
    /// The session, quoted back in the news.
    pub session_id: String,
    /// The stream whose frames to play.
    pub stream_id: u32,
    /// Gain towards the county loudness, in dB.
    pub gain_db: f64,
    /// Volume, 0–100.
    pub volume: u8,
    /// Wall clock (Unix ms) before which no sample leaves the output.
    pub at_ms: i64,
}

impl LiveRequest {
    /// The linear factor for the stream's samples (see the module docs).
    pub fn amplitude(&self) -> f32 {
        amplitude(self.gain_db, self.volume)
    }
}

/// The player a shell drives.
#[derive(Debug)]
pub enum Player {
    /// Real audio through cpal and ALSA.
    Audio(AudioPlayer),
    /// Timing only, for simulated villages.
    Simulated(SimulatedPlayer),
}

impl Player {
    /// How early the core should hand items over
    /// ([`CoreConfig::playback_lead`](crate::core::CoreConfig::playback_lead)).
    pub fn lead(&self) -> Duration {
        match self {
            Player::Audio(p) => p.lead(),
            Player::Simulated(_) => Duration::ZERO,
        }
    }

    /// Starts `request`; its news goes to `news`.
    pub fn start(&mut self, request: StartRequest, news: &NewsSender) {
        match self {
            Player::Audio(p) => p.start(request, news),
            Player::Simulated(p) => p.start(request, news),
        }
    }

    /// Stops the audio of `entry_id` at once. The audio player reports how
    /// much of it went out ([`PlaybackNews::Stopped`]); nothing else is
    /// reported about it.
    pub fn stop(&mut self, entry_id: &str) {
        match self {
            Player::Audio(p) => p.stop(entry_id),
            Player::Simulated(p) => p.stop(entry_id),
        }
    }
}

impl Player {
    /// Starts the live stream of `request` (replacing any other); its news
    /// goes to `news`.
    pub fn start_live(&mut self, request: LiveRequest, news: &NewsSender) {
        match self {
            Player::Audio(p) => p.start_live(request, news),
            Player::Simulated(p) => p.start_live(request, news),
        }
    }

    /// A frame of the live stream, stamped with its arrival.
    pub fn live_frame(&mut self, frame: LiveFrame, arrived: Instant) {
        match self {
            Player::Audio(p) => p.live_frame(frame, arrived),
            Player::Simulated(_) => {}
        }
    }

    /// Ends the live stream of `session_id` at once.
    pub fn stop_live(&mut self, session_id: &str) {
        match self {
            Player::Audio(p) => p.stop_live(session_id),
            Player::Simulated(p) => p.stop_live(session_id),
        }
    }
}

/// 10^(gain_db / 20) × (volume / 100)², never negative, never NaN.
pub fn amplitude(gain_db: f64, volume: u8) -> f32 {
    let volume = f64::from(volume.min(100)) / 100.0;
    let gain = if gain_db.is_finite() { 10f64.powf(gain_db.clamp(-60.0, 24.0) / 20.0) } else { 1.0 };
    (gain * volume * volume) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_volume_curve_and_the_gain() {
        let db = |gain_db: f64, volume: u8| 20.0 * f64::from(amplitude(gain_db, volume)).log10();
        for (gain_db, volume, expected_db) in [
            (0.0, 100, 0.0),
            (0.0, 50, -12.04),
            (0.0, 70, -6.20),
            (0.0, 10, -40.0),
            (-6.0, 100, -6.0),
            (3.0, 50, -9.04),
        ] {
            assert!(
                (db(gain_db, volume) - expected_db).abs() < 0.01,
                "{gain_db} dB at {volume}: {}",
                db(gain_db, volume)
            );
        }
        assert_eq!(amplitude(0.0, 0), 0.0);
        assert_eq!(amplitude(0.0, 255), 1.0, "volume is capped at 100");
        assert_eq!(amplitude(f64::NAN, 100), 1.0);
        assert!(amplitude(1e9, 100) < 20.0);
    }
}
