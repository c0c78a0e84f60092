//! The commands of DESIGN section 5, run for one session, each answered with a [`Reply`].

use std::time::{Duration, Instant};

use memberdb::query::Output;
use memberdb::{DataType, Timestamp, Value, Write};
use memberdb_query::ast::StatementKind;

use std::sync::Arc;

use memberdb::{Access, Command};

use super::Shared;
use super::resp::Reply;

/// One connection's state.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub(crate) id: u64,
    /// The client's address (failed AUTH is slowed down per address).
    pub(crate) client: std::net::IpAddr,
    /// Replies in RESP3 (after `HELLO 3`).
    pub(crate) resp3: bool,
    /// What the authenticated user may do; `None` until AUTH when users are configured.
    pub(crate) access: Option<Arc<Access>>,
    pub(crate) user: String,
    pub(crate) name: String,
    /// QUIT was received: reply, then close.
    pub(crate) quit: bool,
}

impl Session {
    pub(crate) fn new(id: u64, client: std::net::IpAddr, shared: &Shared) -> Session {
        let open = shared.config.users.is_empty();
        Session {
            id,
            client,
            resp3: false,
            // Without configured users the server is open (it refuses to listen beyond
            // loopback then), and every client is an admin.
            access: open.then(|| shared.open_access.clone()),
            user: "default".to_string(),
            name: String::new(),
            quit: false,
        }
    }

    pub(crate) fn authenticated(&self) -> bool {
        self.access.is_some()
    }

    /// The user's access (every command but AUTH, HELLO and QUIT runs authenticated).
    pub(crate) fn access(&self) -> Result<&Arc<Access>, Reply> {
        self.access
            .as_ref()
            .ok_or_else(|| Reply::error("NOAUTH", "Authentication required."))
    }

    /// The database as this session's user.
    pub(crate) fn on<'db>(
        &self,
        db: &'db memberdb::Database,
    ) -> Result<memberdb::Session<'db>, Reply> {
        Ok(db.session(self.access()?.clone()))
    }
}

/// `Ok` if the session's user may run `what`, a command of `class`; else `NOPERM`.
pub(crate) fn needs(session: &Session, what: &str, class: Command) -> Result<(), Reply> {
    session
        .access()?
        .require(class, what)
        .map_err(|e| error_reply(&e))
}

/// `Ok` unless the session's user sees only some members or some fields masked: the
/// commands that do not yet know scopes and masks (identities, group streams) refuse them.
pub(crate) fn needs_unscoped(session: &Session, what: &str, masks_too: bool) -> Result<(), Reply> {
    let access = session.access()?;
    if access.is_scoped() || (masks_too && access.masks_anything()) {
        return Err(Reply::error(
            "NOPERM",
            format!(
                "user '{}' (roles {}) may not run {what}: it is open only to roles without a \
                 scope{}",
                access.user(),
                access.roles().join(", "),
                if masks_too { " or masks" } else { "" }
            ),
        ));
    }
    Ok(())
}

/// The reply to an engine error: `NOPERM` for what the user's roles do not allow.
pub(crate) fn error_reply(error: &memberdb::Error) -> Reply {
    match error {
        memberdb::Error::NoPermission(message) => Reply::error("NOPERM", message.clone()),
        other => Reply::error("ERR", other.to_string()),
    }
}

fn arg(args: &[Vec<u8>], i: usize) -> Option<&str> {
    args.get(i).and_then(|a| std::str::from_utf8(a).ok())
}

fn wrong_args(command: &str) -> Reply {
    Reply::error(
        "ERR",
        format!(
            "wrong number of arguments for '{}' command",
            command.to_lowercase()
        ),
    )
}

/// The upper-case command name, as counted in INFO.
pub(crate) fn command_name(args: &[Vec<u8>]) -> String {
    let name = String::from_utf8_lossy(&args[0]).to_uppercase();
    if KNOWN.contains(&name.as_str())
        || super::streams::COMMANDS.contains(&name.as_str())
        || super::identities::COMMANDS.contains(&name.as_str())
    {
        name
    } else {
        "UNKNOWN".to_string()
    }
}

