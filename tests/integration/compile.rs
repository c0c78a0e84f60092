//! `Database::compile` and `EXPLAIN SQL` (DESIGN section 7): the SQL reads the newest
//! checkpoint's files, written first when the log holds changes; what cannot compile is an
//! error naming it. (The answers themselves are checked against chdb by
//! `bench/peers/check_compile.py` in `scripts/test`.)

use memberdb::compile::CompileOptions;
use memberdb::query::{Output, RunOptions, parse_statement};
use memberdb::{Database, Timestamp, Value};

fn database(dir: &std::path::Path) -> Database {
    let db = Database::open(dir).unwrap();
    db.upsert_member("M1", &[("city", Some(Value::from("Shanghai")))])
        .unwrap();
    db.add_tags("M1", &["vip"]).unwrap();
    db.add_event(
        "M2",
        "purchase",
        Timestamp::parse("2026-01-01").unwrap(),
        &[],
    )
    .unwrap();
    db
}

fn compile(db: &Database, text: &str) -> memberdb::Result<String> {
    let options = CompileOptions {
        now: Timestamp::parse("2026-02-01T00:00:00Z"),
        tables: None,
    };
    db.compile(&parse_statement(text).unwrap(), &options)
}

#[test]
fn compiled_sql_reads_the_files_of_a_checkpoint_written_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let sql = compile(&db, "COUNT TAG 'vip' AND DID purchase IN LAST 30 DAYS").unwrap();
    // every file it names exists: the writes above were checkpointed first
    let files: Vec<&str> = sql
        .split("file('")
        .skip(1)
        .map(|rest| rest.split('\'').next().unwrap())
        .collect();
    assert!(files.len() >= 2, "{sql}");
    for file in &files {
        assert!(std::path::Path::new(file).exists(), "{file} in {sql}");
    }
    assert!(sql.contains("-- TAG 'vip'"), "each part commented: {sql}");
    assert!(
        sql.contains("ts > toDateTime64('2026-01-02 00:00:00', 6, 'UTC')"),
        "now is a literal: {sql}"
    );
    assert!(
        sql.trim_end()
            .ends_with("SETTINGS session_timezone = 'UTC'"),
        "{sql}"
    );

    // the same through EXPLAIN SQL, and over tables
    let output = db
        .run_with(
            &parse_statement("EXPLAIN SQL COUNT TAG 'vip' AS OF '2026-02-01'").unwrap(),
            &RunOptions::default(),
        )
        .unwrap();
    let Output::Sql(explained) = output else {
        panic!("EXPLAIN SQL answers SQL")
    };
    assert!(explained.contains("bitmapCardinality"), "{explained}");
    let options = CompileOptions {
        now: None,
        tables: Some("crm".into()),
    };
    let over_tables = db
        .compile(
            &parse_statement("FIND TAG 'vip' SHOW city LIMIT 5").unwrap(),
            &options,
        )
        .unwrap();
    assert!(over_tables.contains("FROM crm_members"), "{over_tables}");
    // over tables a tag is its stored state, not a pass over the tags
    assert!(
        over_tables.contains("joinGet('crm_sets', 'members', 'tag', 'vip', '')"),
        "{over_tables}"
    );
    assert!(!over_tables.contains("FROM crm_tags"), "{over_tables}");
    let schema = db.compile_schema("crm").unwrap();
    assert!(schema.contains("CREATE TABLE crm_sets"), "{schema}");
    assert!(
        schema.contains("ENGINE = Join(ANY, LEFT, kind, name, value)"),
        "{schema}"
    );
    assert!(schema.contains("event_seq UInt64"), "{schema}");
    assert!(schema.contains("CREATE TABLE crm_members"), "{schema}");
    assert!(schema.contains("member_row UInt32"), "{schema}");
    assert!(schema.contains("city Nullable(String)"), "{schema}");
}

