//! Rows to import into the directory and the checks they must pass, each
//! problem tied to the row's line so an operator can fix the file.
//!
//! The checks are split in two so a file can be checked before it reaches a
//! store: everything about a row on its own and about the file as a whole
//! ([`check_against`] with no directory), and how the rows fit the existing
//! directory (parents, levels). A store runs [`check_against`] again inside
//! its import transaction, so rows that did not come from a file are checked
//! too.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::Serialize;
use thiserror::Error;

use super::{
    Level, Region, UnknownLevel, ValidationError, validate_code, validate_coordinates, validate_name, validate_tags,
};

/// How many bad rows the `Display` of [`CsvErrors::Rows`] lists.
const LISTED_ROWS: usize = 50;

/// One region to create or update, matched by code.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportRow {
    /// The 1-based line in the source file (the header is line 1).
    pub line: usize,
    pub level: Level,
    pub code: String,
    pub name: String,
    /// The parent's code; `None` for a county.
    pub parent_code: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub tags: Vec<String>,
}

/// What an import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// Regions whose code was new.
    pub created: usize,
    /// Existing regions that changed.
    pub updated: usize,
    /// Existing regions the rows left as they were.
    pub unchanged: usize,
}

/// Why an import file or a set of rows was refused. Nothing is imported.
#[derive(Debug, Error)]
pub enum CsvErrors {
    /// The file is not UTF-8 text.
    #[error("the file is not UTF-8 text (first bad byte on line {line}); save it as \"CSV UTF-8\"")]
    NotUtf8 {
        /// The line holding the first invalid byte.
        line: usize,
    },
    /// The file is empty.
    #[error("the file is empty")]
    Empty,
    /// The file has a header but no rows.
    #[error("the file has a header but no rows")]
    NoRows,
    /// The first line is not the expected header.
    #[error("line 1 must be the header `level,code,name,parent_code,latitude,longitude,tags`, found `{found}`")]
    Header {
        /// The first line as read.
        found: String,
    },
    /// The file has more rows than an import accepts.
    #[error("the file has more than {limit} rows; split it")]
    TooManyRows {
        /// The largest number of rows accepted.
        limit: usize,
    },
    /// A quoted cell is never closed.
    #[error("the quote opened on line {line} is never closed")]
    UnclosedQuote {
        /// The line of the opening quote.
        line: usize,
    },
    /// Some rows are wrong; every one is listed, ordered by line.
    #[error("{}", ListRows(.0))]
    Rows(Vec<RowError>),
}

/// A problem with one row.
#[derive(Clone, Debug, PartialEq, Error)]
#[error("line {line}: {problem}")]
pub struct RowError {
    /// The 1-based line of the row (the header is line 1).
    pub line: usize,
    /// What is wrong with it.
    pub problem: RowProblem,
}

