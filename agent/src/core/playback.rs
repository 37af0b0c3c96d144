//! Scheduled playback on the agent's clock: the applied plan, the item in
//! progress, the amplifier, and the timers that drive them.
//!
//! Every deadline is derived again from the state after each change
//! ([`Playback::arm`]): the next item's warm-up ([`Timer::AmplifierOn`], at
//! start − warm-up) and start ([`Timer::PlaybackStart`]), the end of the hold
//! after the last audio ([`Timer::AmplifierOff`], left unarmed when the next
//! warm-up begins within the hold, so back-to-back items keep the amplifier
//! on), and the safety nets ([`Timer::MaxOnTime`], [`Timer::PlaybackOverrun`]).
//! Plan times are wall times converted through the [`Timebase`], so a clock
//! jump only needs [`Playback::replan`].
//!
//! Rules:
//! - An item starts at its time, or as soon as the player is free, from its
//!   beginning (a notice heard from the middle is of little use). One more
//!   than the grace period late is not played but logged as missed, one event
//!   each: after a restart, a new plan, a clock jump or a long previous item.
//! - An entry with a play event is never played again, whatever the clock or
//!   the plan says later.
//! - An entry removed from the plan before it starts is forgotten; one that
//!   is playing plays on and is logged as usual.
//! - Missing content or a player failure logs the entry as failed; a failed
//!   amplifier switch does not stop the audio (`amplifier_confirmed: false`).
//! - A live session holds the loudspeaker ([`Playback::hold`]): the item in
//!   progress stops at once and is kept aside, nothing scheduled starts, the
//!   amplifier stays on. When the session ends ([`Playback::release`]) the
//!   item resumes where it stopped if the session ended inside the item's
//!   window — its planned end plus the grace period, the same slack a late
//!   item gets — and is otherwise logged as preempted. Items that became
//!   more than the grace period late meanwhile are logged as missed, naming
//!   the session.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use dalaba_protocol::link::{AgentMessage, AmplifierState, NowPlaying};
use dalaba_protocol::state::{
    DesiredState, PlanEntry, PlayEvent, PlayOutcome, PlaybackSettings, Priority, SyncReport, SyncState,
};

use super::content::Content;
use super::play_log::EventLog;
use super::timebase::Timebase;
use super::timer::Timer;
use super::{AmplifierCommand, CoreEvent, Ctx, Effects, Output, PersistRequest, Restore, plan};

/// How often the core compares its clocks and sweeps late items while a plan
/// has work left, even when nothing else happens.
pub const CLOCK_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// The player may take this long beyond an item's duration (plus a tenth of
/// it) before the core gives the item up.
pub const OVERRUN_SLACK: Duration = Duration::from_secs(30);

/// Logged entries older than this are forgotten when a plan no longer lists
/// them. A backward clock jump larger than this could replay them.
pub const LOGGED_RETENTION_MS: i64 = 48 * 3_600_000;

/// Longest failure reason kept in a play event.
const MAX_REASON_CHARS: usize = 200;

/// News from the player about one piece of audio (`part` of an entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlaybackNews {
    /// Audio began to come out.
    Started {
        /// The plan entry.
        entry_id: String,
        /// Which piece of the entry.
        part: usize,
        /// Wall clock when the first sample went out (Unix ms).
        at_ms: i64,
    },
    /// The piece played to its end.
    Finished {
        /// The plan entry.
        entry_id: String,
        /// Which piece of the entry.
        part: usize,
    },
    /// The piece was stopped (after [`super::Output::StopPlayback`]):
    /// how much of its audio went out, counted from where this start of it
    /// began. A player that cannot tell says nothing, and a preempted piece
    /// then resumes by the wall clock, which overshoots by any time the
    /// output stalled.
    Stopped {
        /// The plan entry.
        entry_id: String,
        /// Which piece of the entry.
        part: usize,
        /// Audio that went out, in ms.
        played_ms: u64,
    },
    /// The piece could not be played (decoding, audio device).
    Failed {
        /// The plan entry.
        entry_id: String,
        /// Which piece of the entry.
        part: usize,
        /// Why, for the operator.
        reason: String,
    },
}

/// Why entries are being checked for lateness: it words the missed reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Why {
    Restart,
    NewPlan,
    ClockJump(i64),
    Routine,
}

#[derive(Debug, Default)]
pub(super) struct Playback {
    /// [`super::CoreConfig::playback_lead`]: items go to the player this
    /// long before their time.
    lead: Duration,
    desired: Option<DesiredState>,
    current: Option<Current>,
    /// A live session holds the loudspeaker; how messages name it.
    held: Option<String>,
    /// The item a live session stopped, to resume or log when it ends.
    preempted: Option<Preempted>,
    amp: Amp,
    pub(super) log: EventLog,
    pub(super) content: Content,
}

