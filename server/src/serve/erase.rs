//! `MEMBER.ERASE <member_id> [REASON <text>]` (admins, DESIGN section 12): the member and
//! its aliases erased (`Database::erase`), recorded in the audit log by row, before the
//! reply. It runs on the query threads: it returns after a checkpoint.

use memberdb::Command;

use super::Shared;
use super::commands::{Session, needs};
use super::resp::Reply;

/// The command's name.
pub(crate) const NAME: &str = "MEMBER.ERASE";

const USAGE: &str = "MEMBER.ERASE <member_id> [REASON <text>]";

/// Runs `MEMBER.ERASE`; replies with the number of member ids erased.
pub(crate) fn execute(shared: &Shared, session: &Session, args: &[Vec<u8>]) -> Reply {
    run(shared, session, args).unwrap_or_else(|e| e)
}

fn run(shared: &Shared, session: &Session, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    needs(session, NAME, Command::Admin)?;
    let text = |i: usize| -> Result<&str, Reply> {
        std::str::from_utf8(&args[i])
            .map_err(|_| Reply::error("ERR", "arguments must be UTF-8 text"))
    };
    let reason = match args.len() {
        2 => None,
        4 if text(2)?.eq_ignore_ascii_case("REASON") => Some(text(3)?),
        _ => {
            return Err(Reply::error(
                "ERR",
                format!("wrong number of arguments for '{NAME}'; use {USAGE}"),
            ));
        }
    };
    let member = text(1)?;
    let erased = shared
        .db
        .erase(member)
        .map_err(|e| Reply::error("ERR", e))?;
    if let Err(e) = super::audit::erasure(shared, session, &erased, reason) {
        tracing::error!(
            "member row {} was erased but the audit log could not record it: {e}",
            erased.row
        );
        return Err(Reply::error(
            "ERR",
            "the member was erased, but the audit log could not record it; see the server's log",
        ));
    }
    Ok(Reply::Int(erased.member_ids as i64))
}