const KNOWN: &[&str] = &[
    "PING",
    "HELLO",
    "AUTH",
    "QUIT",
    "INFO",
    "COMMAND",
    "CLIENT",
    "SELECT",
    "QUERY",
    "MEMBER.SET",
    "MEMBER.GET",
    "TAG.ADD",
    "TAG.DEL",
    "EVENT.ADD",
    "AUDIT.VERIFY",
    super::erase::NAME,
];

/// Runs one request.
pub(crate) fn execute(shared: &Shared, session: &mut Session, args: &[Vec<u8>]) -> Reply {
    let name = command_name(args);
    if !session.authenticated() && !matches!(name.as_str(), "AUTH" | "HELLO" | "QUIT") {
        return Reply::error("NOAUTH", "Authentication required.");
    }
    match name.as_str() {
        "PING" => match args.len() {
            1 => Reply::Simple("PONG".to_string()),
            2 => Reply::Bulk(args[1].clone()),
            _ => wrong_args("PING"),
        },
        "QUIT" => {
            session.quit = true;
            Reply::ok()
        }
        "HELLO" => hello(shared, session, args),
        "AUTH" => match args.len() {
            2 => auth(shared, session, "default", arg(args, 1).unwrap_or("")),
            3 => auth(
                shared,
                session,
                arg(args, 1).unwrap_or(""),
                arg(args, 2).unwrap_or(""),
            ),
            _ => wrong_args("AUTH"),
        },
        "SELECT" => match arg(args, 1) {
            Some("0") if args.len() == 2 => Reply::ok(),
            Some(_) if args.len() == 2 => Reply::error("ERR", "DB index is out of range"),
            _ => wrong_args("SELECT"),
        },
        "CLIENT" => client(session, args),
        "COMMAND" => command_docs(args),
        "INFO" => {
            let scoped = session.access.as_ref().is_some_and(|a| a.is_scoped());
            Reply::text(super::info::render(shared, arg(args, 1), scoped))
        }
        "QUERY" => match (args.len(), arg(args, 1)) {
            (2, Some(text)) => query(shared, session, text),
            (2, None) => Reply::error("ERR", "the statement is not valid UTF-8"),
            _ => wrong_args("QUERY"),
        },
        "AUDIT.VERIFY" => super::audit::verify(shared, session),
        super::erase::NAME => super::erase::execute(shared, session, args),
        "MEMBER.GET" => match (args.len(), arg(args, 1)) {
            (2, Some(id)) => member_get(shared, session, id).unwrap_or_else(|e| e),
            _ => wrong_args("MEMBER.GET"),
        },
        name if super::streams::COMMANDS.contains(&name) => {
            match super::streams::execute(shared, session, name, args) {
                super::streams::Answer::Reply(reply) => reply,
                // Run in place (not by the event loop): no waiting here.
                super::streams::Answer::Wait(_) => Reply::Nil,
            }
        }
        name if super::identities::COMMANDS.contains(&name) => {
            super::identities::execute(shared, session, name, args)
        }
        "MEMBER.SET" | "TAG.ADD" | "TAG.DEL" | "EVENT.ADD" => {
            let allowed = needs(session, &name, Command::Write).and_then(|()| {
                match (session.access()?.is_scoped(), arg(args, 1)) {
                    (true, Some(member)) => session
                        .on(&shared.db)?
                        .may_write(member, &name)
                        .map_err(|e| error_reply(&e)),
                    _ => Ok(()),
                }
            });
            match allowed {
                Ok(()) => write(shared, &name, args),
                Err(reply) => reply,
            }
        }
        _ => Reply::error(
            "ERR",
            format!(
                "unknown command '{}'; memberdb speaks {}",
                String::from_utf8_lossy(&args[0]).escape_default(),
                [KNOWN, super::streams::COMMANDS, super::identities::COMMANDS]
                    .concat()
                    .join(", ")
            ),
        ),
    }
}

