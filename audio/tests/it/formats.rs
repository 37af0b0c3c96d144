//! Every accepted format through `analyse`: right format, duration within
//! one codec frame, and −20 LUFS for the −20 dBFS RMS tone.

use dalaba_audio::Format;

use crate::support::{FIXTURES, analyse_bytes, both_channels, fixture, opus_file, tone, wav_s16};

struct Expected {
    format: Format,
    sample_rate: u32,
    channels: u16,
    /// True length in sample frames.
    frames: u64,
    /// How far the decoded length may be from `frames`.
    tolerance: u64,
}

fn check(name: &str, bytes: &[u8], expected: Expected) {
    let analysis = analyse_bytes(bytes, None).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(analysis.format, expected.format, "{name}");
    assert_eq!(analysis.sample_rate, expected.sample_rate, "{name}");
    assert_eq!(analysis.channels, expected.channels, "{name}");
    assert!(
        analysis.frames.abs_diff(expected.frames) <= expected.tolerance,
        "{name}: {} frames, expected {} ± {}",
        analysis.frames,
        expected.frames,
        expected.tolerance
    );
    assert_eq!(analysis.duration_ms, analysis.frames * 1000 / u64::from(analysis.sample_rate), "{name}");
    assert!((analysis.integrated_lufs + 20.0).abs() <= 0.5, "{name}: {} LUFS", analysis.integrated_lufs);
    // Default target −16 LUFS with peaks near −17 dBTP: +4 dB, far from the ceiling.
    assert!((analysis.gain_db - 4.0).abs() <= 0.5, "{name}: gain {}", analysis.gain_db);
    assert!(analysis.true_peak_dbtp < -12.0 && analysis.true_peak_dbtp > -18.0, "{name}: {}", analysis.true_peak_dbtp);
}

#[test]
fn committed_fixtures() {
    let expected = [
        // LAME's gapless header lets the MP3 decode to the exact length.
        Expected { format: Format::Mp3, sample_rate: 44_100, channels: 1, frames: 22_050, tolerance: 1152 },
        // symphonia does not apply MP4 edit lists, so AAC keeps its 1024
        // samples of encoder priming and the last frame's padding: up to two
        // frames long.
        Expected { format: Format::Aac, sample_rate: 44_100, channels: 2, frames: 22_050, tolerance: 2 * 1024 },
        Expected { format: Format::Flac, sample_rate: 16_000, channels: 1, frames: 8_000, tolerance: 0 },
        Expected { format: Format::Vorbis, sample_rate: 22_050, channels: 1, frames: 11_025, tolerance: 0 },
        // Made by ffmpeg's libopus: pre-skip and end trim are honoured exactly.
        Expected { format: Format::Opus, sample_rate: 48_000, channels: 1, frames: 24_000, tolerance: 0 },
    ];
    for (name, expected) in FIXTURES.into_iter().zip(expected) {
        check(name, &fixture(name), expected);
    }
}

#[test]
fn wav_written_here() {
    let mono = wav_s16(&tone(44_100, 1.0), 44_100, 1);
    check(
        "mono wav",
        &mono,
        Expected { format: Format::Wav, sample_rate: 44_100, channels: 1, frames: 44_100, tolerance: 0 },
    );
    // The same signal in both channels downmixes to itself: still −20 LUFS.
    let stereo = wav_s16(&both_channels(&tone(48_000, 0.75)), 48_000, 2);
    check(
        "stereo wav",
        &stereo,
        Expected { format: Format::Wav, sample_rate: 48_000, channels: 2, frames: 36_000, tolerance: 0 },
    );
    let low = wav_s16(&tone(8_000, 2.0), 8_000, 1);
    check(
        "8 kHz wav",
        &low,
        Expected { format: Format::Wav, sample_rate: 8_000, channels: 1, frames: 16_000, tolerance: 0 },
    );
}

#[test]
fn opus_written_here_decodes_to_its_exact_length() {
    // 1.234 s is not a whole number of 20 ms frames: the end trim matters.
    let samples = tone(48_000, 1.234);
    check(
        "opus",
        &opus_file(&samples),
        Expected { format: Format::Opus, sample_rate: 48_000, channels: 1, frames: samples.len() as u64, tolerance: 0 },
    );
}

#[test]
fn short_clip_under_one_gating_block() {
    let clip = wav_s16(&tone(48_000, 0.3), 48_000, 1);
    check(
        "0.3 s wav",
        &clip,
        Expected { format: Format::Wav, sample_rate: 48_000, channels: 1, frames: 14_400, tolerance: 0 },
    );
}

#[test]
fn codec_names_are_reported() {
    let analysis = analyse_bytes(&fixture("tone.mp3"), Some("mp3")).expect("mp3");
    assert_eq!(analysis.codec, "mp3");
    let analysis = analyse_bytes(&wav_s16(&tone(48_000, 0.5), 48_000, 1), Some("wav")).expect("wav");
    assert_eq!((analysis.format.name(), analysis.codec), ("wav", "pcm_s16le"));
}

#[test]
fn reads_from_the_callers_position() {
    // The controller may hand in a reader already past a prefix of its own.
    let prefix = b"the caller's own header";
    let mut bytes = prefix.to_vec();
    bytes.extend_from_slice(&fixture("tone.flac"));
    let mut reader = std::io::Cursor::new(bytes);
    reader.set_position(prefix.len() as u64);
    let analysis = dalaba_audio::probe::analyse(reader, None, &dalaba_audio::probe::Settings::default()).expect("flac");
    assert_eq!((analysis.format, analysis.frames), (Format::Flac, 8_000));
}
