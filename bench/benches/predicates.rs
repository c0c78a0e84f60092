//! Evaluation of one segment leaf per kind of predicate and index: tag bitmaps, per-value
//! attribute bitmaps, binned ranges, scans of high-cardinality strings, NULL tests, and DID
//! in each of its forms; plus FIND of 100 members and BREAKDOWN.
//!
//!     cargo bench -p memberdb-bench --bench predicates

use criterion::{Criterion, criterion_group, criterion_main};
use memberdb::{FindOptions, PropFilter, Segment, TimeUnit};
use memberdb_bench::{bench_members, bench_now, loaded};
use std::hint::black_box;

fn predicates(c: &mut Criterion) {
    let members = bench_members();
    let db = loaded(members);
    let view = db.as_of(bench_now());
    let attr = Segment::attr;
    let cases: Vec<(&str, Segment)> = vec![
        ("tag", Segment::tag("coupon_sensitive")),
        ("string_eq_value_bitmap", attr("city").eq("Shanghai")),
        (
            "string_in_value_bitmaps",
            attr("level").is_in(["gold", "platinum", "diamond"]),
        ),
        ("string_ne", attr("gender").ne("F")),
        (
            "string_eq_scan_high_cardinality",
            attr("phone").eq("13800000000"),
        ),
        ("string_range_text", attr("city").lt("Dalian")),
        ("int_between_binned", attr("points").between(1000, 5000)),
        ("float_gt_binned", attr("lifetime_spend").gt(1000.5)),
        ("date_ge_binned", attr("birthday").ge("1990-01-01")),
        (
            "timestamp_ge_binned",
            attr("joined_at").ge("2026-06-01T12:00:00Z"),
        ),
        ("bool_eq", attr("subscribed").eq(true)),
        ("is_null", attr("email").is_null()),
        ("is_not_null", attr("email").is_not_null()),
        ("not_complement", !attr("city").eq("Shanghai")),
        ("did_ever", Segment::did("claim_coupon").build()),
        (
            "did_in_last_30_days",
            Segment::did("purchase").in_last(30, TimeUnit::Days).build(),
        ),
        (
            "did_in_last_36_hours",
            Segment::did("scan_qr").in_last(36, TimeUnit::Hours).build(),
        ),
        (
            "did_since_before",
            Segment::did("purchase")
                .since("2026-01-01")
                .before("2026-07-01")
                .build(),
        ),
        (
            "did_at_least_3_in_90_days",
            Segment::did("purchase")
                .at_least(3)
                .in_last(90, TimeUnit::Days)
                .build(),
        ),
        (
            "did_where_string_eq",
            Segment::did("claim_coupon")
                .filter(PropFilter::prop("coupon_id").eq("CP-XMAS-50"))
                .build(),
        ),
        (
            "did_where_amount_365_days",
            Segment::did("purchase")
                .filter(PropFilter::prop("amount").ge(500))
                .in_last(365, TimeUnit::Days)
                .build(),
        ),
    ];
    let mut group = c.benchmark_group(format!("predicates-{members}"));
    for (name, segment) in &cases {
        group.bench_function(format!("count_{name}"), |b| {
            b.iter(|| view.count(black_box(segment)).unwrap())
        });
    }

    let find = FindOptions {
        columns: vec!["phone".into(), "city".into(), "level".into()],
        limit: Some(100),
        offset: 0,
    };
    let vip_shanghai = Segment::tag("vip").and(attr("city").eq("Shanghai"));
    group.bench_function("find_100_members_3_columns", |b| {
        b.iter(|| view.find(black_box(&vip_shanghai), &find).unwrap())
    });
    let late = FindOptions {
        offset: 10_000.min(members as usize / 2),
        ..find.clone()
    };
    group.bench_function("find_100_members_at_offset", |b| {
        b.iter(|| view.find(black_box(&Segment::all()), &late).unwrap())
    });
    let claimed = Segment::did("claim_coupon").build();
    group.bench_function("breakdown_by_city", |b| {
        b.iter(|| view.breakdown(black_box(&claimed), "city", None).unwrap())
    });
    group.bench_function("breakdown_by_points_top_10", |b| {
        b.iter(|| {
            view.breakdown(black_box(&claimed), "points", Some(10))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, predicates);
criterion_main!(benches);