fn auth(shared: &Shared, session: &mut Session, user: &str, password: &str) -> Reply {
    if shared.config.users.is_empty() {
        return Reply::error(
            "ERR",
            "AUTH called without any users configured (the server is open on loopback); \
             add [[users]] to the config file to require passwords",
        );
    }
    let verified = shared
        .auth
        .verify(&shared.config.users, user, password, session.client);
    match shared.accesses.get(user) {
        Some(access) if verified => {
            session.access = Some(access.clone());
            session.user = user.to_string();
            Reply::ok()
        }
        _ => {
            // logged once per burst by the gate
            Reply::error(
                "WRONGPASS",
                "invalid username-password pair or user is disabled.",
            )
        }
    }
}

fn hello(shared: &Shared, session: &mut Session, args: &[Vec<u8>]) -> Reply {
    let mut i = 1;
    let mut resp3 = session.resp3;
    if let Some(version) = arg(args, 1) {
        match version {
            "2" => resp3 = false,
            "3" => resp3 = true,
            _ => {
                return Reply::error("NOPROTO", "unsupported protocol version; use 2 or 3");
            }
        }
        i = 2;
    }
    while i < args.len() {
        match arg(args, i).map(str::to_uppercase).as_deref() {
            Some("AUTH") if i + 2 < args.len() => {
                let reply = auth(
                    shared,
                    session,
                    arg(args, i + 1).unwrap_or(""),
                    arg(args, i + 2).unwrap_or(""),
                );
                if reply.is_error() {
                    return reply;
                }
                i += 3;
            }
            Some("SETNAME") if i + 1 < args.len() => {
                session.name = arg(args, i + 1).unwrap_or("").to_string();
                i += 2;
            }
            _ => return Reply::error("ERR", "syntax error in HELLO"),
        }
    }
    if !session.authenticated() {
        return Reply::error(
            "NOAUTH",
            "HELLO must be called with the client already authenticated, otherwise the \
             HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client \
             and select the RESP protocol version at the same time",
        );
    }
    session.resp3 = resp3;
    Reply::Map(vec![
        (Reply::text("server"), Reply::text("memberdb")),
        (
            Reply::text("version"),
            Reply::text(env!("CARGO_PKG_VERSION")),
        ),
        (Reply::text("proto"), Reply::Int(if resp3 { 3 } else { 2 })),
        (Reply::text("id"), Reply::Int(session.id as i64)),
        (Reply::text("mode"), Reply::text("standalone")),
        (Reply::text("role"), Reply::text("master")),
        (Reply::text("modules"), Reply::Array(Vec::new())),
    ])
}

fn client(session: &mut Session, args: &[Vec<u8>]) -> Reply {
    match arg(args, 1).map(str::to_uppercase).as_deref() {
        Some("SETNAME") if args.len() == 3 => {
            session.name = arg(args, 2).unwrap_or("").to_string();
            Reply::ok()
        }
        Some("GETNAME") => {
            if session.name.is_empty() {
                Reply::Nil
            } else {
                Reply::text(session.name.clone())
            }
        }
        Some("ID") => Reply::Int(session.id as i64),
        // Client libraries announce themselves; nothing to keep.
        Some("SETINFO") => Reply::ok(),
        _ => Reply::error("ERR", "CLIENT supports SETNAME, GETNAME, ID and SETINFO"),
    }
}

