//! EXPORT end to end: every member of a segment to Parquet, CSV and JSON Lines, compared row
//! by row with the source files through DuckDB (`bench/peers/check_export.py`).

use std::path::Path;
use std::process::Command;

mod support;
use support::binary::{memberdb, text};

fn gen_and_load(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = dir.join("data");
    let o = memberdb(&[
        "gen",
        "--out",
        data.to_str().unwrap(),
        "--members",
        "3000",
        "--days",
        "30",
        "--seed",
        "12",
        "--end",
        "2026-11-01",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let db = dir.join("db");
    let file = |f: &str| data.join(f).to_str().unwrap().to_string();
    let o = memberdb(&[
        "load",
        "--db",
        db.to_str().unwrap(),
        "--members",
        &file("members.parquet"),
        "--tags",
        &file("tags.parquet"),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    (data, db)
}

#[test]
fn exports_equal_the_source_rows_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let (data, db) = gen_and_load(dir.path());
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut script = String::new();
    for ext in ["parquet", "csv", "jsonl"] {
        let o = out.display();
        script.push_str(&format!(
            "EXPORT ALL SHOW * TO '{o}/all.{ext}';\n\
             EXPORT TAG 'vip' AND city = 'Shanghai' SHOW city, points TO '{o}/vip_shanghai.{ext}';\n"
        ));
    }
    let o = memberdb(&[
        "query",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "csv",
        &script,
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains(",3000"), "{}", text(&o.stdout));

    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/peers/check_export.py");
    let o = Command::new("python3")
        .arg(&checker)
        .arg(&data)
        .arg(&out)
        .output()
        .expect("python3 runs");
    assert!(
        o.status.success(),
        "{}{} (DuckDB: scripts/test installs it)",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert_eq!(text(&o.stdout).lines().count(), 6, "{}", text(&o.stdout));

    // FIND ... SHOW * shows every attribute, as EXPORT does.
    let o = memberdb(&[
        "query",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "csv",
        "FIND ALL SHOW * LIMIT 1",
    ]);
    let header = text(&o.stdout).lines().next().unwrap_or("").to_string();
    assert!(
        header.starts_with("member_id,city,") && header.contains("unionid"),
        "{header}"
    );
}

#[test]
fn a_failed_export_leaves_no_file_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (_, db) = gen_and_load(dir.path());
    let run = |statement: &str| memberdb(&["query", "--db", db.to_str().unwrap(), statement]);
    let target = dir.path().join("m.xlsx");
    let o = run(&format!("EXPORT ALL TO '{}'", target.display()));
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains(".parquet, .csv or .jsonl"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&format!(
        "EXPORT ALL SHOW nosuch TO '{}'",
        dir.path().join("m.csv").display()
    ));
    assert!(
        text(&o.stderr).contains("unknown attribute 'nosuch'"),
        "{}",
        text(&o.stderr)
    );
    let o = run("EXPORT ALL TO '/nonexistent-dir/m.csv'");
    assert!(!o.status.success());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("m.") || n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
