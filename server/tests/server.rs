//! `memberdb serve` end to end: a real server process on 127.0.0.1:0, a real Redis client
//! (redis-rs), raw sockets for bad input, and redis-cli.

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use redis::{Value as R, cmd};
use support::{Server, count, q, read_until_closed};

/// A database with a few members, tags and events written over the wire.
fn seed(con: &mut redis::Connection) {
    for (id, city, points) in [
        ("M1", "Shanghai", 120),
        ("M2", "Beijing", 5000),
        ("M3", "Shanghai", 10),
    ] {
        let () = cmd("MEMBER.SET")
            .arg(id)
            .arg("city")
            .arg(city)
            .arg("points")
            .arg(points)
            .query(con)
            .unwrap();
    }
    let () = cmd("TAG.ADD")
        .arg("M1")
        .arg("vip")
        .arg("摄影爱好者")
        .query(con)
        .unwrap();
    let () = cmd("TAG.ADD").arg("M2").arg("vip").query(con).unwrap();
    let () = cmd("EVENT.ADD")
        .arg("M1")
        .arg("claim_coupon")
        .arg("2026-11-01T08:00:00Z")
        .arg("coupon")
        .arg("XMAS")
        .query(con)
        .unwrap();
    let () = cmd("EVENT.ADD")
        .arg("M3")
        .arg("purchase")
        .arg("*")
        .arg("amount")
        .arg("99.5")
        .query(con)
        .unwrap();
}

