//! Statements compiled to ClickHouse SQL (DESIGN section 7): the same bound plan the
//! engine runs, written as SQL that gives the same answer over the database's Parquet files
//! (or over tables loaded from them), so a segment can run on a ClickHouse cluster.
//!
//! `segment.rs` writes a plan as bitmap entries of a `WITH` clause; `literal.rs` the
//! values, names and tests of one value; this module the statements around them (COUNT,
//! FIND, BREAKDOWN) and the tables' DDL. What cannot compile exactly is an error naming it.

mod bitmaps;
mod funnel;
mod literal;
mod segment;
mod sequence;
mod value;

use memberdb_query::ast::{ByColumn, Statement, StatementKind};

use crate::computed::ValueExpr;
use crate::database::Database;
use crate::error::{Error, Result};
use crate::query::bind;
use crate::state::State;
use crate::value::{Timestamp, format_timestamp};
pub use bitmaps::ExportedBitmaps;
use literal::ident;
use segment::{Parts, refused, segment_bitmap};

/// What `Database::compile` compiles against.
#[derive(Clone, Debug, Default)]
pub struct CompileOptions {
    /// The *now* windows are resolved against (the database's clock when `None`); a
    /// statement's `AS OF` overrides it. The SQL holds it as a literal.
    pub now: Option<Timestamp>,
    /// Read tables `<prefix>_members`, `<prefix>_events`, `<prefix>_tags` (created by
    /// [`Database::compile_schema`]) instead of the database's Parquet files.
    pub tables: Option<String>,
}

/// The three relations the SQL reads, as SQL.
pub(crate) struct Tables {
    members: String,
    events: String,
    tags: String,
    /// The events' order in the file, which orders events of equal time as they were
    /// written: `_row_number` of a file, the `event_seq` column `--schema` tables load it
    /// into.
    seq: &'static str,
    /// `<prefix>_sets` of `--schema` tables: `groupBitmap` states of the live members, each
    /// tag, each event type and each value of a few-valued attribute, read in place of a
    /// pass over the rows (files have none).
    pub(crate) sets: Option<String>,
}

/// Text and bool attributes of at most this many values have a state per value in
/// `<prefix>_sets`.
const VALUE_STATES: usize = 4096;

/// Whether `<prefix>_sets` holds a state per value of `attr` (the same answer for the
/// schema and the compiler, over the same data).
pub(crate) fn has_value_states(attr: &crate::attributes::Attribute) -> bool {
    match attr.column.data_type() {
        crate::value::DataType::Bool => true,
        crate::value::DataType::String => {
            attr.column.dict().is_some_and(|d| d.len() <= VALUE_STATES)
        }
        _ => false,
    }
}

/// The projection of `--schema` table `name`: the events are kept per member in the table's
/// order (aggregates, sequences and funnels group by member) and again in time order, so a
/// window reads only its granules (ClickHouse picks the copy that reads fewer).
fn projection(name: &str) -> Option<String> {
    (name == "events").then(|| "    PROJECTION by_time (SELECT * ORDER BY event, ts)".to_string())
}

/// The `--schema` events table's column holding each event's row number in the file.
const EVENT_SEQ: &str = "event_seq";

impl Database {
    /// `statement` (COUNT, FIND, BREAKDOWN) as ClickHouse SQL giving the same answer over
    /// the files of the newest checkpoint: it first writes one if the log holds changes
    /// (or the files predate format version 10), and refuses when it cannot (the database
    /// is read-only). A part that cannot compile exactly is an error naming it.
    pub fn compile(&self, statement: &Statement, options: &CompileOptions) -> Result<String> {
        let tables = self.compiled_tables(options.tables.as_deref())?;
        let now = match &statement.as_of {
            Some(lit) => bind::instant(lit, "AS OF")?,
            None => options.now.unwrap_or_else(|| self.now()),
        };
        let view = self.as_of(now);
        compile_statement(view.state(), &tables, now.micros(), statement)
    }

