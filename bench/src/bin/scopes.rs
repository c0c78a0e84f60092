//! Governed access at scale (DESIGN section 12, the speed goals of the governed-access
//! issue), on one benchmark data set in memory:
//!
//! 1. Q1..Q8 as the admin and as a user scoped to one city's members, timed in turns (the
//!    ratio is what to read: absolute times drift here);
//! 2. 9,000 store scopes: every member given one of 9,000 stores, a role per store, the
//!    memory the stores' bitmaps and the users' accesses take, and a store manager's Q1;
//! 3. FIND of 10,000 rows showing a phone and an e-mail, unmasked and under `partial(3,4)`
//!    and `email` masks (and the phone under `hash`, apart).
//!
//! Run it:
//!
//!     cargo build --profile bench -p memberdb-bench --bin scopes
//!     target/release/scopes [--members N] [--seconds S]
//!
//! `SCOPES_ONLY=Q6` times that query alone and stops;
//! `SCOPES_FIND=1` runs only part 3, each mask also alone (`SCOPES_FIND_LOOP=1`: the masked
//! FIND alone, `=plain` the unmasked one, for a profiler).

use std::sync::Arc;
use std::time::{Duration, Instant};

use memberdb::query::RunOptions;
use memberdb::{Access, Command, Role, RoleScope, Value};
use memberdb_bench::workloads::{PEER_SETUP, peer_workloads};

const STORES: usize = 9_000;

/// Median times of each runner, run in turns for `budget` (at least 5 runs each).
fn medians(runners: &[&dyn Fn()], budget: Duration) -> Vec<Duration> {
    let mut times = vec![Vec::new(); runners.len()];
    let started = Instant::now();
    while times[0].len() < 5 || started.elapsed() < budget {
        for (run, times) in runners.iter().zip(&mut times) {
            let t = Instant::now();
            run();
            times.push(t.elapsed());
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort();
            t[t.len() / 2]
        })
        .collect()
}

fn role(name: &str, scope: &str, masks: &[(&str, &str)]) -> Role {
    Role {
        name: name.to_string(),
        commands: vec![Command::Read],
        scope: RoleScope::parse(scope).expect("scope"),
        restrictive: false,
        masks: masks
            .iter()
            .map(|(f, m)| (f.to_string(), m.parse().expect("mask")))
            .collect(),
    }
}

fn access(roles: &[Role]) -> Arc<Access> {
    Arc::new(Access::new(
        "bench",
        roles,
        Arc::from(&b"bench-secret-key"[..]),
    ))
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut members = memberdb_bench::bench_members();
    let mut seconds = 2.0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--members" => members = args.next().ok_or("--members N")?.parse()?,
            "--seconds" => seconds = args.next().ok_or("--seconds S")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let budget = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let db = memberdb_bench::loaded(members);
    for statement in PEER_SETUP {
        db.execute(statement, None)?;
    }
    eprintln!("loaded {members} members in {:.1?}", started.elapsed());
    let options = RunOptions {
        now: Some(memberdb_bench::bench_now()),
        ..RunOptions::default()
    };
    if std::env::var_os("SCOPES_FIND").is_some() {
        return masks(&db, &options, budget);
    }

    // 1. Q1..Q8, admin and scoped to Shanghai's members
    let city = db.session(access(&[role("shanghai", "city = 'Shanghai'", &[])]));
    println!("## Q1..Q8 at {members} members: admin vs scoped to city = 'Shanghai'\n");
    println!("| query | admin µs | scoped µs | scoped / admin |");
    println!("|---|---:|---:|---:|");
    // SCOPES_ONLY=Q6: that query alone, then stop
    let only = std::env::var("SCOPES_ONLY").ok();
    for w in peer_workloads().into_iter().take(8) {
        if only.as_ref().is_some_and(|only| *only != w.name) {
            continue;
        }
        let statement = memberdb::query::parse_statement(&w.statement)?;
        let admin = || {
            db.run_with(&statement, &options).expect("admin");
        };
        let scoped = || {
            city.run_with(&statement, &options).expect("scoped");
        };
        let t = medians(&[&admin, &scoped], budget);
        println!(
            "| {} | {:.0} | {:.0} | {:.2}x |",
            w.name,
            micros(t[0]),
            micros(t[1]),
            t[1].as_secs_f64() / t[0].as_secs_f64()
        );
    }

    if only.is_some() {
        return Ok(());
    }

    // 2. 9,000 store scopes
    let before = db.memory_breakdown();
    let t = Instant::now();
    // the generator's member ids are M00000001..
    for m in 1..=members {
        let store = format!("ST{:04}", m % STORES as u64);
        db.upsert_member(
            &format!("M{m:08}"),
            &[("store9k", Some(Value::from(store)))],
        )?;
    }
    let after = db.memory_breakdown();
    eprintln!("stores assigned in {:.1?}", t.elapsed());
    let roles: Vec<Role> = (0..STORES)
        .map(|s| role(&format!("store_{s}"), &format!("store9k = 'ST{s:04}'"), &[]))
        .collect();
    let accesses: Vec<Arc<Access>> = roles
        .iter()
        .map(|r| access(std::slice::from_ref(r)))
        .collect();
    let access_bytes: usize = accesses
        .iter()
        .map(|a| std::mem::size_of::<Access>() + a.scope().map_or(0, |s| s.to_string().len() * 2))
        .sum();
    let store = db.session(accesses[17].clone());
    let q1 = memberdb::query::parse_statement(&peer_workloads()[0].statement)?;
    let admin_q1 = || {
        db.run_with(&q1, &options).expect("admin");
    };
    let store_q1 = || {
        store.run_with(&q1, &options).expect("store");
    };
    let t = medians(&[&admin_q1, &store_q1], budget);
    println!("\n## {STORES} store scopes at {members} members\n");
    println!(
        "- the stores' attribute (one kept bitmap per store, with its column): {:.1} MB",
        (after.attributes - before.attributes) as f64 / 1e6
    );
    println!(
        "- {STORES} users' accesses (roles, scope segments): {:.2} MB (estimate: struct + scope text x2)",
        access_bytes as f64 / 1e6
    );
    println!(
        "- Q1 as the admin {:.0} µs, as a store's user {:.0} µs ({:.2}x)",
        micros(t[0]),
        micros(t[1]),
        t[1].as_secs_f64() / t[0].as_secs_f64()
    );

    masks(&db, &options, budget)
}

