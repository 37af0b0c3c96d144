//! What a report counts, which villages it covers, and how village days add
//! up to villages, townships and the whole selection.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;

use super::{Period, ReportError, VillagePresence};
use crate::directory::tree::Tree;
use crate::directory::{Level, Region};

/// Play events of one village on one day, or any sum of them, by outcome.
/// One event is one occurrence on one agent (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(into = "PlayFigures")]
pub struct PlayCounts {
    /// Played to the end (`completed`).
    pub played: u64,
    /// Stopped by a live or emergency broadcast and not resumed.
    pub preempted: u64,
    /// Not played because it was too late (agent down, clock jump…).
    pub missed: u64,
    /// Playing failed (content missing, audio device, amplifier on too long).
    pub failed: u64,
    /// Withdrawn on purpose; not counted as scheduled.
    pub skipped: u64,
    /// Audio started but the amplifier driver never confirmed the relay on.
    pub amplifier_unconfirmed: u64,
}

/// Live sessions that targeted a village and those its loudspeaker played;
/// summed over villages, "village-sessions".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LiveCounts {
    /// Sessions that targeted the village.
    pub targeted: u64,
    /// Sessions an agent of the village played any of.
    pub reached: u64,
}

/// Counts of one village on one county day, as the store aggregates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VillageDay {
    /// The village.
    pub village_id: i64,
    /// The county day the occurrences were scheduled on.
    pub day: NaiveDate,
    /// Its play events by outcome.
    pub plays: PlayCounts,
}

/// Live sessions of one village over the period, as the store counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VillageLive {
    /// The village.
    pub village_id: i64,
    /// Its sessions.
    pub live: LiveCounts,
}

/// Everything the store aggregates for a report: rows only for villages and
/// days that have any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportCounts {
    /// Play events per village and day.
    pub plays: Vec<VillageDay>,
    /// Live sessions per village.
    pub live: Vec<VillageLive>,
}

/// Which villages a report covers. The caller decides what the operator
/// may see and resolves it to one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every village of the county.
    County,
    /// Every village of one township.
    Township(i64),
    /// These villages (grouped by township in the report).
    Villages(Vec<i64>),
}

/// What a report covers, as reports name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    /// The whole county.
    County,
    /// One township.
    Township,
    /// A list of villages.
    Villages,
}

/// A [`Scope`] resolved against the directory: townships and their
/// villages, ordered by code.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    title: String,
    kind: ScopeKind,
    townships: Vec<(Region, Vec<Region>)>,
}

/// A village, township or the whole selection over the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Play events by outcome, with `scheduled` and `compliance_pct`.
    pub plays: PlayCounts,
    /// Live sessions targeted and reached (village-sessions above a village).
    pub live: LiveCounts,
    /// Villages counted (`village_count` in JSON: a township's `villages`
    /// is its list).
    #[serde(rename = "village_count")]
    pub villages: u64,
    /// Villages with at least one play event in the period; the others
    /// (no agent, or an agent that never reported) have no compliance.
    pub villages_reporting: u64,
    /// One entry per day of the period, in order.
    pub daily: Vec<PlayCounts>,
    /// Milliseconds without any agent online, summed over the villages
    /// with an enrolled agent; `None` when there is none (see the module
    /// docs, "Hours offline").
    pub offline_ms: Option<u64>,
    /// The same in hours, rounded to a tenth.
    pub hours_offline: Option<f64>,
}

/// One village's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VillageReport {
    /// Region id.
    pub id: i64,
    /// Name (operator input: escape it wherever it is shown).
    pub name: String,
    /// Administrative code.
    pub code: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// One township's report: its sum and its villages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TownshipReport {
    /// Region id.
    pub id: i64,
    /// Name (operator input: escape it wherever it is shown).
    pub name: String,
    /// Administrative code.
    pub code: String,
    /// The sum of its selected villages.
    #[serde(flatten)]
    pub figures: Figures,
    /// Its selected villages, by code.
    pub villages: Vec<VillageReport>,
}

/// A report over a period and a selection of villages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The county's or township's name, or a description of the selection.
    pub title: String,
    /// The county, a township or a list of villages.
    pub scope: ScopeKind,
    /// The days covered, `[from, to)`.
    pub period: Period,
    /// The time zone the days are counted in.
    pub timezone: &'static str,
    /// Every day of the period; `daily` series follow this order.
    pub days: Vec<NaiveDate>,
    /// The whole selection.
    pub total: Figures,
    /// Each township with selected villages, by code.
    pub townships: Vec<TownshipReport>,
}

