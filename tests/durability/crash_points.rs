//! A crash at every write and fsync of a workload, and an I/O error at each: the database
//! always reopens, holds every acknowledged write, and holds a prefix of the writes.

use std::sync::Arc;

use memberdb::storage::{MemStorage, Storage};
use memberdb::{Database, OpenOptions, SyncPolicy};
use memberdb_tests::workload;

use crate::support::{Fault, FaultyStorage};

const WRITES: u64 = 40;

fn options() -> OpenOptions {
    OpenOptions {
        sync: SyncPolicy::Always,
        // small, so checkpoints happen inside the workload
        checkpoint_log_bytes: 2048,
        // the automatic checkpoints at the same I/O operations in every run
        background_checkpoints: false,
        read_only: false,
        ..OpenOptions::default()
    }
}

/// Runs the workload on `storage` until a write fails; returns how many were acknowledged.
/// Every 10th write is followed by an explicit checkpoint.
fn run(storage: Arc<dyn Storage>) -> u64 {
    let Ok(db) = Database::open_storage_with(storage, options()) else {
        return 0;
    };
    for i in 0..WRITES {
        if workload::apply(&db, i).is_err() {
            return i;
        }
        if i % 10 == 9 && db.checkpoint().is_err() {
            return i + 1;
        }
    }
    WRITES
}

/// Mutating operations of the whole workload without faults.
fn total_ops() -> u64 {
    let storage = Arc::new(FaultyStorage::new(
        Arc::new(MemStorage::new()),
        u64::MAX,
        Fault::Crash,
    ));
    assert_eq!(run(storage.clone()), WRITES);
    storage.ops()
}

fn reopened_prefix(image: MemStorage, acked: u64, context: &str) -> u64 {
    let db = Database::open_storage_with(Arc::new(image), options())
        .unwrap_or_else(|e| panic!("{context}: the database does not reopen: {e}"));
    let held = workload::held_prefix(&db, 0, 5).unwrap_or_else(|e| panic!("{context}: {e}"));
    assert!(
        held >= acked,
        "{context}: {acked} writes acknowledged, only {held} there"
    );
    held
}

#[test]
fn a_crash_at_any_write_or_fsync_loses_nothing_acknowledged() {
    let total = total_ops();
    assert!(total > 100, "the workload has {total} crash points");
    for at in 0..total {
        for torn_bytes in [0, 7, usize::MAX] {
            let mem = Arc::new(MemStorage::new());
            let acked = run(Arc::new(FaultyStorage::new(mem.clone(), at, Fault::Crash)));
            // what reached the disk: synced bytes, plus some of the unsynced ones
            let image = mem.crash_image(&mut |_, unsynced| unsynced.min(torn_bytes));
            let context = format!("crash at operation {at} of {total}, {torn_bytes} torn bytes");
            let held = reopened_prefix(image, acked, &context);
            assert!(
                held <= acked + 1,
                "{context}: {held} writes held, {acked} acknowledged"
            );
        }
    }
}

