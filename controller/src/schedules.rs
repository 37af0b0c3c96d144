//! The county's timetable as operators write it, and what planning needs
//! to turn it into each village's plan.
//!
//! A [`ScheduleSpec`] names library items by id; planning resolves them to
//! the distribution files agents cache ([`Timetable::plan_schedules`]) and
//! hands the result to the pure `dalaba_schedules` crate, which owns the
//! rules (recurrence, validity, priorities, quiet hours). This module adds
//! only what needs the controller's data: that every item and every target
//! exists.

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use dalaba_schedules::priority::Priority;
use dalaba_schedules::{ContentRef, PlaylistItem, QuietHours, Recurrence, Schedule, Targets, VillageInfo};
use serde::{Deserialize, Serialize};

use crate::directory::{Level, Region};
use crate::library::LibraryItem;

/// Default volume of a new schedule, 0–100.
pub const DEFAULT_VOLUME: u8 = 80;
/// Default for how late an occurrence may move behind a more important
/// one: ten minutes.
pub const DEFAULT_MAX_DELAY_MS: u64 = 10 * 60 * 1000;
/// Longest schedule name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Most items in one playlist.
pub const MAX_PLAYLIST: usize = 50;

/// Why a schedule was refused: a stable reason and the values it names,
/// for the console to word in the operator's language, and the sentence
/// in English for everyone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable name (`too_frequent`, `unknown_village`, …).
    pub reason: &'static str,
    /// The values the sentence names.
    pub params: Vec<(&'static str, String)>,
    /// The sentence.
    pub message: String,
}

impl Refusal {
    fn new(reason: &'static str, params: Vec<(&'static str, String)>, message: String) -> Refusal {
        Refusal { reason, params, message }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<dalaba_schedules::ScheduleError> for Refusal {
    fn from(e: dalaba_schedules::ScheduleError) -> Refusal {
        Refusal::new(e.code(), e.params(), e.to_string())
    }
}

/// A schedule as the API takes and returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// The operator's name for it.
    pub name: String,
    /// Notes for operators.
    #[serde(default)]
    pub description: String,
    /// What plays, in order.
    pub playlist: Vec<PlaylistEntry>,
    /// Silence between consecutive plays, ms.
    #[serde(default)]
    pub gap_ms: u64,
    /// When it fires: `{"cron": "0 0 7 * * MON-FRI"}` or `{"rule": {...}}`.
    pub recurrence: Recurrence,
    /// IANA time zone; the county's by default.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// First local date it may fire on.
    #[serde(default)]
    pub valid_from: Option<NaiveDate>,
    /// Last local date it may fire on.
    #[serde(default)]
    pub valid_until: Option<NaiveDate>,
    /// How late an occurrence may start behind a more important one, ms.
    #[serde(default = "default_max_delay")]
    pub max_delay_ms: u64,
    /// Which villages hear it.
    pub targets: Targets,
    /// How important it is.
    #[serde(default = "default_priority")]
    pub priority: Priority,
    /// Volume, 0–100.
    #[serde(default = "default_volume")]
    pub volume: u8,
    /// A disabled schedule is kept but plans nothing.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
}

/// One playlist entry: a library item and how often to repeat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaylistEntry {
    /// The library item.
    pub item_id: i64,
    /// Extra plays after the first.
    #[serde(default)]
    pub repeats: u32,
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSchedule {
    /// Its id.
    pub id: i64,
    /// What the operator wrote.
    #[serde(flatten)]
    pub spec: ScheduleSpec,
    /// When it was created (Unix ms).
    pub created_at_ms: i64,
    /// When it was last changed (Unix ms).
    pub updated_at_ms: i64,
}

fn default_timezone() -> String {
    dalaba_schedules::DEFAULT_TIMEZONE.to_owned()
}
fn default_max_delay() -> u64 {
    DEFAULT_MAX_DELAY_MS
}
fn default_priority() -> Priority {
    Priority::Scheduled
}
fn default_volume() -> u8 {
    DEFAULT_VOLUME
}
fn default_enabled() -> bool {
    true
}

/// Everything planning reads, loaded together: the directory, the library,
/// the schedules and the quiet hours.
#[derive(Debug, Clone, Default)]
pub struct Timetable {
    /// Every region.
    pub regions: Vec<Region>,
    /// The library, by item id.
    pub library: HashMap<i64, LibraryItem>,
    /// Every stored schedule, enabled or not.
    pub schedules: Vec<StoredSchedule>,
    /// The county's and townships' quiet hours.
    pub quiet_hours: Option<QuietHours>,
}

impl Timetable {
    /// The villages as planning sees them.
    pub fn villages(&self) -> Vec<VillageInfo> {
        self.regions
            .iter()
            .filter(|r| r.level == Level::Village)
            .filter_map(|r| Some(VillageInfo { id: r.id, township_id: r.parent_id?, tags: r.tags.clone() }))
            .collect()
    }

