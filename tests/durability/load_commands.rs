//! A load command in the log: replayed at open with its rules (declared types, fallback,
//! list columns, `.gz` inputs) to the same state, and its place in `SHOW LOADS` kept across
//! checkpoints, so a repeated file is refused after a restart too.

use std::io::Write as _;

use memberdb::{DataType, Database, Error, Load, Segment};

fn gz(path: &std::path::Path, content: &str) {
    let mut out = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::default(),
    );
    out.write_all(content.as_bytes()).unwrap();
    out.finish().unwrap();
}

fn answers(db: &Database) -> (Vec<(String, DataType)>, u64, u64, u64, u64) {
    let types = db
        .attributes()
        .into_iter()
        .map(|a| (a.name, a.data_type))
        .collect();
    (
        types,
        db.count(&Segment::attr("phone").eq("02112345678")).unwrap(),
        db.count(&Segment::attr("points").eq("n/a")).unwrap(),
        db.count(&Segment::tag("coffee")).unwrap(),
        db.count(&Segment::did("purchase").build()).unwrap(),
    )
}

#[test]
fn a_load_command_replays_with_its_rules_and_is_remembered_after_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let members = d.join("m.jsonl.gz");
    gz(
        &members,
        "{\"member_id\":\"M1\",\"phone\":\"02112345678\",\"points\":\"5\",\"grade\":7,\"likes\":[\"coffee\"]}\n\
         {\"member_id\":\"M2\",\"phone\":\"13800000000\",\"points\":\"n/a\",\"grade\":8,\"likes\":null}\n\
         {\"member_id\":\"M3\",\"phone\":\"13900000000\",\"points\":\"7\",\"grade\":9,\"likes\":[\"tea\"]}\n",
    );
    let events = d.join("e.csv");
    std::fs::write(
        &events,
        "member_id,event,ts,amount\nM1,purchase,2025-07-09 07:26:09.849265+00,10\n",
    )
    .unwrap();
    let load = || {
        Load::new()
            .members(&members)
            .events(&events)
            .schema("grade", DataType::String)
            .allow_text_fallback(true)
            .tags_from("likes")
    };
    let before = {
        let db = Database::open(d.join("db")).unwrap();
        let report = db.load(load()).unwrap();
        assert_eq!((report.rows, report.new_members, report.load), (4, 3, 1));
        assert_eq!(report.tags_from_columns, 2);
        assert!(
            report.warnings[0].contains("'n/a'"),
            "{:?}",
            report.warnings
        );
        answers(&db)
        // dropped without a checkpoint: the next open replays the log
    };
    assert!(before.0.contains(&("grade".to_string(), DataType::String)));
    assert!(before.0.contains(&("points".to_string(), DataType::String)));
    assert_eq!((before.1, before.2, before.3, before.4), (1, 1, 1, 1));

    let db = Database::open(d.join("db")).unwrap();
    assert_eq!(db.recovery().replayed, 1);
    assert_eq!(answers(&db), before);
    db.checkpoint().unwrap();
    drop(db);

    let db = Database::open(d.join("db")).unwrap();
    assert_eq!(db.recovery().replayed, 0);
    assert_eq!(answers(&db), before);
    let loads = db.loads();
    assert_eq!(loads.len(), 1);
    assert_eq!(loads[0].inputs.len(), 2);
    assert_eq!(loads[0].new_members, 3);
    let err = db.load(Load::new().events(&events)).unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("in load 1")),
        "{err}"
    );
    assert_eq!(db.count(&Segment::did("purchase").build()).unwrap(), 1);
    let report = db.load(Load::new().events(&events).again(true)).unwrap();
    assert_eq!(report.load, 2);
    assert_eq!(db.event_count(), 2);
}
