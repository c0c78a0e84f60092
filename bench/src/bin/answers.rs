//! Prints memberdb's answers to the named questions of `workloads` on a data directory
//! (members.parquet, events.parquet, tags.parquet), one JSON object per line, for
//! `bench/peers/check_duckdb.py` to compare with DuckDB. Each count is asked twice and must
//! not change (the second answer may come from caches built by the first).
//!
//!     cargo run --release -p memberdb-bench --bin answers -- DIR NOW

use memberdb::query::Output;
use memberdb::{Clock, Database, InputKind, OpenOptions, Timestamp, Value};
use memberdb_bench::workloads::{
    TRAIT_DEFINITIONS, breakdown_questions, breakdown_statements, count_questions,
    funnel_statements, sequence_statements, trait_statements,
};

fn json_value(v: &Option<Value>) -> serde_json::Value {
    match v {
        None => serde_json::Value::Null,
        Some(other) => serde_json::Value::String(other.to_string()),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: answers DIR NOW")?);
    let now = args.next().ok_or("usage: answers DIR NOW")?;
    let now = Timestamp::parse(&now).ok_or("NOW is not a timestamp")?;
    let load = |db: &Database| -> Result<(), memberdb::Error> {
        db.load_file(InputKind::Members, dir.join("members.parquet"))?;
        db.load_file(InputKind::Events, dir.join("events.parquet"))?;
        db.load_file(InputKind::Tags, dir.join("tags.parquet"))?;
        Ok(())
    };
    let db = Database::in_memory();
    load(&db)?;
    let view = db.as_of(now);
    for q in count_questions() {
        let count = view.count(&q.segment)?;
        // asked again: caches built on demand (per-day orders of a filtered property)
        // answer the second time, and must answer the same
        let again = view.count(&q.segment)?;
        if again != count {
            return Err(
                format!("{}: {count} members, then {again} when asked again", q.name).into(),
            );
        }
        println!("{}", serde_json::json!({"name": q.name, "count": count}));
    }
    for (name, segment, attr) in breakdown_questions() {
        let lines: Vec<serde_json::Value> = view
            .breakdown(&segment, attr, None)?
            .iter()
            .map(|l| serde_json::json!([json_value(&l.value), l.count]))
            .collect();
        println!("{}", serde_json::json!({"name": name, "breakdown": lines}));
    }
    // A view holds the read lock: statements run after it is dropped.
    drop(view);
    for (name, statement) in breakdown_statements() {
        print_answer(&db, name, statement, now)?;
    }
    // Sequences and funnels at now and 20 days before it (later events future-dated).
    let earlier = Timestamp(now.micros() - 20 * 86_400_000_000);
    for (name, statement) in sequence_statements().into_iter().chain(funnel_statements()) {
        print_answer(&db, name, statement, now)?;
        print_answer(&db, &format!("{name}@-20d"), statement, earlier)?;
    }
    // Traits kept by the engine: defined 40 days and 5 hours before NOW on a manual clock,
    // then the clock moved to NOW (their windows and DAYS SINCE boundaries followed).
    let before = Timestamp(now.micros() - 40 * 86_400_000_000 - 5 * 3_600_000_000);
    let db = Database::in_memory_with(OpenOptions {
        clock: Clock::Manual(before),
        ..OpenOptions::default()
    })?;
    load(&db)?;
    db.execute(TRAIT_DEFINITIONS, None)?;
    db.set_clock(now)?;
    for (name, statement) in trait_statements() {
        print_answer(&db, name, statement, now)?;
    }
    Ok(())
}

/// Runs a COUNT or BREAKDOWN statement and prints its answer.
fn print_answer(
    db: &Database,
    name: &str,
    statement: &str,
    now: Timestamp,
) -> Result<(), Box<dyn std::error::Error>> {
    match db.execute(statement, Some(now))?.pop() {
        Some(Output::Count(count)) => {
            println!("{}", serde_json::json!({"name": name, "count": count}));
        }
        Some(Output::Breakdown { lines, .. }) => {
            let lines: Vec<serde_json::Value> = lines
                .iter()
                .map(|l| {
                    let values: Vec<_> = std::iter::once(&l.value)
                        .chain(&l.more)
                        .map(json_value)
                        .collect();
                    serde_json::json!([values, l.count])
                })
                .collect();
            println!("{}", serde_json::json!({"name": name, "lines": lines}));
        }
        // [bucket, step, members, median seconds] per row
        Some(Output::Funnel(report)) => {
            let rows: Vec<serde_json::Value> = report
                .rows
                .iter()
                .map(|r| {
                    serde_json::json!([json_value(&r.bucket), r.step, r.members, r.median_seconds])
                })
                .collect();
            println!("{}", serde_json::json!({"name": name, "funnel": rows}));
        }
        _ => return Err(format!("{name}: neither a count, a breakdown nor a funnel").into()),
    }
    Ok(())
}
