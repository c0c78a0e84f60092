//! The audit log (DESIGN section 12): who read which audited fields of which members, every
//! export and erasure, failed logins and server starts, one JSON line per record in
//! `audit.log` beside the database's files, each durable before the caller answers and
//! chained to the one before by SHA-256, so a record changed, removed or inserted later is
//! found by [`verify_file`].
//!
//! A record's `hash` is SHA-256 over its `prev_hash`, a newline and the record's JSON
//! without the two hashes; the first record's `prev_hash` is 64 zeros, or, after retention
//! dropped older records, the hash of the last record dropped (the anchor verify starts
//! from). Members are recorded by internal row id, so an erasure never rewrites the chain.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::value::Timestamp;

/// The file's name in the database directory.
pub const FILE: &str = "audit.log";

const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, as the caller reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// The user.
    pub user: String,
    /// The client's address.
    pub client: String,
    /// `read`, `export`, `erase`, `auth_failed`, `start`, ...
    pub action: String,
    /// The statement or command with its literals replaced by `?` ([`without_literals`]).
    pub statement: String,
    /// The audited fields it returned unmasked.
    pub fields: Vec<String>,
    /// The members it returned, by internal row id.
    pub members: Vec<u32>,
    /// An export's row count (its members are then hashed into `members_hash`).
    pub rows: Option<u64>,
    /// SHA-256 of an export's member ids, or other details (a config's hash, a burst's
    /// count and times).
    pub detail: Option<String>,
}

/// One record as kept: the event, when, and the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// `<milliseconds>-<sequence>`, ascending (the stream id of `XRANGE audit`).
    pub id: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// What happened.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// The previous record's hash.
    pub prev_hash: String,
    /// SHA-256 over `prev_hash`, a newline and the record without its hashes.
    pub hash: String,
}

/// The part of a record its hash covers.
#[derive(Serialize)]
struct Hashed<'a> {
    id: &'a str,
    time: &'a str,
    #[serde(flatten)]
    event: &'a AuditEvent,
}

fn record_hash(prev: &str, id: &str, time: &str, event: &AuditEvent) -> String {
    let body = serde_json::to_string(&Hashed { id, time, event }).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    crate::util::hex(&h.finalize())
}

/// The end of the chain, under the append lock.
struct Tail {
    file: File,
    last_hash: String,
    last_ms: i64,
    seq: u64,
    /// Records appended so far (numbered from 1).
    appended: u64,
}

/// The audit log of one database directory. Appends are serialised; their fsyncs are
/// shared (group commit): a record is durable when [`AuditLog::record`] returns.
pub struct AuditLog {
    path: PathBuf,
    tail: Mutex<Tail>,
    /// Records known durable; the fsync lock.
    synced: Mutex<u64>,
    retention_days: u32,
    /// Permissions of the file (unix).
    mode: u32,
}

/// Opens `path` for appending, created with `mode` (unix).
fn open_append(path: &Path, mode: u32) -> Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path).map_err(|e| Error::io(path, e))
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish()
    }
}

impl AuditLog {
    /// Opens (or starts) the audit log in directory `dir`, keeping records for
    /// `retention_days` (0: forever), its file created with permissions `mode` (unix; the
    /// database's files' mode). The chain is verified first: a log that does not verify
    /// refuses the open, naming the first broken record.
    pub fn open(dir: &Path, retention_days: u32, mode: u32) -> Result<AuditLog> {
        let path = dir.join(FILE);
        let check = if path.exists() {
            verify_file(&path)?
        } else {
            AuditCheck::default()
        };
        let file = open_append(&path, mode)?;
        let log = AuditLog {
            tail: Mutex::new(Tail {
                file,
                last_hash: check.last_hash.unwrap_or_else(|| ZERO_HASH.to_string()),
                last_ms: check.last_ms,
                seq: check.last_seq,
                appended: 0,
            }),
            synced: Mutex::new(0),
            path,
            retention_days,
            mode,
        };
        log.drop_expired()?;
        Ok(log)
    }

    /// The file.
    pub fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Appends `event` and returns once it is durable, with its id.
    pub fn record(&self, event: AuditEvent) -> Result<String> {
        let now = Timestamp::now();
        let (id, mine) = {
            let mut tail = crate::database::lock(&self.tail);
            let ms = now.micros() / 1000;
            if ms > tail.last_ms {
                tail.last_ms = ms;
                tail.seq = 0;
            } else {
                tail.seq += 1;
            }
            let id = format!("{}-{}", tail.last_ms, tail.seq);
            let time = now.to_string();
            let hash = record_hash(&tail.last_hash, &id, &time, &event);
            let record = AuditRecord {
                id: id.clone(),
                time,
                event,
                prev_hash: std::mem::take(&mut tail.last_hash),
                hash: hash.clone(),
            };
            let mut line = serde_json::to_vec(&record)
                .map_err(|e| Error::Internal(format!("audit record: {e}")))?;
            line.push(b'\n');
            tail.file
                .write_all(&line)
                .map_err(|e| Error::io(&self.path, e))?;
            tail.last_hash = hash;
            tail.appended += 1;
            (id, tail.appended)
        };
        // Group commit: one fsync covers every record appended before it started.
        let mut synced = crate::database::lock(&self.synced);
        if *synced < mine {
            let upto = crate::database::lock(&self.tail).appended;
            let file = crate::database::lock(&self.tail)
                .file
                .try_clone()
                .map_err(|e| Error::io(&self.path, e))?;
            file.sync_data().map_err(|e| Error::io(&self.path, e))?;
            *synced = upto;
        }
        Ok(id)
    }