/// `COMMAND` and its subcommands: enough for redis-cli's start-up and hints.
fn command_docs(args: &[Vec<u8>]) -> Reply {
    let entry = |name: &str, arity: i64, write: bool| {
        Reply::Array(vec![
            Reply::text(name.to_lowercase()),
            Reply::Int(arity),
            Reply::Array(vec![Reply::Simple(
                if write { "write" } else { "readonly" }.to_string(),
            )]),
            Reply::Int(0),
            Reply::Int(0),
            Reply::Int(0),
        ])
    };
    let table = [
        ("PING", -1, false),
        ("HELLO", -1, false),
        ("AUTH", -2, false),
        ("QUIT", 1, false),
        ("INFO", -1, false),
        ("COMMAND", -1, false),
        ("CLIENT", -2, false),
        ("SELECT", 2, false),
        ("QUERY", 2, true),
        ("MEMBER.SET", -4, true),
        ("MEMBER.GET", 2, false),
        (super::erase::NAME, -2, true),
        ("TAG.ADD", -3, true),
        ("TAG.DEL", -3, true),
        ("EVENT.ADD", -4, true),
        ("AUDIT.VERIFY", 1, false),
        ("XREAD", -4, false),
        ("XREADGROUP", -7, true),
        ("XRANGE", -4, false),
        ("XREVRANGE", -4, false),
        ("XLEN", 2, false),
        ("XINFO", -2, false),
        ("XGROUP", -2, true),
        ("XACK", -4, true),
        ("XPENDING", -3, false),
        ("GROUP.SNAPSHOT", 2, false),
        ("CLOCK.SET", 2, true),
    ];
    let table: Vec<(&str, i64, bool)> = table
        .iter()
        .chain(super::identities::TABLE)
        .copied()
        .collect();
    match arg(args, 1).map(str::to_uppercase).as_deref() {
        None => Reply::Array(table.iter().map(|(n, a, w)| entry(n, *a, *w)).collect()),
        Some("COUNT") => Reply::Int(table.len() as i64),
        Some("INFO") => Reply::Array(
            args[2..]
                .iter()
                .map(|wanted| {
                    let wanted = String::from_utf8_lossy(wanted).to_uppercase();
                    table
                        .iter()
                        .find(|(n, _, _)| *n == wanted)
                        .map_or(Reply::Nil, |(n, a, w)| entry(n, *a, *w))
                })
                .collect(),
        ),
        // DOCS and the rest: no documentation to offer, which clients accept.
        _ => Reply::Array(Vec::new()),
    }
}

/// A statement's error in the CLI's words, on one line, with its position.
fn statement_error(error: &memberdb::Error, text: &str) -> Reply {
    let message = match error {
        memberdb::Error::At { span, .. } => {
            let start = span.0.min(text.len());
            let line = text[..start].matches('\n').count() + 1;
            let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
            let column = text[line_start..start].chars().count() + 1;
            format!("{error} (at line {line}, column {column})")
        }
        other => other.to_string(),
    };
    Reply::error("ERR", message)
}

