//! Bulk loads: a [`Load`] is the inputs of one atomic change (files, directories of part
//! files, `.gz` files, Arrow batches) with its rules, read with progress and handed to the
//! write path as one log record.

use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::Database;
use super::commit::ReadInput;
use crate::error::{Error, Result};
use crate::ingest::command::{LoadRules, content_hash};
use crate::ingest::{
    FileFormat, IngestReport, LoadInfo, decompressed, input_files, read_batches_from,
};
use crate::value::DataType;
use crate::wal::change::{LoadFormat, LoadKind, LoggedInput, Outcome};

/// What an input file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// `member_id` and attribute columns.
    Members,
    /// `member_id`, `event`, `ts` and property columns.
    Events,
    /// `member_id`, `tag`.
    Tags,
    /// `member_id` (optional) and a column per identifier type: one observation per row
    /// (DESIGN section 11).
    Identities,
}

impl From<InputKind> for LoadKind {
    fn from(kind: InputKind) -> Self {
        match kind {
            InputKind::Members => LoadKind::Members,
            InputKind::Events => LoadKind::Events,
            InputKind::Tags => LoadKind::Tags,
            InputKind::Identities => LoadKind::Identities,
        }
    }
}

enum Source {
    Path(PathBuf),
    Batches(Vec<RecordBatch>),
}

/// One load: its inputs are applied as one atomic change (all or nothing, across crashes),
/// under its rules, and recorded in [`Database::loads`].
///
/// ```
/// # fn main() -> memberdb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let members = dir.path().join("members.csv");
/// # std::fs::write(&members, "member_id,phone,points\nM1,02112345678,10\n").unwrap();
/// use memberdb::{Database, DataType, Load, Segment};
///
/// let db = Database::in_memory();
/// let report = db.load(Load::new().members(&members).schema("points", DataType::Float))?;
/// assert_eq!(report.rows, 1);
/// // A leading zero keeps a column text: phone numbers are not numbers.
/// let phone = Segment::attr("phone").eq("02112345678");
/// assert_eq!(db.count(&phone)?, 1);
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct Load {
    inputs: Vec<(LoadKind, Source)>,
    rules: LoadRules,
    /// Rows per part when loading in parts (see [`Load::in_parts`]); 0: one atomic change.
    part_rows: usize,
}

/// Rows of a part when a load goes in parts ([`Load::in_parts`]): a few row groups of
/// the usual Parquet writers, a few hundred megabytes decoded.
pub const PART_ROWS: usize = 4 << 20;

impl Load {
    /// An empty load.
    pub fn new() -> Self {
        Load::default()
    }

    /// Adds a file (or a directory of part files) of `kind`.
    pub fn file(mut self, kind: InputKind, path: impl AsRef<Path>) -> Self {
        self.inputs
            .push((kind.into(), Source::Path(path.as_ref().to_path_buf())));
        self
    }

    /// Adds a members file: `member_id` and attribute columns.
    pub fn members(self, path: impl AsRef<Path>) -> Self {
        self.file(InputKind::Members, path)
    }

    /// Adds an events file: `member_id`, `event`, `ts` and property columns.
    pub fn events(self, path: impl AsRef<Path>) -> Self {
        self.file(InputKind::Events, path)
    }

    /// Adds a tags file: `member_id`, `tag`.
    pub fn tags(self, path: impl AsRef<Path>) -> Self {
        self.file(InputKind::Tags, path)
    }

    /// Adds an identities file: `member_id` (optional), then a column per declared
    /// identifier type; each row is one observation (DESIGN section 11).
    pub fn identities(self, path: impl AsRef<Path>) -> Self {
        self.file(InputKind::Identities, path)
    }

    /// Adds rows given as Arrow batches (typed as they are).
    pub fn batches(mut self, kind: InputKind, batches: Vec<RecordBatch>) -> Self {
        self.inputs.push((kind.into(), Source::Batches(batches)));
        self
    }

    pub(crate) fn untag_batches(mut self, batches: Vec<RecordBatch>) -> Self {
        self.inputs
            .push((LoadKind::UntagPairs, Source::Batches(batches)));
        self
    }

    /// Declares the type of column `name` in every input (`--schema`).
    pub fn schema(mut self, name: &str, data_type: DataType) -> Self {
        self.rules.schema.retain(|(n, _)| n != name);
        self.rules.schema.push((name.to_string(), data_type));
        self
    }