#[test]
fn what_does_not_compile_is_named_and_nothing_else_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    // sequences and computed values compile (the differential test proves them equal)
    let sql = compile(&db, "COUNT DID purchase THEN purchase WITHIN 2 DAYS").unwrap();
    assert!(sql.contains("ASOF JOIN"), "{sql}");
    let sql = compile(&db, "COUNT COUNT(purchase) < 2").unwrap();
    assert!(sql.contains("bitmapAndnot(live_members"), "{sql}");
    let sql = compile(&db, "FUNNEL purchase, purchase WITHIN 1 DAYS").unwrap();
    assert!(sql.contains("arrayFold"), "{sql}");
    for (text, named) in [
        ("COUNT TAG 'vip' OVERLAP 'p.parquet'", "OVERLAP"),
        ("DROP GROUP g", "only COUNT, FIND, BREAKDOWN and FUNNEL"),
    ] {
        let err = compile(&db, text).unwrap_err().to_string();
        assert!(err.contains(named), "{text}: {err}");
    }
    // a step past the funnel's is the engine's error, word for word
    let text = "FIND FUNNEL purchase, purchase WITHIN 1 DAYS AT STEP 3";
    let err = compile(&db, text).unwrap_err().to_string();
    assert!(
        err.contains("AT STEP 3: the funnel's steps are 1 to 2"),
        "{err}"
    );
    let ran = db
        .run_with(&parse_statement(text).unwrap(), &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        ran.contains("AT STEP 3: the funnel's steps are 1 to 2"),
        "{ran}"
    );
    // an unknown name is the binder's error, as when the statement runs
    let err = compile(&db, "COUNT TAG 'vipp'").unwrap_err().to_string();
    assert!(err.contains("unknown tag 'vipp'"), "{err}");
    assert!(compile(&db, "COUNT ctiy = 'x'").is_err());
    let bad = CompileOptions {
        now: None,
        tables: Some("x; DROP".into()),
    };
    let err = db
        .compile(&parse_statement("COUNT ALL").unwrap(), &bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("letters, digits and _"), "{err}");
}

#[test]
fn values_of_the_same_events_share_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let sql = compile(
        &db,
        "COUNT COUNT(purchase) = 1 AND DAYS SINCE LAST(purchase) > 30 \
         AND DAYS SINCE LAST(purchase) < 90 OR FIRST(purchase) > '2026-01-01'",
    )
    .unwrap();
    // four parts, three aggregates, one pass over the purchases
    assert_eq!(sql.matches("GROUP BY member_row").count(), 1, "{sql}");
    assert_eq!(sql.matches("max(ts) AS").count(), 1, "{sql}");
    // another window is other events: a pass of its own
    let sql = compile(
        &db,
        "COUNT COUNT(purchase) = 1 AND COUNT(purchase IN LAST 30 DAYS) = 0",
    )
    .unwrap();
    assert_eq!(sql.matches("GROUP BY member_row").count(), 2, "{sql}");
}

#[test]
fn count_reads_a_fused_cardinality_in_the_scope_of_its_parts() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    for (text, count) in [
        (
            "COUNT TAG 'vip' AND NOT DID purchase",
            "bitmapAndnotCardinality(",
        ),
        ("COUNT TAG 'vip' AND DID purchase", "bitmapAndCardinality("),
        ("COUNT TAG 'vip' OR DID purchase", "bitmapOrCardinality("),
        ("COUNT TAG 'vip'", "bitmapCardinality("),
    ] {
        let sql = compile(&db, text).unwrap();
        assert!(sql.contains(&format!("SELECT {count}")), "{text}: {sql}");
        // no bitmap passed through an entry's column to be counted
        assert!(!sql.contains("segment AS"), "{text}: {sql}");
    }
}

#[test]
fn a_read_only_database_whose_log_holds_changes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    db.checkpoint().unwrap();
    db.add_tags("M1", &["new_tag"]).unwrap();
    drop(db);
    let options = memberdb::OpenOptions {
        read_only: true,
        ..memberdb::OpenOptions::default()
    };
    let db = Database::open_with(dir.path(), options).unwrap();
    let err = compile(&db, "COUNT TAG 'vip'").unwrap_err().to_string();
    assert!(err.contains("the log holds changes"), "{err}");
    let err = db.compile_schema("x; DROP").unwrap_err().to_string();
    assert!(err.contains("letters, digits and _"), "{err}");
}

#[test]
fn a_database_in_memory_has_no_files_to_compile_against() {
    let db = Database::in_memory();
    db.add_tags("M1", &["vip"]).unwrap();
    let err = compile(&db, "COUNT TAG 'vip'").unwrap_err().to_string();
    assert!(err.contains("lives in memory"), "{err}");
}
