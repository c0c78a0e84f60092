//! Checkpoints: a state written as a generation of files, and opened again (format
//! version 2; version 1 databases, which had no log, open too).
//!
//! Every checkpoint writes a new *generation* of data files (`members-<g>.parquet`,
//! `events-<g>.parquet`, `events-<g>.bitmaps`, `tags-<g>.bitmaps`, `live-<g>.roaring`)
//! continued by the log `wal-<g>.log`, then switches `manifest.json` atomically to them, then
//! deletes the files of older generations and their logs. A crash at any point leaves the
//! old or the new generation complete.
//!
//! A checkpoint taken while the database runs starts `wal-<g>.log` first (the write path
//! appends there from then on) and writes the generation from a snapshot afterwards. Until
//! the manifest names generation `g`, opening replays the old generation's log and then the
//! logs that follow it, `wal-<g'+1>.log`, `wal-<g'+2>.log`, ..., each starting at the LSN
//! after the previous one's last record (see `database::commit::replay`).

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray,
    UInt32Array, new_null_array,
};
use arrow_schema::{DataType as ArrowType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use super::{Storage, bitmaps, changes, columns};
use crate::column::{Column, arrow_type, cast_to};
use crate::error::{Error, Result};
use crate::ingest::StagedEvents;
use crate::segment::Segment;
use crate::state::State;
use crate::value::DataType;

/// The format version this build writes and reads.
/// Version 3 stores group definitions as text (`groups::stored`); version 4 saves the
/// day bitmaps' repeat levels (`Manifest::event_repeats`); version 5 adds the column file
/// (`columns.rs`); version 6 the engine's clock and the change streams (`changes.rs`);
/// version 7 the computed traits (`Manifest::traits`) and the definition order shared by
/// groups and traits (`seq`); version 8 the identities; version 9 erased members (a NULL
/// `member_id` in the members file, dictionaries' erased strings); version 10 the members
/// file's `member_row` and `live` columns and the tags as Parquet (`tags-<g>.parquet`), for
/// engines that read the files (`crate::compile`); 1 to 9 are still read.
pub(crate) const FORMAT_VERSION: u32 = 10;
const MANIFEST: &str = "manifest.json";
/// Prefix of log file names (`wal-<generation>.log`).
pub(crate) const LOG_PREFIX: &str = "wal-";
const EVENT_CHUNK: usize = 1 << 20;
/// Members per batch written at a checkpoint.
const MEMBER_CHUNK: usize = 1 << 16;
/// Column of the events file with each event's member row id (position in the members
/// file), so open needs no lookup of member ids.
pub(crate) const MEMBER_ROW: &str = "member_row";
/// Column of the members file saying whether the row is a live member (since version 10).
pub(crate) const LIVE: &str = "live";

#[derive(Serialize, Deserialize)]
struct NamedType {
    name: String,
    #[serde(rename = "type")]
    data_type: DataType,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize, Deserialize)]
struct GroupEntry {
    name: String,
    /// Canonical text with its language version since format version 3 (`groups::stored`).
    #[serde(with = "crate::groups::stored")]
    definition: Segment,
    /// `KEEP CHANGES n DAYS` (absent: the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keep_days: Option<u32>,
    /// Its place in the definition order shared with traits (since version 7).
    #[serde(default)]
    seq: u64,
    /// The position of its definition (since version 9; 0: unknown).
    #[serde(default, skip_serializing_if = "is_zero")]
    defined_at: u64,
}

#[derive(Serialize, Deserialize)]
struct TraitEntry {
    name: String,
    /// Canonical text with its language version (`traits::stored`).
    #[serde(with = "crate::traits::stored")]
    definition: crate::traits::TraitDef,
    /// Its place in the definition order shared with groups.
    seq: u64,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) format_version: u32,
    pub(crate) generation: u64,
    /// The log that continues this generation (none in version 1, which had no log).
    #[serde(default)]
    pub(crate) log_file: Option<String>,
    /// The last log record this generation's files contain; the log starts after it.
    #[serde(default)]
    pub(crate) checkpoint_lsn: u64,
    /// CRC-32 of every data file of the generation (none in version 1).
    #[serde(default)]
    pub(crate) checksums: std::collections::BTreeMap<String, u32>,
    members_file: String,
    pub(crate) member_count: u64,
    live_file: String,
    attributes: Vec<NamedType>,
    events_file: String,
    pub(crate) event_count: u64,
    event_properties: Vec<NamedType>,
    event_types: Vec<String>,
    tags_file: String,
    /// The tags as Parquet (`tags-<g>.parquet`: `member_row`, `tag`; since version 10), for
    /// other engines: memberdb reads `tags_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tags_parquet_file: Option<String>,
    /// Events per type, in the order the events file holds them (each type contiguous and
    /// sorted by time). With `event_bitmaps_file` and the events file's `member_row`
    /// column, open takes the events as they are instead of re-ingesting them.
    #[serde(default)]
    event_runs: Vec<(String, u64)>,
    /// Per type: members with any event (`<type>/any`) and per UTC day (`<type>/<day>`).
    #[serde(default)]
    event_bitmaps_file: Option<String>,
    /// Whether `event_bitmaps_file` holds the repeat levels (`<type>/<day>x<n>`: members
    /// with at least n events of the type that day), since version 4. A flag rather than
    /// the version: an older database upgraded for writing keeps its older bitmaps file, and
    /// its levels are rebuilt from the events at open until a checkpoint saves them.
    #[serde(default)]
    event_repeats: bool,
    /// The column file (`columns-<g>.bin`, since version 5): what open maps instead of
    /// decoding the Parquet files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    columns_file: Option<String>,
    /// The change streams and consumer groups (`changes-<g>.bin`, since version 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    changes_file: Option<String>,
    /// The identities (`identities-<g>.json`, since version 8), when any identifier type
    /// is declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    identities_file: Option<String>,
    /// The engine's clock (microseconds since the epoch, since version 6; before, the
    /// clock starts at the wall clock of the open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) clock: Option<i64>,
    #[serde(default)]
    exclusive_tag_groups: Vec<(String, Vec<String>)>,
    groups: Vec<GroupEntry>,
    /// The computed traits (since version 7); their values are computed again at open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    traits: Vec<TraitEntry>,
    /// Every load applied (`SHOW LOADS`), oldest first; absent before load commands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    loads: Vec<crate::ingest::LoadInfo>,
}

