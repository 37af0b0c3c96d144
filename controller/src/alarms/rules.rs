//! The alarm rules: a pure function from what is known of every agent, the
//! open alarms and the time to the alarms to raise and clear. It reads no
//! clock and touches no store, so every rule is a table of cases below.
//!
//! Each kind's condition has three answers: it holds (raise, with its
//! figures), it does not (clear), or it is not known (keep what is open).
//! What is unknown never clears an alarm: an offline agent sends no status,
//! so its clock, disk and sync alarms stay as they were until it reports
//! again, and a controller that just started keeps the alarms it had.
//!
//! - `offline`: offline for longer than `offline_after_ms` since the last
//!   sign of life the controller knows (and never counted from before the
//!   controller started, which cannot tell); cleared when the agent is
//!   online again.
//! - `amplifier`: the agent's status reports the driver's `fault`, or the
//!   last [`UNCONFIRMED_ITEMS`] items it started played with the relay
//!   unconfirmed while its driver is one that confirms (not `none`, which
//!   never does). Cleared when its status is not a fault and no such run
//!   of items stands (a confirmed item ends the run).
//! - `clock`: |clock offset| over `clock_offset_max_ms`.
//! - `disk`: free disk below `disk_free_min_bytes`.
//! - `sync`: the sync report has said `failed` without a break for
//!   `sync_failing_ms`; cleared by any report that is not a failure.
//! - `emergency_refused`: the agent refused a live start at emergency
//!   priority; cleared when it next plays a live session.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::{AlarmKind, NewAlarm};

/// Items in a row played with the relay unconfirmed that raise `amplifier`.
pub const UNCONFIRMED_ITEMS: u32 = 2;

/// The alarm thresholds (`[alarms]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// An agent offline longer than this raises `offline`.
    pub offline_after_ms: i64,
    /// A clock offset larger than this (either way) raises `clock`.
    pub clock_offset_max_ms: i64,
    /// Free disk below this raises `disk`.
    pub disk_free_min_bytes: u64,
    /// A sync failing this long raises `sync`.
    pub sync_failing_ms: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            offline_after_ms: 30 * 60_000,
            clock_offset_max_ms: 1_000,
            disk_free_min_bytes: 500 * 1_000_000,
            sync_failing_ms: 60 * 60_000,
        }
    }
}

/// Whether the agent has a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// It has one.
    Online,
    /// It has none.
    Offline {
        /// Counted from here: the last sign of life, enrolment or the
        /// controller's start, whichever is latest.
        since_ms: i64,
        /// The last sign of life the controller knows, if any.
        last_seen_ms: Option<i64>,
    },
}

/// The figures of the agent's latest status report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusFacts {
    /// Controller clock minus agent clock, when known.
    pub clock_offset_ms: Option<i64>,
    /// Free bytes on its data disk.
    pub disk_free_bytes: u64,
    /// Whether the amplifier driver reports a fault.
    pub amplifier_fault: bool,
}

/// What the agent's sync reports say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncFacts {
    /// No report (offline, or none since it connected).
    Unknown,
    /// Up to date or downloading.
    Healthy,
    /// Failed in every report since `since_ms`.
    Failing {
        /// The first failed report of this run.
        since_ms: i64,
        /// The agent's reason.
        reason: String,
    },
}

/// What the agent's latest played items say about the amplifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayFacts {
    /// No item started since the controller started.
    Unknown,
    /// The latest item started with the relay confirmed.
    Confirmed,
    /// The latest `in_a_row` items started without the relay confirmed.
    Unconfirmed {
        /// How many in a row.
        in_a_row: u32,
    },
}

/// What the agent did with live sessions at emergency priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmergencyFacts {
    /// Nothing heard since the controller started.
    Unknown,
    /// It played a live session since its last refusal.
    Fine,
    /// It refused an emergency start.
    Refused {
        /// The session.
        session_id: String,
        /// Its reason.
        message: String,
    },
}

/// Everything the rules know of one enrolled agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentFacts {
    /// The agent.
    pub agent_id: String,
    /// Its village.
    pub village_id: i64,
    /// Online or since when offline.
    pub link: Link,
    /// Its latest status; `None` when offline or not reported yet.
    pub status: Option<StatusFacts>,
    /// Its sync reports.
    pub sync: SyncFacts,
    /// Its latest items.
    pub plays: PlayFacts,
    /// Whether its amplifier driver confirms the relay (not `none`).
    pub driver_confirms: bool,
    /// Its emergency starts.
    pub emergency: EmergencyFacts,
}

/// An open alarm, as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAlarm {
    /// Its id.
    pub id: i64,
    /// Its kind.
    pub kind: AlarmKind,
    /// Its agent.
    pub agent_id: String,
}

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Raise this alarm.
    Raise(NewAlarm),
    /// Clear this open alarm.
    Clear {
        /// Its id.
        id: i64,
    },
}

