//! Golden files: statements in `tests/golden/*.mdb` run against the sample data with a
//! pinned *now*, compared with `*.out`; each line of `errors.txt` run alone, its error
//! compared with `errors.out`. `UPDATE_GOLDEN=1 cargo test --test golden` rewrites them.

use std::path::{Path, PathBuf};
use std::process::Command;

const NOW: &str = "2026-11-01T00:00:00Z";

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn memberdb(args: &[&str], sample_db: &Path) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_memberdb"))
        .args(args)
        .env("MEMBERDB_SAMPLE_DB", sample_db)
        .output()
        .expect("binary runs");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn check(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing; run with UPDATE_GOLDEN=1", path.display()));
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(5)
            .map(|(i, (e, a))| format!("line {}:\n  expected {e}\n  actual   {a}", i + 1))
            .collect();
        panic!(
            "{name} differs ({} vs {} lines):\n{}",
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn statements_match_their_golden_output() {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample");
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "mdb"))
        .collect();
    files.sort();
    assert!(files.len() >= 3);
    // The sample database is read-only: the statements (which define groups) run on a copy.
    let (ok, _, err) = memberdb(&["query", "COUNT ALL"], &sample);
    assert!(ok, "{err}");
    let db = dir.path().join("db");
    std::fs::create_dir(&db).unwrap();
    for entry in std::fs::read_dir(&sample).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), db.join(entry.file_name())).unwrap();
    }
    for file in files {
        let (ok, out, err) = memberdb(
            &[
                "query",
                "--db",
                db.to_str().unwrap(),
                "--now",
                NOW,
                "--format",
                "json",
                "--file",
                file.to_str().unwrap(),
            ],
            &sample,
        );
        assert!(ok, "{}: {err}", file.display());
        check(
            &file
                .with_extension("out")
                .file_name()
                .unwrap()
                .to_string_lossy(),
            &out,
        );
    }
}

#[test]
fn errors_match_their_golden_messages() {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample");
    let statements = std::fs::read_to_string(golden_dir().join("errors.txt")).unwrap();
    let mut all = String::new();
    for statement in statements.lines().filter(|l| !l.trim().is_empty()) {
        let (ok, _, err) = memberdb(&["query", "--now", NOW, statement], &sample);
        assert!(!ok, "{statement} should fail");
        let err: String = err
            .lines()
            .filter(|l| !l.starts_with("building the sample"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(!err.contains("panicked"), "{statement}: {err}");
        all.push_str(&format!("$ {statement}\n{err}\n"));
    }
    check("errors.out", &all);
}
