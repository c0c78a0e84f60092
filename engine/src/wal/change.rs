//! The changes the log records, and how each is applied to the state.
//!
//! Applying is deterministic: the same change on the same state gives the same state and the
//! same answer, on the writer's thread and again when the log is replayed at open. A change
//! the state refuses (a value of the wrong type, a group that exists) is refused the same way
//! on replay, so a refused change in the log does no harm.

use arrow_array::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::column::Column;
use crate::error::{Error, Result};
use crate::ingest::IngestReport;
use crate::ingest::command::{self, Input, LoadRules};
use crate::segment::Segment;
use crate::state::State;
use crate::value::{DataType, Timestamp, Value};

/// What a bulk load file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LoadKind {
    Members,
    Events,
    Tags,
    /// (member, tag) pairs to remove.
    UntagPairs,
}

/// How a load file holds its rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LoadFormat {
    /// Arrow IPC runs (rows given as batches through the API).
    #[default]
    ArrowIpc,
    /// A copy of the loaded file itself.
    Parquet,
    Csv,
    JsonLines,
}

impl LoadFormat {
    /// Text formats, whose columns a load types from their values.
    pub(crate) fn is_text(self) -> bool {
        matches!(self, LoadFormat::Csv | LoadFormat::JsonLines)
    }

    pub(crate) fn extension(self) -> &'static str {
        match self {
            LoadFormat::ArrowIpc => "arrow",
            LoadFormat::Parquet => "parquet",
            LoadFormat::Csv => "csv",
            LoadFormat::JsonLines => "jsonl",
        }
    }
}

impl From<crate::ingest::FileFormat> for LoadFormat {
    fn from(format: crate::ingest::FileFormat) -> Self {
        match format {
            crate::ingest::FileFormat::Parquet => LoadFormat::Parquet,
            crate::ingest::FileFormat::Csv => LoadFormat::Csv,
            crate::ingest::FileFormat::JsonLines => LoadFormat::JsonLines,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One input of a load command as the log records it: its rows are in `file` of the
/// database directory until the next checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LoggedInput {
    pub(crate) kind: LoadKind,
    pub(crate) file: String,
    /// How `file` holds the rows.
    pub(crate) format: LoadFormat,
    /// `file` is gzip-compressed (a copy of a `.gz` input).
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) gzip: bool,
    /// CRC-32 of the file's bytes.
    pub(crate) crc: u32,
    /// Where the rows came from, for messages and `SHOW LOADS`.
    pub(crate) source: String,
    /// XXH3-128 of the input's (decompressed) content, for inputs that were files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) hash: Option<String>,
}

/// One change, as it is written to the log (externally tagged JSON, e.g.
/// `{"add_tags":{"member_id":"M1","tags":["vip"]}}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Change {
    UpsertMember {
        member_id: String,
        fields: Vec<(String, Option<Value>)>,
    },
    AddTags {
        member_id: String,
        tags: Vec<String>,
    },
    RemoveTags {
        member_id: String,
        tags: Vec<String>,
    },
    AddEvent {
        member_id: String,
        event: String,
        /// Microseconds since the epoch, UTC.
        ts: i64,
        props: Vec<(String, Option<Value>)>,
    },
    DeclareExclusiveTags {
        group: String,
        tags: Vec<String>,
    },
    DefineGroup {
        name: String,
        /// Stored as canonical text with its language version (`groups::stored`).
        #[serde(with = "crate::groups::stored")]
        definition: Segment,
    },
    DropGroup {
        name: String,
    },
    /// `ALTER ATTRIBUTE name TYPE data_type`.
    AlterAttribute {
        name: String,
        data_type: DataType,
    },
    /// `DROP ATTRIBUTE name`.
    DropAttribute {
        name: String,
    },
    /// A load command: every input applied as one change, under its rules, stamped `at`.
    LoadCommand {
        inputs: Vec<LoggedInput>,
        #[serde(default)]
        rules: LoadRules,
        /// Microseconds since the epoch, UTC.
        at: i64,
    },
    /// A bulk load of one input, as versions before load commands logged it (read, no
    /// longer written).
    Load {
        kind: LoadKind,
        file: String,
        /// How `file` holds the rows.
        #[serde(default)]
        format: LoadFormat,
        /// CRC-32 of the file's bytes.
        crc: u32,
        /// Where the rows came from, for messages.
        source: String,
    },
}

