//! HTTP `Range` requests (RFC 9110 §14) for one byte range: what agents use
//! to resume a download and browsers' `<audio>` to seek.

/// What to send for a request on a file of a known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeReply {
    /// The whole file (no `Range`, or one the server may ignore: another
    /// unit, several ranges, bad syntax).
    Full,
    /// Bytes `start..=end` (206 with `Content-Range`).
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// The range starts at or past the end (416).
    Unsatisfiable,
}

/// Resolves a `Range` header value against a file of `len` bytes.
pub fn resolve(header: Option<&str>, len: u64) -> RangeReply {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return RangeReply::Full };
    if spec.contains(',') {
        return RangeReply::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return RangeReply::Full };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // A suffix: the last N bytes.
        let Ok(suffix) = last.parse::<u64>() else { return RangeReply::Full };
        if suffix == 0 || len == 0 {
            return RangeReply::Unsatisfiable;
        }
        return RangeReply::Partial { start: len - suffix.min(len), end: len - 1 };
    }
    let Ok(start) = first.parse::<u64>() else { return RangeReply::Full };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match last.parse::<u64>() {
            Ok(end) if end >= start => end,
            _ => return RangeReply::Full,
        }
    };
    if start >= len {
        return RangeReply::Unsatisfiable;
    }
    RangeReply::Partial { start, end: end.min(len - 1) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeReply::{Full, Partial, Unsatisfiable};

    fn check(header: Option<&str>, len: u64, expected: RangeReply) {
        assert_eq!(resolve(header, len), expected, "{header:?} on {len} bytes");
    }

    #[test]
    fn ranges_resolve_like_rfc_9110() {
        check(None, 100, Full);
        check(Some("bytes=0-"), 100, Partial { start: 0, end: 99 });
        check(Some("bytes=40-"), 100, Partial { start: 40, end: 99 });
        check(Some("bytes=40-49"), 100, Partial { start: 40, end: 49 });
        check(Some("bytes=40-1000"), 100, Partial { start: 40, end: 99 });
        check(Some("bytes=-10"), 100, Partial { start: 90, end: 99 });
        check(Some("bytes=-1000"), 100, Partial { start: 0, end: 99 });
        check(Some("bytes=99-"), 100, Partial { start: 99, end: 99 });
        check(Some("bytes=100-"), 100, Unsatisfiable);
        check(Some("bytes=500-600"), 100, Unsatisfiable);
        check(Some("bytes=-0"), 100, Unsatisfiable);
        check(Some("bytes=0-"), 0, Unsatisfiable);
        check(Some("bytes=0-1,5-6"), 100, Full);
        check(Some("items=0-1"), 100, Full);
        check(Some("bytes=5-1"), 100, Full);
        check(Some("bytes=x-"), 100, Full);
        check(Some("bytes=18446744073709551616-"), 100, Full);
    }
}
