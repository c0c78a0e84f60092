//! A growable, packed vector of bits: the validity (non-NULL) mask of a column.

/// Packed bits, 64 to a word.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BitVec {
    words: Vec<u64>,
    len: usize,
}

impl BitVec {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn push(&mut self, bit: bool) {
        if self.len.is_multiple_of(64) {
            self.words.push(0);
        }
        if bit {
            self.words[self.len / 64] |= 1 << (self.len % 64);
        }
        self.len += 1;
    }

    pub(crate) fn extend_constant(&mut self, bit: bool, count: usize) {
        // Word-at-a-time would be faster; loads are dominated by value conversion.
        for _ in 0..count {
            self.push(bit);
        }
    }

    #[inline]
    pub(crate) fn get(&self, index: usize) -> bool {
        debug_assert!(index < self.len);
        self.words[index / 64] & (1 << (index % 64)) != 0
    }

    pub(crate) fn set(&mut self, index: usize, bit: bool) {
        debug_assert!(index < self.len);
        let mask = 1 << (index % 64);
        if bit {
            self.words[index / 64] |= mask;
        } else {
            self.words[index / 64] &= !mask;
        }
    }

    /// Heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::BitVec;

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
}