/// The entry in progress. It keeps its own copy of the entry, so a new plan
/// that drops or moves it does not disturb it.
#[derive(Debug)]
struct Current {
    entry: PlanEntry,
    part: usize,
    phase: Phase,
    gains: Vec<f64>,
    started_ms: Option<i64>,
    amp_confirmed: bool,
    /// When the piece in progress started (Unix ms), and how far into its
    /// audio: what a preemption needs to resume it.
    part_started_ms: Option<i64>,
    part_offset_ms: u64,
    /// Where in the piece's audio its latest start began (a resumption
    /// begins past zero): the base for [`PlaybackNews::Stopped`].
    run_offset_ms: u64,
    /// Said in the play event when nothing else is (a resumption).
    note: Option<String>,
}

/// An item stopped by a live session.
#[derive(Debug)]
struct Preempted {
    current: Current,
    /// When it was stopped (Unix ms), and what stopped it.
    stopped_ms: i64,
    by: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// [`Output::StartPlayback`] went out; no news yet.
    Starting,
    /// The player said it started.
    Playing,
    /// Between two pieces: `part` starts at its time.
    Between,
}

/// The amplifier as commanded.
#[derive(Debug, Default)]
struct Amp {
    /// When it was switched on; `None` while off.
    on_since: Option<Instant>,
    /// Since when it has had nothing to play (switched on for a warm-up, or
    /// the last audio ended).
    idle_since: Option<Instant>,
    /// The driver confirmed the latest switch on.
    confirmed_on: bool,
}

impl Playback {
    /// The scheduled item whose audio is coming out, and since when.
    pub(super) fn now_playing(&self) -> Option<NowPlaying> {
        let c = self.current.as_ref().filter(|c| c.phase != Phase::Starting)?;
        Some(NowPlaying { title: c.entry.title.clone(), since_ms: c.started_ms? })
    }

    pub(super) fn with_lead(lead: Duration) -> Self {
        Playback { lead, ..Playback::default() }
    }

    /// The wall time up to which items are due now: now plus the lead.
    fn due_until(&self, ctx: Ctx<'_>) -> i64 {
        ctx.now.wall_ms.saturating_add(i64::try_from(self.lead.as_millis()).unwrap_or(i64::MAX))
    }

    pub(super) fn desired(&self) -> Option<&DesiredState> {
        self.desired.as_ref()
    }

    /// The shell's persisted state, right after the core was made.
    pub(super) fn restore(&mut self, ctx: Ctx<'_>, restored: Restore, fx: &mut Effects) {
        self.content.restore(restored.cached);
        self.log.restore(restored.play_log);
        if let Some(state) = restored.desired {
            let version = state.version;
            match plan::validate(state) {
                Ok(state) => {
                    self.content.request_missing(&state, fx);
                    self.desired = Some(state);
                }
                Err(reason) => fx.event(CoreEvent::PlanRejected { version, reason }),
            }
        }
        self.replan(ctx, Why::Restart, fx);
    }

    /// A desired state from the controller: applied if newer than the
    /// applied one; answered with a sync report either way.
    pub(super) fn apply(&mut self, ctx: Ctx<'_>, state: DesiredState, fx: &mut Effects) {
        self.content.forget_sent();
        let version = state.version;
        if self.desired.as_ref().is_some_and(|d| version <= d.version) {
            self.content.send_sync(ctx, self.desired.as_ref(), fx);
            return;
        }
        let state = match plan::validate(state) {
            Ok(state) => state,
            Err(reason) => {
                fx.event(CoreEvent::PlanRejected { version, reason: reason.clone() });
                if ctx.connected {
                    let state = SyncState::Failed { reason: format!("plan rejected: {reason}") };
                    fx.send(AgentMessage::Sync(SyncReport { version, state }));
                }
                return;
            }
        };
        let listed: BTreeSet<&str> = state.entries.iter().map(|e| e.id.as_str()).collect();
        let horizon = ctx.now.wall_ms.saturating_sub(LOGGED_RETENTION_MS);
        self.log.prune(|id, at| at >= horizon || listed.contains(id), fx);
        fx.out.push_back(Output::Persist(PersistRequest::DesiredState(Box::new(state.clone()))));
        fx.event(CoreEvent::PlanApplied { version, entries: state.entries.len() });
        self.content.request_missing(&state, fx);
        self.desired = Some(state);
        self.content.send_sync(ctx, self.desired.as_ref(), fx);
        self.replan(ctx, Why::NewPlan, fx);
    }

    pub(super) fn link_welcomed(&mut self, ctx: Ctx<'_>, fx: &mut Effects) {
        self.content.forget_sent();
        self.content.send_sync(ctx, self.desired.as_ref(), fx);
        self.log.link_welcomed(ctx, fx);
    }

