//! Durable single-member writes per second under the `always` fsync policy, with 1, 8 and 64
//! concurrent writers sharing one database (group commit: writers that arrive while an fsync
//! runs share the next one), and under `interval` and `off` for comparison. The database is
//! on the file system of the target directory, so the figures include real fsyncs.
//!
//!     cargo bench -p memberdb-bench --bench writes

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memberdb::{Database, OpenOptions, SyncPolicy, Value};

/// Writes each writer makes per measured iteration.
const WRITES_PER_WRITER: u64 = 20;

fn open(dir: &std::path::Path, sync: SyncPolicy) -> Arc<Database> {
    let options = OpenOptions {
        sync,
        ..OpenOptions::default()
    };
    Arc::new(Database::open_with(dir, options).expect("opens"))
}

/// Runs `writers` threads, each making `WRITES_PER_WRITER` tag and attribute writes.
fn round(db: &Arc<Database>, writers: u64, round: u64) -> Duration {
    let started = Instant::now();
    std::thread::scope(|s| {
        for w in 0..writers {
            let db = db.clone();
            s.spawn(move || {
                for i in 0..WRITES_PER_WRITER {
                    let member = format!("M{}", (round * 7919 + w * 104_729 + i) % 1_000_000);
                    if i % 2 == 0 {
                        db.add_tags(&member, &["contacted"]).expect("write");
                    } else {
                        db.upsert_member(&member, &[("points", Some(Value::Int(i as i64)))])
                            .expect("write");
                    }
                }
            });
        }
    });
    started.elapsed()
}

fn writes(c: &mut Criterion) {
    let mut group = c.benchmark_group("writes");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for (policy, name) in [
        (SyncPolicy::Always, "always"),
        (
            SyncPolicy::Interval(Duration::from_millis(100)),
            "interval-100ms",
        ),
        (SyncPolicy::Off, "off"),
    ] {
        for writers in [1u64, 8, 64] {
            if policy != SyncPolicy::Always && writers != 8 {
                continue;
            }
            let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
            let db = open(dir.path(), policy);
            group.throughput(Throughput::Elements(writers * WRITES_PER_WRITER));
            let mut n = 0;
            group.bench_function(format!("{name}/{writers}-writers"), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            n += 1;
                            round(&db, writers, n)
                        })
                        .sum()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, writes);
criterion_main!(benches);
