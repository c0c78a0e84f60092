//! Change streams over the wire: redis-py consuming with XREAD BLOCK and with consumer
//! groups across a restart, redis-cli, the manual clock, and bad input answered with
//! Redis-style errors that change nothing.

mod support;

use std::process::Command;

use redis::{Value as R, cmd};
use support::{Server, q};

const START: &str = "2026-12-01T00:00:00Z";

/// An entry as redis-rs reads it: its id and its fields, flat.
type Entry = (String, Vec<String>);

fn manual(dir: &std::path::Path) -> Server {
    Server::start_with(dir, &["--clock", "manual", "--now", START])
}

fn python(script: &str) {
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "redis-py (pip install redis; .ci/run installs it): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn seed(con: &mut redis::Connection) {
    for (m, e, t) in [
        ("M0", "claim_coupon", "2026-11-01T00:00:00Z"),
        ("M0", "redeem_coupon", "2026-11-01T00:00:00Z"),
    ] {
        let _: R = cmd("EVENT.ADD").arg(m).arg(e).arg(t).query(con).unwrap();
    }
    q(
        con,
        "DEFINE GROUP reminder AS DID claim_coupon IN LAST 7 DAYS AND NOT DID redeem_coupon \
         IN LAST 7 DAYS KEEP CHANGES 30 DAYS",
    )
    .unwrap();
}

/// A blocked XREAD is woken by the commit of a write, and by a clock move; every client
/// sees entries with member, op, cause and at.
#[test]
fn redis_py_reads_with_xread_block() {
    let dir = tempfile::tempdir().unwrap();
    let server = manual(dir.path());
    seed(&mut server.client(false));
    let script = format!(
        r#"
import redis, threading, time
for protocol in (2, 3):
    r = redis.Redis(port={port}, protocol=protocol, decode_responses=True)
    snap_id, members = r.execute_command("GROUP.SNAPSHOT", "reminder")
    got = []
    def reader():
        got.append(r.xread({{"group:reminder": snap_id}}, block=10000))
    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.3)
    w = redis.Redis(port={port}, decode_responses=True)
    member = "P%d" % protocol
    w.execute_command("EVENT.ADD", member, "claim_coupon", "*")
    t.join(10)
    assert not t.is_alive(), "XREAD BLOCK was not woken"
    reply = got[0]
    entries = reply["group:reminder"][0] if isinstance(reply, dict) else reply[0][1]
    (entry_id, fields), = entries
    assert fields["member"] == member and fields["op"] == "enter" and fields["cause"] == "write", fields
    assert fields["at"].endswith("Z") and "." in fields["at"], fields
    # nothing new: BLOCK times out with nil
    started = time.time()
    assert r.xread({{"group:reminder": entry_id}}, block=200) in (None, [], {{}})
    assert time.time() - started >= 0.2
    # $ means: only what comes after the call
    assert r.xread({{"group:reminder": "$"}}, count=5) in (None, [], {{}})
    assert r.xlen("group:reminder") >= 1
    assert r.xrange("group:reminder", "-", "+")[-1][0] == entry_id
    assert r.xrevrange("group:reminder", "+", "-", count=1)[0][0] == entry_id
print("ok")
"#,
        port = server.port
    );
    python(&script);
    // a clock move past the window: both members leave, cause time, at their boundary
    let mut con = server.client(false);
    let (id, _): (String, Vec<String>) = cmd("GROUP.SNAPSHOT")
        .arg("reminder")
        .query(&mut con)
        .unwrap();
    let _: R = cmd("CLOCK.SET")
        .arg("2026-12-09T00:00:00Z")
        .query(&mut con)
        .unwrap();
    let reply: Vec<(String, Vec<Entry>)> = cmd("XREAD")
        .arg("STREAMS")
        .arg("group:reminder")
        .arg(&id)
        .query(&mut con)
        .unwrap();
    let entries = &reply[0].1;
    assert_eq!(entries.len(), 2, "{entries:?}");
    for (_, fields) in entries {
        assert_eq!(fields[3], "exit");
        assert_eq!(fields[5], "time");
        assert_eq!(fields[7], "2026-12-08T00:00:00.000000Z");
    }
}

/// Consumer groups: XGROUP CREATE, XREADGROUP, XACK, XPENDING; deliveries and
/// acknowledgements are durable, so a restarted server continues where it was.
#[test]
fn redis_py_consumer_groups_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = manual(dir.path());
    seed(&mut server.client(false));
    let first = format!(
        r#"
import redis
r = redis.Redis(port={port}, decode_responses=True)
r.xgroup_create("group:reminder", "crm", id="$")
for m in ("A1", "A2", "A3"):
    r.execute_command("EVENT.ADD", m, "claim_coupon", "*")
got = r.xreadgroup("crm", "worker-1", {{"group:reminder": ">"}}, count=2)
entries = got[0][1]
assert [f["member"] for _, f in entries] == ["A1", "A2"], entries
assert r.xack("group:reminder", "crm", entries[0][0]) == 1
summary = r.xpending("group:reminder", "crm")
assert summary["pending"] == 1, summary
print("ok")
"#,
        port = server.port
    );
    python(&first);
    let (status, _) = server.stop();
    assert!(status.success());
    let server = manual(dir.path());
    let second = format!(
        r#"
import redis
r = redis.Redis(port={port}, decode_responses=True)
pending = r.xpending_range("group:reminder", "crm", "-", "+", 10)
assert [p["consumer"] for p in pending] == ["worker-1"], pending
history = r.xreadgroup("crm", "worker-1", {{"group:reminder": "0"}})
assert [f["member"] for _, f in history[0][1]] == ["A2"], history
new = r.xreadgroup("crm", "worker-2", {{"group:reminder": ">"}}, count=10)
assert [f["member"] for _, f in new[0][1]] == ["A3"], new
assert r.xreadgroup("crm", "worker-2", {{"group:reminder": ">"}}, count=10, block=100) in (None, [], {{}})
info = r.xinfo_groups("group:reminder")
assert info[0]["name"] == "crm" and info[0]["pending"] == 2, info
print("ok")
"#,
        port = server.port
    );
    python(&second);
}

