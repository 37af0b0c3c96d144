//! What runs inside the output callback: the item in progress, placed on
//! the output's timeline to the frame.
//!
//! The mixer never blocks and never reads a file: decoded, scaled blocks
//! arrive through a bounded channel from the item's decode thread, commands
//! through another. A block that is not ready in time is an underrun: the
//! output gets silence and the item carries on (counted and logged).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use dalaba_protocol::live::LiveFrame;

use super::live::{LiveItem, LivePlaying};
use crate::clock;
use crate::core::PlaybackNews;
use crate::shell::{News, NewsSender};

/// The output's sample rate: the decoder's (48 kHz).
pub(super) const RATE: u32 = dalaba_audio::resample::OUTPUT_RATE;

/// What the decode thread sends: a block of scaled mono samples, or why
/// decoding stopped. The end of the audio is the channel closing.
pub(super) type Block = Result<Vec<f32>, String>;

/// Commands from the player to the mixer.
pub(super) enum Command {
    /// Play this item (replacing any other).
    Play(Item),
    /// Play this live session (replacing any other); while it plays, it
    /// is all the output carries.
    Live(LiveItem),
    /// A frame for the live session, and when it arrived.
    LiveFrame(LiveFrame, Instant),
    /// End this live session at once.
    StopLive(String),
}

/// An item handed to the mixer, its first block already decoded.
pub(super) struct Item {
    pub(super) entry_id: String,
    pub(super) part: usize,
    /// When its first sample must leave the output.
    pub(super) target: Instant,
    pub(super) blocks: Receiver<Block>,
    pub(super) news: NewsSender,
    /// Set when the item is stopped: the mixer drops it silently at its
    /// next buffer. A flag, not a message, so a stop that overtakes the
    /// item on its way from the decode thread still holds.
    pub(super) stopped: Arc<AtomicBool>,
    /// Frames of the item written to the output so far, for the player to
    /// say where a stopped item got to. Output stalls (xruns, a starved
    /// callback) delay frames but do not drop them, so this is what was
    /// heard, which the wall clock since the start overstates by the stall.
    pub(super) played: Arc<AtomicU64>,
}

/// The output side of the player, owned by the output callback.
pub(super) struct Mixer {
    commands: Receiver<Command>,
    current: Option<Playing>,
    live: Option<LivePlaying>,
    /// The player is gone: the output may close.
    closed: bool,
}

struct Playing {
    item: Item,
    block: Vec<f32>,
    pos: usize,
    state: State,
    underruns: u32,
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Waiting,
    Playing,
    /// All samples are written; the last leaves the output at this instant.
    Draining(Instant),
}

impl Mixer {
    pub(super) fn new(commands: Receiver<Command>) -> Self {
        Mixer { commands, current: None, live: None, closed: false }
    }

    /// The player dropped its end: nothing more will come.
    pub(super) fn is_closed(&self) -> bool {
        self.closed && self.current.is_none() && self.live.is_none()
    }

    /// Fills `out` (interleaved, `channels` per frame, every channel the
    /// same) whose first frame leaves the output at `first_leaves`.
    pub(super) fn fill(&mut self, out: &mut [f32], channels: usize, first_leaves: Instant) {
        out.fill(0.0);
        let channels = channels.max(1);
        self.take_commands();
        if self.current.as_ref().is_some_and(|p| p.item.stopped.load(Ordering::Relaxed)) {
            self.current = None;
        }
        if let Some(live) = self.live.as_mut() {
            return live.fill(out, channels, first_leaves);
        }
        let frames = out.len() / channels;
        let Some(p) = self.current.as_mut() else { return };
        let mut frame = 0;
        if p.state == State::Waiting {
            let wait = p.item.target.saturating_duration_since(first_leaves);
            let offset = frames_in(wait);
            if offset >= frames as u64 {
                return;
            }
            frame = offset as usize;
            p.state = State::Playing;
            let at_ms = clock::wall_ms_at(first_leaves + duration_of(frame as u64));
            p.news(PlaybackNews::Started { entry_id: p.item.entry_id.clone(), part: p.item.part, at_ms });
        }
        if let State::Draining(end) = p.state {
            if first_leaves >= end {
                self.end(None);
            }
            return;
        }
        while frame < frames {
            if p.pos >= p.block.len() {
                match p.item.blocks.try_recv() {
                    Ok(Ok(block)) => {
                        p.block = block;
                        p.pos = 0;
                        continue;
                    }
                    Ok(Err(reason)) => return self.end(Some(reason)),
                    Err(TryRecvError::Empty) => {
                        p.underruns += 1;
                        return;
                    }
                    Err(TryRecvError::Disconnected) => {
                        p.state = State::Draining(first_leaves + duration_of(frame as u64));
                        return;
                    }
                }
            }
            let n = (frames - frame).min(p.block.len() - p.pos);
            for (slot, sample) in out[frame * channels..].chunks_mut(channels).zip(&p.block[p.pos..p.pos + n]) {
                slot.fill(sample.clamp(-1.0, 1.0));
            }
            frame += n;
            p.pos += n;
            p.item.played.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    fn take_commands(&mut self) {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Play(item)) => {
                    let playing = Playing { item, block: Vec::new(), pos: 0, state: State::Waiting, underruns: 0 };
                    self.current = Some(playing);
                }
                Ok(Command::Live(item)) => self.live = Some(LivePlaying::new(item)),
                Ok(Command::LiveFrame(frame, arrived)) => {
                    if let Some(live) = self.live.as_mut() {
                        live.push(frame, arrived);
                    }
                }
                Ok(Command::StopLive(session_id)) => {
                    if let Some(live) = self.live.take_if(|l| l.session_id() == session_id) {
                        let stats = live.stats();
                        tracing::info!(%session_id, ?stats, "live stream stopped");
                    }
                }
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.closed = true;
                    return;
                }
            }
        }
    }

    /// The item ended: finished (`None`) or failed.
    fn end(&mut self, failure: Option<String>) {
        let Some(p) = self.current.take() else { return };
        let (entry_id, part) = (p.item.entry_id.clone(), p.item.part);
        if p.underruns > 0 {
            tracing::warn!(%entry_id, underruns = p.underruns, "the decoder fell behind the output; silence was inserted");
        }
        p.news(match failure {
            None => PlaybackNews::Finished { entry_id, part },
            Some(reason) => PlaybackNews::Failed { entry_id, part, reason },
        });
    }
}

