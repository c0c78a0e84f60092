//! An append-only string interner: every distinct string once, addressed by a dense `u32` code.
//!
//! Strings live back to back in arena chunks of about 1 MiB (a string never spans two); the
//! hash tables hold only codes and 32 bits of each string's hash, so a dictionary of ten
//! million member ids costs about the bytes of the ids plus 20 bytes each, not a heap
//! allocation per string, and growing a table never hashes a string again.
//!
//! Everything is shared copy-on-write, so cloning a dictionary (a checkpoint's snapshot) is
//! cheap and a later `intern` copies at most one arena chunk, one chunk of locations and one
//! of the [`SHARDS`] hash tables.
//!
//! A saved dictionary comes back mapped ([`StrDict::restore`]): its strings and locations
//! stay in the file, and the hash tables are built the first time a string is looked up or
//! added, so opening a database does not hash ten million ids it may never look up.

use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::chunked::ChunkedVec;
use super::sections::{Section, SectionReader, SectionWriter};

/// Bytes of an arena chunk (a longer string gets a chunk of its own).
const ARENA_CHUNK: usize = 1 << 20;
/// Hash tables a dictionary is split into, by the low bits of the hash.
const SHARDS: usize = 64;
/// Bits of a location that hold the end offset within its chunk.
const END_BITS: u32 = 40;

/// A chunk of the arena: strings back to back, on the heap or in a mapped file.
enum Arena {
    Owned(String),
    /// UTF-8, checked when mapped.
    Mapped(Bytes),
}

impl Arena {
    #[inline]
    fn as_str(&self) -> &str {
        match self {
            Arena::Owned(s) => s,
            // SAFETY: `StrDict::restore` checked these bytes are UTF-8, and they never change.
            #[allow(unsafe_code)]
            Arena::Mapped(b) => unsafe { std::str::from_utf8_unchecked(b) },
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Arena::Owned(s) => s.capacity(),
            Arena::Mapped(_) => 0,
        }
    }
}

/// Cloning copies a mapped chunk to the heap (only an owned chunk is ever changed).
impl Clone for Arena {
    fn clone(&self) -> Self {
        Arena::Owned(self.as_str().to_string())
    }
}

type Shards = Vec<Arc<Probes>>;

/// A hash table of `hash32 << 32 | code` entries: open addressing with linear probing over
/// one array, so that a lookup costs one cache miss for its entry (a table keeping control
/// bytes apart from its buckets costs two), then the string's to compare.
#[derive(Clone, Default)]
struct Probes {
    slots: Vec<u64>,
    len: usize,
}

/// An empty slot (code `u32::MAX` is never given: see [`StrDict::intern`]).
const EMPTY: u64 = u64::MAX;

impl Probes {
    fn with_capacity(n: usize) -> Self {
        let mut table = Probes::default();
        table.reserve(n);
        table
    }

    /// The code of the entry with hash `h` whose string `is` the one looked for.
    #[inline]
    fn find(&self, h: u32, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let e = self.slots[i];
            if e == EMPTY {
                return None;
            }
            if (e >> 32) as u32 == h && is(e as u32) {
                return Some(e as u32);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds an entry known to be absent.
    fn insert_unique(&mut self, h: u32, code: u32) {
        self.reserve(1);
        self.place(u64::from(h) << 32 | u64::from(code));
        self.len += 1;
    }

    fn place(&mut self, entry: u64) {
        let mask = self.slots.len() - 1;
        let mut i = (entry >> 32) as usize & mask;
        while self.slots[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = entry;
    }

    /// Room for `additional` more entries at a load of at most 3/4 (entries are moved by
    /// the hash they keep: no string is hashed again).
    fn reserve(&mut self, additional: usize) {
        let want = self.len + additional;
        if want * 4 <= self.slots.len() * 3 {
            return;
        }
        let capacity = (want * 4 / 3 + 1).next_power_of_two().max(16);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; capacity]);
        for entry in old.into_iter().filter(|&e| e != EMPTY) {
            self.place(entry);
        }
    }

    fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 8
    }
}

/// Where a saved [`StrDict`] lies in a column file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SavedDict {
    len: u64,
    locs: Section,
    /// All arena chunks back to back.
    arena: Section,
    /// Where each arena chunk ends in `arena`.
    arena_ends: Vec<u64>,
    /// Codes whose strings were erased ([`StrDict::blank`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    blanks: Vec<u32>,
}

