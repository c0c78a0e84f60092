//! Answers of repeated read statements, kept until the data changes.
//!
//! Marketing systems ask the same segment counts over and over (dashboards, journey engines
//! checking a segment before each send). The engine asks this cache about every COUNT and
//! BREAKDOWN once it is bound (`memberdb::query::AnswerCache`), under a key made of the bound
//! plan: names resolved, operands in a canonical order, windows resolved to the events they
//! select. So spacing, case, comments and operand order do not make new entries, and a
//! statement with `IN LAST 7 DAYS` is answered from the cache while its window selects the
//! same events. Each answer is kept with the data version it was computed at; any write
//! makes the version grow, so a cached answer is only ever returned while no write has
//! become visible since it was computed.
//!
//! The cache is bounded twice: in entries and in bytes (each answer counted as the bytes it
//! is sent as, plus its key). When full, answers of older data versions go first, then the
//! oldest answers.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use memberdb::query::Output;

/// Fixed cost counted per entry besides its key and reply (map slot, queue slot, headers).
const ENTRY_OVERHEAD: usize = 64;

struct Entry {
    version: u64,
    output: Output,
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

    /// True when the cache keeps anything (either bound 0: off).
    pub(crate) fn enabled(&self) -> bool {
        self.capacity > 0 && self.max_bytes > 0
    }

    fn lookup(&self, key: &str, version: u64) -> Option<Output> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let found = entries
            .map
            .get(key)
            .filter(|e| e.version == version)
            .map(|e| e.output.clone());
        drop(entries);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn keep(&self, key: &str, version: u64, output: &Output) {
        let mut sent = Vec::new();
        super::commands::output_reply(output.clone()).write(false, &mut sent);
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
                output: output.clone(),
                bytes,
            },
        );
    }

    /// Bytes the kept answers take, as counted against the budget.
    pub(crate) fn bytes(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }
}

impl memberdb::query::AnswerCache for AnswerCache {
    fn get(&self, key: &str, version: u64) -> Option<Output> {
        self.lookup(key, version)
    }

    fn put(&self, key: &str, version: u64, output: &Output) {
        self.keep(key, version, output);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memberdb::query::AnswerCache as _;

    #[test]
    fn answers_are_kept_per_version() {
        let cache = AnswerCache::new(2, 1 << 20);
        cache.put("a", 1, &Output::Count(5));
        assert_eq!(cache.get("a", 1), Some(Output::Count(5)));
        assert_eq!(cache.get("a", 2), None, "a write since");
        cache.put("b", 1, &Output::Count(6));
        cache.put("c", 2, &Output::Count(7));
        assert_eq!(cache.get("c", 2), Some(Output::Count(7)));
        assert_eq!(cache.hits.load(Ordering::Relaxed), 2);
    }

    /// Issue 11, finding 3: the cache was keyed by text and bounded in entries only, so 100
    /// whitespace variants of one BREAKDOWN of 84,809 lines took 1.09 GB.
    #[test]
    fn bytes_are_bounded() {
        let cache = AnswerCache::new(10_000, 64 << 10);
        let lines = |n: usize, width: usize| Output::Breakdown {
            by: "city".into(),
            columns: vec!["city".into()],
            total: 1,
            lines: (0..n)
                .map(|_| memberdb::BreakdownRow {
                    value: Some(memberdb::Value::from("x".repeat(width))),
                    count: 1,
                    more: Vec::new(),
                })
                .collect(),
        };
        let big = lines(100, 100);
        for i in 0..1_000 {
            cache.put(&format!("k{i}"), 1, &big);
            assert!(cache.bytes() <= 64 << 10, "{} bytes", cache.bytes());
        }
        assert!(cache.get("k999", 1).is_some(), "the newest answer stays");
        assert!(cache.get("k0", 1).is_none(), "the oldest went first");
        cache.put("huge", 1, &lines(100, 1000));
        assert!(
            cache.get("huge", 1).is_none(),
            "more than a quarter of the budget"
        );
    }
}
