//! The scope law (a scoped user's answer is the admin's answer for `(<segment>) AND
//! (<scope>)`), command classes, masks at output and refused predicates on masked fields.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::database::Database;
use crate::query::Output;
use crate::value::{Timestamp, Value};

const NOW: &str = "2026-11-01T00:00:00Z";

fn now() -> Timestamp {
    Timestamp::parse(NOW).unwrap()
}

/// Members with a store, a city, a level, a phone, tags and purchases, from `seed`.
fn database(members: usize, seed: u64) -> Database {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let db = Database::in_memory();
    let stores = ["S1", "S2", "S3"];
    let cities = ["Shanghai", "Beijing", "Hangzhou"];
    for m in 0..members {
        let id = format!("M{m}");
        let mut fields = vec![
            (
                "home_store",
                Some(Value::from(stores[rng.random_range(0..3)])),
            ),
            ("level", Some(Value::Int(rng.random_range(1..5)))),
            (
                "phone",
                Some(Value::from(format!(
                    "138{:08}",
                    rng.random_range(0..1_000_000)
                ))),
            ),
        ];
        if rng.random_bool(0.8) {
            fields.push(("city", Some(Value::from(cities[rng.random_range(0..3)]))));
        }
        db.upsert_member(&id, &fields).unwrap();
        if rng.random_bool(0.4) {
            db.add_tags(&id, &["vip"]).unwrap();
        }
        for _ in 0..rng.random_range(0..4) {
            let day = rng.random_range(1..28);
            let at = Timestamp::parse(&format!("2026-10-{day:02}T10:00:00Z")).unwrap();
            let amount = Value::Int(rng.random_range(10..500));
            db.add_event(&id, "purchase", at, &[("amount", Some(amount))])
                .unwrap();
        }
    }
    db
}

fn role(name: &str, commands: &[Command], scope: &str, masks: &[(&str, &str)]) -> Role {
    Role {
        name: name.to_string(),
        commands: commands.to_vec(),
        scope: RoleScope::parse(scope).unwrap(),
        restrictive: false,
        masks: masks
            .iter()
            .map(|(f, m)| (f.to_string(), m.parse().unwrap()))
            .collect(),
    }
}

fn access(roles: &[Role]) -> Arc<Access> {
    Arc::new(Access::new("lin", roles, Arc::from(&b"secret"[..])))
}

fn one(db: &Database, text: &str) -> Output {
    db.execute(text, Some(now())).unwrap().remove(0)
}

fn as_user(session: &crate::Session<'_>, text: &str) -> crate::Result<Output> {
    session.execute(text, Some(now())).map(|mut o| o.remove(0))
}

/// Segments of the language over the test data.
fn segment() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("ALL".to_string()),
        Just("TAG 'vip'".to_string()),
        Just("city = 'Shanghai'".to_string()),
        Just("city IS NULL".to_string()),
        Just("level >= 3".to_string()),
        Just("home_store IN ('S1', 'S3')".to_string()),
        Just("DID purchase".to_string()),
        Just("DID purchase AT LEAST 2 TIMES".to_string()),
        Just("DID purchase WHERE amount > 200 IN LAST 10 DAYS".to_string()),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) AND ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) OR ({b})")),
            inner.prop_map(|a| format!("NOT ({a})")),
        ]
    })
}

