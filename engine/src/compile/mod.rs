//! Statements compiled to ClickHouse SQL (DESIGN section 7): the same bound plan the
//! engine runs, written as SQL that gives the same answer over the database's Parquet files
//! (or over tables loaded from them), so a segment can run on a ClickHouse cluster.
//!
//! `segment.rs` writes a plan as bitmap entries of a `WITH` clause; `literal.rs` the
//! values, names and tests of one value; this module the statements around them (COUNT,
//! FIND, BREAKDOWN) and the tables' DDL. What cannot compile exactly is an error naming it.

mod bitmaps;
mod literal;
mod segment;

use memberdb_query::ast::{ByColumn, Statement, StatementKind};

use crate::database::Database;
use crate::error::{Error, Result};
use crate::query::bind;
use crate::state::{Named, State};
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
}

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
        .collect();
        let tags = vec![
            ("member_row".to_string(), "UInt32".to_string()),
            ("tag".to_string(), "String".to_string()),
        ];
        let table = |name: &str, columns: &[(String, String)], order: &str, file: &str| {
            let columns: Vec<String> = columns
                .iter()
                .map(|(n, t)| format!("    {} {t}", ident(n)))
                .collect();
            format!(
                "CREATE TABLE {prefix}_{name} (\n{}\n) ENGINE = MergeTree ORDER BY {order};\n\
                 INSERT INTO {prefix}_{name} SELECT * FROM {file};\n",
                columns.join(",\n")
            )
        };
        Ok(format!(
            "-- memberdb compile --schema: tables with the columns of the database's Parquet \
             files, loaded from them\n{}\n{}\n{}",
            table("members", &members, "member_row", &files.members),
            table("events", &events, "(event, member_row, ts)", &files.events),
            table("tags", &tags, "(tag, member_row)", &files.tags),
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
            });
        }
        let files = self.checkpointed_files()?;
        let file = |name: &str| format!("file({})", literal::string(name));
        Ok(Tables {
            members: file(&files.members),
            events: file(&files.events),
            tags: file(&files.tags),
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
    // the WITH clause whose `segment` entry holds the segment's members
    let with = |expr: &memberdb_query::ast::Expr| -> Result<String> {
        let (segment, spans) = bind::segment(expr)?;
        let plan = crate::plan::bind(state, &segment, now, Some(&spans))?;
        Parts::new(state, tables, now).segment(&plan)
    };
    let members = segment_bitmap();
    let select = match &statement.kind {
        StatementKind::Count(expr) => {
            let with = with(expr)?;
            format!("{with}\nSELECT bitmapCardinality({members}) AS count")
        }
        StatementKind::Find {
            segment,
            show,
            show_all,
            limit,
            offset,
        } => {
            let with = with(segment)?;
            let options = crate::query::find_options(state, show, *show_all, *limit, *offset)?;
            let mut columns = vec!["member_id".to_string()];
            for name in &options.columns {
                attribute_only(state, name)?;
                columns.push(ident(name));
            }
            let mut sql = format!(
                "{with}\nSELECT {}\nFROM {}\nWHERE bitmapContains({members}, member_row)\nORDER BY \
                 member_row",
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
            let with = with(segment)?;
            let mut columns = Vec::new();
            for column in by {
                match column {
                    ByColumn::Name { name, of: None } => {
                        attribute_only(state, &name.text).map_err(|e| e.at(name.span))?;
                        columns.push(ident(&name.text));
                    }
                    ByColumn::Name {
                        name,
                        of: Some(event),
                    } => {
                        return Err(refused(
                            &format!("BY {} OF {}", name.text, event.text),
                            "a breakdown by an event property does not compile yet".into(),
                        ));
                    }
                    ByColumn::Value(_) => {
                        return Err(refused(
                            "BY <computed value>",
                            "computed values do not compile yet".into(),
                        ));
                    }
                }
            }
            let order: Vec<String> = columns
                .iter()
                .map(|c| format!("{c} ASC NULLS LAST"))
                .collect();
            let mut sql = format!(
                "{with}\nSELECT {}, count() AS count\nFROM {}\nWHERE bitmapContains({members}, \
                 member_row)\nGROUP BY {}\nORDER BY count DESC, {}",
                columns.join(", "),
                tables.members,
                columns.join(", "),
                order.join(", ")
            );
            if let Some(top) = top {
                sql.push_str(&format!("\nLIMIT {top}"));
            }
            sql
        }
        StatementKind::Funnel(_) | StatementKind::FindFunnel { .. } => {
            return Err(refused("FUNNEL", "funnels do not compile yet".into()));
        }
        _ => {
            return Err(Error::InvalidSegment(
                "only COUNT, FIND and BREAKDOWN compile to SQL (statements that define, \
                 drop, explain or show are the engine's own)"
                    .into(),
            ));
        }
    };
    Ok(format!(
        "{header}{select}\nSETTINGS session_timezone = 'UTC'\n"
    ))
}

/// Refuses a computed trait where a column is read: traits do not compile yet.
fn attribute_only(state: &State, name: &str) -> Result<()> {
    match state.require_named(name)? {
        Named::Attribute(_) => Ok(()),
        Named::Trait(_) => Err(refused(
            name,
            "a computed trait; traits do not compile yet".into(),
        )),
    }
}

/// The statement as the user wrote it, on one line.
fn statement_text(statement: &Statement) -> String {
    statement.to_string().replace('\n', " ")
}
