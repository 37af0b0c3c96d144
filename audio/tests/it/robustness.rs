//! Nothing panics, whatever the bytes: random input, every prefix of every
//! fixture, and bit flips. `analyse` catches a decoder panic as
//! `DecoderFault`, so the checks here also refuse that: a fault would be a
//! decoder bug hidden by the safety net.

use std::io::Cursor;
use std::sync::LazyLock;

use dalaba_audio::AudioError;
use dalaba_audio::opus::{OpusSettings, transcode_to_ogg_opus};
use dalaba_audio::probe::Settings;
use proptest::prelude::*;

use crate::support::{FIXTURES, analyse_bytes, fixture, opus_file, tone, wav_s16};

/// Every committed fixture plus the WAV and Opus made here.
static ALL: LazyLock<Vec<(String, Vec<u8>)>> = LazyLock::new(|| {
    let mut all: Vec<(String, Vec<u8>)> = FIXTURES.iter().map(|name| (name.to_string(), fixture(name))).collect();
    all.push(("tone.wav".to_owned(), wav_s16(&tone(22_050, 0.5), 22_050, 2)));
    all.push(("here.opus".to_owned(), opus_file(&tone(48_000, 0.5))));
    all
});

/// Analyses `bytes`; any outcome but a decoder fault is fine, and a read
/// error would be a damaged file misnamed (reading memory cannot fail).
fn survive(what: &str, bytes: &[u8]) {
    match analyse_bytes(bytes, None) {
        Err(AudioError::DecoderFault { at_ms }) => panic!("{what}: decoder fault at {at_ms} ms"),
        Err(AudioError::Read(e)) => panic!("{what}: read error {e}"),
        _ => {}
    }
}

#[test]
fn every_prefix_of_every_fixture() {
    for (name, bytes) in ALL.iter() {
        let step = (bytes.len() / 150).max(1);
        for len in (0..bytes.len()).step_by(step).chain(bytes.len().saturating_sub(64)..bytes.len()) {
            survive(&format!("{name}[..{len}]"), &bytes[..len]);
        }
    }
}

#[test]
fn prefixes_through_the_transcode() {
    for (name, bytes) in ALL.iter() {
        for len in (0..bytes.len()).step_by((bytes.len() / 20).max(1)) {
            let mut out = Vec::new();
            let result = transcode_to_ogg_opus(
                Cursor::new(&bytes[..len]),
                None,
                &Settings::default(),
                &OpusSettings::default(),
                &mut out,
            );
            assert!(!matches!(result, Err(AudioError::DecoderFault { .. })), "{name}[..{len}]: {result:?}");
        }
    }
}

/// Headers of the supported containers, to steer random bytes past the sniffer.
const MAGIC: [&[u8]; 8] = [
    b"",
    b"ID3\x03\x00\x00\x00\x00\x00\x00",
    b"fLaC\x00\x00\x00\x22",
    b"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00",
    b"RIFF\xff\xff\xff\x7fWAVEfmt ",
    b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00",
    b"\xff\xfb\x90\x64",
    b"\xff\xf1\x50\x80",
];

// 256 cases each by default; PROPTEST_CASES=20000 for a longer hunt.
proptest! {
    #[test]
    fn random_bytes(magic in 0..MAGIC.len(), tail in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut bytes = MAGIC[magic].to_vec();
        bytes.extend_from_slice(&tail);
        survive("random", &bytes);
    }

    #[test]
    fn bit_flips(which in 0..7usize, flips in proptest::collection::vec((any::<prop::sample::Index>(), 0..8u8), 1..16)) {
        let (name, bytes) = &ALL[which % ALL.len()];
        let mut bytes = bytes.clone();
        for (index, bit) in &flips {
            let i = index.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        survive(name, &bytes);
    }

    #[test]
    fn garbage_spliced_in(which in 0..7usize, at in any::<prop::sample::Index>(), garbage in proptest::collection::vec(any::<u8>(), 1..512)) {
        let (name, bytes) = &ALL[which % ALL.len()];
        let at = at.index(bytes.len());
        let mut spliced = bytes[..at].to_vec();
        spliced.extend_from_slice(&garbage);
        spliced.extend_from_slice(&bytes[(at + garbage.len()).min(bytes.len())..]);
        survive(name, &spliced);
    }
}
