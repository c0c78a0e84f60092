//! Traits kept current as the clock moves (the aggregates issue): the traits of the peer
//! workloads (`TRAIT_DEFINITIONS`: a windowed sum, recency and frequency levels, two
//! `QUANTILE`s, a lifecycle `CASE`, a group of them) defined on a manual clock at the
//! data's end, then the clock moved forward in steps a server on the wall clock takes (a
//! second, a minute, an hour, a day), each step timed. A step moves the keys of the members
//! with an instant in it, not everyone's. Prints JSON; `--check` ends by asking the same
//! questions of the traits (and their group) in a second database where they are defined
//! at the final clock, computed over everyone: the answers must be equal.
//!
//!     MEMBERDB_BENCH_MEMBERS=1000000 cargo run --profile bench -p memberdb-bench \
//!         --bin trait_clock -- [--rounds 3] [--check]

use std::time::Instant;

use memberdb::{Clock, OpenOptions, Timestamp};
use memberdb_bench::workloads::TRAIT_DEFINITIONS;
use memberdb_bench::{bench_members, bench_now, loaded_with};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let check = args.iter().any(|a| a == "--check");
    let members = bench_members();
    let mut now = bench_now().micros();
    let manual = |at: i64| OpenOptions {
        clock: Clock::Manual(Timestamp(at)),
        ..OpenOptions::default()
    };
    let db = loaded_with(members, manual(now));
    let started = Instant::now();
    db.execute(TRAIT_DEFINITIONS, None)?;
    let define_s = started.elapsed().as_secs_f64();
    let steps: [(&str, i64); 4] = [
        ("second", 1_000_000),
        ("minute", 60_000_000),
        ("hour", 3_600_000_000),
        ("day", 86_400_000_000),
    ];
    let mut lines = Vec::new();
    for (name, micros) in steps {
        let mut ms = Vec::new();
        for _ in 0..rounds {
            now += micros;
            let t = Instant::now();
            db.set_clock(Timestamp(now))?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        ms.sort_by(f64::total_cmp);
        lines.push(format!(
            "\"{name}\": {{\"median_ms\": {:.2}, \"max_ms\": {:.2}}}",
            ms[ms.len() / 2],
            ms[ms.len() - 1]
        ));
    }
    if check {
        let fresh = loaded_with(members, manual(now));
        fresh.execute(TRAIT_DEFINITIONS, None)?;
        for question in [
            "BREAKDOWN ALL BY r, f, m",
            "BREAKDOWN ALL BY q4, stage",
            "COUNT ltv >= 1000",
            "COUNT ltv BETWEEN 1 AND 300",
            "COUNT IN GROUP loyal",
        ] {
            let (moved, defined) = (db.execute(question, None)?, fresh.execute(question, None)?);
            if format!("{moved:?}") != format!("{defined:?}") {
                return Err(format!(
                    "{question}: after the moves {moved:?}, defined at the clock {defined:?}"
                )
                .into());
            }
        }
        eprintln!("the traits after the moves equal their definitions at the clock");
    }
    println!(
        "{{\"members\": {members}, \"define_s\": {define_s:.2}, \"rounds\": {rounds}, {}, \
         \"checked\": {check}}}",
        lines.join(", ")
    );
    Ok(())
}