/// Interned strings with dense codes `0..len`.
#[derive(Clone, Default)]
pub(crate) struct StrDict {
    arena: Vec<Arc<Arena>>,
    /// `locs[i]` = `chunk << END_BITS | end`: string `i` ends at `end` in arena chunk `chunk`
    /// and starts where string `i - 1` ends if that one is in the same chunk, else at 0.
    locs: ChunkedVec<u64>,
    /// Entries are `hash32 << 32 | code` ([`Probes`]). Built on first use (see
    /// [`StrDict::shards`]).
    shards: OnceLock<Shards>,
    /// foldhash, seeded per process: several times faster than SipHash on short keys, and
    /// its random seed still keeps crafted ids from colliding on purpose.
    hasher: hashbrown::DefaultHashBuilder,
    /// Codes whose strings were erased: their bytes are gone from the arena, `get` gives
    /// `""` and no lookup finds them; the code is never given again.
    blanks: Arc<roaring::RoaringBitmap>,
}

impl std::fmt::Debug for StrDict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StrDict").field("len", &self.len()).finish()
    }
}

/// The string of `code` given the arena and the locations.
#[inline]
fn string_at<'a>(arena: &'a [Arc<Arena>], locs: &ChunkedVec<u64>, code: u32) -> &'a str {
    let code = code as usize;
    let loc = locs[code];
    let chunk = loc >> END_BITS;
    let end = (loc & ((1 << END_BITS) - 1)) as usize;
    let start = match code.checked_sub(1).map(|p| locs[p]) {
        Some(prev) if prev >> END_BITS == chunk => (prev & ((1 << END_BITS) - 1)) as usize,
        _ => 0,
    };
    &arena[chunk as usize].as_str()[start..end]
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

    /// The hash tables, built from the strings on first use.
    fn shards(&self) -> &Shards {
        self.shards.get_or_init(|| {
            if self.len() == 0 {
                // An empty dictionary (a column of a few computed values) shares one empty
                // table: a shard is copied on its first insert, so a dictionary of three
                // strings does not allocate 64 tables.
                let empty = Arc::new(Probes::default());
                return (0..SHARDS).map(|_| Arc::clone(&empty)).collect();
            }
            let mut shards: Vec<Probes> = (0..SHARDS)
                .map(|_| Probes::with_capacity(self.len() / SHARDS + 1))
                .collect();
            for code in 0..self.len() as u32 {
                if self.is_blank(code) {
                    continue;
                }
                let (shard, h) = self.hash(self.get(code));
                shards[shard].insert_unique(h, code);
            }
            shards.into_iter().map(Arc::new).collect()
        })
    }

    pub(crate) fn lookup(&self, value: &str) -> Option<u32> {
        let (shard, h) = self.hash(value);
        self.shards()[shard].find(h, |code| self.get(code) == value)
    }

    /// The code of `value`, adding it if it is new. Returns `(code, was_new)`.
    pub(crate) fn intern(&mut self, value: &str) -> (u32, bool) {
        if let Some(code) = self.lookup(value) {
            return (code, false);
        }
        let (shard, h) = self.hash(value);
        // (code u32::MAX is never given: with a hash of all ones it would be `EMPTY`)
        let code = u32::try_from(self.locs.len())
            .ok()
            .filter(|&c| c != u32::MAX)
            .expect("more than 4 billion distinct strings");
        // A new string goes into the last chunk if it is on the heap and has room.
        let fits = self.arena.last().is_some_and(|c| match &**c {
            Arena::Owned(c) => c.len() + value.len() <= ARENA_CHUNK.max(c.capacity()),
            Arena::Mapped(_) => false,
        });
        if !fits {
            self.arena.push(Arc::new(Arena::Owned(String::new())));
        }
        let chunk_index = self.arena.len() - 1;
        let Arena::Owned(chunk) = Arc::make_mut(self.arena.last_mut().expect("just pushed")) else {
            unreachable!("the last chunk is owned")
        };
        if chunk.capacity() - chunk.len() < value.len() {
            // Double, up to a chunk (or the one string): small dictionaries stay small.
            let want = (chunk.capacity() * 2).clamp(64, ARENA_CHUNK);
            chunk.reserve_exact((want - chunk.len()).max(value.len()));
        }
        chunk.push_str(value);
        self.locs
            .push((chunk_index as u64) << END_BITS | chunk.len() as u64);
        self.shards();
        let shards = self.shards.get_mut().expect("built above");
        Arc::make_mut(&mut shards[shard]).insert_unique(h, code);
        (code, true)
    }

    /// Whether `code`'s string was erased.
    #[inline]
    pub(crate) fn is_blank(&self, code: u32) -> bool {
        !self.blanks.is_empty() && self.blanks.contains(code)
    }

    /// Erases the string of `code` (member erasure): its bytes leave the arena (the chunk
    /// holding it is written again without them), no lookup finds it, `get` gives `""`,
    /// and the code stays taken, so the codes of other strings do not move.
    pub(crate) fn blank(&mut self, code: u32) {
        self.blank_all(&[code]);
    }

    /// [`StrDict::blank`] of every code of `codes`, each arena chunk written once.
    pub(crate) fn blank_all(&mut self, codes: &[u32]) {
        let mut codes: Vec<u32> = (codes.iter().copied())
            .filter(|&c| (c as usize) < self.len() && !self.is_blank(c))
            .collect();
        codes.sort_unstable();
        codes.dedup();
        if codes.is_empty() {
            return;
        }
        // The hash table entries of the strings going: a few are taken out of their
        // shards; many, and the tables are built again when next used.
        let gone: Option<Vec<(usize, u64)>> = (codes.len() <= 64 && self.shards.get().is_some())
            .then(|| {
                (codes.iter())
                    .map(|&c| {
                        let (shard, h) = self.hash(self.get(c));
                        (shard, u64::from(h) << 32 | u64::from(c))
                    })
                    .collect()
            });
        Arc::make_mut(&mut self.blanks).extend(codes.iter().copied());
        let chunk_of = |locs: &ChunkedVec<u64>, c: usize| locs[c] >> END_BITS;
        let mut at = 0;
        while at < codes.len() {
            let chunk = chunk_of(&self.locs, codes[at] as usize);
            let mut first = codes[at] as usize;
            while first > 0 && chunk_of(&self.locs, first - 1) == chunk {
                first -= 1;
            }
            let mut end = codes[at] as usize + 1;
            while end < self.len() && chunk_of(&self.locs, end) == chunk {
                end += 1;
            }
            let mut text = String::new();
            let mut ends = Vec::with_capacity(end - first);
            for c in first..end {
                if !self.is_blank(c as u32) {
                    text.push_str(self.get(c as u32));
                }
                ends.push(chunk << END_BITS | text.len() as u64);
            }
            self.locs.copy_from_slice(first, &ends);
            self.arena[chunk as usize] = Arc::new(Arena::Owned(text));
            while at < codes.len() && (codes[at] as usize) < end {
                at += 1;
            }
        }
        match gone {
            Some(gone) => {
                let shards = self.shards.get_mut().expect("built");
                for (shard, entry) in gone {
                    let table = &shards[shard];
                    let mut kept = Probes::with_capacity(table.len);
                    for &e in table.slots.iter().filter(|&&e| e != EMPTY && e != entry) {
                        kept.insert_unique((e >> 32) as u32, e as u32);
                    }
                    shards[shard] = Arc::new(kept);
                }
            }
            None => self.shards = OnceLock::new(),
        }
    }

    /// Adds an erased string's code (a restore of a dictionary saved without its strings).
    pub(crate) fn push_blank(&mut self) -> u32 {
        // An empty string never needs room in the arena: its location ends where the
        // previous string does.
        let code = self.locs.len() as u32;
        let loc = match self.locs.last() {
            Some(prev) => prev,
            None => {
                self.arena.push(Arc::new(Arena::Owned(String::new())));
                0
            }
        };
        self.locs.push(loc);
        Arc::make_mut(&mut self.blanks).insert(code);
        code
    }

    /// Makes room for `additional` more strings (not their bytes).
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.locs.reserve(additional);
        self.shards();
        for shard in self.shards.get_mut().expect("built above") {
            Arc::make_mut(shard).reserve(additional / SHARDS);
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len() as u32).map(|c| self.get(c))
    }

    /// Heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.arena.iter().map(|c| c.heap_bytes()).sum::<usize>()
            + self.locs.heap_bytes()
            + self
                .shards
                .get()
                .map_or(0, |s| s.iter().map(|t| t.heap_bytes()).sum::<usize>())
    }

    /// Bytes of strings and locations mapped from a file.
    pub(crate) fn mapped_bytes(&self) -> usize {
        let arena: usize = self
            .arena
            .iter()
            .map(|c| match &**c {
                Arena::Mapped(b) => b.len(),
                Arena::Owned(_) => 0,
            })
            .sum();
        arena + self.locs.mapped_bytes()
    }

    /// Writes the strings and their locations (not the hash tables: they are rebuilt).
    pub(crate) fn save(&self, out: &mut SectionWriter<'_>) -> std::io::Result<SavedDict> {
        let locs = self.locs.save(out)?;
        let mut arena_ends = Vec::with_capacity(self.arena.len());
        let mut end = 0;
        for chunk in &self.arena {
            end += chunk.as_str().len() as u64;
            arena_ends.push(end);
        }
        let arena = out.section(self.arena.iter().map(|c| c.as_str().as_bytes()))?;
        Ok(SavedDict {
            len: self.len() as u64,
            locs,
            arena,
            arena_ends,
            blanks: self.blanks.iter().collect(),
        })
    }

    /// The dictionary [`StrDict::save`] wrote, mapped. Every location is checked to lie in
    /// its chunk on a character boundary and every chunk to be UTF-8, so no later `get` can
    /// fail.
    pub(crate) fn restore(file: &SectionReader, saved: &SavedDict) -> Result<Self, String> {
        let len = usize::try_from(saved.len).map_err(|_| "too many strings")?;
        let locs: ChunkedVec<u64> = ChunkedVec::restore(file, saved.locs, len)?;
        let bytes = file.get(saved.arena)?;
        let mut arena = Vec::with_capacity(saved.arena_ends.len());
        let mut start = 0;
        for &end in &saved.arena_ends {
            let chunk = usize::try_from(end)
                .ok()
                .filter(|&e| start <= e && e <= bytes.len())
                .map(|e| bytes.slice(start..e))
                .ok_or("a dictionary's chunks lie outside their section")?;
            std::str::from_utf8(&chunk).map_err(|_| "a dictionary string is not UTF-8")?;
            start += chunk.len();
            arena.push(Arc::new(Arena::Mapped(chunk)));
        }
        let mut previous: Option<u64> = None;
        for slice in locs.slices(0..len) {
            for &loc in slice {
                let (chunk, end) = (loc >> END_BITS, (loc & ((1 << END_BITS) - 1)) as usize);
                let start = match previous {
                    Some(p) if p >> END_BITS == chunk => (p & ((1 << END_BITS) - 1)) as usize,
                    _ => 0,
                };
                let text = arena.get(chunk as usize).map(|c| c.as_str());
                if !text.is_some_and(|t| {
                    start <= end
                        && end <= t.len()
                        && t.is_char_boundary(start)
                        && t.is_char_boundary(end)
                }) {
                    return Err("a dictionary string lies outside its chunk".to_string());
                }
                previous = Some(loc);
            }
        }
        if saved.blanks.iter().any(|&c| c as usize >= len) {
            return Err("a dictionary's erased string is out of range".to_string());
        }
        Ok(StrDict {
            arena,
            locs,
            shards: OnceLock::new(),
            hasher: Default::default(),
            blanks: Arc::new(saved.blanks.iter().copied().collect()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::StrDict;

    #[test]
    fn a_blanked_string_leaves_the_arena_and_the_lookups() {
        let mut dict = StrDict::default();
        for v in ["alpha", "13912345678", "gamma", ""] {
            dict.intern(v);
        }
        dict.blank(1);
        assert!(dict.is_blank(1));
        let mut many = StrDict::default();
        for i in 0..300 {
            many.intern(&format!("v{i:04}"));
        }
        many.lookup("v0000");
        many.blank_all(&(0..300).filter(|i| i % 3 == 0).collect::<Vec<u32>>());
        for i in 0..300u32 {
            let v = format!("v{i:04}");
            let kept = i % 3 != 0;
            assert_eq!(many.lookup(&v), kept.then_some(i), "{v}");
            assert_eq!(many.get(i), if kept { v.as_str() } else { "" });
        }
        assert_eq!(dict.get(1), "");
        assert_eq!(
            (dict.get(0), dict.get(2), dict.get(3)),
            ("alpha", "gamma", "")
        );
        assert_eq!(dict.lookup("13912345678"), None);
        assert_eq!(dict.lookup("gamma"), Some(2));
        assert_eq!(dict.lookup(""), Some(3));
        let bytes: String = dict.arena.iter().map(|c| c.as_str()).collect();
        assert!(!bytes.contains("1391"), "{bytes}");
        // The code is not given again; the string may come back under a new one.
        assert_eq!(dict.intern("13912345678"), (4, true));
        let blank = dict.push_blank();
        assert_eq!((blank, dict.get(blank), dict.lookup("")), (5, "", Some(3)));
        // Saved and restored, it stays blank.
        let mut out: Vec<u8> = Vec::new();
        let saved = dict
            .save(&mut crate::util::sections::SectionWriter::new(&mut out, 0))
            .unwrap();
        let file = crate::util::sections::SectionReader::new(bytes::Bytes::from(out));
        let back = StrDict::restore(&file, &saved).unwrap();
        assert!(back.is_blank(1) && back.is_blank(5) && !back.is_blank(4));
        assert_eq!(back.lookup("13912345678"), Some(4));
        assert_eq!(back.lookup("alpha"), Some(0));
        assert_eq!(back.lookup(""), Some(3));
    }

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
    fn a_saved_dictionary_maps_back_and_grows() {
        use crate::util::sections::{SectionReader, SectionWriter};
        let mut dict = StrDict::default();
        for i in 0..5000 {
            dict.intern(&format!("会员{i:0>300}"));
        }
        let mut buf = Vec::new();
        let saved = dict.save(&mut SectionWriter::new(&mut buf, 0)).unwrap();
        let file = SectionReader::new(bytes::Bytes::from(buf.clone()));
        let mut back = StrDict::restore(&file, &saved).unwrap();
        assert!(back.mapped_bytes() > 5000 * 300);
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            dict.iter().collect::<Vec<_>>()
        );
        assert_eq!(back.lookup(&format!("会员{:0>300}", 4321)), Some(4321));
        assert_eq!(back.intern("new"), (5000, true));
        assert_eq!(back.intern(&format!("会员{:0>300}", 7)), (7, false));
        assert_eq!(back.get(5000), "new");

        // a location cut inside a character, or bytes that are not UTF-8, are refused
        let mut bad = buf.clone();
        let at = saved.arena.0 as usize + 1;
        bad[at] = 0xff;
        let file = SectionReader::new(bytes::Bytes::from(bad));
        assert!(StrDict::restore(&file, &saved).is_err());
        let mut bad = buf;
        let loc = saved.locs.0 as usize;
        bad[loc..loc + 2].copy_from_slice(&[4, 0]); // the first string now ends inside '员'
        let file = SectionReader::new(bytes::Bytes::from(bad));
        assert!(StrDict::restore(&file, &saved).is_err());
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

#[cfg(test)]
mod model {
    use proptest::prelude::*;

    use super::StrDict;

    proptest! {
        /// Codes are dense in first-seen order and every lookup agrees with a map, through
        /// table growth, a reservation, and a clone that goes on separately.
        #[test]
        fn lookups_agree_with_a_map(
            words in proptest::collection::vec("[a-c]{0,3}|[0-9]{11}", 0..600),
            reserve in 0usize..2000,
        ) {
            let mut dict = StrDict::default();
            let mut model: std::collections::HashMap<String, u32> = Default::default();
            let half = words.len() / 2;
            for w in &words[..half] {
                let next = model.len() as u32;
                let code = *model.entry(w.clone()).or_insert(next);
                prop_assert_eq!(dict.intern(w), (code, code == next && code as usize + 1 == model.len()));
            }
            let before = dict.clone();
            let model_before = model.clone();
            dict.reserve(reserve);
            for w in &words[half..] {
                let next = model.len() as u32;
                let code = *model.entry(w.clone()).or_insert(next);
                prop_assert_eq!(dict.intern(w).0, code);
            }
            for (w, &code) in &model {
                prop_assert_eq!(dict.lookup(w), Some(code));
                prop_assert_eq!(dict.get(code), w.as_str());
                prop_assert_eq!(before.lookup(w), model_before.get(w).copied());
            }
            prop_assert_eq!(dict.lookup("not-a-word"), None);
            prop_assert_eq!(dict.len(), model.len());
        }
    }
}
