//! Each agent's desired state: its village's plan for the coming days and
//! the content that plan needs, kept current and handed to the agent's link.
//!
//! # How it flows
//! Anything that changes a plan (a schedule, the quiet hours, the library,
//! the directory, a newly enrolled agent) calls [`Distribution::poke`]. The
//! [`run`] task notices, waits a moment for more changes, and rebuilds every
//! village's plan in one pass of the `dalaba_schedules` planner (the bench
//! puts 212 villages × 50 schedules at ~20 ms). It also rebuilds every
//! [`REFRESH`], so the window rolls forward. An agent's version changes only
//! when its plan's digest does; versions are stored, so a restarted
//! controller does not resend unchanged states under new numbers, and a new
//! version is at least the build time in ms, so versions keep rising even
//! if the database is replaced.
//!
//! Links subscribe with [`Distribution::subscribe`]: a `watch` channel per
//! agent whose value is the current [`Desired`]. The link sends it after
//! the welcome and whenever it changes. Agents of one village share one
//! [`VillagePlan`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use dalaba_protocol::MAX_CONTROLLER_FRAME;
use dalaba_protocol::state::{ContentInfo, DesiredState, PlanEntry, PlannedPlay, PlaybackSettings, Priority};
use dalaba_schedules::Planner;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::api::AppState;
use crate::schedules::Timetable;
use crate::store::{DesiredVersion, Store, StoreError};

/// How far ahead a plan reaches.
pub const HORIZON: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often plans are rebuilt with nothing changed, so the window rolls.
pub const REFRESH: Duration = Duration::from_secs(3600);
/// How long a rebuild waits after a poke for further changes.
const SETTLE: Duration = Duration::from_millis(150);

/// One village's plan, shared by its agents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VillagePlan {
    /// Controller wall clock when built.
    pub generated_at_ms: i64,
    /// The plan covers `[from_ms, to_ms)`.
    pub from_ms: i64,
    /// End of the window.
    pub to_ms: i64,
    /// Occurrences by start.
    pub entries: Vec<PlanEntry>,
    /// The content they need, once each.
    pub content: Vec<ContentInfo>,
    /// Amplifier and lateness settings.
    pub playback: PlaybackSettings,
    /// SHA-256 over entries, content and settings: equal digests, equal plans.
    pub digest: String,
}

/// What one agent should hold: a version of its village's plan.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The agent's version of it.
    pub version: u64,
    /// The plan.
    pub plan: Arc<VillagePlan>,
}

impl Desired {
    /// The message for the agent.
    pub fn to_state(&self) -> DesiredState {
        let p = &self.plan;
        DesiredState {
            version: self.version,
            generated_at_ms: p.generated_at_ms,
            from_ms: p.from_ms,
            to_ms: p.to_ms,
            entries: p.entries.clone(),
            content: p.content.clone(),
            playback: p.playback,
        }
    }
}

type Slot = watch::Sender<Option<Desired>>;

/// The desired states of every agent. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Distribution {
    slots: Mutex<HashMap<String, Slot>>,
    dirty: Notify,
    playback: PlaybackSettings,
}

impl Distribution {
    /// No states yet; `playback` goes into every plan.
    pub fn new(playback: PlaybackSettings) -> Distribution {
        Distribution { slots: Mutex::new(HashMap::new()), dirty: Notify::new(), playback }
    }

    /// Something that plans depend on changed: rebuild soon.
    pub fn poke(&self) {
        self.dirty.notify_one();
    }

    /// The agent's current desired state and its changes. An agent with no
    /// state yet (just enrolled) gets one at the next rebuild, which this
    /// asks for.
    pub fn subscribe(&self, agent_id: &str) -> watch::Receiver<Option<Desired>> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = slots.entry(agent_id.to_owned()).or_insert_with(|| watch::channel(None).0);
        let rx = slot.subscribe();
        if rx.borrow().is_none() {
            self.dirty.notify_one();
        }
        rx
    }

    /// The agent's current desired state, if built.
    pub fn current(&self, agent_id: &str) -> Option<Desired> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner).get(agent_id).and_then(|s| s.borrow().clone())
    }

    fn publish(&self, states: HashMap<String, Desired>) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.retain(|id, slot| states.contains_key(id) || slot.receiver_count() > 0);
        for (agent, desired) in states {
            let slot = slots.entry(agent).or_insert_with(|| watch::channel(None).0);
            slot.send_if_modified(|current| {
                let changed = current.as_ref().is_none_or(|c| c.version != desired.version);
                if changed {
                    *current = Some(desired);
                }
                changed
            });
        }
    }
}