fn bad(storage: &dyn Storage, message: impl Into<String>) -> Error {
    Error::BadDatabase {
        path: storage.location(),
        message: message.into(),
    }
}

fn io(storage: &dyn Storage, name: &str, e: std::io::Error) -> Error {
    Error::io(storage.location().join(name), e)
}

/// Writes `batches` as one Parquet file to `out`, a batch at a time: what is in memory at
/// once is a batch and the row group being encoded, never the file.
fn write_parquet(
    out: &mut (dyn std::io::Write + Send),
    schema: Arc<Schema>,
    batches: impl Iterator<Item = Result<RecordBatch>>,
) -> Result<()> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(out, schema, Some(props))
        .map_err(|e| Error::Internal(format!("parquet writer: {e}")))?;
    for batch in batches {
        writer
            .write(&batch?)
            .map_err(|e| Error::Internal(format!("parquet write: {e}")))?;
    }
    writer
        .close()
        .map_err(|e| Error::Internal(format!("parquet close: {e}")))?;
    Ok(())
}

/// A writer that passes bytes on and keeps their CRC-32 (a data file's checksum in the
/// manifest).
struct Checksummed<'a> {
    inner: &'a mut (dyn std::io::Write + Send),
    hasher: crc32fast::Hasher,
}

impl std::io::Write for Checksummed<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `name` through [`Storage::write_atomic_with`] with what `fill` writes, and gives
/// back the CRC-32 of the bytes (a data file's checksum in the manifest).
fn write_checksummed(
    storage: &dyn Storage,
    name: &str,
    fill: &mut dyn FnMut(&mut (dyn std::io::Write + Send)) -> std::io::Result<()>,
) -> std::io::Result<u32> {
    let mut crc = 0;
    storage.write_atomic_with(name, &mut |out| {
        let mut out = Checksummed {
            inner: out,
            hasher: crc32fast::Hasher::new(),
        };
        let written = fill(&mut out);
        crc = out.hasher.finalize();
        written
    })?;
    Ok(crc)
}

/// Streams a Parquet file `name` and gives back its CRC-32. An error of the engine while
/// encoding is given back as it is, not as an I/O error.
fn stream_parquet(
    storage: &dyn Storage,
    name: &str,
    schema: Arc<Schema>,
    mut batches: impl Iterator<Item = Result<RecordBatch>>,
) -> Result<u32> {
    let mut failure = None;
    let written = write_checksummed(storage, name, &mut |out| {
        write_parquet(out, schema.clone(), &mut batches).map_err(|e| {
            let message = e.to_string();
            failure = Some(e);
            std::io::Error::other(message)
        })
    });
    match (written, failure) {
        (_, Some(e)) => Err(e),
        (Err(e), None) => Err(io(storage, name, e)),
        (Ok(crc), None) => Ok(crc),
    }
}

/// The log file of generation `generation`.
pub(crate) fn log_file_name(generation: u64) -> String {
    format!("{LOG_PREFIX}{generation}.log")
}

