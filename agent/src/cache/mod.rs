//! The content cache: verified audio files named by their SHA-256, the
//! downloader that fills it, and eviction over a size budget.
//!
//! On disk, under the state directory:
//! - `cache/<sha256>`: a complete, verified item. Only the downloader
//!   creates one, by renaming a verified partial file, so a file there is
//!   whole and checked.
//! - `cache/partial/<sha256>.part`: a download in progress or cut off;
//!   the next attempt resumes from its length.
//! - `cache/index.json`: the recency of every item ([`index`]).
//!
//! Eviction: content the applied plan needs is never evicted, even over the
//! budget. Among the rest, the least recently used goes first, where "used"
//! means needed by a plan or downloaded. Only complete files count against
//! the budget; partial files exist only for needed content.
//!
//! # Layout
//! - [`ContentCache`] (here): what is cached, recency, eviction. Owned by
//!   the shell's loop; every call is a few small file operations.
//! - [`download`]: the downloader task and its handle.
//! - [`index`]: the recency index file.

pub mod download;
pub mod index;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use index::{Index, Item, Loaded};

/// Name of the cache directory inside the state directory.
pub const CACHE_DIR: &str = "cache";
/// Name of the partial-download directory inside the cache directory.
pub const PARTIAL_DIR: &str = "partial";

/// The complete files of the content cache and their recency.
#[derive(Debug)]
pub struct ContentCache {
    agent: String,
    dir: PathBuf,
    budget_bytes: u64,
    index: Index,
    needed: BTreeSet<String>,
}

impl ContentCache {
    /// Opens the cache of the agent whose state lives in `state_dir`:
    /// lists its files and reads (or rebuilds) the index. Never fails; what
    /// cannot be read is logged and treated as absent.
    pub fn open(agent: &str, state_dir: &Path, budget_bytes: u64) -> ContentCache {
        let dir = state_dir.join(CACHE_DIR);
        let files = list_files(agent, &dir);
        let (index, loaded) = Index::load(&dir, &files);
        if let Loaded::Rebuilt(why) = &loaded {
            tracing::warn!(%agent, %why, "content cache index rebuilt from the files; recency is lost");
        }
        let cache = ContentCache { agent: agent.to_string(), dir, budget_bytes, index, needed: BTreeSet::new() };
        if loaded != Loaded::Intact && !cache.index.items.is_empty() {
            cache.save();
        }
        cache
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where an item's complete file lives.
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(sha256)
    }

    /// SHA-256 of every complete item.
    pub fn cached(&self) -> BTreeSet<String> {
        self.index.items.keys().cloned().collect()
    }

    /// Whether the item is complete in the cache. An item whose file has
    /// gone (removed by hand) is forgotten.
    pub fn is_cached(&mut self, sha256: &str) -> bool {
        if !self.index.items.contains_key(sha256) {
            return false;
        }
        if self.path(sha256).is_file() {
            return true;
        }
        self.index.items.remove(sha256);
        self.save();
        false
    }

    /// Bytes held by complete items.
    pub fn total_bytes(&self) -> u64 {
        self.index.total_bytes()
    }

    /// A plan was applied that needs `needed`: they become the most recently
    /// used, are protected from eviction, and the cache is brought within
    /// its budget. Returns what was evicted.
    pub fn plan_changed(&mut self, needed: BTreeSet<String>) -> Vec<String> {
        let tick = self.index.tick();
        for sha256 in &needed {
            if let Some(item) = self.index.items.get_mut(sha256) {
                item.last_used = tick;
            }
        }
        self.needed = needed;
        let evicted = self.evict();
        self.save();
        evicted
    }

    /// The downloader renamed a verified item into the cache: it becomes the
    /// most recently used and the cache is brought within its budget.
    /// Returns what was evicted, or why the new file cannot be found.
    pub fn stored(&mut self, sha256: &str) -> std::io::Result<Vec<String>> {
        let size_bytes = std::fs::metadata(self.path(sha256))?.len();
        let last_used = self.index.tick();
        self.index.items.insert(sha256.to_string(), Item { size_bytes, last_used });
        let evicted = self.evict();
        self.save();
        Ok(evicted)
    }

