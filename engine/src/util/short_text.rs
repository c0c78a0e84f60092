//! Short ASCII text (8 to 16 bytes: phones, e-mail addresses and domains) as two overlapping
//! 8-byte words: copied, masked and searched with a few register operations instead of
//! calls to `memcpy`, `memset` and a byte loop, which cost more than the work on such text.

/// The first and last 8 bytes of a text of 8 to 16 bytes (they overlap below 16), each as a
/// little-endian word: byte `i` of the text is byte `i` of `head` (i < 8) and byte
/// `i - (len - 8)` of `tail`. Invariant: `8 <= len <= 16` (what [`Words::into_string`]'s
/// two stores rely on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Words {
    head: u64,
    tail: u64,
    len: usize,
}

const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
const LOW_BITS: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const ONES: u64 = 0x0101_0101_0101_0101;
/// Eight `*`.
pub(crate) const STARS: u64 = 0x2a2a_2a2a_2a2a_2a2a;

/// The 8 bytes of `bytes` from `at` as a little-endian word.
#[inline(always)]
pub(crate) fn word_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

impl Words {
    /// The text of `len` bytes whose first 8 are `head` and last 8 `tail`, when `len` is 8
    /// to 16.
    #[inline(always)]
    pub(crate) fn new(head: u64, tail: u64, len: usize) -> Option<Words> {
        (8..=16).contains(&len).then_some(Words { head, tail, len })
    }

    /// `bytes` as words when it has 8 to 16 bytes.
    #[inline(always)]
    pub(crate) fn of(bytes: &[u8]) -> Option<Words> {
        let len = bytes.len();
        (8..=16).contains(&len).then(|| Words {
            head: word_at(bytes, 0),
            tail: word_at(bytes, len - 8),
            len,
        })
    }

    /// Whether every byte is ASCII.
    #[inline(always)]
    pub(crate) fn is_ascii(&self) -> bool {
        (self.head | self.tail) & HIGH_BITS == 0
    }

    /// The bytes `from..to` (of the text) set to `fill`'s, the others kept.
    #[inline(always)]
    pub(crate) fn fill(self, from: usize, to: usize, fill: u64) -> Words {
        let head = byte_range(from, to);
        let shift = self.len - 8;
        let tail = byte_range(from.max(shift) - shift, to.max(shift) - shift);
        Words {
            head: (self.head & !head) | (fill & head),
            tail: (self.tail & !tail) | (fill & tail),
            len: self.len,
        }
    }

    /// The text, valid UTF-8 when the words hold ASCII or came whole from a `str`'s bytes.
    ///
    /// # Safety
    /// The bytes must be UTF-8 (the caller checked [`Words::is_ascii`], or wrote ASCII
    /// over a `str`'s words without touching its other bytes).
    #[inline(always)]
    #[allow(unsafe_code)]
    pub(crate) unsafe fn into_string(self) -> String {
        let mut out = String::with_capacity(self.len);
        // SAFETY: 8 <= len <= 16 (the type's invariant), so both 8-byte stores lie within the
        // `len` bytes allocated; together they write all of them, so `len` bytes are
        // initialised; the caller vouches that they are UTF-8.
        unsafe {
            let bytes = out.as_mut_vec();
            let p = bytes.as_mut_ptr();
            p.cast::<[u8; 8]>().write_unaligned(self.head.to_le_bytes());
            p.add(self.len - 8)
                .cast::<[u8; 8]>()
                .write_unaligned(self.tail.to_le_bytes());
            bytes.set_len(self.len);
        }
        out
    }
}

/// A word whose bytes `from..to` (clamped to 0..8) are all ones, the others zero.
#[inline(always)]
fn byte_range(from: usize, to: usize) -> u64 {
    let below = |i: usize| match i.min(8) {
        8 => u64::MAX,
        i => (1u64 << (8 * i)) - 1,
    };
    below(to) & !below(from)
}

/// The byte offset of the last `needle` in `bytes`: eight bytes at a time from the end.
#[inline(always)]
pub(crate) fn rfind_byte(bytes: &[u8], needle: u8) -> Option<usize> {
    let mut end = bytes.len();
    while end >= 8 {
        let x = word_at(bytes, end - 8) ^ (ONES * u64::from(needle));
        // The high bit of each byte of `x` that is zero, exactly (no borrow between bytes).
        let zero = !(((x & LOW_BITS).wrapping_add(LOW_BITS)) | x | LOW_BITS);
        if zero != 0 {
            return Some(end - 8 + (63 - zero.leading_zeros() as usize) / 8);
        }
        end -= 8;
    }
    bytes[..end].iter().rposition(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_copy_and_fill_like_the_bytes_do() {
        let texts = [
            "12345678",
            "13812341234",
            "abcdefghijklmnop",
            "user1@example.co",
        ];
        for text in texts {
            let w = Words::of(text.as_bytes()).unwrap();
            assert!(w.is_ascii());
            // SAFETY: the words of a `str`, unchanged.
            #[allow(unsafe_code)]
            let copy = unsafe { w.into_string() };
            assert_eq!(copy, text);
            for from in 0..=text.len() {
                for to in from..=text.len() {
                    let mut want = text.as_bytes().to_vec();
                    want[from..to].fill(b'*');
                    #[allow(unsafe_code)]
                    let got = unsafe { w.fill(from, to, STARS).into_string() };
                    assert_eq!(got.as_bytes(), want, "{text} {from}..{to}");
                }
            }
        }
        for text in ["", "1234567", "12345678901234567", "王小明"] {
            let short = (8..=16).contains(&text.len());
            assert_eq!(Words::of(text.as_bytes()).is_some(), short, "{text}");
        }
        assert!(!Words::of("王小明".as_bytes()).unwrap().is_ascii());
    }

    #[test]
    fn the_last_byte_is_found_from_the_end() {
        let texts = [
            "",
            "@",
            "a@b",
            "abcdefg@",
            "@abcdefgh",
            "x@y@z.com",
            "user12@example.com",
            "no at sign here at all",
            "a@bcdefghijklmnopqrstuvw",
            "王@qq.com",
            "\u{80}@\u{c0}",
        ];
        for text in texts {
            assert_eq!(
                rfind_byte(text.as_bytes(), b'@'),
                text.bytes().rposition(|b| b == b'@'),
                "{text}"
            );
        }
        // every position in words of all byte values around the needle
        for len in 0..24 {
            for at in 0..len {
                let mut bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 0x3f) as u8).collect();
                bytes.retain(|&b| b != b'@');
                bytes.resize(len, 0xc0);
                bytes[at] = b'@';
                assert_eq!(rfind_byte(&bytes, b'@'), Some(at), "{len} {at}");
            }
        }
    }
}
