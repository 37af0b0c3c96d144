//! Opens a file with symphonia and hands out its audio as mono blocks,
//! turning every way a file can be bad into a named [`AudioError`].

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use symphonia::core::codecs::CodecParameters;
use symphonia::core::codecs::audio::well_known::*;
use symphonia::core::codecs::audio::{AudioCodecId, AudioDecoder, AudioDecoderOptions};
use symphonia::core::codecs::registry::CodecRegistry;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

use crate::error::{AudioError, Found};
use crate::opus_decoder::OpusPureDecoder;
use crate::probe::Format;
use crate::sniff::{SNIFF_LEN, Sniff, sniff};

/// symphonia's decoders for the enabled codecs, plus Opus.
static CODECS: LazyLock<CodecRegistry> = LazyLock::new(|| {
    let mut registry = CodecRegistry::new();
    symphonia::default::register_enabled_codecs(&mut registry);
    registry.register_audio_decoder::<OpusPureDecoder>();
    registry
});

/// What the container and codec say about the stream.
#[derive(Debug, Clone)]
pub(crate) struct StreamInfo {
    pub(crate) format: Format,
    pub(crate) codec: &'static str,
    pub(crate) sample_rate: u32,
    pub(crate) channels: u16,
    /// Playable frames according to the container, when it says.
    pub(crate) expected_frames: Option<u64>,
}

/// One decoded block.
pub(crate) struct Block<'a> {
    pub(crate) info: &'a StreamInfo,
    /// Mono samples at `info.sample_rate`.
    pub(crate) samples: &'a [f32],
    /// Frames decoded so far, this block included.
    pub(crate) frames_so_far: u64,
}

/// A file being decoded, packet by packet.
pub(crate) struct Decoding<'s> {
    format: Box<dyn FormatReader + 's>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    info: StreamInfo,
    /// Seconds per timestamp tick, as (numerator, denominator).
    time_base: Option<(u64, u64)>,
    /// End of the last packet (timestamp plus its untrimmed duration); the
    /// track's start before the first.
    packet_end: Option<i64>,
    /// Set when reading the caller's source failed, so that an IO error
    /// from symphonia is known to be the reader's and not a bad offset.
    read_failed: Arc<AtomicBool>,
    planes: Vec<Vec<f32>>,
    mono: Vec<f32>,
    /// Mono frames handed out so far.
    frames: u64,
}

impl<'s> Decoding<'s> {
    /// Sniffs, probes and sets up a decoder for the first audio track.
    pub(crate) fn open<S>(mut source: S, hint: Option<&str>) -> Result<Self, AudioError>
    where
        S: Read + Seek + Send + Sync + 's,
    {
        let start = source.stream_position().map_err(AudioError::Read)?;
        let mut head = Vec::with_capacity(SNIFF_LEN);
        (&mut source).take(SNIFF_LEN as u64).read_to_end(&mut head).map_err(AudioError::Read)?;
        if head.is_empty() {
            return Err(AudioError::Empty);
        }
        let sniffed = sniff(&head);
        if let Sniff::Unsupported(found) = sniffed {
            return Err(AudioError::Unsupported { found });
        }
        source.seek(SeekFrom::Start(start)).map_err(AudioError::Read)?;

        let mut symphonia_hint = Hint::new();
        if let Some(extension) = hint {
            symphonia_hint.with_extension(extension);
        }
        let read_failed = Arc::new(AtomicBool::new(false));
        let source = Source::new(source, start, Arc::clone(&read_failed));
        let stream = MediaSourceStream::new(Box::new(source), Default::default());
        let format = symphonia::default::get_probe()
            .probe(&symphonia_hint, stream, FormatOptions::default(), MetadataOptions::default())
            .map_err(|e| probe_error(e, &sniffed, read_failed.load(Ordering::Relaxed)))?;

        let track =
            format.default_track(TrackType::Audio).ok_or(AudioError::Unsupported { found: Found::NoAudioTrack })?;
        let Some(CodecParameters::Audio(params)) = &track.codec_params else {
            return Err(AudioError::Unsupported { found: Found::NoAudioTrack });
        };
        let decoder = CODECS.make_audio_decoder(params, &AudioDecoderOptions::default()).map_err(|e| match e {
            SymphoniaError::Unsupported(what) if what.contains("codec") => {
                AudioError::Unsupported { found: Found::Codec(codec_name(params.codec)) }
            }
            other => stream_error(other, 0, None, false),
        })?;
        let codec = params.codec;
        let format_kind = match codec {
            CODEC_ID_MP3 => Format::Mp3,
            CODEC_ID_AAC => Format::Aac,
            CODEC_ID_FLAC => Format::Flac,
            CODEC_ID_VORBIS => Format::Vorbis,
            CODEC_ID_OPUS => Format::Opus,
            _ => Format::Wav,
        };
        let sample_rate = params.sample_rate.or(decoder.codec_params().sample_rate).unwrap_or(0);
        let channels = params.channels.as_ref().map_or(0, |c| c.count());
        let info = StreamInfo {
            format: format_kind,
            codec: decoder.codec_info().short_name,
            sample_rate,
            channels: u16::try_from(channels).unwrap_or(u16::MAX),
            expected_frames: track.num_frames.filter(|n| *n > 0),
        };
        let track_id = track.id;
        let start_ts = track.start_ts.get();
        let time_base = track.time_base.map(|tb| (u64::from(tb.numer.get()), u64::from(tb.denom.get())));
        Ok(Self {
            format,
            decoder,
            track_id,
            info,
            time_base,
            packet_end: Some(start_ts),
            read_failed,
            planes: Vec::new(),
            mono: Vec::new(),
            frames: 0,
        })
    }