fn every_command(resp3: bool) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let mut con = server.client(resp3);
    seed(&mut con);
    let pong: String = cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
    assert_eq!(count(&mut con, "TAG 'vip' AND city = 'Shanghai'"), 1);
    assert_eq!(count(&mut con, "TAG '摄影爱好者'"), 1);
    assert_eq!(count(&mut con, "DID claim_coupon AND NOT DID purchase"), 1);
    assert_eq!(
        count(&mut con, "DID purchase WHERE amount > 50 IN LAST 1 DAYS"),
        1
    );
    assert_eq!(count(&mut con, "points BETWEEN 100 AND 6000"), 2);

    // FIND: one map (RESP3) or field/value array (RESP2) per member
    let found = q(
        &mut con,
        "FIND city = 'Shanghai' SHOW city, points LIMIT 10",
    )
    .unwrap();
    let R::Array(members) = found else {
        panic!("{found:?}")
    };
    assert_eq!(members.len(), 2);
    let first: std::collections::HashMap<String, R> =
        redis::from_redis_value(members[0].clone()).unwrap();
    assert_eq!(first["member_id"], R::BulkString(b"M1".to_vec()));
    assert_eq!(first["points"], R::Int(120));

    // BREAKDOWN: [value, count] pairs, largest first
    let lines: Vec<(String, i64)> =
        redis::from_redis_value(q(&mut con, "BREAKDOWN ALL BY city").unwrap()).unwrap();
    assert_eq!(lines, vec![("Shanghai".into(), 2), ("Beijing".into(), 1)]);

    // groups
    let members: i64 = cmd("QUERY")
        .arg("DEFINE GROUP vips AS TAG 'vip'")
        .query(&mut con)
        .unwrap();
    assert_eq!(members, 2);
    assert_eq!(count(&mut con, "IN GROUP vips AND city = 'Beijing'"), 1);
    let () = cmd("QUERY").arg("DROP GROUP vips").query(&mut con).unwrap();
    assert!(q(&mut con, "COUNT IN GROUP vips").is_err());

    // sequences and funnels (DESIGN section 10): a funnel is a map per step
    let () = cmd("EVENT.ADD")
        .arg("M1")
        .arg("redeem_coupon")
        .arg("2026-11-02T08:00:00Z")
        .arg("coupon")
        .arg("XMAS")
        .query(&mut con)
        .unwrap();
    assert_eq!(
        count(
            &mut con,
            "DID claim_coupon THEN redeem_coupon WITHIN 2 DAYS MATCHING coupon"
        ),
        1
    );
    let steps: Vec<std::collections::HashMap<String, R>> = redis::from_redis_value(
        q(
            &mut con,
            "FUNNEL claim_coupon, redeem_coupon WITHIN 1 DAYS BY coupon FIRST TOUCH",
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1]["step"], R::Int(2));
    assert_eq!(steps[1]["members"], R::Int(1));
    assert_eq!(steps[1]["bucket"], R::BulkString(b"XMAS".to_vec()));
    assert!(
        matches!(steps[1]["median_seconds"], R::Double(x) if x == 86_400.0)
            || steps[1]["median_seconds"] == R::BulkString(b"86400".to_vec())
    );

    // traits: DEFINE TRAIT answers the members with a value; read like attributes
    let with_value: i64 = cmd("QUERY")
        .arg("DEFINE TRAIT buys AS COUNT(purchase)")
        .query(&mut con)
        .unwrap();
    assert_eq!(with_value, 3);
    assert_eq!(count(&mut con, "buys >= 1 AND city = 'Shanghai'"), 1);
    let m1: std::collections::HashMap<String, R> =
        redis::from_redis_value(cmd("MEMBER.GET").arg("M1").query::<R>(&mut con).unwrap()).unwrap();
    assert_eq!(m1["buys"], R::Int(0));
    let () = cmd("QUERY").arg("DROP TRAIT buys").query(&mut con).unwrap();

    // EXPLAIN and SHOW: rows of named columns
    let R::Array(rows) = q(&mut con, "SHOW TAGS").unwrap() else {
        panic!()
    };
    assert_eq!(rows.len(), 2);
    let R::Array(steps) = q(&mut con, "EXPLAIN TAG 'vip' AND NOT city = 'Beijing'").unwrap() else {
        panic!()
    };
    assert!(steps.len() >= 3);

    // MEMBER.GET: attributes and tags; nil for an unknown member
    let m1: std::collections::HashMap<String, R> =
        redis::from_redis_value(cmd("MEMBER.GET").arg("M1").query::<R>(&mut con).unwrap()).unwrap();
    assert_eq!(m1["city"], R::BulkString(b"Shanghai".to_vec()));
    let tags: Vec<String> = redis::from_redis_value(m1["tags"].clone()).unwrap();
    assert_eq!(tags, vec!["vip", "摄影爱好者"]);
    assert_eq!(
        cmd("MEMBER.GET")
            .arg("nobody")
            .query::<R>(&mut con)
            .unwrap(),
        R::Nil
    );
    let () = cmd("TAG.DEL").arg("M1").arg("vip").query(&mut con).unwrap();
    assert_eq!(count(&mut con, "TAG 'vip'"), 1);

    // errors in the CLI's words, with the position and the closest names
    let err = q(&mut con, "COUNT TAG 'vipp'").unwrap_err().to_string();
    assert!(
        err.contains("unknown tag 'vipp'") && err.contains("'vip'") && err.contains("column 7"),
        "{err}"
    );
    let err = q(&mut con, "COUNT city = ").unwrap_err().to_string();
    assert!(err.contains("syntax error at line 1"), "{err}");
    let err = cmd("MEMBER.SET")
        .arg("M1")
        .arg("points")
        .arg("many")
        .query::<R>(&mut con)
        .unwrap_err();
    assert!(err.to_string().contains("attribute 'points'"), "{err}");
    let err = cmd("NOSUCH").query::<R>(&mut con).unwrap_err().to_string();
    assert!(err.contains("unknown command"), "{err}");

    // a repeated count is answered from the cache until a write, then recomputed
    assert_eq!(count(&mut con, "TAG 'vip'"), 1);
    let () = cmd("TAG.ADD").arg("M3").arg("vip").query(&mut con).unwrap();
    assert_eq!(count(&mut con, "TAG 'vip'"), 2);
    assert_eq!(count(&mut con, "TAG 'vip'"), 2);

    // INFO and COMMAND
    let info: String = cmd("INFO").query(&mut con).unwrap();
    let hits = info
        .lines()
        .find_map(|l| l.strip_prefix("answer_cache_hits:"))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(hits.is_some_and(|h| h >= 1), "{info}");
    for key in [
        "uptime_in_seconds:",
        "connected_clients:",
        "cmdstat_query:calls=",
        "query_latency_p99_us:",
        "members:3",
        "events:3",
        "last_checkpoint_unix_ms:",
    ] {
        assert!(info.contains(key), "{key} in {info}");
    }
    let n: i64 = cmd("COMMAND").arg("COUNT").query(&mut con).unwrap();
    assert!(n >= 14);
}

