//! The [`Database`] handle: loads, writes, groups, saves; and [`View`], the read side at one
//! *now*.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use roaring::RoaringBitmap;

use crate::column::{Column, ColumnData};
use crate::error::{Error, Result};
use crate::ingest::{
    IngestReport, StagedEvents, StagedMembers, StagedTags, read_batches_with_progress,
};
use crate::results::{
    AttributeInfo, BreakdownRow, FindOptions, FindResult, FoundMember, GroupInfo, MemberRecord,
};
use crate::segment::{Evaluator, Segment};
use crate::state::State;
use crate::storage::{FsStorage, Storage};
use crate::value::{DataType, Timestamp, Value};

/// What an input file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// `member_id` and attribute columns.
    Members,
    /// `member_id`, `event`, `ts` and property columns.
    Events,
    /// `member_id`, `tag`.
    Tags,
}

/// A memberdb database: in memory, optionally backed by a directory.
///
/// Reads go through [`Database::as_of`] (or the shorthands [`Database::count`],
/// [`Database::find`], [`Database::breakdown`], which use the wall clock as *now*).
#[derive(Debug, Default)]
pub struct Database {
    state: State,
    storage: Option<Arc<dyn Storage>>,
}

impl Database {
    /// An empty database held only in memory.
    pub fn in_memory() -> Self {
        Database::default()
    }

