//! Test audio and the county's calendar for the end-to-end tests: WAV tones
//! to upload or feed a fake microphone, ALSA's `file` plugin to capture what
//! an agent plays, and the wall-clock helpers that place a schedule.

use std::path::{Path, PathBuf};

/// The sample rate of every generated file and capture.
pub const RATE: u32 = 48_000;

/// ALSA's default device as the `file` plugin over `null`, 16-bit stereo at
/// 48 kHz whatever the player opened: the capture holds the exact samples.
/// The `null` device is not paced in real time, so a capture says what was
/// played, never when.
pub const FILE_PLUGIN_ASOUNDRC: &str = r#"
pcm.!default {
    type plug
    slave { pcm "tap"; format S16_LE; rate 48000; channels 2 }
}
pcm.tap {
    type file
    slave.pcm "null"
    file { @func getenv vars [ ALSA_TEST_PCM_FILE ] default "/tmp/dalaba-e2e.raw" }
    format "raw"
}
"#;

/// Writes [`FILE_PLUGIN_ASOUNDRC`] under `dir` and returns the directory to
/// give an agent as `XDG_CONFIG_HOME` (with `ALSA_TEST_PCM_FILE` naming the
/// capture file).
pub fn file_plugin_config(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("alsa")).expect("mkdir alsa");
    std::fs::write(dir.join("alsa/asoundrc"), FILE_PLUGIN_ASOUNDRC).expect("asoundrc");
    dir.to_path_buf()
}

/// A mono 16-bit WAV file at [`RATE`] of a sine tone.
pub fn tone_wav(hz: f64, secs: f64, amplitude: f64) -> Vec<u8> {
    let n = (f64::from(RATE) * secs) as u32;
    let mut wav = Vec::with_capacity(44 + 2 * n as usize);
    let header: [&[u8]; 13] = [
        b"RIFF",
        &(36 + 2 * n).to_le_bytes(),
        b"WAVEfmt ",
        &16u32.to_le_bytes(),
        &1u16.to_le_bytes(), // PCM
        &1u16.to_le_bytes(), // mono
        &RATE.to_le_bytes(),
        &(2 * RATE).to_le_bytes(),
        &2u16.to_le_bytes(),
        &16u16.to_le_bytes(),
        b"data",
        &(2 * n).to_le_bytes(),
        &[],
    ];
    for part in header {
        wav.extend_from_slice(part);
    }
    for i in 0..n {
        let s = amplitude * (std::f64::consts::TAU * hz * f64::from(i) / f64::from(RATE)).sin();
        wav.extend_from_slice(&((s * 32767.0).round() as i16).to_le_bytes());
    }
    wav
}

/// The left channel of a 16-bit little-endian stereo capture, as floats.
pub fn s16_left(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|f| f32::from(i16::from_le_bytes([f[0], f[1]])) / 32768.0).collect()
}

/// Wall clock now, Unix ms (the harness measures agents against it).
pub fn wall_ms() -> i64 {
    #[allow(clippy::disallowed_methods)] // the harness measures the agent against the wall clock
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The cron line firing daily at the instant `at_ms` in Asia/Shanghai
/// (UTC+8, no daylight saving).
pub fn cron_at(at_ms: i64) -> String {
    let local = (at_ms / 1000 + 8 * 3600).rem_euclid(86_400);
    format!("{} {} {} * * *", local % 60, local / 60 % 60, local / 3600)
}

/// The county day (`YYYY-MM-DD` in Asia/Shanghai) of `at_ms`.
pub fn county_day(at_ms: i64) -> String {
    // Days since 1970-01-01 at UTC+8, then the civil date (Howard Hinnant's algorithm).
    let days = (at_ms / 1000 + 8 * 3600).div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_helpers_read_shanghai_time() {
        // 2026-11-28T16:30:05Z is 2026-11-29 00:30:05 in Shanghai.
        let t = 1_795_883_405_000;
        assert_eq!(cron_at(t), "5 30 0 * * *");
        assert_eq!(county_day(t), "2026-11-29");
        assert_eq!(county_day(0), "1970-01-01");
    }

    #[test]
    fn tones_are_valid_wav() {
        let wav = tone_wav(1000.0, 0.5, 0.5);
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(wav.len(), 44 + 2 * 24_000);
        let samples: Vec<i16> = wav[44..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        assert_eq!(samples.iter().map(|s| s.unsigned_abs()).max(), Some(16_384));
    }
}
