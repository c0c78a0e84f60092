//! The change streams on the wire (DESIGN section 8): the Redis Streams commands on
//! `group:<name>` (XREAD, XRANGE, XREVRANGE, XLEN, XINFO, XGROUP, XREADGROUP, XACK,
//! XPENDING), `GROUP.SNAPSHOT` and the admin command `CLOCK.SET`.
//!
//! They run on the query threads (a consumer group's delivery and acknowledgement, and a
//! clock move, are durable before the reply, so they wait for an fsync). An `XREAD` or
//! `XREADGROUP` with `BLOCK` that finds nothing comes back as a [`Blocked`] request, with
//! `$` resolved: the connection waits, holding no thread, until a commit adds entries (the
//! database's change listener wakes the event loop, which runs the request again) or its
//! time is up.

use std::time::{Duration, Instant};

use memberdb::{ChangeEntry, EntryId, Timestamp};

use super::Shared;
use super::commands::Session;
use super::commands::needs;
use super::resp::Reply;
use memberdb::Command;

/// The commands of this module.
pub(crate) const COMMANDS: &[&str] = &[
    "XREAD",
    "XREADGROUP",
    "XRANGE",
    "XREVRANGE",
    "XLEN",
    "XINFO",
    "XGROUP",
    "XACK",
    "XPENDING",
    "GROUP.SNAPSHOT",
    "CLOCK.SET",
];

/// A read that found nothing and waits: run `args` again when entries arrive, or reply
/// nil at `until` (`None`: `BLOCK 0`, forever).
#[derive(Clone, Debug)]
pub(crate) struct Blocked {
    pub(crate) args: Vec<Vec<u8>>,
    pub(crate) until: Option<Instant>,
}

/// What a stream command gives: a reply, or a wait.
pub(crate) enum Answer {
    Reply(Reply),
    Wait(Blocked),
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Self {
        Answer::Reply(reply)
    }
}

fn text(args: &[Vec<u8>], i: usize) -> Option<&str> {
    args.get(i).and_then(|a| std::str::from_utf8(a).ok())
}

fn syntax(command: &str, usage: &str) -> Reply {
    Reply::error("ERR", format!("syntax error; use {command} {usage}"))
}

fn engine_error(e: memberdb::Error) -> Reply {
    match e {
        memberdb::Error::Stream { code, message } => Reply::error(code, message),
        other => Reply::error("ERR", other),
    }
}

/// The group of a stream key `group:<name>`; any other key is an error naming the closest
/// group.
fn stream_name<'a>(shared: &Shared, key: &'a str) -> Result<&'a str, Reply> {
    if let Some(name) = key.strip_prefix("group:") {
        return Ok(name);
    }
    let hint = match shared.db.group_status(key) {
        Ok(_) => format!("; did you mean 'group:{key}'?"),
        Err(e) => format!(" ({e})"),
    };
    Err(Reply::error(
        "ERR",
        format!("'{key}' is not a stream: the streams are group:<name> of a dynamic group{hint}"),
    ))
}

fn bad_id(id: &str) -> Reply {
    Reply::error(
        "ERR",
        format!("Invalid stream ID specified as stream command argument: '{id}'"),
    )
}

fn parse_id(id: &str) -> Result<EntryId, Reply> {
    EntryId::parse(id).ok_or_else(|| bad_id(id))
}

/// A range bound of XRANGE: `-`, `+`, `id`, `(id` (exclusive); `<position>` alone is the
/// whole position (its first entry as a start, its last as an end).
fn range_bound(text: &str, start: bool) -> Result<EntryId, Reply> {
    let max = EntryId::new(u64::MAX, u32::MAX);
    match text {
        "-" => Ok(EntryId::ZERO),
        "+" => Ok(max),
        _ => {
            if let Some(rest) = text.strip_prefix('(') {
                let id = parse_id(rest)?;
                return Ok(if start {
                    id.next()
                } else if id.n > 0 {
                    EntryId::new(id.position, id.n - 1)
                } else if id.position > 0 {
                    EntryId::new(id.position - 1, u32::MAX)
                } else {
                    return Err(bad_id(text));
                });
            }
            let id = parse_id(text)?;
            Ok(if !start && !text.contains('-') {
                EntryId::new(id.position, u32::MAX)
            } else {
                id
            })
        }
    }
}