    /// Declares column types written as `--schema` takes them: `phone:string,amount:float`.
    pub fn schema_text(mut self, text: &str) -> Result<Self> {
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((name, type_name)) = item.split_once(':') else {
                return Err(Error::InvalidSegment(format!(
                    "--schema item '{item}' needs a type: write it as name:type \
                     (e.g. phone:string)"
                )));
            };
            let data_type = DataType::from_name(type_name.trim()).ok_or_else(|| {
                Error::InvalidSegment(format!(
                    "--schema: unknown type '{}' for '{}'; the types are {}",
                    type_name.trim(),
                    name.trim(),
                    DataType::NAMES
                ))
            })?;
            self = self.schema(name.trim(), data_type);
        }
        Ok(self)
    }

    /// Loads a column of numbers or times with some values that are not as text, with a
    /// warning naming them, instead of refusing the load.
    pub fn allow_text_fallback(mut self, allow: bool) -> Self {
        self.rules.allow_text_fallback = allow;
        self
    }

    /// Loads inputs whose content was loaded before again, instead of refusing the load.
    pub fn again(mut self, again: bool) -> Self {
        self.rules.again = again;
        self
    }

    /// Makes column `name` tags: each value (or each element of a list) becomes a tag of
    /// the row's member.
    pub fn tags_from(mut self, name: &str) -> Self {
        self.rules.tags_from.push(name.to_string());
        self
    }

    /// Leaves column `name` out (a warning says so).
    pub fn skip(mut self, name: &str) -> Self {
        self.rules.skip.push(name.to_string());
        self
    }

    /// Loads the inputs (Parquet files only: they carry their types) a part at a time, each
    /// part about `rows` rows of whole row groups and its own atomic change, instead of the
    /// whole load as one: memory then holds one part, not every input decoded, which is
    /// what lets a load larger than memory through. A load stopped midway keeps the parts
    /// it applied; the same load run again skips them (SHOW LOADS lists each part, with
    /// its file's content hash and its number) and goes on with the rest. 0 turns it off.
    pub fn in_parts(mut self, rows: usize) -> Self {
        self.part_rows = rows;
        self
    }
}

/// How far the reading of a load has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadProgress {
    /// Bytes of input (decompressed) read so far.
    pub bytes_read: u64,
    /// Bytes of every input (decompressed).
    pub bytes_total: u64,
}

/// The log record of an input, but for its load file's name and checksum.
fn record(
    kind: LoadKind,
    source: String,
    format: LoadFormat,
    gzip: bool,
    hash: Option<String>,
) -> LoggedInput {
    LoggedInput {
        kind,
        file: String::new(),
        format,
        gzip,
        crc: 0,
        source,
        hash,
    }
}

/// Rows of the row groups `groups` of a Parquet file.
fn rows_of(builder: &ParquetRecordBatchReaderBuilder<std::fs::File>, groups: &[usize]) -> i64 {
    groups
        .iter()
        .map(|&g| builder.metadata().row_group(g).num_rows())
        .sum()
}

/// The content hash of a file ([`content_hash`]), read a megabyte at a time.
fn file_hash(file: &std::fs::File) -> std::io::Result<String> {
    use std::io::Read;
    let mut hasher = twox_hash::XxHash3_128::new();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.write(&buf[..n]);
    }
    Ok(format!("{:032x}", hasher.finish_128()))
}

/// A file of a load, read into memory.
struct FileBytes {
    kind: LoadKind,
    path: PathBuf,
    format: FileFormat,
    gzip: bool,
    original: bytes::Bytes,
    content: bytes::Bytes,
}

impl Database {
    /// Applies `load` as one atomic change: every input or none. Text columns are typed
    /// over all the inputs (see [`Load::schema`]); an input whose content was loaded before
    /// refuses the whole load unless [`Load::again`].
    pub fn load(&self, load: Load) -> Result<IngestReport> {
        self.load_with_progress(load, &mut |_| {})
    }

