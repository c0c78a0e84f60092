//! Parsed statements by their text. Dashboards and journey engines send the same statement
//! text over and over, and parsing it (pest) is the largest part of the CPU a small count
//! takes; answers are still computed each time (that is the answer cache's business).
//!
//! Bounded in entries and in text bytes; statements longer than [`LONGEST`] are not kept,
//! and when the cache is full it starts over (no bookkeeping on the hot path). Errors are
//! not kept: a bad statement is parsed again to report it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use memberdb_query::ParseError;
use memberdb_query::ast::Statement;

/// Longest statement text kept.
const LONGEST: usize = 4096;

/// The statements by text, and the bytes of their texts.
type Entries = (HashMap<Box<str>, Arc<Statement>>, usize);

pub(crate) struct ParsedStatements {
    entries: Mutex<Entries>,
    capacity: usize,
    max_bytes: usize,
}

impl ParsedStatements {
    /// At most `capacity` statements of at most `max_bytes` of text in all (0: off).
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Self {
        ParsedStatements {
            entries: Mutex::new((HashMap::new(), 0)),
            capacity,
            max_bytes,
        }
    }

    /// The statement of `text`, parsed with `max_nesting` (every entry was parsed with
    /// the same limit: a server's limits do not change while it runs).
    pub(crate) fn parse(
        &self,
        text: &str,
        max_nesting: usize,
    ) -> Result<Arc<Statement>, ParseError> {
        if let Some(found) = self.lock().0.get(text) {
            return Ok(found.clone());
        }
        let statement = Arc::new(memberdb::query::parse_statement_nested(text, max_nesting)?);
        if self.capacity > 0 && text.len() <= LONGEST {
            let mut entries = self.lock();
            if entries.0.len() >= self.capacity || entries.1 + text.len() > self.max_bytes {
                *entries = (HashMap::new(), 0);
            }
            entries.1 += text.len();
            entries.0.insert(text.into(), statement.clone());
        }
        Ok(statement)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // the map is valid at every step: a panic elsewhere cannot leave it half changed
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_come_back_equal_and_bounded() {
        let cache = ParsedStatements::new(3, 1 << 20);
        let text = "COUNT TAG 'vip' AND city = 'Shanghai'";
        let first = cache.parse(text, 64).unwrap();
        let second = cache.parse(text, 64).unwrap();
        assert!(
            Arc::ptr_eq(&first, &second),
            "the second parse is the kept one"
        );
        assert_eq!(
            *first,
            memberdb::query::parse_statement_nested(text, 64).unwrap()
        );
        for i in 0..10 {
            cache.parse(&format!("COUNT TAG 't{i}'"), 64).unwrap();
            assert!(cache.lock().0.len() <= 3);
        }
        assert!(cache.parse("COUNT TAG", 64).is_err());
        assert!(cache.lock().0.keys().all(|k| &**k != "COUNT TAG"));
        let off = ParsedStatements::new(0, 0);
        off.parse(text, 64).unwrap();
        assert!(off.lock().0.is_empty());
    }
}
