//! A `QUANTILE` trait kept by writes and clock moves without ranking everyone again: the
//! ranked members in key order (in blocks, so a key moves in `O(sqrt n)`), each member's
//! key, and the scores' boundaries.
//!
//! With n ranked members and k scores, a member's score is 1 + the number of `s` in
//! `1..k` with `key > B(s)`, where `B(s)` is the key of rank `ceil(s * n / k)` (the
//! `ceil(s * n / k)`-th smallest): `floor(k * less / n) >= s` exactly when at least
//! `ceil(s * n / k)` keys are smaller. So when a change moves some keys, a member's score
//! changes only if its own key moved or its key lies between an old and a new boundary:
//! those few members are found here, in key order, and scored again, nobody else.

use roaring::RoaringBitmap;

use crate::members::RowId;

/// Ranked members as `(key, row)` in ascending order, in blocks of at most [`BLOCK`].
#[derive(Clone, Debug, Default)]
pub(crate) struct SortedKeys {
    blocks: Vec<Vec<(i64, RowId)>>,
    len: usize,
}

const BLOCK: usize = 2048;

/// The 0-based ranks whose keys are the boundaries `B(s)`, `s = 1..k`, of `n` ranked keys
/// (none when nobody is ranked).
pub(crate) fn boundary_ranks(n: usize, k: u32) -> impl Iterator<Item = usize> {
    let n = n as u64;
    (1..u64::from(k))
        .filter(move |_| n > 0)
        // c = ceil(s * n / k) >= 1 for s >= 1 and n >= 1.
        .map(move |s| (s * n).div_ceil(u64::from(k)) as usize - 1)
}

impl SortedKeys {
    /// From `(key, row)` pairs in ascending order.
    pub(crate) fn from_sorted(pairs: Vec<(i64, RowId)>) -> Self {
        let len = pairs.len();
        SortedKeys {
            blocks: pairs.chunks(BLOCK / 2).map(<[_]>::to_vec).collect(),
            len,
        }
    }

    /// The block `pair` belongs in: the first whose last pair is at least `pair`.
    fn block_of(&self, pair: (i64, RowId)) -> usize {
        let b = self
            .blocks
            .partition_point(|b| b.last().is_some_and(|&last| last < pair));
        b.min(self.blocks.len().saturating_sub(1))
    }

    pub(crate) fn insert(&mut self, key: i64, row: RowId) {
        if self.blocks.is_empty() {
            self.blocks.push(Vec::with_capacity(BLOCK));
        }
        let pair = (key, row);
        let b = self.block_of(pair);
        let block = &mut self.blocks[b];
        let at = block.partition_point(|&p| p < pair);
        block.insert(at, pair);
        if block.len() > BLOCK {
            let upper = block.split_off(BLOCK / 2);
            self.blocks.insert(b + 1, upper);
        }
        self.len += 1;
    }

    /// Removes member `row` ranked with `key` (it must be there).
    pub(crate) fn remove(&mut self, key: i64, row: RowId) {
        let pair = (key, row);
        let b = self.block_of(pair);
        let block = &mut self.blocks[b];
        let at = block.partition_point(|&p| p < pair);
        debug_assert_eq!(block.get(at), Some(&pair), "a ranked member is removed");
        if block.get(at) == Some(&pair) {
            block.remove(at);
            self.len -= 1;
            if block.is_empty() {
                self.blocks.remove(b);
            }
        }
    }

    /// The key of rank `i` (0-based).
    pub(crate) fn select(&self, mut i: usize) -> i64 {
        for block in &self.blocks {
            if i < block.len() {
                return block[i].0;
            }
            i -= block.len();
        }
        i64::MAX
    }

    /// The boundaries `B(s)`, `s = 1..k` (none when nobody is ranked).
    pub(crate) fn boundaries(&self, k: u32) -> Vec<i64> {
        boundary_ranks(self.len, k)
            .map(|c| self.select(c))
            .collect()
    }

