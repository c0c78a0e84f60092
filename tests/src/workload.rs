//! A numbered workload of writes whose effects can be checked one by one.
//!
//! Write `i` touches only members named after `i`, so after a crash the writes a database
//! holds can be read back: the engine must hold exactly writes `0..n` for some `n` (a
//! prefix: every acknowledged write, maybe some that were in flight, never a gap), and a
//! bulk load is there with all its rows or none.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use memberdb::{Database, Result, Timestamp, Value};

/// Members in each bulk load.
pub const LOAD_ROWS: usize = 200;

/// What write `i` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Upsert,
    Tag,
    Event,
    BulkLoad,
    Untag,
}

pub fn kind(i: u64) -> Kind {
    match i % 7 {
        0 | 4 => Kind::Upsert,
        1 | 5 => Kind::Tag,
        2 => Kind::Event,
        3 => Kind::BulkLoad,
        _ => Kind::Untag,
    }
}

fn member(i: u64) -> String {
    format!("w{i}")
}

/// Runs write `i`.
pub fn apply(db: &Database, i: u64) -> Result<()> {
    let id = member(i);
    match kind(i) {
        Kind::Upsert => db.upsert_member(
            &id,
            &[
                ("seq", Some(Value::Int(i as i64))),
                (
                    "city",
                    Some(Value::from(["Shanghai", "上海", "Beijing"][i as usize % 3])),
                ),
            ],
        ),
        Kind::Tag => db.add_tags(
            &id,
            &["tagged", if i.is_multiple_of(2) { "even" } else { "odd" }],
        ),
        Kind::Event => db.add_event(
            &id,
            "write",
            Timestamp(1_700_000_000_000_000 + i as i64),
            &[("amount", Some(Value::Float(i as f64 / 4.0)))],
        ),
        Kind::BulkLoad => {
            let ids: Vec<String> = (0..LOAD_ROWS).map(|r| format!("{id}-{r}")).collect();
            let batch = RecordBatch::try_from_iter([
                ("member_id", Arc::new(StringArray::from(ids)) as ArrayRef),
                (
                    "seq",
                    Arc::new(Int64Array::from(vec![i as i64; LOAD_ROWS])) as ArrayRef,
                ),
            ])
            .expect("columns fit");
            db.load_members(&[batch]).map(drop)
        }
        Kind::Untag => {
            // tags its own member, then removes one of them: two writes under one number,
            // checked as "the removal is there" only when the member exists.
            db.add_tags(&id, &["tagged", "to_remove"])?;
            db.remove_tags(&id, &["to_remove"])
        }
    }
}

/// Whether the database holds write `i`; `Err` when it holds part of it (a torn load, a
/// wrong value), which is never allowed.
pub fn holds(db: &Database, i: u64) -> std::result::Result<bool, String> {
    let id = member(i);
    match kind(i) {
        Kind::BulkLoad => {
            let present = (0..LOAD_ROWS)
                .filter(|r| db.member(&format!("{id}-{r}")).is_some())
                .count();
            match present {
                0 => Ok(false),
                n if n == LOAD_ROWS => {
                    let m = db
                        .member(&format!("{id}-{}", LOAD_ROWS - 1))
                        .expect("present");
                    check_seq(&m, i)?;
                    Ok(true)
                }
                n => Err(format!(
                    "bulk load {i} is half there: {n} of {LOAD_ROWS} rows"
                )),
            }
        }
        k => {
            let Some(m) = db.member(&id) else {
                return Ok(false);
            };
            let tagged = m.tags.iter().any(|t| t == "tagged");
            match k {
                Kind::Upsert => check_seq(&m, i)?,
                Kind::Tag | Kind::Untag if !tagged => {
                    return Err(format!("write {i}: member without its tag: {m:?}"));
                }
                _ => {}
            }
            if k == Kind::Untag && m.tags.iter().any(|t| t == "to_remove") {
                // the add is there, the removal (the next log record) may not be
                return Ok(false);
            }
            Ok(true)
        }
    }
}

fn check_seq(m: &memberdb::MemberRecord, i: u64) -> std::result::Result<(), String> {
    let seq = m
        .attributes
        .iter()
        .find(|(n, _)| n == "seq")
        .map(|(_, v)| v);
    if seq != Some(&Value::Int(i as i64)) {
        return Err(format!("write {i}: seq is {seq:?}"));
    }
    Ok(())
}

/// The number of writes the database holds, checked to be a prefix: writes `0..n` are there
/// and none of the `look_ahead` after them.
pub fn held_prefix(db: &Database, from: u64, look_ahead: u64) -> std::result::Result<u64, String> {
    let mut n = from;
    while holds(db, n)? {
        n += 1;
    }
    // An Untag whose removal is missing is the last write in flight, not a gap.
    for j in n + 1..n + 1 + look_ahead {
        if holds(db, j)? {
            return Err(format!("write {j} is there but write {n} is not"));
        }
    }
    Ok(n)
}
