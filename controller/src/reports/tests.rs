//! Reports through the real path: a store on disk, regions, agents, play
//! events and live sessions recorded with the store's own methods, then
//! the report, its CSV, charts and page.

use chrono::TimeZone;
use dalaba_protocol::state::{PlayEvent, PlayOutcome};

use super::*;
use crate::directory::{Level, NewRegion};
use crate::live::{AgentCounts, AgentReport, AgentState, LivePriority, SessionReport};
use crate::store::sqlite::SqliteStore;
use crate::store::{NewAgent, Store};

const NOVEMBER: (i32, u32) = (2026, 11);
/// The county's time zone, as the API's `COUNTY_TZ`.
const COUNTY_TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

struct County {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    township_a: i64,
    villages: [i64; 4],
}

/// 泾川县: 城关镇 with 王家沟村 (agent ag-1), `=HYPERLINK("x")` (ag-2) and a
/// `<script>` village without an agent; 玉都镇 with 李家村 (ag-4).
fn county() -> County {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("dalaba.db")).expect("open");
    let region = |parent: Option<i64>, level, name: &str, code: &str| {
        let new = NewRegion {
            parent_id: parent,
            level,
            name: name.into(),
            code: code.into(),
            latitude: None,
            longitude: None,
            tags: vec![],
        };
        store.create_region(&new).expect("region").id
    };
    let county = region(None, Level::County, "泾川县", "620821000000");
    let a = region(Some(county), Level::Township, "城关镇", "620821100000");
    let b = region(Some(county), Level::Township, "玉都镇", "620821101000");
    let villages = [
        region(Some(a), Level::Village, "王家沟村", "620821100200"),
        region(Some(a), Level::Village, "=HYPERLINK(\"x\")", "620821100201"),
        region(Some(a), Level::Village, "<script>alert(1)</script>", "620821100202"),
        region(Some(b), Level::Village, "李家村", "620821101200"),
    ];
    for (agent, village) in [("ag-1", villages[0]), ("ag-2", villages[1]), ("ag-4", villages[3])] {
        let code = format!("CODE-{agent}");
        store.create_enrolment_code(village, &code, 10_000, 0).expect("code");
        let new = NewAgent {
            id: agent.into(),
            secret_hash: "h".into(),
            hostname: "pi".into(),
            agent_version: "t".into(),
            hardware_json: "{}".into(),
            enrolled_at_ms: 1,
        };
        store.redeem_enrolment_code(&code, 1, &new).expect("redeem");
    }
    County { _dir: dir, store, township_a: a, villages }
}

/// An instant in the county's time zone.
fn at(day: u32, hour: u32, minute: u32) -> i64 {
    local(2026, 11, day, hour, minute)
}

fn local(y: i32, m: u32, d: u32, hour: u32, minute: u32) -> i64 {
    COUNTY_TZ.with_ymd_and_hms(y, m, d, hour, minute, 0).single().expect("a local time").timestamp_millis()
}

fn event(scheduled_ms: i64, outcome: PlayOutcome) -> PlayEvent {
    let started = matches!(outcome, PlayOutcome::Completed | PlayOutcome::Preempted | PlayOutcome::Failed);
    PlayEvent {
        id: format!("7@{scheduled_ms}"),
        schedule_id: 7,
        sha256: "ab".repeat(32),
        scheduled_ms,
        started_ms: started.then_some(scheduled_ms + 2),
        ended_ms: started.then_some(scheduled_ms + 30_000),
        outcome,
        reason: (outcome != PlayOutcome::Completed).then(|| "why".to_owned()),
        amplifier_confirmed: started,
    }
}

