//! Pure audio computation: no devices, no network, no clock, no files of its
//! own. Callers hand in a reader (`std::fs::File`, `io::Cursor`) and a writer.
//!
//! The controller's audio library uses it to accept an upload: decode the
//! whole file to validate it, measure duration and loudness (EBU R128), store
//! a playback gain towards one target loudness, and write a mono 48 kHz Ogg
//! Opus copy for slow village links — [`opus::transcode_to_ogg_opus`] does
//! all of it in one pass; [`probe::analyse`] does it without the copy.
//!
//! Hashing is left to the caller: the controller hashes an upload (SHA-256,
//! the content address) while it streams it to disk, and the Opus copy as it
//! writes it, so hashing here would read the bytes a second time.
//!
//! # Layout
//! - [`probe`]: [`analyse`](probe::analyse) — decode every packet, [`Analysis`]
//!   (format, duration, loudness, peak, gain), [`Settings`](probe::Settings)
//!   (target, duration limit).
//! - [`error`]: [`AudioError`], one variant per way a file can be refused,
//!   and [`Found`] for what an unsupported file looked like.
//! - [`loudness`]: EBU R128 [`Meter`](loudness::Meter) over mono audio and
//!   [`gain_for`](loudness::gain_for) with its peak ceiling.
//! - [`resample`]: streaming conversion of mono audio to 48 kHz.
//! - [`opus`]: the frame [`Encoder`](opus::Encoder) (reusable by live
//!   streams), the Ogg Opus file writer and the library transcode.
//! - [`level`]: peak and RMS levels of PCM samples, and test tones.
//! - [`stream`]: [`StreamDecoder`] — packet-by-packet mono 48 kHz blocks for
//!   the agent's player, so playback starts after the first packet.
//! - Private: `decode` (symphonia set-up, downmix, error naming), `sniff`
//!   (what a non-audio file looks like), `opus_decoder` (Opus for symphonia).
//!
//! Formats: MP3, AAC (M4A/MP4 and ADTS), FLAC, Ogg Vorbis, Ogg Opus, WAV, all
//! decoded in pure Rust (symphonia, plus `opus-pure` for Opus, so nothing
//! links a system codec library and cross builds stay plain).

mod decode;
pub mod error;
pub mod level;
pub mod loudness;
pub mod opus;
mod opus_decoder;
pub mod probe;
pub mod resample;
mod sniff;
pub mod stream;

pub use error::{AudioError, Found};
pub use probe::{Analysis, Format};
pub use stream::StreamDecoder;
