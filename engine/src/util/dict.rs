//! An append-only string interner: every distinct string once, addressed by a dense `u32` code.
//!
//! Strings live back to back in one arena; the hash table holds only codes, so a dictionary
//! of ten million member ids costs about the bytes of the ids plus 13 bytes each, not a heap
//! allocation per string.

use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Interned strings with dense codes `0..len`.
#[derive(Default)]
pub(crate) struct StrDict {
    arena: String,
    /// `ends[i]` is the end offset of string `i` in `arena`; it starts where `i - 1` ends.
    ends: Vec<u64>,
    table: HashTable<u32>,
    /// foldhash, seeded per process: several times faster than SipHash on short keys, and
    /// its random seed still keeps crafted ids from colliding on purpose.
    hasher: hashbrown::DefaultHashBuilder,
}

impl Clone for StrDict {
    fn clone(&self) -> Self {
        let mut copy = StrDict::default();
        for i in 0..self.len() {
            copy.intern(self.get(i as u32));
        }
        copy
    }
}

impl std::fmt::Debug for StrDict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StrDict").field("len", &self.len()).finish()
    }
}

impl StrDict {
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    #[inline]
    pub(crate) fn get(&self, code: u32) -> &str {
        let code = code as usize;
        let start = if code == 0 {
            0
        } else {
            self.ends[code - 1] as usize
        };
        let end = self.ends[code] as usize;
        &self.arena[start..end]
    }

    pub(crate) fn lookup(&self, value: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(value);
        self.table
            .find(hash, |&code| self.get(code) == value)
            .copied()
    }

    /// The code of `value`, adding it if it is new. Returns `(code, was_new)`.
    pub(crate) fn intern(&mut self, value: &str) -> (u32, bool) {
        let hash = self.hasher.hash_one(value);
        if let Some(&code) = self.table.find(hash, |&code| self.get(code) == value) {
            return (code, false);
        }
        let code = u32::try_from(self.ends.len()).expect("more than 4 billion distinct strings");
        self.arena.push_str(value);
        self.ends.push(self.arena.len() as u64);
        let Self {
            table,
            hasher,
            arena,
            ends,
            ..
        } = self;
        table.insert_unique(hash, code, |&c| {
            let c = c as usize;
            let start = if c == 0 { 0 } else { ends[c - 1] as usize };
            hasher.hash_one(&arena[start..ends[c] as usize])
        });
        (code, true)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len() as u32).map(|c| self.get(c))
    }

    /// Heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.ends.capacity() * 8 + self.table.capacity() * 5
    }
}

#[cfg(test)]
mod tests {
    use super::StrDict;

    #[test]
    fn interns_each_string_once() {
        let mut dict = StrDict::default();
        assert_eq!(dict.intern("上海"), (0, true));
        assert_eq!(dict.intern("Beijing"), (1, true));
        assert_eq!(dict.intern("上海"), (0, false));
        assert_eq!(dict.intern(""), (2, true));
        assert_eq!(dict.get(0), "上海");
        assert_eq!(dict.get(2), "");
        assert_eq!(dict.lookup("Beijing"), Some(1));
        assert_eq!(dict.lookup("Paris"), None);
        let copy = dict.clone();
        assert_eq!(copy.iter().collect::<Vec<_>>(), vec!["上海", "Beijing", ""]);
    }

    #[test]
    fn survives_table_growth() {
        let mut dict = StrDict::default();
        for i in 0..10_000 {
            dict.intern(&format!("M{i}"));
        }
        for i in (0..10_000).step_by(997) {
            assert_eq!(dict.lookup(&format!("M{i}")), Some(i));
        }
    }
}
