//! When to send the agent's status: right after every welcome, whenever it
//! changes, and every `status_interval` even without a change, so the
//! controller's view never goes stale.

use dalaba_protocol::link::{AgentMessage, AgentStatus, NowPlaying};

use super::timer::Timer;
use super::{CLOCK_OFFSET_STEP_MS, CoreConfig, DeviceSnapshot, Effects, Now};

#[derive(Debug, Default)]
pub(super) struct StatusReport {
    /// The latest device reading; none until the shell's first.
    snapshot: Option<DeviceSnapshot>,
    /// What went out last on the current link.
    last_sent: Option<AgentStatus>,
    /// What the core is playing (a scheduled item or a live session); it
    /// takes precedence over the shell's reading.
    playing: Option<NowPlaying>,
}

impl StatusReport {
    pub(super) fn set_snapshot(&mut self, snapshot: DeviceSnapshot) {
        self.snapshot = Some(snapshot);
    }

    /// Records what plays now; true when that changed.
    pub(super) fn set_playing(&mut self, playing: Option<NowPlaying>) -> bool {
        let changed = self.playing != playing;
        self.playing = playing;
        changed
    }

    /// A new link forgets what the last one was told.
    pub(super) fn link_welcomed(&mut self, config: &CoreConfig, now: Now, offset: Option<i64>, fx: &mut Effects) {
        self.last_sent = None;
        self.send(config, now, offset, fx);
    }

    pub(super) fn link_lost(&mut self, fx: &mut Effects) {
        self.last_sent = None;
        fx.timers.clear(Timer::Status);
    }

    /// Sends the status unless the controller already has it. Call only while
    /// connected.
    pub(super) fn send_if_changed(&mut self, config: &CoreConfig, now: Now, offset: Option<i64>, fx: &mut Effects) {
        let Some(status) = self.current(offset) else {
            return;
        };
        if self.last_sent.as_ref().is_none_or(|last| differs(last, &status)) {
            self.send_status(config, now, status, fx);
        }
    }

    /// Sends the status. Call only while connected. Without a device reading
    /// yet there is nothing to say: the first reading will be sent as a change.
    pub(super) fn send(&mut self, config: &CoreConfig, now: Now, offset: Option<i64>, fx: &mut Effects) {
        if let Some(status) = self.current(offset) {
            self.send_status(config, now, status, fx);
        }
    }

    fn current(&self, offset: Option<i64>) -> Option<AgentStatus> {
        let s = self.snapshot.as_ref()?;
        Some(AgentStatus {
            clock_offset_ms: offset,
            disk_free_bytes: s.disk_free_bytes,
            cache_bytes: s.cache_bytes,
            amplifier: s.amplifier,
            now_playing: self.playing.clone().or_else(|| s.now_playing.clone()),
        })
    }

    fn send_status(&mut self, config: &CoreConfig, now: Now, status: AgentStatus, fx: &mut Effects) {
        fx.timers.set(Timer::Status, now.mono + config.status_interval);
        self.last_sent = Some(status.clone());
        fx.send(AgentMessage::Status(status));
    }
}

/// Whether `new` tells the controller something `last` did not. The clock
/// offset wobbles with path delay, so only a move of [`CLOCK_OFFSET_STEP_MS`]
/// counts.
fn differs(last: &AgentStatus, new: &AgentStatus) -> bool {
    let offset_moved = match (last.clock_offset_ms, new.clock_offset_ms) {
        (Some(a), Some(b)) => (a - b).abs() >= CLOCK_OFFSET_STEP_MS,
        (a, b) => a.is_some() != b.is_some(),
    };
    offset_moved
        || last.disk_free_bytes != new.disk_free_bytes
        || last.cache_bytes != new.cache_bytes
        || last.amplifier != new.amplifier
        || last.now_playing != new.now_playing
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use dalaba_protocol::link::{AmplifierState, NowPlaying};

    use super::super::testing::{Harness, statuses};
    use super::super::{LinkDown, LinkState};
    use super::*;

    fn snapshot(disk_free_bytes: u64) -> DeviceSnapshot {
        DeviceSnapshot { disk_free_bytes, cache_bytes: 7, amplifier: AmplifierState::Off, now_playing: None }
    }

    #[test]
    fn status_follows_every_welcome() {
        let mut h = Harness::new();
        assert!(statuses(&h.device(snapshot(100))).is_empty(), "not connected yet");
        let out = h.connect(15_000);
        let sent = statuses(&out);
        assert_eq!(sent.len(), 1, "{out:?}");
        assert_eq!(sent[0].disk_free_bytes, 100);
        assert_eq!(sent[0].amplifier, AmplifierState::Off);
        h.down(LinkDown::Closed("reset".into()));
        h.fire_next();
        assert_eq!(statuses(&h.connect(15_000)).len(), 1, "sent again on the new link though unchanged");
    }

    #[test]
    fn status_goes_out_on_change_only() {
        let mut h = Harness::new();
        h.device(snapshot(100));
        h.connect(15_000);
        assert!(statuses(&h.device(snapshot(100))).is_empty());
        assert_eq!(statuses(&h.device(snapshot(90))).len(), 1);
        let playing = DeviceSnapshot {
            now_playing: Some(NowPlaying { title: "防汛通知".into(), since_ms: 5 }),
            ..snapshot(90)
        };
        assert_eq!(statuses(&h.device(playing.clone())).len(), 1);
        assert!(statuses(&h.device(playing)).is_empty());
    }

    #[test]
    fn first_reading_after_welcome_is_sent() {
        let mut h = Harness::new();
        assert!(statuses(&h.connect(15_000)).is_empty(), "nothing known to report");
        assert_eq!(statuses(&h.device(snapshot(1))).len(), 1);
    }

    #[test]
    fn status_repeats_every_interval_while_connected() {
        let mut h = Harness::new();
        h.device(snapshot(100));
        h.connect(3_600_000);
        // Heartbeats at a long interval keep the link quiet apart from statuses.
        let out = h.advance(Duration::from_secs(181));
        assert_eq!(statuses(&out).len(), 3, "{out:?}");
        h.device(snapshot(50));
        assert!(statuses(&h.advance(Duration::from_secs(59))).is_empty(), "a change restarts the interval");
    }

    #[test]
    fn status_stops_with_the_link() {
        let mut h = Harness::new();
        h.device(snapshot(100));
        h.connect(15_000);
        h.down(LinkDown::Closed("reset".into()));
        assert_eq!(h.core.link_state(), LinkState::Idle);
        assert!(statuses(&h.device(snapshot(1))).is_empty());
    }

    #[test]
    fn clock_offset_counts_as_a_change_only_when_it_moves_a_step() {
        let base = AgentStatus { clock_offset_ms: Some(-3000), ..AgentStatus::default() };
        let check = |offset: Option<i64>, expected: bool| {
            let new = AgentStatus { clock_offset_ms: offset, ..AgentStatus::default() };
            assert_eq!(differs(&base, &new), expected, "{offset:?}");
        };
        check(Some(-3000), false);
        check(Some(-2100), false);
        check(Some(-4001), true);
        check(Some(0), true);
        check(None, true);
    }

    #[test]
    fn status_carries_the_clock_offset() {
        let mut h = Harness::new();
        h.device(snapshot(100));
        h.connect(15_000);
        let out = h.fire_next();
        let hb = super::super::testing::heartbeats(&out).pop().expect("heartbeat");
        let sent = statuses(&h.ack(&hb, 3000, 100));
        assert_eq!(sent.len(), 1, "a newly known offset is a change");
        assert_eq!(sent[0].clock_offset_ms, Some(3000));
    }
}
