//! Live and emergency sessions: signed commands in, the loudspeaker taken
//! from the schedule (or from a lower live session), reports out.
//!
//! A verified `live_start` ([`super::command`]) is arbitrated against what
//! holds the loudspeaker with the one rule of `dalaba_schedules::priority`:
//! a higher priority preempts at once, an equal or lower one is refused
//! `busy` with a message naming the holder. Quiet hours play no part here:
//! they shape the plan, never a live session, so an emergency is never
//! blocked by them.
//!
//! Taking the loudspeaker ([`Playback::hold`]) stops the scheduled item in
//! the same step (kept aside to resume), switches the amplifier on if it is
//! off, and the audio starts the command's warm-up after the amplifier went
//! on (at once if it has been on that long): [`Output::StartLive`] names that
//! instant, and the player reports [`LiveNews::Started`] when the first
//! sample leaves the output. The session reports `receiving`, `playing` and,
//! at its end, `ended` with its times and frame counts.
//!
//! A session ends by a matching `live_stop`, by [`LIVE_SILENCE_MS`] without
//! a frame of its stream, by its `max_duration_ms`, by the player failing, by
//! the amplifier's max on-time, or by a higher session; then the schedule
//! takes over again at once ([`Playback::release`]). A `live_start` for the
//! session already on the air (the controller sends a fresh one after a
//! reconnect) is answered with the session's state and changes nothing.
//!
//! Frames are counted here by sequence number (the agent's report does not
//! depend on the player): received, and lost as gaps, with a window of 64
//! for reordering and duplicates. A jump of more than [`MAX_COUNTED_GAP`]
//! frames is a restart of the sender's numbering, not that many losses.
//!
//! Messages that cannot go out while the link is down (refusals, reports) wait
//! in a small outbox and go out after the next welcome, followed by the
//! state of the session on the air.

use std::collections::VecDeque;
use std::time::Duration;

use dalaba_protocol::link::{AgentMessage, NowPlaying};
use dalaba_protocol::live::{
    CommandAction, CommandRefusal, LIVE_SILENCE_MS, LiveReport, LiveStart, LiveState, LiveStop, RefusalCode,
    SignedCommand,
};
use dalaba_protocol::state::Priority;
use dalaba_schedules::priority::{Arbitration, Priority as Rank, arbitrate};

use super::command::{CommandGate, PinnedKey};
use super::playback::Playback;
use super::timer::Timer;
use super::{CoreEvent, Ctx, Effects, Output, PersistRequest};

/// A gap in sequence numbers larger than this (a minute of 20 ms frames,
/// half a minute of the microphone's 10 ms) is
/// taken as the sender restarting its numbering, and not counted as lost.
pub const MAX_COUNTED_GAP: u32 = 3_000;

/// Longest warm-up a live command may ask for.
const MAX_LIVE_WARMUP_MS: u64 = 60_000;
/// Longest session the agent plays, whatever the command says.
const MAX_LIVE_DURATION_MS: u64 = 24 * 3_600_000;
/// Longest session id, in bytes.
const MAX_SESSION_ID_BYTES: usize = 200;
/// Most messages kept for the next link.
const MAX_OUTBOX: usize = 64;

/// News from the player about a live stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveNews {
    /// The first sample of the session left the output.
    Started {
        /// The session.
        session_id: String,
        /// Wall clock of that sample (Unix ms).
        at_ms: i64,
    },
    /// The stream cannot be played (no audio output).
    Failed {
        /// The session.
        session_id: String,
        /// Why, for the operator.
        reason: String,
    },
}

#[derive(Debug)]
pub(super) struct Live {
    gate: CommandGate,
    session: Option<Session>,
    outbox: VecDeque<AgentMessage>,
}

#[derive(Debug)]
struct Session {
    start: LiveStart,
    /// How messages name it: "emergency “防汛” (session L7)".
    holder: String,
    started_ms: Option<i64>,
    frames: FrameCount,
    /// The amplifier state last reported.
    amp_reported: bool,
}

/// Frames of one stream by sequence number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct FrameCount {
    highest: Option<u32>,
    /// Bit i: frame `highest - i` arrived.
    window: u64,
    pub(super) received: u64,
    pub(super) lost: u64,
}