/// What applying a change gives back to its writer.
#[derive(Debug)]
pub(crate) enum Outcome {
    Done,
    Ingest(IngestReport),
}

impl Change {
    /// Checks what can be checked without the state, so the log never holds a change that
    /// could not be written back out (JSON has no NaN) or that no state accepts.
    pub(crate) fn precheck(&self) -> Result<()> {
        let member = |id: &str| check_member_id(id);
        let finite = |fields: &[(String, Option<Value>)], what: &str| {
            for (name, value) in fields {
                check_name(name, &format!("{what} name"))?;
                if let Some(Value::Float(x)) = value
                    && !x.is_finite()
                {
                    return Err(Error::InvalidSegment(format!(
                        "{what} '{name}': {x} is not a finite number"
                    )));
                }
            }
            Ok(())
        };
        match self {
            Change::UpsertMember { member_id, fields } => {
                member(member_id)?;
                finite(fields, "attribute")
            }
            Change::AddTags { member_id, tags } => {
                member(member_id)?;
                tags.iter().try_for_each(|t| check_name(t, "a tag name"))
            }
            Change::AddEvent {
                member_id,
                event,
                props,
                ..
            } => {
                member(member_id)?;
                check_name(event, "an event type")?;
                finite(props, "event property")
            }
            Change::RemoveTags { .. }
            | Change::DeclareExclusiveTags { .. }
            | Change::DefineGroup { .. }
            | Change::DropGroup { .. }
            | Change::AlterAttribute { .. }
            | Change::DropAttribute { .. }
            | Change::Load { .. }
            | Change::LoadCommand { .. } => Ok(()),
        }
    }
}

pub(crate) fn check_member_id(member_id: &str) -> Result<()> {
    check_name(member_id, "a member_id")
}

/// Keys and names (member ids, tags, event types) are non-empty and hold no NUL byte: NUL
/// ends strings in the C clients, shells and files they travel through, so two ids that
/// differ only after one would be confused there.
pub(crate) fn check_name(name: &str, what: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidSegment(format!("{what} must not be empty")));
    }
    if name.contains('\0') {
        return Err(Error::InvalidSegment(format!(
            "{what} must not hold a NUL byte"
        )));
    }
    Ok(())
}

/// Reads the rows of a logged input from its load file.
pub(crate) type ReadLoadFile<'a> = dyn Fn(&LoggedInput) -> Result<Vec<RecordBatch>> + 'a;

/// The rows of a bulk load: per input, in the order of its record.
pub(crate) type LoadRows = Vec<Vec<RecordBatch>>;

/// Applies `change`. A load's rows come from `rows` (the batches the writer staged) or, on
/// replay, from `read_rows`. Dynamic groups are not refreshed here; the caller refreshes
/// them once after a batch of changes.
pub(crate) fn apply(
    state: &mut State,
    change: &Change,
    rows: Option<LoadRows>,
    read_rows: &ReadLoadFile<'_>,
) -> Result<Outcome> {
    match change {
        Change::UpsertMember { member_id, fields } => upsert_member(state, member_id, fields),
        Change::AddTags { member_id, tags } => {
            let (row, _) = state.members.resolve_or_create(member_id)?;
            state.attrs.grow(state.members.len());
            for tag in tags {
                state.tags.add(tag, row);
            }
            Ok(Outcome::Done)
        }
        Change::RemoveTags { member_id, tags } => {
            if let Some(row) = state.members.lookup(member_id) {
                for tag in tags {
                    state.tags.remove(tag, row);
                }
            }
            Ok(Outcome::Done)
        }
        Change::AddEvent {
            member_id,
            event,
            ts,
            props,
        } => add_event(state, member_id, event, *ts, props),
        Change::DeclareExclusiveTags { group, tags } => {
            let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
            state.tags.declare_exclusive(group, &tags)?;
            Ok(Outcome::Done)
        }
        Change::DefineGroup { name, definition } => {
            // The definition must bind against the state before it is stored.
            crate::plan::bind(state, definition, Timestamp::now().micros(), None)?;
            state.groups.define(name, definition.clone())?;
            Ok(Outcome::Done)
        }
        Change::DropGroup { name } => {
            state.groups.drop_group(name)?;
            Ok(Outcome::Done)
        }
        Change::AlterAttribute { name, data_type } => {
            let attr = state.attrs.require(name)?;
            if attr.column.data_type() == *data_type {
                return Ok(Outcome::Done);
            }
            let column = attr.column.retyped(*data_type, 5).map_err(|(rows, n)| {
                let shown: Vec<String> = rows
                    .iter()
                    .map(|(row, v)| {
                        let member = state.members.member_id(*row as u32);
                        format!("'{v}' (member {member})")
                    })
                    .collect();
                let more = n.saturating_sub(shown.len());
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                Error::InvalidSegment(format!(
                    "attribute '{name}' cannot become {data_type}: {n} values do not convert: \
                     {}{more}; nothing was changed",
                    shown.join(", ")
                ))
            })?;
            let what = format!("changing the type of attribute '{name}'");
            keeping_groups(state, &what, |state| {
                state.attrs.replace_column(name, column)
            })
        }
        Change::DropAttribute { name } => {
            let what = format!("dropping attribute '{name}'");
            keeping_groups(state, &what, |state| state.attrs.remove(name))
        }
        Change::LoadCommand { inputs, rules, at } => {
            let inputs = load_inputs(inputs, rows, read_rows)?;
            let staged = command::stage(state, inputs, rules, *at)?;
            Ok(Outcome::Ingest(staged.apply(state)?))
        }
        Change::Load { .. } => {
            let (inputs, rules, at) = change.as_command().expect("a load");
            let inputs = load_inputs(&inputs, rows, read_rows)?;
            let staged = command::stage(state, inputs, &rules, at)?;
            Ok(Outcome::Ingest(staged.apply(state)?))
        }
    }
}

