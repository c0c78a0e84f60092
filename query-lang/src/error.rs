//! Parse errors: where (line, column, span), what was expected in words, what was found,
//! and a rendering with a caret under the source.

use std::fmt;

use crate::ast::Span;
use crate::parse::{PestError, rule_words};

/// A statement that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Where the problem is (bytes of the source).
    pub span: Span,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What is wrong, in words: "expected a segment, found 'xyz'".
    pub message: String,
    source_line: String,
    too_deep: bool,
}

impl ParseError {
    pub(crate) fn new(source: &str, span: Span, message: String) -> Self {
        let start = span.start.min(source.len());
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        ParseError {
            span,
            line: source[..start].matches('\n').count() + 1,
            column: source[line_start..start].chars().count() + 1,
            message,
            source_line: source[line_start..line_end].to_string(),
            too_deep: false,
        }
    }

    /// An error for input nested deeper than the limit the parser was given.
    pub(crate) fn too_deep(source: &str, span: Span, message: String) -> Self {
        ParseError {
            too_deep: true,
            ..ParseError::new(source, span, message)
        }
    }

    /// Whether the input was refused for nesting deeper than the parser's limit (so a caller
    /// can name the setting behind that limit).
    pub fn is_too_deep(&self) -> bool {
        self.too_deep
    }

    pub(crate) fn from_pest(source: &str, error: PestError) -> Self {
        use pest::error::{ErrorVariant, InputLocation};
        let pos = match error.location {
            InputLocation::Pos(p) => p,
            InputLocation::Span((s, _)) => s,
        };
        let expected = match &error.variant {
            ErrorVariant::ParsingError { positives, .. } => {
                let mut words: Vec<&str> = positives.iter().filter_map(rule_words).collect();
                words.sort_unstable();
                words.dedup();
                words
            }
            ErrorVariant::CustomError { .. } => Vec::new(),
        };
        let found = found_text(&source[pos.min(source.len())..]);
        let expected = match expected.as_slice() {
            [] => "something else".to_string(),
            [one] => (*one).to_string(),
            many => format!(
                "{} or {}",
                many[..many.len() - 1].join(", "),
                many[many.len() - 1]
            ),
        };
        let end = pos + found.len().max(1);
        let found = if found.is_empty() {
            "the end of the input".to_string()
        } else {
            format!("'{found}'")
        };
        ParseError::new(
            source,
            Span::new(pos, end.min(source.len().max(pos))),
            format!(
                "expected {expected}, found {found}{}",
                sql_hint(source, pos)
            ),
        )
    }

    /// The message with the source line and a caret under the problem.
    pub fn render(&self) -> String {
        let width = self.source_line[..]
            .chars()
            .skip(self.column - 1)
            .take(self.span.end.saturating_sub(self.span.start).max(1))
            .count()
            .max(1);
        format!(
            "syntax error at line {}, column {}: {}\n  {}\n  {}{}",
            self.line,
            self.column,
            self.message,
            self.source_line,
            " ".repeat(self.column - 1),
            "^".repeat(width)
        )
    }
}

/// The word (or symbol) at the start of `rest`.
fn found_text(rest: &str) -> String {
    let rest = rest.trim_start();
    let mut chars = rest.chars();
    match chars.next() {
        None => String::new(),
        Some(c) if c.is_alphanumeric() || c == '_' => rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect(),
        Some(c) => c.to_string(),
    }
}

/// Words that begin SQL statements and no statement of the language.
const SQL_WORDS: [&str; 8] = [
    "select",
    "with",
    "insert",
    "update",
    "delete",
    "create",
    "alter table",
    "from",
];

/// A hint for a statement written in SQL (the one holding byte `pos` of `source`).
fn sql_hint(source: &str, pos: usize) -> &'static str {
    let start = source[..pos.min(source.len())]
        .rfind(';')
        .map_or(0, |i| i + 1);
    let statement = source[start..].trim_start().to_ascii_lowercase();
    let sql = SQL_WORDS.iter().any(|w| {
        statement
            .strip_prefix(w)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
    });
    if sql {
        "; this looks like SQL: memberdb speaks its segment language, e.g. COUNT city = \
         'Shanghai' AND TAG 'vip' (docs/language.md has every form)"
    } else {
        ""
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "syntax error at line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}