    pub(crate) fn info(&self) -> &StreamInfo {
        &self.info
    }

    /// Mono frames decoded so far.
    pub(crate) fn frames(&self) -> u64 {
        self.frames
    }

    /// The next block of audio, downmixed to mono at [`StreamInfo::sample_rate`];
    /// `None` at the end of the stream.
    pub(crate) fn next_block(&mut self) -> Result<Option<Block<'_>>, AudioError> {
        loop {
            let packet = match self.format.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) => return Ok(None),
                Err(e) => return Err(self.error(e)),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let extent = packet.dur.get().saturating_add(packet.trim_start.get()).saturating_add(packet.trim_end.get());
            self.check_continuity(packet.pts.get(), extent)?;
            let decoded = match self.decoder.decode(&packet) {
                Ok(decoded) => decoded,
                Err(e) => return Err(self.error(e)),
            };
            let frames = decoded.frames();
            if frames == 0 {
                continue;
            }
            let rate = decoded.spec().rate();
            if self.info.sample_rate == 0 {
                self.info.sample_rate = rate;
            }
            if rate != self.info.sample_rate {
                return Err(AudioError::Corrupt {
                    at_ms: ms(self.frames, self.info.sample_rate),
                    source: SymphoniaError::DecodeError("the sample rate changes in the middle of the stream"),
                });
            }
            if self.info.channels == 0 {
                self.info.channels = u16::try_from(decoded.spec().channels().count()).unwrap_or(u16::MAX);
            }
            decoded.copy_to_vecs_planar::<f32>(&mut self.planes);
            downmix(&self.planes, frames, &mut self.mono);
            self.frames += frames as u64;
            return Ok(Some(Block { info: &self.info, samples: &self.mono, frames_so_far: self.frames }));
        }
    }

    /// Demuxers that resynchronise after damage (FLAC does) skip the broken
    /// frames silently; the jump in timestamps gives them away.
    fn check_continuity(&mut self, pts: i64, extent: u64) -> Result<(), AudioError> {
        let end = pts.saturating_add(i64::try_from(extent).unwrap_or(i64::MAX));
        let Some(previous_end) = self.packet_end.replace(end) else { return Ok(()) };
        // Allow 20 ms of slack in timestamp units.
        let slack = match self.time_base {
            Some((numer, denom)) if numer > 0 => i64::try_from(denom / numer / 50).unwrap_or(i64::MAX),
            _ => return Ok(()),
        };
        if pts > previous_end.saturating_add(slack) {
            return Err(AudioError::Corrupt {
                at_ms: ms(self.frames, self.info.sample_rate),
                source: SymphoniaError::DecodeError("part of the audio is missing (damaged frames were skipped)"),
            });
        }
        Ok(())
    }

    fn error(&self, error: SymphoniaError) -> AudioError {
        let rate = self.info.sample_rate;
        let expected_ms = self.info.expected_frames.map(|n| ms(n, rate));
        stream_error(error, ms(self.frames, rate), expected_ms, self.read_failed.load(Ordering::Relaxed))
    }
}

/// Averages the channels (equal weights, so a stereo file's centre stays at
/// its level and a one-sided file drops 6 dB, as on a single loudspeaker).
fn downmix(planes: &[Vec<f32>], frames: usize, mono: &mut Vec<f32>) {
    mono.clear();
    match planes {
        [] => mono.resize(frames, 0.0),
        [only] => mono.extend_from_slice(&only[..frames.min(only.len())]),
        [left, right] => mono.extend(left.iter().zip(right).take(frames).map(|(l, r)| 0.5 * (l + r))),
        many => {
            let scale = 1.0 / many.len() as f32;
            mono.resize(frames, 0.0);
            for plane in many {
                for (m, s) in mono.iter_mut().zip(plane) {
                    *m += s * scale;
                }
            }
        }
    }
    // Float WAV can carry NaN and infinity; they would poison the loudness.
    for sample in mono.iter_mut().filter(|s| !s.is_finite()) {
        *sample = 0.0;
    }
}

