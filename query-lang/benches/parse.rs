//! Parsing statements of the segment language, from a short COUNT to a wide OR.
//!
//!     cargo bench -p memberdb-query --bench parse

use criterion::{Criterion, criterion_group, criterion_main};
use memberdb_query::parse_statement;
use std::hint::black_box;

fn parse(c: &mut Criterion) {
    let wide_or = (0..20)
        .map(|i| format!("TAG 'tag_{i}'"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let statements = [
        ("tag", "COUNT TAG 'vip'".to_string()),
        (
            "q1_two_tags_and_city",
            "COUNT TAG 'vip' AND NOT TAG 'churn_risk' AND city = 'Shanghai'".to_string(),
        ),
        (
            "q5_did_where_window_between",
            "COUNT DID purchase WHERE amount >= 500 IN LAST 365 DAYS \
             AND points BETWEEN 1000 AND 5000"
                .to_string(),
        ),
        (
            "wide_or_20_tags",
            format!("COUNT ({wide_or}) AND NOT IN GROUP g"),
        ),
    ];
    let mut group = c.benchmark_group("parse");
    for (name, text) in &statements {
        group.bench_function(*name, |b| {
            b.iter(|| parse_statement(black_box(text)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