fn live_session(id: &str, started_at_ms: i64, agents: &[(&str, i64, bool)]) -> SessionReport {
    let agents: Vec<AgentReport> = agents
        .iter()
        .map(|(agent, village, played)| AgentReport {
            agent_id: (*agent).into(),
            village_id: *village,
            state: if *played { AgentState::Ended { reason: "stopped".into() } } else { AgentState::Offline },
            playing_from_ms: played.then_some(started_at_ms + 900),
            playing_to_ms: played.then_some(started_at_ms + 60_000),
            frames_sent: 10,
            frames_dropped: 0,
            frames_received: None,
            frames_lost: None,
            refusal: None,
        })
        .collect();
    SessionReport {
        session_id: id.into(),
        title: "通知".into(),
        priority: LivePriority::Paging,
        source: "microphone".into(),
        started_by: "operator".into(),
        targets: serde_json::json!({"county": true}),
        villages: agents.iter().map(|a| a.village_id).collect(),
        volume: 80,
        started_at_ms,
        ended_at_ms: Some(started_at_ms + 60_000),
        end_reason: Some("stopped by operator".into()),
        frames_sent: 10,
        counts: AgentCounts::of(&agents),
        agents,
    }
}

/// November 2026 as the agents reported it, with events just outside the
/// month and one batch delivered twice.
fn november() -> County {
    let c = county();
    let [v1, v2, _, v4] = c.villages;
    let mut unconfirmed = event(at(1, 12, 0), PlayOutcome::Completed);
    unconfirmed.amplifier_confirmed = false;
    let first = vec![
        event(at(1, 0, 0), PlayOutcome::Completed), // the month's first instant
        event(at(1, 7, 0), PlayOutcome::Completed),
        unconfirmed,
        event(at(1, 18, 30), PlayOutcome::Missed),
        event(at(1, 19, 0), PlayOutcome::Failed),
        event(at(1, 0, 0) - 1, PlayOutcome::Completed), // October
    ];
    c.store.record_play_events("ag-1", &first, at(1, 20, 0)).expect("record");
    let second = vec![
        event(at(2, 7, 0), PlayOutcome::Completed),
        event(at(2, 12, 0), PlayOutcome::Completed),
        event(at(2, 18, 30), PlayOutcome::Preempted),
        event(at(2, 19, 0), PlayOutcome::Skipped),
        event(local(2026, 12, 1, 0, 0), PlayOutcome::Completed), // December
    ];
    c.store.record_play_events("ag-1", &second, at(3, 0, 0)).expect("record");
    // The link dropped before the acknowledgement: the same batch again.
    c.store.record_play_events("ag-1", &second, at(3, 0, 1)).expect("record again");
    let ag2 = [event(at(30, 7, 0), PlayOutcome::Completed), event(at(30, 23, 59), PlayOutcome::Failed)];
    c.store.record_play_events("ag-2", &ag2, at(30, 23, 59)).expect("record");
    let ag4: Vec<PlayEvent> = (0..4).map(|h| event(at(15, 7 + h, 0), PlayOutcome::Completed)).collect();
    c.store.record_play_events("ag-4", &ag4, at(15, 12, 0)).expect("record");

    let s1 = live_session("s1", at(10, 9, 0), &[("ag-1", v1, true), ("ag-2", v2, false), ("ag-4", v4, true)]);
    c.store.save_live_session(&s1).expect("session");
    let december = live_session("s2", local(2026, 12, 2, 9, 0), &[("ag-1", v1, true)]);
    c.store.save_live_session(&december).expect("session");
    c
}

fn report(c: &County, scope: &Scope) -> Report {
    let selection = Selection::new(&c.store.regions().expect("regions"), scope).expect("selection");
    let period = Period::month(NOVEMBER.0, NOVEMBER.1, COUNTY_TZ).expect("month");
    let counts = c.store.report_counts(&selection.village_ids(), &period.spans().expect("spans")).expect("counts");
    Report::build(&selection, &period, &counts)
}

fn plays(played: u64, preempted: u64, missed: u64, failed: u64, skipped: u64, amp: u64) -> PlayCounts {
    PlayCounts { played, preempted, missed, failed, skipped, amplifier_unconfirmed: amp }
}

