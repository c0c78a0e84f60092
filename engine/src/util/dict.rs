//! An append-only string interner: every distinct string once, addressed by a dense `u32` code.
//!
//! Strings live back to back in arena chunks of about 1 MiB (a string never spans two); the
//! hash tables hold only codes and 32 bits of each string's hash, so a dictionary of ten
//! million member ids costs about the bytes of the ids plus 17 bytes each, not a heap
//! allocation per string, and growing a table never hashes a string again.
//!
//! Everything is shared copy-on-write, so cloning a dictionary (a checkpoint's snapshot) is
//! cheap and a later `intern` copies at most one arena chunk, one chunk of locations and one
//! of the [`SHARDS`] hash tables.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use super::chunked::ChunkedVec;

/// Bytes of an arena chunk (a longer string gets a chunk of its own).
const ARENA_CHUNK: usize = 1 << 20;
/// Hash tables a dictionary is split into, by the low bits of the hash.
const SHARDS: usize = 64;
/// Bits of a location that hold the end offset within its chunk.
const END_BITS: u32 = 40;

/// Interned strings with dense codes `0..len`.
#[derive(Clone, Default)]
pub(crate) struct StrDict {
    arena: Vec<Arc<String>>,
    /// `locs[i]` = `chunk << END_BITS | end`: string `i` ends at `end` in arena chunk `chunk`
    /// and starts where string `i - 1` ends if that one is in the same chunk, else at 0.
    locs: ChunkedVec<u64>,
    /// Entries are `hash32 << 32 | code`; a table hashes by [`spread`]`(hash32)`. Empty
    /// until the first string.
    shards: Vec<Arc<HashTable<u64>>>,
    /// foldhash, seeded per process: several times faster than SipHash on short keys, and
    /// its random seed still keeps crafted ids from colliding on purpose.
    hasher: hashbrown::DefaultHashBuilder,
}

impl std::fmt::Debug for StrDict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StrDict").field("len", &self.len()).finish()
    }
}

/// The string of `code` given the arena and the locations.
#[inline]
fn string_at<'a>(arena: &'a [Arc<String>], locs: &ChunkedVec<u64>, code: u32) -> &'a str {
    let code = code as usize;
    let loc = locs[code];
    let chunk = loc >> END_BITS;
    let end = (loc & ((1 << END_BITS) - 1)) as usize;
    let start = match code.checked_sub(1).map(|p| locs[p]) {
        Some(prev) if prev >> END_BITS == chunk => (prev & ((1 << END_BITS) - 1)) as usize,
        _ => 0,
    };
    &arena[chunk as usize][start..end]
}

impl StrDict {
    pub(crate) fn len(&self) -> usize {
        self.locs.len()
    }

    #[inline]
    pub(crate) fn get(&self, code: u32) -> &str {
        string_at(&self.arena, &self.locs, code)
    }

    /// The shard of a string and the 32 bits of its hash kept in its table entry.
    #[inline]
    fn hash(&self, value: &str) -> (usize, u32) {
        let h = self.hasher.hash_one(value);
        (h as usize % SHARDS, (h >> 32) as u32)
    }

    pub(crate) fn lookup(&self, value: &str) -> Option<u32> {
        let (shard, h) = self.hash(value);
        self.shards
            .get(shard)?
            .find(spread(h), |&e| {
                e >> 32 == u64::from(h) && self.get(e as u32) == value
            })
            .map(|&e| e as u32)
    }

    /// The code of `value`, adding it if it is new. Returns `(code, was_new)`.
    pub(crate) fn intern(&mut self, value: &str) -> (u32, bool) {
        if let Some(code) = self.lookup(value) {
            return (code, false);
        }
        let (shard, h) = self.hash(value);
        let code = u32::try_from(self.locs.len()).expect("more than 4 billion distinct strings");
        let fits = self
            .arena
            .last()
            .is_some_and(|c| c.len() + value.len() <= ARENA_CHUNK.max(c.capacity()));
        if !fits {
            self.arena.push(Arc::new(String::new()));
        }
        let chunk_index = self.arena.len() - 1;
        let chunk = Arc::make_mut(self.arena.last_mut().expect("just pushed"));
        if chunk.capacity() - chunk.len() < value.len() {
            // Double, up to a chunk (or the one string): small dictionaries stay small.
            let want = (chunk.capacity() * 2).clamp(64, ARENA_CHUNK);
            chunk.reserve_exact((want - chunk.len()).max(value.len()));
        }
        chunk.push_str(value);
        self.locs
            .push((chunk_index as u64) << END_BITS | chunk.len() as u64);
        if self.shards.is_empty() {
            self.shards = (0..SHARDS).map(|_| Arc::default()).collect();
        }
        Arc::make_mut(&mut self.shards[shard]).insert_unique(
            spread(h),
            u64::from(h) << 32 | u64::from(code),
            |&e| spread((e >> 32) as u32),
        );
        (code, true)
    }

    /// Makes room for `additional` more strings (not their bytes).
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.locs.reserve(additional);
        if self.shards.is_empty() {
            self.shards = (0..SHARDS).map(|_| Arc::default()).collect();
        }
        for shard in &mut self.shards {
            Arc::make_mut(shard).reserve(additional / SHARDS, |&e| spread((e >> 32) as u32));
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len() as u32).map(|c| self.get(c))
    }

    /// Heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.arena.iter().map(|c| c.capacity()).sum::<usize>()
            + self.locs.heap_bytes()
            + self.shards.iter().map(|t| t.capacity() * 9).sum::<usize>()
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
        dict.intern("Paris");
        assert_eq!(copy.iter().collect::<Vec<_>>(), vec!["上海", "Beijing", ""]);
        assert_eq!(copy.lookup("Paris"), None);
        assert_eq!(dict.lookup("Paris"), Some(3));
    }

    #[test]
    fn strings_longer_than_a_chunk_and_across_chunks() {
        let mut dict = StrDict::default();
        let long = "x".repeat(super::ARENA_CHUNK + 10);
        let mut codes = Vec::new();
        for i in 0..3000 {
            codes.push(dict.intern(&format!("{i:0>500}")).0);
            if i == 1000 {
                assert_eq!(dict.intern(&long), (1001, true));
            }
        }
        assert!(dict.arena.len() > 2);
        assert_eq!(dict.get(1001), long);
        for (i, &code) in codes.iter().enumerate() {
            assert_eq!(dict.get(code), format!("{i:0>500}"));
            assert_eq!(dict.lookup(&format!("{i:0>500}")), Some(code));
        }
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
