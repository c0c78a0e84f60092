//! A growable, packed vector of bits: the validity (non-NULL) mask of a column. Its words
//! are a [`ChunkedVec`], so a snapshot shares them copy-on-write.

use serde::{Deserialize, Serialize};

use super::chunked::ChunkedVec;
use super::sections::{Section, SectionReader, SectionWriter};

/// Where a saved [`BitVec`] lies in a column file.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct SavedBits {
    words: Section,
    len: u64,
}

/// Packed bits, 64 to a word.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BitVec {
    words: ChunkedVec<u64>,
    len: usize,
}

impl BitVec {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Room for `additional` more bits.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let words = (self.len + additional).div_ceil(64);
        self.words.reserve(words.saturating_sub(self.words.len()));
    }

    pub(crate) fn push(&mut self, bit: bool) {
        if self.len.is_multiple_of(64) {
            self.words.push(0);
        }
        if bit {
            *self.words.get_mut(self.len / 64) |= 1 << (self.len % 64);
        }
        self.len += 1;
    }

    /// Appends `count` copies of `bit`, a word at a time. Bits past `len` are always zero.
    pub(crate) fn extend_constant(&mut self, bit: bool, count: usize) {
        let new_len = self.len + count;
        if !bit {
            self.words.resize(new_len.div_ceil(64), 0);
            self.len = new_len;
            return;
        }
        while !self.len.is_multiple_of(64) && self.len < new_len {
            self.push(true);
        }
        let whole_words = (new_len - self.len) / 64;
        self.words.extend_constant(u64::MAX, whole_words);
        self.len += whole_words * 64;
        while self.len < new_len {
            self.push(true);
        }
    }

    #[inline]
    pub(crate) fn get(&self, index: usize) -> bool {
        debug_assert!(index < self.len);
        self.words[index / 64] & (1 << (index % 64)) != 0
    }

    /// Overwrites the bits from `start` with `bits`, a word at a time (a chunk is copied
    /// once if a snapshot shares it, not checked once per bit).
    pub(crate) fn set_from(&mut self, start: usize, bits: &[bool]) {
        debug_assert!(start + bits.len() <= self.len);
        let mut k = 0;
        while k < bits.len() {
            let at = start + k;
            let (word, offset) = (at / 64, at % 64);
            let n = (64 - offset).min(bits.len() - k);
            let mask = if n == 64 {
                u64::MAX
            } else {
                ((1u64 << n) - 1) << offset
            };
            let value = bits[k..k + n]
                .iter()
                .enumerate()
                .fold(0u64, |v, (j, &b)| v | (u64::from(b) << (offset + j)));
            let w = self.words.get_mut(word);
            *w = (*w & !mask) | value;
            k += n;
        }
    }

    pub(crate) fn set(&mut self, index: usize, bit: bool) {
        debug_assert!(index < self.len);
        let mask = 1 << (index % 64);
        if bit {
            *self.words.get_mut(index / 64) |= mask;
        } else {
            *self.words.get_mut(index / 64) &= !mask;
        }
    }

    /// True when every bit in `range` is set (a word at a time).
    pub(crate) fn all_set(&self, range: std::ops::Range<usize>) -> bool {
        debug_assert!(range.end <= self.len);
        let mut i = range.start;
        while i < range.end {
            let (word, bit) = (i / 64, i % 64);
            let n = (64 - bit).min(range.end - i);
            let mask = if n == 64 {
                u64::MAX
            } else {
                ((1u64 << n) - 1) << bit
            };
            if self.words[word] & mask != mask {
                return false;
            }
            i += n;
        }
        true
    }

    /// Heap bytes used.
    pub(crate) fn save(&self, out: &mut SectionWriter<'_>) -> std::io::Result<SavedBits> {
        Ok(SavedBits {
            words: self.words.save(out)?,
            len: self.len as u64,
        })
    }

    /// The bits [`BitVec::save`] wrote, mapped.
    pub(crate) fn restore(file: &SectionReader, saved: SavedBits) -> Result<Self, String> {
        let len = usize::try_from(saved.len).map_err(|_| "too many bits")?;
        let words = ChunkedVec::restore(file, saved.words, len.div_ceil(64))?;
        if words
            .last()
            .is_some_and(|w| len % 64 != 0 && w >> (len % 64) != 0)
        {
            return Err("bits set past the end of a bit vector".to_string());
        }
        Ok(BitVec { words, len })
    }

    pub(crate) fn mapped_bytes(&self) -> usize {
        self.words.mapped_bytes()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.words.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::BitVec;

    #[test]
    fn set_from_matches_setting_bit_by_bit() {
        for start in [0, 1, 63, 64, 70] {
            for len in [0, 1, 5, 64, 65, 130] {
                let mut a = BitVec::default();
                a.extend_constant(true, 300);
                let mut b = a.clone();
                let bits: Vec<bool> = (0..len).map(|i| i % 3 == 0).collect();
                a.set_from(start, &bits);
                for (k, &bit) in bits.iter().enumerate() {
                    b.set(start + k, bit);
                }
                assert_eq!(a, b, "start {start} len {len}");
            }
        }
    }

    #[test]
    fn push_get_set_across_words() {
        let mut bits = BitVec::default();
        for i in 0..130 {
            bits.push(i % 3 == 0);
        }
        assert_eq!(bits.len(), 130);
        assert!(bits.get(129) && !bits.get(128) && bits.get(0));
        bits.set(128, true);
        bits.set(0, false);
        assert!(bits.get(128) && !bits.get(0));
    }

    #[test]
    fn all_set_checks_exactly_the_range() {
        let mut bits = BitVec::default();
        bits.extend_constant(true, 200);
        bits.set(70, false);
        assert!(bits.all_set(0..70) && bits.all_set(71..200) && bits.all_set(70..70));
        assert!(!bits.all_set(0..71) && !bits.all_set(69..130) && !bits.all_set(70..71));
        assert!(bits.all_set(128..192) && bits.all_set(64..70));
    }

    #[test]
    fn extend_constant_matches_pushing_bit_by_bit() {
        for (start, count) in [(0, 0), (0, 64), (3, 61), (3, 200), (64, 1), (70, 130)] {
            for bit in [false, true] {
                let mut fast = BitVec::default();
                let mut slow = BitVec::default();
                for i in 0..start {
                    fast.push(i % 3 == 0);
                    slow.push(i % 3 == 0);
                }
                fast.extend_constant(bit, count);
                for _ in 0..count {
                    slow.push(bit);
                }
                assert_eq!(fast, slow, "start {start}, count {count}, {bit}");
            }
        }
    }
}
