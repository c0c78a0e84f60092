//! Values, their types, and time: what a column holds and what a segment compares it with.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Microseconds in one day.
pub(crate) const DAY_MICROS: i64 = 86_400_000_000;
/// Microseconds in one hour.
pub(crate) const HOUR_MICROS: i64 = 3_600_000_000;

/// The type of an attribute or event property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    /// UTF-8 text.
    String,
    /// 64-bit signed integer.
    Int,
    /// 64-bit float.
    Float,
    /// true / false.
    Bool,
    /// Calendar date (days since 1970-01-01).
    Date,
    /// UTC timestamp with microsecond precision.
    Timestamp,
}

impl DataType {
    /// The type names [`DataType::from_name`] reads, for messages.
    pub const NAMES: &'static str = "string, integer, float, bool, date, timestamp";

    /// The type a name stands for: the names [`DataType`] prints, and common SQL synonyms
    /// (`text`, `varchar`, `int`, `bigint`, `double`, `boolean`, `timestamptz`), any case.
    pub fn from_name(name: &str) -> Option<DataType> {
        Some(match name.to_ascii_lowercase().as_str() {
            "string" | "text" | "varchar" | "str" => DataType::String,
            "integer" | "int" | "bigint" | "int64" => DataType::Int,
            "float" | "double" | "real" | "float64" | "decimal" | "numeric" => DataType::Float,
            "bool" | "boolean" => DataType::Bool,
            "date" => DataType::Date,
            "timestamp" | "timestamptz" | "datetime" => DataType::Timestamp,
            _ => return None,
        })
    }

    /// True for the types that support range predicates.
    pub fn is_ordered(self) -> bool {
        !matches!(self, DataType::Bool)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataType::String => "string",
            DataType::Int => "integer",
            DataType::Float => "float",
            DataType::Bool => "bool",
            DataType::Date => "date",
            DataType::Timestamp => "timestamp",
        })
    }
}

/// A single value: a literal in a segment, a field of a member, a property of an event.
///
/// Dates and timestamps may be given as strings (`"2026-11-01"`, `"2026-11-01T08:00:00Z"`);
/// they are read according to the type of the column they are compared with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Value {
    /// Text.
    Str(String),
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Bool.
    Bool(bool),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01T00:00:00Z.
    Timestamp(i64),
}

impl Value {
    /// The order of two values of one type (floats by `total_cmp`); `None` across types.
    pub(crate) fn order(&self, other: &Value) -> Option<std::cmp::Ordering> {
        Some(match (self, other) {
            (Value::Str(a), Value::Str(b)) => a.cmp(b),
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Float(a), Value::Float(b)) => a.total_cmp(b),
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Date(a), Value::Date(b)) => a.cmp(b),
            (Value::Timestamp(a), Value::Timestamp(b)) => a.cmp(b),
            _ => return None,
        })
    }

    /// The natural type of this value (strings are strings, even if they look like dates).
    pub fn data_type(&self) -> DataType {
        match self {
            Value::Str(_) => DataType::String,
            Value::Int(_) => DataType::Int,
            Value::Float(_) => DataType::Float,
            Value::Bool(_) => DataType::Bool,
            Value::Date(_) => DataType::Date,
            Value::Timestamp(_) => DataType::Timestamp,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Date(d) => f.write_str(&format_date(*d)),
            Value::Timestamp(t) => f.write_str(&format_timestamp(*t)),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i64::from(i))
    }
}
impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Float(x)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<Timestamp> for Value {
    fn from(t: Timestamp) -> Self {
        Value::Timestamp(t.0)
    }
}

