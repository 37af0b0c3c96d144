//! Operator alarms (运维告警): conditions of a village's board that need a
//! person — offline too long, the amplifier not confirming, the clock off,
//! the disk nearly full, sync failing for an hour, an emergency refused.
//! ("Alerts" are something else: CAP emergency alerts from upstream
//! systems, `crate::alerts`.)
//!
//! An alarm is raised when its condition starts and cleared (never
//! deleted) when it ends; at most one is open per (kind, agent), which the
//! store's unique index guarantees even across restarts. An operator may
//! acknowledge it (who and when are kept). Every raise, clear and
//! acknowledgement goes to the event stream (`alarm`), and every raise and
//! clear to the webhook.
//!
//! # Layout
//! - `model`: [`Alarm`], [`AlarmKind`], [`AlarmView`] (the API's shape).
//! - [`rules`]: the pure rule function, [`rules::evaluate`], and what each
//!   kind means.
//! - [`webhook`]: the signed POST, its queue and retries.
//! - this file: [`Alarms`], which gathers the facts (the store's agents and
//!   open alarms, presence, what links and live sessions told it), applies
//!   the rules and records the changes; and [`run`], its loop (every
//!   [`AlarmSettings::evaluate_every`], a second after presence changes, at
//!   once on a live refusal).
//!
//! What the controller only learns from events — runs of unconfirmed items,
//! when a sync started failing, emergency refusals — is kept in memory,
//! and recalled at start by [`run`]: the runs of unconfirmed items from the
//! stored play events of the last week ([`Alarms::recall_plays`]), each
//! agent's latest emergency refusal or played session from the stored live
//! session reports of the last week ([`Alarms::recall_emergencies`]), and
//! when each sync started failing from the store's `sync_failing` table,
//! which the service keeps as it notices ([`Alarms::recall_sync`]). What
//! none of these tells, the rules treat as unknown, which keeps open
//! alarms open rather than clearing or raising them again.

mod model;
pub mod rules;
pub mod webhook;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use dalaba_protocol::link::AmplifierState;
use dalaba_protocol::state::{PlayEvent, SyncState};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use model::{Alarm, AlarmFilter, AlarmKind, AlarmView, NewAlarm};
use rules::{AgentFacts, Change, EmergencyFacts, Link, OpenAlarm, PlayFacts, StatusFacts, SyncFacts, Thresholds};
use webhook::{Payload, Queue, WebhookSettings};

use crate::api::{ApiError, AppState};
use crate::live::{AgentState, LiveEvent, LivePriority};
use crate::store::{Store, StoreError};

/// How often open intervals of the presence history are checkpointed.
const PRESENCE_CHECKPOINT: Duration = Duration::from_secs(300);

/// How alarms are evaluated and sent (`[alarms]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmSettings {
    /// The rules' thresholds.
    pub thresholds: Thresholds,
    /// How often the rules run on the timer.
    pub evaluate_every: Duration,
    /// Where raises and clears are posted, if anywhere.
    pub webhook: Option<WebhookSettings>,
}

impl Default for AlarmSettings {
    fn default() -> Self {
        AlarmSettings { thresholds: Thresholds::default(), evaluate_every: Duration::from_secs(20), webhook: None }
    }
}

/// The alarm service: what it remembers from events, the event stream's
/// sender and the webhook queue. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Alarms {
    settings: AlarmSettings,
    started_ms: i64,
    memory: Mutex<Memory>,
    /// Serialises evaluations (the timer, presence changes, tests).
    evaluating: tokio::sync::Mutex<()>,
    events: broadcast::Sender<AlarmView>,
    queue: Option<Queue>,
    deliveries: Mutex<Option<tokio::sync::mpsc::Receiver<Payload>>>,
}

/// How far back the recall at start reads play events and live sessions.
const RECALL_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
const DAY_MS: i64 = 24 * 3600 * 1000;
/// At most this many of the latest live sessions are read back at start.
const RECALL_SESSIONS: usize = 500;

