//! ClickHouse SQL text for names, values and the tests of one value (a comparison, `IN`,
//! `BETWEEN`, `IS NULL`), with the engine's semantics: a comparison never matches NULL, a
//! date compared with a timestamp is its midnight UTC, an integer compared with a fraction
//! is compared exactly.

use crate::column::{IntLit, micros_to_days};
use crate::error::{Error, Result};
use crate::segment::{CmpOp, Predicate};
use crate::value::{DAY_MICROS, DataType, Value, format_date, format_timestamp};

/// Days of ClickHouse's `Date32` and `DateTime64` range: 1900-01-01 to 2299-12-31.
const FIRST_DAY: i64 = -25_567;
const LAST_DAY: i64 = 120_529;

/// `name` as a ClickHouse identifier: bare when it is a plain word, else in backquotes.
pub(crate) fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.contains(&name.to_ascii_uppercase().as_str());
    if plain {
        return name.to_string();
    }
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// Words ClickHouse may read as keywords where a column name stands.
const RESERVED: [&str; 24] = [
    "ALL", "AND", "AS", "ASC", "BETWEEN", "BY", "CASE", "DESC", "DISTINCT", "ELSE", "END", "FROM",
    "GROUP", "HAVING", "IN", "IS", "LIMIT", "NOT", "NULL", "OR", "ORDER", "SELECT", "WHERE",
    "WITH",
];

/// A string literal.
pub(crate) fn string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// An instant, `toDateTime64('2026-11-01 08:00:00', 6, 'UTC')`, or `None` outside the
/// years ClickHouse holds (1900 to 2299).
pub(crate) fn instant(micros: i64) -> Option<String> {
    let day = micros.div_euclid(DAY_MICROS);
    if !(FIRST_DAY..=LAST_DAY).contains(&day) {
        return None;
    }
    let text = format_timestamp(micros).replace('T', " ").replace('Z', "");
    Some(format!("toDateTime64('{text}', 6, 'UTC')"))
}

fn date(day: i64) -> Option<String> {
    let day = i32::try_from(day).ok()?;
    (FIRST_DAY..=LAST_DAY)
        .contains(&i64::from(day))
        .then(|| format!("toDate32('{}')", format_date(day)))
}

/// A float literal that reads back as the same `f64`.
/// A value as a ClickHouse literal (`None`: a date or time outside the years ClickHouse
/// holds).
pub(crate) fn value(v: &Value) -> Option<String> {
    Some(match v {
        Value::Str(s) => string(s),
        Value::Int(i) => i.to_string(),
        Value::Float(x) => float(*x),
        Value::Bool(b) => b.to_string(),
        Value::Date(d) => date(i64::from(*d))?,
        Value::Timestamp(t) => instant(*t)?,
    })
}

fn float(x: f64) -> String {
    match x {
        _ if x.is_nan() => "nan".into(),
        f64::INFINITY => "inf".into(),
        f64::NEG_INFINITY => "-inf".into(),
        _ => format!("{x:?}"),
    }
}

/// The SQL of `predicate` over `column` of type `data_type` (`what` names it in errors):
/// an expression that is true for the values that pass and false or NULL for the others.
pub(crate) fn test(
    column: &str,
    data_type: DataType,
    predicate: &Predicate,
    what: &str,
) -> Result<String> {
    Ok(match predicate {
        Predicate::IsNull => format!("{column} IS NULL"),
        Predicate::IsNotNull => format!("{column} IS NOT NULL"),
        Predicate::Cmp(op, v) => compare(column, data_type, *op, v, what)?,
        Predicate::In(values) => {
            let tests = values
                .iter()
                .map(|v| compare(column, data_type, CmpOp::Eq, v, what))
                .collect::<Result<Vec<_>>>()?;
            // `x = v` for each value: an IN list where every one is a plain literal
            let prefix = format!("{column} = ");
            let literals: Option<Vec<&str>> =
                tests.iter().map(|t| t.strip_prefix(&prefix)).collect();
            match (literals, tests.len()) {
                (_, 0) => "0".to_string(),
                (_, 1) => tests[0].clone(),
                (Some(literals), _) => format!("{column} IN ({})", literals.join(", ")),
                (None, _) => format!("({})", tests.join(" OR ")),
            }
        }
        Predicate::Between(lo, hi) => format!(
            "{} AND {}",
            compare(column, data_type, CmpOp::Ge, lo, what)?,
            compare(column, data_type, CmpOp::Le, hi, what)?
        ),
    })
}

