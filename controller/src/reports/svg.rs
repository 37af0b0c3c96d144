//! Charts drawn on the server as SVG text: a page embeds them as they are,
//! an `<img>` can load them alone (each carries its namespace), and a
//! printout keeps them sharp. Every text from the directory or the caller
//! is escaped; colours and coordinates are the only attributes.

use chrono::{Datelike, NaiveDate};

use super::markup::{count, escape, percent, put};
use super::{Lang, PlayCounts, Report, TownshipReport};

/// Played items (the HTML legend uses the same colours).
pub const PLAYED_COLOUR: &str = "#2e7d32";
/// Preempted items.
pub const PREEMPTED_COLOUR: &str = "#1565c0";
/// Missed items.
pub const MISSED_COLOUR: &str = "#ef6c00";
/// Failed items.
pub const FAILED_COLOUR: &str = "#c62828";
/// Compliance between 80 % and 95 %.
pub const FAIR_COLOUR: &str = "#f9a825";

const NO_DATA_COLOUR: &str = "#bdbdbd";
const GRID_COLOUR: &str = "#e0e0e0";
const TEXT_COLOUR: &str = "#333333";

const WIDTH: f64 = 720.0;
const DAILY_HEIGHT: f64 = 240.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 24.0;
const ROW: f64 = 22.0;
const LABEL_WIDTH: f64 = 140.0;
/// Longest name a bar label shows, in characters.
const LABEL_CHARS: usize = 10;

/// Played, preempted, missed and failed items per day, stacked.
pub fn daily_outcomes(title: &str, days: &[NaiveDate], daily: &[PlayCounts], lang: Lang) -> String {
    let max = daily.iter().map(PlayCounts::scheduled).max().unwrap_or(0);
    let step = nice_step(max.div_ceil(4));
    let top = step * 4;
    let mut svg = open(title, WIDTH, DAILY_HEIGHT);
    let plot = Plot::new(days.len());
    for k in 0..=4 {
        plot.grid(&mut svg, k as f64 / 4.0, &count(step * k));
    }
    for (i, (day, c)) in days.iter().zip(daily).enumerate() {
        let (x, w) = plot.bar(i);
        let tip = match lang {
            Lang::Zh => format!(
                "{day}: 已播 (played) {}, 被插播 (preempted) {}, 错过 (missed) {}, 失败 (failed) {}",
                c.played, c.preempted, c.missed, c.failed
            ),
            Lang::En => {
                format!(
                    "{day}: played {}, preempted {}, missed {}, failed {}",
                    c.played, c.preempted, c.missed, c.failed
                )
            }
        };
        put(&mut svg, format_args!("<g><title>{}</title>", escape(&tip)));
        let mut y = plot.bottom();
        for (n, colour) in [
            (c.played, PLAYED_COLOUR),
            (c.preempted, PREEMPTED_COLOUR),
            (c.missed, MISSED_COLOUR),
            (c.failed, FAILED_COLOUR),
        ] {
            let h = plot.height() * n as f64 / top as f64;
            if n > 0 {
                y -= h;
                rect(&mut svg, x, y, w, h, colour);
            }
        }
        svg.push_str("</g>");
        plot.day_label(&mut svg, i, *day, days.len());
    }
    legend(
        &mut svg,
        &[
            (lang.pick("已播 (played)", "played"), PLAYED_COLOUR),
            (lang.pick("被插播 (preempted)", "preempted"), PREEMPTED_COLOUR),
            (lang.pick("错过 (missed)", "missed"), MISSED_COLOUR),
            (lang.pick("失败 (failed)", "failed"), FAILED_COLOUR),
        ],
    );
    svg.push_str("</svg>");
    svg
}

/// Compliance per day, 0–100 %, coloured green (≥ 95 %), amber (≥ 80 %) or
/// red; a grey stub marks a day with nothing reported.
pub fn daily_compliance(title: &str, days: &[NaiveDate], daily: &[PlayCounts], lang: Lang) -> String {
    let mut svg = open(title, WIDTH, DAILY_HEIGHT);
    let plot = Plot::new(days.len());
    for k in 0..=4 {
        plot.grid(&mut svg, k as f64 / 4.0, &format!("{}%", k * 25));
    }
    for (i, (day, c)) in days.iter().zip(daily).enumerate() {
        let (x, w) = plot.bar(i);
        let pct = c.compliance_pct();
        let tip = format!("{day}: {} {}", lang.pick("播出率 (compliance)", "compliance"), percent(pct));
        put(&mut svg, format_args!("<g><title>{}</title>", escape(&tip)));
        match pct {
            Some(p) => {
                let h = plot.height() * p / 100.0;
                rect(&mut svg, x, plot.bottom() - h, w, h, grade(p));
            }
            None => rect(&mut svg, x, plot.bottom() - 2.0, w, 2.0, NO_DATA_COLOUR),
        }
        svg.push_str("</g>");
        plot.day_label(&mut svg, i, *day, days.len());
    }
    legend(&mut svg, &[("≥ 95%", PLAYED_COLOUR), ("≥ 80%", FAIR_COLOUR), ("< 80%", FAILED_COLOUR)]);
    svg.push_str("</svg>");
    svg
}

