//! `cache/index.json`: the recency of every cached item.
//!
//! Recency is a logical clock, not wall time: village boards have no
//! real-time clock and their wall clock jumps after NTP sync, which would
//! make a "last used at" time meaningless. Every use takes the next tick, so
//! a larger tick is always a later use. The index is a hint: a missing or
//! damaged index is rebuilt from the files (every item as least recent), an
//! entry without a file is dropped, and a file without an entry is added.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// File name of the index inside the cache directory.
pub const INDEX_FILE: &str = "index.json";

/// Largest index file read; bigger is taken as damaged (a plan holds at
/// most a few thousand items, each about 100 bytes in the index).
const MAX_INDEX_BYTES: u64 = 16 << 20;

/// The recency of every cached item, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// The last tick handed out.
    pub clock: u64,
    /// Cached items by SHA-256.
    pub items: BTreeMap<String, Item>,
}

/// One cached item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Size of its file.
    pub size_bytes: u64,
    /// The tick of its last use (a plan needed it, or it was downloaded).
    pub last_used: u64,
}

/// How the index was found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    /// Read as written.
    Intact,
    /// There was none (a new agent, or one from before the index).
    Absent,
    /// Unreadable or damaged; rebuilt from the files, with why.
    Rebuilt(String),
}

impl Index {
    /// Reads the index in `dir` and reconciles it with `files` (SHA-256 and
    /// size of every complete file in the cache). Never fails: whatever is
    /// wrong with the file is reported in [`Loaded`].
    pub fn load(dir: &Path, files: &BTreeMap<String, u64>) -> (Index, Loaded) {
        let (mut index, loaded) = match read(&dir.join(INDEX_FILE)) {
            Ok(Some(index)) => (index, Loaded::Intact),
            Ok(None) => (Index::default(), Loaded::Absent),
            Err(why) => (Index::default(), Loaded::Rebuilt(why)),
        };
        index.items.retain(|sha256, _| files.contains_key(sha256));
        for (sha256, &size_bytes) in files {
            let item = index.items.entry(sha256.clone()).or_insert(Item { size_bytes, last_used: 0 });
            item.size_bytes = size_bytes;
        }
        // A hand-edited clock behind its items would make new uses older
        // than old ones.
        let newest = index.items.values().map(|i| i.last_used).max().unwrap_or(0);
        index.clock = index.clock.max(newest);
        (index, loaded)
    }

    /// Writes the index atomically into `dir`.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        crate::shell::write_atomic(dir, INDEX_FILE, &json)
    }

    /// The next tick.
    pub fn tick(&mut self) -> u64 {
        self.clock = self.clock.saturating_add(1);
        self.clock
    }

    /// Bytes held by all items.
    pub fn total_bytes(&self) -> u64 {
        self.items.values().map(|i| i.size_bytes).fold(0, u64::saturating_add)
    }
}

fn read(path: &Path) -> Result<Option<Index>, String> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_INDEX_BYTES => {
            return Err(format!("{} is {} bytes, too large", path.display(), m.len()));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| format!("{} is damaged: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(items: &[(&str, u64)]) -> BTreeMap<String, u64> {
        items.iter().map(|(s, n)| (s.to_string(), *n)).collect()
    }

    #[test]
    fn round_trips_and_reconciles_with_the_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut index = Index::default();
        let t = index.tick();
        index.items.insert("a".into(), Item { size_bytes: 5, last_used: t });
        index.items.insert("gone".into(), Item { size_bytes: 7, last_used: t });
        index.save(dir.path()).expect("save");

        let (loaded, how) = Index::load(dir.path(), &files(&[("a", 6), ("new", 3)]));
        assert_eq!(how, Loaded::Intact);
        assert_eq!(loaded.items["a"], Item { size_bytes: 6, last_used: 1 }, "the file's size wins");
        assert_eq!(loaded.items["new"], Item { size_bytes: 3, last_used: 0 }, "an unknown file is least recent");
        assert!(!loaded.items.contains_key("gone"), "an entry without a file is dropped");
        assert_eq!(loaded.total_bytes(), 9);
        assert_eq!(loaded.clock, 1);
    }

    #[test]
    fn a_missing_or_damaged_index_is_rebuilt_never_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let on_disk = files(&[("a", 1), ("b", 2)]);
        let (index, how) = Index::load(dir.path(), &on_disk);
        assert_eq!(how, Loaded::Absent);
        assert_eq!(index.items.len(), 2);

        let path = dir.path().join(INDEX_FILE);
        let garbage: [&[u8]; 6] = [
            b"{ half",
            b"",
            b"\xff\xfe\x00",
            b"[]",
            br#"{"clock": -1, "items": {}}"#,
            br#"{"clock": 1, "items": {"a": {"size_bytes": "x", "last_used": 1}}}"#,
        ];
        for bytes in garbage {
            std::fs::write(&path, bytes).expect("write");
            let (index, how) = Index::load(dir.path(), &on_disk);
            assert!(matches!(how, Loaded::Rebuilt(ref why) if why.contains("damaged")), "{how:?}");
            assert_eq!(index.items.keys().collect::<Vec<_>>(), ["a", "b"]);
            assert!(index.items.values().all(|i| i.last_used == 0));
        }

        std::fs::write(&path, br#"{"clock": 0, "items": {"a": {"size_bytes": 1, "last_used": 9}}}"#).expect("write");
        let (mut index, _) = Index::load(dir.path(), &on_disk);
        assert!(index.tick() > 9, "a clock behind its items is moved forward");
    }
}