/// The generation of a log file name made by [`log_file_name`].
pub(crate) fn log_generation(name: &str) -> Option<u64> {
    name.strip_prefix(LOG_PREFIX)?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// The manifest, if the storage holds a database.
pub(crate) fn read_manifest(storage: &dyn Storage) -> Result<Option<Manifest>> {
    if !storage.exists(MANIFEST) {
        return Ok(None);
    }
    let bytes = storage
        .read(MANIFEST)
        .map_err(|e| io(storage, MANIFEST, e))?;
    let manifest: Manifest = crate::util::json::from_slice(&bytes)
        .map_err(|e| bad(storage, format!("{MANIFEST} is not readable: {e}")))?;
    if manifest.format_version > FORMAT_VERSION {
        return Err(bad(
            storage,
            format!(
                "format version {} is newer than this memberdb reads ({FORMAT_VERSION}); upgrade memberdb",
                manifest.format_version
            ),
        ));
    }
    Ok(Some(manifest))
}

/// Why a checkpoint failed, and so whether the database can carry on.
#[derive(Debug)]
pub(crate) enum SaveError {
    /// Writing the new generation failed before the switch: the old one stays in force.
    Before(Error),
    /// Writing the manifest failed: which manifest a crash would leave is unknown.
    Switching(Error),
}

/// Writes `state`, which holds every change up to log record `checkpoint_lsn`, as a new
/// generation with an empty log, switches the manifest to it, and deletes what the old
/// generation used (best effort: a file left behind goes at the next checkpoint). Returns
/// the new manifest. For a database no one writes to meanwhile (a new one, `save_to`); the
/// write path's checkpoints start the log first and call [`write_generation`] themselves.
pub(crate) fn save(
    state: &State,
    storage: &dyn Storage,
    checkpoint_lsn: u64,
) -> std::result::Result<Manifest, SaveError> {
    let generation = read_manifest(storage)
        .map_err(SaveError::Before)?
        .map_or(1, |m| m.generation + 1);
    let log_file = start_log(storage, generation, checkpoint_lsn + 1).map_err(SaveError::Before)?;
    let manifest = write_generation(state, storage, generation, checkpoint_lsn, log_file)
        .map_err(SaveError::Before)?;
    switch_manifest(storage, &manifest).map_err(SaveError::Switching)?;
    let _ = remove_superseded(storage, &manifest);
    Ok(manifest)
}

/// Creates the empty log of generation `generation`, whose first record will be
/// `first_lsn`, durably (a log that exists is one opening may follow). Returns its name.
pub(crate) fn start_log(storage: &dyn Storage, generation: u64, first_lsn: u64) -> Result<String> {
    let log_file = log_file_name(generation);
    storage
        .write_atomic(&log_file, &crate::wal::record::file_header(first_lsn))
        .map_err(|e| io(storage, &log_file, e))?;
    Ok(log_file)
}

/// Makes `manifest` the one in force, atomically.
pub(crate) fn switch_manifest(storage: &dyn Storage, manifest: &Manifest) -> Result<()> {
    write_manifest(storage, manifest)
}

/// Writes the data files of generation `generation` from `state` (every change up to log
/// record `checkpoint_lsn`), continued by `log_file`, and returns the manifest naming them;
/// the manifest in force is not touched.
pub(crate) fn write_generation(
    state: &State,
    storage: &dyn Storage,
    generation: u64,
    checkpoint_lsn: u64,
    log_file: String,
) -> Result<Manifest> {
    let mut checksums = std::collections::BTreeMap::new();
    let members_file = format!("members-{generation}.parquet");
    let events_file = format!("events-{generation}.parquet");
    let tags_file = format!("tags-{generation}.bitmaps");
    let live_file = format!("live-{generation}.roaring");
    let tags_parquet_file = format!("tags-{generation}.parquet");

    // members: member_id, member_row, live + every attribute, in row id order (row id =
    // position), streamed a chunk of rows at a time
    // member_id is NULL for an erased member (version 9).
    let mut fields = vec![
        Field::new("member_id", ArrowType::Utf8, true),
        Field::new(MEMBER_ROW, ArrowType::UInt32, false),
        Field::new(LIVE, ArrowType::Boolean, false),
    ];
    for attr in state.attrs.iter() {
        fields.push(Field::new(
            &attr.name,
            arrow_type(attr.column.data_type()),
            true,
        ));
    }
    let schema = Arc::new(Schema::new(fields));
    let member_count = state.members.len();
    let batches = (0..member_count).step_by(MEMBER_CHUNK).map(|start| {
        let rows: Vec<u32> =
            (start as u32..(start + MEMBER_CHUNK).min(member_count) as u32).collect();
        let live = state.members.live();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(
                rows.iter()
                    .map(|&r| (!state.members.is_erased(r)).then(|| state.members.member_id(r)))
                    .collect::<StringArray>(),
            ),
            Arc::new(UInt32Array::from(rows.clone())),
            Arc::new(BooleanArray::from_iter(
                rows.iter().map(|&r| Some(live.contains(r))),
            )),
        ];
        columns.extend(state.attrs.iter().map(|a| a.column.to_arrow(Some(&rows))));
        RecordBatch::try_new(schema.clone(), columns)
            .map_err(|e| Error::Internal(format!("members batch: {e}")))
    });
    let crc = stream_parquet(storage, &members_file, schema.clone(), batches)?;
    checksums.insert(members_file.clone(), crc);

    // events: member_id, event, ts, every property; sorted by type, then time
    let mut fields = vec![
        Field::new("member_id", ArrowType::Utf8, false),
        Field::new("event", ArrowType::Utf8, false),
        Field::new("ts", arrow_type(DataType::Timestamp), false),
        Field::new(MEMBER_ROW, ArrowType::UInt32, false),
    ];
    for (name, data_type) in &state.events.props {
        fields.push(Field::new(name, arrow_type(*data_type), true));
    }
    let schema = Arc::new(Schema::new(fields));
    let batches = state.events.types.iter().flat_map(|(event, part)| {
        let schema = schema.clone();
        (0..part.len()).step_by(EVENT_CHUNK).map(move |start| {
            let rows: Vec<u32> =
                (start as u32..(start + EVENT_CHUNK).min(part.len()) as u32).collect();
            let mut columns: Vec<ArrayRef> = vec![
                Arc::new(
                    rows.iter()
                        .map(|&i| Some(state.members.member_id(part.members[i as usize])))
                        .collect::<StringArray>(),
                ),
                Arc::new(StringArray::from(vec![event.as_str(); rows.len()])),
                Arc::new(
                    arrow_array::TimestampMicrosecondArray::from_iter_values(
                        rows.iter().map(|&i| part.ts[i as usize]),
                    )
                    .with_timezone("UTC"),
                ),
                Arc::new(UInt32Array::from_iter_values(
                    rows.iter().map(|&i| part.members[i as usize]),
                )),
            ];
            for (name, data_type) in &state.events.props {
                columns.push(match part.props.get(name) {
                    Some(c) => c.to_arrow(Some(&rows)),
                    None => new_null_array(&arrow_type(*data_type), rows.len()),
                });
            }
            RecordBatch::try_new(schema.clone(), columns)
                .map_err(|e| Error::Internal(format!("events batch: {e}")))
        })
    });
    let crc = stream_parquet(storage, &events_file, schema.clone(), batches)?;
    checksums.insert(events_file.clone(), crc);

    let crc = write_tags_parquet(state, storage, &tags_parquet_file)?;
    checksums.insert(tags_parquet_file.clone(), crc);

    let columns_file = format!("columns-{generation}.bin");
    let crc = write_checksummed(storage, &columns_file, &mut |out| {
        columns::write(state, out)
    })
    .map_err(|e| io(storage, &columns_file, e))?;
    checksums.insert(columns_file.clone(), crc);

    let mut write = |name: &str, bytes: &[u8]| {
        checksums.insert(name.to_string(), crc32fast::hash(bytes));
        storage
            .write_atomic(name, bytes)
            .map_err(|e| io(storage, name, e))
    };
    let event_bitmaps_file = format!("events-{generation}.bitmaps");
    let repeats: Vec<_> = state
        .events
        .types
        .values()
        .map(|part| part.repeats.saved_levels())
        .collect();
    let names: Vec<(String, &RoaringBitmap)> = state
        .events
        .types
        .iter()
        .zip(&repeats)
        .flat_map(|((event, part), repeats)| {
            let days = part
                .days
                .iter()
                .map(move |(day, bitmap)| (format!("{event}/{day}"), bitmap.as_ref()));
            let repeats = repeats.iter().flat_map(move |(day, levels)| {
                levels
                    .iter()
                    .enumerate()
                    .map(move |(k, bitmap)| (format!("{event}/{day}x{}", k + 2), bitmap.as_ref()))
            });
            std::iter::once((format!("{event}/any"), part.any.as_ref()))
                .chain(days)
                .chain(repeats)
        })
        .collect();
    let bytes = bitmaps::encode(names.iter().map(|(n, b)| (n.as_str(), *b)));
    write(&event_bitmaps_file, &bytes)?;

    let bytes = bitmaps::encode(state.tags.iter());
    write(&tags_file, &bytes)?;
    let changes_file = format!("changes-{generation}.bin");
    let bytes = changes::encode(
        state
            .groups
            .groups
            .iter()
            .map(|g| (g.name.as_str(), &g.stream)),
        &state.consumers,
    );
    write(&changes_file, &bytes)?;
    let mut bytes = Vec::new();
    state
        .members
        .live()
        .serialize_into(&mut bytes)
        .map_err(|e| io(storage, &live_file, e))?;
    write(&live_file, &bytes)?;
    let identities_file =
        (!state.identity.is_empty()).then(|| format!("identities-{generation}.json"));
    if let Some(file) = &identities_file {
        write(file, &crate::identity::saved::encode(&state.identity))?;
    }

    let manifest = Manifest {
        identities_file,
        format_version: FORMAT_VERSION,
        generation,
        log_file: Some(log_file),
        checkpoint_lsn,
        checksums,
        members_file: members_file.clone(),
        member_count: state.members.len() as u64,
        live_file: live_file.clone(),
        attributes: state
            .attrs
            .iter()
            .map(|a| NamedType {
                name: a.name.clone(),
                data_type: a.column.data_type(),
            })
            .collect(),
        events_file: events_file.clone(),
        event_count: state.events.len() as u64,
        event_properties: state
            .events
            .props
            .iter()
            .map(|(name, t)| NamedType {
                name: name.clone(),
                data_type: *t,
            })
            .collect(),
        event_types: state.events.types.keys().cloned().collect(),
        tags_file: tags_file.clone(),
        tags_parquet_file: Some(tags_parquet_file),
        event_runs: state
            .events
            .types
            .iter()
            .map(|(event, part)| (event.clone(), part.len() as u64))
            .collect(),
        event_bitmaps_file: Some(event_bitmaps_file.clone()),
        event_repeats: true,
        columns_file: Some(columns_file),
        changes_file: Some(changes_file),
        clock: Some(state.clock),
        exclusive_tag_groups: state.tags.exclusive_groups().to_vec(),
        groups: state
            .groups
            .groups
            .iter()
            .map(|g| GroupEntry {
                name: g.name.clone(),
                definition: g.definition.clone(),
                keep_days: (g.keep_days != crate::groups::DEFAULT_KEEP_DAYS).then_some(g.keep_days),
                seq: g.seq,
                defined_at: g.defined_at,
            })
            .collect(),
        traits: state
            .traits
            .traits
            .iter()
            .map(|t| TraitEntry {
                name: t.name.clone(),
                definition: t.definition.clone(),
                seq: t.seq,
            })
            .collect(),
        loads: state.loads.to_vec(),
    };
    Ok(manifest)
}

