//! The directory's CSV format, for import and export.
//!
//! Columns, after a header row: `level,code,name,parent_code,latitude,longitude,tags`
//! — level is county, township or village; tags are separated by `;`.
//! Files are UTF-8, with or without the byte-order mark Excel writes.
//!
//! Exported text cells that a spreadsheet would run as a formula (starting
//! with `=`, `+`, `-`, `@`, tab or CR) get a leading `'`; import removes it
//! again, so export then import reproduces the directory.

use std::collections::{HashMap, HashSet};

mod records;

use self::records::{Record, Records, UnclosedQuote};
pub use super::import::{CsvErrors, RowError, check_against};
use super::import::{ImportRow, RowProblem, check_rows};
use super::tree::Tree;
use super::{Level, Region};

/// The header row, in order.
pub const HEADER: [&str; 7] = ["level", "code", "name", "parent_code", "latitude", "longitude", "tags"];
/// The most rows one file may hold.
pub const MAX_ROWS: usize = 100_000;

const BOM: char = '\u{feff}';
/// First characters that make a spreadsheet treat a cell as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Parses an import file, checking each row on its own and the file as a
/// whole. Parents that are not in the file are left to [`super::import::check_against`]
/// (or the store's import), since they may already be in the directory.
pub fn parse_import(input: &[u8]) -> Result<Vec<ImportRow>, CsvErrors> {
    parse(input, None)
}

/// Parses an import file and checks it against the existing directory, so
/// that every bad row, including unknown parents, is reported at once.
pub fn parse_import_against(input: &[u8], existing: &[Region]) -> Result<Vec<ImportRow>, CsvErrors> {
    parse(input, Some(existing))
}

/// Writes regions in the import format, each parent before its children.
/// The text starts with a UTF-8 byte-order mark so that Excel reads the
/// Chinese names correctly.
pub fn export(regions: &[Region]) -> String {
    let codes: HashMap<i64, &str> = regions.iter().map(|r| (r.id, r.code.as_str())).collect();
    let mut out = String::new();
    out.push(BOM);
    push_record(&mut out, &HEADER.map(str::to_owned));
    for region in Tree::new(regions).depth_first() {
        let parent_code = region.parent_id.and_then(|p| codes.get(&p).copied()).unwrap_or("");
        let number = |n: Option<f64>| n.map(|n| n.to_string()).unwrap_or_default();
        push_record(
            &mut out,
            &[
                region.level.as_str().to_owned(),
                neutralise(&region.code),
                neutralise(&region.name),
                neutralise(parent_code),
                number(region.latitude),
                number(region.longitude),
                neutralise(&region.tags.join(";")),
            ],
        );
    }
    out
}

fn parse(input: &[u8], existing: Option<&[Region]>) -> Result<Vec<ImportRow>, CsvErrors> {
    let text = std::str::from_utf8(input).map_err(|e| {
        let before = input.get(..e.valid_up_to()).unwrap_or_default();
        CsvErrors::NotUtf8 { line: before.iter().filter(|&&b| b == b'\n').count() + 1 }
    })?;
    let text = text.strip_prefix(BOM).unwrap_or(text);
    if text.trim().is_empty() {
        return Err(CsvErrors::Empty);
    }
    let unclosed = |e: UnclosedQuote| CsvErrors::UnclosedQuote { line: e.line };
    let mut records = Records::new(text);
    let header = records.next().ok_or(CsvErrors::Empty)?.map_err(unclosed)?;
    let header_ok = header.fields.len() == HEADER.len()
        && header.fields.iter().zip(HEADER).all(|(found, want)| found.eq_ignore_ascii_case(want));
    if !header_ok {
        return Err(CsvErrors::Header { found: header.fields.join(",") });
    }

    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut unparsed: HashSet<String> = HashSet::new();
    let mut count = 0;
    for record in records {
        let record = record.map_err(unclosed)?;
        // Spreadsheets often save trailing rows of empty cells.
        if record.fields.iter().all(String::is_empty) {
            continue;
        }
        count += 1;
        if count > MAX_ROWS {
            return Err(CsvErrors::TooManyRows { limit: MAX_ROWS });
        }
        match parse_record(&record) {
            Ok(row) => rows.push(row),
            Err(problems) => {
                let code = record.fields.get(1).map_or("", |c| unquote(c));
                unparsed.insert(code.to_owned());
                let line = record.line;
                errors.extend(problems.into_iter().map(|problem| RowError { line, problem }));
            }
        }
    }
    if count == 0 {
        return Err(CsvErrors::NoRows);
    }
    let unparsed: HashSet<&str> = unparsed.iter().map(String::as_str).collect();
    errors.extend(check_rows(&rows, existing, &unparsed));
    errors.sort_by_key(|e| e.line);
    if errors.is_empty() { Ok(rows) } else { Err(CsvErrors::Rows(errors)) }
}

