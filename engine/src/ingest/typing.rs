//! Types of text columns (CSV, JSON Lines): declared with `--schema`, kept from an attribute
//! that exists, or inferred from every value of the load, with the identifier rule and the
//! fallback to text reported (DESIGN section 13; the rules are in docs/decisions.md).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType as ArrowType, Field, Schema};

use crate::error::{Error, Result};
use crate::value::{DataType, parse_date, parse_timestamp};

/// What one text value looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Looks {
    Null,
    Int,
    Float,
    Bool,
    Date,
    Timestamp,
    /// A leading `+`, a leading zero followed by a digit, or more digits than an integer
    /// holds: an identifier (phone, zip, card number), which stays text.
    Identifier,
    Text,
}

fn looks(value: &str) -> Looks {
    let t = value.trim();
    let b = t.as_bytes();
    let Some(&first) = b.first() else {
        return Looks::Null;
    };
    if first == b'+' || (first == b'0' && b.get(1).is_some_and(u8::is_ascii_digit)) {
        return Looks::Identifier;
    }
    if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") {
        return Looks::Bool;
    }
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        return if t.parse::<i64>().is_ok() {
            Looks::Int
        } else {
            Looks::Identifier
        };
    }
    if b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        return if b.len() == 10 && parse_date(t).is_some() {
            Looks::Date
        } else if parse_timestamp(t).is_some() {
            Looks::Timestamp
        } else {
            Looks::Text
        };
    }
    if parse_float(t).is_some() {
        return Looks::Float;
    }
    Looks::Text
}