/// The tags as Parquet: `member_row` (UInt32), `tag` (UTF-8), both not null, one row per
/// member and tag, by tag name, then row. Returns the file's CRC-32.
fn write_tags_parquet(state: &State, storage: &dyn Storage, name: &str) -> Result<u32> {
    let schema = Arc::new(Schema::new(vec![
        Field::new(MEMBER_ROW, ArrowType::UInt32, false),
        Field::new("tag", ArrowType::Utf8, false),
    ]));
    let batches = state.tags.iter().flat_map(|(tag, bitmap)| {
        let schema = schema.clone();
        let rows: Vec<u32> = bitmap.iter().collect();
        let pieces: Vec<Vec<u32>> = rows.chunks(EVENT_CHUNK).map(<[u32]>::to_vec).collect();
        pieces.into_iter().map(move |rows| {
            let tags = StringArray::from(vec![tag; rows.len()]);
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(UInt32Array::from(rows)), Arc::new(tags)],
            )
            .map_err(|e| Error::Internal(format!("tags batch: {e}")))
        })
    });
    stream_parquet(storage, name, schema.clone(), batches)
}

/// The Parquet files of a generation other engines read (members, events, tags), by name.
pub(crate) struct ParquetFiles {
    pub(crate) members: String,
    pub(crate) events: String,
    pub(crate) tags: String,
}

impl Manifest {
    /// The generation's Parquet files, when they are those of format version 10 or later
    /// (member rows and liveness in the members file, tags as Parquet).
    pub(crate) fn parquet_files(&self) -> Option<ParquetFiles> {
        Some(ParquetFiles {
            members: self.members_file.clone(),
            events: self.events_file.clone(),
            tags: self.tags_parquet_file.clone()?,
        })
    }
}

fn write_manifest(storage: &dyn Storage, manifest: &Manifest) -> Result<()> {
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::Internal(format!("manifest: {e}")))?;
    storage
        .write_atomic(MANIFEST, &json)
        .map_err(|e| io(storage, MANIFEST, e))
}

