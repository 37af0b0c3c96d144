//! A bounded reader of CAP 1.2 alerts (OASIS Common Alerting Protocol,
//! <urn:oasis:names:tc:emergency:cap:1.2>), on quick-xml.
//!
//! # Why not a CAP crate
//! `oasiscap` 0.2.0 parses our fixtures, but it was last released in 2022;
//! it reads XML through `xml_serde`, which brings `pretty_env_logger`,
//! `env_logger` 0.7 and `atty` (an unmaintained crate with a RustSec
//! advisory) into the controller; it refuses a whole alert for one unclosed
//! polygon or a bad date without saying where; and its serde errors do not
//! name the element. An upstream platform needs to be told precisely what
//! is wrong, and we need only a dozen elements. quick-xml is maintained,
//! small, never expands entities or reads a DTD on its own, and reports
//! positions, so this module reads the document into a small tree and maps
//! the elements Dalaba uses.
//!
//! # Rules
//! - UTF-8 only; a `<!DOCTYPE>` is refused, and so is any entity other than
//!   the five predefined ones and character references (no entity
//!   expansion, so no "billion laughs").
//! - Bounded: nesting depth, element count, `<info>`, `<area>`, `<resource>`
//!   and reference counts (constants below); the body size is bounded
//!   before parsing.
//! - The root must be `alert` in the CAP 1.2 namespace (with or without a
//!   prefix); elements in other namespaces (an XML signature) are skipped.
//! - Lenient where real alerts differ harmlessly from the letter of CAP:
//!   enumerations in any case, `Z` time zones, unclosed or empty polygons.

use std::fmt;

use base64::Engine;
use chrono::{DateTime, FixedOffset};
use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use super::geo::{self, Circle, Polygon};

/// The CAP 1.2 namespace.
pub const CAP_1_2: &str = "urn:oasis:names:tc:emergency:cap:1.2";
/// Deepest nesting accepted (CAP itself needs 5).
const MAX_DEPTH: usize = 32;
/// Most elements in one document.
const MAX_ELEMENTS: usize = 50_000;
/// Most `<info>` blocks.
pub const MAX_INFOS: usize = 16;
/// Most `<area>` blocks per info.
pub const MAX_AREAS: usize = 200;
/// Most `<resource>` blocks per info.
pub const MAX_RESOURCES: usize = 16;
/// Most references in `<references>`.
pub const MAX_REFERENCES: usize = 100;

/// A parsed CAP 1.2 alert: the parts Dalaba uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The sender's id for this alert.
    pub identifier: String,
    /// Who sent it.
    pub sender: String,
    /// When it was sent, as written.
    pub sent: String,
    /// Actual, Exercise, System, Test or Draft.
    pub status: Status,
    /// Alert, Update, Cancel, Ack or Error.
    pub msg_type: MsgType,
    /// The alerts an Update or Cancel refers to.
    pub references: Vec<Reference>,
    /// One block per language (or per event).
    pub infos: Vec<Info>,
}

/// `<status>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Real: act on it.
    Actual,
    /// A drill for its participants.
    Exercise,
    /// Network messages.
    System,
    /// Technical testing.
    Test,
    /// Not to be acted on.
    Draft,
}

/// `<msgType>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    /// A new alert.
    Alert,
    /// Replaces the referenced alerts.
    Update,
    /// Cancels the referenced alerts.
    Cancel,
    /// Acknowledges.
    Ack,
    /// Rejects.
    Error,
}

/// One `sender,identifier,sent` of `<references>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The referenced alert's sender.
    pub sender: String,
    /// Its identifier.
    pub identifier: String,
    /// When it was sent.
    pub sent: String,
}

/// One `<info>` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    /// RFC 3066 language; `en-US` when absent, as CAP says.
    pub language: String,
    /// What happened, e.g. 暴雨.
    pub event: String,
    /// How soon to act.
    pub urgency: Urgency,
    /// How bad.
    pub severity: Severity,
    /// A short headline.
    pub headline: Option<String>,
    /// What is happening.
    pub description: Option<String>,
    /// What to do.
    pub instruction: Option<String>,
    /// When it stops applying.
    pub expires: Option<DateTime<FixedOffset>>,
    /// Attached files.
    pub resources: Vec<Resource>,
    /// Where it applies.
    pub areas: Vec<Area>,
}

/// `<urgency>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// Act now.
    Immediate,
    /// Act within the hour.
    Expected,
    /// Act in the near future.
    Future,
    /// No longer required.
    Past,
    /// Not known.
    Unknown,
}

