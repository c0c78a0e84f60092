//! Small building blocks shared by the storage structures.

pub(crate) mod bitvec;
pub(crate) mod chunked;
pub(crate) mod dict;
pub(crate) mod json;
pub(crate) mod keyed;
pub(crate) mod priority;
pub(crate) mod sections;
pub(crate) mod short_text;
pub(crate) mod suggest;

/// `bytes` in lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}