/// A condition's answer.
enum Verdict {
    /// Not known: keep what is open.
    Unknown,
    /// It does not hold.
    Fine,
    /// It holds, with these figures.
    Alarm(Value),
}

/// The changes that bring the open alarms in line with `agents` at
/// `now_ms`: at most one open alarm per (kind, agent). Alarms of agents no
/// longer enrolled are cleared.
pub fn evaluate(agents: &[AgentFacts], open: &[OpenAlarm], now_ms: i64, t: &Thresholds) -> Vec<Change> {
    let open_by: HashMap<(AlarmKind, &str), i64> = open.iter().map(|a| ((a.kind, a.agent_id.as_str()), a.id)).collect();
    let mut changes = Vec::new();
    for agent in agents {
        for kind in AlarmKind::ALL {
            let existing = open_by.get(&(kind, agent.agent_id.as_str()));
            match (verdict(kind, agent, now_ms, t), existing) {
                (Verdict::Alarm(detail), None) => changes.push(Change::Raise(NewAlarm {
                    kind,
                    agent_id: agent.agent_id.clone(),
                    village_id: agent.village_id,
                    raised_ms: now_ms,
                    detail,
                })),
                (Verdict::Fine, Some(&id)) => changes.push(Change::Clear { id }),
                _ => {}
            }
        }
    }
    let enrolled: HashSet<&str> = agents.iter().map(|a| a.agent_id.as_str()).collect();
    let mut gone: Vec<i64> = open.iter().filter(|a| !enrolled.contains(a.agent_id.as_str())).map(|a| a.id).collect();
    gone.sort_unstable();
    changes.extend(gone.into_iter().map(|id| Change::Clear { id }));
    changes
}

