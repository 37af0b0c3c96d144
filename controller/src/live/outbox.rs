//! One agent link's outbound queue: control messages (signed commands)
//! and live audio frames, drained by the link's task.
//!
//! Control messages are never dropped and always leave before any frame.
//! Frames are bounded to [`FRAME_QUEUE`]: when a slow link has not taken
//! them, the oldest is dropped and counted, so one slow agent never stalls
//! the fan-out to the others and never builds up latency of its own.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use axum::body::Bytes;
use tokio::sync::Notify;

/// Most live frames waiting on one link: one second of the microphone's
/// 10 ms frames, two of a file's 20 ms frames.
pub const FRAME_QUEUE: usize = 100;

/// What the link sends next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// A JSON control message, as text.
    Control(String),
    /// A binary live frame.
    Frame(Bytes),
}

/// The queue. The fan-out and the control path push; one link task pops.
#[derive(Debug)]
pub struct Outbox {
    queues: Mutex<Queues>,
    ready: Notify,
    capacity: usize,
    dropped: AtomicU64,
}

#[derive(Debug, Default)]
struct Queues {
    control: VecDeque<String>,
    frames: VecDeque<Bytes>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox::new(FRAME_QUEUE)
    }
}

impl Outbox {
    /// An empty queue holding at most `capacity` frames (at least one).
    pub fn new(capacity: usize) -> Outbox {
        Outbox {
            queues: Mutex::new(Queues::default()),
            ready: Notify::new(),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues a control message; it is never dropped.
    pub fn push_control(&self, text: String) {
        self.lock().control.push_back(text);
        self.ready.notify_one();
    }

    /// Queues a frame; returns true when the oldest waiting frame was
    /// dropped to make room.
    pub fn push_frame(&self, frame: Bytes) -> bool {
        self.push_frames(std::slice::from_ref(&frame)) > 0
    }

    /// Queues frames in order and wakes the link once; returns how many
    /// of the oldest waiting were dropped to make room.
    pub fn push_frames(&self, frames: &[Bytes]) -> u64 {
        let mut dropped = 0;
        {
            let mut q = self.lock();
            for frame in frames {
                if q.frames.len() >= self.capacity && q.frames.pop_front().is_some() {
                    dropped += 1;
                }
                q.frames.push_back(frame.clone());
            }
        }
        if dropped > 0 {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        self.ready.notify_one();
        dropped
    }

    /// The next message without waiting: control first, then frames.
    pub fn try_next(&self) -> Option<Outbound> {
        let mut q = self.lock();
        if let Some(text) = q.control.pop_front() {
            return Some(Outbound::Control(text));
        }
        q.frames.pop_front().map(Outbound::Frame)
    }

    /// Waits for the next message. One task drains a queue.
    pub async fn next(&self) -> Outbound {
        loop {
            if let Some(next) = self.try_next() {
                return next;
            }
            // `notify_one` keeps a permit when nobody waits, so a push
            // between `try_next` and here is not lost.
            self.ready.notified().await;
        }
    }

    /// Frames dropped from this queue so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Frames waiting now.
    pub fn frames_waiting(&self) -> usize {
        self.lock().frames.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        // Critical sections only move queue entries; a poisoned lock holds
        // consistent queues.
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u8) -> Bytes {
        Bytes::from(vec![n])
    }

    #[test]
    fn control_jumps_the_frames_and_is_never_dropped() {
        let q = Outbox::new(2);
        q.push_frame(frame(1));
        for i in 0..100 {
            q.push_control(format!("c{i}"));
        }
        q.push_frame(frame(2));
        for i in 0..100 {
            assert_eq!(q.try_next(), Some(Outbound::Control(format!("c{i}"))));
        }
        assert_eq!(q.try_next(), Some(Outbound::Frame(frame(1))));
        assert_eq!(q.try_next(), Some(Outbound::Frame(frame(2))));
        assert_eq!(q.try_next(), None);
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts() {
        let q = Outbox::new(3);
        let dropped: Vec<bool> = (0..5).map(|n| q.push_frame(frame(n))).collect();
        assert_eq!(dropped, [false, false, false, true, true]);
        assert_eq!(q.dropped(), 2);
        assert_eq!(q.frames_waiting(), 3);
        let left: Vec<_> = std::iter::from_fn(|| q.try_next()).collect();
        assert_eq!(left, [2, 3, 4].map(|n| Outbound::Frame(frame(n))));
    }

    #[test]
    fn a_burst_queues_in_order_and_drops_the_oldest_to_fit() {
        let q = Outbox::new(4);
        assert_eq!(q.push_frames(&[frame(0), frame(1), frame(2)]), 0);
        assert_eq!(q.push_frames(&[frame(3), frame(4), frame(5)]), 2);
        assert_eq!(q.dropped(), 2);
        let left: Vec<_> = std::iter::from_fn(|| q.try_next()).collect();
        assert_eq!(left, [2, 3, 4, 5].map(|n| Outbound::Frame(frame(n))));
    }

    #[tokio::test]
    async fn next_wakes_on_a_push() {
        let q = std::sync::Arc::new(Outbox::new(4));
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.next().await }
        });
        tokio::task::yield_now().await;
        q.push_control("hello".into());
        assert_eq!(waiter.await.expect("task"), Outbound::Control("hello".into()));
    }
}