fn scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("home_store = 'S1'".to_string()),
        Just("TAG 'vip'".to_string()),
        Just("city = 'Beijing' OR level = 1".to_string()),
        Just("NOT DID purchase".to_string()),
        Just("no_such_attribute = 'x'".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// What a scoped user gets equals what an admin gets for `(<segment>) AND (<scope>)`:
    /// COUNT, FIND, BREAKDOWN and a funnel.
    #[test]
    fn the_scope_law_holds(seed in 0u64..1000, seg in segment(), scope in scope()) {
        let db = database(300, seed);
        let user = access(&[role("store", &[Command::Read], &scope, &[])]);
        let session = db.session(user);
        // a scope naming an unknown attribute selects nobody
        let admin_scope = if scope.contains("no_such") { "NOT ALL".to_string() } else { scope.clone() };
        let both = format!("({seg}) AND ({admin_scope})");
        for (mine, theirs) in [
            (format!("COUNT {seg}"), format!("COUNT {both}")),
            (format!("FIND {seg} SHOW level LIMIT 10000"), format!("FIND {both} SHOW level LIMIT 10000")),
            (format!("BREAKDOWN {seg} BY city"), format!("BREAKDOWN {both} BY city")),
            (
                format!("FUNNEL purchase, purchase WITHIN 30 DAYS FOR {seg}"),
                format!("FUNNEL purchase, purchase WITHIN 30 DAYS FOR {both}"),
            ),
        ] {
            prop_assert_eq!(as_user(&session, &mine).unwrap(), one(&db, &theirs), "{}", mine);
        }
    }
}

#[test]
fn roles_combine_permissive_scopes_by_union_and_restrictive_ones_by_intersection() {
    let db = database(400, 7);
    let count = |roles: &[Role], seg: &str| -> u64 {
        let Output::Count(n) =
            as_user(&db.session(access(roles)), &format!("COUNT {seg}")).unwrap()
        else {
            panic!()
        };
        n
    };
    let admin = |seg: &str| match one(&db, &format!("COUNT {seg}")) {
        Output::Count(n) => n,
        _ => panic!(),
    };
    let s1 = role("s1", &[Command::Read], "home_store = 'S1'", &[]);
    let s2 = role("s2", &[Command::Read], "home_store = 'S2'", &[]);
    let mut only_vip = role("vip_only", &[Command::Read], "TAG 'vip'", &[]);
    only_vip.restrictive = true;
    assert_eq!(
        count(&[s1.clone(), s2.clone()], "ALL"),
        admin("home_store IN ('S1', 'S2')")
    );
    assert_eq!(
        count(&[s1.clone(), s2.clone(), only_vip.clone()], "ALL"),
        admin("home_store IN ('S1', 'S2') AND TAG 'vip'")
    );
    // restrictive roles alone grant nothing; a defined role without a scope sees nothing
    assert_eq!(count(&[only_vip.clone()], "ALL"), 0);
    let mut unscoped = role("none", &[Command::Read], "ALL", &[]);
    unscoped.scope = RoleScope::Nothing;
    assert_eq!(count(&[unscoped], "ALL"), 0);
    // a built-in role sees everyone, narrowed by a restrictive one
    let read = Role::builtin("read").unwrap();
    assert_eq!(count(std::slice::from_ref(&read), "ALL"), admin("ALL"));
    assert_eq!(count(&[read, only_vip], "ALL"), admin("TAG 'vip'"));
}

#[test]
fn commands_are_refused_outside_the_roles_classes() {
    let db = database(50, 1);
    let reader = db.session(access(&[Role::builtin("read").unwrap()]));
    for text in [
        "DEFINE GROUP g AS TAG 'vip'",
        "DROP GROUP g",
        "EXPORT TAG 'vip' TO '/tmp/never-written.csv'",
        "ALTER ATTRIBUTE level TYPE float",
    ] {
        let e = as_user(&reader, text).unwrap_err();
        assert!(matches!(e, Error::NoPermission(_)), "{text}: {e}");
    }
    assert!(reader.may_write("M1", "MEMBER.SET").is_err());
    let writer = db.session(access(&[Role::builtin("write").unwrap()]));
    assert!(writer.may_write("M1", "MEMBER.SET").is_ok());
    assert!(
        writer.may_write("NEW", "MEMBER.SET").is_ok(),
        "an unscoped writer creates"
    );
    assert!(
        as_user(&writer, "COUNT TAG 'vip'").is_ok(),
        "write includes read"
    );
    let admin = db.session(Arc::new(Access::admin()));
    assert!(as_user(&admin, "DEFINE GROUP g AS TAG 'vip'").is_ok());
}

