//! Clean-room counts (DESIGN section 12): brand A writes a pool of keyed hashes with
//! `memberdb share export`; brand B counts its overlap with `OVERLAP`. The pool holds no
//! member id and no phone; B's counts equal DuckDB's join of the pool with B's members
//! hashed by Python's `hmac`, each count under the minimum group size reported as
//! `suppressed`. Over the wire: pools only from `[share] directory`, a daily budget per
//! user, FIND refused.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use redis::{Value as R, cmd};
use support::{Server, q};

const CITIES: &[(&str, u32)] = &[
    ("Shanghai", 40),
    ("Beijing", 30),
    ("Hangzhou", 20),
    ("Xian", 7),
    ("Lhasa", 3),
];

fn memberdb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memberdb"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A brand's members as CSV: `n` members `<prefix><i>`, phone `+86-139<k>` with `k` from
/// `phone_of(i)`, a city by the weights above, a level.
fn brand_csv(path: &Path, prefix: &str, n: u32, phone_of: impl Fn(u32) -> u32) {
    let mut csv = String::from("member_id,phone,city,level\n");
    for i in 0..n {
        let mut w = (i * 37) % 100;
        let city = CITIES
            .iter()
            .find(|(_, share)| {
                let hit = w < *share;
                w = w.saturating_sub(*share);
                hit
            })
            .map(|c| c.0)
            .unwrap();
        csv.push_str(&format!(
            "{prefix}{i},+86-139{:08},{city},{}\n",
            phone_of(i),
            1 + i % 4
        ));
    }
    std::fs::write(path, csv).unwrap();
}