/// A readable name for a codec the library does not decode.
fn codec_name(id: AudioCodecId) -> String {
    let name = match id {
        CODEC_ID_ADPCM_G722 | CODEC_ID_ADPCM_G726 | CODEC_ID_ADPCM_G726LE | CODEC_ID_ADPCM_MS => "ADPCM",
        CODEC_ID_ADPCM_IMA_WAV | CODEC_ID_ADPCM_IMA_QT => "ADPCM",
        CODEC_ID_MP1 => "MPEG Layer I",
        CODEC_ID_MP2 => "MPEG Layer II (MP2)",
        CODEC_ID_AC3 => "AC-3",
        CODEC_ID_EAC3 => "E-AC-3",
        CODEC_ID_DCA => "DTS",
        CODEC_ID_ALAC => "ALAC",
        CODEC_ID_SPEEX => "Speex",
        CODEC_ID_WMA => "WMA",
        CODEC_ID_WAVPACK => "WavPack",
        CODEC_ID_MONKEYS_AUDIO => "Monkey's Audio",
        CODEC_ID_TRUEHD => "TrueHD",
        _ => return format!("unknown ({id})"),
    };
    name.to_owned()
}

/// Milliseconds of `frames` at `rate`, 0 when the rate is unknown.
pub(crate) fn ms(frames: u64, rate: u32) -> u64 {
    if rate == 0 { 0 } else { (u128::from(frames) * 1000 / u128::from(rate)) as u64 }
}

/// Names a failure to recognise the file at all.
fn probe_error(error: SymphoniaError, sniffed: &Sniff, read_failed: bool) -> AudioError {
    let audio = *sniffed == Sniff::Audio;
    match error {
        SymphoniaError::IoError(e) if read_failed => AudioError::Read(e),
        // It starts like audio but ends before a stream could be found.
        SymphoniaError::IoError(e) if audio && e.kind() == io::ErrorKind::UnexpectedEof => {
            AudioError::Truncated { at_ms: None, expected_ms: None }
        }
        SymphoniaError::IoError(e) if audio => AudioError::Corrupt { at_ms: 0, source: SymphoniaError::IoError(e) },
        // MP4 writers put the index (moov) last unless asked not to, so a cut
        // M4A has none; likewise a cut MP3 may hold its tag and no frame.
        SymphoniaError::Unsupported(what) if audio && (what.contains("moov") || what.contains("no suitable")) => {
            AudioError::Truncated { at_ms: None, expected_ms: None }
        }
        SymphoniaError::Unsupported(what) if audio => AudioError::Unsupported { found: Found::Feature(what) },
        SymphoniaError::DecodeError(why) if audio => {
            AudioError::Corrupt { at_ms: 0, source: SymphoniaError::DecodeError(why) }
        }
        SymphoniaError::LimitError(why) if audio => {
            AudioError::Corrupt { at_ms: 0, source: SymphoniaError::LimitError(why) }
        }
        _ => AudioError::Unsupported { found: Found::Unknown },
    }
}

/// Names a failure after the stream was recognised. An IO error that did
/// not come from reading the source is a demuxer's seek to an offset the
/// file does not have: damage, not a failing disk.
fn stream_error(error: SymphoniaError, at_ms: u64, expected_ms: Option<u64>, read_failed: bool) -> AudioError {
    match error {
        SymphoniaError::IoError(e) if read_failed => AudioError::Read(e),
        SymphoniaError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            AudioError::Truncated { at_ms: Some(at_ms), expected_ms }
        }
        SymphoniaError::Unsupported(what) => AudioError::Unsupported { found: Found::Feature(what) },
        SymphoniaError::ResetRequired => AudioError::Unsupported { found: Found::Feature("a chained Ogg stream") },
        other => AudioError::Corrupt { at_ms, source: other },
    }
}

/// Any seekable reader as a symphonia [`MediaSource`], starting where the
/// caller's reader stood.
struct Source<S> {
    inner: S,
    start: u64,
    len: Option<u64>,
    read_failed: Arc<AtomicBool>,
}

impl<S: Read + Seek> Source<S> {
    fn new(mut inner: S, start: u64, read_failed: Arc<AtomicBool>) -> Self {
        let len = inner.seek(SeekFrom::End(0)).ok().map(|end| end.saturating_sub(start));
        // If the reader cannot return to the start, the first read reports it.
        let _ = inner.seek(SeekFrom::Start(start));
        Self { inner, start, len, read_failed }
    }
}

impl<S: Read> Read for Source<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.inner.read(buf);
        if result.as_ref().is_err_and(|e| e.kind() != io::ErrorKind::Interrupted) {
            self.read_failed.store(true, Ordering::Relaxed);
        }
        result
    }
}

impl<S: Seek> Seek for Source<S> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let pos = match pos {
            SeekFrom::Start(offset) => SeekFrom::Start(self.start.saturating_add(offset)),
            relative => relative,
        };
        Ok(self.inner.seek(pos)?.saturating_sub(self.start))
    }
}

impl<S: Read + Seek + Send + Sync> MediaSource for Source<S> {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        self.len
    }
}
