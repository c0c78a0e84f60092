//! Runs one statement over and over on a cached benchmark data set, for profilers:
//!
//!     cargo build --release -p memberdb-bench --bin repeat
//!     perf record -g target/release/repeat 1000000 10 "COUNT DID purchase AT LEAST 3 TIMES IN LAST 90 DAYS"
//!
//! STATEMENT may hold several `;`-separated statements, each timed on its own. With
//! `MEMBERDB_THREADS=1,2` each runs for the given time once per thread count
//! (`RunOptions::threads`), to measure a split walk's speed-up. Instead of MEMBERS (a
//! cached data set loaded in memory), a database directory may be given: it is opened (a
//! database too large to load in one process, such as the 30M-member one).

use std::time::{Duration, Instant};

use memberdb::{Clock, OpenOptions};
use memberdb_bench::workloads::PEER_SETUP;
use memberdb_bench::{bench_now, loaded_with};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: repeat (MEMBERS | DATABASE-DIR) SECONDS STATEMENT";
    let mut args = std::env::args().skip(1);
    let source = args.next().ok_or(usage)?;
    let seconds: f64 = args.next().ok_or(usage)?.parse()?;
    let statement = args.next().ok_or(usage)?;
    // On the peers' manual clock at the workloads' *now*: the traits of the workloads hold
    // at the instant the statements ask at, as in the peers harness.
    let options = || OpenOptions {
        clock: Clock::Manual(bench_now()),
        ..OpenOptions::default()
    };
    let db = match source.parse::<u64>() {
        Ok(members) => loaded_with(members, options()),
        Err(_) => {
            let started = Instant::now();
            let db = memberdb::Database::open_with(&source, options())?;
            eprintln!(
                "opened {source} ({} members, {} events) in {:.2} s",
                db.member_count(),
                db.event_count(),
                started.elapsed().as_secs_f64()
            );
            db
        }
    };
    let now = bench_now();
    let groups = db.groups();
    for setup in PEER_SETUP {
        // an opened database may hold the group from an earlier run
        if !groups
            .iter()
            .any(|g| setup.contains(&format!("GROUP {} ", g.name)))
        {
            db.execute(setup, Some(now))?;
        }
    }
    let threads: Vec<Option<usize>> = match std::env::var("MEMBERDB_THREADS") {
        Ok(list) => list
            .split(',')
            .map(|n| n.trim().parse().map(Some))
            .collect::<Result<_, _>>()?,
        Err(_) => vec![None],
    };
    let statements = memberdb::query::parse_script(&statement).map_err(|e| format!("{e:?}"))?;
    for (i, statement) in statements.iter().enumerate() {
        for &threads in &threads {
            let options = memberdb::query::RunOptions {
                now: Some(now),
                threads,
                ..Default::default()
            };
            let started = Instant::now();
            let mut runs = 0u64;
            let mut output = None;
            // statement text to answer, as a client sends it: parsed every time
            let text = statement.to_string();
            while started.elapsed() < Duration::from_secs_f64(seconds) {
                let statement =
                    memberdb::query::parse_statement(&text).map_err(|e| format!("{e:?}"))?;
                output = Some(db.run_with(&statement, &options)?);
                runs += 1;
            }
            let per_run = started.elapsed().as_secs_f64() * 1e6 / runs as f64;
            let label = threads.map_or("default".to_string(), |n| n.to_string());
            let output = format!("{output:?}");
            let output: String = output.chars().take(200).collect();
            eprintln!(
                "statement {i}, threads {label}: {runs} runs, {per_run:.1} µs each: {output}"
            );
        }
    }
    Ok(())
}
