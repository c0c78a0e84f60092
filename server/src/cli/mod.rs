//! Subcommands of the `memberdb` binary.

pub(crate) mod audit;
pub(crate) mod check;
pub(crate) mod compile;
pub(crate) mod export_bitmaps;
pub(crate) mod generate;
pub(crate) mod load;
mod progress;
pub(crate) mod query;
mod render;
pub(crate) mod repl;
pub(crate) mod serve;
pub(crate) mod share;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use memberdb::{Database, Load, OpenOptions};

/// Runs one statement for the CLI: an EXPORT shows a progress bar of members written.
pub(crate) fn run_statement(
    db: &Database,
    statement: &memberdb_query::ast::Statement,
    now: Option<memberdb::Timestamp>,
    share: Option<&memberdb::share::ShareOptions>,
) -> memberdb::Result<memberdb::query::Output> {
    let exporting = matches!(
        statement.kind,
        memberdb_query::ast::StatementKind::Export { .. }
    );
    if !exporting {
        let options = memberdb::query::RunOptions {
            now,
            share: share.cloned(),
            ..memberdb::query::RunOptions::default()
        };
        return db.run_with(statement, &options);
    }
    let bar = progress::bar(0, "members");
    bar.set_message("exporting");
    let shown = bar.clone();
    let options = memberdb::query::RunOptions {
        now,
        progress: Some(memberdb::query::Progress(std::sync::Arc::new(
            move |done, total| {
                shown.set_length(total);
                shown.set_position(done);
            },
        ))),
        ..memberdb::query::RunOptions::default()
    };
    let output = db.run_with(statement, &options);
    bar.finish_and_clear();
    output
}

/// Why the sample database refuses writes.
pub(crate) const SAMPLE_IS_READ_ONLY: &str = "this is the read-only sample database; pass \
    --db DIR to write to a database of your own (`memberdb load --db DIR --members FILE` \
    creates one)";

/// How the sample database is opened: read-only, so the README's answers stay true.
pub(crate) fn sample_options() -> OpenOptions {
    OpenOptions {
        read_only: true,
        read_only_reason: Some(SAMPLE_IS_READ_ONLY.to_string()),
        create_if_missing: false,
        ..OpenOptions::default()
    }
}

/// Opens `dir`, or without one the sample database (built from `data-samples/` on first use,
/// then reused; read-only). Never creates one: a mistyped path is an error, not an empty
/// database that answers 0. A database another process has open for writing (a server,
/// say) is opened read-only, with a note: reads work, writes are refused.
pub(crate) fn open_db(dir: Option<&Path>) -> Result<Database> {
    let Some(dir) = dir else {
        let dir = sample_db()?;
        return Database::open_with(&dir, sample_options())
            .with_context(|| format!("cannot open the sample database {}", dir.display()));
    };
    let dir = dir.to_path_buf();
    let existing = OpenOptions {
        create_if_missing: false,
        ..OpenOptions::default()
    };
    let db = match Database::open_with(&dir, existing) {
        Err(memberdb::Error::NoDatabase(_)) => anyhow::bail!(
            "no database at {0}: create one with `memberdb load --db {0} --members FILE ...`, \
             or leave out --db for the sample database",
            dir.display()
        ),
        Err(memberdb::Error::InUse(why)) => {
            eprintln!("note: {why}; opened read-only");
            let options = OpenOptions {
                read_only: true,
                ..OpenOptions::default()
            };
            Database::open_with(&dir, options)
        }
        other => other,
    }
    .with_context(|| format!("cannot open database {}", dir.display()))?;
    if let Some(torn) = &db.recovery().torn_tail {
        eprintln!(
            "warning: dropped a torn record at the end of {} ({} bytes at byte offset {}: {}); \
             it was never acknowledged",
            db.recovery().log_file.as_deref().unwrap_or("the log"),
            torn.dropped_bytes,
            torn.offset,
            torn.reason
        );
    }
    Ok(db)
}

fn samples_dir() -> PathBuf {
    std::env::var_os("MEMBERDB_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data-samples"))
}

/// A short key of the sample files (their sizes): a sample database built from other
/// files (an older `data-samples/`) is not reused.
fn samples_key(samples: &std::path::Path) -> String {
    let mut key: u64 = 0xcbf2_9ce4_8422_2325;
    for name in ["members.parquet", "events.parquet", "tags.parquet"] {
        let len = std::fs::metadata(samples.join(name)).map_or(0, |m| m.len());
        for byte in len.to_le_bytes() {
            key = (key ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{:08x}", key as u32)
}

/// The sample database's directory, built on first use.
pub(crate) fn sample_db() -> Result<PathBuf> {
    let samples = samples_dir();
    let cache = std::env::var_os("MEMBERDB_SAMPLE_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let base = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .unwrap_or_else(std::env::temp_dir);
            base.join("memberdb").join(format!(
                "sample-db-{}-{}",
                env!("CARGO_PKG_VERSION"),
                samples_key(&samples)
            ))
        });
    if cache.join("manifest.json").exists() {
        return Ok(cache);
    }
    eprintln!(
        "building the sample database from {} into {} (once)",
        samples.display(),
        cache.display()
    );
    // Built aside and renamed into place, so a process starting meanwhile never sees half.
    let building = cache.with_extension(format!("building-{}", std::process::id()));
    let db = Database::open(&building)
        .with_context(|| format!("cannot create {}", building.display()))?;
    let load = Load::new()
        .members(samples.join("members.parquet"))
        .events(samples.join("events.parquet"))
        .tags(samples.join("tags.parquet"));
    db.load(load).with_context(|| {
        format!(
            "cannot load the sample files in {}; set MEMBERDB_SAMPLES to the data-samples \
             directory",
            samples.display()
        )
    })?;
    db.close().context("cannot save the sample database")?;
    if std::fs::rename(&building, &cache).is_err() {
        // Another process built it first.
        let _ = std::fs::remove_dir_all(&building);
    }
    Ok(cache)
}