/// Reads one record's cells; field rules are checked later, on the row.
fn parse_record(record: &Record) -> Result<ImportRow, Vec<RowProblem>> {
    let [level, code, name, parent_code, latitude, longitude, tags] =
        std::array::from_fn(|i| record.fields.get(i).map_or("", String::as_str));
    if record.fields.len() != HEADER.len() {
        let found = record.fields.len();
        return Err(vec![RowProblem::Columns { found }]);
    }
    let line = record.line;
    let mut problems = Vec::new();
    let level = level.parse::<Level>().map_err(|e| problems.push(e.into())).ok();
    let mut number = |column: &'static str, cell: &str| match cell {
        "" => None,
        cell => cell
            .parse::<f64>()
            .map_err(|_| {
                problems.push(RowProblem::Number { column, found: cell.to_owned() });
            })
            .ok(),
    };
    let latitude = number("latitude", latitude);
    let longitude = number("longitude", longitude);
    let (Some(level), true) = (level, problems.is_empty()) else {
        return Err(problems);
    };
    let parent_code = unquote(parent_code);
    Ok(ImportRow {
        line,
        level,
        code: unquote(code).to_owned(),
        name: unquote(name).to_owned(),
        parent_code: (!parent_code.is_empty()).then(|| parent_code.to_owned()),
        latitude,
        longitude,
        tags: unquote(tags).split(';').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect(),
    })
}

/// Prefixes `'` to a text cell a spreadsheet would take for a formula, and to
/// one that already starts with `'` so that [`unquote`] is its exact inverse.
pub(crate) fn neutralise(cell: &str) -> String {
    if cell.starts_with(FORMULA_STARTS) || cell.starts_with('\'') { format!("'{cell}") } else { cell.to_owned() }
}

/// Removes the `'` that [`neutralise`] added.
fn unquote(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) || rest.starts_with('\'') => rest,
        _ => cell,
    }
}