fn entry_reply(e: &ChangeEntry) -> Reply {
    Reply::Array(vec![
        Reply::text(e.id.to_string()),
        Reply::Array(vec![
            Reply::text("member"),
            Reply::text(e.member_id.clone()),
            Reply::text("op"),
            Reply::text(e.op.as_str()),
            Reply::text("cause"),
            Reply::text(e.cause.as_str()),
            Reply::text("at"),
            Reply::text(e.at.to_rfc3339_micros()),
        ]),
    ])
}

fn entries_reply(entries: &[ChangeEntry]) -> Reply {
    Reply::Array(entries.iter().map(entry_reply).collect())
}

/// XREAD / XREADGROUP's reply: per stream with entries, its key and entries.
fn streams_reply(session: &Session, streams: Vec<(String, Vec<ChangeEntry>)>) -> Reply {
    let streams = streams.into_iter().filter(|(_, e)| !e.is_empty());
    if session.resp3 {
        Reply::Map(
            streams
                .map(|(k, e)| (Reply::text(k), entries_reply(&e)))
                .collect(),
        )
    } else {
        Reply::Array(
            streams
                .map(|(k, e)| Reply::Array(vec![Reply::text(k), entries_reply(&e)]))
                .collect(),
        )
    }
}

/// Runs one stream command.
pub(crate) fn execute(shared: &Shared, session: &Session, name: &str, args: &[Vec<u8>]) -> Answer {
    // The audit stream: admins only.
    if matches!(name, "XRANGE" | "XREVRANGE")
        && args.get(1).is_some_and(|k| k.as_slice() == b"audit")
    {
        return Answer::Reply(match name {
            "XRANGE" => super::audit::range(shared, session, args),
            _ => Reply::error("ERR", "the audit stream is read forwards: XRANGE audit - +"),
        });
    }
    // Scoped users read each stream cut to their scope, and keep consumer groups of their
    // own on it (`memberdb::Session`).
    if name != "CLOCK.SET"
        && let Err(reply) = needs(session, name, Command::Read)
    {
        return Answer::Reply(reply);
    }
    let result = match name {
        "XREAD" => xread(shared, session, args),
        "XREADGROUP" => needs(session, name, Command::Write)
            .map_err(Answer::Reply)
            .and_then(|()| xreadgroup(shared, session, args)),
        _ => {
            let reply = match name {
                "XRANGE" => xrange(shared, session, args, false),
                "XREVRANGE" => xrange(shared, session, args, true),
                "XLEN" => xlen(shared, session, args),
                "XINFO" => xinfo(shared, session, args),
                "XGROUP" => needs(session, name, Command::Write)
                    .and_then(|()| xgroup(shared, session, args)),
                "XACK" => {
                    needs(session, name, Command::Write).and_then(|()| xack(shared, session, args))
                }
                "XPENDING" => xpending(shared, session, args),
                "GROUP.SNAPSHOT" => snapshot(shared, session, args),
                "CLOCK.SET" => {
                    needs(session, name, Command::Admin).and_then(|()| clock_set(shared, args))
                }
                _ => Err(Reply::error(
                    "ERR",
                    format!("unknown stream command {name}"),
                )),
            };
            Ok(Answer::Reply(reply.unwrap_or_else(|e| e)))
        }
    };
    result.unwrap_or_else(|e| e)
}

