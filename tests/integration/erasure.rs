//! Member erasure end to end through the crate (DESIGN section 12): after
//! `Database::erase`, no file of the database directory holds any of the member's values
//! (raw bytes, and every Parquet file decoded), whether they came by bulk load (a kept load
//! file), by single writes (old logs), into an older generation, as identifiers of an
//! alias, as event properties or trait values; the database answers as one that never
//! had the member; its groups' streams show the exit with cause `erase` and the member as
//! `(erased)`; the row id is not given again.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use memberdb::query::{Output, parse_statement};
use memberdb::{
    ChangeCause, ChangeOp, Database, EntryId, IdentifierDef, InputKind, Timestamp, Value,
};

use crate::support::batch;

/// The planted member's values: none may be found anywhere after the erasure.
const PLANTED: &[&str] = &[
    "PLANTED-M1",
    "PLANTED-ALIAS",
    "+86-13987650001",
    "+86-13987650002",
    "planted.person@example.org",
    "Plantedville",
    "PlantedNick",
    "ORD-PLANTED-77",
    "ORD-PLANTED-88",
    "oPLANTEDopenid999",
];

const NOW: &str = "2026-11-30T00:00:00Z";

fn ts(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn run(db: &Database, text: &str) -> Output {
    let statement = parse_statement(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    db.run(&statement, Some(ts(NOW)))
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn purchases(rows: &[(&str, &str, &str)]) -> RecordBatch {
    let micros: Vec<i64> = rows.iter().map(|r| ts(r.1).micros()).collect();
    batch(vec![
        (
            "member_id",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
        ),
        (
            "event",
            Arc::new(StringArray::from(vec!["purchase"; rows.len()])) as ArrayRef,
        ),
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(micros).with_timezone("UTC")) as ArrayRef,
        ),
        (
            "order_id",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))) as ArrayRef,
        ),
    ])
}

/// Everyone but the planted member, written the same way into `db` (the reference has only
/// this). `dir` holds the CSV the bulk load reads.
fn others(db: &Database, dir: &Path, planted: bool) {
    db.define_identifier(IdentifierDef {
        name: "openid".into(),
        limit: 5,
        priority: 1,
        blocked: vec![],
    })
    .unwrap();
    let mut csv = String::from("member_id,city,phone,email\n");
    for i in 0..40 {
        let city = ["Shanghai", "Beijing", "Hangzhou"][i % 3];
        csv.push_str(&format!("M{i},{city},+86-1380000{i:04},m{i}@example.com\n"));
    }
    if planted {
        csv.push_str("PLANTED-M1,Plantedville,+86-13987650001,planted.person@example.org\n");
    }
    let file = dir.join(format!("members-{planted}.csv"));
    std::fs::write(&file, csv).unwrap();
    db.load_file(InputKind::Members, &file).unwrap();
    db.checkpoint().unwrap();
    let mut events: Vec<(String, String, String)> = (0..40)
        .map(|i| {
            (
                format!("M{i}"),
                format!("2026-11-{:02}T10:00:00Z", 1 + i % 28),
                format!("ORD-{i}"),
            )
        })
        .collect();
    if planted {
        events.push((
            "PLANTED-M1".into(),
            "2026-11-20T10:00:00Z".into(),
            "ORD-PLANTED-77".into(),
        ));
    }
    let rows: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    db.load_events(&[purchases(&rows)]).unwrap();
    for i in (0..40).step_by(4) {
        db.add_tags(&format!("M{i}"), &["vip"]).unwrap();
    }
    // (A definition's literals are the operator's words, not a member's data.)
    run(db, "DEFINE GROUP locals AS city = 'Hangzhou' OR TAG 'vip'");
    for i in (0..40).step_by(5) {
        db.upsert_member(
            &format!("M{i}"),
            &[("nickname", Some(Value::from(format!("nick{i}"))))],
        )
        .unwrap();
    }
    run(db, "DEFINE TRAIT nick_copy AS nickname");
    db.link(Some("M3"), &[("openid", "oOPENID3")]).unwrap();
    if planted {
        db.upsert_member(
            "PLANTED-M1",
            &[("nickname", Some(Value::from("PlantedNick")))],
        )
        .unwrap();
        db.add_tags("PLANTED-M1", &["vip"]).unwrap();
        db.add_event(
            "PLANTED-M1",
            "purchase",
            ts("2026-11-25T08:00:00Z"),
            &[("order_id", Some(Value::from("ORD-PLANTED-88")))],
        )
        .unwrap();
        // A second member id of the same person, with its own phone, merged in by a
        // shared OpenID: an alias.
        db.upsert_member(
            "PLANTED-ALIAS",
            &[("phone", Some(Value::from("+86-13987650002")))],
        )
        .unwrap();
        db.link(Some("PLANTED-M1"), &[("openid", "oPLANTEDopenid999")])
            .unwrap();
        db.link(Some("PLANTED-ALIAS"), &[("openid", "oPLANTEDopenid999")])
            .unwrap();
    }
    db.upsert_member("M7", &[("city", Some(Value::from("Beijing")))])
        .unwrap();
}

