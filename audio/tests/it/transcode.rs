//! The distribution copy: Ogg Opus, mono, 48 kHz, decodable by `analyse`
//! itself and, where installed, by ffprobe and opusinfo.

use std::io::Cursor;

use dalaba_audio::opus::{Encoder, OpusSettings, transcode_to_ogg_opus};
use dalaba_audio::probe::Settings;
use dalaba_audio::{Analysis, AudioError, Format};

use crate::support::{FIXTURES, analyse_bytes, both_channels, fixture, run_tool, tone, wav_s16};

fn transcode(bytes: &[u8], opus: &OpusSettings) -> Result<(Analysis, Vec<u8>), AudioError> {
    let mut out = Vec::new();
    let analysis = transcode_to_ogg_opus(Cursor::new(bytes), None, &Settings::default(), opus, &mut out)?;
    Ok((analysis, out))
}

/// Transcodes, decodes the copy again, and compares the two.
fn round_trip(name: &str, bytes: &[u8]) -> Vec<u8> {
    let (source, copy) = transcode(bytes, &OpusSettings::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(Some(&source), analyse_bytes(bytes, None).ok().as_ref(), "{name}: transcode measures like analyse");
    let decoded = analyse_bytes(&copy, Some("opus")).unwrap_or_else(|e| panic!("{name}: copy: {e}"));
    assert_eq!((decoded.format, decoded.sample_rate, decoded.channels), (Format::Opus, 48_000, 1), "{name}");
    // Resampling keeps the length to the sample: ceil(frames × 48000 / rate).
    let expected = (source.frames * 48_000).div_ceil(u64::from(source.sample_rate));
    assert_eq!(decoded.frames, expected, "{name}");
    assert!(
        (decoded.integrated_lufs - source.integrated_lufs).abs() <= 0.5,
        "{name}: {} LUFS from {} LUFS",
        decoded.integrated_lufs,
        source.integrated_lufs
    );
    copy
}

#[test]
fn every_format_round_trips() {
    for name in FIXTURES {
        round_trip(name, &fixture(name));
    }
    round_trip("stereo wav", &wav_s16(&both_channels(&tone(44_100, 1.5)), 44_100, 2));
    round_trip("16 kHz wav", &wav_s16(&tone(16_000, 0.8), 16_000, 1));
    // The copy itself, transcoded again.
    let copy = round_trip("wav", &wav_s16(&tone(48_000, 1.0), 48_000, 1));
    round_trip("copy of a copy", &copy);
}

#[test]
fn same_input_same_bytes() {
    // Content is addressed by SHA-256: a re-upload must give the same copy.
    let wav = wav_s16(&tone(22_050, 0.6), 22_050, 1);
    let first = transcode(&wav, &OpusSettings::default()).expect("first").1;
    let second = transcode(&wav, &OpusSettings::default()).expect("second").1;
    assert_eq!(first, second);
}

#[test]
fn bitrate_is_near_the_setting() {
    // A warbling, noisy tone keeps the encoder busy (a pure tone costs little).
    let mut state = 1u32;
    let signal: Vec<f32> = (0..48_000 * 6)
        .map(|i| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (state >> 9) as f32 / (1 << 23) as f32 - 0.5;
            let t = i as f32 / 48_000.0;
            0.3 * (std::f32::consts::TAU * (300.0 + 200.0 * (3.0 * t).sin()) * t).sin() + 0.05 * noise
        })
        .collect();
    let wav = wav_s16(&signal, 48_000, 1);
    for bitrate_bps in [24_000, 32_000, 48_000] {
        let (_, copy) = transcode(&wav, &OpusSettings { bitrate_bps, ..OpusSettings::default() }).expect("transcode");
        let bps = copy.len() as f64 * 8.0 / 6.0;
        assert!((bps / f64::from(bitrate_bps) - 1.0).abs() < 0.25, "{bitrate_bps}: {bps:.0} b/s");
    }
}

#[test]
fn refused_input_is_refused_by_the_transcode_too() {
    let error = transcode(b"just text", &OpusSettings::default()).expect_err("text");
    assert!(matches!(error, AudioError::Unsupported { .. }), "{error:?}");
    let error = transcode(&wav_s16(&vec![0.0; 24_000], 48_000, 1), &OpusSettings::default()).expect_err("silence");
    assert!(matches!(error, AudioError::Silent { .. }), "{error:?}");
}

#[test]
fn frame_encoder_for_live_use() {
    let mut encoder = Encoder::new(&OpusSettings::default()).expect("encoder");
    let mut decoder = opus_pure::OpusDecoder::new(48_000, 1).expect("decoder");
    let signal = tone(48_000, 1.0);
    let mut decoded = Vec::new();
    let mut out = vec![0.0f32; 960];
    for frame in signal.chunks_exact(960) {
        let packet = encoder.encode_frame(frame).expect("20 ms");
        assert!(!packet.is_empty() && packet.len() < 400, "{}", packet.len());
        let n = decoder.decode(&packet, 960, &mut out).expect("decode");
        decoded.extend_from_slice(&out[..n]);
    }
    assert_eq!(decoded.len(), 48_000);
    // 10 ms frames are Opus frames too.
    assert!(!encoder.encode_frame(&signal[..480]).expect("10 ms").is_empty());
    // A length that is no Opus frame is an error, not a panic.
    assert!(matches!(encoder.encode_frame(&signal[..500]), Err(AudioError::Encode(_))));
    // The decoded signal is the tone, delayed by the encoder's lookahead.
    let delay = encoder.delay();
    let level = dalaba_audio::level::rms_dbfs(&decoded[delay + 4_800..43_200]);
    assert!((level + 20.0).abs() < 1.0, "{level}");
}

#[test]
fn other_tools_read_the_copy() {
    let (_, copy) = transcode(&fixture("tone.mp3"), &OpusSettings::default()).expect("transcode");
    let path = std::env::temp_dir().join(format!("dalaba-audio-{}.opus", std::process::id()));
    std::fs::write(&path, &copy).expect("write");
    let file = path.to_str().expect("utf-8 path");
    let probe = ["-v", "error", "-show_entries", "stream=codec_name,sample_rate,channels", "-of", "csv=p=0", file];
    match run_tool("ffprobe", &probe) {
        Some(out) => {
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "opus,48000,1");
        }
        None => eprintln!("ffprobe not installed; skipped"),
    }
    match run_tool("opusinfo", &[file]) {
        Some(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{text}");
            assert!(!text.contains("WARNING") && !text.contains("ERROR"), "{text}");
            assert!(text.contains("Pre-skip: 312"), "{text}");
        }
        None => eprintln!("opusinfo not installed; skipped"),
    }
    let _ = std::fs::remove_file(&path);
}
