//! Save and open: a database comes back answering exactly as before.

use memberdb::datagen::{GenConfig, generate};

use crate::support::open_read_only;
use memberdb::{Database, FindOptions, InputKind, PropFilter, Segment, TimeUnit, Timestamp, Value};

fn questions() -> Vec<Segment> {
    vec![
        Segment::all(),
        Segment::tag("vip")
            .and(!Segment::tag("churn_risk"))
            .and(Segment::attr("city").eq("Shanghai")),
        Segment::did("claim_coupon").and(!Segment::did("redeem_coupon")),
        Segment::did("purchase")
            .in_last(30, TimeUnit::Days)
            .and(Segment::attr("level").is_in(["gold", "platinum"])),
        Segment::did("purchase")
            .at_least(3)
            .in_last(90, TimeUnit::Days)
            .build(),
        Segment::did("purchase")
            .filter(PropFilter::prop("amount").ge(500))
            .in_last(365, TimeUnit::Days)
            .and(Segment::attr("points").between(1000, 5000)),
        Segment::attr("birthday")
            .is_null()
            .or(Segment::attr("joined_at").ge("2025-01-01")),
        Segment::in_group("big_spenders"),
    ]
}

#[test]
fn save_and_open_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let end = Timestamp::parse("2026-11-01").unwrap();
    generate(
        &GenConfig {
            members: 3000,
            days: 200,
            seed: 3,
            end,
        },
        &data,
        &mut |_| {},
    )
    .unwrap();

    let db_dir = dir.path().join("db");
    let db = Database::open(&db_dir).unwrap();
    db.load_file(InputKind::Members, data.join("members.parquet"))
        .unwrap();
    db.load_file(InputKind::Events, data.join("events.parquet"))
        .unwrap();
    db.load_file(InputKind::Tags, data.join("tags.parquet"))
        .unwrap();
    db.define_group("big_spenders", Segment::attr("lifetime_spend").gt(2000.0))
        .unwrap();
    db.upsert_member("NEW1", &[("city", Some(Value::from("Shanghai")))])
        .unwrap();
    db.add_tags("NEW1", &["vip"]).unwrap();
    db.save().unwrap();

    let reopened = open_read_only(&db_dir);
    assert_eq!(reopened.member_count(), db.member_count());
    assert_eq!(reopened.event_count(), db.event_count());
    assert_eq!(reopened.attributes(), db.attributes());
    assert_eq!(reopened.tags(), db.tags());
    assert_eq!(reopened.event_types(), db.event_types());
    assert_eq!(reopened.groups(), db.groups());
    let (a, b) = (db.as_of(end), reopened.as_of(end));
    for q in questions() {
        assert_eq!(a.count(&q).unwrap(), b.count(&q).unwrap(), "{q:?}");
        let options = FindOptions {
            columns: vec!["city".into(), "points".into(), "birthday".into()],
            limit: Some(50),
            offset: 10,
        };
        assert_eq!(a.find(&q, &options).unwrap(), b.find(&q, &options).unwrap());
        assert_eq!(
            a.breakdown(&q, "city", None).unwrap(),
            b.breakdown(&q, "city", None).unwrap()
        );
    }
    assert_eq!(reopened.member("NEW1"), db.member("NEW1"));

    // A checkpoint replaces the files of the generation before it.
    drop(a);
    drop(b);
    drop(db);
    drop(reopened);
    let reopened = Database::open(&db_dir).unwrap();
    reopened.checkpoint().unwrap();
    let files: Vec<String> = std::fs::read_dir(&db_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    // generation 1 was the empty database, 2 the save above, 3 this checkpoint
    assert!(
        files.contains(&"members-3.parquet".to_string()),
        "{files:?}"
    );
    assert!(
        !files.iter().any(|f| f.contains("-1.") || f.contains("-2.")),
        "old generations removed: {files:?}"
    );
}

#[test]
fn saved_files_are_plain_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.upsert_member(
        "M1",
        &[
            ("city", Some(Value::from("Shanghai"))),
            ("points", Some(Value::Int(7))),
        ],
    )
    .unwrap();
    db.add_event(
        "M1",
        "purchase",
        Timestamp::parse("2026-01-01").unwrap(),
        &[("amount", Some(Value::Float(9.5)))],
    )
    .unwrap();
    db.save().unwrap();
    let rows = memberdb::read_batches(&dir.path().join("events-2.parquet")).unwrap();
    let schema = rows[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        vec!["member_id", "event", "ts", "member_row", "amount"]
    );
    let members = memberdb::read_batches(&dir.path().join("members-2.parquet")).unwrap();
    assert_eq!(members[0].num_rows(), 1);
}

#[test]
fn a_corrupt_manifest_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.json"), "{not json").unwrap();
    let err = Database::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("manifest.json"), "{err}");
}

/// A database with events of two types, saved; returns its directory.
fn saved_with_events() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    for (i, event) in ["purchase", "claim_coupon", "purchase"].iter().enumerate() {
        let at = Timestamp::parse(&format!("2026-01-0{}T10:00:00Z", i + 1)).unwrap();
        db.add_event(
            &format!("M{i}"),
            event,
            at,
            &[("amount", Some(Value::Float(1.5)))],
        )
        .unwrap();
    }
    db.save().unwrap();
    (dir, db)
}

fn edit_manifest(dir: &std::path::Path, edit: impl Fn(&mut serde_json::Value)) {
    let path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut manifest);
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
}

#[test]
fn a_database_without_saved_event_indexes_is_reingested() {
    let (dir, db) = saved_with_events();
    // As written before the events file carried member rows and day bitmaps.
    edit_manifest(dir.path(), |m| {
        m.as_object_mut().unwrap().remove("event_bitmaps_file");
        m.as_object_mut().unwrap().remove("event_runs");
    });
    let reopened = open_read_only(dir.path());
    let now = Timestamp::parse("2026-01-05T00:00:00Z").unwrap();
    for segment in [
        Segment::did("purchase").in_last(3, TimeUnit::Days).build(),
        Segment::did("claim_coupon").build(),
    ] {
        assert_eq!(
            reopened.as_of(now).count(&segment).unwrap(),
            db.as_of(now).count(&segment).unwrap()
        );
    }
    assert_eq!(reopened.event_properties(), db.event_properties());
}

#[test]
fn event_runs_that_disagree_with_the_file_are_refused() {
    let (dir, db) = saved_with_events();
    drop(db);
    edit_manifest(dir.path(), |m| m["event_runs"][0][1] = serde_json::json!(5));
    let err = Database::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("events-2.parquet"), "{err}");
}