fn parquet_batches(path: &Path) -> Vec<RecordBatch> {
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(path).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Every planted value found in the directory: in raw bytes of any file, or in any decoded
/// value of a Parquet file (its pages are compressed).
fn found_in(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        for value in PLANTED {
            if bytes.windows(value.len()).any(|w| w == value.as_bytes()) {
                found.push(format!("{value} in {name}"));
            }
        }
        if name.ends_with(".parquet") {
            for batch in parquet_batches(&path) {
                for column in batch.columns() {
                    let Some(strings) = column.as_any().downcast_ref::<StringArray>() else {
                        continue;
                    };
                    for text in strings.iter().flatten() {
                        for value in PLANTED.iter().filter(|v| text.contains(*v)) {
                            found.push(format!("{value} decoded in {name}"));
                        }
                    }
                }
            }
        }
    }
    found
}

const QUESTIONS: &[&str] = &[
    "COUNT ALL",
    "COUNT TAG 'vip'",
    "COUNT NOT TAG 'vip'",
    "COUNT city = 'Plantedville'",
    "COUNT DID purchase",
    "COUNT DID purchase IN LAST 10 DAYS",
    "COUNT IN GROUP locals",
    "COUNT nick_copy IS NOT NULL",
    "COUNT HAS IDENTIFIER openid",
    "FIND TAG 'vip' SHOW city, phone, nickname, nick_copy",
    "BREAKDOWN ALL BY city",
    "BREAKDOWN DID purchase BY city",
];

#[test]
fn an_erased_member_leaves_no_byte_behind_and_the_answers_of_one_never_had() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    let db = Database::open(&db_dir).unwrap();
    others(&db, inputs.path(), true);
    assert!(
        !found_in(&db_dir).is_empty(),
        "the planted values are on disk before the erasure"
    );
    let row = db.row_of("PLANTED-M1").unwrap();
    let mut last = EntryId::ZERO;
    for e in db.changes("locals", EntryId::ZERO).unwrap() {
        last = e.id;
    }

    let erased = db.erase("PLANTED-ALIAS").unwrap();

    assert_eq!(erased.row, row, "an alias erases its whole profile");
    assert_eq!(erased.member_ids, 2);
    assert_eq!(found_in(&db_dir), Vec::<String>::new());

    // The stream: the member left the group, cause erase, shown as (erased).
    let exits: Vec<_> = db.changes("locals", last).unwrap().collect();
    assert_eq!(exits.len(), 1, "{exits:?}");
    assert_eq!(
        (exits[0].member_id.as_str(), exits[0].op, exits[0].cause),
        (memberdb::ERASED, ChangeOp::Exit, ChangeCause::Erase)
    );
    // Unknown by either id; each may come back as a new member on a new row.
    assert!(db.member("PLANTED-M1").is_none() && db.member("PLANTED-ALIAS").is_none());
    let err = db.erase("PLANTED-M1").unwrap_err().to_string();
    assert!(err.contains("unknown member"), "{err}");

    // The same answers as a database that never had the member.
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = Database::open(reference_dir.path()).unwrap();
    others(&reference, inputs.path(), false);
    let answers = |db: &Database| -> Vec<String> {
        QUESTIONS
            .iter()
            .map(|q| format!("{q}: {:?}", run(db, q)))
            .collect()
    };
    assert_eq!(answers(&db), answers(&reference));

    // Reopened, it stays erased; the members file keeps the row, member_id NULL.
    drop(db);
    let db = Database::open(&db_dir).unwrap();
    assert_eq!(answers(&db), answers(&reference));
    assert!(db.member("PLANTED-M1").is_none());
    db.upsert_member("PLANTED-M1", &[("city", Some(Value::from("Shanghai")))])
        .unwrap();
    let again = db.row_of("PLANTED-M1").unwrap();
    assert!(again > row, "row {again} reused the erased row {row}");
    db.checkpoint().unwrap();
    let members = std::fs::read_dir(&db_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("members-")
        })
        .unwrap();
    let ids: Vec<Option<String>> = parquet_batches(&members)
        .iter()
        .flat_map(|b| {
            let ids = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            ids.iter()
                .map(|v| v.map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        ids[row as usize], None,
        "the erased row's member_id is NULL"
    );
    assert_eq!(
        ids.iter().filter(|v| v.is_none()).count(),
        2,
        "the member and its alias"
    );
}

#[test]
fn an_erasure_cut_short_by_a_crash_is_finished_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    others(&db, inputs.path(), true);
    // The erase record reaches the log but the process dies before its checkpoint: the
    // change alone (a test hook), then the handle dropped (no close).
    db.erase_without_checkpoint("PLANTED-M1").unwrap();
    assert!(
        !found_in(dir.path()).is_empty(),
        "the old files are still there"
    );
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(db.recovery().erasures, 1);
    assert_eq!(found_in(dir.path()), Vec::<String>::new());
    assert!(db.member("PLANTED-M1").is_none());
}