/// One horizontal compliance bar per named row (townships or villages), in
/// the given order; a row without reports says so instead of a bar.
pub fn compliance_by(title: &str, rows: &[(&str, Option<f64>)], lang: Lang) -> String {
    let height = TOP + ROW * rows.len() as f64 + 8.0;
    let mut svg = open(title, WIDTH, height);
    let bar_space = WIDTH - LABEL_WIDTH - 64.0;
    for k in 0..=4 {
        let x = LABEL_WIDTH + bar_space * k as f64 / 4.0;
        put(
            &mut svg,
            format_args!(
                r#"<line x1="{x:.1}" y1="{TOP:.1}" x2="{x:.1}" y2="{:.1}" stroke="{GRID_COLOUR}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}%</text>"#,
                height - 8.0,
                TOP - 4.0,
                k * 25
            ),
        );
    }
    for (i, (name, pct)) in rows.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let label = shorten(name, LABEL_CHARS);
        let tip = format!("{name}: {} {}", lang.pick("播出率 (compliance)", "compliance"), percent(*pct));
        put(&mut svg, format_args!("<g><title>{}</title>", escape(&tip)));
        put(
            &mut svg,
            format_args!(
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LABEL_WIDTH - 6.0,
                y + 15.0,
                escape(&label)
            ),
        );
        match pct {
            Some(p) => {
                let w = bar_space * p.clamp(0.0, 100.0) / 100.0;
                rect(&mut svg, LABEL_WIDTH, y + 4.0, w, ROW - 8.0, grade(*p));
                put(
                    &mut svg,
                    format_args!(
                        r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                        LABEL_WIDTH + w + 4.0,
                        y + 15.0,
                        percent(*pct)
                    ),
                );
            }
            None => put(
                &mut svg,
                format_args!(
                    r#"<text x="{:.1}" y="{:.1}" fill="{NO_DATA_COLOUR}">{}</text>"#,
                    LABEL_WIDTH + 4.0,
                    y + 15.0,
                    lang.pick("无数据 (no reports)", "no reports")
                ),
            ),
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    svg
}

/// Compliance of each township of a report.
pub fn township_compliance(report: &Report, lang: Lang) -> String {
    let rows: Vec<(&str, Option<f64>)> =
        report.townships.iter().map(|t| (t.name.as_str(), t.figures.plays.compliance_pct())).collect();
    compliance_by(lang.pick("各乡镇播出率 (Compliance by township)", "Compliance by township"), &rows, lang)
}

/// Compliance of each village of a township.
pub fn village_compliance(township: &TownshipReport, lang: Lang) -> String {
    let rows: Vec<(&str, Option<f64>)> =
        township.villages.iter().map(|v| (v.name.as_str(), v.figures.plays.compliance_pct())).collect();
    let title = match lang {
        Lang::Zh => format!("{} 各村播出率 (Compliance by village)", township.name),
        Lang::En => format!("{}: compliance by village", township.name),
    };
    compliance_by(&title, &rows, lang)
}

/// The colour of a compliance.
fn grade(pct: f64) -> &'static str {
    if pct >= 95.0 {
        PLAYED_COLOUR
    } else if pct >= 80.0 {
        FAIR_COLOUR
    } else {
        FAILED_COLOUR
    }
}

/// The smallest of 1, 2, 5, 10, 20, 50, … that is at least `at_least`.
fn nice_step(at_least: u64) -> u64 {
    let mut p = 1u64;
    loop {
        for m in [1, 2, 5] {
            let step = m * p;
            if step >= at_least {
                return step;
            }
        }
        match p.checked_mul(10) {
            Some(next) => p = next,
            None => return at_least,
        }
    }
}

/// At most `chars` characters of `name`, with `…` when cut.
fn shorten(name: &str, chars: usize) -> String {
    if name.chars().count() <= chars {
        name.to_owned()
    } else {
        let mut s: String = name.chars().take(chars - 1).collect();
        s.push('…');
        s
    }
}

fn open(title: &str, width: f64, height: f64) -> String {
    let title = escape(title);
    let mut svg = String::with_capacity(16 * 1024);
    put(
        &mut svg,
        format_args!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" role="img" aria-label="{title}" font-family="sans-serif" font-size="11" fill="{TEXT_COLOUR}"><title>{title}</title><text x="4" y="16" font-size="13" font-weight="bold">{title}</text>"#
        ),
    );
    svg
}

