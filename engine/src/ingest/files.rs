//! Reading input files into Arrow batches; the format comes from the file extension.

use std::io::{BufReader, Cursor, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType as ArrowType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::column::cast_to;
use crate::error::{Error, Result};
use crate::value::DataType;

/// Rows per batch when reading files.
const BATCH_ROWS: usize = 64 * 1024;

/// The formats memberdb reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// `.parquet`, `.pq`
    Parquet,
    /// `.csv` with a header row
    Csv,
    /// `.jsonl`, `.ndjson`, `.json`: one JSON object per line
    JsonLines,
}

impl FileFormat {
    /// The format of `path`, from its extension.
    pub fn of(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ext.as_str() {
            "parquet" | "pq" => Ok(FileFormat::Parquet),
            "csv" => Ok(FileFormat::Csv),
            "jsonl" | "ndjson" | "json" => Ok(FileFormat::JsonLines),
            _ => Err(Error::bad_input(
                &path.display().to_string(),
                None,
                None,
                "unknown file type; use a .parquet, .csv or .jsonl file",
            )),
        }
    }
}

/// Columns that are always read as strings, whatever they look like (ids are not numbers).
const KEY_COLUMNS: [&str; 3] = ["member_id", "event", "tag"];

/// The schema to read a text file with: key columns as strings, and dates and timestamps as
/// strings too, converted afterwards by [`parse_temporal`] so a bad value is reported with
/// its row. Returns the temporal columns with their types.
fn text_schema(schema: Schema) -> (Schema, Vec<(String, DataType)>) {
    let mut temporal = Vec::new();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let name = f.name().as_str();
            let as_text = Field::new(name, ArrowType::Utf8, true);
            if KEY_COLUMNS.contains(&name) {
                return as_text;
            }
            match f.data_type() {
                ArrowType::Date32 | ArrowType::Date64 => {
                    temporal.push((name.to_string(), DataType::Date));
                    as_text
                }
                ArrowType::Timestamp(_, _) => {
                    temporal.push((name.to_string(), DataType::Timestamp));
                    as_text
                }
                _ => f.as_ref().clone(),
            }
        })
        .collect();
    (Schema::new(fields), temporal)
}

/// Converts the temporal columns of text-file batches from strings.
fn parse_temporal(
    batches: Vec<RecordBatch>,
    temporal: &[(String, DataType)],
    source: &str,
) -> Result<Vec<RecordBatch>> {
    if temporal.is_empty() {
        return Ok(batches);
    }
    let mut first_row = 1;
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        let schema = batch.schema();
        let mut fields = Vec::new();
        let mut columns = Vec::new();
        for (field, column) in schema.fields().iter().zip(batch.columns()) {
            match temporal.iter().find(|(n, _)| n == field.name()) {
                Some((name, data_type)) => {
                    let parsed = cast_to(column, *data_type, source, name, first_row)?;
                    fields.push(Field::new(name, parsed.data_type().clone(), true));
                    columns.push(parsed);
                }
                None => {
                    fields.push(field.as_ref().clone());
                    columns.push(column.clone());
                }
            }
        }
        first_row += batch.num_rows();
        out.push(
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
                .map_err(|e| Error::Internal(format!("re-typed batch: {e}")))?,
        );
    }
    Ok(out)
}

/// Reads a whole file into Arrow batches.
pub fn read_batches(path: &Path) -> Result<Vec<RecordBatch>> {
    read_batches_with_progress(path, &mut |_| {})
}

/// Reads a whole file into Arrow batches, calling `progress` with the rows read so far.
pub fn read_batches_with_progress(
    path: &Path,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<RecordBatch>> {
    let format = FileFormat::of(path)?;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    read_batches_from(
        bytes::Bytes::from(bytes),
        format,
        &path.display().to_string(),
        progress,
    )
}

/// Reads the bytes of a file of `format` (named `name` in messages) into Arrow batches.
pub(crate) fn read_batches_from(
    bytes: bytes::Bytes,
    format: FileFormat,
    name: &str,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<RecordBatch>> {
    let mut rows = 0;
    let mut report = |batch: RecordBatch| {
        rows += batch.num_rows();
        progress(rows);
        batch
    };
    let bad = |e: &dyn std::fmt::Display| Error::bad_input(name, None, None, e.to_string());
    let seek = |e: std::io::Error| Error::bad_input(name, None, None, e.to_string());
    let batches: Result<Vec<RecordBatch>> = match format {
        FileFormat::Parquet => {
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .map_err(|e| bad(&e))?
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(|e| bad(&e))?;
            reader
                .map(|b| b.map(&mut report).map_err(|e| bad(&e)))
                .collect()
        }
        FileFormat::Csv => {
            let mut file = Cursor::new(&bytes[..]);
            let format = arrow::csv::reader::Format::default().with_header(true);
            let (schema, _) = format
                .infer_schema(BufReader::new(&mut file), None)
                .map_err(|e| bad(&e))?;
            file.seek(SeekFrom::Start(0)).map_err(seek)?;
            let (schema, temporal) = text_schema(schema);
            let reader = arrow::csv::ReaderBuilder::new(Arc::new(schema))
                .with_format(format)
                .with_batch_size(BATCH_ROWS)
                .build(BufReader::new(file))
                .map_err(|e| bad(&e))?;
            let batches: Result<Vec<RecordBatch>> = reader
                .map(|b| b.map(&mut report).map_err(|e| bad(&e)))
                .collect();
            parse_temporal(batches?, &temporal, name)
        }
        FileFormat::JsonLines => {
            let mut buffered = BufReader::new(Cursor::new(&bytes[..]));
            let (schema, _) =
                arrow::json::reader::infer_json_schema_from_seekable(&mut buffered, None)
                    .map_err(|e| bad(&e))?;
            buffered.seek(SeekFrom::Start(0)).map_err(seek)?;
            let (schema, temporal) = text_schema(schema);
            let reader = arrow::json::ReaderBuilder::new(Arc::new(schema))
                .with_coerce_primitive(true)
                .with_batch_size(BATCH_ROWS)
                .build(buffered)
                .map_err(|e| bad(&e))?;
            let batches: Result<Vec<RecordBatch>> = reader
                .map(|b| b.map(&mut report).map_err(|e| bad(&e)))
                .collect();
            parse_temporal(batches?, &temporal, name)
        }
    };
    batches
}
