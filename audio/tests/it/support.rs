//! Fixtures: committed tiny files, and WAV and Opus made here.

use std::io::Cursor;

use dalaba_audio::level::sine;
use dalaba_audio::opus::{OggOpusEncoder, OpusSettings};
use dalaba_audio::probe::{Settings, analyse};
use dalaba_audio::{Analysis, AudioError};

/// Amplitude of a sine whose RMS is −20 dBFS; BS.1770 reads a 1 kHz sine
/// in one channel at its RMS level, so it measures −20 LUFS.
pub const MINUS_20_DBFS_RMS: f32 = 0.141_421_36;

/// A committed fixture (see `tests/fixtures/README.md`).
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The committed fixtures: (file name, format extension).
pub const FIXTURES: [&str; 5] = ["tone.mp3", "tone.m4a", "tone.flac", "tone.ogg", "tone.opus"];

/// 16-bit PCM WAV of interleaved `samples`, written by hand.
pub fn wav_s16(samples: &[f32], rate: u32, channels: u16) -> Vec<u8> {
    let data: Vec<u8> =
        samples.iter().flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes()).collect();
    wav_with_data_size(&data, rate, channels, data.len() as u32)
}

/// A WAV whose data chunk header states `claimed` bytes, whatever follows.
pub fn wav_with_data_size(data: &[u8], rate: u32, channels: u16, claimed: u32) -> Vec<u8> {
    let block_align = channels * 2;
    let mut wav = Vec::with_capacity(44 + data.len());
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + claimed).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&channels.to_le_bytes());
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    wav.extend_from_slice(&block_align.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&claimed.to_le_bytes());
    wav.extend_from_slice(data);
    wav
}

/// Stereo interleaving of one mono signal in both channels.
pub fn both_channels(mono: &[f32]) -> Vec<f32> {
    mono.iter().flat_map(|s| [*s, *s]).collect()
}

/// An Ogg Opus file made by this crate's encoder.
pub fn opus_file(samples_48k: &[f32]) -> Vec<u8> {
    let mut encoder = OggOpusEncoder::new(Vec::new(), &OpusSettings::default(), 48_000).expect("encoder");
    encoder.push(samples_48k).expect("push");
    encoder.finish().expect("finish")
}

/// The −20 dBFS RMS test tone.
pub fn tone(rate: u32, seconds: f64) -> Vec<f32> {
    sine(1000.0, rate, seconds, MINUS_20_DBFS_RMS)
}

pub fn analyse_bytes(bytes: &[u8], hint: Option<&str>) -> Result<Analysis, AudioError> {
    analyse(Cursor::new(bytes), hint, &Settings::default())
}

/// Runs `tool` with `args`; `None` when it is not installed.
pub fn run_tool(tool: &str, args: &[&str]) -> Option<std::process::Output> {
    std::process::Command::new(tool).args(args).output().ok()
}
