//! Fuzz targets of the engine (issue 11): statements through the parser and the binder, log
//! records through the framing reader and the change decoder, and manifests, each driven by
//! `memberdb::fuzzing` from a corpus of real inputs. A target must answer or refuse, never
//! panic or overflow its stack; what it accepts must behave (a group it stores reopens).
//!
//! `cargo test -p memberdb-tests --test fuzz` runs each for `MEMBERDB_FUZZ_SECONDS` (10 by
//! default; CI sets 60); `MEMBERDB_FUZZ_SEED` repeats a run.

use std::path::Path;
use std::sync::Arc;

use memberdb::fuzzing::Fuzzer;
use memberdb::storage::{MemStorage, Storage};
use memberdb::{Database, InputKind, Segment, Timestamp, Value};

const KEYWORDS: &[&str] = &[
    " COUNT ",
    " FIND ",
    " SHOW ",
    " LIMIT ",
    " OFFSET ",
    " BREAKDOWN ",
    " BY ",
    " TOP ",
    " DEFINE GROUP g AS ",
    " DROP GROUP ",
    " EXPLAIN ",
    " AS OF '2026-11-01' ",
    " AND ",
    " OR ",
    " NOT ",
    " NOT NOT NOT NOT ",
    " ALL ",
    " TAG 'vip' ",
    " IN GROUP ",
    " DID purchase ",
    " WHERE ",
    " AT LEAST 3 TIMES ",
    " AT MOST ",
    " EXACTLY ",
    " IN LAST 7 DAYS ",
    " SINCE '2026-01-01' ",
    " BEFORE ",
    " HOURS ",
    " BETWEEN 1 AND 9 ",
    " IS NULL ",
    " IS NOT NULL ",
    " IN (",
    " = ",
    " != ",
    " >= ",
    "(",
    ")",
    ";",
    "--",
    "'",
    "\"",
    " amount ",
    " city ",
    " phone ",
    " points ",
    " birthday ",
    " joined_at ",
    " store ",
    " 1e9 ",
    " -0.0 ",
    " 99999999999999999999 ",
    " TRUE ",
];

fn samples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data-samples")
}

/// Statements of the golden files, the fixture's queries and a few written here.
fn statement_corpus() -> Vec<Vec<u8>> {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/tests/golden");
    let mut texts: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(golden).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        texts.extend(text.split(';').map(|s| s.trim().to_string()));
    }
    texts.extend(
        [
            "COUNT DID purchase WHERE (amount >= 500 AND store = 'S012') AT LEAST 2 TIMES IN LAST 52 WEEKS",
            "COUNT DID purchase SINCE '2026-01-01' BEFORE '2026-07-01' AND NOT (TAG 'vip' OR city IN ('Shanghai', 'Beijing'))",
            "FIND birthday BETWEEN '1990-01-01' AND '1999-12-31' SHOW phone, email LIMIT 3 OFFSET 2",
            "DEFINE GROUP g AS NOT NOT TAG 'vip' AND joined_at >= '2026-01-01T00:00:00Z'",
            "BREAKDOWN DID claim_coupon WHERE NOT coupon_id IS NULL BY level TOP 3 AS OF '2026-11-01'",
            "EXPLAIN points > 100.5 OR gender != 'F' OR subscribed = FALSE",
        ]
        .map(String::from),
    );
    texts.retain(|t| !t.is_empty() && !t.starts_with("--"));
    texts.into_iter().map(String::into_bytes).collect()
}

/// The sample's members, events and tags in a database on `storage`.
fn sample_database(storage: Arc<dyn Storage>) -> Database {
    let db = Database::open_storage(storage).unwrap();
    for (kind, file) in [
        (InputKind::Members, "members.parquet"),
        (InputKind::Events, "events.parquet"),
        (InputKind::Tags, "tags.parquet"),
    ] {
        db.load_file(kind, samples().join(file)).unwrap();
    }
    db
}

