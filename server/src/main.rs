//! The `memberdb` binary: generate data, load it, and (in later issues) query, REPL, serve.

mod cli;

/// mimalloc returns the memory freed after a bulk load to the OS (glibc's malloc kept it).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Gen(a) => cli::generate::run(a).map(|()| ExitCode::SUCCESS),
        Command::Load(a) => cli::load::run(a).map(|()| ExitCode::SUCCESS),
        Command::Query(a) => cli::query::run(a).map(|()| ExitCode::SUCCESS),
        Command::Repl(a) => cli::repl::run(a).map(|()| ExitCode::SUCCESS),
        Command::Check(a) => cli::check::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