#[test]
fn every_command_over_resp2() {
    every_command(false);
}

#[test]
fn every_command_over_resp3() {
    every_command(true);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let mut con = server.client(false);
    let mut pipe = redis::pipe();
    for i in 0..200 {
        pipe.cmd("TAG.ADD")
            .arg(format!("P{i}"))
            .arg("piped")
            .ignore();
        pipe.cmd("QUERY").arg("COUNT TAG 'piped'");
    }
    let counts: Vec<i64> = pipe.query(&mut con).unwrap();
    assert_eq!(counts, (1..=200).collect::<Vec<i64>>());

    // many requests in one write on a raw socket, answered in one go
    let mut raw = server.raw();
    let request = b"*1\r\n$4\r\nPING\r\n*2\r\n$5\r\nQUERY\r\n$9\r\nCOUNT ALL\r\n".repeat(50);
    raw.write_all(&request).unwrap();
    let expected = b"+PONG\r\n:200\r\n".repeat(50);
    let mut got = vec![0; expected.len()];
    raw.read_exact(&mut got).unwrap();
    assert_eq!(got, expected);
}

/// Runs `program args` with `input` on stdin; its output.
fn with_stdin(program: &str, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

use support::password_hash as hash;

fn users_config() -> String {
    format!(
        "[[users]]\nname = \"reader\"\npassword_hash = \"{}\"\nrole = \"read\"\n\
         [[users]]\nname = \"writer\"\npassword_hash = \"{}\"\nrole = \"write\"\n\
         [[users]]\nname = \"admin\"\npassword_hash = \"{}\"\nrole = \"admin\"\n",
        hash("r-pass"),
        hash("w-pass"),
        hash("a-pass")
    )
}

#[test]
fn passwords_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let config = users_config();
    assert!(!config.contains("r-pass"), "only hashes are stored");
    let server = Server::start(dir.path(), Some(&config));
    let login = |user: &str, pass: &str, resp3: bool| {
        let url = server
            .url(resp3)
            .replace("redis://", &format!("redis://{user}:{pass}@"));
        redis::Client::open(url).unwrap().get_connection()
    };

    // nothing but AUTH / HELLO / QUIT before authenticating
    let mut anonymous = server.client(false);
    let err = q(&mut anonymous, "COUNT ALL").unwrap_err().to_string();
    assert!(err.contains("NOAUTH"), "{err}");
    assert!(login("reader", "wrong", false).is_err());
    assert!(login("nobody", "r-pass", false).is_err());

    let mut admin = login("admin", "a-pass", true).unwrap();
    seed(&mut admin);
    let _: i64 = cmd("QUERY")
        .arg("DEFINE GROUP g AS ALL")
        .query(&mut admin)
        .unwrap();

    let mut reader = login("reader", "r-pass", false).unwrap();
    assert_eq!(count(&mut reader, "ALL"), 3);
    assert!(cmd("MEMBER.GET").arg("M1").query::<R>(&mut reader).is_ok());
    let err = cmd("TAG.ADD")
        .arg("M1")
        .arg("x")
        .query::<R>(&mut reader)
        .unwrap_err()
        .to_string();
    assert!(
        err.to_uppercase().contains("NOPERM") && err.contains("needs a role with 'write'"),
        "{err}"
    );
    let err = q(&mut reader, "DROP GROUP g").unwrap_err().to_string();
    assert!(
        err.to_uppercase().contains("NOPERM") && err.contains("needs a role with 'admin'"),
        "{err}"
    );

    let mut writer = login("writer", "w-pass", true).unwrap();
    let () = cmd("TAG.ADD")
        .arg("M1")
        .arg("x")
        .query(&mut writer)
        .unwrap();
    let err = q(&mut writer, "DEFINE GROUP h AS ALL")
        .unwrap_err()
        .to_string();
    assert!(
        err.to_uppercase().contains("NOPERM") && err.contains("needs a role with 'admin'"),
        "{err}"
    );
    assert_eq!(count(&mut reader, "TAG 'x'"), 1);

    // before AUTH only small requests are read at all
    let mut raw = server.raw();
    let big = format!("*2\r\n$4\r\nAUTH\r\n$5000\r\n{}\r\n", "x".repeat(5000));
    raw.write_all(big.as_bytes()).unwrap();
    let (reply, closed) = read_until_closed(&mut raw, Duration::from_secs(5));
    assert!(closed && reply.contains("limit"), "{reply:?}");

    // AUTH later on the same connection
    let () = cmd("AUTH")
        .arg("reader")
        .arg("r-pass")
        .query(&mut anonymous)
        .unwrap();
    assert_eq!(count(&mut anonymous, "ALL"), 3);
}