fn query(shared: &Shared, session: &Session, text: &str) -> Reply {
    let limits = &shared.config.limits;
    if text.len() > limits.statement_bytes {
        return Reply::error(
            "ERR",
            format!(
                "the statement has {} bytes, more than the limit of {} (limits.statement_bytes)",
                text.len(),
                limits.statement_bytes
            ),
        );
    }
    // Nesting (each NOT and each parenthesis a level) is measured on the parse tree before
    // anything recurses on it.
    let statement = match shared.parsed.parse(text, limits.nesting) {
        Ok(s) => s,
        Err(e) if e.is_too_deep() => {
            return Reply::error("ERR", format!("{e} (limits.nesting)"));
        }
        Err(e) => return Reply::error("ERR", e),
    };
    match &statement.kind {
        StatementKind::Find { limit, .. } if limit.unwrap_or(0) > limits.find_rows => {
            return Reply::error(
                "ERR",
                format!(
                    "LIMIT {} is more than the server returns at once ({}, limits.find_rows); \
                     page with LIMIT and OFFSET",
                    limit.unwrap_or(0),
                    limits.find_rows
                ),
            );
        }
        _ => {}
    }
    let mut statement = statement;
    let mut share = None;
    if statement.overlap.is_some() {
        let statement = std::sync::Arc::make_mut(&mut statement);
        if let Some(pool) = &mut statement.overlap {
            match shared.share.admit(&session.user, pool) {
                Ok(options) => share = Some(options),
                Err(reply) => return reply,
            }
        }
    }
    if matches!(statement.kind, StatementKind::Export { .. }) {
        // the kept statement is shared: the export's confined path goes into a copy
        let statement = std::sync::Arc::make_mut(&mut statement);
        if let StatementKind::Export { path, .. } = &mut statement.kind
            && let Err(message) = confine_export(shared.config.export_dir.as_deref(), path)
        {
            return Reply::error("ERR", message);
        }
    }
    // The engine holds reads to the deadline; DEFINE / DROP GROUP run to the end.
    // An EXPORT writes every member of its segment: it is not held to the deadline either.
    let exporting = matches!(statement.kind, StatementKind::Export { .. });
    let options = memberdb::query::RunOptions {
        now: None,
        deadline: (limits.statement_ms > 0 && !exporting)
            .then(|| Instant::now() + Duration::from_millis(limits.statement_ms)),
        max_breakdown_lines: Some(limits.breakdown_rows),
        progress: None,
        cache: shared
            .cache
            .enabled()
            .then(|| memberdb::query::Cache(shared.cache.clone())),
        threads: None,
        share,
    };
    let user = match session.on(&shared.db) {
        Ok(user) => user,
        Err(reply) => return reply,
    };
    match user.run_with(&statement, &options) {
        Ok(output) => match super::audit::statement(shared, session, text, &output) {
            Ok(()) => output_reply(output),
            Err(reply) => reply,
        },
        Err(memberdb::Error::DeadlineExceeded) => Reply::error(
            "ERR",
            format!(
                "the statement ran longer than {} ms (limits.statement_ms) and was stopped; \
                 narrow the segment, or raise the limit",
                limits.statement_ms
            ),
        ),
        Err(memberdb::Error::LimitExceeded(message))
            if matches!(statement.kind, StatementKind::Breakdown { .. }) =>
        {
            Reply::error(
                "ERR",
                format!("limit reached: {message} (limits.breakdown_rows)"),
            )
        }
        Err(e @ memberdb::Error::NoPermission(_)) => error_reply(&e),
        Err(e) => statement_error(&e, text),
    }
}

/// Points an EXPORT's file into `export_dir`: the statement may name a file, never a path.
fn confine_export(
    export_dir: Option<&std::path::Path>,
    path: &mut memberdb_query::ast::Literal,
) -> Result<(), String> {
    let Some(dir) = export_dir else {
        return Err(
            "EXPORT over the server writes into the config's export_dir, which is not set; \
             set it, or run EXPORT with `memberdb query` on the server's machine"
                .to_string(),
        );
    };
    name_in_dir(
        dir,
        path,
        "EXPORT",
        "it writes into the config's export_dir",
    )
}

/// Points the file a statement names (`path`) into `dir`: over the wire a statement may
/// name a file, never a path. `what` is the statement's word, `where_` says where files go.
pub(crate) fn name_in_dir(
    dir: &std::path::Path,
    path: &mut memberdb_query::ast::Literal,
    what: &str,
    where_: &str,
) -> Result<(), String> {
    use memberdb_query::ast::LiteralKind;
    let LiteralKind::Str(name) = &path.kind else {
        return Err(format!("{what} needs a file name"));
    };
    let plain = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0']);
    if !plain {
        return Err(format!(
            "{what} over the server takes a file name, not a path ('{name}'): {where_} ({})",
            dir.display()
        ));
    }
    path.kind = LiteralKind::Str(dir.join(name).to_string_lossy().into_owned());
    Ok(())
}

