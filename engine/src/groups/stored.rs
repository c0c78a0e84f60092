//! Group definitions as the log and the manifest store them: canonical text of the segment
//! language with the language version it was written in, so a definition reparses after an
//! upgrade and reading it back can never fail on depth (DESIGN sections 3 and 8).
//!
//! ```json
//! {"language": 1, "text": "TAG 'vip' AND NOT DID redeem_coupon"}
//! ```
//!
//! Before format version 3 a definition was stored as the JSON of its [`Segment`] tree, one
//! object per `NOT`; such a definition is still read (see `util::json` for deep ones), made
//! shallow (`NOT NOT s` is `s`) and written back as text at the next checkpoint.
//!
//! Used as `#[serde(with = "crate::groups::stored")]` on a `Segment` field.

use memberdb_query::ast::StatementKind;
use memberdb_query::{MAX_NESTING, MAX_STORED_NESTING, parse_statement_nested};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::segment::Segment;

/// The version of the segment language this build writes definitions in.
pub(crate) const LANGUAGE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Text {
    language: u32,
    text: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Text(Text),
    Tree(Segment),
}

pub(crate) fn serialize<S: Serializer>(
    segment: &Segment,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    Text {
        language: LANGUAGE_VERSION,
        text: segment.to_string(),
    }
    .serialize(s)
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Segment, D::Error> {
    match Stored::deserialize(d)? {
        Stored::Text(t) => from_text(&t.text, t.language).map_err(D::Error::custom),
        Stored::Tree(tree) => {
            let tree = tree.simplified();
            let depth = tree.nesting();
            if depth > MAX_STORED_NESTING {
                // Taken apart here, where the reader gave it a stack big enough.
                drop(tree);
                return Err(D::Error::custom(format!(
                    "a stored group definition nests {depth} levels deep even without double \
                     negations, more than {MAX_STORED_NESTING}"
                )));
            }
            Ok(tree)
        }
    }
}

/// A stored definition's text back to a segment, without the catalog.
fn from_text(text: &str, language: u32) -> Result<Segment> {
    if language > LANGUAGE_VERSION {
        return Err(Error::InvalidSegment(format!(
            "the definition '{text}' is in version {language} of the segment language; this \
             memberdb reads up to version {LANGUAGE_VERSION}: upgrade memberdb"
        )));
    }
    let statement = parse_statement_nested(text, MAX_STORED_NESTING).map_err(Error::Syntax)?;
    match statement.kind {
        StatementKind::Count(expr) if statement.as_of.is_none() => {
            crate::query::bind::stored_segment(&expr)
        }
        _ => Err(Error::InvalidSegment(format!(
            "the stored definition '{text}' is not a segment"
        ))),
    }
}

/// The definition exactly as it will be read back from the log or the manifest: printed and
/// parsed again. A definition that would not read back (nested deeper than the language
/// allows, or built through the API with a name no text can carry) is refused here, before
/// it is stored, so that what is stored always reopens.
pub(crate) fn as_stored(segment: &Segment) -> Result<Segment> {
    let depth = segment.nesting();
    if depth > MAX_NESTING {
        return Err(Error::InvalidSegment(format!(
            "the definition nests {depth} levels deep (each NOT, AND and OR is a level), more \
             than {MAX_NESTING}; write long lists flat or with IN (...)"
        )));
    }
    let text = segment.to_string();
    from_text(&text, LANGUAGE_VERSION).map_err(|e| {
        Error::InvalidSegment(format!(
            "the definition cannot be stored: its text '{text}' does not read back ({e})"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::PropFilter;

    #[derive(Serialize, Deserialize)]
    struct Holder {
        #[serde(with = "super")]
        definition: Segment,
    }

    fn read(json: &str) -> Result<Segment> {
        crate::util::json::from_slice::<Holder>(json.as_bytes())
            .map(|h| h.definition)
            .map_err(|e| Error::InvalidSegment(e.to_string()))
    }

    #[test]
    fn definitions_are_stored_as_text_and_read_back() {
        let seg = Segment::tag("vip")
            .and(
                !Segment::did("redeem_coupon")
                    .filter(PropFilter::prop("amount").ge(5.0))
                    .build(),
            )
            .or(Segment::attr("city").is_in(["Shanghai", "北京"]));
        let json = serde_json::to_string(&Holder {
            definition: seg.clone(),
        })
        .unwrap();
        assert!(json.contains(r#""language":1"#), "{json}");
        assert!(json.contains("TAG 'vip'"), "{json}");
        let back = read(&json).unwrap();
        assert_eq!(back, as_stored(&seg).unwrap());
        assert_eq!(back.to_string(), seg.to_string());
    }

    /// Issue 11, finding 2: `DEFINE GROUP g AS NOT NOT ... TAG 'vip'` (130 NOTs) was stored as
    /// 130 nested objects, and no open could read the record back (serde_json's limit).
    #[test]
    fn a_deep_tree_stored_by_an_older_version_reads_back_simplified() {
        let deepest = crate::util::json::MAX_DEPTH - 3;
        for (nots, expect) in [
            (130usize, "TAG 'vip'"),
            (4_001, "NOT TAG 'vip'"),
            (
                deepest,
                if deepest.is_multiple_of(2) {
                    "TAG 'vip'"
                } else {
                    "NOT TAG 'vip'"
                },
            ),
        ] {
            let json = format!(
                r#"{{"definition":{}{{"Tag":"vip"}}{}}}"#,
                r#"{"Not":"#.repeat(nots),
                "}".repeat(nots)
            );
            assert_eq!(read(&json).unwrap().to_string(), expect);
        }
    }

    #[test]
    fn what_would_not_reopen_is_refused_before_it_is_stored() {
        let mut deep = Segment::tag("a");
        for i in 0..(MAX_NESTING + 1) {
            deep = if i % 2 == 0 {
                !deep
            } else {
                deep.and(Segment::tag("b"))
            };
        }
        let e = as_stored(&deep).unwrap_err().to_string();
        assert!(e.contains("levels deep"), "{e}");
        let future = r#"{"definition":{"language":99,"text":"ALL"}}"#;
        assert!(read(future).unwrap_err().to_string().contains("upgrade"));
        let not_a_segment = r#"{"definition":{"language":1,"text":"SHOW TAGS"}}"#;
        assert!(read(not_a_segment).is_err());
    }
}
