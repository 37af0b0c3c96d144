//! The audio library: uploaded and spoken notices, validated, measured and
//! transcoded once, stored by content address.
//!
//! An upload is streamed to `data_dir/content/tmp/` while it is hashed
//! (SHA-256, its content address) and counted against the size limit; the
//! whole file is then decoded (the `dalaba-audio` crate) to refuse corrupt,
//! truncated, empty and non-audio files, measured (duration, EBU R128
//! loudness, true peak, a playback gain towards the county target) and
//! transcoded to the distribution copy villages download: Ogg Opus, mono,
//! 48 kHz. Both files end up as `data_dir/content/<sha256>` by an atomic
//! rename, and only then is the item's row written. Every failure removes
//! what it wrote; stale temporary files are removed at start.
//!
//! The same bytes uploaded twice are refused with a 409 naming the item
//! that already holds them (`duplicate`): the library keeps one item per
//! original, and the operator decides whether the existing title fits.
//!
//! # Layout
//! - this file: the model ([`LibraryItem`], [`StoredFile`], [`Category`]…)
//!   that the store and the API share.
//! - [`files`]: the content directory, temporary files, the hashing writer.
//! - [`pipeline`]: decode, measure and transcode one file (blocking).
//! - [`tts`]: a typed notice to a WAV file through espeak-ng.
//! - [`range`]: HTTP `Range` parsing for previews and agent downloads.

pub mod files;
pub mod pipeline;
pub mod range;
pub mod tts;

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use files::ContentStore;

/// The library's files and settings, shared by its handlers.
#[derive(Debug)]
pub struct Library {
    /// Limits, loudness target, transcoding and text-to-speech settings.
    pub settings: LibrarySettings,
    /// The content directory.
    pub content: ContentStore,
}

impl Library {
    /// Opens the content directory under `data_dir` (see [`ContentStore::open`]).
    pub fn open(data_dir: &Path, settings: LibrarySettings) -> std::io::Result<Library> {
        Ok(Library { settings, content: ContentStore::open(data_dir)? })
    }
}

/// One item of the library: a notice that schedules can play.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LibraryItem {
    /// Row id.
    pub id: i64,
    /// Title shown to operators.
    pub title: String,
    /// Free text; may be empty.
    pub description: String,
    /// The key of its [`Category`].
    pub category: String,
    /// Uploaded or spoken.
    pub source: ItemSource,
    /// The file as uploaded (or as espeak-ng wrote it), kept unchanged.
    pub original: StoredFile,
    /// The copy villages download: Ogg Opus, mono, 48 kHz.
    pub distribution: StoredFile,
    /// Playable duration.
    pub duration_ms: u64,
    /// Integrated loudness of the mono downmix (EBU R128), in LUFS.
    pub loudness_lufs: Option<f64>,
    /// True peak of the mono downmix, in dBTP.
    pub true_peak_dbtp: Option<f64>,
    /// Gain to apply at playback so the item plays at the target loudness.
    pub gain_db: f64,
    /// When it was added, in ms since the Unix epoch.
    pub created_at_ms: i64,
}

/// A file in the content directory, named by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredFile {
    /// Lower-case hex SHA-256 of the bytes; also the file's name.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// `"mp3"`, `"m4a"`, `"aac"`, `"flac"`, `"ogg-vorbis"`, `"ogg-opus"` or `"wav"`.
    pub format: String,
}

/// Where an item came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemSource {
    /// An operator uploaded a file.
    Upload,
    /// An operator typed a notice and espeak-ng spoke it.
    Tts,
}

impl ItemSource {
    /// The name stored in the database and shown by the API.
    pub fn name(self) -> &'static str {
        match self {
            ItemSource::Upload => "upload",
            ItemSource::Tts => "tts",
        }
    }

    /// The source with this stored name.
    pub fn from_name(name: &str) -> Option<ItemSource> {
        match name {
            "upload" => Some(ItemSource::Upload),
            "tts" => Some(ItemSource::Tts),
            _ => None,
        }
    }
}

/// A library category: the three built-in ones (法律法规 legal, 交通出行
/// traffic, 卫生健康 health) and those operators add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Category {
    /// Stable key: lower-case ASCII letters, digits and `-`.
    pub key: String,
    /// Chinese label.
    pub label_zh: String,
    /// English label.
    pub label_en: String,
    /// Whether it ships with the controller.
    pub builtin: bool,
}

/// A category to create.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCategory {
    /// See [`Category::key`].
    pub key: String,
    /// Chinese label.
    pub label_zh: String,
    /// English label.
    pub label_en: String,
}

/// An item to insert once its files are in place.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLibraryItem {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Category key; it must exist.
    pub category: String,
    /// Uploaded or spoken.
    pub source: ItemSource,
    /// The original file.
    pub original: StoredFile,
    /// The distribution copy.
    pub distribution: StoredFile,
    /// Duration.
    pub duration_ms: u64,
    /// Measured loudness.
    pub loudness_lufs: Option<f64>,
    /// Measured true peak.
    pub true_peak_dbtp: Option<f64>,
    /// Playback gain.
    pub gain_db: f64,
    /// When it is added.
    pub created_at_ms: i64,
}

