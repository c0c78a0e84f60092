//! Readers on consistent snapshots while writers commit: a query sees whole writes only, and
//! every write acknowledged before it started.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use memberdb::{Database, Segment};
use memberdb_tests::workload::{self, LOAD_ROWS};

#[test]
fn readers_see_whole_bulk_loads_and_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::open(dir.path()).unwrap());
    let acked = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, acked, done) = (db.clone(), acked.clone(), done.clone());
        std::thread::spawn(move || {
            // bulk loads only (write numbers 3, 12, 21, ...): LOAD_ROWS members each
            for n in 0..40u64 {
                workload::apply(&db, workload::BULK_LOAD + workload::CYCLE * n).unwrap();
                acked.store(n + 1, Ordering::SeqCst);
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (db, acked, done) = (db.clone(), acked.clone(), done.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !done.load(Ordering::SeqCst) || reads == 0 {
                    let before = acked.load(Ordering::SeqCst);
                    let members = db.count(&Segment::All).unwrap();
                    assert_eq!(members % LOAD_ROWS as u64, 0, "half a load is visible");
                    assert!(
                        members / LOAD_ROWS as u64 >= before,
                        "an acknowledged load is missing"
                    );
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(db.member_count(), 40 * LOAD_ROWS as u64);
}

#[test]
fn concurrent_writers_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::open(dir.path()).unwrap());
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    db.add_tags(&format!("w{w}-{i}"), &["concurrent"]).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(db.count(&Segment::tag("concurrent")).unwrap(), 400);
    let stats = db.log_stats();
    assert_eq!(stats.records, 400);
    assert!(
        stats.batches <= 400 && stats.fsyncs == stats.batches,
        "{stats:?}"
    );
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(db.recovery().replayed, 400);
    assert_eq!(db.count(&Segment::tag("concurrent")).unwrap(), 400);
}