/// Whether ending a session gives the loudspeaker back to the schedule.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    Release,
    /// A higher session takes over at once.
    HandOver,
}

impl Live {
    pub(super) fn new(key: PinnedKey) -> Self {
        Live { gate: CommandGate::new(key), session: None, outbox: VecDeque::new() }
    }

    pub(super) fn restore(&mut self, seen: super::SeenCommands) {
        self.gate.restore(seen);
    }

    /// A signed command from the controller. `offset_ms` is controller
    /// clock minus agent clock, when measured.
    pub(super) fn command(
        &mut self,
        ctx: Ctx<'_>,
        agent_id: &str,
        offset_ms: Option<i64>,
        signed: &SignedCommand,
        playback: &mut Playback,
        fx: &mut Effects,
    ) {
        let controller_now = ctx.now.wall_ms.saturating_add(offset_ms.unwrap_or(0));
        let command = match self.gate.admit(signed, agent_id, controller_now) {
            Ok(command) => command,
            Err(refusal) => return self.refuse(ctx, refusal, fx),
        };
        // Remembered on disk before it has any effect: a restart must not
        // carry it out again.
        fx.out.push_back(Output::Persist(PersistRequest::Commands(self.gate.seen().clone())));
        match command.action {
            CommandAction::LiveStart(start) => self.start(ctx, command.id, start, playback, fx),
            CommandAction::LiveStop(stop) => self.stop(ctx, stop, playback, fx),
        }
    }

    /// A binary frame of stream `stream_id` arrived.
    pub(super) fn frame(&mut self, ctx: Ctx<'_>, stream_id: u32, seq: u32, fx: &mut Effects) {
        let Some(s) = self.session.as_mut().filter(|s| s.start.stream_id == stream_id) else { return };
        s.frames.note(seq);
        fx.timers.set(Timer::LiveSilence, ctx.now.mono + Duration::from_millis(LIVE_SILENCE_MS));
    }

    pub(super) fn news(&mut self, ctx: Ctx<'_>, news: LiveNews, playback: &mut Playback, fx: &mut Effects) {
        match news {
            LiveNews::Started { session_id, at_ms } => {
                let Some(s) = self.session.as_mut().filter(|s| s.start.session_id == session_id) else { return };
                if s.started_ms.is_none() {
                    s.started_ms = Some(at_ms);
                    self.report(ctx, playback, fx);
                }
            }
            LiveNews::Failed { session_id, reason } => {
                if self.session.as_ref().is_some_and(|s| s.start.session_id == session_id) {
                    self.end(ctx, format!("the player failed: {reason}"), Then::Release, playback, fx);
                }
            }
        }
    }

    /// A live timer fell due, or the amplifier's max on-time (which has
    /// already switched it off).
    pub(super) fn timer(&mut self, ctx: Ctx<'_>, timer: Timer, playback: &mut Playback, fx: &mut Effects) {
        let reason = match timer {
            Timer::LiveSilence => "silence",
            Timer::LiveMaxDuration => "max duration",
            Timer::MaxOnTime => "the amplifier reached its max on-time",
            _ => return,
        };
        self.end(ctx, reason.to_string(), Then::Release, playback, fx);
    }

    /// The amplifier driver answered: a session that reported it off hears
    /// that it is on.
    pub(super) fn amplifier_changed(&mut self, ctx: Ctx<'_>, playback: &Playback, fx: &mut Effects) {
        if self.session.as_ref().is_some_and(|s| s.amp_reported != playback.amp_confirmed()) {
            self.report(ctx, playback, fx);
        }
    }

    /// A new link: what waited goes out, then the state of the session.
    pub(super) fn link_welcomed(&mut self, ctx: Ctx<'_>, playback: &Playback, fx: &mut Effects) {
        while let Some(msg) = self.outbox.pop_front() {
            fx.send(msg);
        }
        if self.session.is_some() {
            self.report(ctx, playback, fx);
        }
    }

