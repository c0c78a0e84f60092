//! Prints memberdb's answers to the named questions of `workloads` on a data directory
//! (members.parquet, events.parquet, tags.parquet), one JSON object per line, for
//! `bench/peers/check_duckdb.py` to compare with DuckDB. Each count is asked twice and must
//! not change (the second answer may come from caches built by the first).
//!
//!     cargo run --release -p memberdb-bench --bin answers -- DIR NOW [--identities SETUP]
//!
//! With `--identities`, each database runs the statements `SETUP` after the load (identifier
//! declarations, merge rules), then loads `DIR/identities.parquet`, so every answer is over
//! merged profiles; a first line `{"name": "profiles", "profiles": [[id, [aliases],
//! [[type, value]]], ...]}` lists every live member with the member ids merged into it and
//! its profile's identifiers.

use memberdb::query::Output;
use memberdb::{Clock, Database, FindOptions, InputKind, OpenOptions, Segment, Timestamp, Value};
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
    let setup = match (args.next().as_deref(), args.next()) {
        (None, _) => None,
        (Some("--identities"), Some(setup)) => Some(setup),
        _ => return Err("usage: answers DIR NOW [--identities SETUP]".into()),
    };
    let load = |db: &Database| -> Result<(), memberdb::Error> {
        db.load_file(InputKind::Members, dir.join("members.parquet"))?;
        db.load_file(InputKind::Events, dir.join("events.parquet"))?;
        db.load_file(InputKind::Tags, dir.join("tags.parquet"))?;
        if let Some(setup) = &setup {
            db.execute(setup, None)?;
            db.load_file(InputKind::Identities, dir.join("identities.parquet"))?;
        }
        Ok(())
    };
    let db = Database::in_memory();
    load(&db)?;
    if setup.is_some() {
        print_profiles(&db)?;
    }
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

/// Every live member with the member ids merged into it and its identifiers.
fn print_profiles(db: &Database) -> Result<(), Box<dyn std::error::Error>> {
    let found = db.find(&Segment::all(), &FindOptions::default())?;
    let mut profiles = Vec::with_capacity(found.rows.len());
    for row in &found.rows {
        let record = db
            .member(&row.member_id)
            .ok_or_else(|| format!("{} is listed but not found", row.member_id))?;
        profiles.push(serde_json::json!([
            record.member_id,
            record.aliases,
            record.identifiers
        ]));
    }
    println!(
        "{}",
        serde_json::json!({"name": "profiles", "profiles": profiles})
    );
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
