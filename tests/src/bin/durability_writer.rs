//! The child of the kill -9 test: opens a database, runs the numbered workload from a start
//! number, and prints `ack <i>` once write `i` is acknowledged, until it is killed.
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
    let db = Database::open_with(dir, options).expect("the database opens");
    let mut out = std::io::stdout().lock();
    writeln!(out, "open").expect("stdout");
    out.flush().expect("stdout");
    let mut i: u64 = start.parse().expect("a start number");
    loop {
        workload::apply(&db, i).expect("the write is acknowledged");
        writeln!(out, "ack {i}").expect("stdout");
        out.flush().expect("stdout");
        i += 1;
    }
}
