//! The per-village report as a CSV file for spreadsheets.
//!
//! Written as the directory's export is, with its helpers: UTF-8 with a
//! byte-order mark (so Excel reads the Chinese names), CRLF line ends,
//! cells quoted as RFC 4180 requires, and a leading `'` on any cell a
//! spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`,
//! tab or CR), so a village named `=HYPERLINK("…")` stays text.

use crate::directory::csv::{neutralise, push_record};

use super::{Lang, Report};

/// The header row in Chinese (`lang=zh`, the default), in order.
pub const HEADER_ZH: [&str; 17] = [
    "乡镇",
    "乡镇代码",
    "村",
    "村代码",
    "首日",
    "末日",
    "应播",
    "已播",
    "被插播",
    "错过",
    "失败",
    "撤销",
    "播出率(%)",
    "功放未确认",
    "直播指定",
    "直播到达",
    "离线小时",
];

/// The header row in English (`lang=en`), in order.
pub const HEADER: [&str; 17] = [
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
    "hours_offline",
];

const BOM: char = '\u{feff}';

/// One row per village of the report, by township and code. Compliance is
/// a percentage with one decimal, empty when nothing was scheduled; hours
/// offline have one decimal, empty for a village without an agent.
pub fn villages(report: &Report) -> String {
    villages_in(report, Lang::Zh)
}

/// [`villages`] with its header in `lang`.
pub fn villages_in(report: &Report, lang: Lang) -> String {
    let mut out = String::with_capacity(256 * (report.total.villages as usize + 1));
    out.push(BOM);
    let header = match lang {
        Lang::Zh => HEADER_ZH,
        Lang::En => HEADER,
    };
    push_record(&mut out, &header.map(str::to_owned));
    let (first, last) = (report.period.from().to_string(), report.period.last().to_string());
    for (t, v) in report.villages() {
        let (p, live) = (&v.figures.plays, &v.figures.live);
        let mut cells: Vec<String> = [&t.name, &t.code, &v.name, &v.code].map(|s| neutralise(s)).into();
        cells.extend([first.clone(), last.clone()]);
        let counts = [p.scheduled(), p.played, p.preempted, p.missed, p.failed, p.skipped];
        cells.extend(counts.map(|n| n.to_string()));
        cells.push(p.compliance_pct().map(|c| format!("{c:.1}")).unwrap_or_default());
        cells.extend([p.amplifier_unconfirmed, live.targeted, live.reached].map(|n| n.to_string()));
        cells.push(v.figures.hours_offline.map(|h| format!("{h:.1}")).unwrap_or_default());
        push_record(&mut out, &cells);
    }
    out
}