/// Gives a version 1 database (no log) a log and a version 2 manifest, without rewriting
/// its data files, so that it can take writes.
pub(crate) fn upgrade_manifest(storage: &dyn Storage, manifest: &mut Manifest) -> Result<()> {
    let log_file = start_log(storage, manifest.generation, manifest.checkpoint_lsn + 1)?;
    manifest.log_file = Some(log_file);
    manifest.format_version = FORMAT_VERSION;
    write_manifest(storage, manifest)
}

/// After a replay: deletes load files no replayed record names (a load that crashed before
/// its record reached the log) and temporary files. `logs` are every log replayed.
pub(crate) fn remove_unreferenced_loads(storage: &dyn Storage, logs: &[String]) -> Result<()> {
    let names = storage.list().map_err(|e| io(storage, ".", e))?;
    let loads = load_files(&names);
    let named = named_in_logs(storage, logs.iter(), &loads)?;
    for name in &names {
        let orphan = loads.contains(&name.as_str()) && !named.contains(name.as_str());
        if orphan || name.ends_with(".tmp") {
            storage.remove(name).map_err(|e| io(storage, name, e))?;
        }
    }
    Ok(())
}

/// The bulk-load files among `names` (not the temporary ones being written).
fn load_files(names: &[String]) -> Vec<&str> {
    names
        .iter()
        .filter(|n| n.starts_with(crate::wal::load_file::PREFIX) && !n.ends_with(".tmp"))
        .map(String::as_str)
        .collect()
}

/// Which of `candidates` (load-file names) the logs `logs` name. Reads nothing when there
/// are no candidates, the usual case; otherwise searches each log where it is mapped,
/// without copying it (a log can hold gigabytes).
fn named_in_logs<'a>(
    storage: &dyn Storage,
    logs: impl Iterator<Item = &'a String>,
    candidates: &[&'a str],
) -> Result<std::collections::BTreeSet<&'a str>> {
    let mut named = std::collections::BTreeSet::new();
    if candidates.is_empty() {
        return Ok(named);
    }
    for log in logs {
        let bytes = match storage.map(log) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(storage, log, e)),
        };
        for name in candidates {
            if !named.contains(name) && memchr::memmem::find(&bytes, name.as_bytes()).is_some() {
                named.insert(*name);
            }
        }
        if named.len() == candidates.len() {
            break;
        }
    }
    Ok(named)
}

/// Once `manifest` is in force: deletes the data files of other generations, every other log
/// and the load files those logs name. Runs while writers go on, so it leaves alone what a
/// writer may be creating: load files no superseded log names, temporary files (both go at
/// the next open if orphaned).
pub(crate) fn remove_superseded(storage: &dyn Storage, manifest: &Manifest) -> Result<()> {
    let current = [
        Some(&manifest.members_file),
        Some(&manifest.events_file),
        manifest.event_bitmaps_file.as_ref(),
        manifest.columns_file.as_ref(),
        manifest.changes_file.as_ref(),
        manifest.identities_file.as_ref(),
        Some(&manifest.tags_file),
        manifest.tags_parquet_file.as_ref(),
        Some(&manifest.live_file),
        manifest.log_file.as_ref(),
    ];
    let names = storage.list().map_err(|e| io(storage, ".", e))?;
    let is_current = |name: &String| current.iter().flatten().any(|c| *c == name);
    let superseded_logs = names
        .iter()
        .filter(|n| n.starts_with(LOG_PREFIX) && n.ends_with(".log") && !is_current(n));
    let loads = load_files(&names);
    let superseded_loads = named_in_logs(storage, superseded_logs, &loads)?;
    for name in &names {
        let data = [
            "members-",
            "events-",
            "columns-",
            "changes-",
            "tags-",
            "live-",
            "identities-",
            LOG_PREFIX,
        ]
        .iter()
        .any(|p| name.starts_with(p))
            && !name.ends_with(".tmp");
        let superseded_load = superseded_loads.contains(name.as_str());
        if (data && !is_current(name)) || superseded_load {
            storage.remove(name).map_err(|e| io(storage, name, e))?;
        }
    }
    Ok(())
}

/// The batches of a stored Parquet file, decoded one at a time as they are pulled.
fn parquet_batches<'s>(
    storage: &'s dyn Storage,
    name: &'s str,
) -> Result<impl Iterator<Item = Result<RecordBatch>> + 's> {
    parquet_batches_counted(storage, name, None)
}

/// The batches of a Parquet file. With `expected` (a row count and what the rows are), a
/// file whose footer declares another number of rows is refused before anything is read or
/// reserved: a damaged manifest must not make open reserve memory for rows not there.
fn parquet_batches_counted<'s>(
    storage: &'s dyn Storage,
    name: &'s str,
    expected: Option<(u64, &str)>,
) -> Result<impl Iterator<Item = Result<RecordBatch>> + 's> {
    let bytes = storage.map(name).map_err(|e| io(storage, name, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| bad(storage, format!("{name}: {e}")))?;
    let rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    if let Some((count, what)) = expected
        && count != rows
    {
        return Err(bad(
            storage,
            format!("{name} holds {rows} rows but the manifest says {count} {what}"),
        ));
    }
    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| bad(storage, format!("{name}: {e}")))?;
    Ok(reader.map(move |b| b.map_err(|e| bad(storage, format!("{name}: {e}")))))
}

fn read_parquet(storage: &dyn Storage, name: &str) -> Result<Vec<RecordBatch>> {
    parquet_batches(storage, name)?.collect()
}