/// 3. FIND of 10,000 rows, unmasked and masked.
fn masks(
    db: &memberdb::Database,
    options: &RunOptions,
    budget: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    // 3. masks on FIND of 10,000 rows
    let masked = db.session(access(&[role(
        "guide",
        "ALL",
        &[("phone", "partial(3,4)"), ("email", "email")],
    )]));
    let unmasked = db.session(access(&[role("all", "ALL", &[])]));
    let find = memberdb::query::parse_statement("FIND ALL SHOW phone, email LIMIT 10000")?;
    let plain = || {
        unmasked.run_with(&find, options).expect("find");
    };
    let with_masks = || {
        masked.run_with(&find, options).expect("find");
    };
    if let Some(which) = std::env::var_os("SCOPES_FIND_LOOP") {
        let until = Instant::now() + budget;
        while Instant::now() < until {
            if which == "plain" {
                plain();
            } else {
                with_masks();
            }
        }
        return Ok(());
    }
    // each mask alone, to tell their costs apart
    let phone_only = db.session(access(&[role("p", "ALL", &[("phone", "partial(3,4)")])]));
    let email_only = db.session(access(&[role("e", "ALL", &[("email", "email")])]));
    let with_phone = || {
        phone_only.run_with(&find, options).expect("find");
    };
    let with_email = || {
        email_only.run_with(&find, options).expect("find");
    };
    // `hash` (a keyed HMAC per value) is costlier by nature: shown apart, not in the goal
    let hashed = db.session(access(&[role("h", "ALL", &[("phone", "hash")])]));
    let with_hash = || {
        hashed.run_with(&find, options).expect("find");
    };
    let t = medians(
        &[&plain, &with_masks, &with_phone, &with_email, &with_hash],
        budget,
    );
    let cost = |t: Duration, base: Duration| 100.0 * (t.as_secs_f64() / base.as_secs_f64() - 1.0);
    println!("\n## FIND of 10,000 rows SHOW phone, email\n");
    println!(
        "- unmasked {:.0} µs, masked (partial(3,4), email) {:.0} µs: masks cost {:+.1} %",
        micros(t[0]),
        micros(t[1]),
        cost(t[1], t[0])
    );
    println!(
        "- phone alone masked {:.0} µs ({:+.1} %), email alone masked {:.0} µs ({:+.1} %)",
        micros(t[2]),
        cost(t[2], t[0]),
        micros(t[3]),
        cost(t[3], t[0])
    );
    println!(
        "- phone under hash {:.0} µs ({:.2} µs more per row)",
        micros(t[4]),
        (micros(t[4]) - micros(t[0])) / 10_000.0
    );
    Ok(())
}
