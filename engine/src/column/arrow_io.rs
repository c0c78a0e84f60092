//! Conversion between columns and Arrow arrays: reading input batches, writing Parquet.

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType as ArrowType, TimeUnit};

use super::{Column, ColumnData};
use crate::error::{Error, Result};
use crate::value::{DataType, parse_date, parse_timestamp};

/// The Arrow type a column of `data_type` is stored as in memory exports and Parquet files.
pub(crate) fn arrow_type(data_type: DataType) -> ArrowType {
    match data_type {
        DataType::String => ArrowType::Utf8,
        DataType::Int => ArrowType::Int64,
        DataType::Float => ArrowType::Float64,
        DataType::Bool => ArrowType::Boolean,
        DataType::Date => ArrowType::Date32,
        DataType::Timestamp => ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

/// The memberdb type of an input Arrow type, if it has one.
pub(crate) fn canonical_type_of(arrow: &ArrowType) -> Option<DataType> {
    Some(match arrow {
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => DataType::String,
        ArrowType::Dictionary(_, value) => return canonical_type_of(value),
        ArrowType::Int8
        | ArrowType::Int16
        | ArrowType::Int32
        | ArrowType::Int64
        | ArrowType::UInt8
        | ArrowType::UInt16
        | ArrowType::UInt32
        | ArrowType::UInt64 => DataType::Int,
        ArrowType::Float16 | ArrowType::Float32 | ArrowType::Float64 => DataType::Float,
        ArrowType::Decimal128(_, _) | ArrowType::Decimal256(_, _) => DataType::Float,
        ArrowType::Boolean => DataType::Bool,
        ArrowType::Date32 | ArrowType::Date64 => DataType::Date,
        ArrowType::Timestamp(_, _) => DataType::Timestamp,
        _ => return None,
    })
}

/// Casts an input array to the canonical Arrow type of `target`.
///
/// A value that cannot be converted is an error naming `source`, the 1-based row
/// (`first_row` is the file row of the array's first element) and `column`. Date and timestamp
/// strings are read with the same rules as literals in segments.
pub(crate) fn cast_to(
    array: &ArrayRef,
    target: DataType,
    source: &str,
    column: &str,
    first_row: usize,
) -> Result<ArrayRef> {
    let wanted = arrow_type(target);
    if array.data_type() == &wanted {
        return Ok(array.clone());
    }
    let bad_row =
        |i: usize, what: String| Error::bad_input(source, Some(first_row + i), Some(column), what);
    let text = matches!(canonical_type_of(array.data_type()), Some(DataType::String));
    if text && matches!(target, DataType::Date | DataType::Timestamp) {
        let strings = arrow_cast::cast(array, &ArrowType::Utf8)
            .map_err(|e| Error::bad_input(source, None, Some(column), e.to_string()))?;
        let strings = strings
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| {
                Error::Internal("cast to Utf8 did not give a StringArray".to_string())
            })?;
        let mut out_days = Vec::new();
        let mut out_micros = Vec::new();
        for i in 0..strings.len() {
            if strings.is_null(i) {
                out_days.push(None);
                out_micros.push(None);
                continue;
            }
            let s = strings.value(i);
            if target == DataType::Date {
                let d = parse_date(s).ok_or_else(|| {
                    bad_row(
                        i,
                        format!("cannot read '{s}' as a date (write it as YYYY-MM-DD)"),
                    )
                })?;
                out_days.push(Some(d));
            } else {
                let t = parse_timestamp(s).ok_or_else(|| {
                    bad_row(
                        i,
                        format!(
                            "cannot read '{s}' as a timestamp \
                             (write it as RFC 3339, e.g. 2026-11-01T08:00:00Z)"
                        ),
                    )
                })?;
                out_micros.push(Some(t));
            }
        }
        return Ok(if target == DataType::Date {
            Arc::new(Date32Array::from(out_days))
        } else {
            Arc::new(TimestampMicrosecondArray::from(out_micros).with_timezone("UTC"))
        });
    }
    if target == DataType::Timestamp
        && let Some(micros) = timestamp_micros(array)
    {
        let micros = micros.map_err(|i| {
            bad_row(
                i,
                "timestamp is out of range (years 1677 to 2262 only)".to_string(),
            )
        })?;
        return Ok(Arc::new(micros.with_timezone("UTC")));
    }
    let cast = arrow_cast::cast(array, &wanted).map_err(|e| {
        Error::bad_input(
            source,
            None,
            Some(column),
            format!("cannot convert {} to {target}: {e}", array.data_type()),
        )
    })?;
    if cast.null_count() != array.null_count() {
        // The safe cast turned unconvertible values into NULLs: find the first one.
        for i in 0..array.len() {
            if array.is_valid(i) && cast.is_null(i) {
                let shown = arrow_cast::display::array_value_to_string(array, i)
                    .unwrap_or_else(|_| "?".to_string());
                return Err(bad_row(i, format!("cannot read '{shown}' as {target}")));
            }
        }
    }
    Ok(cast)
}

/// Timestamps and dates of any unit and time zone as UTC microseconds. Arrow stores instants
/// as offsets from the Unix epoch whatever the zone, so only the unit changes; this avoids
/// arrow's zone handling (which needs a zone database for named zones). `Err(i)` names the
/// first element that overflows.
fn timestamp_micros(array: &ArrayRef) -> Option<Result<TimestampMicrosecondArray, usize>> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{
        Date32Type, Date64Type, TimestampMicrosecondType, TimestampMillisecondType,
        TimestampNanosecondType, TimestampSecondType,
    };
    fn scale<T: arrow_array::types::ArrowPrimitiveType>(
        array: &ArrayRef,
        f: impl Fn(T::Native) -> Option<i64>,
    ) -> Result<TimestampMicrosecondArray, usize> {
        let a = array.as_primitive::<T>();
        let mut out = Vec::with_capacity(a.len());
        for i in 0..a.len() {
            out.push(if a.is_valid(i) {
                Some(f(a.value(i)).ok_or(i)?)
            } else {
                None
            });
        }
        Ok(TimestampMicrosecondArray::from(out))
    }
    Some(match array.data_type() {
        ArrowType::Timestamp(TimeUnit::Second, _) => {
            scale::<TimestampSecondType>(array, |v| v.checked_mul(1_000_000))
        }
        ArrowType::Timestamp(TimeUnit::Millisecond, _) => {
            scale::<TimestampMillisecondType>(array, |v| v.checked_mul(1_000))
        }
        ArrowType::Timestamp(TimeUnit::Microsecond, _) => {
            scale::<TimestampMicrosecondType>(array, Some)
        }
        ArrowType::Timestamp(TimeUnit::Nanosecond, _) => {
            scale::<TimestampNanosecondType>(array, |v| Some(v.div_euclid(1_000)))
        }
        ArrowType::Date32 => scale::<Date32Type>(array, |d| {
            i64::from(d).checked_mul(crate::value::DAY_MICROS)
        }),
        ArrowType::Date64 => scale::<Date64Type>(array, |ms| ms.checked_mul(1_000)),
        _ => return None,
    })
}

