//! The CAP reader on realistic alerts and on everything that must be
//! refused with a clear message.

use super::*;

const ZH: &str = include_str!("../../../tests/fixtures/cap/alert-zh.xml");
const EN: &str = include_str!("../../../tests/fixtures/cap/alert-en.xml");
const UPDATE: &str = include_str!("../../../tests/fixtures/cap/update-zh.xml");
const CANCEL: &str = include_str!("../../../tests/fixtures/cap/cancel-zh.xml");

#[test]
fn a_chinese_alert_with_geocode_circle_and_embedded_audio() {
    let alert = parse(ZH).expect("parses");
    assert_eq!(alert.identifier, "620821-QX-20250615-001");
    assert_eq!(alert.sender, "jcqx@weather.gansu.example");
    assert_eq!((alert.status, alert.msg_type), (Status::Actual, MsgType::Alert));
    assert_eq!(alert.references, []);
    let info = &alert.infos[0];
    assert_eq!(info.language, "zh-CN");
    assert_eq!((info.urgency, info.severity), (Urgency::Immediate, Severity::Extreme));
    assert_eq!(info.headline.as_deref(), Some("泾川县气象台发布暴雨红色预警信号"));
    assert!(info.description.as_deref().is_some_and(|d| d.starts_with("过去3小时")));
    let audio = info.resources[0].embedded.as_deref().expect("embedded audio");
    assert_eq!((audio.len(), &audio[..4]), (4044, b"RIFF".as_slice()));
    assert_eq!(info.resources[0].mime_type, "audio/wav");
    let [township, circle] = info.areas.as_slice() else { panic!("two areas: {:?}", info.areas) };
    assert_eq!(township.description, "城关镇");
    assert_eq!(township.geocodes, [Geocode { value_name: "行政区划代码".into(), value: "620821100".into() }]);
    assert_eq!(circle.circles.len(), 1);
    assert!((circle.circles[0].radius_km - 1.5).abs() < 1e-9);
}

#[test]
fn an_english_alert_with_a_prefix_a_polygon_a_link_and_a_signature() {
    let alert = parse(EN).expect("parses");
    assert_eq!(alert.identifier, "GS-EMA-2025-0615-0042");
    let info = &alert.infos[0];
    assert_eq!((info.urgency, info.severity), (Urgency::Expected, Severity::Moderate));
    assert_eq!(
        info.instruction.as_deref(),
        Some("Move livestock and machinery away from the river bank & keep children away from the water.")
    );
    assert_eq!(info.expires.map(|e| e.to_rfc3339()).as_deref(), Some("2025-06-16T09:30:00+08:00"));
    let resource = &info.resources[0];
    assert_eq!((resource.embedded.as_ref(), resource.uri.is_some()), (None, true));
    assert_eq!(info.areas[0].polygons.len(), 1);
    assert_eq!(info.areas[1].geocodes[0].value, "620821100201");
}

#[test]
fn updates_and_cancels_carry_their_references() {
    let update = parse(UPDATE).expect("parses");
    assert_eq!(update.msg_type, MsgType::Update);
    assert_eq!(
        update.references,
        [Reference {
            sender: "jcqx@weather.gansu.example".into(),
            identifier: "620821-QX-20250615-001".into(),
            sent: "2025-06-15T23:10:00+08:00".into(),
        }]
    );
    let cancel = parse(CANCEL).expect("parses");
    assert_eq!(cancel.msg_type, MsgType::Cancel);
    let ids: Vec<&str> = cancel.references.iter().map(|r| r.identifier.as_str()).collect();
    assert_eq!(ids, ["620821-QX-20250615-001", "620821-QX-20250615-002"]);
}

#[test]
fn real_world_leniency() {
    let lower = UPDATE.replace("<status>Actual</status>", "<status>actual</status>");
    assert_eq!(parse(&lower).expect("any case").status, Status::Actual);
    let zulu = UPDATE.replace("2025-06-16T01:40:00+08:00</sent>", "2025-06-15T17:40:00Z</sent>");
    assert!(parse(&zulu).is_ok(), "a Z time zone");
    let cdata = UPDATE.replace("<description>", "<description><![CDATA[<b>注意</b>]]>");
    assert!(
        parse(&cdata).expect("CDATA").infos[0].description.as_deref().is_some_and(|d| d.starts_with("<b>注意</b>"))
    );
    let entity = UPDATE.replace("城关镇降雨减弱", "&#22478;&#x5173;镇降雨减弱");
    assert!(
        parse(&entity).expect("character references").infos[0]
            .description
            .as_deref()
            .is_some_and(|d| d.starts_with("城关镇"))
    );
    let empty_polygon = UPDATE.replace("<areaDesc>城关镇</areaDesc>", "<areaDesc>城关镇</areaDesc><polygon></polygon>");
    assert_eq!(parse(&empty_polygon).expect("an empty polygon").infos[0].areas[0].polygons, []);
}