#[test]
fn an_io_error_stops_writes_and_keeps_what_was_acknowledged() {
    let total = total_ops();
    for at in 0..total {
        let mem = Arc::new(MemStorage::new());
        let storage = Arc::new(FaultyStorage::new(mem.clone(), at, Fault::Error));
        let db = match Database::open_storage_with(storage, options()) {
            Ok(db) => db,
            Err(_) => continue, // the error hit the creation of the database
        };
        let mut acked = 0;
        let mut refused = None;
        for i in 0..WRITES {
            match workload::apply(&db, i) {
                Ok(()) => acked = i + 1,
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
            if i % 10 == 9 {
                // a failed checkpoint leaves the log as it is and writes go on
                let _ = db.checkpoint();
            }
        }
        let context = format!("I/O error at operation {at} of {total}");
        match refused {
            // writing a bulk load's rows failed before anything was logged: the load is
            // refused, the database unchanged and still taking writes
            Some(memberdb::Error::Io { path, .. }) => {
                assert!(
                    path.to_string_lossy().contains("load-"),
                    "{context}: {path:?}"
                );
                assert!(db.read_only_reason().is_none(), "{context}");
                assert_eq!(
                    workload::held_prefix(&db, 0, 5).unwrap(),
                    acked,
                    "{context}"
                );
            }
            // the database stopped taking writes and says why; reads still work
            Some(e) => {
                assert!(matches!(e, memberdb::Error::ReadOnly(_)), "{context}: {e}");
                assert!(db.read_only_reason().is_some(), "{context}");
                assert!(workload::apply(&db, acked + 1).is_err(), "{context}");
                assert!(
                    workload::held_prefix(&db, 0, 5).unwrap() >= acked,
                    "{context}"
                );
            }
            None => {}
        }
        drop(db);
        let image = mem.crash_image(&mut |_, _| 0);
        reopened_prefix(image, acked, &context);
    }
}

/// What a power loss keeps under each policy, with the process still alive until the crash.
fn power_loss_after_writes(sync: SyncPolicy, wait: std::time::Duration) -> u64 {
    let mem = Arc::new(MemStorage::new());
    let options = OpenOptions {
        sync,
        checkpoint_log_bytes: u64::MAX,
        read_only: false,
        ..OpenOptions::default()
    };
    let db = Database::open_storage_with(mem.clone(), options).unwrap();
    for i in 0..20 {
        workload::apply(&db, i).unwrap();
    }
    std::thread::sleep(wait);
    // the power goes: nothing unsynced survives
    let image = mem.crash_image(&mut |_, _| 0);
    drop(db);
    let db = Database::open_storage_with(Arc::new(image), OpenOptions::default()).unwrap();
    workload::held_prefix(&db, 0, 5).unwrap()
}

#[test]
fn each_policy_keeps_what_it_promises_on_power_loss() {
    use std::time::Duration;
    // always: every acknowledged write
    assert_eq!(
        power_loss_after_writes(SyncPolicy::Always, Duration::ZERO),
        20
    );
    // interval: everything older than the interval (here: all, after waiting it out)
    let interval = SyncPolicy::Interval(Duration::from_millis(20));
    assert_eq!(
        power_loss_after_writes(interval, Duration::from_millis(300)),
        20
    );
    // off: only what a checkpoint wrote (nothing here); a process crash would keep it all
    assert_eq!(
        power_loss_after_writes(SyncPolicy::Off, Duration::from_millis(50)),
        0
    );
}

#[test]
fn dropping_a_database_syncs_its_log() {
    let mem = Arc::new(MemStorage::new());
    let options = OpenOptions {
        sync: SyncPolicy::Off,
        checkpoint_log_bytes: u64::MAX,
        read_only: false,
        ..OpenOptions::default()
    };
    let db = Database::open_storage_with(mem.clone(), options).unwrap();
    for i in 0..5 {
        workload::apply(&db, i).unwrap();
    }
    drop(db);
    let image = mem.crash_image(&mut |_, _| 0);
    let db = Database::open_storage_with(Arc::new(image), OpenOptions::default()).unwrap();
    assert_eq!(workload::held_prefix(&db, 0, 5).unwrap(), 5);
}

#[test]
fn a_database_reopened_often_still_checkpoints() {
    let mem = Arc::new(MemStorage::new());
    let options = OpenOptions {
        sync: SyncPolicy::Always,
        checkpoint_log_bytes: 4096,
        read_only: false,
        ..OpenOptions::default()
    };
    let mut i = 0;
    for _ in 0..30 {
        // a few writes per run, far fewer bytes than the threshold
        let db = Database::open_storage_with(mem.clone(), options.clone()).unwrap();
        assert!(
            db.recovery().log_bytes < 4096 + 4096,
            "the log is checkpointed, not left to grow: {:?}",
            db.recovery()
        );
        for _ in 0..3 {
            workload::apply(&db, i).unwrap();
            i += 1;
        }
    }
    let db = Database::open_storage_with(mem, options).unwrap();
    assert!(db.recovery().generation > 2, "{:?}", db.recovery());
    assert_eq!(workload::held_prefix(&db, 0, 5).unwrap(), i);
}
