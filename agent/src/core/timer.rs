//! Named deadlines (quinn-proto's timer table).
//!
//! Every pending deadline of the core has a name in [`Timer`]; the core's
//! next timeout is the earliest armed one. Naming them keeps "what happens
//! when" visible in one place: the link's timers, then the play log's and the
//! content's retries, then scheduled playback (amplifier warm-up and hold,
//! audio start, the safety nets) and the live session's ends.

use std::time::Instant;

/// A pending deadline of the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Open the next connection to the controller.
    Reconnect,
    /// The link is up but the controller has not welcomed the agent yet.
    WelcomeTimeout,
    /// Send the next heartbeat.
    Heartbeat,
    /// Nothing heard from the controller for too long: the link is dead.
    Silence,
    /// Send a periodic status even though nothing changed.
    Status,
    /// Play events sent on this link are still unacknowledged: send them again.
    EventsRetry,
    /// Ask again for content whose fetch failed.
    FetchRetry,
    /// Compare the wall clock with the monotonic clock and log items that
    /// became too late, even when no other input arrives.
    ClockCheck,
    /// The amplifier has been on for the longest time allowed: switch it off.
    MaxOnTime,
    /// The player neither finished nor failed the item in progress in time.
    PlaybackOverrun,
    /// The live session has played for its longest allowed time.
    LiveMaxDuration,
    /// No frame of the live session's stream for [`dalaba_protocol::live::LIVE_SILENCE_MS`].
    LiveSilence,
    /// The hold after the last audio is over: switch the amplifier off.
    AmplifierOff,
    /// The next item's warm-up begins: switch the amplifier on.
    AmplifierOn,
    /// The next item (or the next part of the item in progress) starts.
    PlaybackStart,
}

impl Timer {
    /// Every timer, in the order they fire when due at the same instant.
    /// The safety nets come before the switches, and the amplifier is
    /// switched on before audio due at the same instant starts.
    pub(crate) const ALL: [Timer; 15] = [
        Timer::Reconnect,
        Timer::WelcomeTimeout,
        Timer::Silence,
        Timer::Heartbeat,
        Timer::Status,
        Timer::EventsRetry,
        Timer::FetchRetry,
        Timer::ClockCheck,
        Timer::MaxOnTime,
        Timer::PlaybackOverrun,
        Timer::LiveMaxDuration,
        Timer::LiveSilence,
        Timer::AmplifierOff,
        Timer::AmplifierOn,
        Timer::PlaybackStart,
    ];

    /// The link's own timers, disarmed when the link goes.
    pub(crate) const LINK: [Timer; 3] = [Timer::WelcomeTimeout, Timer::Silence, Timer::Heartbeat];

    fn slot(self) -> usize {
        self as usize
    }
}

/// The deadline of every [`Timer`], armed or not.
#[derive(Debug, Default)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.slot()] = Some(at);
    }

    /// Arms `timer` at `at`, or disarms it for `None`.
    pub(crate) fn set_or_clear(&mut self, timer: Timer, at: Option<Instant>) {
        self.deadlines[timer.slot()] = at;
    }

    pub(crate) fn clear(&mut self, timer: Timer) {
        self.deadlines[timer.slot()] = None;
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer.slot()]
    }

    /// The earliest armed deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// The timers due at `now`, earliest first (ties in [`Timer::ALL`] order).
    pub(crate) fn due(&self, now: Instant) -> Vec<Timer> {
        let mut due: Vec<(Instant, Timer)> =
            Timer::ALL.iter().filter_map(|&t| self.get(t).filter(|&at| at <= now).map(|at| (at, t))).collect();
        // A stable sort keeps the ALL order among equal deadlines.
        due.sort_by_key(|&(at, _)| at);
        due.into_iter().map(|(_, t)| t).collect()
    }

    /// Whether `timer` is armed and due at `now`.
    pub(crate) fn is_due(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| at <= now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn next_is_the_minimum_over_armed_timers() {
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        assert_eq!(table.next(), None);
        table.set(Timer::Status, t0 + Duration::from_secs(60));
        table.set(Timer::Heartbeat, t0 + Duration::from_secs(15));
        table.set(Timer::Silence, t0 + Duration::from_secs(45));
        assert_eq!(table.next(), Some(t0 + Duration::from_secs(15)));
        table.clear(Timer::Heartbeat);
        assert_eq!(table.next(), Some(t0 + Duration::from_secs(45)));
        table.clear(Timer::Silence);
        table.clear(Timer::Status);
        assert_eq!(table.next(), None);
    }

    #[test]
    fn due_lists_expired_timers_earliest_first() {
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        table.set(Timer::Status, t0 + Duration::from_secs(2));
        table.set(Timer::Heartbeat, t0 + Duration::from_secs(1));
        table.set(Timer::Silence, t0 + Duration::from_secs(1));
        table.set(Timer::Reconnect, t0 + Duration::from_secs(9));
        assert_eq!(table.due(t0), vec![]);
        assert_eq!(table.due(t0 + Duration::from_secs(2)), vec![Timer::Silence, Timer::Heartbeat, Timer::Status]);
        assert!(table.is_due(Timer::Status, t0 + Duration::from_secs(2)));
        assert!(!table.is_due(Timer::Reconnect, t0 + Duration::from_secs(2)));
    }

    #[test]
    fn every_timer_has_its_own_slot() {
        for (i, t) in Timer::ALL.iter().enumerate() {
            assert!(t.slot() < Timer::ALL.len(), "{t:?}");
            assert!(Timer::ALL[..i].iter().all(|o| o.slot() != t.slot()), "{t:?}");
        }
    }
}
