//! The play log: one event per occurrence, kept until the controller
//! acknowledges it (DESIGN.md principle 4).
//!
//! Every change goes out as [`PersistRequest::PlayLog`] before anything is
//! sent, so an event the controller may have seen is always on disk. While
//! the link is up one batch is in flight at a time; an acknowledgement drops
//! the events it names and lets the next batch go, and a batch still
//! unacknowledged after [`EVENTS_RETRY`] is sent again. A new link forgets what
//! was in flight and starts over from the oldest pending event: the
//! controller stores each id once however often it arrives.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use dalaba_protocol::codec;
use dalaba_protocol::link::AgentMessage;
use dalaba_protocol::state::{MAX_EVENTS_PER_BATCH, PlayEvent, PlayEvents};
use serde::{Deserialize, Serialize};

use super::timer::Timer;
use super::{CoreEvent, Ctx, Effects, Output, PersistRequest};

/// How long a batch of play events may stay unacknowledged before it is sent
/// again on the same link.
pub const EVENTS_RETRY: Duration = Duration::from_secs(30);

/// Largest encoded size of one batch, well under the controller's control
/// frame limit.
const MAX_BATCH_BYTES: usize = 48 * 1024;

/// The play log as the shell persists it and gives back at start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayLog {
    /// Every plan entry that has its event, with its scheduled start (Unix
    /// ms): these are never played again.
    pub logged: BTreeMap<String, i64>,
    /// Events the controller has not acknowledged yet, oldest first.
    pub pending: Vec<PlayEvent>,
}

#[derive(Debug, Default)]
pub(super) struct EventLog {
    log: PlayLog,
    /// Ids of the batch sent on this link and not yet acknowledged.
    in_flight: BTreeSet<String>,
}

impl EventLog {
    /// Takes the persisted log. An event still pending counts as logged even
    /// if the file lost the entry.
    pub(super) fn restore(&mut self, mut log: PlayLog) {
        for e in &log.pending {
            log.logged.entry(e.id.clone()).or_insert(e.scheduled_ms);
        }
        self.log = log;
        self.in_flight.clear();
    }

    pub(super) fn log(&self) -> &PlayLog {
        &self.log
    }

    pub(super) fn is_logged(&self, id: &str) -> bool {
        self.log.logged.contains_key(id)
    }

    /// Logs events: persisted, announced, and sent when the link allows.
    pub(super) fn record(&mut self, ctx: Ctx<'_>, events: Vec<PlayEvent>, fx: &mut Effects) {
        if events.is_empty() {
            return;
        }
        for e in events {
            self.log.logged.insert(e.id.clone(), e.scheduled_ms);
            fx.event(CoreEvent::PlayLogged(e.clone()));
            self.log.pending.push(e);
        }
        self.persist(fx);
        self.flush(ctx, fx);
    }

    /// Forgets logged entries that `keep` rejects, unless still pending.
    /// Persists when something went.
    pub(super) fn prune(&mut self, keep: impl Fn(&str, i64) -> bool, fx: &mut Effects) {
        let pending: BTreeSet<&str> = self.log.pending.iter().map(|e| e.id.as_str()).collect();
        let before = self.log.logged.len();
        self.log.logged.retain(|id, at| keep(id, *at) || pending.contains(id.as_str()));
        if self.log.logged.len() != before {
            self.persist(fx);
        }
    }

    /// The controller stored these events.
    pub(super) fn acked(&mut self, ctx: Ctx<'_>, ids: Vec<String>, fx: &mut Effects) {
        let ids: BTreeSet<String> = ids.into_iter().collect();
        let before = self.log.pending.len();
        self.log.pending.retain(|e| !ids.contains(&e.id));
        if self.log.pending.len() != before {
            self.persist(fx);
        }
        self.in_flight.retain(|id| !ids.contains(id));
        if self.in_flight.is_empty() {
            fx.timers.clear(Timer::EventsRetry);
            self.flush(ctx, fx);
        }
    }

    /// [`Timer::EventsRetry`]: the batch in flight was not acknowledged.
    pub(super) fn retry(&mut self, ctx: Ctx<'_>, fx: &mut Effects) {
        self.in_flight.clear();
        self.flush(ctx, fx);
    }

    pub(super) fn link_welcomed(&mut self, ctx: Ctx<'_>, fx: &mut Effects) {
        self.in_flight.clear();
        self.flush(ctx, fx);
    }

    pub(super) fn link_lost(&mut self, fx: &mut Effects) {
        self.in_flight.clear();
        fx.timers.clear(Timer::EventsRetry);
    }