    /// What the session on the air is called and since when its audio
    /// plays (`None` while it warms up).
    pub(super) fn now_playing(&self) -> Option<NowPlaying> {
        let s = self.session.as_ref()?;
        Some(NowPlaying { title: s.start.title.clone(), since_ms: s.started_ms? })
    }

    /// The session on the air: its id and stream.
    pub(super) fn on_air(&self) -> Option<(&str, u32)> {
        self.session.as_ref().map(|s| (s.start.session_id.as_str(), s.start.stream_id))
    }

    fn start(&mut self, ctx: Ctx<'_>, command_id: String, start: LiveStart, playback: &mut Playback, fx: &mut Effects) {
        let session_id = Some(start.session_id.clone());
        let refusal = |reason, message| CommandRefusal {
            command_id: Some(command_id.clone()),
            session_id: session_id.clone(),
            reason,
            message,
        };
        if let Err(why) = check(&start) {
            return self.refuse(ctx, refusal(RefusalCode::Invalid, why), fx);
        }
        let holder = describe(&start);
        if let Some(s) = &self.session {
            if s.start.session_id == start.session_id {
                // The controller's fresh start after a reconnect: the audio
                // goes on, the controller hears where it stands.
                fx.event(CoreEvent::LiveRejoined { session_id: start.session_id });
                return self.report(ctx, playback, fx);
            }
            if arbitrate(rank(s.start.priority), rank(start.priority)) != Arbitration::Preempt {
                let why = format!("the loudspeaker is held by {}", s.holder);
                return self.refuse(ctx, refusal(RefusalCode::Busy, why), fx);
            }
            self.end(ctx, format!("preempted by {holder}"), Then::HandOver, playback, fx);
        } else if let Some((priority, name)) = playback.on_air()
            && arbitrate(rank(priority), rank(start.priority)) != Arbitration::Preempt
        {
            let why = format!("the loudspeaker is held by {name}");
            return self.refuse(ctx, refusal(RefusalCode::Busy, why), fx);
        }
        let amp_on_since = playback.hold(ctx, holder.clone(), fx);
        let warm_up = Duration::from_millis(start.warmup_ms.min(MAX_LIVE_WARMUP_MS));
        let wait = (amp_on_since + warm_up).saturating_duration_since(ctx.now.mono);
        let at_ms = ctx.now.wall_ms.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
        fx.out.push_back(Output::StartLive {
            session_id: start.session_id.clone(),
            stream_id: start.stream_id,
            gain_db: start.gain_db,
            volume: start.volume,
            at_ms,
        });
        fx.timers.set(Timer::LiveSilence, ctx.now.mono + Duration::from_millis(LIVE_SILENCE_MS));
        let max = Duration::from_millis(start.max_duration_ms.min(MAX_LIVE_DURATION_MS));
        fx.timers.set(Timer::LiveMaxDuration, ctx.now.mono + max);
        fx.event(CoreEvent::LiveStarted {
            session_id: start.session_id.clone(),
            priority: start.priority,
            title: start.title.clone(),
        });
        self.session =
            Some(Session { start, holder, started_ms: None, frames: FrameCount::default(), amp_reported: false });
        self.report(ctx, playback, fx);
    }

    fn stop(&mut self, ctx: Ctx<'_>, stop: LiveStop, playback: &mut Playback, fx: &mut Effects) {
        if self.session.as_ref().is_some_and(|s| s.start.session_id == stop.session_id) {
            let reason =
                if stop.reason.is_empty() { "stopped".to_string() } else { format!("stopped: {}", stop.reason) };
            self.end(ctx, reason, Then::Release, playback, fx);
        } else {
            // Already over here (silence, a restart) or never started: the
            // stop has nothing to stop.
            fx.event(CoreEvent::LiveStopIgnored { session_id: stop.session_id });
        }
    }

