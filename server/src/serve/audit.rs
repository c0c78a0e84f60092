//! What the server records in the audit log (`memberdb::audit`): reads that return an
//! unmasked audited field (`[audit] fields`), exports, failed AUTH bursts and each start;
//! `AUDIT.VERIFY`, and `XRANGE audit` for admins. A read whose record cannot be made
//! durable is answered with an error instead of its data.

use std::sync::Arc;

use memberdb::audit::{AuditEvent, AuditLog, AuditRecord, without_literals};
use memberdb::query::Output;
use memberdb::{Command, MemberRecord};

use super::Shared;
use super::commands::{Session, needs};
use super::resp::Reply;

/// The audit log's hook for failed AUTH: one record per burst, once it ends.
pub(crate) fn record_bursts(shared: &Shared) {
    let log: Arc<AuditLog> = shared.audit.clone();
    shared.auth.on_burst(Box::new(move |burst| {
        let stamp = |t: std::time::SystemTime| {
            let micros = t
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as i64);
            memberdb::Timestamp(micros).to_string()
        };
        let event = AuditEvent {
            user: burst.user.clone(),
            client: burst.client.to_string(),
            action: "auth_failed".to_string(),
            detail: Some(format!(
                "{} failures from {} to {}",
                burst.count,
                stamp(burst.first),
                stamp(burst.last)
            )),
            ..AuditEvent::default()
        };
        if let Err(e) = log.record(event) {
            tracing::error!("cannot record a burst of failed AUTH in the audit log: {e}");
        }
    }));
}

/// The audited fields among `shown` that `session` sees unmasked.
fn audited<'a>(
    shared: &Shared,
    session: &Session,
    shown: impl Iterator<Item = &'a str>,
) -> Vec<String> {
    let access = session.access.as_deref();
    let mut fields: Vec<String> = shown
        .filter(|f| shared.config.audit.fields.iter().any(|a| a == f))
        .filter(|f| access.is_none_or(|a| a.mask_of(f).is_none()))
        .map(str::to_string)
        .collect();
    fields.sort();
    fields.dedup();
    fields
}

fn event(session: &Session, action: &str, statement: &str) -> AuditEvent {
    AuditEvent {
        user: session.user.clone(),
        client: session.client.to_string(),
        action: action.to_string(),
        statement: without_literals(statement),
        ..AuditEvent::default()
    }
}

/// Records `event`; the error reply when it cannot be made durable.
fn record(shared: &Shared, event: AuditEvent) -> Result<(), Reply> {
    shared.audit.record(event).map(drop).map_err(|e| {
        tracing::error!("cannot record in the audit log: {e}");
        Reply::error(
            "ERR",
            "the audit log could not record this request, so nothing was returned; see the \
             server's log",
        )
    })
}

/// Records a statement's answer if it returns audited fields or exports: before the reply.
pub(crate) fn statement(
    shared: &Shared,
    session: &Session,
    text: &str,
    output: &Output,
) -> Result<(), Reply> {
    match output {
        Output::Find(found) => {
            let fields = audited(
                shared,
                session,
                found.columns[1..].iter().map(String::as_str),
            );
            if fields.is_empty() || found.rows.is_empty() {
                return Ok(());
            }
            let members = found
                .rows
                .iter()
                .filter_map(|r| shared.db.row_of(&r.member_id))
                .collect();
            record(
                shared,
                AuditEvent {
                    fields,
                    members,
                    ..event(session, "read", text)
                },
            )
        }
        Output::Exported {
            rows, members_hash, ..
        } => record(
            shared,
            AuditEvent {
                rows: Some(*rows),
                detail: Some(format!("members sha256 {members_hash}")),
                ..event(session, "export", text)
            },
        ),
        _ => Ok(()),
    }
}

/// Records a MEMBER.GET that returns audited fields.
pub(crate) fn member_get(
    shared: &Shared,
    session: &Session,
    id: &str,
    record_of: &MemberRecord,
) -> Result<(), Reply> {
    let shown = record_of
        .attributes
        .iter()
        .chain(&record_of.traits)
        .map(|(n, _)| n.as_str())
        .chain(record_of.identifiers.iter().map(|(t, _)| t.as_str()));
    let fields = audited(shared, session, shown);
    if fields.is_empty() {
        return Ok(());
    }
    record(
        shared,
        AuditEvent {
            fields,
            members: shared.db.row_of(id).into_iter().collect(),
            ..event(session, "read", "MEMBER.GET ?")
        },
    )
}

