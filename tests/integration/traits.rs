//! Computed traits (DESIGN section 9) end to end: statements, the crate API, groups that read
//! traits and DAYS SINCE moving at exact instants, persistence, and the errors in the
//! language's words. Their values against a naive evaluator are in `segments_vs_naive`.

use memberdb::query::Output;
use memberdb::{
    ChangeCause, ChangeEntry, ChangeOp, Clock, Database, EntryId, FindOptions, OpenOptions,
    Segment, SyncPolicy, TimeUnit, Timestamp, TraitDef, Value, ValueExpr,
};

const DAY: i64 = 86_400_000_000;

fn t0() -> Timestamp {
    Timestamp::parse("2026-11-01T00:00:00Z").unwrap()
}

fn manual(at: Timestamp) -> OpenOptions {
    OpenOptions {
        clock: Clock::Manual(at),
        sync: SyncPolicy::Off,
        ..OpenOptions::default()
    }
}

fn buy(db: &Database, member: &str, at: i64, amount: f64) {
    db.add_event(
        member,
        "purchase",
        Timestamp(at),
        &[("amount", Some(Value::Float(amount)))],
    )
    .unwrap();
}

fn run(db: &Database, text: &str) -> Vec<Output> {
    db.execute(text, None)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn count(db: &Database, text: &str) -> u64 {
    match run(db, &format!("COUNT {text}")).pop() {
        Some(Output::Count(n)) => n,
        other => panic!("{other:?}"),
    }
}

/// A group of `DAYS SINCE LAST(purchase) > 180` takes a member in at the exact instant its
/// last purchase turns 181 days old, and a new purchase takes it out (cause `write`).
#[test]
fn a_group_of_days_since_moves_at_the_exact_instant() {
    let db = Database::in_memory_with(manual(t0())).unwrap();
    let t = t0().micros();
    buy(&db, "M1", t - 100 * DAY - 5, 10.0);
    buy(&db, "M2", t - 10 * DAY, 10.0);
    run(
        &db,
        "DEFINE GROUP lapsed AS DAYS SINCE LAST(purchase) > 180 KEEP CHANGES 365 DAYS",
    );
    let (id, members) = db.group_snapshot("lapsed").unwrap();
    assert!(members.is_empty());
    // M1 turns 181 days at t + 81 days - 5 µs; M2 at t + 171 days
    db.set_clock(Timestamp(t + 200 * DAY)).unwrap();
    let entries: Vec<ChangeEntry> = db.changes("lapsed", id).unwrap().collect();
    let seen: Vec<(String, ChangeOp, i64)> = entries
        .iter()
        .map(|e| (e.member_id.clone(), e.op, e.at.micros() - t))
        .collect();
    assert_eq!(
        seen,
        [
            ("M1".to_string(), ChangeOp::Enter, 81 * DAY - 5),
            ("M2".to_string(), ChangeOp::Enter, 171 * DAY),
        ]
    );
    assert!(entries.iter().all(|e| e.cause == ChangeCause::Time));
    buy(&db, "M1", t + 199 * DAY, 10.0);
    let last = entries.last().unwrap().id;
    let after: Vec<ChangeEntry> = db.changes("lapsed", last).unwrap().collect();
    assert_eq!(after.len(), 1);
    assert_eq!(
        (after[0].member_id.as_str(), after[0].op, after[0].cause),
        ("M1", ChangeOp::Exit, ChangeCause::Write)
    );
}

/// Traits from statements: values, BREAKDOWN by traits, FIND SHOW traits, SHOW TRAITS; a
/// group reading a trait follows the trait's changes as data arrives.
#[test]
fn traits_are_read_like_attributes_and_move_groups() {
    let db = Database::in_memory_with(manual(t0())).unwrap();
    let t = t0().micros();
    for (m, days, amounts) in [
        ("M1", 5, &[900.0, 300.0][..]),
        ("M2", 40, &[100.0][..]),
        ("M3", 400, &[50.0][..]),
        ("M4", 200, &[700.0, 20.0, 20.0][..]),
    ] {
        for (k, a) in amounts.iter().enumerate() {
            buy(&db, m, t - days * DAY + k as i64, *a);
        }
    }
    db.upsert_member("M5", &[("city", Some(Value::from("Shanghai")))])
        .unwrap();
    run(
        &db,
        "DEFINE TRAIT ltv AS SUM(amount OF purchase IN LAST 365 DAYS); \
         DEFINE TRAIT r AS BUCKET(DAYS SINCE LAST(purchase), 30, 60, 90, 180, 365); \
         DEFINE TRAIT m AS QUANTILE(2, ltv) OVER DID purchase IN LAST 365 DAYS; \
         DEFINE TRAIT stage AS CASE WHEN NOT DID purchase THEN 'prospect' \
             WHEN DAYS SINCE LAST(purchase) > 330 THEN 'churned' \
             WHEN DAYS SINCE LAST(purchase) > 180 THEN 'dormant' ELSE 'active' END; \
         DEFINE GROUP best AS m = 2",
    );
    // ltv: M1 1200, M2 100, M3 0 (outside the year), M4 740, M5 0
    assert_eq!(count(&db, "ltv >= 700"), 2);
    assert_eq!(count(&db, "ltv = 0"), 2);
    // ranked among M1, M2, M4: 100 -> 1, 740 -> 1 + floor(2 * 1 / 3) = 1, 1200 -> 2
    assert_eq!(count(&db, "m = 1"), 2);
    assert_eq!(count(&db, "m IS NULL"), 2);
    assert_eq!(count(&db, "IN GROUP best"), 1);
    let found = db
        .as_of(t0())
        .find(
            &Segment::attr("stage").is_not_null(),
            &FindOptions {
                columns: vec!["r".into(), "stage".into()],
                ..FindOptions::default()
            },
        )
        .unwrap();
    let rows: Vec<(String, Vec<Option<Value>>)> = found
        .rows
        .into_iter()
        .map(|r| (r.member_id, r.values))
        .collect();
    let v = |r: Option<i64>, s: &str| vec![r.map(Value::Int), Some(Value::from(s))];
    assert_eq!(
        rows,
        [
            ("M1".to_string(), v(Some(1), "active")),
            ("M2".to_string(), v(Some(2), "active")),
            ("M3".to_string(), v(Some(6), "churned")),
            ("M4".to_string(), v(Some(5), "dormant")),
            ("M5".to_string(), v(None, "prospect")),
        ]
    );
    let Some(Output::Breakdown { lines, columns, .. }) =
        run(&db, "BREAKDOWN ALL BY stage, m").pop()
    else {
        panic!("a breakdown")
    };
    assert_eq!(columns, ["stage", "m"]);
    // (active, 2), (active, 1), (churned, NULL), (dormant, 1), (prospect, NULL)
    assert_eq!(lines.len(), 5);
    assert!(lines.iter().all(|l| l.count == 1));
    let Some(Output::Breakdown { lines, .. }) = run(&db, "BREAKDOWN ALL BY stage").pop() else {
        panic!("a breakdown")
    };
    assert_eq!(
        (lines[0].value.clone(), lines[0].count),
        (Some(Value::from("active")), 2)
    );
    let Some(Output::Table { rows, .. }) = run(&db, "SHOW TRAITS").pop() else {
        panic!("a table")
    };
    let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names, ["ltv", "r", "m", "stage"]);
    assert_eq!(
        rows[2][4],
        "QUANTILE(2, ltv) OVER DID purchase IN LAST 365 DAYS"
    );

    // MEMBER.GET shows the traits beside the attributes
    let m4 = db.member("M4").unwrap();
    assert_eq!(
        m4.traits,
        [
            ("ltv".to_string(), Value::Float(740.0)),
            ("r".to_string(), Value::Int(5)),
            ("m".to_string(), Value::Int(1)),
            ("stage".to_string(), Value::from("dormant")),
        ]
    );
    // M2 buys big: its ltv moves, the ranks move, and with them group `best` (cause write)
    let (id, _) = db.group_snapshot("best").unwrap();
    buy(&db, "M2", t - DAY, 5000.0);
    assert_eq!(count(&db, "ltv >= 5000"), 1);
    let entries: Vec<(String, ChangeOp, ChangeCause)> = db
        .changes("best", id)
        .unwrap()
        .map(|e| (e.member_id, e.op, e.cause))
        .collect();
    assert_eq!(
        entries,
        [
            ("M1".to_string(), ChangeOp::Exit, ChangeCause::Write),
            ("M2".to_string(), ChangeOp::Enter, ChangeCause::Write),
        ]
    );
    // time moves the recency levels and the stages: at t + 100 days the last purchases
    // are 105 (M1), 101 (M2), 500 (M3) and 300 (M4) days old
    db.set_clock(Timestamp(t + 100 * DAY)).unwrap();
    assert_eq!(count(&db, "stage = 'dormant'"), 1);
    assert_eq!(count(&db, "stage = 'churned'"), 1);
    assert_eq!(count(&db, "r = 4"), 2);
    assert_eq!(count(&db, "r = 5"), 1);
}

