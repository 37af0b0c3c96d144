//! Streaming decode for playback: mono 48 kHz blocks, one packet at a time.
//!
//! The agent's player opens a cached file with [`StreamDecoder::open`] and
//! pulls [`StreamDecoder::next_block`] while it plays, so the first sample is
//! ready after one packet — not after decoding a whole three-minute notice —
//! and memory stays at a few blocks whatever the length. Every format the
//! crate decodes is accepted (the agent's cache holds Ogg Opus from the
//! controller, which is already 48 kHz mono and passes through untouched);
//! other rates go through the [`Resampler`].
//!
//! Errors are the same named [`AudioError`]s as [`crate::probe::analyse`]:
//! a file that is empty, not audio, damaged or cut short says so, at the
//! block where it was found.

use std::io::{Read, Seek};

use crate::decode::Decoding;
use crate::error::AudioError;
use crate::probe::Format;
use crate::resample::{OUTPUT_RATE, Resampler};

/// A file being decoded for playback, block by block, as mono
/// [`OUTPUT_RATE`] (48 kHz) samples at full scale ±1.0.
pub struct StreamDecoder {
    decoding: Decoding<'static>,
    resampler: Option<Resampler>,
    out: Vec<f32>,
    finished: bool,
}

impl StreamDecoder {
    /// Sniffs and probes `source` and sets up its decoder; reads only the
    /// headers. `hint` is a file extension, when one is known.
    pub fn open<S>(source: S, hint: Option<&str>) -> Result<Self, AudioError>
    where
        S: Read + Seek + Send + Sync + 'static,
    {
        let decoding = Decoding::open(source, hint)?;
        Ok(Self { decoding, resampler: None, out: Vec::new(), finished: false })
    }

    /// The container's format.
    pub fn format(&self) -> Format {
        self.decoding.info().format
    }

    /// The source's sample rate in Hz (0 until known).
    pub fn source_rate(&self) -> u32 {
        self.decoding.info().sample_rate
    }

    /// The length according to the container, in milliseconds, when it
    /// says (Ogg Opus and WAV do; a stream may not).
    pub fn expected_duration_ms(&self) -> Option<u64> {
        let info = self.decoding.info();
        info.expected_frames.map(|n| crate::decode::ms(n, info.sample_rate))
    }

    /// The next block of mono 48 kHz samples; `Ok(None)` once the stream has
    /// ended (and after that, always). A block is never empty.
    pub fn next_block(&mut self) -> Result<Option<&[f32]>, AudioError> {
        loop {
            if self.finished {
                return Ok(None);
            }
            self.out.clear();
            match self.decoding.next_block()? {
                Some(block) => {
                    let rate = block.info.sample_rate;
                    if rate == OUTPUT_RATE && self.resampler.is_none() {
                        self.out.extend_from_slice(block.samples);
                    } else {
                        let resampler = match &mut self.resampler {
                            Some(r) => r,
                            None => self.resampler.insert(Resampler::new(rate)?),
                        };
                        resampler.push(block.samples, &mut self.out);
                    }
                }
                None => {
                    self.finished = true;
                    if let Some(resampler) = &mut self.resampler {
                        resampler.finish(&mut self.out);
                    }
                }
            }
            if !self.out.is_empty() {
                return Ok(Some(&self.out));
            }
        }
    }
}

impl std::fmt::Debug for StreamDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamDecoder")
            .field("format", &self.format())
            .field("source_rate", &self.source_rate())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
