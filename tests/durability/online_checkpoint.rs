//! Checkpoints that do not stop writers: writes go on while a checkpoint is being written,
//! and a crash before, during or after its manifest switch loses nothing (the chain of logs).

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use memberdb::storage::{MemStorage, Storage};
use memberdb::{Database, OpenOptions, SyncPolicy};
use memberdb_tests::workload;

/// Wraps a [`MemStorage`]; once armed, the next write of a generation's members file waits
/// at a gate until the test opens it (and fails, when told to), so a test can act while a
/// checkpoint is half way.
#[derive(Debug, Default)]
struct GatedStorage {
    inner: Arc<MemStorage>,
    gate: Mutex<Gate>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Gate {
    armed: bool,
    held: bool,
    open: bool,
    fail: bool,
    /// The name of the thread held at the gate.
    held_by: Option<String>,
}

impl GatedStorage {
    fn new(inner: Arc<MemStorage>) -> Self {
        GatedStorage {
            inner,
            ..GatedStorage::default()
        }
    }

    fn arm(&self) {
        *self.gate.lock().unwrap() = Gate {
            armed: true,
            ..Gate::default()
        };
    }

    fn wait_until_held(&self) {
        let mut gate = self.gate.lock().unwrap();
        while !gate.held {
            let (g, timeout) = self
                .changed
                .wait_timeout(gate, Duration::from_secs(30))
                .unwrap();
            assert!(!timeout.timed_out(), "no checkpoint reached the gate");
            gate = g;
        }
    }

    fn held_by(&self) -> Option<String> {
        self.gate.lock().unwrap().held_by.clone()
    }

    fn release(&self, fail: bool) {
        let mut gate = self.gate.lock().unwrap();
        gate.open = true;
        gate.fail = fail;
        self.changed.notify_all();
    }
}

impl Storage for GatedStorage {
    fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        self.inner.read(name)
    }
    fn write_atomic(&self, name: &str, data: &[u8]) -> std::io::Result<()> {
        let mut gate = self.gate.lock().unwrap();
        if name.starts_with("members-") && gate.armed {
            gate.held = true;
            gate.held_by = std::thread::current().name().map(str::to_string);
            self.changed.notify_all();
            while !gate.open {
                gate = self.changed.wait(gate).unwrap();
            }
            let fail = gate.fail;
            *gate = Gate::default();
            if fail {
                return Err(std::io::Error::other("injected: the disk is full"));
            }
        }
        drop(gate);
        self.inner.write_atomic(name, data)
    }
    fn append(&self, name: &str, data: &[u8]) -> std::io::Result<()> {
        self.inner.append(name, data)
    }
    fn sync(&self, name: &str) -> std::io::Result<()> {
        self.inner.sync(name)
    }
    fn truncate(&self, name: &str, len: u64) -> std::io::Result<()> {
        self.inner.truncate(name, len)
    }
    fn exists(&self, name: &str) -> bool {
        self.inner.exists(name)
    }
    fn remove(&self, name: &str) -> std::io::Result<()> {
        self.inner.remove(name)
    }
    fn list(&self) -> std::io::Result<Vec<String>> {
        self.inner.list()
    }
    fn location(&self) -> PathBuf {
        self.inner.location()
    }
}

fn options() -> OpenOptions {
    OpenOptions {
        sync: SyncPolicy::Always,
        checkpoint_log_bytes: u64::MAX,
        ..OpenOptions::default()
    }
}

/// Runs writes `range` of the workload on another thread and insists they finish within
/// 30 s: with a checkpoint holding the writers, they would not.
fn writes_finish(db: &Arc<Database>, range: std::ops::Range<u64>) {
    let (done, finished) = mpsc::channel();
    let writer = db.clone();
    std::thread::spawn(move || {
        let result = range.map(|i| workload::apply(&writer, i)).collect();
        let _ = done.send(result);
    });
    let result: memberdb::Result<Vec<()>> = finished
        .recv_timeout(Duration::from_secs(30))
        .expect("writes wait for the checkpoint being written");
    result.unwrap();
}

