//! `memberdb load`: files into a database directory, the whole command one atomic change.

use std::path::PathBuf;

use anyhow::{Context, Result};
use memberdb::{Database, Load, OpenOptions};

/// Arguments of `memberdb load`.
#[derive(clap::Args)]
pub(crate) struct LoadArgs {
    /// Database directory (created if it does not exist).
    #[arg(long)]
    db: PathBuf,
    /// Members files (member_id + attribute columns): Parquet, CSV or JSON Lines, .gz after
    /// the extension, or directories of part files. Several may follow one flag (a glob).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    members: Vec<PathBuf>,
    /// Events files (member_id, event, ts + property columns).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    events: Vec<PathBuf>,
    /// Tags files (member_id, tag).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    tags: Vec<PathBuf>,
    /// Identities files: member_id (optional), then a column per identifier type
    /// (DEFINE IDENTIFIER); each row is one observation, replayed in order.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    identities: Vec<PathBuf>,
    /// Column types for every input, e.g. `phone:string,zip:string,amount:float`
    /// (string, integer, float, bool, date, timestamp).
    #[arg(long, value_name = "COLUMN:TYPE,...")]
    schema: Vec<String>,
    /// Load a column of numbers or times with some values that are not as text (a warning
    /// names them) instead of refusing the load.
    #[arg(long)]
    allow_text_fallback: bool,
    /// Load files whose content was loaded before (SHOW LOADS lists them) once more.
    #[arg(long)]
    again: bool,
    /// A column whose values (or list elements) become tags of the row's member.
    #[arg(long, value_name = "COLUMN")]
    tags_from: Vec<String>,
    /// A column to leave out.
    #[arg(long, value_name = "COLUMN")]
    skip: Vec<String>,
    /// Load Parquet inputs a part (about 4M rows of whole row groups) at a time, each part
    /// its own atomic change, so memory holds one part instead of every input decoded: for
    /// inputs larger than memory. Stopped midway, the same command run again skips the
    /// parts already loaded. The database is checkpointed once, at the end.
    #[arg(long)]
    in_parts: bool,
}

pub(crate) fn run(args: LoadArgs) -> Result<()> {
    if args.members.is_empty()
        && args.events.is_empty()
        && args.tags.is_empty()
        && args.identities.is_empty()
    {
        anyhow::bail!(
            "nothing to load: give at least one --members, --events, --tags or --identities file"
        );
    }
    let mut load = Load::new()
        .allow_text_fallback(args.allow_text_fallback)
        .again(args.again);
    for schema in &args.schema {
        load = load.schema_text(schema)?;
    }
    for column in &args.tags_from {
        load = load.tags_from(column);
    }
    for column in &args.skip {
        load = load.skip(column);
    }
    for file in &args.members {
        load = load.members(file);
    }
    for file in &args.events {
        load = load.events(file);
    }
    for file in &args.tags {
        load = load.tags(file);
    }
    for file in &args.identities {
        load = load.identities(file);
    }
    let mut options = OpenOptions::default();
    if args.in_parts {
        load = load.in_parts(memberdb::PART_ROWS);
        // Each part is logged; a checkpoint per 256 MB of parts would rewrite the whole
        // database dozens of times. The checkpoint at the end makes the log empty again.
        options.checkpoint_log_bytes = u64::MAX;
    }
    let db = Database::open_with(&args.db, options)
        .with_context(|| format!("cannot open database {}", args.db.display()))?;
    let started = std::time::Instant::now();
    let bar = super::progress::bytes("reading");
    let report = db.load_with_progress(load, &mut |p| {
        bar.set_length(p.bytes_total);
        bar.set_position(p.bytes_read);
        if p.bytes_read == p.bytes_total {
            bar.set_message("applying");
        }
    });
    bar.finish_and_clear();
    let report = report.context("nothing was loaded")?;
    let secs = started.elapsed().as_secs_f64();
    for input in &report.inputs {
        eprintln!(
            "{} rows of {} from {}",
            input.rows, input.kind, input.source
        );
    }
    if report.tags_from_columns > 0 {
        eprintln!("{} tags from columns", report.tags_from_columns);
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    eprintln!(
        "load {}: {} rows ({} new members) in {secs:.1}s ({:.0} rows/s)",
        report.load,
        report.rows,
        report.new_members,
        report.rows as f64 / secs.max(1e-9)
    );
    // The load is durable in the log already; the checkpoint makes the next open fast.
    let started = std::time::Instant::now();
    let (members, events) = (db.member_count(), db.event_count());
    db.close()
        .with_context(|| format!("cannot checkpoint database {}", args.db.display()))?;
    eprintln!(
        "checkpointed {} ({members} members, {events} events) in {:.1}s",
        args.db.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