fn value_reply(value: Option<Value>) -> Reply {
    match value {
        None => Reply::Nil,
        Some(Value::Int(i)) => Reply::Int(i),
        Some(Value::Float(x)) => Reply::Double(x),
        Some(Value::Bool(b)) => Reply::Bool(b),
        Some(Value::Str(s)) => Reply::text(s),
        Some(other) => Reply::text(other.to_string()),
    }
}

pub(crate) fn output_reply(output: Output) -> Reply {
    match output {
        Output::Count(n) => Reply::Int(i64::try_from(n).unwrap_or(i64::MAX)),
        // EXPLAIN SQL: the SQL as one bulk string
        Output::Sql(sql) => Reply::text(sql),
        Output::Find(found) => Reply::Array(
            found
                .rows
                .into_iter()
                .map(|row| {
                    let mut fields = vec![(Reply::text("member_id"), Reply::text(row.member_id))];
                    for (column, value) in found.columns[1..].iter().zip(row.values) {
                        fields.push((Reply::text(column.clone()), value_reply(value)));
                    }
                    Reply::Map(fields)
                })
                .collect(),
        ),
        // A line is [value, count]; by several columns [v1, v2, ..., count].
        Output::Breakdown { lines, .. } => Reply::Array(
            lines
                .into_iter()
                .map(|l| {
                    let text = |v: Option<memberdb::Value>| {
                        v.map_or(Reply::Nil, |v| Reply::text(v.to_string()))
                    };
                    let mut line = vec![text(l.value)];
                    line.extend(l.more.into_iter().map(text));
                    line.push(Reply::Int(i64::try_from(l.count).unwrap_or(i64::MAX)));
                    Reply::Array(line)
                })
                .collect(),
        ),
        // Clean-room counts: a count, or the word `suppressed` (never the number).
        Output::Overlap {
            columns,
            total,
            lines,
        } => {
            let count = |c: memberdb::share::SharedCount| match c {
                memberdb::share::SharedCount::Count(n) => {
                    Reply::Int(i64::try_from(n).unwrap_or(i64::MAX))
                }
                memberdb::share::SharedCount::Suppressed => Reply::text("suppressed"),
            };
            if columns.is_empty() {
                return count(total);
            }
            Reply::Array(
                lines
                    .into_iter()
                    .map(|(values, n)| {
                        let mut line: Vec<Reply> = values
                            .into_iter()
                            .map(|v| v.map_or(Reply::Nil, |v| Reply::text(v.to_string())))
                            .collect();
                        line.push(count(n));
                        Reply::Array(line)
                    })
                    .collect(),
            )
        }
        Output::GroupDefined { members, .. } | Output::TraitDefined { members, .. } => {
            Reply::Int(i64::try_from(members).unwrap_or(0))
        }
        Output::GroupDropped(_)
        | Output::TraitDropped(_)
        | Output::AttributeAltered { .. }
        | Output::AttributeDropped(_)
        | Output::IdentifierDefined(_)
        | Output::MergeRuleSet { .. } => Reply::ok(),
        Output::Exported { rows, .. } => Reply::Int(i64::try_from(rows).unwrap_or(i64::MAX)),
        // A row per step: {bucket (with BY), step, event, members, share_of_first,
        // share_of_previous, median_seconds}.
        Output::Funnel(report) => Reply::Array(
            report
                .rows
                .into_iter()
                .map(|r| {
                    let mut fields = Vec::new();
                    if report.by.is_some() {
                        fields.push((Reply::text("bucket"), value_reply(r.bucket)));
                    }
                    fields.extend([
                        (Reply::text("step"), Reply::Int(r.step as i64)),
                        (Reply::text("event"), Reply::text(r.event)),
                        (
                            Reply::text("members"),
                            Reply::Int(i64::try_from(r.members).unwrap_or(i64::MAX)),
                        ),
                        (
                            Reply::text("share_of_first"),
                            Reply::Double(r.share_of_first),
                        ),
                        (
                            Reply::text("share_of_previous"),
                            Reply::Double(r.share_of_previous),
                        ),
                        (
                            Reply::text("median_seconds"),
                            r.median_seconds.map_or(Reply::Nil, Reply::Double),
                        ),
                    ]);
                    Reply::Map(fields)
                })
                .collect(),
        ),
        Output::Table { columns, rows } => Reply::Array(
            rows.into_iter()
                .map(|row| {
                    Reply::Map(
                        columns
                            .iter()
                            .zip(row)
                            .map(|(c, v)| (Reply::text(c.clone()), Reply::text(v)))
                            .collect(),
                    )
                })
                .collect(),
        ),
    }
}