/// `<severity>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Extraordinary threat to life or property.
    Extreme,
    /// Significant threat.
    Severe,
    /// Possible threat.
    Moderate,
    /// Minimal threat.
    Minor,
    /// Not known.
    Unknown,
}

/// One `<resource>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// What it is.
    pub description: String,
    /// Its MIME type.
    pub mime_type: String,
    /// Where it can be fetched.
    pub uri: Option<String>,
    /// The file itself, decoded from `<derefUri>`.
    pub embedded: Option<Vec<u8>>,
}

/// One `<area>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    /// Its description, e.g. 城关镇.
    pub description: String,
    /// Its polygons.
    pub polygons: Vec<Polygon>,
    /// Its circles.
    pub circles: Vec<Circle>,
    /// Its geocodes.
    pub geocodes: Vec<Geocode>,
}

/// One `<geocode>`: a named code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geocode {
    /// The code system, e.g. 行政区划代码 or SAME.
    pub value_name: String,
    /// The code.
    pub value: String,
}

/// Why a body is not an alert Dalaba can use. The message names the
/// element, or the line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    /// Not well-formed XML, or refused XML features.
    #[error("malformed XML at line {line}, column {column}: {message}")]
    Xml {
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Well-formed, but not a CAP 1.2 alert.
    #[error("not a CAP 1.2 alert: {0}")]
    NotCap(String),
    /// A CAP 1.2 alert with a missing or invalid element.
    #[error("invalid CAP alert: {0}")]
    Invalid(String),
}

/// Parses a CAP 1.2 alert.
pub fn parse(text: &str) -> Result<Alert, CapError> {
    let root = read_tree(text)?;
    alert(&root)
}

/// An element of the tree: its local name, text and CAP children.
#[derive(Debug, Default)]
struct Element {
    name: String,
    cap: bool,
    text: String,
    children: Vec<Element>,
}

fn read_tree(text: &str) -> Result<Element, CapError> {
    let mut reader = NsReader::from_str(text);
    let xml_error = |pos: u64, message: String| {
        let (line, column) = line_column(text, pos);
        CapError::Xml { line, column, message }
    };
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let read = reader.read_resolved_event().map(|(ns, event)| {
            let namespace = match ns {
                ResolveResult::Bound(n) => Some(n.0.to_owned()),
                _ => None,
            };
            (namespace, event)
        });
        let (namespace, event) = match read {
            Ok(read) => read,
            Err(e) => return Err(xml_error(reader.error_position(), e.to_string())),
        };
        let pos = reader.buffer_position();
        let in_cap = namespace.as_deref() == Some(CAP_1_2);
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(xml_error(pos, format!("more than {MAX_ELEMENTS} elements")));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(xml_error(pos, format!("elements nested deeper than {MAX_DEPTH}")));
                }
                let name = e.local_name().as_ref().to_owned();
                if root.is_some() && stack.is_empty() {
                    return Err(xml_error(pos, format!("a second root element <{name}>")));
                }
                if stack.is_empty() {
                    check_root(&name, namespace.as_deref())?;
                }
                // Inside a foreign element everything is foreign.
                let cap = in_cap && stack.last().is_none_or(|p| p.cap);
                let element = Element { name, cap, ..Element::default() };
                if matches!(event, Event::Empty(_)) {
                    close(&mut stack, &mut root, element);
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => {
                if let Some(element) = stack.pop() {
                    close(&mut stack, &mut root, element);
                }
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                if stack.is_empty() && !content.trim().is_empty() {
                    let start: String = content.trim().chars().take(20).collect();
                    return Err(xml_error(pos, format!("text outside the root element: `{start}`")));
                }
                push_text(&mut stack, &content);
            }
            Event::CData(t) => push_text(&mut stack, &t.xml10_content()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match r.xml10_content().as_ref() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => {
                            let message =
                                format!("entity &{other}; is not defined (entities and DTDs are not accepted)");
                            return Err(xml_error(pos, message));
                        }
                    },
                    Err(e) => return Err(xml_error(pos, e.to_string())),
                };
                push_text(&mut stack, resolved.encode_utf8(&mut [0; 4]));
            }
            Event::DocType(_) => {
                return Err(xml_error(pos, "a DOCTYPE is not accepted in a CAP alert".to_owned()));
            }
            Event::Decl(d) => {
                if let Some(encoding) = d.encoding() {
                    let encoding = encoding.map_err(|e| xml_error(pos, e.to_string()))?;
                    if !encoding.eq_ignore_ascii_case("utf-8") {
                        return Err(xml_error(pos, format!("encoding {encoding} is not accepted; send UTF-8")));
                    }
                }
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(xml_error(text.len() as u64, format!("the document ends inside <{}>", open.name)));
    }
    root.ok_or_else(|| CapError::NotCap("the document has no root element".to_owned()))
}

