//! How long writers wait while a checkpoint is written (issue 11: at most 50 ms at 10M
//! members is the goal): `checkpoint_stall DIR [WRITERS]` opens the database in DIR (made by
//! `memberdb gen` + `load`) with fsync off (the disk's fsync is not what is measured),
//! starts WRITERS threads (default 8) that write in turn a tag, a member's `points` and
//! `city`, and a purchase event with an amount, each to a random existing member (so they
//! touch chunks all over the state), writes one checkpoint, and prints the checkpoint's
//! duration and the longest any single write took before, during and after it, and the
//! slowest writes during it with when they started.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memberdb::{Database, OpenOptions, SyncPolicy, Timestamp, Value};

/// One write of the mix: `i` picks the kind and, with the writer, the member.
fn write(db: &Database, w: usize, i: u64, members: u64) -> memberdb::Result<()> {
    // A cheap spread of member numbers over the whole id range.
    let n = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ w as u64) % members.max(1) + 1;
    let member = format!("M{n:08}");
    match i % 3 {
        0 => db.add_tags(&member, &["stall"]),
        1 => db.upsert_member(
            &member,
            &[
                ("points", Some(Value::Int(i as i64))),
                ("city", Some(Value::from("Hangzhou"))),
            ],
        ),
        _ => db.add_event(
            &member,
            "purchase",
            Timestamp::now(),
            &[("amount", Some(Value::Float(99.0)))],
        ),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: checkpoint_stall DIR [WRITERS]");
        std::process::exit(2);
    };
    let writers: usize = args.get(2).and_then(|w| w.parse().ok()).unwrap_or(8);
    let options = OpenOptions {
        sync: SyncPolicy::Off,
        checkpoint_log_bytes: u64::MAX,
        ..OpenOptions::default()
    };
    let opened = Instant::now();
    let db = Arc::new(Database::open_with(dir, options).expect("opens"));
    eprintln!(
        "opened {} members, {} events in {:.1?}",
        db.member_count(),
        db.event_count(),
        opened.elapsed()
    );
    let stop = Arc::new(AtomicBool::new(false));
    // The longest single write, in microseconds, per phase: 0 before, 1 during, 2 after.
    let phase = Arc::new(AtomicU64::new(0));
    let longest: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
    let writes = Arc::new(AtomicU64::new(0));
    let slow = Arc::new(std::sync::Mutex::new(Vec::<(u64, u64, Duration)>::new()));
    // writes slower than 10 ms during the checkpoint: (micros, kind, start)
    let epoch = Instant::now();
    let members = db.member_count();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let slow = slow.clone();
            let (db, stop, phase, longest, writes) = (
                db.clone(),
                stop.clone(),
                phase.clone(),
                longest.clone(),
                writes.clone(),
            );
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let p = phase.load(Ordering::Relaxed) as usize;
                    let started = Instant::now();
                    write(&db, w, i, members).expect("write");
                    let micros = started.elapsed().as_micros() as u64;
                    longest[p].fetch_max(micros, Ordering::Relaxed);
                    if p == 1 && micros > 10_000 {
                        let mut slow = slow.lock().unwrap_or_else(|e| e.into_inner());
                        slow.push((micros, i % 3, started - epoch));
                    }
                    writes.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    phase.store(1, Ordering::Relaxed);
    let started = Instant::now();
    let checkpoint_started = started - epoch;
    db.checkpoint().expect("checkpoint");
    let took = started.elapsed();
    phase.store(2, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("writer");
    }
    // The slowest writes during the checkpoint, with when they started: a stall right after
    // the start is the pause or a first copy; later ones are the machine's.
    let mut slow = slow.lock().unwrap_or_else(|e| e.into_inner()).clone();
    slow.sort_by_key(|s| std::cmp::Reverse(s.0));
    for (us, kind, at) in slow.iter().take(5) {
        let kind = ["tag", "attributes", "event"][*kind as usize];
        println!(
            "  {:.1} ms ({kind}) at {:.3} s into the checkpoint",
            *us as f64 / 1000.0,
            at.saturating_sub(checkpoint_started).as_secs_f64()
        );
    }
    let ms = |p: usize| longest[p].load(Ordering::Relaxed) as f64 / 1000.0;
    let stats = db.log_stats();
    println!(
        "writers held off for {:.1} ms, of which the disk's fsyncs {:.1} ms",
        stats.last_checkpoint_pause_us as f64 / 1000.0,
        stats.last_checkpoint_fsync_us as f64 / 1000.0
    );
    println!(
        "{} members: checkpoint {:.0} ms; longest write: {:.1} ms before, {:.1} ms during, \
         {:.1} ms after ({} writers, {} writes)",
        db.member_count(),
        took.as_secs_f64() * 1000.0,
        ms(0),
        ms(1),
        ms(2),
        writers,
        writes.load(Ordering::Relaxed)
    );
}
