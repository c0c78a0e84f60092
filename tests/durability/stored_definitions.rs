//! Group definitions stored by older versions keep opening (issue 11, finding 2), and what is
//! stored now always reads back.
//!
//! Before format version 3 a definition was stored as nested JSON, one object per `NOT`:
//! `DEFINE GROUP g AS NOT NOT ... TAG 'vip'` with 130 `NOT`s was acknowledged, and then no
//! open could read the record back (serde_json's recursion limit), in the log or, after a
//! checkpoint, in the manifest. These tests write such records byte for byte as the old
//! version did and open the database.

use std::path::Path;

use memberdb::{Database, Segment};

/// The JSON an older memberdb wrote for `NOT` x `nots` `TAG 'vip'`.
fn legacy_definition(nots: usize) -> String {
    format!(
        r#"{}{{"Tag":"vip"}}{}"#,
        r#"{"Not":"#.repeat(nots),
        "}".repeat(nots)
    )
}

/// A database with three members, two of them tagged `vip`, checkpointed (empty log).
fn small_database(dir: &Path) {
    let db = Database::open(dir).unwrap();
    db.add_tags("M1", &["vip"]).unwrap();
    db.add_tags("M2", &["vip"]).unwrap();
    db.add_tags("M3", &["other"]).unwrap();
    db.close().unwrap();
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// Appends one record to the log, framed as docs/format.md draws it.
fn append_record(dir: &Path, payload: &str) {
    let m = manifest(dir);
    let log = dir.join(m["log_file"].as_str().unwrap());
    let lsn = m["checkpoint_lsn"].as_u64().unwrap() + 1;
    let mut body = lsn.to_le_bytes().to_vec();
    body.extend_from_slice(payload.as_bytes());
    let mut record = (payload.len() as u32).to_le_bytes().to_vec();
    record.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    record.extend_from_slice(&body);
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.extend_from_slice(&record);
    std::fs::write(&log, bytes).unwrap();
}

fn group_count(db: &Database, name: &str) -> u64 {
    db.count(&Segment::in_group(name)).unwrap()
}

#[test]
fn a_deep_definition_in_an_old_log_opens_with_its_group() {
    let dir = tempfile::tempdir().unwrap();
    small_database(dir.path());
    append_record(
        dir.path(),
        &format!(
            r#"{{"define_group":{{"name":"g","definition":{}}}}}"#,
            legacy_definition(130)
        ),
    );
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(group_count(&db, "g"), 2, "NOT x 130 of vip is vip");
    // the checkpoint writes the definition as text, and that opens too
    db.close().unwrap();
    let text = serde_json::to_string(&manifest(dir.path())["groups"]).unwrap();
    assert!(text.contains(r#""text":"TAG 'vip'""#), "{text}");
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(group_count(&db, "g"), 2);
}

#[test]
fn a_deep_definition_in_an_old_manifest_opens_with_its_group() {
    let dir = tempfile::tempdir().unwrap();
    small_database(dir.path());
    // far past serde_json's limit of 128, as a writer with a big stack could have stored it;
    // spliced in as text (a serde_json::Value that deep would recurse on this thread's stack)
    let text = std::fs::read_to_string(dir.path().join("manifest.json")).unwrap();
    let groups = r#""groups": []"#;
    assert!(text.contains(groups), "{text}");
    let deep = format!(
        r#""groups": [{{"name":"h","definition":{}}}]"#,
        legacy_definition(3_001)
    );
    std::fs::write(
        dir.path().join("manifest.json"),
        text.replace(groups, &deep),
    )
    .unwrap();
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(group_count(&db, "h"), 1, "an odd number of NOTs: not vip");
    db.close().unwrap();
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(group_count(&db, "h"), 1);
}

#[test]
fn what_the_language_refuses_never_reaches_the_log() {
    let dir = tempfile::tempdir().unwrap();
    small_database(dir.path());
    let db = Database::open(dir.path()).unwrap();
    let text = format!("DEFINE GROUP g AS {}TAG 'vip'", "NOT ".repeat(130));
    let e = db.execute(&text, None).unwrap_err().to_string();
    assert!(e.contains("nesting deeper than 64"), "{e}");
    // through the API: a tree deeper than the language allows is refused before the log
    let mut deep = Segment::tag("vip");
    for _ in 0..200 {
        deep = !deep;
    }
    assert!(db.define_group("g", deep).is_err());
    let ok = format!("DEFINE GROUP g AS {}TAG 'vip'", "NOT ".repeat(64));
    db.execute(&ok, None).unwrap();
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(group_count(&db, "g"), 2);
}
