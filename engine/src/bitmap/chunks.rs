//! The chunk form of a bitmap: one container per 65,536 members, indexed directly by the
//! chunk number, so a plan can walk several bitmaps chunk by chunk and pick a kernel per
//! chunk from the kinds it meets (an array of up to [`ARRAY_LIMIT`] members, a bitset,
//! full, empty).
//!
//! roaring-rs keeps its containers private; their portable serialization (the roaring
//! format spec) is public and is a copy of them, so the form is read from it and written
//! back through it.

use roaring::RoaringBitmap;

/// Members per chunk.
pub(crate) const CHUNK_BITS: u32 = 1 << 16;
/// 64-bit words of a chunk's bitset.
pub(crate) const WORDS: usize = 1024;
/// A chunk as a bitset.
pub(crate) type Words = [u64; WORDS];

/// Above this many members a chunk of the chunk form is a bitset. Roaring's rule is 4,096;
/// the chunk form is denser, because the plan probes arrays of up to this many members
/// against the other operands and would otherwise set every larger array into a scratch
/// bitset on every query (a quarter of Q1's time at 1M members, where the last, partial
/// chunk holds arrays of 1,000 to 2,300). It costs memory only for the bitmaps plans read
/// and only for their chunks of 1,025 to 4,096 members: 8 KB instead of 2 to 8 KB each.
pub(crate) const ARRAY_LIMIT: usize = 1024;
/// Above this many members a roaring container is a bitset (the roaring format's rule).
const ROARING_ARRAY_LIMIT: usize = 4096;

const COOKIE_NO_RUNS: u32 = 12346;
const COOKIE_RUNS: u16 = 12347;
const NO_OFFSET_THRESHOLD: usize = 4;

/// One chunk's members.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Chunk {
    Empty,
    /// Sorted low 16 bits, at most [`ARRAY_LIMIT`].
    Array(Box<[u16]>),
    /// More than [`ARRAY_LIMIT`] members, fewer than all.
    Bits {
        words: Box<Words>,
        len: u32,
    },
    /// All 65,536.
    Full,
}

/// A borrowed view of a chunk, what kernels take.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ChunkRef<'a> {
    Empty,
    Array(&'a [u16]),
    Bits(&'a Words, u32),
    Full,
}

impl ChunkRef<'_> {
    pub(crate) fn len(&self) -> u32 {
        match self {
            ChunkRef::Empty => 0,
            ChunkRef::Array(a) => a.len() as u32,
            ChunkRef::Bits(_, n) => *n,
            ChunkRef::Full => CHUNK_BITS,
        }
    }

    /// The members' low 16 bits, ascending.
    pub(crate) fn members(&self) -> Vec<u16> {
        match self {
            ChunkRef::Empty => Vec::new(),
            ChunkRef::Array(a) => a.to_vec(),
            ChunkRef::Bits(words, n) => super::kernels::bits_to_array(words, *n as usize),
            ChunkRef::Full => (0..=u16::MAX).collect(),
        }
    }

    pub(crate) fn contains(&self, low: u16) -> bool {
        match self {
            ChunkRef::Empty => false,
            ChunkRef::Array(a) => a.binary_search(&low).is_ok(),
            ChunkRef::Bits(w, _) => w[usize::from(low >> 6)] >> (low & 63) & 1 == 1,
            ChunkRef::Full => true,
        }
    }
}

impl Chunk {
    pub(crate) fn as_ref(&self) -> ChunkRef<'_> {
        match self {
            Chunk::Empty => ChunkRef::Empty,
            Chunk::Array(a) => ChunkRef::Array(a),
            Chunk::Bits { words, len } => ChunkRef::Bits(words, *len),
            Chunk::Full => ChunkRef::Full,
        }
    }

    /// The chunk of a bitset holding `len` members, in the form the roaring rule gives it.
    pub(crate) fn from_words(words: &Words, len: u32) -> Chunk {
        match len as usize {
            0 => Chunk::Empty,
            n if n <= ARRAY_LIMIT => Chunk::Array(super::kernels::bits_to_array(words, n).into()),
            n if n == CHUNK_BITS as usize => Chunk::Full,
            _ => Chunk::Bits {
                words: Box::new(*words),
                len,
            },
        }
    }

    /// The chunk of sorted, distinct low bits.
    pub(crate) fn from_sorted(values: &[u16]) -> Chunk {
        match values.len() {
            0 => Chunk::Empty,
            n if n <= ARRAY_LIMIT => Chunk::Array(values.into()),
            n => {
                let mut words = Box::new([0u64; WORDS]);
                super::kernels::set_bits(&mut words, values);
                if n == CHUNK_BITS as usize {
                    Chunk::Full
                } else {
                    Chunk::Bits {
                        words,
                        len: n as u32,
                    }
                }
            }
        }
    }
}