fn error_of(con: &mut redis::Connection, args: &[&str]) -> String {
    let mut c = cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    match c.query::<R>(con) {
        Err(e) => format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or("")),
        Ok(v) => panic!("{args:?} answered {v:?}"),
    }
}

/// Every bad request gets a Redis-style error, changes nothing, and the server carries on.
#[test]
fn bad_stream_requests_get_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = manual(dir.path());
    let mut con = server.client(false);
    seed(&mut con);
    let _: R = cmd("XGROUP")
        .arg("CREATE")
        .arg("group:reminder")
        .arg("crm")
        .arg("$")
        .query(&mut con)
        .unwrap();
    for (args, expect) in [
        (&["XREAD", "STREAMS", "reminder", "0"][..], "group:reminder"),
        (
            &["XREAD", "STREAMS", "group:remindr", "0"],
            "did you mean 'reminder'",
        ),
        (
            &["XREAD", "STREAMS", "group:reminder", "one"],
            "Invalid stream ID",
        ),
        (&["XREAD", "STREAMS", "group:reminder"], "Unbalanced"),
        (&["XRANGE", "group:reminder", "-"], "syntax error"),
        (
            &[
                "XREADGROUP",
                "GROUP",
                "nope",
                "c",
                "STREAMS",
                "group:reminder",
                ">",
            ],
            "NOGROUP",
        ),
        (
            &["XGROUP", "CREATE", "group:reminder", "crm", "$"],
            "BUSYGROUP",
        ),
        (&["CLOCK.SET", "2026-01-01T00:00:00Z"], "only moves forward"),
        (&["CLOCK.SET", "tomorrow"], "not a timestamp"),
        (
            &["QUERY", "DEFINE GROUP g AS ALL KEEP CHANGES 0 DAYS"],
            "KEEP CHANGES 0 DAYS",
        ),
        (&["QUERY", "SHOW GROUP remindr"], "did you mean 'reminder'"),
        (
            &["QUERY", "EXPLAIN MEMBER 'nobody' IN GROUP reminder"],
            "no member 'nobody'",
        ),
    ] {
        let e = error_of(&mut con, args);
        assert!(e.contains(expect), "{args:?}: {e}");
    }
    // XACK of ids never delivered acknowledges nothing
    let n: i64 = cmd("XACK")
        .arg("group:reminder")
        .arg("crm")
        .arg("99-0")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 0);
    // nothing changed: no group g, the clock where it was
    assert!(q(&mut con, "SHOW GROUP g").is_err());
    let info: R = cmd("XINFO")
        .arg("STREAM")
        .arg("group:reminder")
        .query(&mut con)
        .unwrap();
    assert!(format!("{info:?}").contains("keep-changes-days"));
    // a wall-clock server refuses CLOCK.SET
    let wall_dir = tempfile::tempdir().unwrap();
    let wall = Server::start(wall_dir.path(), None);
    let e = error_of(
        &mut wall.client(false),
        &["CLOCK.SET", "2030-01-01T00:00:00Z"],
    );
    assert!(e.contains("wall clock"), "{e}");
    // --now without --clock manual, and --clock manual without --now
    for extra in [&["--now", START][..], &["--clock", "manual"]] {
        let e = Server::try_start_with(tempfile::tempdir().unwrap().path(), None, extra)
            .err()
            .expect("refused");
        assert!(e.contains("--clock manual") || e.contains("--now"), "{e}");
    }
}

/// The README's journey: a coupon-reminder group consumed with redis-cli XREAD.
#[test]
fn redis_cli_reads_a_group_stream() {
    let dir = tempfile::tempdir().unwrap();
    let server = manual(dir.path());
    seed(&mut server.client(false));
    let port = server.port.to_string();
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-p", &port])
            .args(args)
            .output()
            .expect("redis-cli runs (apt-get install redis-tools; .ci/run installs it)");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(cli(&["EVENT.ADD", "M1", "claim_coupon", "*"]), "OK\n");
    let out = cli(&["XREAD", "COUNT", "10", "STREAMS", "group:reminder", "0-0"]);
    assert!(
        out.contains("M1") && out.contains("enter") && out.contains("write"),
        "{out}"
    );
    // a restart with an earlier --now keeps the stored clock
    let (status, _) = server.stop();
    assert!(status.success());
    let server = Server::start_with(
        dir.path(),
        &["--clock", "manual", "--now", "2026-01-01T00:00:00Z"],
    );
    let mut con = server.client(false);
    let e = error_of(&mut con, &["CLOCK.SET", "2026-11-30T00:00:00Z"]);
    assert!(e.contains("2026-12-01"), "{e}");
}
