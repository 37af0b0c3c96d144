//! Helpers for the core's unit tests: a hand-cranked clock, plans, and
//! output sorting.

use std::time::{Duration, Instant};

use dalaba_protocol::PROTOCOL_VERSION;
use dalaba_protocol::link::{AgentMessage, AmplifierState, ControllerMessage, Hardware, HeartbeatAck, Welcome};
use dalaba_protocol::state::{
    ContentInfo, DesiredState, PlanEntry, PlannedPlay, PlayEvent, PlaybackSettings, Priority,
};

use super::{
    AgentCore, AmplifierCommand, ContentNews, CoreConfig, CoreEvent, DeviceSnapshot, LinkDown, LiveNews, Now, Output,
    PlaybackNews, Restore,
};

/// Wall clock at the start of every test (2023-11-14T22:13:20Z).
pub(super) const WALL0_MS: i64 = 1_700_000_000_000;

/// One core and the time it lives at.
pub(super) struct Harness {
    pub(super) core: AgentCore,
    t0: Instant,
    pub(super) elapsed: Duration,
}

impl Harness {
    pub(super) fn new() -> Self {
        Self::with_config(CoreConfig::new("ag-1", "0.1.0", Hardware::default()))
    }

    pub(super) fn with_config(config: CoreConfig) -> Self {
        let t0 = Instant::now();
        let core = AgentCore::new(config, Now { mono: t0, wall_ms: WALL0_MS });
        Harness { core, t0, elapsed: Duration::ZERO }
    }

    pub(super) fn now(&self) -> Now {
        Now { mono: self.t0 + self.elapsed, wall_ms: WALL0_MS + self.elapsed.as_millis() as i64 }
    }

    pub(super) fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.core.poll_output()).collect()
    }

    /// Moves time forward by `d`, firing timers as they fall due.
    pub(super) fn advance(&mut self, d: Duration) -> Vec<Output> {
        let end = self.elapsed + d;
        let mut out = self.drain();
        while let Some(at) = self.core.poll_timeout() {
            let at = at - self.t0;
            if at > end {
                break;
            }
            self.elapsed = self.elapsed.max(at);
            self.core.handle_timeout(self.now());
            out.extend(self.drain());
        }
        self.elapsed = end;
        out
    }

    /// Moves time to the next deadline and fires it.
    pub(super) fn fire_next(&mut self) -> Vec<Output> {
        let at = self.core.poll_timeout().expect("a timer is armed") - self.t0;
        self.advance(at.saturating_sub(self.elapsed))
    }

    /// Time until the next deadline.
    pub(super) fn until_timeout(&self) -> Option<Duration> {
        self.core.poll_timeout().map(|at| (at - self.t0).saturating_sub(self.elapsed))
    }

    pub(super) fn up(&mut self) -> Vec<Output> {
        self.core.handle_link_up(self.now());
        self.drain()
    }

    pub(super) fn down(&mut self, why: LinkDown) -> Vec<Output> {
        self.core.handle_link_down(self.now(), why);
        self.drain()
    }

    pub(super) fn recv(&mut self, msg: ControllerMessage) -> Vec<Output> {
        self.core.handle_message(self.now(), msg);
        self.drain()
    }

    pub(super) fn device(&mut self, snapshot: DeviceSnapshot) -> Vec<Output> {
        self.core.handle_device(self.now(), snapshot);
        self.drain()
    }

    pub(super) fn restore(&mut self, restored: Restore) -> Vec<Output> {
        self.core.restore(self.now(), restored);
        self.drain()
    }

    pub(super) fn playback(&mut self, news: PlaybackNews) -> Vec<Output> {
        self.core.handle_playback(self.now(), news);
        self.drain()
    }

    /// The amplifier driver confirms `command`.
    pub(super) fn confirm(&mut self, command: AmplifierCommand) -> Vec<Output> {
        let state = match command {
            AmplifierCommand::On => AmplifierState::On,
            AmplifierCommand::Off => AmplifierState::Off,
        };
        self.core.handle_amplifier(self.now(), command, Ok(state));
        self.drain()
    }

    pub(super) fn live_frame(&mut self, stream_id: u32, seq: u32) -> Vec<Output> {
        self.core.handle_live_frame(self.now(), stream_id, seq);
        self.drain()
    }

    pub(super) fn live(&mut self, news: LiveNews) -> Vec<Output> {
        self.core.handle_live(self.now(), news);
        self.drain()
    }

    pub(super) fn content(&mut self, news: ContentNews) -> Vec<Output> {
        self.core.handle_content(self.now(), news);
        self.drain()
    }

    /// Moves time to `elapsed` since the start, firing timers on the way.
    pub(super) fn advance_to(&mut self, elapsed: Duration) -> Vec<Output> {
        self.advance(elapsed.saturating_sub(self.elapsed))
    }

    /// From any state before the link is up: link up and welcomed, with a
    /// heartbeat interval of `interval_ms`.
    pub(super) fn connect(&mut self, interval_ms: u64) -> Vec<Output> {
        let mut out = self.drain();
        out.extend(self.up());
        out.extend(self.recv(welcome(PROTOCOL_VERSION, interval_ms)));
        out
    }

    /// The acknowledgement a controller `offset_ms` ahead would send for a
    /// heartbeat, received `rtt_ms` after it was sent.
    pub(super) fn ack(&mut self, hb: &AgentMessage, offset_ms: i64, rtt_ms: u64) -> Vec<Output> {
        let AgentMessage::Heartbeat(hb) = hb else { panic!("not a heartbeat: {hb:?}") };
        let half = Duration::from_millis(rtt_ms / 2);
        let controller_time_ms = hb.sent_at_ms + half.as_millis() as i64 + offset_ms;
        let mut out = self.advance(Duration::from_millis(rtt_ms));
        out.extend(self.recv(ControllerMessage::HeartbeatAck(HeartbeatAck {
            seq: hb.seq,
            agent_sent_at_ms: hb.sent_at_ms,
            controller_time_ms,
        })));
        out
    }
}

