//! Pure audio computation: no devices, no network, no clock.
//!
//! # Layout
//! - [`level`]: peak and RMS levels of PCM samples, and test tones.
//!
//! Decoding, loudness (EBU R128), resampling and Opus framing join with the
//! scheduled- and live-broadcast work.

pub mod level;