#[test]
fn scoped_writers_write_only_existing_members_of_their_scope() {
    let db = database(60, 2);
    let writer = db.session(access(&[role(
        "s1w",
        &[Command::Write],
        "home_store = 'S1'",
        &[],
    )]));
    let inside = (0..60)
        .map(|m| format!("M{m}"))
        .find(|id| writer.sees(id))
        .unwrap();
    let outside = (0..60)
        .map(|m| format!("M{m}"))
        .find(|id| !writer.sees(id))
        .unwrap();
    assert!(writer.may_write(&inside, "TAG.ADD").is_ok());
    let out = writer
        .may_write(&outside, "TAG.ADD")
        .unwrap_err()
        .to_string();
    let unknown = writer
        .may_write("NOBODY", "TAG.ADD")
        .unwrap_err()
        .to_string();
    assert_eq!(
        out.replace(&outside, "X"),
        unknown.replace("NOBODY", "X"),
        "outside the scope reads as unknown"
    );
    assert!(writer.member(&outside).is_none());
    assert!(writer.member(&inside).is_some());
}

#[test]
fn masked_fields_are_masked_at_output_and_refused_in_predicates() {
    let db = database(80, 3);
    db.upsert_member("M0", &[("phone", Some(Value::from("13812345678")))])
        .unwrap();
    db.add_tags("M0", &["canary"]).unwrap();
    let guide = db.session(access(&[role(
        "guide",
        &[Command::Read, Command::Export],
        "ALL",
        &[
            ("phone", "partial(3,4)"),
            ("level", "hide"),
            ("amount", "hash"),
        ],
    )]));
    let Output::Find(found) = as_user(&guide, "FIND ALL SHOW phone, level, city LIMIT 5").unwrap()
    else {
        panic!()
    };
    assert_eq!(
        found.columns,
        ["member_id", "phone", "city"],
        "hidden field left out"
    );
    let first = &found.rows[0];
    assert_eq!(first.member_id, "M0");
    assert_eq!(first.values[0], Some(Value::from("138****5678")));
    let record = guide.member("M0").unwrap();
    assert!(record.attributes.iter().all(|(n, _)| n != "level"));
    assert!(
        record
            .attributes
            .contains(&("phone".into(), Value::from("138****5678")))
    );
    for refused in [
        "COUNT phone = '13812345678'",
        "COUNT phone > '1381'",
        "COUNT NOT (level > 2)",
        "BREAKDOWN ALL BY phone",
        "BREAKDOWN ALL BY level",
        "COUNT DID purchase WHERE amount > 100",
        "COUNT SUM(amount OF purchase) > 100",
        "FUNNEL purchase, purchase WITHIN 3 DAYS BY level",
        "SHOW ATTRIBUTE phone",
    ] {
        match as_user(&guide, refused) {
            Err(Error::NoPermission(message)) => {
                assert!(!message.contains("1381234"), "{refused}: {message}");
            }
            other => panic!("{refused}: {other:?}"),
        }
    }
    // NULL tests stay allowed
    assert!(as_user(&guide, "COUNT phone IS NOT NULL AND level IS NULL").is_ok());
    assert!(as_user(&guide, "COUNT DID purchase WHERE amount IS NOT NULL").is_ok());
    // a group's definition that reads a masked field is not shown
    db.execute("DEFINE GROUP rich AS level >= 3", Some(now()))
        .unwrap();
    let Output::Table { rows, .. } = as_user(&guide, "SHOW GROUPS").unwrap() else {
        panic!()
    };
    assert!(rows[0][2].contains("hidden"), "{rows:?}");
    let Output::Table { rows, .. } = as_user(&guide, "SHOW GROUP rich").unwrap() else {
        panic!()
    };
    assert!(rows[0][1].contains("hidden"), "{rows:?}");
    // a scoped session's SHOW GROUP counts the group's members inside its scope
    let store = db.session(access(&[role(
        "s1",
        &[Command::Read],
        "home_store = 'S1'",
        &[],
    )]));
    let Output::Table { rows, .. } = as_user(&store, "SHOW GROUP rich").unwrap() else {
        panic!()
    };
    let Output::Count(inside) = one(&db, "COUNT IN GROUP rich AND home_store = 'S1'") else {
        panic!()
    };
    assert_eq!(rows[1][1], inside.to_string(), "{rows:?}");
    assert_eq!(rows[0][1], "level >= 3", "not masked for this role");
    // EXPLAIN would print the parts of a group that moves with time: refused when they
    // read a masked field, directly or through another group
    db.execute(
        "DEFINE GROUP rich_buyers AS IN GROUP rich AND DID purchase IN LAST 7 DAYS",
        Some(now()),
    )
    .unwrap();
    for text in [
        "EXPLAIN IN GROUP rich",
        "EXPLAIN TAG 'vip' OR IN GROUP rich_buyers",
    ] {
        let e = as_user(&guide, text).unwrap_err();
        assert!(matches!(e, Error::NoPermission(_)), "{text}: {e}");
    }
    assert!(as_user(&guide, "EXPLAIN TAG 'vip'").is_ok());
    let e = as_user(&guide, "EXPLAIN MEMBER 'M0' IN GROUP rich").unwrap_err();
    assert!(matches!(e, Error::NoPermission(_)));
    // an export writes the masked text and leaves hidden fields out
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.csv");
    as_user(
        &guide,
        &format!(
            "EXPORT TAG 'canary' SHOW phone, level TO '{}'",
            file.display()
        ),
    )
    .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("138****5678") && !text.contains("13812345678"),
        "{text}"
    );
    assert!(!text.contains("level"), "{text}");
}