fn verdict(kind: AlarmKind, a: &AgentFacts, now_ms: i64, t: &Thresholds) -> Verdict {
    match kind {
        AlarmKind::Offline => match a.link {
            Link::Online => Verdict::Fine,
            Link::Offline { since_ms, last_seen_ms } if now_ms - since_ms > t.offline_after_ms => {
                Verdict::Alarm(json!({ "offline_since_ms": last_seen_ms.unwrap_or(since_ms) }))
            }
            Link::Offline { .. } => Verdict::Unknown,
        },
        AlarmKind::Amplifier => {
            let run = match a.plays {
                PlayFacts::Unconfirmed { in_a_row } if a.driver_confirms && in_a_row >= UNCONFIRMED_ITEMS => {
                    Some(in_a_row)
                }
                _ => None,
            };
            match (a.status, run) {
                (Some(s), _) if s.amplifier_fault => Verdict::Alarm(json!({ "source": "status" })),
                (_, Some(n)) => Verdict::Alarm(json!({ "source": "plays", "unconfirmed_items": n })),
                (Some(_), None) => Verdict::Fine,
                (None, None) => Verdict::Unknown,
            }
        }
        AlarmKind::Clock => match a.status.and_then(|s| s.clock_offset_ms) {
            None => Verdict::Unknown,
            Some(off) if off.unsigned_abs() > t.clock_offset_max_ms.unsigned_abs() => {
                Verdict::Alarm(json!({ "clock_offset_ms": off, "clock_offset_max_ms": t.clock_offset_max_ms }))
            }
            Some(_) => Verdict::Fine,
        },
        AlarmKind::Disk => match a.status {
            None => Verdict::Unknown,
            Some(s) if s.disk_free_bytes < t.disk_free_min_bytes => Verdict::Alarm(
                json!({ "disk_free_bytes": s.disk_free_bytes, "disk_free_min_bytes": t.disk_free_min_bytes }),
            ),
            Some(_) => Verdict::Fine,
        },
        AlarmKind::Sync => match &a.sync {
            SyncFacts::Unknown => Verdict::Unknown,
            SyncFacts::Healthy => Verdict::Fine,
            SyncFacts::Failing { since_ms, reason } if now_ms - since_ms >= t.sync_failing_ms => {
                Verdict::Alarm(json!({ "sync_error": reason, "failing_since_ms": since_ms }))
            }
            SyncFacts::Failing { .. } => Verdict::Unknown,
        },
        AlarmKind::EmergencyRefused => match &a.emergency {
            EmergencyFacts::Unknown => Verdict::Unknown,
            EmergencyFacts::Fine => Verdict::Fine,
            EmergencyFacts::Refused { session_id, message } => {
                Verdict::Alarm(json!({ "live_session_id": session_id, "message": message }))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000_000;
    const MIN: i64 = 60_000;

    fn healthy(id: &str) -> AgentFacts {
        AgentFacts {
            agent_id: id.into(),
            village_id: 7,
            link: Link::Online,
            status: Some(StatusFacts {
                clock_offset_ms: Some(12),
                disk_free_bytes: 4_000_000_000,
                amplifier_fault: false,
            }),
            sync: SyncFacts::Healthy,
            plays: PlayFacts::Confirmed,
            driver_confirms: true,
            emergency: EmergencyFacts::Fine,
        }
    }

    fn offline(id: &str, for_ms: i64) -> AgentFacts {
        AgentFacts {
            link: Link::Offline { since_ms: NOW - for_ms, last_seen_ms: Some(NOW - for_ms) },
            status: None,
            sync: SyncFacts::Unknown,
            ..healthy(id)
        }
    }

    fn open(id: i64, kind: AlarmKind, agent: &str) -> OpenAlarm {
        OpenAlarm { id, kind, agent_id: agent.into() }
    }

    /// The kinds raised for `agent` with nothing open.
    fn raised(agent: AgentFacts) -> Vec<(AlarmKind, Value)> {
        evaluate(&[agent], &[], NOW, &Thresholds::default())
            .into_iter()
            .map(|c| match c {
                Change::Raise(a) => (a.kind, a.detail),
                Change::Clear { id } => panic!("nothing was open to clear, got {id}"),
            })
            .collect()
    }

    fn kinds(agent: AgentFacts) -> Vec<AlarmKind> {
        raised(agent).into_iter().map(|(k, _)| k).collect()
    }

    /// The changes for `agent` with one alarm of `kind` open.
    fn with_open(agent: AgentFacts, kind: AlarmKind) -> Vec<Change> {
        let id = agent.agent_id.clone();
        evaluate(&[agent], &[open(9, kind, &id)], NOW, &Thresholds::default())
    }

    fn status(clock: Option<i64>, disk: u64, fault: bool) -> Option<StatusFacts> {
        Some(StatusFacts { clock_offset_ms: clock, disk_free_bytes: disk, amplifier_fault: fault })
    }

    #[test]
    fn a_healthy_agent_raises_nothing_and_clears_everything() {
        assert!(raised(healthy("a")).is_empty());
        for kind in AlarmKind::ALL {
            assert_eq!(with_open(healthy("a"), kind), [Change::Clear { id: 9 }], "{kind:?}");
        }
    }

    #[test]
    fn offline_after_the_threshold_and_not_at_it() {
        assert!(kinds(offline("a", 30 * MIN)).is_empty(), "exactly 30 minutes is not longer than 30");
        let got = raised(offline("a", 30 * MIN + 1));
        assert_eq!(got, [(AlarmKind::Offline, json!({"offline_since_ms": NOW - 30 * MIN - 1}))]);
        // Offline but not long: an open alarm stays (the agent never came back).
        assert!(with_open(offline("a", MIN), AlarmKind::Offline).is_empty());
        // Offline: what the agent would report is unknown, nothing clears.
        for kind in [AlarmKind::Clock, AlarmKind::Disk, AlarmKind::Sync, AlarmKind::Amplifier] {
            let mut a = offline("a", MIN);
            a.plays = PlayFacts::Unknown;
            assert!(with_open(a, kind).is_empty(), "{kind:?}");
        }
        // Never seen: counted from `since`, reported as such.
        let mut never = offline("a", 31 * MIN);
        never.link = Link::Offline { since_ms: NOW - 31 * MIN, last_seen_ms: None };
        assert_eq!(raised(never), [(AlarmKind::Offline, json!({"offline_since_ms": NOW - 31 * MIN}))]);
    }

    #[test]
    fn clock_offset_either_way_over_the_limit() {
        let check = |off: i64, alarm: bool| {
            let a = AgentFacts { status: status(Some(off), 4_000_000_000, false), ..healthy("a") };
            assert_eq!(kinds(a) == [AlarmKind::Clock], alarm, "{off}");
        };
        check(1_000, false);
        check(-1_000, false);
        check(1_001, true);
        check(-1_001, true);
        check(i64::MIN, true);
        let unknown = AgentFacts { status: status(None, 4_000_000_000, false), ..healthy("a") };
        assert!(with_open(unknown, AlarmKind::Clock).is_empty(), "an unknown offset clears nothing");
        let got = raised(AgentFacts { status: status(Some(-2_500), 4_000_000_000, false), ..healthy("a") });
        assert_eq!(got[0].1, json!({"clock_offset_ms": -2_500, "clock_offset_max_ms": 1_000}));
    }

    #[test]
    fn disk_below_the_minimum() {
        let min = Thresholds::default().disk_free_min_bytes;
        let with = |free: u64| AgentFacts { status: status(Some(0), free, false), ..healthy("a") };
        assert!(kinds(with(min)).is_empty());
        assert_eq!(kinds(with(min - 1)), [AlarmKind::Disk]);
        assert_eq!(raised(with(0))[0].1, json!({"disk_free_bytes": 0, "disk_free_min_bytes": min}));
        assert_eq!(with_open(with(min), AlarmKind::Disk), [Change::Clear { id: 9 }]);
    }

    #[test]
    fn sync_failing_for_the_whole_hour() {
        let failing = |for_ms: i64| AgentFacts {
            sync: SyncFacts::Failing { since_ms: NOW - for_ms, reason: "404".into() },
            ..healthy("a")
        };
        assert!(kinds(failing(60 * MIN - 1)).is_empty());
        let got = raised(failing(60 * MIN));
        assert_eq!(got, [(AlarmKind::Sync, json!({"sync_error": "404", "failing_since_ms": NOW - 60 * MIN}))]);
        // Still failing but the run looks short (a restart forgot when it
        // began): the open alarm stays.
        assert!(with_open(failing(MIN), AlarmKind::Sync).is_empty());
        let unknown = AgentFacts { sync: SyncFacts::Unknown, ..healthy("a") };
        assert!(with_open(unknown, AlarmKind::Sync).is_empty());
    }

    #[test]
    fn amplifier_by_status_or_by_items_with_a_confirming_driver() {
        let fault = AgentFacts { status: status(Some(0), 4_000_000_000, true), ..healthy("a") };
        assert_eq!(raised(fault.clone()), [(AlarmKind::Amplifier, json!({"source": "status"}))]);
        let items = |n: u32, confirms: bool| AgentFacts {
            plays: PlayFacts::Unconfirmed { in_a_row: n },
            driver_confirms: confirms,
            ..healthy("a")
        };
        assert!(kinds(items(1, true)).is_empty(), "one item is not a run");
        assert_eq!(
            raised(items(2, true)),
            [(AlarmKind::Amplifier, json!({"source": "plays", "unconfirmed_items": 2}))]
        );
        assert!(kinds(items(9, false)).is_empty(), "a `none` driver never confirms: no alarm");
        assert!(with_open(items(3, true), AlarmKind::Amplifier).is_empty(), "still unconfirmed");
        // Offline with a run of unconfirmed items: still raised from the items.
        let mut away = offline("b", MIN);
        away.plays = PlayFacts::Unconfirmed { in_a_row: 2 };
        assert_eq!(kinds(away), [AlarmKind::Amplifier]);
        // A confirmed item and a good status clear it.
        assert_eq!(with_open(healthy("a"), AlarmKind::Amplifier), [Change::Clear { id: 9 }]);
    }

    #[test]
    fn emergency_refusals_raise_until_a_live_session_plays() {
        let refused = AgentFacts {
            emergency: EmergencyFacts::Refused { session_id: "s1".into(), message: "bad signature".into() },
            ..healthy("a")
        };
        let got = raised(refused.clone());
        assert_eq!(got, [(AlarmKind::EmergencyRefused, json!({"live_session_id": "s1", "message": "bad signature"}))]);
        assert!(with_open(refused, AlarmKind::EmergencyRefused).is_empty(), "no duplicate");
        let unknown = AgentFacts { emergency: EmergencyFacts::Unknown, ..healthy("a") };
        assert!(with_open(unknown, AlarmKind::EmergencyRefused).is_empty(), "a restart keeps it");
    }

    #[test]
    fn no_duplicates_and_removed_agents_are_cleared() {
        let sick =
            AgentFacts { plays: PlayFacts::Unknown, emergency: EmergencyFacts::Unknown, ..offline("a", 40 * MIN) };
        let first = evaluate(std::slice::from_ref(&sick), &[], NOW, &Thresholds::default());
        // Offline: everything else unknown, so only offline is raised.
        assert!(matches!(&first[..], [Change::Raise(a)] if a.kind == AlarmKind::Offline), "{first:?}");
        let all_open: Vec<OpenAlarm> =
            AlarmKind::ALL.iter().enumerate().map(|(i, k)| open(i as i64 + 1, *k, "a")).collect();
        assert!(evaluate(std::slice::from_ref(&sick), &all_open, NOW, &Thresholds::default()).is_empty());
        let others = [open(20, AlarmKind::Disk, "gone"), open(21, AlarmKind::Offline, "gone")];
        let changes = evaluate(&[healthy("b")], &others, NOW, &Thresholds::default());
        assert_eq!(changes, [Change::Clear { id: 20 }, Change::Clear { id: 21 }]);
    }

    #[test]
    fn thresholds_come_from_the_caller() {
        let t = Thresholds { offline_after_ms: MIN, ..Thresholds::default() };
        let changes = evaluate(&[offline("a", MIN + 1)], &[], NOW, &t);
        assert!(matches!(&changes[..], [Change::Raise(a)] if a.kind == AlarmKind::Offline && a.raised_ms == NOW));
    }
}