    pub(super) fn link_lost(&mut self, fx: &mut Effects) {
        self.content.forget_sent();
        self.log.link_lost(fx);
    }

    pub(super) fn handle_content(&mut self, ctx: Ctx<'_>, news: super::ContentNews, fx: &mut Effects) {
        self.content.handle(ctx, news, self.desired.as_ref(), fx);
    }

    pub(super) fn handle_news(&mut self, ctx: Ctx<'_>, news: PlaybackNews, fx: &mut Effects) {
        if let PlaybackNews::Stopped { entry_id, part, played_ms } = news {
            // The player counted what went out: a better resume point than
            // the wall clock's, if the item is still waiting aside.
            if let Some(p) =
                self.preempted.as_mut().filter(|p| p.current.entry.id == entry_id && p.current.part == part)
            {
                let c = &mut p.current;
                c.part_offset_ms = c.run_offset_ms.saturating_add(played_ms);
            }
            return;
        }
        let Some(c) = self.current.as_mut() else { return };
        let ours = |id: &str, part: usize| c.entry.id == id && c.part == part && c.phase != Phase::Between;
        match news {
            PlaybackNews::Started { entry_id, part, at_ms } if ours(&entry_id, part) => {
                if c.phase == Phase::Starting && part == 0 && c.started_ms.is_none() {
                    c.started_ms = Some(at_ms);
                }
                if c.phase == Phase::Starting {
                    c.part_started_ms = Some(at_ms);
                }
                c.phase = Phase::Playing;
            }
            PlaybackNews::Finished { entry_id, part } if ours(&entry_id, part) => {
                if part + 1 < c.entry.plays.len() {
                    c.part += 1;
                    c.part_offset_ms = 0;
                    c.phase = Phase::Between;
                    fx.timers.clear(Timer::PlaybackOverrun);
                    self.arm(ctx, fx);
                } else {
                    self.finish(ctx, PlayOutcome::Completed, None, fx);
                }
            }
            PlaybackNews::Failed { entry_id, part, reason } if ours(&entry_id, part) => {
                self.finish(ctx, PlayOutcome::Failed, Some(reason), fx);
            }
            // News about something the core already gave up (stopped, or
            // before a restart): nothing to do.
            _ => {}
        }
    }

    pub(super) fn handle_amplifier(
        &mut self,
        command: AmplifierCommand,
        result: Result<AmplifierState, String>,
        fx: &mut Effects,
    ) {
        match result {
            Ok(AmplifierState::On) if command == AmplifierCommand::On && self.amp.on_since.is_some() => {
                self.amp.confirmed_on = true;
                if let Some(c) = self.current.as_mut() {
                    c.amp_confirmed = true;
                }
            }
            Ok(_) => {}
            Err(reason) => fx.event(CoreEvent::AmplifierFailed { command, reason }),
        }
    }

    /// A playback timer fell due (the core routes only these here).
    pub(super) fn handle_timer(&mut self, ctx: Ctx<'_>, timer: Timer, fx: &mut Effects) {
        match timer {
            Timer::EventsRetry => self.log.retry(ctx, fx),
            Timer::FetchRetry => self.content.retry(ctx, self.desired.as_ref(), fx),
            Timer::ClockCheck => self.replan(ctx, Why::Routine, fx),
            Timer::MaxOnTime => self.max_on_time(ctx, fx),
            Timer::PlaybackOverrun => {
                let reason = "the player did not finish in time".to_string();
                self.give_up(ctx, reason, fx);
            }
            Timer::AmplifierOff => {
                self.amp.switch_off(fx);
                self.arm(ctx, fx);
            }
            Timer::AmplifierOn => {
                self.amp.switch_on(ctx, fx);
                self.arm(ctx, fx);
            }
            Timer::PlaybackStart => self.start_due(ctx, fx),
            Timer::Reconnect
            | Timer::WelcomeTimeout
            | Timer::Heartbeat
            | Timer::Silence
            | Timer::Status
            | Timer::LiveMaxDuration
            | Timer::LiveSilence => {}
        }
    }

    /// Logs what became too late, then derives every playback deadline again.
    pub(super) fn replan(&mut self, ctx: Ctx<'_>, why: Why, fx: &mut Effects) {
        self.sweep(ctx, why, fx);
        self.arm(ctx, fx);
    }

    /// The scheduled item on the air: its priority, and how to name it.
    pub(super) fn on_air(&self) -> Option<(Priority, String)> {
        let c = self.current.as_ref()?;
        let title: String = c.entry.title.chars().take(80).collect();
        Some((c.entry.priority, format!("scheduled item “{title}” ({})", c.entry.id)))
    }

    /// Whether the driver confirmed the amplifier on.
    pub(super) fn amp_confirmed(&self) -> bool {
        self.amp.on_since.is_some() && self.amp.confirmed_on
    }