#[test]
fn county_month_adds_up_villages_townships_and_days() {
    let c = november();
    let r = report(&c, &Scope::County);
    assert_eq!((r.title.as_str(), r.scope, r.days.len()), ("泾川县", ScopeKind::County, 30));
    let names: Vec<&str> = r.townships.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["城关镇", "玉都镇"]);

    let a = &r.townships[0];
    let [v1, v2, v3] = [&a.villages[0], &a.villages[1], &a.villages[2]];
    assert_eq!(v1.figures.plays, plays(5, 1, 1, 1, 1, 1), "October, December and the duplicate are left out");
    assert_eq!(v1.figures.plays.scheduled(), 8);
    assert_eq!(v1.figures.plays.compliance_pct(), Some(62.5));
    assert_eq!(v1.figures.live, LiveCounts { targeted: 1, reached: 1 });
    assert_eq!(v2.figures.plays, plays(1, 0, 0, 1, 0, 0));
    assert_eq!(v2.figures.live, LiveCounts { targeted: 1, reached: 0 });
    assert_eq!((v3.figures.plays.compliance_pct(), v3.figures.villages_reporting), (None, 0), "no agent: no reports");

    assert_eq!(a.figures.plays, plays(6, 1, 1, 2, 1, 1));
    assert_eq!(a.figures.plays.compliance_pct(), Some(60.0));
    assert_eq!((a.figures.villages, a.figures.villages_reporting), (3, 2));
    assert_eq!(a.figures.live, LiveCounts { targeted: 2, reached: 1 });

    assert_eq!(r.total.plays, plays(10, 1, 1, 2, 1, 1));
    assert_eq!(r.total.plays.scheduled(), 14);
    assert_eq!((r.total.villages, r.total.villages_reporting), (4, 3));
    assert_eq!(r.total.live, LiveCounts { targeted: 3, reached: 2 });
    let busy: Vec<(usize, PlayCounts)> =
        r.total.daily.iter().copied().enumerate().filter(|(_, d)| !d.is_empty()).collect();
    assert_eq!(
        busy,
        [
            (0, plays(3, 0, 1, 1, 0, 1)),
            (1, plays(2, 1, 0, 0, 1, 0)),
            (14, plays(4, 0, 0, 0, 0, 0)),
            (29, plays(1, 0, 0, 1, 0, 0)),
        ]
    );

    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["scope"], "county");
    assert_eq!(json["total"]["plays"]["scheduled"], 14);
    assert_eq!(json["period"], serde_json::json!({"from": "2026-11-01", "to": "2026-12-01"}));
    assert_eq!(json["townships"][0]["villages"][2]["plays"]["compliance_pct"], serde_json::Value::Null);
}

#[test]
fn a_township_or_a_list_of_villages_sees_only_its_villages() {
    let c = november();
    let r = report(&c, &Scope::Township(c.township_a));
    assert_eq!((r.title.as_str(), r.scope, r.townships.len()), ("城关镇", ScopeKind::Township, 1));
    assert_eq!(r.total.plays, plays(6, 1, 1, 2, 1, 1));
    assert_eq!(r.total.live, LiveCounts { targeted: 2, reached: 1 });

    let [v1, _, _, v4] = c.villages;
    let r = report(&c, &Scope::Villages(vec![v4, v1, v4]));
    let ids: Vec<i64> = r.villages().map(|(_, v)| v.id).collect();
    assert_eq!(ids, [v1, v4], "grouped by township, by code, once each");
    assert_eq!(r.total.plays, plays(9, 1, 1, 1, 1, 1));

    let regions = c.store.regions().expect("regions");
    let err = Selection::new(&regions, &Scope::Township(v1)).expect_err("a village is not a township");
    assert_eq!(err, ReportError::NotA { level: Level::Township, id: v1, found: Some(Level::Village) });
    assert_eq!(err.to_string(), format!("region {v1} is not a township"));
    let err = Selection::new(&regions, &Scope::Villages(vec![c.township_a])).expect_err("not a village");
    assert!(matches!(err, ReportError::NotA { level: Level::Village, found: Some(Level::Township), .. }));
    let err = Selection::new(&regions, &Scope::Township(9_999)).expect_err("missing");
    assert!(matches!(err, ReportError::NotA { found: None, .. }));
}

