//! Levels of PCM samples (f32, full scale ±1.0) and pure test tones.
//!
//! The agent uses levels to report what it plays; tests use tones to check
//! that what came out of ALSA is what went in.

/// Level of silence in dBFS (what an all-zero signal measures).
pub const SILENCE_DBFS: f64 = f64::NEG_INFINITY;

/// Peak level in dBFS.
pub fn peak_dbfs(samples: &[f32]) -> f64 {
    let peak = samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    to_dbfs(f64::from(peak))
}

/// RMS level in dBFS (a full-scale sine measures −3.01 dBFS).
pub fn rms_dbfs(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return SILENCE_DBFS;
    }
    let sum: f64 = samples.iter().map(|s| f64::from(*s) * f64::from(*s)).sum();
    to_dbfs((sum / samples.len() as f64).sqrt())
}

/// A sine tone: `seconds` of `frequency` Hz at `amplitude` (0..=1), mono.
pub fn sine(frequency: f64, sample_rate: u32, seconds: f64, amplitude: f32) -> Vec<f32> {
    let n = (seconds * f64::from(sample_rate)).round() as usize;
    let step = std::f64::consts::TAU * frequency / f64::from(sample_rate);
    (0..n).map(|i| amplitude * (step * i as f64).sin() as f32).collect()
}

/// Estimates the dominant frequency of a mono signal by counting upward zero
/// crossings; good enough to tell test tones apart.
pub fn zero_crossing_frequency(samples: &[f32], sample_rate: u32) -> Option<f64> {
    let crossings: Vec<usize> =
        samples.windows(2).enumerate().filter(|(_, w)| w[0] <= 0.0 && w[1] > 0.0).map(|(i, _)| i).collect();
    let (first, last) = (crossings.first()?, crossings.last()?);
    if crossings.len() < 2 {
        return None;
    }
    let periods = (crossings.len() - 1) as f64;
    Some(periods * f64::from(sample_rate) / (last - first) as f64)
}

fn to_dbfs(linear: f64) -> f64 {
    if linear <= 0.0 { SILENCE_DBFS } else { 20.0 * linear.log10() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_scale_sine_levels() {
        let tone = sine(1000.0, 48_000, 1.0, 1.0);
        assert!((peak_dbfs(&tone) - 0.0).abs() < 0.01);
        assert!((rms_dbfs(&tone) + 3.01).abs() < 0.01, "{}", rms_dbfs(&tone));
    }

    #[test]
    fn half_amplitude_is_six_db_down() {
        let tone = sine(440.0, 48_000, 0.5, 0.5);
        assert!((peak_dbfs(&tone) + 6.02).abs() < 0.05, "{}", peak_dbfs(&tone));
    }

    #[test]
    fn silence_and_empty() {
        assert_eq!(rms_dbfs(&[]), SILENCE_DBFS);
        assert_eq!(peak_dbfs(&[0.0; 10]), SILENCE_DBFS);
        assert_eq!(zero_crossing_frequency(&[0.0; 10], 48_000), None);
    }

    #[test]
    fn frequency_is_recovered() {
        for f in [440.0, 1000.0, 3150.0] {
            let est = zero_crossing_frequency(&sine(f, 48_000, 1.0, 0.8), 48_000).expect("tone");
            assert!((est - f).abs() / f < 0.01, "{f} → {est}");
        }
    }
}
