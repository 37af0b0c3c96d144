//! The county directory: county, townships and villages, and the rules a
//! region must satisfy before any store accepts it.
//!
//! # Layout
//! - this file: the domain model (`Region`, `NewRegion`, `RegionPatch`) and
//!   field validation shared by the store and the CSV import;
//! - `tree`: parent/child navigation over a flat list of regions;
//! - `import`: rows to import and the per-line checks against the directory;
//! - `csv`: the CSV file format (parse and export);
//! - `demo`: a generated demonstration county.

pub mod csv;
pub mod demo;
pub mod import;
pub mod tree;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

pub use import::{CsvErrors, ImportRow, ImportSummary, RowError, RowProblem};

/// Longest region name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest tag accepted, in characters.
pub const MAX_TAG_CHARS: usize = 40;
/// Most tags one region may carry.
pub const MAX_TAGS: usize = 20;

/// Where a region sits in the administrative hierarchy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// A county (县): the root; it has no parent.
    County,
    /// A township (乡/镇): its parent is a county.
    Township,
    /// A village (村): its parent is a township.
    Village,
}

/// A region as stored in the directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Region {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub level: Level,
    pub name: String,
    /// 12 ASCII digits: the Chinese administrative division code.
    pub code: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub tags: Vec<String>,
}

/// A region to create (the API body).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRegion {
    #[serde(default)]
    pub parent_id: Option<i64>,
    pub level: Level,
    pub name: String,
    pub code: String,
    #[serde(default)]
    pub latitude: Option<f64>,
    #[serde(default)]
    pub longitude: Option<f64>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Changes to a region; absent fields stay as they are.
///
/// For the coordinates, an absent field keeps the value and `null` clears it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub latitude: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    pub longitude: Option<Option<f64>>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// Why a region's fields were refused. Each message names the field.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum ValidationError {
    /// The name is empty or only whitespace.
    #[error("name must not be empty")]
    NameEmpty,
    /// The name is longer than [`MAX_NAME_CHARS`].
    #[error("name is {chars} characters long; at most {MAX_NAME_CHARS} are allowed")]
    NameTooLong { chars: usize },
    /// The name contains a control character (newline, tab, …).
    #[error("name must not contain control characters (newline, tab, …)")]
    NameControl,
    /// The code is not exactly 12 ASCII digits.
    #[error("code must be exactly 12 digits (administrative division code), got `{code}`")]
    Code { code: String },
    /// The latitude is outside -90..=90 or not a number.
    #[error("latitude {value} is outside -90 to 90")]
    Latitude { value: f64 },
    /// The longitude is outside -180..=180 or not a number.
    #[error("longitude {value} is outside -180 to 180")]
    Longitude { value: f64 },
    /// Only one of latitude and longitude was given.
    #[error("latitude and longitude must be given together or not at all")]
    HalfCoordinates,
    /// A tag is empty, too long or has a character other than a letter, digit, '-' or '_'.
    #[error("tag `{tag}` must be 1 to {MAX_TAG_CHARS} letters, digits, '-' or '_'")]
    Tag { tag: String },
    /// More than [`MAX_TAGS`] distinct tags.
    #[error("{count} tags given; at most {MAX_TAGS} are allowed")]
    TooManyTags { count: usize },
    /// A county was given a parent.
    #[error("parent_id: a county has no parent")]
    CountyWithParent,
    /// A township or village was given no parent.
    #[error("parent_id: a {level} needs a parent {}", level.parent_level().map_or("", Level::as_str))]
    ParentRequired { level: Level },
    /// The parent does not exist.
    #[error("parent_id: region {parent_id} does not exist")]
    ParentNotFound { parent_id: i64 },
    /// The parent exists but is at the wrong level.
    #[error("parent_id: the parent of a {level} must be a {}, but region {parent_id} is a {parent_level}", level.parent_level().map_or("", Level::as_str))]
    ParentLevel { level: Level, parent_id: i64, parent_level: Level },
    /// Something only a village can have (an enrolment code, an agent) was
    /// asked for another level.
    #[error("village_id: region {region_id} is a {level}, not a village")]
    NotAVillage { region_id: i64, level: Level },
}

/// A level name that is not county, township or village.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("level must be county, township or village, got `{found}`")]
pub struct UnknownLevel {
    /// What was given instead.
    pub found: String,
}

impl Level {
    /// Every level, root first.
    pub const ALL: [Level; 3] = [Level::County, Level::Township, Level::Village];

