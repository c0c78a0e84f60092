//! Masks: how a field's values reach a user whose role masks them (`partial(a,b)`, `email`,
//! `hash`, `hide`).

use crate::error::{Error, Result};
use crate::util::keyed::Keyed;
use crate::util::short_text::{self, STARS, Words, word_at};
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
        let shown = match value {
            Value::Str(text) => self.apply_text(text, key),
            other => self.apply_text(&other.to_string(), key),
        };
        shown.map(Value::Str)
    }

    /// [`Mask::apply`] to text (an identifier's value).
    pub fn apply_text(&self, text: &str, key: &[u8]) -> Option<String> {
        Some(match *self {
            Mask::Hide => return None,
            Mask::Partial { first, last } => partial(text, first, last),
            Mask::Email => email(text),
            Mask::Hash => keyed_hash(key, text),
        })
    }
}

/// `partial(first,last)` of `text`: its first `first` and last `last` characters kept, the
/// others `*`; all `*` when it has no more than `first + last` (one `*` when empty).
/// Inlined into FIND's loop over a page: ASCII text costs what its unmasked copy does.
#[inline(always)]
pub(crate) fn partial(text: &str, first: usize, last: usize) -> String {
    let bytes = text.as_bytes();
    if bytes.len() > first + last {
        let to = bytes.len() - last;
        match Words::of(bytes) {
            // SAFETY: ASCII (checked), with ASCII `*` written over some of it.
            #[allow(unsafe_code)]
            Some(words) if words.is_ascii() => {
                return unsafe { words.fill(first, to, STARS).into_string() };
            }
            None if text.is_ascii() => {
                let mut out = bytes.to_vec();
                out[first..to].fill(b'*');
                // SAFETY: as above.
                #[allow(unsafe_code)]
                return unsafe { String::from_utf8_unchecked(out) };
            }
            _ => {}
        }
    }
    partial_by_chars(text, first, last)
}

/// [`partial`] of short or non-ASCII text, character by character.
#[cold]
#[inline(never)]
fn partial_by_chars(text: &str, first: usize, last: usize) -> String {
    let n = text.chars().count();
    if n <= first + last {
        return "*".repeat(n.max(1));
    }
    text.chars()
        .enumerate()
        .map(|(i, c)| if i < first || i >= n - last { c } else { '*' })
        .collect()
}

/// `email` of `text`: its first character and its domain (`z***@qq.com`); `***` without
/// `@` (or with nothing before it). Inlined into FIND's loop over a page.
#[inline(always)]
pub(crate) fn email(text: &str) -> String {
    let bytes = text.as_bytes();
    // `@` is ASCII: `at` is a character boundary, and so is the end of an ASCII first
    // character.
    match short_text::rfind_byte(bytes, b'@') {
        Some(at) if at > 0 && bytes[0].is_ascii() => match email_words(bytes, at) {
            // SAFETY: an ASCII byte, `***`, and the bytes of `text` from an ASCII `@` to
            // its end: UTF-8.
            #[allow(unsafe_code)]
            Some(words) => unsafe { words.into_string() },
            None => {
                let mut out = Vec::with_capacity(4 + bytes.len() - at);
                out.push(bytes[0]);
                out.extend_from_slice(b"***");
                out.extend_from_slice(&bytes[at..]);
                // SAFETY: as above.
                #[allow(unsafe_code)]
                unsafe {
                    String::from_utf8_unchecked(out)
                }
            }
        },
        _ => email_by_chars(text),
    }
}

/// [`email`] of text without `@` or starting with a non-ASCII character.
#[cold]
#[inline(never)]
fn email_by_chars(text: &str) -> String {
    match text.rfind('@') {
        Some(at) if at > 0 => {
            let first = text.chars().next().map_or(1, char::len_utf8);
            format!("{}***{}", &text[..first], &text[at..])
        }
        _ => "***".to_string(),
    }
}

/// `bytes[0]`, `***` and `bytes[at..]` (the e-mail mask) as words, when that is 8 to 16
/// bytes and `bytes` has 8 or more: `@qq.com` to `@hotmail.com`.
#[inline(always)]
fn email_words(bytes: &[u8], at: usize) -> Option<Words> {
    let domain = bytes.len() - at;
    let n = bytes.len();
    if !(4..=12).contains(&domain) || n < 8 {
        return None;
    }
    // the masked text's first four bytes, then the domain's first four
    let lead = u64::from(bytes[0]) | (STARS & 0xff_ffff) << 8;
    let mut four = [0u8; 4];
    four.copy_from_slice(&bytes[at..at + 4]);
    let head = lead | u64::from(u32::from_le_bytes(four)) << 32;
    // its last eight: the text's, with the lead's end below a domain of fewer than 8
    let end = word_at(bytes, n - 8);
    let tail = match domain {
        8.. => end,
        d => {
            let low = (1u64 << (8 * (8 - d))) - 1;
            (end & !low) | ((lead >> (8 * (d - 4))) & low)
        }
    };
    Words::new(head, tail, 4 + domain)
}

/// HMAC-SHA256 of `text` under `key`, its first 16 bytes in lower-case hex.
pub(crate) fn keyed_hash(key: &[u8], text: &str) -> String {
    keyed_hash_by(&Keyed::new(key), text)
}

/// [`keyed_hash`] under a key whose state is made once (for a page of values).
#[inline]
pub(crate) fn keyed_hash_by(keyed: &Keyed, text: &str) -> String {
    crate::util::hex(&keyed.digest(text)[..16])
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
    fn the_fast_masks_equal_their_definitions() {
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
        let mut masks = vec![Mask::Email, Mask::Hash, Mask::Hide];
        for first in 0..7 {
            for last in 0..7 {
                masks.push(Mask::Partial { first, last });
            }
        }
        // every length around the short (8 to 16 byte) forms, every domain length
        let mut texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        texts.extend((0..20).map(|n| "13812341234567890123"[..n].to_string()));
        for local in ["a", "ab", "user", "user123456", "王", "z.w"] {
            for domain in [
                "x",
                "a.b",
                "qq.cn",
                "qq.com",
                "163.com",
                "sina.com",
                "gmail.com",
            ] {
                texts.push(format!("{local}@{domain}"));
            }
            for domain in [
                "hotmail.com",
                "example.com",
                "foxmail.com",
                "longerdomain.example",
            ] {
                texts.push(format!("{local}@{domain}"));
            }
        }
        // the masks' definitions, character by character
        let model = |mask: Mask, text: &str| -> Option<String> {
            let chars: Vec<char> = text.chars().collect();
            let n = chars.len();
            Some(match mask {
                Mask::Partial { first, last } if n <= first + last => "*".repeat(n.max(1)),
                Mask::Partial { first, last } => (0..n)
                    .map(|i| {
                        if i < first || i >= n - last {
                            chars[i]
                        } else {
                            '*'
                        }
                    })
                    .collect(),
                Mask::Email => match text.rfind('@') {
                    Some(at) if at > 0 => format!("{}***{}", chars[0], &text[at..]),
                    _ => "***".into(),
                },
                Mask::Hash => keyed_hash(b"k", text),
                Mask::Hide => return None,
            })
        };
        for mask in masks {
            for text in &texts {
                let want = model(mask, text);
                assert_eq!(mask.apply_text(text, b"k"), want, "{mask} of {text:?}");
                let value = mask.apply(&Value::Str(text.clone()), b"k");
                assert_eq!(value, want.map(Value::Str), "{mask} of {text:?}");
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