/// What can be wrong with a row.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum RowProblem {
    /// The row does not have the 7 columns of the header.
    #[error("expected 7 columns, found {found}")]
    Columns {
        /// How many columns the row has.
        found: usize,
    },
    /// The level is not county, township or village.
    #[error(transparent)]
    Level(#[from] UnknownLevel),
    /// A numeric column holds something that is not a number.
    #[error("{column} `{found}` is not a number")]
    Number {
        /// The column's name.
        column: &'static str,
        /// What the cell holds.
        found: String,
    },
    /// A field fails the directory's rules.
    #[error(transparent)]
    Field(#[from] ValidationError),
    /// The code appears on an earlier line too.
    #[error("code {code} already appears on line {first_line}")]
    DuplicateCode {
        /// The repeated code.
        code: String,
        /// Where it first appears.
        first_line: usize,
    },
    /// A county row has a parent code.
    #[error("parent_code: a county has no parent")]
    CountyWithParent,
    /// A township or village row has no parent code.
    #[error("parent_code: a {level} needs the code of its parent {}", level.parent_level().map_or("", Level::as_str))]
    ParentRequired {
        /// The row's level.
        level: Level,
    },
    /// The parent code is neither in the file nor in the directory.
    #[error("parent_code {parent_code} is neither in the file nor in the directory")]
    ParentNotFound {
        /// The missing code.
        parent_code: String,
    },
    /// The parent is at the wrong level.
    #[error("parent_code: the parent of a {level} must be a {}, but {parent_code} is a {parent_level}", level.parent_level().map_or("", Level::as_str))]
    ParentLevel {
        /// The row's level.
        level: Level,
        /// The parent's code.
        parent_code: String,
        /// The parent's actual level.
        parent_level: Level,
    },
    /// The row would change the level of an existing region.
    #[error("code {code} is a {existing} in the directory and cannot become a {level}")]
    LevelChanged {
        /// The region's code.
        code: String,
        /// Its level in the directory.
        existing: Level,
        /// Its level in the row.
        level: Level,
    },
}

impl CsvErrors {
    /// The bad rows, if that is why the import was refused.
    pub fn rows(&self) -> &[RowError] {
        match self {
            CsvErrors::Rows(rows) => rows,
            _ => &[],
        }
    }

    /// A one-line message: the whole-file problem, or how many rows are bad
    /// (list those with [`CsvErrors::rows`]).
    pub fn summary(&self) -> String {
        match self {
            CsvErrors::Rows(rows) => headline(rows),
            other => other.to_string(),
        }
    }
}

/// Checks rows on their own and against the existing directory: every
/// problem of every row is reported.
pub fn check_against(rows: &[ImportRow], existing: &[Region]) -> Result<(), CsvErrors> {
    let errors = check_rows(rows, Some(existing), &HashSet::new());
    if errors.is_empty() { Ok(()) } else { Err(CsvErrors::Rows(errors)) }
}

/// Checks rows; with `existing`, also that parents exist and levels stay.
/// `unparsed` holds codes of rows that could not be parsed, so their
/// children are not also reported as orphans. The result is ordered by line.
pub(crate) fn check_rows(rows: &[ImportRow], existing: Option<&[Region]>, unparsed: &HashSet<&str>) -> Vec<RowError> {
    let mut errors = Vec::new();
    let mut push = |line, problem| errors.push(RowError { line, problem });
    let mut first_line: HashMap<&str, usize> = HashMap::new();
    for row in rows {
        let field_errors = [
            validate_name(&row.name).err(),
            validate_code(&row.code).err(),
            validate_coordinates(row.latitude, row.longitude).err(),
            validate_tags(&row.tags).err(),
        ];
        for error in field_errors.into_iter().flatten() {
            push(row.line, RowProblem::Field(error));
        }
        if let Some(&first) = first_line.get(row.code.as_str()) {
            let code = row.code.clone();
            push(row.line, RowProblem::DuplicateCode { code, first_line: first });
        } else {
            first_line.insert(&row.code, row.line);
        }
        match (row.level, &row.parent_code) {
            (Level::County, Some(_)) => push(row.line, RowProblem::CountyWithParent),
            (level @ (Level::Township | Level::Village), None) => {
                push(row.line, RowProblem::ParentRequired { level });
            }
            _ => {}
        }
    }

    let in_file: HashMap<&str, Level> = rows.iter().map(|r| (r.code.as_str(), r.level)).collect();
    let in_directory: HashMap<&str, Level> =
        existing.unwrap_or_default().iter().map(|r| (r.code.as_str(), r.level)).collect();
    for row in rows {
        if let Some(&existing) = in_directory.get(row.code.as_str())
            && existing != row.level
        {
            let code = row.code.clone();
            let level = row.level;
            push(row.line, RowProblem::LevelChanged { code, existing, level });
        }
        let (Some(expected), Some(parent_code)) = (row.level.parent_level(), &row.parent_code) else {
            continue;
        };
        let found = in_file.get(parent_code.as_str()).or(in_directory.get(parent_code.as_str()));
        match found {
            Some(&parent_level) if parent_level != expected => push(
                row.line,
                RowProblem::ParentLevel { level: row.level, parent_code: parent_code.clone(), parent_level },
            ),
            Some(_) => {}
            None if existing.is_some() && !unparsed.contains(parent_code.as_str()) => {
                let parent_code = parent_code.clone();
                push(row.line, RowProblem::ParentNotFound { parent_code });
            }
            None => {}
        }
    }
    errors.sort_by_key(|e| e.line);
    errors
}

/// "N bad rows; nothing was imported", counting rows, not problems.
fn headline(rows: &[RowError]) -> String {
    let lines: HashSet<usize> = rows.iter().map(|e| e.line).collect();
    format!("{} bad rows; nothing was imported", lines.len())
}

/// Formats the bad rows, the first [`LISTED_ROWS`] of them in full.
struct ListRows<'a>(&'a [RowError]);