fn downcast<T: 'static>(array: &ArrayRef) -> &T {
    array
        .as_any()
        .downcast_ref::<T>()
        .expect("array was cast to the column's canonical type")
}

impl Column {
    /// Appends the elements `indices` (all when `None`) of `array`, which must have the
    /// column's canonical Arrow type (see [`cast_to`]).
    pub(crate) fn append_array(&mut self, array: &ArrayRef, indices: Option<&[u32]>) {
        let start = self.len();
        let count = indices.map_or(array.len(), <[u32]>::len);
        self.extend_nulls(count);
        let rows: Vec<u32> = (start as u32..(start + count) as u32).collect();
        self.set_rows(&rows, array, indices);
    }

    /// Sets row `rows[k]` to element `indices[k]` (or `k`) of `array`.
    pub(crate) fn set_rows(&mut self, rows: &[u32], array: &ArrayRef, indices: Option<&[u32]>) {
        let source = |k: usize| indices.map_or(k, |ix| ix[k] as usize);
        macro_rules! fill {
            ($vec:expr, $arr:ty, $conv:expr) => {{
                let arr = downcast::<$arr>(array);
                for (k, &row) in rows.iter().enumerate() {
                    let i = source(k);
                    let valid = arr.is_valid(i);
                    if valid {
                        $vec[row as usize] = $conv(arr.value(i));
                    }
                    self.valid.set(row as usize, valid);
                }
            }};
        }
        match &mut self.data {
            ColumnData::Str { codes, dict } => {
                fill!(codes, StringArray, |s: &str| dict.intern(s).0)
            }
            ColumnData::Int(v) => fill!(v, Int64Array, |x| x),
            ColumnData::Timestamp(v) => fill!(v, TimestampMicrosecondArray, |x| x),
            ColumnData::Float(v) => {
                let arr = downcast::<Float64Array>(array);
                for (k, &row) in rows.iter().enumerate() {
                    let i = source(k);
                    // NaN is stored as NULL: it compares with nothing, as NULL does.
                    let valid = arr.is_valid(i) && !arr.value(i).is_nan();
                    if valid {
                        v[row as usize] = arr.value(i);
                    }
                    self.valid.set(row as usize, valid);
                }
            }
            ColumnData::Bool(v) => fill!(v, BooleanArray, |x| x),
            ColumnData::Date(v) => fill!(v, Date32Array, |x| x),
        }
    }

