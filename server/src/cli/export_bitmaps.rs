//! `memberdb export-bitmaps`: tag and group bitmaps as ClickHouse `groupBitmap(UInt32)`
//! states (DESIGN section 7).

use std::path::PathBuf;

use anyhow::{Context, Result};

/// Arguments of `memberdb export-bitmaps`.
#[derive(clap::Args)]
pub(crate) struct ExportBitmapsArgs {
    /// Database directory; without it, the sample database built from data-samples/.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Directory to write tags.tsv, groups.tsv, tags.rowbinary and groups.rowbinary into
    /// (created if missing).
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn run(args: ExportBitmapsArgs) -> Result<()> {
    let db = super::open_db(args.db.as_deref())?;
    let done = db
        .export_bitmaps(&args.out)
        .with_context(|| format!("cannot export bitmaps to {}", args.out.display()))?;
    println!(
        "wrote {} tag and {} group bitmaps as groupBitmap(UInt32) states to {}",
        done.tags,
        done.groups,
        args.out.display()
    );
    Ok(())
}
