//! Identities at scale (DESIGN section 11, the speed goals of the identities issue).
//!
//! By default, the peer workloads Q1..Q15 on two copies of a benchmark data set in memory:
//! one as loaded, one whose phone and OpenID attributes are declared identifiers and a
//! tenth of whose members were merged in pairs (each pair seen with one loyalty card),
//! timed in turns so that the ratio is what to read (absolute times drift here).
//!
//! With `--replay N`, the time to open a database of N members, each with a phone and an
//! OpenID declared as identifiers (2N observations in the log, replayed into profiles at
//! open), beside the open of the same members without the declarations.
//!
//!     cargo build --profile bench -p memberdb-bench --bin identity_merged
//!     target/release/identity_merged [--members N] [--seconds S]
//!     target/release/identity_merged --replay 5000000 --dir /tmp/replay

use std::io::Write;
use std::time::{Duration, Instant};

use memberdb::{Clock, Database, InputKind, OpenOptions, SyncPolicy};
use memberdb_bench::workloads::{PEER_SETUP, peer_workloads};
use memberdb_bench::{bench_now, dataset, declare_identifiers};

/// The share of members merged in pairs.
const MERGED_SHARE: f64 = 0.10;

fn options() -> OpenOptions {
    OpenOptions {
        clock: Clock::Manual(bench_now()),
        sync: SyncPolicy::Off,
        ..OpenOptions::default()
    }
}

/// Median times of `statement` on each database, run in turns for `budget` (at least 5
/// runs each).
fn medians(
    dbs: &[&Database],
    statement: &str,
    budget: Duration,
) -> Result<Vec<Duration>, memberdb::Error> {
    let mut times = vec![Vec::new(); dbs.len()];
    let started = Instant::now();
    while times[0].len() < 5 || started.elapsed() < budget {
        for (db, times) in dbs.iter().zip(&mut times) {
            let t = Instant::now();
            db.execute(statement, None)?;
            times.push(t.elapsed());
        }
    }
    Ok(times
        .into_iter()
        .map(|mut t| {
            t.sort();
            t[t.len() / 2]
        })
        .collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut members = memberdb_bench::bench_members();
    let mut seconds = 2.0f64;
    let mut replay: Option<u64> = None;
    let mut dir = std::env::temp_dir().join("memberdb-identity-replay");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--members" => members = value()?.parse()?,
            "--seconds" => seconds = value()?.parse()?,
            "--replay" => replay = Some(value()?.parse()?),
            "--dir" => dir = value()?.into(),
            _ => return Err(format!("unknown argument {arg}").into()),
        }
    }
    match replay {
        Some(n) => open_replaying(n, &dir),
        None => merged_segments(members, Duration::from_secs_f64(seconds)),
    }
}

/// Q1..Q15 as loaded and with a tenth of the members merged in pairs.
fn merged_segments(members: u64, budget: Duration) -> Result<(), Box<dyn std::error::Error>> {
    let data = dataset(members);
    let load = || -> Result<Database, memberdb::Error> {
        let db = Database::in_memory_with(options())?;
        db.load_file(InputKind::Members, data.join("members.parquet"))?;
        db.load_file(InputKind::Events, data.join("events.parquet"))?;
        db.load_file(InputKind::Tags, data.join("tags.parquet"))?;
        for setup in PEER_SETUP {
            db.execute(setup, None)?;
        }
        Ok(db)
    };
    let plain = load()?;
    let merged = load()?;
    // The phone and OpenID attributes observed (a person may have two phones), then pairs
    // of members seen with one card.
    let started = Instant::now();
    declare_identifiers(
        &merged,
        &[("phone", 2, 1), ("openid", 10, 2), ("card", 1, 3)],
    )?;
    let declared = started.elapsed();
    let cards = data.join("../identity-merged-cards.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&cards)?);
        writeln!(f, "member_id,card")?;
        let pairs = (members as f64 * MERGED_SHARE / 2.0) as u64;
        // Spread over the members: pair k is members k * stride + 1 and half a stride on
        // (ids are 1-based).
        let stride = members / pairs.max(1);
        for k in 0..pairs {
            let a = k * stride + 1;
            let b = a + stride / 2;
            writeln!(f, "M{a:08},C{k}")?;
            writeln!(f, "M{b:08},C{k}")?;
        }
    }
    let started = Instant::now();
    let report = merged.load_file(InputKind::Identities, &cards)?;
    let merging = started.elapsed();
    eprintln!(
        "declared phone and openid in {:.1} s; {} card observations in {:.1} s; {} live \
         members of {}",
        declared.as_secs_f64(),
        report.rows,
        merging.as_secs_f64(),
        merged.member_count(),
        plain.member_count()
    );
    println!(
        "| query | as loaded µs | {:.0}% merged µs | ratio |",
        MERGED_SHARE * 100.0
    );
    println!("|---|---:|---:|---:|");
    for w in peer_workloads() {
        let t = medians(&[&plain, &merged], &w.statement, budget)?;
        println!(
            "| {} | {:.1} | {:.1} | {:.2}x |",
            w.name,
            t[0].as_secs_f64() * 1e6,
            t[1].as_secs_f64() * 1e6,
            t[1].as_secs_f64() / t[0].as_secs_f64()
        );
    }
    Ok(())
}

/// Opens `n` members with a phone and an OpenID, declared as identifiers (2n observations
/// replayed) and not.
fn open_replaying(n: u64, dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let csv = dir.join("members.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&csv)?);
        writeln!(f, "member_id,phone,openid")?;
        for i in 0..n {
            writeln!(
                f,
                "M{i},1{:010},o{:016x}",
                i * 7919 % 10_000_000_000,
                i * 0x9E37_79B9
            )?;
        }
    }
    let mut opened = Vec::new();
    for with_identities in [false, true] {
        let path = dir.join(if with_identities { "with" } else { "without" });
        let _ = std::fs::remove_dir_all(&path);
        let db = Database::open_with(&path, options())?;
        db.load(
            memberdb::Load::new()
                .members(&csv)
                .schema_text("phone:string,openid:string")?,
        )?;
        if with_identities {
            let started = Instant::now();
            declare_identifiers(&db, &[("phone", 1, 1), ("openid", 10, 2)])?;
            eprintln!("declared: {:.1} s", started.elapsed().as_secs_f64());
        }
        db.close()?;
        let started = Instant::now();
        let db = Database::open_with(&path, options())?;
        let took = started.elapsed();
        let values: u64 = db.identifiers().iter().map(|i| i.values).sum();
        opened.push((took, values, db.member_count()));
    }
    println!(
        "open of {n} members: {:.1} s without identifiers, {:.1} s with {} identifier values \
         ({} observations replayed); {} members",
        opened[0].0.as_secs_f64(),
        opened[1].0.as_secs_f64(),
        opened[1].1,
        2 * n,
        opened[1].2
    );
    Ok(())
}