fn member_get(shared: &Shared, session: &Session, id: &str) -> Result<Reply, Reply> {
    needs(session, "MEMBER.GET", Command::Read)?;
    Ok(match session.on(&shared.db)?.member(id) {
        None => Reply::Nil,
        Some(m) => {
            super::audit::member_get(shared, session, id, &m)?;
            let mut fields = vec![(Reply::text("member_id"), Reply::text(m.member_id))];
            if !m.identifiers.is_empty() {
                let mut by_type: Vec<(String, Vec<Reply>)> = Vec::new();
                for (t, v) in m.identifiers {
                    match by_type.iter_mut().find(|(n, _)| *n == t) {
                        Some((_, values)) => values.push(Reply::text(v)),
                        None => by_type.push((t, vec![Reply::text(v)])),
                    }
                }
                fields.push((
                    Reply::text("identifiers"),
                    Reply::Map(
                        by_type
                            .into_iter()
                            .map(|(t, v)| (Reply::text(t), Reply::Array(v)))
                            .collect(),
                    ),
                ));
            }
            if !m.aliases.is_empty() {
                fields.push((
                    Reply::text("aliases"),
                    Reply::Array(m.aliases.into_iter().map(Reply::text).collect()),
                ));
            }
            // traits after the attributes: their names are distinct
            for (name, value) in m.attributes.into_iter().chain(m.traits) {
                fields.push((Reply::text(name), value_reply(Some(value))));
            }
            fields.push((
                Reply::text("tags"),
                Reply::Array(m.tags.into_iter().map(Reply::text).collect()),
            ));
            Reply::Map(fields)
        }
    })
}

/// A value from the wire: the known type's reading of the text, or for a new name an
/// integer, float or bool when the text is one, else text. An empty value is NULL.
fn wire_value(text: &str, known: Option<DataType>) -> Option<Value> {
    if text.is_empty() {
        return None;
    }
    if known.is_some() {
        // the engine reads the text as the attribute's type, or refuses it
        return Some(Value::Str(text.to_string()));
    }
    if let Ok(i) = text.parse::<i64>() {
        return Some(Value::Int(i));
    }
    if let Ok(x) = text.parse::<f64>()
        && x.is_finite()
        && text.contains(['.', 'e', 'E'])
    {
        return Some(Value::Float(x));
    }
    match text {
        "true" => Some(Value::Bool(true)),
        "false" => Some(Value::Bool(false)),
        _ => Some(Value::Str(text.to_string())),
    }
}

/// `field value` pairs from `args[from..]`, read with the types of `known`.
fn pairs(
    args: &[Vec<u8>],
    from: usize,
    known: &dyn Fn(&str) -> Option<DataType>,
) -> Result<Vec<(String, Option<Value>)>, String> {
    let rest = &args[from..];
    if !rest.len().is_multiple_of(2) {
        return Err("fields and values come in pairs".to_string());
    }
    rest.chunks(2)
        .map(|pair| {
            let field = std::str::from_utf8(&pair[0]).map_err(|_| "a field name is not UTF-8")?;
            let value = std::str::from_utf8(&pair[1]).map_err(|_| "a value is not UTF-8")?;
            Ok((field.to_string(), wire_value(value, known(field))))
        })
        .collect()
}

