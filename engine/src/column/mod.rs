//! Typed, nullable, updatable columns: the storage of attributes and event properties.
//!
//! A column is a vector of one Rust type plus a validity bitmap, both in chunks shared
//! copy-on-write ([`ChunkedVec`]), so a snapshot of a column is cheap. Strings are dictionary
//! encoded (one `u32` code per row), which makes equality a code comparison and lets the
//! attribute index keep one bitmap per distinct value when there are few of them.

mod arrow_io;
pub(crate) mod predicate;
mod saved;

pub(crate) use arrow_io::{arrow_type, canonical_type_of, cast_to};
pub(crate) use predicate::{IntLit, MatchKind, Matcher, compile, micros_to_days};
pub(crate) use saved::SavedColumn;

use crate::access::{Mask, mask};
use crate::util::{
    bitvec::BitVec,
    chunked::{ChunkedVec, Plain},
    dict::StrDict,
};
use crate::value::{DataType, Value};

/// The values of a column, one vector per type.
#[derive(Clone, Debug)]
pub(crate) enum ColumnData {
    Str {
        codes: ChunkedVec<u32>,
        dict: StrDict,
    },
    Int(ChunkedVec<i64>),
    Float(ChunkedVec<f64>),
    Bool(ChunkedVec<bool>),
    Date(ChunkedVec<i32>),
    Timestamp(ChunkedVec<i64>),
}

/// A nullable column. Invariant: `data` and `valid` have the same length.
#[derive(Clone, Debug)]
pub(crate) struct Column {
    pub(crate) data: ColumnData,
    pub(crate) valid: BitVec,
}

impl Column {
    pub(crate) fn new(data_type: DataType) -> Self {
        let data = match data_type {
            DataType::String => ColumnData::Str {
                codes: ChunkedVec::default(),
                dict: StrDict::default(),
            },
            DataType::Int => ColumnData::Int(ChunkedVec::default()),
            DataType::Float => ColumnData::Float(ChunkedVec::default()),
            DataType::Bool => ColumnData::Bool(ChunkedVec::default()),
            DataType::Date => ColumnData::Date(ChunkedVec::default()),
            DataType::Timestamp => ColumnData::Timestamp(ChunkedVec::default()),
        };
        Column {
            data,
            valid: BitVec::default(),
        }
    }

    /// A column of `len` NULLs.
    pub(crate) fn nulls(data_type: DataType, len: usize) -> Self {
        let mut column = Column::new(data_type);
        column.extend_nulls(len);
        column
    }

    /// Room for `additional` more rows without growing (a restore knows its sizes).
    pub(crate) fn reserve(&mut self, additional: usize) {
        match &mut self.data {
            ColumnData::Str { codes, .. } => codes.reserve(additional),
            ColumnData::Int(v) | ColumnData::Timestamp(v) => v.reserve(additional),
            ColumnData::Float(v) => v.reserve(additional),
            ColumnData::Bool(v) => v.reserve(additional),
            ColumnData::Date(v) => v.reserve(additional),
        }
        self.valid.reserve(additional);
    }

