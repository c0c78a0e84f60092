//! Subcommands of the `memberdb` binary.

pub(crate) mod generate;
pub(crate) mod load;
mod progress;
pub(crate) mod query;
mod render;
pub(crate) mod repl;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use memberdb::{Database, InputKind};

/// Opens `dir`, or without one the sample database (built from `data-samples/` on first use,
/// then reused).
pub(crate) fn open_db(dir: Option<&Path>) -> Result<Database> {
    match dir {
        Some(dir) => {
            Database::open(dir).with_context(|| format!("cannot open database {}", dir.display()))
        }
        None => sample_db(),
    }
}

fn samples_dir() -> PathBuf {
    std::env::var_os("MEMBERDB_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data-samples"))
}

fn sample_db() -> Result<Database> {
    let cache = std::env::var_os("MEMBERDB_SAMPLE_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let base = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .unwrap_or_else(std::env::temp_dir);
            base.join("memberdb")
                .join(format!("sample-db-{}", env!("CARGO_PKG_VERSION")))
        });
    if cache.join("manifest.json").exists() {
        return Database::open(&cache)
            .with_context(|| format!("cannot open the sample database {}", cache.display()));
    }
    let samples = samples_dir();
    eprintln!(
        "building the sample database from {} into {} (once)",
        samples.display(),
        cache.display()
    );
    let mut db =
        Database::open(&cache).with_context(|| format!("cannot create {}", cache.display()))?;
    for (kind, file) in [
        (InputKind::Members, "members.parquet"),
        (InputKind::Events, "events.parquet"),
        (InputKind::Tags, "tags.parquet"),
    ] {
        let path = samples.join(file);
        db.load_file(kind, &path).with_context(|| {
            format!(
                "cannot load the sample {}; set MEMBERDB_SAMPLES to the data-samples directory",
                path.display()
            )
        })?;
    }
    db.save().context("cannot save the sample database")?;
    Ok(db)
}