fn load(db: &Path, csv: &Path) {
    let o = memberdb(&[
        "load",
        "--db",
        db.to_str().unwrap(),
        "--members",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

/// `memberdb share export` of `segment`'s phones in `db` to `out`.
fn share_export(db: &Path, segment: &str, secret: &Path, out: &Path) {
    let o = memberdb(&[
        "share",
        "export",
        "--db",
        db.to_str().unwrap(),
        "--segment",
        segment,
        "--key",
        "phone",
        "--secret-file",
        secret.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

/// `(city, count)` lines of a CSV breakdown, and a COUNT's single value, sorted.
fn lines(o: &Output) -> Vec<String> {
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut out: Vec<String> = text(&o.stdout)
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

#[test]
fn overlap_counts_equal_duckdbs_and_small_ones_are_suppressed() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let secret = p("share.key");
    std::fs::write(&secret, b"a secret both brands hold, 32 b!").unwrap();
    // Brand A: 4,000 members; brand B: 3,000, about half of whose phones A has.
    brand_csv(&p("a.csv"), "A", 4000, |i| i * 2);
    brand_csv(&p("b.csv"), "B", 3000, |i| i * 3);
    load(&p("a"), &p("a.csv"));
    load(&p("b"), &p("b.csv"));

    share_export(&p("a"), "level >= 2", &secret, &p("pool.parquet"));
    // The pool: keyed hashes only.
    let pool = std::fs::read(p("pool.parquet")).unwrap();
    for needle in ["A1", "+86-139", "Shanghai"] {
        assert!(
            !pool.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the pool holds {needle}"
        );
    }

    let b = p("b");
    let query = |statement: &str, extra: &[&str]| {
        let mut args = vec![
            "query",
            "--db",
            b.to_str().unwrap(),
            "--format",
            "csv",
            "--secret-file",
            secret.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.push(statement);
        memberdb(&args)
    };
    let pool_path = p("pool.parquet");
    let pool_text = pool_path.to_str().unwrap();
    let statements = [
        (
            format!("BREAKDOWN ALL OVERLAP '{pool_text}' BY city"),
            "1 = 1",
        ),
        (
            format!("BREAKDOWN level <= 2 OVERLAP '{pool_text}' BY city"),
            "level <= 2",
        ),
        (
            format!("COUNT city = 'Lhasa' OVERLAP '{pool_text}'"),
            "city = 'Lhasa'",
        ),
        (
            format!("COUNT NOT city = 'Lhasa' OVERLAP '{pool_text}'"),
            "city <> 'Lhasa'",
        ),
    ];
    let mut ours = Vec::new();
    for (statement, _) in &statements {
        ours.push(lines(&query(statement, &[])));
    }
    let script = format!(
        r#"
import duckdb, hmac, hashlib, csv
key = open("{secret}", "rb").read()
rows = list(csv.DictReader(open("{b_csv}")))
con = duckdb.connect()
con.execute("CREATE TABLE b (member_id VARCHAR, city VARCHAR, level INTEGER, h VARCHAR)")
con.executemany("INSERT INTO b VALUES (?, ?, ?, ?)", [
    (r["member_id"], r["city"], int(r["level"]),
     hmac.new(key, r["phone"].encode(), hashlib.sha256).hexdigest()) for r in rows])
con.execute("CREATE VIEW o AS SELECT * FROM b WHERE h IN (SELECT key_hash FROM read_parquet('{pool}'))")
shown = lambda n: str(n) if n >= 50 else "suppressed"
for i, where in enumerate({wheres:?}):
    if i < 2:
        for city, n in con.execute(f"SELECT city, count(*) FROM o WHERE {{where}} GROUP BY city").fetchall():
            print(f"{{i}}|{{city}},{{shown(n)}}")
    else:
        n = con.execute(f"SELECT count(*) FROM o WHERE {{where}}").fetchone()[0]
        print(f"{{i}}|{{shown(n)}}")
"#,
        secret = secret.display(),
        b_csv = p("b.csv").display(),
        pool = pool_text,
        wheres = statements.iter().map(|s| s.1).collect::<Vec<_>>(),
    );
    let o = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(o.status.success(), "DuckDB: {}", text(&o.stderr));
    let mut theirs = vec![Vec::new(); statements.len()];
    for line in text(&o.stdout).lines() {
        let (i, rest) = line.split_once('|').unwrap();
        theirs[i.parse::<usize>().unwrap()].push(rest.to_string());
    }
    for t in &mut theirs {
        t.sort();
    }
    assert_eq!(ours, theirs);
    // Both kinds of answer were seen: counts and suppressed ones.
    let all: Vec<&String> = ours.iter().flatten().collect();
    assert!(all.iter().any(|l| l.ends_with("suppressed")), "{all:?}");
    assert!(all.iter().any(|l| !l.ends_with("suppressed")), "{all:?}");

    // A lower threshold shows the small count; FIND is refused; no secret, no overlap.
    let lhasa = &statements[2].0;
    let low = lines(&query(lhasa, &["--min-group-size", "1"]));
    assert!(low[0].parse::<u64>().unwrap() < 50, "{low:?}");
    let o = query(&format!("FIND ALL OVERLAP '{pool_text}'"), &[]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("OVERLAP gives counts only"),
        "{}",
        text(&o.stderr)
    );
    let o = memberdb(&["query", "--db", b.to_str().unwrap(), lhasa]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("--secret-file"),
        "{}",
        text(&o.stderr)
    );
    // A file that is not a pool says so.
    let o = query(
        &format!("COUNT ALL OVERLAP '{}'", p("b.csv").display()),
        &[],
    );
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("is not a memberdb pool"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn over_the_wire_pools_come_from_the_share_directory_within_a_daily_budget() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let secret = p("share.key");
    std::fs::write(&secret, b"another secret of thirty-two b!!").unwrap();
    let pools = p("pools");
    std::fs::create_dir_all(&pools).unwrap();
    brand_csv(&p("a.csv"), "A", 600, |i| i);
    load(&p("a"), &p("a.csv"));
    share_export(&p("a"), "ALL", &secret, &pools.join("a.parquet"));
    brand_csv(&p("b.csv"), "B", 400, |i| i * 2);
    load(&p("b"), &p("b.csv"));
    let config = format!(
        "[share]\nsecret_file = \"{}\"\ndirectory = \"{}\"\ndaily_budget = 3\n",
        secret.display(),
        pools.display()
    );
    let server = Server::start(&p("b"), Some(&config));
    let mut con = server.client(false);
    // B's phones 0, 2, ..., 798 against A's 0..599: 300 in common.
    let n: i64 = cmd("QUERY")
        .arg("COUNT ALL OVERLAP 'a.parquet'")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 300);
    let lines: Vec<Vec<R>> = cmd("QUERY")
        .arg("BREAKDOWN ALL OVERLAP 'a.parquet' BY city")
        .query(&mut con)
        .unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.last() == Some(&R::BulkString(b"suppressed".to_vec()))),
        "{lines:?}"
    );
    let e = q(&mut con, "COUNT ALL OVERLAP '../a.parquet'").unwrap_err();
    assert!(
        e.to_string().contains("takes a file name, not a path"),
        "{e}"
    );
    let e = q(&mut con, "FIND ALL OVERLAP 'a.parquet'").unwrap_err();
    assert_eq!(e.code(), Some("NOPERM"), "{e}");
    // The budget (3 a day) is spent: a fourth statement is refused until tomorrow.
    let e = q(&mut con, "COUNT ALL OVERLAP 'a.parquet'").unwrap_err();
    assert!(e.to_string().contains("share.daily_budget"), "{e}");
    // Ordinary statements are not charged.
    assert_eq!(support::count(&mut con, "ALL"), 400);
}
