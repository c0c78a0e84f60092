//! Errors of the engine, grouped by who is at fault.

use std::path::PathBuf;

/// Result type of the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
///
/// The variants say who has to act: the caller (bad segment, unknown name, bad input file),
/// the environment (I/O), or us ([`Error::Internal`] is always a bug).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name used in a segment or request does not exist.
    #[error("unknown {kind} '{name}'{}", suggestion_text(.suggestions))]
    UnknownName {
        /// What kind of name: "attribute", "tag", "event", "event property" or "group".
        kind: &'static str,
        /// The name as given.
        name: String,
        /// The closest known names, best first.
        suggestions: Vec<String>,
    },
    /// A segment is well formed but does not fit the data (wrong value type, bad date, ...).
    #[error("{0}")]
    InvalidSegment(String),
    /// A definition conflicts with the current state (group exists, group still in use, ...).
    #[error("{0}")]
    Conflict(String),
    /// An input file or batch was refused; nothing of it was applied.
    #[error("{}{}: {message}", .source_name, location_text(*.row, .column))]
    BadInput {
        /// The file (or "batch") the input came from.
        source_name: String,
        /// 1-based data row, when the problem is in one row.
        row: Option<usize>,
        /// The column at fault, when there is one.
        column: Option<String>,
        /// What is wrong and, where possible, what to do.
        message: String,
    },
    /// There is no database where one was to be opened without creating it
    /// (`OpenOptions::read_only` or `create_if_missing: false`).
    #[error("no memberdb database at {0} (no manifest.json)")]
    NoDatabase(PathBuf),
    /// A database directory could not be read as a memberdb database.
    #[error("database at {path}: {message}")]
    BadDatabase {
        /// The directory or file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The storage failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Writes are refused: the database was opened read-only, or a write or fsync of its log
    /// failed and it stopped taking writes.
    #[error("the database is read-only: {0}")]
    ReadOnly(String),
    /// Another process has the database open for writing.
    #[error("{0}")]
    InUse(String),
    /// A limit was reached (too many members, too long a value, ...).
    #[error("limit reached: {0}")]
    LimitExceeded(String),
    /// A statement ran past the deadline its caller gave it and was stopped.
    #[error("the statement ran past its deadline and was stopped")]
    DeadlineExceeded,
    /// A statement could not be parsed.
    #[error("{0}")]
    Syntax(memberdb_query::ParseError),
    /// A part of a statement (bytes `span` of its text) is wrong.
    #[error("{error}")]
    At {
        /// What is wrong.
        error: Box<Error>,
        /// Byte range in the statement text.
        span: (usize, usize),
    },
    /// A change stream request that cannot be served as asked, with the Redis error code
    /// that says why (`TRIMMED`, `NOGROUP`, `BUSYGROUP`, ...).
    #[error("{message}")]
    Stream {
        /// The code, as Redis clients match it.
        code: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// The session's roles do not allow what was asked (a command class, a masked field in
    /// a predicate). The message names the user, its roles and the field, never a value.
    #[error("{0}")]
    NoPermission(String),
    /// A broken invariant inside the engine: always a bug, please report it.
    #[error("internal error (this is a bug in memberdb): {0}")]
    Internal(String),
}

fn suggestion_text(suggestions: &[String]) -> String {
    crate::util::suggest::text(suggestions)
}

fn location_text(row: Option<usize>, column: &Option<String>) -> String {
    match (row, column) {
        (Some(r), Some(c)) => format!(", row {r}, column '{c}'"),
        (Some(r), None) => format!(", row {r}"),
        (None, Some(c)) => format!(", column '{c}'"),
        (None, None) => String::new(),
    }
}

impl Error {
    /// The message, and for statement errors the source line with a caret under the part
    /// at fault.
    pub fn render(&self, source: &str) -> String {
        match self {
            Error::Syntax(e) => e.render(),
            Error::At { error, span } => {
                let start = span.0.min(source.len());
                let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
                let line_end = source[start..]
                    .find('\n')
                    .map_or(source.len(), |i| start + i);
                let line = &source[line_start..line_end];
                let column = source[line_start..start].chars().count();
                let width = source[start..span.1.clamp(start, line_end)]
                    .chars()
                    .count()
                    .max(1);
                format!(
                    "{error}\n  {line}\n  {}{}",
                    " ".repeat(column),
                    "^".repeat(width)
                )
            }
            other => other.to_string(),
        }
    }

    pub(crate) fn at(self, span: memberdb_query::ast::Span) -> Self {
        match self {
            located @ Error::At { .. } => located,
            other => Error::At {
                error: Box::new(other),
                span: (span.start, span.end),
            },
        }
    }

    pub(crate) fn bad_input(
        source_name: &str,
        row: Option<usize>,
        column: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Error::BadInput {
            source_name: source_name.to_string(),
            row,
            column: column.map(str::to_string),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn unknown<'a>(
        kind: &'static str,
        name: &str,
        known: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        Error::UnknownName {
            kind,
            name: name.to_string(),
            suggestions: crate::util::suggest::closest(name, known),
        }
    }
}
