//! The clock and the change streams of the embedding API: [`Database::set_clock`],
//! [`Database::changes`], [`Database::wait_changes`], snapshots, consumer groups and what
//! `SHOW GROUP` / `XINFO STREAM` report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::options::Clock;
use super::{Database, lock};
use crate::error::{Error, Result};
use crate::groups::scoped::ScopedView;
use crate::groups::stream::{ChangeEntry, EntryId};
use crate::state::State;
use crate::value::{Timestamp, format_timestamp};
use crate::wal::change::{Change, Outcome};

/// A dynamic group as `SHOW GROUP` and `XINFO STREAM` show it.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupStatus {
    /// Name.
    pub name: String,
    /// The definition, as text of the segment language.
    pub definition: String,
    /// Members now.
    pub size: u64,
    /// Whether it moves with time.
    pub time_dependent: bool,
    /// The id of its newest entry (`0-0` if none).
    pub last_id: EntryId,
    /// The id of its oldest entry kept, if any.
    pub first_id: Option<EntryId>,
    /// Entries kept.
    pub entries: u64,
    /// How long entries are kept, in days.
    pub keep_days: u32,
    /// The next instant a member's membership can change without new data (an event
    /// entering or leaving a window the group reads); `None` when nothing can.
    pub next_change: Option<Timestamp>,
    /// Its consumer groups.
    pub consumer_groups: Vec<ConsumerGroupStatus>,
}

/// A consumer group as `XINFO GROUPS` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerGroupStatus {
    /// Name.
    pub name: String,
    /// Its consumers.
    pub consumers: u64,
    /// Entries delivered and not acknowledged.
    pub pending: u64,
    /// The newest entry delivered.
    pub last_delivered: EntryId,
    /// Entries delivered since it was created.
    pub entries_read: u64,
}

/// An entry delivered to a consumer and not acknowledged (`XPENDING`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEntry {
    /// Its id.
    pub id: EntryId,
    /// Who it was delivered to.
    pub consumer: String,
    /// Microseconds since its last delivery, on the engine's clock.
    pub idle_micros: i64,
    /// Times delivered.
    pub deliveries: u32,
}

/// The entries of a stream after an id, read from one snapshot ([`Database::changes`]).
#[derive(Debug)]
pub struct Changes {
    entries: std::vec::IntoIter<ChangeEntry>,
}

impl Iterator for Changes {
    type Item = ChangeEntry;
    fn next(&mut self) -> Option<ChangeEntry> {
        self.entries.next()
    }
}

/// Most entries one read returns; a reader continues after the last one it got.
pub const MAX_READ: usize = 100_000;

impl State {
    /// Entries of stream `group` with ids in `[from, to]`, oldest first (newest first with
    /// `rev`), at most `limit`, with the member ids.
    pub(crate) fn stream_entries(
        &self,
        group: &str,
        from: EntryId,
        to: EntryId,
        limit: usize,
        rev: bool,
    ) -> Result<Vec<ChangeEntry>> {
        if let Some((group, scope)) = crate::groups::scoped::split_view_key(group) {
            // A scoped view: computed forwards from where it can be read.
            let view = self.view_of(group, scope)?;
            let after = from
                .previous()
                .unwrap_or(EntryId::ZERO)
                .max(view.starts_after());
            let mut raw: Vec<_> = view
                .after(after, MAX_READ)
                .map_err(|t| trimmed_view(group, after, t.oldest))?
                .into_iter()
                .filter(|e| e.0 >= from && e.0 <= to)
                .collect();
            if rev {
                raw.reverse();
            }
            raw.truncate(limit);
            return Ok(raw.into_iter().map(|e| self.change_entry(e)).collect());
        }
        let g = self.stream_group(group)?;
        let raw = if rev {
            g.stream.range_rev(from, to, limit)
        } else {
            g.stream.range(from, to, limit)
        };
        Ok(raw.into_iter().map(|e| self.change_entry(e)).collect())
    }

    /// A stream entry as readers get it: the member's id (`(erased)` for an erased one).
    pub(crate) fn change_entry(
        &self,
        (id, row, op, cause, at): crate::groups::scoped::ViewEntry,
    ) -> ChangeEntry {
        ChangeEntry {
            id,
            member_id: self.members.shown_id(row).to_string(),
            op,
            cause,
            at: Timestamp(at),
        }
    }

