//! `memberdb load`: files into a database directory, each file all or nothing.

use std::path::PathBuf;

use anyhow::{Context, Result};
use memberdb::{Database, InputKind};

/// Arguments of `memberdb load`.
#[derive(clap::Args)]
pub(crate) struct LoadArgs {
    /// Database directory (created if it does not exist).
    #[arg(long)]
    db: PathBuf,
    /// Members files (member_id + attribute columns); Parquet, CSV or JSON Lines.
    #[arg(long)]
    members: Vec<PathBuf>,
    /// Events files (member_id, event, ts + property columns).
    #[arg(long)]
    events: Vec<PathBuf>,
    /// Tags files (member_id, tag).
    #[arg(long)]
    tags: Vec<PathBuf>,
}

pub(crate) fn run(args: LoadArgs) -> Result<()> {
    if args.members.is_empty() && args.events.is_empty() && args.tags.is_empty() {
        anyhow::bail!("nothing to load: give at least one --members, --events or --tags file");
    }
    let db = Database::open(&args.db)
        .with_context(|| format!("cannot open database {}", args.db.display()))?;
    let files = args
        .members
        .iter()
        .map(|f| (InputKind::Members, f))
        .chain(args.events.iter().map(|f| (InputKind::Events, f)))
        .chain(args.tags.iter().map(|f| (InputKind::Tags, f)));
    for (kind, file) in files {
        let started = std::time::Instant::now();
        let bar = super::progress::rows(format!("reading {}", file.display()));
        let report = db
            .load_file_with_progress(kind, file, &mut |rows| bar.set_position(rows as u64))
            .with_context(|| format!("nothing of {} was loaded", file.display()))?;
        bar.finish_and_clear();
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "loaded {} rows from {} ({} new members) in {secs:.1}s ({:.0} rows/s)",
            report.rows,
            file.display(),
            report.new_members,
            report.rows as f64 / secs.max(1e-9)
        );
    }
    // Each load above is durable in the log already; the checkpoint makes the next open fast.
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