/// Records an erasure (`MEMBER.ERASE`): the profile's row, the member ids erased, the
/// reason as written.
pub(crate) fn erasure(
    shared: &Shared,
    session: &Session,
    erased: &memberdb::Erasure,
    reason: Option<&str>,
) -> Result<(), String> {
    let statement = match reason {
        Some(_) => "MEMBER.ERASE ? REASON ?",
        None => "MEMBER.ERASE ?",
    };
    let event = AuditEvent {
        members: vec![erased.row],
        rows: Some(erased.member_ids),
        detail: reason.map(|r| format!("reason: {r}")),
        ..event(session, "erase", statement)
    };
    shared
        .audit
        .record(event)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `AUDIT.VERIFY`: the chain checked from the first kept record.
pub(crate) fn verify(shared: &Shared, session: &Session) -> Reply {
    if let Err(reply) = needs(session, "AUDIT.VERIFY", Command::Admin) {
        return reply;
    }
    match memberdb::audit::verify_file(&shared.audit.path()) {
        Ok(check) => Reply::text(format!(
            "OK {} records, chained from {}",
            check.records,
            check
                .anchor
                .as_deref()
                .map_or("the start", |a| if a.bytes().all(|b| b == b'0') {
                    "the start"
                } else {
                    "the last record retention dropped"
                })
        )),
        Err(e) => Reply::error("ERR", e.to_string()),
    }
}

/// `XRANGE audit <start> <end> [COUNT n]` (admins): each record's fields, members as
/// their member ids (`(erased)` for an erased member).
pub(crate) fn range(shared: &Shared, session: &Session, args: &[Vec<u8>]) -> Reply {
    if let Err(reply) = needs(session, "XRANGE audit", Command::Admin) {
        return reply;
    }
    let text = |i: usize| args.get(i).and_then(|a| std::str::from_utf8(a).ok());
    let (Some(from), Some(to)) = (text(2), text(3)) else {
        return Reply::error("ERR", "XRANGE audit <start> <end> [COUNT n]");
    };
    let count = match (text(4), text(5)) {
        (Some(c), Some(n)) if c.eq_ignore_ascii_case("COUNT") => match n.parse() {
            Ok(n) => n,
            Err(_) => return Reply::error("ERR", "value is not an integer or out of range"),
        },
        (None, None) => memberdb::MAX_READ,
        _ => return Reply::error("ERR", "XRANGE audit <start> <end> [COUNT n]"),
    };
    match shared.audit.range(from, to, count) {
        Ok(records) => Reply::Array(records.iter().map(|r| entry(shared, r)).collect()),
        Err(e) => Reply::error("ERR", e.to_string()),
    }
}

fn entry(shared: &Shared, r: &AuditRecord) -> Reply {
    let members: Vec<String> = r
        .event
        .members
        .iter()
        .map(|&row| {
            shared
                .db
                .member_id_of(row)
                .unwrap_or_else(|| format!("(row {row})"))
        })
        .collect();
    let pairs = [
        ("time", r.time.clone()),
        ("user", r.event.user.clone()),
        ("client", r.event.client.clone()),
        ("action", r.event.action.clone()),
        ("statement", r.event.statement.clone()),
        ("fields", r.event.fields.join(",")),
        ("members", members.join(",")),
        (
            "rows",
            r.event.rows.map_or(String::new(), |n| n.to_string()),
        ),
        ("detail", r.event.detail.clone().unwrap_or_default()),
        ("prev_hash", r.prev_hash.clone()),
        ("hash", r.hash.clone()),
    ];
    Reply::Array(vec![
        Reply::text(r.id.clone()),
        Reply::Array(
            pairs
                .into_iter()
                .flat_map(|(k, v)| [Reply::text(k), Reply::text(v)])
                .collect(),
        ),
    ])
}
