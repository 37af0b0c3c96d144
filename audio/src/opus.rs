//! Opus encoding (pure-Rust `opus-pure`): a frame encoder that the live path
//! can reuse, an Ogg Opus file writer (RFC 7845), and the library transcode.
//!
//! Distribution copies are Ogg Opus, mono, 48 kHz, 20 ms frames, 32 kb/s by
//! default. The header's output gain stays 0 dB: the playback gain travels
//! beside the content (see [`crate::probe::Analysis::gain_db`]), so changing
//! the loudness target never changes a file or its SHA-256, and villages keep
//! what they have already downloaded.

use std::io::{Read, Seek, Write};

use opus_pure::{Application, MAX_PACKET_BYTES, OggOpusWriter, OpusHead, OpusTags};

use crate::error::AudioError;
use crate::probe::{Analysis, Settings, run};
use crate::resample::{OUTPUT_RATE, Resampler};

/// Samples in one 20 ms frame at 48 kHz.
pub const FRAME_SAMPLES: usize = 960;
/// Samples in one 10 ms frame at 48 kHz: the live microphone's frames.
pub const SHORT_FRAME_SAMPLES: usize = 480;

/// How to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusSettings {
    /// Target bitrate in bits per second. Default 32,000.
    pub bitrate_bps: u32,
    /// Encoder effort, 0–10. Default 9 (libopus's default is 10; 9 keeps
    /// the speech/music analysis and costs less).
    pub complexity: u8,
}

impl Default for OpusSettings {
    fn default() -> Self {
        Self { bitrate_bps: 32_000, complexity: 9 }
    }
}

/// A mono 48 kHz Opus encoder, one packet per call.
///
/// The file writer below uses it with 20 ms frames; a live stream can use it
/// as is and put each packet in its own frame.
pub struct Encoder {
    inner: opus_pure::OpusEncoder,
    packet: Vec<u8>,
}

impl Encoder {
    /// An encoder for general audio (speech and music) with `settings`.
    pub fn new(settings: &OpusSettings) -> Result<Self, AudioError> {
        Self::with_application(settings, Application::Audio)
    }

    /// An encoder for live speech where every millisecond counts: CELT
    /// only, without the 4 ms the general encoder spends aligning its two
    /// layers (lookahead 2.5 ms instead of 6.5 ms). Pair it with 10 ms
    /// frames ([`SHORT_FRAME_SAMPLES`]).
    pub fn low_delay(settings: &OpusSettings) -> Result<Self, AudioError> {
        Self::with_application(settings, Application::RestrictedLowDelay)
    }

    fn with_application(settings: &OpusSettings, application: Application) -> Result<Self, AudioError> {
        let mut inner = opus_pure::OpusEncoder::new(OUTPUT_RATE as i32, 1, application).map_err(AudioError::Encode)?;
        inner.bitrate_bps = i32::try_from(settings.bitrate_bps).unwrap_or(i32::MAX).clamp(6_000, 510_000);
        inner.complexity = i32::from(settings.complexity.min(10));
        Ok(Self { inner, packet: vec![0; MAX_PACKET_BYTES] })
    }

    /// Encodes one frame of mono 48 kHz samples (960 for 20 ms; any Opus
    /// frame length from 2.5 to 60 ms is accepted) into one Opus packet.
    pub fn encode_frame(&mut self, frame: &[f32]) -> Result<Vec<u8>, AudioError> {
        Ok(self.encode_frame_ref(frame)?.to_vec())
    }

    /// [`encode_frame`](Self::encode_frame) into the encoder's own buffer.
    pub fn encode_frame_ref(&mut self, frame: &[f32]) -> Result<&[u8], AudioError> {
        let len = self.inner.encode(frame, frame.len(), &mut self.packet).map_err(AudioError::Encode)?;
        Ok(&self.packet[..len])
    }

    /// The encoder's delay in 48 kHz samples: what a decoder must drop from
    /// the start (the Ogg pre-skip).
    pub fn delay(&self) -> usize {
        self.inner.lookahead()
    }
}

/// Writes mono 48 kHz audio, fed in blocks of any size, as an Ogg Opus file.
///
/// The header's pre-skip is the encoder's real delay; the input is padded
/// with silence so the encoder's last samples come out, and the final
/// granule position trims the padding again (RFC 7845 §4.4), so the file
/// decodes to exactly the samples pushed. The stream serial comes from the
/// header, so the same input always gives the same bytes.
pub struct OggOpusEncoder<W: Write> {
    encoder: Encoder,
    writer: OggOpusWriter<W>,
    frame: Vec<f32>,
    pushed: u64,
    pre_skip: u64,
}

impl<W: Write> OggOpusEncoder<W> {
    /// Starts a file on `out`, writing the `OpusHead` and `OpusTags` pages.
    /// `input_rate` is recorded in the header for information only.
    pub fn new(out: W, settings: &OpusSettings, input_rate: u32) -> Result<Self, AudioError> {
        let encoder = Encoder::new(settings)?;
        let mut head = OpusHead::new(1, input_rate).map_err(AudioError::Encode)?;
        let pre_skip = u16::try_from(encoder.delay()).unwrap_or(OpusHead::RECOMMENDED_PRE_SKIP);
        head.pre_skip = pre_skip;
        let mut tags = OpusTags::new();
        tags.vendor = "dalaba".to_owned();
        let writer = OggOpusWriter::with_tags(out, head, tags).map_err(write_error)?;
        Ok(Self { encoder, writer, frame: Vec::with_capacity(FRAME_SAMPLES), pushed: 0, pre_skip: pre_skip.into() })
    }

