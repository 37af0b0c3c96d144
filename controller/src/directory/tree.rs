//! Parent/child navigation over a flat list of regions.
//!
//! The tree borrows the regions and never fails: a region whose parent is
//! not in the list is treated as a root, and cycles (impossible in a valid
//! directory, where levels strictly descend) are cut rather than followed.

use std::collections::{HashMap, HashSet};

use super::{Level, Region};

/// An index of regions by id and of children by parent.
#[derive(Debug)]
pub struct Tree<'a> {
    by_id: HashMap<i64, &'a Region>,
    children: HashMap<i64, Vec<&'a Region>>,
    roots: Vec<&'a Region>,
}

impl<'a> Tree<'a> {
    /// Indexes `regions`; children and roots are ordered by code.
    pub fn new(regions: &'a [Region]) -> Tree<'a> {
        let by_id: HashMap<i64, &Region> = regions.iter().map(|r| (r.id, r)).collect();
        let mut children: HashMap<i64, Vec<&Region>> = HashMap::new();
        let mut roots = Vec::new();
        for region in regions {
            match region.parent_id.filter(|p| by_id.contains_key(p)) {
                Some(parent) => children.entry(parent).or_default().push(region),
                None => roots.push(region),
            }
        }
        for list in children.values_mut() {
            list.sort_by(|a, b| a.code.cmp(&b.code));
        }
        roots.sort_by(|a, b| a.code.cmp(&b.code));
        Tree { by_id, children, roots }
    }

    /// The region with this id, if it is in the list.
    pub fn region(&self, id: i64) -> Option<&'a Region> {
        self.by_id.get(&id).copied()
    }

    /// Regions without a parent in the list (normally the counties).
    pub fn roots(&self) -> &[&'a Region] {
        &self.roots
    }

    /// The direct children of `id`, ordered by code.
    pub fn children(&self, id: i64) -> &[&'a Region] {
        self.children.get(&id).map_or(&[], Vec::as_slice)
    }

    /// The parent of `id`, if both are in the list.
    pub fn parent(&self, id: i64) -> Option<&'a Region> {
        self.region(id)?.parent_id.and_then(|p| self.region(p))
    }

    /// The township a village belongs to; `None` if `id` is not a village or
    /// its parent is missing.
    pub fn township_of(&self, village_id: i64) -> Option<&'a Region> {
        let village = self.region(village_id).filter(|r| r.level == Level::Village)?;
        village.parent_id.and_then(|p| self.region(p)).filter(|r| r.level == Level::Township)
    }

    /// Every region below `id`, depth first, each parent before its children.
    /// Empty if `id` is unknown or has no children.
    pub fn descendants(&self, id: i64) -> Vec<&'a Region> {
        let mut out = Vec::new();
        let mut seen = HashSet::from([id]);
        self.walk(self.children(id), &mut seen, &mut out);
        out
    }

    /// All regions depth first from the roots, each parent before its
    /// children (the order of a CSV export).
    pub fn depth_first(&self) -> Vec<&'a Region> {
        let mut out = Vec::with_capacity(self.by_id.len());
        let mut seen = HashSet::new();
        self.walk(&self.roots, &mut seen, &mut out);
        out
    }

    /// How many villages each township has, keyed by township id. Townships
    /// without villages are present with 0.
    pub fn villages_per_township(&self) -> HashMap<i64, usize> {
        self.by_id
            .values()
            .filter(|r| r.level == Level::Township)
            .map(|t| {
                let villages = self.children(t.id).iter().filter(|c| c.level == Level::Village);
                (t.id, villages.count())
            })
            .collect()
    }

    fn walk(&self, start: &[&'a Region], seen: &mut HashSet<i64>, out: &mut Vec<&'a Region>) {
        // An explicit stack: a deep or malformed list must not overflow the
        // call stack.
        let mut stack: Vec<&Region> = start.iter().rev().copied().collect();
        while let Some(region) = stack.pop() {
            if !seen.insert(region.id) {
                continue;
            }
            out.push(region);
            stack.extend(self.children(region.id).iter().rev().copied());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(id: i64, parent_id: Option<i64>, level: Level, code: &str) -> Region {
        Region {
            id,
            parent_id,
            level,
            name: format!("r{id}"),
            code: code.into(),
            latitude: None,
            longitude: None,
            tags: vec![],
        }
    }

    fn sample() -> Vec<Region> {
        vec![
            region(5, Some(3), Level::Village, "620821101201"),
            region(1, None, Level::County, "620821000000"),
            region(4, Some(2), Level::Village, "620821100200"),
            region(3, Some(1), Level::Township, "620821101000"),
            region(2, Some(1), Level::Township, "620821100000"),
            region(6, Some(3), Level::Village, "620821101200"),
            region(7, Some(1), Level::Township, "620821102000"),
        ]
    }

    fn ids(regions: &[&Region]) -> Vec<i64> {
        regions.iter().map(|r| r.id).collect()
    }

    #[test]
    fn children_are_ordered_by_code() {
        let regions = sample();
        let tree = Tree::new(&regions);
        assert_eq!(ids(tree.roots()), [1]);
        assert_eq!(ids(tree.children(1)), [2, 3, 7]);
        assert_eq!(ids(tree.children(3)), [6, 5]);
        assert!(tree.children(99).is_empty());
    }

    #[test]
    fn township_of_village() {
        let regions = sample();
        let tree = Tree::new(&regions);
        assert_eq!(tree.township_of(5).map(|r| r.id), Some(3));
        assert_eq!(tree.township_of(3), None, "a township is not a village");
        assert_eq!(tree.township_of(99), None);
        assert_eq!(tree.parent(3).map(|r| r.id), Some(1));
    }

    #[test]
    fn descendants_and_depth_first_put_parents_first() {
        let regions = sample();
        let tree = Tree::new(&regions);
        assert_eq!(ids(&tree.descendants(1)), [2, 4, 3, 6, 5, 7]);
        assert_eq!(ids(&tree.descendants(3)), [6, 5]);
        assert!(tree.descendants(4).is_empty());
        assert_eq!(ids(&tree.depth_first()), [1, 2, 4, 3, 6, 5, 7]);
    }

    #[test]
    fn villages_per_township_counts_empty_townships() {
        let regions = sample();
        let counts = Tree::new(&regions).villages_per_township();
        assert_eq!(counts, HashMap::from([(2, 1), (3, 2), (7, 0)]));
    }

    #[test]
    fn cycles_and_orphans_do_not_hang() {
        let regions = vec![
            region(1, Some(2), Level::Township, "1"),
            region(2, Some(1), Level::Township, "2"),
            region(3, Some(42), Level::Village, "3"),
        ];
        let tree = Tree::new(&regions);
        assert_eq!(ids(tree.roots()), [3]);
        assert_eq!(ids(&tree.descendants(1)), [2]);
        assert_eq!(ids(&tree.depth_first()), [3]);
    }
}
