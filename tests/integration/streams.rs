//! The change streams of dynamic groups (DESIGN section 8): the law (a snapshot folded with
//! the entries after it is the group evaluated from scratch, after any interleaving of
//! writes and clock moves), exact instants of time-driven entries, alternation, the stream
//! and the clock surviving a reopen and a checkpoint, retention, consumer groups.

use memberdb::{
    ChangeCause, ChangeEntry, ChangeOp, Clock, Database, EntryId, FindOptions, OpenOptions,
    Segment, SyncPolicy, TimeUnit, Timestamp, TraitDef, Value, ValueExpr,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

use crate::support::events_batch;

const HOUR: i64 = 3_600_000_000;

fn start() -> Timestamp {
    Timestamp::parse("2026-01-01T00:00:00Z").unwrap()
}

/// Traits the groups read: a recency level (DAYS SINCE, bucketed) and a count in a window.
fn traits() -> Vec<(&'static str, TraitDef)> {
    let last_e0 = ValueExpr::of("e0").last_time().build();
    vec![
        ("rec", TraitDef::Value(last_e0.days_since().bucket([1, 2]))),
        (
            "n1",
            TraitDef::Value(ValueExpr::of("e1").in_last(36, TimeUnit::Hours).build()),
        ),
    ]
}

/// Groups that move with time (windows, counts in windows, `NOT` of a window, groups of
/// groups, DAYS SINCE, traits that move) and one that does not.
fn definitions() -> Vec<(&'static str, Segment)> {
    let days_since_e0 = ValueExpr::of("e0").last_time().build().days_since();
    vec![
        (
            "d1",
            Segment::value(days_since_e0.clone())
                .ge(1)
                .and(!Segment::tag("t1")),
        ),
        (
            "d2",
            Segment::attr("rec")
                .eq(2)
                .or(Segment::attr("n1").ge(2))
                .or(Segment::value(days_since_e0).between(0, 0)),
        ),
        ("g1", Segment::tag("t0").and(Segment::attr("city").eq("A"))),
        ("w1", Segment::did("e0").in_last(2, TimeUnit::Days).build()),
        (
            "w2",
            Segment::did("e1")
                .at_least(2)
                .in_last(36, TimeUnit::Hours)
                .and(!Segment::tag("t1")),
        ),
        (
            "w3",
            (!Segment::did("e0").in_last(1, TimeUnit::Days)).and(Segment::in_group("g1")),
        ),
        (
            "w4",
            Segment::in_group("w1").or(Segment::did("e1").in_last(3, TimeUnit::Hours)),
        ),
        (
            "w5",
            Segment::did("e0")
                .at_most(2)
                .in_last(30, TimeUnit::Hours)
                .and(!Segment::in_group("w2")),
        ),
        // sequences (DESIGN section 10): a THEN NOT window closing at A.ts + 3h, a first
        // part's window moving, and THEN NOT up to *now* (future events reaching it)
        (
            "q1",
            Segment::did("e0")
                .then_not("e1")
                .within(3, TimeUnit::Hours)
                .build(),
        ),
        (
            "q2",
            Segment::did("e1")
                .in_last(2, TimeUnit::Days)
                .then("e0")
                .within(1, TimeUnit::Days)
                .build(),
        ),
        (
            "q3",
            Segment::did("e0")
                .then_not("e1")
                .build()
                .and(!Segment::tag("t1")),
        ),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Upsert(u8, Option<u8>),
    Tag(u8, u8),
    Untag(u8, u8),
    /// An event of type e{1} at {2} hours from the clock (negative: the past; positive:
    /// future-dated), plus {3} minutes.
    Event(u8, u8, i8, u8),
    /// Events of type e{2} for members `from..from + n` at the clock less {3} hours.
    Load(u8, u8, u8, u8),
    /// The clock moves {0} hours and {1} minutes.
    Clock(u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0u8..20, proptest::option::of(0u8..3)).prop_map(|(m, c)| Op::Upsert(m, c)),
        1 => (0u8..20, 0u8..2).prop_map(|(m, t)| Op::Tag(m, t)),
        1 => (0u8..20, 0u8..2).prop_map(|(m, t)| Op::Untag(m, t)),
        3 => (0u8..20, 0u8..2, -60i8..30, 0u8..60).prop_map(|(m, e, h, mi)| Op::Event(m, e, h, mi)),
        1 => (0u8..20, 1u8..10, 0u8..2, 0u8..50).prop_map(|(m, n, e, h)| Op::Load(m, n, e, h)),
        3 => (0u8..40, 0u8..60).prop_map(|(h, mi)| Op::Clock(h, mi)),
    ]
}

fn apply(db: &Database, op: &Op) {
    let id = |m: u8| format!("M{m}");
    let now = db.now().micros();
    let result = match op {
        Op::Upsert(m, city) => db.upsert_member(
            &id(*m),
            &[(
                "city",
                city.map(|c| Value::from(["A", "B", "C"][c as usize])),
            )],
        ),
        Op::Tag(m, t) => db.add_tags(&id(*m), &[&format!("t{t}")]),
        Op::Untag(m, t) => db.remove_tags(&id(*m), &[&format!("t{t}")]),
        Op::Event(m, e, hours, minutes) => {
            let at = now + i64::from(*hours) * HOUR + i64::from(*minutes) * 60_000_000;
            db.add_event(&id(*m), &format!("e{e}"), Timestamp(at), &[])
        }
        Op::Load(from, n, e, hours) => {
            let ids: Vec<String> = (0..*n).map(|k| id(from.wrapping_add(k) % 20)).collect();
            let times: Vec<i64> = (0..ids.len() as i64)
                .map(|k| now - i64::from(*hours) * HOUR + k)
                .collect();
            db.load_events(&[events_batch(ids, &format!("e{e}"), times)])
                .map(drop)
        }
        Op::Clock(hours, minutes) => db.set_clock(Timestamp(
            now + i64::from(*hours) * HOUR + i64::from(*minutes) * 60_000_000 + 7,
        )),
    };
    result.unwrap();
}

fn ids_of(db: &Database, now: Timestamp, segment: &Segment) -> BTreeSet<String> {
    let found = db
        .as_of(now)
        .find(
            segment,
            &FindOptions {
                limit: None,
                ..FindOptions::default()
            },
        )
        .unwrap();
    found.rows.into_iter().map(|r| r.member_id).collect()
}

/// A reader of every group's stream: its folded membership and the id it has read to.
struct Reader {
    folded: BTreeMap<String, (EntryId, BTreeSet<String>)>,
    /// Every entry read, per group.
    log: BTreeMap<String, Vec<ChangeEntry>>,
}

impl Reader {
    fn start(db: &Database) -> Reader {
        let mut folded = BTreeMap::new();
        for (name, _) in definitions() {
            let (id, members) = db.group_snapshot(name).unwrap();
            folded.insert(name.to_string(), (id, members.into_iter().collect()));
        }
        Reader {
            folded,
            log: BTreeMap::new(),
        }
    }

    /// Reads what is new; checks alternation and that time entries lie in `(from, to]`.
    fn catch_up(
        &mut self,
        db: &Database,
        clock_move: Option<(i64, i64)>,
    ) -> Result<(), TestCaseError> {
        for (name, (after, members)) in &mut self.folded {
            let entries: Vec<ChangeEntry> = db.changes(name, *after).unwrap().collect();
            for e in &entries {
                prop_assert!(e.id > *after, "ids grow in {}", name);
                *after = e.id;
                match e.op {
                    ChangeOp::Enter => prop_assert!(
                        members.insert(e.member_id.clone()),
                        "{} enters {} twice",
                        e.member_id,
                        name
                    ),
                    ChangeOp::Exit => prop_assert!(
                        members.remove(&e.member_id),
                        "{} leaves {} without entering",
                        e.member_id,
                        name
                    ),
                }
                if e.cause == ChangeCause::Time {
                    let (from, to) = clock_move.expect("time entries only on clock moves");
                    prop_assert!(
                        from < e.at.micros() && e.at.micros() <= to,
                        "{e:?} outside ({from}, {to}]"
                    );
                }
            }
            self.log.entry(name.clone()).or_default().extend(entries);
        }
        Ok(())
    }

    /// The law: folded membership is the definition evaluated from scratch at the clock.
    fn check(&self, db: &Database) -> Result<(), TestCaseError> {
        let now = db.now();
        for (name, definition) in definitions() {
            let fresh = ids_of(db, now, &definition);
            prop_assert_eq!(&self.folded[name].1, &fresh, "group {} at {}", name, now);
            prop_assert_eq!(
                &ids_of(db, now, &Segment::in_group(name)),
                &fresh,
                "IN GROUP {}",
                name
            );
        }
        Ok(())
    }
}

/// A time entry's instant is a boundary: its member's membership at `at - 1µs` differs
/// from that at `at`, on the data of the move.
fn instants_are_exact(
    db: &Database,
    entries: &[(String, ChangeEntry)],
) -> Result<(), TestCaseError> {
    let definitions: BTreeMap<_, _> = definitions().into_iter().collect();
    for (group, e) in entries {
        let definition = &definitions[group.as_str()];
        let member = |t: i64| ids_of(db, Timestamp(t), definition).contains(&e.member_id);
        let at = e.at.micros();
        prop_assert_eq!(
            member(at),
            e.op == ChangeOp::Enter,
            "{} {:?} at {}",
            group,
            e,
            at
        );
        prop_assert_eq!(
            member(at - 1),
            e.op == ChangeOp::Exit,
            "{} {:?} before {}",
            group,
            e,
            at
        );
    }
    Ok(())
}

fn open(dir: &std::path::Path) -> Database {
    Database::open_with(
        dir,
        OpenOptions {
            sync: SyncPolicy::Off,
            clock: Clock::Manual(start()),
            ..OpenOptions::default()
        },
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn a_snapshot_folded_with_the_stream_is_the_group(ops in proptest::collection::vec(op(), 1..50)) {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        db.upsert_member("M0", &[("city", Some(Value::from("A")))]).unwrap();
        db.add_tags("M0", &["t0", "t1"]).unwrap();
        db.add_event("M0", "e0", start(), &[]).unwrap();
        db.add_event("M0", "e1", start(), &[]).unwrap();
        for (name, definition) in traits() {
            db.define_trait(name, definition).unwrap();
        }
        for (name, definition) in definitions() {
            db.define_group(name, definition).unwrap();
        }
        let mut reader = Reader::start(&db);
        reader.check(&db)?;
        for op in &ops {
            let before = db.now().micros();
            let seen: BTreeMap<String, usize> = reader.log.iter().map(|(g, l)| (g.clone(), l.len())).collect();
            apply(&db, op);
            let moved = matches!(op, Op::Clock(..)).then(|| (before, db.now().micros()));
            reader.catch_up(&db, moved)?;
            reader.check(&db)?;
            if moved.is_some() {
                let new: Vec<(String, ChangeEntry)> = reader.log.iter().flat_map(|(g, l)| {
                    l[seen.get(g).copied().unwrap_or(0)..].iter().map(move |e| (g.clone(), e.clone()))
                }).collect();
                instants_are_exact(&db, &new)?;
            }
        }
        // The stream and the clock as a reader saw them come back from the log, and from a
        // checkpoint.
        let clock = db.now();
        drop(db);
        for round in 0..2 {
            let db = open(dir.path());
            prop_assert_eq!(db.now(), clock);
            for (name, entries) in &reader.log {
                // What retention keeps of what the reader saw.
                let kept_from = db.group_status(name).unwrap().first_id;
                let skip = kept_from.map_or(entries.len(), |first| entries.iter().take_while(|e| e.id < first).count());
                let after = if skip == 0 { EntryId::ZERO } else { entries[skip - 1].id };
                let again: Vec<ChangeEntry> = db.changes(name, after).unwrap().collect();
                prop_assert_eq!(&again[..], &entries[skip..], "stream {} after reopen {}", name, round);
                let (id, members) = db.group_snapshot(name).unwrap();
                prop_assert_eq!(id, reader.folded[name].0);
                prop_assert_eq!(members.into_iter().collect::<BTreeSet<_>>(), reader.folded[name].1.clone());
            }
            db.checkpoint().unwrap();
        }
    }
}

/// A clock move across several boundaries emits every one, in order, with its instant: a
/// member may enter and leave in one move.
#[test]
fn one_move_emits_every_transition_at_its_instant() {
    let db = Database::in_memory_with(OpenOptions {
        clock: Clock::Manual(start()),
        ..OpenOptions::default()
    })
    .unwrap();
    let t = start().micros();
    db.add_event("M0", "buy", Timestamp(t - 100 * HOUR), &[])
        .unwrap();
    db.define_group(
        "recent",
        Segment::did("buy").in_last(1, TimeUnit::Hours).build(),
    )
    .unwrap();
    // future-dated: enters at t + 2h, leaves at t + 3h
    db.add_event("M1", "buy", Timestamp(t + 2 * HOUR), &[])
        .unwrap();
    db.add_event("M2", "buy", Timestamp(t - 30 * 60_000_000), &[])
        .unwrap();
    let (id, members) = db.group_snapshot("recent").unwrap();
    assert_eq!(members, ["M2"]);
    db.set_clock(Timestamp(t + 10 * HOUR)).unwrap();
    let entries: Vec<ChangeEntry> = db.changes("recent", id).unwrap().collect();
    let seen: Vec<(String, ChangeOp, i64)> = entries
        .iter()
        .map(|e| (e.member_id.clone(), e.op, e.at.micros() - t))
        .collect();
    assert_eq!(
        seen,
        [
            ("M2".to_string(), ChangeOp::Exit, 30 * 60_000_000),
            ("M1".to_string(), ChangeOp::Enter, 2 * HOUR),
            ("M1".to_string(), ChangeOp::Exit, 3 * HOUR),
        ]
    );
    assert!(entries.iter().all(|e| e.cause == ChangeCause::Time));
    assert!(
        entries
            .windows(2)
            .all(|w| w[0].id.position == w[1].id.position)
    );
    assert_eq!(entries[0].id.n, 0);
    // the same instant is a no-op, back is refused
    db.set_clock(Timestamp(t + 10 * HOUR)).unwrap();
    let e = db.set_clock(Timestamp(t)).unwrap_err().to_string();
    assert!(e.contains("only moves forward"), "{e}");
    assert!(
        db.changes("recent", entries[2].id)
            .unwrap()
            .next()
            .is_none()
    );
}

/// Retention is measured on the engine's clock against `at`: reading after a removed entry
/// is an error naming the oldest kept, never a silent gap.
#[test]
fn retention_trims_and_a_reader_behind_it_is_told() {
    let db = Database::in_memory_with(OpenOptions {
        clock: Clock::Manual(start()),
        ..OpenOptions::default()
    })
    .unwrap();
    let t = start().micros();
    // the tag exists (no member has it)
    db.add_tags("M0", &["vip"]).unwrap();
    db.remove_tags("M0", &["vip"]).unwrap();
    db.define_group_keeping("vip", Segment::tag("vip"), Some(2))
        .unwrap();
    db.add_tags("M1", &["vip"]).unwrap();
    db.set_clock(Timestamp(t + 24 * HOUR)).unwrap();
    db.add_tags("M2", &["vip"]).unwrap();
    let all: Vec<ChangeEntry> = db.changes("vip", EntryId::ZERO).unwrap().collect();
    assert_eq!(all.len(), 2);
    db.set_clock(Timestamp(t + 49 * HOUR)).unwrap();
    // M1's entry (at t) is older than 2 days; M2's (t + 24h) is kept
    let err = db.changes("vip", EntryId::ZERO).unwrap_err().to_string();
    assert!(
        err.contains("TRIMMED") || err.contains(&all[1].id.to_string()),
        "{err}"
    );
    assert!(err.contains("GROUP.SNAPSHOT"), "{err}");
    let kept: Vec<ChangeEntry> = db.changes("vip", all[0].id).unwrap().collect();
    assert_eq!(kept, all[1..]);
    assert!(
        db.define_group_keeping("x", Segment::tag("vip"), Some(0))
            .is_err()
    );
    let status = db.group_status("vip").unwrap();
    assert_eq!((status.entries, status.keep_days, status.size), (1, 2, 2));
}

/// Consumer groups deliver each entry once, keep it pending until acknowledged, and all of
/// it survives a reopen.
#[test]
fn consumer_groups_deliver_once_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.add_tags("M0", &["vip"]).unwrap();
    db.remove_tags("M0", &["vip"]).unwrap();
    db.define_group("vip", Segment::tag("vip")).unwrap();
    db.create_consumer_group("vip", "crm", None).unwrap();
    assert!(db.create_consumer_group("vip", "crm", None).is_err());
    for m in ["M1", "M2", "M3"] {
        db.add_tags(m, &["vip"]).unwrap();
    }
    let got = db.read_group("vip", "crm", "alice", 2).unwrap();
    assert_eq!(got.len(), 2);
    let rest = db.read_group("vip", "crm", "bob", 10).unwrap();
    assert_eq!(rest.len(), 1);
    assert!(db.read_group("vip", "crm", "bob", 10).unwrap().is_empty());
    assert_eq!(db.acknowledge("vip", "crm", &[got[0].id]).unwrap(), 1);
    assert_eq!(db.acknowledge("vip", "crm", &[got[0].id]).unwrap(), 0);
    drop(db);
    let db = open(dir.path());
    let all = (EntryId::ZERO, EntryId::new(u64::MAX, u32::MAX));
    let pending = db.pending("vip", "crm", all, 10, None).unwrap();
    let ids: Vec<EntryId> = pending.iter().map(|p| p.id).collect();
    assert_eq!(ids, [got[1].id, rest[0].id]);
    assert_eq!(pending[0].consumer, "alice");
    let again = db
        .pending_for("vip", "crm", "alice", EntryId::ZERO, 10)
        .unwrap();
    assert_eq!(again, got[1..]);
    db.add_tags("M4", &["vip"]).unwrap();
    let next = db.read_group("vip", "crm", "alice", 10).unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].member_id, "M4");
    db.drop_group("vip").unwrap();
    assert!(db.changes("vip", EntryId::ZERO).is_err());
}
