//! Parsing + binding of a statement against a loaded catalog (names resolved, types
//! checked), the fixed cost every query pays before evaluation.
//!
//!     cargo bench -p memberdb-bench --bench bind

use criterion::{Criterion, criterion_group, criterion_main};
use memberdb::query::parse_statement;
use memberdb_bench::workloads::{PEER_SETUP, peer_workloads};
use memberdb_bench::{bench_now, loaded};
use memberdb_query::ast::StatementKind;
use std::hint::black_box;

fn bind(c: &mut Criterion) {
    // The catalog, not the data size, matters here: a small data set.
    let db = loaded(100_000);
    for statement in PEER_SETUP {
        db.execute(statement, Some(bench_now())).expect("setup");
    }
    let mut group = c.benchmark_group("parse_and_bind");
    for w in peer_workloads() {
        group.bench_function(w.name, |b| {
            b.iter(|| {
                let statement = parse_statement(black_box(&w.statement)).unwrap();
                let expr = match &statement.kind {
                    StatementKind::Count(e) => e,
                    StatementKind::Find { segment, .. } => segment,
                    StatementKind::Breakdown { segment, .. } => segment,
                    other => panic!("unexpected statement {other:?}"),
                };
                db.bind_segment(expr).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bind);
criterion_main!(benches);
