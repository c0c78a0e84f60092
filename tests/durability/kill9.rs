//! kill -9 of a writer process at random moments: after each kill the database opens, holds
//! every acknowledged write and a prefix of the writes, and no half of a bulk load; the
//! change stream a consumer was reading holds every entry it read, unchanged, its ids
//! never repeat, and folded from the start it is the group.
//!
//! CI runs 50 cycles; `MEMBERDB_KILL_CYCLES=5000 cargo test --release -p memberdb-tests
//! --test durability kill_9` runs thousands.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use memberdb::Database;
use memberdb_tests::workload;

fn cycles() -> u64 {
    std::env::var("MEMBERDB_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

/// A small deterministic generator, so a failing cycle can be replayed from its seed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Every entry the consumer read is in the stream as it read it; ids grow; the stream
/// folded from the start (the group was defined on the empty database) is the group.
fn stream_holds_what_was_read(db: &Database, read: &[&str], cycle: u64) {
    // Read in pages: one read returns at most `MAX_READ` entries.
    let mut entries: Vec<memberdb::ChangeEntry> = Vec::new();
    loop {
        let after = entries.last().map_or(memberdb::EntryId::ZERO, |e| e.id);
        let page: Vec<_> = db.changes("everyone", after).unwrap().collect();
        if page.is_empty() {
            break;
        }
        entries.extend(page);
    }
    let shown: std::collections::HashSet<String> = entries
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}",
                e.id,
                e.member_id,
                e.op.as_str(),
                e.cause.as_str()
            )
        })
        .collect();
    for line in read {
        assert!(
            shown.contains(*line),
            "cycle {cycle}: the entry '{line}' was read, then lost"
        );
    }
    assert!(
        entries.windows(2).all(|w| w[0].id < w[1].id),
        "cycle {cycle}: ids repeat"
    );
    let mut folded = std::collections::BTreeSet::new();
    for e in &entries {
        let fresh = match e.op {
            memberdb::ChangeOp::Enter => folded.insert(e.member_id.clone()),
            memberdb::ChangeOp::Exit => folded.remove(&e.member_id),
        };
        assert!(fresh, "cycle {cycle}: {e:?} does not alternate");
    }
    assert_eq!(
        folded.len() as u64,
        db.member_count(),
        "cycle {cycle}: the fold is not the group"
    );
}

#[test]
fn kill_9_never_loses_an_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut held = 0u64;
    let mut entries_read = 0;
    for cycle in 0..cycles() {
        // the policies differ only on power loss; a process crash loses nothing under each
        let policy = ["always", "interval:5", "off"][(cycle % 3) as usize];
        // a small checkpoint threshold, so kills also land inside checkpoints
        let checkpoint_bytes = ["4096", "65536", "100000000"][(next(&mut seed) % 3) as usize];
        let mut child = Command::new(env!("CARGO_BIN_EXE_durability-writer"))
            .args([
                dir.path().to_str().unwrap(),
                &held.to_string(),
                policy,
                checkpoint_bytes,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // wait until it is open, then let it write for a random while
        let first = rx.recv_timeout(Duration::from_secs(60));
        assert_eq!(
            first.as_deref(),
            Ok("open"),
            "cycle {cycle}: the writer did not open"
        );
        std::thread::sleep(Duration::from_millis(next(&mut seed) % 60));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let lines: Vec<String> = rx.try_iter().collect();
        let acked = lines
            .iter()
            .filter_map(|l| l.strip_prefix("ack ").and_then(|n| n.parse::<u64>().ok()))
            .max()
            .map_or(held, |last| last + 1);
        let read: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("entry "))
            .collect();

        let db = Database::open(dir.path())
            .unwrap_or_else(|e| panic!("cycle {cycle} ({policy}): does not reopen: {e}"));
        let now_held = workload::held_prefix(&db, held.saturating_sub(8), 8)
            .unwrap_or_else(|e| panic!("cycle {cycle} ({policy}): {e}"));
        assert!(
            now_held >= acked,
            "cycle {cycle} ({policy}): {acked} writes acknowledged, {now_held} held"
        );
        // earlier writes are all still there (spot check a sample)
        for _ in 0..5 {
            if now_held > 0 {
                let i = next(&mut seed) % now_held;
                assert!(
                    workload::holds(&db, i).unwrap(),
                    "cycle {cycle}: write {i} lost"
                );
            }
        }
        held = now_held;
        stream_holds_what_was_read(&db, &read, cycle);
        entries_read += read.len();
    }
    assert!(entries_read > 0, "the consumer read entries");
    assert!(held > cycles(), "the writer made progress: {held} writes");
}
