//! `memberdb serve`: the Redis-protocol server over a database directory, and
//! `memberdb hash-password` for the users of its config file.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use memberdb::{Database, OpenOptions};

use crate::serve::Listener;
use crate::serve::config::Config;

/// Arguments of `memberdb serve`.
#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// Database directory; without it, the sample database built from data-samples/
    /// (read-only).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Start a new, empty database at --db if there is none (else that is an error).
    #[arg(long, requires = "db")]
    create: bool,
    /// Address to listen on (overrides the config file); default 127.0.0.1:7379.
    #[arg(long)]
    bind: Option<String>,
    /// Config file (TOML): users and roles, limits, fsync policy.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace (or a tracing filter).
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Where *now* comes from: `wall` (the wall clock), or `manual` (pinned at --now,
    /// moved by the admin command CLOCK.SET; for tests and replays).
    #[arg(long, value_enum, default_value = "wall")]
    clock: ClockKind,
    /// The manual clock's start (e.g. 2026-12-01T00:00:00Z); needs --clock manual.
    #[arg(long, value_parser = parse_now)]
    now: Option<memberdb::Timestamp>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ClockKind {
    Wall,
    Manual,
}

fn parse_now(text: &str) -> Result<memberdb::Timestamp, String> {
    memberdb::Timestamp::parse(text)
        .ok_or_else(|| format!("'{text}' is not a timestamp; use e.g. 2026-12-01T00:00:00Z"))
}

pub(crate) fn run(args: ServeArgs) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .with_context(|| format!("--log-level '{}' is not a level", args.log_level))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(bind) = args.bind {
        config.bind = bind;
    }
    // The address first: a server that cannot listen says so before it takes the
    // database's lock or spends time opening it.
    let listener = Listener::bind(config.clone())?;
    let (dir, base) = match &args.db {
        Some(dir) => (
            dir.clone(),
            OpenOptions {
                create_if_missing: args.create,
                ..OpenOptions::default()
            },
        ),
        None => (super::sample_db()?, super::sample_options()),
    };
    let clock = match (args.clock, args.now) {
        (ClockKind::Wall, None) => memberdb::Clock::Wall,
        (ClockKind::Wall, Some(_)) => {
            anyhow::bail!("--now pins the clock: pass --clock manual with it")
        }
        (ClockKind::Manual, Some(now)) => memberdb::Clock::Manual(now),
        (ClockKind::Manual, None) => {
            anyhow::bail!("--clock manual needs --now TS, the instant the clock starts at")
        }
    };
    let options = OpenOptions {
        clock,
        sync: config.sync.parse().map_err(anyhow::Error::msg)?,
        file_mode: config.file_mode()?,
        // A checkpoint's buffers go back to the OS when it ends, not when its thread next
        // allocates (at the next checkpoint).
        after_checkpoint: Some(crate::release_free_memory),
        ..base
    };
    let db = match Database::open_with(&dir, options) {
        Err(memberdb::Error::NoDatabase(_)) => anyhow::bail!(
            "no database at {0}: pass --create to start an empty one there, or create one \
             with `memberdb load --db {0} --members FILE ...`",
            dir.display()
        ),
        other => other.with_context(|| format!("cannot open database {}", dir.display()))?,
    };
    if let Some(torn) = &db.recovery().torn_tail {
        tracing::warn!(
            offset = torn.offset,
            bytes = torn.dropped_bytes,
            reason = torn.reason,
            "dropped a torn record at the end of the log"
        );
    }
    if let Some(note) = &db.recovery().clock_note {
        tracing::warn!("{note}");
    }
    crate::release_free_memory();
    let server = listener.serve(db, &dir)?;
    let stopper = server.stopper();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .context("cannot install the signal handlers")?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            tracing::info!(signal, "shutting down");
            stopper.stop();
        }
    });
    tracing::info!(db = %dir.display(), addr = %server.local_addr(), "serving");
    // The first line on stdout, for scripts and tests started on port 0.
    println!("listening on {}", server.local_addr());
    std::io::stdout().flush()?;
    server.run()
}

/// Arguments of `memberdb hash-password`.
#[derive(clap::Args)]
pub(crate) struct HashPasswordArgs {}

/// Reads a password from the first line of stdin and prints its argon2 hash.
pub(crate) fn hash_password(_: HashPasswordArgs) -> Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        anyhow::bail!("give the password on stdin, e.g. echo -n 'secret' | memberdb hash-password");
    }
    println!("{}", crate::serve::auth::hash_password(password)?);
    Ok(())
}
