//! Priorities and the one rule that decides preemption.
//!
//! Emergency > live paging > scheduled notices > background. A higher level
//! interrupts a lower one at once; at equal levels the first comes first and
//! the newcomer is refused; a lower level waits until the higher one ends.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How important a broadcast is. Ordered: a greater value wins.
///
/// Serialised as [`Priority::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Background audio (music between notices).
    Background,
    /// A scheduled notice from the timetable.
    Scheduled,
    /// A live page from an operator.
    Paging,
    /// An emergency broadcast.
    Emergency,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Priority; 4] = [Priority::Background, Priority::Scheduled, Priority::Paging, Priority::Emergency];

    /// The stable lowercase name used in configuration and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Background => "background",
            Priority::Scheduled => "scheduled",
            Priority::Paging => "paging",
            Priority::Emergency => "emergency",
        }
    }

    /// Whether quiet hours silence it: everything but an emergency.
    pub fn respects_quiet_hours(self) -> bool {
        self != Priority::Emergency
    }

    /// Parses [`Priority::as_str`].
    pub fn parse(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens when a broadcast of one priority arrives while another is
/// on the air in the same village.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arbitration {
    /// The newcomer interrupts what is playing.
    Preempt,
    /// Same level: the one on the air keeps it; the newcomer is refused.
    RefuseEqual,
    /// The newcomer is lower: it waits until the air is free.
    Wait,
}

/// Decides between the broadcast on the air and a newcomer.
pub fn arbitrate(on_air: Priority, newcomer: Priority) -> Arbitration {
    match newcomer.cmp(&on_air) {
        std::cmp::Ordering::Greater => Arbitration::Preempt,
        std::cmp::Ordering::Equal => Arbitration::RefuseEqual,
        std::cmp::Ordering::Less => Arbitration::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::Arbitration::*;
    use super::Priority::*;
    use super::*;

    fn check(on_air: Priority, newcomer: Priority, expected: Arbitration) {
        assert_eq!(arbitrate(on_air, newcomer), expected, "{newcomer} arriving during {on_air}");
    }

    #[test]
    fn arbitration_table() {
        check(Scheduled, Emergency, Preempt);
        check(Paging, Emergency, Preempt);
        check(Background, Scheduled, Preempt);
        check(Scheduled, Paging, Preempt);
        check(Emergency, Emergency, RefuseEqual);
        check(Paging, Paging, RefuseEqual);
        check(Emergency, Paging, Wait);
        check(Emergency, Scheduled, Wait);
        check(Paging, Background, Wait);
    }

    #[test]
    fn emergency_is_never_kept_waiting() {
        for p in Priority::ALL {
            assert_ne!(arbitrate(p, Emergency), Wait, "emergency waits for {p}");
        }
    }

    #[test]
    fn names_round_trip() {
        for p in Priority::ALL {
            assert_eq!(Priority::parse(p.as_str()), Some(p));
        }
        assert_eq!(Priority::parse("urgent"), None);
    }

    #[test]
    fn serde_names_are_the_wire_names() {
        for p in Priority::ALL {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.as_str()));
            assert_eq!(serde_json::from_str::<Priority>(&json).unwrap(), p);
        }
    }

    #[test]
    fn only_emergencies_ignore_quiet_hours() {
        let ignoring: Vec<Priority> = Priority::ALL.into_iter().filter(|p| !p.respects_quiet_hours()).collect();
        assert_eq!(ignoring, [Emergency]);
    }
}