/// Rebuilds plans on every poke and every [`REFRESH`] until `stop`.
pub async fn run(st: AppState, stop: CancellationToken) {
    loop {
        let store = Arc::clone(&st.store);
        let (now, playback) = (st.clock.now_ms(), st.distribution.playback);
        match tokio::task::spawn_blocking(move || build(store.as_ref(), now, &playback)).await {
            Ok(Ok(states)) => st.distribution.publish(states),
            Ok(Err(e)) => tracing::error!(error = %e, "cannot build desired states"),
            Err(e) => tracing::error!(error = %e, "desired-state build failed"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = st.distribution.dirty.notified() => {
                tokio::time::sleep(SETTLE).await;
            }
            _ = tokio::time::sleep(REFRESH) => {}
        }
    }
}

/// Plans every agent's village from the store at `now` and records the
/// versions of changed plans.
pub fn build(
    store: &dyn Store,
    now_ms: i64,
    playback: &PlaybackSettings,
) -> Result<HashMap<String, Desired>, StoreError> {
    let timetable = store.timetable()?;
    let agents = store.agents()?;
    let previous: HashMap<String, DesiredVersion> =
        store.desired_versions()?.into_iter().map(|v| (v.agent_id.clone(), v)).collect();
    let plans = plan_villages(&timetable, now_ms, playback, agents.iter().map(|a| a.village_id));
    let mut states = HashMap::new();
    let mut changed = Vec::new();
    for agent in &agents {
        let Some(plan) = plans.get(&agent.village_id) else { continue };
        let version = match previous.get(&agent.id) {
            Some(v) if v.digest == plan.digest => v.version,
            Some(v) => v.version.saturating_add(1).max(now_ms.max(0) as u64),
            None => now_ms.max(1) as u64,
        };
        if previous.get(&agent.id).is_none_or(|v| v.version != version) {
            changed.push(DesiredVersion { agent_id: agent.id.clone(), version, digest: plan.digest.clone() });
        }
        states.insert(agent.id.clone(), Desired { version, plan: Arc::clone(plan) });
    }
    if !changed.is_empty() {
        store.record_desired_versions(&changed, now_ms)?;
        tracing::info!(agents = changed.len(), "desired states changed");
    }
    Ok(states)
}

/// The plans of the given villages over `[now, now + HORIZON)`.
pub fn plan_villages(
    timetable: &Timetable,
    now_ms: i64,
    playback: &PlaybackSettings,
    villages: impl Iterator<Item = i64>,
) -> BTreeMap<i64, Arc<VillagePlan>> {
    let from = instant(now_ms);
    let to_ms = now_ms.saturating_add(HORIZON.as_millis() as i64);
    let to = instant(to_ms);
    let schedules = timetable.plan_schedules();
    let names: HashMap<i64, &str> = timetable.schedules.iter().map(|s| (s.id, s.spec.name.as_str())).collect();
    let content_by_hash: HashMap<&str, ContentInfo> = timetable
        .library
        .values()
        .map(|item| {
            (
                item.distribution.sha256.as_str(),
                ContentInfo {
                    sha256: item.distribution.sha256.clone(),
                    size_bytes: item.distribution.size_bytes,
                    duration_ms: item.duration_ms,
                    gain_db: item.gain_db,
                    title: item.title.clone(),
                },
            )
        })
        .collect();
    let planner = match Planner::new(&schedules, &timetable.quiet(), from, to) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(error = %e, "cannot plan: every village gets an empty plan until this is fixed");
            None
        }
    };
    let directory: HashMap<i64, dalaba_schedules::VillageInfo> =
        timetable.villages().into_iter().map(|v| (v.id, v)).collect();
    let mut plans = BTreeMap::new();
    for village_id in villages {
        if plans.contains_key(&village_id) {
            continue;
        }
        let mut entries = Vec::new();
        let mut content: BTreeMap<String, ContentInfo> = BTreeMap::new();
        if let (Some(planner), Some(village)) = (&planner, directory.get(&village_id)) {
            for item in planner.plan(village).items {
                let plays: Vec<PlannedPlay> = item
                    .plays
                    .iter()
                    .map(|p| PlannedPlay {
                        sha256: p.content.sha256.clone(),
                        start_ms: p.start.timestamp_millis(),
                        duration_ms: p.content.duration_ms,
                    })
                    .collect();
                for p in &item.plays {
                    if let Some(info) = content_by_hash.get(p.content.sha256.as_str()) {
                        content.entry(info.sha256.clone()).or_insert_with(|| info.clone());
                    }
                }
                let nominal = item.nominal_start.timestamp_millis();
                entries.push(PlanEntry {
                    id: format!("{}@{}", item.schedule_id, nominal),
                    schedule_id: item.schedule_id,
                    title: names.get(&item.schedule_id).copied().unwrap_or_default().to_owned(),
                    nominal_start_ms: nominal,
                    start_ms: item.start.timestamp_millis(),
                    plays,
                    volume: item.volume,
                    priority: wire_priority(item.priority),
                });
            }
        }
        let mut content: Vec<ContentInfo> = content.into_values().collect();
        let mut until = to_ms;
        if let Some(cut) = fit_in_frame(&mut entries, &mut content) {
            tracing::error!(
                village = village_id,
                until_ms = cut,
                "a week's plan is too large for one message; planned only up to the cut"
            );
            until = cut;
        }
        let digest = digest(&entries, &content, playback);
        plans.insert(
            village_id,
            Arc::new(VillagePlan {
                generated_at_ms: now_ms,
                from_ms: now_ms,
                to_ms: until,
                entries,
                content,
                playback: *playback,
                digest,
            }),
        );
    }
    plans
}

