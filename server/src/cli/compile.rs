//! `memberdb compile`: statements as ClickHouse SQL over the database's Parquet files (or
//! over tables loaded from them), and `--schema`, those tables' DDL (DESIGN section 7).

use std::path::PathBuf;

use anyhow::{Context, Result};
use memberdb::compile::CompileOptions;

/// Arguments of `memberdb compile`.
#[derive(clap::Args)]
pub(crate) struct CompileArgs {
    /// Database directory; without it, the sample database built from data-samples/.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Pin *now* for time windows (e.g. 2026-11-01T00:00:00Z); default: the database's
    /// clock. The SQL holds it as a literal.
    #[arg(long)]
    now: Option<String>,
    /// Read tables <PREFIX>_members, <PREFIX>_events, <PREFIX>_tags (see --schema) instead
    /// of the Parquet files.
    #[arg(long, value_name = "PREFIX")]
    tables: Option<String>,
    /// Print the DDL of those tables (MergeTree, ordered by member row) and the INSERTs
    /// that load them from the Parquet files.
    #[arg(long, conflicts_with_all = ["file", "statements"])]
    schema: bool,
    /// Read the statements from this file.
    #[arg(long, conflicts_with = "statements")]
    file: Option<PathBuf>,
    /// `json`: one object per statement and line, {"statement", "sql"} or {"statement",
    /// "error"}, going on past statements that do not compile.
    #[arg(long, value_enum, default_value_t = CompileFormat::Sql)]
    format: CompileFormat,
    /// Statements, separated by `;`.
    statements: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CompileFormat {
    Sql,
    Json,
}

pub(crate) fn run(args: CompileArgs) -> Result<()> {
    let db = super::open_db(args.db.as_deref())?;
    let prefix = args
        .tables
        .clone()
        .unwrap_or_else(|| "memberdb".to_string());
    if args.schema {
        print!("{}", db.compile_schema(&prefix)?);
        return Ok(());
    }
    let text = match (&args.file, &args.statements) {
        (Some(f), _) => {
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?
        }
        (None, Some(s)) => s.clone(),
        (None, None) => anyhow::bail!(
            "give statements, e.g. memberdb compile --db D \"COUNT TAG 'vip'\", --file F, or \
             --schema"
        ),
    };
    let options = CompileOptions {
        now: super::query::parse_now(args.now.as_deref())?,
        tables: args.tables,
    };
    let statements =
        memberdb::query::parse_script(&text).map_err(|e| anyhow::anyhow!(e.render()))?;
    for statement in &statements {
        let compiled = db.compile(statement, &options);
        match args.format {
            CompileFormat::Sql => {
                let sql = compiled.map_err(|e| anyhow::anyhow!(e.render(&text)))?;
                println!("{};\n", sql.trim_end());
            }
            CompileFormat::Json => {
                let mut line = serde_json::Map::new();
                line.insert("statement".into(), statement.to_string().into());
                match compiled {
                    Ok(sql) => line.insert("sql".into(), sql.into()),
                    Err(e) => line.insert("error".into(), e.to_string().into()),
                };
                println!("{}", serde_json::Value::Object(line));
            }
        }
    }
    Ok(())
}