pub(super) fn welcome(protocol_version: u32, heartbeat_interval_ms: u64) -> ControllerMessage {
    ControllerMessage::Welcome(Welcome {
        protocol_version,
        agent_id: "ag-1".into(),
        heartbeat_interval_ms,
        controller_time_ms: WALL0_MS,
    })
}

pub(super) fn sent(out: &[Output]) -> Vec<AgentMessage> {
    out.iter().filter_map(|o| if let Output::Send(m) = o { Some(m.clone()) } else { None }).collect()
}

pub(super) fn events(out: &[Output]) -> Vec<CoreEvent> {
    out.iter().filter_map(|o| if let Output::Event(e) = o { Some(e.clone()) } else { None }).collect()
}

pub(super) fn disconnects(out: &[Output]) -> Vec<String> {
    out.iter().filter_map(|o| if let Output::Disconnect { reason } = o { Some(reason.clone()) } else { None }).collect()
}

pub(super) fn heartbeats(out: &[Output]) -> Vec<AgentMessage> {
    sent(out).into_iter().filter(|m| matches!(m, AgentMessage::Heartbeat(_))).collect()
}

pub(super) fn statuses(out: &[Output]) -> Vec<dalaba_protocol::link::AgentStatus> {
    sent(out).into_iter().filter_map(|m| if let AgentMessage::Status(s) = m { Some(s) } else { None }).collect()
}

/// SHA-256 of the test content.
pub(super) fn sha() -> String {
    "aa".repeat(32)
}

/// A plan of version `version` with entries `(id, start after WALL0 in s,
/// duration in s)`, all playing [`sha`].
pub(super) fn plan(version: u64, entries: &[(&str, i64, u64)]) -> DesiredState {
    let entries = entries
        .iter()
        .map(|&(id, start_s, duration_s)| {
            let start_ms = WALL0_MS + start_s * 1000;
            PlanEntry {
                id: id.into(),
                schedule_id: 1,
                title: id.into(),
                nominal_start_ms: start_ms,
                start_ms,
                plays: vec![PlannedPlay { sha256: sha(), start_ms, duration_ms: duration_s * 1000 }],
                volume: 70,
                priority: Priority::Scheduled,
            }
        })
        .collect();
    let content = ContentInfo { sha256: sha(), size_bytes: 1000, duration_ms: 1000, gain_db: -1.5, title: "t".into() };
    DesiredState {
        version,
        generated_at_ms: WALL0_MS,
        from_ms: WALL0_MS,
        to_ms: WALL0_MS + 86_400_000,
        entries,
        content: vec![content],
        playback: PlaybackSettings::default(),
    }
}

/// What a shell would restore with `state` applied and its content cached.
pub(super) fn restored(state: DesiredState) -> Restore {
    Restore { desired: Some(state), cached: [sha()].into(), ..Restore::default() }
}

/// (entry id, part) of every playback started in `out`.
pub(super) fn starts(out: &[Output]) -> Vec<(String, usize)> {
    let starts = out.iter().filter_map(|o| match o {
        Output::StartPlayback { entry_id, part, .. } => Some((entry_id.clone(), *part)),
        _ => None,
    });
    starts.collect()
}

pub(super) fn switches(out: &[Output]) -> Vec<AmplifierCommand> {
    out.iter().filter_map(|o| if let Output::SwitchAmplifier(c) = o { Some(*c) } else { None }).collect()
}

/// The play events logged in `out`.
pub(super) fn logged(out: &[Output]) -> Vec<PlayEvent> {
    events(out).into_iter().filter_map(|e| if let CoreEvent::PlayLogged(p) = e { Some(p) } else { None }).collect()
}

/// The delay of the reconnect scheduled in `out`.
pub(super) fn reconnect_after(out: &[Output]) -> Option<Duration> {
    events(out)
        .into_iter()
        .find_map(|e| if let CoreEvent::ReconnectScheduled { after, .. } = e { Some(after) } else { None })
}
