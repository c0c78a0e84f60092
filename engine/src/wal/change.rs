//! The changes the log records: their form in the log, their checks before they are
//! logged, and the inputs of a logged load. Applying them to the state is
//! `state::apply`'s, the one place the state changes.

use arrow_array::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ingest::IngestReport;
use crate::ingest::command::{Input, LoadRules};
use crate::segment::Segment;
use crate::value::{DataType, Value};

/// What a bulk load file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LoadKind {
    Members,
    Events,
    Tags,
    /// (member, tag) pairs to remove.
    UntagPairs,
    /// Identity observations: `member_id` (optional) and a column per identifier type.
    Identities,
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
        /// `KEEP CHANGES n DAYS` (default `groups::DEFAULT_KEEP_DAYS`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keep_days: Option<u32>,
    },
    /// The clock moved to `now` (`CLOCK.SET`, or the wall clock passing a group's next
    /// change): its time-driven changes are applied.
    Clock {
        now: i64,
    },
    /// `XGROUP CREATE group:<stream> <name> <id|$>`: `start` is the id after which it
    /// delivers (`None`: the stream's newest entry when applied).
    CreateConsumerGroup {
        stream: String,
        name: String,
        start: Option<crate::groups::stream::EntryId>,
    },
    /// `XREADGROUP ... >` delivered the entries after the group's last delivered one up to
    /// and including `through` to `consumer`: they are pending until acknowledged.
    Deliver {
        stream: String,
        group: String,
        consumer: String,
        through: crate::groups::stream::EntryId,
    },
    /// `XACK`: the entries are no longer pending.
    Acknowledge {
        stream: String,
        group: String,
        ids: Vec<crate::groups::stream::EntryId>,
    },
    DropGroup {
        name: String,
    },
    /// `DEFINE TRAIT name AS ...`.
    DefineTrait {
        name: String,
        /// Stored as canonical text with its language version (`traits::stored`).
        #[serde(with = "crate::traits::stored")]
        definition: crate::traits::TraitDef,
    },
    /// `DROP TRAIT name`.
    DropTrait {
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
    /// `DEFINE IDENTIFIER`: an identifier type; the members' attribute of the same name,
    /// if any, is observed in row order.
    DefineIdentifier {
        def: crate::identity::IdentifierDef,
    },
    /// `DEFINE ATTRIBUTE a MERGE rule`.
    SetMergeRule {
        attribute: String,
        rule: crate::identity::MergeRule,
    },
    /// `ID.LINK`: identifiers seen together (`member_id` `None`: `*`, find or create).
    Link {
        member_id: Option<String>,
        ids: Vec<(String, String)>,
    },
    /// `ID.UNLINK`.
    Unlink {
        member_id: String,
        id_type: String,
        value: String,
    },
    /// `MEMBER.MERGE a b`.
    MergeMembers {
        a: String,
        b: String,
    },
    /// `MEMBER.UNMERGE member observation`.
    Unmerge {
        member_id: String,
        observation: u32,
    },
    /// `MEMBER.ERASE`: the profile of member row `row` (its canonical row) erased. The log
    /// names the row, never the member id, so the record holds none of the member's data.
    EraseMember {
        row: u32,
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
    /// How many things the change affected (entries acknowledged).
    Count(u64),
    /// What an identity change did.
    Identity(crate::identity::IdentityReport),
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
            Change::Link { member_id, ids } => {
                if let Some(m) = member_id {
                    member(m)?;
                }
                if ids.is_empty() {
                    return Err(Error::InvalidSegment(
                        "ID.LINK needs at least one identifier: a type and a value".into(),
                    ));
                }
                ids.iter()
                    .try_for_each(|(t, _)| check_name(t, "an identifier type"))
            }
            Change::MergeMembers { a, b } => {
                member(a)?;
                member(b)
            }
            Change::DefineIdentifier { def } => check_name(&def.name, "an identifier type"),
            Change::RemoveTags { .. }
            | Change::SetMergeRule { .. }
            | Change::Unlink { .. }
            | Change::Unmerge { .. }
            | Change::Clock { .. }
            | Change::CreateConsumerGroup { .. }
            | Change::Deliver { .. }
            | Change::Acknowledge { .. }
            | Change::DeclareExclusiveTags { .. }
            | Change::DefineGroup { .. }
            | Change::DropGroup { .. }
            | Change::DefineTrait { .. }
            | Change::DropTrait { .. }
            | Change::AlterAttribute { .. }
            | Change::DropAttribute { .. }
            | Change::Load { .. }
            | Change::LoadCommand { .. }
            | Change::EraseMember { .. } => Ok(()),
        }
    }
}

/// A record's payload: the change and the engine's clock it was applied at,
/// `{"at":<micros>,"change":<change>}`.
pub(crate) fn with_clock(at: i64, change_json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(change_json.len() + 32);
    out.extend_from_slice(b"{\"at\":");
    out.extend_from_slice(at.to_string().as_bytes());
    out.extend_from_slice(b",\"change\":");
    out.extend_from_slice(change_json);
    out.push(b'}');
    out
}

/// Reads a record's payload: `(Some(at), change)`, or `(None, change)` for a record
/// written before the clock was logged (a bare change).
pub(crate) fn read_change(payload: &[u8]) -> std::result::Result<(Option<i64>, Change), String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Clocked {
        at: i64,
        change: Change,
    }
    if payload.starts_with(b"{\"at\":") {
        let c: Clocked = crate::util::json::from_slice(payload).map_err(|e| e.to_string())?;
        return Ok((Some(c.at), c.change));
    }
    let change = crate::util::json::from_slice(payload).map_err(|e| e.to_string())?;
    Ok((None, change))
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
                keep_days: Some(30),
            },
            Change::Clock { now: 7 },
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
            assert_eq!(read_change(&json).unwrap(), (None, c.clone()));
            let clocked = with_clock(-5, &json);
            assert_eq!(read_change(&clocked).unwrap(), (Some(-5), c));
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