/// `[COUNT n] [BLOCK ms] [NOACK] STREAMS key... id...` from `args[from..]`.
struct ReadArgs {
    count: usize,
    block: Option<Option<Instant>>,
    streams: Vec<(String, String)>,
    /// Index of the first id in `args` (rewritten when `$` is resolved).
    ids_at: usize,
}

fn read_args(args: &[Vec<u8>], from: usize, command: &str, usage: &str) -> Result<ReadArgs, Reply> {
    let mut count = memberdb::MAX_READ;
    let mut block = None;
    let mut i = from;
    loop {
        match text(args, i).map(str::to_uppercase).as_deref() {
            Some("COUNT") => {
                count = text(args, i + 1)
                    .and_then(|n| n.parse::<usize>().ok())
                    .ok_or_else(|| Reply::error("ERR", "value is not an integer or out of range"))?
                    .clamp(1, memberdb::MAX_READ);
                i += 2;
            }
            Some("BLOCK") => {
                let ms = text(args, i + 1)
                    .and_then(|n| n.parse::<u64>().ok())
                    .ok_or_else(|| {
                        Reply::error("ERR", "timeout is not an integer or out of range")
                    })?;
                block = Some((ms > 0).then(|| Instant::now() + Duration::from_millis(ms)));
                i += 2;
            }
            Some("NOACK") => i += 1,
            Some("STREAMS") => {
                i += 1;
                break;
            }
            _ => return Err(syntax(command, usage)),
        }
    }
    let rest = args.len() - i;
    if rest == 0 || !rest.is_multiple_of(2) {
        return Err(Reply::error(
            "ERR",
            "Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified.",
        ));
    }
    let n = rest / 2;
    let mut streams = Vec::with_capacity(n);
    for k in 0..n {
        let key = text(args, i + k).ok_or_else(|| syntax(command, usage))?;
        let id = text(args, i + n + k).ok_or_else(|| syntax(command, usage))?;
        streams.push((key.to_string(), id.to_string()));
    }
    Ok(ReadArgs {
        count,
        block,
        streams,
        ids_at: i + n,
    })
}

const XREAD_USAGE: &str = "[COUNT n] [BLOCK ms] STREAMS group:<name> ... <id|$> ...";

fn xread(shared: &Shared, session: &Session, args: &[Vec<u8>]) -> Result<Answer, Answer> {
    let read = read_args(args, 1, "XREAD", XREAD_USAGE)?;
    let reader = session.on(&shared.db)?;
    let mut resolved = args.to_vec();
    let mut out = Vec::new();
    for (k, (key, id)) in read.streams.iter().enumerate() {
        let group = stream_name(shared, key)?;
        let after = if id == "$" {
            let last = reader.last_change_id(group).map_err(engine_error)?;
            resolved[read.ids_at + k] = last.to_string().into_bytes();
            last
        } else {
            parse_id(id)?
        };
        let entries: Vec<ChangeEntry> = reader
            .changes(group, after, read.count)
            .map_err(engine_error)?;
        out.push((key.clone(), entries));
    }
    if out.iter().all(|(_, e)| e.is_empty())
        && let Some(until) = read.block
    {
        return Ok(Answer::Wait(Blocked {
            args: resolved,
            until,
        }));
    }
    if out.iter().all(|(_, e)| e.is_empty()) {
        return Ok(Reply::Nil.into());
    }
    Ok(streams_reply(session, out).into())
}

const XREADGROUP_USAGE: &str =
    "GROUP <group> <consumer> [COUNT n] [BLOCK ms] [NOACK] STREAMS group:<name> ... <id|>> ...";

