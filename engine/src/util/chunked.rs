//! A vector stored in chunks of 65,536 elements shared copy-on-write.
//!
//! Cloning a [`ChunkedVec`] copies one pointer per chunk, so a snapshot of a column of ten
//! million values costs about 150 reference-count increments. Changing an element copies
//! only its chunk, and only while a snapshot (a checkpoint being written) still holds that
//! chunk; otherwise it is changed in place. This is what lets a checkpoint write a consistent
//! state while writers go on: each writer pays for at most the chunks it touches.
//!
//! A chunk may also be a slice of a memory-mapped file ([`ChunkedVec::from_mapped`]): open
//! then takes a saved column without reading or copying it, and the first change to such a
//! chunk copies it to the heap like a shared one.

use std::ops::{Deref, Range};
use std::sync::Arc;

use bytes::Bytes;

use super::sections::{Section, SectionReader, SectionWriter};

/// log2 of the elements per chunk.
pub(crate) const CHUNK_SHIFT: usize = 16;
/// Elements per chunk (the last chunk may hold fewer).
pub(crate) const CHUNK_LEN: usize = 1 << CHUNK_SHIFT;
const MASK: usize = CHUNK_LEN - 1;

/// A value a [`ChunkedVec`] holds: plain bytes, so a chunk can be written out and mapped
/// back in.
pub(crate) trait Plain: Copy + Send + Sync + 'static {
    /// `bytes` as values without copying, where they are aligned and valid for the type.
    fn view(bytes: &[u8]) -> Option<&[Self]>;
    /// `bytes` copied into values, where every one is valid for the type.
    fn copy_from(bytes: &[u8]) -> Option<Vec<Self>>;
    /// The values as bytes (native byte order).
    fn bytes_of(values: &[Self]) -> &[u8];
}

macro_rules! plain_numbers {
    ($($t:ty),*) => {$(
        impl Plain for $t {
            #[inline]
            fn view(bytes: &[u8]) -> Option<&[Self]> {
                bytemuck::try_cast_slice(bytes).ok()
            }
            fn copy_from(bytes: &[u8]) -> Option<Vec<Self>> {
                let size = std::mem::size_of::<Self>();
                bytes.len().is_multiple_of(size).then(|| {
                    bytes.chunks_exact(size).map(bytemuck::pod_read_unaligned).collect()
                })
            }
            fn bytes_of(values: &[Self]) -> &[u8] {
                bytemuck::cast_slice(values)
            }
        }
    )*};
}
plain_numbers!(u8, u16, u32, u64, i32, i64, f64);

/// Booleans are one byte, 0 or 1; mapped bytes are checked and copied, never viewed.
impl Plain for bool {
    fn view(_: &[u8]) -> Option<&[Self]> {
        None
    }
    fn copy_from(bytes: &[u8]) -> Option<Vec<Self>> {
        bytes
            .iter()
            .map(|b| match b {
                0 => Some(false),
                1 => Some(true),
                _ => None,
            })
            .collect()
    }
    fn bytes_of(values: &[Self]) -> &[u8] {
        bytemuck::cast_slice(values)
    }
}

/// The elements of one chunk: on the heap, or in a mapped file (read-only).
enum Chunk<T> {
    Owned(Vec<T>),
    /// Bytes aligned for `T`, a whole number of elements long (checked when made).
    Mapped(Bytes),
}

impl<T: Plain> Deref for Chunk<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Mapped(bytes) => T::view(bytes).expect("checked when mapped"),
        }
    }
}

/// Cloning copies the elements to the heap: it is what a change to a shared or mapped
/// chunk does first.
impl<T: Plain> Clone for Chunk<T> {
    fn clone(&self) -> Self {
        Chunk::Owned(self.to_vec())
    }
}

impl<T: Plain> Chunk<T> {
    /// The heap vector of a chunk held by `slot`, copied first when another holder shares
    /// it or when it is mapped.
    #[inline]
    fn owned(slot: &mut Arc<Chunk<T>>) -> &mut Vec<T> {
        if matches!(**slot, Chunk::Mapped(_)) {
            let copy = (**slot).clone();
            *slot = Arc::new(copy);
        }
        match Arc::make_mut(slot) {
            Chunk::Owned(v) => v,
            Chunk::Mapped(_) => unreachable!("mapped chunks were copied above"),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Chunk::Owned(v) => v.capacity() * std::mem::size_of::<T>() + 16,
            Chunk::Mapped(_) => 16,
        }
    }
}

