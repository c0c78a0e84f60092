//! Ingest from each file format, and refusal of bad files with nothing applied.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampMillisecondArray};
use memberdb::{Database, Error, InputKind, Segment, Timestamp, Value};
use parquet::arrow::ArrowWriter;

use crate::support::batch;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write fixture");
    path
}

fn write_parquet(dir: &Path, name: &str, b: &arrow_array::RecordBatch) -> PathBuf {
    let path = dir.join(name);
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), b.schema(), None).unwrap();
    w.write(b).unwrap();
    w.close().unwrap();
    path
}

const NOW: &str = "2026-11-01T12:00:00Z";

fn now() -> Timestamp {
    Timestamp::parse(NOW).unwrap()
}

/// The same small data set, whatever the format, answers the same questions.
fn check_loaded(db: &Database) {
    let view = db.as_of(now());
    assert_eq!(db.member_count(), 4, "3 members + 1 created by an event");
    assert_eq!(
        view.count(&Segment::attr("city").eq("Shanghai")).unwrap(),
        2
    );
    assert_eq!(view.count(&Segment::attr("points").ge(100)).unwrap(), 2);
    assert_eq!(
        view.count(&Segment::attr("birthday").lt("1990-01-01"))
            .unwrap(),
        1
    );
    assert_eq!(view.count(&Segment::tag("vip")).unwrap(), 2);
    assert_eq!(view.count(&Segment::did("purchase").build()).unwrap(), 2);
    let big = memberdb::PropFilter::prop("amount").ge(500);
    assert_eq!(
        view.count(&Segment::did("purchase").filter(big).build())
            .unwrap(),
        1
    );
    assert_eq!(
        view.count(
            &Segment::did("claim_coupon")
                .in_last(1, memberdb::TimeUnit::Days)
                .build()
        )
        .unwrap(),
        1
    );
    // M9 came only from an event: a profile with NULL attributes
    let m9 = db.member("M9").expect("M9 exists");
    assert!(m9.attributes.is_empty());
}

fn load_all(dir: &Path, members: &Path, events: &Path, tags: &Path) -> Database {
    let db = Database::open(dir.join("db")).unwrap();
    db.load_file(InputKind::Members, members).unwrap();
    db.load_file(InputKind::Events, events).unwrap();
    db.load_file(InputKind::Tags, tags).unwrap();
    db
}

const MEMBERS_CSV: &str = "member_id,city,points,birthday\n\
    M1,Shanghai,120,1985-03-01\n\
    M2,Beijing,80,1992-07-15\n\
    M3,Shanghai,300,\n";
const EVENTS_CSV: &str = "member_id,event,ts,amount,coupon_id\n\
    M1,purchase,2026-10-30T10:00:00Z,800.5,\n\
    M2,purchase,2026-10-01T10:00:00Z,99,\n\
    M9,claim_coupon,2026-11-01T08:00:00Z,,XMAS\n";
const TAGS_CSV: &str = "member_id,tag\nM1,vip\nM3,vip\nM2,churn_risk\n";

#[test]
fn csv_files_load() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = load_all(
        d,
        &write(d, "m.csv", MEMBERS_CSV),
        &write(d, "e.csv", EVENTS_CSV),
        &write(d, "t.csv", TAGS_CSV),
    );
    check_loaded(&db);
}