    /// The rows `rows` (all when `None`) as an Arrow array of the canonical type.
    pub(crate) fn to_arrow(&self, rows: Option<&[u32]>) -> ArrayRef {
        let n = rows.map_or(self.len(), <[u32]>::len);
        let at = |k: usize| rows.map_or(k, |r| r[k] as usize);
        let valid = |k: usize| self.is_valid(at(k));
        match &self.data {
            ColumnData::Str { codes, dict } => Arc::new(
                (0..n)
                    .map(|k| valid(k).then(|| dict.get(codes[at(k)])))
                    .collect::<StringArray>(),
            ),
            ColumnData::Int(v) => Arc::new(
                (0..n)
                    .map(|k| valid(k).then(|| v[at(k)]))
                    .collect::<Int64Array>(),
            ),
            ColumnData::Float(v) => Arc::new(
                (0..n)
                    .map(|k| valid(k).then(|| v[at(k)]))
                    .collect::<Float64Array>(),
            ),
            ColumnData::Bool(v) => Arc::new(
                (0..n)
                    .map(|k| valid(k).then(|| v[at(k)]))
                    .collect::<BooleanArray>(),
            ),
            ColumnData::Date(v) => Arc::new(
                (0..n)
                    .map(|k| valid(k).then(|| v[at(k)]))
                    .collect::<Date32Array>(),
            ),
            ColumnData::Timestamp(v) => Arc::new(
                (0..n)
                    .map(|k| valid(k).then(|| v[at(k)]))
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("UTC"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    #[test]
    fn cast_reports_the_bad_row() {
        let input: ArrayRef = Arc::new(StringArray::from(vec![Some("1"), None, Some("x")]));
        let err = cast_to(&input, DataType::Int, "m.csv", "points", 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.csv, row 12, column 'points': cannot read 'x' as integer"
        );
        let err = cast_to(&input, DataType::Timestamp, "m.csv", "ts", 1).unwrap_err();
        assert!(err.to_string().contains("row 1"), "{err}");
    }

    #[test]
    fn arrow_round_trip() {
        let input: ArrayRef = Arc::new(StringArray::from(vec![
            Some("2026-01-02"),
            None,
            Some("2026-01-03T00:00:00Z"),
        ]));
        let ts = cast_to(&input, DataType::Timestamp, "f", "ts", 1).unwrap();
        let mut col = Column::new(DataType::Timestamp);
        col.append_array(&ts, None);
        assert_eq!(col.get(1), None);
        assert_eq!(
            col.get(2),
            Some(Value::Timestamp(parse_timestamp("2026-01-03").unwrap()))
        );
        let back = col.to_arrow(Some(&[2, 0]));
        assert_eq!(back.len(), 2);
        assert_eq!(back.data_type(), &arrow_type(DataType::Timestamp));
    }
}
