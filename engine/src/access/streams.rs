//! Group streams read through a [`Session`] (DESIGN section 12): a scoped user reads each
//! group's stream cut to its scope (`groups::scoped`), the scope kept as a group of its own,
//! `scope_<hash>`, defined the first time a user with that scope reads a stream (its
//! changes are kept [`SCOPE_KEEP_DAYS`]); its consumer groups are kept apart, under the
//! view's key, and deliver the view's entries. An unscoped user reads the streams as they
//! are.

use super::session::Session;
use crate::database::{GroupStatus, MAX_READ, PendingEntry};
use crate::error::{Error, Result};
use crate::groups::scoped::view_key;
use crate::groups::stream::{ChangeEntry, EntryId};

/// Days a scope's group keeps its changes: how far back a scoped reader can resume.
pub const SCOPE_KEEP_DAYS: u32 = 365;

/// The prefix of the groups that keep a scope.
pub const SCOPE_GROUP_PREFIX: &str = "scope_";

/// The stream a user reads for a group.
enum Stream {
    /// The group's own: the user sees every member.
    Whole(String),
    /// The scope does not bind (an attribute it names does not exist yet): nobody.
    Nobody,
    /// The view of the group through the user's scope, by its key.
    View(String),
}

impl Stream {
    /// The key the engine keeps it under; `None` for nobody's.
    fn key(&self) -> Option<&str> {
        match self {
            Stream::Whole(key) | Stream::View(key) => Some(key),
            Stream::Nobody => None,
        }
    }
}