/// How [`PlayCounts`] is serialised: with its derived figures.
#[derive(Debug, Clone, Copy, Serialize)]
struct PlayFigures {
    scheduled: u64,
    played: u64,
    preempted: u64,
    missed: u64,
    failed: u64,
    skipped: u64,
    amplifier_unconfirmed: u64,
    compliance_pct: Option<f64>,
}

impl PlayCounts {
    /// Occurrences that were due: played, preempted, missed or failed.
    /// Skipped ones were withdrawn on purpose and are not due.
    pub fn scheduled(&self) -> u64 {
        self.played + self.preempted + self.missed + self.failed
    }

    /// Played ÷ scheduled, in percent; `None` when nothing was scheduled
    /// (no reports is not 0 % and not 100 %).
    pub fn compliance_pct(&self) -> Option<f64> {
        let scheduled = self.scheduled();
        (scheduled > 0).then(|| self.played as f64 * 100.0 / scheduled as f64)
    }

    /// Whether any play event was counted, skipped ones included.
    pub fn is_empty(&self) -> bool {
        self.scheduled() == 0 && self.skipped == 0
    }

    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &PlayCounts) {
        self.played += other.played;
        self.preempted += other.preempted;
        self.missed += other.missed;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.amplifier_unconfirmed += other.amplifier_unconfirmed;
    }
}

impl LiveCounts {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &LiveCounts) {
        self.targeted += other.targeted;
        self.reached += other.reached;
    }
}

impl Selection {
    /// Resolves `scope` against the directory. An id that is not a
    /// township (or village, for [`Scope::Villages`]) is refused.
    pub fn new(regions: &[Region], scope: &Scope) -> Result<Selection, ReportError> {
        let tree = Tree::new(regions);
        let county_name = || {
            let county = regions.iter().filter(|r| r.level == Level::County).min_by(|a, b| a.code.cmp(&b.code));
            county.map_or_else(String::new, |c| c.name.clone())
        };
        let level_of = |id: i64| tree.region(id).map(|r| r.level);
        let villages_of = |township: &Region| -> Vec<Region> {
            tree.children(township.id).iter().filter(|v| v.level == Level::Village).map(|v| (*v).clone()).collect()
        };
        match scope {
            Scope::County => {
                let mut townships: Vec<&Region> = regions.iter().filter(|r| r.level == Level::Township).collect();
                townships.sort_by(|a, b| a.code.cmp(&b.code));
                let townships = townships.into_iter().map(|t| (t.clone(), villages_of(t))).collect();
                Ok(Selection { title: county_name(), kind: ScopeKind::County, townships })
            }
            Scope::Township(id) => match tree.region(*id) {
                Some(t) if t.level == Level::Township => Ok(Selection {
                    title: t.name.clone(),
                    kind: ScopeKind::Township,
                    townships: vec![(t.clone(), villages_of(t))],
                }),
                _ => Err(ReportError::NotA { level: Level::Township, id: *id, found: level_of(*id) }),
            },
            Scope::Villages(ids) => {
                let mut by_township: HashMap<i64, (Region, Vec<Region>)> = HashMap::new();
                for id in ids {
                    let village = tree.region(*id).filter(|v| v.level == Level::Village);
                    let township = tree.township_of(*id);
                    let (Some(village), Some(township)) = (village, township) else {
                        return Err(ReportError::NotA { level: Level::Village, id: *id, found: level_of(*id) });
                    };
                    let entry = by_township.entry(township.id).or_insert_with(|| (township.clone(), Vec::new()));
                    if !entry.1.iter().any(|v| v.id == village.id) {
                        entry.1.push(village.clone());
                    }
                }
                let mut townships: Vec<(Region, Vec<Region>)> = by_township.into_values().collect();
                townships.sort_by(|a, b| a.0.code.cmp(&b.0.code));
                for (_, villages) in &mut townships {
                    villages.sort_by(|a, b| a.code.cmp(&b.code));
                }
                Ok(Selection { title: county_name(), kind: ScopeKind::Villages, townships })
            }
        }
    }

    /// The ids of every selected village: what the store aggregates.
    pub fn village_ids(&self) -> Vec<i64> {
        self.townships.iter().flat_map(|(_, vs)| vs.iter().map(|v| v.id)).collect()
    }

    /// The county's or township's name.
    pub fn title(&self) -> &str {
        &self.title
    }
}

