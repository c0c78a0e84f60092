//! A column in the column file: its values, validity and dictionary as mapped sections.

use serde::{Deserialize, Serialize};

use super::{Column, ColumnData};
use crate::util::bitvec::{BitVec, SavedBits};
use crate::util::chunked::ChunkedVec;
use crate::util::dict::{SavedDict, StrDict};
use crate::util::sections::{Section, SectionReader, SectionWriter};
use crate::value::DataType;

/// Where a saved [`Column`] lies in a column file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SavedColumn {
    data_type: DataType,
    values: Section,
    valid: SavedBits,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dict: Option<SavedDict>,
}

impl Column {
    pub(crate) fn save(&self, out: &mut SectionWriter<'_>) -> std::io::Result<SavedColumn> {
        let (values, dict) = match &self.data {
            ColumnData::Str { codes, dict } => (codes.save(out)?, Some(dict.save(out)?)),
            ColumnData::Int(v) | ColumnData::Timestamp(v) => (v.save(out)?, None),
            ColumnData::Float(v) => (v.save(out)?, None),
            ColumnData::Bool(v) => (v.save(out)?, None),
            ColumnData::Date(v) => (v.save(out)?, None),
        };
        Ok(SavedColumn {
            data_type: self.data_type(),
            values,
            valid: self.valid.save(out)?,
            dict,
        })
    }

    /// The column [`Column::save`] wrote, of type `expected`, mapped. Every string code is
    /// checked against its dictionary.
    pub(crate) fn restore(
        file: &SectionReader,
        saved: &SavedColumn,
        expected: DataType,
    ) -> Result<Column, String> {
        if saved.data_type != expected {
            return Err(format!(
                "a column is saved as {:?}, the manifest says {expected:?}",
                saved.data_type
            ));
        }
        let valid = BitVec::restore(file, saved.valid)?;
        let len = valid.len();
        let data = match saved.data_type {
            DataType::String => {
                let dict = StrDict::restore(
                    file,
                    saved
                        .dict
                        .as_ref()
                        .ok_or("a string column without a dictionary")?,
                )?;
                let codes: ChunkedVec<u32> = ChunkedVec::restore(file, saved.values, len)?;
                let known = dict.len() as u32;
                // NULL rows hold code 0, which an empty dictionary does not have.
                let bad = codes
                    .slices(0..len)
                    .any(|s| s.iter().fold(0, |m, &c| m.max(c)) >= known.max(1));
                if bad {
                    return Err("a string code lies outside its dictionary".to_string());
                }
                ColumnData::Str { codes, dict }
            }
            DataType::Int => ColumnData::Int(ChunkedVec::restore(file, saved.values, len)?),
            DataType::Timestamp => {
                ColumnData::Timestamp(ChunkedVec::restore(file, saved.values, len)?)
            }
            DataType::Float => ColumnData::Float(ChunkedVec::restore(file, saved.values, len)?),
            DataType::Bool => ColumnData::Bool(ChunkedVec::restore(file, saved.values, len)?),
            DataType::Date => ColumnData::Date(ChunkedVec::restore(file, saved.values, len)?),
        };
        Ok(Column { data, valid })
    }

    /// Bytes of the column mapped from a file.
    pub(crate) fn mapped_bytes(&self) -> usize {
        self.valid.mapped_bytes()
            + match &self.data {
                ColumnData::Str { codes, dict } => codes.mapped_bytes() + dict.mapped_bytes(),
                ColumnData::Int(v) | ColumnData::Timestamp(v) => v.mapped_bytes(),
                ColumnData::Float(v) => v.mapped_bytes(),
                ColumnData::Bool(v) => v.mapped_bytes(),
                ColumnData::Date(v) => v.mapped_bytes(),
            }
    }
}
