//! The one error type of the crate, and what an unsupported file looked like.

use std::fmt;

/// Why a file was refused or could not be processed.
///
/// Every variant names the problem in words an operator understands; the
/// controller may show `to_string()` directly, or match on the variant (and on
/// [`Found`]) to translate it.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file has no bytes at all.
    #[error("the file is empty")]
    Empty,
    /// The file is readable but is not audio in a format the library takes.
    #[error("unsupported file: {found}")]
    Unsupported {
        /// What the file turned out to be.
        found: Found,
    },
    /// The container or the coded audio is malformed.
    #[error("the audio is corrupt near {}", Millis(*at_ms))]
    Corrupt {
        /// How much audio had been decoded when the damage was found.
        at_ms: u64,
        /// What the demuxer or decoder reported.
        #[source]
        source: symphonia::core::errors::Error,
    },
    /// The file stops before its audio does (an interrupted upload or copy).
    #[error("the file is cut short{}", Cut(*at_ms, *expected_ms))]
    Truncated {
        /// How much audio could be decoded before the data ran out; `None`
        /// when the file ends before its audio could even be located.
        at_ms: Option<u64>,
        /// How long the container said the audio was, when it said.
        expected_ms: Option<u64>,
    },
    /// The audio is longer than the configured limit.
    #[error("the audio is longer than the limit of {}", Millis(*limit_ms))]
    TooLong {
        /// The limit in force ([`crate::probe::Settings::max_duration_ms`]).
        limit_ms: u64,
    },
    /// The file is a valid container whose audio track holds no samples.
    #[error("the file holds no audio")]
    NoAudio,
    /// Every sample is silent (below the −70 LUFS absolute gate of EBU R128),
    /// so there is no loudness to measure and nothing to hear. Refused rather
    /// than flagged: an item that plays nothing is almost always a muted or
    /// failed recording, and would leave a village waiting in silence.
    #[error("the audio is silent")]
    Silent {
        /// Length of the silent audio.
        duration_ms: u64,
    },
    /// A decoder failed on this input in a way it should not (a bug in the
    /// decoder, caught so that a hostile file cannot take the caller down).
    #[error("the audio could not be decoded near {} (the decoder failed on it)", Millis(*at_ms))]
    DecoderFault {
        /// How much audio had been decoded when the decoder failed.
        at_ms: u64,
    },
    /// Reading the source failed for a reason other than its end.
    #[error("reading the file failed")]
    Read(#[source] std::io::Error),
    /// Writing the transcoded output failed.
    #[error("writing the transcoded audio failed")]
    Write(#[source] std::io::Error),
    /// The Opus encoder refused its input or settings.
    #[error("the Opus encoder failed")]
    Encode(#[source] opus_pure::Error),
}

/// What a file that is not supported audio turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Found {
    /// Printable text (a lyric sheet, a script, a mistaken upload).
    Text,
    /// An HTML page (often an error page saved instead of the file).
    Html,
    /// A PDF document.
    Pdf,
    /// A picture; the name of its format.
    Image(&'static str),
    /// A ZIP archive, which includes office documents.
    Zip,
    /// A container the library does not read, e.g. `"WebM/Matroska"`.
    Container(&'static str),
    /// A codec the library does not decode, with the name the demuxer gave it.
    Codec(String),
    /// A container or stream feature the library does not handle, e.g.
    /// `"more than 2 Opus channels"`.
    Feature(&'static str),
    /// A sample rate outside 8–192 kHz, in Hz.
    SampleRate(u32),
    /// The container holds no audio track (only video or data).
    NoAudioTrack,
    /// Nothing recognisable.
    Unknown,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Text => f.write_str("not an audio file (looks like text)"),
            Found::Html => f.write_str("not an audio file (looks like a web page)"),
            Found::Pdf => f.write_str("not an audio file (looks like a PDF document)"),
            Found::Image(kind) => write!(f, "not an audio file (looks like a {kind} picture)"),
            Found::Zip => f.write_str("not an audio file (looks like a ZIP archive or office document)"),
            Found::Container(name) => write!(f, "{name} files are not supported"),
            Found::Codec(name) => write!(f, "the {name} codec is not supported"),
            Found::Feature(what) => write!(f, "{what} is not supported"),
            Found::SampleRate(hz) => write!(f, "a sample rate of {hz} Hz is not supported"),
            Found::NoAudioTrack => f.write_str("the file has no audio track"),
            Found::Unknown => {
                f.write_str("not a recognised audio format (MP3, AAC/M4A, FLAC, Ogg Vorbis, Opus or WAV)")
            }
        }
    }
}

/// Formats milliseconds for messages: "12.3 s" under a minute, then
/// "m:ss" or "h:mm:ss".
struct Millis(u64);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms < 60_000 {
            return write!(f, "{:.1} s", ms as f64 / 1000.0);
        }
        let seconds = ms / 1000;
        let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
        if h > 0 { write!(f, "{h}:{m:02}:{s:02}") } else { write!(f, "{m}:{s:02}") }
    }
}

/// The optional tail of a truncation message: where the audio stops, and
/// how long it should have been.
struct Cut(Option<u64>, Option<u64>);

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Cut(Some(at), Some(expected)) => write!(f, ": its audio stops at {} of {}", Millis(at), Millis(expected)),
            Cut(Some(at), None) => write!(f, ": its audio stops at {}", Millis(at)),
            Cut(None, _) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_problem() {
        let cases: [(AudioError, &str); 6] = [
            (AudioError::Empty, "the file is empty"),
            (AudioError::Unsupported { found: Found::Text }, "unsupported file: not an audio file (looks like text)"),
            (
                AudioError::Truncated { at_ms: Some(1250), expected_ms: Some(3000) },
                "the file is cut short: its audio stops at 1.2 s of 3.0 s",
            ),
            (AudioError::Truncated { at_ms: None, expected_ms: None }, "the file is cut short"),
            (AudioError::TooLong { limit_ms: 754_000 }, "the audio is longer than the limit of 12:34"),
            (AudioError::TooLong { limit_ms: 7_200_000 }, "the audio is longer than the limit of 2:00:00"),
        ];
        for (error, expected) in cases {
            assert_eq!(error.to_string(), expected);
        }
    }
}
