//! The workloads Q1..Q8 of the peer harness as statements (text to answer, as a user runs
//! them), and Q1 / Q2 as the raw roaring operations on the engine's own bitmaps (the physical
//! limit of the design).
//!
//!     cargo bench -p memberdb-bench --bench workloads
//!     MEMBERDB_BENCH_MEMBERS=10000000 cargo bench -p memberdb-bench --bench workloads

use criterion::{Criterion, criterion_group, criterion_main};
use memberdb::Segment;
use memberdb_bench::workloads::{PEER_SETUP, peer_workloads};
use memberdb_bench::{bench_members, bench_now, loaded};
use std::hint::black_box;

fn workloads(c: &mut Criterion) {
    let members = bench_members();
    let db = loaded(members);
    let now = bench_now();
    for statement in PEER_SETUP {
        db.execute(statement, Some(now)).expect("setup");
    }
    let mut group = c.benchmark_group(format!("workloads-{members}"));
    for w in peer_workloads() {
        group.bench_function(w.name, |b| {
            b.iter(|| db.execute(black_box(&w.statement), Some(now)).unwrap())
        });
    }

    let view = db.as_of(now);
    let bitmap = |s: Segment| view.members(&s).unwrap();
    let (vip, churn) = (
        bitmap(Segment::tag("vip")),
        bitmap(Segment::tag("churn_risk")),
    );
    let shanghai = bitmap(Segment::attr("city").eq("Shanghai"));
    group.bench_function("Q1_raw_roaring", |b| {
        b.iter(|| (black_box(&vip) & black_box(&shanghai)).difference_len(black_box(&churn)))
    });
    let claimed = bitmap(Segment::did("claim_coupon").build());
    let redeemed = bitmap(Segment::did("redeem_coupon").build());
    group.bench_function("Q2_raw_roaring", |b| {
        b.iter(|| (black_box(&claimed) & black_box(&shanghai)).difference_len(black_box(&redeemed)))
    });
    group.finish();
}

criterion_group!(benches, workloads);
criterion_main!(benches);
