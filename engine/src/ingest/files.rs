//! Reading input files into Arrow batches: the format comes from the file extension (a
//! `.gz` after it is decompressed), directories stand for the part files in them, and text
//! formats are read as text, typed later by [`super::typing`] over the whole load.

use std::cell::Cell;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType as ArrowType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result};

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
        Self::and_compression(path).map(|(format, _)| format)
    }

    /// The format of `path` and whether it is gzip-compressed (`members.csv.gz`).
    pub fn and_compression(path: &Path) -> Result<(Self, bool)> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let (name, gzip) = match name.strip_suffix(".gz") {
            Some(inner) => (inner, true),
            None => (name.as_str(), false),
        };
        let format = match name.rsplit_once('.').map_or("", |(_, ext)| ext) {
            "parquet" | "pq" => FileFormat::Parquet,
            "csv" => FileFormat::Csv,
            "jsonl" | "ndjson" | "json" => FileFormat::JsonLines,
            _ => {
                return Err(Error::bad_input(
                    &path.display().to_string(),
                    None,
                    None,
                    "unknown file type; use a .parquet, .csv or .jsonl file (or one of \
                     them with .gz after it), or a directory of them",
                ));
            }
        };
        Ok((format, gzip))
    }

    /// Is the format text, whose columns [`super::typing`] types?
    pub(crate) fn is_text(self) -> bool {
        matches!(self, FileFormat::Csv | FileFormat::JsonLines)
    }
}

/// The files `path` stands for: itself, or for a directory the files in it (and in its
/// subdirectories) of a format memberdb reads, in name order. Hidden files and files
/// starting with `_` (`_SUCCESS`, `_metadata`) are left out, as Spark and DuckDB write them.
pub fn input_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let file = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            if file.is_dir() {
                pending.push(file);
            } else if FileFormat::of(&file).is_ok() {
                found.push(file);
            }
        }
    }
    if found.is_empty() {
        return Err(Error::bad_input(
            &path.display().to_string(),
            None,
            None,
            "the directory holds no .parquet, .csv or .jsonl files (nor .gz ones)",
        ));
    }
    found.sort();
    Ok(found)
}

/// The bytes of a file as memberdb reads them: decompressed when `gzip`.
pub(crate) fn decompressed(bytes: bytes::Bytes, gzip: bool, name: &str) -> Result<bytes::Bytes> {
    if !gzip {
        return Ok(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4));
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_end(&mut out)
        .map_err(|e| Error::bad_input(name, None, None, format!("cannot decompress: {e}")))?;
    Ok(out.into())
}

/// Reads a whole file into typed Arrow batches: text columns get the types a load of the
/// file alone would give them.
pub fn read_batches(path: &Path) -> Result<Vec<RecordBatch>> {
    let (format, gzip) = FileFormat::and_compression(path)?;
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bytes = decompressed(bytes.into(), gzip, &name)?;
    let batches = read_batches_from(bytes, format, &name, &mut |_| {})?;
    if !format.is_text() {
        return Ok(batches);
    }
    super::typing::type_alone(batches, &name)
}

/// Counts the bytes read through it, for progress.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Reads the (decompressed) bytes of a file of `format`, named `name` in messages, into
/// Arrow batches, calling `progress` with the bytes read so far. CSV and JSON Lines columns
/// come back as text (lists in JSON as lists), for [`super::typing`] to type.
pub(crate) fn read_batches_from(
    bytes: bytes::Bytes,
    format: FileFormat,
    name: &str,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<RecordBatch>> {
    let total = bytes.len() as u64;
    let consumed = Rc::new(Cell::new(0u64));
    let mut rows = 0u64;
    let all_rows = Cell::new(None::<u64>);
    let mut report = |batch: RecordBatch| {
        rows += batch.num_rows() as u64;
        progress(match all_rows.get() {
            Some(all) => total * rows / all.max(1),
            None => consumed.get().min(total),
        });
        batch
    };
    let bad = |e: &dyn std::fmt::Display| {
        let message = e.to_string();
        let message = match message.contains("Disabled feature at compile time: brotli") {
            true => "the file is compressed with brotli, which memberdb does not read; write \
                     it again with snappy, zstd, gzip or lz4 (DuckDB: COPY ... TO 'f.parquet' \
                     (COMPRESSION zstd))"
                .to_string(),
            false => message,
        };
        Error::bad_input(name, None, None, message)
    };
    let seek = |e: std::io::Error| Error::bad_input(name, None, None, e.to_string());
    match format {
        FileFormat::Parquet => {
            let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| bad(&e))?;
            all_rows.set(Some(
                builder.metadata().file_metadata().num_rows().max(0) as u64
            ));
            let reader = builder
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(|e| bad(&e))?;
            reader
                .map(|b| b.map(&mut report).map_err(|e| bad(&e)))
                .collect()
        }
        FileFormat::Csv => {
            let mut file = Cursor::new(&bytes[..]);
            let format = arrow_csv::reader::Format::default().with_header(true);
            // The header alone: every column is read as text.
            let (schema, _) = format
                .infer_schema(BufReader::new(&mut file), Some(0))
                .map_err(|e| bad(&e))?;
            file.seek(SeekFrom::Start(0)).map_err(seek)?;
            let reader = arrow_csv::ReaderBuilder::new(Arc::new(as_text(&schema)))
                .with_format(format)
                .with_batch_size(BATCH_ROWS)
                .build(BufReader::new(Counting {
                    inner: file,
                    count: consumed.clone(),
                }))
                .map_err(|e| bad(&e))?;
            reader
                .map(|b| b.map(&mut report).map_err(|e| bad(&e)))
                .collect()
        }
        FileFormat::JsonLines => {
            let mut buffered = BufReader::new(Cursor::new(&bytes[..]));
            let (schema, _) =
                arrow_json::reader::infer_json_schema_from_seekable(&mut buffered, None)
                    .map_err(|e| bad(&e))?;
            drop(buffered);
            let reader = arrow_json::ReaderBuilder::new(Arc::new(as_text(&schema)))
                .with_coerce_primitive(true)
                .with_batch_size(BATCH_ROWS)
                .build(BufReader::new(Counting {
                    inner: Cursor::new(&bytes[..]),
                    count: consumed.clone(),
                }))
                .map_err(|e| bad(&e))?;
            reader
                .map(|b| b.map(&mut report).map_err(|e| bad(&e)))
                .collect()
        }
    }
}

/// `schema` with every scalar column as text; lists and structs (JSON) keep their shape.
fn as_text(schema: &Schema) -> Schema {
    Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                ArrowType::List(_) | ArrowType::LargeList(_) | ArrowType::Struct(_) => {
                    f.as_ref().clone()
                }
                _ => Field::new(f.name(), ArrowType::Utf8, true),
            })
            .collect::<Vec<_>>(),
    )
}
