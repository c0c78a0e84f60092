//! Group streams read through a [`Session`] (DESIGN section 12): a scoped user reads each
//! group's stream cut to its scope (`groups::scoped`), the scope kept as a group of its own,
//! `scope_<hash>`, defined the first time a user with that scope reads a stream (its
//! changes are kept [`SCOPE_KEEP_DAYS`]). An unscoped user reads the streams as they are.

use super::session::Session;
use crate::database::MAX_READ;
use crate::error::{Error, Result};
use crate::groups::scoped::ScopedView;
use crate::groups::stream::{ChangeEntry, EntryId};
use crate::state::State;

/// Days a scope's group keeps its changes: how far back a scoped reader can resume.
pub const SCOPE_KEEP_DAYS: u32 = 365;

/// The prefix of the groups that keep a scope.
pub const SCOPE_GROUP_PREFIX: &str = "scope_";

fn view<'s>(state: &'s State, group: &str, scope: &str) -> Result<ScopedView<'s>> {
    Ok(ScopedView {
        group: state.stream_group(group)?,
        scope: state.stream_group(scope)?,
    })
}

fn trimmed(group: &str, after: EntryId, oldest: EntryId) -> Error {
    Error::Stream {
        code: "TRIMMED",
        message: format!(
            "oldest id {oldest}: the entries after {after} of group:{group} as your scope sees \
             them are not kept (or predate your scope's history); take a GROUP.SNAPSHOT"
        ),
    }
}

/// What a user's streams are cut to.
enum Cut {
    /// Nothing: the user sees every member.
    Everyone,
    /// The scope does not bind (an attribute it names does not exist yet): nobody.
    Nobody,
    /// The members of this group.
    Group(String),
}

impl Session<'_> {
    /// The group keeping the user's scope, defined if it is not yet.
    fn cut(&self, group: &str) -> Result<Cut> {
        let Some(scope) = self.access().scope() else {
            return Ok(Cut::Everyone);
        };
        let text = scope.to_string();
        let name = format!(
            "{SCOPE_GROUP_PREFIX}{}",
            &crate::audit::sha256_hex(text.as_bytes())[..16]
        );
        let db = self.database();
        if db.group_definition(&name).is_none() {
            match db.define_group_keeping(&name, scope.clone(), Some(SCOPE_KEEP_DAYS)) {
                Ok(_) | Err(Error::Conflict(_)) => {}
                // A scope that does not bind selects nobody (DESIGN section 12).
                Err(Error::InvalidSegment(_) | Error::UnknownName { .. }) => {
                    db.snapshot().stream_group(group)?;
                    return Ok(Cut::Nobody);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Cut::Group(name))
    }

    /// The entries of group `group`'s stream after `after` that the user sees, oldest
    /// first, at most `count` ([`Database::changes`](crate::Database::changes) for an
    /// unscoped user).
    pub fn changes(&self, group: &str, after: EntryId, count: usize) -> Result<Vec<ChangeEntry>> {
        let db = self.database();
        let scope = match self.cut(group)? {
            Cut::Everyone => return Ok(db.changes(group, after)?.take(count).collect()),
            Cut::Nobody => return Ok(Vec::new()),
            Cut::Group(scope) => scope,
        };
        let state = db.snapshot();
        let view = view(&state, group, &scope)?;
        let entries = view
            .after(after, count.min(MAX_READ))
            .map_err(|t| trimmed(group, after, t.oldest))?;
        Ok(entries.into_iter().map(|e| state.change_entry(e)).collect())
    }

    /// The entries with ids in `[from, to]` that the user sees, oldest first (newest first
    /// with `newest_first`), at most `count`.
    pub fn change_range(
        &self,
        group: &str,
        from: EntryId,
        to: EntryId,
        count: usize,
        newest_first: bool,
    ) -> Result<Vec<ChangeEntry>> {
        if self.access().scope().is_none() {
            return self
                .database()
                .change_range(group, from, to, count, newest_first);
        }
        // The view is computed forwards from where it can start.
        let after = from.previous().unwrap_or(EntryId::ZERO);
        let after = after.max(self.view_start(group)?);
        let mut entries: Vec<ChangeEntry> = self
            .changes(group, after, MAX_READ)?
            .into_iter()
            .filter(|e| e.id >= from && e.id <= to)
            .collect();
        if newest_first {
            entries.reverse();
        }
        entries.truncate(count);
        Ok(entries)
    }

    /// The first id the user's view of `group` can be read after.
    fn view_start(&self, group: &str) -> Result<EntryId> {
        let Cut::Group(scope) = self.cut(group)? else {
            return Ok(EntryId::ZERO);
        };
        let state = self.database().snapshot();
        Ok(view(&state, group, &scope)?.starts_after())
    }

    /// The newest id of group `group`'s stream as the user sees it (`$`).
    pub fn last_change_id(&self, group: &str) -> Result<EntryId> {
        let db = self.database();
        let scope = match self.cut(group)? {
            Cut::Everyone => return Ok(db.group_status(group)?.last_id),
            Cut::Nobody => return Ok(EntryId::ZERO),
            Cut::Group(scope) => scope,
        };
        let state = db.snapshot();
        Ok(view(&state, group, &scope)?.last_id())
    }

    /// The members of group `group` the user sees and the id its stream continues after
    /// ([`Database::group_snapshot`](crate::Database::group_snapshot) for an unscoped
    /// user).
    pub fn group_snapshot(&self, group: &str) -> Result<(EntryId, Vec<String>)> {
        let db = self.database();
        let scope = match self.cut(group)? {
            Cut::Everyone => return db.group_snapshot(group),
            Cut::Nobody => return Ok((EntryId::ZERO, Vec::new())),
            Cut::Group(scope) => scope,
        };
        let state = db.snapshot();
        let view = view(&state, group, &scope)?;
        let members = view
            .members()
            .iter()
            .map(|row| state.members.member_id(row).to_string())
            .collect();
        Ok((view.last_id(), members))
    }
}