/// Traits come back after a restart, from the log and from a checkpoint, with their values.
#[test]
fn traits_survive_a_restart_and_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let t = t0().micros();
    let answers = |db: &Database| {
        ["ltv >= 100", "tier = 'gold'", "q = 1", "IN GROUP golden"].map(|s| count(db, s))
    };
    let mut expected = {
        let db = Database::open_with(dir.path(), manual(t0())).unwrap();
        buy(&db, "M1", t - DAY, 150.0);
        buy(&db, "M2", t - 2 * DAY, 50.0);
        buy(&db, "M3", t - 3 * DAY, 500.0);
        db.define_trait(
            "ltv",
            TraitDef::Value(
                ValueExpr::sum("amount")
                    .of("purchase")
                    .in_last(30, TimeUnit::Days)
                    .build(),
            ),
        )
        .unwrap();
        db.define_group("golden", Segment::attr("tier").eq("gold"))
            .unwrap_err();
        db.define_trait(
            "tier",
            TraitDef::Case {
                whens: vec![(Segment::attr("ltv").ge(100), Value::from("gold"))],
                otherwise: Some(Value::from("basic")),
            },
        )
        .unwrap();
        db.define_group("golden", Segment::attr("tier").eq("gold"))
            .unwrap();
        db.define_trait(
            "q",
            TraitDef::Quantile {
                buckets: 3,
                value: ValueExpr::attr("ltv"),
                descending: true,
                over: Segment::all(),
            },
        )
        .unwrap();
        let a = answers(&db);
        assert_eq!(a, [2, 2, 1, 2]);
        a
    };
    for round in 0..2 {
        let db = Database::open_with(dir.path(), manual(t0())).unwrap();
        assert_eq!(answers(&db), expected, "round {round}");
        let names: Vec<String> = db.traits().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["ltv", "tier", "q"]);
        // the group defined between the traits still reads them after a reopen
        buy(&db, "M2", t - DAY + round, 60.0 * (round + 1) as f64);
        expected = answers(&db);
        db.checkpoint().unwrap();
    }
    let db = Database::open_with(dir.path(), manual(t0())).unwrap();
    // M2: 50 + 60 + 120 = 230
    assert_eq!(count(&db, "ltv >= 200"), 2);
    assert_eq!(count(&db, "IN GROUP golden"), 3);
    let (_, members) = db.group_snapshot("golden").unwrap();
    assert_eq!(members.len(), 3);
    let _ = EntryId::ZERO;
}

