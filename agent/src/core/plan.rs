//! Checking a desired state before it replaces the applied one, and the
//! limits on its playback settings (DESIGN.md principle 8: every input can be
//! hostile, even the controller's).

use std::collections::BTreeSet;

use dalaba_protocol::state::{DesiredState, PlaybackSettings};

/// Most entries one desired state may plan.
pub const MAX_PLAN_ENTRIES: usize = 10_000;
/// Most content items one desired state may list.
pub const MAX_PLAN_CONTENT: usize = 10_000;
/// Most pieces of audio in one entry.
pub const MAX_PLAYS_PER_ENTRY: usize = 100;
/// Longest entry id, in bytes (ids travel back in every play event).
pub const MAX_ENTRY_ID_BYTES: usize = 200;
/// Longest piece of audio, in milliseconds.
pub const MAX_PLAY_MS: u64 = 86_400_000;

/// Longest warm-up the agent accepts.
const MAX_WARMUP_MS: u64 = 60_000;
/// Longest hold the agent accepts.
const MAX_HOLD_MS: u64 = 3_600_000;
/// Longest grace the agent accepts.
const MAX_GRACE_MS: u64 = 86_400_000;
/// The amplifier's on-time limit stays within these bounds, so a broken
/// setting can neither chatter the relay nor disable the safety net.
const MAX_ON_BOUNDS_MS: (u64, u64) = (60_000, 86_400_000);

/// Checks `state` and orders its entries by start. Returns why it cannot be
/// applied.
pub(super) fn validate(mut state: DesiredState) -> Result<DesiredState, String> {
    if state.entries.len() > MAX_PLAN_ENTRIES {
        return Err(format!("{} entries, more than {MAX_PLAN_ENTRIES}", state.entries.len()));
    }
    if state.content.len() > MAX_PLAN_CONTENT {
        return Err(format!("{} content items, more than {MAX_PLAN_CONTENT}", state.content.len()));
    }
    let mut hashes = BTreeSet::new();
    for c in &state.content {
        if c.sha256.len() != 64 || !c.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(format!("content hash {:?} is not lowercase hex SHA-256", truncated(&c.sha256)));
        }
        if !c.gain_db.is_finite() {
            return Err(format!("content {} has a gain that is not a number", c.sha256));
        }
        hashes.insert(c.sha256.as_str());
    }
    let mut ids = BTreeSet::new();
    for e in &state.entries {
        if e.id.is_empty() || e.id.len() > MAX_ENTRY_ID_BYTES {
            return Err(format!("entry id {:?} is empty or longer than {MAX_ENTRY_ID_BYTES} bytes", truncated(&e.id)));
        }
        if !ids.insert(e.id.as_str()) {
            return Err(format!("entry {} appears twice", e.id));
        }
        if e.plays.is_empty() || e.plays.len() > MAX_PLAYS_PER_ENTRY {
            return Err(format!("entry {} has {} pieces of audio", e.id, e.plays.len()));
        }
        if let Some(p) = e.plays.iter().find(|p| !hashes.contains(p.sha256.as_str())) {
            return Err(format!("entry {} plays {}, which the content list lacks", e.id, truncated(&p.sha256)));
        }
        if e.plays.iter().any(|p| p.duration_ms > MAX_PLAY_MS) {
            return Err(format!("entry {} has a piece longer than a day", e.id));
        }
    }
    state.entries.sort_by(|a, b| (a.start_ms, &a.id).cmp(&(b.start_ms, &b.id)));
    Ok(state)
}

/// `settings` within the limits the agent accepts.
pub(super) fn bounded(settings: PlaybackSettings) -> PlaybackSettings {
    PlaybackSettings {
        warmup_ms: settings.warmup_ms.min(MAX_WARMUP_MS),
        hold_ms: settings.hold_ms.min(MAX_HOLD_MS),
        grace_ms: settings.grace_ms.min(MAX_GRACE_MS),
        max_on_ms: settings.max_on_ms.clamp(MAX_ON_BOUNDS_MS.0, MAX_ON_BOUNDS_MS.1),
    }
}

fn truncated(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use dalaba_protocol::state::{ContentInfo, PlanEntry, PlannedPlay, Priority};

    use super::*;

    fn hash(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    fn entry(id: &str, start_ms: i64, sha256: String) -> PlanEntry {
        PlanEntry {
            id: id.into(),
            schedule_id: 1,
            title: "t".into(),
            nominal_start_ms: start_ms,
            start_ms,
            plays: vec![PlannedPlay { sha256, start_ms, duration_ms: 1000 }],
            volume: 80,
            priority: Priority::Scheduled,
        }
    }

    fn state(entries: Vec<PlanEntry>) -> DesiredState {
        let content =
            ContentInfo { sha256: hash(1), size_bytes: 1, duration_ms: 1000, gain_db: -2.0, title: "t".into() };
        DesiredState {
            version: 1,
            generated_at_ms: 0,
            from_ms: 0,
            to_ms: 10,
            entries,
            content: vec![content],
            playback: PlaybackSettings::default(),
        }
    }

    fn check(entries: Vec<PlanEntry>, expected: Result<Vec<&str>, &str>) {
        let got = validate(state(entries)).map(|s| s.entries.into_iter().map(|e| e.id).collect::<Vec<_>>());
        match (got, expected) {
            (Ok(ids), Ok(want)) => assert_eq!(ids, want),
            (Err(why), Err(want)) => assert!(why.contains(want), "{why:?} lacks {want:?}"),
            (got, want) => panic!("got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn plans_are_checked_and_ordered() {
        check(vec![entry("b", 20, hash(1)), entry("a", 10, hash(1))], Ok(vec!["a", "b"]));
        check(vec![entry("a", 10, hash(1)), entry("a", 20, hash(1))], Err("appears twice"));
        check(vec![entry("a", 10, hash(2))], Err("lacks"));
        check(vec![entry("", 10, hash(1))], Err("empty"));
        check(vec![entry(&"x".repeat(201), 10, hash(1))], Err("longer than"));
        let mut silent = entry("a", 10, hash(1));
        silent.plays.clear();
        check(vec![silent], Err("0 pieces"));
        let mut endless = entry("a", 10, hash(1));
        endless.plays[0].duration_ms = u64::MAX;
        check(vec![endless], Err("longer than a day"));
        let mut bad = state(vec![]);
        bad.content[0].sha256 = "ABC".into();
        assert!(validate(bad).is_err());
        let mut bad = state(vec![]);
        bad.content[0].gain_db = f64::NAN;
        assert!(validate(bad).is_err());
    }

    #[test]
    fn settings_are_bounded() {
        let wild = PlaybackSettings { warmup_ms: u64::MAX, hold_ms: u64::MAX, grace_ms: u64::MAX, max_on_ms: 0 };
        let b = bounded(wild);
        assert_eq!((b.warmup_ms, b.hold_ms, b.grace_ms, b.max_on_ms), (60_000, 3_600_000, 86_400_000, 60_000));
        assert_eq!(bounded(PlaybackSettings::default()), PlaybackSettings::default());
    }
}