    /// A live session (`by`) takes the loudspeaker: the item in progress
    /// stops now and waits aside, the amplifier goes on unless it is on.
    /// Returns when the amplifier went on.
    pub(super) fn hold(&mut self, ctx: Ctx<'_>, by: String, fx: &mut Effects) -> Instant {
        if let Some(mut c) = self.current.take() {
            fx.out
                .push_back(Output::StopPlayback { entry_id: c.entry.id.clone(), reason: format!("preempted by {by}") });
            fx.timers.clear(Timer::PlaybackOverrun);
            // Where to resume: how far the piece got by the wall clock, or
            // its start; the player's own count corrects it when it comes
            // (`PlaybackNews::Stopped`).
            let played = match (c.phase, c.part_started_ms) {
                (Phase::Playing, Some(at)) => u64::try_from(ctx.now.wall_ms.saturating_sub(at)).unwrap_or(0),
                _ => 0,
            };
            if c.phase != Phase::Between {
                c.part_offset_ms = c.part_offset_ms.saturating_add(played);
            }
            c.phase = Phase::Between;
            self.preempted = Some(Preempted { current: c, stopped_ms: ctx.now.wall_ms, by: by.clone() });
        }
        self.held = Some(by);
        self.amp.switch_on(ctx, fx);
        self.arm(ctx, fx);
        self.amp.on_since.unwrap_or(ctx.now.mono)
    }

    /// The live session is over: the preempted item resumes inside its
    /// window or is logged as preempted, and the schedule runs again.
    pub(super) fn release(&mut self, ctx: Ctx<'_>, fx: &mut Effects) {
        // Items that became too late during the session name it.
        self.sweep(ctx, Why::Routine, fx);
        self.held = None;
        self.amp.audio_ended(ctx);
        if let Some(p) = self.preempted.take() {
            let entry = &p.current.entry;
            let planned_end = entry.plays.iter().map(|p| p.start_ms.saturating_add(millis(p.duration_ms))).max();
            let window_end = planned_end.unwrap_or(entry.start_ms).saturating_add(millis(self.settings().grace_ms));
            let away_s = ctx.now.wall_ms.saturating_sub(p.stopped_ms) / 1000;
            if ctx.now.wall_ms <= window_end {
                let mut c = p.current;
                c.note = Some(format!("interrupted {away_s} s by {}, then resumed", p.by));
                self.current = Some(c);
                self.start_part(ctx, fx);
            } else {
                let c = p.current;
                let reason = format!(
                    "preempted by {}; the session ended {away_s} s later, after the item's window (planned end + grace)",
                    p.by
                );
                let reason = reason.chars().take(MAX_REASON_CHARS).collect();
                let event = play_event(
                    &c.entry,
                    PlayOutcome::Preempted,
                    c.started_ms,
                    Some(p.stopped_ms),
                    Some(reason),
                    c.amp_confirmed,
                );
                self.log.record(ctx, vec![event], fx);
            }
        }
        self.replan(ctx, Why::Routine, fx);
    }

    fn settings(&self) -> PlaybackSettings {
        plan::bounded(self.desired.as_ref().map_or_else(PlaybackSettings::default, |d| d.playback))
    }

    /// The first entry of the plan that has neither an event nor started.
    fn next_upcoming(&self) -> Option<&PlanEntry> {
        self.desired.as_ref()?.entries.iter().find(|e| !self.log.is_logged(&e.id) && !self.in_hand(&e.id))
    }

    /// Whether the entry is in progress, or stopped by a live session.
    fn in_hand(&self, id: &str) -> bool {
        self.current.as_ref().is_some_and(|c| c.entry.id == id)
            || self.preempted.as_ref().is_some_and(|p| p.current.entry.id == id)
    }

    /// Logs every entry more than the grace period late as missed.
    fn sweep(&mut self, ctx: Ctx<'_>, why: Why, fx: &mut Effects) {
        let Some(desired) = &self.desired else { return };
        let grace = millis(self.settings().grace_ms);
        let now = ctx.now.wall_ms;
        let current = self.current.as_ref().map(|c| c.entry.id.as_str());
        let missed: Vec<PlayEvent> = desired
            .entries
            .iter()
            .take_while(|e| e.start_ms.saturating_add(grace) < now)
            .filter(|e| !self.log.is_logged(&e.id) && !self.in_hand(&e.id))
            .map(|e| {
                let late = now.saturating_sub(e.start_ms);
                let reason = match &self.held {
                    Some(by) => format!("too late: {} s, {by} held the loudspeaker", late / 1000),
                    None => why.missed(late, current.is_some()),
                };
                play_event(e, PlayOutcome::Missed, None, None, Some(reason), false)
            })
            .collect();
        self.log.record(ctx, missed, fx);
    }

