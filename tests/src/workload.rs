//! A numbered workload of writes whose effects can be checked one by one.
//!
//! Write `i` touches only members named after `i`, so after a crash the writes a database
//! holds can be read back: the engine must hold exactly writes `0..n` for some `n` (a
//! prefix: every acknowledged write, maybe some that were in flight, never a gap), and a
//! bulk load is there with all its rows or none. Identity links and merges are among the
//! writes (their observations live in the log and in `identities-<g>.json`).

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use memberdb::{Database, IdentifierDef, Result, Timestamp, Value};

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
    /// A phone and an OpenID seen together: a profile started, named `phone:p<i>`.
    Link,
    /// Two profiles started, an event for the second, then `MEMBER.MERGE` of the two.
    Merge,
}

/// The kinds repeat every `CYCLE` writes; write `BULK_LOAD + CYCLE * n` is a bulk load.
pub const CYCLE: u64 = 9;
/// See [`CYCLE`].
pub const BULK_LOAD: u64 = 3;

pub fn kind(i: u64) -> Kind {
    match i % CYCLE {
        0 | 4 => Kind::Upsert,
        1 | 5 => Kind::Tag,
        2 => Kind::Event,
        BULK_LOAD => Kind::BulkLoad,
        6 => Kind::Untag,
        7 => Kind::Link,
        _ => Kind::Merge,
    }
}

/// Declares the identifier types the links use, the first time.
fn declare_identifiers(db: &Database) -> Result<()> {
    if db.identifiers().len() == 2 {
        return Ok(());
    }
    for (name, priority) in [("phone", 1), ("openid", 2)] {
        db.define_identifier(IdentifierDef {
            name: name.into(),
            limit: 1,
            priority,
            blocked: Vec::new(),
        })?;
    }
    Ok(())
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
        Kind::Link => {
            declare_identifiers(db)?;
            db.link(
                None,
                &[("phone", &format!("p{i}")), ("openid", &format!("o{i}"))],
            )
            .map(drop)
        }
        Kind::Merge => {
            declare_identifiers(db)?;
            db.link(None, &[("phone", &format!("p{i}"))])?;
            db.link(None, &[("openid", &format!("o{i}"))])?;
            db.add_event(
                &format!("openid:o{i}"),
                "merged_write",
                Timestamp(1_700_000_000_000_000 + i as i64),
                &[("seq", Some(Value::Int(i as i64)))],
            )?;
            db.merge_members(&format!("phone:p{i}"), &format!("openid:o{i}"))
                .map(drop)
        }
    }
}

/// Whether link or merge `i` is there (`Err` for half of one observation).
fn holds_identity(db: &Database, i: u64, k: Kind) -> std::result::Result<bool, String> {
    let lookup = |t: &str, v: String| {
        db.lookup_identifier(t, &v)
            .map_err(|e| format!("write {i}: lookup {t}: {e}"))
    };
    if db.identifiers().len() < 2 {
        // declared by the first link or merge: not there yet
        return Ok(false);
    }
    let canonical = format!("phone:p{i}");
    let phone = lookup("phone", format!("p{i}"))?;
    let openid = lookup("openid", format!("o{i}"))?;
    match k {
        Kind::Link => match (phone, openid) {
            (None, None) => Ok(false),
            (Some(p), Some(o)) if p == canonical && o == canonical => Ok(true),
            other => Err(format!("write {i}: half a link: {other:?}")),
        },
        _ => {
            if openid.as_deref() != Some(canonical.as_str()) {
                // not merged (yet): the last write in flight
                return Ok(false);
            }
            let m = db
                .member(&format!("openid:o{i}"))
                .ok_or(format!("write {i}: the alias is unknown"))?;
            // the event written for the absorbed id is the profile's
            let event = memberdb::Segment::did("merged_write")
                .filter(memberdb::PropFilter::prop("seq").eq(i as i64))
                .into();
            let found = db
                .find(&event, &memberdb::FindOptions::default())
                .map_err(|e| e.to_string())?;
            let owners: Vec<&str> = found.rows.iter().map(|r| r.member_id.as_str()).collect();
            if m.member_id != canonical
                || m.aliases != [format!("openid:o{i}")]
                || owners != [canonical.as_str()]
            {
                return Err(format!(
                    "write {i}: a wrong merge: {m:?}, event of {owners:?}"
                ));
            }
            Ok(true)
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
        k @ (Kind::Link | Kind::Merge) => holds_identity(db, i, k),
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