#[test]
fn a_masked_find_page_shows_what_each_members_record_shows() {
    // FIND masks a page column by column (short text as words); a member's record masks
    // value by value: both must show the same, NULLs and every shape of text included.
    let db = Database::in_memory();
    let phones = [
        "13812345678",
        "",
        "12345",
        "+86 138 1234 5678 0000",
        "王小明的电话号码",
    ];
    let emails = [
        "zhang.wei@qq.com",
        "a@b.cn",
        "nomail",
        "王@163.com",
        "x@hotmail.com",
    ];
    for m in 0..120usize {
        let text = |values: &[&str], k: usize| {
            (m % 7 != k).then(|| Value::from(format!("{}{m}", values[m % values.len()])))
        };
        let fields = [
            ("phone", text(&phones, 1)),
            ("email", text(&emails, 2)),
            (
                "points",
                (m % 5 != 0).then_some(Value::Int(m as i64 * 1_000)),
            ),
            ("city", text(&["Shanghai", "Beijing"], 3)),
            ("level", Some(Value::Int(m as i64 % 4))),
        ];
        db.upsert_member(&format!("M{m}"), &fields).unwrap();
    }
    let masks = [
        ("phone", "partial(3,4)"),
        ("email", "email"),
        ("points", "partial(1,1)"),
        ("city", "hash"),
        ("level", "hide"),
    ];
    let user = db.session(access(&[role("u", &[Command::Read], "ALL", &masks)]));
    let statement = "FIND ALL SHOW phone, email, points, city, level LIMIT 200";
    let Output::Find(found) = as_user(&user, statement).unwrap() else {
        panic!()
    };
    assert_eq!(
        found.columns,
        ["member_id", "phone", "email", "points", "city"]
    );
    assert_eq!(found.rows.len(), 120);
    let mut nulls = 0;
    for row in &found.rows {
        let record = user.member(&row.member_id).unwrap();
        for (name, value) in found.columns[1..].iter().zip(&row.values) {
            let shown = record.attributes.iter().find(|(n, _)| n == name);
            assert_eq!(
                value.as_ref(),
                shown.map(|(_, v)| v),
                "{} {name}",
                row.member_id
            );
            nulls += usize::from(value.is_none());
        }
    }
    assert!(nulls > 40, "NULLs of every column are read: {nulls}");
}

