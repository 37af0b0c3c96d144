//! The link state machine: connect, hello, welcome, heartbeats, silence,
//! refusals and reconnects with backoff.
//!
//! ```text
//!            Connect              link up + Hello           Welcome
//!   Idle ──(Reconnect)──▶ Connecting ──────▶ AwaitingWelcome ──────▶ Connected
//!    ▲                        │                   │                      │
//!    └──── link down, refusal, welcome timeout, silence, protocol error ─┘
//! ```
//!
//! Every way down goes through [`Link::go_idle`]: link timers disarmed, one
//! [`CoreEvent::LinkLost`], one reconnect scheduled.

use std::time::Duration;

use dalaba_protocol::link::{AgentMessage, ControllerMessage, Heartbeat, HeartbeatAck, Hello, Refusal, Welcome};
use dalaba_protocol::state::{DesiredState, PlayEventsAck};
use dalaba_protocol::{MIN_SUPPORTED_VERSION, PROTOCOL_VERSION, is_supported};

use super::backoff::{Backoff, Pace};
use super::timer::Timer;
use super::{CLOCK_OFFSET_STEP_MS, CoreConfig, CoreEvent, Effects, LinkDown, Now, Output};

/// Shortest heartbeat interval the agent accepts from a welcome; a hostile or
/// broken controller must not make it spin.
const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// Longest heartbeat interval the agent accepts from a welcome: mobile NATs
/// forget idle TCP connections after a few minutes.
const MAX_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(300);

/// Where the link to the controller stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// No link; waiting for the reconnect delay to pass.
    Idle,
    /// The shell is opening the connection.
    Connecting,
    /// The link is up and the hello sent; waiting for the welcome.
    AwaitingWelcome,
    /// Welcomed: heartbeats and statuses flow.
    Connected,
}

/// What the link did that the rest of the core cares about.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum LinkNews {
    /// The controller welcomed the agent.
    Welcomed,
    /// The clock offset moved by [`CLOCK_OFFSET_STEP_MS`] or more (or became
    /// known).
    ClockOffsetMoved,
    /// The link is gone.
    Lost,
    /// The controller sent the agent's desired state.
    DesiredState(Box<DesiredState>),
    /// The controller stored these play events.
    EventsAcked(PlayEventsAck),
    /// A signed command (live start or stop), not yet verified.
    Command(Box<dalaba_protocol::live::SignedCommand>),
}

#[derive(Debug)]
pub(super) struct Link {
    state: LinkState,
    backoff: Backoff,
    heartbeat_interval: Duration,
    /// Sequence number of the next heartbeat on this link.
    next_seq: u64,
    /// Highest acknowledged sequence number on this link.
    acked_seq: u64,
    clock_offset_ms: Option<i64>,
    /// The offset last announced with [`CoreEvent::ClockOffset`].
    announced_offset_ms: Option<i64>,
}

impl Link {
    pub(super) fn new(config: &CoreConfig) -> Self {
        Link {
            state: LinkState::Idle,
            backoff: Backoff::new(config.backoff_initial, config.backoff_max, config.jitter_seed),
            heartbeat_interval: config.default_heartbeat_interval,
            next_seq: 1,
            acked_seq: 0,
            clock_offset_ms: None,
            announced_offset_ms: None,
        }
    }

    pub(super) fn state(&self) -> LinkState {
        self.state
    }

    pub(super) fn clock_offset_ms(&self) -> Option<i64> {
        self.clock_offset_ms
    }

    /// Opens the first connection.
    pub(super) fn start(&mut self, fx: &mut Effects) {
        self.state = LinkState::Connecting;
        fx.out.push_back(Output::Connect);
    }

