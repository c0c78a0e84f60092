//! Prints memberdb's answers to the named questions of `workloads` on a data directory
//! (members.parquet, events.parquet, tags.parquet), one JSON object per line, for
//! `bench/peers/check_duckdb.py` to compare with DuckDB. Each count is asked twice and must
//! not change (the second answer may come from caches built by the first).
//!
//!     cargo run --release -p memberdb-bench --bin answers -- DIR NOW

use memberdb::query::Output;
use memberdb::{Database, InputKind, Timestamp, Value};
use memberdb_bench::workloads::{breakdown_questions, breakdown_statements, count_questions};

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
    let db = Database::in_memory();
    db.load_file(InputKind::Members, dir.join("members.parquet"))?;
    db.load_file(InputKind::Events, dir.join("events.parquet"))?;
    db.load_file(InputKind::Tags, dir.join("tags.parquet"))?;
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
        let Some(Output::Breakdown { lines, .. }) = db.execute(statement, Some(now))?.pop() else {
            return Err(format!("{name}: not a breakdown").into());
        };
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
    Ok(())
}
