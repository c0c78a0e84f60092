//! The `memberdb` binary: generate data, load it, query it, the REPL, check, and the
//! Redis-protocol server.

mod cli;
mod serve;

/// mimalloc returns the memory freed after a bulk load to the OS (glibc's malloc kept it).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Hands the memory this thread's allocator heap holds free back to the OS now, instead of
/// when the thread next allocates a lot: opening a database frees the buffers of its
/// decoded files on the thread that then runs the event loop, which allocates little, and a
/// checkpoint frees its buffers on the checkpoint thread, which then sleeps.
pub(crate) fn release_free_memory() {
    // SAFETY: mi_collect has no preconditions; it only walks the calling thread's heap.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e` of `mimalloc.h`, the same
/// in versions 2 and 3; `libmimalloc-sys` names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps resident memory close to what the process uses (profiled with
/// `bench/src/bin/memory_profile.rs`; the engine's own count is within 3 % of the live heap):
///
/// - freed memory goes back to the OS after 100 ms: mimalloc 3 waits 1000 ms, which under a
///   write load kept 3 to 5 times the database's size resident in a process whose threads
///   go idle; 10 ms (mimalloc 2) made queries fault their scratch memory back in, one third
///   fewer requests/s in the 1M-member soak (632/s against 1,078/s at 100 ms);
/// - no transparent huge pages: mimalloc asks for them on its arenas, and a 2 MiB page only
///   partly used is resident whole (1.45x the live heap with them, 1.20x without; Redis
///   recommends the same for the same reason).
///
/// `MIMALLOC_PURGE_DELAY` and `MIMALLOC_ALLOW_THP` in the environment still decide.
fn keep_resident_memory_tight() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only stores the value; mimalloc reads it on its next purge.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 100);
        }
    }
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // For the whole process, the arenas mimalloc already mapped included. Best effort.
        let _ = rustix::thread::disable_transparent_huge_pages(true);
    }
}

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// memberdb: an embedded analytical database for member data.
#[derive(Parser)]
#[command(name = "memberdb", version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a realistic, seeded data set (members, events, tags as Parquet).
    Gen(cli::generate::GenArgs),
    /// Load members, events and tags files into a database directory.
    Load(cli::load::LoadArgs),
    /// Run statements of the segment language.
    Query(cli::query::QueryArgs),
    /// The interactive prompt (reads statements from stdin when it is not a terminal).
    Repl(cli::repl::ReplArgs),
    /// Report the state of a database directory; --repair drops a torn log tail.
    Check(cli::check::CheckArgs),
    /// Serve a database over TCP with the Redis protocol.
    Serve(cli::serve::ServeArgs),
    /// Print the argon2 hash of the password on stdin, for the server's config file.
    HashPassword(cli::serve::HashPasswordArgs),
    /// The audit log: `memberdb audit verify --db DIR` checks its hash chain.
    Audit(cli::audit::AuditArgs),
    /// Clean-room counts: `memberdb share export` writes a pool of keyed hashes.
    Share(cli::share::ShareArgs),
    /// Statements as ClickHouse SQL over the database's Parquet files; --schema the DDL.
    Compile(cli::compile::CompileArgs),
    /// Tag and group bitmaps as ClickHouse groupBitmap(UInt32) states.
    ExportBitmaps(cli::export_bitmaps::ExportBitmapsArgs),
}

fn main() -> ExitCode {
    keep_resident_memory_tight();
    let args = Args::parse();
    let result = match args.command {
        Command::Gen(a) => cli::generate::run(a).map(|()| ExitCode::SUCCESS),
        Command::Load(a) => cli::load::run(a).map(|()| ExitCode::SUCCESS),
        Command::Query(a) => cli::query::run(a).map(|()| ExitCode::SUCCESS),
        Command::Repl(a) => cli::repl::run(a).map(|()| ExitCode::SUCCESS),
        Command::Check(a) => cli::check::run(a),
        Command::Serve(a) => cli::serve::run(a).map(|()| ExitCode::SUCCESS),
        Command::HashPassword(a) => cli::serve::hash_password(a).map(|()| ExitCode::SUCCESS),
        Command::Audit(a) => cli::audit::run(a),
        Command::Share(a) => cli::share::run(a).map(|()| ExitCode::SUCCESS),
        Command::Compile(a) => cli::compile::run(a).map(|()| ExitCode::SUCCESS),
        Command::ExportBitmaps(a) => cli::export_bitmaps::run(a).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