    pub(super) fn handle_up(&mut self, config: &CoreConfig, now: Now, fx: &mut Effects) {
        match self.state {
            LinkState::Connecting => {
                self.state = LinkState::AwaitingWelcome;
                self.next_seq = 1;
                self.acked_seq = 0;
                fx.send(AgentMessage::Hello(Hello {
                    protocol_version: PROTOCOL_VERSION,
                    agent_version: config.agent_version.clone(),
                    hardware: config.hardware.clone(),
                }));
                fx.timers.set(Timer::WelcomeTimeout, now.mono + config.welcome_timeout);
            }
            // A link the core did not ask for (the shell reported late): close
            // it; the reconnect already scheduled stands.
            LinkState::Idle => fx.out.push_back(Output::Disconnect { reason: "unexpected link while idle".into() }),
            // The shell holds one link at a time; a second "up" is a shell bug
            // that changes nothing here.
            LinkState::AwaitingWelcome | LinkState::Connected => {}
        }
    }

    pub(super) fn handle_down(
        &mut self,
        config: &CoreConfig,
        now: Now,
        why: LinkDown,
        fx: &mut Effects,
    ) -> Option<LinkNews> {
        match self.state {
            // The core already gave this link up when it asked to disconnect.
            LinkState::Idle => None,
            LinkState::Connecting | LinkState::AwaitingWelcome | LinkState::Connected => {
                let pace = match why {
                    LinkDown::AuthRejected(_) => Pace::Slow,
                    LinkDown::ConnectFailed(_) | LinkDown::Closed(_) | LinkDown::ProtocolError(_) => Pace::Normal,
                };
                Some(self.go_idle(config, now, why.to_string(), pace, fx))
            }
        }
    }

    pub(super) fn handle_message(
        &mut self,
        config: &CoreConfig,
        now: Now,
        msg: ControllerMessage,
        fx: &mut Effects,
    ) -> Option<LinkNews> {
        match (self.state, msg) {
            // Left over from a link already given up (or a shell bug): nobody
            // is listening.
            (LinkState::Idle | LinkState::Connecting, _) => None,
            (LinkState::AwaitingWelcome | LinkState::Connected, ControllerMessage::Refused(refusal)) => {
                Some(self.refused(config, now, refusal, fx))
            }
            (LinkState::AwaitingWelcome, ControllerMessage::Welcome(welcome)) => {
                Some(self.welcomed(config, now, welcome, fx))
            }
            (LinkState::AwaitingWelcome, ControllerMessage::HeartbeatAck(_)) => {
                Some(self.abandon(config, now, "protocol error: heartbeat_ack before welcome".into(), Pace::Normal, fx))
            }
            (LinkState::Connected, ControllerMessage::Welcome(_)) => {
                Some(self.abandon(config, now, "protocol error: second welcome on one link".into(), Pace::Normal, fx))
            }
            (LinkState::Connected, ControllerMessage::HeartbeatAck(ack)) => {
                self.arm_silence(config, now, fx);
                self.acknowledged(now, ack, fx)
            }
            (
                LinkState::AwaitingWelcome,
                ControllerMessage::DesiredState(_)
                | ControllerMessage::PlayEventsAck(_)
                | ControllerMessage::Command(_),
            ) => {
                Some(self.abandon(config, now, "protocol error: plan traffic before welcome".into(), Pace::Normal, fx))
            }
            // Anything from the controller shows the link is alive.
            (LinkState::Connected, ControllerMessage::DesiredState(state)) => {
                self.arm_silence(config, now, fx);
                Some(LinkNews::DesiredState(Box::new(state)))
            }
            (LinkState::Connected, ControllerMessage::PlayEventsAck(ack)) => {
                self.arm_silence(config, now, fx);
                Some(LinkNews::EventsAcked(ack))
            }
            (LinkState::Connected, ControllerMessage::Command(command)) => {
                self.arm_silence(config, now, fx);
                Some(LinkNews::Command(Box::new(command)))
            }
        }
    }

