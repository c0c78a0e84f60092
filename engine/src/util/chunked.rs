//! A vector stored in chunks of 65,536 elements shared copy-on-write.
//!
//! Cloning a [`ChunkedVec`] copies one pointer per chunk, so a snapshot of a column of ten
//! million values costs about 150 reference-count increments. Changing an element copies
//! only its chunk, and only while a snapshot (a checkpoint being written) still holds that
//! chunk; otherwise it is changed in place. This is what lets a checkpoint write a consistent
//! state while writers go on: each writer pays for at most the chunks it touches.

use std::ops::Range;
use std::sync::Arc;

/// log2 of the elements per chunk.
pub(crate) const CHUNK_SHIFT: usize = 16;
/// Elements per chunk (the last chunk may hold fewer).
pub(crate) const CHUNK_LEN: usize = 1 << CHUNK_SHIFT;
const MASK: usize = CHUNK_LEN - 1;

/// A growable vector of `Copy` values in shared chunks. Invariant: every chunk but the last
/// holds exactly [`CHUNK_LEN`] elements, and `len` is the sum of the chunks' lengths.
#[derive(Clone)]
pub(crate) struct ChunkedVec<T> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T> Default for ChunkedVec<T> {
    fn default() -> Self {
        ChunkedVec {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Copy + PartialEq> PartialEq for ChunkedVec<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: Copy + Eq> Eq for ChunkedVec<T> {}

impl<T> std::fmt::Debug for ChunkedVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkedVec")
            .field("len", &self.len)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

impl<T: Copy> FromIterator<T> for ChunkedVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut v = ChunkedVec::default();
        v.extend(iter);
        v
    }
}

impl<T: Copy> std::ops::Index<usize> for ChunkedVec<T> {
    type Output = T;
    #[inline]
    fn index(&self, index: usize) -> &T {
        debug_assert!(index < self.len);
        &self.chunks[index >> CHUNK_SHIFT][index & MASK]
    }
}

/// Writing through an index copies the element's chunk first if a clone shares it.
impl<T: Copy> std::ops::IndexMut<usize> for ChunkedVec<T> {
    #[inline]
    fn index_mut(&mut self, index: usize) -> &mut T {
        self.get_mut(index)
    }
}

impl<T: Copy> ChunkedVec<T> {
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
        &mut Arc::make_mut(&mut self.chunks[index >> CHUNK_SHIFT])[index & MASK]
    }

    #[inline]
    pub(crate) fn set(&mut self, index: usize, value: T) {
        *self.get_mut(index) = value;
    }

    /// The last chunk with room for at least one more element, owned by this vector.
    fn tail_with_room(&mut self) -> &mut Vec<T> {
        if self.len & MASK == 0 {
            self.chunks.push(Arc::new(Vec::new()));
        }
        let tail = Arc::make_mut(self.chunks.last_mut().expect("just pushed"));
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
                Arc::make_mut(tail).truncate(keep);
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

    /// Overwrites the elements from `start` with `values`.
    pub(crate) fn copy_from_slice(&mut self, start: usize, mut values: &[T]) {
        assert!(start + values.len() <= self.len);
        let mut at = start;
        while !values.is_empty() {
            let offset = at & MASK;
            let n = (CHUNK_LEN - offset).min(values.len());
            let chunk = Arc::make_mut(&mut self.chunks[at >> CHUNK_SHIFT]);
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
        let (mut lo, mut hi) = (0, end.min(self.len));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(&self[mid]) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len);
        for chunk in &self.chunks {
            out.extend_from_slice(chunk);
        }
        out
    }

    /// Heap bytes held (a chunk shared with a snapshot counts here too).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Arc<Vec<T>>>()
            + self
                .chunks
                .iter()
                .map(|c| c.capacity() * std::mem::size_of::<T>() + 16)
                .sum::<usize>()
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
            let pivot = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
            prop_assert_eq!(
                sorted_v.partition_point(|&t| t < pivot),
                sorted.partition_point(|&t| t < pivot)
            );
            let half = sorted.len() / 2;
            prop_assert_eq!(
                sorted_v.partition_point_before(half, |&t| t <= pivot),
                sorted[..half].partition_point(|&t| t <= pivot)
            );
        }
    }
}