impl Session<'_> {
    /// The stream of `group` the user reads, the scope's group defined if it is not yet.
    fn stream(&self, group: &str) -> Result<Stream> {
        let db = self.database();
        db.snapshot().stream_group(group)?;
        let Some(scope) = self.access().scope() else {
            return Ok(Stream::Whole(group.to_string()));
        };
        let text = scope.to_string();
        let name = format!(
            "{SCOPE_GROUP_PREFIX}{}",
            &crate::audit::sha256_hex(text.as_bytes())[..16]
        );
        if db.group_definition(&name).is_none() {
            match db.define_group_keeping(&name, scope.clone(), Some(SCOPE_KEEP_DAYS)) {
                Ok(_) | Err(Error::Conflict(_)) => {}
                // A scope that does not bind selects nobody (DESIGN section 12).
                Err(Error::InvalidSegment(_) | Error::UnknownName { .. }) => {
                    return Ok(Stream::Nobody);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Stream::View(view_key(group, &name)))
    }

    /// The key of `group`'s stream for consumer groups; an error for a scope that selects
    /// nobody.
    fn consumer_key(&self, group: &str) -> Result<String> {
        self.stream(group)?
            .key()
            .map(str::to_string)
            .ok_or_else(|| {
                Error::InvalidSegment(format!(
                    "the scope of user '{}' selects nobody (it names what does not exist yet): \
                 there is no stream of group:{group} to read",
                    self.access().user()
                ))
            })
    }

    /// The entries of group `group`'s stream after `after` that the user sees, oldest
    /// first, at most `count` ([`Database::changes`](crate::Database::changes) for an
    /// unscoped user).
    pub fn changes(&self, group: &str, after: EntryId, count: usize) -> Result<Vec<ChangeEntry>> {
        let Some(key) = self.stream(group)?.key().map(str::to_string) else {
            return Ok(Vec::new());
        };
        self.database()
            .snapshot()
            .entries_after(&key, after, count.min(MAX_READ))
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
        let Some(key) = self.stream(group)?.key().map(str::to_string) else {
            return Ok(Vec::new());
        };
        self.database()
            .snapshot()
            .stream_entries(&key, from, to, count.min(MAX_READ), newest_first)
    }

    /// The newest id of group `group`'s stream as the user sees it (`$`).
    pub fn last_change_id(&self, group: &str) -> Result<EntryId> {
        match self.stream(group)?.key() {
            Some(key) => self.database().snapshot().last_id_of(key),
            None => Ok(EntryId::ZERO),
        }
    }

    /// The members of group `group` the user sees and the id its stream continues after
    /// ([`Database::group_snapshot`](crate::Database::group_snapshot) for an unscoped
    /// user).
    pub fn group_snapshot(&self, group: &str) -> Result<(EntryId, Vec<String>)> {
        let db = self.database();
        let key = match self.stream(group)? {
            Stream::Whole(_) => return db.group_snapshot(group),
            Stream::Nobody => return Ok((EntryId::ZERO, Vec::new())),
            Stream::View(key) => key,
        };
        let state = db.snapshot();
        let (g, scope) = crate::groups::scoped::split_view_key(&key).expect("a view's key");
        let view = state.view_of(g, scope)?;
        let members = view
            .members()
            .iter()
            .map(|row| state.members.member_id(row).to_string())
            .collect();
        Ok((view.last_id(), members))
    }

    /// `XINFO` of group `group`'s stream as the user sees it: a scoped user's view (its
    /// length, ids, members, its own consumer groups); a definition reading a field masked
    /// for the user is hidden.
    pub fn group_status(&self, group: &str) -> Result<GroupStatus> {
        let db = self.database();
        let mut status = db.group_status(group)?;
        match self.stream(group)? {
            Stream::Whole(_) => {}
            Stream::Nobody => {
                status.size = 0;
                status.entries = 0;
                status.first_id = None;
                status.last_id = EntryId::ZERO;
                status.consumer_groups.clear();
            }
            Stream::View(key) => {
                let state = db.snapshot();
                let (g, scope) = crate::groups::scoped::split_view_key(&key).expect("a view");
                let view = state.view_of(g, scope)?;
                let end = EntryId::new(u64::MAX, u32::MAX);
                let entries = state.stream_entries(&key, EntryId::ZERO, end, MAX_READ, false)?;
                status.size = view.members().len();
                status.entries = entries.len() as u64;
                status.first_id = entries.first().map(|e| e.id);
                status.last_id = view.last_id();
                status.keep_days = status.keep_days.min(SCOPE_KEEP_DAYS);
                status.consumer_groups = state.consumer_statuses(&key);
            }
        }
        if let Some(definition) = db.group_definition(group)
            && (self.access().reads_masked(&definition) || self.masked_group(&definition).is_some())
        {
            status.definition = crate::query::HIDDEN_DEFINITION.to_string();
        }
        Ok(status)
    }

    /// `XGROUP CREATE` of the user's stream of `group`: a scoped user's consumer groups are
    /// its view's, apart from the group's own.
    pub fn create_consumer_group(
        &self,
        group: &str,
        name: &str,
        start: Option<EntryId>,
    ) -> Result<()> {
        self.access().require(super::Command::Write, "XGROUP")?;
        let key = self.consumer_key(group)?;
        self.database().create_consumer_group(&key, name, start)
    }

    /// `XREADGROUP ... >` of the user's stream of `group`.
    pub fn read_group(
        &self,
        group: &str,
        name: &str,
        consumer: &str,
        count: usize,
    ) -> Result<Vec<ChangeEntry>> {
        self.access().require(super::Command::Write, "XREADGROUP")?;
        let key = self.consumer_key(group)?;
        self.database().read_group(&key, name, consumer, count)
    }

    /// `XREADGROUP ... <id>`: the entries pending for `consumer` after `after`.
    pub fn pending_for(
        &self,
        group: &str,
        name: &str,
        consumer: &str,
        after: EntryId,
        count: usize,
    ) -> Result<Vec<ChangeEntry>> {
        let key = self.consumer_key(group)?;
        self.database()
            .pending_for(&key, name, consumer, after, count)
    }

    /// `XACK` in the user's stream of `group`.
    pub fn acknowledge(&self, group: &str, name: &str, ids: &[EntryId]) -> Result<u64> {
        self.access().require(super::Command::Write, "XACK")?;
        let key = self.consumer_key(group)?;
        self.database().acknowledge(&key, name, ids)
    }

    /// `XPENDING` in the user's stream of `group`.
    pub fn pending(
        &self,
        group: &str,
        name: &str,
        range: (EntryId, EntryId),
        count: usize,
        consumer: Option<&str>,
    ) -> Result<Vec<PendingEntry>> {
        let key = self.consumer_key(group)?;
        self.database().pending(&key, name, range, count, consumer)
    }
}