    pub(super) fn handle_timer(
        &mut self,
        config: &CoreConfig,
        now: Now,
        timer: Timer,
        fx: &mut Effects,
    ) -> Option<LinkNews> {
        match timer {
            Timer::Reconnect => {
                self.state = LinkState::Connecting;
                fx.out.push_back(Output::Connect);
                None
            }
            Timer::WelcomeTimeout => {
                let reason = format!("no welcome within {:?}", config.welcome_timeout);
                Some(self.abandon(config, now, reason, Pace::Normal, fx))
            }
            Timer::Silence => {
                fx.event(CoreEvent::LinkSilent);
                let reason = format!("controller silent for {:?}", self.silence_limit(config));
                Some(self.abandon(config, now, reason, Pace::Normal, fx))
            }
            Timer::Heartbeat => {
                let seq = self.next_seq;
                self.next_seq += 1;
                fx.send(AgentMessage::Heartbeat(Heartbeat { seq, sent_at_ms: now.wall_ms }));
                fx.timers.set(Timer::Heartbeat, now.mono + self.heartbeat_interval);
                None
            }
            // Not link timers; the core routes them elsewhere.
            Timer::Status
            | Timer::EventsRetry
            | Timer::FetchRetry
            | Timer::ClockCheck
            | Timer::MaxOnTime
            | Timer::PlaybackOverrun
            | Timer::LiveMaxDuration
            | Timer::LiveSilence
            | Timer::AmplifierOff
            | Timer::AmplifierOn
            | Timer::PlaybackStart => None,
        }
    }

    fn welcomed(&mut self, config: &CoreConfig, now: Now, welcome: Welcome, fx: &mut Effects) -> LinkNews {
        if !is_supported(welcome.protocol_version) {
            let reason = format!(
                "controller speaks protocol version {}, this agent supports {MIN_SUPPORTED_VERSION} to {PROTOCOL_VERSION}",
                welcome.protocol_version
            );
            return self.abandon(config, now, reason, Pace::Slow, fx);
        }
        self.state = LinkState::Connected;
        self.backoff.reset();
        self.heartbeat_interval =
            Duration::from_millis(welcome.heartbeat_interval_ms).clamp(MIN_HEARTBEAT_INTERVAL, MAX_HEARTBEAT_INTERVAL);
        fx.timers.clear(Timer::WelcomeTimeout);
        fx.timers.set(Timer::Heartbeat, now.mono + self.heartbeat_interval);
        self.arm_silence(config, now, fx);
        fx.event(CoreEvent::Connected { protocol_version: welcome.protocol_version });
        LinkNews::Welcomed
    }

    fn refused(&mut self, config: &CoreConfig, now: Now, refusal: Refusal, fx: &mut Effects) -> LinkNews {
        let reason = format!("refused by the controller: {}", refusal.message);
        fx.event(CoreEvent::Refused { reason: refusal.reason, message: refusal.message });
        self.abandon(config, now, reason, Pace::Slow, fx)
    }

    fn acknowledged(&mut self, now: Now, ack: HeartbeatAck, fx: &mut Effects) -> Option<LinkNews> {
        // Only the first answer to a heartbeat we sent measures the clock; a
        // duplicate or a stray would measure a round trip that never happened.
        if ack.seq <= self.acked_seq || ack.seq >= self.next_seq {
            return None;
        }
        self.acked_seq = ack.seq;
        let offset = ack.clock_offset_ms(now.wall_ms);
        self.clock_offset_ms = Some(offset);
        let moved = self.announced_offset_ms.is_none_or(|last| (offset - last).abs() >= CLOCK_OFFSET_STEP_MS);
        if !moved {
            return None;
        }
        self.announced_offset_ms = Some(offset);
        fx.event(CoreEvent::ClockOffset { ms: offset });
        Some(LinkNews::ClockOffsetMoved)
    }

    /// The core gives the link up: the shell closes it.
    fn abandon(&mut self, config: &CoreConfig, now: Now, reason: String, pace: Pace, fx: &mut Effects) -> LinkNews {
        fx.out.push_back(Output::Disconnect { reason: reason.clone() });
        self.go_idle(config, now, reason, pace, fx)
    }