#[test]
fn csv_export_keeps_a_formula_name_as_text() {
    let c = november();
    let text = csv::villages(&report(&c, &Scope::County));
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').split("\r\n").collect();
    assert_eq!(lines[0], csv::HEADER_ZH.join(","));
    assert_eq!(lines[1], "城关镇,620821100000,王家沟村,620821100200,2026-11-01,2026-11-30,8,5,1,1,1,1,62.5,1,1,1,");
    assert_eq!(
        lines[2],
        "城关镇,620821100000,\"'=HYPERLINK(\"\"x\"\")\",620821100201,2026-11-01,2026-11-30,2,1,0,0,1,0,50.0,0,1,0,"
    );
    assert_eq!(
        lines[3],
        "城关镇,620821100000,<script>alert(1)</script>,620821100202,2026-11-01,2026-11-30,0,0,0,0,0,0,,0,0,0,"
    );
    assert_eq!((lines.len(), lines[5]), (6, ""), "four villages and the final line end");
    for line in &lines {
        for cell in line.split(',') {
            assert!(!cell.trim_start_matches('"').starts_with(['=', '+', '-', '@']), "{cell} in {line}");
        }
    }
}

#[test]
fn script_in_a_name_is_inert_in_charts_and_page() {
    let c = november();
    let r = report(&c, &Scope::Township(c.township_a));
    let chart = svg::village_compliance(&r.townships[0], Lang::Zh);
    assert!(!chart.contains("<script"), "{chart}");
    assert!(chart.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt;: 播出率 (compliance) —</title>"), "{chart}");
    let page = html::monthly(&r, at(30, 12, 0));
    assert!(!page.contains("<script"), "no script element, not even escaped badly");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; <span class=\"code\">620821100202</span>"));
    assert!(page.contains("=HYPERLINK(&quot;x&quot;)"));
    assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
    assert!(page.contains("<title>城关镇 2026年11月 (November 2026) 广播运行报告 (Broadcast report)</title>"));
    assert!(page.contains("生成于 (Generated) 2026-11-30 12:00"));
    assert!(page.contains("<div class=\"value\">60.0%</div><div class=\"label\">播出率 (Compliance)</div>"));
    assert_eq!(page.matches("<svg ").count(), 3, "two daily charts and the villages' compliance");
    assert_eq!(page.matches("http").count(), 3, "nothing but the SVG namespace is addressed");
    assert!(!page.contains("各乡镇 (Townships)"), "a township's page has no township table");
}

#[test]
fn a_county_page_has_the_township_table_and_chart() {
    let c = november();
    let page = html::monthly(&report(&c, &Scope::County), at(30, 12, 0));
    assert!(page.contains("各乡镇 (Townships)"));
    assert!(page.contains("各乡镇播出率 (Compliance by township)"));
    assert!(page.contains("<tr class=\"low\"><td>城关镇</td>"), "60 % is highlighted");
    assert!(page.contains("<tr class=\"none\"><td>&lt;script&gt;"), "no reports is shown apart");
}

#[test]
fn an_empty_store_gives_a_report_without_figures() {
    let c = county();
    let r = report(&c, &Scope::County);
    assert_eq!((r.total.plays, r.total.plays.compliance_pct(), r.total.villages), (PlayCounts::default(), None, 4));
    assert_eq!(r.total.daily.len(), 30);
    let page = html::monthly(&r, 0);
    assert!(page.contains("无数据 (no reports)"));
}

