//! Staging: every value of an input converted to its column type and checked, before
//! anything is applied.

use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};

use crate::column::{canonical_type_of, cast_to};
use crate::error::{Error, Result};
use crate::value::DataType;

/// A staged batch of member rows.
pub(crate) struct MemberBatch {
    pub(crate) ids: StringArray,
    pub(crate) columns: Vec<(String, DataType, ArrayRef)>,
}

/// Staged member rows of one input.
pub(crate) struct StagedMembers {
    pub(crate) batches: Vec<MemberBatch>,
}

/// A staged batch of events.
pub(crate) struct EventBatch {
    pub(crate) ids: StringArray,
    pub(crate) events: StringArray,
    pub(crate) ts: Vec<i64>,
    pub(crate) props: Vec<(String, DataType, ArrayRef)>,
}

/// Staged events of one input.
pub(crate) struct StagedEvents {
    pub(crate) batches: Vec<EventBatch>,
}

/// Staged (member, tag) pairs of one input.
pub(crate) struct StagedTags {
    pub(crate) batches: Vec<(StringArray, StringArray)>,
}

/// Reads a required, non-NULL, non-empty string column (`member_id`, `event`, `tag`).
fn key_column(
    batch: &RecordBatch,
    name: &str,
    source: &str,
    first_row: usize,
    what: &str,
) -> Result<StringArray> {
    let Some(array) = batch.column_by_name(name) else {
        let found: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        return Err(Error::bad_input(
            source,
            None,
            Some(name),
            format!(
                "{what} needs a '{name}' column; found columns: {}",
                found.join(", ")
            ),
        ));
    };
    let allowed = matches!(
        canonical_type_of(array.data_type()),
        Some(DataType::String | DataType::Int)
    );
    if !allowed {
        return Err(Error::bad_input(
            source,
            None,
            Some(name),
            format!(
                "'{name}' must hold strings (or integers), not {}",
                array.data_type()
            ),
        ));
    }
    let strings = cast_to(array, DataType::String, source, name, first_row)?;
    let strings = strings
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| Error::Internal("string cast gave another type".to_string()))?;
    for i in 0..strings.len() {
        if strings.is_null(i) || strings.value(i).is_empty() {
            return Err(Error::bad_input(
                source,
                Some(first_row + i),
                Some(name),
                format!("'{name}' is empty; every row needs one"),
            ));
        }
        if strings.value(i).contains('\0') {
            return Err(Error::bad_input(
                source,
                Some(first_row + i),
                Some(name),
                format!("'{name}' holds a NUL byte, which no key may hold"),
            ));
        }
    }
    Ok(strings.clone())
}

/// Can input of type `from` be stored in a column of type `to` without losing anything?
fn convertible(from: DataType, to: DataType) -> bool {
    from == to
        || matches!(
            (from, to),
            (DataType::Int, DataType::Float)
                | (DataType::String, DataType::Date | DataType::Timestamp)
                | (DataType::Date, DataType::Timestamp)
        )
}

/// Converts the value columns of a batch (all but `skip`), checking them against the types
/// already known (`known`) and against the earlier batches of the same input.
fn value_columns(
    batch: &RecordBatch,
    skip: &[&str],
    known: &dyn Fn(&str) -> Option<DataType>,
    seen: &mut Vec<(String, DataType)>,
    source: &str,
    first_row: usize,
    what: &str,
) -> Result<Vec<(String, DataType, ArrayRef)>> {
    let schema = batch.schema();
    let mut out = Vec::new();
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        let name = field.name().as_str();
        if skip.contains(&name) {
            continue;
        }
        if name.trim().is_empty() {
            return Err(Error::bad_input(
                source,
                None,
                None,
                "a column has an empty name",
            ));
        }
        let input = canonical_type_of(array.data_type()).ok_or_else(|| {
            Error::bad_input(
                source,
                None,
                Some(name),
                format!(
                    "type {} is not supported; use string, integer, float, bool, date or \
                     timestamp",
                    array.data_type()
                ),
            )
        })?;
        let earlier = seen.iter().find(|(n, _)| n == name).map(|(_, t)| *t);
        let target = earlier.or_else(|| known(name)).unwrap_or(input);
        if !convertible(input, target) && array.null_count() < array.len() {
            return Err(Error::bad_input(
                source,
                None,
                Some(name),
                format!("holds {input} values but {what} '{name}' is {target}"),
            ));
        }
        if earlier.is_none() {
            seen.push((name.to_string(), target));
        }
        out.push((
            name.to_string(),
            target,
            cast_to(array, target, source, name, first_row)?,
        ));
    }
    Ok(out)
}

