//! Dynamic groups kept up to date by the members each write touched: after any write (one
//! member, or a bulk load), and after the log is replayed, every group's stored members
//! are its definition evaluated from scratch.

use memberdb::{Database, OpenOptions, Segment, SyncPolicy, Timestamp, Value};
use proptest::prelude::*;

use crate::support::events_batch;

/// Groups reading tags (two of them exclusive), attributes, events, other groups, `NOT`
/// and `ALL` (which take in new members).
fn definitions() -> Vec<(&'static str, Segment)> {
    vec![
        ("g1", Segment::tag("t0").and(Segment::attr("city").eq("A"))),
        (
            "g2",
            (!Segment::in_group("g1")).and(Segment::did("e0").build()),
        ),
        (
            "g3",
            Segment::did("e1")
                .at_least(2)
                .build()
                .or(Segment::attr("points").gt(50)),
        ),
        ("g4", !Segment::tag("t1")),
        ("g5", Segment::all().and(!Segment::in_group("g3"))),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Upsert(u8, Option<u8>, i64),
    Tag(u8, u8),
    Untag(u8, u8),
    /// An event of type e{1} at hour {2} (days apart).
    Event(u8, u8, u8),
    /// A bulk load of events for members `from..from + n` (some new).
    Load(u8, u8, u8),
    /// Defines one more group, on top of the others.
    Define,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..40, proptest::option::of(0u8..3), 0i64..100)
            .prop_map(|(m, c, p)| Op::Upsert(m, c, p)),
        (0u8..40, 0u8..3).prop_map(|(m, t)| Op::Tag(m, t)),
        (0u8..40, 0u8..3).prop_map(|(m, t)| Op::Untag(m, t)),
        (0u8..40, 0u8..2, 0u8..120).prop_map(|(m, e, h)| Op::Event(m, e, h)),
        (0u8..40, 1u8..30, 0u8..2).prop_map(|(m, n, e)| Op::Load(m, n, e)),
        Just(Op::Define),
    ]
}

fn apply(db: &Database, op: &Op, defined: &mut usize) {
    let id = |m: u8| format!("M{m}");
    let ts = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
    let result = match op {
        Op::Upsert(m, city, points) => db.upsert_member(
            &id(*m),
            &[
                (
                    "city",
                    city.map(|c| Value::from(["A", "B", "C"][c as usize])),
                ),
                ("points", Some(Value::Int(*points))),
            ],
        ),
        Op::Tag(m, t) => db.add_tags(&id(*m), &[&format!("t{t}")]),
        Op::Untag(m, t) => db.remove_tags(&id(*m), &[&format!("t{t}")]),
        Op::Event(m, e, hour) => {
            let at = Timestamp(ts.micros() + i64::from(*hour) * 3_600_000_000);
            db.add_event(&id(*m), &format!("e{e}"), at, &[])
        }
        Op::Load(from, n, e) => {
            let ids: Vec<String> = (0..*n).map(|k| id(from.wrapping_add(k))).collect();
            let times = vec![ts.micros(); ids.len()];
            db.load_events(&[events_batch(ids, &format!("e{e}"), times)])
                .map(drop)
        }
        Op::Define => {
            *defined += 1;
            let name = format!("h{defined}");
            let definition = Segment::in_group("g2").or(Segment::tag("t2"));
            db.define_group(&name, definition).map(drop)
        }
    };
    result.unwrap();
}

/// Every group's stored members are its definition evaluated now.
fn groups_are_right(db: &Database) -> Result<(), TestCaseError> {
    let view = db.as_of(Timestamp::now());
    for group in db.groups() {
        let stored = view.members(&Segment::in_group(&group.name)).unwrap();
        let fresh = view.members(&group.definition).unwrap();
        prop_assert_eq!(stored, fresh, "group {}", group.name);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn groups_follow_every_write(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let options = OpenOptions { sync: SyncPolicy::Off, ..OpenOptions::default() };
        let db = Database::open_with(dir.path(), options.clone()).unwrap();
        db.declare_exclusive_tags("pair", &["t0", "t1"]).unwrap();
        db.upsert_member("M0", &[("city", Some(Value::from("A"))), ("points", Some(Value::Int(1)))]).unwrap();
        db.add_event("M0", "e0", Timestamp::parse("2026-01-01").unwrap(), &[]).unwrap();
        db.add_event("M0", "e1", Timestamp::parse("2026-01-01").unwrap(), &[]).unwrap();
        db.add_tags("M0", &["t2"]).unwrap();
        for (name, definition) in definitions() {
            db.define_group(name, definition).unwrap();
        }
        let mut defined = 0;
        for op in &ops {
            apply(&db, op, &mut defined);
            groups_are_right(&db)?;
        }
        drop(db);
        // replayed from the log: the same groups
        let db = Database::open_with(dir.path(), options).unwrap();
        groups_are_right(&db)?;
    }
}

/// A tag of an exclusive pair takes the other away: groups reading the other one follow.
#[test]
fn an_exclusive_tag_moves_the_groups_of_its_sibling() {
    let db = Database::in_memory();
    db.declare_exclusive_tags("pair", &["t0", "t1"]).unwrap();
    db.upsert_member(
        "M0",
        &[
            ("city", Some(Value::from("A"))),
            ("points", Some(Value::Int(1))),
        ],
    )
    .unwrap();
    db.add_tags("M0", &["t0"]).unwrap();
    let ts = Timestamp::parse("2026-01-01").unwrap();
    db.add_event("M9", "e0", ts, &[]).unwrap();
    db.add_event("M9", "e1", ts, &[]).unwrap();
    for (name, definition) in definitions() {
        db.define_group(name, definition).unwrap();
    }
    let in_g1 = |db: &Database| db.count(&Segment::in_group("g1")).unwrap();
    assert_eq!(in_g1(&db), 1);
    db.add_tags("M0", &["t1"]).unwrap(); // M0 loses t0
    assert_eq!(in_g1(&db), 0);
    assert_eq!(db.count(&Segment::in_group("g4")).unwrap(), 1, "M9 only");
}