/// A growable vector of plain values in shared chunks. Invariant: every chunk but the last
/// holds exactly [`CHUNK_LEN`] elements, and `len` is the sum of the chunks' lengths.
#[derive(Clone)]
pub(crate) struct ChunkedVec<T: Plain> {
    chunks: Vec<Arc<Chunk<T>>>,
    len: usize,
}

impl<T: Plain> Default for ChunkedVec<T> {
    fn default() -> Self {
        ChunkedVec {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Plain + PartialEq> PartialEq for ChunkedVec<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: Plain + Eq> Eq for ChunkedVec<T> {}

impl<T: Plain> std::fmt::Debug for ChunkedVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkedVec")
            .field("len", &self.len)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

impl<T: Plain> FromIterator<T> for ChunkedVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut v = ChunkedVec::default();
        v.extend(iter);
        v
    }
}

impl<T: Plain> std::ops::Index<usize> for ChunkedVec<T> {
    type Output = T;
    #[inline]
    fn index(&self, index: usize) -> &T {
        debug_assert!(index < self.len);
        &self.chunks[index >> CHUNK_SHIFT][index & MASK]
    }
}

/// Writing through an index copies the element's chunk first if a clone shares it.
impl<T: Plain> std::ops::IndexMut<usize> for ChunkedVec<T> {
    #[inline]
    fn index_mut(&mut self, index: usize) -> &mut T {
        self.get_mut(index)
    }
}

impl<T: Plain> ChunkedVec<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn last(&self) -> Option<T> {
        self.len.checked_sub(1).map(|i| self[i])
    }

    /// A mutable reference to the element at `index`, copying its chunk first if a clone
    /// shares it.
    #[inline]
    pub(crate) fn get_mut(&mut self, index: usize) -> &mut T {
        assert!(index < self.len, "index {index} out of {}", self.len);
        &mut Chunk::owned(&mut self.chunks[index >> CHUNK_SHIFT])[index & MASK]
    }

    #[inline]
    pub(crate) fn set(&mut self, index: usize, value: T) {
        *self.get_mut(index) = value;
    }

    /// The last chunk with room for at least one more element, owned by this vector.
    fn tail_with_room(&mut self) -> &mut Vec<T> {
        if self.len & MASK == 0 {
            self.chunks.push(Arc::new(Chunk::Owned(Vec::new())));
        }
        let tail = Chunk::owned(self.chunks.last_mut().expect("just pushed"));
        if tail.len() == tail.capacity() {
            // Double, up to a whole chunk: small vectors stay small.
            let more = tail.len().max(8).min(CHUNK_LEN - tail.len());
            tail.reserve_exact(more);
        }
        tail
    }

    pub(crate) fn push(&mut self, value: T) {
        self.tail_with_room().push(value);
        self.len += 1;
    }

    pub(crate) fn extend_from_slice(&mut self, mut values: &[T]) {
        while !values.is_empty() {
            let tail = self.tail_with_room();
            let room = CHUNK_LEN - tail.len();
            let n = room.min(values.len());
            tail.extend_from_slice(&values[..n]);
            self.len += n;
            values = &values[n..];
        }
    }

    pub(crate) fn extend(&mut self, values: impl IntoIterator<Item = T>) {
        for v in values {
            self.push(v);
        }
    }

    /// Appends `count` copies of `value`.
    pub(crate) fn extend_constant(&mut self, value: T, count: usize) {
        let mut left = count;
        while left > 0 {
            let tail = self.tail_with_room();
            let n = (CHUNK_LEN - tail.len()).min(left);
            tail.resize(tail.len() + n, value);
            self.len += n;
            left -= n;
        }
    }

    /// Grows to `new_len` with copies of `value`, or cuts to it.
    pub(crate) fn resize(&mut self, new_len: usize, value: T) {
        if new_len >= self.len {
            self.extend_constant(value, new_len - self.len);
        } else {
            self.truncate(new_len);
        }
    }

    pub(crate) fn truncate(&mut self, new_len: usize) {
        if new_len >= self.len {
            return;
        }
        let chunks = new_len.div_ceil(CHUNK_LEN);
        self.chunks.truncate(chunks);
        if let Some(tail) = self.chunks.last_mut() {
            let keep = new_len - (chunks - 1) * CHUNK_LEN;
            if tail.len() > keep {
                Chunk::owned(tail).truncate(keep);
            }
        }
        self.len = new_len;
    }

