//! A load command: every input of one `memberdb load` (or [`crate::Load`]) staged together
//! under the command's rules, checked against the loads before it, and applied as one
//! change; the history `SHOW LOADS` lists.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType as ArrowType, Schema};
use serde::{Deserialize, Serialize};

use super::typing::{self, KEY_COLUMNS, TextInput};
use super::{IngestReport, StagedEvents, StagedMembers, StagedTags};
use crate::column::{canonical_type_of, cast_to};
use crate::error::{Error, Result};
use crate::state::{State, Touched};
use crate::value::{DataType, Timestamp};
use crate::wal::change::LoadKind;

fn is_false(b: &bool) -> bool {
    !*b
}

/// The rules of a load command, as the log records them: replay stages the same inputs
/// under the same rules against the same state, so it gives the same answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LoadRules {
    /// Declared column types (`--schema`), by column name, for every input.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) schema: Vec<(String, DataType)>,
    /// A column of numbers or times with some values that are not loads as text (with a
    /// warning) instead of refusing the load.
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) allow_text_fallback: bool,
    /// Inputs whose content was loaded before are loaded again.
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) again: bool,
    /// Columns whose values (lists, or single values) become tags of the row's member.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) tags_from: Vec<String>,
    /// Columns left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) skip: Vec<String>,
}

/// One input of a load command, read.
pub(crate) struct Input {
    pub(crate) kind: LoadKind,
    /// Where it came from, for messages and `SHOW LOADS`.
    pub(crate) source: String,
    pub(crate) batches: Vec<RecordBatch>,
    /// Read from a text format: its columns are typed by [`typing`].
    pub(crate) text: bool,
    /// XXH3-128 of its (decompressed) content, for files.
    pub(crate) hash: Option<String>,
}

/// The content hash of an input's bytes, as loads record it.
pub(crate) fn content_hash(bytes: &[u8]) -> String {
    format!("{:032x}", twox_hash::XxHash3_128::oneshot(bytes))
}

/// One input of a load, as `SHOW LOADS` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadedInput {
    /// `members`, `events`, `tags` or `untag`.
    pub kind: String,
    /// The file (or `batch`).
    pub source: String,
    /// XXH3-128 of the file's content, hex; `None` for batches.
    #[serde(default)]
    pub hash: Option<String>,
    /// Rows it held.
    pub rows: u64,
}

/// A load: one `memberdb load` command or one call of [`crate::Database::load`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadInfo {
    /// 1, 2, ... in the order the loads were applied.
    pub id: u64,
    /// When it was applied.
    pub at: Timestamp,
    /// Its inputs.
    pub inputs: Vec<LoadedInput>,
    /// Members it created.
    pub new_members: u64,
}

fn kind_name(kind: LoadKind) -> &'static str {
    match kind {
        LoadKind::Members => "members",
        LoadKind::Events => "events",
        LoadKind::Tags => "tags",
        LoadKind::UntagPairs => "untag",
        LoadKind::Identities => "identities",
    }
}

enum Part {
    Members(StagedMembers),
    Events(StagedEvents),
    Tags(StagedTags),
    Untag(StagedTags),
    Identities(super::identities::StagedIdentities),
}

/// A load command staged: every value converted and checked; applying it cannot fail on
/// the input.
pub(crate) struct StagedCommand {
    /// Each input's staged rows, with its position in `info.inputs`; tags taken from
    /// columns come last, with no position.
    parts: Vec<(Option<usize>, Part)>,
    info: LoadInfo,
    warnings: Vec<String>,
}

