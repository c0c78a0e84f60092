//! The `memberdb` binary end to end: gen, load, exit codes, messages.

use std::path::Path;
use std::process::{Command, Output};

use memberdb::{Database, Segment};

fn memberdb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memberdb"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn gen_small(out: &Path) {
    let out_s = out.to_str().unwrap();
    let o = memberdb(&[
        "gen",
        "--out",
        out_s,
        "--members",
        "800",
        "--days",
        "60",
        "--seed",
        "5",
        "--end",
        "2026-11-01",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("wrote 800 members"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn gen_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    gen_small(&a);
    gen_small(&b);
    for f in ["members.parquet", "events.parquet", "tags.parquet"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn load_then_open_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    gen_small(&data);
    let db_dir = dir.path().join("db");
    let p = |f: &str| data.join(f).to_str().unwrap().to_string();
    let o = memberdb(&[
        "load",
        "--db",
        db_dir.to_str().unwrap(),
        "--members",
        &p("members.parquet"),
        "--events",
        &p("events.parquet"),
        "--tags",
        &p("tags.parquet"),
    ]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("loaded 800 rows"), "{err}");
    assert!(err.contains("saved"), "{err}");

    let db = Database::open(&db_dir).unwrap();
    assert_eq!(db.member_count(), 800);
    assert!(
        db.event_count() > 4000,
        "about ten events per member: {}",
        db.event_count()
    );
    assert!(db.count(&Segment::attr("city").eq("Shanghai")).unwrap() > 50);
    assert!(db.tags().len() >= 40);
}

#[test]
fn a_bad_file_fails_and_leaves_the_database_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    let good = dir.path().join("m.csv");
    std::fs::write(&good, "member_id,city\nM1,Shanghai\n").unwrap();
    let o = memberdb(&[
        "load",
        "--db",
        db_dir.to_str().unwrap(),
        "--members",
        good.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));

    let bad = dir.path().join("e.csv");
    std::fs::write(
        &bad,
        "member_id,event,ts\nM2,purchase,2026-10-01T00:00:00Z\nM3,purchase,never\n",
    )
    .unwrap();
    let o = memberdb(&[
        "load",
        "--db",
        db_dir.to_str().unwrap(),
        "--members",
        good.to_str().unwrap(),
        "--events",
        bad.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("e.csv") && err.contains("row 2") && err.contains("never"),
        "{err}"
    );

    let db = Database::open(&db_dir).unwrap();
    assert_eq!(db.member_count(), 1, "nothing of the failed run was saved");
    assert_eq!(db.event_count(), 0);
}

#[test]
fn usage_errors_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let o = memberdb(&["load", "--db", dir.path().to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("nothing to load"));
    let o = memberdb(&[
        "gen",
        "--out",
        dir.path().to_str().unwrap(),
        "--end",
        "someday",
    ]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("--end 'someday'"));
}