#[test]
fn statements_through_parser_and_binder() {
    let storage = Arc::new(MemStorage::new());
    let db = sample_database(storage.clone());
    let now = Timestamp::parse("2026-11-01T00:00:00Z").unwrap();
    Fuzzer::new("statements", statement_corpus())
        .dictionary(KEYWORDS)
        .max_len(16 << 10)
        .run(|input| {
            let Ok(text) = std::str::from_utf8(input) else {
                return;
            };
            // answers or refuses; an error renders without panicking
            if let Err(e) = db.execute(text, Some(now)) {
                let _ = e.render(text);
            }
        });
    // every group a mutant defined reopens, with the same members
    let groups: Vec<(String, u64)> = db
        .groups()
        .into_iter()
        .map(|g| {
            let members = db.as_of(now).count(&Segment::in_group(&g.name)).unwrap();
            (g.name, members)
        })
        .collect();
    db.close().unwrap();
    let db = Database::open_storage(storage).unwrap();
    for (name, members) in groups {
        let now_count = db.as_of(now).count(&Segment::in_group(&name));
        assert_eq!(
            now_count.ok(),
            Some(members),
            "group {name} after reopening"
        );
    }
}

/// A database on memory with one change of every kind in its log (no checkpoint since).
fn logged_database() -> Arc<MemStorage> {
    let storage = Arc::new(MemStorage::new());
    let db = Database::open_storage(storage.clone()).unwrap();
    db.close().unwrap();
    let db = Database::open_storage(storage.clone()).unwrap();
    db.upsert_member(
        "M1",
        &[
            ("city", Some(Value::from("Shanghai"))),
            ("points", Some(Value::Int(120))),
            ("score", Some(Value::Float(2.5))),
            ("phone", None),
        ],
    )
    .unwrap();
    db.add_tags("M1", &["vip", "摄影爱好者"]).unwrap();
    db.add_tags("M2", &["vip"]).unwrap();
    db.remove_tags("M2", &["vip"]).unwrap();
    db.add_event(
        "M1",
        "purchase",
        Timestamp::parse("2026-10-01T08:00:00Z").unwrap(),
        &[("amount", Some(Value::Float(99.5)))],
    )
    .unwrap();
    db.declare_exclusive_tags("lifecycle", &["new", "active"])
        .unwrap();
    db.execute(
        "DEFINE GROUP g AS TAG 'vip' AND NOT DID purchase IN LAST 7 DAYS; \
         DEFINE GROUP h AS IN GROUP g OR city = 'Beijing'; DROP GROUP h",
        None,
    )
    .unwrap();
    drop(db); // no checkpoint: everything stays in the log
    storage
}

/// A copy of `storage` with `name` replaced by `bytes`.
fn with_file(storage: &MemStorage, name: &str, bytes: &[u8]) -> Arc<MemStorage> {
    let copy = Arc::new(MemStorage::new());
    for file in storage.list().unwrap() {
        let data = if file == name {
            bytes.to_vec()
        } else {
            storage.read(&file).unwrap()
        };
        copy.write_atomic(&file, &data).unwrap();
    }
    copy
}

fn log_name(storage: &MemStorage) -> String {
    storage
        .list()
        .unwrap()
        .into_iter()
        .find(|f| f.starts_with("wal-"))
        .unwrap()
}

/// Opens (for writing and read-only) and, when that works, reads: no panic either way.
fn open_and_read(storage: Arc<MemStorage>) {
    for read_only in [true, false] {
        let options = memberdb::OpenOptions {
            read_only,
            ..memberdb::OpenOptions::default()
        };
        if let Ok(db) = Database::open_storage_with(storage.clone(), options) {
            let _ = db.execute("COUNT ALL; SHOW GROUPS; COUNT TAG 'vip'", None);
        }
    }
}

#[test]
fn log_files_through_the_framing_reader() {
    let storage = logged_database();
    let log = log_name(&storage);
    let bytes = storage.read(&log).unwrap();
    Fuzzer::new("log files", vec![bytes])
        .dictionary([&b"MDBWAL01"[..], &[0u8; 8], &[0xffu8; 4]])
        .run(|input| open_and_read(with_file(&storage, &log, input)));
}