fn xreadgroup(shared: &Shared, session: &Session, args: &[Vec<u8>]) -> Result<Answer, Answer> {
    if !text(args, 1).is_some_and(|g| g.eq_ignore_ascii_case("GROUP")) || args.len() < 4 {
        return Err(syntax("XREADGROUP", XREADGROUP_USAGE).into());
    }
    let (Some(cg), Some(consumer)) = (text(args, 2), text(args, 3)) else {
        return Err(syntax("XREADGROUP", XREADGROUP_USAGE).into());
    };
    let read = read_args(args, 4, "XREADGROUP", XREADGROUP_USAGE)?;
    let reader = session.on(&shared.db)?;
    let mut out = Vec::new();
    let mut new_only = true;
    for (key, id) in &read.streams {
        let group = stream_name(shared, key)?;
        let entries = if id == ">" {
            reader.read_group(group, cg, consumer, read.count)
        } else {
            new_only = false;
            let after = parse_id(id)?;
            reader.pending_for(group, cg, consumer, after, read.count)
        }
        .map_err(engine_error)?;
        out.push((key.clone(), entries));
    }
    if new_only && out.iter().all(|(_, e)| e.is_empty()) {
        if let Some(until) = read.block {
            return Ok(Answer::Wait(Blocked {
                args: args.to_vec(),
                until,
            }));
        }
        return Ok(Reply::Nil.into());
    }
    // Pending history keeps streams without entries in the reply, as Redis does.
    if !new_only {
        let streams = out
            .into_iter()
            .map(|(k, e)| Reply::Array(vec![Reply::text(k), entries_reply(&e)]));
        return Ok(Reply::Array(streams.collect()).into());
    }
    Ok(streams_reply(session, out).into())
}

fn xrange(shared: &Shared, session: &Session, args: &[Vec<u8>], rev: bool) -> Result<Reply, Reply> {
    let command = if rev { "XREVRANGE" } else { "XRANGE" };
    let usage = if rev {
        "group:<name> <end> <start> [COUNT n]"
    } else {
        "group:<name> <start> <end> [COUNT n]"
    };
    if args.len() != 4 && args.len() != 6 {
        return Err(syntax(command, usage));
    }
    let group = stream_name(shared, text(args, 1).unwrap_or(""))?;
    let (a, b) = (text(args, 2).unwrap_or(""), text(args, 3).unwrap_or(""));
    let (from, to) = if rev {
        (range_bound(b, true)?, range_bound(a, false)?)
    } else {
        (range_bound(a, true)?, range_bound(b, false)?)
    };
    let mut count = memberdb::MAX_READ;
    if args.len() == 6 {
        if !text(args, 4).is_some_and(|c| c.eq_ignore_ascii_case("COUNT")) {
            return Err(syntax(command, usage));
        }
        count = text(args, 5)
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| Reply::error("ERR", "value is not an integer or out of range"))?;
    }
    if count == 0 || from > to {
        return Ok(Reply::Array(Vec::new()));
    }
    let entries = session
        .on(&shared.db)?
        .change_range(group, from, to, count, rev)
        .map_err(engine_error)?;
    Ok(entries_reply(&entries))
}

fn xlen(shared: &Shared, session: &Session, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    if args.len() != 2 {
        return Err(syntax("XLEN", "group:<name>"));
    }
    let group = stream_name(shared, text(args, 1).unwrap_or(""))?;
    if session.access()?.is_scoped() {
        // The entries of the view kept (from where the scope's history starts).
        let all = EntryId::new(u64::MAX, u32::MAX);
        let entries = session
            .on(&shared.db)?
            .change_range(group, EntryId::ZERO, all, memberdb::MAX_READ, false)
            .map_err(engine_error)?;
        return Ok(Reply::Int(entries.len() as i64));
    }
    let status = shared.db.group_status(group).map_err(engine_error)?;
    Ok(Reply::Int(status.entries as i64))
}

