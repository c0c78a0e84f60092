//! `memberdb gen`: a realistic, seeded data set.

use std::path::PathBuf;

use anyhow::{Context, Result};
use memberdb::Timestamp;
use memberdb::datagen::{GenConfig, generate, today_midnight};

/// Arguments of `memberdb gen`.
#[derive(clap::Args)]
pub(crate) struct GenArgs {
    /// Directory to write members.parquet, events.parquet, tags.parquet and identities.parquet
    /// into.
    #[arg(long)]
    out: PathBuf,
    /// Number of members.
    #[arg(long, default_value_t = 100_000)]
    members: u64,
    /// Days of event history before the end.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Seed: the same seed, size and end give the same data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// End of the history (exclusive), e.g. 2026-11-01; default: today, midnight UTC.
    #[arg(long)]
    end: Option<String>,
}

pub(crate) fn run(args: GenArgs) -> Result<()> {
    let end = match &args.end {
        Some(text) => Timestamp::parse(text).with_context(|| {
            format!("--end '{text}' is not a date or timestamp (e.g. 2026-11-01)")
        })?,
        None => today_midnight(),
    };
    let config = GenConfig {
        members: args.members,
        days: args.days,
        seed: args.seed,
        end,
    };
    let bar = super::progress::bar(args.members, "members");
    bar.set_message("generating");
    let started = std::time::Instant::now();
    let summary = generate(&config, &args.out, &mut |done| bar.set_position(done))?;
    bar.finish_and_clear();
    eprintln!(
        "wrote {} members, {} events, {} tags, {} identity observations to {} in {:.1}s \
         (seed {}, end {})",
        summary.members,
        summary.events,
        summary.tags,
        summary.identities,
        args.out.display(),
        started.elapsed().as_secs_f64(),
        args.seed,
        end
    );
    Ok(())
}
