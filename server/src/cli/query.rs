//! `memberdb query`: statements from the command line or a file, results on stdout.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{Context, Result};
use memberdb::{Database, Timestamp};

use super::render::{Format, render};

/// Arguments of `memberdb query`.
#[derive(clap::Args)]
pub(crate) struct QueryArgs {
    /// Database directory; without it, the sample database built from data-samples/.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Pin *now* for time windows (e.g. 2026-11-01T00:00:00Z); default: the wall clock.
    #[arg(long)]
    now: Option<String>,
    /// Read the statements from this file.
    #[arg(long, conflicts_with = "statements")]
    file: Option<PathBuf>,
    /// The secret shared with a pool's owner, for `OVERLAP` (the file's bytes).
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// With `OVERLAP`: counts under this are reported as suppressed.
    #[arg(long, default_value_t = memberdb::share::DEFAULT_MIN_GROUP_SIZE)]
    min_group_size: u64,
    /// Statements, separated by `;`. Without them (and without --file), read from stdin
    /// when it is not a terminal: `memberdb query --db D < campaign.mql`.
    statements: Option<String>,
}

pub(crate) fn run(args: QueryArgs) -> Result<()> {
    let text = match (&args.file, &args.statements) {
        (Some(f), _) => {
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?
        }
        (None, Some(s)) => s.clone(),
        (None, None) if !std::io::stdin().is_terminal() => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the statements from stdin")?;
            text
        }
        (None, None) => anyhow::bail!(
            "give statements, e.g. memberdb query \"COUNT TAG 'vip'\", --file F, or pipe them \
             into stdin"
        ),
    };
    let now = parse_now(args.now.as_deref())?;
    if args.min_group_size == 0 {
        anyhow::bail!("--min-group-size must be at least 1 (the default is 50)");
    }
    let share = match &args.secret_file {
        Some(path) => Some(memberdb::share::ShareOptions {
            secret: memberdb::share::read_secret(path)?,
            min_group_size: args.min_group_size,
        }),
        None => None,
    };
    let db = super::open_db(args.db.as_deref())?;
    // Writes (DEFINE / DROP GROUP) are durable in the log when they return.
    execute(&db, &text, now, args.format, share.as_ref())
}

pub(crate) fn parse_now(now: Option<&str>) -> Result<Option<Timestamp>> {
    now.map(|t| {
        Timestamp::parse(t)
            .with_context(|| format!("--now '{t}' is not a timestamp (e.g. 2026-11-01T00:00:00Z)"))
    })
    .transpose()
}

/// Runs every statement, printing each result; stops at the first error (printed with a
/// caret under its source, and how many statements ran before it).
fn execute(
    db: &Database,
    text: &str,
    now: Option<Timestamp>,
    format: Format,
    share: Option<&memberdb::share::ShareOptions>,
) -> Result<()> {
    // With one statement the error says it all; with several, also what ran.
    let several = text.trim().trim_end_matches(';').contains(';');
    let statements = memberdb::query::parse_script(text).map_err(|e| match several {
        true => anyhow::anyhow!("{}\nno statement ran", e.render()),
        false => anyhow::anyhow!(e.render()),
    })?;
    let total = statements.len();
    for (ran, statement) in statements.iter().enumerate() {
        let output = super::run_statement(db, statement, now, share).map_err(|e| match total {
            1 => anyhow::anyhow!(e.render(text)),
            _ => anyhow::anyhow!(
                "{}\nstatement {} of {total} failed: {ran} ran before it, {} after it did not run",
                e.render(text),
                ran + 1,
                total - ran - 1
            ),
        })?;
        println!("{}", render(&output, format));
        if let Some(note) = super::render::truncation_note(&output, format) {
            eprintln!("{note}");
        }
        for hint in db.value_hints(statement) {
            eprintln!("hint: {hint}");
        }
    }
    Ok(())
}
