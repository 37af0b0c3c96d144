//! Loudness (EBU R128 / ITU-R BS.1770, via the `ebur128` crate) and the
//! playback gain that brings an item to the library's target.

use ebur128::{EbuR128, Mode};

use crate::error::{AudioError, Found};

/// Sample rates the meter (and the rest of the crate) accepts, in Hz.
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 8_000..=192_000;

/// Where items should land: a loudness, and a ceiling the gain may not push
/// true peaks above.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// Integrated loudness to aim for, in LUFS. Default −16 (a common target
    /// for speech on small loudspeakers; EBU R128 broadcast uses −23).
    pub lufs: f64,
    /// Highest true peak the gain may produce, in dBTP. Default −1, which
    /// leaves room for the overshoot of lossy encoding.
    pub peak_ceiling_dbtp: f64,
}

impl Default for Target {
    fn default() -> Self {
        Self { lufs: -16.0, peak_ceiling_dbtp: -1.0 }
    }
}

/// What a [`Meter`] measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loudness {
    /// Integrated loudness in LUFS; −∞ when nothing rose above the −70 LUFS
    /// absolute gate (silence).
    pub integrated_lufs: f64,
    /// True peak in dBTP; −∞ for all-zero audio.
    pub true_peak_dbtp: f64,
}

/// Measures one mono signal, fed block by block.
pub struct Meter {
    r128: EbuR128,
    rate: u32,
    frames: u64,
}

impl Meter {
    /// A meter for mono audio at `sample_rate`, one of [`SAMPLE_RATES`].
    pub fn new(sample_rate: u32) -> Result<Self, AudioError> {
        let unsupported = AudioError::Unsupported { found: Found::SampleRate(sample_rate) };
        if !SAMPLE_RATES.contains(&sample_rate) {
            return Err(unsupported);
        }
        let r128 = EbuR128::new(1, sample_rate, Mode::I | Mode::TRUE_PEAK).map_err(|_| unsupported)?;
        Ok(Self { r128, rate: sample_rate, frames: 0 })
    }

    /// Adds the next block of samples (full scale ±1.0).
    pub fn add(&mut self, mono: &[f32]) {
        // add_frames fails only for a meter with zero channels; this one has one.
        let added = self.r128.add_frames_f32(mono);
        debug_assert!(added.is_ok());
        self.frames += mono.len() as u64;
    }

    /// Loudness and peak of everything added so far.
    ///
    /// Integrated loudness needs 400 ms gating blocks; a clip shorter than
    /// one block is measured ungated over its whole length instead.
    pub fn loudness(&self) -> Loudness {
        let ms = self.frames * 1000 / u64::from(self.rate);
        let integrated = if ms >= 400 {
            self.r128.loudness_global()
        } else {
            self.r128.loudness_window(ms as u32).map(|lufs| if lufs < -70.0 { f64::NEG_INFINITY } else { lufs })
        };
        // Both calls fail only in a mode this meter was not built with.
        let integrated_lufs = integrated.unwrap_or(f64::NEG_INFINITY);
        let peak = self.r128.true_peak(0).unwrap_or(0.0);
        Loudness { integrated_lufs: finite_or_silent(integrated_lufs), true_peak_dbtp: to_db(peak) }
    }
}

/// The playback gain in dB that brings `measured` to `target.lufs`, lowered
/// where needed so the true peak stays at or below `target.peak_ceiling_dbtp`.
///
/// The ceiling wins over the loudness: a quiet recording with loud peaks is
/// raised only as far as its peaks allow, and a file whose peaks already pass
/// the ceiling is turned down to meet it. Silence (−∞ LUFS) gets 0 dB.
pub fn gain_for(target: Target, measured: &Loudness) -> f64 {
    let wanted = target.lufs - measured.integrated_lufs;
    let headroom = target.peak_ceiling_dbtp - measured.true_peak_dbtp;
    let gain = wanted.min(headroom);
    if gain.is_finite() { gain } else { 0.0 }
}

fn to_db(linear: f64) -> f64 {
    if linear > 0.0 { 20.0 * linear.log10() } else { f64::NEG_INFINITY }
}

fn finite_or_silent(lufs: f64) -> f64 {
    if lufs.is_finite() { lufs } else { f64::NEG_INFINITY }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level::sine;

    fn measure(samples: &[f32], rate: u32) -> Loudness {
        let mut meter = Meter::new(rate).expect("rate");
        for block in samples.chunks(1000) {
            meter.add(block);
        }
        meter.loudness()
    }

    #[test]
    fn sine_at_minus_20_dbfs_rms_is_minus_20_lufs() {
        // BS.1770: a 1 kHz sine in one channel reads its RMS level in LUFS.
        let amplitude = 0.1 * std::f32::consts::SQRT_2;
        for rate in [8_000, 22_050, 44_100, 48_000, 96_000] {
            let loudness = measure(&sine(1000.0, rate, 3.0, amplitude), rate);
            assert!((loudness.integrated_lufs + 20.0).abs() < 0.1, "{rate}: {loudness:?}");
            assert!((loudness.true_peak_dbtp + 16.99).abs() < 0.2, "{rate}: {loudness:?}");
        }
    }

    #[test]
    fn short_clip_is_measured_over_its_length() {
        let loudness = measure(&sine(1000.0, 48_000, 0.25, 0.1 * std::f32::consts::SQRT_2), 48_000);
        assert!((loudness.integrated_lufs + 20.0).abs() < 0.2, "{loudness:?}");
    }

    #[test]
    fn silence_has_no_loudness() {
        let loudness = measure(&[0.0; 48_000], 48_000);
        assert_eq!(loudness.integrated_lufs, f64::NEG_INFINITY);
        assert_eq!(loudness.true_peak_dbtp, f64::NEG_INFINITY);
        assert_eq!(measure(&[0.0; 4_800], 48_000).integrated_lufs, f64::NEG_INFINITY);
        assert_eq!(gain_for(Target::default(), &loudness), 0.0);
    }

    #[test]
    fn gain_table() {
        let check = |lufs: f64, peak: f64, expected: f64| {
            let gain = gain_for(Target::default(), &Loudness { integrated_lufs: lufs, true_peak_dbtp: peak });
            assert!((gain - expected).abs() < 1e-9, "{lufs} LUFS, {peak} dBTP: {gain} ≠ {expected}");
        };
        check(-20.0, -10.0, 4.0); // raised to target
        check(-10.0, -0.5, -6.0); // lowered to target
        check(-30.0, -3.0, 2.0); // raised only as far as the ceiling
        check(-14.0, 0.5, -2.0); // loud enough, but peaks past the ceiling
        check(-16.0, -1.0, 0.0);
    }

    #[test]
    fn rates_outside_the_range_are_refused() {
        for rate in [0, 7_999, 400_000] {
            let error = Meter::new(rate).err().expect("refused");
            assert!(matches!(error, AudioError::Unsupported { found: Found::SampleRate(r) } if r == rate));
        }
    }
}