/// Takes the saved events as they are: each type's run of rows (already sorted by time)
/// appended to its partition with the stored member rows, and the day bitmaps read back
/// instead of rebuilt. Every stored row and order is checked, so a damaged file is refused.
fn restore_events(
    storage: &dyn Storage,
    manifest: &Manifest,
    bitmaps_file: &str,
    state: &mut State,
) -> Result<()> {
    let file = &manifest.events_file;
    let member_count = state.members.len() as u32;
    // The runs say how much each partition reserves: they must add up to the file's rows.
    let declared = manifest
        .event_runs
        .iter()
        .try_fold(0u64, |sum, (_, n)| sum.checked_add(*n));
    let batches = parquet_batches_counted(
        storage,
        file,
        Some((declared.unwrap_or(u64::MAX), "events in its event runs")),
    )?;
    let mut runs = manifest.event_runs.iter();
    // The run being filled: its event type, its length, and the rows it still lacks.
    let mut current: Option<(&String, u64, u64)> = None;
    for batch in batches {
        let batch = batch?;
        let rows = batch
            .column_by_name(MEMBER_ROW)
            .and_then(|c| c.as_any().downcast_ref::<UInt32Array>())
            .ok_or_else(|| bad(storage, format!("{file}: '{MEMBER_ROW}' is not UInt32")))?;
        if rows.null_count() > 0 || rows.values().iter().any(|&r| r >= member_count) {
            return Err(bad(
                storage,
                format!("{file}: a member_row is out of range"),
            ));
        }
        let ts = batch
            .column_by_name("ts")
            .ok_or_else(|| bad(storage, format!("{file}: no ts column")))?;
        let ts = cast_to(ts, DataType::Timestamp, file, "ts", 1)?;
        let ts = ts
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or_else(|| bad(storage, format!("{file}: ts is not a timestamp")))?;
        let mut props = Vec::new();
        for p in &manifest.event_properties {
            if let Some(array) = batch.column_by_name(&p.name) {
                props.push((
                    p.name.clone(),
                    p.data_type,
                    cast_to(array, p.data_type, file, &p.name, 1)?,
                ));
            }
        }
        let mut offset = 0;
        while offset < batch.num_rows() {
            let (event, run_len, left) = match current {
                Some(run) if run.2 > 0 => run,
                _ => {
                    let (event, n) = runs
                        .next()
                        .ok_or_else(|| bad(storage, format!("{file}: more events than runs")))?;
                    current = Some((event, *n, *n));
                    continue;
                }
            };
            let take = (batch.num_rows() - offset).min(left as usize);
            let slice = |a: &ArrayRef| a.slice(offset, take);
            let sliced: Vec<(String, DataType, ArrayRef)> = props
                .iter()
                .map(|(n, t, a)| (n.clone(), *t, slice(a)))
                .collect();
            let part = state.events.partition_mut(event);
            let ts = &ts.values()[offset..offset + take];
            if part
                .ts
                .last()
                .is_some_and(|last| ts.first().is_some_and(|&f| f < last))
                || ts.windows(2).any(|w| w[0] > w[1])
            {
                return Err(bad(
                    storage,
                    format!("{file}: events of '{event}' are not in time order"),
                ));
            }
            let final_len = usize::try_from(run_len).unwrap_or(usize::MAX);
            part.append_sorted(
                &rows.values()[offset..offset + take],
                ts,
                &sliced,
                final_len,
            );
            current = Some((event, run_len, left - take as u64));
            offset += take;
        }
    }
    if current.is_some_and(|(_, _, left)| left > 0) || runs.any(|(_, n)| *n > 0) {
        return Err(bad(
            storage,
            format!("{file}: fewer events than the manifest's runs"),
        ));
    }

    read_event_bitmaps(storage, manifest, bitmaps_file, state)
}

/// Reads the day bitmaps (and their repeat levels, or rebuilds them where the file has
/// none) into the partitions the events were restored into.
fn read_event_bitmaps(
    storage: &dyn Storage,
    manifest: &Manifest,
    bitmaps_file: &str,
    state: &mut State,
) -> Result<()> {
    let bytes = storage
        .map(bitmaps_file)
        .map_err(|e| io(storage, bitmaps_file, e))?;
    // Per event type and day: the levels as saved, restored once all are read.
    let mut repeats: std::collections::BTreeMap<String, std::collections::BTreeMap<i64, Vec<_>>> =
        std::collections::BTreeMap::new();
    for (name, bitmap) in
        bitmaps::decode(&bytes).map_err(|e| bad(storage, format!("{bitmaps_file}: {e}")))?
    {
        let parsed = name.rsplit_once('/').and_then(|(event, key)| {
            let part = Arc::make_mut(state.events.types.get_mut(event)?);
            let bitmap = crate::bitmap::Bitmap::new(bitmap);
            match key.split_once('x') {
                _ if key == "any" => part.any = bitmap,
                None => {
                    part.days.insert(key.parse().ok()?, bitmap);
                }
                // `<day>x<n>`: members with at least n events that day (levels in order)
                Some((day, n)) => {
                    let levels = repeats
                        .entry(event.to_string())
                        .or_default()
                        .entry(day.parse().ok()?)
                        .or_default();
                    let n: usize = n.parse().ok()?;
                    (n == levels.len() + 2).then(|| levels.push(bitmap))?;
                }
            }
            Some(())
        });
        if parsed.is_none() {
            return Err(bad(
                storage,
                format!("{bitmaps_file}: unexpected bitmap '{name}'"),
            ));
        }
    }
    for (event, days) in repeats {
        let part = Arc::make_mut(state.events.types.get_mut(&event).expect("parsed above"));
        for (day, levels) in days {
            part.repeats.restore_day(day, levels);
        }
    }
    if !manifest.event_repeats {
        for part in state.events.types.values_mut() {
            Arc::make_mut(part).rebuild_repeats();
        }
    }
    Ok(())
}