    /// [`Timer::PlaybackStart`]: the next piece of the entry in progress, or
    /// the next entry.
    fn start_due(&mut self, ctx: Ctx<'_>, fx: &mut Effects) {
        let due_until = self.due_until(ctx);
        match &self.current {
            _ if self.held.is_some() => {}
            Some(c) if c.phase == Phase::Between => {
                if c.entry.plays.get(c.part).is_some_and(|p| p.start_ms <= due_until) {
                    self.start_part(ctx, fx);
                }
            }
            Some(_) => {}
            None => {
                self.sweep(ctx, Why::Routine, fx);
                let due = self.next_upcoming().filter(|e| e.start_ms <= due_until).cloned();
                if let Some(entry) = due {
                    self.start_entry(ctx, entry, fx);
                }
            }
        }
        self.arm(ctx, fx);
    }

    fn start_entry(&mut self, ctx: Ctx<'_>, entry: PlanEntry, fx: &mut Effects) {
        if let Some(p) = entry.plays.iter().find(|p| !self.content.is_cached(&p.sha256)) {
            let reason = format!("content {} is not in the cache", p.sha256);
            self.amp.audio_ended(ctx);
            let event = play_event(&entry, PlayOutcome::Failed, None, None, Some(reason), false);
            self.log.record(ctx, vec![event], fx);
            return;
        }
        let content = self.desired.as_ref().map(|d| d.content.as_slice()).unwrap_or_default();
        let gain = |sha: &str| content.iter().find(|c| c.sha256 == sha).map_or(0.0, |c| c.gain_db);
        let gains = entry.plays.iter().map(|p| gain(&p.sha256)).collect();
        let amp_confirmed = self.amp.confirmed_on;
        self.current = Some(Current {
            entry,
            part: 0,
            phase: Phase::Between,
            gains,
            started_ms: None,
            amp_confirmed,
            part_started_ms: None,
            part_offset_ms: 0,
            run_offset_ms: 0,
            note: None,
        });
        self.start_part(ctx, fx);
    }

    fn start_part(&mut self, ctx: Ctx<'_>, fx: &mut Effects) {
        let lead = self.lead;
        let Some(c) = self.current.as_mut() else { return };
        let Some(play) = c.entry.plays.get(c.part) else { return };
        c.phase = Phase::Starting;
        c.part_started_ms = None;
        let offset_ms = c.part_offset_ms.min(play.duration_ms);
        c.run_offset_ms = offset_ms;
        let duration_ms = play.duration_ms - offset_ms;
        fx.out.push_back(Output::StartPlayback {
            entry_id: c.entry.id.clone(),
            part: c.part,
            sha256: play.sha256.clone(),
            gain_db: c.gains.get(c.part).copied().unwrap_or(0.0),
            volume: c.entry.volume,
            offset_ms,
            at_ms: play.start_ms.max(ctx.now.wall_ms),
            duration_ms,
        });
        let duration = Duration::from_millis(duration_ms);
        let overrun = ctx.now.mono + lead + duration + duration / 10 + OVERRUN_SLACK;
        fx.timers.set(Timer::PlaybackOverrun, overrun);
    }

    /// Ends the entry in progress and logs it.
    fn finish(&mut self, ctx: Ctx<'_>, outcome: PlayOutcome, reason: Option<String>, fx: &mut Effects) {
        let Some(c) = self.current.take() else { return };
        fx.timers.clear(Timer::PlaybackOverrun);
        self.amp.audio_ended(ctx);
        let ended = c.started_ms.map(|_| ctx.now.wall_ms);
        let reason = reason.or(c.note).map(|r| r.chars().take(MAX_REASON_CHARS).collect());
        let event = play_event(&c.entry, outcome, c.started_ms, ended, reason, c.amp_confirmed);
        self.log.record(ctx, vec![event], fx);
        self.replan(ctx, Why::Routine, fx);
    }

    /// Stops the entry in progress, if any, and logs it as failed.
    fn give_up(&mut self, ctx: Ctx<'_>, reason: String, fx: &mut Effects) {
        match &self.current {
            Some(c) => {
                fx.out.push_back(Output::StopPlayback { entry_id: c.entry.id.clone(), reason: reason.clone() });
                self.finish(ctx, PlayOutcome::Failed, Some(reason), fx);
            }
            None => self.arm(ctx, fx),
        }
    }

    fn max_on_time(&mut self, ctx: Ctx<'_>, fx: &mut Effects) {
        let on_for = self.amp.on_since.map(|t| ctx.now.mono.saturating_duration_since(t)).unwrap_or_default();
        self.amp.switch_off(fx);
        fx.event(CoreEvent::AmplifierMaxOnTime { on_for });
        let reason = format!("the amplifier was on for {} s, longer than allowed; switched off", on_for.as_secs());
        self.give_up(ctx, reason, fx);
    }

