//! The schedule: what plays (a playlist), when (a recurrence in a time
//! zone, within a validity window), where (targets), how loud and how
//! important — and its validation.

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::ScheduleError;
use crate::priority::Priority;
use crate::recurrence::{Compiled, Recurrence};
use crate::zone;

/// The most extra plays of one playlist item.
pub const MAX_REPEATS: u32 = 99;
/// The longest playlist, gaps included: a day.
pub const MAX_DURATION_MS: u64 = 24 * 3600 * 1000;
/// The longest an occurrence may be delayed: a day.
pub const MAX_DELAY_MS: u64 = 24 * 3600 * 1000;

/// A broadcast timetable entry, stored by the controller as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Unique among the schedules planned together; ties in priority and
    /// start go to the lower id.
    pub id: i64,
    /// The operator's name for it.
    pub name: String,
    /// What plays, in order.
    pub playlist: Vec<PlaylistItem>,
    /// Silence between consecutive plays (repeats included), in ms.
    #[serde(default)]
    pub gap_ms: u64,
    /// When it fires.
    pub recurrence: Recurrence,
    /// IANA zone the recurrence and validity dates are read in.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// First local date (inclusive) on which an occurrence may start; none: no limit.
    #[serde(default)]
    pub valid_from: Option<NaiveDate>,
    /// Last local date (inclusive) on which an occurrence may start; none: no limit.
    #[serde(default)]
    pub valid_until: Option<NaiveDate>,
    /// How late an occurrence may start when something else holds its
    /// slot (a higher or earlier broadcast, quiet hours); 0: on time or not at all.
    #[serde(default)]
    pub max_delay_ms: u64,
    /// Which villages hear it.
    pub targets: Targets,
    /// How important it is.
    #[serde(default = "default_priority")]
    pub priority: Priority,
    /// Playback volume, 0 to 100.
    pub volume: u8,
}

/// One entry of a playlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaylistItem {
    /// The audio to play.
    pub content: ContentRef,
    /// Extra plays after the first: 0 plays it once, 2 three times in a row.
    #[serde(default)]
    pub repeats: u32,
}

/// Content by hash, as the agents cache it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContentRef {
    /// SHA-256 of the file, 64 lowercase hex digits.
    pub sha256: String,
    /// Playing time in ms.
    pub duration_ms: u64,
    /// Shown to operators and in play logs.
    pub title: String,
}

/// Which villages a schedule reaches: the union of everything listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    /// Every village of the county.
    #[serde(default)]
    pub county: bool,
    /// Every village of these townships.
    #[serde(default)]
    pub townships: Vec<i64>,
    /// These villages.
    #[serde(default)]
    pub villages: Vec<i64>,
    /// Every village carrying one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// What targeting needs to know about a village (a view of the
/// controller's directory; this crate does not depend on the controller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VillageInfo {
    /// The village's id.
    pub id: i64,
    /// The township it belongs to.
    pub township_id: i64,
    /// Its tags ("market", "school", …).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A validated schedule ready to evaluate.
#[derive(Debug)]
pub(crate) struct Prepared<'a> {
    pub(crate) schedule: &'a Schedule,
    pub(crate) tz: Tz,
    pub(crate) recurrence: Compiled,
    pub(crate) duration_ms: u64,
    /// Each play's offset from the occurrence's start, in order.
    pub(crate) plays: Vec<(u64, &'a ContentRef)>,
}

impl Schedule {
    /// Checks everything an operator could get wrong; the error says what and how to fix it.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        self.prepare().map(drop)
    }

    /// How long one occurrence plays, gaps included (saturating).
    pub fn duration_ms(&self) -> u64 {
        let plays = self.playlist.iter().map(|item| u64::from(item.repeats) + 1).fold(0u64, u64::saturating_add);
        let sound = self
            .playlist
            .iter()
            .map(|item| item.content.duration_ms.saturating_mul(u64::from(item.repeats) + 1))
            .fold(0u64, u64::saturating_add);
        sound.saturating_add(self.gap_ms.saturating_mul(plays.saturating_sub(1)))
    }

    pub(crate) fn prepare(&self) -> Result<Prepared<'_>, ScheduleError> {
        if self.name.trim().is_empty() {
            return Err(ScheduleError::NoName);
        }
        if self.playlist.is_empty() {
            return Err(ScheduleError::EmptyPlaylist);
        }
        for item in &self.playlist {
            let content = &item.content;
            let title = || content.title.clone();
            if content.sha256.len() != 64 || !content.sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(ScheduleError::InvalidSha256 { title: title(), sha256: content.sha256.clone() });
            }
            if content.duration_ms == 0 {
                return Err(ScheduleError::ZeroDuration { title: title() });
            }
            if item.repeats > MAX_REPEATS {
                return Err(ScheduleError::TooManyRepeats { title: title(), repeats: item.repeats });
            }
        }
        let duration_ms = self.duration_ms();
        if duration_ms > MAX_DURATION_MS {
            return Err(ScheduleError::TooLong { duration_ms });
        }
        if self.max_delay_ms > MAX_DELAY_MS {
            return Err(ScheduleError::DelayTooLong { max_delay_ms: self.max_delay_ms });
        }
        if self.targets.is_empty() {
            return Err(ScheduleError::NoTargets);
        }
        if let (Some(from), Some(until)) = (self.valid_from, self.valid_until)
            && until < from
        {
            return Err(ScheduleError::ValidityReversed { from, until });
        }
        if self.volume > 100 {
            return Err(ScheduleError::VolumeOutOfRange { volume: self.volume });
        }
        let tz = zone::parse(&self.timezone)
            .ok_or_else(|| ScheduleError::UnknownTimeZone { name: self.timezone.clone() })?;
        let recurrence = self.recurrence.compile()?;
        let mut plays = Vec::new();
        let mut offset = 0u64;
        for item in &self.playlist {
            for _ in 0..=item.repeats {
                plays.push((offset, &item.content));
                offset = offset.saturating_add(item.content.duration_ms).saturating_add(self.gap_ms);
            }
        }
        Ok(Prepared { schedule: self, tz, recurrence, duration_ms, plays })
    }
}

impl Targets {
    /// Targets nothing at all.
    pub fn is_empty(&self) -> bool {
        !self.county && self.townships.is_empty() && self.villages.is_empty() && self.tags.is_empty()
    }

    /// Whether the village hears schedules with these targets.
    pub fn includes(&self, village: &VillageInfo) -> bool {
        self.county
            || self.villages.contains(&village.id)
            || self.townships.contains(&village.township_id)
            || self.tags.iter().any(|tag| village.tags.contains(tag))
    }

    /// The villages of `directory` these targets reach, in directory order.
    pub fn select<'a>(&self, directory: &'a [VillageInfo]) -> impl Iterator<Item = &'a VillageInfo> {
        directory.iter().filter(|village| self.includes(village))
    }
}

fn default_timezone() -> String {
    zone::DEFAULT_TIMEZONE.to_owned()
}

fn default_priority() -> Priority {
    Priority::Scheduled
}
