//! JSON of the log and the manifest, read safely at any nesting depth.
//!
//! Everything memberdb writes now is shallow, but group definitions written before format
//! version 3 were stored as nested JSON objects, one level per `NOT`, and could be thousands
//! of levels deep. `serde_json` refuses more than 128 levels, and lifting that limit would let
//! its recursion exhaust the thread's stack. So the depth is measured first, without
//! recursion; a deep document is read on a stack grown for it, and one deeper than any
//! memberdb version could write is refused as damaged.

use serde::de::{DeserializeOwned, Error as _};

/// Depth up to which `serde_json` reads with its own limit (128) on the caller's stack.
const SHALLOW: usize = 100;
/// The deepest document accepted: far beyond what an old memberdb could have written (it
/// evaluated a definition before logging it, and that recursion overflowed long before).
pub(crate) const MAX_DEPTH: usize = 20_000;
/// Stack given to the reading of a deep document: a base plus this much per level (the
/// deserializer's frames per level in a debug build are well under it).
const STACK_BASE: usize = 1 << 20;
const STACK_PER_LEVEL: usize = 8 << 10;

/// Reads `T` from JSON `bytes` of any nesting depth up to [`MAX_DEPTH`].
pub(crate) fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    let depth = nesting(bytes);
    if depth <= SHALLOW {
        return serde_json::from_slice(bytes);
    }
    if depth > MAX_DEPTH {
        return Err(serde_json::Error::custom(format!(
            "JSON nested {depth} levels deep, more than any version of memberdb writes \
             ({MAX_DEPTH})"
        )));
    }
    // Whatever is built and dropped while reading (a deep tree taken apart by its own
    // deserializer, or dropped half-built on an error) stays on this stack.
    stacker::grow(STACK_BASE + depth * STACK_PER_LEVEL, || {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        de.disable_recursion_limit();
        let value = T::deserialize(&mut de)?;
        de.end()?;
        Ok(value)
    })
}

/// Deepest nesting of objects and arrays in `bytes`, outside strings. Not a validator:
/// malformed JSON gets some depth, and the parser then says what is wrong with it.
pub(crate) fn nesting(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(nesting(br#"{"a":[1,{"b":"[[[{"}]}"#), 3);
        assert_eq!(nesting(br#""\"{""#), 0);
        assert_eq!(nesting(b"[[]]"), 2);
    }

    #[test]
    fn deep_arrays_read_on_a_grown_stack_and_deeper_ones_are_refused() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let value: serde_json::Value = from_slice(deep(5_000).as_bytes()).unwrap();
        // serde_json::Value drops recursively: take it apart on a big stack too
        stacker::grow(64 << 20, move || drop(value));
        let e = from_slice::<serde_json::Value>(deep(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("more than any version"), "{e}");
        // broken deep input is an error, not a crash
        let broken = format!("{}1,", "[".repeat(3_000));
        assert!(from_slice::<serde_json::Value>(broken.as_bytes()).is_err());
    }
}