/// What a power loss now would leave, opened.
fn reopen_crashed(mem: &MemStorage) -> Database {
    let image = mem.crash_image(&mut |_, _| 0);
    Database::open_storage_with(Arc::new(image), options()).unwrap()
}

fn logs(mem: &MemStorage) -> Vec<String> {
    let mut logs: Vec<String> = mem
        .list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("wal-"))
        .collect();
    logs.sort();
    logs
}

/// Starts a checkpoint on a thread named `caller` and returns once it waits at the gate
/// (holding its snapshot).
fn checkpoint_held_at_the_gate(
    db: &Arc<Database>,
    gated: &GatedStorage,
    caller: &str,
) -> std::thread::JoinHandle<memberdb::Result<()>> {
    gated.arm();
    let checkpointing = db.clone();
    let checkpoint = std::thread::Builder::new()
        .name(caller.to_string())
        .spawn(move || checkpointing.checkpoint())
        .unwrap();
    gated.wait_until_held();
    checkpoint
}

#[test]
fn writers_go_on_while_a_checkpoint_is_written_and_a_crash_loses_nothing() {
    let mem = Arc::new(MemStorage::new());
    let gated = Arc::new(GatedStorage::new(mem.clone()));
    let db = Arc::new(Database::open_storage_with(gated.clone(), options()).unwrap());
    writes_finish(&db, 0..20);

    let checkpoint = checkpoint_held_at_the_gate(&db, &gated, "checkpointing");
    // The checkpoint holds its snapshot at write 20; these land in the next generation's log.
    writes_finish(&db, 20..45);
    assert_eq!(workload::held_prefix(&db, 0, 5).unwrap(), 45);

    // A crash now: the old generation, then its log, then the new log.
    let crashed = reopen_crashed(&mem);
    assert_eq!(workload::held_prefix(&crashed, 0, 5).unwrap(), 45);
    assert_eq!(crashed.recovery().logs, vec!["wal-1.log", "wal-2.log"]);
    assert_eq!(crashed.recovery().generation, 1);
    drop(crashed);

    gated.release(false);
    checkpoint.join().unwrap().unwrap();
    writes_finish(&db, 45..50);

    // After the switch: the new generation and its log only; the old ones are gone.
    let crashed = reopen_crashed(&mem);
    assert_eq!(workload::held_prefix(&crashed, 0, 5).unwrap(), 50);
    assert_eq!(crashed.recovery().generation, 2);
    assert_eq!(crashed.recovery().logs, vec!["wal-2.log"]);
    assert_eq!(logs(&mem), vec!["wal-2.log"]);
    assert!(!mem.exists("members-1.parquet"));
}

#[test]
fn a_checkpoint_that_fails_half_way_leaves_a_database_that_writes_and_reopens() {
    let mem = Arc::new(MemStorage::new());
    let gated = Arc::new(GatedStorage::new(mem.clone()));
    let db = Arc::new(Database::open_storage_with(gated.clone(), options()).unwrap());
    writes_finish(&db, 0..15);

    let checkpoint = checkpoint_held_at_the_gate(&db, &gated, "checkpointing");
    writes_finish(&db, 15..30);
    gated.release(true);
    let failed = checkpoint.join().unwrap();
    assert!(failed.is_err(), "the injected failure is reported");

    // Still writable; the writes since went to the new log, which the old manifest leads to.
    assert!(db.read_only_reason().is_none());
    writes_finish(&db, 30..40);
    let crashed = reopen_crashed(&mem);
    assert_eq!(workload::held_prefix(&crashed, 0, 5).unwrap(), 40);
    assert_eq!(crashed.recovery().logs, vec!["wal-1.log", "wal-2.log"]);
    drop(crashed);

    // The next checkpoint writes generation 3 and leaves nothing of 1 and 2 behind.
    db.checkpoint().unwrap();
    writes_finish(&db, 40..42);
    let crashed = reopen_crashed(&mem);
    assert_eq!(workload::held_prefix(&crashed, 0, 5).unwrap(), 42);
    assert_eq!(crashed.recovery().generation, 3);
    assert_eq!(logs(&mem), vec!["wal-3.log"]);
    assert!(!mem.exists("members-2.parquet") && !mem.exists("members-1.parquet"));
}

