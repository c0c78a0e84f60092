//! EXPORT: every member of a segment written to a Parquet, CSV or JSON Lines file, streaming
//! in batches (no row limit), into a temporary file renamed into place when complete.

mod text;

pub use text::write_csv_field;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType as ArrowType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::column::arrow_type;
use crate::database::View;
use crate::error::{Error, Result};
use crate::segment::Segment;
use roaring::RoaringBitmap;

/// Members per batch written.
const BATCH: usize = 64 * 1024;

/// The formats EXPORT writes, by the file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// `.parquet`
    Parquet,
    /// `.csv`: a header row; NULL is an empty field, an empty string `""`.
    Csv,
    /// `.jsonl`: one object per member; NULL is `null`.
    JsonLines,
}

impl ExportFormat {
    /// The format of `path`, from its extension.
    pub fn of(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        Ok(match ext.as_str() {
            "parquet" | "pq" => ExportFormat::Parquet,
            "csv" => ExportFormat::Csv,
            "jsonl" | "ndjson" => ExportFormat::JsonLines,
            _ => {
                return Err(Error::InvalidSegment(format!(
                    "EXPORT writes .parquet, .csv or .jsonl files, not '{}'",
                    path.display()
                )));
            }
        })
    }
}

/// Where an export's rows go.
trait Sink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;
    fn finish(self: Box<Self>) -> Result<File>;
}

struct ParquetSink(ArrowWriter<File>);

impl Sink for ParquetSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.0
            .write(batch)
            .map_err(|e| Error::Internal(format!("writing Parquet: {e}")))
    }

    fn finish(self: Box<Self>) -> Result<File> {
        self.0
            .into_inner()
            .map_err(|e| Error::Internal(format!("writing Parquet: {e}")))
    }
}

impl View<'_> {
    /// Writes every member of `segment` to `path` (format by extension): `member_id`, then
    /// `columns` (attribute names). The file appears whole or not at all: rows go to a
    /// temporary file beside it, synced and renamed into place. `progress` is called with
    /// the members written so far and the segment's size. Returns the members written.
    pub fn export(
        &self,
        segment: &Segment,
        columns: &[String],
        path: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<u64> {
        self.export_members(&self.members(segment)?, columns, None, path, progress)
    }

    /// [`View::export`] of the members `bitmap`.
    pub(crate) fn export_members(
        &self,
        bitmap: &RoaringBitmap,
        columns: &[String],
        access: Option<&crate::access::Access>,
        path: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<u64> {
        let format = ExportFormat::of(path)?;
        let state = self.state();
        // A session's hidden fields are left out; its other masked fields are written as
        // the masked text.
        let mask = |name: &str| access.and_then(|a| a.mask_of(name));
        let attrs: Vec<_> = columns
            .iter()
            .filter(|c| mask(c) != Some(crate::access::Mask::Hide))
            .map(|c| state.column_at(c, self.now().micros()))
            .collect::<Result<_>>()?;
        let total = bitmap.len();
        let mut fields = vec![Field::new("member_id", ArrowType::Utf8, false)];
        fields.extend(attrs.iter().map(|a| match mask(&a.name) {
            Some(_) => Field::new(&a.name, ArrowType::Utf8, true),
            None => Field::new(&a.name, arrow_type(a.column.data_type()), true),
        }));
        let schema = Arc::new(Schema::new(fields));
        let temporary = temporary_path(path);
        let file = File::create(&temporary).map_err(|e| Error::io(&temporary, e))?;
        let written = (|| {
            let mut sink: Box<dyn Sink> = match format {
                ExportFormat::Parquet => {
                    // Dictionary pages only for columns with few distinct values: for ids,
                    // phones and e-mails (about one value per member) the writer would
                    // intern every value only to fall back to plain pages.
                    let mut props = WriterProperties::builder()
                        .set_compression(Compression::SNAPPY)
                        .set_column_dictionary_enabled("member_id".into(), false);
                    for attr in &attrs {
                        let distinct = attr.column.dict().map_or(0, |d| d.len() as u64);
                        if distinct > 1 << 16 && distinct * 4 > total {
                            props = props
                                .set_column_dictionary_enabled(attr.name.as_str().into(), false);
                        }
                    }
                    let props = props.build();
                    Box::new(ParquetSink(
                        ArrowWriter::try_new(file, schema.clone(), Some(props))
                            .map_err(|e| Error::Internal(format!("writing Parquet: {e}")))?,
                    ))
                }
                ExportFormat::Csv => Box::new(text::CsvSink::new(file, &schema)),
                ExportFormat::JsonLines => Box::new(text::JsonLinesSink::new(file, &schema)),
            };
            let mut rows = Vec::with_capacity(BATCH);
            let mut done = 0u64;
            let mut iter = bitmap.iter().peekable();
            progress(0, total);
            while iter.peek().is_some() {
                rows.clear();
                rows.extend(iter.by_ref().take(BATCH));
                let ids: ArrayRef = Arc::new(
                    rows.iter()
                        .map(|&r| Some(state.members.member_id(r)))
                        .collect::<StringArray>(),
                );
                let mut arrays = vec![ids];
                arrays.extend(attrs.iter().map(|a| {
                    match (access, mask(&a.name)) {
                        (Some(access), Some(_)) => Arc::new(
                            rows.iter()
                                .map(|&r| {
                                    let value = a.column.get(r as usize)?;
                                    match access.show(&a.name, value)? {
                                        crate::value::Value::Str(s) => Some(s),
                                        other => Some(other.to_string()),
                                    }
                                })
                                .collect::<StringArray>(),
                        ) as ArrayRef,
                        _ => a.column.to_arrow(Some(&rows)),
                    }
                }));
                let batch = RecordBatch::try_new(schema.clone(), arrays)
                    .map_err(|e| Error::Internal(format!("export batch: {e}")))?;
                sink.write(&batch)?;
                done += rows.len() as u64;
                progress(done, total);
            }
            let file = sink.finish()?;
            file.sync_all().map_err(|e| Error::io(&temporary, e))?;
            Ok(done)
        })();
        let renamed = written.and_then(|n| {
            std::fs::rename(&temporary, path)
                .map(|()| n)
                .map_err(|e| Error::io(path, e))
        });
        if renamed.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        renamed
    }
}

/// A name beside `path` for the file being written.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// A buffered writer whose errors name the file.
fn buffered(file: File) -> BufWriter<File> {
    BufWriter::with_capacity(1 << 20, file)
}

fn io_error(e: std::io::Error) -> Error {
    Error::Internal(format!("writing the export: {e}"))
}

fn finish_buffer(mut out: BufWriter<File>) -> Result<File> {
    out.flush().map_err(io_error)?;
    out.into_inner().map_err(|e| io_error(e.into_error()))
}