    /// The DDL of `<prefix>_members`, `<prefix>_events` and `<prefix>_tags` (MergeTree,
    /// ordered by member row), with the columns of the Parquet files in order, and the
    /// `INSERT`s that load them from the files.
    pub fn compile_schema(&self, prefix: &str) -> Result<String> {
        check_prefix(prefix)?;
        let files = self.compiled_tables(None)?;
        let state = self.snapshot();
        let members: Vec<(String, String)> = [
            ("member_id", "Nullable(String)"),
            ("member_row", "UInt32"),
            ("live", "Bool"),
        ]
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .chain(state.attrs.iter().map(|a| {
            (
                a.name.clone(),
                literal::column_type(a.column.data_type()).to_string(),
            )
        }))
        .collect();
        let events: Vec<(String, String)> = [
            ("member_id", "String"),
            ("event", "String"),
            ("ts", "DateTime64(6, 'UTC')"),
            ("member_row", "UInt32"),
        ]
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .chain(
            state
                .events
                .props
                .iter()
                .map(|(n, t)| (n.clone(), literal::column_type(*t).to_string())),
        )
        .chain([(EVENT_SEQ.to_string(), "UInt64".to_string())])
        .collect();
        let tags = vec![
            ("member_row".to_string(), "UInt32".to_string()),
            ("tag".to_string(), "String".to_string()),
        ];
        // the states compiled SQL reads instead of passes over rows: a Join table, held in
        // memory (and on disk) as a hash of its keys, so `joinGet` reads a state without a
        // pipeline of its own (a MergeTree read of one granule costs milliseconds)
        let mut sets = format!(
            "CREATE TABLE {prefix}_sets (\n    kind String,\n    name String,\n    value \
             String,\n    members AggregateFunction(groupBitmap, UInt32)\n) ENGINE = Join(ANY, LEFT, \
             kind, name, value);\n\
             INSERT INTO {prefix}_sets SELECT 'live', '', '', groupBitmapStateIf(member_row, \
             live) FROM {prefix}_members;\n\
             INSERT INTO {prefix}_sets SELECT 'tag', tag, '', groupBitmapState(member_row) FROM \
             {prefix}_tags GROUP BY tag;\n\
             INSERT INTO {prefix}_sets SELECT 'event', event, '', groupBitmapState(member_row) \
             FROM {prefix}_events GROUP BY event;\n"
        );
        for attr in state.attrs.iter().filter(|a| has_value_states(a)) {
            let name = ident(&attr.name);
            sets.push_str(&format!(
                "INSERT INTO {prefix}_sets SELECT 'value', {}, toString({name}), \
                 groupBitmapState(member_row) FROM {prefix}_members WHERE {name} IS NOT NULL \
                 GROUP BY {name};\n",
                literal::string(&attr.name)
            ));
        }
        let table = |name: &str, columns: &[(String, String)], order: &str, source: &str| {
            let columns: Vec<String> = columns
                .iter()
                .map(|(n, t)| format!("    {} {t}", ident(n)))
                .chain(projection(name))
                .collect();
            format!(
                "CREATE TABLE {prefix}_{name} (\n{}\n) ENGINE = MergeTree ORDER BY {order};\n\
                 INSERT INTO {prefix}_{name} SELECT {source};\n",
                columns.join(",\n")
            )
        };
        Ok(format!(
            "-- memberdb compile --schema: tables with the columns of the database's Parquet \
             files, loaded from them, and the bitmap states of the live members, each tag, event \
             type and value of a few-valued attribute\n{}\n{}\n{}\n{}",
            table(
                "members",
                &members,
                "member_row",
                &format!("* FROM {}", files.members)
            ),
            table(
                "events",
                &events,
                "(event, member_row, ts)",
                &format!("*, _row_number FROM {}", files.events)
            ),
            table(
                "tags",
                &tags,
                "(tag, member_row)",
                &format!("* FROM {}", files.tags)
            ),
            sets,
        ))
    }

