//! Issue 11: what an attacker did to `memberdb serve`, each finding reproduced against a real
//! server process and shown to be harmless now.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use redis::{Value as R, cmd};
use support::{Server, count, q, read_until_closed};

/// A database holding the sample's 20,000 members (phone, email, openid, unionid, city...).
fn sample_members(dir: &Path) {
    let db = memberdb::Database::open(dir).unwrap();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data-samples");
    db.load_file(
        memberdb::InputKind::Members,
        samples.join("members.parquet"),
    )
    .unwrap();
    db.close().unwrap();
}

/// The resident set of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

fn bulk(arg: &str) -> String {
    format!("${}\r\n{arg}\r\n", arg.len())
}

fn request(args: &[&str]) -> String {
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&bulk(a));
    }
    out
}

/// Finding 1: a read-role client sent `COUNT NOT NOT ... TAG 'vip'` with 1,740 NOTs (7 KB,
/// under the statement limit) and overflowed a connection thread's stack, aborting the
/// whole server. Finding 2, over the wire: a DEFINE GROUP the server acknowledges reopens.
#[test]
fn deep_statements_are_refused_and_what_is_defined_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let mut con = server.client(false);
    let () = cmd("TAG.ADD").arg("M1").arg("vip").query(&mut con).unwrap();
    for nots in [65, 1_740, 4_000] {
        let text = format!("COUNT {}TAG 'vip'", "NOT ".repeat(nots));
        let err = q(&mut con, &text).unwrap_err().to_string();
        assert!(err.contains("limits.nesting"), "{err}");
    }
    let text = format!("DEFINE GROUP g AS {}TAG 'vip'", "NOT ".repeat(130));
    assert!(q(&mut con, &text).is_err());
    let text = format!("DEFINE GROUP g AS {}TAG 'vip'", "NOT ".repeat(64));
    let size: i64 = cmd("QUERY").arg(&text).query(&mut con).unwrap();
    assert_eq!(size, 1);
    assert_eq!(count(&mut con, "IN GROUP g"), 1);
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    let server = Server::start(dir.path(), None);
    let mut con = server.client(true);
    assert_eq!(count(&mut con, "IN GROUP g"), 1, "the group reopened");
}

/// Finding 3a: 800 pipelined `FIND ALL SHOW phone, email, openid, unionid, city LIMIT 10000`
/// from a client that never reads took the server from 110 MB to 1.19 GB, every reply built
/// before any was written. Finding 4: such a client held its thread forever and SIGTERM hung.
#[test]
fn a_client_that_never_reads_costs_one_batch_and_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    sample_members(dir.path());
    let server = Server::start(
        dir.path(),
        Some("[limits]\nwrite_timeout_seconds = 2\nshutdown_seconds = 2\n"),
    );
    let mut healthy = server.client(false);
    assert_eq!(count(&mut healthy, "ALL"), 20_000);
    let before = rss(server.child.id());
    let find = request(&[
        "QUERY",
        "FIND ALL SHOW phone, email, openid, unionid, city LIMIT 10000",
    ]);
    let mut greedy = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    greedy
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut sent = 0;
    for _ in 0..800 {
        if greedy.write_all(find.as_bytes()).is_err() {
            break; // the server stopped reading us, then cut us off
        }
        sent += 1;
    }
    assert!(sent >= 1);
    // the server blocks on the greedy client's socket, then drops it; meanwhile it answers
    let mut peak = 0;
    let started = Instant::now();
    // (each blocked write may take the timeout, and the kernel drains a little at a time)
    while started.elapsed() < Duration::from_secs(9) {
        peak = peak.max(rss(server.child.id()));
        assert_eq!(count(&mut healthy, "city = 'Shanghai' OR ALL"), 20_000);
        std::thread::sleep(Duration::from_millis(100));
    }
    let grown = peak.saturating_sub(before);
    assert!(
        grown < 150 << 20,
        "the server grew by {} MB for a client that does not read",
        grown >> 20
    );
    // SIGTERM ends in bounded time even with such a client connected
    let mut stuck = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    for _ in 0..50 {
        if stuck.write_all(find.as_bytes()).is_err() {
            break;
        }
    }
    let stopping = Instant::now();
    let (status, err) = server.stop();
    assert!(status.success(), "{status}: {err}");
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "{:?}",
        stopping.elapsed()
    );
    assert!(err.contains("did not read its replies"), "{err}");
    drop(greedy);
}