    /// Encodes `samples` (mono, 48 kHz, ±1.0 full scale).
    pub fn push(&mut self, mut samples: &[f32]) -> Result<(), AudioError> {
        self.pushed += samples.len() as u64;
        while !samples.is_empty() {
            let take = (FRAME_SAMPLES - self.frame.len()).min(samples.len());
            self.frame.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.frame.len() == FRAME_SAMPLES {
                let packet = self.encoder.encode_frame_ref(&self.frame)?;
                self.writer.write_packet(packet).map_err(write_error)?;
                self.frame.clear();
            }
        }
        Ok(())
    }

    /// Flushes the encoder, writes the end-of-stream page and returns `out`.
    pub fn finish(mut self) -> Result<W, AudioError> {
        let final_granule = self.pre_skip + self.pushed;
        // Frames still owed: the partial one plus enough to cover the delay.
        let owed = (self.frame.len() as u64 + self.pre_skip).div_ceil(FRAME_SAMPLES as u64);
        for i in 0..owed {
            self.frame.resize(FRAME_SAMPLES, 0.0);
            let packet = self.encoder.encode_frame_ref(&self.frame)?;
            self.frame.clear();
            if i + 1 == owed {
                let written = u64::try_from(self.writer.granule()).unwrap_or(0);
                let duration = final_granule.saturating_sub(written).min(FRAME_SAMPLES as u64) as u32;
                self.writer.write_packet_with_duration(packet, duration).map_err(write_error)?;
            } else {
                self.writer.write_packet(packet).map_err(write_error)?;
            }
        }
        self.writer.finish().map_err(write_error)
    }
}

/// Decodes `source`, measures it like [`crate::probe::analyse`], and writes
/// its mono 48 kHz Ogg Opus distribution copy to `out`, all in one pass.
///
/// On error, what was written to `out` is incomplete and must be discarded
/// (the controller writes to a temporary file and renames on success).
pub fn transcode_to_ogg_opus<S, W>(
    source: S,
    hint: Option<&str>,
    settings: &Settings,
    opus: &OpusSettings,
    out: W,
) -> Result<Analysis, AudioError>
where
    S: Read + Seek + Send + Sync,
    W: Write,
{
    let mut out = Some(out);
    let mut stage: Option<(Resampler, OggOpusEncoder<W>)> = None;
    let mut resampled = Vec::new();
    let analysis = run(source, hint, settings, |info, block| {
        let (resampler, encoder) = match &mut stage {
            Some(stage) => stage,
            None => {
                let resampler = Resampler::new(info.sample_rate)?;
                // `out` is taken once, for the first block.
                let Some(out) = out.take() else { return Ok(()) };
                stage.insert((resampler, OggOpusEncoder::new(out, opus, info.sample_rate)?))
            }
        };
        resampled.clear();
        resampler.push(block, &mut resampled);
        encoder.push(&resampled)
    })?;
    let Some((mut resampler, mut encoder)) = stage else {
        // `run` refuses a file without audio, so a stage always exists here.
        return Err(AudioError::NoAudio);
    };
    resampled.clear();
    resampler.finish(&mut resampled);
    encoder.push(&resampled)?;
    // A buffered writer would otherwise flush on drop and lose the error.
    encoder.finish()?.flush().map_err(AudioError::Write)?;
    Ok(analysis)
}

fn write_error(error: opus_pure::Error) -> AudioError {
    match error {
        opus_pure::Error::Io(e) => AudioError::Write(e),
        other => AudioError::Encode(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level::{sine, zero_crossing_frequency};

    #[test]
    fn the_low_delay_encoder_takes_10_ms_frames_and_looks_ahead_less() {
        let settings = OpusSettings { bitrate_bps: 40_000, complexity: 5 };
        let mut low = Encoder::low_delay(&settings).expect("encoder");
        let general = Encoder::new(&settings).expect("encoder");
        assert_eq!(low.delay(), 120, "2.5 ms at 48 kHz");
        assert_eq!(general.delay(), 312, "6.5 ms at 48 kHz");
        let mut decoder = opus_pure::OpusDecoder::new(48_000, 1).expect("decoder");
        let mut out = Vec::new();
        let mut block = vec![0.0f32; opus_pure::MAX_PACKET_SAMPLES];
        for frame in sine(1000.0, 48_000, 0.5, 0.5).chunks_exact(SHORT_FRAME_SAMPLES) {
            let packet = low.encode_frame(frame).expect("encodes");
            let n = decoder.decode(&packet, opus_pure::MAX_PACKET_SAMPLES, &mut block).expect("decodes");
            assert_eq!(n, SHORT_FRAME_SAMPLES, "one 10 ms frame per packet");
            out.extend_from_slice(&block[..n]);
        }
        let f = zero_crossing_frequency(&out[4_800..], 48_000).expect("a tone");
        assert!((f - 1000.0).abs() < 5.0, "{f} Hz");
    }
}
