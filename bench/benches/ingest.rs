//! Bulk ingest from Parquet (members/s, events/s, tag assignments/s), save and open, on a
//! smaller data set than the query benches so one iteration stays near a second:
//! `$MEMBERDB_BENCH_INGEST_MEMBERS`, default 100,000 members (about a million events).
//!
//!     cargo bench -p memberdb-bench --bench ingest

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use memberdb::{Database, InputKind};
use memberdb_bench::dataset;

fn ingest_members() -> u64 {
    std::env::var("MEMBERDB_BENCH_INGEST_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn ingest(c: &mut Criterion) {
    let members = ingest_members();
    let dir = dataset(members);
    let file = |kind: InputKind| {
        dir.join(match kind {
            InputKind::Members => "members.parquet",
            InputKind::Events => "events.parquet",
            _ => "tags.parquet",
        })
    };
    let mut group = c.benchmark_group(format!("ingest-{members}"));
    group.sample_size(10);

    let mut full = Database::in_memory();
    let mut rows = Vec::new();
    for kind in [InputKind::Members, InputKind::Events, InputKind::Tags] {
        rows.push(full.load_file(kind, file(kind)).unwrap().rows);
    }

    group.throughput(Throughput::Elements(rows[0]));
    group.bench_function("load_members_parquet", |b| {
        b.iter_batched(
            Database::in_memory,
            |db| {
                db.load_file(InputKind::Members, file(InputKind::Members))
                    .unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    // Events and tags load into a database that already has its members, as in production.
    let with_members = || {
        let db = Database::in_memory();
        db.load_file(InputKind::Members, file(InputKind::Members))
            .unwrap();
        db
    };
    for (kind, name, n) in [
        (InputKind::Events, "load_events_parquet", rows[1]),
        (InputKind::Tags, "load_tags_parquet", rows[2]),
    ] {
        group.throughput(Throughput::Elements(n));
        group.bench_function(name, |b| {
            b.iter_batched(
                with_members,
                |db| db.load_file(kind, file(kind)).unwrap(),
                BatchSize::PerIteration,
            )
        });
    }

    group.throughput(Throughput::Elements(rows[0] + rows[1]));
    let saved = tempfile::tempdir().unwrap();
    let target = saved.path().join("db");
    group.bench_function("save", |b| b.iter(|| full.save_to(&target).unwrap()));
    group.bench_function("open", |b| b.iter(|| Database::open(&target).unwrap()));
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
