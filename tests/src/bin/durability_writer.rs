//! The child of the kill -9 test: opens a database, runs the numbered workload from a start
//! number, and prints `ack <i>` once write `i` is acknowledged, until it is killed. A
//! consumer thread reads the change stream of the group `everyone` (`ALL`, defined on the
//! empty database) and prints `entry <id> <member> <op> <cause>` for each entry it sees.
//!
//! Usage: `durability-writer DIR START SYNC_POLICY CHECKPOINT_BYTES`

use std::io::Write;

use memberdb::{Database, OpenOptions};
use memberdb_tests::workload;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, start, sync, checkpoint] = &args[..] else {
        eprintln!("usage: durability-writer DIR START SYNC_POLICY CHECKPOINT_BYTES");
        std::process::exit(2);
    };
    let options = OpenOptions {
        sync: sync.parse().expect("a sync policy"),
        checkpoint_log_bytes: checkpoint.parse().expect("a byte count"),
        read_only: false,
        ..OpenOptions::default()
    };
    let db = std::sync::Arc::new(Database::open_with(dir, options).expect("the database opens"));
    if db.groups().is_empty() {
        db.define_group("everyone", memberdb::Segment::all())
            .expect("the group is defined");
    }
    let consumer = db.clone();
    std::thread::spawn(move || {
        let mut after = consumer
            .changes("everyone", memberdb::EntryId::ZERO)
            .expect("the stream reads")
            .last()
            .map_or(memberdb::EntryId::ZERO, |e| e.id);
        loop {
            let _ = consumer.wait_changes("everyone", after, std::time::Duration::from_secs(1));
            let entries: Vec<_> = consumer
                .changes("everyone", after)
                .expect("the stream reads")
                .collect();
            let mut out = std::io::stdout().lock();
            for e in entries {
                writeln!(
                    out,
                    "entry {} {} {} {}",
                    e.id,
                    e.member_id,
                    e.op.as_str(),
                    e.cause.as_str()
                )
                .expect("stdout");
                after = e.id;
            }
            out.flush().expect("stdout");
        }
    });
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "open").expect("stdout");
        out.flush().expect("stdout");
    }
    let mut i: u64 = start.parse().expect("a start number");
    loop {
        workload::apply(&db, i).expect("the write is acknowledged");
        let mut out = std::io::stdout().lock();
        writeln!(out, "ack {i}").expect("stdout");
        out.flush().expect("stdout");
        i += 1;
    }
}
