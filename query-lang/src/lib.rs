//! The memberdb segment language (DESIGN section 3): text to an AST whose nodes carry their
//! source spans, parse errors that say what was expected in words and point at the source
//! with a caret, and a canonical printer.
//!
//! ```
//! use memberdb_query::{parse_statement, ast::StatementKind};
//!
//! let stmt = parse_statement("count did claim_coupon and not did redeem_coupon and city = 'Shanghai'")?;
//! assert!(matches!(stmt.kind, StatementKind::Count(_)));
//! assert_eq!(
//!     stmt.to_string(),
//!     "COUNT DID claim_coupon AND NOT DID redeem_coupon AND city = 'Shanghai'"
//! );
//! let err = parse_statement("COUNT TAG vip").unwrap_err();
//! assert_eq!(err.render(), "syntax error at line 1, column 11: expected a quoted string, found 'vip'\n  COUNT TAG vip\n            ^^^");
//! # Ok::<(), memberdb_query::ParseError>(())
//! ```
//!
//! This crate knows nothing of the engine: names are not resolved here.

#![warn(missing_docs)]

pub mod ast;
mod error;
mod parse;
mod print;
mod spanless;

pub use error::ParseError;
pub use parse::{
    MAX_NESTING, MAX_STORED_NESTING, parse_script, parse_statement, parse_statement_nested,
};

#[cfg(test)]
mod tests;
