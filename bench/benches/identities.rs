//! Identities (DESIGN section 11): `ID.LOOKUP` (beside the same lookups in a std `HashMap`
//! from phone to member id) and `ID.LINK` without a merge on a database of 1M members each
//! holding a phone, and merging two profiles of 5,000 events each (10,000
//! together) among 1M other events. In process, fsync off: the apply step's cost (the
//! fsync is the disk's).
//!
//!     cargo bench -p memberdb-bench --bench identities

use std::io::Write;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use memberdb::{Database, Load, OpenOptions, SyncPolicy, Timestamp, Value};
// (through memberdb_bench, mimalloc: the allocator of the memberdb binary, as in the other
// benches)
use memberdb_bench::declare_identifiers;

const MEMBERS: u64 = 1_000_000;

fn phone(i: u64) -> String {
    format!("1{:010}", i * 7919 % 10_000_000_000)
}

fn database(dir: &std::path::Path) -> Database {
    let db = Database::in_memory_with(OpenOptions {
        sync: SyncPolicy::Off,
        ..OpenOptions::default()
    })
    .expect("in memory");
    let members = dir.join("members.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&members).unwrap());
    writeln!(f, "member_id,phone").unwrap();
    for i in 0..MEMBERS {
        writeln!(f, "M{i},{}", phone(i)).unwrap();
    }
    drop(f);
    db.load(
        Load::new()
            .members(&members)
            .schema_text("phone:string")
            .unwrap(),
    )
    .expect("members load");
    let started = Instant::now();
    declare_identifiers(&db, &[("phone", 1, 1)]).unwrap();
    eprintln!(
        "declaring phone observed {MEMBERS} members' phones in {:?}",
        started.elapsed()
    );
    declare_identifiers(&db, &[("openid", 1000, 2)]).unwrap();
    db
}

fn lookup_and_link(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let db = database(dir.path());
    let mut group = c.benchmark_group("identities");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    let mut i = 0u64;
    group.bench_function("lookup/1M-profiles", |b| {
        b.iter(|| {
            i = (i + 7919) % MEMBERS;
            db.lookup_identifier("phone", &phone(i)).unwrap()
        })
    });
    // The reference: the same lookups in a std HashMap from phone to member id (what an
    // application would keep beside its data), with the same access pattern.
    let reference: std::collections::HashMap<String, String> =
        (0..MEMBERS).map(|i| (phone(i), format!("M{i}"))).collect();
    let mut i = 0u64;
    group.bench_function("lookup/std-hashmap-reference", |b| {
        b.iter(|| {
            i = (i + 7919) % MEMBERS;
            reference.get(&phone(i)).cloned()
        })
    });
    drop(reference);
    let mut n = 0u64;
    group.bench_function("link-without-merge/1M-profiles", |b| {
        b.iter(|| {
            n += 1;
            let member = format!("M{}", n * 104_729 % MEMBERS);
            db.link(Some(&member), &[("openid", &format!("o{n}"))])
                .unwrap()
        })
    });
    group.finish();
}

/// Pairs of members with `EVENTS_EACH` events each, among background members.
const PAIRS: u64 = 40;
const EVENTS_EACH: u64 = 5_000;
const BACKGROUND: u64 = 100_000;

fn merge(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let db = Database::in_memory_with(OpenOptions {
        sync: SyncPolicy::Off,
        ..OpenOptions::default()
    })
    .expect("in memory");
    let events = dir.path().join("events.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&events).unwrap());
    writeln!(f, "member_id,event,ts,amount").unwrap();
    let day = 86_400i64;
    for p in 0..PAIRS {
        for side in ["A", "B"] {
            for k in 0..EVENTS_EACH {
                let ts = 1_760_000_000 + ((p * 31 + k * 977) % 365) as i64 * day + k as i64;
                let ts = Timestamp(ts * 1_000_000).to_rfc3339_micros();
                writeln!(f, "{side}{p},purchase,{ts},{}", k % 500).unwrap();
            }
        }
    }
    for m in 0..BACKGROUND {
        for k in 0..10 {
            let ts = 1_760_000_000 + ((m + k * 37) % 365) as i64 * day;
            let ts = Timestamp(ts * 1_000_000).to_rfc3339_micros();
            writeln!(f, "X{m},purchase,{ts},{k}").unwrap();
        }
    }
    drop(f);
    db.load(
        Load::new()
            .events(&events)
            .schema_text("ts:timestamp,amount:float")
            .unwrap(),
    )
    .expect("events load");
    db.upsert_member("A0", &[("points", Some(Value::Int(1)))])
        .unwrap();
    let mut group = c.benchmark_group("identities");
    group.sample_size(10);
    let mut p = 0u64;
    group.bench_function("merge/2x5000-events-among-1M", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Each pair merged once, then split again off the clock.
                let (a, bb) = (format!("A{}", p % PAIRS), format!("B{}", p % PAIRS));
                p += 1;
                let started = Instant::now();
                let report = db.merge_members(&a, &bb).unwrap();
                total += started.elapsed();
                db.unmerge(&a, report.observation.unwrap()).unwrap();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, lookup_and_link, merge);
criterion_main!(benches);
