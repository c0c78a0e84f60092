//! Durable writes per second with N concurrent writers, and how many writes shared each
//! fsync: `writers DIR POLICY WRITERS WRITES_EACH` (e.g. `writers /tmp/w always 64 200`).

use std::sync::Arc;
use std::time::Instant;

use memberdb::{Database, OpenOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, policy, writers, each] = &args[..] else {
        eprintln!("usage: writers DIR POLICY WRITERS WRITES_EACH");
        std::process::exit(2);
    };
    let options = OpenOptions {
        sync: policy
            .parse()
            .expect("a policy: always, interval:<ms>, off"),
        ..OpenOptions::default()
    };
    let (writers, each): (u64, u64) = (writers.parse().unwrap(), each.parse().unwrap());
    let db = Arc::new(Database::open_with(dir, options).expect("opens"));
    let before = db.log_stats();
    let started = Instant::now();
    std::thread::scope(|s| {
        for w in 0..writers {
            let db = db.clone();
            s.spawn(move || {
                for i in 0..each {
                    db.add_tags(&format!("M{w}-{i}"), &["contacted"])
                        .expect("write");
                }
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let after = db.log_stats();
    let writes = writers * each;
    let fsyncs = after.fsyncs - before.fsyncs;
    println!(
        "{policy} {writers} writers: {writes} writes in {secs:.2}s = {:.0} writes/s, {} batches, {fsyncs} fsyncs, {:.1} writes per batch",
        writes as f64 / secs,
        after.batches - before.batches,
        writes as f64 / (after.batches - before.batches).max(1) as f64
    );
}
