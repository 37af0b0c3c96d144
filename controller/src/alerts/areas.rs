//! From CAP areas to villages: the union of what each area's geocodes,
//! polygons and circles match in the directory.
//!
//! - A geocode whose value is 6, 9 or 12 digits is an administrative
//!   division code, whatever its `valueName` (platforms spell it 行政区划代码,
//!   ADCODE, GB/T 2260…): county `620821`, township `620821100`, village
//!   `620821100200`. Trailing zero groups are dropped (`620821100000` is the
//!   township, `620800` the prefecture), and the code matches every village
//!   whose 12-digit code starts with what is left.
//! - A polygon or circle matches the villages whose coordinates it holds;
//!   villages without coordinates cannot match one.
//! - Other geocodes (SAME, FIPS…) are ignored.
//!
//! An area that matches no village is an error naming it: an upstream
//! platform must learn that its alert reached nobody there.

use std::collections::BTreeSet;

use super::cap::Area;
use super::geo::Point;
use crate::directory::{Level, Region};

/// Where the administrative code levels end: province, prefecture,
/// county, township, village.
const LEVEL_ENDS: [usize; 5] = [2, 4, 6, 9, 12];

/// An area that matched no village, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmatched {
    /// Its `areaDesc`.
    pub area: String,
    /// What it gave that matched nothing.
    pub reason: String,
}

/// What a set of areas reaches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// Village ids, sorted.
    pub villages: BTreeSet<i64>,
    /// Areas that matched nothing.
    pub unmatched: Vec<Unmatched>,
    /// Remarks for the sender (ignored geocodes, villages without
    /// coordinates).
    pub notes: Vec<String>,
}

/// The prefix an administrative code matches, or `None` when `value` is
/// not one (not 6, 9 or 12 ASCII digits, or all zeros).
pub fn admin_prefix(value: &str) -> Option<&str> {
    let value = value.trim();
    if ![6, 9, 12].contains(&value.len()) || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // The shortest level boundary after which only zeros follow.
    let end = LEVEL_ENDS.into_iter().filter(|&e| e <= value.len()).find(|&e| value[e..].bytes().all(|b| b == b'0'))?;
    Some(&value[..end]).filter(|p| !p.bytes().all(|b| b == b'0'))
}

/// The villages `areas` reach in `regions`.
pub fn reach(areas: &[&Area], regions: &[Region]) -> Reach {
    let villages: Vec<&Region> = regions.iter().filter(|r| r.level == Level::Village).collect();
    let mut out = Reach::default();
    let mut without_coordinates = false;
    for area in areas {
        let mut matched = BTreeSet::new();
        let mut given = Vec::new();
        for code in &area.geocodes {
            match admin_prefix(&code.value) {
                Some(prefix) => {
                    given.push(format!("code {}", code.value));
                    matched.extend(villages.iter().filter(|v| v.code.starts_with(prefix)).map(|v| v.id));
                }
                None => {
                    let name = if code.value_name.is_empty() { "geocode" } else { code.value_name.as_str() };
                    out.notes.push(format!(
                        "area `{}`: geocode {name}={} is not an administrative code; ignored",
                        area.description, code.value
                    ));
                }
            }
        }
        if !area.polygons.is_empty() || !area.circles.is_empty() {
            let n = area.polygons.len() + area.circles.len();
            given.push(if n == 1 { "a polygon or circle".to_owned() } else { format!("{n} polygons or circles") });
            for v in &villages {
                let Some(p) = point(v) else {
                    without_coordinates = true;
                    continue;
                };
                if area.polygons.iter().any(|s| s.contains(p)) || area.circles.iter().any(|c| c.contains(p)) {
                    matched.insert(v.id);
                }
            }
        }
        if matched.is_empty() {
            let reason = if given.is_empty() {
                "it has no administrative code, polygon or circle".to_owned()
            } else {
                format!("{} matched no village in the directory", given.join(" and "))
            };
            out.unmatched.push(Unmatched { area: area.description.clone(), reason });
        }
        out.villages.extend(matched);
    }
    if without_coordinates {
        out.notes.push("some villages have no coordinates and cannot be matched by a polygon or circle".to_owned());
    }
    out
}

