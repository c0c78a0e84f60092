//! Answers of FIND and BREAKDOWN, as plain Rust values and as Arrow.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType as ArrowType, Field, Schema};

use crate::column::{Column, arrow_type};
use crate::error::{Error, Result};
use crate::value::{DataType, Value};

/// Members found by [`crate::View::find`], in row-id order (the order they were first seen).
#[derive(Clone, Debug, PartialEq)]
pub struct FindResult {
    /// `member_id` followed by the requested attributes.
    pub columns: Vec<String>,
    /// Types of the requested attributes (not of `member_id`).
    pub types: Vec<DataType>,
    /// One row per member: `member_id`, then one value (or NULL) per attribute.
    pub rows: Vec<FoundMember>,
    /// Size of the whole segment, before LIMIT / OFFSET.
    pub total: u64,
}

/// One member of a [`FindResult`].
#[derive(Clone, Debug, PartialEq)]
pub struct FoundMember {
    /// The external id.
    pub member_id: String,
    /// Requested attribute values, in [`FindResult::columns`] order (after `member_id`).
    pub values: Vec<Option<Value>>,
}

impl FindResult {
    /// The rows as an Arrow batch (`member_id` as Utf8, attributes in their types).
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        let mut fields = vec![Field::new("member_id", ArrowType::Utf8, false)];
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
            self.rows.iter().map(|r| r.member_id.as_str()),
        ))];
        for (k, (name, data_type)) in self.columns[1..].iter().zip(&self.types).enumerate() {
            let mut column = Column::new(*data_type);
            for row in &self.rows {
                column.push(row.values[k].as_ref());
            }
            fields.push(Field::new(name, arrow_type(*data_type), true));
            arrays.push(column.to_arrow(None));
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map_err(|e| Error::Internal(format!("find batch: {e}")))
    }
}

/// One line of a BREAKDOWN: a value (NULL for members without one) and how many members of
/// the segment have it; by several columns, a combination of values.
#[derive(Clone, Debug, PartialEq)]
pub struct BreakdownRow {
    /// The (first) column's value; `None` for NULL.
    pub value: Option<Value>,
    /// Members of the segment with that value.
    pub count: u64,
    /// The values of the further columns of a BREAKDOWN by several (empty by one).
    pub more: Vec<Option<Value>>,
}

/// Options of FIND.
#[derive(Clone, Debug, Default)]
pub struct FindOptions {
    /// Attributes to return besides `member_id`.
    pub columns: Vec<String>,
    /// At most this many members (`None`: all).
    pub limit: Option<usize>,
    /// Skip this many members first.
    pub offset: usize,
}

/// What the catalog knows of one attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeInfo {
    /// Name.
    pub name: String,
    /// Type.
    pub data_type: DataType,
    /// Members with a value.
    pub non_null: u64,
    /// Distinct values, for strings and bools.
    pub distinct: Option<u64>,
}

/// What the catalog knows of one dynamic group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupInfo {
    /// Name.
    pub name: String,
    /// The definition.
    pub definition: crate::Segment,
    /// True when the definition moves with *now*.
    pub time_dependent: bool,
}

/// A computed trait, as `SHOW TRAITS` lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct TraitInfo {
    /// Name.
    pub name: String,
    /// The definition.
    pub definition: crate::TraitDef,
    /// The type of its values.
    pub data_type: crate::DataType,
    /// True when its values move with *now*.
    pub time_dependent: bool,
}

/// One member's record, as `MEMBER.GET` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberRecord {
    /// External id.
    pub member_id: String,
    /// Every attribute with a value.
    pub attributes: Vec<(String, Value)>,
    /// Every computed trait with a value, at the database's *now*.
    pub traits: Vec<(String, Value)>,
    /// Every tag.
    pub tags: Vec<String>,
    /// The identifiers of its profile, by type (`type`, `value`).
    pub identifiers: Vec<(String, String)>,
    /// Member ids merged into it.
    pub aliases: Vec<String>,
}