fn rect(svg: &mut String, x: f64, y: f64, w: f64, h: f64, colour: &str) {
    put(svg, format_args!(r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{colour}"/>"#));
}

fn legend(svg: &mut String, entries: &[(&str, &str)]) {
    let mut x = WIDTH - RIGHT;
    // Right-aligned: lay out from the right edge, widest guess per label.
    for (label, colour) in entries.iter().rev() {
        let width = 14.0 + 7.0 * label.chars().map(|c| if c.is_ascii() { 1.0 } else { 1.8 }).sum::<f64>();
        x -= width;
        rect(svg, x, 8.0, 10.0, 10.0, colour);
        put(svg, format_args!(r#"<text x="{:.1}" y="17">{}</text>"#, x + 13.0, escape(label)));
    }
}

/// The plotting area of a daily chart.
struct Plot {
    band: f64,
}

impl Plot {
    fn new(days: usize) -> Plot {
        Plot { band: (WIDTH - LEFT - RIGHT) / days.max(1) as f64 }
    }

    fn height(&self) -> f64 {
        DAILY_HEIGHT - TOP - BOTTOM
    }

    fn bottom(&self) -> f64 {
        DAILY_HEIGHT - BOTTOM
    }

    /// The left edge and width of day `i`'s bar.
    fn bar(&self, i: usize) -> (f64, f64) {
        let w = (self.band * 0.75).max(0.5);
        (LEFT + self.band * i as f64 + (self.band - w) / 2.0, w)
    }

    /// A horizontal grid line at `fraction` of the height, labelled.
    fn grid(&self, svg: &mut String, fraction: f64, label: &str) {
        let y = self.bottom() - self.height() * fraction;
        put(
            svg,
            format_args!(
                r#"<line x1="{LEFT:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{GRID_COLOUR}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                WIDTH - RIGHT,
                LEFT - 4.0,
                y + 4.0,
                escape(label)
            ),
        );
    }

    /// The day of month under a bar: every day of a month-long chart,
    /// the first of each month (as `M/D`) on longer ones.
    fn day_label(&self, svg: &mut String, i: usize, day: NaiveDate, days: usize) {
        let label = if days <= 31 {
            day.day().to_string()
        } else if day.day() == 1 {
            format!("{}/1", day.month())
        } else {
            return;
        };
        let x = LEFT + self.band * (i as f64 + 0.5);
        put(
            svg,
            format_args!(r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#, self.bottom() + 14.0),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(n: u32) -> Vec<NaiveDate> {
        (1..=n).map(|d| NaiveDate::from_ymd_opt(2026, 11, d).expect("a day")).collect()
    }

    fn counts(played: u64, missed: u64, failed: u64) -> PlayCounts {
        PlayCounts { played, missed, failed, ..PlayCounts::default() }
    }

    #[test]
    fn steps_are_round() {
        for (at_least, step) in [(0, 1), (1, 1), (3, 5), (6, 10), (11, 20), (1_001, 2_000), (4_500, 5_000)] {
            assert_eq!(nice_step(at_least), step, "{at_least}");
        }
    }

    #[test]
    fn stacked_bars_have_one_group_per_day_and_scale_to_the_busiest() {
        let d = days(3);
        let svg = daily_outcomes("t", &d, &[counts(18, 1, 1), PlayCounts::default(), counts(40, 0, 0)], Lang::Zh);
        assert!(svg.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg""#), "{svg}");
        assert!(svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<g><title>").count(), 3);
        // 40 items → steps of 10, top 40: day 3's bar is the full 182-pixel plot.
        assert!(svg.contains(r##"height="182.0" fill="#2e7d32""##), "{svg}");
        assert!(svg.contains(">40</text>"));
    }

    #[test]
    fn compliance_bars_show_no_reports_apart_from_zero() {
        let svg = compliance_by("t", &[("城关镇", Some(0.0)), ("玉都镇", None), ("高平镇", Some(96.0))], Lang::Zh);
        assert!(svg.contains(">0.0%</text>"));
        assert!(svg.contains("无数据 (no reports)"));
        assert!(svg.contains(&format!(r#"fill="{PLAYED_COLOUR}""#)));
        let long = compliance_by("t", &[("一二三四五六七八九十十一", Some(50.0))], Lang::Zh);
        assert!(long.contains(">一二三四五六七八九…</text>"), "{long}");
    }

    #[test]
    fn a_year_labels_the_first_of_each_month() {
        let year: Vec<NaiveDate> = NaiveDate::from_ymd_opt(2026, 1, 1).expect("day").iter_days().take(365).collect();
        let svg = daily_compliance("t", &year, &vec![counts(1, 0, 0); 365], Lang::Zh);
        assert_eq!(svg.matches(r#"text-anchor="middle""#).count(), 12);
        assert!(svg.contains(">12/1</text>"));
    }
}
