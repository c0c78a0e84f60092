//! Trait definitions as the log and the manifest store them: the canonical text of the
//! definition with the language version it was written in, like group definitions
//! (`groups::stored`), so a definition reparses after an upgrade.
//!
//! ```json
//! {"language": 1, "text": "BUCKET(DAYS SINCE LAST(purchase), 30, 60, 90, 180, 365)"}
//! ```
//!
//! Used as `#[serde(with = "crate::traits::stored")]` on a `TraitDef` field.

use memberdb_query::ast::StatementKind;
use memberdb_query::{MAX_STORED_NESTING, parse_statement_nested};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::TraitDef;
use crate::error::{Error, Result};
use crate::groups::stored::LANGUAGE_VERSION;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Text {
    language: u32,
    text: String,
}

pub(crate) fn serialize<S: Serializer>(
    definition: &TraitDef,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    Text {
        language: LANGUAGE_VERSION,
        text: definition.to_string(),
    }
    .serialize(s)
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<TraitDef, D::Error> {
    let t = Text::deserialize(d)?;
    from_text(&t.text, t.language).map_err(D::Error::custom)
}

/// A stored definition's text back to a definition, without the catalog.
pub(crate) fn from_text(text: &str, language: u32) -> Result<TraitDef> {
    if language > LANGUAGE_VERSION {
        return Err(Error::InvalidSegment(format!(
            "the trait definition '{text}' is in version {language} of the segment language; \
             this memberdb reads up to version {LANGUAGE_VERSION}: upgrade memberdb"
        )));
    }
    let statement =
        parse_statement_nested(&format!("DEFINE TRAIT t AS {text}"), MAX_STORED_NESTING)
            .map_err(Error::Syntax)?;
    match statement.kind {
        StatementKind::DefineTrait { body, .. } if statement.as_of.is_none() => {
            crate::query::bind::trait_def(&body)
        }
        _ => Err(Error::InvalidSegment(format!(
            "the stored definition '{text}' is not a trait's"
        ))),
    }
}

/// The definition exactly as it will be read back: printed and parsed again; one that
/// would not read back is refused before it is stored.
pub(crate) fn as_stored(definition: &TraitDef) -> Result<TraitDef> {
    let text = definition.to_string();
    from_text(&text, LANGUAGE_VERSION).map_err(|e| {
        Error::InvalidSegment(format!(
            "the definition cannot be stored: its text '{text}' does not read back ({e})"
        ))
    })
}