#[test]
fn listening_beyond_loopback_without_passwords_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Server::try_start(dir.path(), Some("bind = \"0.0.0.0:0\"\n"))
        .err()
        .expect("refused");
    assert!(err.contains("without any password"), "{err}");
    // with users it starts
    let config = format!("bind = \"0.0.0.0:0\"\n{}", users_config());
    Server::start(dir.path(), Some(&config));
}

/// EXPORT over the wire writes only into the config's export_dir, by file name, for admins.
#[test]
fn export_over_the_wire_writes_only_into_export_dir() {
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("exports");
    std::fs::create_dir(&exports).unwrap();
    let config = format!("export_dir = \"{}\"\n{}", exports.display(), users_config());
    let server = Server::start(&dir.path().join("db"), Some(&config));
    let mut admin = server.client(false);
    cmd("AUTH")
        .arg("admin")
        .arg("a-pass")
        .query::<()>(&mut admin)
        .unwrap();
    seed(&mut admin);
    let n: i64 = cmd("QUERY")
        .arg("EXPORT TAG 'vip' SHOW city TO 'vip.csv'")
        .query(&mut admin)
        .unwrap();
    assert!(n > 0);
    let csv = std::fs::read_to_string(exports.join("vip.csv")).unwrap();
    assert_eq!(csv.lines().count() as i64, n + 1, "{csv}");
    assert!(csv.starts_with("member_id,city\n"));
    for path in ["../escape.csv", "/tmp/escape.csv", ".hidden.csv"] {
        let err = q(&mut admin, &format!("EXPORT ALL TO '{path}'")).unwrap_err();
        assert!(err.to_string().contains("file name, not a path"), "{err}");
    }
    assert!(!dir.path().join("escape.csv").exists());
    let mut reader = server.client(false);
    cmd("AUTH")
        .arg("reader")
        .arg("r-pass")
        .query::<()>(&mut reader)
        .unwrap();
    let err = q(&mut reader, "EXPORT ALL TO 'all.csv'").unwrap_err();
    assert!(
        err.to_string()
            .contains("may not run EXPORT: it needs a role with 'export'"),
        "{err}"
    );
    drop(server);

    let plain = Server::start(&dir.path().join("db2"), None);
    let err = q(&mut plain.client(false), "EXPORT ALL TO 'all.csv'").unwrap_err();
    assert!(err.to_string().contains("export_dir"), "{err}");
}

/// The sample database (no `--db`) is read-only: a demo write is refused with the way to a
/// database of one's own, and the README's answers stay true. A `--db` with no database is
/// an error unless `--create`.
#[test]
fn the_sample_is_read_only_and_a_missing_database_needs_create() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_sample(&dir.path().join("sample"));
    let mut con = server.client(false);
    let members = count(&mut con, "ALL");
    assert!(members > 1000);
    let err = cmd("TAG.ADD")
        .arg("M000001")
        .arg("demo")
        .query::<R>(&mut con)
        .unwrap_err();
    let err = err.to_string();
    assert!(
        err.contains("read-only sample") && err.contains("--db"),
        "{err}"
    );
    assert!(q(&mut con, "DEFINE GROUP g AS ALL").is_err());
    assert_eq!(count(&mut con, "ALL"), members);
    drop(server);

    let missing = dir.path().join("typo");
    let o = support::binary::memberdb(&[
        "serve",
        "--db",
        missing.to_str().unwrap(),
        "--bind",
        "127.0.0.1:0",
    ]);
    assert!(!o.status.success());
    let err = support::binary::text(&o.stderr);
    assert!(
        err.contains("no database at") && err.contains("--create"),
        "{err}"
    );
    assert!(!missing.exists(), "nothing was created");
}