/// `facts` after the items of `events` that started, in the order they
/// started: the latest confirmed, or how many in a row were not.
fn fold_plays(facts: PlayFacts, events: &[PlayEvent]) -> PlayFacts {
    let mut started: Vec<(i64, bool)> =
        events.iter().filter_map(|e| e.started_ms.map(|at| (at, e.amplifier_confirmed))).collect();
    started.sort_unstable();
    started.into_iter().fold(facts, |facts, (_, confirmed)| match (facts, confirmed) {
        (_, true) => PlayFacts::Confirmed,
        (PlayFacts::Unconfirmed { in_a_row }, false) => PlayFacts::Unconfirmed { in_a_row: in_a_row.saturating_add(1) },
        (_, false) => PlayFacts::Unconfirmed { in_a_row: 1 },
    })
}

/// How many agents each recall at start found something for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recalled {
    /// Runs of played items.
    pub plays: usize,
    /// Emergency refusals or played sessions.
    pub emergencies: usize,
    /// Failing syncs.
    pub syncs: usize,
}

/// What the service learnt from events, per agent.
#[derive(Debug, Default)]
struct Memory {
    plays: HashMap<String, PlayFacts>,
    sync_failing: HashMap<String, (i64, String)>,
    emergency: HashMap<String, EmergencyFacts>,
    last_online_ms: HashMap<String, i64>,
}

impl Memory {
    /// Forgets agents no longer enrolled.
    fn forget_all_but(&mut self, agents: &[crate::store::Agent]) {
        let enrolled: std::collections::HashSet<&str> = agents.iter().map(|a| a.id.as_str()).collect();
        self.plays.retain(|id, _| enrolled.contains(id.as_str()));
        self.sync_failing.retain(|id, _| enrolled.contains(id.as_str()));
        self.emergency.retain(|id, _| enrolled.contains(id.as_str()));
        self.last_online_ms.retain(|id, _| enrolled.contains(id.as_str()));
    }
}

impl Alarms {
    /// A service started at `now_ms` (offline time is never counted from
    /// before it: the controller cannot know).
    pub fn new(settings: AlarmSettings, now_ms: i64) -> Alarms {
        let (events, _) = broadcast::channel(256);
        let (queue, deliveries) = match settings.webhook {
            Some(_) => {
                let (queue, rx) = Queue::new();
                (Some(queue), Some(rx))
            }
            None => (None, None),
        };
        Alarms {
            settings,
            started_ms: now_ms,
            memory: Mutex::new(Memory::default()),
            evaluating: tokio::sync::Mutex::new(()),
            events,
            queue,
            deliveries: Mutex::new(deliveries),
        }
    }

    /// Subscribes to raises, clears and acknowledgements.
    pub fn subscribe(&self) -> broadcast::Receiver<AlarmView> {
        self.events.subscribe()
    }

    /// Notes the items an agent reported playing (from its play events,
    /// once stored): a run of items started without the relay confirmed.
    pub fn note_play_events(&self, agent_id: &str, events: &[PlayEvent]) {
        let mut memory = self.lock();
        let before = memory.plays.get(agent_id).copied().unwrap_or(PlayFacts::Unknown);
        let after = fold_plays(before, events);
        if after != PlayFacts::Unknown {
            memory.plays.insert(agent_id.to_owned(), after);
        }
    }

    /// Recalls each enrolled agent's latest run of items from its play
    /// events stored in the week before `now_ms`, for agents with nothing
    /// noted yet (events arriving meanwhile are newer). Returns how many
    /// agents it recalled.
    pub fn recall_plays(&self, store: &dyn Store, now_ms: i64) -> Result<usize, StoreError> {
        let since = now_ms.saturating_sub(RECALL_WINDOW.as_millis() as i64);
        let mut recalled = 0;
        for agent in store.agents()? {
            // Scheduled up to a day ahead still counts: a clock may be off.
            let stored = store.play_events(agent.village_id, since, now_ms.saturating_add(DAY_MS))?;
            let events: Vec<PlayEvent> =
                stored.into_iter().filter(|e| e.agent_id == agent.id).map(|e| e.event).collect();
            let facts = fold_plays(PlayFacts::Unknown, &events);
            if facts != PlayFacts::Unknown {
                self.lock().plays.entry(agent.id).or_insert(facts);
                recalled += 1;
            }
        }
        Ok(recalled)
    }