    /// Derives every playback deadline from the state.
    fn arm(&self, ctx: Ctx<'_>, fx: &mut Effects) {
        let s = self.settings();
        let tb: &Timebase = ctx.clock;
        let next = self.next_upcoming();
        let warm_up = |e: &PlanEntry| tb.mono_at(e.start_ms.saturating_sub(millis(s.warmup_ms)));
        let early = |at: Instant| at.checked_sub(self.lead).unwrap_or(at);
        let start = match &self.current {
            _ if self.held.is_some() => None,
            None => next.map(|e| early(tb.mono_at(e.start_ms))),
            Some(c) if c.phase == Phase::Between => c.entry.plays.get(c.part).map(|p| early(tb.mono_at(p.start_ms))),
            Some(_) => None,
        };
        fx.timers.set_or_clear(Timer::PlaybackStart, start);
        let on = if self.amp.on_since.is_some() || self.held.is_some() { None } else { next.map(warm_up) };
        fx.timers.set_or_clear(Timer::AmplifierOn, on);
        let off = match (self.amp.idle_since, &self.current) {
            _ if self.held.is_some() => None,
            (Some(idle), None) => {
                // Back-to-back: the next warm-up begins within the hold.
                let off = idle + Duration::from_millis(s.hold_ms);
                next.is_none_or(|e| warm_up(e) > off).then_some(off)
            }
            _ => None,
        };
        fx.timers.set_or_clear(Timer::AmplifierOff, off);
        let max_on = self.amp.on_since.map(|t| t + Duration::from_millis(s.max_on_ms));
        fx.timers.set_or_clear(Timer::MaxOnTime, max_on);
        let busy = self.current.is_some() || next.is_some() || self.amp.on_since.is_some() || self.held.is_some();
        if !busy {
            fx.timers.clear(Timer::ClockCheck);
        } else if fx.timers.get(Timer::ClockCheck).is_none() {
            fx.timers.set(Timer::ClockCheck, ctx.now.mono + CLOCK_CHECK_INTERVAL);
        }
    }
}

impl Amp {
    fn switch_on(&mut self, ctx: Ctx<'_>, fx: &mut Effects) {
        if self.on_since.is_none() {
            *self = Amp { on_since: Some(ctx.now.mono), idle_since: Some(ctx.now.mono), confirmed_on: false };
            fx.out.push_back(Output::SwitchAmplifier(AmplifierCommand::On));
        }
    }

    fn switch_off(&mut self, fx: &mut Effects) {
        if self.on_since.is_some() {
            *self = Amp::default();
            fx.out.push_back(Output::SwitchAmplifier(AmplifierCommand::Off));
        }
    }

    fn audio_ended(&mut self, ctx: Ctx<'_>) {
        if self.on_since.is_some() {
            self.idle_since = Some(ctx.now.mono);
        }
    }
}

impl Why {
    fn missed(self, late_ms: i64, busy: bool) -> String {
        let late = late_ms / 1000;
        match self {
            Why::Restart => format!("agent was not running ({late} s late)"),
            Why::NewPlan => format!("too late: {late} s when the plan arrived"),
            Why::ClockJump(by_ms) => format!("too late: {late} s after the clock jumped by {:+} s", by_ms / 1000),
            Why::Routine if busy => format!("too late: {late} s, the previous item was still playing"),
            Why::Routine => format!("too late: {late} s"),
        }
    }
}

fn play_event(
    entry: &PlanEntry,
    outcome: PlayOutcome,
    started_ms: Option<i64>,
    ended_ms: Option<i64>,
    reason: Option<String>,
    amplifier_confirmed: bool,
) -> PlayEvent {
    PlayEvent {
        id: entry.id.clone(),
        schedule_id: entry.schedule_id,
        sha256: entry.plays.first().map(|p| p.sha256.clone()).unwrap_or_default(),
        scheduled_ms: entry.start_ms,
        started_ms,
        ended_ms,
        outcome,
        reason,
        amplifier_confirmed,
    }
}