/// Appends one CSV record, quoting cells as RFC 4180 requires.
pub(crate) fn push_record(out: &mut String, cells: &[String]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if cell.contains([',', '"', '\n', '\r']) || cell.starts_with(' ') || cell.ends_with(' ') {
            out.push('"');
            out.push_str(&cell.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(cell);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "level,code,name,parent_code,latitude,longitude,tags\n";

    fn problems(input: &str) -> Vec<(usize, String)> {
        let err = parse_import(input.as_bytes()).expect_err("should be refused");
        err.rows().iter().map(|e| (e.line, e.problem.to_string())).collect()
    }

    fn region(id: i64, parent_id: Option<i64>, level: Level, code: &str, name: &str) -> Region {
        Region {
            id,
            parent_id,
            level,
            name: name.into(),
            code: code.into(),
            latitude: None,
            longitude: None,
            tags: vec![],
        }
    }

    #[test]
    fn parses_rows_with_bom_quotes_and_tags() {
        let input = format!(
            "\u{feff}{HEAD}county,620821000000,泾川县,,35.33,107.37,\n\
             township,620821100000,\"城关镇, 中心\",620821000000,,,防汛; hill;\n"
        );
        let rows = parse_import(input.as_bytes()).expect("valid");
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].line, rows[0].latitude, rows[0].parent_code.as_deref()), (2, Some(35.33), None));
        assert_eq!(rows[1].name, "城关镇, 中心");
        assert_eq!(rows[1].parent_code.as_deref(), Some("620821000000"));
        assert_eq!(rows[1].tags, ["防汛", "hill"]);
    }

    #[test]
    fn reports_every_bad_row_by_line() {
        let input = format!(
            "{HEAD}county,620821000000,泾川县,,,,\n\
             town,620821100000,城关镇,620821000000,,,\n\
             township,62082110000,城关镇,620821000000,,,\n\
             village,620821100200,,620821100000,,,\n\
             village,620821100200,王家村,620821100000,abc,1,\n\
             village,620821100201,李家村\n\
             village,620821100202,张家村,620821100000,35,,\n\
             village,620821100203,赵家村,620821000000,,,\n"
        );
        assert_eq!(
            problems(&input),
            [
                (3, "level must be county, township or village, got `town`".into()),
                (4, "code must be exactly 12 digits (administrative division code), got `62082110000`".into()),
                (5, "name must not be empty".into()),
                (6, "latitude `abc` is not a number".into()),
                (7, "expected 7 columns, found 3".into()),
                (8, "latitude and longitude must be given together or not at all".into()),
                (9, "parent_code: the parent of a village must be a township, but 620821000000 is a county".into()),
            ]
        );
    }

    #[test]
    fn duplicate_codes_and_unknown_parents() {
        let input = format!(
            "{HEAD}township,620821100000,城关镇,620821000000,,,\n\
             village,620821100200,王家村,620821100000,,,\n\
             village,620821100200,李家村,620821100000,,,\n\
             village,620821100201,张家村,620821999000,,,\n"
        );
        assert_eq!(problems(&input), [(4, "code 620821100200 already appears on line 3".into())]);
        let county = region(1, None, Level::County, "620821000000", "泾川县");
        let err = parse_import_against(input.as_bytes(), &[county]).expect_err("refused");
        let lines: Vec<usize> = err.rows().iter().map(|e| e.line).collect();
        assert_eq!(lines, [4, 5]);
        assert!(
            err.to_string().contains("line 5: parent_code 620821999000 is neither in the file nor in the directory")
        );
    }

    #[test]
    fn children_of_unparseable_rows_are_not_orphans() {
        let input = format!(
            "{HEAD}county,620821000000,泾川县,,,,\n\
             twnship,620821100000,城关镇,620821000000,,,\n\
             village,620821100200,王家村,620821100000,,,\n"
        );
        let err = parse_import_against(input.as_bytes(), &[]).expect_err("refused");
        assert_eq!(err.rows().iter().map(|e| e.line).collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn whole_file_problems() {
        let check = |input: &[u8], expected: &str| {
            let err = parse_import(input).expect_err("refused");
            assert_eq!(err.to_string(), expected);
        };
        check(b"", "the file is empty");
        check("\u{feff} \n".as_bytes(), "the file is empty");
        check(HEAD.as_bytes(), "the file has a header but no rows");
        check(
            b"county,620821000000,x,,,,\n",
            "line 1 must be the header `level,code,name,parent_code,latitude,longitude,tags`, found `county,620821000000,x,,,,`",
        );
        check(
            b"level,code,name,parent_code,latitude,longitude,tags\ncounty,6208,\xe6\xb3\n",
            "the file is not UTF-8 text (first bad byte on line 2); save it as \"CSV UTF-8\"",
        );
    }

    #[test]
    fn too_many_rows_is_refused() {
        let mut input = HEAD.to_owned();
        for _ in 0..=MAX_ROWS {
            input.push_str("county,620821000000,x,,,,\n");
        }
        let err = parse_import(input.as_bytes()).expect_err("refused");
        assert!(matches!(err, CsvErrors::TooManyRows { limit: MAX_ROWS }));
    }

    #[test]
    fn blank_lines_are_skipped_and_keep_line_numbers() {
        let input = format!("{HEAD}\ncounty,620821000000,泾川县,,,,\n,,,,,,\n\ntown,1,x,,,,\n");
        assert_eq!(problems(&input)[0].0, 6);
    }

    #[test]
    fn export_neutralises_formulas_but_not_numbers() {
        let mut county = region(1, None, Level::County, "620821000000", "=HYPERLINK(\"x\")");
        county.latitude = Some(-35.5);
        county.longitude = Some(-107.25);
        county.tags = vec!["-x".into(), "y".into()];
        let text = export(&[county]);
        assert!(text.starts_with('\u{feff}'));
        let line = text.lines().nth(1).expect("a data line");
        assert_eq!(line, "county,620821000000,\"'=HYPERLINK(\"\"x\"\")\",,-35.5,-107.25,'-x;y");
        for cell in ["+1", "@a", "'plain", "''", "'=x"] {
            assert_eq!(unquote(&neutralise(cell)), cell);
        }
        assert_eq!(unquote("'abc"), "'abc");
    }

    #[test]
    fn export_then_import_reproduces_the_tree() {
        let mut regions = vec![
            region(9, Some(3), Level::Village, "620821100201", "@李家村"),
            region(3, Some(1), Level::Township, "620821100000", "城关镇"),
            region(1, None, Level::County, "620821000000", "泾川县"),
            region(4, Some(3), Level::Village, "620821100200", "'王家村"),
        ];
        regions[0].tags = vec!["flood-risk".into(), "防汛".into()];
        regions[0].latitude = Some(35.123456789);
        regions[0].longitude = Some(107.0);
        let rows = parse_import(export(&regions).as_bytes()).expect("round trip");
        let codes: Vec<&str> = rows.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(codes, ["620821000000", "620821100000", "620821100200", "620821100201"]);
        let by_code: HashMap<&str, &Region> = regions.iter().map(|r| (r.code.as_str(), r)).collect();
        let ids: HashMap<i64, &str> = regions.iter().map(|r| (r.id, r.code.as_str())).collect();
        for row in &rows {
            let region = by_code[row.code.as_str()];
            let parent_code = region.parent_id.map(|p| ids[&p].to_owned());
            assert_eq!(
                (row.level, &row.name, &row.parent_code, row.latitude, row.longitude, &row.tags),
                (region.level, &region.name, &parent_code, region.latitude, region.longitude, &region.tags)
            );
        }
    }
}