/// A UTC instant with microsecond precision: the *now* of a query, the time of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The wall clock.
    pub fn now() -> Self {
        Timestamp(chrono::Utc::now().timestamp_micros())
    }

    /// Reads `2026-11-01`, `2026-11-01T08:00:00Z`, `2026-11-01 08:00:00` (UTC), any RFC 3339
    /// timestamp with an offset, and timestamps as DuckDB and PostgreSQL print them
    /// (`2025-07-09 07:26:09.849265+00`, `+05:30`, `+0530`, ` UTC`).
    pub fn parse(text: &str) -> Option<Self> {
        parse_timestamp(text).map(Timestamp)
    }

    /// Microseconds since the Unix epoch.
    pub fn micros(self) -> i64 {
        self.0
    }

    /// RFC 3339 in UTC, always with six digits of microseconds
    /// (`2026-12-01T00:00:00.000000Z`): how change stream entries give their `at`.
    pub fn to_rfc3339_micros(self) -> String {
        let mut text = format_timestamp(self.0);
        if self.0.rem_euclid(1_000_000) == 0 && text.ends_with('Z') {
            text.insert_str(text.len() - 1, ".000000");
        }
        text
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_timestamp(self.0))
    }
}

/// Days since the epoch of a `YYYY-MM-DD` string.
pub(crate) fn parse_date(text: &str) -> Option<i32> {
    let date = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((date - epoch).num_days()).ok()
}

/// Microseconds since the epoch of a date or timestamp string (UTC unless it has an offset).
/// Besides RFC 3339: a space for the `T`, fractions of a second, and offsets as DuckDB and
/// PostgreSQL print them (`+00`, `+05:30`, `+0530`, a space before them, `Z` or ` UTC`).
pub(crate) fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_micros());
    }
    let utc = text
        .strip_suffix(" UTC")
        .or_else(|| text.strip_suffix('Z'))
        .or_else(|| text.strip_suffix('z'));
    if let Some(naive) = utc {
        // `2025-07-09 07:26:09Z`: RFC 3339 wants the `T`.
        return parse_naive(naive.trim_end()).map(|t| t.and_utc().timestamp_micros());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f%#z",
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%dT%H:%M:%S%.f %#z",
        "%Y-%m-%d %H:%M:%S%.f %#z",
    ] {
        if let Ok(t) = chrono::DateTime::parse_from_str(text, format) {
            return Some(t.timestamp_micros());
        }
    }
    if let Some(t) = parse_naive(text) {
        return Some(t.and_utc().timestamp_micros());
    }
    parse_date(text).map(|d| i64::from(d) * DAY_MICROS)
}

/// A timestamp without an offset.
fn parse_naive(text: &str) -> Option<chrono::NaiveDateTime> {
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(t);
        }
    }
    None
}

/// (year, month, day) of a day count since 1970-01-01, proleptic Gregorian (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn push_digits(out: &mut Vec<u8>, value: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut v = value;
    for d in digits[..width].iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&digits[..width]);
}

/// Appends `YYYY-MM-DD` (years outside 0 to 9999 through chrono).
pub(crate) fn write_date(out: &mut Vec<u8>, days: i32) {
    let (year, month, day) = civil_from_days(i64::from(days));
    if !(0..=9999).contains(&year) {
        out.extend_from_slice(chrono_date(days).as_bytes());
        return;
    }
    push_digits(out, year as u32, 4);
    out.push(b'-');
    push_digits(out, month, 2);
    out.push(b'-');
    push_digits(out, day, 2);
}

/// Appends `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (years outside 0 to 9999 through chrono).
pub(crate) fn write_timestamp(out: &mut Vec<u8>, micros: i64) {
    let days = micros.div_euclid(DAY_MICROS);
    let in_day = micros.rem_euclid(DAY_MICROS);
    let Ok(days32) = i32::try_from(days) else {
        out.extend_from_slice(chrono_timestamp(micros).as_bytes());
        return;
    };
    let (year, _, _) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        out.extend_from_slice(chrono_timestamp(micros).as_bytes());
        return;
    }
    write_date(out, days32);
    let seconds = (in_day / 1_000_000) as u32;
    out.push(b'T');
    push_digits(out, seconds / 3600, 2);
    out.push(b':');
    push_digits(out, seconds / 60 % 60, 2);
    out.push(b':');
    push_digits(out, seconds % 60, 2);
    let fraction = (in_day % 1_000_000) as u32;
    if fraction != 0 {
        out.push(b'.');
        push_digits(out, fraction, 6);
    }
    out.push(b'Z');
}

