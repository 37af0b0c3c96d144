//! Files that must be refused, each with the error that names its problem.

use std::io::Cursor;

use dalaba_audio::probe::{Settings, analyse};
use dalaba_audio::{AudioError, Found};

use crate::support::{analyse_bytes, fixture, tone, wav_s16, wav_with_data_size};

/// Garbage over the middle third of `bytes`.
fn garble_middle(mut bytes: Vec<u8>) -> Vec<u8> {
    let n = bytes.len();
    for (i, b) in bytes[n / 3..n / 3 + n / 10].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    bytes
}

fn half(bytes: Vec<u8>) -> Vec<u8> {
    bytes[..bytes.len() / 2].to_vec()
}

/// `expected` is matched against the error and its message must contain `words`.
fn check(name: &str, bytes: &[u8], hint: Option<&str>, expected: fn(&AudioError) -> bool, words: &str) {
    match analyse_bytes(bytes, hint) {
        Ok(analysis) => panic!("{name}: accepted as {analysis:?}"),
        Err(error) => {
            assert!(expected(&error), "{name}: wrong error {error:?}");
            let message = error.to_string();
            assert!(message.contains(words), "{name}: message {message:?} lacks {words:?}");
        }
    }
}

#[test]
fn table() {
    let tone_wav = wav_s16(&tone(44_100, 1.0), 44_100, 1);
    // 1 s of audio stated, 0.5 s present.
    let short_data = &tone_wav[44..44 + 44_100];
    let claims_more = wav_with_data_size(short_data, 44_100, 1, 88_200);

    check("zero-length", b"", Some("mp3"), |e| matches!(e, AudioError::Empty), "empty");
    check(
        "text named .mp3",
        "第一条通知：明天上午九点村委会开会。\nNotice: meeting at nine.\n".as_bytes(),
        Some("mp3"),
        |e| matches!(e, AudioError::Unsupported { found: Found::Text }),
        "looks like text",
    );
    check(
        "web page named .mp3",
        b"<!DOCTYPE html><html><body>404 Not Found</body></html>",
        Some("mp3"),
        |e| matches!(e, AudioError::Unsupported { found: Found::Html }),
        "web page",
    );
    check(
        "picture",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        Some("mp3"),
        |e| matches!(e, AudioError::Unsupported { found: Found::Image("PNG") }),
        "PNG",
    );
    check(
        "webm",
        b"\x1A\x45\xDF\xA3\x9F\x42\x86\x81\x01",
        Some("webm"),
        |e| matches!(e, AudioError::Unsupported { found: Found::Container(_) }),
        "WebM/Matroska files are not supported",
    );
    check(
        "unknown bytes",
        &[0u8, 1, 2, 3, 250, 251, 0, 0],
        None,
        |e| matches!(e, AudioError::Unsupported { .. }),
        "not a recognised audio format",
    );
    check(
        "truncated MP3 (half the bytes)",
        &half(fixture("tone.mp3")),
        Some("mp3"),
        |e| matches!(e, AudioError::Truncated { at_ms: Some(ms), expected_ms: Some(500) } if *ms < 500),
        "cut short",
    );
    check(
        "truncated M4A (index lost)",
        &half(fixture("tone.m4a")),
        Some("m4a"),
        |e| matches!(e, AudioError::Truncated { .. }),
        "cut short",
    );
    check(
        "truncated Ogg Vorbis",
        &half(fixture("tone.ogg")),
        None,
        |e| matches!(e, AudioError::Truncated { .. }),
        "cut short",
    );
    check(
        "truncated FLAC",
        &half(fixture("tone.flac")),
        None,
        |e| matches!(e, AudioError::Truncated { .. }),
        "cut short",
    );
    check(
        "corrupt MP3 (garbage in the middle)",
        &garble_middle(fixture("tone.mp3")),
        Some("mp3"),
        |e| matches!(e, AudioError::Corrupt { .. }),
        "corrupt",
    );
    check(
        "corrupt FLAC",
        &garble_middle(fixture("tone.flac")),
        None,
        |e| matches!(e, AudioError::Corrupt { .. }),
        "corrupt",
    );
    check(
        "corrupt Opus",
        &garble_middle(fixture("tone.opus")),
        None,
        |e| matches!(e, AudioError::Corrupt { .. }),
        "corrupt",
    );
    check(
        "corrupt AAC",
        &garble_middle(fixture("tone.m4a")),
        None,
        |e| matches!(e, AudioError::Corrupt { .. }),
        "corrupt",
    );
    check(
        "WAV header claiming more data than present",
        &claims_more,
        Some("wav"),
        |e| matches!(e, AudioError::Truncated { at_ms: Some(500), expected_ms: Some(1000) }),
        "its audio stops at 0.5 s of 1.0 s",
    );
    check(
        "WAV without samples",
        &wav_s16(&[], 44_100, 1),
        Some("wav"),
        |e| matches!(e, AudioError::NoAudio),
        "no audio",
    );
    check(
        "all-zero WAV",
        &wav_s16(&vec![0.0; 48_000], 48_000, 1),
        Some("wav"),
        |e| matches!(e, AudioError::Silent { duration_ms: 1000 }),
        "silent",
    );
    check(
        "4 kHz WAV",
        &wav_s16(&vec![0.1; 4_000], 4_000, 1),
        Some("wav"),
        |e| matches!(e, AudioError::Unsupported { found: Found::SampleRate(4_000) }),
        "4000 Hz",
    );
}

#[test]
fn too_long_is_refused_against_the_configured_limit() {
    let settings = Settings { max_duration_ms: 400, ..Settings::default() };
    for name in ["tone.mp3", "tone.flac", "tone.opus"] {
        let error = analyse(Cursor::new(fixture(name)), None, &settings).expect_err(name);
        assert!(matches!(error, AudioError::TooLong { limit_ms: 400 }), "{name}: {error:?}");
    }
    // A WAV without a length the container states is caught while decoding.
    let wav = wav_s16(&tone(48_000, 0.5), 48_000, 1);
    let error = analyse(Cursor::new(wav), None, &settings).expect_err("wav");
    assert!(error.to_string().contains("longer than the limit of 0.4 s"), "{error}");
}

#[test]
fn corrupt_keeps_the_decoder_error_as_its_source() {
    let error = analyse_bytes(&garble_middle(fixture("tone.mp3")), None).expect_err("corrupt");
    let source = std::error::Error::source(&error).expect("source");
    assert!(!source.to_string().is_empty());
}

/// A reader whose disk fails after `good` bytes.
struct FailingDisk {
    inner: Cursor<Vec<u8>>,
    good: u64,
}

impl std::io::Read for FailingDisk {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.inner.position() >= self.good {
            return Err(std::io::Error::other("disk failure"));
        }
        let room = (self.good - self.inner.position()) as usize;
        let n = buf.len().min(room);
        self.inner.read(&mut buf[..n])
    }
}

impl std::io::Seek for FailingDisk {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[test]
fn a_failing_reader_is_a_read_error_not_a_bad_file() {
    let wav = wav_s16(&tone(48_000, 2.0), 48_000, 1);
    let disk = FailingDisk { inner: Cursor::new(wav), good: 100_000 };
    let error = analyse(disk, None, &Settings::default()).expect_err("disk failure");
    assert!(matches!(error, AudioError::Read(_)), "{error:?}");
    assert_eq!(std::error::Error::source(&error).map(|e| e.to_string()), Some("disk failure".to_owned()));
}