    /// Every way down ends here.
    fn go_idle(&mut self, config: &CoreConfig, now: Now, reason: String, pace: Pace, fx: &mut Effects) -> LinkNews {
        for timer in Timer::LINK {
            fx.timers.clear(timer);
        }
        self.state = LinkState::Idle;
        self.heartbeat_interval = config.default_heartbeat_interval;
        fx.event(CoreEvent::LinkLost { reason });
        let (after, attempt) = self.backoff.next_delay(pace);
        fx.timers.set(Timer::Reconnect, now.mono + after);
        fx.event(CoreEvent::ReconnectScheduled { after, attempt });
        LinkNews::Lost
    }

    fn arm_silence(&self, config: &CoreConfig, now: Now, fx: &mut Effects) {
        fx.timers.set(Timer::Silence, now.mono + self.silence_limit(config));
    }

    fn silence_limit(&self, config: &CoreConfig) -> Duration {
        self.heartbeat_interval * config.silence_factor.max(1)
    }
}

#[cfg(test)]
mod tests {
    use dalaba_protocol::link::{Hardware, RefusalReason};

    use super::super::CoreConfig;
    use super::super::testing::{Harness, disconnects, events, heartbeats, reconnect_after, sent, welcome};
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn is_lost(out: &[Output]) -> bool {
        events(out).iter().any(|e| matches!(e, CoreEvent::LinkLost { .. }))
    }

    #[test]
    fn link_up_says_hello_and_arms_the_welcome_timer() {
        let mut h = Harness::new();
        h.drain();
        let out = h.up();
        assert_eq!(
            sent(&out),
            vec![AgentMessage::Hello(Hello {
                protocol_version: PROTOCOL_VERSION,
                agent_version: "0.1.0".into(),
                hardware: Hardware::default(),
            })]
        );
        assert_eq!(h.core.link_state(), LinkState::AwaitingWelcome);
        assert_eq!(h.until_timeout(), Some(Duration::from_secs(10)));
    }

    #[test]
    fn welcome_connects_and_heartbeats_follow_at_its_interval() {
        let mut h = Harness::new();
        let out = h.connect(20_000);
        assert_eq!(h.core.link_state(), LinkState::Connected);
        assert!(events(&out).contains(&CoreEvent::Connected { protocol_version: PROTOCOL_VERSION }));
        let mut seqs = vec![];
        for i in 1..=3 {
            let out = h.fire_next();
            assert_eq!(h.elapsed, 20 * SEC * i);
            let hb = heartbeats(&out).pop().expect("a heartbeat");
            let AgentMessage::Heartbeat(beat) = hb else { unreachable!() };
            assert_eq!(beat.sent_at_ms, h.now().wall_ms, "stamped when sent");
            seqs.push(beat.seq);
            h.ack(&hb, 0, 100);
        }
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    }

    #[test]
    fn welcome_interval_is_clamped() {
        let mut h = Harness::new();
        h.connect(0);
        assert_eq!(heartbeats(&h.advance(SEC)).len(), 1, "a zero interval means the floor of 1 s");
        let mut h = Harness::new();
        h.connect(u64::MAX);
        assert_eq!(heartbeats(&h.advance(300 * SEC)).len(), 1, "a huge interval means the ceiling of 5 min");
    }

    #[test]
    fn no_welcome_in_time_disconnects_and_reconnects() {
        let mut h = Harness::new();
        h.drain();
        h.up();
        let out = h.advance(10 * SEC);
        assert_eq!(disconnects(&out).len(), 1, "{out:?}");
        assert_eq!(h.core.link_state(), LinkState::Idle);
        let after = reconnect_after(&out).expect("reconnect scheduled");
        assert!(after >= SEC / 2 && after <= SEC, "{after:?}");
        assert_eq!(h.fire_next(), vec![Output::Connect]);
        assert_eq!(h.core.link_state(), LinkState::Connecting);
    }