    /// Sends the oldest pending events when connected and nothing is in flight.
    fn flush(&mut self, ctx: Ctx<'_>, fx: &mut Effects) {
        if !ctx.connected || !self.in_flight.is_empty() || self.log.pending.is_empty() {
            return;
        }
        let mut batch = Vec::new();
        let mut bytes = 0;
        for e in &self.log.pending {
            let size = codec::encode(e).len();
            if !batch.is_empty() && (batch.len() == MAX_EVENTS_PER_BATCH || bytes + size > MAX_BATCH_BYTES) {
                break;
            }
            bytes += size;
            batch.push(e.clone());
        }
        self.in_flight = batch.iter().map(|e| e.id.clone()).collect();
        fx.timers.set(Timer::EventsRetry, ctx.now.mono + EVENTS_RETRY);
        fx.send(AgentMessage::PlayEvents(PlayEvents { events: batch }));
    }

    fn persist(&self, fx: &mut Effects) {
        fx.out.push_back(Output::Persist(PersistRequest::PlayLog(self.log.clone())));
    }
}

#[cfg(test)]
mod tests {
    use dalaba_protocol::state::PlayOutcome;

    use super::super::testing::{Harness, sent};
    use super::super::timebase::Timebase;
    use super::*;

    fn event(n: usize) -> PlayEvent {
        PlayEvent {
            id: format!("7@{n}"),
            schedule_id: 7,
            sha256: "ab".repeat(32),
            scheduled_ms: n as i64,
            started_ms: None,
            ended_ms: None,
            outcome: PlayOutcome::Missed,
            reason: Some("agent was not running".into()),
            amplifier_confirmed: false,
        }
    }

    fn batches(out: &[Output]) -> Vec<Vec<String>> {
        sent(out)
            .into_iter()
            .filter_map(|m| match m {
                AgentMessage::PlayEvents(b) => Some(b.events.into_iter().map(|e| e.id).collect()),
                _ => None,
            })
            .collect()
    }

    fn drain(fx: &mut Effects) -> Vec<Output> {
        fx.out.drain(..).collect()
    }

    #[test]
    fn events_are_persisted_before_they_are_sent_in_bounded_batches() {
        let h = Harness::new();
        let tb = Timebase::new(h.now());
        let ctx = Ctx { now: h.now(), clock: &tb, connected: true };
        let mut fx = Effects::default();
        let mut log = EventLog::default();
        log.record(ctx, (0..250).map(event).collect(), &mut fx);
        let out = drain(&mut fx);
        let persist = out.iter().position(|o| matches!(o, Output::Persist(_))).expect("persisted");
        let send = out.iter().position(|o| matches!(o, Output::Send(_))).expect("sent");
        assert!(persist < send, "{out:?}");
        assert_eq!(batches(&out).iter().map(Vec::len).collect::<Vec<_>>(), vec![MAX_EVENTS_PER_BATCH]);

        // Acknowledging part of the batch sends nothing new.
        log.acked(ctx, (0..50).map(|n| format!("7@{n}")).collect(), &mut fx);
        assert!(batches(&drain(&mut fx)).is_empty());
        assert_eq!(log.log().pending.len(), 200);
        // The rest of the batch: the next one goes.
        log.acked(ctx, (50..100).map(|n| format!("7@{n}")).collect(), &mut fx);
        let next = batches(&drain(&mut fx));
        assert_eq!(next[0][0], "7@100");
        assert!(log.is_logged("7@0"), "acknowledged events stay logged");
    }

    #[test]
    fn unacknowledged_batches_go_again_and_a_new_link_starts_over() {
        let h = Harness::new();
        let tb = Timebase::new(h.now());
        let up = Ctx { now: h.now(), clock: &tb, connected: true };
        let down = Ctx { connected: false, ..up };
        let mut fx = Effects::default();
        let mut log = EventLog::default();
        log.record(down, vec![event(1), event(2)], &mut fx);
        assert!(batches(&drain(&mut fx)).is_empty(), "nothing sent without a link");
        log.link_welcomed(up, &mut fx);
        assert_eq!(batches(&drain(&mut fx)), vec![vec!["7@1".to_string(), "7@2".into()]]);
        assert!(fx.timers.get(Timer::EventsRetry).is_some());
        log.record(up, vec![event(3)], &mut fx);
        assert!(batches(&drain(&mut fx)).is_empty(), "one batch in flight at a time");
        log.retry(up, &mut fx);
        assert_eq!(batches(&drain(&mut fx))[0].len(), 3);
        log.link_lost(&mut fx);
        assert!(fx.timers.get(Timer::EventsRetry).is_none());
        log.link_welcomed(up, &mut fx);
        assert_eq!(batches(&drain(&mut fx))[0].len(), 3);
    }

    #[test]
    fn pruning_keeps_pending_events() {
        let mut fx = Effects::default();
        let mut log = EventLog::default();
        let mut persisted = PlayLog::default();
        persisted.logged.insert("old".into(), 1);
        persisted.pending.push(event(2));
        log.restore(persisted);
        assert!(log.is_logged("7@2"), "a pending event counts as logged");
        log.prune(|_, at| at > 100, &mut fx);
        assert!(!log.is_logged("old"));
        assert!(log.is_logged("7@2"));
        assert_eq!(drain(&mut fx).len(), 1, "persisted once");
    }
}