fn utf8(args: &[Vec<u8>], i: usize, what: &str) -> Result<String, String> {
    arg(args, i)
        .map(str::to_string)
        .ok_or_else(|| format!("{what} is not valid UTF-8"))
}

/// The write a MEMBER.SET, TAG.ADD, TAG.DEL or EVENT.ADD request asks for, or the reply
/// refusing it (arguments, values). The role is checked by the caller.
pub(crate) fn write_request(shared: &Shared, name: &str, args: &[Vec<u8>]) -> Result<Write, Reply> {
    let min = match name {
        "MEMBER.SET" => 4,
        "EVENT.ADD" => 4,
        _ => 3,
    };
    if args.len() < min {
        return Err(wrong_args(name));
    }
    parse_write(shared, name, args).map_err(|message| Reply::error("ERR", message))
}

fn parse_write(shared: &Shared, name: &str, args: &[Vec<u8>]) -> Result<Write, String> {
    let db = &shared.db;
    let member_id = utf8(args, 1, "the member id")?;
    Ok(match name {
        "MEMBER.SET" => {
            let types: Vec<(String, DataType)> = db
                .attributes()
                .into_iter()
                .map(|a| (a.name, a.data_type))
                .collect();
            let known = |f: &str| types.iter().find(|(n, _)| n == f).map(|(_, t)| *t);
            let fields = pairs(args, 2, &known)?;
            Write::UpsertMember { member_id, fields }
        }
        "TAG.ADD" | "TAG.DEL" => {
            let tags: Vec<String> = (2..args.len())
                .map(|i| utf8(args, i, "a tag"))
                .collect::<Result<_, _>>()?;
            if name == "TAG.ADD" {
                Write::AddTags { member_id, tags }
            } else {
                Write::RemoveTags { member_id, tags }
            }
        }
        _ => {
            let event = utf8(args, 2, "the event name")?;
            let ts_text = utf8(args, 3, "the time")?;
            let ts = if ts_text == "*" {
                // The engine's clock: the manual clock when it is pinned.
                db.now()
            } else {
                Timestamp::parse(&ts_text).ok_or_else(|| {
                    format!(
                        "'{ts_text}' is not a time; give an RFC 3339 timestamp \
                         (2026-11-01T08:00:00Z) or * for now"
                    )
                })?
            };
            let types = db.event_properties();
            let known = |f: &str| types.iter().find(|(n, _)| n == f).map(|(_, t)| *t);
            let props = pairs(args, 4, &known)?;
            Write::AddEvent {
                member_id,
                event,
                ts,
                props,
            }
        }
    })
}

/// The reply to a write once the database has answered it.
pub(crate) fn write_reply(result: memberdb::Result<()>) -> Reply {
    match result {
        Ok(()) => Reply::ok(),
        Err(e) => Reply::error("ERR", e.to_string()),
    }
}

/// Runs a write and waits for it (the server's event loop submits instead).
fn write(shared: &Shared, name: &str, args: &[Vec<u8>]) -> Reply {
    match write_request(shared, name, args) {
        Ok(write) => {
            let (answer, answered) = std::sync::mpsc::channel();
            shared.db.submit(write, move |result| {
                let _ = answer.send(result);
            });
            write_reply(answered.recv().unwrap_or_else(|_| {
                Err(memberdb::Error::Internal(
                    "the write was not answered".into(),
                ))
            }))
        }
        Err(reply) => reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_take_the_known_type_or_the_obvious_one() {
        assert_eq!(wire_value("", None), None);
        assert_eq!(wire_value("12", None), Some(Value::Int(12)));
        assert_eq!(wire_value("1.5", None), Some(Value::Float(1.5)));
        assert_eq!(wire_value("inf", None), Some(Value::Str("inf".into())));
        assert_eq!(wire_value("true", None), Some(Value::Bool(true)));
        assert_eq!(
            wire_value("12", Some(DataType::String)),
            Some(Value::Str("12".into()))
        );
    }
}