/// The bytes a desired state may use, leaving room for its envelope.
const FRAME_BUDGET: usize = MAX_CONTROLLER_FRAME - 64 * 1024;

/// Drops the latest entries (and content only they need) until the state
/// fits in one frame; returns the start of the first dropped entry, which
/// becomes the end of the planned window.
fn fit_in_frame(entries: &mut Vec<PlanEntry>, content: &mut Vec<ContentInfo>) -> Option<i64> {
    let mut size: usize = entries.iter().map(json_len).sum::<usize>() + content.iter().map(json_len).sum::<usize>();
    if size <= FRAME_BUDGET {
        return None;
    }
    let mut cut = None;
    while size > FRAME_BUDGET {
        let Some(last) = entries.pop() else { break };
        size -= json_len(&last);
        cut = Some(last.start_ms);
    }
    let needed: std::collections::BTreeSet<&str> =
        entries.iter().flat_map(|e| e.plays.iter().map(|p| p.sha256.as_str())).collect();
    content.retain(|c| needed.contains(c.sha256.as_str()));
    cut
}

/// Bytes of `v` as JSON, with its separating comma.
fn json_len<T: Serialize>(v: &T) -> usize {
    serde_json::to_vec(v).map_or(0, |v| v.len()) + 1
}

fn instant(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn wire_priority(p: dalaba_schedules::priority::Priority) -> Priority {
    use dalaba_schedules::priority::Priority as P;
    match p {
        P::Background => Priority::Background,
        P::Scheduled => Priority::Scheduled,
        P::Paging => Priority::Paging,
        P::Emergency => Priority::Emergency,
    }
}

fn digest(entries: &[PlanEntry], content: &[ContentInfo], playback: &PlaybackSettings) -> String {
    #[derive(Serialize)]
    struct Digested<'a> {
        entries: &'a [PlanEntry],
        content: &'a [ContentInfo],
        playback: &'a PlaybackSettings,
    }
    let bytes = serde_json::to_vec(&Digested { entries, content, playback }).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: i64, sha: &str) -> PlanEntry {
        PlanEntry {
            id: format!("1@{n}"),
            schedule_id: 1,
            title: "x".repeat(1000),
            nominal_start_ms: n,
            start_ms: n,
            plays: vec![PlannedPlay { sha256: sha.into(), start_ms: n, duration_ms: 1 }],
            volume: 80,
            priority: Priority::Scheduled,
        }
    }

    fn info(sha: &str) -> ContentInfo {
        ContentInfo { sha256: sha.into(), size_bytes: 1, duration_ms: 1, gain_db: 0.0, title: "t".into() }
    }

    #[test]
    fn an_oversized_plan_is_cut_at_an_entry_and_keeps_only_needed_content() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let mut entries: Vec<PlanEntry> = (0..5000).map(|n| entry(n, if n < 2000 { &a } else { &b })).collect();
        let mut content = vec![info(&a), info(&b)];
        let cut = fit_in_frame(&mut entries, &mut content).expect("cut");
        assert_eq!(cut, entries.len() as i64, "the window ends where the first dropped entry starts");
        assert!(entries.len() < 5000 && entries.len() > 1000, "{}", entries.len());
        let size = serde_json::to_vec(&entries).expect("json").len();
        assert!(size <= FRAME_BUDGET, "{size}");
        if entries.len() <= 2000 {
            assert_eq!(content, vec![info(&a)]);
        }

        let mut small = vec![entry(1, &a)];
        let mut content = vec![info(&a), info(&b)];
        assert_eq!(fit_in_frame(&mut small, &mut content), None);
        assert_eq!(content.len(), 2, "untouched when it fits");
    }
}