/// Finding 3b: the answer cache was keyed by text, so 100 whitespace variants of a
/// BREAKDOWN of 84,809 lines were 100 entries (1.09 GB). Finding 5: no limit on a statement's
/// time, and BREAKDOWN by a high-cardinality field returned every value.
#[test]
fn statements_are_bounded_in_time_lines_and_cache_bytes() {
    let dir = tempfile::tempdir().unwrap();
    sample_members(dir.path());
    let server = Server::start(
        dir.path(),
        Some("answer_cache_bytes = 4194304\n[limits]\nstatement_ms = 1\n"),
    );
    let mut con = server.client(false);
    // an OR of 800 string ranges on phone: stopped at its deadline
    let ranges: Vec<String> = (0..700).map(|i| format!("phone >= '13{i:03}'")).collect();
    let slow = format!("COUNT {}", ranges.join(" OR "));
    let err = q(&mut con, &slow).unwrap_err().to_string();
    assert!(err.contains("limits.statement_ms"), "{err}");
    // every value of phone: refused, naming TOP
    let err = q(&mut con, "BREAKDOWN ALL BY phone")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("limits.breakdown_rows") && err.contains("TOP"),
        "{err}"
    );
    drop(con);
    drop(server);

    let server = Server::start(dir.path(), Some("answer_cache_bytes = 4194304\n"));
    let mut con = server.client(false);
    for i in 0..100 {
        let text = format!(
            "breakdown{}ALL  by phone{}TOP 5000 -- variant {i}",
            " ".repeat(i % 7 + 1),
            "\n".repeat(i % 3 + 1)
        );
        let R::Array(lines) = q(&mut con, &text).unwrap() else {
            panic!("not an array")
        };
        assert_eq!(lines.len(), 5000);
    }
    let info: String = cmd("INFO").arg("stats").query(&mut con).unwrap();
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(field("answer_cache_misses"), 1, "{info}");
    assert_eq!(field("answer_cache_hits"), 99, "{info}");
    assert!(field("answer_cache_bytes") <= 4 << 20, "{info}");
}

fn users_config(extra: &str) -> String {
    let hash = support::password_hash;
    format!(
        "{extra}\n[[users]]\nname = \"app\"\npassword_hash = \"{}\"\nrole = \"write\"\n",
        hash("app-pass")
    )
}

/// Finding 6: unauthenticated connections could hold every client slot (a `-NOAUTH` reply
/// reset the idle clock), AUTH had no rate limit (45 wrong passwords a second on one
/// connection, each a log line). Finding 3c: 200 connections looping AUTH took 1.59 GB.
#[test]
fn unauthenticated_clients_are_bounded_slowed_and_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = users_config("[limits]\nunauthenticated_clients = 3\nauth_seconds = 2\n");
    let server = Server::start(dir.path(), Some(&config));
    let ping = request(&["PING"]);
    // three connections that never authenticate take the three slots ...
    let mut squatters: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // ... so a fourth waits outside, while the squatters' NOAUTH replies restart no clock
    let mut fourth = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let (reply, closed) = read_until_closed(&mut fourth, Duration::from_secs(2));
    assert!(
        closed && reply.contains("waiting to authenticate"),
        "{reply:?}"
    );
    for _ in 0..5 {
        for s in &mut squatters {
            let _ = s.write_all(ping.as_bytes());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for s in &mut squatters {
        let (reply, closed) = read_until_closed(s, Duration::from_secs(4));
        assert!(
            closed && reply.contains("not authenticated within 2s"),
            "{reply:?}"
        );
    }
    // the slots are free again: a real client gets in
    let url = server
        .url(false)
        .replace("redis://", "redis://app:app-pass@");
    let mut app = redis::Client::open(url).unwrap().get_connection().unwrap();
    assert_eq!(count(&mut app, "ALL"), 0);

    // wrong passwords on one connection: each slower than the last
    let mut guesser = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let started = Instant::now();
    let mut reply = [0u8; 256];
    for i in 0..5 {
        guesser
            .write_all(request(&["AUTH", "app", &format!("guess{i}")]).as_bytes())
            .unwrap();
        let n = guesser.read(&mut reply).unwrap();
        assert!(String::from_utf8_lossy(&reply[..n]).contains("WRONGPASS"));
    }
    // delays of 0, 50, 100, 200 and 400 ms before the five tries
    assert!(started.elapsed() >= Duration::from_millis(750));
    // many connections verifying at once stay within the verification budget
    let before = rss(server.child.id());
    let threads: Vec<_> = (0..40)
        .map(|i| {
            let port = server.port;
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let mut buf = [0u8; 256];
                let _ = s.write_all(request(&["AUTH", "nobody", &format!("x{i}")]).as_bytes());
                let _ = s.read(&mut buf);
            })
        })
        .collect();
    let mut peak = before;
    while threads.iter().any(|t| !t.is_finished()) {
        peak = peak.max(rss(server.child.id()));
        std::thread::sleep(Duration::from_millis(20));
    }
    for t in threads {
        t.join().unwrap();
    }
    assert!(
        peak.saturating_sub(before) < 120 << 20,
        "{} MB for 40 verifications",
        (peak - before) >> 20
    );
    drop(guesser);
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    let first_lines = err.matches("failed AUTH; further failures").count();
    assert!(
        first_lines <= 3,
        "one line per burst per address, not one per try: {err}"
    );
    assert!(err.contains("a burst of failed AUTH ended"), "{err}");
}

