//! Sample-rate conversion of mono audio to 48 kHz (Opus's native rate), with
//! rubato's synchronous FFT resampler: band-limited, exact for any pair of
//! integer rates, and cheap enough to run inside the transcode.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler as _};

use crate::error::{AudioError, Found};

/// The rate everything is converted to, in Hz.
pub const OUTPUT_RATE: u32 = 48_000;

/// Input frames per FFT chunk: about 20 ms at 48 kHz, small enough to keep
/// buffers in cache, large enough to amortise the transforms.
const CHUNK: usize = 1024;

/// Converts a mono stream, fed block by block, to [`OUTPUT_RATE`].
///
/// The output is aligned with the input (the filter delay is removed) and,
/// after [`finish`](Self::finish), has exactly `ceil(input × 48000 / rate)`
/// frames.
pub struct Resampler {
    /// `None` when the input is already at 48 kHz.
    fft: Option<Fft<f32>>,
    input_rate: u32,
    /// Input waiting for a whole chunk; `pending[start..]` is unread.
    pending: Vec<f32>,
    start: usize,
    scratch: Vec<f32>,
    /// Output frames still to drop for the filter delay.
    delay: usize,
    consumed: u64,
    produced: u64,
}

impl Resampler {
    /// A resampler from `input_rate`, one of [`crate::loudness::SAMPLE_RATES`].
    pub fn new(input_rate: u32) -> Result<Self, AudioError> {
        let unsupported = || AudioError::Unsupported { found: Found::SampleRate(input_rate) };
        if !crate::loudness::SAMPLE_RATES.contains(&input_rate) {
            return Err(unsupported());
        }
        let fft = if input_rate == OUTPUT_RATE {
            None
        } else {
            let fft = Fft::new(input_rate as usize, OUTPUT_RATE as usize, CHUNK, 1, FixedSync::Input)
                .map_err(|_| unsupported())?;
            Some(fft)
        };
        let (delay, scratch) = match &fft {
            Some(fft) => (fft.output_delay(), vec![0.0; fft.output_frames_max()]),
            None => (0, Vec::new()),
        };
        Ok(Self {
            fft,
            input_rate,
            pending: Vec::with_capacity(2 * CHUNK),
            start: 0,
            scratch,
            delay,
            consumed: 0,
            produced: 0,
        })
    }

    /// Resamples `input`, appending what is ready to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) {
        self.consumed += input.len() as u64;
        if self.fft.is_none() {
            out.extend_from_slice(input);
            self.produced += input.len() as u64;
            return;
        }
        self.pending.extend_from_slice(input);
        while self.pending.len() - self.start >= CHUNK {
            self.process(None, out);
        }
        // Move the unread tail to the front once the read part dominates.
        if self.start > self.pending.len() / 2 {
            self.pending.drain(..self.start);
            self.start = 0;
        }
    }

    /// Flushes the filter, appending the last frames to `out`.
    pub fn finish(&mut self, out: &mut Vec<f32>) {
        if self.fft.is_none() {
            return;
        }
        let expected = output_len(self.consumed, self.input_rate);
        let left = self.pending.len() - self.start;
        if left > 0 {
            self.process(Some(left), out);
        }
        // Zeros push the last real samples through the filter.
        while self.produced < expected {
            let before = self.produced;
            self.process(Some(0), out);
            if self.produced == before && self.delay == 0 {
                break;
            }
        }
        let excess = (self.produced - expected.min(self.produced)) as usize;
        out.truncate(out.len().saturating_sub(excess));
        self.produced -= excess as u64;
    }

    /// Runs one chunk: a full one from `pending`, or the `partial` frames left.
    fn process(&mut self, partial: Option<usize>, out: &mut Vec<f32>) {
        let Some(fft) = &mut self.fft else { return };
        let frames = partial.unwrap_or(CHUNK);
        let input = &self.pending[self.start..self.start + frames];
        let indexing = Indexing { partial_len: partial, ..Indexing::new() };
        let capacity = self.scratch.len();
        let written = match (
            InterleavedSlice::new(input, 1, frames),
            InterleavedSlice::new_mut(&mut self.scratch, 1, capacity),
        ) {
            (Ok(input), Ok(mut output)) => {
                fft.process_into_buffer(&input, &mut output, Some(&indexing)).map_or(0, |(_, written)| written)
            }
            // Both adapters are sized from the slices they wrap, so they
            // cannot be refused; a chunk lost here would only shorten output.
            _ => 0,
        };
        self.start += frames;
        let skip = self.delay.min(written);
        self.delay -= skip;
        out.extend_from_slice(&self.scratch[skip..written]);
        self.produced += (written - skip) as u64;
    }
}

/// Resamples a whole mono clip at `rate` to [`OUTPUT_RATE`].
pub fn to_48k(mono: &[f32], rate: u32) -> Result<Vec<f32>, AudioError> {
    let mut resampler = Resampler::new(rate)?;
    let mut out = Vec::with_capacity(output_len(mono.len() as u64, rate) as usize + CHUNK);
    resampler.push(mono, &mut out);
    resampler.finish(&mut out);
    Ok(out)
}

/// `ceil(frames × 48000 / rate)`, in integers so no rounding error adds a frame.
fn output_len(frames: u64, rate: u32) -> u64 {
    (u128::from(frames) * u128::from(OUTPUT_RATE)).div_ceil(u128::from(rate.max(1))) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level::{rms_dbfs, sine, zero_crossing_frequency};

    #[test]
    fn length_level_and_pitch_survive() {
        for rate in [8_000, 11_025, 16_000, 22_050, 32_000, 44_100, 48_000, 96_000] {
            let tone = sine(1000.0, rate, 1.0, 0.5);
            let out = to_48k(&tone, rate).expect("rate");
            assert_eq!(out.len(), 48_000, "{rate}");
            // Skip the edges, where the filter sees the cut.
            let middle = &out[4_800..43_200];
            assert!((rms_dbfs(middle) - rms_dbfs(&tone)).abs() < 0.1, "{rate}: {}", rms_dbfs(middle));
            let f = zero_crossing_frequency(middle, OUTPUT_RATE).expect("tone");
            assert!((f - 1000.0).abs() < 1.0, "{rate}: {f}");
        }
    }

    #[test]
    fn output_is_aligned_with_input() {
        // A click at 0.5 s stays at 0.5 s.
        let mut clip = vec![0.0f32; 44_100];
        clip[22_050] = 1.0;
        let out = to_48k(&clip, 44_100).expect("rate");
        let peak = out.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).expect("samples");
        assert!((peak as i64 - 24_000).abs() <= 2, "{peak}");
    }

    #[test]
    fn block_sizes_do_not_matter() {
        let tone = sine(440.0, 22_050, 0.7, 0.5);
        let whole = to_48k(&tone, 22_050).expect("rate");
        let mut resampler = Resampler::new(22_050).expect("rate");
        let mut out = Vec::new();
        for block in tone.chunks(333) {
            resampler.push(block, &mut out);
        }
        resampler.finish(&mut out);
        assert_eq!(out.len(), whole.len());
        assert!(out.iter().zip(&whole).all(|(a, b)| (a - b).abs() < 1e-6));
    }

    #[test]
    fn tiny_and_empty_clips() {
        assert_eq!(to_48k(&[], 44_100).expect("rate").len(), 0);
        assert_eq!(to_48k(&[0.5; 10], 44_100).expect("rate").len(), 11);
    }
}