    #[test]
    fn wrong_messages_for_the_state_are_protocol_errors() {
        let ack = ControllerMessage::HeartbeatAck(HeartbeatAck { seq: 1, agent_sent_at_ms: 0, controller_time_ms: 0 });
        let mut h = Harness::new();
        h.drain();
        h.up();
        let out = h.recv(ack);
        assert!(disconnects(&out)[0].contains("heartbeat_ack before welcome"), "{out:?}");
        assert_eq!(h.core.link_state(), LinkState::Idle);

        let mut h = Harness::new();
        h.connect(15_000);
        let out = h.recv(welcome(PROTOCOL_VERSION, 15_000));
        assert!(disconnects(&out)[0].contains("second welcome"), "{out:?}");
        assert_eq!(h.core.link_state(), LinkState::Idle);

        let mut h = Harness::new();
        h.drain();
        h.up();
        let out = h.recv(ControllerMessage::PlayEventsAck(PlayEventsAck { ids: vec![] }));
        assert!(disconnects(&out)[0].contains("before welcome"), "{out:?}");
        assert_eq!(h.core.link_state(), LinkState::Idle);
    }

    #[test]
    fn unsupported_welcome_version_waits_long() {
        let mut h = Harness::new();
        h.drain();
        h.up();
        let out = h.recv(welcome(PROTOCOL_VERSION + 1, 15_000));
        assert!(disconnects(&out)[0].contains("protocol version"), "{out:?}");
        assert!(reconnect_after(&out).expect("scheduled") >= Duration::from_millis(22_500));
    }

    #[test]
    fn refusal_is_logged_and_waits_long() {
        let mut h = Harness::new();
        h.drain();
        h.up();
        let out = h.recv(ControllerMessage::Refused(Refusal {
            reason: RefusalReason::UnsupportedVersion,
            message: "speak version 2".into(),
        }));
        assert!(events(&out).contains(&CoreEvent::Refused {
            reason: RefusalReason::UnsupportedVersion,
            message: "speak version 2".into()
        }));
        assert_eq!(disconnects(&out).len(), 1);
        assert!(reconnect_after(&out).expect("scheduled") >= Duration::from_millis(22_500));
    }

    #[test]
    fn auth_rejected_waits_long_and_connect_failure_does_not() {
        let mut h = Harness::new();
        h.drain();
        let out = h.down(LinkDown::AuthRejected("401".into()));
        assert!(reconnect_after(&out).expect("scheduled") >= Duration::from_millis(22_500));
        assert!(disconnects(&out).is_empty(), "the shell already closed it");
        h.fire_next();
        let out = h.down(LinkDown::ConnectFailed("refused".into()));
        assert!(reconnect_after(&out).expect("scheduled") <= Duration::from_secs(30));
    }

    #[test]
    fn backoff_grows_across_failures_and_restarts_after_welcome() {
        let mut h = Harness::new();
        h.drain();
        let mut delays = vec![];
        for _ in 0..8 {
            let out = h.down(LinkDown::ConnectFailed("no route".into()));
            delays.push(reconnect_after(&out).expect("scheduled"));
            assert_eq!(h.fire_next(), vec![Output::Connect]);
        }
        assert!(delays[0] <= SEC && delays[4] >= 8 * SEC && delays[7] >= 15 * SEC, "{delays:?}");
        assert!(delays.iter().all(|d| *d <= 30 * SEC), "{delays:?}");
        h.connect(15_000);
        let out = h.down(LinkDown::Closed("reset".into()));
        assert!(reconnect_after(&out).expect("scheduled") <= SEC);
        let attempt = events(&out).into_iter().find_map(|e| match e {
            CoreEvent::ReconnectScheduled { attempt, .. } => Some(attempt),
            _ => None,
        });
        assert_eq!(attempt, Some(1));
    }

    #[test]
    fn silence_declares_the_link_dead() {
        let mut h = Harness::new();
        h.connect(15_000);
        let out = h.advance(44 * SEC);
        assert_eq!(heartbeats(&out).len(), 2);
        assert!(!is_lost(&out));
        let out = h.advance(SEC);
        assert!(events(&out).contains(&CoreEvent::LinkSilent), "{out:?}");
        assert!(disconnects(&out)[0].contains("silent"), "{out:?}");
        assert_eq!(h.core.link_state(), LinkState::Idle);
        assert!(h.until_timeout().expect("reconnect armed") <= SEC);
    }

