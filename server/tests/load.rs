//! `memberdb load` end to end (issue 12): typed loads, one change per command, content-hash
//! idempotency, directories, `.gz`, list columns, and a CSV as DuckDB writes it.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output};

mod support;
use support::binary::{memberdb, text, write};

fn load(db: &Path, args: &[&str]) -> Output {
    let mut all = vec!["load", "--db", db.to_str().unwrap()];
    all.extend_from_slice(args);
    memberdb(&all)
}

/// Runs a load that must fail; its stderr.
fn refused(db: &Path, args: &[&str]) -> String {
    let o = load(db, args);
    assert!(!o.status.success(), "load {args:?} should fail");
    text(&o.stderr)
}

fn loaded(db: &Path, args: &[&str]) -> String {
    let o = load(db, args);
    let err = text(&o.stderr);
    assert!(o.status.success(), "load {args:?} failed: {err}");
    err
}

/// Runs `statement` with `memberdb query`, answering in CSV.
fn run_query(db: &Path, statement: &str) -> Output {
    memberdb(&[
        "query",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "csv",
        statement,
    ])
}

/// The answer of `statement`, in CSV.
fn query(db: &Path, statement: &str) -> String {
    let o = run_query(db, statement);
    assert!(o.status.success(), "{statement}: {}", text(&o.stderr));
    text(&o.stdout)
}

fn count(db: &Path, segment: &str) -> u64 {
    let out = query(db, &format!("COUNT {segment}"));
    out.lines().last().unwrap().trim().parse().unwrap()
}

/// The type SHOW ATTRIBUTES gives `name`.
fn attribute_type(db: &Path, name: &str) -> String {
    let out = query(db, "SHOW ATTRIBUTES");
    out.lines()
        .find_map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0] == name).then(|| cells[1].to_string())
        })
        .unwrap_or_else(|| panic!("no attribute {name} in {out}"))
}

#[test]
fn phones_and_zips_stay_text_and_schema_declares_types() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("db");
    let members = write(
        d,
        "m.csv",
        "member_id,phone,zip,points,card\n\
         M1,02112345678,010010,10,7\n\
         M2,+8613800000000,200000,20,8\n\
         M3,13900000000,100000,30,9\n",
    );
    let err = loaded(&db, &["--members", members.to_str().unwrap()]);
    assert!(
        err.contains("column 'card' loaded as integer") && err.contains("--schema card:string"),
        "{err}"
    );
    assert!(!err.contains("column 'points'"), "{err}");
    assert_eq!(count(&db, "phone = '02112345678'"), 1);
    assert_eq!(count(&db, "phone = '+8613800000000'"), 1);
    assert_eq!(count(&db, "zip = '010010'"), 1);
    assert_eq!(attribute_type(&db, "points"), "integer");
    assert_eq!(count(&db, "points >= 20"), 2);

    // --schema decides; an attribute keeps its type for later loads.
    let more = write(d, "m2.csv", "member_id,card,grade\nM4,10,1\n");
    loaded(
        &db,
        &[
            "--members",
            more.to_str().unwrap(),
            "--schema",
            "grade:string",
        ],
    );
    assert_eq!(attribute_type(&db, "grade"), "string");
    assert_eq!(attribute_type(&db, "card"), "integer");
    let conflict = write(d, "m3.csv", "member_id,card\nM5,11\n");
    let err = refused(
        &db,
        &[
            "--members",
            conflict.to_str().unwrap(),
            "--schema",
            "card:string",
        ],
    );
    assert!(
        err.contains("card") && err.contains("ALTER ATTRIBUTE card TYPE string"),
        "{err}"
    );
    let err = refused(
        &db,
        &[
            "--members",
            conflict.to_str().unwrap(),
            "--schema",
            "crad:string",
        ],
    );
    assert!(err.contains("did you mean 'card'"), "{}", err);
    let err = refused(
        &db,
        &[
            "--members",
            conflict.to_str().unwrap(),
            "--schema",
            "card:money",
        ],
    );
    assert!(err.contains("unknown type 'money'"), "{}", err);
}