    /// Recalls, at start, what the service knew before: every recall below.
    pub fn recall(&self, store: &dyn Store, now_ms: i64) -> Result<Recalled, StoreError> {
        Ok(Recalled {
            plays: self.recall_plays(store, now_ms)?,
            emergencies: self.recall_emergencies(store, now_ms)?,
            syncs: self.recall_sync(store)?,
        })
    }

    /// Recalls each enrolled agent's latest say in an emergency from the
    /// live sessions stored in the week before `now_ms`, newest first: a
    /// refusal of an emergency start, or any session it played. Agents with
    /// something noted already keep it (it is newer). Returns how many
    /// agents it recalled.
    pub fn recall_emergencies(&self, store: &dyn Store, now_ms: i64) -> Result<usize, StoreError> {
        let since = now_ms.saturating_sub(RECALL_WINDOW.as_millis() as i64);
        let enrolled: std::collections::HashSet<String> = store.agents()?.into_iter().map(|a| a.id).collect();
        let mut recalled: HashMap<String, EmergencyFacts> = HashMap::new();
        let sessions = store.live_sessions(RECALL_SESSIONS)?;
        for listed in sessions.iter().filter(|s| s.started_at_ms >= since) {
            let Some(session) = store.live_session(&listed.session_id)? else { continue };
            for agent in session.agents.iter().filter(|a| enrolled.contains(&a.agent_id)) {
                let facts = match &agent.state {
                    AgentState::Refused { message, .. } if session.priority == LivePriority::Emergency => {
                        EmergencyFacts::Refused { session_id: session.session_id.clone(), message: message.clone() }
                    }
                    _ if agent.playing_from_ms.is_some() => EmergencyFacts::Fine,
                    _ => continue,
                };
                recalled.entry(agent.agent_id.clone()).or_insert(facts);
            }
        }
        let mut memory = self.lock();
        let n = recalled.len();
        for (agent, facts) in recalled {
            memory.emergency.entry(agent).or_insert(facts);
        }
        Ok(n)
    }

    /// Recalls when each enrolled agent's sync started failing, as the
    /// service noted it before a restart, and forgets the rows of agents no
    /// longer enrolled. Returns how many agents it recalled.
    pub fn recall_sync(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let enrolled: std::collections::HashSet<String> = store.agents()?.into_iter().map(|a| a.id).collect();
        let mut n = 0;
        for (agent, since_ms, reason) in store.sync_failing()? {
            if enrolled.contains(&agent) {
                self.lock().sync_failing.entry(agent).or_insert((since_ms, reason));
                n += 1;
            } else {
                store.set_sync_failing(&agent, None)?;
            }
        }
        Ok(n)
    }

    /// Notes an agent's state in a live session; returns whether it may
    /// change an alarm (then the caller evaluates).
    pub async fn note_live(&self, st: &AppState, event: &LiveEvent) -> bool {
        let LiveEvent::Agent { session_id, agent } = event else { return false };
        let facts = match &agent.state {
            AgentState::Playing { .. } => EmergencyFacts::Fine,
            AgentState::Refused { message, .. } => {
                let priority = match st.live.session(st, session_id).await {
                    Ok(session) => session.priority,
                    Err(e) => {
                        tracing::warn!(session = %session_id, error = %e, "cannot read a refused live session");
                        return false;
                    }
                };
                if priority != LivePriority::Emergency {
                    return false;
                }
                EmergencyFacts::Refused { session_id: session_id.clone(), message: message.clone() }
            }
            _ => return false,
        };
        let mut memory = self.lock();
        let old = memory.emergency.insert(agent.agent_id.clone(), facts.clone());
        old.as_ref() != Some(&facts)
    }

