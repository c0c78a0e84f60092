//! The cost groups add to a single write: one EVENT.ADD on a database of
//! `MEMBERDB_BENCH_MEMBERS` members (default 1M, in memory: the apply step, no fsync),
//! with no groups and with 100 groups of which 10 read the event's type. The groups issue
//! asks for at most 20 µs more at p50 with the 100 groups; `event_add` (a binary of this
//! crate) measures the p50 itself, both arms interleaved. Figures:
//! bench/results/groups-moving.md.
//!
//!     cargo bench -p memberdb-bench --bench groups

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use memberdb::Timestamp;
use memberdb_bench::{bench_members, define_write_path_groups, loaded};

fn groups(c: &mut Criterion) {
    let members = bench_members();
    let mut group = c.benchmark_group("groups");
    group.sample_size(50);
    group.measurement_time(Duration::from_secs(5));
    let ts = Timestamp::parse("2026-10-31T12:00:00Z").expect("time");
    for with_groups in [false, true] {
        let db = loaded(members);
        if with_groups {
            define_write_path_groups(&db);
        }
        let name = if with_groups {
            "event-add/100-groups"
        } else {
            "event-add/no-groups"
        };
        let mut n = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                let member = format!("M{:08}", n * 7919 % members + 1);
                db.add_event(&member, "purchase", ts, &[]).expect("write");
            })
        });
        // Events as they arrive, in time order after the data's end: the write appends
        // without sorting the day's events again.
        let mut n = 0u64;
        let end = Timestamp::parse("2026-11-01T00:00:00Z")
            .expect("time")
            .micros();
        group.bench_function(format!("{name}/in-order"), |b| {
            b.iter(|| {
                n += 1;
                let member = format!("M{:08}", n * 7919 % members + 1);
                db.add_event(&member, "purchase", Timestamp(end + n as i64), &[])
                    .expect("write");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, groups);
criterion_main!(benches);