    pub(crate) fn data_type(&self) -> DataType {
        match &self.data {
            ColumnData::Str { .. } => DataType::String,
            ColumnData::Int(_) => DataType::Int,
            ColumnData::Float(_) => DataType::Float,
            ColumnData::Bool(_) => DataType::Bool,
            ColumnData::Date(_) => DataType::Date,
            ColumnData::Timestamp(_) => DataType::Timestamp,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.valid.len()
    }

    #[inline]
    pub(crate) fn is_valid(&self, row: usize) -> bool {
        self.valid.get(row)
    }

    /// Appends numbers to a float column (NaN as NULL); to another column, each through
    /// [`Column::push`].
    pub(crate) fn extend_floats(&mut self, values: &[f64]) {
        match &mut self.data {
            ColumnData::Float(v) if !values.iter().any(|x| x.is_nan()) => {
                v.extend_from_slice(values);
                self.valid.extend_constant(true, values.len());
            }
            _ => {
                for &x in values {
                    self.push(Some(&Value::Float(x)));
                }
            }
        }
    }

    pub(crate) fn extend_nulls(&mut self, count: usize) {
        let new_len = self.len() + count;
        match &mut self.data {
            ColumnData::Str { codes, .. } => codes.resize(new_len, 0),
            ColumnData::Int(v) | ColumnData::Timestamp(v) => v.resize(new_len, 0),
            ColumnData::Float(v) => v.resize(new_len, 0.0),
            ColumnData::Bool(v) => v.resize(new_len, false),
            ColumnData::Date(v) => v.resize(new_len, 0),
        }
        self.valid.extend_constant(false, count);
    }

    /// The value at `row`, `None` for NULL.
    pub(crate) fn get(&self, row: usize) -> Option<Value> {
        if !self.is_valid(row) {
            return None;
        }
        Some(match &self.data {
            ColumnData::Str { codes, dict } => Value::Str(dict.get(codes[row]).to_string()),
            ColumnData::Int(v) => Value::Int(v[row]),
            ColumnData::Float(v) => Value::Float(v[row]),
            ColumnData::Bool(v) => Value::Bool(v[row]),
            ColumnData::Date(v) => Value::Date(v[row]),
            ColumnData::Timestamp(v) => Value::Timestamp(v[row]),
        })
    }

    /// The values at `rows` (a page of FIND), as `mask` shows them when there is one (under
    /// `key` for `hash`): a loop per column, the mask chosen once; text is masked as it is
    /// copied out of the dictionary, one allocation like an unmasked read.
    pub(crate) fn read_page(
        &self,
        rows: &[u32],
        mask: Option<Mask>,
        key: &[u8],
    ) -> Vec<Option<Value>> {
        match (&self.data, mask) {
            (_, None) => rows.iter().map(|&row| self.get(row as usize)).collect(),
            (ColumnData::Str { codes, dict }, Some(mask)) => {
                // a loop per mask, the mask's function inlined into it
                macro_rules! each_text {
                    ($show:expr) => {
                        rows.iter()
                            .map(|&row| {
                                let row = row as usize;
                                self.is_valid(row)
                                    .then(|| Value::Str($show(dict.get(codes[row]))))
                            })
                            .collect()
                    };
                }
                match mask {
                    Mask::Partial { first, last } => each_text!(|t| mask::partial(t, first, last)),
                    Mask::Email => each_text!(mask::email),
                    Mask::Hash => {
                        let keyed = crate::util::keyed::Keyed::new(key);
                        each_text!(|t| mask::keyed_hash_by(&keyed, t))
                    }
                    Mask::Hide => self.read_masked(rows, mask, key),
                }
            }
            (_, Some(mask)) => self.read_masked(rows, mask, key),
        }
    }

    /// [`Column::read_page`] a value at a time.
    fn read_masked(&self, rows: &[u32], mask: Mask, key: &[u8]) -> Vec<Option<Value>> {
        rows.iter()
            .map(|&row| mask.apply(&self.get(row as usize)?, key))
            .collect()
    }

    /// Reads `row`'s slots and drops what it read: called for several columns before any
    /// of their values is used (a write's traits, each reading its column's row next), the
    /// cache misses of the columns overlap instead of coming one after another.
    #[inline]
    pub(crate) fn touch(&self, row: usize) {
        if row >= self.len() {
            return;
        }
        use std::hint::black_box;
        black_box(self.valid.get(row));
        match &self.data {
            ColumnData::Str { codes, .. } => _ = black_box(codes[row]),
            ColumnData::Int(v) | ColumnData::Timestamp(v) => _ = black_box(v[row]),
            ColumnData::Float(v) => _ = black_box(v[row]),
            ColumnData::Bool(v) => _ = black_box(v[row]),
            ColumnData::Date(v) => _ = black_box(v[row]),
        }
    }

    /// Sets `row` to `value`, which must already have the column's type (see
    /// [`Column::coerce`]); `None` sets NULL. The row must exist.
    pub(crate) fn set(&mut self, row: usize, value: Option<&Value>) {
        let Some(value) = value else {
            self.valid.set(row, false);
            return;
        };
        let ok = match (&mut self.data, value) {
            (ColumnData::Str { codes, dict }, Value::Str(s)) => {
                codes.set(row, dict.intern(s).0);
                true
            }
            (ColumnData::Int(v), Value::Int(x)) => {
                v.set(row, *x);
                true
            }
            (ColumnData::Float(v), Value::Float(x)) if !x.is_nan() => {
                v.set(row, *x);
                true
            }
            (ColumnData::Bool(v), Value::Bool(x)) => {
                v.set(row, *x);
                true
            }
            (ColumnData::Date(v), Value::Date(x)) => {
                v.set(row, *x);
                true
            }
            (ColumnData::Timestamp(v), Value::Timestamp(x)) => {
                v.set(row, *x);
                true
            }
            _ => false,
        };
        self.valid.set(row, ok);
    }

    /// Appends one value (coerced already) or NULL.
    pub(crate) fn push(&mut self, value: Option<&Value>) {
        // A value of the column's own type is appended in place (computed values are built
        // a value at a time); anything else goes through `set`'s conversions.
        match (&mut self.data, value) {
            (ColumnData::Float(v), Some(Value::Float(x))) if !x.is_nan() => v.push(*x),
            (ColumnData::Int(v), Some(Value::Int(x)))
            | (ColumnData::Timestamp(v), Some(Value::Timestamp(x))) => v.push(*x),
            (ColumnData::Date(v), Some(Value::Date(x))) => v.push(*x),
            (ColumnData::Bool(v), Some(Value::Bool(x))) => v.push(*x),
            _ => {
                self.extend_nulls(1);
                let row = self.len() - 1;
                self.set(row, value);
                return;
            }
        }
        self.valid.push(true);
    }

    /// Converts `value` to this column's type, or explains why it cannot be.
    pub(crate) fn coerce(data_type: DataType, value: &Value) -> Result<Value, String> {
        let fail = || format!("expected a {data_type} value, found '{value}'");
        Ok(match (data_type, value) {
            (DataType::String, Value::Str(s)) => Value::Str(s.clone()),
            (DataType::Int, Value::Int(i)) => Value::Int(*i),
            (DataType::Int, Value::Str(s)) => Value::Int(s.trim().parse().map_err(|_| fail())?),
            (DataType::Float, Value::Float(x)) => Value::Float(*x),
            (DataType::Float, Value::Int(i)) => Value::Float(*i as f64),
            (DataType::Float, Value::Str(s)) => Value::Float(s.trim().parse().map_err(|_| fail())?),
            (DataType::Bool, Value::Bool(b)) => Value::Bool(*b),
            (DataType::Bool, Value::Str(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                _ => return Err(fail()),
            },
            (DataType::Date, Value::Date(d)) => Value::Date(*d),
            (DataType::Date, Value::Str(s)) => {
                Value::Date(crate::value::parse_date(s).ok_or_else(fail)?)
            }
            (DataType::Timestamp, Value::Timestamp(t)) => Value::Timestamp(*t),
            (DataType::Timestamp, Value::Date(d)) => {
                Value::Timestamp(i64::from(*d) * crate::value::DAY_MICROS)
            }
            (DataType::Timestamp, Value::Str(s)) => {
                Value::Timestamp(crate::value::parse_timestamp(s).ok_or_else(fail)?)
            }
            _ => return Err(fail()),
        })
    }

    /// The column converted to `target` (`ALTER ATTRIBUTE ... TYPE`): every value as its
    /// text, or read from its text as `target` (integer to float, a whole float to integer,
    /// a date to its midnight, a midnight to its date). `Err` holds the first rows whose
    /// values do not convert (at most `examples`) and how many there are.
    pub(crate) fn retyped(
        &self,
        target: DataType,
        examples: usize,
    ) -> Result<Column, (Vec<(usize, Value)>, usize)> {
        let mut out = Column::new(target);
        out.reserve(self.len());
        let mut bad = (Vec::new(), 0);
        for row in 0..self.len() {
            let value = self.get(row);
            let converted = value.as_ref().map(|v| converted(v, target));
            match converted {
                Some(None) => {
                    if bad.0.len() < examples {
                        bad.0.push((row, value.expect("a value")));
                    }
                    bad.1 += 1;
                }
                Some(Some(v)) => out.push(Some(&v)),
                None => out.push(None),
            }
        }
        if bad.1 > 0 {
            return Err(bad);
        }
        Ok(out)
    }

    /// Reorders the rows: row `i` of the result is row `order[i]` of `self`.
    /// Reorders rows `start..`: row `start + k` becomes old row `order[k]` (every index in
    /// `order` is at least `start`). Rows before `start` stay where they are, so a sort of
    /// a short unsorted tail moves only the tail.
    pub(crate) fn permute(&mut self, start: usize, order: &[u32]) {
        fn gather<T: Plain>(v: &mut ChunkedVec<T>, start: usize, order: &[u32]) {
            let moved: Vec<T> = order.iter().map(|&i| v[i as usize]).collect();
            v.copy_from_slice(start, &moved);
        }
        match &mut self.data {
            ColumnData::Str { codes, .. } => gather(codes, start, order),
            ColumnData::Int(v) | ColumnData::Timestamp(v) => gather(v, start, order),
            ColumnData::Float(v) => gather(v, start, order),
            ColumnData::Bool(v) => gather(v, start, order),
            ColumnData::Date(v) => gather(v, start, order),
        }
        let bits: Vec<bool> = order.iter().map(|&i| self.valid.get(i as usize)).collect();
        self.valid.set_from(start, &bits);
    }

    /// An order-preserving `i64` key of the value at `row` for the integer-like types
    /// (int, date in days, timestamp in microseconds).
    #[inline]
    pub(crate) fn int_key(&self, row: usize) -> Option<i64> {
        match &self.data {
            ColumnData::Int(v) | ColumnData::Timestamp(v) => Some(v[row]),
            ColumnData::Date(v) => Some(i64::from(v[row])),
            _ => None,
        }
    }

    /// A key equal for equal values of this column (the value's bits or dictionary code),
    /// for grouping rows by value; the row must be valid.
    #[inline]
    pub(crate) fn group_key(&self, row: usize) -> u64 {
        match &self.data {
            ColumnData::Str { codes, .. } => u64::from(codes[row]),
            ColumnData::Float(v) => v[row].to_bits(),
            ColumnData::Bool(v) => u64::from(v[row]),
            _ => self.int_key(row).unwrap_or(0) as u64,
        }
    }

    /// Dictionary code of a string row.
    #[inline]
    pub(crate) fn code(&self, row: usize) -> Option<u32> {
        match &self.data {
            ColumnData::Str { codes, .. } => Some(codes[row]),
            _ => None,
        }
    }

    /// Erases from a string column's dictionary every value no row holds (member
    /// erasure): a value only an erased member had, and every value overwritten since it
    /// was written (the dictionary is append-only, so an old phone number stays there until
    /// this runs), leave it, so no later checkpoint writes them.
    pub(crate) fn blank_unreferenced(&mut self) {
        let ColumnData::Str { codes, dict } = &mut self.data else {
            return;
        };
        let mut held = vec![false; dict.len()];
        let mut at = 0;
        for slice in codes.slices(0..self.valid.len()) {
            for (i, &code) in slice.iter().enumerate() {
                if self.valid.get(at + i) {
                    held[code as usize] = true;
                }
            }
            at += slice.len();
        }
        let unused: Vec<u32> = (0..dict.len() as u32)
            .filter(|&c| !held[c as usize] && !dict.is_blank(c))
            .collect();
        dict.blank_all(&unused);
    }

    pub(crate) fn dict(&self) -> Option<&StrDict> {
        match &self.data {
            ColumnData::Str { dict, .. } => Some(dict),
            _ => None,
        }
    }

    /// Heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.valid.heap_bytes()
            + match &self.data {
                ColumnData::Str { codes, dict } => codes.heap_bytes() + dict.heap_bytes(),
                ColumnData::Int(v) | ColumnData::Timestamp(v) => v.heap_bytes(),
                ColumnData::Float(v) => v.heap_bytes(),
                ColumnData::Bool(v) => v.heap_bytes(),
                ColumnData::Date(v) => v.heap_bytes(),
            }
    }
}

/// One value converted to `target`, or `None` when it does not convert.
fn converted(value: &Value, target: DataType) -> Option<Value> {
    if target == DataType::String {
        return Some(Value::Str(value.to_string()));
    }
    let exact = match (value, target) {
        (Value::Float(x), DataType::Int) => {
            (x.fract() == 0.0 && x.abs() < 9.0e18).then_some(Value::Int(*x as i64))
        }
        (Value::Timestamp(t), DataType::Date) => (t.rem_euclid(crate::value::DAY_MICROS) == 0)
            .then(|| {
                i32::try_from(t.div_euclid(crate::value::DAY_MICROS))
                    .ok()
                    .map(Value::Date)
            })
            .flatten(),
        _ => Column::coerce(target, value)
            .or_else(|_| Column::coerce(target, &Value::Str(value.to_string())))
            .ok(),
    };
    exact.filter(|v| !matches!(v, Value::Float(x) if !x.is_finite()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_and_nulls() {
        let mut c = Column::nulls(DataType::String, 3);
        c.set(1, Some(&Value::from("Shanghai")));
        assert_eq!(c.get(0), None);
        assert_eq!(c.get(1), Some(Value::from("Shanghai")));
        c.push(Some(&Value::from("Beijing")));
        c.set(1, None);
        assert_eq!(c.get(1), None);
        assert_eq!(c.get(3), Some(Value::from("Beijing")));
    }

    #[test]
    fn nan_is_stored_as_null() {
        let mut c = Column::nulls(DataType::Float, 1);
        c.set(0, Some(&Value::Float(f64::NAN)));
        assert_eq!(c.get(0), None);
    }

    #[test]
    fn coerce_reads_dates_and_rejects_mismatches() {
        assert_eq!(
            Column::coerce(DataType::Date, &Value::from("1970-01-03")),
            Ok(Value::Date(2))
        );
        assert!(Column::coerce(DataType::Int, &Value::from("abc")).is_err());
        assert!(Column::coerce(DataType::Bool, &Value::Int(3)).is_err());
    }

    #[test]
    fn permute_moves_values_and_validity() {
        let mut c = Column::new(DataType::Int);
        c.push(Some(&Value::Int(10)));
        c.push(None);
        c.push(Some(&Value::Int(30)));
        c.permute(0, &[2, 0, 1]);
        assert_eq!(
            (0..3).map(|r| c.get(r)).collect::<Vec<_>>(),
            vec![Some(Value::Int(30)), Some(Value::Int(10)), None]
        );
        // only the tail moves
        c.permute(1, &[2, 1]);
        assert_eq!(
            (0..3).map(|r| c.get(r)).collect::<Vec<_>>(),
            vec![Some(Value::Int(30)), None, Some(Value::Int(10))]
        );
    }
}