    /// The lowercase name used in the API, the database and CSV files.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::County => "county",
            Level::Township => "township",
            Level::Village => "village",
        }
    }

    /// The level a parent of this level must have; `None` for a county.
    pub fn parent_level(self) -> Option<Level> {
        match self {
            Level::County => None,
            Level::Township => Some(Level::County),
            Level::Village => Some(Level::Township),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = UnknownLevel;

    fn from_str(s: &str) -> Result<Level, UnknownLevel> {
        let trimmed = s.trim();
        Level::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(trimmed))
            .ok_or_else(|| UnknownLevel { found: s.to_owned() })
    }
}

impl RegionPatch {
    /// Applies the patch to `region`, returning the changed region unvalidated.
    pub fn apply_to(&self, region: &Region) -> Region {
        let mut out = region.clone();
        if let Some(name) = &self.name {
            out.name.clone_from(name);
        }
        if let Some(code) = &self.code {
            out.code.clone_from(code);
        }
        if let Some(latitude) = self.latitude {
            out.latitude = latitude;
        }
        if let Some(longitude) = self.longitude {
            out.longitude = longitude;
        }
        if let Some(tags) = &self.tags {
            out.tags.clone_from(tags);
        }
        out
    }
}

/// Validates a new region's fields and its parent's presence, returning it
/// normalised (name trimmed, tags trimmed and deduplicated).
///
/// Whether the parent exists and has the right level is the store's check.
pub fn validate(new: &NewRegion) -> Result<NewRegion, ValidationError> {
    match (new.level, new.parent_id) {
        (Level::County, Some(_)) => return Err(ValidationError::CountyWithParent),
        (level @ (Level::Township | Level::Village), None) => {
            return Err(ValidationError::ParentRequired { level });
        }
        _ => {}
    }
    let name = validate_name(&new.name)?;
    let code = validate_code(&new.code)?;
    validate_coordinates(new.latitude, new.longitude)?;
    let tags = validate_tags(&new.tags)?;
    Ok(NewRegion {
        parent_id: new.parent_id,
        level: new.level,
        name,
        code,
        latitude: new.latitude,
        longitude: new.longitude,
        tags,
    })
}

/// Checks a name and returns it trimmed.
pub fn validate_name(name: &str) -> Result<String, ValidationError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::NameEmpty);
    }
    let chars = trimmed.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(ValidationError::NameTooLong { chars });
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ValidationError::NameControl);
    }
    Ok(trimmed.to_owned())
}

/// Checks an administrative division code: exactly 12 ASCII digits.
pub fn validate_code(code: &str) -> Result<String, ValidationError> {
    if code.len() == 12 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(code.to_owned())
    } else {
        Err(ValidationError::Code { code: code.to_owned() })
    }
}

/// Checks that coordinates are both present or both absent, and in range.
pub fn validate_coordinates(latitude: Option<f64>, longitude: Option<f64>) -> Result<(), ValidationError> {
    match (latitude, longitude) {
        (None, None) => Ok(()),
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) {
                Err(ValidationError::Latitude { value: lat })
            } else if !(-180.0..=180.0).contains(&lon) {
                Err(ValidationError::Longitude { value: lon })
            } else {
                Ok(())
            }
        }
        _ => Err(ValidationError::HalfCoordinates),
    }
}

/// Checks tags and returns them trimmed and deduplicated, first occurrence kept.
pub fn validate_tags(tags: &[String]) -> Result<Vec<String>, ValidationError> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = tag.trim();
        let chars = tag.chars().count();
        let allowed = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
        if chars == 0 || chars > MAX_TAG_CHARS || !tag.chars().all(allowed) {
            return Err(ValidationError::Tag { tag: tag.to_owned() });
        }
        if !out.iter().any(|t| t == tag) {
            out.push(tag.to_owned());
        }
    }
    if out.len() > MAX_TAGS {
        return Err(ValidationError::TooManyTags { count: out.len() });
    }
    Ok(out)
}