    /// Opens the database in directory `dir`, or starts an empty one there if it holds none.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let storage = FsStorage::new(dir).map_err(|e| Error::io(dir, e))?;
        Database::open_storage(Arc::new(storage))
    }

    /// Opens the database held by `storage` (or starts an empty one).
    pub fn open_storage(storage: Arc<dyn Storage>) -> Result<Self> {
        let state = crate::storage::load(storage.as_ref())?.unwrap_or_default();
        Ok(Database {
            state,
            storage: Some(storage),
        })
    }

    /// Writes the database to its storage (a new generation of files, switched atomically).
    pub fn save(&self) -> Result<()> {
        let storage = self.storage.as_ref().ok_or_else(|| {
            Error::Conflict("this database is in memory only; use save_to(dir)".to_string())
        })?;
        crate::storage::save(&self.state, storage.as_ref())
    }

    /// Writes the database to directory `dir`, which becomes its home.
    pub fn save_to(&mut self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let storage = FsStorage::new(dir).map_err(|e| Error::io(dir, e))?;
        self.storage = Some(Arc::new(storage));
        self.save()
    }

    /// Loads member rows: new members are created, known ones get the given attributes
    /// overwritten, new columns become new attributes. All or nothing.
    pub fn load_members(&mut self, batches: &[RecordBatch]) -> Result<IngestReport> {
        self.load_members_from(batches, "batch")
    }

    fn load_members_from(&mut self, batches: &[RecordBatch], source: &str) -> Result<IngestReport> {
        let attrs = &self.state.attrs;
        let known = |name: &str| attrs.get(name).map(|a| a.column.data_type());
        let staged = StagedMembers::stage(batches, source, &known)?;
        let report = staged.apply(&mut self.state)?;
        self.state.refresh_groups()?;
        Ok(report)
    }

    /// Appends events; unknown member ids create members. All or nothing.
    pub fn load_events(&mut self, batches: &[RecordBatch]) -> Result<IngestReport> {
        self.load_events_from(batches, "batch")
    }

    fn load_events_from(&mut self, batches: &[RecordBatch], source: &str) -> Result<IngestReport> {
        let props = &self.state.events.props;
        let known = |name: &str| props.get(name).copied();
        let staged = StagedEvents::stage(batches, source, &known)?;
        let report = staged.apply(&mut self.state)?;
        self.state.refresh_groups()?;
        Ok(report)
    }

    /// Adds tags (`member_id`, `tag`); unknown member ids create members. All or nothing.
    pub fn load_tags(&mut self, batches: &[RecordBatch]) -> Result<IngestReport> {
        self.load_tags_from(batches, "batch")
    }

    fn load_tags_from(&mut self, batches: &[RecordBatch], source: &str) -> Result<IngestReport> {
        let staged = StagedTags::stage(batches, source)?;
        let report = staged.apply(&mut self.state)?;
        self.state.refresh_groups()?;
        Ok(report)
    }

    /// Removes tags in bulk: every (`member_id`, `tag`) pair of the batches. Pairs naming an
    /// unknown member or tag are skipped. All or nothing.
    pub fn unload_tags(&mut self, batches: &[RecordBatch]) -> Result<IngestReport> {
        let staged = StagedTags::stage(batches, "batch")?;
        let report = staged.remove(&mut self.state);
        self.state.refresh_groups()?;
        Ok(report)
    }

    /// Loads a Parquet, CSV or JSON Lines file (by extension). All or nothing.
    pub fn load_file(&mut self, kind: InputKind, path: impl AsRef<Path>) -> Result<IngestReport> {
        self.load_file_with_progress(kind, path, &mut |_| {})
    }

    /// [`Database::load_file`], reporting the rows read so far to `progress`.
    pub fn load_file_with_progress(
        &mut self,
        kind: InputKind,
        path: impl AsRef<Path>,
        progress: &mut dyn FnMut(usize),
    ) -> Result<IngestReport> {
        let path = path.as_ref();
        let batches = read_batches_with_progress(path, progress)?;
        let source = path.display().to_string();
        match kind {
            InputKind::Members => self.load_members_from(&batches, &source),
            InputKind::Events => self.load_events_from(&batches, &source),
            InputKind::Tags => self.load_tags_from(&batches, &source),
        }
    }

    /// Sets attributes of one member (creating the member). New names become attributes of
    /// the value's type; a value that does not fit an existing attribute is refused and
    /// nothing is changed.
    pub fn upsert_member(
        &mut self,
        member_id: &str,
        fields: &[(&str, Option<Value>)],
    ) -> Result<()> {
        check_member_id(member_id)?;
        let mut coerced = Vec::with_capacity(fields.len());
        for (name, value) in fields {
            let value = match (self.state.attrs.get(name), value) {
                (_, None) => None,
                (Some(attr), Some(v)) => Some(
                    Column::coerce(attr.column.data_type(), v)
                        .map_err(|m| Error::InvalidSegment(format!("attribute '{name}': {m}")))?,
                ),
                (None, Some(v)) => Some(v.clone()),
            };
            coerced.push((*name, value));
        }
        let (row, _) = self.state.members.resolve_or_create(member_id)?;
        let members = self.state.members.len();
        self.state.attrs.grow(members);
        for (name, value) in coerced {
            let existing = self.state.attrs.get(name).map(|a| a.column.data_type());
            let data_type = match (existing, &value) {
                (Some(t), _) => t,
                (None, Some(v)) => v.data_type(),
                (None, None) => continue,
            };
            let pos = self.state.attrs.ensure(name, data_type, members)?;
            self.state.attrs.set_value(pos, row, value.as_ref());
        }
        self.state.refresh_groups()
    }

    /// Adds tags to one member (creating the member).
    pub fn add_tags(&mut self, member_id: &str, tags: &[&str]) -> Result<()> {
        check_member_id(member_id)?;
        if let Some(empty) = tags.iter().find(|t| t.is_empty()) {
            return Err(Error::InvalidSegment(format!(
                "tag name '{empty}' is empty"
            )));
        }
        let (row, _) = self.state.members.resolve_or_create(member_id)?;
        self.state.attrs.grow(self.state.members.len());
        for tag in tags {
            self.state.tags.add(tag, row);
        }
        self.state.refresh_groups()
    }

    /// Removes tags from one member. Unknown members and tags are no-ops.
    pub fn remove_tags(&mut self, member_id: &str, tags: &[&str]) -> Result<()> {
        if let Some(row) = self.state.members.lookup(member_id) {
            for tag in tags {
                self.state.tags.remove(tag, row);
            }
            self.state.refresh_groups()?;
        }
        Ok(())
    }

    /// Appends one event (creating the member).
    pub fn add_event(
        &mut self,
        member_id: &str,
        event: &str,
        ts: Timestamp,
        props: &[(&str, Option<Value>)],
    ) -> Result<()> {
        check_member_id(member_id)?;
        if event.is_empty() {
            return Err(Error::InvalidSegment(
                "an event needs a type name".to_string(),
            ));
        }
        let mut staged_props = Vec::with_capacity(props.len());
        for (name, value) in props {
            let known = self.state.events.props.get(*name).copied();
            let data_type = known
                .or(value.as_ref().map(Value::data_type))
                .unwrap_or(DataType::String);
            let value = value
                .as_ref()
                .map(|v| Column::coerce(data_type, v))
                .transpose()
                .map_err(|m| Error::InvalidSegment(format!("event property '{name}': {m}")))?;
            let mut column = Column::new(data_type);
            column.push(value.as_ref());
            staged_props.push((name.to_string(), data_type, column.to_arrow(None)));
        }
        let (row, _) = self.state.members.resolve_or_create(member_id)?;
        self.state.attrs.grow(self.state.members.len());
        for (name, data_type, _) in &staged_props {
            self.state
                .events
                .props
                .entry(name.clone())
                .or_insert(*data_type);
        }
        let partition = self
            .state
            .events
            .types
            .entry(event.to_string())
            .or_default();
        partition.append(&[row], &[ts.micros()], &staged_props, &mut [0]);
        partition.seal();
        self.state.refresh_groups()
    }

    /// Declares an exclusive tag group: from now on, setting one of `tags` on a member
    /// clears the others. Refused when a member already holds two of them.
    pub fn declare_exclusive_tags(&mut self, group: &str, tags: &[&str]) -> Result<()> {
        self.state.tags.declare_exclusive(group, tags)
    }

    /// Exclusive tag groups with their tags.
    pub fn exclusive_tag_groups(&self) -> Vec<(String, Vec<String>)> {
        self.state.tags.exclusive_groups().to_vec()
    }

    /// Defines dynamic group `name`. Its members are materialised now and kept current.
    pub fn define_group(&mut self, name: &str, definition: Segment) -> Result<u64> {
        // Check the definition binds before storing it.
        Evaluator::new(&self.state, Timestamp::now().micros()).eval(&definition)?;
        self.state.groups.define(name, definition)?;
        self.state.refresh_groups()?;
        self.count(&Segment::in_group(name))
    }

    /// Drops dynamic group `name`.
    pub fn drop_group(&mut self, name: &str) -> Result<()> {
        self.state.groups.drop_group(name)
    }

    /// Reads at a pinned *now*.
    pub fn as_of(&self, now: Timestamp) -> View<'_> {
        View {
            state: &self.state,
            now: now.micros(),
        }
    }

    /// COUNT at the wall clock.
    pub fn count(&self, segment: &Segment) -> Result<u64> {
        self.as_of(Timestamp::now()).count(segment)
    }

    /// FIND at the wall clock.
    pub fn find(&self, segment: &Segment, options: &FindOptions) -> Result<FindResult> {
        self.as_of(Timestamp::now()).find(segment, options)
    }

    /// BREAKDOWN at the wall clock.
    pub fn breakdown(
        &self,
        segment: &Segment,
        attribute: &str,
        top: Option<usize>,
    ) -> Result<Vec<BreakdownRow>> {
        self.as_of(Timestamp::now())
            .breakdown(segment, attribute, top)
    }

    /// Live members.
    pub fn member_count(&self) -> u64 {
        self.state.members.live().len()
    }

    /// Stored events.
    pub fn event_count(&self) -> u64 {
        self.state.events.len() as u64
    }

    /// Attributes with their types and fill.
    pub fn attributes(&self) -> Vec<AttributeInfo> {
        self.state
            .attrs
            .iter()
            .map(|a| AttributeInfo {
                name: a.name.clone(),
                data_type: a.column.data_type(),
                non_null: a.index.not_null.len(),
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
        self.state
            .tags
            .iter()
            .map(|(n, b)| (n.to_string(), b.len()))
            .collect()
    }

    /// Event types with their event counts.
    pub fn event_types(&self) -> Vec<(String, u64)> {
        self.state
            .events
            .types
            .iter()
            .map(|(n, p)| (n.clone(), p.len() as u64))
            .collect()
    }

    /// Event properties with their types.
    pub fn event_properties(&self) -> Vec<(String, DataType)> {
        self.state
            .events
            .props
            .iter()
            .map(|(n, t)| (n.clone(), *t))
            .collect()
    }

    /// Dynamic groups with their definitions.
    pub fn groups(&self) -> Vec<GroupInfo> {
        self.state
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

    /// One member's attributes and tags.
    pub fn member(&self, member_id: &str) -> Option<MemberRecord> {
        let row = self.state.members.lookup(member_id)?;
        Some(MemberRecord {
            member_id: member_id.to_string(),
            attributes: self
                .state
                .attrs
                .iter()
                .filter_map(|a| a.column.get(row as usize).map(|v| (a.name.clone(), v)))
                .collect(),
            tags: self
                .state
                .tags
                .tags_of(row)
                .into_iter()
                .map(str::to_string)
                .collect(),
        })
    }

    pub(crate) fn state(&self) -> &State {
        &self.state
    }

    /// Approximate heap bytes held by the database (columns, dictionaries, bitmaps).
    pub fn memory_usage(&self) -> usize {
        self.memory_breakdown().total()
    }

    /// Approximate heap bytes by part of the database.
    pub fn memory_breakdown(&self) -> MemoryUsage {
        let s = &self.state;
        MemoryUsage {
            members: s.members.heap_bytes(),
            attributes: s.attrs.heap_bytes(),
            tags: s.tags.heap_bytes(),
            events: s.events.heap_bytes(),
        }
    }
}

fn check_member_id(member_id: &str) -> Result<()> {
    if member_id.is_empty() {
        return Err(Error::InvalidSegment(
            "member_id must not be empty".to_string(),
        ));
    }
    Ok(())
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
}

impl MemoryUsage {
    /// All parts together.
    pub fn total(&self) -> usize {
        self.members + self.attributes + self.tags + self.events
    }
}

/// The read side of a database at one *now*: COUNT, FIND, BREAKDOWN.
#[derive(Clone, Copy, Debug)]
pub struct View<'db> {
    state: &'db State,
    now: i64,
}

impl View<'_> {
    /// Members in `segment`.
    pub fn count(&self, segment: &Segment) -> Result<u64> {
        Evaluator::new(self.state, self.now).count(segment)
    }

    /// The members of `segment` as a bitmap of row ids (for embedders that combine results).
    pub fn members(&self, segment: &Segment) -> Result<RoaringBitmap> {
        Ok(Evaluator::new(self.state, self.now)
            .eval(segment)?
            .into_owned())
    }

    /// Members of `segment` with the requested attributes, in row-id order (the order the
    /// members were first seen), paged by `offset` / `limit`.
    pub fn find(&self, segment: &Segment, options: &FindOptions) -> Result<FindResult> {
        let attrs: Vec<_> = options
            .columns
            .iter()
            .map(|c| self.state.attrs.require(c))
            .collect::<Result<_>>()?;
        let bitmap = Evaluator::new(self.state, self.now).eval(segment)?;
        let limit = options.limit.unwrap_or(usize::MAX);
        let rows = bitmap
            .iter()
            .skip(options.offset)
            .take(limit)
            .map(|row| FoundMember {
                member_id: self.state.members.member_id(row).to_string(),
                values: attrs.iter().map(|a| a.column.get(row as usize)).collect(),
            })
            .collect();
        let mut columns = vec!["member_id".to_string()];
        columns.extend(options.columns.iter().cloned());
        Ok(FindResult {
            columns,
            types: attrs.iter().map(|a| a.column.data_type()).collect(),
            rows,
            total: bitmap.len(),
        })
    }

    /// Counts of `segment` per value of `attribute`, NULL included, largest first (ties by
    /// value). With `top`, only the first `top` lines.
    pub fn breakdown(
        &self,
        segment: &Segment,
        attribute: &str,
        top: Option<usize>,
    ) -> Result<Vec<BreakdownRow>> {
        let attr = self.state.attrs.require(attribute)?;
        let bitmap = Evaluator::new(self.state, self.now).eval(segment)?;
        let column = &attr.column;
        let mut lines: Vec<BreakdownRow> = Vec::new();
        if let Some(values) = &attr.index.values {
            for (slot, members) in values.iter().enumerate() {
                let count = bitmap.intersection_len(members);
                if count == 0 {
                    continue;
                }
                let value = match &column.data {
                    ColumnData::Bool(_) => Value::Bool(slot == 1),
                    ColumnData::Str { dict, .. } => Value::Str(dict.get(slot as u32).to_string()),
                    _ => {
                        return Err(Error::Internal(
                            "value bitmaps on an ordered column".to_string(),
                        ));
                    }
                };
                lines.push(BreakdownRow {
                    value: Some(value),
                    count,
                });
            }
        } else {
            let mut counts: HashMap<u64, (u32, u64)> = HashMap::new();
            for row in bitmap.iter() {
                let r = row as usize;
                if !column.is_valid(r) {
                    continue;
                }
                let key = match &column.data {
                    ColumnData::Str { codes, .. } => u64::from(codes[r]),
                    ColumnData::Float(v) => v[r].to_bits(),
                    _ => column.int_key(r).unwrap_or(0) as u64,
                };
                counts.entry(key).or_insert((row, 0)).1 += 1;
            }
            lines = counts
                .into_values()
                .map(|(row, count)| BreakdownRow {
                    value: column.get(row as usize),
                    count,
                })
                .collect();
        }
        let with_value: u64 = lines.iter().map(|l| l.count).sum();
        if bitmap.len() > with_value {
            lines.push(BreakdownRow {
                value: None,
                count: bitmap.len() - with_value,
            });
        }
        lines.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| cmp_values(&a.value, &b.value))
        });
        if let Some(top) = top {
            lines.truncate(top);
        }
        Ok(lines)
    }
}

/// Order of values in ties: by value, NULL last.
fn cmp_values(a: &Option<Value>, b: &Option<Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, _) => Ordering::Greater,
        (_, None) => Ordering::Less,
        (Some(Value::Str(x)), Some(Value::Str(y))) => x.cmp(y),
        (Some(Value::Int(x)), Some(Value::Int(y))) => x.cmp(y),
        (Some(Value::Float(x)), Some(Value::Float(y))) => x.total_cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Date(x)), Some(Value::Date(y))) => x.cmp(y),
        (Some(Value::Timestamp(x)), Some(Value::Timestamp(y))) => x.cmp(y),
        _ => Ordering::Equal,
    }
}
