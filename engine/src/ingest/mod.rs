//! Ingest: members, events and tags from Arrow batches and from Parquet, CSV and JSON Lines
//! files.
//!
//! Every load is staged first (every value converted and checked) and applied only when the
//! whole input is good, so a bad file is refused with its file, row and column and nothing
//! of it is applied.

pub(crate) mod command;
mod files;
mod identities;
mod stage;
mod typing;

pub use command::{LoadInfo, LoadedInput};
pub use files::{FileFormat, input_files, read_batches};
pub(crate) use files::{decompressed, read_batches_from};
pub(crate) use stage::{StagedEvents, StagedMembers, StagedTags};

use hashbrown::HashMap;

use arrow_array::{Array, StringArray};

use crate::error::Result;
use crate::members::RowId;
use crate::state::{State, Touched};

/// What a load did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Input rows applied.
    pub rows: u64,
    /// Members created by this load.
    pub new_members: u64,
    /// The load's number in `SHOW LOADS` ([`crate::Database::loads`]).
    pub load: u64,
    /// Each input with the rows it held.
    pub inputs: Vec<LoadedInput>,
    /// (member, tag) pairs taken from `--tags-from` columns.
    pub tags_from_columns: u64,
    /// What the load did that its user should know: columns skipped, columns loaded as
    /// text under `--allow-text-fallback` with the values that were not numbers or times.
    pub warnings: Vec<String>,
}

/// The values of a staged key column (checked non-NULL when staged).
fn strings(array: &StringArray) -> impl Iterator<Item = &str> {
    (0..array.len()).map(|i| array.value(i))
}

fn resolve_rows<'s>(
    state: &mut State,
    ids: impl Iterator<Item = &'s str>,
    report: &mut IngestReport,
) -> Result<Vec<RowId>> {
    let mut rows = Vec::with_capacity(ids.size_hint().0);
    for id in ids {
        let (row, new) = state.members.resolve_or_create(id)?;
        report.new_members += u64::from(new);
        rows.push(row);
    }
    state.attrs.grow(state.members.len());
    Ok(rows)
}

impl StagedMembers {
    /// Applies staged member rows: creates members, upserts attributes, rebuilds the
    /// indexes of the attributes it touched.
    pub(crate) fn apply(self, state: &mut State, changed: &mut Touched) -> Result<IngestReport> {
        let mut report = IngestReport::default();
        let mut touched = Vec::new();
        for batch in &self.batches {
            for (name, ..) in &batch.columns {
                crate::state::apply::not_a_trait(state, name)?;
            }
        }
        for batch in &self.batches {
            let rows = resolve_rows(state, strings(&batch.ids), &mut report)?;
            changed.members(&rows, report.new_members > 0);
            report.rows += rows.len() as u64;
            for (name, data_type, array) in &batch.columns {
                changed.attributes.insert(name.clone());
                let pos = state.attrs.ensure(name, *data_type, state.members.len())?;
                state
                    .attrs
                    .by_position_mut(pos)
                    .column
                    .set_rows(&rows, array, None);
                if !touched.contains(&pos) {
                    touched.push(pos);
                }
            }
        }
        for pos in touched {
            state.attrs.rebuild_index(pos);
        }
        Ok(report)
    }
}

impl StagedEvents {
    /// Appends staged events to their types' partitions, creating members as needed.
    pub(crate) fn apply(self, state: &mut State, changed: &mut Touched) -> Result<IngestReport> {
        let mut report = IngestReport::default();
        for batch in self.batches {
            let rows = resolve_rows(state, strings(&batch.ids), &mut report)?;
            changed.members(&rows, report.new_members > 0);
            report.rows += rows.len() as u64;
            for (name, data_type, _) in &batch.props {
                state.events.props.entry(name.clone()).or_insert(*data_type);
            }
            let mut by_type: HashMap<&str, Vec<u32>> = HashMap::new();
            for (i, event) in strings(&batch.events).enumerate() {
                by_type.entry(event).or_default().push(i as u32);
            }
            for (event, mut indices) in by_type {
                changed.events.insert(event.to_string());
                let partition = state.events.partition_mut(event);
                partition.append(&rows, &batch.ts, &batch.props, &mut indices);
            }
        }
        state.events.seal();
        Ok(report)
    }
}

impl StagedTags {
    /// Adds staged (member, tag) pairs, creating members as needed.
    pub(crate) fn apply(self, state: &mut State, changed: &mut Touched) -> Result<IngestReport> {
        let mut report = IngestReport::default();
        let mut by_tag: HashMap<&str, Vec<RowId>> = HashMap::new();
        for (ids, tags) in &self.batches {
            let rows = resolve_rows(state, strings(ids), &mut report)?;
            changed.members(&rows, report.new_members > 0);
            report.rows += rows.len() as u64;
            for (row, tag) in rows.iter().zip(strings(tags)) {
                if !changed.tags.contains(tag) {
                    changed.tags.insert(tag.to_string());
                    changed
                        .tags
                        .extend(state.tags.siblings(tag).into_iter().flatten());
                }
                if state.tags.siblings(tag).is_some() {
                    // exclusive: in input order, so the member's last tag of the group wins
                    state.tags.add(tag, *row);
                } else {
                    by_tag.entry(tag).or_default().push(*row);
                }
            }
        }
        for (tag, rows) in by_tag {
            state.tags.add_many(tag, &rows);
        }
        Ok(report)
    }
}

impl StagedTags {
    /// Removes staged (member, tag) pairs; unknown members and tags are skipped.
    pub(crate) fn remove(self, state: &mut State, changed: &mut Touched) -> IngestReport {
        let mut report = IngestReport::default();
        for (ids, tags) in &self.batches {
            for (id, tag) in strings(ids).zip(strings(tags)) {
                if let Some(row) = state.members.lookup(id) {
                    changed.members(&[row], false);
                    if !changed.tags.contains(tag) {
                        changed.tags.insert(tag.to_string());
                    }
                    report.rows += u64::from(state.tags.remove(tag, row));
                }
            }
        }
        report
    }
}