/// Deserialises a field that is present (possibly `null`) as `Some(…)`, so
/// that together with `#[serde(default)]` absent and `null` differ.
fn present<'de, D>(deserializer: D) -> Result<Option<Option<f64>>, D::Error>
where
    D: Deserializer<'de>,
{
    Option::<f64>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn village() -> NewRegion {
        NewRegion {
            parent_id: Some(2),
            level: Level::Village,
            name: "  王家沟村 ".into(),
            code: "620821100200".into(),
            latitude: Some(35.3),
            longitude: Some(107.4),
            tags: vec!["防汛".into(), "hill".into(), "防汛".into()],
        }
    }

    fn check(change: impl FnOnce(&mut NewRegion), expected: Result<(), ValidationError>) {
        let mut new = village();
        change(&mut new);
        assert_eq!(validate(&new).map(|_| ()), expected);
    }

    #[test]
    fn validate_normalises_name_and_tags() {
        let out = validate(&village()).expect("valid");
        assert_eq!(out.name, "王家沟村");
        assert_eq!(out.tags, vec!["防汛".to_owned(), "hill".to_owned()]);
    }

    #[test]
    fn validate_table() {
        use ValidationError as E;
        check(|n| n.name = " \t ".into(), Err(E::NameEmpty));
        check(|n| n.name = "村".repeat(101), Err(E::NameTooLong { chars: 101 }));
        check(|n| n.name = "村".repeat(100), Ok(()));
        check(|n| n.name = "a\nb".into(), Err(E::NameControl));
        check(|n| n.code = "62082110020".into(), Err(E::Code { code: "62082110020".into() }));
        check(|n| n.code = "62082110020x".into(), Err(E::Code { code: "62082110020x".into() }));
        check(|n| n.code = "６２０８２１１００２００".into(), Err(E::Code { code: "６２０８２１１００２００".into() }));
        check(|n| n.latitude = Some(90.5), Err(E::Latitude { value: 90.5 }));
        check(|n| n.longitude = Some(-180.5), Err(E::Longitude { value: -180.5 }));
        check(|n| n.longitude = None, Err(E::HalfCoordinates));
        check(|n| (n.latitude, n.longitude) = (None, None), Ok(()));
        check(|n| (n.latitude, n.longitude) = (Some(-90.0), Some(-180.0)), Ok(()));
        check(|n| n.tags = vec!["a b".into()], Err(E::Tag { tag: "a b".into() }));
        check(|n| n.tags = vec!["".into()], Err(E::Tag { tag: "".into() }));
        check(|n| n.tags = vec!["x".repeat(41)], Err(E::Tag { tag: "x".repeat(41) }));
        check(|n| n.tags = vec!["flood-risk_2".into()], Ok(()));
        check(|n| n.tags = (0..21).map(|i| format!("t{i}")).collect(), Err(E::TooManyTags { count: 21 }));
        check(|n| n.tags = (0..25).map(|i| format!("t{}", i % 20)).collect(), Ok(()));
        check(|n| n.parent_id = None, Err(E::ParentRequired { level: Level::Village }));
        check(|n| n.level = Level::County, Err(E::CountyWithParent));
    }

    #[test]
    fn nan_coordinates_are_refused() {
        assert!(validate_coordinates(Some(f64::NAN), Some(1.0)).is_err());
        assert!(validate_coordinates(Some(1.0), Some(f64::INFINITY)).is_err());
    }

    #[test]
    fn messages_name_the_field() {
        let err = ValidationError::ParentLevel { level: Level::Village, parent_id: 3, parent_level: Level::County };
        assert_eq!(err.to_string(), "parent_id: the parent of a village must be a township, but region 3 is a county");
        assert!(ValidationError::Code { code: "1".into() }.to_string().starts_with("code"));
    }

    #[test]
    fn level_parses_and_displays() {
        assert_eq!("Village".parse::<Level>(), Ok(Level::Village));
        assert_eq!(" township ".parse::<Level>(), Ok(Level::Township));
        assert!("town".parse::<Level>().is_err());
        assert_eq!(serde_json::to_string(&Level::County).expect("serialise"), "\"county\"");
    }

    #[test]
    fn patch_distinguishes_absent_from_null() {
        let patch: RegionPatch = serde_json::from_str(r#"{"latitude": null, "name": "新名"}"#).expect("parse");
        assert_eq!(patch.latitude, Some(None));
        assert_eq!(patch.longitude, None);
        let region = Region {
            id: 1,
            parent_id: None,
            level: Level::County,
            name: "旧".into(),
            code: "620821000000".into(),
            latitude: Some(1.0),
            longitude: Some(2.0),
            tags: vec![],
        };
        let out = patch.apply_to(&region);
        assert_eq!((out.name.as_str(), out.latitude, out.longitude), ("新名", None, Some(2.0)));
        assert!(serde_json::from_str::<RegionPatch>(r#"{"nmae": "x"}"#).is_err());
    }
}