/// A chunk as the roaring format stores it.
enum Container<'a> {
    Array(std::borrow::Cow<'a, [u16]>),
    Bits(&'a Words, u32),
    Full,
}

impl Container<'_> {
    fn len(&self) -> usize {
        match self {
            Container::Array(a) => a.len(),
            Container::Bits(_, n) => *n as usize,
            Container::Full => CHUNK_BITS as usize,
        }
    }
}

/// A whole bitmap as chunks, `chunks[k]` holding members `k * 65,536 ..`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Chunks {
    chunks: Vec<Chunk>,
    len: u64,
}

impl Chunks {
    /// No members.
    pub(crate) const fn empty() -> Chunks {
        Chunks {
            chunks: Vec::new(),
            len: 0,
        }
    }

    /// Chunks from their contents in order (trailing empty chunks may be left out).
    pub(crate) fn from_vec(chunks: Vec<Chunk>) -> Chunks {
        let len = chunks.iter().map(|c| u64::from(c.as_ref().len())).sum();
        Chunks { chunks, len }
    }

    /// Members in all chunks.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The members, ascending (for a few: they are tested one by one).
    pub(crate) fn rows(&self) -> Vec<u32> {
        let mut rows = Vec::with_capacity(self.len as usize);
        for (k, chunk) in self.chunks.iter().enumerate() {
            let base = (k as u32) << 16;
            match chunk.as_ref() {
                ChunkRef::Empty => {}
                ChunkRef::Array(a) => rows.extend(a.iter().map(|&low| base | u32::from(low))),
                other => rows.extend(other.members().into_iter().map(|low| base | u32::from(low))),
            }
        }
        rows
    }

    /// Chunk numbers that may hold members: `0..count()`.
    pub(crate) fn count(&self) -> usize {
        self.chunks.len()
    }

    /// Whether member `row` is in.
    pub(crate) fn contains(&self, row: u32) -> bool {
        self.get((row >> 16) as usize).contains(row as u16)
    }

    /// Chunk `k` (empty past the end).
    pub(crate) fn get(&self, k: usize) -> ChunkRef<'_> {
        self.chunks.get(k).map_or(ChunkRef::Empty, Chunk::as_ref)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self
                .chunks
                .iter()
                .map(|c| match c {
                    Chunk::Array(a) => a.len() * 2,
                    Chunk::Bits { .. } => WORDS * 8,
                    Chunk::Empty | Chunk::Full => 0,
                })
                .sum::<usize>()
    }

    /// The chunk form of `bitmap`, read from its portable serialization.
    pub(crate) fn from_roaring(bitmap: &RoaringBitmap) -> Chunks {
        let mut bytes = Vec::with_capacity(bitmap.serialized_size());
        bitmap
            .serialize_into(&mut bytes)
            .expect("writing to a vector cannot fail");
        let mut chunks = Vec::new();
        let mut reader = Reader {
            bytes: &bytes,
            at: 0,
        };
        let cookie = reader.u32();
        let (size, runs, offsets) = if cookie == COOKIE_NO_RUNS {
            (reader.u32() as usize, None, true)
        } else {
            debug_assert_eq!(cookie as u16, COOKIE_RUNS);
            let size = (cookie >> 16) as usize + 1;
            let runs = reader.take(size.div_ceil(8));
            (size, Some(runs), size >= NO_OFFSET_THRESHOLD)
        };
        let header = reader.take(size * 4);
        if offsets {
            reader.take(size * 4);
        }
        for i in 0..size {
            let key = usize::from(u16::from_le_bytes([header[4 * i], header[4 * i + 1]]));
            let len = usize::from(u16::from_le_bytes([header[4 * i + 2], header[4 * i + 3]])) + 1;
            chunks.resize(key, Chunk::Empty);
            let is_run = runs.is_some_and(|r| r[i / 8] >> (i % 8) & 1 == 1);
            let chunk = if is_run {
                let n = usize::from(reader.u16());
                let mut values = Vec::with_capacity(len);
                for _ in 0..n {
                    let start = reader.u16();
                    let extra = reader.u16();
                    values.extend(start..=start.saturating_add(extra));
                }
                Chunk::from_sorted(&values)
            } else if len <= ROARING_ARRAY_LIMIT {
                let raw = reader.take(len * 2);
                let values: Vec<u16> = raw
                    .chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .collect();
                Chunk::from_sorted(&values)
            } else if len == CHUNK_BITS as usize {
                reader.take(WORDS * 8);
                Chunk::Full
            } else {
                let raw = reader.take(WORDS * 8);
                let mut words = Box::new([0u64; WORDS]);
                for (w, b) in words.iter_mut().zip(raw.chunks_exact(8)) {
                    *w = u64::from_le_bytes(b.try_into().expect("eight bytes"));
                }
                Chunk::Bits {
                    words,
                    len: len as u32,
                }
            };
            chunks.push(chunk);
        }
        Chunks {
            chunks,
            len: bitmap.len(),
        }
    }

    /// The roaring bitmap of these chunks, written through its portable serialization.
    pub(crate) fn to_roaring(&self) -> RoaringBitmap {
        // The roaring format's containers: an array up to 4,096 members, else a bitset.
        let present: Vec<(usize, Container<'_>)> = self
            .chunks
            .iter()
            .enumerate()
            .filter_map(|(k, c)| {
                let container = match c.as_ref() {
                    ChunkRef::Empty => return None,
                    ChunkRef::Array(a) => Container::Array(a.into()),
                    ChunkRef::Bits(w, n) if n as usize <= ROARING_ARRAY_LIMIT => {
                        Container::Array(super::kernels::bits_to_array(w, n as usize).into())
                    }
                    ChunkRef::Bits(w, n) => Container::Bits(w, n),
                    ChunkRef::Full => Container::Full,
                };
                Some((k, container))
            })
            .collect();
        let bytes = |c: &Container<'_>| match c {
            Container::Array(a) => a.len() * 2,
            _ => WORDS * 8,
        };
        let body: usize = present.iter().map(|(_, c)| bytes(c)).sum();
        let mut out = Vec::with_capacity(8 + present.len() * 8 + body);
        out.extend(COOKIE_NO_RUNS.to_le_bytes());
        out.extend((present.len() as u32).to_le_bytes());
        for (k, c) in &present {
            out.extend((*k as u16).to_le_bytes());
            out.extend(((c.len() - 1) as u16).to_le_bytes());
        }
        let mut offset = (8 + present.len() * 8) as u32;
        for (_, c) in &present {
            out.extend(offset.to_le_bytes());
            offset += bytes(c) as u32;
        }
        for (_, c) in &present {
            match c {
                Container::Array(a) => a.iter().for_each(|v| out.extend(v.to_le_bytes())),
                Container::Bits(words, _) => words.iter().for_each(|w| out.extend(w.to_le_bytes())),
                Container::Full => out.extend(std::iter::repeat_n(0xFFu8, WORDS * 8)),
            }
        }
        RoaringBitmap::deserialize_unchecked_from(&out[..])
            .expect("chunks serialize to a valid bitmap")
    }
}