/// A finite number written with digits (not `inf` or `NaN`).
fn parse_float(t: &str) -> Option<f64> {
    if !t.bytes().any(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse::<f64>().ok().filter(|x| x.is_finite())
}

fn parse_bool(t: &str) -> Option<bool> {
    match t.to_ascii_lowercase().as_str() {
        "true" | "t" | "1" => Some(true),
        "false" | "f" | "0" => Some(false),
        _ => None,
    }
}

/// The families a column's values can belong to, in the order the counts are kept.
const FAMILIES: [(&str, &[Looks]); 3] = [
    ("numbers", &[Looks::Int, Looks::Float]),
    ("dates or timestamps", &[Looks::Date, Looks::Timestamp]),
    ("booleans", &[Looks::Bool]),
];

/// What the values of one column look like, over every text input of a load.
#[derive(Debug, Default)]
pub(crate) struct Inference {
    counts: [u64; 8],
    /// The first few values of each kind, with where they were.
    examples: Vec<(Looks, String, String, usize)>,
}

/// How many example values an error or warning names.
const EXAMPLES: usize = 5;

impl Inference {
    pub(crate) fn observe(&mut self, array: &StringArray, source: &str, first_row: usize) {
        for i in 0..array.len() {
            let kind = if array.is_null(i) {
                Looks::Null
            } else {
                looks(array.value(i))
            };
            self.counts[kind as usize] += 1;
            if kind != Looks::Null
                && self.examples.iter().filter(|e| e.0 == kind).count() < EXAMPLES
            {
                let value = array.value(i);
                self.examples
                    .push((kind, value.to_string(), source.to_string(), first_row + i));
            }
        }
    }

    fn count(&self, kinds: &[Looks]) -> u64 {
        kinds.iter().map(|k| self.counts[*k as usize]).sum()
    }

    /// The column's type: the one every value has; text when any value is an identifier,
    /// or when no kind of value makes up half of them. A column of which at least half the
    /// values are numbers, times or booleans but some are not is a [`Fallback`].
    pub(crate) fn decide(&self) -> std::result::Result<DataType, Fallback> {
        let c = |k: Looks| self.counts[k as usize];
        if c(Looks::Identifier) > 0 {
            return Ok(DataType::String);
        }
        let values = self.counts.iter().sum::<u64>() - c(Looks::Null);
        if values == 0 {
            return Ok(DataType::String);
        }
        let (family, members) = FAMILIES
            .iter()
            .max_by_key(|(_, kinds)| self.count(kinds))
            .expect("families");
        let in_family = self.count(members);
        if in_family == values {
            return Ok(if members.contains(&Looks::Int) {
                if c(Looks::Float) > 0 {
                    DataType::Float
                } else {
                    DataType::Int
                }
            } else if members.contains(&Looks::Date) {
                if c(Looks::Timestamp) > 0 {
                    DataType::Timestamp
                } else {
                    DataType::Date
                }
            } else {
                DataType::Bool
            });
        }
        if in_family * 2 < values {
            return Ok(DataType::String);
        }
        let examples = self
            .examples
            .iter()
            .filter(|e| !members.contains(&e.0))
            .take(EXAMPLES)
            .map(|(_, value, source, row)| (value.clone(), source.clone(), *row))
            .collect();
        Err(Fallback {
            family,
            others: values - in_family,
            values,
            examples,
        })
    }
}

/// A column of numbers, times or booleans with some values that are not.
#[derive(Debug)]
pub(crate) struct Fallback {
    family: &'static str,
    others: u64,
    values: u64,
    /// Values that are not of the family: the value, its input and row.
    examples: Vec<(String, String, usize)>,
}

impl Fallback {
    /// The offending values, as a message names them.
    pub(crate) fn describe(&self) -> String {
        let shown: Vec<String> = self
            .examples
            .iter()
            .map(|(value, source, row)| format!("'{value}' ({source}, row {row})"))
            .collect();
        let more = if self.others as usize > shown.len() {
            format!(" and {} more", self.others as usize - shown.len())
        } else {
            String::new()
        };
        format!(
            "{} of {} values are {} but {} not: {}{more}",
            self.values - self.others,
            self.values,
            self.family,
            self.others,
            shown.join(", ")
        )
    }
}

/// Converts a text column to `target`; a value that does not convert is an error naming its
/// input, row and column. Empty values are NULL for every type but text.
pub(crate) fn convert(
    array: &StringArray,
    target: DataType,
    source: &str,
    column: &str,
    first_row: usize,
) -> Result<ArrayRef> {
    fn each<T>(
        array: &StringArray,
        parse: impl Fn(&str) -> Option<T>,
        mut bad: impl FnMut(usize, &str) -> Error,
    ) -> Result<Vec<Option<T>>> {
        let mut out = Vec::with_capacity(array.len());
        for i in 0..array.len() {
            if array.is_null(i) || array.value(i).trim().is_empty() {
                out.push(None);
                continue;
            }
            let text = array.value(i);
            out.push(Some(parse(text.trim()).ok_or_else(|| bad(i, text))?));
        }
        Ok(out)
    }
    let bad = |i: usize, text: &str| {
        let hint = match target {
            DataType::Date => " (write it as YYYY-MM-DD)",
            DataType::Timestamp => " (write it as RFC 3339, e.g. 2026-11-01T08:00:00Z)",
            DataType::Bool => " (write true or false)",
            _ => "",
        };
        Error::bad_input(
            source,
            Some(first_row + i),
            Some(column),
            format!("cannot read '{text}' as {target}{hint}"),
        )
    };
    Ok(match target {
        DataType::String => Arc::new(array.clone()),
        DataType::Int => Arc::new(Int64Array::from(each(array, |t| t.parse().ok(), bad)?)),
        DataType::Float => Arc::new(Float64Array::from(each(array, parse_float, bad)?)),
        DataType::Bool => Arc::new(BooleanArray::from(each(array, parse_bool, bad)?)),
        DataType::Date => Arc::new(Date32Array::from(each(array, parse_date, bad)?)),
        DataType::Timestamp => Arc::new(
            TimestampMicrosecondArray::from(each(array, parse_timestamp, bad)?)
                .with_timezone("UTC"),
        ),
    })
}

/// One text input of a load: where it came from and its batches (text columns as Utf8).
pub(crate) struct TextInput<'a> {
    pub(crate) source: &'a str,
    pub(crate) batches: &'a mut Vec<RecordBatch>,
}

/// A type a column must have, and why (added to a conversion error).
pub(crate) type Declared<'a> = dyn Fn(&str) -> Option<(DataType, String)> + 'a;