    /// Removes unneeded items, least recently used first, until the cache is
    /// within budget or only needed items remain.
    fn evict(&mut self) -> Vec<String> {
        let mut total = self.index.total_bytes();
        if total <= self.budget_bytes {
            return Vec::new();
        }
        let mut candidates: Vec<(u64, String)> = self
            .index
            .items
            .iter()
            .filter(|(sha256, _)| !self.needed.contains(*sha256))
            .map(|(sha256, item)| (item.last_used, sha256.clone()))
            .collect();
        candidates.sort();
        let mut evicted = Vec::new();
        for (_, sha256) in candidates {
            if total <= self.budget_bytes {
                break;
            }
            let path = self.path(&sha256);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::error!(agent = %self.agent, path = %path.display(), error = %e, "cannot evict content");
                    continue;
                }
            }
            if let Some(item) = self.index.items.remove(&sha256) {
                total = total.saturating_sub(item.size_bytes);
            }
            tracing::info!(agent = %self.agent, %sha256, "evicted unneeded content over the cache budget");
            evicted.push(sha256);
        }
        if total > self.budget_bytes {
            tracing::warn!(
                agent = %self.agent,
                cached = %download::megabytes(total),
                budget = %download::megabytes(self.budget_bytes),
                "the plan needs more content than the cache budget; keeping it all"
            );
        }
        evicted
    }

    fn save(&self) {
        if let Err(e) = self.index.save(&self.dir) {
            tracing::error!(agent = %self.agent, dir = %self.dir.display(), error = %e, "cannot write the content cache index");
        }
    }
}

/// Whether `name` is a SHA-256 in lowercase hex, as content is named.
pub fn is_sha256(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// SHA-256 and size of every complete file in `dir`.
fn list_files(agent: &str, dir: &Path) -> BTreeMap<String, u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return BTreeMap::new(),
        Err(e) => {
            tracing::error!(%agent, dir = %dir.display(), error = %e, "cannot list the content cache");
            return BTreeMap::new();
        }
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok().filter(|n| is_sha256(n))?;
            let meta = e.metadata().ok().filter(|m| m.is_file())?;
            Some((name, meta.len()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn put(state_dir: &Path, sha256: &str, size: usize) {
        let dir = state_dir.join(CACHE_DIR);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(sha256), vec![0u8; size]).expect("write");
    }

    #[test]
    fn evicts_the_least_recently_used_unneeded_item_first() {
        let state = tempfile::tempdir().expect("tempdir");
        let mut cache = ContentCache::open("ag", state.path(), 250);
        for c in ['a', 'b', 'c'] {
            put(state.path(), &sha(c), 100);
        }
        // Downloaded in the order a, b, c while a plan needed all three.
        assert!(cache.plan_changed([sha('a'), sha('b'), sha('c')].into()).is_empty());
        for c in ['a', 'b', 'c'] {
            assert!(cache.stored(&sha(c)).expect("stored").is_empty(), "needed items stay over budget");
        }
        assert_eq!(cache.total_bytes(), 300);

        // The next plan needs only c: a (the least recent) goes, b stays
        // within the budget.
        assert_eq!(cache.plan_changed([sha('c')].into()), [sha('a')]);
        assert!(!state.path().join(CACHE_DIR).join(sha('a')).exists());
        assert_eq!(cache.cached(), [sha('b'), sha('c')].into());

        // A new item d is downloaded: b is now the least recent unneeded.
        put(state.path(), &sha('d'), 100);
        assert_eq!(cache.stored(&sha('d')).expect("stored"), [sha('b')]);
        assert_eq!(cache.cached(), [sha('c'), sha('d')].into());

        // Recency survives a restart through the index.
        let mut reopened = ContentCache::open("ag", state.path(), 150);
        assert_eq!(reopened.plan_changed(BTreeSet::new()), [sha('c')], "c was used before d");
        assert!(reopened.is_cached(&sha('d')));
    }

    #[test]
    fn needed_items_stay_even_over_budget() {
        let state = tempfile::tempdir().expect("tempdir");
        for c in ['a', 'b'] {
            put(state.path(), &sha(c), 100);
        }
        let mut cache = ContentCache::open("ag", state.path(), 10);
        assert_eq!(cache.plan_changed([sha('a'), sha('b')].into()), Vec::<String>::new());
        assert_eq!(cache.cached(), [sha('a'), sha('b')].into());
        assert_eq!(cache.plan_changed([sha('b')].into()), [sha('a')]);
        assert_eq!(cache.cached(), [sha('b')].into());
    }

    #[test]
    fn files_that_are_not_content_are_ignored_and_vanished_files_forgotten() {
        let state = tempfile::tempdir().expect("tempdir");
        put(state.path(), &sha('a'), 4);
        put(state.path(), "not-a-hash", 4);
        put(state.path(), &"A".repeat(64), 4);
        std::fs::create_dir_all(state.path().join(CACHE_DIR).join(sha('b'))).expect("mkdir");
        let mut cache = ContentCache::open("ag", state.path(), 1 << 20);
        assert_eq!(cache.cached(), [sha('a')].into());
        std::fs::remove_file(cache.path(&sha('a'))).expect("rm");
        assert!(!cache.is_cached(&sha('a')));
        assert!(cache.cached().is_empty());
        assert!(!cache.is_cached("../credentials.toml"));
    }
}
