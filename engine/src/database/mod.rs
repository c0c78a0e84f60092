//! The [`Database`] handle: opening and recovery, loads, writes, groups, checkpoints; the
//! read side is [`View`].

mod breakdown;
mod commit;
mod discovery;
mod erase;
mod identity;
mod load;
mod options;
mod streams;
mod submit;
mod view;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

pub use discovery::PropertyInfo;
pub use erase::Erasure;
pub use identity::IdentifierInfo;
pub use load::{InputKind, Load, LoadProgress, PART_ROWS};
pub use options::{Clock, OpenOptions, SyncPolicy};
pub(crate) use streams::trimmed_view;
pub use streams::{Changes, ConsumerGroupStatus, GroupStatus, MAX_READ, PendingEntry};
pub use submit::Write;
pub use view::View;
pub(crate) use view::cmp_values;

use crate::column::ColumnData;
use crate::error::{Error, Result};
use crate::members::RowId;
use crate::results::{
    AttributeInfo, BreakdownRow, FindOptions, FindResult, GroupInfo, MemberRecord, TraitInfo,
};
use crate::segment::Segment;
use crate::state::State;
use crate::storage::{FsStorage, Storage};
use crate::traits::TraitDef;
use crate::value::{DataType, Timestamp, Value};
use crate::wal::TornTail;
use crate::wal::change::{Change, Outcome};
use commit::Core;
pub use commit::LogStats;

/// What opening a database found: its checkpoint and what its log added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The on-disk format version of the manifest as found (1 had no log).
    pub format_version: u32,
    /// The generation of data files the last checkpoint wrote.
    pub generation: u64,
    /// The log file that was replayed last, which takes the writes.
    pub log_file: Option<String>,
    /// Every log replayed, in order: the checkpoint's own, then those that follow it when a
    /// checkpoint was cut short before it switched the manifest.
    pub logs: Vec<String>,
    /// Log records replayed on top of the last checkpoint.
    pub replayed: u64,
    /// The last log record applied.
    pub applied_lsn: u64,
    /// Bytes of log records (and of the load files they name) replayed: what the next open
    /// would read again without a checkpoint.
    pub log_bytes: u64,
    /// An unfinished record at the end of the log (a crash mid-write), dropped; cut from the
    /// file unless the database was opened read-only.
    pub torn_tail: Option<TornTail>,
    /// Opened with a manual clock earlier than the database's stored clock: where the clock
    /// starts instead, said as a note.
    pub clock_note: Option<String>,
    /// Erasures replayed (a crash came before their checkpoint): open writes the checkpoint
    /// and removes the older files, as the erasure would have.
    pub erasures: u64,
}

/// A memberdb database: in memory, or durable in a directory.
///
/// Every change goes through one write path: it is appended to the write-ahead log with a
/// checksum, made durable under the [`SyncPolicy`], and only then applied and acknowledged.
/// Reads go through [`Database::as_of`] (or the shorthands [`Database::count`],
/// [`Database::find`], [`Database::breakdown`], which use the engine's clock as *now*) and see
/// consistent snapshots. A `Database` is `Sync`: share it between threads behind an `Arc`;
/// readers run in parallel and concurrent writers share fsyncs.
#[derive(Debug)]
pub struct Database {
    core: Arc<Core>,
    recovery: Recovery,
}

impl Default for Database {
    fn default() -> Self {
        Database::in_memory()
    }
}