/// Types the text columns of `inputs` (all of one kind of a load): a column gets
/// `declared(name)` when that gives a type, else the type its values over every input infer
/// to. Columns in `keep_text` (keys) stay text. A fallback to text is an error unless
/// `allow_fallback`, when it is a warning in `warnings`.
pub(crate) fn type_text_inputs(
    inputs: &mut [TextInput<'_>],
    declared: &Declared<'_>,
    keep_text: &[&str],
    allow_fallback: bool,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let mut names: Vec<String> = Vec::new();
    for input in inputs.iter() {
        for batch in input.batches.iter() {
            for field in batch.schema().fields() {
                let name = field.name();
                if field.data_type() == &ArrowType::Utf8
                    && !keep_text.contains(&name.as_str())
                    && !names.contains(name)
                {
                    names.push(name.clone());
                }
            }
        }
    }
    let mut targets = Vec::with_capacity(names.len());
    for name in names {
        let target = match declared(&name) {
            Some(declared) => declared,
            None => {
                let mut inference = Inference::default();
                for input in inputs.iter() {
                    let mut first_row = 1;
                    for batch in input.batches.iter() {
                        if let Some(array) = batch.column_by_name(&name) {
                            inference.observe(array.as_string::<i32>(), input.source, first_row);
                        }
                        first_row += batch.num_rows();
                    }
                }
                match inference.decide() {
                    Ok(t) => {
                        if t == DataType::Int && looks_like_identifier(&name) {
                            warnings.push(format!(
                                "column '{name}' loaded as integer: if it holds identifiers \
                                 (phones, codes), declare it with --schema {name}:string \
                                 (or ALTER ATTRIBUTE {name} TYPE string)"
                            ));
                        }
                        (t, String::new())
                    }
                    Err(fallback) if allow_fallback => {
                        warnings.push(format!(
                            "column '{name}' loaded as text: {}",
                            fallback.describe()
                        ));
                        (DataType::String, String::new())
                    }
                    Err(fallback) => {
                        let source = fallback
                            .examples
                            .first()
                            .map_or("input", |(_, s, _)| s.as_str());
                        return Err(Error::bad_input(
                            source,
                            None,
                            Some(&name),
                            format!(
                                "{}; fix those values, declare the column's type (e.g. \
                                 --schema {name}:string to keep it as text), or pass \
                                 --allow-text-fallback to load it as text",
                                fallback.describe()
                            ),
                        ));
                    }
                }
            }
        };
        targets.push((name, target));
    }
    for input in inputs.iter_mut() {
        let mut first_row = 1;
        for batch in input.batches.iter_mut() {
            let rows = batch.num_rows();
            *batch = convert_batch(batch, &targets, input.source, first_row)?;
            first_row += rows;
        }
    }
    Ok(())
}

/// `batch` with the text columns named in `targets` converted to their types.
fn convert_batch(
    batch: &RecordBatch,
    targets: &[(String, (DataType, String))],
    source: &str,
    first_row: usize,
) -> Result<RecordBatch> {
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let target = targets.iter().find(|(n, _)| n == field.name());
        match target {
            Some((name, (t, why))) if field.data_type() == &ArrowType::Utf8 => {
                let converted = convert(column.as_string::<i32>(), *t, source, name, first_row)
                    .map_err(|e| match e {
                        Error::BadInput {
                            source_name,
                            row,
                            column,
                            message,
                        } if !why.is_empty() => Error::BadInput {
                            source_name,
                            row,
                            column,
                            message: format!("{message}: {why}"),
                        },
                        e => e,
                    })?;
                fields.push(Field::new(name, converted.data_type().clone(), true));
                columns.push(converted);
            }
            _ => {
                fields.push(field.as_ref().clone());
                columns.push(column.clone());
            }
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::Internal(format!("re-typed batch: {e}")))
}

/// The batches of one text file typed as a load of it alone would type them (keys and `ts`
/// as a load reads them).
pub(crate) fn type_alone(mut batches: Vec<RecordBatch>, source: &str) -> Result<Vec<RecordBatch>> {
    let declared = |name: &str| (name == "ts").then(|| (DataType::Timestamp, String::new()));
    type_text_inputs(
        &mut [TextInput {
            source,
            batches: &mut batches,
        }],
        &declared,
        &KEY_COLUMNS,
        false,
        &mut Vec::new(),
    )?;
    Ok(batches)
}

/// Does a column's name say it holds identifiers (a phone, a zip, a code, an id)?
fn looks_like_identifier(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let words: Vec<&str> = name.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    const HINTS: [&str; 10] = [
        "phone", "mobile", "tel", "zip", "postcode", "postal", "code", "card", "id", "sku",
    ];
    HINTS
        .iter()
        .any(|h| words.contains(h) || (h.len() > 3 && name.contains(h)))
}

/// Columns that are read as text whatever they look like: ids are not numbers.
pub(crate) const KEY_COLUMNS: [&str; 3] = ["member_id", "event", "tag"];

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(values: &[Option<&str>]) -> std::result::Result<DataType, Fallback> {
        let mut inference = Inference::default();
        inference.observe(&StringArray::from(values.to_vec()), "f.csv", 1);
        inference.decide()
    }

    #[test]
    fn identifier_names_are_recognised() {
        for name in [
            "phone",
            "mobile_phone",
            "zip",
            "store_code",
            "card_no",
            "user_id",
            "SKU",
        ] {
            assert!(looks_like_identifier(name), "{name}");
        }
        for name in [
            "points",
            "amount",
            "age",
            "level",
            "identity_score",
            "tiers",
        ] {
            assert!(!looks_like_identifier(name), "{name}");
        }
    }

    #[test]
    fn identifiers_stay_text() {
        for column in [
            &["02112345678", "13800000000"][..],
            &["+8613800000000"],
            &["010010", "200000"],
            &["12345678901234567890123"],
        ] {
            let values: Vec<Option<&str>> = column.iter().map(|v| Some(*v)).collect();
            assert_eq!(infer(&values).unwrap(), DataType::String, "{column:?}");
        }
        assert_eq!(
            infer(&[Some("0"), Some("0.5"), Some("10")]).unwrap(),
            DataType::Float
        );
        assert_eq!(
            infer(&[Some("0"), Some("-7"), None]).unwrap(),
            DataType::Int
        );
    }

    #[test]
    fn timestamp_forms_mix_and_dates_widen() {
        let forms = [
            Some("2025-07-09 07:26:09.849265+00"),
            Some("2025-07-09T07:26:09Z"),
            Some("2025-07-09"),
            None,
        ];
        assert_eq!(infer(&forms).unwrap(), DataType::Timestamp);
        assert_eq!(infer(&forms[2..]).unwrap(), DataType::Date);
        assert_eq!(
            infer(&[Some("TRUE"), Some("false")]).unwrap(),
            DataType::Bool
        );
    }

    #[test]
    fn a_mostly_numeric_column_with_text_is_a_fallback_naming_the_values() {
        let fallback = infer(&[Some("1"), Some("1,200"), Some("3"), Some("n/a")]).unwrap_err();
        let text = fallback.describe();
        assert!(text.contains("2 of 4 values are numbers"), "{text}");
        assert!(text.contains("'1,200' (f.csv, row 2)"), "{text}");
        assert!(text.contains("'n/a' (f.csv, row 4)"), "{text}");
        // Mostly text: quietly text.
        assert_eq!(
            infer(&[Some("Shanghai"), Some("Beijing"), Some("2")]).unwrap(),
            DataType::String
        );
        assert!(infer(&[Some("inf"), Some("1.5"), Some("2.5")]).is_err());
    }

    #[test]
    fn conversion_names_the_row_that_does_not_convert() {
        let array = StringArray::from(vec![Some("5"), Some(""), Some("x")]);
        let err = convert(&array, DataType::Int, "f.csv", "points", 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.csv, row 12, column 'points': cannot read 'x' as integer"
        );
        let ok = convert(&array.slice(0, 2), DataType::Int, "f.csv", "points", 1).unwrap();
        assert_eq!(ok.null_count(), 1);
        let kept = convert(&array, DataType::String, "f.csv", "points", 1).unwrap();
        assert_eq!(kept.null_count(), 0);
    }
}
