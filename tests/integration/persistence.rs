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

/// A generated database of 3,000 members with a group and a member added by hand, saved
/// under `<dir>/db`; with the time its data ends.
fn generated_and_saved(dir: &std::path::Path) -> (std::path::PathBuf, Database, Timestamp) {
    let data = dir.join("data");
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

    let db_dir = dir.join("db");
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
    (db_dir, db, end)
}

/// Every question's count, a page of its members with fields, and its breakdown by city.
fn same_answers(a: &Database, b: &Database, now: Timestamp) {
    assert_eq!(a.member_count(), b.member_count());
    assert_eq!(a.event_count(), b.event_count());
    assert_eq!(a.attributes(), b.attributes());
    assert_eq!(a.tags(), b.tags());
    assert_eq!(a.event_types(), b.event_types());
    let (a, b) = (a.as_of(now), b.as_of(now));
    for q in questions() {
        assert_eq!(a.count(&q).unwrap(), b.count(&q).unwrap(), "{q:?}");
        let options = FindOptions {
            columns: vec![
                "city".into(),
                "points".into(),
                "birthday".into(),
                "phone".into(),
            ],
            limit: Some(50),
            offset: 10,
        };
        assert_eq!(a.find(&q, &options).unwrap(), b.find(&q, &options).unwrap());
        assert_eq!(
            a.breakdown(&q, "city", None).unwrap(),
            b.breakdown(&q, "city", None).unwrap()
        );
    }
}

#[test]
fn save_and_open_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (db_dir, db, end) = generated_and_saved(dir.path());
    let reopened = open_read_only(&db_dir);
    assert_eq!(reopened.groups(), db.groups());
    same_answers(&db, &reopened, end);
    assert_eq!(reopened.member("NEW1"), db.member("NEW1"));

    // A checkpoint replaces the files of the generation before it.
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
    // version 10: the row id and liveness for engines that build bitmaps on the files
    let schema = members[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        vec!["member_id", "member_row", "live", "city", "points"]
    );
    assert!(!schema.field(1).is_nullable() && !schema.field(2).is_nullable());
}

#[test]
fn the_members_file_marks_rows_and_liveness_and_tags_are_parquet_too() {
    use arrow_array::{Array, BooleanArray, StringArray, UInt32Array};
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    for id in ["A", "B", "C"] {
        db.upsert_member(id, &[("city", Some(Value::from("Shanghai")))])
            .unwrap();
    }
    db.add_tags("A", &["vip", "摄影爱好者"]).unwrap();
    db.add_tags("C", &["vip"]).unwrap();
    db.erase("B").unwrap();
    db.save().unwrap();
    let generation = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_prefix("tags-")?
                .strip_suffix(".parquet")?
                .parse::<u64>()
                .ok()
        })
        .max()
        .expect("a tags Parquet file");
    let file = |kind: &str| dir.path().join(format!("{kind}-{generation}.parquet"));
    let members = memberdb::read_batches(&file("members")).unwrap();
    let rows = members[0]
        .column(1)
        .as_any()
        .downcast_ref::<UInt32Array>()
        .unwrap();
    let live = members[0]
        .column(2)
        .as_any()
        .downcast_ref::<BooleanArray>()
        .unwrap();
    assert_eq!(rows.values().to_vec(), vec![0, 1, 2]);
    assert_eq!(
        (0..3).map(|i| live.value(i)).collect::<Vec<_>>(),
        vec![true, false, true],
        "the erased member is not live"
    );
    let tags = memberdb::read_batches(&file("tags")).unwrap();
    let pairs: Vec<(u32, String)> = tags
        .iter()
        .flat_map(|b| {
            let rows = b
                .column(0)
                .as_any()
                .downcast_ref::<UInt32Array>()
                .unwrap()
                .clone();
            let tags = b
                .column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone();
            (0..b.num_rows()).map(move |i| (rows.value(i), tags.value(i).to_string()))
        })
        .collect();
    assert_eq!(
        pairs,
        vec![
            (0, "vip".to_string()),
            (2, "vip".to_string()),
            (0, "摄影爱好者".to_string())
        ]
    );
    // the file's own columns cannot be attributes
    let err = db
        .upsert_member("A", &[("live", Some(Value::Bool(true)))])
        .unwrap_err()
        .to_string();
    assert!(err.contains("'live' cannot be an attribute"), "{err}");
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
    assert!(
        err.contains("columns-2.bin") && err.contains("the manifest says 5"),
        "{err}"
    );
    // A database without a column file (saved by version 4) decodes the events file.
    edit_manifest(dir.path(), |m| {
        m.as_object_mut().unwrap().remove("columns_file");
    });
    let err = Database::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("events-2.parquet"), "{err}");
}

