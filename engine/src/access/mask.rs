//! Masks: how a field's values reach a user whose role masks them (`partial(a,b)`, `email`,
//! `hash`, `hide`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::value::Value;

/// How a masked field's values are shown (DESIGN section 12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mask {
    /// `partial(a,b)`: the first `a` and last `b` characters kept, the ones between as `*`
    /// (`138****1234`). A value of at most `a + b` characters is all `*`: a short value is
    /// never shown whole.
    Partial {
        /// Characters kept at the start.
        first: usize,
        /// Characters kept at the end.
        last: usize,
    },
    /// `email`: the first character and the domain (`z***@qq.com`); a value without `@` is
    /// `***`.
    Email,
    /// `hash`: a keyed HMAC-SHA256 of the value's text, its first 16 bytes in hex: a stable
    /// pseudonym that cannot be reversed without the key.
    Hash,
    /// `hide`: the field is left out.
    Hide,
}

impl std::fmt::Display for Mask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mask::Partial { first, last } => write!(f, "partial({first},{last})"),
            Mask::Email => f.write_str("email"),
            Mask::Hash => f.write_str("hash"),
            Mask::Hide => f.write_str("hide"),
        }
    }
}

impl std::str::FromStr for Mask {
    type Err = Error;

    fn from_str(text: &str) -> Result<Mask> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let lower = compact.to_ascii_lowercase();
        match lower.as_str() {
            "email" => return Ok(Mask::Email),
            "hash" => return Ok(Mask::Hash),
            "hide" => return Ok(Mask::Hide),
            _ => {}
        }
        let bad = || {
            Error::InvalidSegment(format!(
                "unknown mask '{text}'; the masks are partial(a,b), email, hash and hide"
            ))
        };
        let args = lower
            .strip_prefix("partial(")
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(bad)?;
        let (a, b) = args.split_once(',').ok_or_else(bad)?;
        let number = |s: &str| s.parse::<usize>().ok().filter(|n| *n <= 64).ok_or_else(bad);
        Ok(Mask::Partial {
            first: number(a)?,
            last: number(b)?,
        })
    }
}

impl Mask {
    /// `value` as a user under this mask sees it: `None` when the field is hidden (NULL
    /// stays NULL: `IS NULL` is allowed on masked fields anyway).
    pub fn apply(&self, value: &Value, key: &[u8]) -> Option<Value> {
        self.apply_owned(value.clone(), key)
    }

    /// [`Mask::apply`] of a value the caller gives up: text is masked in its own buffer
    /// (no allocation for `partial` and `email`), what FIND does for every row it returns.
    pub fn apply_owned(&self, value: Value, key: &[u8]) -> Option<Value> {
        let mut text = match value {
            Value::Str(s) => s,
            other => other.to_string(),
        };
        if *self == Mask::Hide {
            return None;
        }
        self.mask_in_place(&mut text, key);
        Some(Value::Str(text))
    }

    /// [`Mask::apply`] to text (an identifier's value).
    pub fn apply_text(&self, text: &str, key: &[u8]) -> Option<String> {
        match self.apply(&Value::Str(text.to_string()), key)? {
            Value::Str(s) => Some(s),
            other => Some(other.to_string()),
        }
    }
}

impl Mask {
    /// [`Mask::apply`] of borrowed text, into a new string of about its size.
    #[inline]
    pub(crate) fn apply_str(&self, text: &str, key: &[u8]) -> Option<String> {
        // Inlined into FIND's loop over rows: the common masks are a copy and a few
        // stores; what is rare or costly (hash, non-ASCII partial) is called out of line.
        Some(match self {
            Mask::Hide => return None,
            Mask::Partial { first, last } if text.len() > first + last && text.is_ascii() => {
                // One copy, the middle overwritten: as cheap as the unmasked copy.
                let n = text.len();
                let mut bytes = text.as_bytes().to_vec();
                bytes[*first..n - last].fill(b'*');
                // SAFETY: `text` is ASCII (checked above) and only ASCII bytes were written
                // over it, so the bytes are UTF-8.
                #[allow(unsafe_code)]
                unsafe {
                    String::from_utf8_unchecked(bytes)
                }
            }
            // `@` is ASCII: `at` is a character boundary, and so is the end of an ASCII
            // first character. Addresses are short: a backward scan beats memrchr's set-up.
            Mask::Email => match text.bytes().rposition(|b| b == b'@') {
                Some(at) if at > 0 && text.as_bytes()[0].is_ascii() => {
                    // One buffer of the masked size, written in three pieces.
                    let bytes = text.as_bytes();
                    let mut out = Vec::with_capacity(4 + bytes.len() - at);
                    out.push(bytes[0]);
                    out.extend_from_slice(b"***");
                    out.extend_from_slice(&bytes[at..]);
                    // SAFETY: an ASCII byte, `***`, and the tail of `text` from an ASCII
                    // `@`: UTF-8.
                    #[allow(unsafe_code)]
                    unsafe {
                        String::from_utf8_unchecked(out)
                    }
                }
                _ => self.apply_str_slow(text, key),
            },
            _ => self.apply_str_slow(text, key),
        })
    }

    /// [`Mask::apply_str`]'s rare cases: a hash, partial of short or non-ASCII text, an
    /// e-mail address without `@` or starting with a non-ASCII character.
    #[cold]
    #[inline(never)]
    fn apply_str_slow(&self, text: &str, key: &[u8]) -> String {
        let mut owned = text.to_string();
        self.mask_in_place(&mut owned, key);
        owned
    }