/// Little-endian reads over a serialization roaring-rs wrote itself.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        out
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take(2).try_into().expect("two bytes"))
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().expect("four bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bitmap(parts: &[(u32, u32, u32)]) -> RoaringBitmap {
        // (chunk, how many, stride) -> members
        let mut b = RoaringBitmap::new();
        for &(chunk, n, stride) in parts {
            let base = chunk * CHUNK_BITS;
            b.extend((0..n).map(|i| base + (i * stride) % CHUNK_BITS));
        }
        b
    }

    #[test]
    fn every_container_kind_round_trips() {
        // array, bitset, full, and a run container after optimize()
        let mut b = bitmap(&[(0, 100, 7), (1, 20_000, 3), (3, 65_536, 1)]);
        b.insert_range(5 * CHUNK_BITS + 10..5 * CHUNK_BITS + 30_000);
        for optimized in [false, true] {
            if optimized {
                b.optimize();
            }
            let chunks = Chunks::from_roaring(&b);
            assert_eq!(chunks.len(), b.len());
            assert!(matches!(chunks.get(0), ChunkRef::Array(_)));
            assert!(matches!(chunks.get(1), ChunkRef::Bits(..)));
            assert!(matches!(chunks.get(2), ChunkRef::Empty));
            assert!(matches!(chunks.get(3), ChunkRef::Full));
            assert!(matches!(chunks.get(9), ChunkRef::Empty));
            assert_eq!(chunks.to_roaring(), b);
        }
    }

    proptest! {
        #[test]
        fn round_trips(members in proptest::collection::vec(0u32..400_000, 0..3000),
                       ranges in proptest::collection::vec((0u32..300_000, 0u32..70_000), 0..3)) {
            let mut b: RoaringBitmap = members.into_iter().collect();
            for (start, n) in ranges {
                b.insert_range(start..start + n);
            }
            b.optimize();
            let chunks = Chunks::from_roaring(&b);
            prop_assert_eq!(chunks.len(), b.len());
            for m in b.iter().take(200) {
                prop_assert!(chunks.get((m >> 16) as usize).contains(m as u16));
            }
            prop_assert_eq!(chunks.to_roaring(), b);
        }
    }
}