/// Bad definitions are refused in the language's words and change nothing.
#[test]
fn bad_traits_are_refused_with_clear_errors() {
    let db = Database::in_memory_with(manual(t0())).unwrap();
    buy(&db, "M1", t0().micros() - DAY, 10.0);
    db.add_event(
        "M1",
        "purchase",
        t0(),
        &[
            ("store", Some(Value::from("S1"))),
            ("paid_at", Some(Value::Timestamp(t0().micros()))),
        ],
    )
    .unwrap();
    db.upsert_member("M1", &[("city", Some(Value::from("Shanghai")))])
        .unwrap();
    run(&db, "DEFINE TRAIT ltv AS SUM(amount OF purchase)");
    let err = |text: &str| db.execute(text, None).expect_err(text).to_string();
    for (text, words) in [
        (
            "DEFINE TRAIT city AS COUNT(purchase)",
            "'city' is an attribute",
        ),
        ("DEFINE TRAIT ltv AS COUNT(purchase)", "already exists"),
        ("DEFINE TRAIT x AS x + 1", "expected"),
        (
            "DEFINE TRAIT x AS ltvv",
            "unknown attribute 'ltvv'; did you mean 'ltv'",
        ),
        (
            "DEFINE TRAIT x AS CASE WHEN ltv > 1 THEN 'a' ELSE 2 END",
            "one type",
        ),
        (
            "DEFINE TRAIT x AS QUANTILE(3, city) OVER ALL",
            "QUANTILE ranks numbers",
        ),
        (
            "DEFINE TRAIT x AS QUANTILE(0, ltv) OVER ALL",
            "k goes from 1",
        ),
        (
            "DEFINE TRAIT x AS SUM(store OF purchase)",
            "SUM needs a number property",
        ),
        (
            "DEFINE TRAIT x AS CASE WHEN DID purchasee THEN 'a' END",
            "did you mean 'purchase'",
        ),
        (
            "DEFINE TRAIT x AS DAYS SINCE MAX(paid_at OF purchase)",
            "cannot be kept current",
        ),
        ("DROP TRAIT nope", "unknown trait 'nope'"),
    ] {
        let e = err(text);
        assert!(e.contains(words), "{text}: {e}");
    }
    run(&db, "DEFINE GROUP big AS ltv > 5");
    let e = err("DROP TRAIT ltv");
    assert!(e.contains("used by group 'big'"), "{e}");
    let e = err("DEFINE TRAIT big AS COUNT(purchase)");
    assert!(e.contains("'big' is a group"), "{e}");
    let e = db
        .upsert_member("M2", &[("ltv", Some(Value::Int(3)))])
        .unwrap_err()
        .to_string();
    assert!(e.contains("'ltv' is a trait"), "{e}");
    let names: Vec<String> = db.traits().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["ltv"], "refused definitions are not kept");
    run(&db, "DROP GROUP big; DROP TRAIT ltv");
    assert!(db.traits().is_empty());
}