fn check_root(name: &str, namespace: Option<&str>) -> Result<(), CapError> {
    if name != "alert" {
        return Err(CapError::NotCap(format!("the root element is <{name}>, not <alert>")));
    }
    match namespace {
        Some(CAP_1_2) => Ok(()),
        Some(ns)
            if ns.starts_with("urn:oasis:names:tc:emergency:cap:")
                || ns.starts_with("http://www.incident.com/cap/") =>
        {
            Err(CapError::NotCap(format!("namespace {ns} is another CAP version; send CAP 1.2 ({CAP_1_2})")))
        }
        Some(ns) => Err(CapError::NotCap(format!("<alert> is in namespace {ns}, not {CAP_1_2}"))),
        None => Err(CapError::NotCap(format!("<alert> has no namespace; CAP 1.2 needs xmlns=\"{CAP_1_2}\""))),
    }
}

fn close(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) if element.cap => parent.children.push(element),
        Some(_) => {}
        None => *root = Some(element),
    }
}

fn push_text(stack: &mut [Element], text: &str) {
    if let Some(top) = stack.last_mut().filter(|e| e.cap) {
        top.text.push_str(text);
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, pos: u64) -> (usize, usize) {
    let mut end = usize::try_from(pos).unwrap_or(usize::MAX).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Element {
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the first child `name`, if present and not blank.
    fn opt(&self, name: &str) -> Option<String> {
        self.all(name).next().map(|c| c.text.trim().to_owned()).filter(|t| !t.is_empty())
    }

    fn req(&self, name: &str, within: &str) -> Result<String, CapError> {
        self.opt(name).ok_or_else(|| CapError::Invalid(format!("{within}: <{name}> is missing or empty")))
    }

    /// Children `name`, at most `max`.
    fn bounded(&self, name: &str, max: usize, within: &str) -> Result<Vec<&Element>, CapError> {
        let found: Vec<&Element> = self.children.iter().filter(|c| c.name == name).collect();
        if found.len() > max {
            return Err(CapError::Invalid(format!(
                "{within}: {} <{name}> elements; at most {max} are accepted",
                found.len()
            )));
        }
        Ok(found)
    }
}

fn alert(root: &Element) -> Result<Alert, CapError> {
    let within = "alert";
    let references = match root.opt("references") {
        Some(text) => references(&text)?,
        None => Vec::new(),
    };
    let sent = root.req("sent", within)?;
    timestamp(&sent, "alert <sent>")?;
    let infos = root
        .bounded("info", MAX_INFOS, within)?
        .into_iter()
        .enumerate()
        .map(|(i, e)| info(e, &format!("info {}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Alert {
        identifier: root.req("identifier", within)?,
        sender: root.req("sender", within)?,
        sent,
        status: choice(&root.req("status", within)?, "status", &STATUSES)?,
        msg_type: choice(&root.req("msgType", within)?, "msgType", &MSG_TYPES)?,
        references,
        infos,
    })
}

fn info(e: &Element, within: &str) -> Result<Info, CapError> {
    let expires = match e.opt("expires") {
        Some(t) => Some(timestamp(&t, &format!("{within} <expires>"))?),
        None => None,
    };
    let resources = e
        .bounded("resource", MAX_RESOURCES, within)?
        .into_iter()
        .enumerate()
        .map(|(i, r)| resource(r, &format!("{within} resource {}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    let areas = e
        .bounded("area", MAX_AREAS, within)?
        .into_iter()
        .enumerate()
        .map(|(i, a)| area(a, &format!("{within} area {}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Info {
        language: e.opt("language").unwrap_or_else(|| "en-US".to_owned()),
        event: e.req("event", within)?,
        urgency: choice(&e.req("urgency", within)?, &format!("{within} urgency"), &URGENCIES)?,
        severity: choice(&e.req("severity", within)?, &format!("{within} severity"), &SEVERITIES)?,
        headline: e.opt("headline"),
        description: e.opt("description"),
        instruction: e.opt("instruction"),
        expires,
        resources,
        areas,
    })
}

fn resource(e: &Element, within: &str) -> Result<Resource, CapError> {
    let embedded = match e.opt("derefUri") {
        Some(text) => {
            let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .map_err(|err| CapError::Invalid(format!("{within}: <derefUri> is not base64 ({err})")))?;
            Some(bytes)
        }
        None => None,
    };
    Ok(Resource {
        description: e.opt("resourceDesc").unwrap_or_default(),
        mime_type: e.opt("mimeType").unwrap_or_default(),
        uri: e.opt("uri"),
        embedded,
    })
}

fn area(e: &Element, within: &str) -> Result<Area, CapError> {
    let description = e.req("areaDesc", within)?;
    let named = |what: &str, err: geo::GeoError| CapError::Invalid(format!("{within} `{description}`: {what}: {err}"));
    let mut polygons = Vec::new();
    for p in e.all("polygon") {
        if let Some(polygon) = geo::parse_polygon(&p.text).map_err(|err| named("polygon", err))? {
            polygons.push(polygon);
        }
    }
    let circles = e
        .all("circle")
        .filter(|c| !c.text.trim().is_empty())
        .map(|c| geo::parse_circle(&c.text).map_err(|err| named("circle", err)))
        .collect::<Result<Vec<_>, _>>()?;
    let geocodes = e
        .all("geocode")
        .filter_map(|g| Some(Geocode { value_name: g.opt("valueName").unwrap_or_default(), value: g.opt("value")? }))
        .collect();
    Ok(Area { description, polygons, circles, geocodes })
}

fn references(text: &str) -> Result<Vec<Reference>, CapError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() > MAX_REFERENCES {
        return Err(CapError::Invalid(format!("{} references; at most {MAX_REFERENCES} are accepted", words.len())));
    }
    words
        .into_iter()
        .map(|w| {
            let parts: Vec<&str> = w.split(',').collect();
            match parts.as_slice() {
                [sender, identifier, sent] if !sender.is_empty() && !identifier.is_empty() => Ok(Reference {
                    sender: (*sender).to_owned(),
                    identifier: (*identifier).to_owned(),
                    sent: (*sent).to_owned(),
                }),
                _ => Err(CapError::Invalid(format!("reference `{w}` is not `sender,identifier,sent`"))),
            }
        })
        .collect()
}

fn timestamp(text: &str, what: &str) -> Result<DateTime<FixedOffset>, CapError> {
    DateTime::parse_from_rfc3339(text).map_err(|_| {
        CapError::Invalid(format!("{what} `{text}` is not a date and time like 2025-06-15T23:10:00+08:00"))
    })
}

const STATUSES: [(&str, Status); 5] = [
    ("Actual", Status::Actual),
    ("Exercise", Status::Exercise),
    ("System", Status::System),
    ("Test", Status::Test),
    ("Draft", Status::Draft),
];
const MSG_TYPES: [(&str, MsgType); 5] = [
    ("Alert", MsgType::Alert),
    ("Update", MsgType::Update),
    ("Cancel", MsgType::Cancel),
    ("Ack", MsgType::Ack),
    ("Error", MsgType::Error),
];
const URGENCIES: [(&str, Urgency); 5] = [
    ("Immediate", Urgency::Immediate),
    ("Expected", Urgency::Expected),
    ("Future", Urgency::Future),
    ("Past", Urgency::Past),
    ("Unknown", Urgency::Unknown),
];
const SEVERITIES: [(&str, Severity); 5] = [
    ("Extreme", Severity::Extreme),
    ("Severe", Severity::Severe),
    ("Moderate", Severity::Moderate),
    ("Minor", Severity::Minor),
    ("Unknown", Severity::Unknown),
];

/// One of a CAP enumeration, in any letter case.
fn choice<T: Copy>(text: &str, what: &str, table: &[(&str, T)]) -> Result<T, CapError> {
    table.iter().find(|(name, _)| name.eq_ignore_ascii_case(text)).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        CapError::Invalid(format!("{what} `{text}` is not one of {}", names.join(", ")))
    })
}

impl fmt::Display for MsgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = MSG_TYPES.iter().find(|(_, v)| v == self).map_or("?", |(n, _)| n);
        f.write_str(name)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = STATUSES.iter().find(|(_, v)| v == self).map_or("?", |(n, _)| n);
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests;