fn xinfo(shared: &Shared, session: &Session, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    let usage = "STREAM group:<name> | GROUPS group:<name>";
    let what = text(args, 1).map(str::to_uppercase);
    if args.len() < 3 {
        return Err(syntax("XINFO", usage));
    }
    let group = stream_name(shared, text(args, 2).unwrap_or(""))?;
    let reader = session.on(&shared.db)?;
    let status = reader.group_status(group).map_err(engine_error)?;
    let first_last = |id: Option<EntryId>| -> Result<Reply, Reply> {
        let Some(id) = id else { return Ok(Reply::Nil) };
        let e = reader
            .change_range(group, id, id, 1, false)
            .map_err(engine_error)?;
        Ok(e.first().map_or(Reply::Nil, entry_reply))
    };
    match what.as_deref() {
        Some("STREAM") => Ok(Reply::Map(vec![
            (Reply::text("length"), Reply::Int(status.entries as i64)),
            (
                Reply::text("last-generated-id"),
                Reply::text(status.last_id.to_string()),
            ),
            (
                Reply::text("groups"),
                Reply::Int(status.consumer_groups.len() as i64),
            ),
            (Reply::text("first-entry"), first_last(status.first_id)?),
            (
                Reply::text("last-entry"),
                first_last((status.entries > 0).then_some(status.last_id))?,
            ),
            (Reply::text("members"), Reply::Int(status.size as i64)),
            (
                Reply::text("keep-changes-days"),
                Reply::Int(i64::from(status.keep_days)),
            ),
            (
                Reply::text("next-time-change"),
                status
                    .next_change
                    .map_or(Reply::Nil, |t| Reply::text(t.to_string())),
            ),
            (Reply::text("definition"), Reply::text(status.definition)),
        ])),
        Some("GROUPS") => Ok(Reply::Array(
            status
                .consumer_groups
                .iter()
                .map(|c| {
                    Reply::Map(vec![
                        (Reply::text("name"), Reply::text(c.name.clone())),
                        (Reply::text("consumers"), Reply::Int(c.consumers as i64)),
                        (Reply::text("pending"), Reply::Int(c.pending as i64)),
                        (
                            Reply::text("last-delivered-id"),
                            Reply::text(c.last_delivered.to_string()),
                        ),
                        (
                            Reply::text("entries-read"),
                            Reply::Int(c.entries_read as i64),
                        ),
                    ])
                })
                .collect(),
        )),
        _ => Err(syntax("XINFO", usage)),
    }
}

fn xgroup(shared: &Shared, session: &Session, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    let usage = "CREATE group:<name> <consumer-group> <id|$>";
    match text(args, 1).map(str::to_uppercase).as_deref() {
        Some("CREATE") if (5..=6).contains(&args.len()) => {
            if args.len() == 6 && !text(args, 5).is_some_and(|m| m.eq_ignore_ascii_case("MKSTREAM"))
            {
                return Err(syntax("XGROUP", usage));
            }
            let group = stream_name(shared, text(args, 2).unwrap_or(""))?;
            let cg = text(args, 3).ok_or_else(|| syntax("XGROUP", usage))?;
            let start = match text(args, 4).unwrap_or("") {
                "$" => None,
                id => Some(parse_id(id)?),
            };
            session
                .on(&shared.db)?
                .create_consumer_group(group, cg, start)
                .map_err(engine_error)?;
            Ok(Reply::ok())
        }
        _ => Err(syntax("XGROUP", usage)),
    }
}

fn xack(shared: &Shared, session: &Session, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    if args.len() < 4 {
        return Err(syntax(
            "XACK",
            "group:<name> <consumer-group> <id> [id ...]",
        ));
    }
    let group = stream_name(shared, text(args, 1).unwrap_or(""))?;
    let cg = text(args, 2).unwrap_or("");
    let ids = (3..args.len())
        .map(|i| parse_id(text(args, i).unwrap_or("")))
        .collect::<Result<Vec<_>, _>>()?;
    let n = session
        .on(&shared.db)?
        .acknowledge(group, cg, &ids)
        .map_err(engine_error)?;
    Ok(Reply::Int(n as i64))
}

