//! The embedder's API: names, errors, groups, FIND, BREAKDOWN, tags.

use std::sync::Arc;

use arrow_array::{ArrayRef, StringArray};
use memberdb::{Database, Error, FindOptions, PropFilter, Segment, TimeUnit, Timestamp, Value};

use crate::support::batch;

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn sample() -> Database {
    let db = Database::in_memory();
    let rows: [(&str, Option<&str>, Option<i64>); 6] = [
        ("M1", Some("Shanghai"), Some(1200)),
        ("M2", Some("Shanghai"), Some(50)),
        ("M3", Some("Beijing"), None),
        ("M4", None, Some(3000)),
        ("M5", Some("Chengdu"), Some(10)),
        ("M6", Some("Shanghai"), Some(700)),
    ];
    for (id, city, points) in rows {
        db.upsert_member(
            id,
            &[
                ("city", city.map(Value::from)),
                ("points", points.map(Value::Int)),
            ],
        )
        .unwrap();
    }
    db.add_tags("M1", &["vip"]).unwrap();
    db.add_tags("M4", &["vip", "churn_risk"]).unwrap();
    db.add_tags("M6", &["vip"]).unwrap();
    for (id, event, t, coupon) in [
        ("M1", "claim_coupon", "2026-10-20T10:00:00Z", "XMAS"),
        ("M1", "redeem_coupon", "2026-10-22T10:00:00Z", "XMAS"),
        ("M2", "claim_coupon", "2026-10-25T10:00:00Z", "XMAS"),
        ("M6", "claim_coupon", "2026-10-31T23:00:00Z", "XMAS"),
    ] {
        db.add_event(
            id,
            event,
            ts(t),
            &[("coupon_id", Some(Value::from(coupon)))],
        )
        .unwrap();
    }
    db
}

