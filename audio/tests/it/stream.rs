//! The streaming decoder the agent plays from: every format comes out as
//! mono 48 kHz blocks equal to a whole-file decode, and bad files are named.

use std::io::Cursor;

use dalaba_audio::level::{rms_dbfs, zero_crossing_frequency};
use dalaba_audio::{AudioError, StreamDecoder};

use crate::support::{FIXTURES, both_channels, fixture, opus_file, tone, wav_s16};

fn decode_all(bytes: Vec<u8>, hint: Option<&str>) -> Result<(Vec<f32>, usize), AudioError> {
    let mut decoder = StreamDecoder::open(Cursor::new(bytes), hint)?;
    let (mut all, mut blocks) = (Vec::new(), 0);
    while let Some(block) = decoder.next_block()? {
        assert!(!block.is_empty(), "blocks are never empty");
        all.extend_from_slice(block);
        blocks += 1;
    }
    assert!(decoder.next_block()?.is_none(), "the end stays the end");
    Ok((all, blocks))
}

#[test]
fn ogg_opus_streams_in_packets_at_48k() {
    let file = opus_file(&tone(48_000, 3.0));
    let mut decoder = StreamDecoder::open(Cursor::new(file.clone()), None).expect("open");
    let expected = decoder.expected_duration_ms().expect("Ogg Opus states its length");
    assert!(expected.abs_diff(3000) <= 20, "{expected} ms");
    let first = decoder.next_block().expect("decode").expect("a first block").len();
    assert!(first <= 960 * 3, "the first block is one packet, not the file: {first}");
    let (all, blocks) = decode_all(file, None).expect("decode");
    assert_eq!(all.len(), 3 * 48_000, "exactly the samples encoded");
    assert!(blocks >= 100, "{blocks} blocks");
    let middle = &all[24_000..120_000];
    let freq = zero_crossing_frequency(middle, 48_000).expect("a tone");
    assert!((freq - 1000.0).abs() < 2.0, "{freq} Hz");
    assert!((rms_dbfs(middle) + 20.0).abs() < 0.5, "{} dBFS", rms_dbfs(middle));
}

#[test]
fn other_rates_and_channels_come_out_mono_48k() {
    for (rate, channels) in [(44_100, 2), (16_000, 1), (48_000, 2)] {
        let mono = tone(rate, 1.0);
        let samples = if channels == 2 { both_channels(&mono) } else { mono };
        let (all, _) = decode_all(wav_s16(&samples, rate, channels), Some("wav")).expect("decode");
        assert_eq!(all.len(), 48_000, "{rate} Hz × {channels}");
        let freq = zero_crossing_frequency(&all[4800..43_200], 48_000).expect("a tone");
        assert!((freq - 1000.0).abs() < 2.0, "{rate} Hz: {freq} Hz");
    }
}

#[test]
fn every_committed_fixture_streams() {
    for name in FIXTURES {
        let hint = name.rsplit('.').next();
        let (all, _) = decode_all(fixture(name), hint).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Each is 0.5 s: 24,000 samples at 48 kHz, give or take codec padding.
        assert!(all.len().abs_diff(24_000) < 2_400, "{name}: {} samples", all.len());
        let freq = zero_crossing_frequency(&all[4800..19_200], 48_000).expect("a tone");
        assert!((freq - 1000.0).abs() < 5.0, "{name}: {freq} Hz");
    }
}

#[test]
fn bad_files_are_named() {
    assert!(matches!(StreamDecoder::open(Cursor::new(Vec::new()), None), Err(AudioError::Empty)));
    let text = b"this is not audio at all, just some words in a file".repeat(20);
    assert!(matches!(StreamDecoder::open(Cursor::new(text), None), Err(AudioError::Unsupported { .. })));
    let mut cut = opus_file(&tone(48_000, 2.0));
    cut.truncate(cut.len() / 2);
    let err = decode_all(cut, None).expect_err("a cut file fails");
    assert!(matches!(err, AudioError::Truncated { .. } | AudioError::Corrupt { .. }), "{err:?}");
}
