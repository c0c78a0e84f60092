//! Dynamic groups: named segments whose members are kept materialised, with the stream of
//! their changes (`stream.rs`).
//!
//! Every group keeps its bitmap current as writes arrive (`State::refresh_groups`). A group
//! with an `IN LAST` window (or one that refers to such a group) moves with time too: its
//! bitmap holds from the engine's clock until the next instant one of its windows passes an
//! event (`time.rs`), and the clock's moves bring it up to date (`State::advance_clock`). A
//! query at an instant the bitmap does not hold for evaluates the definition instead, so
//! `IN GROUP g` always means "the members the definition selects at that *now*".
//!
//! A group may refer only to groups that exist when it is defined, and a group still
//! referred to cannot be dropped, so definitions never form a cycle.

pub(crate) mod consumers;
pub(crate) mod depends;
mod explain;
pub(crate) mod scoped;
pub(crate) mod stored;
pub(crate) mod stream;
pub(crate) mod time;

use crate::bitmap::Bitmap;
use crate::error::{Error, Result};
use crate::segment::Segment;

/// One dynamic group.
#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub(crate) name: String,
    pub(crate) definition: Segment,
    /// Moves with *now*: `bitmap` holds only from `valid_from` until `next_change`.
    pub(crate) time_dependent: bool,
    pub(crate) bitmap: Bitmap,
    /// The `IN LAST` windows the definition reads, through the groups it refers to.
    pub(crate) windows: Vec<time::WindowRead>,
    /// How its membership moves while its windows only lose events.
    pub(crate) monotony: time::Monotony,
    /// For a group that moves with time: the first instant `bitmap` holds for (`i64::MAX`
    /// until it is first evaluated).
    pub(crate) valid_from: i64,
    /// For a group that moves with time: the first instant after `valid_from` at which a
    /// member's membership may change without new data (`i64::MAX`: none).
    pub(crate) next_change: i64,
    /// Its enters and exits.
    pub(crate) stream: stream::Stream,
    /// How long its changes are kept, in days.
    pub(crate) keep_days: u32,
    /// Its place in the definition order shared with traits.
    pub(crate) seq: u64,
    /// The position (log sequence number) of its definition: its stream says every change
    /// of its members from there on (0: defined by a version that did not keep it).
    pub(crate) defined_at: u64,
    /// Reads a `QUANTILE` trait (directly or through what it names): its time-driven
    /// changes are found at clock moves, not bisected to their instants (`state/clock.rs`).
    pub(crate) ranked: bool,
}

/// Days a group's changes are kept unless its definition says (`KEEP CHANGES n DAYS`).
pub const DEFAULT_KEEP_DAYS: u32 = 7;
/// The longest retention a group may ask for (ten years).
pub const MAX_KEEP_DAYS: u32 = 3653;

impl Group {
    /// Whether `bitmap` is the group's membership at `now`.
    pub(crate) fn holds_at(&self, now: i64) -> bool {
        !self.time_dependent || (self.valid_from <= now && now < self.next_change)
    }
}

/// All groups, in definition order (a group only refers to earlier ones).
#[derive(Clone, Debug, Default)]
pub(crate) struct GroupStore {
    pub(crate) groups: Vec<Group>,
    /// Which groups read what; rebuilt when a group is defined or dropped.
    pub(crate) dependents: depends::Dependents,
}

impl GroupStore {
    pub(crate) fn get(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    pub(crate) fn require(&self, name: &str) -> Result<&Group> {
        self.get(name)
            .ok_or_else(|| Error::unknown("group", name, self.names()))
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(|g| g.name.as_str())
    }

    /// Checks a new definition and adds it with an empty bitmap; the caller refreshes it.
    /// `windows` are the `IN LAST` windows it reads (`time::window_reads`), `monotony` how
    /// it moves with them (`time::monotony`).
    pub(crate) fn define(
        &mut self,
        name: &str,
        definition: Segment,
        windows: Vec<time::WindowRead>,
        monotony: time::Monotony,
        keep_days: u32,
        seq: u64,
    ) -> Result<usize> {
        if name.is_empty() {
            return Err(Error::InvalidSegment("a group needs a name".to_string()));
        }
        if !(1..=MAX_KEEP_DAYS).contains(&keep_days) {
            return Err(Error::InvalidSegment(format!(
                "KEEP CHANGES {keep_days} DAYS: a group keeps its changes from 1 to \
                 {MAX_KEEP_DAYS} days"
            )));
        }
        if self.get(name).is_some() {
            return Err(Error::Conflict(format!(
                "group '{name}' already exists; drop it first to redefine it"
            )));
        }
        let mut refs = Vec::new();
        definition.referenced_groups(&mut refs);
        let mut time_dependent = definition.uses_relative_time() || !windows.is_empty();
        for r in refs {
            if r == name {
                return Err(Error::InvalidSegment(format!(
                    "group '{name}' cannot refer to itself"
                )));
            }
            time_dependent |= self.require(r)?.time_dependent;
        }
        self.groups.push(Group {
            name: name.to_string(),
            definition,
            time_dependent,
            bitmap: Bitmap::default(),
            windows,
            monotony,
            valid_from: i64::MAX,
            next_change: i64::MAX,
            stream: stream::Stream::default(),
            keep_days,
            seq,
            defined_at: 0,
            ranked: false,
        });
        self.dependents = depends::Dependents::of(&self.groups);
        Ok(self.groups.len() - 1)
    }

    pub(crate) fn drop_group(&mut self, name: &str) -> Result<()> {
        let pos = self
            .groups
            .iter()
            .position(|g| g.name == name)
            .ok_or_else(|| Error::unknown("group", name, self.names()))?;
        // What still uses it was refused before (`state::apply`, groups and traits alike).
        self.groups.remove(pos);
        self.dependents = depends::Dependents::of(&self.groups);
        Ok(())
    }
}