    /// The group of stream `name`, or an error naming the closest group.
    pub(crate) fn stream_group(&self, name: &str) -> Result<&crate::groups::Group> {
        self.groups.require(name).map_err(|e| Error::Stream {
            code: "ERR",
            message: format!(
                "there is no stream group:{name} ({e}); the streams are group:<name> of the \
                 groups SHOW GROUPS lists"
            ),
        })
    }

    /// The consumer groups of stream `key` (a group's, or a scoped view's).
    pub(crate) fn consumer_statuses(&self, key: &str) -> Vec<ConsumerGroupStatus> {
        self.consumers
            .streams
            .get(key)
            .map(|groups| {
                groups
                    .iter()
                    .map(|(n, cg)| ConsumerGroupStatus {
                        name: n.clone(),
                        consumers: cg.consumers.len() as u64,
                        pending: cg.pending.len() as u64,
                        last_delivered: cg.last_delivered,
                        entries_read: cg.entries_read,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The view of `group` through the group `scope` keeps.
    pub(crate) fn view_of(&self, group: &str, scope: &str) -> Result<ScopedView<'_>> {
        Ok(ScopedView {
            group: self.stream_group(group)?,
            scope: self.stream_group(scope)?,
        })
    }

    /// The newest id of stream `key` (a group's, or a scoped view's).
    pub(crate) fn last_id_of(&self, key: &str) -> Result<EntryId> {
        match crate::groups::scoped::split_view_key(key) {
            Some((group, scope)) => Ok(self.view_of(group, scope)?.last_id()),
            None => Ok(self.stream_group(key)?.stream.last_id),
        }
    }

    /// Entries after `after`, checking that retention removed none of them.
    pub(crate) fn entries_after(
        &self,
        group: &str,
        after: EntryId,
        limit: usize,
    ) -> Result<Vec<ChangeEntry>> {
        if let Some((g, scope)) = crate::groups::scoped::split_view_key(group) {
            let entries = self
                .view_of(g, scope)?
                .after(after, limit)
                .map_err(|t| trimmed_view(g, after, t.oldest))?;
            return Ok(entries.into_iter().map(|e| self.change_entry(e)).collect());
        }
        let g = self.stream_group(group)?;
        g.stream.check_after(after).map_err(|t| Error::Stream {
            code: "TRIMMED",
            message: format!(
                "oldest id {}: the entries after {after} of group:{group} are no longer kept; \
                 take a GROUP.SNAPSHOT",
                t.oldest
            ),
        })?;
        if after >= g.stream.last_id {
            return Ok(Vec::new());
        }
        self.stream_entries(
            group,
            after.next(),
            EntryId::new(u64::MAX, u32::MAX),
            limit,
            false,
        )
    }
}

/// The error of a read of a scoped view after an id it cannot say what follows.
pub(crate) fn trimmed_view(group: &str, after: EntryId, oldest: EntryId) -> Error {
    Error::Stream {
        code: "TRIMMED",
        message: format!(
            "oldest id {oldest}: the entries after {after} of group:{group} as your scope sees \
             them are not kept (or predate your scope's history); take a GROUP.SNAPSHOT"
        ),
    }
}

impl Database {
    /// The engine's *now*: the manual clock, or the wall clock (never before the last
    /// change's time).
    pub fn now(&self) -> Timestamp {
        let clock = self.snapshot().clock;
        match self.core.options.clock {
            Clock::Manual(_) => Timestamp(clock),
            Clock::Wall => Timestamp(clock.max(Timestamp::now().micros())),
        }
    }

    /// Moves a manual clock forward to `now` and applies every time-driven change up to it;
    /// when this returns they are durable and readable. The same instant does nothing; an
    /// earlier one, or a database on the wall clock, is refused.
    pub fn set_clock(&self, now: Timestamp) -> Result<()> {
        if self.core.options.clock == Clock::Wall {
            return Err(Error::InvalidSegment(
                "the clock is the wall clock; only a database opened with a manual clock \
                 (memberdb serve --clock manual --now TS) can be set"
                    .to_string(),
            ));
        }
        if now.micros() == self.core.clock() {
            return Ok(());
        }
        self.write(Change::Clock { now: now.micros() }).map(drop)
    }

    /// The entries of group `group`'s stream after `after` (`EntryId::ZERO` for all kept),
    /// oldest first, at most [`MAX_READ`]; read from one snapshot. An error when retention
    /// removed entries after `after` (take a [`Database::group_snapshot`]) or the group does
    /// not exist.
    pub fn changes(&self, group: &str, after: EntryId) -> Result<Changes> {
        let entries = self.snapshot().entries_after(group, after, MAX_READ)?;
        Ok(Changes {
            entries: entries.into_iter(),
        })
    }

    /// Waits until group `group`'s stream has entries after `after`, or `timeout` passes;
    /// returns whether it has. Woken by the commit that made the entries durable.
    pub fn wait_changes(&self, group: &str, after: EntryId, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let (mutex, condvar) = &self.core.applied;
        let mut guard = lock(mutex);
        loop {
            {
                let state = self.snapshot();
                if state.stream_group(group)?.stream.last_id > after {
                    return Ok(true);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            guard = condvar
                .wait_timeout(guard, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// The entries of group `group`'s stream with ids in `[from, to]`, at most `count`,
    /// oldest first (newest first with `newest_first`): `XRANGE` and `XREVRANGE`.
    pub fn change_range(
        &self,
        group: &str,
        from: EntryId,
        to: EntryId,
        count: usize,
        newest_first: bool,
    ) -> Result<Vec<ChangeEntry>> {
        self.snapshot()
            .stream_entries(group, from, to, count.min(MAX_READ), newest_first)
    }

    /// Calls `listener` after every commit that added stream entries (on the committing
    /// thread: it must be quick, e.g. wake an event loop).
    pub fn on_changes(&self, listener: Arc<dyn Fn() + Send + Sync>) {
        lock(&self.core.listeners).push(listener);
    }

    /// The members of group `group` and the id of the newest entry they include, read
    /// together (`GROUP.SNAPSHOT`): folding the entries after that id gives every later
    /// membership.
    pub fn group_snapshot(&self, group: &str) -> Result<(EntryId, Vec<String>)> {
        let state = self.snapshot();
        let g = state.stream_group(group)?;
        // The bitmap is the membership at the state's clock, the position of its newest
        // entry (a wall clock past a change the clock thread has yet to apply reads the same).
        let members = g
            .bitmap
            .iter()
            .map(|row| state.members.member_id(row).to_string())
            .collect();
        Ok((g.stream.last_id, members))
    }

    /// The *now* reads use on `state`.
    pub(crate) fn now_for(&self, state: &State) -> i64 {
        match self.core.options.clock {
            Clock::Manual(_) => state.clock,
            Clock::Wall => state.clock.max(Timestamp::now().micros()),
        }
    }

    /// What `SHOW GROUP` and `XINFO STREAM` say about group `name`.
    pub fn group_status(&self, name: &str) -> Result<GroupStatus> {
        let state = self.snapshot();
        let g = state.stream_group(name)?;
        let size = self
            .as_of(Timestamp(self.now_for(&state)))
            .count(&crate::Segment::in_group(name))?;
        let consumer_groups = state.consumer_statuses(name);
        Ok(GroupStatus {
            name: g.name.clone(),
            definition: g.definition.to_string(),
            size,
            time_dependent: g.time_dependent,
            last_id: g.stream.last_id,
            first_id: g.stream.first_id(),
            entries: g.stream.len,
            keep_days: g.keep_days,
            next_change: (g.time_dependent && g.next_change != i64::MAX)
                .then_some(Timestamp(g.next_change)),
            consumer_groups,
        })
    }

    /// `XGROUP CREATE`: consumer group `name` on stream `group`, delivering the entries
    /// after `start` (`None`: after the newest). Durable when it returns.
    pub fn create_consumer_group(
        &self,
        group: &str,
        name: &str,
        start: Option<EntryId>,
    ) -> Result<()> {
        crate::wal::change::check_name(name, "a consumer group name")?;
        self.snapshot().last_id_of(group)?;
        self.write(Change::CreateConsumerGroup {
            stream: group.to_string(),
            name: name.to_string(),
            start,
        })
        .map(drop)
    }

    /// `XREADGROUP ... >`: delivers to `consumer` up to `count` entries of stream `group`
    /// that consumer group `name` has not delivered yet; they stay pending until
    /// acknowledged. The delivery is durable before this returns.
    pub fn read_group(
        &self,
        group: &str,
        name: &str,
        consumer: &str,
        count: usize,
    ) -> Result<Vec<ChangeEntry>> {
        crate::wal::change::check_name(consumer, "a consumer name")?;
        let entries = {
            let state = self.snapshot();
            let after = state.consumers.get(group, name)?.last_delivered;
            state.entries_after(group, after, count.clamp(1, MAX_READ))?
        };
        let Some(last) = entries.last() else {
            return Ok(entries);
        };
        self.write(Change::Deliver {
            stream: group.to_string(),
            group: name.to_string(),
            consumer: consumer.to_string(),
            through: last.id,
        })?;
        Ok(entries)
    }

    /// `XREADGROUP ... <id>`: the entries pending for `consumer` after `after`, as they are
    /// kept (an entry retention removed is no longer pending).
    pub fn pending_for(
        &self,
        group: &str,
        name: &str,
        consumer: &str,
        after: EntryId,
        count: usize,
    ) -> Result<Vec<ChangeEntry>> {
        let state = self.snapshot();
        let cg = state.consumers.get(group, name)?;
        let ids: Vec<EntryId> = (cg.pending.range(after.next()..))
            .filter(|(_, p)| p.consumer == consumer)
            .map(|(id, _)| *id)
            .collect();
        if let (Some(&first), Some(&last)) = (ids.first(), ids.last())
            && crate::groups::scoped::split_view_key(group).is_some()
        {
            // A scoped view's entries are computed, not looked up: once for them all.
            let mut entries = state.stream_entries(group, first, last, usize::MAX, false)?;
            entries.retain(|e| ids.binary_search(&e.id).is_ok());
            entries.truncate(count);
            return Ok(entries);
        }
        let mut out = Vec::new();
        for id in ids {
            if out.len() >= count {
                break;
            }
            out.extend(state.stream_entries(group, id, id, 1, false)?);
        }
        Ok(out)
    }

    /// `XACK`: how many of `ids` were pending in consumer group `name` of stream `group`.
    /// Durable when it returns.
    pub fn acknowledge(&self, group: &str, name: &str, ids: &[EntryId]) -> Result<u64> {
        {
            let state = self.snapshot();
            let cg = state.consumers.get(group, name)?;
            if !ids.iter().any(|id| cg.pending.contains_key(id)) {
                return Ok(0);
            }
        }
        match self.write(Change::Acknowledge {
            stream: group.to_string(),
            group: name.to_string(),
            ids: ids.to_vec(),
        })? {
            Outcome::Count(n) => Ok(n),
            _ => Ok(0),
        }
    }

    /// `XPENDING`: the pending entries of consumer group `name` in `[from, to]`, at most
    /// `count`, optionally of one consumer.
    pub fn pending(
        &self,
        group: &str,
        name: &str,
        range: (EntryId, EntryId),
        count: usize,
        consumer: Option<&str>,
    ) -> Result<Vec<PendingEntry>> {
        let state = self.snapshot();
        let now = self.now_for(&state);
        let cg = state.consumers.get(group, name)?;
        Ok(cg
            .pending
            .range(range.0..=range.1)
            .filter(|(_, p)| consumer.is_none_or(|c| c == p.consumer))
            .take(count)
            .map(|(id, p)| PendingEntry {
                id: *id,
                consumer: p.consumer.clone(),
                idle_micros: now.saturating_sub(p.delivered_at),
                deliveries: p.deliveries,
            })
            .collect())
    }

    /// The stored clock was later than the manual clock asked for at open: a note saying
    /// where the clock starts.
    pub(crate) fn clock_note(stored: i64, asked: i64) -> String {
        format!(
            "the database's clock is at {}, after the --now given ({}); the clock starts at \
             the stored instant, since it never moves back",
            format_timestamp(stored),
            format_timestamp(asked)
        )
    }
}