/// Checks the data files open reads against their checksums (version 2 manifests): all of
/// them, or with a column file, all but the Parquet files it stands for (which open does
/// not read; [`verify_generation`] checks them too).
fn verify_checksums(storage: &dyn Storage, manifest: &Manifest) -> Result<()> {
    let unread = |name: &str| {
        manifest.columns_file.is_some()
            && (name == manifest.members_file || name == manifest.events_file)
    };
    verify_files(storage, manifest, |name| !unread(name))
}

/// Checks every data file of the generation the manifest names against its checksum,
/// the Parquet files included (`memberdb check`).
pub(crate) fn verify_generation(storage: &dyn Storage) -> Result<()> {
    match read_manifest(storage)? {
        Some(manifest) => verify_files(storage, &manifest, |_| true),
        None => Ok(()),
    }
}

fn verify_files(
    storage: &dyn Storage,
    manifest: &Manifest,
    wanted: impl Fn(&str) -> bool,
) -> Result<()> {
    for (name, expected) in manifest.checksums.iter().filter(|(n, _)| wanted(n)) {
        let bytes = storage.map(name).map_err(|e| io(storage, name, e))?;
        let found = crc32fast::hash(&bytes);
        if found != *expected {
            return Err(bad(
                storage,
                format!(
                    "{name}: checksum mismatch (file damaged: CRC-32 {found:08x}, the manifest \
                     says {expected:08x}); restore the directory from a backup"
                ),
            ));
        }
    }
    Ok(())
}

/// Maps the column file: member ids, attributes with their indexes, and event columns,
/// without decoding anything.
fn restore_columns(
    storage: &dyn Storage,
    manifest: &Manifest,
    columns_file: &str,
    state: &mut State,
) -> Result<()> {
    let bytes = storage
        .map(columns_file)
        .map_err(|e| io(storage, columns_file, e))?;
    let attributes: Vec<(String, DataType)> = manifest
        .attributes
        .iter()
        .map(|a| (a.name.clone(), a.data_type))
        .collect();
    let properties = manifest
        .event_properties
        .iter()
        .map(|p| (p.name.clone(), p.data_type))
        .collect();
    let restored = columns::read(bytes, manifest.member_count, &attributes, &properties)
        .map_err(|e| bad(storage, format!("{columns_file}: {e}")))?;
    state.members = crate::members::MemberDict::restore(restored.member_ids);
    for (name, column, index) in restored.attributes {
        state.attrs.push_indexed(name, column, index);
    }
    let runs: std::collections::HashMap<&str, u64> = manifest
        .event_runs
        .iter()
        .map(|(event, n)| (event.as_str(), *n))
        .collect();
    for (event, part) in restored.events {
        let declared = runs.get(event.as_str()).copied().unwrap_or(0);
        if declared != part.len() as u64 {
            return Err(bad(
                storage,
                format!(
                    "{columns_file} holds {} events of '{event}' but the manifest says {declared}",
                    part.len()
                ),
            ));
        }
        state.events.types.insert(event, Arc::new(part));
    }
    Ok(())
}

/// Decodes the members file (a database saved before the column file).
fn restore_members_from_parquet(
    storage: &dyn Storage,
    manifest: &Manifest,
    state: &mut State,
) -> Result<()> {
    // Sized once from the manifest: growing ten-million-row vectors and tables by doubling
    // would touch (and have the kernel zero) twice the memory. The file's footer must agree
    // first, so a damaged count cannot make open reserve what is not there.
    let member_batches = parquet_batches_counted(
        storage,
        &manifest.members_file,
        Some((manifest.member_count, "members")),
    )?;
    let members = usize::try_from(manifest.member_count).unwrap_or(0);
    state.members.reserve(members);
    let mut columns: Vec<Column> = manifest
        .attributes
        .iter()
        .map(|a| {
            let mut column = Column::new(a.data_type);
            column.reserve(members);
            column
        })
        .collect();
    // Streamed: one decoded batch in memory at a time.
    for batch in member_batches {
        let batch = batch?;
        let ids = batch
            .column_by_name("member_id")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| {
                bad(
                    storage,
                    format!("{} has no member_id column", manifest.members_file),
                )
            })?;
        for id in ids.iter() {
            let id = id.ok_or_else(|| bad(storage, "a stored member_id is NULL"))?;
            state.members.resolve_or_create(id)?;
        }
        for (attr, column) in manifest.attributes.iter().zip(columns.iter_mut()) {
            let array = batch.column_by_name(&attr.name).ok_or_else(|| {
                bad(
                    storage,
                    format!("{} lacks attribute '{}'", manifest.members_file, attr.name),
                )
            })?;
            let array = cast_to(array, attr.data_type, &manifest.members_file, &attr.name, 1)?;
            column.append_array(&array, None);
        }
    }
    if state.members.len() as u64 != manifest.member_count {
        return Err(bad(
            storage,
            format!(
                "{} holds {} members, the manifest says {}",
                manifest.members_file,
                state.members.len(),
                manifest.member_count
            ),
        ));
    }
    for (attr, column) in manifest.attributes.iter().zip(columns) {
        state.attrs.push_restored(attr.name.clone(), column);
    }

    Ok(())
}

/// Decodes the events file (a database saved before the column file).
fn restore_events_from_parquet(
    storage: &dyn Storage,
    manifest: &Manifest,
    state: &mut State,
) -> Result<()> {
    match &manifest.event_bitmaps_file {
        Some(bitmaps_file) => {
            // Streamed: one decoded batch in memory at a time.
            restore_events(storage, manifest, bitmaps_file, state)?;
        }
        None => {
            let batches = read_parquet(storage, &manifest.events_file)?;
            // A database saved before `member_row` and the event bitmaps: re-ingest.
            let props: std::collections::HashMap<String, DataType> = manifest
                .event_properties
                .iter()
                .map(|p| (p.name.clone(), p.data_type))
                .collect();
            let known = |name: &str| props.get(name).copied();
            let batches: Vec<RecordBatch> = batches
                .iter()
                .map(|b| {
                    let mut b = b.clone();
                    if let Ok(i) = b.schema().index_of(MEMBER_ROW) {
                        b.remove_column(i);
                    }
                    b
                })
                .collect();
            let staged =
                StagedEvents::stage(&batches, &manifest.events_file, &known, &mut Vec::new())?;
            staged.apply(state, &mut crate::state::Touched::default())?;
        }
    }
    Ok(())
}

