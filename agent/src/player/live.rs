//! A live stream inside the output callback: frames into the
//! [`JitterBuffer`], one Opus packet decoded per frame period as the output
//! needs it, packet-loss concealment for what is missing.
//!
//! Decoding happens in the callback because the buffer's playout decision
//! must be taken at the moment the output needs the frame; one 20 ms mono
//! packet decodes in well under a millisecond. A packet that does not
//! decode is concealed like a missing one. The opus-pure decoder conceals
//! (decoding an empty packet) by extrapolating the last frames and fading
//! them out, as libopus does.

use std::time::Instant;

use dalaba_protocol::live::LiveFrame;
use opus_pure::{MAX_PACKET_SAMPLES, OpusDecoder};

use super::jitter::{JitterBuffer, JitterConfig, Playout};
use super::mixer::RATE;
use crate::clock;
use crate::core::LiveNews;
use crate::shell::{News, NewsSender};

/// One live session handed to the mixer.
pub(super) struct LiveItem {
    pub(super) session_id: String,
    pub(super) stream_id: u32,
    /// No sample leaves the output before this (the amplifier's warm-up).
    pub(super) target: Instant,
    pub(super) amplitude: f32,
    /// The jitter buffer's depths (`[audio] live_*_delay_ms`).
    pub(super) jitter: JitterConfig,
    pub(super) news: NewsSender,
}

/// The live session the mixer plays.
pub(super) struct LivePlaying {
    item: LiveItem,
    jitter: JitterBuffer,
    decoder: Option<OpusDecoder>,
    /// Decoded samples of the current frame, and how many are played.
    block: Vec<f32>,
    pos: usize,
    /// Samples of the last decoded frame: the length of a concealed one.
    frame_samples: usize,
    started: bool,
    /// Arrival times are measured from here, µs.
    epoch: Instant,
}

impl LivePlaying {
    pub(super) fn new(item: LiveItem) -> Self {
        let decoder = match OpusDecoder::new(RATE as i32, 1) {
            Ok(d) => Some(d),
            Err(e) => {
                let reason = format!("cannot make an Opus decoder: {e}");
                let _ = item.news.send(News::Live(LiveNews::Failed { session_id: item.session_id.clone(), reason }));
                None
            }
        };
        LivePlaying {
            jitter: JitterBuffer::new(item.jitter),
            decoder,
            block: Vec::with_capacity(MAX_PACKET_SAMPLES),
            pos: 0,
            frame_samples: RATE as usize / 50,
            started: false,
            epoch: item.target,
            item,
        }
    }

    pub(super) fn session_id(&self) -> &str {
        &self.item.session_id
    }

    /// A frame of the link, stamped when it arrived.
    pub(super) fn push(&mut self, frame: LiveFrame, arrived: Instant) {
        if frame.stream_id != self.item.stream_id {
            return;
        }
        let arrival_us = if arrived >= self.epoch {
            i64::try_from(arrived.duration_since(self.epoch).as_micros()).unwrap_or(i64::MAX)
        } else {
            -i64::try_from(self.epoch.duration_since(arrived).as_micros()).unwrap_or(i64::MAX)
        };
        self.jitter.push(frame.seq, frame.capture_us, arrival_us, frame.opus);
    }

    /// Fills `out` (interleaved, `channels` per frame) whose first frame
    /// leaves the output at `first_leaves`.
    pub(super) fn fill(&mut self, out: &mut [f32], channels: usize, first_leaves: Instant) {
        if first_leaves < self.item.target {
            self.jitter.keep_latest();
            return;
        }
        let frames = out.len() / channels;
        let mut frame = 0;
        while frame < frames {
            if self.pos >= self.block.len() && !self.next_block(first_leaves, frame) {
                return; // silence for the rest of this buffer
            }
            let n = (frames - frame).min(self.block.len() - self.pos);
            let samples = &self.block[self.pos..self.pos + n];
            for (slot, sample) in out[frame * channels..].chunks_mut(channels).zip(samples) {
                slot.fill((sample * self.item.amplitude).clamp(-1.0, 1.0));
            }
            frame += n;
            self.pos += n;
        }
    }

    /// What the jitter buffer did, for the log when the session ends.
    pub(super) fn stats(&self) -> super::jitter::JitterStats {
        self.jitter.stats()
    }

