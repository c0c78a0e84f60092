//! Small building blocks shared by the storage structures.

pub(crate) mod bitvec;
pub(crate) mod chunked;
pub(crate) mod dict;
pub(crate) mod json;
pub(crate) mod priority;
pub(crate) mod sections;
pub(crate) mod short_text;
pub(crate) mod suggest;

/// `bytes` in lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}