    fn end(&mut self, ctx: Ctx<'_>, reason: String, then: Then, playback: &mut Playback, fx: &mut Effects) {
        let Some(s) = self.session.take() else { return };
        fx.timers.clear(Timer::LiveSilence);
        fx.timers.clear(Timer::LiveMaxDuration);
        fx.out.push_back(Output::StopLive { session_id: s.start.session_id.clone(), reason: reason.clone() });
        fx.event(CoreEvent::LiveEnded { session_id: s.start.session_id.clone(), reason: reason.clone() });
        let state = LiveState::Ended {
            started_ms: s.started_ms,
            ended_ms: ctx.now.wall_ms,
            frames_received: s.frames.received,
            frames_lost: s.frames.lost,
            reason,
        };
        self.send(ctx, AgentMessage::Live(LiveReport { session_id: s.start.session_id, state }), fx);
        if then == Then::Release {
            playback.release(ctx, fx);
        }
    }

    /// Sends the state of the session on the air.
    fn report(&mut self, ctx: Ctx<'_>, playback: &Playback, fx: &mut Effects) {
        let amplifier_on = playback.amp_confirmed();
        let Some(s) = self.session.as_mut() else { return };
        s.amp_reported = amplifier_on;
        let state = match s.started_ms {
            None => LiveState::Receiving { amplifier_on },
            Some(since_ms) => LiveState::Playing { since_ms, amplifier_on },
        };
        let msg = AgentMessage::Live(LiveReport { session_id: s.start.session_id.clone(), state });
        self.send(ctx, msg, fx);
    }

    fn refuse(&mut self, ctx: Ctx<'_>, refusal: CommandRefusal, fx: &mut Effects) {
        fx.event(CoreEvent::CommandRefused(refusal.clone()));
        self.send(ctx, AgentMessage::CommandRefused(refusal), fx);
    }

    fn send(&mut self, ctx: Ctx<'_>, msg: AgentMessage, fx: &mut Effects) {
        if ctx.connected {
            fx.send(msg);
        } else {
            if self.outbox.len() == MAX_OUTBOX {
                self.outbox.pop_front();
            }
            self.outbox.push_back(msg);
        }
    }
}

impl FrameCount {
    /// Counts frame `seq`.
    pub(super) fn note(&mut self, seq: u32) {
        let Some(highest) = self.highest else {
            *self = FrameCount { highest: Some(seq), window: 1, received: 1, lost: 0 };
            return;
        };
        let ahead = seq.wrapping_sub(highest);
        if ahead == 0 {
            return; // a duplicate
        }
        if ahead < 1 << 31 {
            if ahead <= MAX_COUNTED_GAP {
                self.lost += u64::from(ahead - 1);
            }
            self.window = if ahead >= 64 { 0 } else { self.window << ahead };
            self.window |= 1;
            self.highest = Some(seq);
            self.received += 1;
        } else {
            let behind = highest.wrapping_sub(seq);
            if behind < 64 && self.window & (1 << behind) == 0 {
                // A late frame fills a gap counted as lost.
                self.window |= 1 << behind;
                self.received += 1;
                self.lost = self.lost.saturating_sub(1);
            }
        }
    }
}

/// Why a start cannot be carried out as it stands.
fn check(start: &LiveStart) -> Result<(), String> {
    if start.session_id.is_empty() || start.session_id.len() > MAX_SESSION_ID_BYTES {
        return Err(format!("the session id is empty or longer than {MAX_SESSION_ID_BYTES} bytes"));
    }
    if !matches!(start.priority, Priority::Paging | Priority::Emergency) {
        return Err(format!("a live session is paging or emergency, not {:?}", start.priority));
    }
    if start.volume > 100 {
        return Err(format!("volume {} is over 100", start.volume));
    }
    if !start.gain_db.is_finite() {
        return Err("the gain is not a number".into());
    }
    if start.max_duration_ms == 0 {
        return Err("the session's max duration is zero".into());
    }
    Ok(())
}

/// "emergency “防汛紧急通知” (session L7)".
fn describe(start: &LiveStart) -> String {
    let title: String = start.title.chars().take(80).collect();
    let id: String = start.session_id.chars().take(80).collect();
    format!("{} “{title}” (session {id})", rank(start.priority))
}

/// The wire priority on the scale of the one preemption rule.
pub(super) fn rank(p: Priority) -> Rank {
    match p {
        Priority::Background => Rank::Background,
        Priority::Scheduled => Rank::Scheduled,
        Priority::Paging => Rank::Paging,
        Priority::Emergency => Rank::Emergency,
    }
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