impl Change {
    /// A load (of either form) as a load command: its inputs, rules and time.
    pub(crate) fn as_command(&self) -> Option<(Vec<LoggedInput>, LoadRules, i64)> {
        match self {
            Change::LoadCommand { inputs, rules, at } => Some((inputs.clone(), rules.clone(), *at)),
            Change::Load {
                kind,
                file,
                format,
                crc,
                source,
            } => Some((
                vec![LoggedInput {
                    kind: *kind,
                    file: file.clone(),
                    format: *format,
                    gzip: false,
                    crc: *crc,
                    source: source.clone(),
                    hash: None,
                }],
                LoadRules::default(),
                0,
            )),
            _ => None,
        }
    }
}

/// The inputs of a load: the rows the writer read (`rows`) or, on replay, the load files.
pub(crate) fn load_inputs(
    logged: &[LoggedInput],
    rows: Option<LoadRows>,
    read_rows: &ReadLoadFile<'_>,
) -> Result<Vec<Input>> {
    let rows = match rows {
        Some(rows) => rows,
        None => logged.iter().map(read_rows).collect::<Result<_>>()?,
    };
    Ok(logged
        .iter()
        .zip(rows)
        .map(|(l, batches)| Input {
            kind: l.kind,
            source: l.source.clone(),
            batches,
            text: l.format.is_text(),
            hash: l.hash.clone(),
        })
        .collect())
}

/// Makes `change` to the state unless a group's definition no longer binds after it (it
/// uses the attribute): then the state is left as it was and the error names the group.
fn keeping_groups(
    state: &mut State,
    what: &str,
    change: impl FnOnce(&mut State) -> Result<()>,
) -> Result<Outcome> {
    let before = state.clone();
    change(state)?;
    let now = Timestamp::now().micros();
    let broken = state.groups.groups.iter().find_map(|group| {
        let e = crate::plan::bind(state, &group.definition, now, None).err()?;
        Some((group.name.clone(), e))
    });
    if let Some((name, e)) = broken {
        *state = before;
        return Err(Error::Conflict(format!(
            "{what} would break group '{name}' ({e}); nothing was changed. Drop the group \
             first (DROP GROUP {name}) and define it again after"
        )));
    }
    Ok(Outcome::Done)
}

