//! The server harness shared by the server's test binaries: a real `memberdb serve` process
//! on 127.0.0.1:0 and a few helpers around a redis-rs connection.
#![allow(dead_code)] // each test binary uses its own part of it

pub mod binary;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use std::time::Instant;

use redis::{Value as R, cmd};
use std::net::TcpStream;

/// A running server; killed on drop unless stopped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub _dir: Option<tempfile::TempDir>,
}

impl Server {
    pub fn start(db: &Path, config: Option<&str>) -> Server {
        Server::try_start(db, config).expect("the server starts")
    }

    pub fn try_start(db: &Path, config: Option<&str>) -> Result<Server, String> {
        Server::try_start_with(db, config, &[])
    }

    /// A server with more arguments (`--clock manual --now TS`).
    pub fn start_with(db: &Path, extra: &[&str]) -> Server {
        Server::try_start_with(db, None, extra).expect("the server starts")
    }

    pub fn try_start_with(
        db: &Path,
        config: Option<&str>,
        extra: &[&str],
    ) -> Result<Server, String> {
        let mut args = vec![
            "serve".to_string(),
            "--db".to_string(),
            db.to_str().unwrap().to_string(),
            "--create".to_string(),
            "--log-level".to_string(),
            "warn".to_string(),
        ];
        let dir = config.map(|text| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("memberdb.toml");
            std::fs::write(&path, text).unwrap();
            // a config holding password hashes must be private to the server's user
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            args.push("--config".to_string());
            args.push(
                dir.path()
                    .join("memberdb.toml")
                    .to_str()
                    .unwrap()
                    .to_string(),
            );
            dir
        });
        if !config.is_some_and(|c| c.contains("bind")) {
            args.push("--bind".to_string());
            args.push("127.0.0.1:0".to_string());
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        Server::spawn(&args, &[], dir)
    }

    /// `memberdb serve` on the sample database (no `--db`), built into `sample_db`.
    pub fn start_sample(sample_db: &Path) -> Server {
        let args = ["serve", "--bind", "127.0.0.1:0", "--log-level", "warn"].map(String::from);
        Server::spawn(&args, &[("MEMBERDB_SAMPLE_DB", sample_db)], None).expect("the server starts")
    }

    fn spawn(
        args: &[String],
        envs: &[(&str, &Path)],
        dir: Option<tempfile::TempDir>,
    ) -> Result<Server, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_memberdb"))
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            let status = child.wait().unwrap();
            return Err(format!("{status}: {err}"));
        };
        let port = addr.rsplit(':').next().unwrap().parse().unwrap();
        Ok(Server {
            child,
            port,
            _dir: dir,
        })
    }

    pub fn url(&self, resp3: bool) -> String {
        let protocol = if resp3 { "?protocol=resp3" } else { "" };
        format!("redis://127.0.0.1:{}/{protocol}", self.port)
    }

    pub fn client(&self, resp3: bool) -> redis::Connection {
        redis::Client::open(self.url(resp3))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// A connection logged in as `user` with `password` (an error when AUTH fails).
    pub fn login(
        &self,
        user: &str,
        password: &str,
        resp3: bool,
    ) -> redis::RedisResult<redis::Connection> {
        let url = self
            .url(resp3)
            .replace("redis://", &format!("redis://{user}:{password}@"));
        redis::Client::open(url)?.get_connection()
    }

    pub fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// SIGTERM, then the exit status and stderr.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status, err)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn q(con: &mut redis::Connection, statement: &str) -> redis::RedisResult<R> {
    cmd("QUERY").arg(statement).query(con)
}

pub fn count(con: &mut redis::Connection, segment: &str) -> i64 {
    cmd("QUERY")
        .arg(format!("COUNT {segment}"))
        .query(con)
        .unwrap()
}

/// Reads from `stream` until it closes or `limit` passes: what arrived, and whether it closed.
pub fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while started.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&got).into_owned(), true);
            }
            Err(_) => {}
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

/// The argon2 hash `memberdb hash-password` prints for `password`.
pub fn password_hash(password: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_memberdb"))
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Creates a database in `dir` with `members` members, member `m` (`M<m>`) having the
/// fields `fields(m)`: made before a server starts, so its config can name them.
pub fn database_of(
    dir: &Path,
    members: usize,
    fields: impl Fn(usize) -> Vec<(&'static str, memberdb::Value)>,
) {
    let db = memberdb::Database::open_with(
        dir,
        memberdb::OpenOptions {
            create_if_missing: true,
            ..memberdb::OpenOptions::default()
        },
    )
    .unwrap();
    for m in 0..members {
        let fields: Vec<(&str, Option<memberdb::Value>)> =
            fields(m).into_iter().map(|(f, v)| (f, Some(v))).collect();
        db.upsert_member(&format!("M{m}"), &fields).unwrap();
    }
    db.close().unwrap();
}

/// `XRANGE <key> - +` as each entry's field map (a group's stream, or `audit`).
pub fn xrange_fields(
    con: &mut redis::Connection,
    key: &str,
) -> Vec<std::collections::HashMap<String, String>> {
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(con)
        .unwrap();
    entries
        .into_iter()
        .map(|(_, kv)| kv.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect())
        .collect()
}
