//! The latency of one EVENT.ADD with and without groups, as percentiles (issue 14: at most
//! 20 µs more at p50 with 100 groups, 10 of them reading the event's type, at 1M members),
//! or with and without ten traits reading the event's type (`--traits`; the aggregates
//! issue: at most 20 µs more at p50).
//!
//! Two databases are loaded from the same data set, one with the groups of
//! [`define_write_path_groups`]; writes alternate between them, one each per round, so
//! drift on a shared machine touches both arms alike. Each write is one event of a
//! different member, in time order after the data's end (`--past`: all at noon of the
//! data's last day, which re-sorts that day's tail on every write), with an amount and a
//! store as the data's purchases have. The apply step is timed
//! (in memory: no log, no fsync). Prints JSON: each arm's percentiles, slowest and mean.
//!
//! With `--traits` both databases run on a manual clock an hour after the data's end (the
//! traits hold there: no clock move happens during the run). `--traits ltv,stage` keeps
//! only the traits named (what one trait costs). With the trait `ltv`, `COUNT ltv >= 1000`
//! is timed (median of 201) before the writes and after them, when the last writes' values
//! wait to be folded into the trait's index and are tested one by one.
//!
//!     cargo run --profile bench -p memberdb-bench --bin event_add -- [--seconds 20] [--past] [--traits [names]]

use std::time::{Duration, Instant};

use memberdb::{Clock, OpenOptions, Timestamp, Value};
use memberdb_bench::{
    WRITE_PATH_TRAITS, bench_members, bench_now, define_write_path_groups, loaded, loaded_with,
};

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(20u64);
    let past = args.iter().any(|a| a == "--past");
    let traits = args.iter().position(|a| a == "--traits").map(|i| {
        let only: Option<Vec<&str>> = args
            .get(i + 1)
            .filter(|v| !v.starts_with("--"))
            .map(|v| v.split(',').collect());
        WRITE_PATH_TRAITS
            .split("; ")
            .filter(|d| {
                only.as_ref().is_none_or(|names| {
                    names
                        .iter()
                        .any(|n| d.starts_with(&format!("DEFINE TRAIT {n} AS")))
                })
            })
            .collect::<Vec<_>>()
            .join("; ")
    });
    let members = bench_members();
    let end = bench_now().micros();
    let (plain, grouped) = if let Some(traits) = &traits {
        let manual = || OpenOptions {
            clock: Clock::Manual(Timestamp(end + 3_600_000_000)),
            ..OpenOptions::default()
        };
        let with_traits = loaded_with(members, manual());
        with_traits.execute(traits, None).expect("traits");
        (loaded_with(members, manual()), with_traits)
    } else {
        let grouped = loaded(members);
        define_write_path_groups(&grouped);
        (loaded(members), grouped)
    };
    // A predicate on a trait, read before the writes (every index entry in place) and after
    // them (up to PENDING_ROWS members per trait whose entries wait, tested by value).
    let predicate_us = |db: &memberdb::Database| {
        let mut times: Vec<u64> = (0..201)
            .map(|_| {
                let t = Instant::now();
                db.execute("COUNT ltv >= 1000", None).expect("count");
                t.elapsed().as_nanos() as u64
            })
            .collect();
        times.sort_unstable();
        times[times.len() / 2] as f64 / 1000.0
    };
    let reads_ltv = traits.as_ref().is_some_and(|t| t.contains("TRAIT ltv AS"));
    let predicate_before = reads_ltv.then(|| predicate_us(&grouped));
    let noon = end - 12 * 3_600_000_000;
    let mut lat = [Vec::new(), Vec::new()];
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        n += 1;
        let member = format!("M{:08}", n * 7919 % members + 1);
        let ts = Timestamp(if past { noon } else { end + n as i64 });
        // a purchase as the data has them: an amount and a store (the traits read both)
        let amount = Value::Float(20.0 + (n * 37 % 900) as f64);
        let store = Value::from(format!("S{:03}", n % 200 + 1));
        let props = [("amount", Some(amount)), ("store", Some(store))];
        for (arm, db) in [&plain, &grouped].into_iter().enumerate() {
            let t = Instant::now();
            db.add_event(&member, "purchase", ts, &props)
                .expect("write");
            lat[arm].push(t.elapsed().as_nanos() as u64);
        }
    }
    let predicate_after = reads_ltv.then(|| predicate_us(&grouped));
    for l in &mut lat {
        l.sort_unstable();
    }
    let us = |ns: u64| ns as f64 / 1000.0;
    let arm = |l: &[u64]| {
        format!(
            "{{\"p50_us\": {:.1}, \"p90_us\": {:.1}, \"p99_us\": {:.1}, \"max_us\": {:.1}, \
             \"mean_us\": {:.1}}}",
            us(percentile(l, 0.5)),
            us(percentile(l, 0.9)),
            us(percentile(l, 0.99)),
            us(percentile(l, 1.0)),
            us(l.iter().sum::<u64>() / l.len().max(1) as u64)
        )
    };
    let predicate = match (predicate_before, predicate_after) {
        (Some(before), Some(after)) => format!(
            ", \"count_ltv_ge_1000_us\": {{\"before_writes\": {before:.1}, \
             \"after_writes\": {after:.1}}}"
        ),
        _ => String::new(),
    };
    println!(
        "{{\"members\": {members}, \"writes_per_arm\": {n}, \"past\": {past}, \
         \"without\": {}, \"{}\": {}, \"p50_added_us\": {:.1}{predicate}}}",
        arm(&lat[0]),
        match &traits {
            Some(t) => format!("{}_traits", t.matches("DEFINE TRAIT").count()),
            None => "100_groups".into(),
        },
        arm(&lat[1]),
        us(percentile(&lat[1], 0.5)) - us(percentile(&lat[0], 0.5))
    );
}