/// Stages `inputs` under `rules` against `state`. `at` is the time the load is stamped with.
pub(crate) fn stage(
    state: &State,
    mut inputs: Vec<Input>,
    rules: &LoadRules,
    at: i64,
) -> Result<StagedCommand> {
    if !rules.again {
        refuse_repeats(state, &inputs)?;
    }
    check_named_columns(&inputs, rules)?;
    let mut warnings = Vec::new();
    let mut tag_pairs: Vec<(StringArray, StringArray)> = Vec::new();
    for input in &mut inputs {
        take_columns(input, rules, &mut tag_pairs, &mut warnings)?;
    }
    for kind in [LoadKind::Members, LoadKind::Events] {
        type_inputs(state, &mut inputs, kind, rules, &mut warnings)?;
    }
    let mut parts = Vec::with_capacity(inputs.len() + 1);
    let mut seen_attrs = Vec::new();
    let mut seen_props = Vec::new();
    let attr = |name: &str| state.attrs.get(name).map(|a| a.column.data_type());
    let prop = |name: &str| state.events.props.get(name).copied();
    let mut loaded = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let (batches, source) = (&input.batches, input.source.as_str());
        let part = match input.kind {
            LoadKind::Members => Part::Members(StagedMembers::stage(
                batches,
                source,
                &attr,
                &mut seen_attrs,
            )?),
            LoadKind::Events => Part::Events(StagedEvents::stage(
                batches,
                source,
                &prop,
                &mut seen_props,
            )?),
            LoadKind::Tags => Part::Tags(StagedTags::stage(batches, source)?),
            LoadKind::UntagPairs => Part::Untag(StagedTags::stage(batches, source)?),
            LoadKind::Identities => Part::Identities(super::identities::StagedIdentities::stage(
                state, batches, source,
            )?),
        };
        parts.push((Some(i), part));
        loaded.push(LoadedInput {
            kind: kind_name(input.kind).to_string(),
            source: input.source.clone(),
            hash: input.hash.clone(),
            rows: 0,
        });
    }
    if !tag_pairs.is_empty() {
        let staged = StagedTags {
            batches: tag_pairs
                .into_iter()
                .filter(|(ids, _)| !ids.is_empty())
                .collect(),
        };
        parts.push((None, Part::Tags(staged)));
    }
    let info = LoadInfo {
        id: state.loads.last().map_or(1, |l| l.id + 1),
        at: Timestamp(at),
        inputs: loaded,
        new_members: 0,
    };
    Ok(StagedCommand {
        parts,
        info,
        warnings,
    })
}

impl StagedCommand {
    /// Applies every input, in the order given, and records the load.
    pub(crate) fn apply(self, state: &mut State, touched: &mut Touched) -> Result<IngestReport> {
        let mut info = self.info;
        let mut report = IngestReport {
            warnings: self.warnings,
            ..IngestReport::default()
        };
        // A load of observations alone writes no member data: nothing to settle into the
        // merged member ids' records afterwards (each merge showed its profile already).
        if (self.parts.iter()).all(|(_, part)| matches!(part, Part::Identities(_))) {
            touched.identity_only = true;
        }
        for (input, part) in self.parts {
            let applied = match part {
                Part::Members(m) => m.apply(state, touched)?,
                Part::Events(e) => e.apply(state, touched)?,
                Part::Tags(t) => t.apply(state, touched)?,
                Part::Untag(t) => t.remove(state, touched),
                Part::Identities(i) => {
                    let applied = i.apply(state, touched)?;
                    report.warnings.extend(applied.warnings.iter().cloned());
                    applied
                }
            };
            match input {
                Some(i) => {
                    info.inputs[i].rows = applied.rows;
                    report.rows += applied.rows;
                }
                None => report.tags_from_columns += applied.rows,
            }
            report.new_members += applied.new_members;
        }
        info.new_members = report.new_members;
        report.load = info.id;
        report.inputs = info.inputs.clone();
        Arc::make_mut(&mut state.loads).push(info);
        Ok(report)
    }
}

/// Refuses inputs whose content was loaded before (or is given twice).
fn refuse_repeats(state: &State, inputs: &[Input]) -> Result<()> {
    for (i, input) in inputs.iter().enumerate() {
        let Some(hash) = &input.hash else { continue };
        let earlier = state.loads.iter().find_map(|load| {
            let same = load.inputs.iter().find(|x| x.hash.as_ref() == Some(hash))?;
            Some(format!(
                "was loaded before: {} in load {} at {}",
                same.source, load.id, load.at
            ))
        });
        let here = inputs[..i]
            .iter()
            .find(|x| x.hash.as_ref() == Some(hash))
            .map(|x| format!("has the same content as {}, given before it", x.source));
        if let Some(why) = earlier.or(here) {
            return Err(Error::Conflict(format!(
                "{}: its content {why} (SHOW LOADS lists the loads; pass \
                 --again to load it once more)",
                input.source
            )));
        }
    }
    Ok(())
}

/// The columns of every input, in order, without repeats.
fn column_names(inputs: &[Input]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for input in inputs {
        for batch in input.batches.iter().take(1) {
            for field in batch.schema().fields() {
                if !names.contains(field.name()) {
                    names.push(field.name().clone());
                }
            }
        }
    }
    names
}

