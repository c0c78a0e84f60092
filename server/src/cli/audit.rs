//! `memberdb audit verify`: checks the audit log's hash chain of a database directory
//! without opening the database (a running server keeps its lock).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

/// Arguments of `memberdb audit`.
#[derive(clap::Args)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    what: AuditCommand,
}

#[derive(clap::Subcommand)]
enum AuditCommand {
    /// Check every record's hash and link; name the first broken record.
    Verify {
        /// Database directory (its audit.log).
        #[arg(long)]
        db: PathBuf,
    },
}

/// Exit code 0: the chain holds; 1: a record was changed, removed or inserted (the message
/// names the first).
pub(crate) fn run(args: AuditArgs) -> Result<ExitCode> {
    let AuditCommand::Verify { db } = args.what;
    let path = db.join(memberdb::audit::FILE);
    if !path.exists() {
        anyhow::bail!(
            "no audit log at {}: the server writes it into the database directory",
            path.display()
        );
    }
    match memberdb::audit::verify_file(&path) {
        Ok(check) => {
            println!(
                "{}: {} records, the chain holds",
                path.display(),
                check.records
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
