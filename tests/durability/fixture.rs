//! The committed database of format version 1 keeps opening and giving its answers.

use std::path::{Path, PathBuf};

use memberdb::query::Output;
use memberdb::{Database, Timestamp};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/format-v1")
}

/// A copy of the fixture database (opening for writing upgrades it in place).
fn copy_of_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture().join("db")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

/// The answers in the JSON shapes `memberdb query --format json` prints.
fn answers(db: &Database) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(fixture().join("queries.mdb")).unwrap();
    let now = Timestamp::parse("2026-11-23T00:00:00Z").unwrap();
    db.execute(&text, Some(now))
        .unwrap()
        .into_iter()
        .map(|output| match output {
            Output::Count(n) => serde_json::json!({ "count": n }),
            Output::Breakdown { lines, .. } => serde_json::json!({ "breakdown": lines
                .iter()
                .map(|l| serde_json::json!({ "value": l.value.as_ref().map(ToString::to_string), "count": l.count }))
                .collect::<Vec<_>>() }),
            Output::Find(found) => {
                let members: Vec<serde_json::Value> = found
                    .rows
                    .iter()
                    .map(|row| {
                        let mut object = serde_json::Map::new();
                        object.insert("member_id".into(), row.member_id.clone().into());
                        for (name, value) in found.columns[1..].iter().zip(&row.values) {
                            object.insert(name.clone(), value.as_ref().map_or(serde_json::Value::Null, json_value));
                        }
                        object.into()
                    })
                    .collect();
                serde_json::json!({ "members": members })
            }
            other => panic!("unexpected output {other:?}"),
        })
        .collect()
}

fn json_value(v: &memberdb::Value) -> serde_json::Value {
    match v {
        memberdb::Value::Int(i) => (*i).into(),
        memberdb::Value::Float(x) => (*x).into(),
        memberdb::Value::Bool(b) => (*b).into(),
        other => other.to_string().into(),
    }
}

fn expected() -> Vec<serde_json::Value> {
    std::fs::read_to_string(fixture().join("expected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_format_1_database_opens_read_only_and_gives_its_answers() {
    let copy = copy_of_fixture();
    let options = memberdb::OpenOptions {
        read_only: true,
        ..Default::default()
    };
    let db = Database::open_with(copy.path(), options).unwrap();
    assert_eq!(db.recovery().format_version, 1);
    assert_eq!(answers(&db), expected());
}

#[test]
fn a_format_1_database_takes_writes_and_keeps_them() {
    let copy = copy_of_fixture();
    let db = Database::open(copy.path()).unwrap();
    assert_eq!(answers(&db), expected());
    db.add_tags("M00000001", &["upgraded"]).unwrap();
    drop(db);
    // the manifest now names a log, so an older memberdb cannot miss the writes
    let manifest = std::fs::read_to_string(copy.path().join("manifest.json")).unwrap();
    assert!(manifest.contains("\"format_version\": 10"), "{manifest}");
    let db = Database::open(copy.path()).unwrap();
    assert_eq!(db.recovery().replayed, 1);
    assert!(
        db.member("M00000001")
            .unwrap()
            .tags
            .contains(&"upgraded".to_string())
    );
    // its old bitmaps file has no repeat levels: they are rebuilt at every open until a
    // checkpoint writes them, and then read back
    assert_eq!(answers(&db), expected());
    db.checkpoint().unwrap();
    drop(db);
    let manifest = std::fs::read_to_string(copy.path().join("manifest.json")).unwrap();
    assert!(manifest.contains("\"event_repeats\": true"), "{manifest}");
    let db = Database::open(copy.path()).unwrap();
    assert_eq!(answers(&db), expected());
}