    fn mask_in_place(&self, text: &mut String, key: &[u8]) {
        match self {
            Mask::Hide => text.clear(),
            Mask::Partial { first, last } => partial_in_place(text, *first, *last),
            Mask::Email => email_in_place(text),
            Mask::Hash => *text = keyed_hash(key, text),
        }
    }
}

/// Keeps the first `first` and last `last` characters of `text`, the others `*`.
fn partial_in_place(text: &mut String, first: usize, last: usize) {
    if text.is_ascii() {
        let n = text.len();
        let (from, to) = if n <= first + last {
            (0, n)
        } else {
            (first, n - last)
        };
        let mut bytes = std::mem::take(text).into_bytes();
        bytes[from..to].fill(b'*');
        if n == 0 {
            bytes.push(b'*');
        }
        *text = String::from_utf8(bytes).unwrap_or_default();
        return;
    }
    let chars: Vec<char> = text.chars().collect();
    let masked: String = if chars.len() <= first + last {
        "*".repeat(chars.len())
    } else {
        let mut out: String = chars[..first].iter().collect();
        out.extend(std::iter::repeat_n('*', chars.len() - first - last));
        out.extend(&chars[chars.len() - last..]);
        out
    };
    *text = masked;
}

/// The first character and the domain: `z***@qq.com`; `***` without `@`.
fn email_in_place(text: &mut String) {
    match text.rfind('@') {
        Some(at) if at > 0 => {
            let first = text.chars().next().map_or(1, char::len_utf8);
            text.replace_range(first..at, "***");
        }
        _ => {
            text.clear();
            text.push_str("***");
        }
    }
}

/// HMAC-SHA256 of `text` under `key`, its first 16 bytes in lower-case hex.
pub(crate) fn keyed_hash(key: &[u8], text: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(text.as_bytes());
    let digest = mac.finalize().into_bytes();
    crate::util::hex(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_parse_and_print_back() {
        for text in ["partial(3,4)", "email", "hash", "hide"] {
            assert_eq!(text.parse::<Mask>().unwrap().to_string(), text);
        }
        assert_eq!(
            " Partial( 0 , 2 ) ".parse::<Mask>().unwrap(),
            Mask::Partial { first: 0, last: 2 }
        );
        for bad in [
            "partial(3)",
            "partial(a,b)",
            "stars",
            "partial(3,4",
            "partial(99,1)",
        ] {
            let e = bad.parse::<Mask>().unwrap_err().to_string();
            assert!(e.contains("unknown mask"), "{bad}: {e}");
        }
    }

    #[test]
    fn masked_values_keep_only_what_the_mask_says() {
        let p = Mask::Partial { first: 3, last: 4 };
        let phone = Value::Str("13812341234".into());
        assert_eq!(p.apply(&phone, b""), Some(Value::Str("138****1234".into())));
        // a value no longer than what is kept is all stars
        assert_eq!(
            p.apply(&Value::Str("1234567".into()), b""),
            Some(Value::Str("*******".into()))
        );
        assert_eq!(
            p.apply(&Value::Int(13812341234), b""),
            Some(Value::Str("138****1234".into()))
        );
        // characters, not bytes
        assert_eq!(
            Mask::Partial { first: 1, last: 1 }.apply(&Value::Str("王小明".into()), b""),
            Some(Value::Str("王*明".into()))
        );
        assert_eq!(
            Mask::Email.apply(&Value::Str("zhang.wei@qq.com".into()), b""),
            Some(Value::Str("z***@qq.com".into()))
        );
        assert_eq!(
            Mask::Email.apply(&Value::Str("nomail".into()), b""),
            Some(Value::Str("***".into()))
        );
        assert_eq!(Mask::Hide.apply(&phone, b""), None);
        let a = Mask::Hash.apply(&phone, b"key one").unwrap();
        assert_eq!(a, Mask::Hash.apply(&phone, b"key one").unwrap(), "stable");
        assert_ne!(a, Mask::Hash.apply(&phone, b"key two").unwrap(), "keyed");
        let Value::Str(h) = a else { panic!() };
        assert_eq!(h.len(), 32);
        assert!(!h.contains("1381234"));
    }

    #[test]
    fn the_copying_masks_of_find_equal_the_in_place_ones() {
        let texts = [
            "13812341234",
            "1234567",
            "12345678",
            "",
            "王小明",
            "王小明王小明王小明",
            "zhang.wei@qq.com",
            "a@b",
            "ab@c.d",
            "abcd@e",
            "@qq.com",
            "王@qq.com",
            "x@y@z.com",
            "nomail",
            "ßü@ö.de",
        ];
        let masks = [
            Mask::Partial { first: 3, last: 4 },
            Mask::Partial { first: 0, last: 2 },
            Mask::Partial { first: 1, last: 1 },
            Mask::Email,
        ];
        for mask in masks {
            for text in texts {
                let in_place = match mask.apply(&Value::Str(text.into()), b"k") {
                    Some(Value::Str(s)) => Some(s),
                    other => panic!("{other:?}"),
                };
                assert_eq!(mask.apply_str(text, b"k"), in_place, "{mask} of {text:?}");
            }
        }
    }

    #[test]
    fn the_keyed_hash_is_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
        assert_eq!(
            keyed_hash(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c7"
        );
    }
}
