//! Text into HTML and SVG: escaping, and the few number formats both use.

use std::fmt::Write;

/// `text` made safe as element content or a quoted attribute value in HTML
/// and in SVG (XML): markup characters become entities, and control
/// characters XML forbids become U+FFFD, so a name can neither open a tag
/// nor make the SVG unreadable.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A compliance for people: `97.5%`, or `—` when nothing was scheduled.
pub(super) fn percent(pct: Option<f64>) -> String {
    pct.map_or_else(|| "—".to_owned(), |p| format!("{p:.1}%"))
}

/// A count with thousands separators: `1,234,567`.
pub(super) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Appends formatted text to a `String` (writing to a `String` cannot fail).
pub(super) fn put(out: &mut String, args: std::fmt::Arguments<'_>) {
    // `fmt::Write for String` never returns an error.
    let _ = out.write_fmt(args);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_control_characters_are_inert() {
        assert_eq!(escape("<script>alert('x')</script>"), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
        assert_eq!(escape("a\"b&c"), "a&quot;b&amp;c");
        assert_eq!(escape("王家沟村\u{0}\u{1b}"), "王家沟村\u{fffd}\u{fffd}");
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(percent(Some(97.54)), "97.5%");
        assert_eq!(percent(None), "—");
        assert_eq!(
            (count(0), count(999), count(1_000), count(1_550_000)),
            ("0".into(), "999".into(), "1,000".into(), "1,550,000".into())
        );
    }
}