    /// Runs the rules once now and records what changed; returns the
    /// changed alarms.
    pub async fn evaluate(&self, st: &AppState) -> Result<Vec<AlarmView>, ApiError> {
        let _one_at_a_time = self.evaluating.lock().await;
        let now = st.clock.now_ms();
        let (agents, open) = st.db(|s| Ok((s.agents()?, s.open_alarms()?))).await?;
        let views = st.presence.views();
        // Syncs that started or stopped failing, to keep across restarts.
        let mut sync_noted: Vec<(String, Option<(i64, String)>)> = Vec::new();
        let facts: Vec<AgentFacts> = {
            let mut memory = self.lock();
            memory.forget_all_but(&agents);
            agents
                .iter()
                .map(|agent| {
                    let live = views.get(&agent.id);
                    let link = match live {
                        Some(_) => {
                            memory.last_online_ms.insert(agent.id.clone(), now);
                            Link::Online
                        }
                        None => {
                            let last_seen = [agent.last_seen_ms, memory.last_online_ms.get(&agent.id).copied()]
                                .into_iter()
                                .flatten()
                                .max();
                            let since = last_seen.unwrap_or(agent.enrolled_at_ms).max(self.started_ms);
                            Link::Offline { since_ms: since.max(agent.enrolled_at_ms), last_seen_ms: last_seen }
                        }
                    };
                    let status = live.and_then(|l| l.status.as_ref()).map(|s| StatusFacts {
                        clock_offset_ms: s.clock_offset_ms,
                        disk_free_bytes: s.disk_free_bytes,
                        amplifier_fault: s.amplifier == AmplifierState::Fault,
                    });
                    let sync = match live.and_then(|l| l.sync.as_ref()) {
                        None => SyncFacts::Unknown,
                        Some(report) => match &report.state {
                            SyncState::Failed { reason } => {
                                let since_ms = match memory.sync_failing.get(&agent.id) {
                                    Some((since_ms, _)) => *since_ms,
                                    None => {
                                        memory.sync_failing.insert(agent.id.clone(), (now, reason.clone()));
                                        sync_noted.push((agent.id.clone(), Some((now, reason.clone()))));
                                        now
                                    }
                                };
                                SyncFacts::Failing { since_ms, reason: reason.clone() }
                            }
                            _ => {
                                if memory.sync_failing.remove(&agent.id).is_some() {
                                    sync_noted.push((agent.id.clone(), None));
                                }
                                SyncFacts::Healthy
                            }
                        },
                    };
                    AgentFacts {
                        agent_id: agent.id.clone(),
                        village_id: agent.village_id,
                        link,
                        status,
                        sync,
                        plays: memory.plays.get(&agent.id).copied().unwrap_or(PlayFacts::Unknown),
                        driver_confirms: driver_confirms(&agent.hardware_json),
                        emergency: memory.emergency.get(&agent.id).cloned().unwrap_or(EmergencyFacts::Unknown),
                    }
                })
                .collect()
        };
        if !sync_noted.is_empty() {
            let noted = st
                .db(move |s| {
                    for (agent, failing) in &sync_noted {
                        s.set_sync_failing(agent, failing.as_ref().map(|(since, why)| (*since, why.as_str())))?;
                    }
                    Ok(())
                })
                .await;
            if let Err(e) = noted {
                // The alarm still works until a restart, which then waits
                // the whole threshold again.
                tracing::warn!(error = %e, "cannot keep when syncs started failing");
            }
        }
        let open: Vec<OpenAlarm> =
            open.into_iter().map(|a| OpenAlarm { id: a.id, kind: a.kind, agent_id: a.agent_id }).collect();
        let changes = rules::evaluate(&facts, &open, now, &self.settings.thresholds);
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let (changed, regions) = st
            .db(move |s| {
                let mut changed = Vec::new();
                for change in &changes {
                    let alarm = match change {
                        Change::Raise(new) => s.raise_alarm(new)?,
                        Change::Clear { id } => s.clear_alarm(*id, now)?,
                    };
                    changed.extend(alarm);
                }
                Ok((changed, s.regions()?))
            })
            .await?;
        let views: Vec<AlarmView> = changed.iter().map(|a| AlarmView::of(a, &regions)).collect();
        for view in &views {
            st.metrics.alarm(view.kind.as_str(), view.state);
            tracing::info!(alarm = view.id, kind = view.kind.as_str(), agent = %view.agent_id,
                village = %view.village_name, state = view.state, "alarm");
            self.publish(st, view, true);
        }
        Ok(views)
    }

