//! EXPORT throughput (members/s): every member with every attribute to Parquet, CSV and JSON
//! Lines, on `$MEMBERDB_BENCH_EXPORT_MEMBERS` members (default 1,000,000; the goal is at
//! least a million members a second). The files go to memory (`/dev/shm` where there is
//! one, else `$MEMBERDB_BENCH_EXPORT_DIR` or the temp directory): the export's own work is
//! measured, not the disk's write-back and fsync, which is the disk's speed.
//!
//!     cargo bench -p memberdb-bench --bench export

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memberdb::{Database, Load, Segment, Timestamp};
use memberdb_bench::dataset;

fn export_members() -> u64 {
    std::env::var("MEMBERDB_BENCH_EXPORT_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn export(c: &mut Criterion) {
    // As the `memberdb` binary runs (server/src/main.rs): without transparent huge pages,
    // which made a quarter of an export's time the kernel zeroing 2 MiB pages that mimalloc
    // had handed back and took again.
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let members = export_members();
    let dir = dataset(members);
    let db = Database::in_memory();
    db.load(
        Load::new()
            .members(dir.join("members.parquet"))
            .tags(dir.join("tags.parquet")),
    )
    .unwrap();
    let columns: Vec<String> = db.attributes().into_iter().map(|a| a.name).collect();
    let out = match std::env::var_os("MEMBERDB_BENCH_EXPORT_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).unwrap(),
        None if std::path::Path::new("/dev/shm").is_dir() => {
            tempfile::tempdir_in("/dev/shm").unwrap()
        }
        None => tempfile::tempdir().unwrap(),
    };
    let view = db.as_of(Timestamp::now());
    let all = Segment::all();
    let mut group = c.benchmark_group(format!("export-{members}"));
    group.sample_size(10);
    group.throughput(Throughput::Elements(db.member_count()));
    for ext in ["parquet", "csv", "jsonl"] {
        let path = out.path().join(format!("all.{ext}"));
        group.bench_function(format!("all_columns_{ext}"), |b| {
            b.iter(|| view.export(&all, &columns, &path, &mut |_, _| {}).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, export);
criterion_main!(benches);
