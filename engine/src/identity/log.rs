//! The observation log: every observation in order, flat (a few bytes per identifier, no
//! allocation per observation), so that ten million of them fit beside the members.

use serde::{Deserialize, Serialize};

use super::graph::Ident;
use crate::members::RowId;

/// Where an observation came from; replay treats `Link` and `Attribute` alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ObsKind {
    /// `ID.LINK` or a row of `memberdb load --identities`.
    Link,
    /// A member attribute named like an identifier type (a load, `MEMBER.SET`, or the
    /// declaration taking the existing values).
    Attribute,
    /// `MEMBER.MERGE a b`: two explicit members.
    Merge,
    /// `ID.UNLINK member type value`.
    Unlink,
}

/// One item of an observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    /// An explicit member (its own row, as named): never dropped.
    Member(RowId),
    Id(Ident),
}

#[derive(Clone, Copy, Debug)]
struct Head {
    kind: ObsKind,
    undone: bool,
    start: u64,
    /// The instant it was logged (microseconds since the epoch).
    at: i64,
}

/// Observations by id (1-based: id `k` is the `k`-th observation ever made).
#[derive(Clone, Debug, Default)]
pub(crate) struct ObservationLog {
    heads: Vec<Head>,
    items: Vec<Item>,
}

/// One observation as read from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Observation<'a> {
    pub(crate) id: u32,
    pub(crate) kind: ObsKind,
    pub(crate) undone: bool,
    pub(crate) at: i64,
    pub(crate) items: &'a [Item],
}

impl Observation<'_> {
    pub(crate) fn members(&self) -> impl Iterator<Item = RowId> + '_ {
        self.items.iter().filter_map(|i| match i {
            Item::Member(r) => Some(*r),
            Item::Id(_) => None,
        })
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = Ident> + '_ {
        self.items.iter().filter_map(|i| match i {
            Item::Id(id) => Some(*id),
            Item::Member(_) => None,
        })
    }
}

impl ObservationLog {
    /// Number of observations ever made.
    pub(crate) fn len(&self) -> usize {
        self.heads.len()
    }

    /// Appends an observation; returns its id.
    pub(crate) fn push(&mut self, kind: ObsKind, at: i64, items: &[Item]) -> u32 {
        self.heads.push(Head {
            kind,
            undone: false,
            start: self.items.len() as u64,
            at,
        });
        self.items.extend_from_slice(items);
        self.heads.len() as u32
    }

    pub(crate) fn get(&self, id: u32) -> Option<Observation<'_>> {
        let i = (id as usize).checked_sub(1)?;
        let head = self.heads.get(i)?;
        let end = self
            .heads
            .get(i + 1)
            .map_or(self.items.len(), |h| h.start as usize);
        Some(Observation {
            id,
            kind: head.kind,
            undone: head.undone,
            at: head.at,
            items: &self.items[head.start as usize..end],
        })
    }

    /// Every observation in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Observation<'_>> {
        (1..=self.heads.len() as u32).filter_map(|id| self.get(id))
    }

    /// Empties the observations `ids` and marks them undone (member erasure): their
    /// identifiers and members leave the log; their ids stay taken, so `MEMBER.HISTORY`
    /// and `MEMBER.UNMERGE` of the others still name them.
    pub(crate) fn erase(&mut self, ids: &std::collections::BTreeSet<u32>) {
        let mut items = Vec::with_capacity(self.items.len());
        for i in 0..self.heads.len() {
            let end = self
                .heads
                .get(i + 1)
                .map_or(self.items.len(), |h| h.start as usize);
            let start = self.heads[i].start as usize;
            self.heads[i].start = items.len() as u64;
            if ids.contains(&(i as u32 + 1)) {
                self.heads[i].undone = true;
            } else {
                items.extend_from_slice(&self.items[start..end]);
            }
        }
        self.items = items;
    }

    /// Marks observation `id` undone (`MEMBER.UNMERGE`).
    pub(crate) fn undo(&mut self, id: u32) {
        if let Some(h) = self.heads.get_mut(id as usize - 1) {
            h.undone = true;
        }
    }
}