fn point(r: &Region) -> Option<Point> {
    Some(Point { lat: r.latitude?, lon: r.longitude? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::cap::Geocode;
    use crate::alerts::geo;

    fn region(id: i64, level: Level, code: &str, at: Option<(f64, f64)>) -> Region {
        Region {
            id,
            parent_id: None,
            level,
            name: format!("r{id}"),
            code: code.into(),
            latitude: at.map(|a| a.0),
            longitude: at.map(|a| a.1),
            tags: vec![],
        }
    }

    fn directory() -> Vec<Region> {
        vec![
            region(1, Level::County, "620821000000", None),
            region(2, Level::Township, "620821100000", None),
            region(3, Level::Village, "620821100200", Some((35.335, 107.365))),
            region(4, Level::Village, "620821100201", Some((35.340, 107.380))),
            region(5, Level::Township, "620821101000", None),
            region(6, Level::Village, "620821101200", Some((35.290, 107.450))),
            region(7, Level::Village, "620821101201", None),
        ]
    }

    fn area(geocodes: &[&str], polygon: Option<&str>, circle: Option<&str>) -> Area {
        Area {
            description: "test area".into(),
            polygons: polygon.and_then(|p| geo::parse_polygon(p).expect("valid")).into_iter().collect(),
            circles: circle.map(|c| geo::parse_circle(c).expect("valid")).into_iter().collect(),
            geocodes: geocodes
                .iter()
                .map(|v| Geocode { value_name: "行政区划代码".into(), value: (*v).into() })
                .collect(),
        }
    }

    #[test]
    fn administrative_codes_become_prefixes() {
        let check = |value: &str, expected: Option<&str>| assert_eq!(admin_prefix(value), expected, "{value}");
        check("620821", Some("620821"));
        check("620821100", Some("620821100"));
        check("620821100200", Some("620821100200"));
        check("620821100000", Some("620821100"));
        check("620821000000", Some("620821"));
        check("620800", Some("6208"));
        check(" 620821 ", Some("620821"));
        check("000000", None);
        check("62082", None);
        check("6208211", None);
        check("62082110020a", None);
        check("６２０８２１", None);
    }

    #[test]
    fn areas_reach_the_union_of_their_villages() {
        let dir = directory();
        let check = |areas: &[Area], expected: &[i64]| {
            let refs: Vec<&Area> = areas.iter().collect();
            let got = reach(&refs, &dir);
            assert_eq!(got.villages.into_iter().collect::<Vec<_>>(), expected, "{areas:?}");
            assert_eq!(got.unmatched, []);
        };
        check(&[area(&["620821"], None, None)], &[3, 4, 6, 7]);
        check(&[area(&["620821100"], None, None)], &[3, 4]);
        check(&[area(&["620821101000"], None, None)], &[6, 7]);
        check(&[area(&["620821100201"], None, None)], &[4]);
        check(&[area(&[], None, Some("35.29,107.45 1"))], &[6]);
        check(&[area(&[], Some("35.3,107.3 35.3,107.4 35.4,107.4 35.4,107.3 35.3,107.3"), None)], &[3, 4]);
        check(
            &[area(&["620821100200"], None, Some("35.29,107.45 1")), area(&["620821100201"], None, None)],
            &[3, 4, 6],
        );
    }

    #[test]
    fn unmatched_areas_are_named_with_their_reason() {
        let dir = directory();
        let a = area(&["620821999"], None, None);
        let b = area(&[], None, Some("30.0,100.0 5"));
        let mut c = area(&[], None, None);
        c.geocodes.push(Geocode { value_name: "SAME".into(), value: "006113".into() });
        c.geocodes.push(Geocode { value_name: "UGC".into(), value: "CAZ041".into() });
        let got = reach(&[&a, &b, &c], &dir);
        assert!(got.villages.is_empty());
        let reasons: Vec<&str> = got.unmatched.iter().map(|u| u.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "code 620821999 matched no village in the directory",
                "a polygon or circle matched no village in the directory",
                "code 006113 matched no village in the directory",
            ]
        );
        assert!(got.notes.iter().any(|n| n.contains("UGC=CAZ041")), "{:?}", got.notes);
        assert!(got.notes.iter().any(|n| n.contains("no coordinates")), "{:?}", got.notes);
    }
}