fn millis(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use dalaba_protocol::link::ControllerMessage;

    use super::super::testing::{
        Harness, WALL0_MS, events, logged, plan, restored, sent, sha, starts, statuses, switches,
    };
    use super::super::{ContentNews, DeviceSnapshot};
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn syncs(out: &[Output]) -> Vec<SyncReport> {
        sent(out).into_iter().filter_map(|m| if let AgentMessage::Sync(r) = m { Some(r) } else { None }).collect()
    }

    fn persisted_plans(out: &[Output]) -> usize {
        out.iter().filter(|o| matches!(o, Output::Persist(PersistRequest::DesiredState(_)))).count()
    }

    fn fetches(out: &[Output]) -> usize {
        out.iter().filter(|o| matches!(o, Output::Fetch { .. })).count()
    }

    fn send_plan(h: &mut Harness, state: DesiredState) -> Vec<Output> {
        h.recv(ControllerMessage::DesiredState(state))
    }

    #[test]
    fn a_version_is_applied_once_and_every_desired_state_is_answered() {
        let mut h = Harness::new();
        h.connect(15_000);
        let out = send_plan(&mut h, plan(2, &[("a", 3600, 30)]));
        assert_eq!((persisted_plans(&out), fetches(&out)), (1, 1), "{out:?}");
        assert_eq!(syncs(&out), vec![SyncReport { version: 2, state: SyncState::Downloading { done: 0, total: 1 } }]);
        assert!(out.contains(&Output::Event(CoreEvent::PlanApplied { version: 2, entries: 1 })));

        // The same version again (a reconnect), then an older one: not
        // applied, but answered.
        for version in [2, 1] {
            let out = send_plan(&mut h, plan(version, &[("a", 3600, 30)]));
            assert_eq!((persisted_plans(&out), fetches(&out)), (0, 0), "{out:?}");
            assert_eq!(syncs(&out).iter().map(|r| r.version).collect::<Vec<_>>(), vec![2]);
        }
        assert_eq!(h.core.applied_version(), Some(2));

        let out = h.content(ContentNews::Cached { sha256: sha() });
        assert_eq!(syncs(&out), vec![SyncReport { version: 2, state: SyncState::UpToDate }]);
    }

    #[test]
    fn a_malformed_plan_is_rejected_and_the_applied_one_stays() {
        let mut h = Harness::new();
        h.connect(15_000);
        send_plan(&mut h, plan(2, &[("a", 3600, 30)]));
        let out = send_plan(&mut h, plan(3, &[("a", 3600, 30), ("a", 7200, 30)]));
        assert!(events(&out).iter().any(|e| matches!(e, CoreEvent::PlanRejected { version: 3, .. })), "{out:?}");
        let answer = syncs(&out);
        assert!(matches!(&answer[..], [SyncReport { version: 3, state: SyncState::Failed { .. } }]), "{answer:?}");
        assert_eq!(persisted_plans(&out), 0);
        assert_eq!(h.core.applied_version(), Some(2));
    }

    #[test]
    fn a_playing_entry_removed_from_the_plan_plays_on_and_one_removed_before_it_starts_is_forgotten() {
        let mut h = Harness::new();
        h.restore(restored(plan(1, &[("a", 10, 30), ("b", 100, 30)])));
        h.connect(15_000);
        let out = h.advance_to(10 * SEC);
        assert_eq!(starts(&out), vec![("a".to_string(), 0)]);
        h.playback(PlaybackNews::Started { entry_id: "a".into(), part: 0, at_ms: WALL0_MS + 10_000 });
        h.advance_to(20 * SEC);
        send_plan(&mut h, plan(2, &[("c", 200, 30)]));
        let out = h.advance_to(40 * SEC);
        assert!(logged(&out).is_empty() && starts(&out).is_empty(), "{out:?}");
        let out = h.playback(PlaybackNews::Finished { entry_id: "a".into(), part: 0 });
        let events = logged(&out);
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].outcome, events[0].started_ms, events[0].ended_ms),
            (PlayOutcome::Completed, Some(WALL0_MS + 10_000), Some(WALL0_MS + 40_000))
        );
        let out = h.advance_to(300 * SEC);
        assert_eq!(starts(&out), vec![("c".to_string(), 0)], "b was dropped before it started");
        assert!(logged(&out).iter().all(|e| e.id != "b"));
    }

    #[test]
    fn the_status_names_what_plays_while_it_plays() {
        let mut h = Harness::new();
        h.restore(restored(plan(1, &[("早间法治", 10, 30)])));
        h.connect(15_000);
        h.device(DeviceSnapshot::default());
        h.advance_to(10 * SEC);
        let playing = |out: &[Output]| statuses(out).last().map(|s| s.now_playing.clone());
        let out =
            h.playback(PlaybackNews::Started { entry_id: "早间法治".into(), part: 0, at_ms: WALL0_MS + 10_000 });
        assert_eq!(
            playing(&out),
            Some(Some(NowPlaying { title: "早间法治".into(), since_ms: WALL0_MS + 10_000 })),
            "{out:?}"
        );
        h.advance_to(40 * SEC);
        let out = h.playback(PlaybackNews::Finished { entry_id: "早间法治".into(), part: 0 });
        assert_eq!(playing(&out), Some(None), "{out:?}");
    }

    #[test]
    fn after_a_restart_a_late_item_within_grace_plays_at_once_and_an_older_one_is_missed() {
        let mut h = Harness::with_config(super::super::CoreConfig::new("ag-1", "0.1.0", Default::default()));
        h.drain();
        let out = h.restore(restored(plan(1, &[("old", -61, 30), ("late", -30, 30)])));
        let missed = logged(&out);
        assert_eq!(missed.len(), 1);
        assert_eq!(missed[0].id, "old");
        assert_eq!(missed[0].reason.as_deref(), Some("agent was not running (61 s late)"));
        let out = h.advance(Duration::ZERO);
        assert_eq!(switches(&out), vec![AmplifierCommand::On]);
        assert_eq!(starts(&out), vec![("late".to_string(), 0)]);
        let start = out.iter().find(|o| matches!(o, Output::StartPlayback { .. }));
        assert!(
            matches!(start, Some(Output::StartPlayback { offset_ms: 0, volume: 70, gain_db, .. }) if *gain_db == -1.5),
            "{start:?}"
        );
    }

    #[test]
    fn an_item_waiting_behind_a_long_one_is_missed_after_the_grace_period() {
        let mut h = Harness::new();
        h.restore(restored(plan(1, &[("long", 10, 300), ("next", 20, 30)])));
        h.advance_to(10 * SEC);
        h.playback(PlaybackNews::Started { entry_id: "long".into(), part: 0, at_ms: WALL0_MS + 10_000 });
        let out = h.advance_to(81 * SEC);
        assert!(logged(&out).is_empty(), "within grace it may still play");
        let out = h.advance_to(91 * SEC);
        let missed = logged(&out);
        assert_eq!(missed.len(), 1, "{out:?}");
        assert!(missed[0].reason.as_deref().is_some_and(|r| r.contains("previous item was still playing")));
    }

    #[test]
    fn the_event_says_whether_the_amplifier_confirmed() {
        let mut h = Harness::new();
        h.restore(restored(plan(1, &[("a", 10, 30), ("b", 100, 30)])));
        for (id, start, confirm) in [("a", 10, true), ("b", 100, false)] {
            let out = h.advance_to(Duration::from_secs(start - 2));
            assert_eq!(switches(&out).last(), Some(&AmplifierCommand::On));
            if confirm {
                h.confirm(AmplifierCommand::On);
            }
            h.advance_to(Duration::from_secs(start));
            h.playback(PlaybackNews::Started { entry_id: id.into(), part: 0, at_ms: h.now().wall_ms });
            h.advance_to(Duration::from_secs(start + 30));
            let out = h.playback(PlaybackNews::Finished { entry_id: id.into(), part: 0 });
            assert_eq!(logged(&out)[0].amplifier_confirmed, confirm, "{id}");
        }
    }

    #[test]
    fn with_a_lead_the_player_is_told_early_with_the_planned_instant() {
        let mut config = super::super::CoreConfig::new("ag-1", "0.1.0", Default::default());
        config.playback_lead = Duration::from_millis(500);
        let mut h = Harness::with_config(config);
        h.restore(restored(plan(1, &[("a", 10, 30)])));
        let out = h.advance_to(9 * SEC);
        assert!(starts(&out).is_empty(), "{out:?}");
        let out = h.advance_to(9 * SEC + Duration::from_millis(500));
        let start = out.iter().find(|o| matches!(o, Output::StartPlayback { .. }));
        assert!(
            matches!(start, Some(Output::StartPlayback { at_ms, .. }) if *at_ms == WALL0_MS + 10_000),
            "sent half a second early, naming the planned instant: {start:?}"
        );
        h.playback(PlaybackNews::Started { entry_id: "a".into(), part: 0, at_ms: WALL0_MS + 10_000 });
        h.advance_to(40 * SEC);
        let out = h.playback(PlaybackNews::Finished { entry_id: "a".into(), part: 0 });
        assert_eq!(logged(&out)[0].started_ms, Some(WALL0_MS + 10_000));

        // Without a lead (the default) a late item is started at once, and
        // its instant is now.
        let mut h = Harness::new();
        h.restore(restored(plan(1, &[("late", -5, 30)])));
        let out = h.advance(Duration::ZERO);
        let start = out.iter().find(|o| matches!(o, Output::StartPlayback { .. }));
        assert!(matches!(start, Some(Output::StartPlayback { at_ms, .. }) if *at_ms == WALL0_MS), "{start:?}");
    }

    #[test]
    fn news_about_an_entry_the_core_gave_up_is_ignored() {
        let mut h = Harness::new();
        h.restore(restored(plan(1, &[("a", 10, 30)])));
        let out = h.advance_to(10 * SEC + 63 * SEC);
        assert!(out.iter().any(|o| matches!(o, Output::StopPlayback { entry_id, .. } if entry_id == "a")), "{out:?}");
        assert_eq!(logged(&out)[0].outcome, PlayOutcome::Failed);
        let out = h.playback(PlaybackNews::Finished { entry_id: "a".into(), part: 0 });
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(h.core.play_log().pending.len(), 1);
    }
}
