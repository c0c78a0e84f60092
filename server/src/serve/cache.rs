//! Answers of repeated read statements, kept until the data changes.
//!
//! Marketing systems ask the same segment counts over and over (dashboards, journey engines
//! checking a segment before each send). A COUNT or BREAKDOWN whose answer cannot move with
//! the wall clock is cached under its exact text together with the database's data version;
//! any write makes the version grow, so a cached answer is only ever returned while no write
//! has become visible since it was computed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use memberdb_query::ast::{Statement, StatementKind};

use super::resp::Reply;

pub(crate) struct AnswerCache {
    entries: Mutex<HashMap<String, (u64, Reply)>>,
    capacity: usize,
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
}

impl AnswerCache {
    /// A cache of at most `capacity` answers (0: no caching).
    pub(crate) fn new(capacity: usize) -> Self {
        AnswerCache {
            entries: Mutex::new(HashMap::new()),
            capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Whether the answer of `statement` (written as `text`) may be cached: COUNT and
    /// BREAKDOWN only, and nothing that moves with *now* (`IN LAST` windows, and groups,
    /// which may hold such windows) unless `AS OF` pins it.
    pub(crate) fn cacheable(&self, statement: &Statement, text: &str) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let kind_ok = matches!(
            statement.kind,
            StatementKind::Count(_) | StatementKind::Breakdown { .. }
        );
        let upper = text.to_uppercase();
        let moves_with_now = upper.contains("LAST") || upper.contains("GROUP");
        kind_ok && (statement.as_of.is_some() || !moves_with_now)
    }

    pub(crate) fn get(&self, text: &str, version: u64) -> Option<Reply> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let found = entries
            .get(text)
            .filter(|(v, _)| *v == version)
            .map(|(_, reply)| reply.clone());
        drop(entries);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    pub(crate) fn put(&self, text: &str, version: u64, reply: &Reply) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(text) {
            // Entries of older versions are dead; if all are current, start over.
            entries.retain(|_, (v, _)| *v == version);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(text.to_string(), (version, reply.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clock_free_counts_and_breakdowns_are_cached_per_version() {
        let cache = AnswerCache::new(2);
        let parse = |t: &str| memberdb::query::parse_statement(t).unwrap();
        for (text, ok) in [
            ("COUNT TAG 'vip'", true),
            ("BREAKDOWN ALL BY city", true),
            ("COUNT DID purchase IN LAST 7 DAYS", false),
            ("COUNT DID purchase IN LAST 7 DAYS AS OF '2026-01-01'", true),
            ("COUNT IN GROUP g", false),
            ("FIND ALL", false),
        ] {
            assert_eq!(cache.cacheable(&parse(text), text), ok, "{text}");
        }
        cache.put("a", 1, &Reply::Int(5));
        assert_eq!(cache.get("a", 1), Some(Reply::Int(5)));
        assert_eq!(cache.get("a", 2), None, "a write since");
        cache.put("b", 1, &Reply::Int(6));
        cache.put("c", 2, &Reply::Int(7));
        assert_eq!(cache.get("c", 2), Some(Reply::Int(7)));
        assert_eq!(cache.hits.load(Ordering::Relaxed), 2);
    }
}