/// A change to an item's description fields; `None` keeps the value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibraryItemPatch {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New category key.
    pub category: Option<String>,
}

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Longest category label, in characters.
pub const MAX_LABEL_CHARS: usize = 64;
/// Longest category key, in bytes.
pub const MAX_CATEGORY_KEY: usize = 32;

/// Checks a title: not blank, at most [`MAX_TITLE_CHARS`].
pub fn check_title(title: &str) -> Result<(), String> {
    if title.trim().is_empty() {
        return Err("title must not be empty".into());
    }
    check_length("title", title, MAX_TITLE_CHARS)
}

/// Checks a description: at most [`MAX_DESCRIPTION_CHARS`].
pub fn check_description(description: &str) -> Result<(), String> {
    check_length("description", description, MAX_DESCRIPTION_CHARS)
}

/// Checks a new category's key and labels.
pub fn check_new_category(new: &NewCategory) -> Result<(), String> {
    let key = &new.key;
    let key_ok = !key.is_empty()
        && key.len() <= MAX_CATEGORY_KEY
        && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !key_ok {
        return Err(format!("category key {key:?} must be 1 to {MAX_CATEGORY_KEY} lower-case letters, digits or '-'"));
    }
    for (field, label) in [("label_zh", &new.label_zh), ("label_en", &new.label_en)] {
        if label.trim().is_empty() {
            return Err(format!("{field} must not be empty"));
        }
        check_length(field, label, MAX_LABEL_CHARS)?;
    }
    Ok(())
}

fn check_length(field: &str, value: &str, max: usize) -> Result<(), String> {
    let chars = value.chars().count();
    if chars > max { Err(format!("{field} is {chars} characters; the limit is {max}")) } else { Ok(()) }
}

/// The library's settings, derived from `[library]` in the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct LibrarySettings {
    /// Largest upload accepted, in bytes.
    pub max_upload_bytes: u64,
    /// Loudness target and true-peak ceiling for the playback gain.
    pub target: dalaba_audio::loudness::Target,
    /// Longest audio accepted.
    pub max_duration_ms: u64,
    /// Bitrate of the Opus distribution copy, in bits per second.
    pub opus_bitrate_bps: u32,
    /// The text-to-speech program.
    pub tts_command: String,
    /// Its voice (`-v`).
    pub tts_voice: String,
    /// Longest notice spoken, in characters.
    pub tts_max_chars: usize,
    /// How long espeak-ng may take.
    pub tts_timeout: Duration,
}

impl Default for LibrarySettings {
    fn default() -> Self {
        LibrarySettings {
            max_upload_bytes: 200 * MB,
            target: dalaba_audio::loudness::Target::default(),
            max_duration_ms: 2 * 3600 * 1000,
            opus_bitrate_bps: 32_000,
            tts_command: "espeak-ng".into(),
            tts_voice: "cmn".into(),
            tts_max_chars: 5000,
            tts_timeout: Duration::from_secs(60),
        }
    }
}

/// One megabyte as the configuration counts it (10⁶ bytes, as people read
/// file sizes).
pub const MB: u64 = 1_000_000;

/// Formats a byte count for messages: "210 MB", "1.5 MB", "512 bytes".
pub fn human_size(bytes: u64) -> String {
    if bytes >= 10 * MB {
        format!("{} MB", bytes / MB)
    } else if bytes >= MB / 10 {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        for (bytes, text) in [(210 * MB, "210 MB"), (1_500_000, "1.5 MB"), (512, "512 bytes")] {
            assert_eq!(human_size(bytes), text);
        }
    }

    #[test]
    fn category_keys_and_labels_are_checked() {
        let new = |key: &str, zh: &str| NewCategory { key: key.into(), label_zh: zh.into(), label_en: "X".into() };
        assert!(check_new_category(&new("fire-safety", "消防")).is_ok());
        for (key, zh, expected) in [
            ("Fire", "消防", "category key"),
            ("", "消防", "category key"),
            ("a b", "消防", "category key"),
            ("fire", " ", "label_zh must not be empty"),
            ("fire", &"长".repeat(65), "label_zh is 65 characters; the limit is 64"),
        ] {
            let err = check_new_category(&new(key, zh)).expect_err(key);
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn titles_must_say_something() {
        assert_eq!(check_title("  ").expect_err("blank"), "title must not be empty");
        assert!(check_title("禁毒宣传").is_ok());
        assert!(check_title(&"x".repeat(201)).is_err());
    }

    #[test]
    fn sources_round_trip_their_names() {
        for s in [ItemSource::Upload, ItemSource::Tts] {
            assert_eq!(ItemSource::from_name(s.name()), Some(s));
        }
        assert_eq!(ItemSource::from_name("radio"), None);
    }
}