#[test]
fn a_column_falling_back_to_text_is_refused_naming_its_values_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("db");
    let events = write(
        d,
        "e.csv",
        "member_id,event,ts,amount\n\
         M1,purchase,2026-10-01T10:00:00Z,100\n\
         M2,purchase,2026-10-02T10:00:00Z,\"1,200\"\n\
         M3,purchase,2026-10-03T10:00:00Z,250.5\n",
    );
    let err = refused(&db, &["--events", events.to_str().unwrap()]);
    assert!(
        err.contains("amount")
            && err.contains("'1,200'")
            && err.contains("row 2")
            && err.contains("--allow-text-fallback")
            && err.contains("nothing was loaded"),
        "{err}"
    );
    assert!(!db.join("manifest.json").exists() || count(&db, "ALL") == 0);

    let err = loaded(
        &db,
        &[
            "--events",
            events.to_str().unwrap(),
            "--allow-text-fallback",
        ],
    );
    assert!(
        err.contains("warning: column 'amount' loaded as text") && err.contains("'1,200'"),
        "{err}"
    );
    assert_eq!(count(&db, "DID purchase WHERE amount = '1,200'"), 1);

    // A column of mixed documented timestamp forms is a timestamp column.
    let mixed = write(
        d,
        "e2.csv",
        "member_id,event,ts,paid_at\n\
         M1,pay,2025-07-09 07:26:09.849265+00,2025-07-09\n\
         M2,pay,2025-07-09T08:00:00Z,2025-07-09 15:26:09+08\n",
    );
    loaded(&db, &["--events", mixed.to_str().unwrap()]);
    assert_eq!(
        count(
            &db,
            "DID pay WHERE (paid_at >= '2025-07-09T07:00:00Z' AND paid_at < '2025-07-09T08:00:00Z')"
        ),
        1
    );
}

