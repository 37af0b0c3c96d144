//! One file into the library: decode, measure, transcode, commit. Blocking
//! and CPU-heavy: run it on the blocking pool.

use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom};

use dalaba_audio::AudioError;
use dalaba_audio::opus::OpusSettings;
use dalaba_audio::probe::{self, Format};
use tempfile::NamedTempFile;

use super::files::{ContentStore, HashingWriter};
use super::{ItemSource, LibraryItem, LibrarySettings, NewLibraryItem, StoredFile};
use crate::store::{Store, StoreError};

/// The format name of every distribution copy.
pub const DISTRIBUTION_FORMAT: &str = "ogg-opus";

/// A file received in full, hashed, not yet checked.
#[derive(Debug)]
pub struct Received {
    /// The temporary file holding it.
    pub file: NamedTempFile,
    /// Its SHA-256.
    pub sha256: String,
    /// Its size.
    pub size_bytes: u64,
    /// The extension of its name, as a decoding hint.
    pub hint: Option<String>,
}

/// What describes the new item.
#[derive(Debug, Clone)]
pub struct Describe {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Category key.
    pub category: String,
    /// Uploaded or spoken.
    pub source: ItemSource,
    /// When, in ms since the Unix epoch.
    pub now_ms: i64,
}

/// Why a file did not become an item.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The file is not acceptable audio.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The same bytes are already an item.
    #[error("this audio is already in the library as item {} \u{201c}{}\u{201d}", .0.id, .0.title)]
    Duplicate(Box<LibraryItem>),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading or writing a content file failed.
    #[error("content file: {0}")]
    Io(#[from] io::Error),
}

/// Checks, measures and transcodes `received`, renames both files into the
/// content directory and inserts the item. On any error, nothing of this
/// call is left behind: no row, no file (the temporary files are dropped,
/// and a content file no item refers to is removed).
pub fn add(
    store: &dyn Store,
    content: &ContentStore,
    settings: &LibrarySettings,
    received: Received,
    describe: Describe,
) -> Result<LibraryItem, AddError> {
    if let Some(existing) = store.library_item_by_original(&received.sha256)? {
        return Err(AddError::Duplicate(Box::new(existing)));
    }
    if received.size_bytes == 0 {
        return Err(AudioError::Empty.into());
    }
    let mut source = received.file.reopen()?;
    let original_format = original_format(&mut source)?;
    let probe_settings = probe::Settings { target: settings.target, max_duration_ms: settings.max_duration_ms };
    let opus = OpusSettings { bitrate_bps: settings.opus_bitrate_bps, ..OpusSettings::default() };
    // `transcode_to_ogg_opus` flushes the writer it is lent.
    let mut out = HashingWriter::new(BufWriter::new(content.temp_file()?));
    let analysis = dalaba_audio::opus::transcode_to_ogg_opus(
        BufReader::new(source),
        received.hint.as_deref(),
        &probe_settings,
        &opus,
        &mut out,
    )?;
    let (buffered, dist_sha, dist_size) = out.finish();
    let dist_file = buffered.into_inner().map_err(|e| e.into_error())?;

    let new = NewLibraryItem {
        title: describe.title,
        description: describe.description,
        category: describe.category,
        source: describe.source,
        original: StoredFile {
            sha256: received.sha256,
            size_bytes: received.size_bytes,
            format: format_name(analysis.format, original_format).to_owned(),
        },
        distribution: StoredFile { sha256: dist_sha, size_bytes: dist_size, format: DISTRIBUTION_FORMAT.into() },
        duration_ms: analysis.duration_ms,
        loudness_lufs: finite(analysis.integrated_lufs),
        true_peak_dbtp: finite(analysis.true_peak_dbtp),
        gain_db: analysis.gain_db,
        created_at_ms: describe.now_ms,
    };
    let _commit = content.lock();
    let committed = content
        .persist(received.file, &new.original.sha256)
        .and_then(|_| content.persist(dist_file, &new.distribution.sha256))
        .map_err(AddError::from)
        .and_then(|_| store.insert_library_item(&new).map_err(AddError::from));
    if committed.is_err() {
        for sha in [&new.original.sha256, &new.distribution.sha256] {
            remove_if_unused(store, content, sha);
        }
    }
    committed
}

/// Deletes an item and the files no other item refers to.
pub fn delete(store: &dyn Store, content: &ContentStore, id: i64) -> Result<LibraryItem, StoreError> {
    let _commit = content.lock();
    let item = store.delete_library_item(id)?;
    for sha in [&item.original.sha256, &item.distribution.sha256] {
        remove_if_unused(store, content, sha);
    }
    Ok(item)
}

/// The HTTP content type of a stored format.
pub fn content_type(format: &str) -> &'static str {
    match format {
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "flac" => "audio/flac",
        "wav" => "audio/wav",
        "ogg-opus" | "ogg-vorbis" | "ogg-flac" => "audio/ogg",
        _ => "application/octet-stream",
    }
}

/// The container family, read from the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Ogg,
    Mp4,
    Other,
}

fn original_format(file: &mut std::fs::File) -> io::Result<Container> {
    let mut head = [0u8; 8];
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(if head.starts_with(b"OggS") {
        Container::Ogg
    } else if &head[4..8] == b"ftyp" {
        Container::Mp4
    } else {
        Container::Other
    })
}

fn format_name(format: Format, container: Container) -> &'static str {
    match (format, container) {
        (Format::Mp3, _) => "mp3",
        (Format::Aac, Container::Mp4) => "m4a",
        (Format::Aac, _) => "aac",
        (Format::Flac, Container::Ogg) => "ogg-flac",
        (Format::Flac, _) => "flac",
        (Format::Vorbis, _) => "ogg-vorbis",
        (Format::Opus, _) => "ogg-opus",
        (Format::Wav, _) => "wav",
    }
}

fn remove_if_unused(store: &dyn Store, content: &ContentStore, sha256: &str) {
    match store.library_content_in_use(sha256) {
        Ok(false) => {
            if let Err(e) = content.remove(sha256) {
                tracing::warn!(error = %e, sha256, "cannot remove an unused content file");
            }
        }
        Ok(true) => {}
        Err(e) => tracing::warn!(error = %e, sha256, "cannot tell whether a content file is in use; kept"),
    }
}

/// Loudness and peak are −∞ for silence; the store keeps numbers only.
fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_name_their_container() {
        assert_eq!(format_name(Format::Aac, Container::Mp4), "m4a");
        assert_eq!(format_name(Format::Aac, Container::Other), "aac");
        assert_eq!(format_name(Format::Flac, Container::Ogg), "ogg-flac");
        assert_eq!(content_type("ogg-opus"), "audio/ogg");
        assert_eq!(content_type("m4a"), "audio/mp4");
    }
}