    /// The relations to read: `<prefix>_...` tables, or the files of the newest
    /// checkpoint (written first when needed).
    fn compiled_tables(&self, prefix: Option<&str>) -> Result<Tables> {
        if let Some(prefix) = prefix {
            check_prefix(prefix)?;
            return Ok(Tables {
                members: format!("{prefix}_members"),
                events: format!("{prefix}_events"),
                tags: format!("{prefix}_tags"),
                seq: EVENT_SEQ,
                sets: Some(format!("{prefix}_sets")),
            });
        }
        let files = self.checkpointed_files()?;
        let file = |name: &str| format!("file({})", literal::string(name));
        Ok(Tables {
            members: file(&files.members),
            events: file(&files.events),
            tags: file(&files.tags),
            seq: "_row_number",
            sets: None,
        })
    }
}

/// A table prefix is a plain word: it is written into the SQL unquoted.
fn check_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty()
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(Error::InvalidSegment(format!(
            "--tables '{prefix}': a table prefix is letters, digits and _"
        )));
    }
    Ok(())
}

/// One compiled statement.
fn compile_statement(
    state: &State,
    tables: &Tables,
    now: i64,
    statement: &Statement,
) -> Result<String> {
    if statement.overlap.is_some() {
        return Err(refused(
            "OVERLAP",
            "clean-room counts need the shared secret and the minimum group size, which \
             SQL on another engine cannot enforce"
                .into(),
        ));
    }
    let header = format!(
        "-- memberdb: {}\n-- now = {} (every window below is relative to it)\n",
        statement_text(statement),
        format_timestamp(now)
    );
    let members = segment_bitmap();
    let select = match &statement.kind {
        StatementKind::Count(expr) => {
            let (parts, root, text) = segment_parts(state, tables, now, expr)?;
            parts.count_query(&text, &root)
        }
        StatementKind::Find {
            segment,
            show,
            show_all,
            limit,
            offset,
        } => {
            let (mut parts, root, text) = segment_parts(state, tables, now, segment)?;
            let options = crate::query::find_options(state, show, *show_all, *limit, *offset)?;
            let mut values = Vec::new();
            for name in &options.columns {
                values.push(parts.value(&ValueExpr::Attr(name.clone()), false)?);
            }
            let (exprs, joins) = parts.output(values)?;
            let mut columns = vec!["member_id".to_string()];
            for (name, expr) in options.columns.iter().zip(exprs) {
                columns.push(aliased(expr, &ident(name)));
            }
            let with = parts.with_clause(&text, &root);
            // the page's rows only: the first offset + limit members, looked up by row (the
            // tables' primary key) rather than every row tested against the segment
            let first = options
                .limit
                .map_or(u64::from(u32::MAX), |l| {
                    l.saturating_add(options.offset) as u64
                })
                .min(u64::from(u32::MAX));
            let mut sql = format!(
                "{with}\nSELECT {}\nFROM (SELECT * FROM {} WHERE member_row IN (SELECT \
                 arrayJoin(bitmapToArray(bitmapSubsetLimit({members}, 0, {first}))))) AS \
                 m{joins}\nORDER BY member_row",
                columns.join(", "),
                tables.members,
            );
            if let Some(limit) = options.limit {
                sql.push_str(&format!("\nLIMIT {limit}"));
            }
            if options.offset > 0 {
                sql.push_str(&format!(" OFFSET {}", options.offset));
            }
            sql
        }
        StatementKind::Breakdown { segment, by, top } => {
            let (mut parts, root, text) = segment_parts(state, tables, now, segment)?;
            let limit = top.map(|n| format!("\nLIMIT {n}")).unwrap_or_default();
            if let [
                ByColumn::Name {
                    name,
                    of: Some(event),
                },
            ] = by.as_slice()
            {
                let with = parts.with_clause(&text, &root);
                let by = property_breakdown(state, tables, &name.text, &event.text)?;
                return Ok(format!(
                    "{header}{with}\n{by}{limit}\nSETTINGS session_timezone = 'UTC'\n"
                ));
            }
            let mut values = Vec::new();
            let mut names = Vec::new();
            for column in by {
                let value = bind::by_value(column)?;
                names.push(ident(&crate::query::value_text(&value)));
                values.push(parts.value(&value, false)?);
            }
            let (exprs, joins) = parts.output(values)?;
            let columns: Vec<String> = exprs
                .into_iter()
                .zip(&names)
                .map(|(expr, name)| aliased(expr, name))
                .collect();
            let order: Vec<String> = names
                .iter()
                .map(|c| format!("{c} ASC NULLS LAST"))
                .collect();
            let with = parts.with_clause(&text, &root);
            format!(
                "{with}\nSELECT {}, count() AS count\nFROM (SELECT * FROM {} WHERE \
                 bitmapContains({members}, member_row)) AS m{joins}\nGROUP BY {}\nORDER BY count DESC, \
                 {}{limit}",
                columns.join(", "),
                tables.members,
                names.join(", "),
                order.join(", ")
            )
        }
        StatementKind::Funnel(f) => {
            let (f, _) = bind::funnel(f)?;
            funnel::funnel(state, tables, now, &f, funnel::Asked::Report)?
        }
        StatementKind::FindFunnel {
            funnel: f,
            step,
            show,
            show_all,
            limit,
            offset,
        } => {
            let (f, _) = bind::funnel(f)?;
            let options = crate::query::find_options(state, show, *show_all, *limit, *offset)?;
            let asked = funnel::Asked::AtStep {
                step: usize::try_from(step.0).unwrap_or(usize::MAX),
                columns: &options.columns,
                limit: options.limit,
                offset: options.offset,
            };
            funnel::funnel(state, tables, now, &f, asked)?
        }
        _ => {
            return Err(Error::InvalidSegment(
                "only COUNT, FIND, BREAKDOWN and FUNNEL compile to SQL (statements that define, \
                 drop, explain or show are the engine's own)"
                    .into(),
            ));
        }
    };
    Ok(format!(
        "{header}{select}\nSETTINGS session_timezone = 'UTC'\n"
    ))
}

