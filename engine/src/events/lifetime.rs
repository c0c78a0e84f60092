//! Each member's number of events of one type over all time, saturating at 255: built from
//! the events the first time an all-time count asks for it, then kept up to date by every
//! append. An all-time `DID e AT LEAST n TIMES` over the few members a write touched (the
//! group refresh after an `EVENT.ADD`) is then one lookup per member instead of one per day
//! the type has events on.

use std::sync::OnceLock;

use crate::members::RowId;
use crate::util::chunked::ChunkedVec;

/// The counts, once built.
#[derive(Clone, Debug, Default)]
pub(crate) struct LifetimeCounts(OnceLock<ChunkedVec<u8>>);

impl LifetimeCounts {
    /// The counts, built from `members` (one entry per event) if they are not yet.
    pub(crate) fn get(&self, members: &ChunkedVec<RowId>) -> &ChunkedVec<u8> {
        self.0.get_or_init(|| {
            let mut counts: Vec<u8> = Vec::new();
            for slice in members.slices(0..members.len()) {
                for &m in slice {
                    let m = m as usize;
                    if m >= counts.len() {
                        counts.resize(m + 1, 0);
                    }
                    counts[m] = counts[m].saturating_add(1);
                }
            }
            let mut out = ChunkedVec::default();
            out.extend_from_slice(&counts);
            out
        })
    }

    /// Counts appended events of `members`, if the counts are built (else they will count
    /// them when built).
    pub(crate) fn add(&mut self, members: impl Iterator<Item = RowId>) {
        let Some(counts) = self.0.get_mut() else {
            return;
        };
        for m in members {
            let m = m as usize;
            if m >= counts.len() {
                counts.resize(m + 1, 0);
            }
            let n = counts.get_mut(m);
            *n = n.saturating_add(1);
        }
    }

    /// Sets members' counts (events moved between members), if the counts are built.
    pub(crate) fn set(&mut self, counts_of: impl Iterator<Item = (RowId, usize)>) {
        let Some(counts) = self.0.get_mut() else {
            return;
        };
        for (m, n) in counts_of {
            let m = m as usize;
            if m >= counts.len() {
                counts.resize(m + 1, 0);
            }
            *counts.get_mut(m) = u8::try_from(n).unwrap_or(u8::MAX);
        }
    }

    /// A member's count (0 for a member without events).
    pub(crate) fn of(counts: &ChunkedVec<u8>, member: RowId) -> u8 {
        let m = member as usize;
        if m < counts.len() { counts[m] } else { 0 }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.get().map_or(0, ChunkedVec::heap_bytes)
    }
}
