//! The printable report: one self-contained HTML page (inline CSS, inline
//! SVG charts, no scripts, no external resources) that prints on A4. Made
//! for a township's month; a county-wide or other period works the same.
//! Labels are Chinese with English in parentheses (`Lang::Zh`), or English
//! only (`Lang::En`). Every name is escaped.
//!
//! The page needs nothing from the network, so it can be served under a
//! strict policy: `Content-Security-Policy: default-src 'none';
//! style-src 'unsafe-inline'`.

use chrono::{DateTime, Datelike};

use super::markup::{count, escape, percent, put};
use super::svg::{self, FAILED_COLOUR, MISSED_COLOUR, PLAYED_COLOUR, PREEMPTED_COLOUR};
use super::{Figures, Lang, Report, ScopeKind};

/// Below this compliance a table row is highlighted.
const LOW_COMPLIANCE_PCT: f64 = 80.0;

/// The report as a printable page; `generated_at_ms` is printed in its
/// footer (the caller's clock: nothing here reads one).
pub fn monthly(report: &Report, generated_at_ms: i64) -> String {
    monthly_in(report, generated_at_ms, Lang::Zh)
}

/// [`monthly`] with its labels in `lang`.
pub fn monthly_in(report: &Report, generated_at_ms: i64, lang: Lang) -> String {
    let title = escape(&report.title);
    let period = period_label(report, lang);
    let (html_lang, name) = match lang {
        Lang::Zh => ("zh-CN", "广播运行报告 (Broadcast report)"),
        Lang::En => ("en", "broadcast report"),
    };
    let mut page = String::with_capacity(64 * 1024);
    put(
        &mut page,
        format_args!(
            "<!DOCTYPE html>\n<html lang=\"{html_lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title} {period} {name}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        ),
    );
    let header = match lang {
        Lang::Zh => format!(
            "<header><h1>{title} 广播运行报告 <small>(Broadcast report)</small></h1>\n\
             <p class=\"period\">{period} · 统计区间 (Period) {} 至 (to) {} · 时区 (Time zone) {}</p></header>\n",
            report.period.from(),
            report.period.last(),
            escape(report.timezone),
        ),
        Lang::En => format!(
            "<header><h1>{title}: broadcast report</h1>\n\
             <p class=\"period\">{period} · Period {} to {} · Time zone {}</p></header>\n",
            report.period.from(),
            report.period.last(),
            escape(report.timezone),
        ),
    };
    page.push_str(&header);
    summary(&mut page, &report.total, lang);

    put(
        &mut page,
        format_args!("<section class=\"charts\">\n<h2>{}</h2>\n", lang.pick("每日情况 (Day by day)", "Day by day")),
    );
    let (days, daily) = (&report.days, &report.total.daily);
    page.push_str(&svg::daily_outcomes(lang.pick("每日播出 (Items per day)", "Items per day"), days, daily, lang));
    page.push_str(&svg::daily_compliance(
        lang.pick("每日播出率 (Compliance per day)", "Compliance per day"),
        days,
        daily,
        lang,
    ));
    match report.townships.as_slice() {
        [only] if report.scope == ScopeKind::Township => page.push_str(&svg::village_compliance(only, lang)),
        _ => page.push_str(&svg::township_compliance(report, lang)),
    }
    page.push_str("</section>\n");

    let total = format!("<strong>{}</strong>", lang.pick("合计 (Total)", "Total"));
    if report.scope != ScopeKind::Township {
        put(&mut page, format_args!("<section>\n<h2>{}</h2>\n<table>\n", lang.pick("各乡镇 (Townships)", "Townships")));
        head(&mut page, lang.pick("乡镇 (Township)", "Township"), lang);
        page.push_str("<tbody>\n");
        for t in &report.townships {
            row(&mut page, &escape(&t.name), &t.figures, lang);
        }
        row(&mut page, &total, &report.total, lang);
        page.push_str("</tbody>\n</table>\n</section>\n");
    }

    for t in &report.townships {
        put(
            &mut page,
            format_args!(
                "<section class=\"villages\">\n<h2>{} {}</h2>\n<table>\n",
                escape(&t.name),
                lang.pick("各村 (Villages)", "villages")
            ),
        );
        head(&mut page, lang.pick("村 (Village)", "Village"), lang);
        page.push_str("<tbody>\n");
        for v in &t.villages {
            let name = format!("{} <span class=\"code\">{}</span>", escape(&v.name), escape(&v.code));
            row(&mut page, &name, &v.figures, lang);
        }
        row(&mut page, &total, &t.figures, lang);
        page.push_str("</tbody>\n</table>\n</section>\n");
    }

    page.push_str(lang.pick(NOTES, NOTES_EN));
    let generated = DateTime::from_timestamp_millis(generated_at_ms)
        .map(|t| t.with_timezone(&report.period.tz()).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default();
    let footer = lang.pick(
        "生成于 (Generated) {generated} · Dalaba 县级应急广播平台 (county broadcast controller)",
        "Generated {generated} · Dalaba county broadcast controller",
    );
    put(&mut page, format_args!("<footer>{}</footer>\n</body>\n</html>\n", footer.replace("{generated}", &generated)));
    page
}

/// Hours with one decimal, `—` when not counted.
fn hours(h: Option<f64>) -> String {
    h.map_or_else(|| "—".to_owned(), |h| format!("{h:.1}"))
}

/// `2026年11月 (November 2026)` (`November 2026` in English) for a
/// month, else the first and last days.
fn period_label(report: &Report, lang: Lang) -> String {
    let p = &report.period;
    if p.is_month() {
        let from = p.from();
        match lang {
            Lang::Zh => format!("{}年{}月 ({})", from.year(), from.month(), from.format("%B %Y")),
            Lang::En => from.format("%B %Y").to_string(),
        }
    } else {
        format!("{} – {}", p.from(), p.last())
    }
}

fn summary(page: &mut String, f: &Figures, lang: Lang) {
    let p = &f.plays;
    page.push_str("<section class=\"tiles\">\n");
    let tiles = [
        (lang.pick("播出率 (Compliance)", "Compliance"), percent(p.compliance_pct())),
        (lang.pick("应播 (Scheduled)", "Scheduled"), count(p.scheduled())),
        (lang.pick("已播 (Played)", "Played"), count(p.played)),
        (lang.pick("被插播 (Preempted)", "Preempted"), count(p.preempted)),
        (lang.pick("错过 (Missed)", "Missed"), count(p.missed)),
        (lang.pick("失败 (Failed)", "Failed"), count(p.failed)),
        (lang.pick("功放未确认 (Amplifier not confirmed)", "Amplifier not confirmed"), count(p.amplifier_unconfirmed)),
        (
            lang.pick("直播到达 (Live sessions reached)", "Live sessions reached"),
            format!("{} / {}", count(f.live.reached), count(f.live.targeted)),
        ),
        (
            lang.pick("有报告的村 (Villages reporting)", "Villages reporting"),
            format!("{} / {}", count(f.villages_reporting), count(f.villages)),
        ),
        (lang.pick("离线时长 (Hours offline)", "Hours offline"), hours(f.hours_offline)),
    ];
    for (label, value) in tiles {
        put(
            page,
            format_args!(
                "<div class=\"tile\"><div class=\"value\">{}</div><div class=\"label\">{label}</div></div>\n",
                escape(&value)
            ),
        );
    }
    page.push_str("</section>\n");
}

fn head(page: &mut String, first: &str, lang: Lang) {
    let l = |zh, en| lang.pick(zh, en);
    put(
        page,
        format_args!(
            "<thead><tr><th>{first}</th><th>{}</th>\
             <th><i style=\"background:{PLAYED_COLOUR}\"></i>{}</th>\
             <th><i style=\"background:{PREEMPTED_COLOUR}\"></i>{}</th>\
             <th><i style=\"background:{MISSED_COLOUR}\"></i>{}</th>\
             <th><i style=\"background:{FAILED_COLOUR}\"></i>{}</th>\
             <th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n",
            l("应播<br>(Scheduled)", "Scheduled"),
            l("已播<br>(Played)", "Played"),
            l("被插播<br>(Preempted)", "Preempted"),
            l("错过<br>(Missed)", "Missed"),
            l("失败<br>(Failed)", "Failed"),
            l("播出率<br>(Compliance)", "Compliance"),
            l("功放未确认<br>(Amp. not confirmed)", "Amp. not confirmed"),
            l("直播到达<br>(Live reached)", "Live reached"),
            l("离线小时<br>(Hours offline)", "Hours offline"),
        ),
    );
}

/// A table row; `name` is markup the caller escaped.
fn row(page: &mut String, name: &str, f: &Figures, lang: Lang) {
    let p = &f.plays;
    let pct = p.compliance_pct();
    let class = match pct {
        None => " class=\"none\"",
        Some(c) if c < LOW_COMPLIANCE_PCT => " class=\"low\"",
        Some(_) => "",
    };
    put(
        page,
        format_args!(
            "<tr{class}><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td></tr>\n",
            count(p.scheduled()),
            count(p.played),
            count(p.preempted),
            count(p.missed),
            count(p.failed),
            if pct.is_none() { lang.pick("无数据 (no reports)", "no reports").to_owned() } else { percent(pct) },
            count(p.amplifier_unconfirmed),
            count(f.live.reached),
            count(f.live.targeted),
            hours(f.hours_offline),
        ),
    );
}

const STYLE: &str = "
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font-family: 'Noto Sans CJK SC', 'Source Han Sans SC', 'Microsoft YaHei', sans-serif; color: #222;
       margin: 0 auto; max-width: 760px; padding: 16px; font-size: 13px; line-height: 1.45; }
h1 { font-size: 20px; margin: 0 0 4px; } h1 small { font-weight: normal; color: #555; font-size: 14px; }
h2 { font-size: 15px; margin: 18px 0 6px; border-bottom: 1px solid #ccc; padding-bottom: 2px; }
.period { color: #555; margin: 0 0 12px; }
.tiles { display: flex; flex-wrap: wrap; gap: 6px; }
.tile { border: 1px solid #ccc; border-radius: 4px; padding: 6px 8px; min-width: 140px; flex: 1 1 140px; }
.tile .value { font-size: 18px; font-weight: bold; } .tile .label { color: #555; font-size: 11px; }
.charts svg { display: block; max-width: 100%; height: auto; margin: 6px 0; }
table { border-collapse: collapse; width: 100%; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 3px 5px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; font-weight: normal; }
th i { display: inline-block; width: 8px; height: 8px; margin-right: 3px; }
tr.low td { background: #fdecea; } tr.none td { color: #888; }
.code { color: #888; font-size: 10px; }
.notes { color: #444; font-size: 11px; } .notes li { margin: 2px 0; }
footer { margin-top: 16px; color: #777; font-size: 11px; border-top: 1px solid #ccc; padding-top: 4px; }
@media print {
  body { max-width: none; padding: 0; }
  tr, .tile, svg { break-inside: avoid; }
  h2 { break-after: avoid; }
  section.villages { break-before: page; }
  tr.low td { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
";

/// What the figures mean, for whoever reads the printout.
const NOTES: &str = "<section class=\"notes\">
<h2>说明 (Notes)</h2>
<ul>
<li>应播 (Scheduled)：各村广播终端上报的节目条数（已播、被插播、错过、失败之和；主动撤销的不计）。没有终端或终端从未上报的村显示“无数据”。 Items the village boards reported as due: played, preempted, missed and failed (withdrawn items are not due). A village with no board, or whose board never reported, shows “no reports”.</li>
<li>播出率 (Compliance) = 已播 ÷ 应播。 Played ÷ scheduled.</li>
<li>被插播 (Preempted)：节目被直播或应急广播打断，且在时段内未能续播。 Interrupted by a live or emergency broadcast and not resumed within its window.</li>
<li>功放未确认 (Amplifier not confirmed)：开始播放但功放继电器未确认接通；未配置继电器的终端所有节目均计入。 Audio started but the relay never confirmed the amplifier on; boards without a relay driver count every item.</li>
<li>直播到达 (Live reached)：统计期内开始的直播中，本村终端实际播出的场次 / 指定本村的场次。 Live sessions started in the period that played in the village / that targeted it.</li>
<li>离线时长 (Hours offline)：已登记终端的村，自登记（或统计区间开始）至区间结束（本月则至当前），没有任何终端在线的小时数；未登记终端的村显示“—”。 Hours in which no board of the village was connected, from its enrolment (or the period's start) to the period's end (or now); villages without a board show “—”.</li>
<li>近期数据会随离线终端补报而增加。 Recent days may grow as offline boards deliver their logs.</li>
</ul>
</section>
";

/// What the figures mean, in English.
const NOTES_EN: &str = "<section class=\"notes\">
<h2>Notes</h2>
<ul>
<li>Scheduled: items the village boards reported as due: played, preempted, missed and failed (withdrawn items are not due). A village with no board, or whose board never reported, shows “no reports”.</li>
<li>Compliance: played ÷ scheduled.</li>
<li>Preempted: interrupted by a live or emergency broadcast and not resumed within its window.</li>
<li>Amplifier not confirmed: audio started but the relay never confirmed the amplifier on; boards without a relay driver count every item.</li>
<li>Live reached: live sessions started in the period that played in the village / that targeted it.</li>
<li>Hours offline: hours in which no board of the village was connected, from its enrolment (or the period's start) to the period's end (or now); villages without a board show “—”.</li>
<li>Recent days may grow as offline boards deliver their logs.</li>
</ul>
</section>
";
