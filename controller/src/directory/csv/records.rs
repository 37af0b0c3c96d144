//! Splits CSV text (RFC 4180) into records, each with the line it starts on.
//!
//! The `csv` crate does not count the blank lines it skips, nor CRLF line
//! ends, in its record positions, so its line numbers drift from what an
//! operator sees in an editor; this reader counts every line ending.
//!
//! Lenient where that is harmless: `\n`, `\r\n` and a lone `\r` all end a
//! record; blank lines are skipped; text after a closing quote is kept.

use std::iter::Peekable;
use std::str::Chars;

/// One record and where it starts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// The 1-based line the record starts on.
    pub line: usize,
    /// The fields, unquoted and trimmed.
    pub fields: Vec<String>,
}

/// A quoted field that the text never closes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UnclosedQuote {
    /// The line of the opening quote.
    pub line: usize,
}

/// An iterator over the records of a CSV text.
pub(crate) struct Records<'a> {
    chars: Peekable<Chars<'a>>,
    line: usize,
}

impl<'a> Records<'a> {
    pub(crate) fn new(text: &'a str) -> Records<'a> {
        Records { chars: text.chars().peekable(), line: 1 }
    }

    /// Consumes a line ending that started with `c`; returns whether it was one.
    fn end_of_line(&mut self, c: char) -> bool {
        match c {
            '\n' => {}
            '\r' => {
                self.chars.next_if_eq(&'\n');
            }
            _ => return false,
        }
        self.line += 1;
        true
    }

    /// Reads the rest of a quoted field, after its opening quote.
    fn quoted(&mut self, field: &mut String) -> Result<(), UnclosedQuote> {
        let opened = self.line;
        while let Some(c) = self.chars.next() {
            match c {
                '"' if self.chars.next_if_eq(&'"').is_some() => field.push('"'),
                '"' => return Ok(()),
                '\r' if self.chars.peek() == Some(&'\n') => field.push('\r'),
                '\n' | '\r' => {
                    self.line += 1;
                    field.push(c);
                }
                c => field.push(c),
            }
        }
        Err(UnclosedQuote { line: opened })
    }
}

impl Iterator for Records<'_> {
    type Item = Result<Record, UnclosedQuote>;

    fn next(&mut self) -> Option<Self::Item> {
        // Skip blank lines; stop at the end of the text.
        loop {
            let &c = self.chars.peek()?;
            if !matches!(c, '\n' | '\r') {
                break;
            }
            self.chars.next();
            self.end_of_line(c);
        }
        let line = self.line;
        let mut fields = Vec::new();
        let mut field = String::new();
        while let Some(c) = self.chars.next() {
            match c {
                ',' => fields.push(finish(&mut field)),
                '"' if field.trim().is_empty() => {
                    field.clear();
                    if let Err(e) = self.quoted(&mut field) {
                        return Some(Err(e));
                    }
                }
                c if self.end_of_line(c) => break,
                c => field.push(c),
            }
        }
        fields.push(finish(&mut field));
        Some(Ok(Record { line, fields }))
    }
}

fn finish(field: &mut String) -> String {
    let out = field.trim().to_owned();
    field.clear();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: &[(usize, &[&str])]) {
        let records: Vec<Record> = Records::new(text).collect::<Result<_, _>>().expect("well-formed");
        let found: Vec<(usize, Vec<&str>)> =
            records.iter().map(|r| (r.line, r.fields.iter().map(String::as_str).collect())).collect();
        let expected: Vec<(usize, Vec<&str>)> = expected.iter().map(|(l, f)| (*l, f.to_vec())).collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn counts_every_line_ending() {
        check("h\n\na\nb\n\n\nc\n", &[(1, &["h"]), (3, &["a"]), (4, &["b"]), (7, &["c"])]);
        check("h\r\n\r\na,b\r\n", &[(1, &["h"]), (3, &["a", "b"])]);
        check("h\ra\r\rb", &[(1, &["h"]), (2, &["a"]), (4, &["b"])]);
        check("a,\"x\r\ny\",z\nb", &[(1, &["a", "x\r\ny", "z"]), (3, &["b"])]);
    }

    #[test]
    fn unquotes_and_trims() {
        check(" a , \"b,\"\"c\"\"\" ,,\"\"\n", &[(1, &["a", "b,\"c\"", "", ""])]);
        check("\"x\"tail,\"\"\"\"", &[(1, &["xtail", "\""])]);
        check("a\"b", &[(1, &["a\"b"])]);
    }

    #[test]
    fn an_unclosed_quote_names_its_line() {
        let mut records = Records::new("a\nb,\"open\n\nmore");
        assert!(matches!(records.next(), Some(Ok(_))));
        assert_eq!(records.next(), Some(Err(UnclosedQuote { line: 2 })));
        assert_eq!(records.next(), None);
    }
}
