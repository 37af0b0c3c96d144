//! Recognises what a file is from its first bytes, so that a refusal can say
//! "looks like text" instead of "no suitable format reader".

use crate::error::Found;

/// How many leading bytes [`sniff`] wants.
pub(crate) const SNIFF_LEN: usize = 1024;

/// What the leading bytes say about a file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sniff {
    /// Certainly not something the library decodes.
    Unsupported(Found),
    /// Starts like one of the supported containers or streams.
    Audio,
    /// No signature known either way.
    Unknown,
}

/// Classifies a file by its first bytes (at most [`SNIFF_LEN`] are looked at).
pub(crate) fn sniff(head: &[u8]) -> Sniff {
    let head = &head[..head.len().min(SNIFF_LEN)];
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);

    if at(0, b"ID3") || at(0, b"fLaC") || at(0, b"OggS") || (at(0, b"RIFF") && at(8, b"WAVE")) || at(4, b"ftyp") {
        return Sniff::Audio;
    }
    let unsupported = Sniff::Unsupported;
    if at(0, b"RIFF") && at(8, b"WEBP") {
        return unsupported(Found::Image("WebP"));
    }
    if at(0, b"RIFF") && at(8, b"AVI ") {
        return unsupported(Found::Container("AVI"));
    }
    let signatures: [(&[u8], Found); 12] = [
        (b"%PDF", Found::Pdf),
        (b"\x89PNG", Found::Image("PNG")),
        (b"\xFF\xD8\xFF", Found::Image("JPEG")),
        (b"GIF8", Found::Image("GIF")),
        (b"PK\x03\x04", Found::Zip),
        (b"\x1A\x45\xDF\xA3", Found::Container("WebM/Matroska")),
        (b"FORM", Found::Container("AIFF")),
        (b"caff", Found::Container("CAF")),
        (b"#!AMR", Found::Container("AMR")),
        (b"MThd", Found::Container("MIDI")),
        (b"\x30\x26\xB2\x75\x8E\x66\xCF\x11", Found::Container("WMA/ASF")),
        (b"\x7FELF", Found::Unknown),
    ];
    for (magic, found) in signatures {
        if at(0, magic) {
            return unsupported(found);
        }
    }
    // MPEG audio and ADTS (AAC) streams start with an 11- or 12-bit sync;
    // the layer bits tell MP3 (and AAC, layer 0) from MP1 and MP2.
    if head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0 {
        return match (head[1] >> 1) & 0b11 {
            0b10 => unsupported(Found::Codec("MPEG Layer II (MP2)".to_owned())),
            0b11 => unsupported(Found::Codec("MPEG Layer I".to_owned())),
            _ => Sniff::Audio,
        };
    }
    if let Some(found) = text(head) {
        return unsupported(found);
    }
    Sniff::Unknown
}

/// `Some(Text)` or `Some(Html)` when the bytes are printable UTF-8.
fn text(head: &[u8]) -> Option<Found> {
    if head.is_empty() {
        return None;
    }
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        // A multi-byte character cut by the end of the window is still text.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    if valid.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0C')) {
        return None;
    }
    let start = valid.trim_start_matches('\u{FEFF}').trim_start().to_ascii_lowercase();
    if start.starts_with("<!doctype html") || start.starts_with("<html") {
        Some(Found::Html)
    } else {
        Some(Found::Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(head: &[u8], expected: Sniff) {
        assert_eq!(sniff(head), expected, "{:?}", String::from_utf8_lossy(head));
    }

    #[test]
    fn table() {
        check(b"", Sniff::Unknown);
        check(b"ID3\x04\x00", Sniff::Audio);
        check(b"RIFF\x24\x00\x00\x00WAVEfmt ", Sniff::Audio);
        check(b"\xFF\xFB\x90\x00", Sniff::Audio);
        check(b"\xFF\xF1\x50\x80", Sniff::Audio);
        check(b"\xFF\xFD\x90\x00", Sniff::Unsupported(Found::Codec("MPEG Layer II (MP2)".to_owned())));
        check(b"\x00\x00\x00\x20ftypM4A ", Sniff::Audio);
        check("县广播通知：明天早上八点停水。\n".as_bytes(), Sniff::Unsupported(Found::Text));
        check(b"  <!DOCTYPE html><html>", Sniff::Unsupported(Found::Html));
        check(b"%PDF-1.7", Sniff::Unsupported(Found::Pdf));
        check(b"\x89PNG\r\n\x1a\n", Sniff::Unsupported(Found::Image("PNG")));
        check(b"\x1A\x45\xDF\xA3\x01", Sniff::Unsupported(Found::Container("WebM/Matroska")));
        check(b"\x00\x01\x02\x03", Sniff::Unknown);
        // A character cut at the end of the window is still text.
        check(&"通知".as_bytes()[..5], Sniff::Unsupported(Found::Text));
    }
}
