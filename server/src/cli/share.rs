//! `memberdb share export`: the pool of a segment's members for a clean-room count by
//! another party (DESIGN section 12): keyed hashes of one identifier, nothing else.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// Arguments of `memberdb share`.
#[derive(clap::Args)]
pub(crate) struct ShareArgs {
    #[command(subcommand)]
    what: ShareCommand,
}

#[derive(clap::Subcommand)]
enum ShareCommand {
    /// Write the HMAC-SHA256 hashes of one identifier of a segment's members to a Parquet
    /// pool, for `COUNT <segment> OVERLAP 'pool.parquet'` on the other side.
    Export {
        /// Database directory.
        #[arg(long)]
        db: PathBuf,
        /// The segment whose members go into the pool.
        #[arg(long)]
        segment: String,
        /// The identifier hashed: an attribute (e.g. phone) or an identifier type.
        #[arg(long)]
        key: String,
        /// The secret shared with the other party (the file's bytes, at least 16).
        #[arg(long)]
        secret_file: PathBuf,
        /// The pool file to write (.parquet).
        #[arg(long)]
        out: PathBuf,
    },
}

pub(crate) fn run(args: ShareArgs) -> Result<()> {
    let ShareCommand::Export {
        db,
        segment,
        key,
        secret_file,
        out,
    } = args.what;
    let secret = memberdb::share::read_secret(&secret_file)?;
    let db = super::open_db(Some(&db))?;
    let n = db
        .share_export(&segment, &key, &secret, &out)
        .map_err(|e| anyhow::anyhow!(e.to_string()))
        .with_context(|| format!("cannot write the pool {}", out.display()))?;
    eprintln!(
        "{}: {n} keyed hashes of '{key}' (no member ids, no values); the other party counts \
         with the same secret: COUNT <segment> OVERLAP '{}'",
        out.display(),
        out.file_name()
            .map_or(String::new(), |f| f.to_string_lossy().into_owned())
    );
    Ok(())
}
