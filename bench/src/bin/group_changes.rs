//! Prints, for `bench/peers/check_group_changes.py` to check against DuckDB, what groups
//! that move with time do when the clock moves: the data of DIR (members.parquet,
//! events.parquet, tags.parquet) loaded on a manual clock at T0 (events after T0 are then
//! future-dated), the groups of `definitions()` defined, their snapshots, the clock moved
//! to T1 in STEPS equal moves, and every entry the moves made. One JSON object per line.
//!
//!     cargo run --release -p memberdb-bench --bin group_changes -- DIR T0 T1 [STEPS]

// mimalloc, as the memberdb binary allocates
use memberdb::{Clock, Database, InputKind, OpenOptions, Timestamp};
use memberdb_bench as _;

/// The groups checked: windows, counts in windows, NOT of a window, hours, exact counts,
/// a group of groups.
const DEFINITIONS: &[(&str, &str)] = &[
    ("recent", "DID purchase IN LAST 30 DAYS"),
    ("frequent", "DID purchase AT LEAST 3 TIMES IN LAST 90 DAYS"),
    (
        "lapsed",
        "DID purchase AND NOT DID purchase IN LAST 14 DAYS",
    ),
    ("vip_login", "DID login IN LAST 36 HOURS AND TAG 'vip'"),
    (
        "one_claim",
        "DID claim_coupon EXACTLY 1 TIMES IN LAST 7 DAYS",
    ),
    (
        "few_views",
        "DID view_product AT MOST 2 TIMES IN LAST 3 DAYS",
    ),
    ("both", "IN GROUP recent AND NOT IN GROUP vip_login"),
    // DAYS SINCE, and a trait of it
    (
        "bought_10_to_20_days_ago",
        "DAYS SINCE LAST(purchase) BETWEEN 10 AND 20",
    ),
    ("scan_level_2", "scan_level = 2"),
];

/// The traits the groups read.
const TRAITS: &str = "DEFINE TRAIT scan_level AS BUCKET(DAYS SINCE LAST(scan_qr), 7, 14)";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: group_changes DIR T0 T1 [STEPS]";
    let [dir, t0, t1, rest @ ..] = &args[..] else {
        return Err(usage.into());
    };
    let parse = |t: &str| Timestamp::parse(t).ok_or(format!("'{t}' is not a timestamp"));
    let (t0, t1) = (parse(t0)?, parse(t1)?);
    let steps: i64 = rest.first().map_or(Ok(1), |s| s.parse())?;
    let dir = std::path::PathBuf::from(dir);
    let db = Database::in_memory_with(OpenOptions {
        clock: Clock::Manual(t0),
        ..OpenOptions::default()
    })?;
    db.load_file(InputKind::Members, dir.join("members.parquet"))?;
    db.load_file(InputKind::Events, dir.join("events.parquet"))?;
    db.load_file(InputKind::Tags, dir.join("tags.parquet"))?;
    db.execute(TRAITS, None)?;
    let mut after = Vec::new();
    for (name, definition) in DEFINITIONS {
        // kept for years: a long move must not trim what it just made
        db.execute(
            &format!("DEFINE GROUP {name} AS {definition} KEEP CHANGES 3653 DAYS"),
            None,
        )?;
        let (id, members) = db.group_snapshot(name)?;
        println!(
            "{}",
            serde_json::json!({"group": name, "definition": definition, "snapshot": members})
        );
        after.push(id);
    }
    let span = t1.micros() - t0.micros();
    for step in 1..=steps {
        let now = t0.micros() + span * step / steps;
        let started = std::time::Instant::now();
        db.set_clock(Timestamp(now))?;
        eprintln!("clock move {step}: {:?}", started.elapsed());
        for ((name, _), last) in DEFINITIONS.iter().zip(&mut after) {
            for e in db.changes(name, *last)? {
                println!(
                    "{}",
                    serde_json::json!({"group": name, "member": e.member_id, "op": e.op.as_str(),
                        "cause": e.cause.as_str(), "at": e.at.micros()})
                );
                *last = e.id;
            }
        }
    }
    Ok(())
}