    /// Acknowledges an alarm for `by`; `None` if it does not exist.
    pub async fn acknowledge(&self, st: &AppState, id: i64, by: String) -> Result<Option<AlarmView>, ApiError> {
        let now = st.clock.now_ms();
        let (alarm, regions) = st.db(move |s| Ok((s.acknowledge_alarm(id, now, &by)?, s.regions()?))).await?;
        let view = alarm.map(|a| AlarmView::of(&a, &regions));
        if let Some(view) = &view {
            self.publish(st, view, false);
        }
        Ok(view)
    }

    /// Sends a change to the event stream and, for raises and clears, to
    /// the webhook.
    fn publish(&self, st: &AppState, view: &AlarmView, to_webhook: bool) {
        // Nobody listening is fine.
        let _ = self.events.send(view.clone());
        if to_webhook && let Some(queue) = &self.queue {
            queue.push(Payload::of(view.clone()), &st.metrics);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        // Only plain maps are changed under it; a panic cannot leave one
        // half-written, so a poisoned lock is still usable.
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether the driver named in an agent's hardware confirms the relay
/// (`none` never does; an unknown hardware record is taken to confirm).
fn driver_confirms(hardware_json: &str) -> bool {
    let driver = serde_json::from_str::<serde_json::Value>(hardware_json)
        .ok()
        .and_then(|h| h.get("amplifier_driver").and_then(|d| d.as_str()).map(str::to_owned));
    !matches!(driver.as_deref(), Some("none" | ""))
}

/// The alarm loop: the webhook's delivery task, the timer, presence
/// changes (evaluated a second after the first of a burst) and live
/// refusals, and the presence history's checkpoint, until `shutdown`.
pub async fn run(st: AppState, shutdown: CancellationToken) {
    let now = st.clock.now_ms();
    let alarms = std::sync::Arc::clone(&st.alarms);
    match st.db(move |s| alarms.recall(s, now)).await {
        Ok(Recalled { plays, emergencies, syncs }) => {
            tracing::debug!(plays, emergencies, syncs, "recalled what the alarms knew before the start")
        }
        Err(e) => tracing::error!(error = %e, "cannot recall what the alarms knew before the start"),
    }
    let deliveries = st.alarms.deliveries.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let (Some(rx), Some(settings)) = (deliveries, st.alarms.settings.webhook.clone()) {
        tokio::spawn(webhook::deliver(rx, settings, std::sync::Arc::clone(&st.metrics), shutdown.clone()));
    }
    let mut presence = st.presence.subscribe();
    let mut live = st.live.subscribe();
    let mut tick = tokio::time::interval(st.alarms.settings.evaluate_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let far = Duration::from_secs(365 * 24 * 3600);
    let soon = tokio::time::sleep(far);
    tokio::pin!(soon);
    let mut pending = false;
    let mut checkpointed = tokio::time::Instant::now();
    loop {
        let evaluate = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                if checkpointed.elapsed() >= PRESENCE_CHECKPOINT {
                    checkpointed = tokio::time::Instant::now();
                    let now = st.clock.now_ms();
                    if let Err(e) = st.db(move |s| s.checkpoint_presence(now)).await {
                        tracing::error!(error = %e, "cannot checkpoint the presence history");
                    }
                }
                true
            }
            change = presence.recv() => {
                if change.is_err() && matches!(change, Err(broadcast::error::RecvError::Closed)) {
                    return;
                }
                if !pending {
                    pending = true;
                    soon.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(1));
                }
                false
            }
            _ = &mut soon => {
                pending = false;
                soon.as_mut().reset(tokio::time::Instant::now() + far);
                true
            }
            event = live.recv() => match event {
                Ok(event) => st.alarms.note_live(&st, &event).await,
                Err(broadcast::error::RecvError::Lagged(_)) => false,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if evaluate && let Err(e) = st.alarms.evaluate(&st).await {
            tracing::error!(error = %e, "cannot evaluate alarms");
        }
    }
}

#[cfg(test)]
mod tests {
    use dalaba_protocol::state::PlayOutcome;

    use super::*;
    use crate::live::{AgentReport, SessionReport};

    fn event(started: Option<i64>, confirmed: bool) -> PlayEvent {
        PlayEvent {
            id: format!("e{started:?}"),
            schedule_id: 1,
            sha256: "ab".repeat(32),
            scheduled_ms: 0,
            started_ms: started,
            ended_ms: None,
            outcome: PlayOutcome::Completed,
            reason: None,
            amplifier_confirmed: confirmed,
        }
    }

    /// A store with the demo county and agent `ag-1` in its first village.
    fn store_with_agent() -> crate::store::sqlite::SqliteStore {
        let store = crate::store::sqlite::SqliteStore::open_in_memory().expect("store");
        crate::store::testing::demo_with_agent(&store);
        store
    }

    #[test]
    fn play_events_make_runs_of_unconfirmed_items() {
        let alarms = Alarms::new(AlarmSettings::default(), 0);
        alarms.note_play_events("a", &[event(None, false)]);
        assert_eq!(alarms.lock().plays.get("a"), None, "items that never started say nothing");
        // Out of order in the batch: sorted by start.
        alarms.note_play_events("a", &[event(Some(3), false), event(Some(1), true), event(Some(2), false)]);
        assert_eq!(alarms.lock().plays.get("a"), Some(&PlayFacts::Unconfirmed { in_a_row: 2 }));
        alarms.note_play_events("a", &[event(Some(4), true)]);
        assert_eq!(alarms.lock().plays.get("a"), Some(&PlayFacts::Confirmed));
    }

    #[test]
    fn a_restart_recalls_the_run_from_the_stored_play_events() {
        let store = store_with_agent();
        let day = 24 * 3600 * 1000;
        let now = 30 * day;
        // Three unconfirmed items, the first more than a week ago (not read).
        let all: Vec<PlayEvent> = [now - 8 * day, now - day, now - day + 1]
            .into_iter()
            .enumerate()
            .map(|(i, at)| PlayEvent { id: format!("u{i}"), scheduled_ms: at, ..event(Some(at), false) })
            .collect();
        store.record_play_events("ag-1", &all, now).expect("stored");

        let alarms = Alarms::new(AlarmSettings::default(), now);
        assert_eq!(alarms.recall_plays(&store, now).expect("recall"), 1);
        assert_eq!(alarms.lock().plays.get("ag-1"), Some(&PlayFacts::Unconfirmed { in_a_row: 2 }));

        // What an agent reported since the start is newer: kept.
        let alarms = Alarms::new(AlarmSettings::default(), now);
        alarms.note_play_events("ag-1", &[event(Some(now + 1), true)]);
        alarms.recall_plays(&store, now).expect("recall");
        assert_eq!(alarms.lock().plays.get("ag-1"), Some(&PlayFacts::Confirmed));
    }

    /// A stored session: `agents` as (agent, state, played).
    fn session(id: &str, priority: LivePriority, at: i64, agents: &[(&str, AgentState, bool)]) -> SessionReport {
        SessionReport {
            session_id: id.into(),
            title: "防汛".into(),
            priority,
            source: "text".into(),
            started_by: "operator".into(),
            targets: serde_json::json!({"county": true}),
            villages: vec![1],
            volume: 90,
            started_at_ms: at,
            ended_at_ms: Some(at + 1_000),
            end_reason: Some("played out".into()),
            frames_sent: 50,
            counts: Default::default(),
            agents: agents
                .iter()
                .map(|(agent, state, played)| AgentReport {
                    agent_id: (*agent).into(),
                    village_id: 1,
                    state: state.clone(),
                    playing_from_ms: played.then_some(at + 100),
                    playing_to_ms: played.then_some(at + 900),
                    frames_sent: 50,
                    frames_dropped: 0,
                    frames_received: None,
                    frames_lost: None,
                    refusal: None,
                })
                .collect(),
        }
    }

    fn refused(message: &str) -> AgentState {
        AgentState::Refused { reason: dalaba_protocol::live::RefusalCode::Busy, message: message.into() }
    }

    #[test]
    fn a_restart_recalls_emergency_refusals_from_the_stored_sessions() {
        let store = store_with_agent();
        let day = 24 * 3600 * 1000;
        let now = 30 * day;
        let ended = || AgentState::Ended { reason: "stopped".into() };
        for stored in [
            // Played, but more than a week ago: not read.
            session("old", LivePriority::Emergency, now - 8 * day, &[("ag-1", ended(), true)]),
            session("L1", LivePriority::Emergency, now - 2 * day, &[("ag-1", refused("busy"), false)]),
            // Newer, but it says nothing: a refused paging session, and
            // an agent no longer enrolled.
            session("L2", LivePriority::Paging, now - day, &[("ag-1", refused("quiet hours"), false)]),
            session("L3", LivePriority::Emergency, now - day, &[("ag-gone", refused("busy"), false)]),
        ] {
            store.save_live_session(&stored).expect("stored");
        }
        let alarms = Alarms::new(AlarmSettings::default(), now);
        assert_eq!(alarms.recall_emergencies(&store, now).expect("recall"), 1);
        let expected = EmergencyFacts::Refused { session_id: "L1".into(), message: "busy".into() };
        assert_eq!(alarms.lock().emergency.get("ag-1"), Some(&expected));
        assert!(!alarms.lock().emergency.contains_key("ag-gone"));

        // A session it played since: fine.
        let played = session("L4", LivePriority::Paging, now - 3_600_000, &[("ag-1", ended(), true)]);
        store.save_live_session(&played).expect("stored");
        let alarms = Alarms::new(AlarmSettings::default(), now);
        alarms.recall_emergencies(&store, now).expect("recall");
        assert_eq!(alarms.lock().emergency.get("ag-1"), Some(&EmergencyFacts::Fine));

        // What a session told the service since the start is newer: kept.
        let alarms = Alarms::new(AlarmSettings::default(), now);
        alarms.lock().emergency.insert("ag-1".into(), expected.clone());
        alarms.recall_emergencies(&store, now).expect("recall");
        assert_eq!(alarms.lock().emergency.get("ag-1"), Some(&expected));
    }

    #[test]
    fn a_restart_recalls_when_syncs_started_failing() {
        let store = store_with_agent();
        store.set_sync_failing("ag-1", Some((1_000, "no route"))).expect("noted");
        store.set_sync_failing("ag-gone", Some((2_000, "no route"))).expect("noted");
        let alarms = Alarms::new(AlarmSettings::default(), 50_000);
        assert_eq!(alarms.recall_sync(&store).expect("recall"), 1);
        assert_eq!(alarms.lock().sync_failing.get("ag-1"), Some(&(1_000, "no route".to_string())));
        assert_eq!(store.sync_failing().expect("rows"), [("ag-1".into(), 1_000, "no route".into())], "gone forgotten");
    }

    #[test]
    fn drivers_that_confirm() {
        assert!(driver_confirms(r#"{"amplifier_driver":"modbus-rtu"}"#));
        assert!(!driver_confirms(r#"{"amplifier_driver":"none"}"#));
        assert!(driver_confirms("not json"));
    }
}