#[test]
fn json_lines_files_load() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let members = r#"{"member_id": "M1", "city": "Shanghai", "points": 120, "birthday": "1985-03-01"}
{"member_id": "M2", "city": "Beijing", "points": 80, "birthday": "1992-07-15"}
{"member_id": "M3", "city": "Shanghai", "points": 300, "birthday": null}
"#;
    let events = r#"{"member_id": "M1", "event": "purchase", "ts": "2026-10-30T10:00:00Z", "amount": 800.5}
{"member_id": "M2", "event": "purchase", "ts": "2026-10-01T10:00:00Z", "amount": 99}
{"member_id": "M9", "event": "claim_coupon", "ts": "2026-11-01T08:00:00Z", "coupon_id": "XMAS"}
"#;
    let tags = "{\"member_id\": \"M1\", \"tag\": \"vip\"}\n{\"member_id\": \"M3\", \"tag\": \"vip\"}\n{\"member_id\": \"M2\", \"tag\": \"churn_risk\"}\n";
    let db = load_all(
        d,
        &write(d, "m.jsonl", members),
        &write(d, "e.jsonl", events),
        &write(d, "t.jsonl", tags),
    );
    // JSON has no date type: a column of YYYY-MM-DD strings loads as dates, as in CSV.
    assert_eq!(
        db.attributes()
            .iter()
            .find(|a| a.name == "birthday")
            .unwrap()
            .data_type,
        memberdb::DataType::Date
    );
    db.upsert_member("M4", &[]).unwrap();
    assert_eq!(
        db.as_of(now())
            .count(&Segment::attr("city").eq("Shanghai"))
            .unwrap(),
        2
    );
    assert_eq!(db.as_of(now()).count(&Segment::tag("vip")).unwrap(), 2);
}

#[test]
fn parquet_files_load_with_any_timestamp_unit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let members = batch(vec![
        (
            "member_id",
            Arc::new(StringArray::from(vec!["M1", "M2", "M3"])) as ArrayRef,
        ),
        (
            "city",
            Arc::new(StringArray::from(vec!["Shanghai", "Beijing", "Shanghai"])),
        ),
        ("points", Arc::new(Int64Array::from(vec![120, 80, 300]))),
        (
            "birthday",
            Arc::new(arrow_array::Date32Array::from(vec![
                Some(memberdb_date("1985-03-01")),
                Some(memberdb_date("1992-07-15")),
                None,
            ])),
        ),
    ]);
    let ms = |s: &str| Timestamp::parse(s).unwrap().micros() / 1000;
    let events = batch(vec![
        (
            "member_id",
            Arc::new(StringArray::from(vec!["M1", "M2", "M9"])) as ArrayRef,
        ),
        (
            "event",
            Arc::new(StringArray::from(vec![
                "purchase",
                "purchase",
                "claim_coupon",
            ])),
        ),
        (
            "ts",
            Arc::new(
                TimestampMillisecondArray::from(vec![
                    ms("2026-10-30T10:00:00Z"),
                    ms("2026-10-01T10:00:00Z"),
                    ms("2026-11-01T08:00:00Z"),
                ])
                .with_timezone("Asia/Shanghai"),
            ),
        ),
        (
            "amount",
            Arc::new(Float64Array::from(vec![Some(800.5), Some(99.0), None])),
        ),
    ]);
    let tags = batch(vec![
        (
            "member_id",
            Arc::new(StringArray::from(vec!["M1", "M3", "M2"])) as ArrayRef,
        ),
        (
            "tag",
            Arc::new(StringArray::from(vec!["vip", "vip", "churn_risk"])),
        ),
    ]);
    let db = load_all(
        d,
        &write_parquet(d, "m.parquet", &members),
        &write_parquet(d, "e.parquet", &events),
        &write_parquet(d, "t.parquet", &tags),
    );
    check_loaded(&db);
}

fn memberdb_date(s: &str) -> i32 {
    (Timestamp::parse(s).unwrap().micros() / 86_400_000_000) as i32
}

/// Loads `bad` into a database holding the good CSV data and checks the error names what it
/// should and nothing changed.
fn refused(kind: InputKind, name: &str, bad: &str, expect: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = load_all(
        d,
        &write(d, "m.csv", MEMBERS_CSV),
        &write(d, "e.csv", EVENTS_CSV),
        &write(d, "t.csv", TAGS_CSV),
    );
    let before = (
        db.member_count(),
        db.event_count(),
        db.attributes(),
        db.tags(),
        db.event_types(),
    );
    let err = db.load_file(kind, write(d, name, bad)).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::BadInput { .. }), "{text}");
    for needle in expect {
        assert!(text.contains(needle), "'{text}' should mention '{needle}'");
    }
    let after = (
        db.member_count(),
        db.event_count(),
        db.attributes(),
        db.tags(),
        db.event_types(),
    );
    assert_eq!(before, after, "nothing of a refused file is applied");
    check_loaded(&db);
}