/// The log's records: (LSN, JSON payload), read back with the framing of docs/format.md.
fn records(log: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pos = 16;
    while pos + 16 <= log.len() {
        let len = u32::from_le_bytes(log[pos..pos + 4].try_into().unwrap()) as usize;
        let lsn = u64::from_le_bytes(log[pos + 8..pos + 16].try_into().unwrap());
        out.push((lsn, log[pos + 16..pos + 16 + len].to_vec()));
        pos += 16 + len;
    }
    out
}

/// A log of the header and one record per payload, checksums right, so the mutants reach
/// the change decoder and the apply step instead of failing their CRC.
fn framed(header: &[u8], first_lsn: u64, payloads: &[&[u8]]) -> Vec<u8> {
    let mut log = header.to_vec();
    for (i, payload) in payloads.iter().enumerate() {
        let mut body = (first_lsn + i as u64).to_le_bytes().to_vec();
        body.extend_from_slice(payload);
        log.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        log.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        log.extend_from_slice(&body);
    }
    log
}

#[test]
fn log_changes_through_the_decoder_and_apply() {
    let storage = logged_database();
    let log = log_name(&storage);
    let bytes = storage.read(&log).unwrap();
    let records = records(&bytes);
    assert!(records.len() >= 8, "{} records", records.len());
    let first_lsn = records[0].0;
    let header = bytes[..16].to_vec();
    // each change alone, mutated, framed after the changes before it
    let corpus: Vec<Vec<u8>> = records.iter().map(|(_, p)| p.clone()).collect();
    let keys = [
        "upsert_member",
        "add_tags",
        "remove_tags",
        "add_event",
        "declare_exclusive_tags",
        "define_group",
        "drop_group",
        "load",
        "\"language\":1,\"text\":",
        "{\"Not\":",
        "null",
        "{\"str\":\"\"}",
        "{\"int\":-1}",
        "{\"date\":99999999}",
        "{\"timestamp\":-1}",
    ];
    let mut which = 0usize;
    Fuzzer::new("log changes", corpus)
        .dictionary(keys)
        .run(|input| {
            which = (which + 1) % records.len();
            let mut payloads: Vec<&[u8]> = records[..which].iter().map(|(_, p)| &p[..]).collect();
            payloads.push(input);
            let log_bytes = framed(&header, first_lsn, &payloads);
            open_and_read(with_file(&storage, &log, &log_bytes));
        });
}

#[test]
fn manifests_through_the_manifest_reader() {
    let storage = logged_database();
    // checkpointed: the manifest now lists attributes, events, tags, exclusive tags, a group
    let db = Database::open_storage(storage.clone()).unwrap();
    db.close().unwrap();
    let manifest = storage.read("manifest.json").unwrap();
    assert!(String::from_utf8_lossy(&manifest).contains("\"language\""));
    let keys = [
        "\"format_version\": 11",
        "\"generation\": 0",
        "\"checkpoint_lsn\": 18446744073709551615",
        "\"member_count\": 4294967296",
        "{\"Not\":",
        "\"text\": \"NOT (",
        "[]",
        "{}",
        "null",
    ];
    Fuzzer::new("manifests", vec![manifest])
        .dictionary(keys)
        .run(|input| open_and_read(with_file(&storage, "manifest.json", input)));
}

/// Found by the manifest target: a manifest whose `member_count` was 4294967296 made open
/// reserve 57 GB for members that were not there, and the allocation failure aborted the
/// process. Counts are now checked against the files' footers before anything is reserved.
#[test]
fn regression_a_manifest_counting_members_that_are_not_there_is_refused() {
    let storage = logged_database();
    let db = Database::open_storage(storage.clone()).unwrap();
    db.close().unwrap();
    let manifest = String::from_utf8(storage.read("manifest.json").unwrap()).unwrap();
    for (field, huge) in [
        ("member_count", "4294967296"),
        ("member_count", "9"),
        ("event_count", "4294967296"),
    ] {
        let mut json: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        json[field] = serde_json::from_str(huge).unwrap();
        if field == "event_count" {
            json["event_runs"][0][1] = serde_json::from_str(huge).unwrap();
        }
        let damaged = with_file(&storage, "manifest.json", json.to_string().as_bytes());
        let e = Database::open_storage(damaged).err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("the manifest says")),
            "{field} = {huge}: {e:?}"
        );
    }
}