#[test]
fn one_command_is_one_change_and_a_repeated_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("db");
    let members = write(d, "m.csv", "member_id,city\nM1,Shanghai\nM2,Beijing\n");
    let events = write(
        d,
        "e.jsonl",
        "{\"member_id\":\"M1\",\"event\":\"claim_coupon\",\"ts\":\"2026-11-01T08:00:00Z\",\"coupon_id\":\"CP-XMAS-50\"}\n",
    );
    loaded(
        &db,
        &[
            "--members",
            members.to_str().unwrap(),
            "--events",
            events.to_str().unwrap(),
        ],
    );
    assert_eq!(count(&db, "DID claim_coupon"), 1);

    // The same content under another name, gzip-compressed: refused, naming the earlier load.
    let copy = d.join("again.jsonl.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&copy).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(&std::fs::read(&events).unwrap()).unwrap();
    gz.finish().unwrap();
    let fresh = write(d, "m2.csv", "member_id,city\nM9,Hangzhou\n");
    let err = refused(
        &db,
        &[
            "--members",
            fresh.to_str().unwrap(),
            "--events",
            copy.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains("again.jsonl.gz")
            && err.contains("e.jsonl in load 1")
            && err.contains("--again"),
        "{err}"
    );
    assert_eq!(
        count(&db, "city = 'Hangzhou'"),
        0,
        "the whole command was refused"
    );
    assert_eq!(count(&db, "DID claim_coupon"), 1);

    loaded(
        &db,
        &[
            "--members",
            fresh.to_str().unwrap(),
            "--events",
            copy.to_str().unwrap(),
            "--again",
        ],
    );
    assert_eq!(count(&db, "DID claim_coupon AT LEAST 2 TIMES"), 1);
    assert_eq!(count(&db, "city = 'Hangzhou'"), 1);

    let loads = query(&db, "SHOW LOADS");
    let rows: Vec<&str> = loads.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{loads}");
    assert!(
        rows[0].starts_with("1,") && rows[0].contains(",members,"),
        "{loads}"
    );
    assert!(
        rows[3].starts_with("2,") && rows[3].contains("again.jsonl.gz"),
        "{loads}"
    );
}

#[test]
fn directories_of_part_files_gz_and_list_columns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("db");
    let parts = d.join("events");
    std::fs::create_dir_all(parts.join("day=2")).unwrap();
    write(
        &parts,
        "part-0.csv",
        "member_id,event,ts\nM1,purchase,2026-10-01T10:00:00Z\n",
    );
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(parts.join("day=2/part-1.csv.gz")).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(b"member_id,event,ts\nM2,purchase,2026-10-02T10:00:00Z\n")
        .unwrap();
    gz.finish().unwrap();
    write(&parts, "_SUCCESS", "");
    let members = write(
        d,
        "m.jsonl",
        "{\"member_id\":\"M1\",\"city\":\"Shanghai\",\"interests\":[\"photography\",\"coffee\"]}\n\
         {\"member_id\":\"M2\",\"city\":\"Beijing\",\"interests\":[]}\n",
    );
    let err = refused(
        &db,
        &[
            "--members",
            members.to_str().unwrap(),
            "--events",
            parts.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains("'interests'") && err.contains("--tags-from interests"),
        "{err}"
    );

    let err = loaded(
        &db,
        &[
            "--members",
            members.to_str().unwrap(),
            "--events",
            parts.to_str().unwrap(),
            "--tags-from",
            "interests",
        ],
    );
    assert!(err.contains("part-1.csv.gz"), "{err}");
    assert_eq!(count(&db, "DID purchase"), 2);
    assert_eq!(count(&db, "TAG 'photography' AND TAG 'coffee'"), 1);
    assert_eq!(count(&db, "city = 'Beijing'"), 1);

    let more = write(
        d,
        "m2.jsonl",
        "{\"member_id\":\"M3\",\"interests\":[\"tea\"]}\n",
    );
    let err = loaded(
        &db,
        &["--members", more.to_str().unwrap(), "--skip", "interests"],
    );
    assert!(err.contains("column 'interests' skipped"), "{err}");
    assert!(!query(&db, "SHOW TAGS").contains("tea"));
    assert_eq!(count(&db, "ALL"), 3);
}

/// A CSV as DuckDB's `COPY ... TO` writes it (timestamps with `+00`, doubles, a varchar with
/// leading zeros, dates, NULL as empty): loaded typed, and answers equal to DuckDB's.
#[test]
fn a_csv_written_by_duckdb_loads_typed_and_answers_as_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = format!(
        r#"
import duckdb
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
con.execute("""
CREATE TABLE e AS SELECT
  'M' || (i % 97) AS member_id,
  CASE WHEN i % 3 = 0 THEN 'claim_coupon' ELSE 'purchase' END AS event,
  TIMESTAMPTZ '2025-07-01 00:00:00+00' + to_seconds(i * 7919) AS ts,
  CASE WHEN i % 5 = 0 THEN NULL ELSE round(i * 1.37, 2) END AS amount,
  lpad(CAST(i % 50 AS VARCHAR), 6, '0') AS store_code,
  DATE '2025-01-01' + CAST(i % 40 AS INTEGER) AS paid_on
FROM range(2000) t(i)
""")
con.execute("COPY e TO '{dir}/e.csv' (HEADER)")
print(con.execute("SELECT count(DISTINCT member_id) FROM e WHERE event = 'purchase' AND amount > 1000 AND ts >= TIMESTAMPTZ '2025-07-10 00:00:00+00'").fetchone()[0])
print(con.execute("SELECT count(DISTINCT member_id) FROM e WHERE store_code = '000007'").fetchone()[0])
print(con.execute("SELECT count(DISTINCT member_id) FROM e WHERE event = 'claim_coupon' AND paid_on < DATE '2025-01-05'").fetchone()[0])
"#,
        dir = d.display()
    );
    let o = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs");
    assert!(
        o.status.success(),
        "DuckDB (python3 -m pip install duckdb; scripts/test installs it): {}",
        text(&o.stderr)
    );
    let expected: Vec<u64> = text(&o.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert!(expected.iter().all(|&n| n > 0), "{expected:?}");
    let csv = std::fs::read_to_string(d.join("e.csv")).unwrap();
    assert!(
        csv.contains("+00"),
        "DuckDB writes offsets: {}",
        &csv[..200]
    );

    let db = d.join("db");
    loaded(&db, &["--events", d.join("e.csv").to_str().unwrap()]);
    let answers = [
        count(
            &db,
            "DID purchase WHERE amount > 1000 SINCE '2025-07-10T00:00:00Z'",
        ),
        count(
            &db,
            "DID purchase WHERE store_code = '000007' OR DID claim_coupon WHERE store_code = '000007'",
        ),
        count(&db, "DID claim_coupon WHERE paid_on < '2025-01-05'"),
    ];
    assert_eq!(answers.to_vec(), expected);
}

/// The way out of a wrongly typed attribute: ALTER ATTRIBUTE converts (refused, naming the
/// values, where they do not convert), DROP ATTRIBUTE removes; both durable, both refused
/// while a group uses the attribute.
#[test]
fn a_wrongly_typed_attribute_can_be_altered_or_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("db");
    let members = write(
        d,
        "m.csv",
        "member_id,points,level\nM1,10,1\nM2,n/a,2\nM3,30,3\n",
    );
    loaded(
        &db,
        &[
            "--members",
            members.to_str().unwrap(),
            "--allow-text-fallback",
        ],
    );
    assert_eq!(attribute_type(&db, "points"), "string");
    let run = |statement: &str| run_query(&db, statement);
    let o = run("ALTER ATTRIBUTE points TYPE integer");
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("'n/a' (member M2)") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(attribute_type(&db, "points"), "string");

    // Fix the value, then convert.
    let fix = write(d, "fix.csv", "member_id,points\nM2,20\n");
    loaded(&db, &["--members", fix.to_str().unwrap()]);
    let o = run("ALTER ATTRIBUTE points TYPE integer");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(attribute_type(&db, "points"), "integer");
    assert_eq!(count(&db, "points >= 20"), 2);

    // A group that uses an attribute keeps it.
    let o = run("DEFINE GROUP high AS level >= 2");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = run("DROP ATTRIBUTE level");
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("group 'high'"),
        "{}",
        text(&o.stderr)
    );
    let o = run("ALTER ATTRIBUTE level TYPE string");
    assert!(!o.status.success());
    let o = run("DROP GROUP high; DROP ATTRIBUTE level; ALTER ATTRIBUTE points TYPE float");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!query(&db, "SHOW ATTRIBUTES").contains("level"));
    assert_eq!(attribute_type(&db, "points"), "float");
    let o = run("ALTER ATTRIBUTE points TYPE money");
    assert!(
        text(&o.stderr).contains("unknown type 'money'"),
        "{}",
        text(&o.stderr)
    );
}