    #[test]
    fn acknowledgements_keep_the_link_alive() {
        let mut h = Harness::new();
        h.connect(15_000);
        for _ in 0..20 {
            let out = h.fire_next();
            assert!(!is_lost(&out), "{out:?}");
            let hb = heartbeats(&out).pop().expect("a heartbeat each interval");
            assert!(!is_lost(&h.ack(&hb, 0, 200)));
        }
        assert_eq!(h.elapsed, Duration::from_millis(300_200));
        assert_eq!(h.core.link_state(), LinkState::Connected);
    }

    #[test]
    fn clock_offset_comes_from_acknowledgements_and_duplicates_are_harmless() {
        let mut h = Harness::new();
        h.connect(15_000);
        assert_eq!(h.core.clock_offset_ms(), None);
        let hb = heartbeats(&h.fire_next()).pop().expect("heartbeat");
        let out = h.ack(&hb, -3000, 400);
        assert_eq!(h.core.clock_offset_ms(), Some(-3000));
        assert!(events(&out).contains(&CoreEvent::ClockOffset { ms: -3000 }));
        // The same acknowledgement again, later: it measures nothing new.
        let out = h.ack(&hb, 5000, 2000);
        assert_eq!(h.core.clock_offset_ms(), Some(-3000));
        assert!(events(&out).is_empty() && disconnects(&out).is_empty(), "{out:?}");
        assert_eq!(h.core.link_state(), LinkState::Connected);
        // A small wobble updates the value without an event.
        let hb = heartbeats(&h.fire_next()).pop().expect("heartbeat");
        let out = h.ack(&hb, -2900, 400);
        assert_eq!(h.core.clock_offset_ms(), Some(-2900));
        assert!(events(&out).is_empty(), "{out:?}");
    }

    #[test]
    fn link_down_after_a_disconnect_is_ignored() {
        let mut h = Harness::new();
        h.drain();
        h.up();
        let out = h.advance(10 * SEC);
        let deadline = h.core.poll_timeout();
        assert_eq!(disconnects(&out).len(), 1);
        let out = h.down(LinkDown::Closed("closed by agent".into()));
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(h.core.poll_timeout(), deadline, "the reconnect already scheduled stands");
        let out = h.recv(welcome(PROTOCOL_VERSION, 15_000));
        assert!(out.is_empty(), "a late message for a dead link is ignored: {out:?}");
    }

    #[test]
    fn a_link_up_while_idle_is_closed() {
        let mut h = Harness::new();
        h.drain();
        h.down(LinkDown::ConnectFailed("x".into()));
        let out = h.up();
        assert_eq!(disconnects(&out).len(), 1);
        assert_eq!(h.core.link_state(), LinkState::Idle);
    }

    #[test]
    fn heartbeat_sequence_restarts_per_link() {
        let mut h = Harness::new();
        h.connect(15_000);
        let first = heartbeats(&h.advance(15 * SEC));
        h.down(LinkDown::Closed("reset".into()));
        h.fire_next();
        h.connect(15_000);
        let again = heartbeats(&h.advance(15 * SEC));
        assert_eq!(first.len(), 1);
        assert!(
            matches!((&first[0], &again[0]), (AgentMessage::Heartbeat(a), AgentMessage::Heartbeat(b)) if a.seq == 1 && b.seq == 1)
        );
    }

    #[test]
    fn a_zero_silence_factor_still_allows_one_interval() {
        let mut config = CoreConfig::new("ag-1", "0.1.0", Hardware::default());
        config.silence_factor = 0;
        let mut h = Harness::with_config(config);
        h.connect(15_000);
        assert!(!is_lost(&h.advance(14 * SEC)));
        assert!(is_lost(&h.advance(SEC)));
    }
}