    /// The members whose key is in `(lo, hi]`.
    pub(crate) fn rows_between(&self, lo: i64, hi: i64) -> impl Iterator<Item = RowId> + '_ {
        let first = self
            .blocks
            .partition_point(|b| b.last().is_some_and(|&(k, _)| k <= lo));
        self.blocks[first..]
            .iter()
            .flat_map(|b| b.iter())
            .skip_while(move |&&(k, _)| k <= lo)
            .take_while(move |&&(k, _)| k <= hi)
            .map(|&(_, row)| row)
    }
}

/// The score of `key` given the boundaries.
pub(crate) fn score(key: i64, boundaries: &[i64]) -> i64 {
    1 + boundaries.iter().filter(|&&b| key > b).count() as i64
}

/// The ranked members of a `QUANTILE` trait and their keys.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ranks {
    /// Members in `OVER` with a value.
    pub(crate) members: RoaringBitmap,
    /// Each member's key (`DESC`: negated), meaningful for `members`.
    pub(crate) keys: Vec<i64>,
    pub(crate) sorted: SortedKeys,
}

impl Ranks {
    /// From each ranked member's key, in row order.
    pub(crate) fn new(ranked: &[(RowId, i64)], rows: usize) -> Self {
        let mut keys = vec![0i64; rows];
        let mut members = RoaringBitmap::new();
        for &(row, key) in ranked {
            keys[row as usize] = key;
            members.insert(row);
        }
        let mut sorted: Vec<(i64, RowId)> = ranked.iter().map(|&(row, key)| (key, row)).collect();
        sorted.sort_unstable();
        Ranks {
            members,
            keys,
            sorted: SortedKeys::from_sorted(sorted),
        }
    }

    /// Member `row`'s key, if ranked.
    pub(crate) fn key(&self, row: RowId) -> Option<i64> {
        self.members
            .contains(row)
            .then(|| self.keys.get(row as usize).copied())
            .flatten()
    }

    /// Sets member `row`'s key (`None`: not ranked).
    pub(crate) fn set(&mut self, row: RowId, key: Option<i64>) {
        if let Some(old) = self.key(row) {
            self.sorted.remove(old, row);
            self.members.remove(row);
        }
        if let Some(new) = key {
            let r = row as usize;
            if r >= self.keys.len() {
                self.keys.resize(r + 1, 0);
            }
            self.keys[r] = new;
            self.members.insert(row);
            self.sorted.insert(new, row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scores from the boundaries equal DESIGN's formula over the sorted keys, for
    /// every key, through inserts and removes.
    #[test]
    fn boundaries_give_the_scores_of_the_formula() {
        let mut keys: Vec<(i64, RowId)> = Vec::new();
        let mut sorted = SortedKeys::default();
        let mut x = 12345u64;
        for step in 0..6000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = (x >> 33) as i64 % 50;
            if step % 3 == 2 && !keys.is_empty() {
                let (gone, row) = keys.remove((x >> 20) as usize % keys.len());
                sorted.remove(gone, row);
            } else {
                keys.push((key, step));
                sorted.insert(key, step);
            }
            if step % 500 != 0 {
                continue;
            }
            let mut all: Vec<i64> = keys.iter().map(|p| p.0).collect();
            all.sort_unstable();
            for (lo, hi) in [(-1, 3), (10, 10), (10, 11), (20, 35), (48, 60)] {
                let mut expected: Vec<RowId> = keys
                    .iter()
                    .filter(|&&(k, _)| lo < k && k <= hi)
                    .map(|p| p.1)
                    .collect();
                let mut found: Vec<RowId> = sorted.rows_between(lo, hi).collect();
                expected.sort_unstable();
                found.sort_unstable();
                assert_eq!(found, expected, "rows with keys in ({lo}, {hi}]");
            }
            let n = all.len() as u64;
            for k in [1u32, 3, 4, 10] {
                let b = sorted.boundaries(k);
                for &key in &all {
                    let less = all.partition_point(|&y| y < key) as u64;
                    let expected = 1 + (u64::from(k) * less / n) as i64;
                    assert_eq!(score(key, &b), expected, "k {k} key {key}");
                }
            }
        }
    }
}