impl Drop for Database {
    /// Makes the log durable (under `interval` and `off`, appended records may not be yet);
    /// an error here has no one to go to, and the records are in the OS's hands already.
    fn drop(&mut self) {
        self.core.stop_threads();
        let _ = self.core.sync_log();
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent before anything can panic.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Database {
    /// An empty database held only in memory.
    pub fn in_memory() -> Self {
        Database::in_memory_with(OpenOptions::default()).expect("an empty database opens")
    }

    /// An empty database held only in memory, with `options` (its clock; the options about
    /// files do not apply).
    pub fn in_memory_with(options: OpenOptions) -> Result<Self> {
        let core = Core::new(State::default(), None, None, &Recovery::default(), options);
        let mut db = Database {
            core,
            recovery: Recovery::default(),
        };
        db.start_clock()?;
        Ok(db)
    }

    /// Moves a manual clock to the instant the options give, unless the stored clock is
    /// later (then a note says so); starts the wall clock's thread.
    fn start_clock(&mut self) -> Result<()> {
        match self.core.options.clock {
            options::Clock::Manual(asked) => {
                let stored = self.snapshot().clock;
                if asked.micros() < stored {
                    self.recovery.clock_note = Some(Database::clock_note(stored, asked.micros()));
                } else if asked.micros() > stored && self.read_only_reason().is_none() {
                    self.write(Change::Clock {
                        now: asked.micros(),
                    })?;
                }
            }
            options::Clock::Wall => self.core.start_ticker(),
        }
        Ok(())
    }

    /// Opens the database in directory `dir` (or starts an empty one there) with the default
    /// options: fsync on every commit, exclusive use of the directory.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Database::open_with(dir, OpenOptions::default())
    }

    /// Opens the database in directory `dir` with `options`.
    pub fn open_with(dir: impl AsRef<Path>, options: OpenOptions) -> Result<Self> {
        let dir = dir.as_ref();
        if (options.read_only || !options.create_if_missing) && !dir.join("manifest.json").exists()
        {
            return Err(Error::NoDatabase(dir.to_path_buf()));
        }
        let storage =
            FsStorage::with_mode(dir, options.file_mode).map_err(|e| Error::io(dir, e))?;
        Database::open_storage_with(Arc::new(storage), options)
    }

    /// Opens the database held by `storage` (or starts an empty one).
    pub fn open_storage(storage: Arc<dyn Storage>) -> Result<Self> {
        Database::open_storage_with(storage, OpenOptions::default())
    }

    /// Opens the database held by `storage` with `options`: the last checkpoint, then the log
    /// replayed on top of it. A torn record at the end of the log is dropped (see
    /// [`Database::recovery`]); any other damage refuses the open and changes nothing.
    pub fn open_storage_with(storage: Arc<dyn Storage>, options: OpenOptions) -> Result<Self> {
        if !options.read_only {
            storage.lock().map_err(Error::InUse)?;
        }
        let manifest = match crate::storage::read_manifest(storage.as_ref())? {
            Some(m) => Some(m),
            None if !options.create_if_missing => {
                return Err(Error::NoDatabase(storage.location()));
            }
            None if options.read_only => None,
            None => Some(
                crate::storage::save(&State::default(), storage.as_ref(), 0).map_err(
                    |e| match e {
                        crate::storage::SaveError::Before(e)
                        | crate::storage::SaveError::Switching(e) => e,
                    },
                )?,
            ),
        };
        let Some(mut manifest) = manifest else {
            let core = Core::new(State::default(), None, None, &Recovery::default(), options);
            let mut db = Database {
                core,
                recovery: Recovery::default(),
            };
            db.start_clock()?;
            return Ok(db);
        };
        if options.verify_all_files {
            crate::storage::verify_generation(storage.as_ref())?;
        }
        let mut state = crate::storage::load(storage.as_ref(), &manifest)?;
        let mut recovery =
            commit::replay(storage.as_ref(), &manifest, &mut state, !options.read_only)?;
        recovery.format_version = manifest.format_version;
        recovery.generation = manifest.generation;
        if !options.read_only {
            if manifest.log_file.is_none() {
                crate::storage::upgrade_manifest(storage.as_ref(), &mut manifest)?;
            }
            // Load files of records that never made it into the log, temporary files.
            crate::storage::remove_unreferenced_loads(storage.as_ref(), &recovery.logs)?;
        }
        let erasures = recovery.erasures > 0 && !options.read_only;
        let core = Core::new(state, Some(storage), Some(&manifest), &recovery, options);
        let mut db = Database { core, recovery };
        db.start_clock()?;
        if erasures {
            // An erasure returns only once no file holds the member: finish what a crash cut
            // short.
            db.core.checkpoint_and_remove_superseded()?;
        }
        Ok(db)
    }

    /// What opening found in the log: records replayed, a torn tail dropped.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The data version: it grows whenever a change becomes visible to readers, so an answer
    /// computed at version `v` holds as long as `version()` is still `v` (answers that
    /// depend on the wall clock aside).
    pub fn version(&self) -> u64 {
        self.core.version.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Counters of the write path since open: records, batches, fsyncs, checkpoints.
    pub fn log_stats(&self) -> LogStats {
        self.core.committed().stats
    }

    /// Why writes are refused, if they are: the database was opened read-only, or a write or
    /// fsync of the log failed.
    pub fn read_only_reason(&self) -> Option<String> {
        self.core.read_only_reason()
    }

    /// Writes a checkpoint: a new generation of Parquet and bitmap files with everything
    /// committed so far, switched to atomically, after which the log starts empty.
    pub fn checkpoint(&self) -> Result<()> {
        self.core.checkpoint()
    }

    /// The same as [`Database::checkpoint`].
    pub fn save(&self) -> Result<()> {
        self.checkpoint()
    }

    /// Makes the log durable now (useful under the `interval` and `off` policies).
    pub fn sync(&self) -> Result<()> {
        self.core.sync_log()
    }

    /// Closes the database cleanly: a checkpoint if the log holds anything, so the next open
    /// replays nothing. (Dropping a database only syncs its log.)
    pub fn close(self) -> Result<()> {
        self.checkpoint_if_needed().map(drop)
    }

    /// Writes a checkpoint if the log holds anything since the last one (and the database
    /// takes writes). Returns whether it wrote one.
    pub fn checkpoint_if_needed(&self) -> Result<bool> {
        let needs_checkpoint = {
            let c = self.core.committed();
            c.storage.is_some() && c.applied_lsn > c.checkpoint_lsn
        };
        if needs_checkpoint && self.read_only_reason().is_none() {
            self.checkpoint()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The Parquet files of the newest checkpoint, by path, after writing one when the log
    /// holds changes or the files predate format version 10 (what engines reading the files
    /// need); refused for a database in memory, and for a read-only one that would need a
    /// checkpoint.
    pub(crate) fn checkpointed_files(&self) -> Result<crate::storage::ParquetFiles> {
        let log_holds_changes = {
            let c = self.core.committed();
            c.applied_lsn > c.checkpoint_lsn
        };
        if log_holds_changes && let Some(why) = self.read_only_reason() {
            // the files lack what the log holds: SQL over them would answer otherwise
            return Err(Error::ReadOnly(format!(
                "the log holds changes the data files do not, and no checkpoint can be \
                 written now: {why}; compile once the database can be opened for writing (or \
                 through the server that holds it: EXPLAIN SQL)"
            )));
        }
        self.checkpoint_if_needed()?;
        let storage = self.core.committed().storage.clone().ok_or_else(|| {
            Error::InvalidSegment(
                "this database lives in memory: it has no files to compile against; save it \
                 to a directory first"
                    .into(),
            )
        })?;
        let read = || -> Result<Option<crate::storage::ParquetFiles>> {
            Ok(crate::storage::read_manifest(storage.as_ref())?.and_then(|m| m.parquet_files()))
        };
        let files = match read()? {
            Some(files) => files,
            None => {
                if let Some(why) = self.read_only_reason() {
                    return Err(Error::ReadOnly(format!(
                        "its files predate format version 10 (no member_row, live or tags \
                         file) and it cannot write a checkpoint now: {why}; open it for \
                         writing once"
                    )));
                }
                self.checkpoint()?;
                read()?
                    .ok_or_else(|| Error::Internal("a checkpoint without Parquet tags".into()))?
            }
        };
        let dir = storage.location();
        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        Ok(crate::storage::ParquetFiles {
            members: path(&files.members),
            events: path(&files.events),
            tags: path(&files.tags),
        })
    }

    /// Writes the database to directory `dir`, which becomes its home (locked, with a log).
    pub fn save_to(&mut self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let storage = FsStorage::with_mode(dir, self.core.options.file_mode)
            .map_err(|e| Error::io(dir, e))?;
        self.core.move_to(Arc::new(storage))
    }

    pub(crate) fn write(&self, change: Change) -> Result<Outcome> {
        self.core.write(change)
    }

    /// Sets attributes of one member (creating the member). New names become attributes of
    /// the value's type; a value that does not fit an existing attribute is refused and
    /// nothing is changed.
    pub fn upsert_member(&self, member_id: &str, fields: &[(&str, Option<Value>)]) -> Result<()> {
        self.write(Change::UpsertMember {
            member_id: member_id.to_string(),
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
        })
        .map(drop)
    }

    /// Adds tags to one member (creating the member).
    pub fn add_tags(&self, member_id: &str, tags: &[&str]) -> Result<()> {
        self.write(Change::AddTags {
            member_id: member_id.to_string(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        })
        .map(drop)
    }

    /// Removes tags from one member. Unknown members and tags are no-ops.
    pub fn remove_tags(&self, member_id: &str, tags: &[&str]) -> Result<()> {
        self.write(Change::RemoveTags {
            member_id: member_id.to_string(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        })
        .map(drop)
    }

    /// Appends one event (creating the member).
    pub fn add_event(
        &self,
        member_id: &str,
        event: &str,
        ts: Timestamp,
        props: &[(&str, Option<Value>)],
    ) -> Result<()> {
        self.write(Change::AddEvent {
            member_id: member_id.to_string(),
            event: event.to_string(),
            ts: ts.micros(),
            props: props
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
        })
        .map(drop)
    }

    /// Declares an exclusive tag group: from now on, setting one of `tags` on a member
    /// clears the others. Refused when a member already holds two of them.
    pub fn declare_exclusive_tags(&self, group: &str, tags: &[&str]) -> Result<()> {
        self.write(Change::DeclareExclusiveTags {
            group: group.to_string(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        })
        .map(drop)
    }

    /// Defines dynamic group `name`. Its members are materialised now and kept current;
    /// its changes are kept [`DEFAULT_KEEP_DAYS`](crate::DEFAULT_KEEP_DAYS). Returns its
    /// size now.
    pub fn define_group(&self, name: &str, definition: Segment) -> Result<u64> {
        self.define_group_keeping(name, definition, None)
    }

    /// Defines dynamic group `name` whose changes are kept `keep_days` days (`KEEP CHANGES
    /// n DAYS`; `None`: the default). Returns its size now.
    pub fn define_group_keeping(
        &self,
        name: &str,
        definition: Segment,
        keep_days: Option<u32>,
    ) -> Result<u64> {
        // What is stored must reopen: the definition as the log will give it back.
        let definition = crate::groups::stored::as_stored(&definition)?;
        // Refuse a definition that does not bind before it reaches the log.
        {
            let view = self.as_of(self.now());
            view.bind(&definition, None)?;
        }
        if let Some(days) = keep_days
            && !(1..=crate::groups::MAX_KEEP_DAYS).contains(&days)
        {
            return Err(Error::InvalidSegment(format!(
                "KEEP CHANGES {days} DAYS: a group keeps its changes from 1 to {} days",
                crate::groups::MAX_KEEP_DAYS
            )));
        }
        self.write(Change::DefineGroup {
            name: name.to_string(),
            definition,
            keep_days,
        })?;
        self.count(&Segment::in_group(name))
    }

    /// Defines computed trait `name` (`DEFINE TRAIT`). Its values are computed now and kept
    /// current like a group's members; it is read wherever an attribute is. Returns the
    /// number of members with a value now.
    pub fn define_trait(&self, name: &str, definition: TraitDef) -> Result<u64> {
        self.define_trait_only(name, definition)?;
        let view = self.as_of(self.now());
        view.count(&Segment::attr(name).is_not_null())
    }

    /// Defines trait `name` (checked, logged, computed).
    pub(crate) fn define_trait_only(&self, name: &str, definition: TraitDef) -> Result<()> {
        // What is stored must reopen: the definition as the log will give it back.
        let definition = crate::traits::stored::as_stored(&definition)?;
        // Refuse a definition that does not bind before it reaches the log.
        {
            let view = self.as_of(self.now());
            crate::plan::trait_type(view.state(), &definition, view.now().micros())?;
        }
        self.write(Change::DefineTrait {
            name: name.to_string(),
            definition,
        })
        .map(drop)
    }

    /// Drops computed trait `name`; refused while a group or trait uses it.
    pub fn drop_trait(&self, name: &str) -> Result<()> {
        self.write(Change::DropTrait {
            name: name.to_string(),
        })
        .map(drop)
    }

    /// Computed traits with their definitions.
    pub fn traits(&self) -> Vec<TraitInfo> {
        Database::traits_of(&self.snapshot())
    }

    pub(crate) fn traits_of(state: &State) -> Vec<TraitInfo> {
        state
            .traits
            .traits
            .iter()
            .map(|t| TraitInfo {
                name: t.name.clone(),
                definition: t.definition.clone(),
                data_type: t.data_type(),
                time_dependent: t.time_dependent,
            })
            .collect()
    }

    /// Drops dynamic group `name`.
    pub fn drop_group(&self, name: &str) -> Result<()> {
        self.write(Change::DropGroup {
            name: name.to_string(),
        })
        .map(drop)
    }

    /// Changes the type of attribute `name`, converting every value (see
    /// `ALTER ATTRIBUTE` in docs/language.md). Refused, naming values, when some do not
    /// convert, and when a group's definition would no longer hold; nothing changes then.
    pub fn alter_attribute(&self, name: &str, data_type: DataType) -> Result<()> {
        self.write(Change::AlterAttribute {
            name: name.to_string(),
            data_type,
        })
        .map(drop)
    }

    /// Removes attribute `name` and its values. Refused while a group uses it.
    pub fn drop_attribute(&self, name: &str) -> Result<()> {
        self.write(Change::DropAttribute {
            name: name.to_string(),
        })
        .map(drop)
    }

    /// Reads at a pinned *now*, on the database as it is while the view lives.
    ///
    /// The view holds the database's read lock: writes wait until it is dropped, so a
    /// thread must not write while it holds one (drop the view first, or read into a
    /// value). Keep views short-lived.
    pub fn as_of(&self, now: Timestamp) -> View<'_> {
        View::new(self.snapshot(), now.micros())
    }

    /// The state as of now, shared with other readers until dropped.
    pub(crate) fn snapshot(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.core.state.read().unwrap_or_else(|p| p.into_inner())
    }
    /// Exclusive tag groups with their tags.
    pub fn exclusive_tag_groups(&self) -> Vec<(String, Vec<String>)> {
        self.snapshot().tags.exclusive_groups().to_vec()
    }

    /// COUNT at the engine's clock ([`Database::now`]).
    pub fn count(&self, segment: &Segment) -> Result<u64> {
        self.as_of(self.now()).count(segment)
    }

    /// FIND at the engine's clock ([`Database::now`]).
    pub fn find(&self, segment: &Segment, options: &FindOptions) -> Result<FindResult> {
        self.as_of(self.now()).find(segment, options)
    }

    /// BREAKDOWN at the wall clock.
    pub fn breakdown(
        &self,
        segment: &Segment,
        attribute: &str,
        top: Option<usize>,
    ) -> Result<Vec<BreakdownRow>> {
        self.as_of(self.now()).breakdown(segment, attribute, top)
    }

    /// Live members.
    pub fn member_count(&self) -> u64 {
        self.snapshot().members.live().len()
    }

    /// Stored events.
    pub fn event_count(&self) -> u64 {
        self.snapshot().events.len() as u64
    }

    /// Attributes with their types and fill.
    pub fn attributes(&self) -> Vec<AttributeInfo> {
        Database::attributes_of(&self.snapshot())
    }

    pub(crate) fn attributes_of(state: &State) -> Vec<AttributeInfo> {
        state
            .attrs
            .iter()
            .map(|a| AttributeInfo {
                name: a.name.clone(),
                data_type: a.column.data_type(),
                non_null: a.index.non_null(&a.column),
                distinct: match &a.column.data {
                    ColumnData::Str { dict, .. } => Some(dict.len() as u64),
                    ColumnData::Bool(_) => Some(2),
                    _ => None,
                },
            })
            .collect()
    }

    /// Tags with their member counts.
    pub fn tags(&self) -> Vec<(String, u64)> {
        Database::tags_of(&self.snapshot())
    }

    pub(crate) fn tags_of(state: &State) -> Vec<(String, u64)> {
        state
            .tags
            .iter()
            .map(|(n, b)| (n.to_string(), b.len()))
            .collect()
    }

    /// Event types with their event counts.
    pub fn event_types(&self) -> Vec<(String, u64)> {
        Database::event_types_of(&self.snapshot())
    }

    pub(crate) fn event_types_of(state: &State) -> Vec<(String, u64)> {
        state
            .events
            .types
            .iter()
            .map(|(n, p)| (n.clone(), p.len() as u64))
            .collect()
    }

    /// Event properties with their types.
    pub fn event_properties(&self) -> Vec<(String, DataType)> {
        self.snapshot()
            .events
            .props
            .iter()
            .map(|(n, t)| (n.clone(), *t))
            .collect()
    }

    /// Dynamic groups with their definitions.
    pub fn groups(&self) -> Vec<GroupInfo> {
        Database::groups_of(&self.snapshot())
    }

    pub(crate) fn groups_of(state: &State) -> Vec<GroupInfo> {
        state
            .groups
            .groups
            .iter()
            .map(|g| GroupInfo {
                name: g.name.clone(),
                definition: g.definition.clone(),
                time_dependent: g.time_dependent,
            })
            .collect()
    }

    /// The internal row of live member `member_id` (the audit log names members by it).
    pub fn row_of(&self, member_id: &str) -> Option<RowId> {
        self.row_within(member_id, None)
    }

    /// The member id of row `row` as the audit shows it: its own id (an alias's too), or
    /// [`ERASED`](crate::ERASED) for an erased member; `None` for a row never given.
    pub fn member_id_of(&self, row: RowId) -> Option<String> {
        let state = self.snapshot();
        ((row as usize) < state.members.len()).then(|| state.members.shown_id(row).to_string())
    }

    /// The definition of group `name`, if it exists.
    pub(crate) fn group_definition(&self, name: &str) -> Option<Segment> {
        self.snapshot()
            .groups
            .get(name)
            .map(|g| g.definition.clone())
    }

    /// One member's attributes, traits and tags.
    pub fn member(&self, member_id: &str) -> Option<MemberRecord> {
        self.member_within(member_id, None)
    }

    /// The row of live member `member_id` if it lies inside `scope` (`None`: anywhere).
    pub(crate) fn row_within(&self, member_id: &str, scope: Option<&Segment>) -> Option<u32> {
        let now = self.now().micros();
        let state = self.snapshot();
        Self::row_in(&state, member_id, scope, now)
    }

    fn row_in(state: &State, member_id: &str, scope: Option<&Segment>, now: i64) -> Option<u32> {
        let row = state.members.lookup(member_id)?;
        if !state.members.live().contains(row) {
            return None;
        }
        match scope {
            None => Some(row),
            // A scope that does not bind selects nobody.
            Some(scope) => crate::plan::bind(state, scope, now, None)
                .and_then(|plan| plan.holds(row))
                .ok()
                .filter(|inside| *inside)
                .map(|_| row),
        }
    }

    /// [`Database::member`] of a member inside `scope` (as if it did not exist otherwise).
    pub(crate) fn member_within(
        &self,
        member_id: &str,
        scope: Option<&Segment>,
    ) -> Option<MemberRecord> {
        let now = self.now().micros();
        let state = self.snapshot();
        let row = match scope {
            None => state.members.lookup(member_id)?,
            Some(_) => Self::row_in(&state, member_id, scope, now)?,
        };
        let aliases = state
            .identity
            .aliases_of(row)
            .into_iter()
            .map(|r| state.members.member_id(r).to_string())
            .collect();
        Some(MemberRecord {
            identifiers: state.identity.identifiers_of(row),
            aliases,
            traits: state
                .traits
                .traits
                .iter()
                .filter_map(|t| {
                    let value = crate::computed::ValueExpr::attr(t.name.as_str());
                    let v = crate::plan::member_value(&state, &value, now, row).ok()??;
                    Some((t.name.clone(), v))
                })
                .collect(),
            member_id: state.members.member_id(row).to_string(),
            attributes: state
                .attrs
                .iter()
                .filter_map(|a| a.column.get(row as usize).map(|v| (a.name.clone(), v)))
                .collect(),
            tags: state
                .tags
                .tags_of(row)
                .into_iter()
                .map(str::to_string)
                .collect(),
        })
    }

    /// Approximate heap bytes held by the database (columns, dictionaries, bitmaps).
    pub fn memory_usage(&self) -> usize {
        self.memory_breakdown().total()
    }

    /// Approximate heap bytes by part of the database.
    pub fn memory_breakdown(&self) -> MemoryUsage {
        let s = self.snapshot();
        MemoryUsage {
            members: s.members.heap_bytes(),
            attributes: s.attrs.heap_bytes() + s.traits.heap_bytes(),
            tags: s.tags.heap_bytes(),
            events: s.events.heap_bytes(),
            groups: s
                .groups
                .groups
                .iter()
                .map(|g| g.bitmap.serialized_size() + g.stream.heap_bytes())
                .sum(),
            mapped: s.members.ids().mapped_bytes()
                + s.attrs
                    .iter()
                    .map(|a| a.column.mapped_bytes())
                    .sum::<usize>()
                + s.events
                    .types
                    .values()
                    .map(|p| p.mapped_bytes())
                    .sum::<usize>(),
        }
    }
}

/// Heap bytes by part of the database, as counted by the engine (vector capacities,
/// dictionaries, serialized bitmap sizes); allocator overhead is not included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUsage {
    /// The member dictionary (external ids) and the live bitmap.
    pub members: usize,
    /// Attribute columns and their indexes.
    pub attributes: usize,
    /// Tag bitmaps.
    pub tags: usize,
    /// Event columns, properties and per-day bitmaps.
    pub events: usize,
    /// Group bitmaps and the change streams' entries.
    pub groups: usize,
    /// Not heap: bytes of columns and dictionaries read in place from the mapped column
    /// file (pages the kernel loads on use and may drop again; not part of [`total`]).
    ///
    /// [`total`]: MemoryUsage::total
    pub mapped: usize,
}

impl MemoryUsage {
    /// All parts together.
    pub fn total(&self) -> usize {
        self.members + self.attributes + self.tags + self.events + self.groups
    }
}
