//! The content directory: `data_dir/content/<sha256>` for every original and
//! distribution file, and `data_dir/content/tmp/` for files being written.
//!
//! A file is written to a temporary file (removed when dropped, so every
//! failure path cleans up), synced, and renamed to its content address, which
//! is atomic within one file system. Identical bytes have one name, so a
//! rename over an existing file changes nothing.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

/// The content directory of one controller.
#[derive(Debug)]
pub struct ContentStore {
    dir: PathBuf,
    tmp: PathBuf,
    /// Held while files are renamed into place and their rows written, or
    /// rows deleted and their files removed, so that a file is never removed
    /// while another item is being committed with the same bytes.
    commit: Mutex<()>,
}

impl ContentStore {
    /// Opens (creating) `data_dir/content` and removes temporary files left
    /// by a controller that stopped mid-upload.
    pub fn open(data_dir: &Path) -> io::Result<ContentStore> {
        let dir = data_dir.join("content");
        let tmp = dir.join("tmp");
        fs::create_dir_all(&tmp)?;
        let mut stale = 0;
        for entry in fs::read_dir(&tmp)? {
            let path = entry?.path();
            if path.is_file() {
                fs::remove_file(&path)?;
                stale += 1;
            }
        }
        if stale > 0 {
            tracing::info!(files = stale, dir = %tmp.display(), "removed stale temporary content files");
        }
        Ok(ContentStore { dir, tmp, commit: Mutex::new(()) })
    }

    /// Where the file with this SHA-256 lives, if `sha256` is a content
    /// address (64 lower-case hex digits); `None` for anything else, so a
    /// request path can never name another file.
    pub fn path(&self, sha256: &str) -> Option<PathBuf> {
        is_sha256(sha256).then(|| self.dir.join(sha256))
    }

    /// A new empty temporary file, removed when dropped.
    pub fn temp_file(&self) -> io::Result<NamedTempFile> {
        tempfile::Builder::new().prefix("incoming-").tempfile_in(&self.tmp)
    }

    /// How many temporary files exist (for tests of the cleanup).
    pub fn temp_count(&self) -> io::Result<usize> {
        Ok(fs::read_dir(&self.tmp)?.count())
    }

    /// How many content files exist (for tests of the cleanup).
    pub fn file_count(&self) -> io::Result<usize> {
        let entries = fs::read_dir(&self.dir)?.collect::<Result<Vec<_>, _>>()?;
        Ok(entries.iter().filter(|e| e.path().is_file()).count())
    }

    /// Takes the commit lock (see the field). A panic while it was held
    /// leaves no half-done rename to protect, so a poisoned lock is taken
    /// over.
    pub fn lock(&self) -> MutexGuard<'_, ()> {
        self.commit.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Syncs `file` and renames it to its content address.
    pub fn persist(&self, file: NamedTempFile, sha256: &str) -> io::Result<PathBuf> {
        let target = self.path(sha256).ok_or_else(|| io::Error::other(format!("{sha256:?} is not a SHA-256")))?;
        file.as_file().sync_all()?;
        file.persist(&target).map_err(|e| e.error)?;
        // The rename is durable once the directory is synced.
        File::open(&self.dir)?.sync_all()?;
        Ok(target)
    }

    /// Removes a content file; a missing one is not an error.
    pub fn remove(&self, sha256: &str) -> io::Result<()> {
        let Some(path) = self.path(sha256) else { return Ok(()) };
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Whether `s` is 64 lower-case hex digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A writer that hashes and counts what passes through it.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), written: 0 }
    }

    /// The inner writer, the lower-case hex SHA-256 and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.written)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_content_addresses_name_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ContentStore::open(dir.path()).expect("open");
        let sha = "ab".repeat(32);
        assert_eq!(store.path(&sha), Some(dir.path().join("content").join(&sha)));
        for bad in ["../dalaba.db", "tmp", &"AB".repeat(32), &"ab".repeat(31), &format!("{}/", "a".repeat(63))] {
            assert_eq!(store.path(bad), None, "{bad}");
        }
    }

    #[test]
    fn stale_temporary_files_are_removed_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ContentStore::open(dir.path()).expect("open");
        store.temp_file().expect("temp").keep().expect("keep it, as a crash would");
        assert_eq!(store.temp_count().expect("count"), 1);
        let store = ContentStore::open(dir.path()).expect("reopen");
        assert_eq!(store.temp_count().expect("count"), 0);
    }

    #[test]
    fn persisted_files_are_named_by_their_hash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ContentStore::open(dir.path()).expect("open");
        let mut writer = HashingWriter::new(store.temp_file().expect("temp"));
        writer.write_all(b"abc").expect("write");
        let (file, sha, size) = writer.finish();
        assert_eq!((sha.as_str(), size), ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 3));
        let path = store.persist(file, &sha).expect("persist");
        assert_eq!(fs::read(&path).expect("read"), b"abc");
        assert_eq!((store.temp_count().expect("tmp"), store.file_count().expect("files")), (0, 1));
        store.remove(&sha).expect("remove");
        store.remove(&sha).expect("removing twice is fine");
        assert_eq!(store.file_count().expect("files"), 0);
    }
}
