//! Runs one statement over and over on a cached benchmark data set, for profilers:
//!
//!     cargo build --release -p memberdb-bench --bin repeat
//!     perf record -g target/release/repeat 1000000 10 "COUNT DID purchase AT LEAST 3 TIMES IN LAST 90 DAYS"

use std::time::{Duration, Instant};

use memberdb_bench::workloads::PEER_SETUP;
use memberdb_bench::{bench_now, loaded};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: repeat MEMBERS SECONDS STATEMENT";
    let mut args = std::env::args().skip(1);
    let members: u64 = args.next().ok_or(usage)?.parse()?;
    let seconds: f64 = args.next().ok_or(usage)?.parse()?;
    let statement = args.next().ok_or(usage)?;
    let db = loaded(members);
    let now = bench_now();
    for setup in PEER_SETUP {
        db.execute(setup, Some(now))?;
    }
    let started = Instant::now();
    let mut runs = 0u64;
    let mut output = Vec::new();
    while started.elapsed() < Duration::from_secs_f64(seconds) {
        output = db.execute(&statement, Some(now))?;
        runs += 1;
    }
    let per_run = started.elapsed().as_secs_f64() * 1e6 / runs as f64;
    eprintln!("{runs} runs, {per_run:.1} µs each: {output:?}");
    Ok(())
}
