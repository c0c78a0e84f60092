//! Where a database's memory goes (issue 11: resident memory within 1.5x of the engine's own
//! count): `memory_profile DIR [WRITES] [THREADS] [checkpoint]` opens the database in DIR with fsync and
//! automatic checkpoints off, then applies WRITES (default 1,000,000) writes of the soak's
//! mix (`MEMBER.SET`, `TAG.ADD`, `EVENT.ADD` on existing members) from THREADS threads
//! (default 100, each with one write in flight, as a client waiting for its reply) through
//! [`Database::submit`], as the server does. After the open and after the
//! writes it prints three figures side by side:
//!
//! - the engine's own count ([`Database::memory_breakdown`]);
//! - the bytes the process has allocated and not freed (this binary counts every allocation);
//! - the resident anonymous memory of the process (`RssAnon`), before and after asking the
//!   allocator to return what it holds free.
//!
//! Engine count vs live bytes is what the count misses; live bytes vs `RssAnon` is what the
//! allocator keeps.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};

use memberdb::{Database, OpenOptions, SyncPolicy, Timestamp, Value, Write};

/// mimalloc, counting the bytes handed out and not yet freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to mimalloc; only a counter is added.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as above.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn rss_anon_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Hands the calling thread's free memory to the OS (as the server does after a checkpoint).
fn collect() {
    // SAFETY: mi_collect has no preconditions; it walks the calling thread's heap.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

fn report(db: &Database, when: &str) {
    let mb = |b: usize| b as f64 / (1 << 20) as f64;
    let usage = db.memory_breakdown();
    let live = LIVE.load(Ordering::Relaxed).max(0) as usize;
    let rss = rss_anon_mb();
    collect();
    let rss_collected = rss_anon_mb();
    println!(
        "{when}: engine count {:.1} MB (members {:.1}, attributes {:.1}, tags {:.1}, events {:.1}); \
         live heap {:.1} MB ({:.2}x); RssAnon {:.1} MB ({:.2}x), after collect {:.1} MB ({:.2}x)",
        mb(usage.total()),
        mb(usage.members),
        mb(usage.attributes),
        mb(usage.tags),
        mb(usage.events),
        mb(live),
        live as f64 / usage.total() as f64,
        rss,
        rss / mb(usage.total()),
        rss_collected,
        rss_collected / mb(usage.total()),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: memory_profile DIR [WRITES] [THREADS] [checkpoint]");
        std::process::exit(2);
    };
    let writes: u64 = args
        .get(2)
        .and_then(|w| w.parse().ok())
        .unwrap_or(1_000_000);
    let threads: u64 = args.get(3).and_then(|w| w.parse().ok()).unwrap_or(100);
    // `checkpoint`: one checkpoint is written while the writes go on, as the server's
    // automatic ones are.
    let checkpoint = args.get(4).is_some_and(|a| a == "checkpoint");
    let options = OpenOptions {
        sync: SyncPolicy::Off,
        checkpoint_log_bytes: u64::MAX,
        after_checkpoint: Some(collect),
        ..OpenOptions::default()
    };
    let db = Arc::new(Database::open_with(dir, options).expect("opens"));
    report(&db, "after open");
    let members = db.member_count().max(1);
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (db, done) = (db.clone(), done.clone());
            std::thread::spawn(move || {
                let mut i = t;
                while i < writes {
                    let n = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % members + 1;
                    let member_id = format!("M{n:08}");
                    let write = match i % 3 {
                        0 => Write::AddTags {
                            member_id,
                            tags: vec![format!("soak{}", i % 7)],
                        },
                        1 => Write::UpsertMember {
                            member_id,
                            fields: vec![("points".to_string(), Some(Value::Int(i as i64)))],
                        },
                        _ => Write::AddEvent {
                            member_id,
                            event: "purchase".to_string(),
                            ts: Timestamp::now(),
                            props: vec![("amount".to_string(), Some(Value::Float(9.5)))],
                        },
                    };
                    // One write in flight per thread, as a client waits for its reply.
                    let (tx, rx) = std::sync::mpsc::sync_channel(1);
                    db.submit(write, move |r: memberdb::Result<()>| {
                        let _ = tx.send(r);
                    });
                    rx.recv().expect("answered").expect("write");
                    done.fetch_add(1, Ordering::Relaxed);
                    i += threads;
                }
            })
        })
        .collect();
    if checkpoint {
        std::thread::sleep(std::time::Duration::from_millis(500));
        db.checkpoint().expect("checkpoint");
        report(&db, "after a checkpoint during the writes");
    }
    for w in workers {
        w.join().expect("writer");
    }
    assert_eq!(done.load(Ordering::Relaxed), writes);
    report(&db, &format!("after {writes} writes"));
}