/// Reads what the server sends until it closes the connection or `limit` passes.
#[test]
fn bad_input_gets_an_error_and_other_clients_carry_on() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        "[limits]\nidle_seconds = 2\nstatement_bytes = 200\nargs = 16\nbulk_bytes = 4096\n";
    let server = Server::start(dir.path(), Some(config));
    let mut healthy = server.client(false);
    seed(&mut healthy);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\x00\xff\x13garbage\r\n".to_vec()),
        ("inline command", b"PING\r\n".to_vec()),
        ("negative array length", b"*-5\r\n".to_vec()),
        ("negative bulk length", b"*1\r\n$-3\r\n".to_vec()),
        ("huge array length", b"*99999999999\r\n".to_vec()),
        ("huge bulk length", b"*1\r\n$99999999999\r\n".to_vec()),
        (
            "nested arrays",
            b"*1\r\n*1\r\n*1\r\n*1\r\n$4\r\nPING\r\n".to_vec(),
        ),
        ("integer argument", b"*2\r\n$4\r\nPING\r\n:5\r\n".to_vec()),
        ("bad terminator", b"*1\r\n$4\r\nPINGxx".to_vec()),
        (
            "too many arguments",
            format!("*17\r\n{}", "$1\r\na\r\n".repeat(17)).into_bytes(),
        ),
    ];
    for (what, bytes) in cases {
        let mut s = server.raw();
        s.write_all(&bytes).unwrap();
        let (reply, closed) = read_until_closed(&mut s, Duration::from_secs(5));
        assert!(
            reply.starts_with("-ERR Protocol error"),
            "{what}: {reply:?}"
        );
        assert!(closed, "{what}: the connection is closed");
        assert_eq!(count(&mut healthy, "TAG 'vip'"), 2, "after {what}");
    }

    // a request that stops half-way is closed after the idle time, others unaffected
    let mut slow = server.raw();
    slow.write_all(b"*2\r\n$5\r\nQUERY\r\n$20\r\nCOUNT")
        .unwrap();
    let mut sleepy = server.raw();
    for _ in 0..3 {
        assert_eq!(count(&mut healthy, "ALL"), 3);
        std::thread::sleep(Duration::from_millis(300));
    }
    let (reply, closed) = read_until_closed(&mut slow, Duration::from_secs(6));
    assert!(closed && reply.contains("unfinished"), "{reply:?}");
    let (reply, closed) = read_until_closed(&mut sleepy, Duration::from_secs(6));
    assert!(closed && reply.contains("idle"), "{reply:?}");

    // oversized and over-nested statements, a FIND over the limit: errors, connection kept
    let long = format!("COUNT {}", vec!["TAG 'vip'"; 40].join(" OR "));
    let err = q(&mut healthy, &long).unwrap_err().to_string();
    assert!(err.contains("limits.statement_bytes"), "{err}");
    let deep = format!("COUNT {}ALL{}", "(".repeat(70), ")".repeat(70));
    let err = cmd("QUERY")
        .arg(&deep)
        .query::<R>(&mut healthy)
        .unwrap_err()
        .to_string();
    assert!(err.contains("limit"), "{err}");
    let err = q(&mut healthy, "FIND ALL LIMIT 20000")
        .unwrap_err()
        .to_string();
    assert!(err.contains("limits.find_rows"), "{err}");
    assert_eq!(count(&mut healthy, "ALL"), 3);
}

#[test]
fn two_hundred_concurrent_clients_mixing_reads_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let url = server.url(false);
    let clients: Vec<_> = (0..200)
        .map(|c| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
                for i in 0..5 {
                    let () = cmd("MEMBER.SET")
                        .arg(format!("c{c}-{i}"))
                        .arg("client")
                        .arg(c)
                        .query(&mut con)
                        .unwrap();
                    let () = cmd("TAG.ADD")
                        .arg(format!("c{c}-{i}"))
                        .arg("busy")
                        .query(&mut con)
                        .unwrap();
                    // this client's own writes are all there, whatever the others do
                    let mine = count(&mut con, &format!("client = {c} AND TAG 'busy'"));
                    assert_eq!(mine, i + 1);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let mut con = server.client(true);
    assert_eq!(count(&mut con, "TAG 'busy'"), 1000);
}

#[test]
fn max_clients_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Some("[limits]\nclients = 2\n"));
    let mut a = server.client(false);
    let _b = server.client(false);
    let mut third = server.raw();
    let (reply, closed) = read_until_closed(&mut third, Duration::from_secs(5));
    assert!(reply.contains("max number of clients"), "{reply:?}");
    assert!(closed);
    assert_eq!(count(&mut a, "ALL"), 0);
}

