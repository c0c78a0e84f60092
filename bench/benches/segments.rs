//! Segment evaluation on a generated data set, next to the same roaring operations written
//! by hand (the physical limit of the design).
//!
//!     MEMBERDB_BENCH_MEMBERS=10000000 cargo bench -p memberdb-bench --bench segments

use criterion::{Criterion, criterion_group, criterion_main};
use memberdb::{PropFilter, Segment, TimeUnit};
use memberdb_bench::{bench_members, bench_now, loaded};
use std::hint::black_box;

fn segments(c: &mut Criterion) {
    let members = bench_members();
    let db = loaded(members);
    let view = db.as_of(bench_now());
    let mut group = c.benchmark_group(format!("segments-{members}"));

    let q1 = Segment::tag("vip")
        .and(!Segment::tag("churn_risk"))
        .and(Segment::attr("city").eq("Shanghai"));
    group.bench_function("q1_count_two_tags_and_city", |b| {
        b.iter(|| view.count(black_box(&q1)).unwrap())
    });

    // The same question as raw roaring operations on the engine's own bitmaps.
    let vip = view.members(&Segment::tag("vip")).unwrap();
    let churn = view.members(&Segment::tag("churn_risk")).unwrap();
    let shanghai = view.members(&Segment::attr("city").eq("Shanghai")).unwrap();
    assert_eq!(
        (&vip & &shanghai).difference_len(&churn),
        view.count(&q1).unwrap()
    );
    group.bench_function("q1_raw_roaring", |b| {
        b.iter(|| (black_box(&vip) & black_box(&shanghai)).difference_len(black_box(&churn)))
    });

    let q2 = Segment::did("claim_coupon")
        .and(!Segment::did("redeem_coupon"))
        .and(Segment::attr("city").eq("Shanghai"));
    group.bench_function("q2_claimed_not_redeemed_city", |b| {
        b.iter(|| view.count(black_box(&q2)).unwrap())
    });

    let q3 = Segment::did("purchase")
        .in_last(30, TimeUnit::Days)
        .and(Segment::attr("level").is_in(["gold", "platinum"]));
    group.bench_function("q3_purchase_30d_level_in", |b| {
        b.iter(|| view.count(black_box(&q3)).unwrap())
    });

    let q4 = Segment::did("purchase")
        .at_least(3)
        .in_last(90, TimeUnit::Days)
        .build();
    group.bench_function("q4_purchase_3_times_90d", |b| {
        b.iter(|| view.count(black_box(&q4)).unwrap())
    });

    let q5 = Segment::did("purchase")
        .filter(PropFilter::prop("amount").ge(500))
        .in_last(365, TimeUnit::Days)
        .and(Segment::attr("points").between(1000, 5000));
    group.bench_function("q5_amount_filter_points_range", |b| {
        b.iter(|| view.count(black_box(&q5)).unwrap())
    });

    let q6 = Segment::did("claim_coupon").and(!Segment::did("redeem_coupon"));
    group.bench_function("q6_breakdown_by_city", |b| {
        b.iter(|| view.breakdown(black_box(&q6), "city", None).unwrap())
    });
    group.finish();
}

criterion_group!(benches, segments);
criterion_main!(benches);
