//! Identities on the wire (DESIGN section 11): `ID.LINK`, `ID.LOOKUP`, `ID.UNLINK`,
//! `MEMBER.MERGE`, `MEMBER.UNMERGE`, `MEMBER.HISTORY`. They run on the query threads: a
//! link, merge or unmerge is durable before its reply.

use memberdb::{IdentityReport, Timestamp};

use super::Shared;
use super::commands::Session;
use super::commands::{needs, needs_unscoped};
use super::resp::Reply;
use memberdb::Command;

/// The commands of this module.
pub(crate) const COMMANDS: &[&str] = &[
    "ID.LINK",
    "ID.LOOKUP",
    "ID.UNLINK",
    "MEMBER.MERGE",
    "MEMBER.UNMERGE",
    "MEMBER.HISTORY",
];

/// `COMMAND` table rows: name, arity, whether it writes.
pub(crate) const TABLE: &[(&str, i64, bool)] = &[
    ("ID.LINK", -4, true),
    ("ID.LOOKUP", 3, false),
    ("ID.UNLINK", 4, true),
    ("MEMBER.MERGE", 3, true),
    ("MEMBER.UNMERGE", 3, true),
    ("MEMBER.HISTORY", 2, false),
];

fn text(args: &[Vec<u8>], i: usize) -> Result<&str, Reply> {
    let a = args
        .get(i)
        .ok_or_else(|| Reply::error("ERR", "missing argument"))?;
    std::str::from_utf8(a).map_err(|_| Reply::error("ERR", "arguments must be UTF-8 text"))
}

fn usage(command: &str) -> Reply {
    let form = match command {
        "ID.LINK" => "ID.LINK <member_id|*> <type> <value> [<type> <value> ...]",
        "ID.LOOKUP" => "ID.LOOKUP <type> <value>",
        "ID.UNLINK" => "ID.UNLINK <member_id> <type> <value>",
        "MEMBER.MERGE" => "MEMBER.MERGE <member_id> <member_id>",
        "MEMBER.UNMERGE" => "MEMBER.UNMERGE <member_id> <observation>",
        _ => "MEMBER.HISTORY <member_id>",
    };
    Reply::error(
        "ERR",
        format!("wrong number of arguments for '{command}'; use {form}"),
    )
}

fn engine_error(e: memberdb::Error) -> Reply {
    Reply::error("ERR", e)
}

fn texts(items: Vec<String>) -> Reply {
    Reply::Array(items.into_iter().map(Reply::text).collect())
}

/// What a link, merge or unmerge did, as a map.
fn report_reply(r: IdentityReport) -> Reply {
    Reply::Map(vec![
        (
            Reply::text("member_id"),
            r.member_id.map_or(Reply::Nil, Reply::text),
        ),
        (
            Reply::text("observation"),
            r.observation
                .map_or(Reply::Nil, |o| Reply::Int(i64::from(o))),
        ),
        (Reply::text("created"), Reply::Int(i64::from(r.created))),
        (Reply::text("merged"), texts(r.merged)),
        (Reply::text("dropped"), texts(r.dropped)),
        (Reply::text("ignored"), texts(r.ignored)),
    ])
}

/// Runs one identity command.
pub(crate) fn execute(shared: &Shared, session: &Session, name: &str, args: &[Vec<u8>]) -> Reply {
    run(shared, session, name, args).unwrap_or_else(|e| e)
}

fn run(shared: &Shared, session: &Session, name: &str, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    let db = &shared.db;
    let writes = TABLE.iter().any(|(n, _, w)| *n == name && *w);
    needs(
        session,
        name,
        if writes {
            Command::Write
        } else {
            Command::Read
        },
    )?;
    // Identity writes change profiles across scopes (a merge can pull in a member of
    // another store): not for scoped or masked users. Reads go through the user's session.
    if writes {
        needs_unscoped(session, name, true)?;
    }
    let reader = session.on(db)?;
    match name {
        "ID.LINK" => {
            if args.len() < 4 || !args.len().is_multiple_of(2) {
                return Err(usage(name));
            }
            let member = text(args, 1)?;
            let member = (member != "*").then_some(member);
            let mut ids = Vec::new();
            for i in (2..args.len()).step_by(2) {
                ids.push((text(args, i)?, text(args, i + 1)?));
            }
            db.link(member, &ids)
                .map(report_reply)
                .map_err(engine_error)
        }
        "ID.LOOKUP" => {
            if args.len() != 3 {
                return Err(usage(name));
            }
            match reader.lookup_identifier(text(args, 1)?, text(args, 2)?) {
                Ok(Some(id)) => Ok(Reply::text(id)),
                Ok(None) => Ok(Reply::Nil),
                Err(e) => Err(super::commands::error_reply(&e)),
            }
        }
        "ID.UNLINK" => {
            if args.len() != 4 {
                return Err(usage(name));
            }
            db.unlink(text(args, 1)?, text(args, 2)?, text(args, 3)?)
                .map(|_| Reply::ok())
                .map_err(engine_error)
        }
        "MEMBER.MERGE" => {
            if args.len() != 3 {
                return Err(usage(name));
            }
            db.merge_members(text(args, 1)?, text(args, 2)?)
                .map(report_reply)
                .map_err(engine_error)
        }
        "MEMBER.UNMERGE" => {
            if args.len() != 3 {
                return Err(usage(name));
            }
            let obs = text(args, 2)?;
            let obs: u32 = obs.parse().map_err(|_| {
                Reply::error(
                    "ERR",
                    format!("'{obs}' is not an observation id (MEMBER.HISTORY lists them)"),
                )
            })?;
            db.unmerge(text(args, 1)?, obs)
                .map(report_reply)
                .map_err(engine_error)
        }
        "MEMBER.HISTORY" => {
            if args.len() != 2 {
                return Err(usage(name));
            }
            let lines = reader
                .member_history(text(args, 1)?)
                .map_err(|e| super::commands::error_reply(&e))?;
            Ok(Reply::Array(
                lines
                    .into_iter()
                    .map(|h| {
                        Reply::Map(vec![
                            (
                                Reply::text("observation"),
                                Reply::Int(i64::from(h.observation)),
                            ),
                            (Reply::text("kind"), Reply::text(h.kind())),
                            (
                                Reply::text("at"),
                                Reply::text(Timestamp(h.at).to_rfc3339_micros()),
                            ),
                            (Reply::text("items"), texts(h.items)),
                            (Reply::text("outcome"), texts(h.outcome)),
                        ])
                    })
                    .collect(),
            ))
        }
        _ => Err(Reply::error(
            "ERR",
            format!("unknown identity command {name}"),
        )),
    }
}