impl fmt::Display for ListRows<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&headline(self.0))?;
        for error in self.0.iter().take(LISTED_ROWS) {
            write!(f, "\n{error}")?;
        }
        if self.0.len() > LISTED_ROWS {
            write!(f, "\n… and {} more problems", self.0.len() - LISTED_ROWS)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: usize, level: Level, code: &str, parent_code: Option<&str>) -> ImportRow {
        ImportRow {
            line,
            level,
            code: code.into(),
            name: format!("地{line}"),
            parent_code: parent_code.map(Into::into),
            latitude: None,
            longitude: None,
            tags: vec![],
        }
    }

    fn existing_county() -> Region {
        Region {
            id: 1,
            parent_id: None,
            level: Level::County,
            name: "泾川县".into(),
            code: "620821000000".into(),
            latitude: None,
            longitude: None,
            tags: vec![],
        }
    }

    #[test]
    fn parent_may_be_in_the_directory() {
        let rows = [
            row(2, Level::Township, "620821100000", Some("620821000000")),
            row(3, Level::Village, "620821100200", Some("620821100000")),
        ];
        assert!(check_against(&rows, &[existing_county()]).is_ok());
        let err = check_against(&rows, &[]).expect_err("county missing");
        assert_eq!(
            err.rows(),
            [RowError { line: 2, problem: RowProblem::ParentNotFound { parent_code: "620821000000".into() } }]
        );
    }

    #[test]
    fn every_bad_row_is_reported() {
        let mut bad_name = row(4, Level::Village, "620821100201", Some("620821100000"));
        bad_name.name = " ".into();
        let rows = [
            row(2, Level::Township, "620821100000", Some("620821000000")),
            row(3, Level::Village, "620821000000", Some("620821100000")),
            bad_name,
            row(5, Level::Village, "620821100201", None),
            row(6, Level::Village, "620821100202", Some("620821100201")),
        ];
        let err = check_against(&rows, &[existing_county()]).expect_err("bad rows");
        let found: Vec<(usize, String)> = err.rows().iter().map(|e| (e.line, e.problem.to_string())).collect();
        assert_eq!(
            found,
            [
                (2, "parent_code: the parent of a township must be a county, but 620821000000 is a village".into()),
                (3, "code 620821000000 is a county in the directory and cannot become a village".into()),
                (4, "name must not be empty".into()),
                (5, "code 620821100201 already appears on line 4".into()),
                (5, "parent_code: a village needs the code of its parent township".into()),
                (6, "parent_code: the parent of a village must be a township, but 620821100201 is a village".into()),
            ]
        );
        assert!(err.to_string().starts_with("5 bad rows; nothing was imported\nline 2: "));
    }

    #[test]
    fn display_caps_the_listed_rows() {
        let problem = RowProblem::CountyWithParent;
        let rows = (2..80).map(|line| RowError { line, problem: problem.clone() }).collect();
        let errors = CsvErrors::Rows(rows);
        let text = errors.to_string();
        assert_eq!(text.lines().count(), 1 + LISTED_ROWS + 1);
        assert!(text.ends_with("… and 28 more problems"));
        assert_eq!(errors.summary(), "78 bad rows; nothing was imported");
        assert_eq!(CsvErrors::Empty.summary(), "the file is empty");
    }
}