    /// Decodes the next frame period into `block`; false when there is
    /// nothing to play yet.
    fn next_block(&mut self, first_leaves: Instant, frame: usize) -> bool {
        let Some(decoder) = self.decoder.as_mut() else { return false };
        self.block.resize(MAX_PACKET_SAMPLES, 0.0);
        self.pos = 0;
        let decoded = match self.jitter.pop() {
            Playout::Silence => {
                self.block.clear();
                return false;
            }
            Playout::Packet(packet) => match decoder.decode(&packet, MAX_PACKET_SAMPLES, &mut self.block) {
                Ok(n) => {
                    if !self.started {
                        self.started = true;
                        let at = first_leaves
                            + std::time::Duration::from_nanos(frame as u64 * 1_000_000_000 / u64::from(RATE));
                        let at_ms = clock::wall_ms_at(at);
                        let started = LiveNews::Started { session_id: self.item.session_id.clone(), at_ms };
                        let _ = self.item.news.send(News::Live(started));
                    }
                    self.frame_samples = n.clamp(1, MAX_PACKET_SAMPLES);
                    self.jitter.set_frame_ms((n * 1000 / RATE as usize) as u32);
                    Ok(n)
                }
                Err(_) => decoder.decode(&[], self.frame_samples, &mut self.block),
            },
            Playout::Conceal => decoder.decode(&[], self.frame_samples, &mut self.block),
            Playout::Quiet => Ok(0),
        };
        // A decoder error even when concealing, or a quiet period: a frame
        // of silence keeps the output's timeline.
        let n = decoded.unwrap_or(0).min(MAX_PACKET_SAMPLES);
        if n == 0 {
            self.block.clear();
            self.block.resize(self.frame_samples, 0.0);
        } else {
            self.block.truncate(n);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use dalaba_audio::level::{sine, zero_crossing_frequency};
    use dalaba_audio::opus::{Encoder, FRAME_SAMPLES, OpusSettings};

    use super::*;

    #[test]
    fn a_tone_with_a_lost_frame_plays_through_with_concealment() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let t0 = clock::now().mono;
        let item = LiveItem {
            session_id: "L1".into(),
            stream_id: 7,
            target: t0,
            amplitude: 1.0,
            // Two frames deep: the lost frame is known lost (a later one
            // waits) at its turn, so exactly one period is concealed.
            jitter: JitterConfig { min_ms: 40, max_ms: 500 },
            news: tx,
        };
        let mut live = LivePlaying::new(item);
        let tone = sine(440.0, RATE, 1.0, 0.5);
        let mut encoder = Encoder::new(&OpusSettings::default()).expect("encoder");
        let mut frames = Vec::new();
        for (seq, chunk) in tone.chunks_exact(FRAME_SAMPLES).enumerate() {
            let opus = encoder.encode_frame(chunk).expect("encode");
            if seq != 20 {
                frames.push(LiveFrame { stream_id: 7, seq: seq as u32, capture_us: seq as i64 * 20_000, opus });
            }
        }
        live.push(LiveFrame { stream_id: 8, seq: 99, capture_us: 0, opus: vec![1] }, t0);
        // Frames arrive as they are captured; the output takes 10 ms a time.
        let mut out = vec![0.0f32; 48_000];
        let mut frames = frames.into_iter().peekable();
        for (n, chunk) in out.chunks_mut(480).enumerate() {
            let now = t0 + Duration::from_millis(n as u64 * 10);
            while let Some(f) = frames.next_if(|f| f.capture_us <= n as i64 * 10_000) {
                live.push(f, now);
            }
            live.fill(chunk, 1, now);
        }
        assert!(matches!(rx.try_recv(), Ok(News::Live(LiveNews::Started { .. }))));
        let f = zero_crossing_frequency(&out[4_800..40_000], RATE).expect("a tone");
        assert!((f - 440.0).abs() < 5.0, "{f} Hz");
        let stats = live.stats();
        assert_eq!(stats.concealed, 1, "{stats:?}");
        assert_eq!(stats.received, 49, "the other stream's frame is not taken");
    }

    /// The end of a stream whose stop comes later (a recorded source's
    /// stop follows its last frame by a second): the tone is not drawn out
    /// by more than [`super::super::jitter::CONCEAL_MAX_MS`] of concealment.
    #[test]
    fn the_end_of_a_stream_is_not_drawn_out_by_concealment() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let t0 = clock::now().mono;
        let jitter = JitterConfig { min_ms: 40, max_ms: 500 };
        let item = LiveItem { session_id: "L1".into(), stream_id: 7, target: t0, amplitude: 1.0, jitter, news: tx };
        let mut live = LivePlaying::new(item);
        let tone = sine(500.0, RATE, 0.5, 0.5);
        let mut encoder = Encoder::new(&OpusSettings::default()).expect("encoder");
        for (seq, chunk) in tone.chunks_exact(FRAME_SAMPLES).enumerate() {
            let opus = encoder.encode_frame(chunk).expect("encode");
            live.push(LiveFrame { stream_id: 7, seq: seq as u32, capture_us: seq as i64 * 20_000, opus }, t0);
        }
        let mut out = vec![0.0f32; 2 * RATE as usize];
        for (n, chunk) in out.chunks_mut(480).enumerate() {
            live.fill(chunk, 1, t0 + Duration::from_millis(n as u64 * 10));
        }
        let heard = |s: &f32| s.abs() > 0.01;
        let first = out.iter().position(heard).expect("the tone plays");
        let last = out.iter().rposition(heard).expect("the tone plays");
        let ms = (last - first) * 1000 / RATE as usize;
        assert!((500..=620).contains(&ms), "the tone lasts {ms} ms: 500 and at most 100 ms of concealment");
        assert_eq!(live.stats().concealed, 5, "{:?}", live.stats());
    }
}
