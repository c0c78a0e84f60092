//! `memberdb check`: the state of a database directory, and `--repair` of a torn log tail.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use memberdb::{Database, OpenOptions};

/// Arguments of `memberdb check`.
#[derive(clap::Args)]
pub(crate) struct CheckArgs {
    /// Database directory.
    #[arg(long)]
    db: PathBuf,
    /// Drop a torn record at the end of the log (takes the database's lock).
    #[arg(long)]
    repair: bool,
}

/// Exit code 0: the database is sound (or was repaired); 1: it is damaged or could not be
/// opened (the message says what and where); 2: a torn log tail that `--repair` would drop.
pub(crate) fn run(args: CheckArgs) -> Result<ExitCode> {
    let options = OpenOptions {
        read_only: !args.repair,
        create_if_missing: false,
        verify_all_files: true,
        ..OpenOptions::default()
    };
    let db = Database::open_with(&args.db, options)
        .with_context(|| format!("database {} cannot be opened", args.db.display()))?;
    let r = db.recovery();
    println!("database:       {}", args.db.display());
    println!("format version: {}", r.format_version);
    println!("generation:     {}", r.generation);
    println!("members:        {}", db.member_count());
    println!("events:         {}", db.event_count());
    match &r.log_file {
        Some(log) => println!(
            "log:            {log}, {} records after the checkpoint (last record {})",
            r.replayed, r.applied_lsn
        ),
        None => println!("log:            none (format version 1)"),
    }
    let log = r.log_file.as_deref().unwrap_or("the log");
    match (&r.torn_tail, args.repair) {
        (None, _) => {
            println!("status:         ok");
            Ok(ExitCode::SUCCESS)
        }
        (Some(t), true) => {
            println!(
                "repaired:       dropped {} bytes at byte offset {} of {log} ({})",
                t.dropped_bytes, t.offset, t.reason
            );
            Ok(ExitCode::SUCCESS)
        }
        (Some(t), false) => {
            println!(
                "status:         torn tail: {} bytes at byte offset {} of {log} ({}); \
                 memberdb check --repair drops them",
                t.dropped_bytes, t.offset, t.reason
            );
            Ok(ExitCode::from(2))
        }
    }
}