#[test]
fn a_database_opened_on_a_chain_of_logs_writes_on_its_last_and_checkpoints() {
    let mem = Arc::new(MemStorage::new());
    let gated = Arc::new(GatedStorage::new(mem.clone()));
    let db = Arc::new(Database::open_storage_with(gated.clone(), options()).unwrap());
    writes_finish(&db, 0..10);
    let checkpoint = checkpoint_held_at_the_gate(&db, &gated, "checkpointing");
    writes_finish(&db, 10..20);

    // Crashed with the chain wal-1 -> wal-2; the reopened database appends to wal-2.
    let image = Arc::new(mem.crash_image(&mut |_, _| 0));
    gated.release(true);
    let _ = checkpoint.join().unwrap();
    let reopened = Arc::new(Database::open_storage_with(image.clone(), options()).unwrap());
    writes_finish(&reopened, 20..30);
    drop(reopened);
    let reopened = Database::open_storage_with(image.clone(), options()).unwrap();
    assert_eq!(reopened.recovery().logs, vec!["wal-1.log", "wal-2.log"]);
    assert_eq!(workload::held_prefix(&reopened, 0, 5).unwrap(), 30);
    reopened.checkpoint().unwrap();
    drop(reopened);
    let reopened = Database::open_storage_with(image.clone(), options()).unwrap();
    assert_eq!(reopened.recovery().generation, 3);
    assert_eq!(reopened.recovery().logs, vec!["wal-3.log"]);
    assert_eq!(workload::held_prefix(&reopened, 0, 5).unwrap(), 30);
}

#[test]
fn an_explicit_checkpoint_is_written_by_the_background_thread_and_answered() {
    let mem = Arc::new(MemStorage::new());
    let gated = Arc::new(GatedStorage::new(mem.clone()));
    let db = Arc::new(Database::open_storage_with(gated.clone(), options()).unwrap());
    writes_finish(&db, 0..10);
    let checkpoint = checkpoint_held_at_the_gate(&db, &gated, "checkpointing");
    // The checkpointer thread writes it (at its lower priority), not the caller's.
    assert_eq!(gated.held_by().as_deref(), Some("memberdb-checkpoint"));
    writes_finish(&db, 10..20);
    gated.release(false);
    checkpoint.join().unwrap().unwrap();
    assert_eq!(db.log_stats().checkpoints, 1);

    // Without the background thread the caller writes it.
    drop(db);
    let inline = OpenOptions {
        background_checkpoints: false,
        ..options()
    };
    let db = Arc::new(Database::open_storage_with(gated.clone(), inline).unwrap());
    let checkpoint = checkpoint_held_at_the_gate(&db, &gated, "caller");
    assert_eq!(gated.held_by().as_deref(), Some("caller"));
    gated.release(false);
    checkpoint.join().unwrap().unwrap();
    assert_eq!(workload::held_prefix(&db, 0, 5).unwrap(), 20);
}

#[test]
fn background_checkpoints_keep_every_write() {
    let mem = Arc::new(MemStorage::new());
    let opts = OpenOptions {
        checkpoint_log_bytes: 1500,
        ..options()
    };
    let db = Arc::new(Database::open_storage_with(mem.clone(), opts.clone()).unwrap());
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in (w * 50)..(w * 50 + 50) {
                    db.add_tags(&format!("M{i}"), &["seen"]).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    // Dropping the database waits for a checkpoint in progress or asked for (the thread
    // runs at a lower priority, so on a busy machine the writers may well finish first).
    drop(Arc::into_inner(db).expect("the writers are done"));
    let reopened = Database::open_storage_with(mem, opts).unwrap();
    assert!(
        reopened.recovery().generation > 1,
        "the log crossed its limit many times: at least one checkpoint was written"
    );
    let tagged = reopened
        .count(&memberdb::Segment::tag("seen"))
        .expect("counts");
    assert_eq!(tagged, 200);
}