#[test]
fn sigterm_finishes_requests_checkpoints_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let mut con = server.client(false);
    seed(&mut con);
    let (status, err) = server.stop();
    assert!(status.success(), "{status}: {err}");
    // the checkpoint at shutdown left nothing to replay
    let db = memberdb::Database::open(dir.path()).unwrap();
    assert_eq!(db.recovery().replayed, 0);
    assert_eq!(db.member_count(), 3);
}

#[test]
fn redis_cli_works_against_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-p", &server.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli is installed (Debian package redis-tools; .ci/run installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(cli(&["PING"]), "PONG\n");
    assert_eq!(cli(&["TAG.ADD", "M1", "vip"]), "OK\n");
    // (redis-cli prints bare values when its output is not a terminal)
    assert_eq!(cli(&["QUERY", "COUNT TAG 'vip'"]), "1\n");
    assert!(cli(&["QUERY", "COUNT TAG 'vipp'"]).contains("did you mean 'vip'"));
    assert!(cli(&["INFO", "data"]).contains("members:1"));
    // interactive mode reads commands from stdin
    let port = server.port.to_string();
    let out = with_stdin(
        "redis-cli",
        &["-p", &port],
        b"QUERY \"COUNT ALL\"\nMEMBER.GET M1\n",
    );
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(out.starts_with("1\n"), "{out}");
    assert!(out.contains("vip"), "{out}");
}

