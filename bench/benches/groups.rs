//! The cost groups add to a single write: one EVENT.ADD on a database of
//! `MEMBERDB_BENCH_MEMBERS` members (default 1M, in memory: the apply step, no fsync),
//! with no groups and with 100 groups of which 10 read the event's type. The groups issue
//! asks for at most 20 µs more at p50 with the 100 groups. Last run (2026-12-01, 1M): 47 µs
//! without groups, 258 µs with them; what remains is counting the touched member's events
//! over every day bitmap of the all-time counts (a lookup per day).
//!
//!     cargo bench -p memberdb-bench --bench groups

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use memberdb::{Database, Segment, Timestamp};
use memberdb_bench::{bench_members, loaded};

/// 100 groups: 10 read `purchase`, 90 read tags and attributes only.
fn define_groups(db: &Database) {
    let cities = ["Shanghai", "Beijing", "Shenzhen", "Guangzhou", "Hangzhou"];
    let tags = [
        "vip",
        "churn_risk",
        "foodie",
        "pet_owner",
        "fitness",
        "student",
    ];
    for i in 0..100 {
        let definition = if i < 10 {
            Segment::did("purchase")
                .at_least(1 + i as u64 % 3)
                .build()
                .and(Segment::tag(tags[i % tags.len()]))
        } else {
            Segment::tag(tags[i % tags.len()])
                .and(Segment::attr("city").eq(cities[i % cities.len()]))
        };
        db.define_group(&format!("g{i}"), definition)
            .expect("group");
    }
}

fn groups(c: &mut Criterion) {
    let members = bench_members();
    let mut group = c.benchmark_group("groups");
    group.sample_size(50);
    group.measurement_time(Duration::from_secs(5));
    let ts = Timestamp::parse("2026-10-31T12:00:00Z").expect("time");
    for with_groups in [false, true] {
        let db = loaded(members);
        if with_groups {
            define_groups(&db);
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
