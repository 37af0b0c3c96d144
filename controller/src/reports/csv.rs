//! The per-village report as a CSV file for spreadsheets.
//!
//! UTF-8 with a byte-order mark (so Excel reads the Chinese names), CRLF
//! line ends, cells quoted as RFC 4180 requires. A cell a spreadsheet would
//! run as a formula (starting with `=`, `+`, `-`, `@`, tab or CR) gets a
//! leading `'`, so a village named `=HYPERLINK("…")` stays text. The
//! directory's CSV export follows the same rules.
//!
//! The workspace has no CSV crate and the directory writes its files by
//! hand; a report is write-only and small, so it does the same rather than
//! add one.

use super::markup::put;
use super::{PlayCounts, Report};

/// The header row, in order.
pub const HEADER: [&str; 16] = [
    "township",
    "township_code",
    "village",
    "village_code",
    "first_day",
    "last_day",
    "scheduled",
    "played",
    "preempted",
    "missed",
    "failed",
    "skipped",
    "compliance_pct",
    "amplifier_unconfirmed",
    "live_targeted",
    "live_reached",
];

const BOM: char = '\u{feff}';
/// First characters that make a spreadsheet treat a cell as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// One row per village of the report, by township and code. Compliance is
/// a percentage with one decimal, empty when nothing was scheduled.
pub fn villages(report: &Report) -> String {
    let mut out = String::with_capacity(256 * (report.total.villages as usize + 1));
    out.push(BOM);
    push_record(&mut out, &HEADER);
    let (first, last) = (report.period.from().to_string(), report.period.last().to_string());
    for (t, v) in report.villages() {
        let p: &PlayCounts = &v.figures.plays;
        let live = &v.figures.live;
        let numbers = [p.scheduled(), p.played, p.preempted, p.missed, p.failed, p.skipped].map(|n| n.to_string());
        let compliance = p.compliance_pct().map(|c| format!("{c:.1}")).unwrap_or_default();
        let rest = [p.amplifier_unconfirmed, live.targeted, live.reached].map(|n| n.to_string());
        let mut cells: Vec<&str> = vec![&t.name, &t.code, &v.name, &v.code, &first, &last];
        cells.extend(numbers.iter().map(String::as_str));
        cells.push(&compliance);
        cells.extend(rest.iter().map(String::as_str));
        push_record(&mut out, &cells);
    }
    out
}

/// `cell` with a leading `'` if a spreadsheet would take it for a formula.
fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) { format!("'{cell}").into() } else { cell.into() }
}

/// Appends one record: every cell neutralised, then quoted when needed.
fn push_record(out: &mut String, cells: &[&str]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let cell = neutralise(cell);
        if cell.contains([',', '"', '\n', '\r']) || cell.starts_with(' ') || cell.ends_with(' ') {
            put(out, format_args!("\"{}\"", cell.replace('"', "\"\"")));
        } else {
            out.push_str(&cell);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(cells: &[&str]) -> String {
        let mut out = String::new();
        push_record(&mut out, cells);
        out
    }

    #[test]
    fn formulas_become_text_and_quotes_are_doubled() {
        assert_eq!(record(&["=HYPERLINK(\"x\")"]), "\"'=HYPERLINK(\"\"x\"\")\"\r\n");
        assert_eq!(record(&["+1", "-2", "@SUM(A1)", "\tx", "\rx"]), "'+1,'-2,'@SUM(A1),'\tx,\"'\rx\"\r\n");
        assert_eq!(record(&["王家沟村", "12", "a,b", " x"]), "王家沟村,12,\"a,b\",\" x\"\r\n");
        assert_eq!(record(&["'quoted already"]), "'quoted already\r\n");
    }
}