#[test]
fn redis_py_works_with_its_defaults_and_with_resp3() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let script = format!(
        r#"
import redis
for protocol in (2, 3):
    r = redis.Redis(port={port}, protocol=protocol, decode_responses=True)
    assert r.ping()
    r.execute_command("MEMBER.SET", "P1", "city", "Shanghai", "points", "7")
    r.execute_command("TAG.ADD", "P1", "vip")
    assert r.execute_command("QUERY", "COUNT TAG 'vip'") == 1
    found = r.execute_command("QUERY", "FIND ALL SHOW city, points")
    assert len(found) == 1, found
    member = r.execute_command("MEMBER.GET", "P1")
    assert "Shanghai" in str(member), member
    try:
        r.execute_command("QUERY", "COUNT TAG 'vipp'")
        raise SystemExit("no error")
    except redis.ResponseError as e:
        assert "did you mean 'vip'" in str(e), e
    pipe = r.pipeline(transaction=False)
    for i in range(20):
        pipe.execute_command("QUERY", "COUNT ALL")
    assert pipe.execute() == [1] * 20
print("ok")
"#,
        port = server.port
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "redis-py (pip install redis; .ci/run installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn identities_over_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let mut con = server.client(true);
    for statement in [
        "DEFINE IDENTIFIER unionid LIMIT 1 PRIORITY 1",
        "DEFINE IDENTIFIER phone LIMIT 1 PRIORITY 2 BLOCK '13800000000'",
        "DEFINE IDENTIFIER openid LIMIT 20 PRIORITY 4",
    ] {
        let () = cmd("QUERY").arg(statement).query(&mut con).unwrap();
    }
    let () = cmd("MEMBER.SET")
        .arg("M1")
        .arg("city")
        .arg("Shanghai")
        .query(&mut con)
        .unwrap();
    let linked: std::collections::HashMap<String, R> = cmd("ID.LINK")
        .arg("M1")
        .arg("phone")
        .arg("13911112222")
        .query(&mut con)
        .unwrap();
    assert_eq!(linked["member_id"], R::BulkString(b"M1".to_vec()));
    let fan: std::collections::HashMap<String, R> = cmd("ID.LINK")
        .arg("*")
        .arg("openid")
        .arg("oA1")
        .arg("unionid")
        .arg("U1")
        .query(&mut con)
        .unwrap();
    assert_eq!(fan["member_id"], R::BulkString(b"openid:oA1".to_vec()));
    assert_eq!(fan["created"], R::Int(1));
    let () = cmd("TAG.ADD")
        .arg("openid:oA1")
        .arg("photography")
        .query(&mut con)
        .unwrap();
    assert_eq!(count(&mut con, "ALL"), 2);
    // The phone seen with the UnionID merges the two.
    let merged: std::collections::HashMap<String, R> = cmd("ID.LINK")
        .arg("*")
        .arg("phone")
        .arg("13911112222")
        .arg("unionid")
        .arg("U1")
        .query(&mut con)
        .unwrap();
    assert_eq!(merged["member_id"], R::BulkString(b"M1".to_vec()));
    assert_eq!(count(&mut con, "ALL"), 2 - 1);
    assert_eq!(
        count(&mut con, "TAG 'photography' AND city = 'Shanghai'"),
        1
    );
    let who: Option<String> = cmd("ID.LOOKUP")
        .arg("openid")
        .arg("oA1")
        .query(&mut con)
        .unwrap();
    assert_eq!(who.as_deref(), Some("M1"));
    let nobody: Option<String> = cmd("ID.LOOKUP")
        .arg("phone")
        .arg("1")
        .query(&mut con)
        .unwrap();
    assert_eq!(nobody, None);
    // MEMBER.GET through the alias: identifiers by type, aliases.
    let m: std::collections::HashMap<String, R> =
        cmd("MEMBER.GET").arg("openid:oA1").query(&mut con).unwrap();
    assert_eq!(m["member_id"], R::BulkString(b"M1".to_vec()));
    let aliases: Vec<String> = redis::from_redis_value(m["aliases"].clone()).unwrap();
    assert_eq!(aliases, vec!["openid:oA1".to_string()]);
    let ids: std::collections::HashMap<String, Vec<String>> =
        redis::from_redis_value(m["identifiers"].clone()).unwrap();
    assert_eq!(ids["openid"], vec!["oA1".to_string()]);
    // History names the merge; unmerge takes its observation.
    let history: Vec<std::collections::HashMap<String, R>> =
        cmd("MEMBER.HISTORY").arg("M1").query(&mut con).unwrap();
    let merge = history
        .iter()
        .find(|h| {
            let outcome: Vec<String> = redis::from_redis_value(h["outcome"].clone()).unwrap();
            outcome.iter().any(|o| o.starts_with("merged"))
        })
        .expect("a merge in the history");
    let R::Int(obs) = merge["observation"] else {
        panic!("an observation id")
    };
    let _: R = cmd("MEMBER.UNMERGE")
        .arg("M1")
        .arg(obs)
        .query(&mut con)
        .unwrap();
    assert_eq!(count(&mut con, "ALL"), 2);
    // Bad input: each a clear error, nothing changed.
    for (args, expected) in [
        (vec!["ID.LINK", "*", "phnoe", "1"], "phone"),
        (vec!["ID.LINK", "*", "phone"], "wrong number of arguments"),
        (vec!["MEMBER.MERGE", "M1", "M1"], "itself"),
        (vec!["MEMBER.UNMERGE", "M1", "999"], "MEMBER.HISTORY M1"),
        (vec!["MEMBER.UNMERGE", "M1", "x"], "not an observation id"),
        (vec!["ID.UNLINK", "M1", "openid", "nope"], "does not hold"),
    ] {
        let mut c = cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        let err = c.query::<R>(&mut con).unwrap_err().to_string();
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let blocked: std::collections::HashMap<String, R> = cmd("ID.LINK")
        .arg("M1")
        .arg("phone")
        .arg("13800000000")
        .query(&mut con)
        .unwrap();
    let ignored: Vec<String> = redis::from_redis_value(blocked["ignored"].clone()).unwrap();
    assert_eq!(ignored, vec!["phone '13800000000': blocked".to_string()]);
    assert_eq!(count(&mut con, "ALL"), 2);
    let shown: R = cmd("QUERY")
        .arg("SHOW IDENTIFIERS")
        .query(&mut con)
        .unwrap();
    assert!(format!("{shown:?}").contains("unionid"));
}