    /// The quiet hours, none when never set.
    pub fn quiet(&self) -> QuietHours {
        self.quiet_hours.clone().unwrap_or_else(QuietHours::none)
    }

    /// The enabled schedules with their playlists resolved to distribution
    /// files. A schedule whose item has since gone cannot be planned and is
    /// left out (the store refuses to delete an item a schedule uses, so
    /// this is a guard, not a path).
    pub fn plan_schedules(&self) -> Vec<Schedule> {
        self.schedules
            .iter()
            .filter(|s| s.spec.enabled)
            .filter_map(|s| match resolve(s.id, &s.spec, &self.library) {
                Ok(schedule) => Some(schedule),
                Err(why) => {
                    tracing::error!(schedule = s.id, reason = %why, "schedule left out of planning");
                    None
                }
            })
            .collect()
    }

    /// Checks `spec` against the directory and library and the schedule
    /// rules; the error is one sentence an operator can act on. `id` is the
    /// schedule's id (0 for a new one).
    pub fn check(&self, id: i64, spec: &ScheduleSpec) -> Result<Schedule, Refusal> {
        if spec.name.chars().count() > MAX_NAME_CHARS {
            let message = format!("the name is longer than {MAX_NAME_CHARS} characters");
            return Err(Refusal::new("name_too_long", vec![("max", MAX_NAME_CHARS.to_string())], message));
        }
        if spec.playlist.len() > MAX_PLAYLIST {
            let count = spec.playlist.len();
            let message = format!("the playlist has {count} items; at most {MAX_PLAYLIST} are allowed");
            let params = vec![("count", count.to_string()), ("max", MAX_PLAYLIST.to_string())];
            return Err(Refusal::new("playlist_too_long", params, message));
        }
        self.check_targets(&spec.targets)?;
        let schedule = resolve(id, spec, &self.library)?;
        schedule.validate()?;
        Ok(schedule)
    }

    /// Checks that every target exists at its level; the error is one
    /// sentence an operator can act on.
    pub(crate) fn check_targets(&self, targets: &Targets) -> Result<(), Refusal> {
        let level = |id: i64| self.regions.iter().find(|r| r.id == id).map(|r| r.level);
        let named = |reason, id: i64, message| Refusal::new(reason, vec![("id", id.to_string())], message);
        for &t in &targets.townships {
            match level(t) {
                Some(Level::Township) => {}
                Some(other) => {
                    let message = format!("target township {t} is a {}, not a township", level_name(other));
                    return Err(named("not_a_township", t, message));
                }
                None => return Err(named("unknown_township", t, format!("target township {t} does not exist"))),
            }
        }
        for &v in &targets.villages {
            match level(v) {
                Some(Level::Village) => {}
                Some(other) => {
                    let message = format!("target village {v} is a {}, not a village", level_name(other));
                    return Err(named("not_a_village", v, message));
                }
                None => return Err(named("unknown_village", v, format!("target village {v} does not exist"))),
            }
        }
        if !targets.tags.is_empty() {
            let known: BTreeSet<&str> = self.regions.iter().flat_map(|r| r.tags.iter().map(String::as_str)).collect();
            if let Some(tag) = targets.tags.iter().find(|t| !known.contains(t.as_str())) {
                let message = format!("target tag {tag:?} is carried by no village");
                return Err(Refusal::new("unknown_tag", vec![("tag", tag.clone())], message));
            }
        }
        Ok(())
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::County => "county",
        Level::Township => "township",
        Level::Village => "village",
    }
}

/// `spec` as the planner takes it, its items resolved to distribution files.
fn resolve(id: i64, spec: &ScheduleSpec, library: &HashMap<i64, LibraryItem>) -> Result<Schedule, Refusal> {
    let playlist = spec
        .playlist
        .iter()
        .map(|entry| {
            let item = library.get(&entry.item_id).ok_or_else(|| {
                let message = format!("library item {} does not exist", entry.item_id);
                Refusal::new("unknown_item", vec![("id", entry.item_id.to_string())], message)
            })?;
            Ok(PlaylistItem {
                content: ContentRef {
                    sha256: item.distribution.sha256.clone(),
                    duration_ms: item.duration_ms,
                    title: item.title.clone(),
                },
                repeats: entry.repeats,
            })
        })
        .collect::<Result<Vec<_>, Refusal>>()?;
    Ok(Schedule {
        id,
        name: spec.name.clone(),
        playlist,
        gap_ms: spec.gap_ms,
        recurrence: spec.recurrence.clone(),
        timezone: spec.timezone.clone(),
        valid_from: spec.valid_from,
        valid_until: spec.valid_until,
        max_delay_ms: spec.max_delay_ms,
        targets: spec.targets.clone(),
        priority: spec.priority,
        volume: spec.volume,
    })
}