/// An integer SUM that overflows is an error in a statement; in a trait that member's value
/// is NULL, the others' are kept.
#[test]
fn an_overflowing_sum_is_null_in_a_trait() {
    let db = Database::in_memory_with(manual(t0())).unwrap();
    let t = t0().micros();
    for (m, n) in [("M1", i64::MAX), ("M1", 1), ("M2", 7)] {
        db.add_event(
            m,
            "purchase",
            Timestamp(t - DAY),
            &[("n", Some(Value::Int(n)))],
        )
        .unwrap();
    }
    let e = db
        .execute("COUNT SUM(n OF purchase) > 0", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("overflows"), "{e}");
    run(&db, "DEFINE TRAIT total AS SUM(n OF purchase)");
    assert_eq!(count(&db, "total IS NULL"), 1);
    assert_eq!(count(&db, "total = 7"), 1);
}

/// A write's trait values move in the traits' indexes in batches (`PENDING_ROWS` members
/// at a time): through hundreds of writes, predicates on traits, a group reading them and a
/// BREAKDOWN by one answer what the trait values themselves say.
#[test]
fn trait_predicates_follow_their_values_through_many_writes() {
    /// A member's ltv, last store and purchase count.
    type Values = (f64, Option<String>, i64);
    let db = Database::in_memory_with(manual(t0())).unwrap();
    let t = t0().micros();
    let members = 300u64;
    for m in 0..members {
        db.upsert_member(&format!("M{m}"), &[("city", Some(Value::from("Shanghai")))])
            .unwrap();
    }
    db.add_event(
        "M0",
        "purchase",
        Timestamp(t - 2 * DAY),
        &[
            ("amount", Some(Value::Float(10.0))),
            ("store", Some(Value::from("S0"))),
        ],
    )
    .unwrap();
    run(
        &db,
        "DEFINE TRAIT ltv AS SUM(amount OF purchase); \
         DEFINE TRAIT last_store AS LAST(store OF purchase); \
         DEFINE TRAIT n AS COUNT(purchase); \
         DEFINE GROUP loyal AS n >= 3 AND last_store IN ('S1', 'S2')",
    );
    let mut seed = 7u64;
    let mut next = |below: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 33) % below
    };
    for write in 0..900 {
        // members 0..200 buy (a few of them often), 200..300 never do
        let member = if next(4) == 0 { next(10) } else { next(200) };
        let store = format!("S{}", next(6));
        db.add_event(
            &format!("M{member}"),
            "purchase",
            Timestamp(t - DAY + write),
            &[
                ("amount", Some(Value::Float(next(300) as f64))),
                ("store", Some(Value::from(store.as_str()))),
            ],
        )
        .unwrap();
        if write % 75 != 74 {
            continue;
        }
        let found = db
            .find(
                &Segment::All,
                &FindOptions {
                    columns: vec!["ltv".into(), "last_store".into(), "n".into()],
                    ..FindOptions::default()
                },
            )
            .unwrap();
        let values: Vec<Values> = found
            .rows
            .iter()
            .map(|r| match &r.values[..] {
                [Some(Value::Float(ltv)), store, Some(Value::Int(n))] => (
                    *ltv,
                    store.as_ref().map(|s| match s {
                        Value::Str(s) => s.clone(),
                        other => panic!("{other:?}"),
                    }),
                    *n,
                ),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(values.len() as u64, members);
        let expect =
            |keep: &dyn Fn(&Values) -> bool| values.iter().filter(|v| keep(v)).count() as u64;
        let store_is = |v: &Values, s: &str| v.1.as_deref() == Some(s);
        for (text, expected) in [
            ("ltv >= 400", expect(&|v| v.0 >= 400.0)),
            ("ltv < 100", expect(&|v| v.0 < 100.0)),
            (
                "ltv BETWEEN 100 AND 300",
                expect(&|v| (100.0..=300.0).contains(&v.0)),
            ),
            ("ltv = 0", expect(&|v| v.0 == 0.0)),
            ("last_store = 'S3'", expect(&|v| store_is(v, "S3"))),
            (
                "last_store != 'S3'",
                expect(&|v| v.1.is_some() && !store_is(v, "S3")),
            ),
            ("last_store IS NULL", expect(&|v| v.1.is_none())),
            ("n >= 3", expect(&|v| v.2 >= 3)),
            ("n = 1", expect(&|v| v.2 == 1)),
            (
                "IN GROUP loyal",
                expect(&|v| v.2 >= 3 && (store_is(v, "S1") || store_is(v, "S2"))),
            ),
        ] {
            assert_eq!(
                count(&db, text),
                expected,
                "{text} after {} writes",
                write + 1
            );
        }
        let Some(Output::Breakdown { lines, .. }) = run(&db, "BREAKDOWN ALL BY last_store").pop()
        else {
            panic!("a breakdown")
        };
        for line in lines {
            let store = line.value.as_ref().map(|v| match v {
                Value::Str(s) => s.clone(),
                other => panic!("{other:?}"),
            });
            assert_eq!(line.count, expect(&|v| v.1 == store), "{store:?}");
        }
    }
}
