//! CSV and JSON Lines writers of EXPORT: values formatted as the CLI prints them (dates
//! `YYYY-MM-DD`, timestamps RFC 3339 UTC, floats shortest round-trip), NULL as an empty CSV
//! field or JSON `null`, each written straight into the line buffer.

use std::fs::File;
use std::io::{BufWriter, Write};

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{
    Array, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_schema::Schema;

use super::{Sink, buffered, finish_buffer, io_error};
use crate::error::{Error, Result};
use crate::value::{write_date, write_timestamp};

/// How a line is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Csv,
    Json,
}

/// One column of a batch, downcast once.
enum Cells<'a> {
    Str(&'a StringArray),
    Int(&'a Int64Array),
    Float(&'a Float64Array),
    Bool(&'a BooleanArray),
    Date(&'a Date32Array),
    Timestamp(&'a TimestampMicrosecondArray),
}

impl<'a> Cells<'a> {
    fn of(array: &'a dyn Array) -> Cells<'a> {
        use arrow_schema::DataType as A;
        match array.data_type() {
            A::Int64 => Cells::Int(array.as_primitive::<Int64Type>()),
            A::Float64 => Cells::Float(array.as_primitive::<Float64Type>()),
            A::Boolean => Cells::Bool(array.as_boolean()),
            A::Date32 => Cells::Date(array.as_primitive::<Date32Type>()),
            A::Timestamp(_, _) => {
                Cells::Timestamp(array.as_primitive::<TimestampMicrosecondType>())
            }
            _ => Cells::Str(array.as_string::<i32>()),
        }
    }

    fn is_valid(&self, i: usize) -> bool {
        match self {
            Cells::Str(a) => a.is_valid(i),
            Cells::Int(a) => a.is_valid(i),
            Cells::Float(a) => a.is_valid(i),
            Cells::Bool(a) => a.is_valid(i),
            Cells::Date(a) => a.is_valid(i),
            Cells::Timestamp(a) => a.is_valid(i),
        }
    }

    /// Appends value `i` to `out` in `style`.
    fn write(&self, i: usize, out: &mut Vec<u8>, style: Style) -> Result<()> {
        if !self.is_valid(i) {
            if style == Style::Json {
                out.extend_from_slice(b"null");
            }
            return Ok(());
        }
        let quoted = style == Style::Json;
        match self {
            Cells::Str(a) => match style {
                Style::Csv => write_csv_field(out, a.value(i)),
                Style::Json => json_string(out, a.value(i))?,
            },
            Cells::Int(a) => {
                out.extend_from_slice(itoa::Buffer::new().format(a.value(i)).as_bytes())
            }
            Cells::Float(a) => {
                let x = a.value(i);
                if x.is_finite() {
                    out.extend_from_slice(ryu::Buffer::new().format_finite(x).as_bytes());
                } else if quoted {
                    out.extend_from_slice(b"null");
                }
            }
            Cells::Bool(a) => out.extend_from_slice(if a.value(i) { b"true" } else { b"false" }),
            // Dates and timestamps are text in JSON, bare in CSV (no character needs quotes).
            Cells::Date(a) => quote_if(quoted, out, |out| write_date(out, a.value(i))),
            Cells::Timestamp(a) => quote_if(quoted, out, |out| write_timestamp(out, a.value(i))),
        }
        Ok(())
    }
}

/// Writes `value` between double quotes when `quoted`.
fn quote_if(quoted: bool, out: &mut Vec<u8>, value: impl FnOnce(&mut Vec<u8>)) {
    if quoted {
        out.push(b'"');
    }
    value(out);
    if quoted {
        out.push(b'"');
    }
}

/// A JSON string: as it is between quotes when nothing in it needs escaping (the common
/// case), else through serde_json.
fn json_string(out: &mut Vec<u8>, text: &str) -> Result<()> {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return Ok(());
    }
    serde_json::to_writer(&mut *out, text)
        .map_err(|e| Error::Internal(format!("writing JSON: {e}")))
}

/// Appends one CSV field as memberdb writes them (EXPORT, and the CLI's `--format csv`): quoted
/// when it holds a comma, quote or line break, or is an empty string (so it differs from
/// NULL, an empty field), as DuckDB and PostgreSQL write them.
pub fn write_csv_field(out: &mut Vec<u8>, text: &str) {
    let quote = text.is_empty()
        || text
            .bytes()
            .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if !quote {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    out.push(b'"');
    for b in text.bytes() {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Writes `rows` lines made by `line` (which appends row `i`'s line to the buffer), in
/// chunks of about 64 KiB.
fn write_lines(
    out: &mut BufWriter<File>,
    rows: usize,
    mut line: impl FnMut(usize, &mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    let mut lines = Vec::with_capacity(1 << 16);
    for row in 0..rows {
        line(row, &mut lines)?;
        if lines.len() >= 1 << 16 {
            out.write_all(&lines).map_err(io_error)?;
            lines.clear();
        }
    }
    out.write_all(&lines).map_err(io_error)
}

fn columns(batch: &RecordBatch) -> Vec<Cells<'_>> {
    batch
        .columns()
        .iter()
        .map(|c| Cells::of(c.as_ref()))
        .collect()
}

/// CSV with a header row.
pub(super) struct CsvSink {
    out: BufWriter<File>,
    header: Vec<String>,
    wrote_header: bool,
}

impl CsvSink {
    pub(super) fn new(file: File, schema: &Schema) -> Self {
        CsvSink {
            out: buffered(file),
            header: schema.fields().iter().map(|f| f.name().clone()).collect(),
            wrote_header: false,
        }
    }

    fn header(&mut self) -> Result<()> {
        let mut line = Vec::new();
        for (i, name) in self.header.iter().enumerate() {
            if i > 0 {
                line.push(b',');
            }
            write_csv_field(&mut line, name);
        }
        line.push(b'\n');
        self.wrote_header = true;
        self.out.write_all(&line).map_err(io_error)
    }
}

impl Sink for CsvSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if !self.wrote_header {
            self.header()?;
        }
        let cells = columns(batch);
        write_lines(&mut self.out, batch.num_rows(), |row, line| {
            for (i, column) in cells.iter().enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                column.write(row, line, Style::Csv)?;
            }
            line.push(b'\n');
            Ok(())
        })
    }

    fn finish(mut self: Box<Self>) -> Result<File> {
        if !self.wrote_header {
            self.header()?;
        }
        finish_buffer(self.out)
    }
}

/// One JSON object per line, keys in column order.
pub(super) struct JsonLinesSink {
    out: BufWriter<File>,
    /// Each column name as a JSON string with its colon: `"city":`.
    keys: Vec<String>,
}

impl JsonLinesSink {
    pub(super) fn new(file: File, schema: &Schema) -> Self {
        let keys = schema
            .fields()
            .iter()
            .map(|f| format!("{}:", serde_json::Value::from(f.name().as_str())))
            .collect();
        JsonLinesSink {
            out: buffered(file),
            keys,
        }
    }
}

impl Sink for JsonLinesSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let cells = columns(batch);
        let keys = &self.keys;
        write_lines(&mut self.out, batch.num_rows(), |row, line| {
            line.push(b'{');
            for (i, column) in cells.iter().enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                line.extend_from_slice(keys[i].as_bytes());
                column.write(row, line, Style::Json)?;
            }
            line.extend_from_slice(b"}\n");
            Ok(())
        })
    }

    fn finish(self: Box<Self>) -> Result<File> {
        finish_buffer(self.out)
    }
}