impl Playing {
    fn news(&self, news: PlaybackNews) {
        // The shell loop is gone only when the agent is stopping.
        let _ = self.item.news.send(News::Playback(news));
    }
}

/// Whole frames in `d` at [`RATE`], rounded to the nearest.
fn frames_in(d: Duration) -> u64 {
    ((d.as_nanos() * u128::from(RATE) + 500_000_000) / 1_000_000_000) as u64
}

fn duration_of(frames: u64) -> Duration {
    Duration::from_nanos(frames.saturating_mul(1_000_000_000) / u64::from(RATE))
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    fn setup() -> (mpsc::Sender<Command>, Mixer, tokio::sync::mpsc::UnboundedReceiver<News>, NewsSender) {
        let (tx, rx) = mpsc::channel();
        let (news_tx, news_rx) = tokio::sync::mpsc::unbounded_channel();
        (tx, Mixer::new(rx), news_rx, news_tx)
    }

    fn item(target: Instant, blocks: Vec<Block>, news: &NewsSender) -> Item {
        let (tx, rx) = mpsc::sync_channel(blocks.len().max(1));
        for b in blocks {
            tx.send(b).expect("room");
        }
        Item {
            entry_id: "e".into(),
            part: 0,
            target,
            blocks: rx,
            news: news.clone(),
            stopped: Default::default(),
            played: Default::default(),
        }
    }

    fn news(rx: &mut tokio::sync::mpsc::UnboundedReceiver<News>) -> Vec<PlaybackNews> {
        std::iter::from_fn(|| match rx.try_recv() {
            Ok(News::Playback(n)) => Some(n),
            _ => None,
        })
        .collect()
    }

    #[test]
    fn the_first_sample_lands_on_the_target_frame_and_the_end_waits_for_the_output() {
        let (tx, mut mixer, mut rx, news_tx) = setup();
        let t0 = clock::now().mono;
        // Target: 1.5 buffers of 480 frames (10 ms each) after t0.
        let target = t0 + Duration::from_millis(15);
        let first = item(target, vec![Ok(vec![0.5; 600])], &news_tx);
        let played = Arc::clone(&first.played);
        tx.send(Command::Play(first)).expect("send");
        let mut out = vec![1.0; 960];
        mixer.fill(&mut out, 2, t0);
        assert!(out.iter().all(|s| *s == 0.0), "silence before the target");
        mixer.fill(&mut out, 2, t0 + Duration::from_millis(10));
        let first = out.iter().position(|s| *s != 0.0).expect("it started");
        assert_eq!(first, 240 * 2, "frame 240 of the second buffer leaves at 15 ms");
        assert!(matches!(news(&mut rx)[..], [PlaybackNews::Started { .. }]));
        mixer.fill(&mut out, 2, t0 + Duration::from_millis(20));
        assert_eq!(out.iter().filter(|s| **s == 0.5).count(), 2 * (600 - 240));
        assert!(news(&mut rx).is_empty(), "the last sample leaves at 27.5 ms, during the buffer after");
        mixer.fill(&mut out, 2, t0 + Duration::from_millis(30));
        assert_eq!(news(&mut rx), vec![PlaybackNews::Finished { entry_id: "e".into(), part: 0 }]);
        assert_eq!(played.load(Ordering::Relaxed), 600, "every frame counted once, none of the silence");
        drop(tx);
        mixer.fill(&mut out, 2, t0 + Duration::from_millis(50));
        assert!(mixer.is_closed());
    }

    #[test]
    fn a_late_item_starts_at_once_a_decode_error_fails_it_and_stop_is_silent() {
        let (tx, mut mixer, mut rx, news_tx) = setup();
        let t0 = clock::now().mono;
        let late = item(t0, vec![Ok(vec![0.25; 100]), Err("damaged at 2 ms".into())], &news_tx);
        tx.send(Command::Play(late)).expect("send");
        let mut out = vec![0.0; 480];
        mixer.fill(&mut out, 1, t0 + Duration::from_secs(1));
        assert_eq!(out[0], 0.25);
        let got = news(&mut rx);
        assert!(
            matches!(&got[..], [PlaybackNews::Started { .. }, PlaybackNews::Failed { reason, .. }] if reason == "damaged at 2 ms"),
            "{got:?}"
        );

        let loud = item(t0, vec![Ok(vec![2.0; 10_000])], &news_tx);
        let (stopped, played) = (Arc::clone(&loud.stopped), Arc::clone(&loud.played));
        tx.send(Command::Play(loud)).expect("send");
        mixer.fill(&mut out, 1, t0 + Duration::from_secs(2));
        assert_eq!(out[0], 1.0, "clipped at full scale");
        stopped.store(true, Ordering::Relaxed);
        mixer.fill(&mut out, 1, t0 + Duration::from_secs(3));
        assert!(out.iter().all(|s| *s == 0.0));
        assert_eq!(played.load(Ordering::Relaxed), 480, "one buffer out before the stop");
        let got = news(&mut rx);
        assert!(matches!(&got[..], [PlaybackNews::Started { .. }]), "nothing after the stop: {got:?}");
    }
}
