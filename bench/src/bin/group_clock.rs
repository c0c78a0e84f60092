//! The write-path goals of groups that move (issue 14), on a generated data directory:
//!
//! - a bulk load of the events (at most `--events` of them) into a database with the
//!   members and tags, with no groups and with 100 groups defined: how much slower the
//!   groups make it (the goal: at most 25 %);
//! - the manual clock crossing a day boundary (moved by 24 hours from the data's end) with
//!   the 100 windowed groups: how long the move takes (the goal: within 2 s at 10M members),
//!   and how many entries it made.
//!
//! Everything in memory (the apply step; no fsync). One line of JSON at the end.
//!
//!     cargo run --release -p memberdb-bench --bin group_clock -- DIR END [--events N]
//!         [--clock-only] [--days N] [--check]
//!
//! `--check` ends by comparing every group's members with its definition evaluated over
//! everyone at the clock (an error if any differs).

// mimalloc, as the memberdb binary allocates
use memberdb_bench as _;
use std::time::Instant;

use memberdb::{Clock, Database, InputKind, OpenOptions, Timestamp, read_batches};

/// 100 groups that move with time: windows of several spans over the event types, counts
/// in windows, `NOT` of a window, each with a tag or a city.
fn definitions() -> Vec<String> {
    let events = [
        "purchase",
        "login",
        "claim_coupon",
        "view_product",
        "add_cart",
        "scan_qr",
        "share",
        "booking",
        "survey",
        "redeem_coupon",
    ];
    let windows = [
        "IN LAST 1 DAYS",
        "IN LAST 7 DAYS",
        "IN LAST 14 DAYS",
        "IN LAST 30 DAYS",
        "IN LAST 90 DAYS",
        "IN LAST 36 HOURS",
        "AT LEAST 2 TIMES IN LAST 30 DAYS",
        "AT LEAST 3 TIMES IN LAST 90 DAYS",
        "EXACTLY 1 TIMES IN LAST 7 DAYS",
        "AT MOST 2 TIMES IN LAST 14 DAYS",
    ];
    let extra = [
        "TAG 'vip'",
        "city = 'Shanghai'",
        "NOT TAG 'churn_risk'",
        "level IN ('gold', 'platinum')",
        "ALL",
    ];
    (0..100)
        .map(|i| {
            let e = events[i % events.len()];
            let w = windows[(i / events.len()) % windows.len()];
            let x = extra[i % extra.len()];
            if i % 7 == 3 {
                format!("DID {e} AND NOT DID {e} {w} AND {x}")
            } else {
                format!("DID {e} {w} AND {x}")
            }
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: group_clock DIR END [--events N] [--clock-only] [--days N] [--check]";
    let (dir, end) = match &args[..] {
        [dir, end, ..] => (std::path::PathBuf::from(dir), end.clone()),
        _ => return Err(usage.into()),
    };
    let max_events: usize = match args.iter().position(|a| a == "--events") {
        Some(i) => args.get(i + 1).ok_or(usage)?.parse()?,
        None => 10_000_000,
    };
    let end = Timestamp::parse(&end).ok_or("END is not a timestamp")?;
    eprintln!("reading events");
    let mut events = Vec::new();
    let mut n = 0;
    for batch in read_batches(&dir.join("events.parquet"))? {
        if n >= max_events {
            break;
        }
        let take = batch.num_rows().min(max_events - n);
        n += take;
        events.push(batch.slice(0, take));
    }
    // The first batch's event types exist before the groups are defined (a definition
    // naming an unknown event is an error); the rest is the timed load.
    let (seed, timed) = events.split_at(1);
    let timed_rows: usize = timed.iter().map(|b| b.num_rows()).sum();
    // Each load twice, alternating, the faster of each kept: the first run of a process
    // also pays for warming the allocator.
    let mut load_seconds = [f64::MAX; 2];
    let mut db = None;
    // `--clock-only`: one load, with the groups, for the clock's move over all the data.
    let runs: &[bool] = if args.iter().any(|a| a == "--clock-only") {
        &[true]
    } else {
        &[false, true, false, true]
    };
    for &with_groups in runs {
        let k = usize::from(with_groups);
        drop(db.take());
        let d = Database::in_memory_with(OpenOptions {
            clock: Clock::Manual(end),
            ..OpenOptions::default()
        })?;
        d.load_file(InputKind::Members, dir.join("members.parquet"))?;
        d.load_file(InputKind::Tags, dir.join("tags.parquet"))?;
        d.load_events(seed)?;
        if with_groups {
            for (i, definition) in definitions().iter().enumerate() {
                d.execute(&format!("DEFINE GROUP g{i} AS {definition}"), None)?;
            }
        }
        eprintln!("loading {timed_rows} events, groups: {with_groups}");
        let started = Instant::now();
        d.load_events(timed)?;
        let took = started.elapsed().as_secs_f64();
        load_seconds[k] = load_seconds[k].min(took);
        eprintln!("  {took:.2} s");
        db = Some(d);
    }
    let db = db.expect("the database with groups");
    let members = db.member_count();
    let entries_before: u64 = (0..100)
        .map(|i| db.group_status(&format!("g{i}")).map(|s| s.entries))
        .sum::<memberdb::Result<u64>>()?;
    // `--days N`: N day moves in a row (the reported move is the first; for profiles).
    let days: i64 = match args.iter().position(|a| a == "--days") {
        Some(i) => args.get(i + 1).ok_or(usage)?.parse()?,
        None => 1,
    };
    let started = Instant::now();
    db.set_clock(Timestamp(end.micros() + 86_400_000_000))?;
    let day_move = started.elapsed().as_secs_f64();
    // The entries of the first move (the one reported).
    let entries_after: u64 = (0..100)
        .map(|i| db.group_status(&format!("g{i}")).map(|s| s.entries))
        .sum::<memberdb::Result<u64>>()?;
    for day in 2..=days {
        let started = Instant::now();
        db.set_clock(Timestamp(end.micros() + day * 86_400_000_000))?;
        eprintln!("day {day}: {:.3} s", started.elapsed().as_secs_f64());
    }
    let end = Timestamp(end.micros() + (days - 1) * 86_400_000_000);
    let started = Instant::now();
    db.set_clock(Timestamp(end.micros() + 86_400_000_000 + 1_000_000))?;
    let second_move = started.elapsed().as_secs_f64();
    // `--check`: every group's members after the moves are its definition's at the clock,
    // evaluated over everyone (not through the moves).
    if args.iter().any(|a| a == "--check") {
        let count = |text: &str| -> memberdb::Result<u64> {
            match db.execute(text, None)?.pop() {
                Some(memberdb::query::Output::Count(n)) => Ok(n),
                other => Err(memberdb::Error::Internal(format!("{text}: {other:?}"))),
            }
        };
        let mut wrong = 0;
        for (i, definition) in definitions().iter().enumerate() {
            let extra = count(&format!("COUNT IN GROUP g{i} AND NOT ({definition})"))?;
            let missing = count(&format!("COUNT ({definition}) AND NOT IN GROUP g{i}"))?;
            if extra + missing > 0 {
                wrong += 1;
                eprintln!("g{i} ({definition}): {extra} members too many, {missing} missing");
            }
        }
        if wrong > 0 {
            return Err(format!("{wrong} groups differ from their definitions").into());
        }
        eprintln!("every group equals its definition at the clock");
    }
    println!(
        "{}",
        serde_json::json!({
            "members": members,
            "events_loaded": timed_rows,
            "load_s_no_groups": load_seconds[0],
            "load_s_100_groups": load_seconds[1],
            "load_slower_pct": 100.0 * (load_seconds[1] / load_seconds[0] - 1.0),
            "day_move_s": day_move,
            "day_move_entries": entries_after - entries_before,
            "one_second_move_s": second_move,
        })
    );
    Ok(())
}