fn xpending(shared: &Shared, session: &Session, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    let usage = "group:<name> <consumer-group> [[IDLE ms] <start> <end> <count> [consumer]]";
    if args.len() < 3 {
        return Err(syntax("XPENDING", usage));
    }
    let group = stream_name(shared, text(args, 1).unwrap_or(""))?;
    let cg = text(args, 2).unwrap_or("");
    let all = (EntryId::ZERO, EntryId::new(u64::MAX, u32::MAX));
    if args.len() == 3 {
        let pending = session
            .on(&shared.db)?
            .pending(group, cg, all, usize::MAX, None)
            .map_err(engine_error)?;
        if pending.is_empty() {
            return Ok(Reply::Array(vec![
                Reply::Int(0),
                Reply::Nil,
                Reply::Nil,
                Reply::Nil,
            ]));
        }
        let mut per: std::collections::BTreeMap<&str, i64> = Default::default();
        for p in &pending {
            *per.entry(p.consumer.as_str()).or_default() += 1;
        }
        return Ok(Reply::Array(vec![
            Reply::Int(pending.len() as i64),
            Reply::text(pending[0].id.to_string()),
            Reply::text(pending[pending.len() - 1].id.to_string()),
            Reply::Array(
                per.into_iter()
                    .map(|(c, n)| Reply::Array(vec![Reply::text(c), Reply::text(n.to_string())]))
                    .collect(),
            ),
        ]));
    }
    let mut i = 3;
    let mut min_idle = 0i64;
    if text(args, 3).is_some_and(|t| t.eq_ignore_ascii_case("IDLE")) {
        min_idle = text(args, 4)
            .and_then(|n| n.parse::<i64>().ok())
            .ok_or_else(|| syntax("XPENDING", usage))?;
        i = 5;
    }
    if args.len() < i + 3 || args.len() > i + 4 {
        return Err(syntax("XPENDING", usage));
    }
    let from = range_bound(text(args, i).unwrap_or(""), true)?;
    let to = range_bound(text(args, i + 1).unwrap_or(""), false)?;
    let count = text(args, i + 2)
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| Reply::error("ERR", "value is not an integer or out of range"))?;
    let consumer = text(args, i + 3);
    let pending = session
        .on(&shared.db)?
        .pending(
            group,
            cg,
            (from, to),
            count.min(memberdb::MAX_READ),
            consumer,
        )
        .map_err(engine_error)?;
    Ok(Reply::Array(
        pending
            .into_iter()
            .filter(|p| p.idle_micros / 1000 >= min_idle)
            .map(|p| {
                Reply::Array(vec![
                    Reply::text(p.id.to_string()),
                    Reply::text(p.consumer),
                    Reply::Int(p.idle_micros / 1000),
                    Reply::Int(i64::from(p.deliveries)),
                ])
            })
            .collect(),
    ))
}

fn snapshot(shared: &Shared, session: &Session, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    if args.len() != 2 {
        return Err(syntax("GROUP.SNAPSHOT", "<group>"));
    }
    let name = text(args, 1).unwrap_or("");
    let name = name.strip_prefix("group:").unwrap_or(name);
    let (id, members) = session
        .on(&shared.db)?
        .group_snapshot(name)
        .map_err(engine_error)?;
    Ok(Reply::Array(vec![
        Reply::text(id.to_string()),
        Reply::Array(members.into_iter().map(Reply::text).collect()),
    ]))
}

fn clock_set(shared: &Shared, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    if args.len() != 2 {
        return Err(syntax("CLOCK.SET", "<timestamp>"));
    }
    let text = text(args, 1).unwrap_or("");
    let now = Timestamp::parse(text).ok_or_else(|| {
        Reply::error(
            "ERR",
            format!("'{text}' is not a timestamp; use e.g. 2026-12-01T08:00:00Z"),
        )
    })?;
    shared.db.set_clock(now).map_err(engine_error)?;
    Ok(Reply::ok())
}
