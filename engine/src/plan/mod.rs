//! The bound plan: a segment bound once to one state at one *now*, then executed over a
//! universe of members the caller gives (every live member, a store's members, the members a
//! write touched).
//!
//! Binding (`bind.rs`) is the only place names are resolved: tags, groups, attribute values
//! and event types become the stored bitmaps, columns and partitions they denote, literals
//! are compiled against their columns, windows resolved against *now*, and the plan knows
//! whether its answer moves with time. Nothing is looked up by name after it. Leaves that
//! are not stored bitmaps (range bins, column scans, event windows) are computed when the
//! plan runs (`leaf.rs`); then `exec.rs` walks every bitmap of the plan together, 65,536
//! members at a time, choosing a kernel per chunk, and `explain.rs` reports what ran.

mod bind;
mod exec;
mod explain;
mod leaf;
mod probe;

pub(crate) use bind::{
    NodeSpans, bind, bind_funnel, bind_trait, bind_value, event_filter, member_value, trait_type,
    value_passes,
};
pub(crate) use exec::{Universe, check_deadline, default_threads};
pub(crate) use explain::explain;

use std::time::Instant;

use roaring::RoaringBitmap;

use crate::bitmap::Bitmap;
use crate::error::Result;
use crate::segment::Segment;
use exec::Run;

/// A segment bound to a state at one *now*.
pub(crate) struct Plan<'a> {
    pub(crate) root: Node<'a>,
    /// The *now* windows were resolved against (microseconds).
    pub(crate) now: i64,
    /// True when the answer depends on *now* (an `IN LAST` window, here or in a group that
    /// moves with time): it cannot be reused at another *now*.
    pub(crate) moves_with_time: bool,
    /// Computed leaves, numbered `0..leaves` in the tree.
    pub(crate) leaves: usize,
}

/// One operator of a plan and the part of the segment it came from.
pub(crate) struct Node<'a> {
    pub(crate) source: Source<'a>,
    pub(crate) op: Op<'a>,
}

/// What a node stands for, for EXPLAIN and cache keys.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    Segment(&'a Segment),
    /// A part of a segment's node the binder made (the non-NULL members of a comparison,
    /// the universe of a `NOT`).
    Part {
        of: &'a Segment,
        what: &'static str,
    },
    /// The members with one value of an attribute (its slot in the value bitmaps).
    Value {
        attr: &'a crate::attributes::Attribute,
        slot: usize,
    },
    /// The events of a `DID` on one UTC day (days since the epoch).
    Day {
        of: &'a Segment,
        day: i64,
    },
}

/// The operators.
pub(crate) enum Op<'a> {
    /// The universe the plan runs over.
    Universe,
    /// No member (a predicate that can never hold).
    Nothing,
    /// A stored bitmap: a tag, an attribute value, the non-NULL members of an attribute, a
    /// group that does not move with time, the members of an event type.
    Stored(&'a Bitmap),
    /// A leaf computed when the plan runs, into slot `slot`.
    Computed { slot: usize, leaf: leaf::Leaf<'a> },
    /// Members in every `pos` and in no `neg` (`pos` never empty).
    And {
        pos: Vec<Node<'a>>,
        neg: Vec<Node<'a>>,
    },
    /// Members in any part.
    Or(Vec<Node<'a>>),
}

impl Plan<'_> {
    /// Members of the segment within `universe`.
    pub(crate) fn count(&self, universe: Universe<'_>, deadline: Option<Instant>) -> Result<u64> {
        Run::start(self, universe, deadline, false)?.count()
    }

    /// The members of the segment within `universe`.
    pub(crate) fn bitmap(
        &self,
        universe: Universe<'_>,
        deadline: Option<Instant>,
    ) -> Result<RoaringBitmap> {
        if let Some(rows) = universe.few_rows(probe::PROBE_MEMBERS) {
            check_deadline(deadline)?;
            return probe::select(self, universe.chunks(), &rows);
        }
        Run::start(self, universe, deadline, false)?.bitmap()
    }

    /// The members of the segment within `universe`, as chunks (a session's scope): a plan
    /// that is one stored bitmap shares its chunk form instead of building one.
    pub(crate) fn chunks(
        &self,
        universe: Universe<'_>,
        deadline: Option<Instant>,
    ) -> Result<std::sync::Arc<crate::bitmap::Chunks>> {
        if let Op::Stored(bitmap) = &self.root.op
            && universe.is_everyone()
        {
            return Ok(bitmap.shared_chunks());
        }
        Ok(std::sync::Arc::new(
            Run::start(self, universe, deadline, false)?.members()?,
        ))
    }

    /// Whether live member `row` is in the segment (one member tested, nothing built for
    /// a universe: a trait's `CASE` after a write).
    pub(crate) fn holds(&self, row: u32) -> Result<bool> {
        probe::holds(self, row)
    }

    /// Members `offset..offset + limit` (row-id order) and the segment's size.
    pub(crate) fn page(
        &self,
        universe: Universe<'_>,
        deadline: Option<Instant>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<u32>, u64)> {
        Run::start(self, universe, deadline, false)?.page(offset, limit)
    }

    /// A key that equal answers share: the bound operators, with commutative operands in a
    /// canonical order and windows as the instants they were resolved to. Two statements
    /// with the same key give the same answer on the same data.
    pub(crate) fn key(&self) -> String {
        self.root.key()
    }
}

impl Node<'_> {
    fn key(&self) -> String {
        match &self.op {
            Op::Universe => "ALL".to_string(),
            Op::Nothing => "NONE".to_string(),
            Op::Stored(_) => self.source_text(),
            Op::Computed { leaf, .. } => format!("{}@{}", self.source_text(), leaf.key()),
            Op::And { pos, neg } => {
                let mut parts: Vec<String> = pos.iter().map(Node::key).collect();
                parts.extend(neg.iter().map(|n| format!("-{}", n.key())));
                parts.sort();
                format!("and({})", parts.join(","))
            }
            Op::Or(parts) => {
                let mut parts: Vec<String> = parts.iter().map(Node::key).collect();
                parts.sort();
                format!("or({})", parts.join(","))
            }
        }
    }

    pub(crate) fn source_text(&self) -> String {
        match self.source {
            Source::Segment(s) => s.to_string(),
            Source::Part { of, what } => format!("{what} of {of}"),
            Source::Value { attr, slot } => attr.value_label(slot),
            Source::Day { of, day } => format!(
                "{} of {of}",
                crate::value::format_date(i32::try_from(day).unwrap_or(i32::MAX))
            ),
        }
    }
}