impl StagedMembers {
    /// Stages the batches of one input; `seen` holds the types of the columns of the
    /// inputs of the same load staged before it, which this one must match.
    pub(crate) fn stage(
        batches: &[RecordBatch],
        source: &str,
        known: &dyn Fn(&str) -> Option<DataType>,
        seen: &mut Vec<(String, DataType)>,
    ) -> Result<Self> {
        let mut staged = Vec::new();
        let mut first_row = 1;
        for batch in batches {
            let ids = key_column(batch, "member_id", source, first_row, "a members file")?;
            let columns = value_columns(
                batch,
                &["member_id"],
                known,
                seen,
                source,
                first_row,
                "attribute",
            )?;
            first_row += batch.num_rows();
            staged.push(MemberBatch { ids, columns });
        }
        Ok(StagedMembers { batches: staged })
    }
}

impl StagedEvents {
    /// Stages the batches of one input; `seen` holds the types of the columns of the
    /// inputs of the same load staged before it, which this one must match.
    pub(crate) fn stage(
        batches: &[RecordBatch],
        source: &str,
        known: &dyn Fn(&str) -> Option<DataType>,
        seen: &mut Vec<(String, DataType)>,
    ) -> Result<Self> {
        let mut staged = Vec::new();
        let mut first_row = 1;
        for batch in batches {
            let ids = key_column(batch, "member_id", source, first_row, "an events file")?;
            let events = key_column(batch, "event", source, first_row, "an events file")?;
            let Some(ts_array) = batch.column_by_name("ts") else {
                return Err(Error::bad_input(
                    source,
                    None,
                    Some("ts"),
                    "an events file needs a 'ts' column (UTC timestamps)",
                ));
            };
            let ts_input = canonical_type_of(ts_array.data_type());
            if !matches!(
                ts_input,
                Some(DataType::Timestamp | DataType::Date | DataType::String)
            ) {
                return Err(Error::bad_input(
                    source,
                    None,
                    Some("ts"),
                    format!(
                        "'ts' must be a timestamp or an RFC 3339 string, not {}",
                        ts_array.data_type()
                    ),
                ));
            }
            let ts = cast_to(ts_array, DataType::Timestamp, source, "ts", first_row)?;
            let ts = ts
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .ok_or_else(|| Error::Internal("timestamp cast gave another type".to_string()))?;
            if let Some(i) = (0..ts.len()).find(|&i| ts.is_null(i)) {
                return Err(Error::bad_input(
                    source,
                    Some(first_row + i),
                    Some("ts"),
                    "every event needs a time",
                ));
            }
            let props = value_columns(
                batch,
                &["member_id", "event", "ts"],
                known,
                seen,
                source,
                first_row,
                "event property",
            )?;
            first_row += batch.num_rows();
            staged.push(EventBatch {
                ids,
                events,
                ts: ts.values().to_vec(),
                props,
            });
        }
        Ok(StagedEvents { batches: staged })
    }
}

impl StagedTags {
    pub(crate) fn stage(batches: &[RecordBatch], source: &str) -> Result<Self> {
        let mut staged = StagedTags {
            batches: Vec::new(),
        };
        let mut first_row = 1;
        for batch in batches {
            let ids = key_column(batch, "member_id", source, first_row, "a tags file")?;
            let tags = key_column(batch, "tag", source, first_row, "a tags file")?;
            staged.batches.push((ids, tags));
            first_row += batch.num_rows();
        }
        Ok(staged)
    }
}