/// A Parquet file with a list column, as DuckDB writes it: refused whole without a word on
/// the column, loaded with `--tags-from` (each element a tag), equal to DuckDB's counts.
#[test]
fn a_parquet_list_column_loads_as_tags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = format!(
        r#"
import duckdb
con = duckdb.connect()
con.execute("""
COPY (SELECT 'M' || i AS member_id,
             CASE WHEN i % 4 = 0 THEN NULL
                  ELSE list_slice(['photography', 'coffee', 'hiking', 'tea'], 1 + i % 3, 2 + i % 3) END AS interests,
             i AS points
      FROM range(500) t(i)) TO '{dir}/m.parquet'
""")
for tag in ['photography', 'coffee', 'hiking', 'tea']:
    print(con.execute(f"SELECT count(*) FROM '{dir}/m.parquet' WHERE list_contains(interests, '{{tag}}')").fetchone()[0])
"#,
        dir = d.display()
    );
    let o = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(o.status.success(), "DuckDB: {}", text(&o.stderr));
    let expected: Vec<u64> = text(&o.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    let db = d.join("db");
    let file = d.join("m.parquet");
    let err = refused(&db, &["--members", file.to_str().unwrap()]);
    assert!(err.contains("--tags-from interests"), "{}", err);
    loaded(
        &db,
        &[
            "--members",
            file.to_str().unwrap(),
            "--tags-from",
            "interests",
        ],
    );
    let ours: Vec<u64> = ["photography", "coffee", "hiking", "tea"]
        .iter()
        .map(|t| {
            if query(&db, "SHOW TAGS").contains(t) {
                count(&db, &format!("TAG '{t}'"))
            } else {
                0
            }
        })
        .collect();
    assert_eq!(ours, expected);
    assert_eq!(count(&db, "points >= 250"), 250);
}

/// Parquet as DuckDB compresses it: snappy, zstd, gzip and lz4 read; brotli (left out of the
/// build) is refused with what to do.
#[test]
fn parquet_codecs_read_and_brotli_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = format!(
        r#"
import duckdb
for codec in ['snappy', 'zstd', 'gzip', 'lz4', 'brotli']:
    duckdb.sql(f"COPY (SELECT 'M' || i AS member_id, i AS points FROM range(100) t(i)) TO '{dir}/{{codec}}.parquet' (COMPRESSION {{codec}})")
"#,
        dir = d.display()
    );
    let o = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(o.status.success(), "DuckDB: {}", text(&o.stderr));
    let db = d.join("db");
    for codec in ["snappy", "zstd", "gzip", "lz4"] {
        let file = d.join(format!("{codec}.parquet"));
        loaded(&db, &["--members", file.to_str().unwrap(), "--again"]);
    }
    assert_eq!(count(&db, "points >= 50"), 50);
    let err = refused(
        &db,
        &["--members", d.join("brotli.parquet").to_str().unwrap()],
    );
    assert!(
        err.contains("compressed with brotli") && err.contains("zstd"),
        "{}",
        err
    );
}