#[test]
fn unknown_names_suggest_the_closest() {
    let db = sample();
    let err = db.count(&Segment::attr("ctiy").eq("Shanghai")).unwrap_err();
    assert!(matches!(
        &err,
        Error::UnknownName {
            kind: "attribute",
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "unknown attribute 'ctiy'; did you mean 'city'?"
    );
    let err = db.count(&Segment::tag("vipp")).unwrap_err().to_string();
    assert!(
        err.contains("unknown tag 'vipp'") && err.contains("'vip'"),
        "{err}"
    );
    let err = db
        .count(&Segment::did("claim").build())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown event 'claim'") && err.contains("claim_coupon"),
        "{err}"
    );
    let filter = PropFilter::prop("coupon").eq("XMAS");
    let err = db
        .count(&Segment::did("claim_coupon").filter(filter).build())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown event property 'coupon'") && err.contains("coupon_id"),
        "{err}"
    );
    let err = db
        .count(&Segment::in_group("nope"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown group 'nope'"), "{err}");
    let err = db
        .count(&Segment::attr("points").eq("lots"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("'points' is of type integer"), "{err}");
}

#[test]
fn coupon_journey_question() {
    let db = sample();
    let now = db.as_of(ts("2026-11-01T00:00:00Z"));
    // claimed AND NOT redeemed AND lives in Shanghai
    let q = Segment::did("claim_coupon")
        .and(!Segment::did("redeem_coupon"))
        .and(Segment::attr("city").eq("Shanghai"));
    assert_eq!(now.count(&q).unwrap(), 2);
    // the last day only: M6 (23:00 on the 31st)
    assert_eq!(
        now.count(
            &Segment::did("claim_coupon")
                .in_last(1, TimeUnit::Days)
                .build()
        )
        .unwrap(),
        1
    );
    // IN LAST excludes its start: 23:00 is exactly one hour before now
    assert_eq!(
        now.count(
            &Segment::did("claim_coupon")
                .in_last(1, TimeUnit::Hours)
                .build()
        )
        .unwrap(),
        0
    );
    assert_eq!(
        now.count(
            &Segment::did("claim_coupon")
                .in_last(2, TimeUnit::Hours)
                .build()
        )
        .unwrap(),
        1
    );
    // ...and includes now itself
    let at_claim = db.as_of(ts("2026-10-31T23:00:00Z"));
    assert_eq!(
        at_claim
            .count(
                &Segment::did("claim_coupon")
                    .in_last(1, TimeUnit::Hours)
                    .build()
            )
            .unwrap(),
        1
    );
}

#[test]
fn null_semantics() {
    let db = sample();
    // != leaves out members without a city, NOT = keeps them
    assert_eq!(db.count(&Segment::attr("city").ne("Shanghai")).unwrap(), 2);
    assert_eq!(db.count(&!Segment::attr("city").eq("Shanghai")).unwrap(), 3);
    assert_eq!(db.count(&Segment::attr("city").is_null()).unwrap(), 1);
    assert_eq!(db.count(&Segment::attr("points").lt(100)).unwrap(), 2);
    assert_eq!(db.count(&!Segment::attr("points").ge(100)).unwrap(), 3);
}

#[test]
fn find_pages_in_a_stable_order_and_exports_arrow() {
    let db = sample();
    let all = Segment::all();
    let options = FindOptions {
        columns: vec!["city".into(), "points".into()],
        limit: Some(2),
        offset: 1,
    };
    let found = db.find(&all, &options).unwrap();
    assert_eq!(found.total, 6);
    assert_eq!(found.columns, vec!["member_id", "city", "points"]);
    let ids: Vec<&str> = found.rows.iter().map(|r| r.member_id.as_str()).collect();
    assert_eq!(ids, vec!["M2", "M3"]);
    assert_eq!(
        found.rows[1].values,
        vec![Some(Value::from("Beijing")), None]
    );
    let batch = found.to_record_batch().unwrap();
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(batch.num_columns(), 3);
    let err = db
        .find(
            &all,
            &FindOptions {
                columns: vec!["pionts".into()],
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("did you mean 'points'"), "{err}");
}

#[test]
fn breakdown_counts_nulls_and_adds_up() {
    let db = sample();
    let rows = db.breakdown(&Segment::all(), "city", None).unwrap();
    let as_pairs: Vec<(Option<Value>, u64)> =
        rows.iter().map(|r| (r.value.clone(), r.count)).collect();
    assert_eq!(
        as_pairs,
        vec![
            (Some(Value::from("Shanghai")), 3),
            (Some(Value::from("Beijing")), 1),
            (Some(Value::from("Chengdu")), 1),
            (None, 1),
        ]
    );
    let top = db
        .breakdown(&Segment::tag("vip"), "points", Some(2))
        .unwrap();
    assert_eq!(top.len(), 2);
    assert_eq!(top.iter().map(|r| r.count).sum::<u64>(), 2);
    let total: u64 = db
        .breakdown(&Segment::tag("vip"), "city", None)
        .unwrap()
        .iter()
        .map(|r| r.count)
        .sum();
    assert_eq!(total, 3);
}

#[test]
fn groups_stay_current_and_protect_their_users() {
    let db = sample();
    let size = db
        .define_group(
            "shanghai_vip",
            Segment::tag("vip").and(Segment::attr("city").eq("Shanghai")),
        )
        .unwrap();
    assert_eq!(size, 2);
    db.define_group(
        "reminder",
        Segment::in_group("shanghai_vip").and(!Segment::did("redeem_coupon")),
    )
    .unwrap();
    assert_eq!(db.count(&Segment::in_group("reminder")).unwrap(), 1);
    // data changes move the groups
    db.upsert_member("M2", &[("city", Some(Value::from("Shanghai")))])
        .unwrap();
    db.add_tags("M2", &["vip"]).unwrap();
    assert_eq!(db.count(&Segment::in_group("shanghai_vip")).unwrap(), 3);
    assert_eq!(db.count(&Segment::in_group("reminder")).unwrap(), 2);
    db.add_event("M2", "redeem_coupon", ts("2026-10-30T00:00:00Z"), &[])
        .unwrap();
    assert_eq!(db.count(&Segment::in_group("reminder")).unwrap(), 1);
    // conflicts
    let err = db.drop_group("shanghai_vip").unwrap_err().to_string();
    assert!(err.contains("used by group 'reminder'"), "{err}");
    assert!(db.define_group("reminder", Segment::all()).is_err());
    assert!(db.define_group("bad", Segment::tag("nope")).is_err());
    assert!(
        db.groups().iter().all(|g| g.name != "bad"),
        "a failed definition is not kept"
    );
    db.drop_group("reminder").unwrap();
    db.drop_group("shanghai_vip").unwrap();
    assert!(db.groups().is_empty());
}

#[test]
fn time_dependent_groups_follow_now() {
    let db = sample();
    db.define_group(
        "recent_claim",
        Segment::did("claim_coupon")
            .in_last(7, TimeUnit::Days)
            .build(),
    )
    .unwrap();
    let at = |t: &str| {
        db.as_of(ts(t))
            .count(&Segment::in_group("recent_claim"))
            .unwrap()
    };
    assert_eq!(at("2026-11-01T00:00:00Z"), 2); // M2 (10-25), M6 (10-31)
    assert_eq!(at("2026-10-30T00:00:00Z"), 1); // M2
    assert_eq!(at("2026-10-26T00:00:00Z"), 2); // M1 (10-20), M2
}

#[test]
fn tags_in_bulk_and_one_by_one() {
    let db = sample();
    let pairs = batch(vec![
        (
            "member_id",
            Arc::new(StringArray::from(vec!["M1", "M4", "M99"])) as ArrayRef,
        ),
        (
            "tag",
            Arc::new(StringArray::from(vec!["vip", "vip", "vip"])),
        ),
    ]);
    let removed = db.unload_tags(&[pairs]).unwrap();
    assert_eq!(removed.rows, 2);
    assert_eq!(db.count(&Segment::tag("vip")).unwrap(), 1);
    assert!(db.member("M99").is_none(), "removal never creates members");
    db.remove_tags("M6", &["vip"]).unwrap();
    assert_eq!(
        db.count(&Segment::tag("vip")).unwrap(),
        0,
        "the tag stays known when empty"
    );
    assert_eq!(db.member("M4").unwrap().tags, vec!["churn_risk"]);
}

#[test]
fn upsert_refuses_values_of_the_wrong_type_atomically() {
    let db = sample();
    let err = db
        .upsert_member(
            "M1",
            &[
                ("city", Some(Value::from("Paris"))),
                ("points", Some(Value::from("many"))),
            ],
        )
        .unwrap_err();
    assert!(err.to_string().contains("points"), "{err}");
    let m1 = db.member("M1").unwrap();
    assert!(
        m1.attributes
            .contains(&("city".to_string(), Value::from("Shanghai")))
    );
}

#[test]
fn exclusive_tag_groups_keep_the_last_tag_in_bulk_and_survive_a_save() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.declare_exclusive_tags("lifecycle", &["new", "active", "dormant"])
        .unwrap();
    let pairs = batch(vec![
        (
            "member_id",
            Arc::new(StringArray::from(vec!["M1", "M1", "M2", "M1"])) as ArrayRef,
        ),
        (
            "tag",
            Arc::new(StringArray::from(vec![
                "new", "active", "dormant", "dormant",
            ])),
        ),
    ]);
    db.load_tags(&[pairs]).unwrap();
    assert_eq!(db.member("M1").unwrap().tags, vec!["dormant"]);
    db.add_tags("M2", &["active"]).unwrap();
    assert_eq!(db.member("M2").unwrap().tags, vec!["active"]);
    db.save().unwrap();
    let groups = db.exclusive_tag_groups();
    drop(db);
    let reopened = Database::open(dir.path()).unwrap();
    assert_eq!(reopened.exclusive_tag_groups(), groups);
    reopened.add_tags("M1", &["new"]).unwrap();
    assert_eq!(reopened.member("M1").unwrap().tags, vec!["new"]);
}

/// An answer cache keyed by the engine's bound-plan keys, counting what it is asked.
#[derive(Default)]
struct MapCache {
    map: std::sync::Mutex<std::collections::HashMap<(String, u64), memberdb::query::Output>>,
}

impl memberdb::query::AnswerCache for MapCache {
    fn get(&self, key: &str, version: u64) -> Option<memberdb::query::Output> {
        let map = self.map.lock().unwrap();
        map.get(&(key.to_string(), version)).cloned()
    }
    fn put(&self, key: &str, version: u64, output: &memberdb::query::Output) {
        let mut map = self.map.lock().unwrap();
        map.insert((key.to_string(), version), output.clone());
    }
}

/// The cache key is the bound plan: text variants share an entry, windows that select
/// other events (at another now, or over other days) never do, and every answer through
/// the cache equals the answer without it.
#[test]
fn answers_through_a_cache_keyed_on_the_plan_equal_answers_without_it() {
    let db = sample();
    let cache = Arc::new(MapCache::default());
    let statements = [
        "COUNT TAG 'vip' AND city = 'Shanghai'",
        "count city = 'Shanghai'   AND TAG 'vip' -- the same plan",
        "COUNT DID claim_coupon IN LAST 1 DAYS",
        "COUNT DID claim_coupon IN LAST 3 DAYS",
        "COUNT DID claim_coupon IN LAST 10 DAYS AND NOT DID redeem_coupon IN LAST 10 DAYS",
        "COUNT DID claim_coupon IN LAST 30 HOURS",
        "BREAKDOWN DID claim_coupon IN LAST 10 DAYS BY city",
        "BREAKDOWN DID claim_coupon IN LAST 10 DAYS BY city TOP 1",
    ];
    let nows = [
        "2026-10-21T00:00:00Z",
        "2026-10-25T09:00:00Z",
        "2026-10-25T11:00:00Z",
        "2026-10-26T00:00:00Z",
        "2026-11-01T00:00:00Z",
    ];
    for round in 0..2 {
        for now in nows {
            for text in statements {
                let statement = memberdb::query::parse_statement(text).unwrap();
                let plain = db.run(&statement, Some(ts(now))).unwrap();
                let options = memberdb::query::RunOptions {
                    now: Some(ts(now)),
                    cache: Some(memberdb::query::Cache(cache.clone())),
                    ..Default::default()
                };
                let through = db.run_with(&statement, &options).unwrap();
                assert_eq!(through, plain, "{text} at {now}, round {round}");
            }
        }
    }
    let keys = cache.map.lock().unwrap().len();
    // the two spellings of the first statement share one key
    assert!(keys < statements.len() * nows.len(), "{keys} keys");
    assert!(
        keys > statements.len(),
        "windows at other nows got keys of their own: {keys}"
    );
}

/// `WITHIN ANY n`: intervals `[t, t + n)`, so events exactly n apart are never in one; the
/// scalper rule (distinct cities within any 3 days); tests other than `>=` / `>` refused.
#[test]
fn within_any_takes_half_open_intervals() {
    let db = Database::in_memory();
    let day = 86_400_000_000i64;
    let t0 = ts("2026-10-01T00:00:00Z").micros();
    let city = |c: &str| [("city", Some(Value::from(c)))];
    // M1: Shanghai then Beijing exactly 3 days later: never two cities within 3 days
    db.add_event("M1", "join_campaign", Timestamp(t0), &city("Shanghai"))
        .unwrap();
    db.add_event(
        "M1",
        "join_campaign",
        Timestamp(t0 + 3 * day),
        &city("Beijing"),
    )
    .unwrap();
    // M2: the same a microsecond sooner: two cities within 3 days
    db.add_event("M2", "join_campaign", Timestamp(t0), &city("Shanghai"))
        .unwrap();
    db.add_event(
        "M2",
        "join_campaign",
        Timestamp(t0 + 3 * day - 1),
        &city("Beijing"),
    )
    .unwrap();
    // M3: three events in Shanghai within an hour: one city, three joins
    for k in 0..3 {
        db.add_event(
            "M3",
            "join_campaign",
            Timestamp(t0 + k * 1000),
            &city("Shanghai"),
        )
        .unwrap();
    }
    let ids = |text: &str| -> Vec<String> {
        let found = db.execute(&format!("FIND {text} AS OF '2026-11-01T00:00:00Z'"), None);
        match found.unwrap().pop() {
            Some(memberdb::query::Output::Find(f)) => {
                f.rows.into_iter().map(|r| r.member_id).collect()
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        ids("COUNT(DISTINCT city OF join_campaign WITHIN ANY 3 DAYS) >= 2"),
        ["M2"]
    );
    assert_eq!(
        ids("COUNT(join_campaign WITHIN ANY 3 DAYS) >= 2"),
        ["M2", "M3"]
    );
    assert_eq!(ids("COUNT(join_campaign WITHIN ANY 1 HOURS) > 2"), ["M3"]);
    assert_eq!(
        ids("COUNT(DISTINCT DAYS OF join_campaign WITHIN ANY 4 DAYS) >= 2"),
        ["M1", "M2"]
    );
    // at least 0: everyone, a member without events too
    db.upsert_member("M4", &[("city", Some(Value::from("Xi'an")))])
        .unwrap();
    assert_eq!(ids("COUNT(join_campaign WITHIN ANY 3 DAYS) >= 0").len(), 4);
    for refused in [
        "COUNT(join_campaign WITHIN ANY 3 DAYS) <= 1",
        "COUNT(join_campaign WITHIN ANY 3 DAYS) = 1",
        "BUCKET(COUNT(join_campaign WITHIN ANY 3 DAYS), 1, 2) = 1",
        "SUM(amount OF join_campaign WITHIN ANY 3 DAYS) >= 1",
        "COUNT(join_campaign WITHIN ANY 0 DAYS) >= 1",
    ] {
        let e = db.execute(&format!("COUNT {refused}"), None).unwrap_err();
        assert!(e.to_string().contains("WITHIN ANY"), "{refused}: {e}");
    }
    let e = db
        .execute("COUNT COUNT(join_campaign WITHIN ANY 3 DAYS) <= 1", None)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("NOT (COUNT(... WITHIN ANY ...) > n)"),
        "{e}"
    );
}

/// A group may use values over windows (they move as events enter and leave), not yet
/// `DAYS SINCE` (each member would move at an instant of its own); a group of a sum stays
/// current as events arrive.
#[test]
fn groups_of_values() {
    let db = Database::in_memory();
    let now = ts("2026-11-01T00:00:00Z");
    db.add_event(
        "M1",
        "purchase",
        now,
        &[("amount", Some(Value::Float(600.0)))],
    )
    .unwrap();
    db.execute(
        "DEFINE GROUP big AS SUM(amount OF purchase) >= 1000; \
         DEFINE GROUP light AS SUM(amount OF purchase) < 1000",
        None,
    )
    .unwrap();
    let count = |g: &str| db.as_of(now).count(&Segment::in_group(g)).unwrap();
    assert_eq!((count("big"), count("light")), (0, 1));
    db.add_event(
        "M1",
        "purchase",
        now,
        &[("amount", Some(Value::Float(500.0)))],
    )
    .unwrap();
    db.upsert_member("M2", &[("city", Some(Value::from("Beijing")))])
        .unwrap();
    // M1 moved up; M2, who bought nothing, spent 0: light
    assert_eq!((count("big"), count("light")), (1, 1));
}

/// BREAKDOWN by several columns and by values: each line's count is the COUNT of the
/// segment with those values (NULL as IS NULL), and the lines add up to the segment.
#[test]
fn breakdown_by_values_and_several_columns_adds_up() {
    let db = sample();
    let now = ts("2026-11-01T00:00:00Z");
    let day = 86_400_000_000i64;
    for (k, m) in ["M1", "M2", "M3", "M1", "M5", "M1", "M2"]
        .iter()
        .enumerate()
    {
        let amount = [("amount", Some(Value::Float(100.0 * (k as f64 + 1.0))))];
        db.add_event(
            m,
            "purchase",
            Timestamp(now.micros() - k as i64 * 40 * day),
            &amount,
        )
        .unwrap();
    }
    let columns = [
        "BUCKET(COUNT(purchase), 1, 2)",
        "city",
        "BUCKET(DAYS SINCE LAST(purchase), 30, 100)",
    ];
    let text = format!(
        "BREAKDOWN ALL BY {} AS OF '2026-11-01T00:00:00Z'",
        columns.join(", ")
    );
    let Some(memberdb::query::Output::Breakdown {
        lines,
        total,
        columns: names,
        ..
    }) = db.execute(&text, None).unwrap().pop()
    else {
        panic!("a breakdown")
    };
    assert_eq!(names, columns);
    assert_eq!(lines.iter().map(|l| l.count).sum::<u64>(), total);
    assert!(lines.len() > 3, "{lines:?}");
    for line in &lines {
        let values = std::iter::once(&line.value).chain(&line.more);
        let tests: Vec<String> = columns
            .iter()
            .zip(values)
            .map(|(c, v)| match v {
                None => format!("{c} IS NULL"),
                Some(Value::Str(s)) => format!("{c} = '{s}'"),
                Some(v) => format!("{c} = {v}"),
            })
            .collect();
        let count = format!("COUNT {} AS OF '2026-11-01T00:00:00Z'", tests.join(" AND "));
        match db.execute(&count, None).unwrap().pop() {
            Some(memberdb::query::Output::Count(n)) => assert_eq!(n, line.count, "{count}"),
            other => panic!("{other:?}"),
        }
    }
}

/// Sums and averages over more members than one chunk of the dense fold (65,536) take the
/// bucketed path; they equal sums computed here, NULL amounts skipped.
#[test]
fn sums_over_many_members_equal_a_plain_sum() {
    use arrow_array::{Float64Array, TimestampMicrosecondArray};
    let members = 140_000usize;
    let now = ts("2026-11-01T00:00:00Z").micros();
    let day = 86_400_000_000i64;
    let (mut ids, mut times, mut amounts) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..3 * members {
        let m = (k * 7919) % members;
        ids.push(format!("M{m}"));
        // some outside a 30-day window, some in the future
        times.push(now - (k as i64 % 40) * day + (k as i64 % 3));
        amounts.push((k % 11 != 0).then_some((k % 13) as f64 * 10.5));
    }
    let db = Database::in_memory();
    db.load_events(&[batch(vec![
        (
            "member_id",
            Arc::new(StringArray::from(ids.clone())) as ArrayRef,
        ),
        (
            "event",
            Arc::new(StringArray::from(vec!["purchase"; ids.len()])),
        ),
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(times.clone()).with_timezone("UTC")),
        ),
        ("amount", Arc::new(Float64Array::from(amounts.clone()))),
    ])])
    .unwrap();
    let mut sums = std::collections::HashMap::<&str, (f64, u32)>::new();
    for k in 0..ids.len() {
        let inside = now - 30 * day < times[k] && times[k] <= now;
        if let (true, Some(a)) = (inside, amounts[k]) {
            let e = sums.entry(ids[k].as_str()).or_default();
            e.0 += a;
            e.1 += 1;
        }
    }
    let view = db.as_of(Timestamp(now));
    for threshold in [0.0, 100.0, 250.0] {
        let expected = sums.values().filter(|(s, _)| *s >= threshold).count() as u64
            + if threshold <= 0.0 {
                (members - sums.len()) as u64
            } else {
                0
            };
        let text = format!("COUNT SUM(amount OF purchase IN LAST 30 DAYS) >= {threshold}");
        assert_eq!(
            db.execute(&text, Some(Timestamp(now))).unwrap()[0],
            memberdb::query::Output::Count(expected),
            "{text}"
        );
        let avg = sums
            .values()
            .filter(|(s, n)| s / f64::from(*n) >= threshold / 4.0)
            .count() as u64;
        let segment = Segment::value(
            memberdb::ValueExpr::avg("amount")
                .of("purchase")
                .in_last(30, TimeUnit::Days)
                .build(),
        )
        .ge(threshold / 4.0);
        assert_eq!(
            view.count(&segment).unwrap(),
            avg,
            "AVG >= {}",
            threshold / 4.0
        );
    }
}
