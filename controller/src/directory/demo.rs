//! A generated demonstration county, 泾川县 (Jingchuan, Gansu): 14 real
//! township names and 212 villages with made-up but plausible names,
//! coordinates and tags. Everything is deterministic, so demos and tests
//! see the same directory every time.

use super::{ImportRow, Level};
use crate::store::{Store, StoreError};

/// The demonstration county's code.
pub const COUNTY_CODE: &str = "620821000000";
/// How many villages the demonstration county has.
pub const VILLAGES: usize = 212;

const COUNTY_NAME: &str = "泾川县";
const CENTRE: (f64, f64) = (35.33, 107.37);
const TOWNSHIPS: [&str; 14] = [
    "城关镇",
    "玉都镇",
    "高平镇",
    "荔堡镇",
    "王村镇",
    "窑店镇",
    "飞云镇",
    "丰台镇",
    "党原镇",
    "汭丰镇",
    "太平镇",
    "泾明乡",
    "罗汉洞乡",
    "红河乡",
];
const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "罗",
    "梁",
];
const PLACES: [&str; 12] = ["庄", "沟", "塬", "坪", "湾", "川", "峪", "河", "岭", "堡", "寨", "坡"];

/// The demonstration county as import rows: the county, then each township
/// followed by its villages. Line numbers are those of the equivalent CSV file.
pub fn demo_county() -> Vec<ImportRow> {
    let mut rows = Vec::with_capacity(1 + TOWNSHIPS.len() + VILLAGES);
    let mut push = |level, code: String, name: String, parent_code: Option<String>, at, tags| {
        let (latitude, longitude) = at;
        rows.push(ImportRow {
            line: rows.len() + 2,
            level,
            code,
            name,
            parent_code,
            latitude: Some(latitude),
            longitude: Some(longitude),
            tags,
        });
    };
    push(Level::County, COUNTY_CODE.into(), COUNTY_NAME.into(), None, CENTRE, vec![]);

    let base = VILLAGES / TOWNSHIPS.len();
    let extra = VILLAGES % TOWNSHIPS.len();
    let mut village_index = 0;
    for (t, township) in TOWNSHIPS.iter().enumerate() {
        let prefix = format!("620821{:03}", 100 + t);
        let centre = (jitter(CENTRE.0, 2 * t, 0.17), jitter(CENTRE.1, 2 * t + 1, 0.17));
        let code = format!("{prefix}000");
        push(Level::Township, code.clone(), (*township).into(), Some(COUNTY_CODE.into()), centre, vec![]);
        let villages = base + usize::from(t < extra);
        for v in 0..villages {
            // The surname index differs for every village of a township
            // (at most 16 < 20 of them), so names are unique within it.
            let name = format!("{}家{}村", SURNAMES[(v + 3 * t) % SURNAMES.len()], PLACES[(5 * v + t) % PLACES.len()]);
            let seed = 1000 + 2 * village_index;
            let at = (jitter(centre.0, seed, 0.07), jitter(centre.1, seed + 1, 0.07));
            let mut tags = Vec::new();
            if village_index % 6 == 2 {
                tags.push("flood-risk".to_owned());
            }
            if village_index % 5 == 1 {
                tags.push("hill".to_owned());
            }
            let code = format!("{prefix}{:03}", 200 + v);
            push(Level::Village, code, name, Some(format!("{prefix}000")), at, tags);
            village_index += 1;
        }
    }
    rows
}

/// Loads the demonstration county if the directory is empty; returns whether
/// it did.
pub fn load_demo(store: &dyn Store) -> Result<bool, StoreError> {
    if store.region_count()? > 0 {
        return Ok(false);
    }
    store.import_regions(&demo_county())?;
    Ok(true)
}

/// `value` moved by a deterministic offset in `-spread..spread`, rounded to
/// five decimals (about a metre).
fn jitter(value: f64, seed: usize, spread: f64) -> f64 {
    // splitmix64: a fixed, well-mixed sequence without a dependency.
    let mut z = (seed as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
    ((value + (unit * 2.0 - 1.0) * spread) * 1e5).round() / 1e5
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::directory::import::check_against;
    use crate::directory::tree::Tree;
    use crate::store::sqlite::SqliteStore;

    #[test]
    fn demo_has_one_county_fourteen_townships_212_villages() {
        let rows = demo_county();
        let count = |level| rows.iter().filter(|r| r.level == level).count();
        assert_eq!((count(Level::County), count(Level::Township), count(Level::Village)), (1, 14, 212));
        let codes: HashSet<&str> = rows.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(codes.len(), rows.len());
        assert!(rows.iter().all(|r| r.code.len() == 12 && r.code.bytes().all(|b| b.is_ascii_digit())));
        assert!(check_against(&rows, &[]).is_ok());
    }

    #[test]
    fn demo_is_deterministic_and_plausible() {
        let rows = demo_county();
        assert_eq!(rows, demo_county());
        for row in &rows {
            let (lat, lon) = (row.latitude.unwrap_or(0.0), row.longitude.unwrap_or(0.0));
            assert!((lat - CENTRE.0).abs() <= 0.25 && (lon - CENTRE.1).abs() <= 0.25, "{row:?}");
        }
        let tagged = |tag: &str| rows.iter().filter(|r| r.tags.iter().any(|t| t == tag)).count();
        assert_eq!(tagged("flood-risk"), 35);
        assert_eq!(tagged("hill"), 43);
        assert_eq!(rows[2].name, "王家庄村");
        assert_eq!(rows[2].code, "620821100200");
        assert_eq!(rows[3].code, "620821100201");
    }

    #[test]
    fn village_names_are_unique_within_a_township() {
        let rows = demo_county();
        let mut seen = HashSet::new();
        for row in rows.iter().filter(|r| r.level == Level::Village) {
            assert!(seen.insert((row.parent_code.clone(), row.name.clone())), "{}", row.name);
        }
    }

    #[test]
    fn load_demo_loads_once() {
        let store = SqliteStore::open_in_memory().expect("open");
        assert!(load_demo(&store).expect("first load"));
        assert!(!load_demo(&store).expect("second load"));
        let regions = store.regions().expect("regions");
        assert_eq!(regions.len(), 1 + 14 + VILLAGES);
        let counts = Tree::new(&regions).villages_per_township();
        let mut sizes: Vec<usize> = counts.into_values().collect();
        sizes.sort_unstable();
        assert_eq!(sizes, [15; 12].into_iter().chain([16, 16]).collect::<Vec<_>>());
    }
}