#[test]
fn scopes_that_do_not_parse_name_the_position() {
    let e = RoleScope::parse("home_store = ").unwrap_err().to_string();
    assert!(e.contains("at character"), "{e}");
    assert!(RoleScope::parse("FIND vip").is_err());
    assert_eq!(RoleScope::parse(" all ").unwrap(), RoleScope::All);
}

/// BREAKDOWN BY a value-indexed attribute, sparse answers (counted by codes) and dense
/// ones (value bitmaps intersected) alike, equals a COUNT per value.
fn breakdown_matches_counts(db: &Database, segment: &str) {
    let Output::Breakdown { lines, total, .. } = one(db, &format!("BREAKDOWN {segment} BY city"))
    else {
        panic!()
    };
    let Output::Count(all) = one(db, &format!("COUNT {segment}")) else {
        panic!()
    };
    assert_eq!(total, all, "{segment}");
    assert_eq!(lines.iter().map(|l| l.count).sum::<u64>(), all, "{segment}");
    for line in lines {
        let test = match &line.value {
            Some(v) => format!("city = '{v}'"),
            None => "city IS NULL".to_string(),
        };
        let Output::Count(n) = one(db, &format!("COUNT ({segment}) AND {test}")) else {
            panic!()
        };
        assert_eq!(line.count, n, "{segment}: {test}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn sparse_breakdowns_equal_counts_per_value(seed in 0u64..1000, seg in segment()) {
        breakdown_matches_counts(&database(300, seed), &seg);
    }
}

#[test]
fn dense_breakdowns_equal_counts_per_value() {
    // 9,000 members in one chunk: bitset containers, the value bitmaps' path
    let db = database(9_000, 11);
    for segment in [
        "ALL",
        "level >= 2",
        "NOT TAG 'vip'",
        "city IS NULL OR level = 1",
    ] {
        breakdown_matches_counts(&db, segment);
    }
}

/// The members `entries` leave after replaying them on `start`.
fn replayed(
    start: &[String],
    entries: &[crate::ChangeEntry],
) -> std::collections::BTreeSet<String> {
    let mut members: std::collections::BTreeSet<String> = start.iter().cloned().collect();
    for e in entries {
        match e.op {
            crate::ChangeOp::Enter => assert!(members.insert(e.member_id.clone()), "{e:?}"),
            crate::ChangeOp::Exit => assert!(members.remove(&e.member_id), "{e:?}"),
        }
    }
    members
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// A scoped user's view of a group's stream, replayed on its snapshot, is the admin's
    /// `IN GROUP g AND (<scope>)` after every write; read in small pieces it is the same;
    /// a member moving out of the scope while in the group is an exit with cause `scope`.
    #[test]
    fn group_streams_follow_the_scope_law(seed in 0u64..1000, scope in scope(), writes in 1usize..40) {
        use rand::SeedableRng;
        let db = database(60, seed);
        one(&db, "DEFINE GROUP g AS TAG 'vip' OR level >= 3");
        let session = db.session(access(&[role("store", &[Command::Read], &scope, &[])]));
        let (start_id, start) = session.group_snapshot("g").unwrap();
        let admin_scope = if scope.contains("no_such") { "NOT ALL".to_string() } else { scope.clone() };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..writes {
            let id = format!("M{}", rng.random_range(0..60));
            match rng.random_range(0..4) {
                0 => db.add_tags(&id, &["vip"]).unwrap(),
                1 => db.remove_tags(&id, &["vip"]).unwrap(),
                2 => db.upsert_member(&id, &[("home_store", Some(Value::from(["S1", "S2"][rng.random_range(0..2)])))]).unwrap(),
                _ => db.upsert_member(&id, &[("level", Some(Value::Int(rng.random_range(1..5))))]).unwrap(),
            }
            let entries = session.changes("g", start_id, usize::MAX).unwrap();
            let Output::Find(expected) = one(&db, &format!("FIND IN GROUP g AND ({admin_scope}) LIMIT 100000")) else {
                panic!("a FIND")
            };
            let expected: std::collections::BTreeSet<String> =
                expected.rows.into_iter().map(|r| r.member_id).collect();
            prop_assert_eq!(replayed(&start, &entries), expected);
            // Read three at a time from the last id: the same entries.
            let mut pieces = Vec::new();
            let mut after = start_id;
            loop {
                let piece = session.changes("g", after, 3).unwrap();
                let Some(last) = piece.last() else { break };
                after = last.id;
                pieces.extend(piece);
            }
            prop_assert_eq!(&pieces, &entries);
            prop_assert!(entries.windows(2).all(|w| w[0].id < w[1].id));
            let range = session
                .change_range("g", crate::EntryId::ZERO, crate::EntryId::new(u64::MAX, u32::MAX), 100_000, false)
                .unwrap();
            prop_assert_eq!(&range, &entries);
        }
    }
}

#[test]
fn a_member_leaving_the_scope_while_in_the_group_exits_with_cause_scope() {
    let db = Database::in_memory();
    db.upsert_member("M1", &[("home_store", Some(Value::from("S1")))])
        .unwrap();
    db.add_tags("M1", &["vip"]).unwrap();
    one(&db, "DEFINE GROUP g AS TAG 'vip'");
    let session = db.session(access(&[role(
        "store",
        &[Command::Read],
        "home_store = 'S1'",
        &[],
    )]));
    let (id, members) = session.group_snapshot("g").unwrap();
    assert_eq!(members, ["M1"]);
    db.upsert_member("M1", &[("home_store", Some(Value::from("S2")))])
        .unwrap();
    db.upsert_member("M2", &[("home_store", Some(Value::from("S1")))])
        .unwrap();
    db.add_tags("M2", &["vip"]).unwrap();
    let entries = session.changes("g", id, 10).unwrap();
    let got: Vec<(&str, crate::ChangeOp, crate::ChangeCause)> = entries
        .iter()
        .map(|e| (e.member_id.as_str(), e.op, e.cause))
        .collect();
    assert_eq!(
        got,
        [
            ("M1", crate::ChangeOp::Exit, crate::ChangeCause::Scope),
            ("M2", crate::ChangeOp::Enter, crate::ChangeCause::Write)
        ]
    );
    // An admin's stream has only M2's enter (M1 is still in g).
    let admin: Vec<_> = db.changes("g", crate::EntryId::ZERO).unwrap().collect();
    assert_eq!(admin.len(), 1);
    // Reading from before the scope's history began is refused, with the id to start at.
    let err = session
        .changes("g", crate::EntryId::ZERO, 10)
        .unwrap_err()
        .to_string();
    assert!(err.contains("take a GROUP.SNAPSHOT"), "{err}");
}

#[test]
fn identity_reads_stay_inside_the_scope_and_refuse_masked_types() {
    let db = Database::in_memory();
    db.define_identifier(crate::IdentifierDef {
        name: "wechat".into(),
        limit: 3,
        priority: 1,
        blocked: vec![],
    })
    .unwrap();
    db.upsert_member("M1", &[("home_store", Some(Value::from("S1")))])
        .unwrap();
    db.upsert_member("M2", &[("home_store", Some(Value::from("S2")))])
        .unwrap();
    db.link(Some("M1"), &[("wechat", "w1")]).unwrap();
    db.link(Some("M2"), &[("wechat", "w2")]).unwrap();
    let store = db.session(access(&[role(
        "s1",
        &[Command::Read],
        "home_store = 'S1'",
        &[],
    )]));
    assert_eq!(
        store.lookup_identifier("wechat", "w1").unwrap().as_deref(),
        Some("M1")
    );
    // outside the scope reads as no member, like an unknown value
    assert_eq!(store.lookup_identifier("wechat", "w2").unwrap(), None);
    assert_eq!(store.lookup_identifier("wechat", "nobody").unwrap(), None);
    assert_eq!(store.member_history("M1").unwrap().len(), 1);
    let outside = store.member_history("M2").unwrap_err().to_string();
    let unknown = store.member_history("M9").unwrap_err().to_string();
    assert_eq!(outside.replace("M2", "?"), unknown.replace("M9", "?"));
    // a masked identifier type is not looked up by value, nor shown in histories
    let masked = db.session(access(&[role(
        "cs",
        &[Command::Read],
        "ALL",
        &[("wechat", "hash")],
    )]));
    assert!(matches!(
        masked.lookup_identifier("wechat", "w1"),
        Err(crate::Error::NoPermission(_))
    ));
    assert!(matches!(
        masked.member_history("M1"),
        Err(crate::Error::NoPermission(_))
    ));
}

#[test]
fn a_scoped_users_consumer_groups_deliver_its_view_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    for (m, store) in [("M1", "S1"), ("M2", "S1"), ("M3", "S2")] {
        db.upsert_member(m, &[("home_store", Some(Value::from(store)))])
            .unwrap();
        db.add_tags(m, &["vip"]).unwrap();
    }
    one(&db, "DEFINE GROUP g AS TAG 'vip'");
    let writer = role(
        "s1",
        &[Command::Read, Command::Write],
        "home_store = 'S1'",
        &[],
    );
    let store = db.session(access(std::slice::from_ref(&writer)));
    store.create_consumer_group("g", "crm", None).unwrap();
    // The admin's group of the same name is another one.
    db.create_consumer_group("g", "crm", None).unwrap();
    db.remove_tags("M2", &["vip"]).unwrap(); // leaves g inside S1: cause write
    db.upsert_member("M1", &[("home_store", Some(Value::from("S2")))])
        .unwrap(); // leaves S1
    db.remove_tags("M3", &["vip"]).unwrap(); // outside S1: not the store's
    let got = store.read_group("g", "crm", "c1", 10).unwrap();
    let seen: Vec<(&str, crate::ChangeOp, crate::ChangeCause)> = got
        .iter()
        .map(|e| (e.member_id.as_str(), e.op, e.cause))
        .collect();
    assert_eq!(
        seen,
        [
            ("M2", crate::ChangeOp::Exit, crate::ChangeCause::Write),
            ("M1", crate::ChangeOp::Exit, crate::ChangeCause::Scope)
        ]
    );
    assert_eq!(store.read_group("g", "crm", "c1", 10).unwrap(), []);
    let admin: Vec<String> = db
        .read_group("g", "crm", "a", 10)
        .unwrap()
        .into_iter()
        .map(|e| e.member_id)
        .collect();
    assert_eq!(admin, ["M2", "M3"]);
    let all = (
        crate::EntryId::ZERO,
        crate::EntryId::new(u64::MAX, u32::MAX),
    );
    assert_eq!(store.pending("g", "crm", all, 10, None).unwrap().len(), 2);
    assert_eq!(store.acknowledge("g", "crm", &[got[0].id]).unwrap(), 1);
    // Reopened: the view's consumer group and its pending entry are kept.
    drop(store);
    db.close().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let store = db.session(access(&[writer]));
    let pending = store
        .pending_for("g", "crm", "c1", crate::EntryId::ZERO, 10)
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].member_id.as_str(), pending[0].cause),
        ("M1", crate::ChangeCause::Scope)
    );
    // A reader without write may not take a consumer group.
    let reader = db.session(access(&[role(
        "r",
        &[Command::Read],
        "home_store = 'S1'",
        &[],
    )]));
    assert!(matches!(
        reader.create_consumer_group("g", "x", None),
        Err(crate::Error::NoPermission(_))
    ));
}