    /// Records from `from` to `to` (ids, inclusive; `-` and `+` for the ends), at most
    /// `count`.
    pub fn range(&self, from: &str, to: &str, count: usize) -> Result<Vec<AuditRecord>> {
        let _hold = crate::database::lock(&self.tail);
        let key = |id: &str| -> (i64, u64) {
            let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
            (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
        };
        let lo = if from == "-" {
            (i64::MIN, 0)
        } else {
            key(from)
        };
        let hi = if to == "+" {
            (i64::MAX, u64::MAX)
        } else {
            key(to)
        };
        let mut out = Vec::new();
        for record in read_records(&self.path)? {
            let record = record?;
            let k = key(&record.id);
            if k >= lo && k <= hi {
                out.push(record);
                if out.len() >= count {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Drops records older than the retention, keeping the chain's anchor (the hash of the
    /// last record dropped is the next one's `prev_hash`).
    fn drop_expired(&self) -> Result<()> {
        if self.retention_days == 0 {
            return Ok(());
        }
        let cutoff = Timestamp::now().micros() / 1000 - i64::from(self.retention_days) * 86_400_000;
        let mut tail = crate::database::lock(&self.tail);
        let records: Vec<AuditRecord> = read_records(&self.path)?.collect::<Result<_>>()?;
        let expired = records
            .iter()
            .take_while(|r| {
                r.id.split_once('-')
                    .and_then(|(ms, _)| ms.parse::<i64>().ok())
                    .is_some_and(|ms| ms < cutoff)
            })
            .count();
        if expired == 0 {
            return Ok(());
        }
        let mut kept = Vec::new();
        for r in &records[expired..] {
            kept.extend(serde_json::to_vec(r).map_err(|e| Error::Internal(e.to_string()))?);
            kept.push(b'\n');
        }
        let tmp = self.path.with_extension("log.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut out = open_append(&tmp, self.mode)?;
        out.write_all(&kept)
            .and_then(|()| out.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        tail.file = open_append(&self.path, self.mode)?;
        Ok(())
    }
}

fn read_records(path: &Path) -> Result<impl Iterator<Item = Result<AuditRecord>>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let path = path.to_path_buf();
    Ok(std::io::BufReader::new(file)
        .lines()
        .enumerate()
        .map(move |(i, line)| {
            let line = line.map_err(|e| Error::io(&path, e))?;
            serde_json::from_str(&line).map_err(|e| Error::BadDatabase {
                path: path.clone(),
                message: format!("audit record {} is not a record: {e}", i + 1),
            })
        }))
}

/// What [`verify_file`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditCheck {
    /// Records verified.
    pub records: u64,
    /// The first record's `prev_hash`: zeros, or the anchor left by retention.
    pub anchor: Option<String>,
    /// The last record's hash.
    pub last_hash: Option<String>,
    last_ms: i64,
    last_seq: u64,
}

/// Verifies the chain of the audit log at `path`: every record's hash, and each one's
/// `prev_hash` equal to the hash before it. The error names the first broken record (its
/// line and id).
pub fn verify_file(path: &Path) -> Result<AuditCheck> {
    let mut check = AuditCheck::default();
    let mut prev: Option<String> = None;
    for (i, record) in read_records(path)?.enumerate() {
        let record = record?;
        let broken = |why: &str| Error::BadDatabase {
            path: path.to_path_buf(),
            message: format!(
                "audit record {} (id {}) {why}: the log was changed after it was written",
                i + 1,
                record.id
            ),
        };
        if let Some(prev) = &prev
            && *prev != record.prev_hash
        {
            return Err(broken("does not follow the record before it"));
        }
        if record_hash(&record.prev_hash, &record.id, &record.time, &record.event) != record.hash {
            return Err(broken("does not match its hash"));
        }
        if check.anchor.is_none() {
            check.anchor = Some(record.prev_hash.clone());
        }
        let (ms, seq) = record.id.split_once('-').unwrap_or(("0", "0"));
        check.last_ms = ms.parse().unwrap_or(0);
        check.last_seq = seq.parse().unwrap_or(0);
        prev = Some(record.hash.clone());
        check.records += 1;
    }
    check.last_hash = prev;
    Ok(check)
}

/// SHA-256 of `bytes` in hex (a config file's, an export's member list's).
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::util::hex(&Sha256::digest(bytes))
}

/// `statement` with its literals (quoted text, numbers) replaced by `?`, as the audit log
/// keeps statements: who asked what, never the values asked for.
pub fn without_literals(statement: &str) -> String {
    let mut out = String::with_capacity(statement.len());
    let mut chars = statement.chars().peekable();
    let mut prev_ident = false;
    while let Some(c) = chars.next() {
        if c == '\'' || c == '"' {
            // a quoted literal, '' / "" inside it escaping the quote
            loop {
                match chars.next() {
                    None => break,
                    Some(q) if q == c => {
                        if chars.peek() == Some(&c) {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    Some(_) => {}
                }
            }
            out.push('?');
            prev_ident = false;
        } else if c.is_ascii_digit() && !prev_ident {
            while chars
                .peek()
                .is_some_and(|d| d.is_ascii_alphanumeric() || matches!(d, '.' | '-' | ':'))
            {
                chars.next();
            }
            out.push('?');
            prev_ident = false;
        } else {
            prev_ident = c.is_alphanumeric() || c == '_';
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(user: &str, members: &[u32]) -> AuditEvent {
        AuditEvent {
            user: user.into(),
            client: "127.0.0.1".into(),
            action: "read".into(),
            statement: "FIND phone IS NOT NULL SHOW phone LIMIT ?".into(),
            fields: vec!["phone".into()],
            members: members.to_vec(),
            ..AuditEvent::default()
        }
    }

    #[test]
    fn records_chain_and_tampering_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), 0, 0o600).unwrap();
        for i in 0..5 {
            log.record(event(&format!("u{i}"), &[i, i + 1])).unwrap();
        }
        drop(log);
        let path = dir.path().join(FILE);
        assert_eq!(verify_file(&path).unwrap().records, 5);
        // reopening continues the chain
        let log = AuditLog::open(dir.path(), 0, 0o600).unwrap();
        log.record(event("u5", &[9])).unwrap();
        let all = log.range("-", "+", 100).unwrap();
        assert_eq!(all.len(), 6);
        assert!(all.windows(2).all(|w| w[1].prev_hash == w[0].hash));
        assert_eq!(all[5].event.members, vec![9]);
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        // change one member id in record 3
        let lines: Vec<&str> = text.lines().collect();
        let changed = lines[2].replace("[2,3]", "[2,4]");
        assert_ne!(changed, lines[2]);
        let mut tampered: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        tampered[2] = changed;
        std::fs::write(&path, tampered.join("\n") + "\n").unwrap();
        let e = verify_file(&path).unwrap_err().to_string();
        assert!(e.contains("audit record 3") && e.contains("hash"), "{e}");
        assert!(
            AuditLog::open(dir.path(), 0, 0o600).is_err(),
            "a broken log refuses the open"
        );
        // removing a record breaks the link of the next
        let mut removed: Vec<&str> = lines.clone();
        removed.remove(1);
        std::fs::write(&path, removed.join("\n") + "\n").unwrap();
        let e = verify_file(&path).unwrap_err().to_string();
        assert!(e.contains("audit record 2") && e.contains("follow"), "{e}");
    }

    #[test]
    fn concurrent_records_are_all_kept_in_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let log = std::sync::Arc::new(AuditLog::open(dir.path(), 0, 0o600).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        log.record(event(&format!("t{t}"), &[i])).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(verify_file(&dir.path().join(FILE)).unwrap().records, 100);
    }

    #[test]
    fn retention_drops_old_records_and_keeps_an_anchor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        {
            let log = AuditLog::open(dir.path(), 0, 0o600).unwrap();
            for i in 0..3 {
                log.record(event("old", &[i])).unwrap();
            }
        }
        // age the first two records by rewriting their ids and re-chaining them
        let records: Vec<AuditRecord> = read_records(&path).unwrap().map(|r| r.unwrap()).collect();
        let mut prev = ZERO_HASH.to_string();
        let mut text = String::new();
        for (i, mut r) in records.into_iter().enumerate() {
            if i < 2 {
                r.id = format!("{}-{i}", 1000 + i);
            }
            r.prev_hash = prev.clone();
            r.hash = record_hash(&prev, &r.id, &r.time, &r.event);
            prev = r.hash.clone();
            text.push_str(&serde_json::to_string(&r).unwrap());
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
        let log = AuditLog::open(dir.path(), 30, 0o600).unwrap();
        let kept = log.range("-", "+", 10).unwrap();
        assert_eq!(kept.len(), 1);
        let check = verify_file(&path).unwrap();
        assert_eq!(check.records, 1);
        assert_ne!(
            check.anchor.as_deref(),
            Some(ZERO_HASH),
            "anchored at the dropped"
        );
    }

    #[test]
    fn statements_are_kept_without_their_literals() {
        assert_eq!(
            without_literals("FIND phone = '13812345678' AND level >= 3 SHOW phone LIMIT 10"),
            "FIND phone = ? AND level >= ? SHOW phone LIMIT ?"
        );
        assert_eq!(
            without_literals("COUNT name = 'O''Brien' AND DID p IN LAST 30 DAYS"),
            "COUNT name = ? AND DID p IN LAST ? DAYS"
        );
        assert_eq!(without_literals("MEMBER.GET M12"), "MEMBER.GET M12");
        assert_eq!(
            without_literals("COUNT DID p SINCE 2026-11-01T00:00:00Z"),
            "COUNT DID p SINCE ?"
        );
    }
}