    /// [`Database::load`], reporting the bytes read so far to `progress`.
    pub fn load_with_progress(
        &self,
        load: Load,
        progress: &mut dyn FnMut(LoadProgress),
    ) -> Result<IngestReport> {
        if load.part_rows > 0 {
            return self.load_in_parts(load, progress);
        }
        let mut files = Vec::new();
        let mut inputs: Vec<Option<ReadInput>> = Vec::new();
        for (kind, source) in load.inputs {
            match source {
                Source::Path(path) => {
                    for path in input_files(&path)? {
                        let (format, gzip) = FileFormat::and_compression(&path)?;
                        let original = bytes::Bytes::from(
                            std::fs::read(&path).map_err(|e| Error::io(&path, e))?,
                        );
                        let name = path.display().to_string();
                        let content = decompressed(original.clone(), gzip, &name)?;
                        files.push(FileBytes {
                            kind,
                            path,
                            format,
                            gzip,
                            original,
                            content,
                        });
                        inputs.push(None);
                    }
                }
                Source::Batches(batches) => inputs.push(Some(ReadInput {
                    record: record(kind, "batch".to_string(), LoadFormat::ArrowIpc, false, None),
                    batches,
                    original: None,
                })),
            }
        }
        if inputs.is_empty() {
            return Err(Error::InvalidSegment(
                "nothing to load: give at least one input".to_string(),
            ));
        }
        let total: u64 = files.iter().map(|f| f.content.len() as u64).sum();
        let mut done = 0;
        let mut read = files.into_iter().map(|file| {
            let name = file.path.display().to_string();
            let batches = read_batches_from(file.content.clone(), file.format, &name, &mut |b| {
                progress(LoadProgress {
                    bytes_read: done + b,
                    bytes_total: total,
                })
            })?;
            done += file.content.len() as u64;
            let hash = Some(content_hash(&file.content));
            Ok(ReadInput {
                record: record(file.kind, name, file.format.into(), file.gzip, hash),
                batches,
                original: Some(file.original),
            })
        });
        let inputs = inputs
            .into_iter()
            .map(|input| match input {
                Some(batches) => Ok(batches),
                None => read.next().expect("one read per file"),
            })
            .collect::<Result<Vec<_>>>()?;
        match self.core.load(inputs, load.rules, self.core.clock())? {
            Outcome::Ingest(report) => Ok(report),
            Outcome::Done | Outcome::Count(_) | Outcome::Identity(_) => Ok(IngestReport::default()),
        }
    }