/// Every column the rules name must be a column of some input: a typo would otherwise do
/// nothing, silently.
fn check_named_columns(inputs: &[Input], rules: &LoadRules) -> Result<()> {
    let names = column_names(inputs);
    let named = rules
        .schema
        .iter()
        .map(|(n, _)| ("--schema", n))
        .chain(rules.tags_from.iter().map(|n| ("--tags-from", n)))
        .chain(rules.skip.iter().map(|n| ("--skip", n)));
    for (flag, name) in named {
        if !names.contains(name) {
            let suggestions = crate::util::suggest::closest(name, names.iter().map(String::as_str));
            let hint = match suggestions.first() {
                Some(s) => format!("; did you mean '{s}'?"),
                None => String::new(),
            };
            return Err(Error::bad_input(
                "load",
                None,
                None,
                format!(
                    "{flag} names column '{name}', which no input has{hint} (columns: {})",
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Takes the `--skip` and `--tags-from` columns out of an input (tags into `tag_pairs`) and
/// refuses a list or struct column left in it.
fn take_columns(
    input: &mut Input,
    rules: &LoadRules,
    tag_pairs: &mut Vec<(StringArray, StringArray)>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let Some(first) = input.batches.first() else {
        return Ok(());
    };
    let schema = first.schema();
    let mut drop_columns = Vec::new();
    for field in schema.fields() {
        let name = field.name();
        if rules.skip.contains(name) {
            warnings.push(format!("{}: column '{name}' skipped", input.source));
            drop_columns.push(name.clone());
        } else if rules.tags_from.contains(name) {
            let mut first_row = 1;
            for batch in &input.batches {
                tag_pairs.push(tags_of(batch, name, input.text, &input.source, first_row)?);
                first_row += batch.num_rows();
            }
            drop_columns.push(name.clone());
        } else if canonical_type_of(field.data_type()).is_none() {
            let shape = match field.data_type() {
                ArrowType::List(_) | ArrowType::LargeList(_) | ArrowType::FixedSizeList(_, _) => {
                    "holds lists; load them as tags"
                }
                _ => "holds nested values; load them as tags",
            };
            return Err(Error::bad_input(
                &input.source,
                None,
                Some(name),
                format!(
                    "{shape} with --tags-from {name}, or leave the column out with --skip {name}"
                ),
            ));
        }
    }
    if drop_columns.is_empty() {
        return Ok(());
    }
    for batch in &mut input.batches {
        let keep: Vec<usize> = (0..batch.num_columns())
            .filter(|&i| !drop_columns.contains(batch.schema().field(i).name()))
            .collect();
        *batch = batch
            .project(&keep)
            .map_err(|e| Error::Internal(format!("dropping columns: {e}")))?;
    }
    Ok(())
}

/// The (member_id, tag) pairs of column `name` of `batch`: every element of a list, or the
/// value itself; in text inputs a value written as a list (`[vip, photo]`, as DuckDB writes
/// lists to CSV) is split. NULL and empty tags are left out.
fn tags_of(
    batch: &RecordBatch,
    name: &str,
    text: bool,
    source: &str,
    first_row: usize,
) -> Result<(StringArray, StringArray)> {
    let ids = batch.column_by_name("member_id").ok_or_else(|| {
        Error::bad_input(
            source,
            None,
            Some("member_id"),
            "--tags-from needs a 'member_id' column beside the tags",
        )
    })?;
    let ids = cast_to(ids, DataType::String, source, "member_id", first_row)?;
    let ids = ids.as_string::<i32>();
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| Error::Internal(format!("column {name} vanished")))?;
    let strings = |values: &ArrayRef| -> Result<ArrayRef> {
        arrow_cast::cast(values, &ArrowType::Utf8)
            .map_err(|e| Error::bad_input(source, None, Some(name), format!("{e}")))
    };
    let mut out_ids = Vec::new();
    let mut out_tags = Vec::new();
    let mut push = |row: usize, tag: &str| {
        let tag = tag.trim().trim_matches(|c| c == '"' || c == '\'');
        if !tag.is_empty() && !ids.is_null(row) {
            out_ids.push(ids.value(row).to_string());
            out_tags.push(tag.to_string());
        }
    };
    match column.data_type() {
        ArrowType::List(_) | ArrowType::LargeList(_) => {
            for row in 0..column.len() {
                if column.is_null(row) {
                    continue;
                }
                let values = match column.data_type() {
                    ArrowType::List(_) => column.as_list::<i32>().value(row),
                    _ => column.as_list::<i64>().value(row),
                };
                let values = strings(&values)?;
                let values = values.as_string::<i32>();
                for i in 0..values.len() {
                    if values.is_valid(i) {
                        push(row, values.value(i));
                    }
                }
            }
        }
        _ => {
            let values = strings(column)?;
            let values = values.as_string::<i32>();
            for row in 0..values.len() {
                if values.is_null(row) {
                    continue;
                }
                let value = values.value(row).trim();
                match value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
                    Some(list) if text => list.split(',').for_each(|t| push(row, t)),
                    _ => push(row, value),
                }
            }
        }
    }
    Ok((StringArray::from(out_ids), StringArray::from(out_tags)))
}

/// Types the columns of the inputs of `kind`: text inputs through [`typing`], declared
/// types cast in the others. A declared type must be the type of an attribute (or property)
/// that exists.
fn type_inputs(
    state: &State,
    inputs: &mut [Input],
    kind: LoadKind,
    rules: &LoadRules,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let what = match kind {
        LoadKind::Members => "attribute",
        _ => "event property",
    };
    let known = |name: &str| match kind {
        LoadKind::Members => state.attrs.get(name).map(|a| a.column.data_type()),
        _ => state.events.props.get(name).copied(),
    };
    let of_kind = |i: &&mut Input| i.kind == kind;
    let mut declared: Vec<(String, (DataType, String))> = Vec::new();
    let names = column_names(inputs);
    for name in &names {
        let in_kind = inputs.iter().filter(|i| i.kind == kind).any(|i| {
            i.batches
                .first()
                .is_some_and(|b| b.column_by_name(name).is_some())
        });
        if !in_kind || KEY_COLUMNS.contains(&name.as_str()) {
            continue;
        }
        if kind == LoadKind::Events && name == "ts" {
            declared.push((name.clone(), (DataType::Timestamp, String::new())));
            continue;
        }
        let schema = rules
            .schema
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t);
        match (schema, known(name)) {
            (Some(s), Some(k)) if s != k => {
                return Err(Error::Conflict(format!(
                    "--schema declares '{name}' {s}, but {what} '{name}' is {k}; change it \
                     first with ALTER ATTRIBUTE {name} TYPE {s}, or leave it out of --schema"
                )));
            }
            (Some(t), _) => declared.push((name.clone(), (t, "declared by --schema".into()))),
            (None, Some(t)) => {
                let hint = match kind {
                    LoadKind::Members => {
                        format!(" (ALTER ATTRIBUTE {name} TYPE ... changes its type)")
                    }
                    _ => String::new(),
                };
                let why = format!("{what} '{name}' is {t}{hint}");
                declared.push((name.clone(), (t, why)));
            }
            (None, None) => {
                // A typed input of the same load decides for the text ones.
                let typed = inputs
                    .iter()
                    .filter(|i| i.kind == kind && !i.text)
                    .find_map(|i| {
                        let field = i
                            .batches
                            .first()?
                            .schema()
                            .field_with_name(name)
                            .ok()?
                            .clone();
                        canonical_type_of(field.data_type())
                    });
                if let Some(t) = typed {
                    let why = format!("'{name}' is {t} in another input of this load");
                    declared.push((name.clone(), (t, why)));
                }
            }
        }
    }
    // Declared types cast the typed inputs' columns too (a Parquet phone of integers read
    // as text).
    for input in inputs.iter_mut().filter(|i| i.kind == kind && !i.text) {
        for (name, t) in rules
            .schema
            .iter()
            .filter(|(n, _)| !KEY_COLUMNS.contains(&n.as_str()))
        {
            let mut first_row = 1;
            for batch in &mut input.batches {
                let rows = batch.num_rows();
                if let Ok(position) = batch.schema().index_of(name) {
                    let column = batch.column(position);
                    let cast = cast_to(column, *t, &input.source, name, first_row)?;
                    *batch = replace_column(batch, position, cast)?;
                }
                first_row += rows;
            }
        }
    }
    let mut text_inputs: Vec<TextInput<'_>> = inputs
        .iter_mut()
        .filter(|i| of_kind(i) && i.text)
        .map(|i| TextInput {
            source: &i.source,
            batches: &mut i.batches,
        })
        .collect();
    let declared_type = |name: &str| {
        declared
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
    };
    typing::type_text_inputs(
        &mut text_inputs,
        &declared_type,
        &KEY_COLUMNS,
        rules.allow_text_fallback,
        warnings,
    )
}

fn replace_column(batch: &RecordBatch, position: usize, column: ArrayRef) -> Result<RecordBatch> {
    let schema = batch.schema();
    let mut fields: Vec<_> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields[position] = fields[position]
        .clone()
        .with_data_type(column.data_type().clone());
    let mut columns = batch.columns().to_vec();
    columns[position] = column;
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::Internal(format!("re-typed batch: {e}")))
}