/// `YYYY-MM-DD` (see [`write_date`]).
pub(crate) fn format_date(days: i32) -> String {
    let mut out = Vec::with_capacity(10);
    write_date(&mut out, days);
    String::from_utf8(out).expect("dates are ASCII")
}

/// RFC 3339 in UTC, with microseconds when there are any (see [`write_timestamp`]).
pub(crate) fn format_timestamp(micros: i64) -> String {
    let mut out = Vec::with_capacity(27);
    write_timestamp(&mut out, micros);
    String::from_utf8(out).expect("timestamps are ASCII")
}

/// Dates outside years 0 to 9999, through chrono.
fn chrono_date(days: i32) -> String {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid epoch");
    match epoch.checked_add_signed(chrono::Duration::days(i64::from(days))) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => format!("<date {days}>"),
    }
}

/// Timestamps outside years 0 to 9999, through chrono.
fn chrono_timestamp(micros: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) if micros % 1_000_000 == 0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => format!("<timestamp {micros}>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_date_and_timestamp_text_equals_chrono_formatting() {
        let mut days: Vec<i32> = (-800_000..800_000).step_by(997).collect();
        days.extend([-719_528, 0, 59, 60, 365, 2_932_896, 11_016, 20_000]);
        for d in days {
            let mut out = Vec::new();
            write_date(&mut out, d);
            assert_eq!(String::from_utf8(out).unwrap(), chrono_date(d), "{d}");
        }
        for t in [
            0,
            1,
            -1,
            999_999,
            DAY_MICROS - 1,
            1_752_045_969_849_265,
            -62_135_596_800_000_000,
            253_402_300_799_999_999,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = Vec::new();
            write_timestamp(&mut out, t);
            assert_eq!(String::from_utf8(out).unwrap(), chrono_timestamp(t), "{t}");
        }
    }

    #[test]
    fn parses_dates_and_timestamps_as_utc() {
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_timestamp("1970-01-02"), Some(DAY_MICROS));
        assert_eq!(parse_timestamp("1970-01-01T01:00:00Z"), Some(HOUR_MICROS));
        assert_eq!(parse_timestamp("1970-01-01 01:00:00"), Some(HOUR_MICROS));
        assert_eq!(
            parse_timestamp("1970-01-01T09:00:00+08:00"),
            Some(HOUR_MICROS)
        );
        assert_eq!(parse_timestamp("2026-13-01"), None);
        assert_eq!(parse_date("yesterday"), None);
    }

    #[test]
    fn parses_timestamps_as_duckdb_and_postgresql_print_them() {
        let t = parse_timestamp("2025-07-09T07:26:09.849265Z").unwrap();
        for text in [
            "2025-07-09 07:26:09.849265+00",
            "2025-07-09 07:26:09.849265+00:00",
            "2025-07-09 07:26:09.849265 +0000",
            "2025-07-09 15:26:09.849265+08",
            "2025-07-09 12:56:09.849265+05:30",
            "2025-07-09 12:56:09.849265+0530",
            "2025-07-09 02:26:09.849265-05",
            "2025-07-09 07:26:09.849265 UTC",
            "2025-07-09 07:26:09.849265Z",
            "2025-07-09T07:26:09.849265",
        ] {
            assert_eq!(parse_timestamp(text), Some(t), "{text}");
        }
        assert_eq!(
            parse_timestamp("2025-07-09 07:26:09+00"),
            parse_timestamp("2025-07-09T07:26:09Z")
        );
        for bad in [
            "2025-07-09 07:26:09+",
            "2025-07-09 07:26:09 PST",
            "07:26:09+00",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_round_trip() {
        let t = parse_timestamp("2026-11-01T08:00:00Z").unwrap();
        assert_eq!(format_timestamp(t), "2026-11-01T08:00:00Z");
        assert_eq!(
            Timestamp(t).to_rfc3339_micros(),
            "2026-11-01T08:00:00.000000Z"
        );
        assert_eq!(
            Timestamp(t + 5).to_rfc3339_micros(),
            "2026-11-01T08:00:00.000005Z"
        );
        assert_eq!(format_date(parse_date("2026-02-28").unwrap()), "2026-02-28");
    }
}