/// Parses `text` and checks the error's kind and message.
fn check_refused(text: &str, kind: fn(&CapError) -> bool, mentions: &str) {
    let err = parse(text).expect_err("refused");
    assert!(kind(&err), "wrong kind: {err:?}");
    assert!(err.to_string().contains(mentions), "{err} does not mention {mentions:?}");
}

fn xml(e: &CapError) -> bool {
    matches!(e, CapError::Xml { .. })
}
fn not_cap(e: &CapError) -> bool {
    matches!(e, CapError::NotCap(_))
}
fn invalid(e: &CapError) -> bool {
    matches!(e, CapError::Invalid(_))
}

#[test]
fn malformed_xml_is_named_with_its_position() {
    let truncated = UPDATE.split_inclusive("</sender>").next().unwrap_or_default();
    check_refused(truncated, xml, "the document ends inside <");
    check_refused(&UPDATE.replace("</sender>", "</sendr>"), xml, "line 4");
    check_refused("", not_cap, "no root element");
    check_refused("<alert", xml, "line 1");
    check_refused(&UPDATE.replace("城关镇降雨减弱", "&nbsp;"), xml, "entity &nbsp; is not defined");
    let bomb = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE alert [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;\">]>{}",
        UPDATE.split_once("?>").map_or("", |p| p.1).replace("城关镇降雨减弱", "&b;")
    );
    check_refused(&bomb, xml, "DOCTYPE is not accepted");
    check_refused(&UPDATE.replace("UTF-8", "GB2312"), xml, "encoding GB2312 is not accepted");
    check_refused(&format!("{UPDATE}<alert/>"), xml, "second root");
    let deep = format!("<alert xmlns=\"{CAP_1_2}\">{}{}</alert>", "<a>".repeat(100), "</a>".repeat(100));
    check_refused(&deep, xml, "nested deeper");
}

#[test]
fn other_documents_are_not_cap_1_2() {
    check_refused("<html><body/></html>", not_cap, "root element is <html>");
    check_refused(&UPDATE.replace("cap:1.2", "cap:1.1"), not_cap, "another CAP version");
    check_refused(&UPDATE.replace(" xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"", ""), not_cap, "no namespace");
    check_refused(&UPDATE.replace("urn:oasis:names:tc:emergency:cap:1.2", "urn:example"), not_cap, "urn:example");
}

#[test]
fn invalid_alerts_name_the_element() {
    check_refused(
        &UPDATE.replace("<identifier>620821-QX-20250615-002</identifier>", ""),
        invalid,
        "<identifier> is missing",
    );
    check_refused(
        &UPDATE.replace("<urgency>Expected</urgency>", "<urgency>Soon</urgency>"),
        invalid,
        "info 1 urgency `Soon`",
    );
    check_refused(
        &UPDATE.replace("<msgType>Update</msgType>", "<msgType>Notice</msgType>"),
        invalid,
        "msgType `Notice`",
    );
    check_refused(
        &UPDATE.replace("2025-06-16T01:40:00+08:00</sent>", "yesterday</sent>"),
        invalid,
        "<sent> `yesterday`",
    );
    check_refused(
        &UPDATE.replace(",620821-QX-20250615-001,", ";620821-QX-20250615-001;"),
        invalid,
        "is not `sender,identifier,sent`",
    );
    check_refused(
        &ZH.replace("<circle>35.2900,107.4500 1.5</circle>", "<circle>35.29 107.45</circle>"),
        invalid,
        "area 2 `太平村周边1.5公里`: circle",
    );
    check_refused(
        &ZH.replace("<circle>35.2900,107.4500 1.5</circle>", "<polygon>1,1 2,2</polygon>"),
        invalid,
        "polygon",
    );
    check_refused(&ZH.replace("UklGR", "!!!!!"), invalid, "<derefUri> is not base64");
    let many = UPDATE.replace("<info>", &format!("{}<info>", "<info><event>x</event></info>".repeat(MAX_INFOS)));
    check_refused(&many, invalid, "<info> elements; at most");
}
