//! Shared pieces of the benchmarks: cached, seeded data sets and loaded databases.
//!
//! Data sets are generated once per size into `$MEMBERDB_BENCH_DATA` (default
//! `~/.cache/memberdb/bench-data`), outside the repository, and reused by later runs.

/// Every benchmark binary allocates through mimalloc, as the `memberdb` binary does, so
/// resident memory after a load is the database, not what the allocator kept.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod limits;
pub mod peers;
pub mod workloads;

use std::path::{Path, PathBuf};

use memberdb::datagen::{GenConfig, generate};
use memberdb::{Database, InputKind, Segment, Timestamp};

/// The end of every benchmark data set's history, and the *now* of its queries.
pub fn bench_now() -> Timestamp {
    Timestamp::parse("2026-11-01T00:00:00Z").expect("valid timestamp")
}

/// Members per benchmark data set: `$MEMBERDB_BENCH_MEMBERS`, default one million.
pub fn bench_members() -> u64 {
    std::env::var("MEMBERDB_BENCH_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// Where data sets are cached: `$MEMBERDB_BENCH_DATA`, else `~/.cache/memberdb/bench-data`
/// (`target/bench-data` without a home directory).
pub fn data_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("MEMBERDB_BENCH_DATA") {
        return PathBuf::from(dir);
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache/memberdb/bench-data"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data"),
    }
}

/// The directory of the data set with `members` members, generated if missing.
pub fn dataset(members: u64) -> PathBuf {
    dataset_in(None, members)
}

/// Like [`dataset`], under `root` instead of [`data_root`] when given.
pub fn dataset_in(root: Option<&Path>, members: u64) -> PathBuf {
    let root = root.map_or_else(data_root, Path::to_path_buf);
    let dir = root.join(format!(
        "gen-v{}-{members}",
        memberdb::datagen::GENERATOR_VERSION
    ));
    if !dir.join("tags.parquet").exists() {
        let config = GenConfig {
            members,
            days: 365,
            seed: 42,
            end: bench_now(),
        };
        eprintln!("generating {members} members into {}", dir.display());
        generate(&config, &dir, &mut |_| {}).expect("generate bench data");
    }
    dir
}

/// A database loaded in memory from the data set with `members` members.
pub fn loaded(members: u64) -> Database {
    loaded_with(members, memberdb::OpenOptions::default())
}

/// [`loaded`] with `options` (a manual clock, say).
pub fn loaded_with(members: u64, options: memberdb::OpenOptions) -> Database {
    let dir = dataset(members);
    let db = Database::in_memory_with(options).expect("an empty database opens");
    db.load_file(InputKind::Members, dir.join("members.parquet"))
        .expect("members");
    db.load_file(InputKind::Events, dir.join("events.parquet"))
        .expect("events");
    db.load_file(InputKind::Tags, dir.join("tags.parquet"))
        .expect("tags");
    db
}

/// Declares identifier types `(name, LIMIT, PRIORITY)` without blocked values.
pub fn declare_identifiers(db: &Database, defs: &[(&str, u32, u32)]) -> memberdb::Result<()> {
    for &(name, limit, priority) in defs {
        db.define_identifier(memberdb::IdentifierDef {
            name: name.into(),
            limit,
            priority,
            blocked: Vec::new(),
        })?;
    }
    Ok(())
}

/// Ten traits of the write-path goal of the aggregates issue, every one reading `purchase`:
/// spend, recency and frequency levels, counts, averages, distinct stores and days, the
/// last store, a lifecycle stage.
pub const WRITE_PATH_TRAITS: &str = "\
    DEFINE TRAIT ltv AS SUM(amount OF purchase IN LAST 365 DAYS); \
    DEFINE TRAIT r AS BUCKET(DAYS SINCE LAST(purchase), 30, 60, 90, 180, 365); \
    DEFINE TRAIT f AS BUCKET(COUNT(purchase IN LAST 365 DAYS), 2, 4); \
    DEFINE TRAIT n90 AS COUNT(purchase IN LAST 90 DAYS); \
    DEFINE TRAIT avg_ticket AS AVG(amount OF purchase); \
    DEFINE TRAIT max_ticket AS MAX(amount OF purchase IN LAST 365 DAYS); \
    DEFINE TRAIT stores AS COUNT(DISTINCT store OF purchase); \
    DEFINE TRAIT days_active AS COUNT(DISTINCT DAYS OF purchase IN LAST 90 DAYS); \
    DEFINE TRAIT last_store AS LAST(store OF purchase); \
    DEFINE TRAIT stage AS CASE WHEN NOT DID purchase THEN 'prospect' \
        WHEN DAYS SINCE LAST(purchase) > 330 THEN 'churned' \
        WHEN DAYS SINCE LAST(purchase) > 240 THEN 'dormant' ELSE 'active' END";

/// The groups of the write-path goal of issue 14: 100 groups, of which 10 read `purchase`
/// (`DID purchase AT LEAST n AND <tag>`) and 90 read tags and attributes only.
pub fn define_write_path_groups(db: &Database) {
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