/// `column op v`, `v` read as the column's type the way the binder reads it.
fn compare(column: &str, data_type: DataType, op: CmpOp, v: &Value, what: &str) -> Result<String> {
    let sql_op = match op {
        CmpOp::Eq => "=",
        CmpOp::Ne => "!=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
    };
    let out_of_range = || {
        Error::InvalidSegment(format!(
            "{what} is compared with {v}, outside the years ClickHouse's dates and times hold \
             (1900 to 2299): this comparison does not compile"
        ))
    };
    let unexpected = || {
        Error::Internal(format!(
            "{what} of type {data_type} compared with {v} at compile"
        ))
    };
    Ok(match (data_type, v) {
        (DataType::String, Value::Str(s)) => format!("{column} {sql_op} {}", string(s)),
        (DataType::Bool, Value::Bool(b)) => format!("{column} {sql_op} {b}"),
        (DataType::Float, Value::Float(x)) => format!("{column} {sql_op} {}", float(*x)),
        (DataType::Float, Value::Int(i)) => format!("{column} {sql_op} {}", float(*i as f64)),
        (DataType::Int, Value::Int(i)) => format!("{column} {sql_op} {i}"),
        (DataType::Int, Value::Float(x)) if x.is_finite() => {
            let lit = IntLit {
                floor: x.floor() as i64,
                ceil: x.ceil() as i64,
            };
            between_integers(column, op, &lit, &|n| Some(n.to_string())).ok_or_else(unexpected)?
        }
        (DataType::Date, _) => {
            let lit = match v {
                Value::Date(d) => IntLit::exact(i64::from(*d)),
                Value::Timestamp(t) => micros_to_days(*t),
                Value::Str(s) => match crate::value::parse_date(s) {
                    Some(d) => IntLit::exact(i64::from(d)),
                    None => {
                        micros_to_days(crate::value::parse_timestamp(s).ok_or_else(unexpected)?)
                    }
                },
                _ => return Err(unexpected()),
            };
            between_integers(column, op, &lit, &date).ok_or_else(out_of_range)?
        }
        (DataType::Timestamp, _) => {
            let micros = match v {
                Value::Timestamp(t) => *t,
                Value::Date(d) => i64::from(*d) * DAY_MICROS,
                Value::Str(s) => crate::value::parse_timestamp(s).ok_or_else(unexpected)?,
                _ => return Err(unexpected()),
            };
            format!(
                "{column} {sql_op} {}",
                instant(micros).ok_or_else(out_of_range)?
            )
        }
        _ => return Err(unexpected()),
    })
}

/// `column op lit` over integers (or days) where `lit` may lie between two of them;
/// `show` writes an integer as SQL (`None`: out of range, and so is the answer).
fn between_integers(
    column: &str,
    op: CmpOp,
    lit: &IntLit,
    show: &dyn Fn(i64) -> Option<String>,
) -> Option<String> {
    let whole = lit.floor == lit.ceil;
    Some(match op {
        CmpOp::Eq if whole => format!("{column} = {}", show(lit.floor)?),
        CmpOp::Eq => "0".to_string(),
        CmpOp::Ne if whole => format!("{column} != {}", show(lit.floor)?),
        CmpOp::Ne => format!("{column} IS NOT NULL"),
        CmpOp::Lt => format!("{column} < {}", show(lit.ceil)?),
        CmpOp::Le => format!("{column} <= {}", show(lit.floor)?),
        CmpOp::Gt => format!("{column} > {}", show(lit.floor)?),
        CmpOp::Ge => format!("{column} >= {}", show(lit.ceil)?),
    })
}

/// The ClickHouse type of a members or events column of `data_type` (nullable).
pub(crate) fn column_type(data_type: DataType) -> &'static str {
    match data_type {
        DataType::String => "Nullable(String)",
        DataType::Int => "Nullable(Int64)",
        DataType::Float => "Nullable(Float64)",
        DataType::Bool => "Nullable(Bool)",
        DataType::Date => "Nullable(Date32)",
        DataType::Timestamp => "Nullable(DateTime64(6, 'UTC'))",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_strings_are_quoted_where_needed() {
        assert_eq!(ident("city"), "city");
        assert_eq!(ident("会员等级"), "`会员等级`");
        assert_eq!(ident("order"), "`order`");
        assert_eq!(ident("a`b"), "`a\\`b`");
        assert_eq!(string("O'Brien\\x"), "'O\\'Brien\\\\x'");
    }

    #[test]
    fn integers_compared_with_fractions_and_dates_with_instants() {
        let t = |data_type, p: Predicate| test("x", data_type, &p, "x").unwrap();
        assert_eq!(
            t(DataType::Int, Predicate::Cmp(CmpOp::Ge, Value::Float(2.5))),
            "x >= 3"
        );
        assert_eq!(
            t(DataType::Int, Predicate::Cmp(CmpOp::Eq, Value::Float(2.5))),
            "0"
        );
        assert_eq!(
            t(DataType::Int, Predicate::Cmp(CmpOp::Ne, Value::Float(2.5))),
            "x IS NOT NULL"
        );
        assert_eq!(
            t(
                DataType::Date,
                Predicate::Cmp(CmpOp::Gt, Value::from("2026-01-01T08:00:00Z"))
            ),
            "x > toDate32('2026-01-01')"
        );
        assert_eq!(
            t(
                DataType::Timestamp,
                Predicate::Cmp(CmpOp::Lt, Value::from("2026-01-01"))
            ),
            "x < toDateTime64('2026-01-01 00:00:00', 6, 'UTC')"
        );
        assert_eq!(
            t(
                DataType::String,
                Predicate::In(vec!["a".into(), "b".into()])
            ),
            "x IN ('a', 'b')"
        );
        assert_eq!(t(DataType::String, Predicate::In(vec![])), "0");
        let far = test(
            "x",
            DataType::Date,
            &Predicate::Cmp(CmpOp::Lt, Value::from("1800-01-01")),
            "birthday",
        );
        assert!(far.unwrap_err().to_string().contains("1900 to 2299"));
    }
}