fn upsert_member(
    state: &mut State,
    member_id: &str,
    fields: &[(String, Option<Value>)],
) -> Result<Outcome> {
    let mut coerced = Vec::with_capacity(fields.len());
    for (name, value) in fields {
        let value = match (state.attrs.get(name), value) {
            (_, None) => None,
            (Some(attr), Some(v)) => Some(
                Column::coerce(attr.column.data_type(), v)
                    .map_err(|m| Error::InvalidSegment(format!("attribute '{name}': {m}")))?,
            ),
            (None, Some(v)) => Some(v.clone()),
        };
        coerced.push((name, value));
    }
    let (row, _) = state.members.resolve_or_create(member_id)?;
    let members = state.members.len();
    state.attrs.grow(members);
    for (name, value) in coerced {
        let existing = state.attrs.get(name).map(|a| a.column.data_type());
        let data_type = match (existing, &value) {
            (Some(t), _) => t,
            (None, Some(v)) => v.data_type(),
            (None, None) => continue,
        };
        let pos = state.attrs.ensure(name, data_type, members)?;
        state.attrs.set_value(pos, row, value.as_ref());
    }
    Ok(Outcome::Done)
}

fn add_event(
    state: &mut State,
    member_id: &str,
    event: &str,
    ts: i64,
    props: &[(String, Option<Value>)],
) -> Result<Outcome> {
    let mut staged_props = Vec::with_capacity(props.len());
    for (name, value) in props {
        let known = state.events.props.get(name).copied();
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
        staged_props.push((name.clone(), data_type, column.to_arrow(None)));
    }
    let (row, _) = state.members.resolve_or_create(member_id)?;
    state.attrs.grow(state.members.len());
    for (name, data_type, _) in &staged_props {
        state.events.props.entry(name.clone()).or_insert(*data_type);
    }
    let partition = state.events.partition_mut(event);
    partition.append(&[row], &[ts], &staged_props, &mut [0]);
    partition.seal();
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_through_json() {
        let changes = vec![
            Change::UpsertMember {
                member_id: "M1".into(),
                fields: vec![
                    ("city".into(), Some(Value::from("上海"))),
                    ("points".into(), Some(Value::Int(-3))),
                    ("spend".into(), Some(Value::Float(0.1 + 0.2))),
                    ("gone".into(), None),
                ],
            },
            Change::AddEvent {
                member_id: "M1".into(),
                event: "purchase".into(),
                ts: 1_700_000_000_123_456,
                props: vec![("amount".into(), Some(Value::Float(1e300)))],
            },
            Change::DefineGroup {
                name: "g".into(),
                definition: Segment::tag("vip").and(Segment::did("purchase")),
            },
            Change::Load {
                kind: LoadKind::Events,
                file: "load-7.parquet".into(),
                format: LoadFormat::Parquet,
                crc: 42,
                source: "e.parquet".into(),
            },
            Change::LoadCommand {
                inputs: vec![LoggedInput {
                    kind: LoadKind::Members,
                    file: "load-8.csv".into(),
                    format: LoadFormat::Csv,
                    gzip: true,
                    crc: 7,
                    source: "m.csv.gz".into(),
                    hash: Some("00ff".into()),
                }],
                rules: LoadRules {
                    schema: vec![("phone".into(), DataType::String)],
                    again: true,
                    ..LoadRules::default()
                },
                at: 1_700_000_000_000_000,
            },
        ];
        for c in changes {
            let json = serde_json::to_vec(&c).unwrap();
            let back: Change = serde_json::from_slice(&json).unwrap();
            assert_eq!(back, c);
        }
    }

    #[test]
    fn precheck_refuses_what_json_or_no_state_can_hold() {
        let nan = Change::UpsertMember {
            member_id: "M1".into(),
            fields: vec![("x".into(), Some(Value::Float(f64::NAN)))],
        };
        assert!(nan.precheck().is_err());
        let empty = Change::AddTags {
            member_id: "".into(),
            tags: vec!["vip".into()],
        };
        assert!(empty.precheck().is_err());
    }

    /// Issue 11, finding 9: NUL bytes were accepted in member ids and tag names.
    #[test]
    fn precheck_refuses_nul_bytes_in_keys_and_names() {
        let tags = |member_id: &str, tag: &str| Change::AddTags {
            member_id: member_id.into(),
            tags: vec![tag.into()],
        };
        assert!(tags("M1", "vip").precheck().is_ok());
        assert!(tags("M1\0x", "vip").precheck().is_err());
        assert!(tags("M1", "v\0ip").precheck().is_err());
        let event = Change::AddEvent {
            member_id: "M1".into(),
            event: "buy\0".into(),
            ts: 0,
            props: vec![],
        };
        assert!(event.precheck().is_err());
        let field = Change::UpsertMember {
            member_id: "M1".into(),
            fields: vec![("ci\0ty".into(), None)],
        };
        assert!(field.precheck().is_err());
    }
}