    /// [`Load::in_parts`]: every Parquet input a few row groups at a time, each part its
    /// own load; parts already applied (by an earlier run of the same load) are skipped.
    fn load_in_parts(
        &self,
        load: Load,
        progress: &mut dyn FnMut(LoadProgress),
    ) -> Result<IngestReport> {
        let mut files = Vec::new();
        for (kind, source) in &load.inputs {
            let Source::Path(path) = source else {
                return Err(Error::InvalidSegment(
                    "a load in parts takes files, not batches".to_string(),
                ));
            };
            for path in input_files(path)? {
                if FileFormat::and_compression(&path)? != (FileFormat::Parquet, false) {
                    return Err(Error::InvalidSegment(format!(
                        "{}: a load in parts takes Parquet files only (CSV and JSON Lines \
                         are typed over the whole input); load it without --in-parts",
                        path.display()
                    )));
                }
                files.push((*kind, path));
            }
        }
        if files.is_empty() {
            return Err(Error::InvalidSegment(
                "nothing to load: give at least one input".to_string(),
            ));
        }
        let parquet = |path: &Path, e: parquet::errors::ParquetError| {
            Error::InvalidSegment(format!("{}: {e}", path.display()))
        };
        // Every file's row groups, cut into parts, before anything is applied.
        let mut plans = Vec::new();
        let mut total = 0u64;
        for (kind, path) in files {
            let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
            let hash = file_hash(&file).map_err(|e| Error::io(&path, e))?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(
                file.try_clone().map_err(|e| Error::io(&path, e))?,
            )
            .map_err(|e| parquet(&path, e))?;
            let mut parts: Vec<(Vec<usize>, u64)> = Vec::new();
            for (i, group) in builder.metadata().row_groups().iter().enumerate() {
                let bytes = u64::try_from(group.compressed_size()).unwrap_or(0);
                total += bytes;
                match parts.last_mut() {
                    Some((groups, _)) if rows_of(&builder, groups) < load.part_rows as i64 => {
                        groups.push(i);
                        parts.last_mut().expect("just matched").1 += bytes;
                    }
                    _ => parts.push((vec![i], bytes)),
                }
            }
            plans.push((kind, path, file, hash, parts));
        }
        let history = self.loads();
        let mut report = IngestReport::default();
        let mut done = 0u64;
        for (kind, path, file, hash, parts) in plans {
            let name = path.display().to_string();
            if !load.rules.again
                && let Some(earlier) = history.iter().find(|l| {
                    l.inputs
                        .iter()
                        .any(|i| i.hash.as_deref() == Some(hash.as_str()))
                })
            {
                return Err(Error::Conflict(format!(
                    "{name}: its content was loaded before, whole, in load {} (SHOW LOADS \
                     lists the loads; pass --again to load it once more)",
                    earlier.id
                )));
            }
            let count = parts.len();
            for (n, (groups, bytes)) in parts.into_iter().enumerate() {
                let part_hash = format!("{hash}/{}of{count}", n + 1);
                let applied = history.iter().any(|l| {
                    l.inputs
                        .iter()
                        .any(|i| i.hash.as_deref() == Some(part_hash.as_str()))
                });
                done += bytes;
                if applied && !load.rules.again {
                    report.warnings.push(format!(
                        "{name}: part {} of {count} was loaded before; skipped",
                        n + 1
                    ));
                    progress(LoadProgress {
                        bytes_read: done,
                        bytes_total: total,
                    });
                    continue;
                }
                let reader = ParquetRecordBatchReaderBuilder::try_new(
                    file.try_clone().map_err(|e| Error::io(&path, e))?,
                )
                .map_err(|e| parquet(&path, e))?
                .with_row_groups(groups)
                .with_batch_size(64 * 1024)
                .build()
                .map_err(|e| parquet(&path, e))?;
                let batches = reader
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| Error::InvalidSegment(format!("{name}: {e}")))?;
                let input = ReadInput {
                    record: record(
                        kind,
                        format!("{name} (part {} of {count})", n + 1),
                        LoadFormat::ArrowIpc,
                        false,
                        Some(part_hash),
                    ),
                    batches,
                    original: None,
                };
                let at = self.core.clock();
                if let Outcome::Ingest(part) =
                    self.core.load(vec![input], load.rules.clone(), at)?
                {
                    report.rows += part.rows;
                    report.new_members += part.new_members;
                    report.load = part.load;
                    report.inputs.extend(part.inputs);
                    report.tags_from_columns += part.tags_from_columns;
                    report.warnings.extend(part.warnings);
                }
                progress(LoadProgress {
                    bytes_read: done,
                    bytes_total: total,
                });
            }
        }
        Ok(report)
    }

    /// Every load applied, oldest first (`SHOW LOADS`).
    pub fn loads(&self) -> Vec<LoadInfo> {
        self.snapshot().loads.to_vec()
    }

    /// Loads member rows: new members are created, known ones get the given attributes
    /// overwritten, new columns become new attributes. All or nothing, atomic across crashes.
    pub fn load_members(&self, batches: &[RecordBatch]) -> Result<IngestReport> {
        self.load(Load::new().batches(InputKind::Members, batches.to_vec()))
    }

    /// Appends events; unknown member ids create members. All or nothing.
    pub fn load_events(&self, batches: &[RecordBatch]) -> Result<IngestReport> {
        self.load(Load::new().batches(InputKind::Events, batches.to_vec()))
    }

    /// Adds tags (`member_id`, `tag`); unknown member ids create members. All or nothing.
    pub fn load_tags(&self, batches: &[RecordBatch]) -> Result<IngestReport> {
        self.load(Load::new().batches(InputKind::Tags, batches.to_vec()))
    }

    /// Removes tags in bulk: every (`member_id`, `tag`) pair of the batches. Pairs naming an
    /// unknown member or tag are skipped. All or nothing.
    pub fn unload_tags(&self, batches: &[RecordBatch]) -> Result<IngestReport> {
        self.load(Load::new().untag_batches(batches.to_vec()))
    }

    /// Loads one Parquet, CSV or JSON Lines file (by extension; `.gz` after it, or a
    /// directory of them): [`Database::load`] of one input.
    pub fn load_file(&self, kind: InputKind, path: impl AsRef<Path>) -> Result<IngestReport> {
        self.load(Load::new().file(kind, path))
    }
}
