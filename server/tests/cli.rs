//! The `memberdb` binary end to end: gen, load, exit codes, messages.

use std::path::Path;
use std::process::{Command, Output};

use memberdb::{Database, Segment};

mod support;
use support::binary::{memberdb, text};

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
    assert!(err.contains("800 rows of members from"), "{err}");
    assert!(err.contains("checkpointed"), "{err}");

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

    // One command is one change: the good members file goes with the bad events file.
    let more = dir.path().join("m2.csv");
    std::fs::write(&more, "member_id,city\nM5,Beijing\n").unwrap();
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
        more.to_str().unwrap(),
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

// ---------------------------------------------------------------- query and repl

/// Runs the binary with a private sample database (built from data-samples/ on first use).
fn memberdb_sample(args: &[&str], stdin: Option<&str>, sample_db: &Path) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_memberdb"))
        .args(args)
        .env("MEMBERDB_SAMPLE_DB", sample_db)
        .env("MEMBERDB_HISTORY", sample_db.with_extension("history"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary runs");
    let mut input = child.stdin.take().unwrap();
    // A command that fails at once (no database) may exit before reading: the pipe is then
    // closed, and what it did is in its output and status, not in this write.
    let _ = input.write_all(stdin.unwrap_or("").as_bytes());
    drop(input);
    child.wait_with_output().unwrap()
}

const NOW: &str = "2026-11-01T00:00:00Z";

#[test]
fn query_formats_and_several_statements() {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample");
    let o = memberdb_sample(
        &[
            "query",
            "--now",
            NOW,
            "--format",
            "json",
            "COUNT TAG 'vip'; FIND TAG 'vip' AND city = 'Shanghai' SHOW city, points LIMIT 2; BREAKDOWN TAG 'vip' BY gender",
        ],
        None,
        &sample,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let vip = lines[0]["count"].as_u64().unwrap();
    assert!(vip > 100);
    let members = lines[1]["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[0]["city"], "Shanghai");
    assert!(members[0]["member_id"].as_str().unwrap().starts_with('M'));
    assert!(members[0]["points"].is_i64());
    let breakdown = lines[2]["breakdown"].as_array().unwrap();
    let total: u64 = breakdown.iter().map(|l| l["count"].as_u64().unwrap()).sum();
    assert_eq!(total, vip, "a breakdown adds up to the segment");
    assert!(
        breakdown.iter().any(|l| l["value"].is_null()),
        "NULL is a line of its own"
    );

    let o = memberdb_sample(
        &[
            "query",
            "--now",
            NOW,
            "--format",
            "csv",
            "BREAKDOWN TAG 'vip' BY level TOP 2",
        ],
        None,
        &sample,
    );
    let csv = text(&o.stdout);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "value,count");
    assert_eq!(rows.len(), 3);

    let o = memberdb_sample(&["query", "--now", NOW, "COUNT ALL"], None, &sample);
    assert_eq!(text(&o.stdout).trim(), "20000");

    // a funnel as a table: each step's share of the first with a bar, durations
    let funnel = "FUNNEL scan_qr, follow, purchase WITHIN 14 DAYS IN LAST 90 DAYS";
    let o = memberdb_sample(&["query", "--now", NOW, funnel], None, &sample);
    let table = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for expected in [
        "of first",
        "median from previous",
        "100.0% ████",
        "scan_qr",
        "15m 00s",
    ] {
        assert!(table.contains(expected), "{expected} in\n{table}");
    }
    // JSON: a row per step, members never growing along the steps
    let o = memberdb_sample(
        &["query", "--now", NOW, "--format", "json", funnel],
        None,
        &sample,
    );
    let json: serde_json::Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
    let members: Vec<u64> = json["funnel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["members"].as_u64().unwrap())
        .collect();
    assert_eq!(members.len(), 3);
    assert!(members.windows(2).all(|w| w[0] >= w[1]) && members[2] > 0);

    // *now* as DuckDB and PostgreSQL print a timestamp with an offset: the same instant.
    let recent = "COUNT DID purchase IN LAST 7 DAYS";
    let utc = memberdb_sample(&["query", "--now", NOW, recent], None, &sample);
    let shanghai = memberdb_sample(
        &["query", "--now", "2026-11-01 08:00:00.000000+08", recent],
        None,
        &sample,
    );
    assert!(shanghai.status.success(), "{}", text(&shanghai.stderr));
    assert!(text(&utc.stdout).trim().parse::<u64>().unwrap() > 0);
    assert_eq!(text(&shanghai.stdout), text(&utc.stdout));
}

#[test]
fn query_never_creates_a_database_and_csv_says_what_it_leaves_out() {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample");

    // A mistyped --db is an error, not an empty database answering 0.
    let typo = dir.path().join("typo");
    let typo_arg = typo.to_str().unwrap();
    for command in [
        &["query", "--db", typo_arg, "COUNT ALL"][..],
        &["repl", "--db", typo_arg],
    ] {
        let o = memberdb_sample(command, Some("COUNT ALL;\n"), &sample);
        assert!(!o.status.success(), "{command:?}");
        let err = text(&o.stderr);
        assert!(err.contains("no database at"), "{err}");
        assert!(
            err.contains("memberdb load --db"),
            "says how to make one: {err}"
        );
        assert!(!typo.exists(), "{command:?} created {}", typo.display());
    }

    // CSV: NULL is an empty field, as DuckDB and PostgreSQL write it; a FIND cut at its
    // LIMIT says so on stderr, in CSV and JSON (a table says it under itself).
    let null_genders = memberdb_sample(&["query", "COUNT gender IS NULL"], None, &sample);
    let nulls: u64 = text(&null_genders.stdout).trim().parse().unwrap();
    assert!(nulls > 3, "the sample has members without a gender");
    for format in ["csv", "json"] {
        let o = memberdb_sample(
            &[
                "query",
                "--format",
                format,
                "FIND gender IS NULL SHOW gender, city LIMIT 3",
            ],
            None,
            &sample,
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(
            err.contains(&format!("FIND gave 3 of {nulls} members")),
            "{format}: {err}"
        );
        if format == "csv" {
            let out = text(&o.stdout);
            let rows: Vec<&str> = out.lines().collect();
            assert_eq!(rows[0], "member_id,gender,city");
            assert_eq!(rows.len(), 4);
            for row in &rows[1..] {
                let fields: Vec<&str> = row.split(',').collect();
                assert_eq!(fields[1], "", "NULL is an empty field: {row}");
                assert_ne!(fields[1], "NULL");
            }
        }
    }
    // All of them fit: no note.
    let o = memberdb_sample(
        &[
            "query",
            "--format",
            "csv",
            "FIND gender IS NULL SHOW gender LIMIT 100000",
        ],
        None,
        &sample,
    );
    assert!(
        !text(&o.stderr).contains("FIND gave"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(text(&o.stdout).lines().count() as u64, nulls + 1);
}

#[test]
fn query_errors_go_to_stderr_with_a_caret_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample");
    let o = memberdb_sample(&["query", "COUNT ALL; COUNT TAG 'vipp'"], None, &sample);
    assert!(!o.status.success());
    assert_eq!(
        text(&o.stdout).trim(),
        "20000",
        "statements before the error ran"
    );
    let err = text(&o.stderr);
    assert!(
        err.contains("unknown tag 'vipp'; did you mean 'vip'?"),
        "{err}"
    );
    let o = memberdb_sample(
        &["query", "COUNT ALL; COUNT TAG 'vipp'; COUNT ALL"],
        None,
        &sample,
    );
    assert_eq!(text(&o.stdout).trim(), "20000", "only the first ran");
    assert!(
        text(&o.stderr)
            .contains("statement 2 of 3 failed: 1 ran before it, 1 after it did not run"),
        "{}",
        text(&o.stderr)
    );
    let o = memberdb_sample(&["query", "COUNT ALL; COUNT city =="], None, &sample);
    assert!(
        text(&o.stdout).trim().is_empty(),
        "a syntax error runs nothing"
    );
    assert!(
        text(&o.stderr).contains("no statement ran"),
        "{}",
        text(&o.stderr)
    );
    // Statements from stdin.
    let o = memberdb_sample(&["query"], Some("COUNT ALL;\nCOUNT TAG 'vip';\n"), &sample);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).lines().count(), 2, "{}", text(&o.stdout));
    assert!(err.contains("^^^^^^"), "{err}");
    let o = memberdb_sample(&["query", "COUNT city =="], None, &sample);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("syntax error at line 1, column 13"),
        "{}",
        text(&o.stderr)
    );
    let o = memberdb_sample(&["query", "COUNT points = 'many'"], None, &sample);
    assert!(
        text(&o.stderr).contains("'points' is of type integer"),
        "{}",
        text(&o.stderr)
    );
    let o = memberdb_sample(&["query", "--now", "yesterday", "COUNT ALL"], None, &sample);
    assert!(!o.status.success());
}

#[test]
fn query_file_and_groups_persist_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    gen_small(&data);
    let db = dir.path().join("db");
    let p = |f: &str| data.join(f).to_str().unwrap().to_string();
    let o = memberdb(&[
        "load",
        "--db",
        db.to_str().unwrap(),
        "--members",
        &p("members.parquet"),
        "--events",
        &p("events.parquet"),
        "--tags",
        &p("tags.parquet"),
    ]);
    assert!(o.status.success());
    let script = dir.path().join("q.mdb");
    std::fs::write(&script, "-- reminder journey\nDEFINE GROUP reminder AS DID claim_coupon\n  AND NOT DID redeem_coupon;\nCOUNT IN GROUP reminder;\n").unwrap();
    let o = memberdb(&[
        "query",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "json",
        "--file",
        script.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let size = lines[0]["members"].as_u64().unwrap();
    assert_eq!(lines[1]["count"].as_u64().unwrap(), size);
    // a second process sees the group
    let o = memberdb(&["query", "--db", db.to_str().unwrap(), "SHOW GROUPS"]);
    let shown = text(&o.stdout);
    assert!(
        shown.contains("reminder") && shown.contains("DID claim_coupon AND NOT DID redeem_coupon"),
        "{shown}"
    );
    let o = memberdb(&[
        "query",
        "--db",
        db.to_str().unwrap(),
        "DROP GROUP reminder; SHOW GROUPS",
    ]);
    assert!(o.status.success());
    let o = memberdb(&[
        "query",
        "--db",
        db.to_str().unwrap(),
        "COUNT IN GROUP reminder",
    ]);
    assert!(!o.status.success());
}

#[test]
fn repl_exit_quit_and_help_need_no_backslash() {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample");
    for quit in ["exit", "quit;", "QUIT"] {
        let script = format!("help\nCOUNT ALL;\n{quit}\nCOUNT TAG 'vip';\n");
        let o = memberdb_sample(&["repl", "--now", NOW], Some(&script), &sample);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let out = text(&o.stdout);
        assert!(
            out.contains("BREAKDOWN"),
            "help printed its examples: {out}"
        );
        let counts: Vec<&str> = out
            .lines()
            .filter(|l| l.trim().parse::<u64>().is_ok())
            .collect();
        assert_eq!(counts, ["20000"], "{quit} ended the session: {out}");
    }
}

#[test]
fn scripted_repl() {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample");
    let script = "\\timing\nCOUNT TAG 'vip' AND\n  city = 'Shanghai';\n\\format json\nCOUNT ctiy = 'x'\nEXPLAIN TAG 'vip' AND NOT TAG 'churn_risk'\n\\help\n\\nonsense\nCOUNT ALL\n";
    let o = memberdb_sample(&["repl", "--now", NOW], Some(script), &sample);
    let out = text(&o.stdout);
    let err = text(&o.stderr);
    assert!(out.contains("timing is on"), "{out}");
    assert!(
        out.lines().any(|l| l.trim().parse::<u64>().is_ok()),
        "multi-line COUNT answered: {out}"
    );
    assert!(out.contains(" µs)"), "{out}");
    assert!(
        out.contains("\"columns\":[\"step\",\"kernel\",\"members\",\"µs\"]"),
        "{out}"
    );
    assert!(out.contains("BREAKDOWN"), "help has examples: {out}");
    assert!(out.contains("{\"count\":20000}"), "{out}");
    assert!(err.contains("did you mean 'city'"), "{err}");
    assert!(err.contains("unknown command \\nonsense"), "{err}");
    assert!(
        !o.status.success(),
        "a failed statement makes a scripted run fail"
    );
}

#[test]
fn check_reports_a_torn_tail_and_repair_drops_it() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    let db_s = db_dir.to_str().unwrap();
    // `load` makes the database (`query` never creates one); it ends with a checkpoint.
    let members = dir.path().join("members.csv");
    std::fs::write(&members, "member_id,city\nM1,Shanghai\n").unwrap();
    let o = memberdb(&["load", "--db", db_s, "--members", members.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = memberdb(&["query", "--db", db_s, "DEFINE GROUP g AS ALL"]);
    assert!(o.status.success(), "{}", text(&o.stderr));

    let o = memberdb(&["check", "--db", db_s]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("status:         ok"), "{out}");
    assert!(out.contains("1 records after the checkpoint"), "{out}");

    let log = std::fs::read_dir(&db_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "log"))
        .unwrap();
    let good = std::fs::metadata(&log).unwrap().len();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 5]).unwrap();
    drop(f);

    let o = memberdb(&["check", "--db", db_s]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains(&format!("torn tail: 9 bytes at byte offset {good}")),
        "{out}"
    );
    assert!(out.contains("--repair"), "{out}");
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        good + 9,
        "check changes nothing"
    );

    let o = memberdb(&["check", "--db", db_s, "--repair"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("dropped 9 bytes"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(std::fs::metadata(&log).unwrap().len(), good);
    let o = memberdb(&["query", "--db", db_s, "SHOW GROUPS"]);
    assert!(
        text(&o.stdout).contains('g'),
        "the group survived: {}",
        text(&o.stdout)
    );

    let o = memberdb(&[
        "check",
        "--db",
        dir.path().join("nothing").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("no memberdb database"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_format_1_fixture_answers_as_it_did_on_the_command_line() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/format-v1");
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture.join("db")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let o = memberdb(&[
        "query",
        "--db",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
        "--now",
        "2026-11-23T00:00:00Z",
        "--file",
        fixture.join("queries.mdb").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let expected = std::fs::read_to_string(fixture.join("expected.jsonl")).unwrap();
    assert_eq!(text(&o.stdout), expected);
}

/// Discovery (issue 12): SHOW EVENT names an event's properties and top values, BREAKDOWN
/// BY a property OF an event counts members per value (equal to DuckDB's answer on the
/// sample files), BY a property without OF says how, and a value no member has gets a hint.
#[test]
fn discovery_of_properties_values_and_typos() {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample");
    let run =
        |statement: &str| memberdb_sample(&["query", "--format", "csv", statement], None, &sample);
    let o = run("SHOW EVENT claim_coupon");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.lines()
            .any(|l| l.starts_with("coupon_id,string,") && l.contains("CP-")),
        "{out}"
    );

    let o = run("BREAKDOWN city = 'Shanghai' BY coupon_id OF claim_coupon");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut ours: Vec<String> = text(&o.stdout)
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect();
    ours.sort();
    assert!(
        ours.iter().any(|l| l.starts_with("CP-XMAS-50,")),
        "{ours:?}"
    );
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data-samples");
    let script = format!(
        r#"
import duckdb
s = "{s}"
members = f"read_parquet('{{s}}/members.parquet')"
events = f"read_parquet('{{s}}/events.parquet')"
rows = duckdb.sql(f"""
  WITH seg AS (SELECT member_id FROM {{members}} WHERE city = 'Shanghai'),
  per AS (SELECT coupon_id, count(DISTINCT e.member_id) n FROM {{events}} e JOIN seg USING (member_id)
          WHERE e.event = 'claim_coupon' AND coupon_id IS NOT NULL GROUP BY coupon_id),
  without AS (SELECT count(*) n FROM seg WHERE member_id NOT IN
          (SELECT member_id FROM {{events}} WHERE event = 'claim_coupon' AND coupon_id IS NOT NULL))
  SELECT coupon_id, n FROM per UNION ALL SELECT NULL, n FROM without WHERE n > 0""").fetchall()
for value, n in rows:
    print(f"{{'' if value is None else value}},{{n}}")
"#,
        s = samples.display()
    );
    let o = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(o.status.success(), "DuckDB: {}", text(&o.stderr));
    let mut duckdb: Vec<String> = text(&o.stdout).lines().map(str::to_string).collect();
    duckdb.sort();
    assert_eq!(ours, duckdb);

    let o = run("BREAKDOWN DID claim_coupon BY coupon_id");
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("BY coupon_id OF claim_coupon"),
        "{}",
        text(&o.stderr)
    );

    let o = run("COUNT city = 'shanghai' AND DID claim_coupon WHERE coupon_id = 'cp-xmas-50'");
    assert!(o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("hint: no member has city 'shanghai'; did you mean 'Shanghai'?")
            && err.contains("did you mean 'CP-XMAS-50'?"),
        "{err}"
    );
    let o = run("COUNT city = 'Shanghai'");
    assert!(!text(&o.stderr).contains("hint"), "{}", text(&o.stderr));
}

/// The REPL in a pseudo terminal (issue 12): the banner names the database and *now*, Tab
/// completes a value (`city = 'Shang` + Tab), `\now` answers, `\q` leaves.
#[test]
fn repl_in_a_terminal_completes_values_and_answers_commands() {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample");
    // Built first, so the terminal session does not wait for it.
    let o = memberdb_sample(&["query", "COUNT city = 'Shanghai'"], None, &sample);
    let shanghai = text(&o.stdout).trim().to_string();
    let script = r#"
import os, pty, select, subprocess, sys, time
master, slave = pty.openpty()
p = subprocess.Popen([sys.argv[1], "repl", "--now", "2026-11-01T00:00:00Z"],
                     stdin=slave, stdout=slave, stderr=slave)
os.close(slave)
out = b""
def until(pattern, seconds=30):
    global out
    start = len(out)
    end = time.time() + seconds
    while pattern.encode() not in out[start:] and time.time() < end:
        if select.select([master], [], [], 0.1)[0]:
            try:
                out += os.read(master, 65536)
            except OSError:
                return
until("memberdb> ")
for keys, wait in [("COUNT city = 'Shang\t", "Shanghai'"), ("\r", "memberdb> "),
                   ("\\now\r", "memberdb> "), ("\\q\r", "")]:
    os.write(master, keys.encode())
    if wait:
        until(wait)
p.wait(timeout=10)
sys.stdout.write(out.decode("utf-8", "replace"))
"#;
    let o = Command::new("python3")
        .args(["-c", script, env!("CARGO_BIN_EXE_memberdb")])
        .env("MEMBERDB_SAMPLE_DB", &sample)
        .env("MEMBERDB_HISTORY", dir.path().join("history"))
        .output()
        .unwrap();
    let screen = text(&o.stdout);
    assert!(o.status.success(), "{screen}{}", text(&o.stderr));
    assert!(
        screen.contains("the read-only sample database") && screen.contains("members"),
        "{screen}"
    );
    assert!(
        screen.contains("COUNT city = 'Shanghai'"),
        "completed: {screen}"
    );
    assert!(
        screen.lines().any(|l| l.trim() == shanghai),
        "answer {shanghai}: {screen}"
    );
    assert!(
        screen.contains("now is pinned at 2026-11-01T00:00:00Z"),
        "{screen}"
    );
}

#[test]
fn load_identities_links_profiles_and_a_bad_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    let db = db_dir.to_str().unwrap();
    let members = dir.path().join("members.csv");
    std::fs::write(&members, "member_id,city\nM1,Shanghai\nM2,Beijing\n").unwrap();
    let o = memberdb(&["load", "--db", db, "--members", members.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = memberdb(&[
        "query",
        "--db",
        db,
        "DEFINE IDENTIFIER unionid LIMIT 1 PRIORITY 1; DEFINE IDENTIFIER phone BLOCK '13800000000'",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // M2's fan profile and M1 share a UnionID; a row without member_id finds them.
    let ids = dir.path().join("ids.csv");
    std::fs::write(
        &ids,
        "member_id,unionid,phone\nM1,U1,13911112222\nM2,,13800000000\n,U1,\n,U9,13700000000\n",
    )
    .unwrap();
    let o = memberdb(&["load", "--db", db, "--identities", ids.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("1 blocked values were ignored"),
        "{}",
        text(&o.stderr)
    );
    // The profile the last row starts is a new member.
    assert!(
        text(&o.stderr).contains("(1 new members)"),
        "{}",
        text(&o.stderr)
    );
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "member_id,phnoe\nM2,1\n").unwrap();
    let o = memberdb(&["load", "--db", db, "--identities", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("phone"),
        "names the closest: {}",
        text(&o.stderr)
    );
    let db = Database::open(&db_dir).unwrap();
    // M1, M2 and the profile U9 started.
    assert_eq!(db.member_count(), 3);
    assert_eq!(db.count(&Segment::has_identifier("unionid")).unwrap(), 2);
    assert_eq!(
        db.lookup_identifier("unionid", "U1").unwrap().as_deref(),
        Some("M1")
    );
    assert_eq!(
        db.lookup_identifier("phone", "13700000000")
            .unwrap()
            .as_deref(),
        Some("unionid:U9")
    );
    assert_eq!(db.lookup_identifier("phone", "13800000000").unwrap(), None);
}