#[test]
fn hours_offline_come_from_the_presence_history() {
    let c = county();
    // ag-1 online from 1 November 08:00 to 2 November 08:00 (24 h), then
    // from 30 November 00:00 on, still connected; ag-2 never; ag-4 online
    // the whole month until the controller crashed on 20 November 12:00
    // after its last checkpoint.
    c.store.record_presence_connected("ag-1", at(1, 8, 0)).expect("connect");
    c.store.record_presence_disconnected("ag-1", at(2, 8, 0)).expect("disconnect");
    c.store.record_presence_connected("ag-1", at(30, 0, 0)).expect("connect");
    c.store.record_presence_connected("ag-4", at(1, 0, 0) - 1).expect("connect");
    c.store.checkpoint_presence(at(20, 12, 0)).expect("checkpoint");
    // A second agent row open at the crash: closed at the checkpoint. ag-1's
    // open row is closed too, at the same checkpoint.
    assert_eq!(c.store.close_open_presence().expect("close"), 2);
    let mut r = report(&c, &Scope::County);
    let period = Period::month(NOVEMBER.0, NOVEMBER.1, COUNTY_TZ).expect("month");
    let spans = period.spans().expect("spans");
    let (from, to) = (spans[0].from_ms, spans[spans.len() - 1].to_ms);
    let presence = c
        .store
        .presence_history(
            &r.townships[0].villages.iter().map(|v| v.id).chain([c.villages[3]]).collect::<Vec<_>>(),
            from,
            to,
        )
        .expect("history");
    // Asked at the month's end (the month is over).
    r.add_presence(&presence, from, to, to + 1);
    let month_h = 30.0 * 24.0;
    let hours = |t: usize, v: usize| r.townships[t].villages[v].figures.hours_offline;
    // ag-1: online 1 Nov 08:00 to 2 Nov 08:00 only (its row opened on 30
    // November was closed at the restart with nothing known after its
    // start: an empty interval), offline the rest of the month.
    assert_eq!(hours(0, 0), Some(month_h - 24.0));
    assert_eq!(hours(0, 1), Some(month_h), "never online");
    assert_eq!(hours(0, 2), None, "no agent, not counted");
    assert_eq!(hours(1, 0), Some(month_h - 19.0 * 24.0 - 12.0), "offline after the crash");
    assert_eq!(r.townships[0].figures.hours_offline, Some(2.0 * month_h - 24.0));
    assert_eq!(r.total.hours_offline, Some(3.0 * month_h - 24.0 - 19.0 * 24.0 - 12.0));
    let csv = csv::villages(&r);
    assert!(csv.contains(",620821100200,2026-11-01,2026-11-30,0,0,0,0,0,0,,0,0,0,696.0\r\n"), "{csv}");
    let page = html::monthly(&r, to);
    assert!(page.contains("离线时长 (Hours offline)"), "the tile");
    assert!(page.contains("<td>696.0</td></tr>"), "the village's row");
}

#[test]
fn english_labels_follow_lang() {
    let c = november();
    let r = report(&c, &Scope::County);
    let en = csv::villages_in(&r, Lang::En);
    let header = en.trim_start_matches('\u{feff}').split("\r\n").next().unwrap_or_default();
    assert_eq!(header, csv::HEADER.join(","));
    assert!(csv::villages(&r).contains("乡镇,乡镇代码,村,村代码"), "Chinese by default");
    let page = html::monthly_in(&r, at(30, 12, 0), Lang::En);
    assert!(page.contains("<html lang=\"en\">"));
    assert!(page.contains("<title>泾川县 November 2026 broadcast report</title>"), "names stay as they are");
    assert!(page.contains("<div class=\"label\">Compliance</div>"));
    assert!(page.contains("Compliance by township") && page.contains("no reports"));
    assert!(page.contains("<h2>Notes</h2>") && page.contains("Generated 2026-11-30 12:00"));
    let chinese = ["播出", "应播", "已播", "离线", "合计", "说明", "生成于", "无数据"];
    assert!(!chinese.iter().any(|w| page.contains(w)), "no Chinese label left in the English page");
    let zh = html::monthly(&r, at(30, 12, 0));
    assert!(zh.contains("<html lang=\"zh-CN\">") && zh.contains("说明 (Notes)"));
}