/// Open maps the column file; a database without one (saved by version 4) decodes the
/// Parquet files. Both give the same database, and the mapped one takes writes (a write
/// copies the chunk it changes) and saves them.
#[test]
fn mapped_columns_answer_and_take_writes_like_decoded_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (db_dir, db, end) = generated_and_saved(dir.path());
    drop(db);
    let decoded_dir = dir.path().join("decoded");
    std::fs::create_dir(&decoded_dir).unwrap();
    for entry in std::fs::read_dir(&db_dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("columns-") && name != "LOCK" {
            std::fs::copy(entry.path(), decoded_dir.join(&name)).unwrap();
        }
    }
    edit_manifest(&decoded_dir, |m| {
        let file = m.as_object_mut().unwrap().remove("columns_file").unwrap();
        let checksums = m["checksums"].as_object_mut().unwrap();
        checksums.remove(file.as_str().unwrap()).unwrap();
    });
    let mapped = Database::open(&db_dir).unwrap();
    let decoded = Database::open(&decoded_dir).unwrap();
    assert!(mapped.memory_breakdown().mapped > 0);
    assert_eq!(decoded.memory_breakdown().mapped, 0);
    same_answers(&mapped, &decoded, end);

    let ids: Vec<String> = (0..3000)
        .step_by(97)
        .map(|i| {
            mapped
                .as_of(end)
                .find(
                    &Segment::all(),
                    &FindOptions {
                        columns: vec![],
                        limit: Some(1),
                        offset: i,
                    },
                )
                .unwrap()
                .rows[0]
                .member_id
                .clone()
        })
        .collect();
    for db in [&mapped, &decoded] {
        for (i, id) in ids.iter().enumerate() {
            let city = ["Shanghai", "Lhasa", "新城"][i % 3];
            db.upsert_member(
                id,
                &[
                    ("city", Some(Value::from(city))),
                    ("points", Some(Value::Int(i as i64 * 100))),
                    ("birthday", None),
                    ("phone", Some(Value::from(format!("139{i:08}")))),
                ],
            )
            .unwrap();
            db.add_event(
                id,
                "purchase",
                end,
                &[("amount", Some(Value::Float(600.0)))],
            )
            .unwrap();
            db.add_tags(id, &["vip"]).unwrap();
        }
        db.upsert_member("NEW2", &[("city", Some(Value::from("新城")))])
            .unwrap();
        db.add_event("NEW2", "claim_coupon", end, &[]).unwrap();
    }
    same_answers(&mapped, &decoded, end);
    for id in ids.iter().chain([&"NEW2".to_string()]) {
        assert_eq!(mapped.member(id), decoded.member(id));
    }

    mapped.checkpoint().unwrap();
    drop(mapped);
    let reopened = Database::open(&db_dir).unwrap();
    same_answers(&reopened, &decoded, end);
    assert_eq!(reopened.member("NEW2"), decoded.member("NEW2"));
}

/// A copy of a Parquet file cut into row groups of `rows` rows.
fn regrouped(from: &std::path::Path, to: &std::path::Path, rows: usize) {
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(from).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows))
        .build();
    let mut writer: Option<ArrowWriter<std::fs::File>> = None;
    for batch in reader {
        let batch = batch.unwrap();
        let w = writer.get_or_insert_with(|| {
            ArrowWriter::try_new(
                std::fs::File::create(to).unwrap(),
                batch.schema(),
                Some(props.clone()),
            )
            .unwrap()
        });
        w.write(&batch).unwrap();
    }
    writer.unwrap().close().unwrap();
}

/// A load in parts gives the database a whole load gives; run again, it skips every part;
/// stopped midway (here: its last file missing), the same load run again finishes it.
#[test]
fn a_load_in_parts_equals_a_whole_load_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let end = Timestamp::parse("2026-11-01").unwrap();
    generate(
        &GenConfig {
            members: 3000,
            days: 200,
            seed: 5,
            end,
        },
        &data,
        &mut |_| {},
    )
    .unwrap();
    let parts = dir.path().join("parts");
    std::fs::create_dir(&parts).unwrap();
    for (file, rows) in [("members", 700), ("events", 5000), ("tags", 3000)] {
        regrouped(
            &data.join(format!("{file}.parquet")),
            &parts.join(format!("{file}.parquet")),
            rows,
        );
    }
    let whole = Database::open(dir.path().join("whole")).unwrap();
    whole
        .load(
            memberdb::Load::new()
                .members(parts.join("members.parquet"))
                .events(parts.join("events.parquet"))
                .tags(parts.join("tags.parquet")),
        )
        .unwrap();

    let db_dir = dir.path().join("parted");
    let in_parts = |with_tags: bool| {
        let mut load = memberdb::Load::new()
            .members(parts.join("members.parquet"))
            .events(parts.join("events.parquet"))
            .in_parts(6000);
        if with_tags {
            load = load.tags(parts.join("tags.parquet"));
        }
        load
    };
    let parted = Database::open(&db_dir).unwrap();
    let first = parted.load(in_parts(false)).unwrap();
    assert!(first.inputs.len() > 3, "{:?}", first.inputs);
    assert!(
        first.inputs[0].source.contains("(part 1 of "),
        "{:?}",
        first.inputs
    );
    drop(parted);
    // reopened (the parts replay from the log), then the whole command again: the parts
    // loaded before are skipped, the tags are loaded
    let parted = Database::open(&db_dir).unwrap();
    let second = parted.load(in_parts(true)).unwrap();
    assert!(
        second.inputs.iter().all(|i| i.kind == "tags"),
        "{:?}",
        second.inputs
    );
    assert!(
        second
            .warnings
            .iter()
            .any(|w| w.contains("was loaded before; skipped"))
    );
    for db in [&parted, &whole] {
        db.define_group("big_spenders", Segment::attr("lifetime_spend").gt(2000.0))
            .unwrap();
    }
    same_answers(&parted, &whole, end);
    let third = parted.load(in_parts(true)).unwrap();
    assert_eq!(third.rows, 0);
    same_answers(&parted, &whole, end);

    // a file loaded whole before is refused, as a whole load refuses it
    let err = whole.load(in_parts(true)).unwrap_err().to_string();
    assert!(err.contains("was loaded before, whole"), "{err}");
    // text inputs are typed over the whole file: not in parts
    let csv = dir.path().join("m.csv");
    std::fs::write(&csv, "member_id,city\nX1,Lhasa\n").unwrap();
    let err = parted
        .load(memberdb::Load::new().members(&csv).in_parts(10))
        .unwrap_err()
        .to_string();
    assert!(err.contains("Parquet files only"), "{err}");
}