/// Reads the generation `manifest` names (the state as of its checkpoint, before the log).
pub(crate) fn load(storage: &dyn Storage, manifest: &Manifest) -> Result<State> {
    verify_checksums(storage, manifest)?;
    let mut state = State::default();

    match (&manifest.columns_file, &manifest.event_bitmaps_file) {
        (Some(columns_file), Some(bitmaps_file)) => {
            restore_columns(storage, manifest, columns_file, &mut state)?;
            read_event_bitmaps(storage, manifest, bitmaps_file, &mut state)?;
        }
        _ => {
            restore_members_from_parquet(storage, manifest, &mut state)?;
            restore_events_from_parquet(storage, manifest, &mut state)?;
        }
    }
    let live_bytes = storage
        .map(&manifest.live_file)
        .map_err(|e| io(storage, &manifest.live_file, e))?;
    let live = RoaringBitmap::deserialize_from(&live_bytes[..])
        .map_err(|e| bad(storage, format!("{}: {e}", manifest.live_file)))?;
    if let Some(file) = &manifest.identities_file {
        let count = state.members.len();
        if live.max().is_some_and(|m| m as usize >= count) {
            return Err(bad(
                storage,
                format!("{}: a live row out of range", manifest.live_file),
            ));
        }
        let bytes = storage.map(file).map_err(|e| io(storage, file, e))?;
        let store = crate::identity::saved::decode(&bytes, count)
            .map_err(|e| bad(storage, format!("{file}: {e}")))?;
        state.members.set_live(live);
        let aliases: Vec<(u32, u32)> = store.graph().absorbed().collect();
        for (row, canonical) in aliases {
            state.members.set_profile(row, Some(canonical), false);
        }
        state.identity = std::sync::Arc::new(store);
    }

    for p in &manifest.event_properties {
        state.events.props.insert(p.name.clone(), p.data_type);
    }
    for t in &manifest.event_types {
        state.events.partition_mut(t);
    }
    if state.events.len() as u64 != manifest.event_count {
        return Err(bad(
            storage,
            format!(
                "{} holds {} events, the manifest says {}",
                manifest.events_file,
                state.events.len(),
                manifest.event_count
            ),
        ));
    }

    let bytes = storage
        .map(&manifest.tags_file)
        .map_err(|e| io(storage, &manifest.tags_file, e))?;
    for (name, bitmap) in
        bitmaps::decode(&bytes).map_err(|e| bad(storage, format!("{}: {e}", manifest.tags_file)))?
    {
        state.tags.insert_bitmap(name, bitmap);
    }

    for (name, tags) in &manifest.exclusive_tag_groups {
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        state.tags.declare_exclusive(name, &tags)?;
    }
    // The clock first: groups that move with time are evaluated at it.
    state.clock = manifest
        .clock
        .unwrap_or_else(|| crate::Timestamp::now().micros());
    // Groups and traits in the order they were defined (each reads only earlier ones).
    let mut order: Vec<(u64, usize, bool)> = manifest
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.seq, i, true))
        .chain(
            manifest
                .traits
                .iter()
                .enumerate()
                .map(|(i, t)| (t.seq, i, false)),
        )
        .collect();
    order.sort_by_key(|&(seq, i, group)| (seq, !group, i));
    for (_, i, is_group) in order {
        if !is_group {
            let t = &manifest.traits[i];
            crate::state::apply::define_trait(&mut state, &t.name, &t.definition)?;
            continue;
        }
        let group = &manifest.groups[i];
        let windows = crate::groups::time::window_reads(&state, &group.definition)?;
        let monotony = crate::groups::time::monotony(&state, &group.definition);
        let keep_days = group.keep_days.unwrap_or(crate::groups::DEFAULT_KEEP_DAYS);
        let seq = state.next_seq();
        let i = state.groups.define(
            &group.name,
            group.definition.clone(),
            windows,
            monotony,
            keep_days,
            seq,
        )?;
        state.groups.groups[i].ranked =
            crate::state::apply::group_reads_ranks(&state, &group.definition);
    }
    state.loads = std::sync::Arc::new(manifest.loads.clone());
    // Evaluated as they are, without history: the stream the checkpoint saved is theirs.
    let restored =
        crate::state::Touched::restored(state.groups.names().chain(state.traits.names()));
    state.refresh_derived(restored, manifest.checkpoint_lsn)?;
    let defined_at: std::collections::HashMap<&str, u64> = (manifest.groups.iter())
        .map(|g| (g.name.as_str(), g.defined_at))
        .collect();
    for group in &mut state.groups.groups {
        group.defined_at = defined_at.get(group.name.as_str()).copied().unwrap_or(0);
    }
    if let Some(file) = &manifest.changes_file {
        let bytes = storage.map(file).map_err(|e| io(storage, file, e))?;
        let (streams, consumers) =
            changes::decode(&bytes).map_err(|e| bad(storage, format!("{file}: {e}")))?;
        for saved in streams {
            let Some(group) = state
                .groups
                .groups
                .iter_mut()
                .find(|g| g.name == saved.name)
            else {
                return Err(bad(
                    storage,
                    format!(
                        "{file}: a stream of group '{}', which the manifest does not define",
                        saved.name
                    ),
                ));
            };
            group.stream = saved.stream;
        }
        state.consumers = consumers;
    }
    Ok(state)
}
