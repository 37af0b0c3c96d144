//! Alarms as stored and as the API, the event stream and the webhook show
//! them.

use serde::{Deserialize, Serialize};

use crate::directory::Region;

/// What an alarm is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// An enrolled agent offline longer than `offline_after_minutes`.
    Offline,
    /// The amplifier does not confirm (a driver fault, or items played
    /// without the relay confirming).
    Amplifier,
    /// The agent's clock is off by more than `clock_offset_max_ms`.
    Clock,
    /// Free disk below `disk_free_min_mb`.
    Disk,
    /// The agent's sync has failed for `sync_failing_minutes`.
    Sync,
    /// The agent refused (or could not carry out) an emergency broadcast.
    EmergencyRefused,
}

impl AlarmKind {
    /// Every kind, in a fixed order.
    pub const ALL: [AlarmKind; 6] = [
        AlarmKind::Offline,
        AlarmKind::Amplifier,
        AlarmKind::Clock,
        AlarmKind::Disk,
        AlarmKind::Sync,
        AlarmKind::EmergencyRefused,
    ];

    /// The kind's name, as stored and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::Offline => "offline",
            AlarmKind::Amplifier => "amplifier",
            AlarmKind::Clock => "clock",
            AlarmKind::Disk => "disk",
            AlarmKind::Sync => "sync",
            AlarmKind::EmergencyRefused => "emergency_refused",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<AlarmKind> {
        AlarmKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What it means, in Chinese and in English, for operators.
    pub fn describe(self) -> (&'static str, &'static str) {
        match self {
            AlarmKind::Offline => ("终端离线", "the village board is offline"),
            AlarmKind::Amplifier => ("功放未确认", "the amplifier does not confirm"),
            AlarmKind::Clock => ("终端时钟偏差过大", "the board's clock is off"),
            AlarmKind::Disk => ("终端磁盘将满", "the board's disk is nearly full"),
            AlarmKind::Sync => ("节目同步失败", "the board cannot fetch its programme"),
            AlarmKind::EmergencyRefused => ("终端拒绝应急广播", "the board refused an emergency broadcast"),
        }
    }
}

/// A stored alarm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alarm {
    /// Its id (rises with time: newer alarms have larger ids).
    pub id: i64,
    /// What it is about.
    pub kind: AlarmKind,
    /// The agent.
    pub agent_id: String,
    /// The agent's village when it was raised.
    pub village_id: i64,
    /// When it was raised (controller clock, Unix ms).
    pub raised_ms: i64,
    /// When it was cleared; `None` while open.
    pub cleared_ms: Option<i64>,
    /// When an operator acknowledged it.
    pub acknowledged_ms: Option<i64>,
    /// Who acknowledged it, as operators read it: `李伟 (li.wei)`, or
    /// `token:province` for an API token.
    pub acknowledged_by: Option<String>,
    /// Kind-specific figures (`offline_since_ms`, `clock_offset_ms`, …).
    pub detail: serde_json::Value,
}

/// An alarm to raise.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlarm {
    /// What it is about.
    pub kind: AlarmKind,
    /// The agent.
    pub agent_id: String,
    /// Its village.
    pub village_id: i64,
    /// When (controller clock).
    pub raised_ms: i64,
    /// Kind-specific figures.
    pub detail: serde_json::Value,
}

/// Which alarms to list, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlarmFilter {
    /// Only open ones.
    pub open_only: bool,
    /// At most this many.
    pub limit: usize,
    /// Only ids below this one (the next page).
    pub before: Option<i64>,
    /// Only these villages (`None`: every village).
    pub villages: Option<Vec<i64>>,
}

/// An alarm as the API, the event stream and the webhook show it: with its
/// village and township named.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmView {
    /// Its id.
    pub id: i64,
    /// What it is about.
    pub kind: AlarmKind,
    /// `open` or `cleared`.
    pub state: &'static str,
    /// The village.
    pub village_id: i64,
    /// Its name (empty if it was removed).
    pub village_name: String,
    /// Its administrative code.
    pub village_code: String,
    /// Its township.
    pub township_id: Option<i64>,
    /// The township's name.
    pub township_name: String,
    /// The agent.
    pub agent_id: String,
    /// When it was raised (Unix ms).
    pub raised_ms: i64,
    /// When it was cleared.
    pub cleared_ms: Option<i64>,
    /// When it was acknowledged.
    pub acknowledged_ms: Option<i64>,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// Kind-specific figures.
    pub detail: serde_json::Value,
}

impl AlarmView {
    /// `alarm` with its village and township found in `regions`.
    pub fn of(alarm: &Alarm, regions: &[Region]) -> AlarmView {
        let village = regions.iter().find(|r| r.id == alarm.village_id);
        let township = village.and_then(|v| v.parent_id).and_then(|t| regions.iter().find(|r| r.id == t));
        AlarmView {
            id: alarm.id,
            kind: alarm.kind,
            state: if alarm.cleared_ms.is_some() { "cleared" } else { "open" },
            village_id: alarm.village_id,
            village_name: village.map(|v| v.name.clone()).unwrap_or_default(),
            village_code: village.map(|v| v.code.clone()).unwrap_or_default(),
            township_id: township.map(|t| t.id),
            township_name: township.map(|t| t.name.clone()).unwrap_or_default(),
            agent_id: alarm.agent_id.clone(),
            raised_ms: alarm.raised_ms,
            cleared_ms: alarm.cleared_ms,
            acknowledged_ms: alarm.acknowledged_ms,
            acknowledged_by: alarm.acknowledged_by.clone(),
            detail: alarm.detail.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name() {
        for kind in AlarmKind::ALL {
            assert_eq!(AlarmKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).expect("json"), serde_json::json!(kind.as_str()));
        }
        assert_eq!(AlarmKind::parse("fire"), None);
    }
}
