//! Validates an uploaded file by decoding all of it, and measures what the
//! library needs to store: format, duration, loudness and a playback gain.

use std::fmt;
use std::io::{Read, Seek};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::decode::{Block, Decoding, StreamInfo, ms};
use crate::error::AudioError;
use crate::loudness::{Meter, Target, gain_for};

/// The formats the library accepts, named by codec (AAC covers raw ADTS
/// `.aac` and `.m4a`; WAV covers uncompressed PCM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// MPEG-1/2 Layer III.
    Mp3,
    /// AAC-LC, in MP4/M4A or ADTS.
    Aac,
    /// FLAC, native or in Ogg.
    Flac,
    /// Vorbis in Ogg.
    Vorbis,
    /// Opus in Ogg.
    Opus,
    /// Uncompressed PCM in WAV.
    Wav,
}

impl Format {
    /// A short lower-case name: `"mp3"`, `"aac"`, `"flac"`, `"vorbis"`, `"opus"`, `"wav"`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Mp3 => "mp3",
            Format::Aac => "aac",
            Format::Flac => "flac",
            Format::Vorbis => "vorbis",
            Format::Opus => "opus",
            Format::Wav => "wav",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What [`analyse`] checks against and aims for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Loudness target and peak ceiling for [`Analysis::gain_db`].
    pub target: Target,
    /// Longer audio is refused with [`AudioError::TooLong`]. Default 2 hours.
    pub max_duration_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self { target: Target::default(), max_duration_ms: 2 * 3600 * 1000 }
    }
}

/// The result of decoding a whole file.
///
/// Loudness and peak are measured on the mono downmix (the average of the
/// channels), because that is what a village loudspeaker plays and what the
/// Opus distribution copy carries; a stereo file with the same signal in both
/// channels therefore measures 3 LU below its BS.1770 stereo loudness.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// The codec family.
    pub format: Format,
    /// The decoder's name for the codec, e.g. `"mp3"`, `"pcm_s16le"`.
    pub codec: &'static str,
    /// Sample rate of the source in Hz.
    pub sample_rate: u32,
    /// Channels in the source.
    pub channels: u16,
    /// Playable sample frames (encoder delay and padding removed where the
    /// container records them).
    pub frames: u64,
    /// Duration in milliseconds (rounded down).
    pub duration_ms: u64,
    /// Integrated loudness of the mono downmix (EBU R128), in LUFS.
    pub integrated_lufs: f64,
    /// True peak of the mono downmix in dBTP (4× oversampled below 96 kHz).
    pub true_peak_dbtp: f64,
    /// Gain to apply at playback so the item plays at the target loudness,
    /// never lifting the true peak above the ceiling (see [`gain_for`]).
    pub gain_db: f64,
}

/// Decodes every packet of `source` and measures it.
///
/// `hint` is the file's extension, if any; the content decides the format
/// (a text file named `.mp3` is still text). The source is read from its
/// current position; the caller owns the file and its hashing (the
/// controller hashes an upload while it stores it, before this runs).
/// Never panics: a decoder that panics on a hostile file is reported as
/// [`AudioError::DecoderFault`].
pub fn analyse<S>(source: S, hint: Option<&str>, settings: &Settings) -> Result<Analysis, AudioError>
where
    S: Read + Seek + Send + Sync,
{
    run(source, hint, settings, |_, _| Ok(()))
}

/// The one decode loop behind [`analyse`] and the transcoder: decodes,
/// meters, hands each mono block to `sink`, and checks the limits.
pub(crate) fn run<S, F>(source: S, hint: Option<&str>, settings: &Settings, mut sink: F) -> Result<Analysis, AudioError>
where
    S: Read + Seek + Send + Sync,
    F: FnMut(&StreamInfo, &[f32]) -> Result<(), AudioError>,
{
    // Progress survives a panic so the fault can say where it happened.
    let mut at_ms = 0;
    let progress = &mut at_ms;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut decoding = Decoding::open(source, hint)?;
        let mut meter: Option<Meter> = None;
        let limit_ms = settings.max_duration_ms;
        if let Some(expected) = decoding.info().expected_frames
            && ms(expected, decoding.info().sample_rate) > limit_ms
        {
            return Err(AudioError::TooLong { limit_ms });
        }
        while let Some(Block { info, samples, frames_so_far }) = decoding.next_block()? {
            let meter = match &mut meter {
                Some(meter) => meter,
                None => meter.insert(Meter::new(info.sample_rate)?),
            };
            meter.add(samples);
            sink(info, samples)?;
            *progress = ms(frames_so_far, info.sample_rate);
            if *progress > limit_ms {
                return Err(AudioError::TooLong { limit_ms });
            }
        }
        finish(&decoding, meter, settings)
    }));
    result.unwrap_or(Err(AudioError::DecoderFault { at_ms }))
}

fn finish(decoding: &Decoding<'_>, meter: Option<Meter>, settings: &Settings) -> Result<Analysis, AudioError> {
    let info = decoding.info();
    let frames = decoding.frames();
    let duration_ms = ms(frames, info.sample_rate);
    // Containers that state their length let a cut-off file be told apart
    // from a short one. The slack (20 ms) absorbs rounding in the container.
    if let Some(expected) = info.expected_frames {
        let slack = u64::from(info.sample_rate) / 50;
        if frames + slack < expected {
            let expected_ms = Some(ms(expected, info.sample_rate));
            return Err(AudioError::Truncated { at_ms: Some(duration_ms), expected_ms });
        }
    }
    let Some(meter) = meter.filter(|_| frames > 0) else {
        return Err(AudioError::NoAudio);
    };
    let loudness = meter.loudness();
    if !loudness.integrated_lufs.is_finite() {
        return Err(AudioError::Silent { duration_ms });
    }
    Ok(Analysis {
        format: info.format,
        codec: info.codec,
        sample_rate: info.sample_rate,
        channels: info.channels,
        frames,
        duration_ms,
        integrated_lufs: loudness.integrated_lufs,
        true_peak_dbtp: loudness.true_peak_dbtp,
        gain_db: gain_for(settings.target, &loudness),
    })
}
