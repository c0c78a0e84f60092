//! Torn tails, damage in the middle of the log or in data files, missing files, the lock.
//! (`memberdb check` itself is tested with the binary in server/tests/cli.rs.)

use std::io::Write;
use std::path::Path;

use memberdb::{Database, Error, OpenOptions};
use memberdb_tests::workload;

fn read_only() -> OpenOptions {
    OpenOptions {
        read_only: true,
        ..OpenOptions::default()
    }
}

/// A database with `n` writes in its log (no checkpoint after them).
fn logged(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    for i in 0..n {
        workload::apply(&db, i).unwrap();
    }
    dir
}

/// The file of `dir` whose name starts with `prefix`.
fn file_starting_with(dir: &Path, prefix: &str) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}* file in {}", dir.display()))
}

fn log_file(dir: &Path) -> std::path::PathBuf {
    file_starting_with(dir, "wal-")
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "LOCK")
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_torn_tail_is_reported_by_check_and_dropped_by_open() {
    let dir = logged(6);
    let log = log_file(dir.path());
    let good_len = std::fs::metadata(&log).unwrap().len();
    // half a record: what a crash in the middle of an append leaves
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(&[42, 0, 0, 0, 1, 2, 3]).unwrap();
    drop(f);

    // read-only: reported, the file untouched
    let db = Database::open_with(dir.path(), read_only()).unwrap();
    let torn = db.recovery().torn_tail.clone().expect("a torn tail");
    assert_eq!((torn.offset, torn.dropped_bytes), (good_len, 7));
    assert_eq!(workload::held_prefix(&db, 0, 3).unwrap(), 6);
    drop(db);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), good_len + 7);

    // opened for writing: dropped, and the log takes new records after the good ones
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(db.recovery().torn_tail.as_ref().unwrap().dropped_bytes, 7);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), good_len);
    workload::apply(&db, 6).unwrap();
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert!(db.recovery().torn_tail.is_none());
    assert_eq!(workload::held_prefix(&db, 0, 3).unwrap(), 7);
}

#[test]
fn damage_in_the_middle_of_the_log_refuses_the_open_and_changes_nothing() {
    let dir = logged(8);
    let log = log_file(dir.path());
    let mut bytes = std::fs::read(&log).unwrap();
    // a byte inside the second record's payload (16-byte file header, records after)
    let first_len = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    let second = 16 + 16 + first_len;
    bytes[second + 20] ^= 0x55;
    std::fs::write(&log, &bytes).unwrap();
    let before = files(dir.path());
    let err = Database::open(dir.path()).unwrap_err().to_string();
    let name = log.file_name().unwrap().to_string_lossy().into_owned();
    assert!(err.contains(&name), "{err}");
    assert!(err.contains(&format!("offset {second}")), "{err}");
    assert_eq!(files(dir.path()), before, "nothing changed");
}

/// Flips one bit in the middle of the file.
fn damage(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(path, &bytes).unwrap();
}

#[test]
fn a_damaged_or_missing_data_file_is_named() {
    let dir = logged(8);
    Database::open(dir.path()).unwrap().checkpoint().unwrap();
    let columns = file_starting_with(dir.path(), "columns-");
    let pristine = std::fs::read(&columns).unwrap();
    damage(&columns);
    let name = columns.file_name().unwrap().to_string_lossy().into_owned();
    let err = Database::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&name) && err.contains("checksum"), "{err}");
    std::fs::remove_file(&columns).unwrap();
    let err = Database::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&name), "{err}");
    std::fs::write(&columns, pristine).unwrap();

    // Open maps the column file and leaves the Parquet copy unread: a damaged members file
    // is found by a check of every file (`memberdb check`), not by every open.
    let expected = workload::held_prefix(&Database::open(dir.path()).unwrap(), 0, 8).unwrap();
    let members = file_starting_with(dir.path(), "members-");
    damage(&members);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(workload::held_prefix(&db, 0, 8).unwrap(), expected);
    drop(db);
    let checked = OpenOptions {
        verify_all_files: true,
        ..read_only()
    };
    let err = Database::open_with(dir.path(), checked)
        .unwrap_err()
        .to_string();
    let name = members.file_name().unwrap().to_string_lossy().into_owned();
    assert!(err.contains(&name) && err.contains("checksum"), "{err}");
}

#[test]
fn a_missing_load_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    for i in 0..4 {
        workload::apply(&db, i).unwrap(); // write 3 is a bulk load
    }
    drop(db);
    let load = file_starting_with(dir.path(), "load-"); // the load's rows beside the log
    std::fs::remove_file(&load).unwrap();
    let err = Database::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains(&*load.file_name().unwrap().to_string_lossy()),
        "{err}"
    );
}

#[test]
fn a_second_writer_is_refused_with_a_clear_message() {
    let dir = logged(1);
    let first = Database::open(dir.path()).unwrap();
    let err = Database::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::InUse(_)), "{err}");
    assert!(err.to_string().contains("in use"), "{err}");
    // readers are welcome, and see what the writer acknowledged
    workload::apply(&first, 1).unwrap();
    let reader = Database::open_with(dir.path(), read_only()).unwrap();
    assert_eq!(workload::held_prefix(&reader, 0, 3).unwrap(), 2);
    let refused = workload::apply(&reader, 2).unwrap_err();
    assert!(matches!(refused, Error::ReadOnly(_)), "{refused}");
    drop(first);
    Database::open(dir.path()).expect("the lock goes with its holder");
}

#[test]
fn a_logged_file_load_replays_from_its_copy_beside_the_log() {
    use memberdb::datagen::{GenConfig, generate};
    use memberdb::{InputKind, Segment};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let end = memberdb::Timestamp::parse("2026-11-01").unwrap();
    let config = GenConfig {
        members: 500,
        days: 30,
        seed: 9,
        end,
    };
    generate(&config, &data, &mut |_| {}).unwrap();
    std::fs::write(
        data.join("extra.csv"),
        "member_id,tier\nX1,gold\nX2,silver\n",
    )
    .unwrap();
    let db_dir = dir.path().join("db");
    let db = Database::open(&db_dir).unwrap();
    db.load_file(InputKind::Events, data.join("events.parquet"))
        .unwrap();
    db.load_file(InputKind::Members, data.join("extra.csv"))
        .unwrap();
    let events = db.event_count();
    drop(db);
    // the loaded files' own bytes sit beside the log until a checkpoint
    let copy = std::fs::read_dir(&db_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.to_string_lossy().ends_with(".parquet") && p.to_string_lossy().contains("load-")
        })
        .expect("a load-<n>.parquet beside the log");
    assert_eq!(
        std::fs::read(copy).unwrap(),
        std::fs::read(data.join("events.parquet")).unwrap()
    );
    std::fs::remove_file(data.join("events.parquet")).unwrap();
    let db = Database::open(&db_dir).unwrap();
    assert_eq!(db.recovery().replayed, 2);
    assert_eq!(db.event_count(), events);
    assert_eq!(db.count(&Segment::attr("tier").eq("gold")).unwrap(), 1);
}