/// Finding 7: the database directory was 0755, data files and the log 0644 (phone numbers in
/// clear), and a config holding password hashes was accepted at 0644.
#[test]
fn files_are_private_and_a_readable_config_with_secrets_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("db");
    let server = Server::start(&dir, None);
    let mut con = server.client(false);
    let () = cmd("MEMBER.SET")
        .arg("M1")
        .arg("phone")
        .arg("13800001234")
        .query(&mut con)
        .unwrap();
    let (status, _) = server.stop();
    assert!(status.success());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }

    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("memberdb.toml");
    std::fs::write(&config, users_config("")).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_memberdb"))
        .args(["serve", "--bind", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--db")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
}

/// Finding 9: NUL bytes were accepted in member ids and tag names; `serve` opened the
/// database (and took its lock) before checking that it could bind its address.
#[test]
fn nul_bytes_are_refused_and_the_address_is_checked_first() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let mut con = server.client(false);
    for (id, tag) in [("M\0 1", "vip"), ("M1", "v\0ip")] {
        let err = cmd("TAG.ADD")
            .arg(id)
            .arg(tag)
            .query::<R>(&mut con)
            .unwrap_err()
            .to_string();
        assert!(err.contains("NUL"), "{err}");
    }
    assert_eq!(count(&mut con, "ALL"), 0);

    // a second server on the same address fails before it touches its database
    let other = tempfile::tempdir().unwrap();
    let db = other.path().join("db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_memberdb"))
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{}", server.port),
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot listen"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!db.exists(), "the database was not created or locked");
}

/// The number of threads of process `pid`.
fn threads(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// Finding 8: 100 writing clients took RSS from 115 MB to 2.6 GB, in the heaps of a thread
/// per connection. Connections now cost buffers, not threads: 100 clients pipelining writes
/// are served by a fixed handful of threads, every write is acknowledged and applied, and
/// their fsyncs are shared.
#[test]
fn a_hundred_writing_clients_cost_no_thread_each() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let pid = server.child.id();
    let idle_threads = threads(pid);
    const CLIENTS: usize = 100;
    const WRITES: usize = 30;
    let mut sockets: Vec<TcpStream> = (0..CLIENTS).map(|_| server.raw()).collect();
    for (c, socket) in sockets.iter_mut().enumerate() {
        let mut batch = String::new();
        for w in 0..WRITES {
            let member = format!("M{c}-{w}");
            batch.push_str(&match w % 3 {
                0 => request(&["TAG.ADD", &member, "wrote"]),
                1 => request(&["MEMBER.SET", &member, "points", "7", "city", "上海"]),
                _ => request(&["EVENT.ADD", &member, "purchase", "*", "amount", "9.5"]),
            });
        }
        socket.write_all(batch.as_bytes()).unwrap();
    }
    // Every client is connected and has work queued: the thread count is still the same.
    let busy_threads = threads(pid);
    for socket in &mut sockets {
        socket
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let expected = "+OK\r\n".repeat(WRITES);
        let mut got = vec![0u8; expected.len()];
        socket.read_exact(&mut got).unwrap();
        assert_eq!(String::from_utf8_lossy(&got), expected);
    }
    assert!(
        busy_threads <= idle_threads + 2,
        "{CLIENTS} connections took threads: {idle_threads} idle, {busy_threads} busy"
    );
    let mut con = server.client(false);
    let per_kind = (CLIENTS * WRITES / 3) as i64;
    assert_eq!(count(&mut con, "TAG 'wrote'"), per_kind);
    assert_eq!(count(&mut con, "city = '上海' AND points = 7"), per_kind);
    assert_eq!(count(&mut con, "DID purchase WHERE amount > 9"), per_kind);
    let info: String = cmd("INFO").query(&mut con).unwrap();
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("INFO has no {name}: {info}"))
    };
    assert!(
        field("log_fsyncs") < (CLIENTS * WRITES) as u64 / 2,
        "the clients' writes share fsyncs: {info}"
    );
}