impl Figures {
    fn empty(days: usize) -> Figures {
        Figures {
            plays: PlayCounts::default(),
            live: LiveCounts::default(),
            villages: 0,
            villages_reporting: 0,
            daily: vec![PlayCounts::default(); days],
            offline_ms: None,
            hours_offline: None,
        }
    }

    fn set_offline(&mut self, ms: Option<u64>) {
        self.offline_ms = ms;
        self.hours_offline = ms.map(|ms| (ms as f64 / 360_000.0).round() / 10.0);
    }

    fn add(&mut self, other: &Figures) {
        self.plays.add(&other.plays);
        self.live.add(&other.live);
        self.villages += other.villages;
        self.villages_reporting += other.villages_reporting;
        for (mine, theirs) in self.daily.iter_mut().zip(&other.daily) {
            mine.add(theirs);
        }
        let offline = match (self.offline_ms, other.offline_ms) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
        self.set_offline(offline);
    }
}

impl Report {
    /// Adds up the store's `counts` for the `selection` over the `period`.
    /// Rows of villages outside the selection or days outside the period
    /// are ignored.
    pub fn build(selection: &Selection, period: &Period, counts: &ReportCounts) -> Report {
        let days = period.days();
        let day_index: HashMap<NaiveDate, usize> = days.iter().enumerate().map(|(i, d)| (*d, i)).collect();
        let mut per_village: HashMap<i64, Figures> = HashMap::new();
        for (_, villages) in &selection.townships {
            for v in villages {
                per_village.insert(v.id, Figures { villages: 1, ..Figures::empty(days.len()) });
            }
        }
        for row in &counts.plays {
            if let (Some(f), Some(&i)) = (per_village.get_mut(&row.village_id), day_index.get(&row.day)) {
                f.daily[i].add(&row.plays);
                f.plays.add(&row.plays);
            }
        }
        for row in &counts.live {
            if let Some(f) = per_village.get_mut(&row.village_id) {
                f.live.add(&row.live);
            }
        }
        for f in per_village.values_mut() {
            f.villages_reporting = u64::from(!f.plays.is_empty());
        }

        let mut total = Figures::empty(days.len());
        let townships = selection
            .townships
            .iter()
            .map(|(t, villages)| {
                let mut figures = Figures::empty(days.len());
                let villages: Vec<VillageReport> = villages
                    .iter()
                    .map(|v| {
                        let f = per_village.remove(&v.id).unwrap_or_else(|| Figures::empty(days.len()));
                        figures.add(&f);
                        VillageReport { id: v.id, name: v.name.clone(), code: v.code.clone(), figures: f }
                    })
                    .collect();
                total.add(&figures);
                TownshipReport { id: t.id, name: t.name.clone(), code: t.code.clone(), figures, villages }
            })
            .collect();
        Report {
            title: selection.title.clone(),
            scope: selection.kind,
            period: *period,
            timezone: period.tz().name(),
            days,
            total,
            townships,
        }
    }

    /// Adds hours offline from the store's presence history over
    /// `[from_ms, to_ms)` (the period's spans), counted up to `now_ms`;
    /// townships and the total are summed again.
    pub fn add_presence(&mut self, presence: &[VillagePresence], from_ms: i64, to_ms: i64, now_ms: i64) {
        let by_village: HashMap<i64, &VillagePresence> = presence.iter().map(|p| (p.village_id, p)).collect();
        let mut total: Option<u64> = None;
        for t in &mut self.townships {
            let mut township: Option<u64> = None;
            for v in &mut t.villages {
                let ms = by_village.get(&v.id).map(|p| p.offline_ms(from_ms, to_ms, now_ms));
                v.figures.set_offline(ms);
                if let Some(ms) = ms {
                    township = Some(township.unwrap_or(0) + ms);
                }
            }
            t.figures.set_offline(township);
            if let Some(ms) = township {
                total = Some(total.unwrap_or(0) + ms);
            }
        }
        self.total.set_offline(total);
    }

    /// Every village of the report with its township, in report order.
    pub fn villages(&self) -> impl Iterator<Item = (&TownshipReport, &VillageReport)> {
        self.townships.iter().flat_map(|t| t.villages.iter().map(move |v| (t, v)))
    }
}

impl From<PlayCounts> for PlayFigures {
    fn from(c: PlayCounts) -> PlayFigures {
        PlayFigures {
            scheduled: c.scheduled(),
            played: c.played,
            preempted: c.preempted,
            missed: c.missed,
            failed: c.failed,
            skipped: c.skipped,
            amplifier_unconfirmed: c.amplifier_unconfirmed,
            compliance_pct: c.compliance_pct(),
        }
    }
}