/// The parts of `expr`'s segment bound at `now`, the expression of its members and its
/// text.
fn segment_parts<'s>(
    state: &'s State,
    tables: &'s Tables,
    now: i64,
    expr: &memberdb_query::ast::Expr,
) -> Result<(Parts<'s>, String, String)> {
    let (segment, spans) = bind::segment(expr)?;
    let plan = crate::plan::bind(state, &segment, now, Some(&spans))?;
    let mut parts = Parts::new(state, tables, now);
    let root = parts.root(&plan)?;
    Ok((parts, root, plan.root.source_text()))
}

/// `expr AS name`, or the column alone when it is `name`.
fn aliased(expr: String, name: &str) -> String {
    match expr == name {
        true => expr,
        false => format!("{expr} AS {name}"),
    }
}

/// `BY p OF e`: the members of the segment per value of `p` among their `e` events (a
/// member under each of its values), and a NULL line of those with none.
fn property_breakdown(
    state: &State,
    tables: &Tables,
    property: &str,
    event: &str,
) -> Result<String> {
    let partition = state.events.require(event)?;
    let data_type = match partition.props.get(property) {
        Some(column) => column.data_type(),
        None => {
            return Err(Error::unknown(
                "event property",
                property,
                partition.props.keys().map(String::as_str),
            ));
        }
    };
    let null = format!("CAST(NULL AS {})", literal::column_type(data_type));
    let members = segment_bitmap();
    let p = ident(property);
    let with_value = format!(
        "FROM {} WHERE event = {} AND {p} IS NOT NULL AND bitmapContains({members}, member_row)",
        tables.events,
        literal::string(event)
    );
    let name = ident(&format!("{property} OF {event}"));
    Ok(format!(
        "SELECT value AS {name}, count FROM (\n    SELECT {p} AS value, uniqExact(member_row) AS count \
         {with_value} GROUP BY value\n    UNION ALL\n    -- members with no such event or only \
         NULL values\n    SELECT {null}, toUInt64(bitmapCardinality({members}) - (SELECT \
         uniqExact(member_row) {with_value}))\n) WHERE count > 0\nORDER BY count DESC, value ASC NULLS LAST"
    ))
}

/// The statement as the user wrote it, on one line.
fn statement_text(statement: &Statement) -> String {
    statement.to_string().replace('\n', " ")
}