    /// Makes room for `additional` more elements in the chunk list (not the elements).
    pub(crate) fn reserve(&mut self, additional: usize) {
        let chunks = (self.len + additional).div_ceil(CHUNK_LEN);
        self.chunks
            .reserve_exact(chunks.saturating_sub(self.chunks.len()));
    }

    /// Every element in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.chunks.iter().flat_map(|c| c.iter().copied())
    }

    /// The elements of `range` as at most one slice per chunk, in order.
    pub(crate) fn slices(&self, range: Range<usize>) -> impl Iterator<Item = &[T]> + '_ {
        debug_assert!(range.start <= range.end && range.end <= self.len);
        let (mut at, end) = (range.start, range.end);
        std::iter::from_fn(move || {
            if at >= end {
                return None;
            }
            let offset = at & MASK;
            let n = (CHUNK_LEN - offset).min(end - at);
            let slice = &self.chunks[at >> CHUNK_SHIFT][offset..offset + n];
            at += n;
            Some(slice)
        })
    }

    /// The elements of `range`, in order.
    pub(crate) fn range(&self, range: Range<usize>) -> impl Iterator<Item = T> + '_ {
        self.slices(range).flat_map(|s| s.iter().copied())
    }

    /// The elements at `indexes` (ascending), in that order: one tight loop per chunk, so
    /// the reads of scattered elements overlap instead of waiting on each other.
    pub(crate) fn gather(&self, indexes: &[u32]) -> Vec<T> {
        let mut out = Vec::with_capacity(indexes.len());
        let mut rest = indexes;
        while let Some(&first) = rest.first() {
            let chunk_index = first as usize >> CHUNK_SHIFT;
            let n = rest.partition_point(|&i| i as usize >> CHUNK_SHIFT == chunk_index);
            let chunk: &[T] = &self.chunks[chunk_index];
            out.extend(rest[..n].iter().map(|&i| chunk[i as usize & MASK]));
            rest = &rest[n..];
        }
        out
    }

    /// Writes `values[k]` at `indexes[k]` (`indexes` ascending), copying each chunk a clone
    /// shares at most once.
    pub(crate) fn scatter(&mut self, indexes: &[u32], values: &[T]) {
        assert_eq!(indexes.len(), values.len());
        assert!(indexes.last().is_none_or(|&i| (i as usize) < self.len));
        let (mut rest, mut values) = (indexes, values);
        while let Some(&first) = rest.first() {
            let chunk_index = first as usize >> CHUNK_SHIFT;
            let n = rest.partition_point(|&i| i as usize >> CHUNK_SHIFT == chunk_index);
            let chunk = Chunk::owned(&mut self.chunks[chunk_index]);
            for (&i, &v) in rest[..n].iter().zip(&values[..n]) {
                chunk[i as usize & MASK] = v;
            }
            (rest, values) = (&rest[n..], &values[n..]);
        }
    }

    /// Overwrites the elements from `start` with `values`.
    pub(crate) fn copy_from_slice(&mut self, start: usize, mut values: &[T]) {
        assert!(start + values.len() <= self.len);
        let mut at = start;
        while !values.is_empty() {
            let offset = at & MASK;
            let n = (CHUNK_LEN - offset).min(values.len());
            let chunk = Chunk::owned(&mut self.chunks[at >> CHUNK_SHIFT]);
            chunk[offset..offset + n].copy_from_slice(&values[..n]);
            at += n;
            values = &values[n..];
        }
    }

    /// The first index whose element fails `pred`, for a vector partitioned by it (all
    /// passing elements first), as [`slice::partition_point`].
    pub(crate) fn partition_point(&self, pred: impl FnMut(&T) -> bool) -> usize {
        self.partition_point_before(self.len, pred)
    }

    /// [`ChunkedVec::partition_point`] of the first `end` elements (which alone need be
    /// partitioned).
    pub(crate) fn partition_point_before(
        &self,
        end: usize,
        mut pred: impl FnMut(&T) -> bool,
    ) -> usize {
        let end = end.min(self.len);
        if end == 0 {
            return 0;
        }
        // The chunk holding the point (by each chunk's first element), then a search
        // inside that chunk's slice: no chunk lookup per step.
        let chunks = &self.chunks[..=(end - 1) >> CHUNK_SHIFT];
        let first_failing = chunks.partition_point(|c| pred(&c[0]));
        let Some(chunk) = first_failing.checked_sub(1) else {
            return 0;
        };
        let start = chunk << CHUNK_SHIFT;
        let slice = &chunks[chunk][..(end - start).min(CHUNK_LEN)];
        start + slice.partition_point(pred)
    }

    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len);
        for chunk in &self.chunks {
            out.extend_from_slice(&chunk[..]);
        }
        out
    }

    /// Heap bytes held (a chunk shared with a snapshot counts here too).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Arc<Chunk<T>>>()
            + self.chunks.iter().map(|c| c.heap_bytes()).sum::<usize>()
    }

    /// Bytes of the chunks that are mapped from a file rather than on the heap.
    pub(crate) fn mapped_bytes(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| match &**c {
                Chunk::Mapped(bytes) => bytes.len(),
                Chunk::Owned(_) => 0,
            })
            .sum()
    }

    /// The elements as bytes (native byte order), a chunk at a time: what
    /// [`ChunkedVec::from_mapped`] takes back.
    pub(crate) fn byte_slices(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.chunks.iter().map(|c| T::bytes_of(c))
    }

    /// Writes the elements as one section.
    pub(crate) fn save(&self, out: &mut SectionWriter<'_>) -> std::io::Result<Section> {
        out.section(self.byte_slices())
    }

    /// The `len` elements of a section [`ChunkedVec::save`] wrote, mapped where they can be.
    pub(crate) fn restore(file: &SectionReader, at: Section, len: usize) -> Result<Self, String> {
        Self::from_mapped(file.get(at)?, len)
    }

    /// A vector of `len` elements whose chunks are slices of `bytes` (a mapped file, say),
    /// without copying. `bytes` must hold exactly `len` valid elements; bytes that cannot be
    /// viewed in place (not aligned for `T`, or booleans) are checked and copied instead.
    pub(crate) fn from_mapped(bytes: Bytes, len: usize) -> Result<Self, String> {
        let size = std::mem::size_of::<T>();
        if Some(bytes.len()) != len.checked_mul(size) {
            return Err(format!(
                "{} bytes cannot hold {len} values of {size} bytes",
                bytes.len()
            ));
        }
        if T::view(&bytes).is_none() {
            let values = T::copy_from(&bytes).ok_or("invalid values")?;
            let mut copy = ChunkedVec::default();
            copy.extend_from_slice(&values);
            return Ok(copy);
        }
        let chunks = (0..len.div_ceil(CHUNK_LEN))
            .map(|i| {
                let start = i * CHUNK_LEN * size;
                let end = (start + CHUNK_LEN * size).min(bytes.len());
                Arc::new(Chunk::Mapped(bytes.slice(start..end)))
            })
            .collect();
        Ok(ChunkedVec { chunks, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_clone_keeps_its_values_while_the_original_changes() {
        let mut v: ChunkedVec<u32> = (0..200_000).collect();
        let snapshot = v.clone();
        v.set(70_000, 7);
        v.push(1);
        v.copy_from_slice(199_990, &[5; 11]);
        assert_eq!(snapshot[70_000], 70_000);
        assert_eq!(snapshot.len(), 200_000);
        assert_eq!(snapshot[199_999], 199_999);
        assert_eq!(v[70_000], 7);
        assert_eq!(v[200_000], 5);
        // only the touched chunks were copied
        assert!(Arc::ptr_eq(&v.chunks[0], &snapshot.chunks[0]));
        assert!(!Arc::ptr_eq(&v.chunks[1], &snapshot.chunks[1]));
    }

    #[test]
    fn a_mapped_vector_reads_in_place_and_copies_the_chunks_it_changes() {
        let values: Vec<u32> = (0..150_000).map(|i| i * 3).collect();
        let saved: ChunkedVec<u32> = values.iter().copied().collect();
        let bytes = Bytes::from(saved.byte_slices().flatten().copied().collect::<Vec<u8>>());
        let mut v: ChunkedVec<u32> = ChunkedVec::from_mapped(bytes.clone(), values.len()).unwrap();
        assert_eq!(v.to_vec(), values);
        assert_eq!(v.mapped_bytes(), bytes.len());
        v.set(70_000, 1);
        v.push(9);
        v.truncate(140_000);
        v.push(10);
        let mut model = values.clone();
        model[70_000] = 1;
        model.truncate(140_000);
        model.push(10);
        assert_eq!(v.to_vec(), model);
        // the first chunk is still read in place; the changed and the tail were copied
        assert_eq!(v.mapped_bytes(), CHUNK_LEN * 4);
        assert_eq!(
            &bytes[..],
            &saved.byte_slices().flatten().copied().collect::<Vec<u8>>()[..]
        );

        // bytes not aligned for the type are copied; a wrong length is refused
        let unaligned = Bytes::from(vec![0u8; 17]).slice(1..17);
        let copied: ChunkedVec<u32> = ChunkedVec::from_mapped(unaligned, 4).unwrap();
        assert_eq!((copied.to_vec(), copied.mapped_bytes()), (vec![0; 4], 0));
        assert!(ChunkedVec::<u64>::from_mapped(Bytes::from(vec![0u8; 12]), 2).is_err());
        // booleans are checked
        let bools: ChunkedVec<bool> =
            ChunkedVec::from_mapped(Bytes::from(vec![0, 1, 1]), 3).unwrap();
        assert_eq!(bools.to_vec(), vec![false, true, true]);
        assert!(ChunkedVec::<bool>::from_mapped(Bytes::from(vec![0, 2]), 2).is_err());
    }

    #[test]
    fn gather_and_scatter_read_and_write_scattered_elements_across_chunks() {
        let mut v: ChunkedVec<u32> = (0..200_000).collect();
        let snapshot = v.clone();
        let at = [3u32, 65_535, 65_536, 70_000, 199_999];
        assert_eq!(v.gather(&at), at.to_vec());
        assert_eq!(v.gather(&[]), Vec::<u32>::new());
        v.scatter(&at, &[1, 2, 3, 4, 5]);
        assert_eq!(v.gather(&at), vec![1, 2, 3, 4, 5]);
        assert_eq!((v[2], v[65_537], v[199_998]), (2, 65_537, 199_998));
        // the snapshot keeps its values; the chunk nothing was written to is still shared
        assert_eq!(snapshot.gather(&at), at.to_vec());
        assert!(Arc::ptr_eq(&v.chunks[2], &snapshot.chunks[2]));
    }

    proptest! {
        #[test]
        fn behaves_like_a_vec(
            ops in proptest::collection::vec((0u8..6, 0usize..300_000, any::<u16>()), 1..40)
        ) {
            let mut model: Vec<u16> = Vec::new();
            let mut v = ChunkedVec::default();
            for (op, n, x) in ops {
                match op {
                    0 => { model.push(x); v.push(x); }
                    1 => {
                        let n = n % 70_000;
                        model.resize(model.len() + n, x);
                        v.extend_constant(x, n);
                    }
                    2 => { model.truncate(n); v.truncate(n); }
                    3 if !model.is_empty() => {
                        let i = n % model.len();
                        model[i] = x;
                        v.set(i, x);
                    }
                    4 => {
                        let extra: Vec<u16> = (0..n % 1000).map(|k| k as u16 ^ x).collect();
                        model.extend_from_slice(&extra);
                        v.extend_from_slice(&extra);
                    }
                    _ => { model.resize(n % 150_000, x); v.resize(n % 150_000, x); }
                }
                prop_assert_eq!(v.len(), model.len());
            }
            prop_assert_eq!(v.to_vec(), model.clone());
            let (a, b) = (model.len() / 3, model.len() / 3 * 2);
            prop_assert_eq!(v.range(a..b).collect::<Vec<_>>(), model[a..b].to_vec());
            let mut sorted = model.clone();
            sorted.sort_unstable();
            let sorted_v: ChunkedVec<u16> = sorted.iter().copied().collect();
            let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
            let fifth = sorted.get(sorted.len() / 5).copied().unwrap_or(0);
            for pivot in [0, 1, median, fifth, 12_345, u16::MAX] {
                prop_assert_eq!(
                    sorted_v.partition_point(|&t| t < pivot),
                    sorted.partition_point(|&t| t < pivot)
                );
                for end in [0, 1, sorted.len() / 2, sorted.len().saturating_sub(1), sorted.len()] {
                    let end = end.min(sorted.len());
                    prop_assert_eq!(
                        sorted_v.partition_point_before(end, |&t| t <= pivot),
                        sorted[..end].partition_point(|&t| t <= pivot)
                    );
                }
            }
        }
    }
}