#[test]
fn missing_member_id_is_refused() {
    refused(
        InputKind::Members,
        "bad.csv",
        "id,city\nM5,Shanghai\n",
        &["bad.csv", "member_id", "found columns: id, city"],
    );
}

#[test]
fn empty_member_id_is_refused_with_its_row() {
    refused(
        InputKind::Members,
        "bad.csv",
        "member_id,city\nM5,Paris\n,Rome\n",
        &["row 2", "member_id"],
    );
}

#[test]
fn wrong_type_is_refused_with_row_and_column() {
    // points is an integer attribute; the file has text in row 2 (an earlier good row
    // would otherwise have been applied)
    refused(
        InputKind::Members,
        "bad.jsonl",
        "{\"member_id\": \"M1\", \"points\": 5}\n{\"member_id\": \"M7\", \"points\": \"lots\"}\n",
        &["bad.jsonl", "points"],
    );
    refused(
        InputKind::Members,
        "bad2.csv",
        "member_id,points\nM1,7\nM8,2.5\n",
        &["points", "row 2", "'2.5'", "attribute 'points' is integer"],
    );
}

#[test]
fn bad_timestamp_is_refused_with_row() {
    refused(
        InputKind::Events,
        "bad.csv",
        "member_id,event,ts\nM1,purchase,2026-10-30T10:00:00Z\nM1,purchase,2026-13-45\n",
        &["bad.csv", "row 2", "'ts'", "2026-13-45", "RFC 3339"],
    );
}

#[test]
fn events_without_ts_or_event_are_refused() {
    refused(
        InputKind::Events,
        "bad.csv",
        "member_id,event\nM1,purchase\n",
        &["'ts'"],
    );
    refused(
        InputKind::Events,
        "bad2.csv",
        "member_id,ts\nM1,2026-10-30T10:00:00Z\n",
        &["event"],
    );
}

#[test]
fn tags_without_tag_and_broken_files_are_refused() {
    refused(
        InputKind::Tags,
        "bad.csv",
        "member_id,label\nM1,vip\n",
        &["tag"],
    );
    refused(
        InputKind::Members,
        "bad.parquet",
        "this is not parquet",
        &["bad.parquet"],
    );
    refused(
        InputKind::Members,
        "bad.jsonl",
        "{\"member_id\": \"M1\"\n",
        &["bad.jsonl"],
    );
}

#[test]
fn unknown_extension_is_refused() {
    refused(
        InputKind::Members,
        "members.xlsx",
        "whatever",
        &["members.xlsx", ".parquet"],
    );
}

#[test]
fn reloading_updates_attributes_and_adds_columns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = load_all(
        d,
        &write(d, "m.csv", MEMBERS_CSV),
        &write(d, "e.csv", EVENTS_CSV),
        &write(d, "t.csv", TAGS_CSV),
    );
    db.load_file(
        InputKind::Members,
        write(
            d,
            "m2.csv",
            "member_id,city,level\nM2,Shanghai,gold\nM5,Chengdu,silver\n",
        ),
    )
    .unwrap();
    let view = db.as_of(now());
    assert_eq!(
        view.count(&Segment::attr("city").eq("Shanghai")).unwrap(),
        3
    );
    assert_eq!(view.count(&Segment::attr("city").eq("Beijing")).unwrap(), 0);
    assert_eq!(view.count(&Segment::attr("level").eq("gold")).unwrap(), 1);
    // points of M2 untouched by a file without that column
    assert_eq!(
        db.member("M2")
            .unwrap()
            .attributes
            .iter()
            .find(|(n, _)| n == "points")
            .map(|(_, v)| v.clone()),
        Some(Value::Int(80))
    );
    assert_eq!(db.member_count(), 5);
}
