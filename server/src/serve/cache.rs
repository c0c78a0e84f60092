//! Answers of repeated read statements, kept until the data changes.
//!
//! Marketing systems ask the same segment counts over and over (dashboards, journey engines
//! checking a segment before each send). A COUNT or BREAKDOWN whose answer cannot move with
//! the wall clock is cached under its canonical text (the parsed statement printed back, so
//! spacing, case and comments do not make new entries) together with the database's data
//! version; any write makes the version grow, so a cached answer is only ever returned while
//! no write has become visible since it was computed.
//!
//! The cache is bounded twice: in entries and in bytes (each answer counted as the bytes it
//! is sent as, plus its key). When full, answers of older data versions go first, then the
//! oldest answers.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use memberdb_query::ast::{DidExpr, Expr, Statement, StatementKind, WindowExpr};

use super::resp::Reply;

/// Fixed cost counted per entry besides its key and reply (map slot, queue slot, headers).
const ENTRY_OVERHEAD: usize = 64;

struct Entry {
    version: u64,
    reply: Reply,
    bytes: usize,
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, Entry>,
    /// Keys in insertion order, oldest first (may name keys since removed or replaced).
    order: VecDeque<String>,
    bytes: usize,
}

impl Entries {
    fn remove(&mut self, key: &str) {
        if let Some(old) = self.map.remove(key) {
            self.bytes -= old.bytes;
        }
    }
}

pub(crate) struct AnswerCache {
    entries: Mutex<Entries>,
    capacity: usize,
    max_bytes: usize,
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
}

impl AnswerCache {
    /// A cache of at most `capacity` answers taking at most `max_bytes` (either 0: off).
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Self {
        AnswerCache {
            entries: Mutex::new(Entries::default()),
            capacity,
            max_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The key of a statement whose answer may be cached: COUNT and BREAKDOWN only, and
    /// nothing that moves with *now* (`IN LAST` windows, and groups, which may hold such
    /// windows) unless `AS OF` pins it. The key is the canonical text, `AS OF` included.
    pub(crate) fn key(&self, statement: &Statement) -> Option<String> {
        if self.capacity == 0 || self.max_bytes == 0 {
            return None;
        }
        let segment = match &statement.kind {
            StatementKind::Count(e) | StatementKind::Breakdown { segment: e, .. } => e,
            _ => return None,
        };
        (statement.as_of.is_some() || !moves_with_now(segment)).then(|| statement.to_string())
    }

    pub(crate) fn get(&self, key: &str, version: u64) -> Option<Reply> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let found = entries
            .map
            .get(key)
            .filter(|e| e.version == version)
            .map(|e| e.reply.clone());
        drop(entries);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    pub(crate) fn put(&self, key: &str, version: u64, reply: &Reply) {
        let mut sent = Vec::new();
        reply.write(false, &mut sent);
        let bytes = sent.len() + key.len() + ENTRY_OVERHEAD;
        // One answer may take at most a quarter of the budget, so a few huge ones cannot
        // push out everything else.
        if bytes > self.max_bytes / 4 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(key);
        let full = |e: &Entries| e.map.len() >= self.capacity || e.bytes + bytes > self.max_bytes;
        if full(&entries) {
            // Answers of older data versions can never be returned again.
            entries.map.retain(|_, e| e.version == version);
            entries.bytes = entries.map.values().map(|e| e.bytes).sum();
            let Entries { map, order, .. } = &mut *entries;
            order.retain(|k| map.contains_key(k));
        }
        while full(&entries) {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            entries.remove(&oldest);
        }
        entries.bytes += bytes;
        entries.order.push_back(key.to_string());
        entries.map.insert(
            key.to_string(),
            Entry {
                version,
                reply: reply.clone(),
                bytes,
            },
        );
    }

    /// Bytes the kept answers take, as counted against the budget.
    pub(crate) fn bytes(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }
}

/// Whether the members of `expr` can change as *now* moves: an `IN LAST` window, or a group
/// (whose definition may hold one). The tree is at most the language's nesting deep.
fn moves_with_now(expr: &Expr) -> bool {
    match expr {
        Expr::InGroup(..) => true,
        Expr::Did(
            DidExpr {
                window: Some(WindowExpr::Last { .. }),
                ..
            },
            _,
        ) => true,
        Expr::And(parts, _) | Expr::Or(parts, _) => parts.iter().any(moves_with_now),
        Expr::Not(inner, _) => moves_with_now(inner),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Statement {
        memberdb::query::parse_statement(text).unwrap()
    }

    #[test]
    fn only_clock_free_counts_and_breakdowns_are_cached_per_version() {
        let cache = AnswerCache::new(2, 1 << 20);
        for (text, ok) in [
            ("COUNT TAG 'vip'", true),
            ("BREAKDOWN ALL BY city", true),
            ("COUNT DID purchase IN LAST 7 DAYS", false),
            ("COUNT NOT (TAG 'a' OR DID purchase IN LAST 7 DAYS)", false),
            ("COUNT DID purchase IN LAST 7 DAYS AS OF '2026-01-01'", true),
            ("COUNT IN GROUP g", false),
            ("COUNT \"last\" = 'x' AND \"group\" = 'y'", true),
            ("FIND ALL", false),
        ] {
            assert_eq!(cache.key(&parse(text)).is_some(), ok, "{text}");
        }
        cache.put("a", 1, &Reply::Int(5));
        assert_eq!(cache.get("a", 1), Some(Reply::Int(5)));
        assert_eq!(cache.get("a", 2), None, "a write since");
        cache.put("b", 1, &Reply::Int(6));
        cache.put("c", 2, &Reply::Int(7));
        assert_eq!(cache.get("c", 2), Some(Reply::Int(7)));
        assert_eq!(cache.hits.load(Ordering::Relaxed), 2);
    }

    /// Issue 11, finding 3: the cache was keyed by text, so 100 whitespace variants of one
    /// BREAKDOWN of 84,809 lines took 1.09 GB; the cap was in entries only.
    #[test]
    fn variants_of_one_statement_share_an_entry_and_bytes_are_bounded() {
        let cache = AnswerCache::new(10_000, 64 << 10);
        let key = |t: &str| cache.key(&parse(t)).unwrap();
        assert_eq!(
            key("count   tag 'vip'  -- hi"),
            key("COUNT\n\tTAG 'vip'"),
            "spacing, case and comments"
        );
        let big = Reply::Array(vec![Reply::text("x".repeat(100)); 100]);
        for i in 0..1_000 {
            cache.put(&format!("k{i}"), 1, &big);
            assert!(cache.bytes() <= 64 << 10, "{} bytes", cache.bytes());
        }
        assert!(cache.get("k999", 1).is_some(), "the newest answer stays");
        assert!(cache.get("k0", 1).is_none(), "the oldest went first");
        let huge = Reply::Array(vec![Reply::text("x".repeat(1000)); 100]);
        cache.put("huge", 1, &huge);
        assert!(
            cache.get("huge", 1).is_none(),
            "more than a quarter of the budget"
        );
    }
}
