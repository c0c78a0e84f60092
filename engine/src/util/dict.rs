//! An append-only string interner: every distinct string once, addressed by a dense `u32` code.
//!
//! Strings live back to back in one arena; the hash table holds only codes and 32 bits of
//! each string's hash, so a dictionary of ten million member ids costs about the bytes of
//! the ids plus 17 bytes each, not a heap allocation per string, and growing the table never
//! hashes a string again.

use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Interned strings with dense codes `0..len`.
#[derive(Default)]
pub(crate) struct StrDict {
    arena: String,
    /// `ends[i]` is the end offset of string `i` in `arena`; it starts where `i - 1` ends.
    ends: Vec<u64>,
    /// Entries are `hash32 << 32 | code`; the table hashes by [`spread`]`(hash32)`.
    table: HashTable<u64>,
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

    /// The 32 bits of a string's hash kept in its table entry.
    #[inline]
    fn hash32(&self, value: &str) -> u32 {
        (self.hasher.hash_one(value) >> 32) as u32
    }

    pub(crate) fn lookup(&self, value: &str) -> Option<u32> {
        let h = self.hash32(value);
        self.table
            .find(spread(h), |&e| {
                e >> 32 == u64::from(h) && self.get(e as u32) == value
            })
            .map(|&e| e as u32)
    }

    /// The code of `value`, adding it if it is new. Returns `(code, was_new)`.
    pub(crate) fn intern(&mut self, value: &str) -> (u32, bool) {
        let h = self.hash32(value);
        let Self {
            table, arena, ends, ..
        } = self;
        let get = |code: u32| {
            let c = code as usize;
            let start = if c == 0 { 0 } else { ends[c - 1] as usize };
            &arena[start..ends[c] as usize]
        };
        if let Some(&e) = table.find(spread(h), |&e| {
            e >> 32 == u64::from(h) && get(e as u32) == value
        }) {
            return (e as u32, false);
        }
        let code = u32::try_from(ends.len()).expect("more than 4 billion distinct strings");
        arena.push_str(value);
        ends.push(arena.len() as u64);
        table.insert_unique(spread(h), u64::from(h) << 32 | u64::from(code), |&e| {
            spread((e >> 32) as u32)
        });
        (code, true)
    }

    /// Makes room for `additional` more strings (not their bytes).
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.ends.reserve_exact(additional);
        self.table
            .reserve(additional, |&e| spread((e >> 32) as u32));
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len() as u32).map(|c| self.get(c))
    }

    /// Heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.ends.capacity() * 8 + self.table.capacity() * 9
    }
}

/// The table's 64-bit hash from the stored 32 bits: the low bits pick the bucket and the top
/// seven the control byte, so both must come from the 32 bits.
#[inline]
fn spread(h: u32) -> u64 {
    u64::from(h) << 32 | u64::from(h)
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
